/* scripted_http.h - a scripted local HTTP server for C unit tests (a thread
 * in the test process): one canned raw response per connection, in order,
 * the request line of each connection kept.  For answers a real apiserver
 * will not give on demand (503 + Retry-After, 409 after 409, a 200 that is
 * not a list).  Used by test_k8s.c and test_drstate.c; the verbs themselves
 * are tested against the lab's real apiservers.  Include after <cmocka.h>. */
#ifndef OCPVDR_TEST_SCRIPTED_HTTP_H
#define OCPVDR_TEST_SCRIPTED_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "k8s.h"

/* ---- scripted HTTP server ----------------------------------------------- */

typedef struct script {
    int fd;
    int port;
    const char *const *responses;   /* one raw response per connection */
    int served;
    char last_request[4096];
    char lines[16][300];            /* the request line of each connection */
    long long t_first, t_second;    /* ms timestamps of the first two requests */
    size_t piece;                   /* bytes per send (0: 7, with a pause) */
} script;

static inline long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void *serve(void *ud)
{
    script *s = ud;
    for (const char *const *r = s->responses; *r; r++) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        char req[4096];
        ssize_t n = recv(c, req, sizeof req - 1, 0);
        if (n > 0) {
            req[n] = '\0';
            snprintf(s->last_request, sizeof s->last_request, "%s", req);
            if (s->served < 16)
                snprintf(s->lines[s->served], sizeof s->lines[0], "%.*s",
                         (int)strcspn(req, "\r\n"), req);
        }
        if (s->served == 0)
            s->t_first = now_ms();
        else if (s->served == 1)
            s->t_second = now_ms();
        s->served++;
        /* write in small pieces so line splitting is exercised */
        const char *p = *r;
        size_t left = strlen(p);
        while (left) {
            size_t k = left < (s->piece ? s->piece : 7) ? left : (s->piece ? s->piece : 7);
            if (send(c, p, k, MSG_NOSIGNAL) < 0)
                break;
            p += k;
            left -= k;
            if (!s->piece)
                usleep(200);
        }
        close(c);
    }
    return NULL;
}

static inline void start_server(script *s, pthread_t *th)
{
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    socklen_t l = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &l);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(th, NULL, serve, s), 0);
}

/* A client of the scripted server s, with this config (NULL: 3 retries, 5 s). */
static inline k8s_client *client_cfg(script *s, const char *token, const k8s_config *cfg)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s->port);
    k8s_conn conn = { .host = url, .api_key = token, .validate_certs = -1,
                      .allow_insecure_http = true };   /* the scripted server is plain http */
    static const k8s_config dflt = { .max_retries = 3, .timeout_ms = 5000 };
    k8s_error e;
    k8s_client *c = k8s_client_new(&conn, cfg ? cfg : &dflt, &e);
    assert_non_null(c);
    return c;
}

static inline k8s_client *client_for(script *s, const char *token)
{
    return client_cfg(s, token, NULL);
}

#define CLOSE "Connection: close\r\n"

#endif
