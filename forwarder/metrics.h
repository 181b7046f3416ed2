/* metrics.h - the forwarder's Prometheus metrics (lock-free counters) and
 * their text exposition for /metrics.  Names are listed in README.md. */
#ifndef OCPVDR_FWD_METRICS_H
#define OCPVDR_FWD_METRICS_H

#include <stddef.h>

/* Counters by kind x event type. */
enum { M_SEEN = 0, M_FORWARDED, M_COALESCED, M_DROPPED, M_FILTERED, M_DEAD_LETTERED, M_NCOUNTERS };
/* Counters by kind. */
enum { K_WATCH_RESTARTS = 0, K_RELISTS, K_WATCH_ERRORS, K_NKCOUNTERS };
/* Webhook error reasons. */
enum { W_TRANSPORT = 0, W_TIMEOUT, W_HTTP_4XX, W_HTTP_5XX, W_NREASONS };
/* Gauges. */
enum { G_QUEUE_DEPTH = 0, G_INFLIGHT, G_READY, G_STALLED, G_NGAUGES };

void metrics_count(int counter, int kind, int type);
void metrics_kind_count(int counter, int kind);
void metrics_webhook_error(int reason);
void metrics_webhook_latency(double seconds);    /* one successful POST */
void metrics_event_latency(double seconds);      /* observed -> delivered */
void metrics_gauge_set(int gauge, double v);
void metrics_watch_established(int kind, int established);

unsigned long long metrics_get(int counter, int kind, int type);

/* Prometheus text format 0.0.4; malloc'd. */
char *metrics_render(size_t *len);

#endif
