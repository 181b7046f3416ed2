/* ops_http.c - /healthz, /readyz and /metrics on libmicrohttpd (see ops_http.h). */
#include "ops_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ops_http {
    struct MHD_Daemon *d;
    ops_http_handlers h;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

#define CONST_BODY(s) (char *)(s), sizeof(s) - 1, MHD_RESPMEM_PERSISTENT

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    ops_http *h = cls;
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)con_cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, 405, "text/plain", CONST_BODY("method not allowed\n"));
    if (!strcmp(url, "/healthz"))
        return reply(c, 200, "text/plain", CONST_BODY("ok\n"));
    if (!strcmp(url, "/readyz")) {
        char why[1024] = "";
        int ok = h->h.ready ? h->h.ready(h->h.ud, why, sizeof why) : 1;
        char *body = NULL;
        int n = asprintf(&body, "%s%s%s\n", ok ? "ready" : "not ready", *why ? ": " : "", why);
        if (n < 0)
            return MHD_NO;
        return reply(c, ok ? 200 : 503, "text/plain", body, (size_t)n, MHD_RESPMEM_MUST_FREE);
    }
    if (!strcmp(url, "/metrics") && h->h.metrics) {
        size_t len = 0;
        char *body = h->h.metrics(h->h.ud, &len);
        if (!body)
            return reply(c, 500, "text/plain", CONST_BODY("metrics cannot be rendered\n"));
        return reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len,
                     MHD_RESPMEM_MUST_FREE);
    }
    return reply(c, 404, "text/plain", CONST_BODY("not found\n"));
}

ops_http *ops_http_start(const char *listen, const ops_http_handlers *hd, char *err, size_t errlen)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon) {
        snprintf(err, errlen, "LISTEN_ADDRESS: \"%s\" is not host:port", listen ? listen : "");
        return NULL;
    }
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535) {
        snprintf(err, errlen, "LISTEN_ADDRESS: \"%s\" has no port 0-65535", listen);
        return NULL;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    char host[64];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host)
        hl = sizeof host - 1;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    if (!*host)
        strcpy(host, "0.0.0.0");
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "LISTEN_ADDRESS: \"%s\" is not an IPv4 address", host);
        return NULL;
    }
    ops_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (hd)
        h->h = *hd;
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            handle, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "LISTEN_ADDRESS: cannot listen on %s (port in use?)", listen);
        free(h);
        return NULL;
    }
    return h;
}

int ops_http_port(ops_http *h)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : 0;
}

void ops_http_stop(ops_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
