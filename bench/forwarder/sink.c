/* sink.c - the benchmark's webhook receiver: a libmicrohttpd server that
 * accepts the forwarders' POSTs as fast as possible and writes one line per
 * request to stdout: "<receive time, epoch s> <type> <name> <step label>".
 * A Python receiver would be the bottleneck for the C forwarder, so the
 * latency sink is C.  Built by bench/forwarder/run (cc, no meson). */
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct body { char *p; size_t n; } body;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static enum MHD_Result on_req(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *len, void **con_cls)
{
    (void)cls; (void)url; (void)method; (void)version;
    body *b = *con_cls;
    if (!b) {
        *con_cls = calloc(1, sizeof *b);
        return MHD_YES;
    }
    if (*len) {
        b->p = realloc(b->p, b->n + *len + 1);
        memcpy(b->p + b->n, data, *len);
        b->n += *len;
        b->p[b->n] = '\0';
        *len = 0;
        return MHD_YES;
    }
    double t = now();
    json_t *j = b->p ? json_loadb(b->p, b->n, 0, NULL) : NULL;
    const char *type = json_string_value(json_object_get(j, "type"));
    json_t *res = json_object_get(j, "resource");
    json_t *md = json_object_get(res, "metadata");
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *step = json_string_value(json_object_get(json_object_get(md, "labels"), "step"));
    pthread_mutex_lock(&mu);
    printf("%.6f %s %s %s\n", t, type ? type : "-", name ? name : "-", step ? step : "-");
    pthread_mutex_unlock(&mu);
    json_decref(j);
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode t)
{
    (void)cls; (void)c; (void)t;
    body *b = *con_cls;
    if (b) {
        free(b->p);
        free(b);
    }
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
                                            (uint16_t)port, NULL, NULL, on_req, NULL,
                                            MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2,
                                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                                            MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "sink: cannot listen on %d\n", port);
        return 1;
    }
    fprintf(stderr, "%d\n", MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    int sig;
    sigwait(&s, &sig);
    MHD_stop_daemon(d);
    return 0;
}
