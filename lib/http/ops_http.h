/* ops_http.h - the operations endpoint of a long-running ocpv-dr process
 * (libmicrohttpd): GET /healthz (process alive and serving), GET /readyz
 * (200 when the process says it is ready, else 503 naming what is not),
 * GET /metrics (Prometheus text from the process's render callback).  Used
 * by the event forwarder (forwarder/) and the status exporter (exporter/);
 * each brings its own readiness rule and metrics. */
#ifndef OCPVDR_OPS_HTTP_H
#define OCPVDR_OPS_HTTP_H

#include <stddef.h>

/* Fills why (for the 503 body) and returns 1 when ready, 0 when not. */
typedef int (*ops_http_ready_fn)(void *ud, char *why, size_t len);
/* The /metrics body (Prometheus text format 0.0.4), malloc'd, its length in
 * *len; NULL = cannot render now (the scrape gets a 500). */
typedef char *(*ops_http_metrics_fn)(void *ud, size_t *len);

typedef struct ops_http_handlers {
    ops_http_ready_fn ready;       /* NULL: always ready */
    ops_http_metrics_fn metrics;   /* NULL: /metrics is 404 */
    void *ud;                      /* passed to both */
} ops_http_handlers;

typedef struct ops_http ops_http;

/* listen is "host:port" (IPv4 host, empty or 0.0.0.0 = all; port 0 = any
 * free).  The handlers are copied.  NULL with a message naming
 * LISTEN_ADDRESS in err when the address is bad or the port is taken. */
ops_http *ops_http_start(const char *listen, const ops_http_handlers *h, char *err, size_t errlen);
int ops_http_port(ops_http *h);
void ops_http_stop(ops_http *h);

#endif
