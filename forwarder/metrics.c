/* metrics.c - counters, gauges and histograms, rendered as Prometheus text. */
#include "metrics.h"

#include "event.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic unsigned long long counters[M_NCOUNTERS][FWD_NKINDS][EV_NTYPES];
static _Atomic unsigned long long kcounters[K_NKCOUNTERS][FWD_NKINDS];
static _Atomic unsigned long long werrors[W_NREASONS];
static _Atomic int established[FWD_NKINDS];
static double gauges[G_NGAUGES];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static const double buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                  0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define NB (sizeof buckets / sizeof buckets[0])
typedef struct hist { unsigned long long b[NB], count; double sum; } hist;
static hist h_webhook, h_event;

void metrics_count(int c, int kind, int type)
{
    if (c >= 0 && c < M_NCOUNTERS && kind >= 0 && kind < FWD_NKINDS && type >= 0 && type < EV_NTYPES)
        atomic_fetch_add(&counters[c][kind][type], 1);
}

void metrics_kind_count(int c, int kind)
{
    if (c >= 0 && c < K_NKCOUNTERS && kind >= 0 && kind < FWD_NKINDS)
        atomic_fetch_add(&kcounters[c][kind], 1);
}

void metrics_webhook_error(int r)
{
    if (r >= 0 && r < W_NREASONS)
        atomic_fetch_add(&werrors[r], 1);
}

static void observe(hist *h, double s)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < NB; i++)
        if (s <= buckets[i])
            h->b[i]++;
    h->count++;
    h->sum += s;
    pthread_mutex_unlock(&mu);
}

void metrics_webhook_latency(double s) { observe(&h_webhook, s); }
void metrics_event_latency(double s) { observe(&h_event, s); }

void metrics_gauge_set(int g, double v)
{
    if (g < 0 || g >= G_NGAUGES)
        return;
    pthread_mutex_lock(&mu);
    gauges[g] = v;
    pthread_mutex_unlock(&mu);
}

void metrics_watch_established(int kind, int e)
{
    if (kind >= 0 && kind < FWD_NKINDS)
        atomic_store(&established[kind], e);
}

unsigned long long metrics_get(int c, int kind, int type)
{
    return atomic_load(&counters[c][kind][type]);
}

typedef struct sbuf { char *p; size_t len, cap; } sbuf;

__attribute__((format(printf, 2, 3)))
static void add(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 8192) + (size_t)n;
        char *np = realloc(b->p, ncap);
        if (!np)
            return;
        b->p = np;
        b->cap = ncap;
    }
}

static void render_hist(sbuf *b, const char *name, const char *help, const hist *h)
{
    add(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < NB; i++)
        add(b, "%s_bucket{le=\"%g\"} %llu\n", name, buckets[i], h->b[i]);
    add(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, h->count,
        name, h->sum, name, h->count);
}

char *metrics_render(size_t *len)
{
    static const char *const cnames[M_NCOUNTERS][2] = {
        { "ocpvdr_forwarder_events_seen_total", "Events received from the API server (watch and relist diffs)." },
        { "ocpvdr_forwarder_events_forwarded_total", "Events delivered to the webhook (2xx)." },
        { "ocpvdr_forwarder_events_coalesced_total", "Events merged into a pending event of the same object." },
        { "ocpvdr_forwarder_events_dropped_total", "Events not delivered before the shutdown grace period ended." },
        { "ocpvdr_forwarder_events_filtered_total", "Events not forwarded: namespace not watched or no significant change." },
        { "ocpvdr_forwarder_events_dead_lettered_total", "Events the webhook refused as such (4xx other than 401/403/408/429) WEBHOOK_REJECT_ATTEMPTS times: logged and given up." },
    };
    static const char *const knames[K_NKCOUNTERS][2] = {
        { "ocpvdr_forwarder_watch_restarts_total", "Watch requests resumed after the stream ended or failed." },
        { "ocpvdr_forwarder_relists_total", "Full LISTs (start, 410 Gone) diffed against known state." },
        { "ocpvdr_forwarder_watch_errors_total", "Failed LIST/WATCH requests." },
    };
    static const char *const wnames[W_NREASONS] = { "transport", "timeout", "http_4xx", "http_5xx" };
    sbuf b = { 0 };
    for (int c = 0; c < M_NCOUNTERS; c++) {
        add(&b, "# HELP %s %s\n# TYPE %s counter\n", cnames[c][0], cnames[c][1], cnames[c][0]);
        for (int k = 0; k < FWD_NKINDS; k++)
            for (int t = 0; t < EV_NTYPES; t++)
                add(&b, "%s{kind=\"%s\",type=\"%s\"} %llu\n", cnames[c][0], fwd_kinds[k].kind,
                    fwd_type_names[t], atomic_load(&counters[c][k][t]));
    }
    for (int c = 0; c < K_NKCOUNTERS; c++) {
        add(&b, "# HELP %s %s\n# TYPE %s counter\n", knames[c][0], knames[c][1], knames[c][0]);
        for (int k = 0; k < FWD_NKINDS; k++)
            add(&b, "%s{kind=\"%s\"} %llu\n", knames[c][0], fwd_kinds[k].kind,
                atomic_load(&kcounters[c][k]));
    }
    add(&b, "# HELP ocpvdr_forwarder_webhook_errors_total Failed webhook POSTs (each is retried).\n"
            "# TYPE ocpvdr_forwarder_webhook_errors_total counter\n");
    for (int r = 0; r < W_NREASONS; r++)
        add(&b, "ocpvdr_forwarder_webhook_errors_total{reason=\"%s\"} %llu\n", wnames[r],
            atomic_load(&werrors[r]));
    add(&b, "# HELP ocpvdr_forwarder_watch_established Whether the watch of a kind is established (1) or not (0).\n"
            "# TYPE ocpvdr_forwarder_watch_established gauge\n");
    for (int k = 0; k < FWD_NKINDS; k++)
        add(&b, "ocpvdr_forwarder_watch_established{kind=\"%s\"} %d\n", fwd_kinds[k].kind,
            atomic_load(&established[k]));
    pthread_mutex_lock(&mu);
    add(&b, "# HELP ocpvdr_forwarder_queue_depth Events waiting for delivery.\n"
            "# TYPE ocpvdr_forwarder_queue_depth gauge\nocpvdr_forwarder_queue_depth %g\n",
        gauges[G_QUEUE_DEPTH]);
    add(&b, "# HELP ocpvdr_forwarder_inflight Webhook POSTs in flight.\n"
            "# TYPE ocpvdr_forwarder_inflight gauge\nocpvdr_forwarder_inflight %g\n",
        gauges[G_INFLIGHT]);
    add(&b, "# HELP ocpvdr_forwarder_ready 1 once every watch is established and delivery is not stalled.\n"
            "# TYPE ocpvdr_forwarder_ready gauge\nocpvdr_forwarder_ready %g\n", gauges[G_READY]);
    add(&b, "# HELP ocpvdr_forwarder_delivery_stalled 1 while an event has been failing for longer than DELIVERY_STALL_SECONDS.\n"
            "# TYPE ocpvdr_forwarder_delivery_stalled gauge\nocpvdr_forwarder_delivery_stalled %g\n",
        gauges[G_STALLED]);
    render_hist(&b, "ocpvdr_forwarder_webhook_request_seconds",
                "Duration of successful webhook POSTs.", &h_webhook);
    render_hist(&b, "ocpvdr_forwarder_event_delivery_seconds",
                "Time from the forwarder observing an event to its delivery.", &h_event);
    pthread_mutex_unlock(&mu);
    if (len)
        *len = b.len;
    return b.p;
}
