/* main.c - ocpv-dr-forwarder: wires configuration, state, queue, delivery
 * workers, watchers and the operations endpoint together, and shuts down
 * cleanly on SIGTERM/SIGINT: watchers stop, the queue is flushed to the
 * webhook within SHUTDOWN_GRACE_SECONDS, the state journal is synced. */
#include "config.h"
#include "deliver.h"
#include "clock.h"
#include "kinds.h"
#include "k8s.h"
#include "log.h"
#include "metrics.h"
#include "ops_http.h"
#include "queue.h"
#include "state.h"
#include "watcher.h"

#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct app {
    watcher **w;
    size_t nw;
    deliver *d;
    double stall_s;
} app;

/* /readyz: every watch established and delivery not stalled (an event
 * failing for longer than DELIVERY_STALL_SECONDS); why names what is not. */
static int ready(void *ud, char *why, size_t len)
{
    app *a = ud;
    int ok = 1;
    size_t used = 0;
    for (size_t i = 0; i < a->nw; i++)
        if (!watcher_established(a->w[i])) {
            ok = 0;
            int n = snprintf(why + used, len - used, "%s%s not established", used ? ", " : "",
                             watcher_name(a->w[i]));
            if (n > 0 && (size_t)n < len - used)
                used += (size_t)n;
        }
    char stall[512];
    if (deliver_stalled(a->d, a->stall_s, stall, sizeof stall)) {
        ok = 0;
        int n = snprintf(why + used, len - used, "%s%s", used ? ", " : "", stall);
        if (n > 0 && (size_t)n < len - used)
            used += (size_t)n;
    }
    return ok;
}

/* /metrics: the forwarder's counters (metrics.h). */
static char *render_metrics(void *ud, size_t *len)
{
    (void)ud;
    return metrics_render(len);
}

static volatile int stop_flag;

int main(int argc, char **argv)
{
    fwd_config cfg;
    char err[1024] = "";
    log_set_component("forwarder");
    mallopt(M_ARENA_MAX, 2);   /* threads share two heaps: RSS stays small */
    int rc = config_load(&cfg, argc, argv, err, sizeof err);
    if (rc == 1) {
        config_free(&cfg);
        log_clear_secrets();
        return 0;
    }
    if (rc == 0)
        rc = config_validate(&cfg, err, sizeof err);
    if (rc != 0) {
        char *clean = log_scrub(err);
        fprintf(stderr, "ocpv-dr-forwarder: configuration error: %s\n", clean ? clean : err);
        free(clean);
        config_free(&cfg);
        log_clear_secrets();
        return 2;
    }
    log_level lv = LOGL_INFO;
    log_level_parse(cfg.log_level, &lv);
    log_set_level(lv);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    k8s_conn conn = { .kubeconfig = cfg.kubeconfig, .context = cfg.context, .validate_certs = -1 };
    k8s_conn_from_env(&conn);
    k8s_config kcfg = { .max_retries = 3, .timeout_ms = 60000, .connect_timeout_ms = 10000,
                        .max_in_flight = 4, .user_agent = "ocpv-dr-forwarder/0.1" };
    k8s_error kerr;
    memset(&kerr, 0, sizeof kerr);
    k8s_client *kc = k8s_client_new(&conn, &kcfg, &kerr);
    if (!kc) {
        char buf[1400];
        fprintf(stderr, "ocpv-dr-forwarder: configuration error: Kubernetes connection: %s\n",
                k8s_strerror(&kerr, buf, sizeof buf));
        config_free(&cfg);
        log_clear_secrets();
        curl_global_cleanup();
        return 2;
    }
    json_t *warnings = config_transport_warnings(&cfg, k8s_client_server(kc),
                                                 k8s_client_tls_unverified(kc));
    if (cfg.check_only) {
        json_t *sum = config_summary(&cfg);
        json_object_set_new(sum, "api_server", json_string(k8s_client_server(kc)));
        size_t wi;
        json_t *w;
        json_array_foreach(warnings, wi, w)
            fprintf(stderr, "ocpv-dr-forwarder: WARNING: %s\n",
                    json_string_value(json_object_get(w, "msg")));
        json_object_set_new(sum, "warnings", warnings);
        char *s = json_dumps(sum, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("configuration OK\n%s\n", s ? s : "");
        free(s);
        json_decref(sum);
        k8s_client_free(kc);
        config_free(&cfg);
        log_clear_secrets();
        curl_global_cleanup();
        return 0;
    }

    /* Signals are taken synchronously by the main thread only. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    json_t *sum = config_summary(&cfg);
    json_object_set_new(sum, "api_server", json_string(k8s_client_server(kc)));
    log_j(LOGL_INFO, "starting", sum);
    /* loud, one line each, at every start: what is not verified TLS */
    size_t wi;
    json_t *wl;
    json_array_foreach(warnings, wi, wl)
        log_j(LOGL_WARN, json_string_value(json_object_get(wl, "msg")),
              json_pack("{s:O}", "setting", json_object_get(wl, "setting")));
    json_decref(warnings);

    fwd_state *st = state_open(cfg.state_dir, err, sizeof err);
    if (!st) {
        LOGJ(LOGL_ERROR, "cannot open the state directory", "{s:s}", "error", err);
        k8s_client_free(kc);
        config_free(&cfg);
        curl_global_cleanup();
        return 1;
    }
    fwd_queue *q = queue_new((size_t)cfg.queue_max, state_next_seq(st));
    deliver *d = deliver_start(&cfg, q, st, err, sizeof err);
    app a = { .d = d, .stall_s = (double)cfg.stall_s };
    ops_http_handlers hh = { .ready = ready, .metrics = render_metrics, .ud = &a };
    ops_http *http = d ? ops_http_start(cfg.listen, &hh, err, sizeof err) : NULL;
    int exit_code = 0;
    if (!d || !http) {
        LOGJ(LOGL_ERROR, "cannot start", "{s:s}", "error", err);
        exit_code = 1;
        stop_flag = 1;
    }
    size_t per = cfg.n_namespaces ? cfg.n_namespaces : 1;
    a.w = calloc(FWD_NKINDS * per, sizeof *a.w);
    for (int k = 0; k < FWD_NKINDS && !stop_flag; k++) {
        if (!(cfg.kinds_mask & (1u << k)))
            continue;
        size_t n = fwd_kinds[k].namespaced ? cfg.n_namespaces : 0;
        for (size_t i = 0; i < (n ? n : 1); i++) {
            watcher *w = watcher_start(&cfg, kc, q, st, k, n ? cfg.namespaces[i] : NULL,
                                       &stop_flag, err, sizeof err);
            if (w)
                a.w[a.nw++] = w;
            else
                LOGJ(LOGL_ERROR, "cannot start watcher", "{s:s}", "error", err);
        }
    }

    int was_ready = 0, was_stalled = 0, trimmed = 0;
    while (!stop_flag) {
        struct timespec tick = { 1, 0 };
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            LOGJ(LOGL_INFO, "signal received: stopping", "{s:s,s:I}", "signal",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", "grace_seconds", (json_int_t)cfg.grace_s);
            break;
        }
        char why[8];
        int r = ready(&a, why, sizeof why);
        metrics_gauge_set(G_READY, r);
        char stall[512] = "";
        int stalled = deliver_stalled(d, a.stall_s, stall, sizeof stall);
        if (stalled && !was_stalled)
            LOGJ(LOGL_ERROR, "webhook delivery stalled", "{s:s}", "why", stall);
        else if (!stalled && was_stalled)
            LOG0(LOGL_INFO, "webhook delivery no longer stalled");
        was_stalled = stalled;
        metrics_gauge_set(G_STALLED, stalled);
        for (int k = 0; k < FWD_NKINDS; k++) {
            int all = (cfg.kinds_mask & (1u << k)) != 0;
            for (size_t i = 0; i < a.nw; i++)
                if (!strncmp(watcher_name(a.w[i]), fwd_kinds[k].kind, strlen(fwd_kinds[k].kind)) &&
                    (watcher_name(a.w[i])[strlen(fwd_kinds[k].kind)] == '\0' ||
                     watcher_name(a.w[i])[strlen(fwd_kinds[k].kind)] == '/') &&
                    !watcher_established(a.w[i]))
                    all = 0;
            metrics_watch_established(k, all);
        }
        if (r && !was_ready) {
            LOGJ(LOGL_INFO, "ready: every watch is established", "{s:I,s:I}", "watches",
                 (json_int_t)a.nw, "objects_known", (json_int_t)state_count(st));
        }
        was_ready = r;
        /* give memory back after a burst (initial LIST, webhook outage) */
        if (queue_depth(q) == 0 && queue_inflight(q) == 0) {
            if (!trimmed)
                malloc_trim(0);
            trimmed = 1;
        } else {
            trimmed = 0;
        }
    }

    /* Shutdown: stop watching, flush the queue within the grace period. */
    double t0 = fwd_mono();
    stop_flag = 1;
    queue_stop_waiting(q);
    /* Watchers stop within a second unless a request hangs on a dead API
     * server: give them half the grace period, then flush regardless. */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += cfg.grace_s / 2 > 0 ? cfg.grace_s / 2 : 1;
    size_t busy = 0;
    for (size_t i = 0; i < a.nw; i++)
        if (watcher_join_until(a.w[i], &dl) != 0)
            busy++;
    if (busy)
        LOGJ(LOGL_WARN, "watchers still busy at shutdown (API server unreachable?)", "{s:I}",
             "watchers", (json_int_t)busy);
    double left_s = (double)cfg.grace_s - (fwd_mono() - t0);
    queue_close(q);
    size_t left = queue_drain_wait(q, left_s > 0 ? left_s : 0);
    deliver_stop(d, left > 0);
    if (left)
        LOGJ(LOGL_ERROR, "grace period over: events not delivered (a restart with STATE_DIR re-derives them)",
             "{s:I}", "events", (json_int_t)left);
    ops_http_stop(http);
    LOGJ(LOGL_INFO, "stopped", "{s:I,s:f}", "undelivered", (json_int_t)left, "seconds",
         fwd_mono() - t0);
    if (busy) {   /* a watcher still uses the client, queue and state: no teardown */
        state_sync(st);
        return exit_code;
    }
    free(a.w);
    queue_free(q);
    state_close(st);
    k8s_client_free(kc);
    config_free(&cfg);
    log_clear_secrets();
    curl_global_cleanup();
    return exit_code;
}
