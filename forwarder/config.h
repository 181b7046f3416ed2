/* config.h - the forwarder's configuration: environment variables (the
 * names the spec uses: WATCH_NAMESPACES, WEBHOOK_URL, WEBHOOK_TOKEN) and the
 * equivalent command-line flags, validated up front so a bad setting fails
 * at start with a message naming the variable.  Secrets (token, HMAC secret)
 * can come from files and are registered with the log scrubber.  A plain
 * http:// webhook is refused unless WEBHOOK_ALLOW_INSECURE_HTTP says so, and
 * every transport without verified TLS is named in a WARN line at start. */
#ifndef OCPVDR_FWD_CONFIG_H
#define OCPVDR_FWD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <openssl/evp.h>

typedef struct fwd_config {
    /* webhook */
    char *webhook_url;
    char *token;               /* secret */
    char *token_file;
    char *hmac_secret;         /* secret */
    char *hmac_secret_file;
    char *hmac_algo;           /* ansible-rulebook hmac_algo, default sha256 */
    char *hmac_header;         /* hmac_header, default x-hub-signature-256 */
    char *hmac_format;         /* hmac_format: hex | base64 */
    char *ca_bundle, *client_cert, *client_key;
    bool webhook_verify_tls;
    bool allow_insecure_http;  /* a plain http:// WEBHOOK_URL is refused without it */
    long webhook_timeout_ms;
    long parallel;             /* delivery workers */
    long backoff_min_ms, backoff_max_ms;
    long reject_attempts;      /* attempts for an event the webhook rejects (4xx) */
    long stall_s;              /* an event retried longer: delivery stalled (/readyz) */
    long queue_max;
    /* what to watch */
    char *namespaces_raw;
    char **namespaces;         /* NULL-terminated; empty = all */
    size_t n_namespaces;
    char *resources_raw;
    unsigned kinds_mask;       /* bit per FWD_* kind */
    long list_page_size;
    char *initial_sync;        /* "stream" (WatchList, falls back to list) or "list" */
    long watch_timeout_s;
    /* Kubernetes connection (empty = in-cluster, then KUBECONFIG / K8S_AUTH_*) */
    char *kubeconfig, *context;
    /* identity, state, operations */
    char *cluster_name;
    char *state_dir;
    char *log_level;
    char *listen;              /* host:port of /healthz /readyz /metrics */
    long grace_s;
    bool check_only;
} fwd_config;

/* Parses argv then the environment (flags win).  Returns 0 on success;
 * 1 when --help was printed (exit 0); -1 with a message in err. */
int config_load(fwd_config *c, int argc, char **argv, char *err, size_t errlen);
/* Semantic checks (URL, files readable, HMAC algorithm known, state dir
 * writable, namespaces valid...).  0 or -1 with err. */
int config_validate(fwd_config *c, char *err, size_t errlen);
void config_free(fwd_config *c);
void config_usage(FILE *f);
/* WEBHOOK_URL is plain http://. */
bool config_plain_http(const fwd_config *c);
/* The OpenSSL digest for an ansible-rulebook hmac_algo (hashlib) name; NULL. */
const EVP_MD *config_hmac_md(const char *algo);
/* The start-up warnings about transport security, one {"msg", "setting"}
 * object each: webhook TLS verification off, plain http allowed, and for
 * the Kubernetes connection (api_server: its URL, api_insecure: TLS
 * verification skipped) the same.  An empty array when all is verified TLS. */
struct json_t;
struct json_t *config_transport_warnings(const fwd_config *c, const char *api_server,
                                         bool api_insecure);
/* A JSON-able summary for the start-up log (no secrets, only whether set). */
struct json_t *config_summary(const fwd_config *c);

#endif
