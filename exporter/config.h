/* config.h - ocpv-dr-status-exporter's configuration: environment variables
 * (exporter/README.md lists them with their defaults; a few flags for
 * one-shot use), validated up front so a bad setting fails at start with
 * one message naming the variable.  No secret is held here: the kubeconfig
 * files are read by the Kubernetes client. */
#ifndef OCPVDR_EXP_CONFIG_H
#define OCPVDR_EXP_CONFIG_H

#include "dr_status.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct exp_config {
    char *kubeconfig;          /* DR cluster; NULL = in-cluster service account */
    char *primary_kubeconfig;  /* NULL = the primary is not read */
    char *state_namespace;     /* where the ns-<namespace> ConfigMaps live */
    char *oadp_namespace;      /* where the Velero Backups live on DR */
    char *source_cluster;      /* label when a record does not name its source; NULL */
    char **namespaces;         /* PROTECTED_NAMESPACES, NULL-terminated; none = every
                                * namespace with a record or a managed DR PV */
    size_t n_namespaces;
    long cache_s;              /* DR records are re-read at most this often */
    long primary_cache_s;      /* the primary's claims at most this often */
    long timeout_s;            /* per Kubernetes request */
    dst_targets defaults;      /* when a record has no target.* */
    char *listen;              /* host:port of /metrics /healthz /readyz */
    char *log_level;
    bool once;                 /* --once: print one scrape on stdout, exit */
    bool check_only;           /* --check: validate, print the summary, exit */
} exp_config;

/* Parses argv and the environment.  0 on success; 1 when --help was printed
 * (exit 0); -1 with a message naming the variable in err. */
int exp_config_load(exp_config *c, int argc, char **argv, char *err, size_t errlen);
void exp_config_free(exp_config *c);
void exp_config_usage(FILE *f);
/* A JSON summary for the start-up log (paths and settings, no secret). */
json_t *exp_config_summary(const exp_config *c);

#endif
