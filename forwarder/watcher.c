/* watcher.c - initial sync (streaming WATCH with sendInitialEvents, or
 * paginated LIST) + WATCH of one kind (in one namespace) with resume,
 * resync-and-diff on 410 Gone, and noise control (see watcher.h). */
#include "watcher.h"

#include "clock.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "noise.h"
#include "watch_raw.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct watcher {
    const fwd_config *cfg;
    k8s_client *kc;
    fwd_queue *q;
    fwd_state *st;
    int kind;
    char *ns;
    char name[160];
    k8s_resource res;
    volatile int *stop;
    pthread_t th;
    atomic_int established;
    char *rv;                  /* last resourceVersion seen */
    int gone;                  /* the watch reported 410 */
    int errored;               /* the watch reported another ERROR */
    unsigned seed;
    int need_sync;             /* the next request must (re)sync the object set */
    int stream;                /* sync by WATCH sendInitialEvents (else LIST) */
    /* a streaming sync in progress: initial ADDED events until the
     * k8s.io/initial-events-end bookmark */
    int syncing, sync_origin, no_stream;
    uint32_t sync_mark;
    size_t sync_total;
    double sync_t0;
};

static void set_rv(watcher *w, const char *rv)
{
    if (!rv || (w->rv && !strcmp(w->rv, rv)))
        return;
    free(w->rv);
    w->rv = strdup(rv);
}

/* Noise control + state + queue for one object.  Returns -1 when the queue
 * is closed (shutting down). */
static int emit(watcher *w, json_t *obj, const char *raw, size_t rawlen, bool deleted,
                int origin, uint32_t mark, int wtype)
{
    const fwd_kind *k = &fwd_kinds[w->kind];
    if (k->namespaced && w->ns) {
        const char *ons = jx_str(obj, "metadata.namespace");
        if (!ons || strcmp(ons, w->ns) != 0) {
            if (wtype >= 0)
                metrics_count(M_FILTERED, w->kind, wtype);
            return 0;
        }
    }
    uint64_t h = noise_hash(obj);
    int t = state_observe(w->st, w->kind, obj, h, deleted, mark);
    if (wtype >= 0)
        metrics_count(M_SEEN, w->kind, wtype);
    if (t < 0) {
        if (wtype >= 0)
            metrics_count(M_FILTERED, w->kind, wtype);
        return 0;
    }
    if (wtype < 0)
        metrics_count(M_SEEN, w->kind, t);
    fwd_event *ev = fwd_event_new_raw(t, w->kind, origin, obj, raw, rawlen, h);
    if (!ev)
        return 0;
    LOGJ(LOGL_DEBUG, "event", "{s:s,s:s,s:s?,s:s,s:s?,s:s}", "type", fwd_type_names[t],
         "kind", k->kind, "namespace", ev->ns, "name", ev->name, "rv", ev->rv,
         "origin", fwd_origin_names[origin]);
    return queue_push(w->q, ev) < 0 ? -1 : 0;
}

/* Paginated LIST diffed against the state.  0, or -1 (err filled). */
static int list_and_diff(watcher *w, int origin, k8s_error *err)
{
    const fwd_kind *k = &fwd_kinds[w->kind];
    uint32_t mark = state_new_mark(w->st);
    char *base = k8s_path(&w->res, w->ns, NULL);
    char *cont = NULL, *list_rv = NULL;
    size_t total = 0;
    long pages = 0, empty_run = 0;
    int rc = 0;
    double t0 = fwd_mono();
    do {
        char *path = NULL;
        char *esc = cont ? curl_easy_escape(NULL, cont, 0) : NULL;
        if (asprintf(&path, "%s?limit=%ld%s%s", base, w->cfg->list_page_size,
                     esc ? "&continue=" : "", esc ? esc : "") < 0)
            path = NULL;
        curl_free(esc);
        json_t *page = NULL;
        rc = path ? k8s_request(w->kc, "GET", path, NULL, NULL, &page, err) : -1;
        /* A 2xx that is not a list (`200 {}`, a proxy's HTML page) must not
         * read as "no objects": the sweep below would turn every known
         * object into a DELETED event, which the delete jobs take as
         * evidence. */
        if (rc == 0)
            rc = k8s_list_check(page, &w->res, w->ns, path, err->status, err);
        free(path);
        if (rc != 0) {
            json_decref(page);
            break;
        }
        if (!list_rv)
            list_rv = strdup(jx_str_or(page, "metadata.resourceVersion", ""));
        char *next = NULL;
        rc = k8s_list_continue(page, cont, &pages, &empty_run, &w->res, w->ns, &next, err);
        free(cont);
        cont = next;
        if (rc != 0) {
            json_decref(page);
            break;
        }
        json_t *items = json_object_get(page, "items");
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it) {
            json_object_set_new(it, "apiVersion", json_string(k->api_version));
            json_object_set_new(it, "kind", json_string(k->kind));
            if (emit(w, it, NULL, 0, false, origin, mark, -1) < 0)
                rc = -2;
            total++;
        }
        json_decref(page);
        if (rc == -2 || *w->stop)
            break;
    } while (cont);
    free(cont);
    free(base);
    if (rc == 0 && !*w->stop) {
        fwd_event **gone = NULL;
        size_t n = state_sweep(w->st, w->kind, w->ns, mark, origin, &gone);
        for (size_t i = 0; i < n; i++) {
            metrics_count(M_SEEN, w->kind, EV_DELETED);
            if (queue_push(w->q, gone[i]) < 0)
                rc = -2;
        }
        free(gone);
        set_rv(w, list_rv);
        metrics_kind_count(K_RELISTS, w->kind);
        LOGJ(LOGL_INFO, origin == ORIGIN_LIST ? "initial list done" : "relist done",
             "{s:s,s:s?,s:s,s:I,s:I,s:s,s:f}", "kind", k->kind, "namespace", w->ns,
             "mode", "list", "objects", (json_int_t)total, "deleted_while_away", (json_int_t)n,
             "resourceVersion", list_rv ? list_rv : "", "seconds", fwd_mono() - t0);
    }
    free(list_rv);
    return rc == 0 ? 0 : -1;
}

/* The end of a streaming sync: objects known but not streamed are gone. */
static int finish_sync(watcher *w)
{
    const fwd_kind *k = &fwd_kinds[w->kind];
    fwd_event **gone = NULL;
    size_t n = state_sweep(w->st, w->kind, w->ns, w->sync_mark, w->sync_origin, &gone);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        metrics_count(M_SEEN, w->kind, EV_DELETED);
        if (rc == 0 && queue_push(w->q, gone[i]) < 0)
            rc = -1;
        else if (rc != 0)
            fwd_event_free(gone[i]);
    }
    free(gone);
    w->syncing = 0;
    w->need_sync = 0;
    metrics_kind_count(K_RELISTS, w->kind);
    LOGJ(LOGL_INFO, w->sync_origin == ORIGIN_LIST ? "initial list done" : "relist done",
         "{s:s,s:s?,s:s,s:I,s:I,s:s?,s:f}", "kind", k->kind, "namespace", w->ns,
         "mode", "stream", "objects", (json_int_t)w->sync_total,
         "deleted_while_away", (json_int_t)n, "resourceVersion", w->rv,
         "seconds", fwd_mono() - w->sync_t0);
    atomic_store(&w->established, 1);
    return rc;
}

static int on_event(void *ud, const char *type, json_t *obj, const char *line, size_t len)
{
    watcher *w = ud;
    if (*w->stop)
        return 1;
    if (!w->syncing)
        atomic_store(&w->established, 1);
    if (!strcmp(type, "BOOKMARK")) {
        set_rv(w, jx_str(obj, "metadata.resourceVersion"));
        if (w->syncing) {
            json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
            const char *end = json_string_value(json_object_get(ann, "k8s.io/initial-events-end"));
            if (end && !strcmp(end, "true"))
                return finish_sync(w) < 0 ? 1 : 0;
            w->no_stream = 1;   /* a server that ignores sendInitialEvents */
            return 1;
        }
        return 0;
    }
    if (!strcmp(type, "ERROR")) {
        long long code = jx_int(obj, "code", 0);
        if (code == 410) {
            w->gone = 1;
        } else {
            w->errored = 1;
            LOGJ(LOGL_WARN, "watch error event", "{s:s,s:s?,s:I,s:s?}", "kind",
                 fwd_kinds[w->kind].kind, "namespace", w->ns, "code", (json_int_t)code,
                 "message", jx_str(obj, "message"));
        }
        return 1;
    }
    int wtype = !strcmp(type, "ADDED") ? EV_ADDED : !strcmp(type, "MODIFIED") ? EV_MODIFIED
              : !strcmp(type, "DELETED") ? EV_DELETED : -1;
    if (wtype < 0)
        return 0;
    size_t rawlen = 0;
    const char *raw = fwd_raw_object(type, line, len, &rawlen);
    if (!json_object_get(obj, "kind")) {
        json_object_set_new(obj, "apiVersion", json_string(fwd_kinds[w->kind].api_version));
        json_object_set_new(obj, "kind", json_string(fwd_kinds[w->kind].kind));
        raw = NULL;
    }
    if (w->syncing) {   /* an existing object, as a LIST would have returned it */
        w->sync_total++;
        return emit(w, obj, raw, rawlen, false, w->sync_origin, w->sync_mark, -1) < 0 ? 1 : 0;
    }
    if (emit(w, obj, raw, rawlen, wtype == EV_DELETED, ORIGIN_WATCH, 0, wtype) < 0)
        return 1;
    set_rv(w, jx_str(obj, "metadata.resourceVersion"));
    return 0;
}

static void backoff(watcher *w, double *delay)
{
    double d = *delay * (0.75 + (rand_r(&w->seed) % 500) / 1000.0);
    double until = fwd_mono() + d;
    while (!*w->stop && fwd_mono() < until)
        fwd_sleep(0.05);
    *delay = *delay * 2 > 30 ? 30 : *delay * 2;
}

static void *run(void *arg)
{
    watcher *w = arg;
    const fwd_kind *k = &fwd_kinds[w->kind];
    int first = 1;
    double delay = 0.5;
    char ebuf[1400];
    w->need_sync = 1;
    while (!*w->stop) {
        k8s_error err;
        memset(&err, 0, sizeof err);
        if (w->need_sync && !w->stream) {
            if (list_and_diff(w, first ? ORIGIN_LIST : ORIGIN_RELIST, &err) != 0) {
                if (*w->stop)
                    break;
                metrics_kind_count(K_WATCH_ERRORS, w->kind);
                LOGJ(LOGL_WARN, "list failed, will retry", "{s:s,s:s?,s:s,s:f}", "kind", k->kind,
                     "namespace", w->ns, "error", k8s_strerror(&err, ebuf, sizeof ebuf),
                     "retry_in_s", delay);
                backoff(w, &delay);
                continue;
            }
            w->need_sync = 0;
            first = 0;
            atomic_store(&w->established, 1);
        }
        k8s_watch_opts o = { .resource_version = w->rv, .allow_bookmarks = true,
                             .timeout_seconds = w->cfg->watch_timeout_s, .stop = w->stop };
        if (w->need_sync) {   /* streaming sync: every object, then live events */
            o.resource_version = NULL;
            o.send_initial_events = true;
            w->syncing = 1;
            w->no_stream = 0;
            w->sync_origin = first ? ORIGIN_LIST : ORIGIN_RELIST;
            w->sync_mark = state_new_mark(w->st);
            w->sync_total = 0;
            w->sync_t0 = fwd_mono();
        }
        w->gone = 0;
        w->errored = 0;
        o.line_cb = on_event;
        int rc = k8s_watch(w->kc, &w->res, w->ns, &o, NULL, w, &err);
        if (*w->stop)
            break;
        if (w->syncing) {     /* the stream ended before its initial-events-end */
            w->syncing = 0;
            if (w->no_stream || (rc != 0 && (err.status == 400 || err.status == 422))) {
                LOGJ(LOGL_WARN, "the API server does not stream initial events (WatchList): "
                     "falling back to LIST + WATCH", "{s:s,s:s?,s:s}", "kind", k->kind,
                     "namespace", w->ns, "error", rc ? k8s_strerror(&err, ebuf, sizeof ebuf) : "");
                w->stream = 0;
                continue;
            }
        }
        if (!w->need_sync)
            first = 0;
        if (w->gone || (rc != 0 && err.status == 410)) {
            LOGJ(LOGL_WARN, "watch resourceVersion too old (410 Gone): relisting",
                 "{s:s,s:s?,s:s?}", "kind", k->kind, "namespace", w->ns, "resourceVersion", w->rv);
            w->need_sync = 1;
            continue;
        }
        metrics_kind_count(K_WATCH_RESTARTS, w->kind);
        if (rc != 0 || w->errored) {
            atomic_store(&w->established, 0);
            metrics_kind_count(K_WATCH_ERRORS, w->kind);
            LOGJ(LOGL_WARN, "watch failed, resuming", "{s:s,s:s?,s:s?,s:s,s:f}", "kind", k->kind,
                 "namespace", w->ns, "resourceVersion", w->rv,
                 "error", k8s_strerror(&err, ebuf, sizeof ebuf), "retry_in_s", delay);
            backoff(w, &delay);
        } else {
            delay = 0.5;
        }
    }
    return NULL;
}

watcher *watcher_start(const fwd_config *cfg, k8s_client *kc, fwd_queue *q, fwd_state *st,
                       int kind, const char *ns, volatile int *stop, char *err, size_t errlen)
{
    watcher *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    const fwd_kind *k = &fwd_kinds[kind];
    w->cfg = cfg;
    w->kc = kc;
    w->q = q;
    w->st = st;
    w->kind = kind;
    w->ns = ns ? strdup(ns) : NULL;
    w->stop = stop;
    w->seed = (unsigned)kind * 7919u + (unsigned)(uintptr_t)w;
    w->stream = !strcmp(cfg->initial_sync, "stream");
    w->res = (k8s_resource){ k->group, k->version, k->kind, k->plural, k->namespaced };
    snprintf(w->name, sizeof w->name, "%s%s%s", k->kind, ns ? "/" : "", ns ? ns : "");
    if (pthread_create(&w->th, NULL, run, w) != 0) {
        snprintf(err, errlen, "cannot start the watcher of %s", w->name);
        free(w->ns);
        free(w);
        return NULL;
    }
    return w;
}

int watcher_established(watcher *w) { return atomic_load(&w->established); }
const char *watcher_name(watcher *w) { return w->name; }

int watcher_join_until(watcher *w, const struct timespec *deadline)
{
    if (pthread_timedjoin_np(w->th, NULL, deadline) != 0)
        return -1;
    free(w->ns);
    free(w->rv);
    free(w);
    return 0;
}

void watcher_join(watcher *w)
{
    if (!w)
        return;
    pthread_join(w->th, NULL);
    free(w->ns);
    free(w->rv);
    free(w);
}
