/* payload.c - builds the webhook payload for an event (see payload.h). */
#include "payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *payload_time(double epoch, char *buf, size_t len)
{
    time_t sec = (time_t)epoch;
    long ms = (long)((epoch - (double)sec) * 1000.0);
    if (ms > 999)
        ms = 999;
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms % 1000);
    return buf;
}

/* Every field but `resource`. */
static json_t *header(const fwd_event *ev, const char *cluster)
{
    const fwd_kind *k = &fwd_kinds[ev->kind];
    char when[80];
    json_t *p = json_object();
    json_object_set_new(p, "type", json_string(fwd_type_names[ev->type]));
    json_object_set_new(p, "kind", json_string(k->kind));
    json_object_set_new(p, "apiVersion", json_string(k->api_version));
    json_object_set_new(p, "namespace", ev->ns ? json_string(ev->ns) : json_null());
    json_object_set_new(p, "scopeNamespace", ev->scope ? json_string(ev->scope) : json_null());
    json_object_set_new(p, "name", json_string(ev->name));
    json_object_set_new(p, "uid", json_string(ev->uid));
    json_object_set_new(p, "resourceVersion", ev->rv ? json_string(ev->rv) : json_null());
    json_object_set_new(p, "cluster", json_string(cluster ? cluster : ""));
    json_object_set_new(p, "observedAt", json_string(payload_time(ev->observed, when, sizeof when)));
    json_object_set_new(p, "sequence", json_integer((json_int_t)ev->seq));
    json_object_set_new(p, "origin", json_string(fwd_origin_names[ev->origin]));
    return p;
}

json_t *payload_build(const fwd_event *ev, const char *cluster)
{
    json_t *p = header(ev, cluster);
    json_t *o = fwd_event_object(ev);
    json_object_set_new(p, "resource", o ? o : json_null());
    return p;
}

/* The header serialized, then the object's text spliced in as it is: the
 * object is never re-serialized on the delivery path. */
char *payload_dump(const fwd_event *ev, const char *cluster, size_t *len)
{
    json_t *p = header(ev, cluster);
    char *h = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(p);
    if (!h)
        return NULL;
    size_t hl = strlen(h);   /* ends with '}' */
    static const char key[] = ",\"resource\":";
    const char *raw = ev->raw ? ev->raw : "null";
    size_t rl = ev->raw ? ev->rawlen : 4;
    size_t n = hl - 1 + sizeof key - 1 + rl + 1;
    char *s = malloc(n + 1);
    if (s) {
        char *q = s;
        memcpy(q, h, hl - 1);
        q += hl - 1;
        memcpy(q, key, sizeof key - 1);
        q += sizeof key - 1;
        memcpy(q, raw, rl);
        q += rl;
        *q++ = '}';
        *q = '\0';
        if (len)
            *len = n;
    }
    free(h);
    return s;
}
