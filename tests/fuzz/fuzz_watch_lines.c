/* fuzz_watch_lines.c - libFuzzer target for watch-stream parsing: the body
 * of a Kubernetes ?watch=1 answer split into newline-delimited JSON events
 * (lib/k8s/k8s_watch_lines.c, what k8s_watch feeds from curl) and, for each
 * event, the forwarder's extraction of the object's text from the line
 * (forwarder/watch_raw.c, the text it forwards in the webhook payload).
 *
 * The input is the stream.  It is fed once in one piece and once in pieces
 * of pseudo-random sizes (as curl delivers them), and once more with a tiny
 * line limit.
 *
 * Checked beyond "no crash, no leak":
 *   - the events do not depend on how the stream was cut into pieces;
 *   - with a line limit, the events are a prefix of the unlimited run's and
 *     an over-long line ends the stream as a bad event;
 *   - the object text fwd_raw_object finds is exactly the object that was
 *     parsed (valid JSON on its own, equal to it): nothing else from the line
 *     can be spliced into the payload. */
#include "k8s_int.h"
#include "watch_raw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct events {
    char *log;          /* "type\tobject\n" per event */
    size_t len;
    size_t n, stop_after;
} events;

static int on_event(void *ud, const char *type, json_t *obj, const char *line, size_t len)
{
    events *e = ud;
    size_t rawlen = 0;
    const char *raw = fwd_raw_object(type, line, len, &rawlen);
    if (raw) {
        if (raw < line || raw + rawlen > line + len)
            abort();
        json_t *back = json_loadb(raw, rawlen, 0, NULL);
        if (!back || !json_equal(back, obj))
            abort();   /* the forwarded text is not the object that was parsed */
        json_decref(back);
    }
    char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!s)
        abort();
    size_t tl = strlen(type), sl = strlen(s);
    char *g = realloc(e->log, e->len + tl + sl + 3);
    if (!g)
        abort();
    e->log = g;
    memcpy(e->log + e->len, type, tl);
    e->log[e->len + tl] = '\t';
    memcpy(e->log + e->len + tl + 1, s, sl);
    e->log[e->len + tl + 1 + sl] = '\n';
    e->len += tl + sl + 2;
    e->log[e->len] = '\0';
    free(s);
    return ++e->n >= e->stop_after;
}

typedef struct outcome {
    events ev;
    bool stopped, bad;
} outcome;

static void feed(const uint8_t *data, size_t size, bool pieces, size_t max_line, size_t stop_after,
                 outcome *o)
{
    memset(o, 0, sizeof *o);
    o->ev.stop_after = stop_after;
    k8s_wlines l = { .line_cb = on_event, .ud = &o->ev, .max_line = max_line };
    uint32_t x = (uint32_t)size * 2654435761u | 1u;
    size_t off = 0;
    bool go = true;
    while (go && off < size) {
        size_t n = size - off;
        if (pieces) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            size_t want = 1 + x % 64;
            n = n < want ? n : want;
        }
        go = k8s_wlines_feed(&l, (const char *)data + off, n);
        off += n;
    }
    if (go)
        k8s_wlines_end(&l);
    o->stopped = l.stopped;
    o->bad = l.bad_event;
    if (l.bad_event && !l.bad_msg[0])
        abort();
    k8s_wlines_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t stop_after = size ? 1 + data[0] % 8 : 1;
    outcome whole, cut, small;
    feed(data, size, false, 0, stop_after, &whole);
    feed(data, size, true, 0, stop_after, &cut);
    if (whole.ev.n != cut.ev.n || whole.stopped != cut.stopped || whole.bad != cut.bad ||
        whole.ev.len != cut.ev.len ||
        (whole.ev.len && memcmp(whole.ev.log, cut.ev.log, whole.ev.len) != 0))
        abort();
    feed(data, size, true, 48, stop_after, &small);
    if (small.ev.n > whole.ev.n || small.ev.len > whole.ev.len ||
        (small.ev.len && memcmp(small.ev.log, whole.ev.log, small.ev.len) != 0))
        abort();
    if (small.ev.n < whole.ev.n && !small.bad)
        abort();   /* fewer events only because a line was too long */
    free(whole.ev.log);
    free(cut.ev.log);
    free(small.ev.log);
    return 0;
}
