/* test_kubeconfig.c - unit tests for lib/k8s/kubeconfig.c and the connection
 * resolution of lib/k8s/k8s.c: real kubeconfigs in their usual forms (files,
 * embedded data, tokens, tokenFile, JSON, anchors, KUBECONFIG lists, the
 * in-cluster service account), malformed ones (errors name the field), the
 * K8S_AUTH_* / parameter precedence, token rotation, that no secret
 * reaches an error message, and that a token with a control character (CR,
 * LF: header injection) is refused wherever it comes from.  Data:
 * tests/unit/data/kubeconfig/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "k8s_conn_opts.h"
#include "k8s_int.h"
#include "kubeconfig.h"
#include "module.h"

#define D TEST_DATA_DIR "/kubeconfig"

static void load_ok(const char *file, const char *ctx, kubeconfig *kc)
{
    char *err = NULL;
    int rc = kubeconfig_load(file, ctx, kc, &err);
    if (rc != 0)
        print_error("unexpected error: %s\n", err ? err : "(null)");
    assert_int_equal(rc, 0);
    assert_null(err);
}

/* Loads a malformed file and checks the error mentions each needle. */
static void load_bad(const char *file, const char *ctx, const char *const *needles)
{
    kubeconfig kc;
    char *err = NULL;
    assert_int_equal(kubeconfig_load(file, ctx, &kc, &err), -1);
    assert_non_null(err);
    for (const char *const *n = needles; *n; n++) {
        if (!strstr(err, *n))
            print_error("error \"%s\" lacks \"%s\"\n", err, *n);
        assert_non_null(strstr(err, *n));
    }
    assert_null(strstr(err, "SECRET"));
    assert_null(kc.server);   /* nothing half-filled */
    free(err);
}

static void test_files(void **state)
{
    (void)state;
    kubeconfig kc;
    load_ok(D "/files.yaml", NULL, &kc);
    assert_string_equal(kc.context, "kubernetes-admin@kubernetes");
    assert_string_equal(kc.cluster, "kubernetes");
    assert_string_equal(kc.user, "kubernetes-admin");
    assert_string_equal(kc.server, "https://10.0.0.1:6443");   /* trailing / dropped */
    assert_string_equal(kc.ca_file, D "/ca.crt");              /* relative to the file */
    assert_string_equal(kc.cert_file, D "/client.crt");
    assert_string_equal(kc.key_file, D "/./client.key");
    assert_int_equal(kc.ca_data.len, 0);
    assert_null(kc.token);
    assert_false(kc.insecure);
    assert_null(kc.namespace);
    kubeconfig_free(&kc);
}

static void read_whole(const char *path, char **out, size_t *len)
{
    assert_int_equal(kc_read_file(path, out, len), 0);
}

static void test_data(void **state)
{
    (void)state;
    kubeconfig kc;
    char *ca, *cert, *key;
    size_t cal, certl, keyl;
    read_whole(D "/ca.crt", &ca, &cal);
    read_whole(D "/client.crt", &cert, &certl);
    read_whole(D "/client.key", &key, &keyl);

    load_ok(D "/data.yaml", NULL, &kc);
    assert_string_equal(kc.context, "kind-primary");
    assert_string_equal(kc.namespace, "vms");
    assert_string_equal(kc.server, "https://127.0.0.1:36443");
    assert_int_equal(kc.ca_data.len, cal);
    assert_memory_equal(kc.ca_data.data, ca, cal);
    assert_int_equal(kc.cert_data.len, certl);
    assert_memory_equal(kc.cert_data.data, cert, certl);
    assert_int_equal(kc.key_data.len, keyl);
    assert_memory_equal(kc.key_data.data, key, keyl);
    assert_null(kc.ca_file);
    assert_null(kc.tls_server_name);
    kubeconfig_free(&kc);

    /* context override; folded base64 across lines; tls-server-name */
    load_ok(D "/data.yaml", "kind-dr", &kc);
    assert_string_equal(kc.context, "kind-dr");
    assert_string_equal(kc.cluster, "kind-dr");
    assert_string_equal(kc.server, "https://127.0.0.1:37443");
    assert_string_equal(kc.tls_server_name, "kubernetes.default.svc");
    assert_int_equal(kc.ca_data.len, cal);
    assert_memory_equal(kc.ca_data.data, ca, cal);
    assert_null(kc.namespace);
    kubeconfig_free(&kc);
    free(ca);
    free(cert);
    free(key);
}

static void test_token_openshift(void **state)
{
    (void)state;
    kubeconfig kc;
    load_ok(D "/token.yaml", NULL, &kc);
    assert_string_equal(kc.context, "openshift-cnv/api-ocp-example-com:6443/kube:admin");
    assert_string_equal(kc.user, "kube:admin/api-ocp-example-com:6443");
    assert_string_equal(kc.server, "https://api.ocp.example.com:6443");
    assert_string_equal(kc.token, "sha256~SECRETTOKENVALUE0123456789abcdef");
    assert_string_equal(kc.namespace, "openshift-cnv");
    assert_true(kc.insecure);
    assert_null(kc.token_file);
    kubeconfig_free(&kc);
}

static void test_tokenfile_ipv6(void **state)
{
    (void)state;
    kubeconfig kc;
    load_ok(D "/tokenfile.yaml", NULL, &kc);
    assert_string_equal(kc.server, "https://[::1]:6443");
    assert_string_equal(kc.token_file, D "/token");
    assert_string_equal(kc.ca_file, "/nonexistent/absolute/ca.crt");   /* absolute kept */
    assert_false(kc.insecure);
    assert_null(kc.token);
    kubeconfig_free(&kc);
}

static void test_json_and_anchors(void **state)
{
    (void)state;
    kubeconfig kc;
    load_ok(D "/kubeconfig.json", NULL, &kc);
    assert_string_equal(kc.server, "https://json.example:443");
    assert_string_equal(kc.token, "json-token");
    assert_true(kc.ca_data.len > 0);
    kubeconfig_free(&kc);

    load_ok(D "/anchors.yaml", NULL, &kc);
    assert_string_equal(kc.context, "b");
    assert_string_equal(kc.server, "https://anchored.example:6443");
    assert_true(kc.insecure);          /* YAML 1.1 "yes" */
    assert_null(kc.user);              /* anonymous */
    assert_null(kc.token);
    kubeconfig_free(&kc);
}

static void test_list_merge(void **state)
{
    (void)state;
    kubeconfig kc;
    /* first file wins current-context and the duplicated cluster name;
     * relative paths resolve against the file that names them; missing
     * files in a list are skipped */
    load_ok(D "/multi1.yaml:" D "/missing.yaml:" D "/sub/multi2.yaml", NULL, &kc);
    assert_string_equal(kc.context, "first");
    assert_string_equal(kc.server, "https://first.example:6443");
    assert_string_equal(kc.token_file, D "/token");
    kubeconfig_free(&kc);

    load_ok(D "/multi1.yaml:" D "/sub/multi2.yaml", "second", &kc);
    assert_string_equal(kc.server, "https://only2.example:6443");
    assert_string_equal(kc.token_file, D "/sub/token");
    kubeconfig_free(&kc);

    load_ok(D "/sub/multi2.yaml:" D "/multi1.yaml", NULL, &kc);
    assert_string_equal(kc.context, "second");
    kubeconfig_free(&kc);
}

static void test_malformed(void **state)
{
    (void)state;
    load_bad(D "/bad/syntax.yaml", NULL,
             (const char *[]){ "bad/syntax.yaml", "invalid YAML", "line 6", NULL });
    load_bad(D "/bad/base64.yaml", NULL,
             (const char *[]){ "users[\"u\"].user.client-certificate-data", "not valid base64",
                               NULL });
    load_bad(D "/bad/no_server.yaml", NULL,
             (const char *[]){ "clusters[\"c\"].cluster.server: missing", NULL });
    load_bad(D "/bad/missing_cluster.yaml", NULL,
             (const char *[]){ "contexts[\"c\"].context.cluster", "cluster \"gone\" not found",
                               NULL });
    load_bad(D "/bad/missing_user.yaml", NULL,
             (const char *[]){ "user \"ghost\" not found", NULL });
    load_bad(D "/bad/exec.yaml", NULL,
             (const char *[]){ "users[\"aws\"].user.exec", "not supported", "\"aws\"", NULL });
    load_bad(D "/bad/auth_provider.yaml", NULL,
             (const char *[]){ "users[\"g\"].user.auth-provider", "not supported", "gcp", NULL });
    load_bad(D "/bad/cert_without_key.yaml", NULL,
             (const char *[]){ "users[\"u\"].user", "client-certificate given without client-key",
                               NULL });
    load_bad(D "/bad/bad_insecure.yaml", NULL,
             (const char *[]){ "insecure-skip-tls-verify: must be true or false", NULL });
    load_bad(D "/bad/not_mapping.yaml", NULL,
             (const char *[]){ "top level must be a mapping", NULL });
    load_bad(D "/bad/empty.yaml", NULL, (const char *[]){ "empty", NULL });
    load_bad(D "/bad/no_current_context.yaml", NULL,
             (const char *[]){ "no current-context set and no context given", NULL });
    load_bad(D "/bad/bad_server.yaml", NULL,
             (const char *[]){ "clusters[\"c\"].cluster.server", "not an http(s) URL", NULL });
    load_bad(D "/bad/basic_auth.yaml", NULL,
             (const char *[]){ "basic authentication is not supported", NULL });
    load_bad(D "/bad/contexts_not_list.yaml", NULL,
             (const char *[]){ "contexts: must be a list", NULL });
    load_bad(D "/bad/server_not_string.yaml", NULL,
             (const char *[]){ "clusters[\"c\"].cluster.server: must be a string", NULL });
    load_bad(D "/files.yaml", "nope", (const char *[]){ "context \"nope\" not found", NULL });
    load_bad(D "/does-not-exist.yaml", NULL,
             (const char *[]){ "does-not-exist.yaml", "No such file", NULL });
}

static void test_parse_memory(void **state)
{
    (void)state;
    static const char text[] =
        "current-context: m\n"
        "clusters: [{name: m, cluster: {server: 'http://127.0.0.1:8080', "
        "certificate-authority: rel/ca.pem}}]\n"
        "contexts: [{name: m, context: {cluster: m}}]\n";
    kubeconfig kc;
    char *err = NULL;
    assert_int_equal(kubeconfig_parse(text, sizeof text - 1, "<mem>", "/etc/k", NULL, &kc, &err),
                     0);
    assert_string_equal(kc.server, "http://127.0.0.1:8080");
    assert_string_equal(kc.ca_file, "/etc/k/rel/ca.pem");
    kubeconfig_free(&kc);
}

/* An alias inside the node its anchor names would make a reference cycle
 * that is never freed (found by tests/fuzz fuzz_kubeconfig): refused, naming
 * the alias; an alias of a finished node, or of an earlier node whose anchor
 * name is reused later, still works. */
static void test_recursive_alias(void **state)
{
    (void)state;
    static const char *const cyclic[] = {
        "current-context: m\n"
        "clusters: &c [{name: m, cluster: {server: 'https://a'}, self: *c}]\n"
        "contexts: [{name: m, context: {cluster: m}}]\n",
        "current-context: m\n"
        "clusters: [{name: m, cluster: &s {server: 'https://a', x: [*s]}}]\n"
        "contexts: [{name: m, context: {cluster: m}}]\n",
    };
    for (size_t i = 0; i < sizeof cyclic / sizeof *cyclic; i++) {
        kubeconfig kc;
        char *err = NULL;
        assert_int_equal(kubeconfig_parse(cyclic[i], strlen(cyclic[i]), "<mem>", NULL, NULL, &kc,
                                          &err), -1);
        assert_non_null(err);
        if (!strstr(err, "line 2: alias *"))
            print_error("%s\n", err);
        assert_non_null(strstr(err, "kubeconfig <mem>: line 2: alias *"));
        assert_non_null(strstr(err, "is inside the node it names"));
        free(err);
    }
    static const char fine[] =
        "current-context: m\n"
        "srv: &s {server: 'https://a'}\n"
        "other: &s [x]\n"
        "clusters: [{name: m, cluster: &s {server: 'https://b'}}, {name: n, cluster: *s}]\n"
        "contexts: [{name: m, context: {cluster: n}}]\n";
    kubeconfig kc;
    char *err = NULL;
    assert_int_equal(kubeconfig_parse(fine, sizeof fine - 1, "<mem>", NULL, NULL, &kc, &err), 0);
    assert_string_equal(kc.server, "https://b");
    kubeconfig_free(&kc);
}

/* A server URL with no host ("https://", "http:///x") is an error naming
 * the field; it used to become the server "https:" (found by tests/fuzz
 * fuzz_kubeconfig). */
static void test_server_without_host(void **state)
{
    (void)state;
    static const char *const servers[] = { "https://", "https:///", "http:///api", "https:////" };
    for (size_t i = 0; i < sizeof servers / sizeof *servers; i++) {
        char text[256];
        int n = snprintf(text, sizeof text,
                         "current-context: m\n"
                         "clusters: [{name: m, cluster: {server: '%s'}}]\n"
                         "contexts: [{name: m, context: {cluster: m}}]\n", servers[i]);
        kubeconfig kc;
        char *err = NULL;
        int rc = kubeconfig_parse(text, (size_t)n, "<mem>", NULL, NULL, &kc, &err);
        if (rc == 0)
            print_error("server '%s' accepted as '%s'\n", servers[i], kc.server);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err, "clusters[\"m\"].cluster.server"));
        assert_non_null(strstr(err, "has no host"));
        free(err);
    }
    static const char ok[] = "current-context: m\n"
                             "clusters: [{name: m, cluster: {server: 'https://h:6443//'}}]\n"
                             "contexts: [{name: m, context: {cluster: m}}]\n";
    kubeconfig kc;
    char *err = NULL;
    assert_int_equal(kubeconfig_parse(ok, sizeof ok - 1, "<mem>", NULL, NULL, &kc, &err), 0);
    assert_string_equal(kc.server, "https://h:6443");
    kubeconfig_free(&kc);
}

static void test_base64(void **state)
{
    (void)state;
    unsigned char *out;
    size_t len;
    assert_int_equal(kc_base64_decode("aGVsbG8=", &out, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "hello", 5);
    free(out);
    assert_int_equal(kc_base64_decode("aGVs\n bG8", &out, &len), 0);   /* no padding, spaces */
    assert_memory_equal(out, "hello", 5);
    free(out);
    assert_int_equal(kc_base64_decode("aGVsbA==", &out, &len), 0);
    assert_int_equal(len, 4);
    free(out);
    assert_int_equal(kc_base64_decode("aGVs*G8=", &out, &len), -1);
    assert_int_equal(kc_base64_decode("aGVsb", &out, &len), -1);        /* 5 digits */
    assert_int_equal(kc_base64_decode("aG=Vs", &out, &len), -1);        /* data after = */
}

/* ---- in-cluster --------------------------------------------------------- */

static char sa_dir[] = "/tmp/test_kubeconfig_sa_XXXXXX";

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char tmp[520];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, p), 0);   /* atomic, like kubelet's symlink swap */
}

static void test_in_cluster(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(sa_dir));
    write_file(sa_dir, "token", "sa-token-1\n");
    write_file(sa_dir, "ca.crt", "-----BEGIN CERTIFICATE-----\nQQ==\n-----END CERTIFICATE-----\n");
    write_file(sa_dir, "namespace", "ocpv-dr\n");
    setenv("OCPVDR_SA_DIR", sa_dir, 1);
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_false(kubeconfig_in_cluster_available(NULL));
    kubeconfig kc;
    char *err = NULL;
    assert_int_equal(kubeconfig_in_cluster(NULL, &kc, &err), -1);
    assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
    free(err);

    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_true(kubeconfig_in_cluster_available(NULL));
    assert_int_equal(kubeconfig_in_cluster(NULL, &kc, &err), 0);
    assert_string_equal(kc.server, "https://10.96.0.1:443");
    assert_non_null(strstr(kc.token_file, "/token"));
    assert_non_null(strstr(kc.ca_file, "/ca.crt"));
    assert_string_equal(kc.namespace, "ocpv-dr");
    assert_null(kc.token);   /* read by the client, re-read on rotation */
    kubeconfig_free(&kc);

    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    assert_int_equal(kubeconfig_in_cluster(NULL, &kc, &err), 0);
    assert_string_equal(kc.server, "https://[fd00::1]:443");
    kubeconfig_free(&kc);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);

    /* a client on the service account reads the token, and re-reads it
     * when the kubelet rotates it */
    k8s_conn conn = { .validate_certs = -1, .in_cluster = true };
    k8s_error e;
    k8s_client *c = k8s_client_new(&conn, NULL, &e);
    assert_non_null(c);
    assert_string_equal(c->token, "sa-token-1");
    assert_string_equal(k8s_client_namespace(c), "ocpv-dr");
    assert_int_equal(c->cfg.max_retries, 5);
    assert_int_equal(c->cfg.max_in_flight, 16);
    assert_string_equal(c->field_manager, "ocpv-dr");
    write_file(sa_dir, "token", "sa-token-2-rotated\n");
    pthread_mutex_lock(&c->lock);
    assert_int_equal(k8s_token_refresh(c, &e), 0);
    pthread_mutex_unlock(&c->lock);
    assert_string_equal(c->token, "sa-token-2-rotated");
    /* briefly missing during a rotation: the old token is kept */
    char p[512];
    snprintf(p, sizeof p, "%s/token", sa_dir);
    unlink(p);
    pthread_mutex_lock(&c->lock);
    assert_int_equal(k8s_token_refresh(c, &e), 0);
    pthread_mutex_unlock(&c->lock);
    assert_string_equal(c->token, "sa-token-2-rotated");
    k8s_client_free(c);

    /* no token at all: a clear error at creation */
    c = k8s_client_new(&conn, NULL, &e);
    assert_null(c);
    assert_non_null(strstr(e.message, "token"));

    snprintf(p, sizeof p, "%s/ca.crt", sa_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/namespace", sa_dir);
    unlink(p);
    rmdir(sa_dir);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    unsetenv("OCPVDR_SA_DIR");
}

/* ---- connection resolution ---------------------------------------------- */

static void clear_env(void)
{
    static const char *const vars[] = { "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT",
        "K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_VERIFY_SSL", "K8S_AUTH_SSL_CA_CERT",
        "K8S_AUTH_CERT_FILE", "K8S_AUTH_KEY_FILE", "KUBECONFIG", NULL };
    for (const char *const *v = vars; *v; v++)
        unsetenv(*v);
}

static void test_conn_env(void **state)
{
    (void)state;
    clear_env();
    setenv("K8S_AUTH_KUBECONFIG", D "/data.yaml", 1);
    setenv("K8S_AUTH_CONTEXT", "kind-dr", 1);
    setenv("K8S_AUTH_VERIFY_SSL", "no", 1);
    setenv("KUBECONFIG", "/ignored", 1);
    k8s_conn c = { .validate_certs = -1, .context = "kind-primary" };
    k8s_conn_from_env(&c);
    assert_string_equal(c.kubeconfig, D "/data.yaml");
    assert_string_equal(c.context, "kind-primary");   /* explicit wins over env */
    assert_int_equal(c.validate_certs, 0);
    assert_null(c.host);
    clear_env();

    setenv("KUBECONFIG", D "/token.yaml", 1);
    setenv("K8S_AUTH_API_KEY", "env-key", 1);
    k8s_conn c2 = { .validate_certs = -1 };
    k8s_conn_from_env(&c2);
    assert_string_equal(c2.kubeconfig, D "/token.yaml");
    assert_string_equal(c2.api_key, "env-key");
    assert_int_equal(c2.validate_certs, -1);
    clear_env();
}

static void test_conn_json(void **state)
{
    (void)state;
    json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:n}", "host", "https://h:6443",
                          "api_key", "k", "ssl_ca_cert", "/ca", "cert_file", "/c",
                          "key_file", "/k", "verify_ssl", 0, "context");
    k8s_conn c;
    k8s_conn_from_json(&c, p);
    assert_string_equal(c.host, "https://h:6443");
    assert_string_equal(c.api_key, "k");
    assert_string_equal(c.ca_cert, "/ca");
    assert_string_equal(c.client_cert, "/c");
    assert_string_equal(c.client_key, "/k");
    assert_int_equal(c.validate_certs, 0);
    assert_null(c.context);
    assert_null(c.kubeconfig);
    json_decref(p);

    p = json_pack("{s:s, s:s}", "kubeconfig", "/x", "validate_certs", "yes");
    k8s_conn_from_json(&c, p);
    assert_string_equal(c.kubeconfig, "/x");
    assert_int_equal(c.validate_certs, 1);
    json_decref(p);
    k8s_conn_from_json(&c, NULL);
    assert_int_equal(c.validate_certs, -1);
}

static void test_conn_resolve(void **state)
{
    (void)state;
    clear_env();
    kubeconfig kc;
    k8s_error e;
    /* explicit parameters override the kubeconfig */
    k8s_conn c = { .kubeconfig = D "/data.yaml", .host = "api.example:6443/",
                   .api_key = "explicit", .ca_cert = D "/ca.crt", .validate_certs = 0 };
    assert_int_equal(k8s_conn_resolve(&c, &kc, &e), 0);
    assert_string_equal(kc.server, "https://api.example:6443");
    assert_string_equal(kc.token, "explicit");
    assert_string_equal(kc.ca_file, D "/ca.crt");
    assert_int_equal(kc.ca_data.len, 0);
    assert_true(kc.insecure);
    assert_true(kc.cert_data.len > 0);   /* the kubeconfig's client cert is kept */
    kubeconfig_free(&kc);

    /* validate_certs=true beats insecure-skip-tls-verify; api_key beats tokenFile */
    k8s_conn c2 = { .kubeconfig = D "/token.yaml", .validate_certs = 1 };
    assert_int_equal(k8s_conn_resolve(&c2, &kc, &e), 0);
    assert_false(kc.insecure);
    kubeconfig_free(&kc);
    k8s_conn c3 = { .kubeconfig = D "/tokenfile.yaml", .api_key = "x", .validate_certs = -1 };
    assert_int_equal(k8s_conn_resolve(&c3, &kc, &e), 0);
    assert_null(kc.token_file);
    assert_string_equal(kc.token, "x");
    kubeconfig_free(&kc);

    /* host alone: no kubeconfig read */
    setenv("HOME", "/nonexistent-home", 1);
    k8s_conn c4 = { .host = "http://127.0.0.1:1", .validate_certs = -1 };
    assert_int_equal(k8s_conn_resolve(&c4, &kc, &e), 0);
    assert_string_equal(kc.server, "http://127.0.0.1:1");
    assert_null(kc.token);
    kubeconfig_free(&kc);

    /* nothing given: ~/.kube/config, with a clear error */
    k8s_conn c5 = { .validate_certs = -1 };
    assert_int_equal(k8s_conn_resolve(&c5, &kc, &e), -1);
    assert_non_null(strstr(e.message, "/nonexistent-home/.kube/config"));
}

static void test_client_new(void **state)
{
    (void)state;
    clear_env();
    k8s_error e;
    k8s_conn c = { .kubeconfig = D "/files.yaml", .validate_certs = -1 };
    k8s_client *cl = k8s_client_new(&c, NULL, &e);
    assert_non_null(cl);
    assert_string_equal(k8s_client_server(cl), "https://10.0.0.1:6443");
    assert_null(k8s_client_namespace(cl));
    assert_true(cl->ca.len > 0 && cl->cert.len > 0 && cl->key.len > 0);  /* loaded as blobs */
    k8s_client_free(cl);

    /* tls-server-name: URL names the SNI host, CONNECT_TO maps it back */
    k8s_conn d = { .kubeconfig = D "/data.yaml", .context = "kind-dr", .validate_certs = -1 };
    k8s_config cfg = { .max_retries = -1, .max_in_flight = 3, .field_manager = "fm" };
    cl = k8s_client_new(&d, &cfg, &e);
    assert_non_null(cl);
    assert_string_equal(cl->url_base, "https://kubernetes.default.svc:37443");
    assert_null(k8s_client_namespace(cl));   /* kind-dr has none */
    assert_string_equal(cl->connect_to->data, "kubernetes.default.svc:37443:127.0.0.1:37443");
    assert_int_equal(cl->cfg.max_retries, 0);
    assert_int_equal(cl->cfg.max_in_flight, 3);
    assert_string_equal(cl->field_manager, "fm");
    k8s_client_free(cl);

    /* a path prefix on the server survives the tls-server-name rewrite */
    d.host = "https://10.1.2.3:8443/k8s/clusters/c-1/";
    cl = k8s_client_new(&d, &cfg, &e);
    assert_non_null(cl);
    assert_string_equal(k8s_client_server(cl), "https://10.1.2.3:8443/k8s/clusters/c-1");
    assert_string_equal(cl->url_base, "https://kubernetes.default.svc:8443/k8s/clusters/c-1");
    assert_string_equal(cl->connect_to->data, "kubernetes.default.svc:8443:10.1.2.3:8443");
    k8s_client_free(cl);

    /* a missing CA file fails at creation, naming the parameter and path */
    k8s_conn f = { .kubeconfig = D "/tokenfile.yaml", .validate_certs = -1 };
    assert_null(k8s_client_new(&f, NULL, &e));
    assert_non_null(strstr(e.message, "ca_cert /nonexistent/absolute/ca.crt"));

    /* the token never appears in errors */
    k8s_conn g = { .kubeconfig = D "/token.yaml", .client_cert = "/nonexistent/c.pem",
                   .client_key = D "/client.key", .validate_certs = -1 };
    assert_null(k8s_client_new(&g, NULL, &e));
    assert_non_null(strstr(e.message, "client_cert /nonexistent/c.pem"));
    assert_null(strstr(e.message, "SECRET"));
    char buf[1200];
    assert_null(strstr(k8s_strerror(&e, buf, sizeof buf), "SECRET"));

    /* kubeconfig errors come through k8s_client_new unchanged */
    k8s_conn h = { .kubeconfig = D "/bad/exec.yaml", .validate_certs = -1 };
    assert_null(k8s_client_new(&h, NULL, &e));
    assert_non_null(strstr(e.message, "exec credential plugins are not supported"));
}

/* k8s_conn_opts[] through the real module runtime: aliases, env fallbacks,
 * no_log masking, and k8s_conn_from_json on the validated parameters. */
static void test_conn_opts_spec(void **state)
{
    (void)state;
    clear_env();
    setenv("K8S_AUTH_HOST", "https://from-env:6443", 1);
    setenv("K8S_AUTH_API_KEY", "SECRET-env-key", 1);
    static mod_opt opts[K8S_CONN_OPT_COUNT + 2];
    size_t n = 0;
    while (k8s_conn_opts[n].name)
        n++;
    assert_int_equal(n, K8S_CONN_OPT_COUNT);
    memcpy(opts, k8s_conn_opts, n * sizeof opts[0]);
    opts[n] = (mod_opt){ .name = "name", .type = OPT_STR };
    static const mod_spec spec = { .name = "conn_test", .opts = opts };
    json_t *args = json_pack("{s:s, s:s, s:s, s:s, s:s}", "verify_ssl", "no", "ssl_ca_cert",
                             "/ca.pem", "cert_file", "/c.pem", "key_file", "/k.pem",
                             "name", "x");
    module m;
    char *err = NULL;
    int rc = mod_parse(&m, &spec, args, &err);
    if (rc != 0)
        print_error("mod_parse: %s\n", err);
    assert_int_equal(rc, 0);
    k8s_conn c;
    k8s_conn_from_json(&c, m.params);
    assert_string_equal(c.host, "https://from-env:6443");
    assert_string_equal(c.api_key, "SECRET-env-key");
    assert_string_equal(c.ca_cert, "/ca.pem");
    assert_string_equal(c.client_cert, "/c.pem");
    assert_string_equal(c.client_key, "/k.pem");
    assert_int_equal(c.validate_certs, 0);
    assert_null(c.kubeconfig);
    json_t *res = mod_render(&m, false, NULL);
    char *text = json_dumps(res, 0);
    assert_null(strstr(text, "SECRET-env-key"));   /* api_key is no_log */
    free(text);
    json_decref(res);
    mod_free(&m);
    json_decref(args);

    /* validate_certs absent: not forced either way (kubeconfig decides) */
    clear_env();
    args = json_pack("{s:s}", "kubeconfig", D "/token.yaml");
    assert_int_equal(mod_parse(&m, &spec, args, &err), 0);
    k8s_conn_from_json(&c, m.params);
    assert_int_equal(c.validate_certs, -1);
    kubeconfig kc;
    k8s_error e;
    assert_int_equal(k8s_conn_resolve(&c, &kc, &e), 0);
    assert_true(kc.insecure);
    kubeconfig_free(&kc);
    mod_free(&m);
    json_decref(args);
}

/* Truncations and byte flips of every sample must fail or succeed cleanly
 * (the sanitizer and valgrind runs make this a memory-safety test). */
static void test_mutations(void **state)
{
    (void)state;
    static const char *const files[] = { "files.yaml", "data.yaml", "token.yaml",
        "kubeconfig.json", "anchors.yaml", "bad/exec.yaml", NULL };
    unsigned seed = 12345;
    int ok = 0, failed = 0;
    for (const char *const *f = files; *f; f++) {
        char path[512], *text;
        size_t len;
        snprintf(path, sizeof path, D "/%s", *f);
        read_whole(path, &text, &len);
        for (int i = 0; i < 150; i++) {
            char *m = malloc(len + 1);
            memcpy(m, text, len + 1);
            size_t mlen = len;
            seed = seed * 1103515245u + 12345u;
            if (i % 3 == 0) {
                mlen = seed % (len + 1);           /* truncate */
            } else {
                for (int k = 0; k < 1 + i % 4; k++) {
                    seed = seed * 1103515245u + 12345u;
                    static const char pool[] = ":-[]{}&*!|>'\"\n #\t\\\x80\xff";
                    m[seed % len] = pool[(seed >> 16) % (sizeof pool - 1)];
                }
            }
            kubeconfig kc;
            char *err = NULL;
            if (kubeconfig_parse(m, mlen, "mut", D, NULL, &kc, &err) == 0) {
                assert_non_null(kc.server);
                kubeconfig_free(&kc);
                ok++;
            } else {
                assert_non_null(err);
                assert_non_null(strstr(err, "mut"));   /* every error names the source */
                free(err);
                failed++;
            }
            free(m);
        }
        free(text);
    }
    assert_true(ok > 0 && failed > 0);
}

/* A CR, LF or any control character in a bearer token would end or split
 * the Authorization header (header injection): refused wherever a token
 * comes from - kubeconfig token, api_key (parameter or K8S_AUTH_API_KEY),
 * token file (also on rotation) - with an error naming the field and never
 * the token. */
static void test_token_control_chars(void **state)
{
    (void)state;
    clear_env();
    static const char *const bad_tokens[] = {
        "\"SECRET-a\\r\\nX-Injected: 1\"", "\"SECRET-a\\nb\"", "\"SECRET-\\tx\"",
        "\"SECRET-\\u007f\"", "|\n      SECRET-block-scalar\n", NULL };
    for (const char *const *t = bad_tokens; *t; t++) {
        char text[1024];
        int n = snprintf(text, sizeof text,
                         "current-context: m\n"
                         "clusters: [{name: m, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
                         "contexts: [{name: m, context: {cluster: m, user: u}}]\n"
                         "users:\n- name: u\n  user:\n    token: %s\n", *t);
        kubeconfig kc;
        char *err = NULL;
        int rc = kubeconfig_parse(text, (size_t)n, "<mem>", NULL, NULL, &kc, &err);
        if (rc == 0)
            print_error("token %s was accepted\n", *t);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err, "kubeconfig <mem>: users[\"u\"].user.token: contains a "
                                    "control character"));
        assert_null(strstr(err, "SECRET"));
        assert_null(strstr(err, "Injected"));
        free(err);
    }
    /* the same token without the control character is fine */
    static const char good[] =
        "current-context: m\n"
        "clusters: [{name: m, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        "contexts: [{name: m, context: {cluster: m, user: u}}]\n"
        "users: [{name: u, user: {token: 'SECRET-a X-Injected: 1'}}]\n";
    kubeconfig kc;
    char *err = NULL;
    assert_int_equal(kubeconfig_parse(good, sizeof good - 1, "<mem>", NULL, NULL, &kc, &err), 0);
    kubeconfig_free(&kc);
    assert_int_equal(kc_token_check("abc"), -1);
    assert_int_equal(kc_token_check("ab\rc"), 2);

    /* api_key: the parameter and K8S_AUTH_API_KEY */
    k8s_error e;
    k8s_conn c = { .host = "https://127.0.0.1:6443", .api_key = "SECRET-k\r\nX-Injected: 1",
                   .validate_certs = -1 };
    assert_int_equal(k8s_conn_resolve(&c, &kc, &e), -1);
    assert_non_null(strstr(e.message, "api_key: contains a control character"));
    assert_null(strstr(e.message, "SECRET"));
    assert_null(k8s_client_new(&c, NULL, &e));
    assert_non_null(strstr(e.message, "api_key"));
    setenv("K8S_AUTH_HOST", "https://127.0.0.1:6443", 1);
    setenv("K8S_AUTH_API_KEY", "SECRET-env\nX-Injected: 1", 1);
    k8s_conn env = { .validate_certs = -1 };
    k8s_conn_from_env(&env);
    assert_null(k8s_client_new(&env, NULL, &e));
    assert_non_null(strstr(e.message, "api_key: contains a control character"));
    assert_null(strstr(e.message, "SECRET"));
    clear_env();

    /* token file: at creation, and when a rotation brings one */
    char dir[] = "/tmp/test_kubeconfig_tok_XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_file(dir, "token", "SECRET-file\nX-Injected: 1\n");
    char kcfg[1024];
    int n = snprintf(kcfg, sizeof kcfg,
                     "current-context: m\n"
                     "clusters: [{name: m, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
                     "contexts: [{name: m, context: {cluster: m, user: u}}]\n"
                     "users: [{name: u, user: {tokenFile: '%s/token'}}]\n", dir);
    write_file(dir, "config", kcfg);
    (void)n;
    char cpath[600];
    snprintf(cpath, sizeof cpath, "%s/config", dir);
    k8s_conn f = { .kubeconfig = cpath, .validate_certs = -1 };
    assert_null(k8s_client_new(&f, NULL, &e));
    assert_non_null(strstr(e.message, "/token: the token contains a control character"));
    assert_null(strstr(e.message, "SECRET"));
    write_file(dir, "token", "SECRET-good\r\n");   /* a trailing CR LF is trimmed */
    k8s_client *cl = k8s_client_new(&f, NULL, &e);
    assert_non_null(cl);
    assert_string_equal(cl->token, "SECRET-good");
    write_file(dir, "token", "SECRET-rot\rX-Injected: 1");
    pthread_mutex_lock(&cl->lock);
    assert_int_equal(k8s_token_refresh(cl, &e), -1);
    pthread_mutex_unlock(&cl->lock);
    assert_null(strstr(e.message, "SECRET"));
    k8s_client_free(cl);
    snprintf(cpath, sizeof cpath, "%s/token", dir);
    unlink(cpath);
    snprintf(cpath, sizeof cpath, "%s/config", dir);
    unlink(cpath);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_data),
        cmocka_unit_test(test_token_openshift),
        cmocka_unit_test(test_tokenfile_ipv6),
        cmocka_unit_test(test_json_and_anchors),
        cmocka_unit_test(test_list_merge),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_parse_memory),
        cmocka_unit_test(test_recursive_alias),
        cmocka_unit_test(test_server_without_host),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_in_cluster),
        cmocka_unit_test(test_conn_env),
        cmocka_unit_test(test_conn_json),
        cmocka_unit_test(test_conn_resolve),
        cmocka_unit_test(test_client_new),
        cmocka_unit_test(test_conn_opts_spec),
        cmocka_unit_test(test_token_control_chars),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
