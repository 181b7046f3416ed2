/* event.c - event records: built from a watched object, parsed back, freed
 * (see event.h). */
#include "event.h"

#include "clock.h"

#include "jsonx.h"
#include "transform.h"

#include <stdlib.h>
#include <string.h>

const char *const fwd_type_names[EV_NTYPES] = { "ADDED", "MODIFIED", "DELETED" };
const char *const fwd_origin_names[3] = { "watch", "list", "relist" };

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

fwd_event *fwd_event_new_raw(int type, int kind, int origin, json_t *object,
                             const char *raw, size_t len, uint64_t hash)
{
    fwd_event *ev = calloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    ev->type = type;
    ev->kind = kind;
    ev->origin = origin;
    ev->observed = fwd_now();
    ev->hash = hash;
    if (raw) {
        ev->raw = malloc(len + 1);
        if (ev->raw) {
            memcpy(ev->raw, raw, len);
            ev->raw[len] = '\0';
            ev->rawlen = len;
        }
    } else {
        ev->raw = json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER);
        ev->rawlen = ev->raw ? strlen(ev->raw) : 0;
    }
    ev->uid = dup_or_null(jx_str(object, "metadata.uid"));
    ev->name = dup_or_null(jx_str(object, "metadata.name"));
    ev->rv = dup_or_null(jx_str(object, "metadata.resourceVersion"));
    if (fwd_kinds[kind].namespaced)
        ev->ns = dup_or_null(jx_str(object, "metadata.namespace"));
    ev->scope = dup_or_null(tf_scope_namespace(object));
    if (!ev->uid || !ev->name || !ev->raw) {
        fwd_event_free(ev);
        return NULL;
    }
    return ev;
}

fwd_event *fwd_event_new(int type, int kind, int origin, json_t *object, uint64_t hash)
{
    return fwd_event_new_raw(type, kind, origin, object, NULL, 0, hash);
}

json_t *fwd_event_object(const fwd_event *ev)
{
    return ev->raw ? json_loadb(ev->raw, ev->rawlen, 0, NULL) : NULL;
}

void fwd_event_free(fwd_event *ev)
{
    if (!ev)
        return;
    free(ev->uid);
    free(ev->ns);
    free(ev->scope);
    free(ev->name);
    free(ev->rv);
    free(ev->raw);
    free(ev);
}
