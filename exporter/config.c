/* config.c - environment and flags of ocpv-dr-status-exporter (config.h). */
#include "config.h"

#include "log.h"
#include "xstr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void exp_config_usage(FILE *f)
{
    fputs("usage: ocpv-dr-status-exporter [--once] [--check] [--help]\n"
          "Serves the protection status of the namespaces ocpv-dr protects (records on\n"
          "the DR cluster) as Prometheus metrics on /metrics, with /healthz and /readyz.\n"
          "  --once   read once, print one /metrics body on stdout, exit (1 if the read failed)\n"
          "  --check  validate the configuration and the connection, print it, exit\n"
          "Environment (defaults in brackets):\n"
          "  KUBECONFIG               DR cluster kubeconfig [in-cluster service account]\n"
          "  PRIMARY_KUBECONFIG       primary cluster kubeconfig, read-only [primary not read]\n"
          "  STATE_NAMESPACE          namespace of the ns-<namespace> records [ocpv-dr]\n"
          "  OADP_NAMESPACE           namespace of the Velero Backups on DR [openshift-adp]\n"
          "  SOURCE_CLUSTER           source_cluster label when a record names none []\n"
          "  PROTECTED_NAMESPACES     comma-separated [every namespace with a record or DR PV]\n"
          "  CACHE_SECONDS            re-read the DR records at most this often [30]\n"
          "  PRIMARY_CACHE_SECONDS    re-read the primary's claims at most this often [60]\n"
          "  REQUEST_TIMEOUT_SECONDS  per Kubernetes request [10]\n"
          "  DEFAULT_RPO_TARGET_S     RPO target where a record has none [7200]\n"
          "  DEFAULT_RTO_TARGET_S     RTO target where a record has none [3600]\n"
          "  DEFAULT_BACKUP_MAX_AGE_S backup age limit where a record has none [93600]\n"
          "  LISTEN_ADDRESS           host:port [0.0.0.0:9750]\n"
          "  LOG_LEVEL                debug|info|warn|error [info]\n", f);
}

static char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return xstrdup(v && *v ? v : def);
}

/* A whole number of seconds in [min, max]. */
static int env_long(const char *name, long def, long min, long max, long *out, char *err,
                    size_t errlen)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        snprintf(err, errlen, "%s: \"%s\" is not a whole number from %ld to %ld", name, v, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

static int split_namespaces(exp_config *c, const char *raw, char *err, size_t errlen)
{
    c->namespaces = calloc(strlen(raw ? raw : "") / 2 + 2, sizeof *c->namespaces);
    if (!c->namespaces) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *copy = xstrdup(raw ? raw : ""), *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *n = xstr_trim(t);
        if (!*n)
            continue;
        if (!xstr_dns_label(n)) {
            snprintf(err, errlen, "PROTECTED_NAMESPACES: \"%s\" is not a namespace name "
                     "(a DNS label: a-z, 0-9, '-', at most 63)", n);
            rc = -1;
            break;
        }
        bool dup = false;
        for (size_t i = 0; i < c->n_namespaces; i++)
            dup = dup || strcmp(c->namespaces[i], n) == 0;
        if (!dup)
            c->namespaces[c->n_namespaces++] = xstrdup(n);
    }
    free(copy);
    return rc;
}

static int readable(const char *what, const char *path, char *err, size_t errlen)
{
    if (path && access(path, R_OK) != 0) {
        snprintf(err, errlen, "%s: %s is not readable: %s", what, path, strerror(errno));
        return -1;
    }
    return 0;
}

int exp_config_load(exp_config *c, int argc, char **argv, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            exp_config_usage(stdout);
            return 1;
        } else if (!strcmp(argv[i], "--once")) {
            c->once = true;
        } else if (!strcmp(argv[i], "--check")) {
            c->check_only = true;
        } else {
            snprintf(err, errlen, "unknown argument \"%s\" (see --help)", argv[i]);
            return -1;
        }
    }
    const char *kc = getenv("KUBECONFIG"), *pkc = getenv("PRIMARY_KUBECONFIG");
    c->kubeconfig = kc && *kc ? xstrdup(kc) : NULL;
    c->primary_kubeconfig = pkc && *pkc ? xstrdup(pkc) : NULL;
    c->state_namespace = env_or("STATE_NAMESPACE", "ocpv-dr");
    c->oadp_namespace = env_or("OADP_NAMESPACE", "openshift-adp");
    const char *sc = getenv("SOURCE_CLUSTER");
    c->source_cluster = sc && *sc ? xstrdup(sc) : NULL;
    c->listen = env_or("LISTEN_ADDRESS", "0.0.0.0:9750");
    c->log_level = env_or("LOG_LEVEL", "info");
    long rpo, rto, bmax;
    if (env_long("CACHE_SECONDS", 30, 0, 86400, &c->cache_s, err, errlen)
        || env_long("PRIMARY_CACHE_SECONDS", 60, 0, 86400, &c->primary_cache_s, err, errlen)
        || env_long("REQUEST_TIMEOUT_SECONDS", 10, 1, 600, &c->timeout_s, err, errlen)
        || env_long("DEFAULT_RPO_TARGET_S", 7200, 1, 100L * 365 * 86400, &rpo, err, errlen)
        || env_long("DEFAULT_RTO_TARGET_S", 3600, 1, 100L * 365 * 86400, &rto, err, errlen)
        || env_long("DEFAULT_BACKUP_MAX_AGE_S", 93600, 1, 100L * 365 * 86400, &bmax, err, errlen))
        return -1;
    c->defaults = (dst_targets){ (double)rpo, (double)rto, (double)bmax };
    if (split_namespaces(c, getenv("PROTECTED_NAMESPACES"), err, errlen))
        return -1;
    if (!xstr_dns_label(c->state_namespace)) {
        snprintf(err, errlen, "STATE_NAMESPACE: \"%s\" is not a namespace name", c->state_namespace);
        return -1;
    }
    if (!xstr_dns_label(c->oadp_namespace)) {
        snprintf(err, errlen, "OADP_NAMESPACE: \"%s\" is not a namespace name", c->oadp_namespace);
        return -1;
    }
    if (!strchr(c->listen, ':')) {
        snprintf(err, errlen, "LISTEN_ADDRESS: \"%s\" is not host:port", c->listen);
        return -1;
    }
    log_level lv;
    if (log_level_parse(c->log_level, &lv) != 0) {
        snprintf(err, errlen, "LOG_LEVEL: \"%s\" is not debug, info, warn or error", c->log_level);
        return -1;
    }
    if (readable("KUBECONFIG", c->kubeconfig, err, errlen)
        || readable("PRIMARY_KUBECONFIG", c->primary_kubeconfig, err, errlen))
        return -1;
    return 0;
}

void exp_config_free(exp_config *c)
{
    free(c->kubeconfig);
    free(c->primary_kubeconfig);
    free(c->state_namespace);
    free(c->oadp_namespace);
    free(c->source_cluster);
    for (size_t i = 0; i < c->n_namespaces; i++)
        free(c->namespaces[i]);
    free(c->namespaces);
    free(c->listen);
    free(c->log_level);
    memset(c, 0, sizeof *c);
}

json_t *exp_config_summary(const exp_config *c)
{
    json_t *ns = json_array();
    for (size_t i = 0; i < c->n_namespaces; i++)
        json_array_append_new(ns, json_string(c->namespaces[i]));
    return json_pack("{s:s?,s:s?,s:s,s:s,s:s?,s:o,s:I,s:I,s:I,s:f,s:f,s:f,s:s}",
                     "kubeconfig", c->kubeconfig, "primary_kubeconfig", c->primary_kubeconfig,
                     "state_namespace", c->state_namespace, "oadp_namespace", c->oadp_namespace,
                     "source_cluster", c->source_cluster, "protected_namespaces", ns,
                     "cache_seconds", (json_int_t)c->cache_s,
                     "primary_cache_seconds", (json_int_t)c->primary_cache_s,
                     "request_timeout_seconds", (json_int_t)c->timeout_s,
                     "default_rpo_target_s", c->defaults.rpo_s,
                     "default_rto_target_s", c->defaults.rto_s,
                     "default_backup_max_age_s", c->defaults.backup_max_age_s,
                     "listen", c->listen);
}
