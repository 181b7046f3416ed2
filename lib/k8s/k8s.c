/* k8s.c - the Kubernetes client: connection resolution (explicit host,
 * kubeconfig, in-cluster, ~/.kube/config, K8S_AUTH_* environment), client
 * lifetime (curl global init once, a CURLSH shared by all threads), and the
 * request verbs get, list, apply, create, merge patch, status update and
 * delete.  Watch is in k8s_watch.c, batches in k8s_batch.c, the HTTP layer
 * in k8s_http.c, resource lookup in k8s_resources.c. */
#include "k8s_int.h"
#include "jsonx.h"
#include "xstr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef OCPVDR_VERSION
#define OCPVDR_VERSION "0.1.0"
#endif

/* ---- connection parameters ---------------------------------------------- */

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int parse_bool_str(const char *s)
{
    if (!s)
        return -1;
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") ||
        !strcmp(s, "1"))
        return 1;
    if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") ||
        !strcmp(s, "0"))
        return 0;
    return -1;
}

void k8s_conn_from_env(k8s_conn *c)
{
    if (!c->kubeconfig)
        c->kubeconfig = env_nonempty("K8S_AUTH_KUBECONFIG");
    if (!c->kubeconfig && !c->host && !c->in_cluster)
        c->kubeconfig = env_nonempty("KUBECONFIG");
    if (!c->context)
        c->context = env_nonempty("K8S_AUTH_CONTEXT");
    if (!c->host)
        c->host = env_nonempty("K8S_AUTH_HOST");
    if (!c->api_key)
        c->api_key = env_nonempty("K8S_AUTH_API_KEY");
    if (!c->ca_cert)
        c->ca_cert = env_nonempty("K8S_AUTH_SSL_CA_CERT");
    if (!c->client_cert)
        c->client_cert = env_nonempty("K8S_AUTH_CERT_FILE");
    if (!c->client_key)
        c->client_key = env_nonempty("K8S_AUTH_KEY_FILE");
    if (c->validate_certs < 0)
        c->validate_certs = parse_bool_str(env_nonempty("K8S_AUTH_VERIFY_SSL"));
}

static const char *json_str_any(json_t *p, const char *a, const char *b)
{
    const char *v = json_string_value(json_object_get(p, a));
    if ((!v || !*v) && b)
        v = json_string_value(json_object_get(p, b));
    return v && *v ? v : NULL;
}

void k8s_conn_from_json(k8s_conn *c, json_t *params)
{
    memset(c, 0, sizeof *c);
    c->validate_certs = -1;
    if (!json_is_object(params))
        return;
    c->kubeconfig = json_str_any(params, "kubeconfig", NULL);
    c->context = json_str_any(params, "context", NULL);
    c->host = json_str_any(params, "host", NULL);
    c->api_key = json_str_any(params, "api_key", NULL);
    c->ca_cert = json_str_any(params, "ca_cert", "ssl_ca_cert");
    c->client_cert = json_str_any(params, "client_cert", "cert_file");
    c->client_key = json_str_any(params, "client_key", "key_file");
    json_t *v = json_object_get(params, "validate_certs");
    if (!v || json_is_null(v))
        v = json_object_get(params, "verify_ssl");
    if (json_is_boolean(v))
        c->validate_certs = json_is_true(v);
    else if (json_is_string(v))
        c->validate_certs = parse_bool_str(json_string_value(v));
    else if (json_is_integer(v))
        c->validate_certs = json_integer_value(v) != 0;
    c->in_cluster = json_is_true(json_object_get(params, "in_cluster"));
    v = json_object_get(params, "allow_insecure_http");
    c->allow_insecure_http = json_is_true(v) ||
                             (json_is_string(v) && parse_bool_str(json_string_value(v)) == 1);
}

static int replace(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? strdup(v) : NULL;
    return v && !*dst ? -1 : 0;
}

int k8s_conn_resolve(const k8s_conn *conn, kubeconfig *kc, k8s_error *err)
{
    memset(kc, 0, sizeof *kc);
    char *msg = NULL;
    int rc = 0;
    if (conn->in_cluster) {
        rc = kubeconfig_in_cluster(NULL, kc, &msg);
    } else if (conn->kubeconfig) {
        rc = kubeconfig_load(conn->kubeconfig, conn->context, kc, &msg);
    } else if (conn->host) {
        kc->source = strdup("host");
    } else if (kubeconfig_in_cluster_available(NULL)) {
        rc = kubeconfig_in_cluster(NULL, kc, &msg);
    } else {
        char *p = kubeconfig_default_path();
        if (!p) {
            k8s_error_printf(err, "no Kubernetes connection: give host, kubeconfig or run "
                             "in a pod (and HOME is not set for ~/.kube/config)");
            return -1;
        }
        rc = kubeconfig_load(p, conn->context, kc, &msg);
        free(p);
    }
    if (rc != 0) {
        k8s_error_printf(err, "%s", msg ? msg : "cannot load the connection");
        free(msg);
        return -1;
    }
    if (conn->host) {
        char *h = NULL;
        size_t l = strlen(conn->host);
        while (l > 0 && conn->host[l - 1] == '/')
            l--;
        bool scheme = strncasecmp(conn->host, "https://", 8) == 0 ||
                      strncasecmp(conn->host, "http://", 7) == 0;
        h = xfmt("%s%.*s", scheme ? "" : "https://", (int)l, conn->host);
        free(kc->server);
        kc->server = h;
    }
    if (conn->api_key && kc_token_check(conn->api_key) >= 0) {
        kubeconfig_free(kc);
        k8s_error_printf(err, "api_key: contains a control character (CR, LF, ...): a bearer "
                         "token is one line; refusing it");
        return -1;
    }
    if (conn->api_key) {
        rc |= replace(&kc->token, conn->api_key);
        rc |= replace(&kc->token_file, NULL);
    }
    if (conn->ca_cert) {
        rc |= replace(&kc->ca_file, conn->ca_cert);
        free(kc->ca_data.data);
        kc->ca_data = (kc_blob){ 0 };
    }
    if (conn->client_cert) {
        rc |= replace(&kc->cert_file, conn->client_cert);
        free(kc->cert_data.data);
        kc->cert_data = (kc_blob){ 0 };
    }
    if (conn->client_key) {
        rc |= replace(&kc->key_file, conn->client_key);
        if (kc->key_data.data)
            explicit_bzero(kc->key_data.data, kc->key_data.len);
        free(kc->key_data.data);
        kc->key_data = (kc_blob){ 0 };
    }
    if (conn->validate_certs == 0)
        kc->insecure = true;
    else if (conn->validate_certs == 1)
        kc->insecure = false;
    if (rc != 0 || !kc->server) {
        kubeconfig_free(kc);
        k8s_error_printf(err, "Kubernetes connection: out of memory");
        return -1;
    }
    return 0;
}

/* ---- client ------------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)h;
    (void)access;
    k8s_client *c = ud;
    pthread_mutex_lock(&c->share_lock[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    (void)h;
    k8s_client *c = ud;
    pthread_mutex_unlock(&c->share_lock[data]);
}

/* Loads a PEM file into a blob so a missing file fails at creation, with the
 * parameter named. */
static int load_blob(const char *what, const char *path, kc_blob *b, k8s_error *err)
{
    char *data;
    size_t len;
    if (kc_read_file(path, &data, &len) != 0) {
        k8s_error_printf(err, "%s %s: %s", what, path, strerror(errno));
        return -1;
    }
    if (len == 0) {
        free(data);
        k8s_error_printf(err, "%s %s: file is empty", what, path);
        return -1;
    }
    b->data = (unsigned char *)data;
    b->len = len;
    return 0;
}

static void take_blob(kc_blob *dst, kc_blob *src)
{
    *dst = *src;
    *src = (kc_blob){ 0 };
}

/* url_base / connect_to for tls-server-name. */
static int setup_sni(k8s_client *c, const char *sni, k8s_error *err)
{
    if (!sni) {
        c->url_base = strdup(c->server);
        return c->url_base ? 0 : -1;
    }
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *scheme = NULL, *path = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, c->server, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
        char *ct = NULL;
        size_t pl = strlen(path);
        while (pl > 0 && path[pl - 1] == '/')
            pl--;   /* keep a path prefix (API behind a proxy), without the final / */
        if ((c->url_base = xfmt("%s://%s:%s%.*s", scheme, sni, port, (int)pl, path)) != NULL &&
            (ct = xfmt("%s:%s:%s:%s", sni, port, host, port)) != NULL) {
            c->connect_to = curl_slist_append(NULL, ct);
            rc = c->connect_to ? 0 : -1;
        }
        free(ct);
    } else {
        k8s_error_printf(err, "server %s: not a valid URL", c->server);
    }
    curl_free(host);
    curl_free(port);
    curl_free(scheme);
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

k8s_client *k8s_client_new(const k8s_conn *conn, const k8s_config *cfg, k8s_error *err)
{
    k8s_error scratch;
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) {
        k8s_error_printf(err, "curl_global_init: %s", curl_easy_strerror(global_rc));
        return NULL;
    }
    k8s_conn none = { .validate_certs = -1 };
    kubeconfig kc;
    if (k8s_conn_resolve(conn ? conn : &none, &kc, err) != 0)
        return NULL;

    k8s_client *c = calloc(1, sizeof *c);
    if (!c) {
        kubeconfig_free(&kc);
        k8s_error_printf(err, "out of memory");
        return NULL;
    }
    static _Atomic unsigned long next_id = 1;
    c->id = next_id++;
    pthread_mutex_init(&c->lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_lock[i], NULL);

    /* 0 (a zero-initialised config) means the default; negative = no retries */
    c->cfg.max_retries = !cfg || cfg->max_retries == 0 ? 5
                         : cfg->max_retries < 0 ? 0 : cfg->max_retries;
    c->cfg.timeout_ms = cfg ? cfg->timeout_ms : 30000;
    c->cfg.connect_timeout_ms = cfg && cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms
                                                                   : 10000;
    c->cfg.max_in_flight = cfg && cfg->max_in_flight > 0 ? cfg->max_in_flight : 16;
    c->user_agent = strdup(cfg && cfg->user_agent ? cfg->user_agent
                                                  : "ocpv-dr/" OCPVDR_VERSION);
    c->field_manager = strdup(cfg && cfg->field_manager ? cfg->field_manager : "ocpv-dr");
    c->cfg.user_agent = c->user_agent;
    c->cfg.field_manager = c->field_manager;

    c->server = kc.server;
    kc.server = NULL;
    c->namespace = kc.namespace;
    kc.namespace = NULL;
    c->insecure = kc.insecure;
    c->token = kc.token;
    kc.token = NULL;
    c->token_file = kc.token_file;
    kc.token_file = NULL;
    take_blob(&c->ca, &kc.ca_data);
    take_blob(&c->cert, &kc.cert_data);
    take_blob(&c->key, &kc.key_data);

    int rc = 0;
    if (!c->user_agent || !c->field_manager) {
        k8s_error_printf(err, "out of memory");
        rc = -1;
    }
    if (rc == 0 && !c->ca.len && kc.ca_file && !c->insecure)
        rc = load_blob("ca_cert", kc.ca_file, &c->ca, err);
    if (rc == 0 && !c->cert.len && kc.cert_file)
        rc = load_blob("client_cert", kc.cert_file, &c->cert, err);
    if (rc == 0 && !c->key.len && kc.key_file)
        rc = load_blob("client_key", kc.key_file, &c->key, err);
    if (rc == 0 && (c->cert.len > 0) != (c->key.len > 0)) {
        k8s_error_printf(err, "%s: client_cert and client_key must be given together",
                         kc.source ? kc.source : "connection");
        rc = -1;
    }
    if (rc == 0 && setup_sni(c, kc.tls_server_name, err) != 0) {
        if (!err->message[0])
            k8s_error_printf(err, "out of memory");
        rc = -1;
    }
    if (rc == 0) {
        c->share = curl_share_init();
        if (c->share) {
            curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
            curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
            curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
            curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
            curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
            /* not CURL_LOCK_DATA_CONNECT: libcurl does not support sharing
             * connections between concurrent threads; see k8s_http.c */
        }
    }
    if (rc == 0 && c->token && c->token_file) {
        free(c->token_file);   /* a static token wins over tokenFile, as in client-go */
        c->token_file = NULL;
    }
    if (rc == 0 && c->token_file) {
        pthread_mutex_lock(&c->lock);
        rc = k8s_token_refresh(c, err);   /* an unreadable token file fails now */
        pthread_mutex_unlock(&c->lock);
    }
    c->plain_http = strncasecmp(c->server, "http://", 7) == 0;
    c->allow_insecure_http = conn && conn->allow_insecure_http;
    if (rc == 0 && c->plain_http && !c->allow_insecure_http &&
        (c->token || c->token_file || c->cert.len || c->key.len)) {
        k8s_error_printf(err, "%s: server %s is plain http: refusing to send the %s unencrypted "
                         "to a server that is not authenticated; use https, or set "
                         "allow_insecure_http: true to accept that risk",
                         kc.source ? kc.source : "connection", c->server,
                         c->token || c->token_file ? "bearer token" : "client certificate");
        rc = -1;
    }
    kubeconfig_free(&kc);
    if (rc != 0) {
        k8s_client_free(c);
        return NULL;
    }
    return c;
}

void k8s_client_free(k8s_client *c)
{
    if (!c)
        return;
    k8s_thread_handle_drop(c);   /* before the share it points to goes */
    if (c->share)
        curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_lock[i]);
    pthread_mutex_destroy(&c->lock);
    k8s_discovery_free(c);
    free(c->server);
    free(c->namespace);
    free(c->url_base);
    curl_slist_free_all(c->connect_to);
    free(c->ca_file);
    free(c->ca.data);
    free(c->cert_file);
    free(c->cert.data);
    free(c->key_file);
    if (c->key.data)
        explicit_bzero(c->key.data, c->key.len);
    free(c->key.data);
    if (c->token)
        explicit_bzero(c->token, strlen(c->token));
    free(c->token);
    free(c->token_file);
    free(c->user_agent);
    free(c->field_manager);
    free(c);
}

const char *k8s_client_server(const k8s_client *c)
{
    return c ? c->server : NULL;
}

const char *k8s_client_namespace(const k8s_client *c)
{
    return c ? c->namespace : NULL;
}

bool k8s_client_plain_http(const k8s_client *c)
{
    return c && c->plain_http;
}

bool k8s_client_tls_unverified(const k8s_client *c)
{
    return c && !c->plain_http && c->insecure;
}

/* ---- query strings ------------------------------------------------------ */

/* Appends key=value (value URL-encoded) to a malloc'd path. */
int k8s_qs_add(char **path, const char *key, const char *value)
{
    if (!*path)
        return -1;
    char *ev = k8s_urlencode(value);
    if (!ev)
        return -1;
    char *np = xfmt("%s%c%s=%s", *path, strchr(*path, '?') ? '&' : '?', key, ev);
    free(ev);
    free(*path);
    *path = np;
    return *path ? 0 : -1;
}

static const char *fm(k8s_client *c, const k8s_write_opts *o)
{
    return o && o->field_manager && *o->field_manager ? o->field_manager : c->field_manager;
}

/* ---- verbs -------------------------------------------------------------- */

int k8s_get(k8s_client *c, const k8s_resource *r, const char *ns,
            const char *name, json_t **out, k8s_error *err)
{
    k8s_error scratch;
    if (!err)
        err = &scratch;
    if (out)
        *out = NULL;
    if (!name || !*name) {
        k8s_error_printf(err, "get %s: name is required", r->kind);
        return -1;
    }
    char *path;
    if (k8s_path_build(r, ns, name, &path, err) != 0)
        return -1;
    json_t *obj = NULL;
    int rc = k8s_request(c, "GET", path, NULL, NULL, &obj, err);
    if (rc == 0)
        rc = k8s_object_check(obj, r, ns, name, path, err->status, err);
    free(path);
    if (rc == 0 && out)
        *out = obj;
    else
        json_decref(obj);
    return rc;
}

/* The start of a check message: "list PersistentVolumeClaim in namespace
 * x: GET /api/...: 200 answer" into buf. */
static void check_prefix(char *buf, size_t len, const char *verb, const k8s_resource *r,
                         const char *ns, const char *path, long status)
{
    snprintf(buf, len, "%s %s%s%s: GET %s: %ld answer", verb, r->kind,
             r->namespaced && ns && *ns ? " in namespace " : "",
             r->namespaced && ns && *ns ? ns : "", path ? path : "?", status);
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "text that is not JSON (an HTML page from a proxy?)";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "empty";
    }
}

static int check_fail(k8s_error *err, long status, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int check_fail(k8s_error *err, long status, const char *prefix, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    k8s_error_printf(err, "%s %s", prefix, why);
    if (err) {
        err->status = status;
        snprintf(err->reason, sizeof err->reason, "NotAList");
    }
    return -1;
}

int k8s_list_check(const json_t *page, const k8s_resource *r, const char *ns,
                   const char *path, long status, k8s_error *err)
{
    char pre[700];
    check_prefix(pre, sizeof pre, "list", r, ns, path, status);
    if (!json_is_object(page))
        return check_fail(err, status, pre, "is %s, not a Kubernetes list: refusing to read it "
                          "as \"no objects\"", page ? json_type_name(page) : "empty");
    const char *kind = json_string_value(json_object_get(page, "kind"));
    size_t kl = kind ? strlen(kind) : 0;
    if (!kind || kl <= 4 || strcmp(kind + kl - 4, "List") != 0) {
        char shown[80] = "";
        for (size_t i = 0, o = 0; kind && kind[i] && o + 1 < sizeof shown; i++)
            shown[o++] = (unsigned char)kind[i] < 0x20 ? '?' : kind[i], shown[o] = '\0';
        return check_fail(err, status, pre, "is not a Kubernetes list (%s%s%s): refusing to "
                          "read it as \"no objects\"", kind ? "kind \"" : "no kind",
                          kind ? shown : "", kind ? "\"" : "");
    }
    json_t *items = json_object_get(page, "items");
    if (!json_is_array(items))
        return check_fail(err, status, pre, "(%s) has %s: refusing to read it as \"no "
                          "objects\"", kind, !items ? "no items" : json_is_null(items)
                          ? "items: null" : "items that are not an array");
    size_t i;
    json_t *it;
    /* the list of what was asked for: <Kind>List, items of that kind and,
     * for a namespaced list, of that namespace - prune takes each item's
     * namespace from the item */
    if (kl != strlen(r->kind) + 4 || strncmp(kind, r->kind, kl - 4) != 0)
        return check_fail(err, status, pre, "is a %.80s, not a %sList", kind, r->kind);
    json_array_foreach(items, i, it) {
        if (!json_is_object(it))
            return check_fail(err, status, pre, "(%s): items[%zu] is not an object", kind, i);
        const char *ik = json_string_value(json_object_get(it, "kind"));
        if (ik && strcmp(ik, r->kind) != 0)
            return check_fail(err, status, pre, "(%s): items[%zu] is a %.80s", kind, i, ik);
        const char *ins = json_string_value(json_object_get(json_object_get(it, "metadata"),
                                                            "namespace"));
        if (ns && *ns && ins && strcmp(ins, ns) != 0)
            return check_fail(err, status, pre, "(%s): items[%zu] is in namespace \"%.80s\", "
                              "not the one listed", kind, i, ins);
    }
    return 0;
}

int k8s_object_check(const json_t *obj, const k8s_resource *r, const char *ns,
                     const char *name, const char *path, long status, k8s_error *err)
{
    char pre[700];
    check_prefix(pre, sizeof pre, "get", r, ns, path, status);
    if (!json_is_object(obj))
        return check_fail(err, status, pre, "is %s, not a %s object",
                          obj ? json_type_name(obj) : "empty", r->kind);
    const char *kind = json_string_value(json_object_get((json_t *)obj, "kind"));
    if (kind && strcmp(kind, r->kind) != 0)
        return check_fail(err, status, pre, "is a %.80s, not a %s", kind, r->kind);
    json_t *md = json_object_get((json_t *)obj, "metadata");
    const char *got = json_string_value(json_object_get(md, "name"));
    if (!got)
        return check_fail(err, status, pre, "has no metadata.name: not a %s object", r->kind);
    /* another object than the one asked for (a proxy's cache, a rewrite):
     * taken for it, it would be compared, updated or deleted in its place */
    if (name && strcmp(got, name) != 0)
        return check_fail(err, status, pre, "is %s \"%.80s\", not the %s \"%.80s\" asked for",
                          r->kind, got, r->kind, name);
    const char *gns = json_string_value(json_object_get(md, "namespace"));
    if (r->namespaced && ns && *ns && gns && strcmp(gns, ns) != 0)
        return check_fail(err, status, pre, "is in namespace \"%.80s\", not \"%.80s\" asked for",
                          gns, ns);
    return 0;
}

int k8s_list_continue(const json_t *page, const char *sent, long *pages, long *empty_run,
                      const k8s_resource *r, const char *ns, char **next, k8s_error *err)
{
    *next = NULL;
    const char *nc = json_string_value(json_object_get(json_object_get((json_t *)page,
                                                                       "metadata"), "continue"));
    if (!nc || !*nc)
        return 0;
    /* a server (or a proxy) that never stops paging: fail rather than grow
     * without bound */
    const char *stuck = NULL;
    *empty_run = json_array_size(json_object_get((json_t *)page, "items")) ? 0 : *empty_run + 1;
    ++*pages;
    if (sent && strcmp(nc, sent) == 0)
        stuck = "answered with the continue token it was sent";
    else if (*empty_run >= K8S_LIST_MAX_EMPTY_PAGES)
        stuck = "kept sending empty pages that promise more";
    else if (*pages >= K8S_LIST_MAX_PAGES)
        stuck = "sent more pages than any list has";
    if (stuck) {
        k8s_error_printf(err, "list %s%s%s: the server %s (page %ld): refusing an endless "
                         "listing", r->kind, ns ? " in namespace " : "", ns ? ns : "", stuck,
                         *pages);
        snprintf(err->reason, sizeof err->reason, "EndlessList");
        return -1;
    }
    *next = strdup(nc);
    if (!*next) {
        k8s_error_printf(err, "list %s: out of memory", r->kind);
        return -1;
    }
    return 0;
}

void k8s_fill_type(json_t *item, const k8s_resource *r)
{
    char av[300];
    if (!json_is_object(item))
        return;
    if (!json_string_value(json_object_get(item, "apiVersion")))
        json_object_set_new(item, "apiVersion", json_string(k8s_api_version(r, av, sizeof av)));
    if (!json_string_value(json_object_get(item, "kind")))
        json_object_set_new(item, "kind", json_string(r->kind));
}

int k8s_list(k8s_client *c, const k8s_resource *r, const char *ns,
             const k8s_list_opts *opts, json_t **items, char **resource_version,
             k8s_error *err)
{
    k8s_error scratch;
    if (!err)
        err = &scratch;
    *items = NULL;
    if (resource_version)
        *resource_version = NULL;
    long limit = opts && opts->limit > 0 ? opts->limit : 500;
    char lim[32];
    snprintf(lim, sizeof lim, "%ld", limit);
    int restarts = 0;

    char *base;
    if (k8s_path_build(r, ns, NULL, &base, err) != 0)
        return -1;

restart:;
    json_t *all = json_array();
    char *cont = NULL, *rv = NULL;
    bool first = true;
    long pages = 0, empty_run = 0;
    for (;;) {
        char *path = strdup(base);
        int q = k8s_qs_add(&path, "limit", lim);
        if (q == 0 && opts && opts->label_selector && *opts->label_selector)
            q = k8s_qs_add(&path, "labelSelector", opts->label_selector);
        if (q == 0 && opts && opts->field_selector && *opts->field_selector)
            q = k8s_qs_add(&path, "fieldSelector", opts->field_selector);
        if (q == 0 && cont)
            q = k8s_qs_add(&path, "continue", cont);
        if (q != 0) {
            free(path);
            free(cont);
            free(rv);
            free(base);
            json_decref(all);
            k8s_error_printf(err, "list %s: out of memory", r->kind);
            return -1;
        }
        json_t *page = NULL;
        int rc = k8s_request(c, "GET", path, NULL, NULL, &page, err);
        if (rc == 0)
            rc = k8s_list_check(page, r, ns, path, err->status, err);
        free(path);
        if (rc != 0) {
            bool expired = err->status == 410 && cont;
            json_decref(page);
            free(cont);
            free(rv);
            json_decref(all);
            if (expired && restarts++ < 3)
                goto restart;   /* the continue token expired: list again */
            free(base);
            return -1;
        }
        json_t *arr = json_object_get(page, "items"), *it;
        size_t i;
        json_array_foreach(arr, i, it) {
            k8s_fill_type(it, r);
            json_array_append(all, it);
        }
        if (first) {
            const char *v = jx_str(page, "metadata.resourceVersion");
            rv = v ? strdup(v) : NULL;
            first = false;
        }
        char *next = NULL;
        rc = k8s_list_continue(page, cont, &pages, &empty_run, r, ns, &next, err);
        free(cont);
        cont = next;
        json_decref(page);
        if (rc != 0) {
            free(rv);
            free(base);
            json_decref(all);
            return -1;
        }
        if (!cont)
            break;
    }
    free(base);
    *items = all;
    if (resource_version)
        *resource_version = rv;
    else
        free(rv);
    return 0;
}

/* Checks obj has metadata.name (+ namespace when namespaced) and returns a
 * copy with apiVersion/kind filled in from r when missing. */
static json_t *prepare_obj(const k8s_resource *r, json_t *obj, const char *verb,
                           const char **ns, const char **name, k8s_error *err)
{
    char av[300];
    k8s_api_version(r, av, sizeof av);
    if (!json_is_object(obj)) {
        k8s_error_printf(err, "%s %s/%s: the object must be a JSON object", verb, av, r->kind);
        return NULL;
    }
    *name = jx_str(obj, "metadata.name");
    *ns = jx_str(obj, "metadata.namespace");
    if (!*name || !**name) {
        k8s_error_printf(err, "%s %s/%s: metadata.name is missing", verb, av, r->kind);
        return NULL;
    }
    if (r->namespaced && (!*ns || !**ns)) {
        k8s_error_printf(err, "%s %s/%s %s: metadata.namespace is missing (the kind is "
                         "namespaced)", verb, av, r->kind, *name);
        return NULL;
    }
    json_t *copy = json_copy(obj);
    if (copy)
        k8s_fill_type(copy, r);
    return copy;
}

/* path NULL: write_path failed and filled err. */
static int write_req(k8s_client *c, const char *method, char *path, const char *ctype,
                     json_t *body, json_t **out, k8s_error *err)
{
    if (!path)
        return -1;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc;
    if (body && !text) {
        k8s_error_printf(err, "%s: out of memory", method);
        rc = -1;
    } else {
        rc = k8s_request(c, method, path, ctype, text, out, err);
    }
    free(text);
    free(path);
    return rc;
}

/* NULL with err on an invalid name / namespace, or out of memory. */
static char *write_path(k8s_client *c, const k8s_resource *r, const char *ns,
                        const char *name, const char *sub, const k8s_write_opts *o,
                        bool apply, k8s_error *err)
{
    char *p;
    if (k8s_path_build(r, ns, name, &p, err) != 0)
        return NULL;
    if (sub) {
        char *np = NULL;
        np = xfmt("%s/%s", p, sub);
        free(p);
        p = np;
    }
    if (k8s_qs_add(&p, "fieldManager", fm(c, o)) != 0 ||
        (apply && o && o->force && k8s_qs_add(&p, "force", "true") != 0) ||
        (o && o->dry_run && k8s_qs_add(&p, "dryRun", "All") != 0)) {
        k8s_error_printf(err, "%s: out of memory", r->kind);
        return NULL;   /* k8s_qs_add freed p */
    }
    return p;
}

int k8s_build_apply(k8s_client *c, const k8s_resource *r, json_t *obj,
                    const k8s_write_opts *opts, char **path, char **body, k8s_error *err)
{
    *path = *body = NULL;
    const char *ns, *name;
    json_t *copy = prepare_obj(r, obj, "apply", &ns, &name, err);
    if (!copy)
        return -1;
    *path = write_path(c, r, ns, name, NULL, opts, true, err);
    if (!*path) {
        json_decref(copy);
        return -1;
    }
    *body = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    if (!*body) {
        free(*path);
        free(*body);
        *path = *body = NULL;
        k8s_error_printf(err, "apply %s: out of memory", r->kind);
        return -1;
    }
    return 0;
}

int k8s_apply(k8s_client *c, const k8s_resource *r, json_t *obj,
              const k8s_write_opts *opts, json_t **out, k8s_error *err)
{
    if (out)
        *out = NULL;
    char *path, *body;
    if (k8s_build_apply(c, r, obj, opts, &path, &body, err) != 0)
        return -1;
    int rc = k8s_request(c, "PATCH", path, "application/apply-patch+yaml", body, out, err);
    free(path);
    free(body);
    return rc;
}

int k8s_create(k8s_client *c, const k8s_resource *r, json_t *obj,
               const k8s_write_opts *opts, json_t **out, k8s_error *err)
{
    if (out)
        *out = NULL;
    const char *ns, *name;
    json_t *body = prepare_obj(r, obj, "create", &ns, &name, err);
    if (!body)
        return -1;
    char *path = NULL;
    /* the name goes in the body, yet it names the object: check it too */
    if (k8s_path_build(r, ns, name, &path, err) == 0) {
        free(path);
        path = write_path(c, r, ns, NULL, NULL, opts, false, err);
    }
    int rc = write_req(c, "POST", path, "application/json", body, out, err);
    json_decref(body);
    return rc;
}

int k8s_build_merge_patch(k8s_client *c, const k8s_resource *r, const char *ns,
                          const char *name, json_t *patch, const k8s_write_opts *opts,
                          char **path, char **body, k8s_error *err)
{
    *path = *body = NULL;
    if (!name || !*name || !json_is_object(patch)) {
        k8s_error_printf(err, "patch %s: a name and a JSON object patch are required", r->kind);
        return -1;
    }
    *path = write_path(c, r, ns, name, NULL, opts, false, err);
    if (!*path)
        return -1;
    *body = json_dumps(patch, JSON_COMPACT);
    if (!*body) {
        free(*path);
        *path = NULL;
        k8s_error_printf(err, "patch %s: out of memory", r->kind);
        return -1;
    }
    return 0;
}

int k8s_merge_patch(k8s_client *c, const k8s_resource *r, const char *ns,
                    const char *name, json_t *patch, const k8s_write_opts *opts,
                    json_t **out, k8s_error *err)
{
    if (out)
        *out = NULL;
    char *path, *body;
    if (k8s_build_merge_patch(c, r, ns, name, patch, opts, &path, &body, err) != 0)
        return -1;
    int rc = k8s_request(c, "PATCH", path, "application/merge-patch+json", body, out, err);
    free(path);
    free(body);
    return rc;
}

int k8s_update_status(k8s_client *c, const k8s_resource *r, json_t *obj,
                      json_t **out, k8s_error *err)
{
    if (out)
        *out = NULL;
    const char *ns, *name;
    json_t *body = prepare_obj(r, obj, "update status of", &ns, &name, err);
    if (!body)
        return -1;
    char *path = write_path(c, r, ns, name, "status", NULL, false, err);
    int rc = write_req(c, "PUT", path, "application/json", body, out, err);
    json_decref(body);
    return rc;
}

json_t *k8s_delete_body(const k8s_delete_opts *o)
{
    json_t *b = json_pack("{s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
    if (!b || !o)
        return b;
    if (o->propagation && *o->propagation)
        json_object_set_new(b, "propagationPolicy", json_string(o->propagation));
    if ((o->uid && *o->uid) || (o->resource_version && *o->resource_version)) {
        json_t *pre = json_object();
        if (o->uid && *o->uid)
            json_object_set_new(pre, "uid", json_string(o->uid));
        if (o->resource_version && *o->resource_version)
            json_object_set_new(pre, "resourceVersion", json_string(o->resource_version));
        json_object_set_new(b, "preconditions", pre);
    }
    if (o->dry_run)
        json_object_set_new(b, "dryRun", json_pack("[s]", "All"));
    return b;
}

int k8s_build_delete(const k8s_resource *r, const char *ns, const char *name,
                     const k8s_delete_opts *opts, char **path, char **body, k8s_error *err)
{
    *path = *body = NULL;
    if (!name || !*name) {
        k8s_error_printf(err, "delete %s: name is required", r->kind);
        return -1;
    }
    if (k8s_path_build(r, ns, name, path, err) != 0)
        return -1;
    if (opts && opts->dry_run)
        k8s_qs_add(path, "dryRun", "All");
    json_t *b = k8s_delete_body(opts);
    *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (!*path || !*body) {
        free(*path);
        free(*body);
        *path = *body = NULL;
        k8s_error_printf(err, "delete %s: out of memory", r->kind);
        return -1;
    }
    return 0;
}

int k8s_delete(k8s_client *c, const k8s_resource *r, const char *ns,
               const char *name, const k8s_delete_opts *opts, k8s_error *err)
{
    char *path, *body;
    if (k8s_build_delete(r, ns, name, opts, &path, &body, err) != 0)
        return -1;
    int rc = k8s_request(c, "DELETE", path, "application/json", body, NULL, err);
    free(path);
    free(body);
    return rc;
}
