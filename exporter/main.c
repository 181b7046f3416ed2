/* main.c - ocpv-dr-status-exporter: serves the protection status of the
 * namespaces ocpv-dr protects, computed from the records on the DR cluster
 * (issue #16; docs/status.md), as Prometheus metrics.  Runs on the DR
 * cluster (the primary may be gone exactly when the status matters), reads
 * the primary's claims only when PRIMARY_KUBECONFIG is given.  Wires the
 * configuration, the Kubernetes clients, the cache (collect.h) and the
 * operations endpoint (lib/http ops_http.h); stops on SIGTERM/SIGINT. */
#include "collect.h"
#include "config.h"
#include "k8s.h"
#include "log.h"
#include "ops_http.h"
#include "read.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef OCPVDR_VERSION
#define OCPVDR_VERSION "unknown"
#endif

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *metrics(void *ud, size_t *len)
{
    return exp_collector_scrape(ud, time(NULL), mono_now(), len);
}

static int ready(void *ud, char *why, size_t len)
{
    return exp_collector_ready(ud, why, len);
}

/* A client for one cluster: kubeconfig (NULL = in-cluster service account,
 * then the usual KUBECONFIG/K8S_AUTH_* fallbacks of k8s_conn_from_env). */
static k8s_client *client(const char *what, const char *kubeconfig, long timeout_s,
                          int retries, char *err, size_t errlen)
{
    k8s_conn conn = { .kubeconfig = kubeconfig, .validate_certs = -1 };
    if (!kubeconfig)
        k8s_conn_from_env(&conn);
    k8s_config kcfg = { .max_retries = retries, .timeout_ms = timeout_s * 1000,
                        .connect_timeout_ms = timeout_s * 1000 < 5000 ? timeout_s * 1000 : 5000,
                        .max_in_flight = 4, .user_agent = "ocpv-dr-status-exporter/" OCPVDR_VERSION };
    k8s_error kerr;
    memset(&kerr, 0, sizeof kerr);
    k8s_client *c = k8s_client_new(&conn, &kcfg, &kerr);
    if (!c) {
        char buf[1400];
        snprintf(err, errlen, "%s: %s", what, k8s_strerror(&kerr, buf, sizeof buf));
    }
    return c;
}

static int fail_config(const char *err)
{
    char *clean = log_scrub(err);
    fprintf(stderr, "ocpv-dr-status-exporter: configuration error: %s\n", clean ? clean : err);
    free(clean);
    return 2;
}

int main(int argc, char **argv)
{
    exp_config cfg;
    char err[1600] = "";
    log_set_component("status-exporter");
    int rc = exp_config_load(&cfg, argc, argv, err, sizeof err);
    if (rc == 1) {
        exp_config_free(&cfg);
        return 0;
    }
    if (rc != 0) {
        exp_config_free(&cfg);
        return fail_config(err);
    }
    log_level lv = LOGL_INFO;
    log_level_parse(cfg.log_level, &lv);
    log_set_level(lv);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    exp_clients cl = { .cfg = &cfg };
    int code = 0;
    ops_http *http = NULL;
    exp_collector *col = NULL;
    cl.dr = client("KUBECONFIG (DR cluster)", cfg.kubeconfig, cfg.timeout_s, 2, err, sizeof err);
    /* the primary may be gone: short, one retry */
    if (cl.dr && cfg.primary_kubeconfig)
        cl.primary = client("PRIMARY_KUBECONFIG", cfg.primary_kubeconfig,
                            cfg.timeout_s < 5 ? cfg.timeout_s : 5, 1, err, sizeof err);
    if (!cl.dr || (cfg.primary_kubeconfig && !cl.primary)) {
        code = fail_config(err);
        goto out;
    }
    col = exp_collector_new(&cfg, exp_read_dr, cl.primary ? exp_read_primary : NULL, &cl,
                            OCPVDR_VERSION);
    if (!col) {
        code = 1;
        goto out;
    }
    if (cfg.check_only || cfg.once) {
        int ok = exp_collector_prime(col, mono_now()) == 0;
        if (cfg.check_only) {
            json_t *sum = exp_config_summary(&cfg);
            json_object_set_new(sum, "api_server", json_string(k8s_client_server(cl.dr)));
            json_object_set_new(sum, "dr_read", json_boolean(ok));
            char *s = json_dumps(sum, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            printf("%s\n%s\n", ok ? "configuration OK" : "configuration OK, DR read FAILED",
                   s ? s : "");
            free(s);
            json_decref(sum);
        } else {
            size_t len = 0;
            char *body = exp_collector_scrape(col, time(NULL), mono_now(), &len);
            if (body)
                fwrite(body, 1, len, stdout);
            free(body);
        }
        code = ok ? 0 : 1;
        goto out;
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    json_t *sum = exp_config_summary(&cfg);
    json_object_set_new(sum, "api_server", json_string(k8s_client_server(cl.dr)));
    json_object_set_new(sum, "version", json_string(OCPVDR_VERSION));
    log_j(LOGL_INFO, "starting", sum);
    if (k8s_client_tls_unverified(cl.dr))
        LOG0(LOGL_WARN, "TLS verification of the DR API server is off (kubeconfig "
                        "insecure-skip-tls-verify)");
    if (cl.primary && k8s_client_tls_unverified(cl.primary))
        LOG0(LOGL_WARN, "TLS verification of the primary API server is off (kubeconfig "
                        "insecure-skip-tls-verify)");
    exp_collector_prime(col, mono_now());   /* ready before the first scrape when it can */
    ops_http_handlers hh = { .ready = ready, .metrics = metrics, .ud = col };
    http = ops_http_start(cfg.listen, &hh, err, sizeof err);
    if (!http) {
        LOGJ(LOGL_ERROR, "cannot start", "{s:s}", "error", err);
        code = 1;
        goto out;
    }
    LOGJ(LOGL_INFO, "serving /metrics /healthz /readyz", "{s:s,s:i}", "listen", cfg.listen,
         "port", ops_http_port(http));
    for (;;) {
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig == SIGTERM || sig == SIGINT) {
            LOGJ(LOGL_INFO, "signal received: stopping", "{s:s}", "signal",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
    }
out:
    ops_http_stop(http);
    exp_collector_free(col);
    k8s_client_free(cl.primary);
    k8s_client_free(cl.dr);
    exp_config_free(&cfg);
    log_clear_secrets();
    curl_global_cleanup();
    return code;
}
