/* http.h - the operations endpoint (libmicrohttpd): GET /healthz (process is
 * alive and serving), GET /readyz (200 once every watch is established, else
 * 503 naming what is not), GET /metrics (Prometheus text). */
#ifndef OCPVDR_FWD_HTTP_H
#define OCPVDR_FWD_HTTP_H

#include <stddef.h>

/* Fills why (for the 503 body) and returns 1 when ready, 0 when not. */
typedef int (*http_ready_fn)(void *ud, char *why, size_t len);

typedef struct fwd_http fwd_http;

/* listen is "host:port" (IPv4 host, empty or 0.0.0.0 = all; port 0 = any free). */
fwd_http *http_start(const char *listen, http_ready_fn ready, void *ud, char *err, size_t errlen);
int http_port(fwd_http *h);
void http_stop(fwd_http *h);

#endif
