/* config.c - forwarder settings from flags and environment (see config.h).
 * One table row per option (flag, environment variable, type, default, help,
 * numeric range) drives parsing, defaults, range checks and --help; only
 * checks across options and of the outside world are written out in
 * config_validate(). */
#include "config.h"

#include "kinds.h"
#include "log.h"
#include "xstr.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum otype { T_STR, T_SECRET, T_LONG, T_BOOL, T_FLAG };

typedef struct opt {
    const char *flag;    /* --webhook-url */
    const char *env;     /* WEBHOOK_URL */
    enum otype type;
    size_t off;
    const char *def;
    const char *help;
    long min, max;       /* T_LONG: allowed range (max 0 = no upper bound) */
} opt;

#define O(f) offsetof(fwd_config, f)
static const opt opts[] = {
    { "webhook-url", "WEBHOOK_URL", T_STR, O(webhook_url), NULL,
      "URL of the ansible-rulebook webhook source (http:// or https://). Required.", 0, 0 },
    { "webhook-token", "WEBHOOK_TOKEN", T_SECRET, O(token), NULL,
      "Bearer token (the webhook source's `token`). Sent as `Authorization: Bearer`.", 0, 0 },
    { "webhook-token-file", "WEBHOOK_TOKEN_FILE", T_STR, O(token_file), NULL,
      "File holding the token (e.g. a mounted Secret); exclusive with WEBHOOK_TOKEN.", 0, 0 },
    { "hmac-secret", "WEBHOOK_HMAC_SECRET", T_SECRET, O(hmac_secret), NULL,
      "HMAC secret (the webhook source's `hmac_secret`); signs each body when set.", 0, 0 },
    { "hmac-secret-file", "WEBHOOK_HMAC_SECRET_FILE", T_STR, O(hmac_secret_file), NULL,
      "File holding the HMAC secret; exclusive with WEBHOOK_HMAC_SECRET.", 0, 0 },
    { "hmac-algo", "WEBHOOK_HMAC_ALGO", T_STR, O(hmac_algo), "sha256",
      "HMAC digest, as `hmac_algo` (hashlib names: sha256, sha512, sha1, sha3_256...).", 0, 0 },
    { "hmac-header", "WEBHOOK_HMAC_HEADER", T_STR, O(hmac_header), "x-hub-signature-256",
      "Header carrying the signature, as `hmac_header`.", 0, 0 },
    { "hmac-format", "WEBHOOK_HMAC_FORMAT", T_STR, O(hmac_format), "hex",
      "Signature encoding, as `hmac_format`: hex or base64.", 0, 0 },
    { "webhook-ca-bundle", "WEBHOOK_CA_BUNDLE", T_STR, O(ca_bundle), NULL,
      "PEM CA bundle to verify the webhook's TLS certificate.", 0, 0 },
    { "webhook-client-cert", "WEBHOOK_CLIENT_CERT", T_STR, O(client_cert), NULL,
      "PEM client certificate for mutual TLS (with WEBHOOK_CLIENT_KEY).", 0, 0 },
    { "webhook-client-key", "WEBHOOK_CLIENT_KEY", T_STR, O(client_key), NULL,
      "PEM private key of the client certificate.", 0, 0 },
    { "webhook-verify-tls", "WEBHOOK_VERIFY_TLS", T_BOOL, O(webhook_verify_tls), "true",
      "Verify the webhook's TLS certificate and host name.", 0, 0 },
    { "allow-insecure-http", "WEBHOOK_ALLOW_INSECURE_HTTP", T_FLAG, O(allow_insecure_http), "false",
      "Accept a plain http:// WEBHOOK_URL: the bearer token and every event then cross the "
      "network in clear text (a WARN line says so at start). Without it http:// is refused.", 0, 0 },
    { "webhook-timeout-ms", "WEBHOOK_TIMEOUT_MS", T_LONG, O(webhook_timeout_ms), "10000",
      "Timeout of one POST (connect + response); a timeout is retried.", 1, 0 },
    { "parallel", "WEBHOOK_PARALLEL", T_LONG, O(parallel), "4",
      "Delivery workers: POSTs in flight at once (each object stays in order).", 1, 256 },
    { "backoff-min-ms", "WEBHOOK_BACKOFF_MIN_MS", T_LONG, O(backoff_min_ms), "200",
      "First retry delay after a failed POST (doubles, with jitter).", 1, 0 },
    { "backoff-max-ms", "WEBHOOK_BACKOFF_MAX_MS", T_LONG, O(backoff_max_ms), "30000",
      "Longest retry delay (a 429/503's Retry-After is honoured up to 120 s).", 1, 0 },
    { "reject-attempts", "WEBHOOK_REJECT_ATTEMPTS", T_LONG, O(reject_attempts), "3",
      "Attempts for an event the webhook rejects as such (413, 422): after this many it is "
      "dead-lettered - logged with kind, namespace, name and resourceVersion, counted in "
      "events_dead_lettered_total - and the object's next events flow. Any other 4xx (a wrong "
      "path, credentials, a signature header), 5xx and transport errors are retried until "
      "delivered (a stall shows in /readyz).", 1, 100 },
    { "stall-seconds", "DELIVERY_STALL_SECONDS", T_LONG, O(stall_s), "120",
      "An event still failing after this long means delivery is stalled: /readyz answers "
      "503 naming it, ocpvdr_forwarder_delivery_stalled is 1.", 1, 0 },
    { "queue-max", "QUEUE_MAX", T_LONG, O(queue_max), "2048",
      "Pending events bound. Events for an object already queued coalesce to its latest "
      "state; when full, watchers wait (nothing is dropped).", 1, 0 },
    { "namespaces", "WATCH_NAMESPACES", T_STR, O(namespaces_raw), "",
      "Comma list of namespaces for PVCs and VolumeSnapshots; empty = all.", 0, 0 },
    { "resources", "WATCH_RESOURCES", T_STR, O(resources_raw), "pv,pvc,vs,vsc",
      "Comma list of kinds to watch: pv, pvc, vs, vsc (or plural / Kind names).", 0, 0 },
    { "initial-sync", "INITIAL_SYNC", T_STR, O(initial_sync), "stream",
      "How a watch gets the existing objects (at start and after 410 Gone): stream = "
      "one WATCH with sendInitialEvents (Kubernetes >= 1.32, served from the API "
      "server's watch cache; falls back to list when the server refuses it), list = "
      "paginated LIST, then WATCH.", 0, 0 },
    { "list-page-size", "LIST_PAGE_SIZE", T_LONG, O(list_page_size), "500",
      "Objects per LIST page (initial-sync=list, or the fallback).", 1, 0 },
    { "watch-timeout", "WATCH_TIMEOUT_SECONDS", T_LONG, O(watch_timeout_s), "300",
      "Server-side timeout of one WATCH request (it is then resumed).", 1, 0 },
    { "kubeconfig", "KUBECONFIG", T_STR, O(kubeconfig), NULL,
      "Kubeconfig file. API connection order: K8S_AUTH_HOST (+K8S_AUTH_API_KEY / certs), "
      "KUBECONFIG, in-cluster service account, ~/.kube/config.", 0, 0 },
    { "context", "K8S_AUTH_CONTEXT", T_STR, O(context), NULL,
      "Kubeconfig context.", 0, 0 },
    { "cluster-name", "CLUSTER_NAME", T_STR, O(cluster_name), "primary",
      "Source cluster name put in every payload (`cluster`).", 0, 0 },
    { "state-dir", "STATE_DIR", T_STR, O(state_dir), NULL,
      "Directory for the delivered-state journal; with it a restart emits what was "
      "missed (deletions included). Unset: no persistence.", 0, 0 },
    { "log-level", "LOG_LEVEL", T_STR, O(log_level), "info",
      "debug, info, warn or error.", 0, 0 },
    { "listen", "LISTEN_ADDRESS", T_STR, O(listen), "0.0.0.0:8080",
      "host:port serving /healthz, /readyz and /metrics.", 0, 0 },
    { "grace", "SHUTDOWN_GRACE_SECONDS", T_LONG, O(grace_s), "20",
      "On SIGTERM/SIGINT: time allowed to flush the queue before exiting.", 0, 0 },
    { "check-config", NULL, T_FLAG, O(check_only), NULL,
      "Validate the configuration (and reach nothing), print a summary, exit 0/2.", 0, 0 },
    { 0 }
};

void config_usage(FILE *f)
{
    fprintf(f,
        "Usage: ocpv-dr-forwarder [--flag=value ...]\n"
        "Watches PersistentVolumes, PersistentVolumeClaims, VolumeSnapshots and\n"
        "VolumeSnapshotContents and POSTs every event to an ansible-rulebook webhook.\n"
        "Every flag has an environment variable; a flag wins over its variable.\n\n");
    for (const opt *o = opts; o->flag; o++) {
        fprintf(f, "  --%-22s %-26s %s", o->flag, o->env ? o->env : "", o->help);
        if (o->type == T_LONG && o->max)
            fprintf(f, " [%ld..%ld]", o->min, o->max);
        else if (o->type == T_LONG && o->min)
            fprintf(f, " [>= %ld]", o->min);
        if (o->def && *o->def)
            fprintf(f, " [default: %s]", o->def);
        fputc('\n', f);
    }
    fprintf(f, "  --%-22s %-26s %s\n", "help", "", "Print this help and exit.");
}

static int set_value(fwd_config *c, const opt *o, const char *v, char *err, size_t errlen)
{
    char *base = (char *)c + o->off;
    const char *name = o->env ? o->env : o->flag;
    switch (o->type) {
    case T_STR:
    case T_SECRET: {
        char **p = (char **)base;
        free(*p);
        *p = strdup(v);
        if (o->type == T_SECRET)
            log_add_secret(v);
        return 0;
    }
    case T_LONG: {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < 0) {
            snprintf(err, errlen, "%s (--%s): \"%s\" is not a non-negative integer",
                     name, o->flag, v);
            return -1;
        }
        if (n < o->min || (o->max && n > o->max)) {
            if (o->max)
                snprintf(err, errlen, "%s (--%s): %ld is out of range %ld..%ld", name, o->flag,
                         n, o->min, o->max);
            else
                snprintf(err, errlen, "%s (--%s): %ld is below the minimum %ld", name, o->flag,
                         n, o->min);
            return -1;
        }
        *(long *)base = n;
        return 0;
    }
    case T_BOOL:
    case T_FLAG:
        if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
            !strcasecmp(v, "on"))
            *(bool *)base = true;
        else if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
                 !strcasecmp(v, "off"))
            *(bool *)base = false;
        else {
            snprintf(err, errlen, "%s (--%s): \"%s\" is not a boolean (true/false)",
                     name, o->flag, v);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* Reads a secret file: whole content, trailing newlines stripped. */
static char *read_secret_file(const char *path, const char *what, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open %s: %s", what, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (!n) {
        snprintf(err, errlen, "%s: %s is empty", what, path);
        free(buf);
        return NULL;
    }
    return buf;
}

static int split_list(const char *raw, char ***out, size_t *n)
{
    *out = calloc(1, sizeof **out);
    *n = 0;
    if (!*out)
        return -1;
    char *copy = strdup(raw ? raw : ""), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (!*tok)
            continue;
        char **g = realloc(*out, (*n + 2) * sizeof **out);
        if (!g)
            break;
        *out = g;
        (*out)[(*n)++] = strdup(tok);
        (*out)[*n] = NULL;
    }
    free(copy);
    return 0;
}

int config_load(fwd_config *c, int argc, char **argv, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    bool given[sizeof opts / sizeof opts[0]] = { 0 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            config_usage(stdout);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument \"%s\" (flags look like --name=value; see --help)", a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const opt *o = NULL;
        for (const opt *p = opts; p->flag; p++)
            if (strlen(p->flag) == nl && !strncmp(p->flag, name, nl))
                o = p;
        if (!o) {
            snprintf(err, errlen, "unknown flag --%.*s (see --help)", (int)nl, name);
            return -1;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && o->type == T_FLAG)
            v = "true";
        if (!v) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value", o->flag);
                return -1;
            }
            v = argv[++i];
        }
        if (set_value(c, o, v, err, errlen) != 0)
            return -1;
        given[o - opts] = true;
    }
    for (const opt *o = opts; o->flag; o++) {
        if (given[o - opts])
            continue;
        const char *v = o->env ? getenv(o->env) : NULL;
        if (v && o->type == T_STR && !*v && o->def == NULL)
            v = NULL;           /* empty = unset */
        if (!v)
            v = o->def;
        if (v && set_value(c, o, v, err, errlen) != 0)
            return -1;
    }
    /* secrets from files */
    if (c->token_file) {
        if (c->token) {
            snprintf(err, errlen, "WEBHOOK_TOKEN and WEBHOOK_TOKEN_FILE are both set: use one");
            return -1;
        }
        if (!(c->token = read_secret_file(c->token_file, "WEBHOOK_TOKEN_FILE", err, errlen)))
            return -1;
        log_add_secret(c->token);
    }
    if (c->hmac_secret_file) {
        if (c->hmac_secret) {
            snprintf(err, errlen, "WEBHOOK_HMAC_SECRET and WEBHOOK_HMAC_SECRET_FILE are both set: use one");
            return -1;
        }
        if (!(c->hmac_secret = read_secret_file(c->hmac_secret_file, "WEBHOOK_HMAC_SECRET_FILE", err, errlen)))
            return -1;
        log_add_secret(c->hmac_secret);
    }
    split_list(c->namespaces_raw, &c->namespaces, &c->n_namespaces);
    char **kinds;
    size_t nk;
    split_list(c->resources_raw, &kinds, &nk);
    int rc = 0;
    for (size_t i = 0; i < nk; i++) {
        int k = fwd_kind_find(kinds[i]);
        if (k < 0 && rc == 0) {
            snprintf(err, errlen, "WATCH_RESOURCES: unknown resource \"%s\" (use pv, pvc, vs, vsc)", kinds[i]);
            rc = -1;
        }
        if (k >= 0)
            c->kinds_mask |= 1u << k;
        free(kinds[i]);
    }
    free(kinds);
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

/* hashlib name -> OpenSSL digest. */
const EVP_MD *config_hmac_md(const char *algo)
{
    if (!algo)
        return NULL;
    if (!strcasecmp(algo, "blake2b"))
        return EVP_get_digestbyname("BLAKE2B512");
    if (!strcasecmp(algo, "blake2s"))
        return EVP_get_digestbyname("BLAKE2S256");
    char name[64];
    snprintf(name, sizeof name, "%s", algo);
    for (char *p = name; *p; p++)
        if (*p == '_')
            *p = '-';
    return EVP_get_digestbyname(name);
}

int config_validate(fwd_config *c, char *err, size_t errlen)
{
    if (!c->webhook_url || !*c->webhook_url) {
        snprintf(err, errlen, "WEBHOOK_URL is required (the ansible-rulebook webhook source, e.g. http://eda:5000/endpoint)");
        return -1;
    }
    if (strncasecmp(c->webhook_url, "http://", 7) && strncasecmp(c->webhook_url, "https://", 8)) {
        snprintf(err, errlen, "WEBHOOK_URL: must start with http:// or https://");
        return -1;
    }
    if (strchr(c->webhook_url, '@')) {
        snprintf(err, errlen, "WEBHOOK_URL: credentials in the URL are not allowed; use WEBHOOK_TOKEN(_FILE)");
        return -1;
    }
    if (c->token && strpbrk(c->token, " \t\r\n")) {
        snprintf(err, errlen, "WEBHOOK_TOKEN: must not contain whitespace");
        return -1;
    }
    if (c->hmac_secret) {
        if (!config_hmac_md(c->hmac_algo)) {
            snprintf(err, errlen, "WEBHOOK_HMAC_ALGO: \"%s\" is not a digest this build knows (sha256, sha512, sha1, sha3_256...)", c->hmac_algo);
            return -1;
        }
        if (strcmp(c->hmac_format, "hex") && strcmp(c->hmac_format, "base64")) {
            snprintf(err, errlen, "WEBHOOK_HMAC_FORMAT: \"%s\" is not hex or base64", c->hmac_format);
            return -1;
        }
        if (!*c->hmac_header || strpbrk(c->hmac_header, ": \t\r\n")) {
            snprintf(err, errlen, "WEBHOOK_HMAC_HEADER: \"%s\" is not a valid header name", c->hmac_header);
            return -1;
        }
    }
    if (readable("WEBHOOK_CA_BUNDLE", c->ca_bundle, err, errlen) ||
        readable("WEBHOOK_CLIENT_CERT", c->client_cert, err, errlen) ||
        readable("WEBHOOK_CLIENT_KEY", c->client_key, err, errlen) ||
        readable("KUBECONFIG", c->kubeconfig, err, errlen))
        return -1;
    if (!c->client_cert != !c->client_key) {
        snprintf(err, errlen, "WEBHOOK_CLIENT_CERT and WEBHOOK_CLIENT_KEY go together: set both or neither");
        return -1;
    }
    for (size_t i = 0; i < c->n_namespaces; i++)
        if (!xstr_dns_label(c->namespaces[i])) {
            snprintf(err, errlen, "WATCH_NAMESPACES: \"%s\" is not a valid namespace name", c->namespaces[i]);
            return -1;
        }
    if (!c->kinds_mask) {
        snprintf(err, errlen, "WATCH_RESOURCES: no resource to watch");
        return -1;
    }
    /* single-option ranges are in the table (checked when set) */
    if (c->backoff_max_ms < c->backoff_min_ms) {
        snprintf(err, errlen, "WEBHOOK_BACKOFF_MIN_MS/MAX_MS: need min <= max");
        return -1;
    }
    if (strcmp(c->initial_sync, "stream") && strcmp(c->initial_sync, "list")) {
        snprintf(err, errlen, "INITIAL_SYNC: \"%s\" is not stream or list", c->initial_sync);
        return -1;
    }
    if (!c->cluster_name || !*c->cluster_name) {
        snprintf(err, errlen, "CLUSTER_NAME: must not be empty");
        return -1;
    }
    log_level lv;
    if (log_level_parse(c->log_level, &lv) != 0) {
        snprintf(err, errlen, "LOG_LEVEL: \"%s\" is not debug, info, warn or error", c->log_level);
        return -1;
    }
    const char *colon = c->listen ? strrchr(c->listen, ':') : NULL;
    if (!colon || atoi(colon + 1) < 0 || atoi(colon + 1) > 65535) {
        snprintf(err, errlen, "LISTEN_ADDRESS: \"%s\" is not host:port", c->listen ? c->listen : "");
        return -1;
    }
    if (c->state_dir) {
        if (access(c->state_dir, W_OK | X_OK) != 0) {
            snprintf(err, errlen, "STATE_DIR: %s is not a writable directory: %s", c->state_dir, strerror(errno));
            return -1;
        }
    }
    /* last, so a setting's own error comes first: transport security */
    if (config_plain_http(c) && !c->allow_insecure_http) {
        snprintf(err, errlen, "WEBHOOK_URL: plain http:// would send %s in clear text: use https:// "
                 "(WEBHOOK_CA_BUNDLE for a private CA), or accept that with "
                 "WEBHOOK_ALLOW_INSECURE_HTTP=true (--allow-insecure-http)",
                 c->token ? "the bearer token (WEBHOOK_TOKEN) and every event" : "every event");
        return -1;
    }
    return 0;
}

bool config_plain_http(const fwd_config *c)
{
    return c->webhook_url && !strncasecmp(c->webhook_url, "http://", 7);
}

static void warn_add(json_t *a, const char *setting, const char *msg)
{
    json_array_append_new(a, json_pack("{s:s,s:s}", "msg", msg, "setting", setting));
}

json_t *config_transport_warnings(const fwd_config *c, const char *api_server, bool api_insecure)
{
    json_t *a = json_array();
    if (config_plain_http(c))
        warn_add(a, "WEBHOOK_ALLOW_INSECURE_HTTP",
                 c->token ? "INSECURE: the webhook is plain http:// (WEBHOOK_ALLOW_INSECURE_HTTP=true): "
                            "the bearer token and every event cross the network in clear text"
                          : "INSECURE: the webhook is plain http:// (WEBHOOK_ALLOW_INSECURE_HTTP=true): "
                            "every event crosses the network in clear text, unauthenticated");
    else if (c->allow_insecure_http)
        warn_add(a, "WEBHOOK_ALLOW_INSECURE_HTTP",
                 "WEBHOOK_ALLOW_INSECURE_HTTP=true is set: plain http:// webhooks are accepted "
                 "(the https:// WEBHOOK_URL does not use it; remove it)");
    if (!c->webhook_verify_tls)
        warn_add(a, "WEBHOOK_VERIFY_TLS",
                 "INSECURE: webhook TLS verification is off (WEBHOOK_VERIFY_TLS=false): anyone on "
                 "the path can pose as the receiver and read the bearer token and every event");
    if (api_server && !strncasecmp(api_server, "http://", 7))
        warn_add(a, "KUBECONFIG",
                 "INSECURE: the Kubernetes API server is plain http://: its credentials and every "
                 "object cross the network in clear text");
    else if (api_insecure)
        warn_add(a, "KUBECONFIG",
                 "INSECURE: Kubernetes API TLS verification is off (insecure-skip-tls-verify / "
                 "K8S_AUTH_VERIFY_SSL=false): anyone on the path can pose as the API server, read "
                 "its credentials and feed the forwarder invented events");
    return a;
}

json_t *config_summary(const fwd_config *c)
{
    json_t *ns = json_array();
    for (size_t i = 0; i < c->n_namespaces; i++)
        json_array_append_new(ns, json_string(c->namespaces[i]));
    json_t *kinds = json_array();
    for (int k = 0; k < FWD_NKINDS; k++)
        if (c->kinds_mask & (1u << k))
            json_array_append_new(kinds, json_string(fwd_kinds[k].kind));
    return json_pack("{s:s, s:b, s:b, s:b, s:b, s:s?, s:o, s:o, s:s, s:s?, s:I, s:I, s:I, s:I, s:s}",
                     "webhook_url", c->webhook_url ? c->webhook_url : "",
                     "verify_tls", c->webhook_verify_tls,
                     "allow_insecure_http", c->allow_insecure_http,
                     "token_set", c->token != NULL,
                     "hmac", c->hmac_secret != NULL,
                     "hmac_algo", c->hmac_secret ? c->hmac_algo : NULL,
                     "namespaces", ns, "resources", kinds,
                     "cluster", c->cluster_name,
                     "state_dir", c->state_dir,
                     "parallel", (json_int_t)c->parallel,
                     "queue_max", (json_int_t)c->queue_max,
                     "reject_attempts", (json_int_t)c->reject_attempts,
                     "stall_seconds", (json_int_t)c->stall_s,
                     "listen", c->listen ? c->listen : "");
}

void config_free(fwd_config *c)
{
    for (const opt *o = opts; o->flag; o++)
        if (o->type == T_STR || o->type == T_SECRET) {
            char **p = (char **)((char *)c + o->off);
            if (o->type == T_SECRET && *p)
                memset(*p, 0, strlen(*p));
            free(*p);
            *p = NULL;
        }
    for (size_t i = 0; i < c->n_namespaces; i++)
        free(c->namespaces[i]);
    free(c->namespaces);
    c->namespaces = NULL;
    c->n_namespaces = 0;
}
