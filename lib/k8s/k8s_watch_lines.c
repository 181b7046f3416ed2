/* k8s_watch_lines.c - the body of a watch: newline-delimited JSON events
 * arriving in chunks of any size, split into lines, decoded and handed to the
 * callback (k8s_int.h: k8s_wlines).  No I/O here: k8s_watch.c feeds it from
 * curl's write callback, the fuzz target (tests/fuzz/fuzz_watch_lines.c)
 * feeds it directly.  An unterminated line is bounded (max_line). */
#include "k8s_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decodes one event line and calls the callback; returns false to stop. */
static bool dispatch(k8s_wlines *l, const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' '))
        n--;
    if (n == 0)
        return true;
    json_error_t je;
    json_t *ev = json_loadb(p, n, 0, &je);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    if (!ev || !type || !obj) {
        l->bad_event = true;
        snprintf(l->bad_msg, sizeof l->bad_msg, "undecodable watch event%s%s",
                 ev ? "" : ": ", ev ? "" : je.text);
        json_decref(ev);
        return false;
    }
    int rc = l->line_cb ? l->line_cb(l->ud, type, obj, p, n) : l->cb(l->ud, type, obj);
    json_decref(ev);
    if (rc != 0) {
        l->stopped = true;
        return false;
    }
    return true;
}

bool k8s_wlines_feed(k8s_wlines *l, const char *p, size_t n)
{
    if (l->stop && *l->stop) {
        l->stopped = true;
        return false;
    }
    if (n == 0)
        return true;
    size_t max = l->max_line ? l->max_line : K8S_WATCH_MAX_LINE;
    size_t start = 0, scanned = l->buf.len;   /* the kept part has no '\n' */
    if (k8s_resp_append(&l->buf, p, n) != 0)
        return false;
    const char *nl;
    while ((nl = memchr(l->buf.data + scanned, '\n', l->buf.len - scanned)) != NULL) {
        size_t i = (size_t)(nl - l->buf.data);
        scanned = i + 1;
        if (i - start > max)
            break;
        if (!dispatch(l, l->buf.data + start, i - start))
            return false;
        start = scanned;
        if (l->stop && *l->stop) {
            l->stopped = true;
            return false;
        }
    }
    if (start > 0) {
        memmove(l->buf.data, l->buf.data + start, l->buf.len - start);
        l->buf.len -= start;
        l->buf.data[l->buf.len] = '\0';
    }
    if (l->buf.len > max) {
        l->bad_event = true;
        snprintf(l->bad_msg, sizeof l->bad_msg,
                 "watch event line longer than %zu bytes", max);
        return false;
    }
    return true;
}

bool k8s_wlines_end(k8s_wlines *l)
{
    if (l->buf.len == 0)
        return true;
    size_t n = l->buf.len;
    l->buf.len = 0;   /* dispatched once */
    return dispatch(l, l->buf.data, n);
}

void k8s_wlines_free(k8s_wlines *l)
{
    k8s_resp_free(&l->buf);
}
