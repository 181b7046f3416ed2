/* test_forwarder.c - unit tests of the event forwarder's parts: config
 * parsing/validation, the hash table, noise control, payload shape, the
 * coalescing per-object queue, the state journal (restart diff with
 * deletions), the payload's scopeNamespace on every event path, HMAC
 * signing as ansible-rulebook verifies it, delivery to a local
 * libmicrohttpd receiver (token, signature, retries on 5xx, per-object
 * order) and the /healthz /readyz /metrics endpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "deliver.h"
#include "dict.h"
#include "clock.h"
#include "event.h"
#include "ops_http.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "noise.h"
#include "payload.h"
#include "queue.h"
#include "state.h"
#include "watch_raw.h"
#include "watcher.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const ENV_VARS[] = {
    "WEBHOOK_URL", "WEBHOOK_TOKEN", "WEBHOOK_TOKEN_FILE", "WEBHOOK_HMAC_SECRET",
    "WEBHOOK_HMAC_SECRET_FILE", "WEBHOOK_HMAC_ALGO", "WEBHOOK_HMAC_HEADER", "WEBHOOK_HMAC_FORMAT",
    "WATCH_NAMESPACES", "WATCH_RESOURCES", "STATE_DIR", "LOG_LEVEL", "CLUSTER_NAME", "QUEUE_MAX",
    "WEBHOOK_PARALLEL", "LISTEN_ADDRESS", "KUBECONFIG", "INITIAL_SYNC", "WEBHOOK_VERIFY_TLS",
    "WEBHOOK_ALLOW_INSECURE_HTTP", "WEBHOOK_REJECT_ATTEMPTS", "DELIVERY_STALL_SECONDS",
    "WEBHOOK_BACKOFF_MIN_MS", "WEBHOOK_BACKOFF_MAX_MS", NULL };

static void clear_env(void)
{
    for (int i = 0; ENV_VARS[i]; i++)
        unsetenv(ENV_VARS[i]);
}

static json_t *pvc(const char *uid, const char *ns, const char *name, const char *rv)
{
    return json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:s,s:[{s:s}]},s:{s:s,s:s},s:{s:s}}",
                     "apiVersion", "v1", "kind", "PersistentVolumeClaim", "metadata",
                     "name", name, "namespace", ns, "uid", uid, "resourceVersion", rv,
                     "managedFields", "manager", "kubectl", "spec", "storageClassName",
                     "nfs-csi", "volumeName", "pv-1", "status", "phase", "Bound");
}

/* ---- config ------------------------------------------------------------ */

static void test_config_defaults_and_env(void **s)
{
    (void)s;
    clear_env();
    setenv("WEBHOOK_URL", "https://eda:5000/endpoint", 1);
    setenv("WATCH_NAMESPACES", " vm-prod, vm-dev ,,", 1);
    setenv("WEBHOOK_TOKEN", "s3cr3t-token", 1);
    fwd_config c;
    char err[512] = "";
    char *argv[] = { "fwd", "--resources=pvc,VolumeSnapshot", "--parallel", "8", NULL };
    assert_int_equal(config_load(&c, 4, argv, err, sizeof err), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_string_equal(c.webhook_url, "https://eda:5000/endpoint");
    assert_false(c.allow_insecure_http);
    assert_true(c.webhook_verify_tls);
    assert_int_equal(c.reject_attempts, 3);
    assert_int_equal(c.stall_s, 120);
    assert_int_equal(c.n_namespaces, 2);
    assert_string_equal(c.namespaces[0], "vm-prod");
    assert_string_equal(c.namespaces[1], "vm-dev");
    assert_int_equal(c.kinds_mask, (1u << FWD_PVC) | (1u << FWD_VS));
    assert_int_equal(c.parallel, 8);
    assert_string_equal(c.hmac_algo, "sha256");
    assert_string_equal(c.hmac_header, "x-hub-signature-256");
    assert_string_equal(c.hmac_format, "hex");
    assert_string_equal(c.cluster_name, "primary");
    /* the summary never carries the token */
    json_t *sum = config_summary(&c);
    char *dump = json_dumps(sum, 0);
    assert_null(strstr(dump, "s3cr3t-token"));
    free(dump);
    json_decref(sum);
    config_free(&c);
    log_clear_secrets();
    clear_env();
}

static void expect_error(char **argv, int argc, const char *needle)
{
    fwd_config c;
    char err[512] = "";
    int rc = config_load(&c, argc, argv, err, sizeof err);
    if (rc == 0)
        rc = config_validate(&c, err, sizeof err);
    if (rc == 0 || !strstr(err, needle))
        fail_msg("expected an error containing \"%s\", got rc=%d \"%s\"", needle, rc, err);
    config_free(&c);
    log_clear_secrets();
}

static void test_config_errors(void **s)
{
    (void)s;
    clear_env();
    expect_error((char *[]){ "fwd", NULL }, 1, "WEBHOOK_URL is required");
    expect_error((char *[]){ "fwd", "--webhook-url=ftp://x", NULL }, 2, "http:// or https://");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--resources=pv,pods", NULL }, 3,
                 "unknown resource \"pods\"");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--hmac-secret=abcdef",
                             "--hmac-format=raw", NULL }, 4, "WEBHOOK_HMAC_FORMAT");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--hmac-secret=abcdef",
                             "--hmac-algo=nosuch", NULL }, 4, "WEBHOOK_HMAC_ALGO");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--namespaces=Bad_NS", NULL }, 3,
                 "not a valid namespace");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--parallel=abc", NULL }, 3,
                 "not a non-negative integer");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--bogus", NULL }, 3,
                 "unknown flag --bogus");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--state-dir=/nonexistent/x", NULL }, 3,
                 "STATE_DIR");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--webhook-token=a",
                             "--webhook-token-file=/etc/hostname", NULL }, 4, "both set");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--webhook-client-cert=/etc/hostname",
                             NULL }, 3, "go together");
    /* numeric ranges come from the option table, flag or environment alike */
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--parallel=257", NULL }, 3,
                 "WEBHOOK_PARALLEL (--parallel): 257 is out of range 1..256");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--parallel=0", NULL }, 3,
                 "out of range 1..256");
    setenv("QUEUE_MAX", "0", 1);
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", NULL }, 2,
                 "QUEUE_MAX (--queue-max): 0 is below the minimum 1");
    unsetenv("QUEUE_MAX");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--watch-timeout=0", NULL }, 3,
                 "WATCH_TIMEOUT_SECONDS");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--backoff-min-ms=500",
                             "--backoff-max-ms=100", NULL }, 4, "need min <= max");
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--initial-sync=lots", NULL }, 3,
                 "INITIAL_SYNC");
}

/* --help is generated from the option table: every option, its variable,
 * its range and default. */
static void test_config_help(void **s)
{
    (void)s;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_usage(f);
    fclose(f);
    const char *want[] = { "--webhook-url", "WEBHOOK_URL", "--parallel", "WEBHOOK_PARALLEL",
                           "[1..256] [default: 4]", "--queue-max", "[>= 1] [default: 2048]",
                           "--initial-sync", "INITIAL_SYNC", "[default: stream]",
                           "--check-config", "--help", NULL };
    for (int i = 0; want[i]; i++)
        if (!strstr(buf, want[i]))
            fail_msg("--help lacks \"%s\"", want[i]);
    free(buf);
}

/* A plain http:// webhook would carry the bearer token (and every event) in
 * clear text: refused unless WEBHOOK_ALLOW_INSECURE_HTTP / --allow-insecure-http
 * says so; every transport that is not verified TLS gives a start-up warning. */
static void test_config_insecure_http(void **s)
{
    (void)s;
    clear_env();
    expect_error((char *[]){ "fwd", "--webhook-url=http://eda:5000/x", "--webhook-token=tok-9999",
                             NULL }, 3,
                 "WEBHOOK_URL: plain http:// would send the bearer token (WEBHOOK_TOKEN) and every "
                 "event in clear text");
    expect_error((char *[]){ "fwd", "--webhook-url=HTTP://eda:5000/x", NULL }, 2,
                 "WEBHOOK_ALLOW_INSECURE_HTTP=true (--allow-insecure-http)");
    /* the setting's own errors come first */
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--namespaces=Bad_NS", NULL }, 3,
                 "not a valid namespace");
    /* --allow-insecure-http=false is no permission */
    expect_error((char *[]){ "fwd", "--webhook-url=http://x", "--allow-insecure-http=false", NULL },
                 3, "plain http://");

    struct { char *argv[4]; int argc; const char *env; int nwarn; const char *setting; } ok[] = {
        { { "fwd", "--webhook-url=https://eda/x", NULL }, 2, NULL, 0, NULL },
        { { "fwd", "--webhook-url=http://eda/x", "--allow-insecure-http", NULL }, 3, NULL, 1,
          "WEBHOOK_ALLOW_INSECURE_HTTP" },
        { { "fwd", "--webhook-url=http://eda/x", NULL }, 2, "WEBHOOK_ALLOW_INSECURE_HTTP", 1,
          "WEBHOOK_ALLOW_INSECURE_HTTP" },
        { { "fwd", "--webhook-url=https://eda/x", "--webhook-verify-tls=false", NULL }, 3, NULL, 1,
          "WEBHOOK_VERIFY_TLS" },
        { { "fwd", "--webhook-url=https://eda/x", "--allow-insecure-http", NULL }, 3, NULL, 1,
          "WEBHOOK_ALLOW_INSECURE_HTTP" },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        clear_env();
        if (ok[i].env)
            setenv(ok[i].env, "true", 1);
        fwd_config c;
        char err[512] = "";
        assert_int_equal(config_load(&c, ok[i].argc, ok[i].argv, err, sizeof err), 0);
        if (config_validate(&c, err, sizeof err) != 0)
            fail_msg("case %zu: %s", i, err);
        json_t *w = config_transport_warnings(&c, "https://api:6443", false);
        if (json_array_size(w) != (size_t)ok[i].nwarn)
            fail_msg("case %zu: %zu warnings, want %d", i, json_array_size(w), ok[i].nwarn);
        if (ok[i].setting) {
            assert_string_equal(jx_str(json_array_get(w, 0), "setting"), ok[i].setting);
            assert_non_null(strstr(jx_str(json_array_get(w, 0), "msg"),
                                   i == 4 ? "plain http:// webhooks are accepted" : "INSECURE"));
        }
        json_decref(w);
        /* the Kubernetes side: TLS verification skipped, or plain http */
        w = config_transport_warnings(&c, "https://api:6443", true);
        assert_int_equal(json_array_size(w), (size_t)ok[i].nwarn + 1);
        assert_non_null(strstr(jx_str(json_array_get(w, (size_t)ok[i].nwarn), "msg"),
                               "Kubernetes API TLS verification is off"));
        json_decref(w);
        w = config_transport_warnings(&c, "http://api:8080", false);
        assert_int_equal(json_array_size(w), (size_t)ok[i].nwarn + 1);
        assert_non_null(strstr(jx_str(json_array_get(w, (size_t)ok[i].nwarn), "msg"),
                               "Kubernetes API server is plain http://"));
        json_decref(w);
        config_free(&c);
        log_clear_secrets();
    }
    clear_env();
}

/* The text log_j writes for one ERROR line "server said" with fields
 * (stolen); malloc'd. */
static char *logged(json_t *fields)
{
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *mem = open_memstream(&logbuf, &loglen);
    assert_non_null(mem);
    log_set_stream(mem);
    log_j(LOGL_ERROR, "server said", fields);
    log_set_stream(NULL);
    fclose(mem);
    return logbuf;
}

static void test_config_secret_file_and_scrub(void **s)
{
    (void)s;
    clear_env();
    char path[] = "/tmp/fwdtokXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "tok-from-file-123\n", 18), 18);
    close(fd);
    fwd_config c;
    char err[512] = "";
    char arg[64];
    snprintf(arg, sizeof arg, "--webhook-token-file=%s", path);
    char *argv[] = { "fwd", "--webhook-url=https://eda/x", arg, NULL };
    assert_int_equal(config_load(&c, 3, argv, err, sizeof err), 0);
    assert_string_equal(c.token, "tok-from-file-123");
    /* the token is scrubbed from any log line */
    char *logbuf = logged(json_pack("{s:s}", "body", "invalid token tok-from-file-123 given"));
    assert_null(strstr(logbuf, "tok-from-file-123"));
    assert_non_null(strstr(logbuf, "invalid token ******** given"));
    json_t *line = json_loads(logbuf, 0, NULL);
    assert_non_null(line);
    assert_string_equal(jx_str(line, "level"), "error");
    assert_string_equal(jx_str(line, "msg"), "server said");
    json_decref(line);
    free(logbuf);
    config_free(&c);
    log_clear_secrets();
    unlink(path);
}

/* Every string of a parsed log line, member names included, concatenated
 * with '|' (to look for a secret in what a reader of the log gets back). */
static void strings_of(json_t *v, char **acc)
{
    const char *k;
    json_t *m;
    size_t i;
    char *n = NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (asprintf(&n, "%s|%s", *acc, json_string_value(v)) >= 0) {
            free(*acc);
            *acc = n;
        }
        break;
    case JSON_OBJECT:
        json_object_foreach(v, k, m) {
            if (asprintf(&n, "%s|%s", *acc, k) >= 0) {
                free(*acc);
                *acc = n;
            }
            strings_of(m, acc);
        }
        break;
    case JSON_ARRAY:
        json_array_foreach(v, i, m)
            strings_of(m, acc);
        break;
    default:
        break;
    }
}

/* Secrets with characters JSON escapes ('"', '\\', control characters,
 * non-ASCII under JSON_ENSURE_ASCII) are scrubbed too: the scrub runs on
 * the values before the line is serialized (it used to run on the
 * serialized text, where such a secret reads differently and survived).
 * A secret's escaped form quoted by a peer (a JSON error body logged as
 * text) is scrubbed as well. */
static void test_log_scrub_before_escaping(void **s)
{
    (void)s;
    static const char *const secrets[] = {
        "tok\"quote-7781", "back\\slash-7781", "ctl\x01\x1f-7781", "caf\xc3\xa9-7781",
        "nl\nand\ttab-7781", "plain-secret-7781", NULL };
    for (int i = 0; secrets[i]; i++) {
        const char *sec = secrets[i];
        log_add_secret(sec);
        json_t *jesc = json_string(sec);
        char *esc = json_dumps(jesc, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);   /* "..." */
        json_decref(jesc);
        esc[strlen(esc) - 1] = '\0';
        char *body = NULL, *echo = NULL, *key = NULL;
        assert_true(asprintf(&body, "before %s after", sec) > 0);
        assert_true(asprintf(&echo, "{\"detail\": \"bad %s\"}", esc + 1) > 0);  /* as a peer sends it */
        assert_true(asprintf(&key, "k-%s", sec) > 0);
        json_t *f = json_pack("{s:s,s:s,s:[s,{s:s}],s:s}", "body", body, "response", echo,
                              "nested", "x", "deep", sec, key, "v");
        assert_non_null(f);
        char *logbuf = logged(f);
        /* neither the secret nor its escaped form is in the text */
        if (strstr(logbuf, sec) || strstr(logbuf, esc + 1))
            fail_msg("secret #%d reached the log text: %s", i, logbuf);
        /* nor in what a reader parses back */
        json_t *line = json_loads(logbuf, 0, NULL);
        assert_non_null(line);
        char *all = strdup("");
        strings_of(line, &all);
        if (strstr(all, sec))
            fail_msg("secret #%d survives in the parsed log line: %s", i, logbuf);
        assert_string_equal(jx_str(line, "body"), "before ******** after");
        assert_string_equal(jx_str(line, "response"), "{\"detail\": \"bad ********\"}");
        assert_string_equal(json_string_value(json_object_get(json_array_get(
            json_object_get(line, "nested"), 1), "deep")), "********");
        assert_non_null(json_object_get(line, "k-********"));
        assert_string_equal(jx_str(line, "msg"), "server said");
        free(all);
        json_decref(line);
        free(logbuf);
        free(body);
        free(echo);
        free(key);
        free(esc);
    }
    log_clear_secrets();
}

/* The log applies lib/base/secrets.h's rules: the longest secret is masked
 * whole whatever the order of registration (a shorter one registered first
 * used to leave the rest of the longer one in the line), a short secret is
 * masked too (values under 4 bytes used to be ignored), one mask token. */
static void test_log_scrub_rules(void **s)
{
    (void)s;
    log_add_secret("abcd-7781");
    log_add_secret("abcd-7781-longer-part");
    log_add_secret("k9z");
    char *logbuf = logged(json_pack("{s:s,s:s}", "a", "got abcd-7781-longer-part!",
                                    "b", "short k9z."));
    json_t *line = json_loads(logbuf, 0, NULL);
    assert_non_null(line);
    assert_string_equal(jx_str(line, "a"), "got ********!");
    assert_string_equal(jx_str(line, "b"), "short ********.");
    json_decref(line);
    free(logbuf);
    char *c = log_scrub("x abcd-7781-longer-part k9z");
    assert_string_equal(c, "x ******** ********");
    free(c);
    log_clear_secrets();
}

/* ---- dict ------------------------------------------------------------ */

static void test_dict(void **s)
{
    (void)s;
    enum { N = 20000 };
    dict d;
    dict_init(&d);
    char (*keys)[16] = malloc(N * sizeof *keys);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], 16, "k%d", i);
        assert_int_equal(dict_put(&d, keys[i], (void *)(intptr_t)(i + 1)), 0);
    }
    for (int i = 0; i < N; i += 3)
        assert_int_equal((intptr_t)dict_del(&d, keys[i]), i + 1);
    for (int i = 0; i < N; i++) {
        intptr_t v = (intptr_t)dict_get(&d, keys[i]);
        assert_int_equal(v, i % 3 == 0 ? 0 : i + 1);
    }
    size_t n = 0;
    const char *k;
    void *v;
    for (size_t it = 0; dict_next(&d, &it, &k, &v);)
        n++;
    assert_int_equal(n, d.len);
    assert_int_equal(d.len, N - (N + 2) / 3);
    dict_free(&d);
    free(keys);
}

/* ---- noise + payload -------------------------------------------------- */

static void test_noise(void **s)
{
    (void)s;
    json_t *a = pvc("u1", "vm-prod", "data", "10");
    uint64_t h1 = noise_hash(a);
    json_t *b = pvc("u1", "vm-prod", "data", "11");
    jx_set(b, "metadata.managedFields", json_pack("[{s:s}]", "manager", "other"));
    assert_int_equal(noise_hash(b), h1);                  /* only rv/managedFields */
    assert_string_equal(jx_str(b, "metadata.resourceVersion"), "11");   /* restored */
    assert_non_null(jx_get(b, "metadata.managedFields"));
    jx_set(b, "status.phase", json_string("Lost"));
    assert_int_not_equal(noise_hash(b), h1);              /* status counts */
    json_t *vs = json_pack("{s:s,s:{s:s,s:s},s:{s:b}}", "kind", "VolumeSnapshot", "metadata",
                           "name", "s", "uid", "u2", "status", "readyToUse", 0);
    uint64_t v1 = noise_hash(vs);
    jx_set(vs, "status.readyToUse", json_true());
    assert_int_not_equal(noise_hash(vs), v1);
    json_decref(a);
    json_decref(b);
    json_decref(vs);
}

static void test_payload(void **s)
{
    (void)s;
    json_t *o = pvc("u1", "vm-prod", "data", "10");
    fwd_event *ev = fwd_event_new(EV_MODIFIED, FWD_PVC, ORIGIN_WATCH, o, 7);
    ev->seq = 42;
    ev->observed = 1795089600.25;   /* 2026-11-19T12:00:00.250Z */
    json_t *p = payload_build(ev, "primary");
    assert_string_equal(jx_str(p, "type"), "MODIFIED");
    assert_string_equal(jx_str(p, "kind"), "PersistentVolumeClaim");
    assert_string_equal(jx_str(p, "apiVersion"), "v1");
    assert_string_equal(jx_str(p, "namespace"), "vm-prod");
    assert_string_equal(jx_str(p, "name"), "data");
    assert_string_equal(jx_str(p, "uid"), "u1");
    assert_string_equal(jx_str(p, "resourceVersion"), "10");
    assert_string_equal(jx_str(p, "cluster"), "primary");
    assert_string_equal(jx_str(p, "origin"), "watch");
    assert_int_equal(jx_int(p, "sequence", 0), 42);
    assert_string_equal(jx_str(p, "observedAt"), "2026-11-19T12:00:00.250Z");
    assert_string_equal(jx_str(p, "resource.spec.storageClassName"), "nfs-csi");
    json_decref(p);
    fwd_event_free(ev);
    /* cluster-scoped: namespace is null */
    json_t *pv = json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "apiVersion", "v1", "kind",
                           "PersistentVolume", "metadata", "name", "pv-1", "uid", "u9",
                           "namespace", "ignored");
    ev = fwd_event_new(EV_ADDED, FWD_PV, ORIGIN_LIST, pv, 1);
    p = payload_build(ev, "c");
    assert_true(json_is_null(json_object_get(p, "namespace")));
    json_decref(p);
    fwd_event_free(ev);
    json_decref(pv);
    json_decref(o);
}

static void test_noise_member_order_and_nesting(void **s)
{
    (void)s;
    /* the same object with members in another order hashes the same */
    json_t *a = json_loads("{\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"x\","
                           "\"uid\":\"u\",\"labels\":{\"a\":\"1\",\"b\":\"2\"}},"
                           "\"spec\":{\"accessModes\":[\"ReadWriteOnce\",\"ReadOnlyMany\"]}}", 0, NULL);
    json_t *b = json_loads("{\"spec\":{\"accessModes\":[\"ReadWriteOnce\",\"ReadOnlyMany\"]},"
                           "\"metadata\":{\"labels\":{\"b\":\"2\",\"a\":\"1\"},\"uid\":\"u\","
                           "\"resourceVersion\":\"9\",\"name\":\"x\"},\"kind\":\"PersistentVolumeClaim\"}",
                           0, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(noise_hash(a), noise_hash(b));
    uint64_t h = noise_hash(a);
    /* array order counts */
    json_array_insert_new(json_object_get(json_object_get(a, "spec"), "accessModes"), 0,
                          json_string("ReadOnlyMany"));
    json_array_remove(json_object_get(json_object_get(a, "spec"), "accessModes"), 2);
    assert_int_not_equal(noise_hash(a), h);
    /* a value moved to another key counts; a deep change counts */
    jx_set(b, "metadata.labels.a", json_string("2"));
    jx_set(b, "metadata.labels.b", json_string("1"));
    assert_int_not_equal(noise_hash(b), h);
    /* resourceVersion only ignored in metadata, not elsewhere */
    json_t *c = json_deep_copy(b);
    jx_set(c, "spec.resourceVersion", json_string("1"));
    assert_int_not_equal(noise_hash(c), noise_hash(b));
    /* 1 and "1" and 1.0 differ */
    jx_set(c, "spec.resourceVersion", json_integer(1));
    uint64_t hi = noise_hash(c);
    jx_set(c, "spec.resourceVersion", json_real(1.0));
    assert_int_not_equal(noise_hash(c), hi);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

/* The delivered body splices the object's text in as received: it parses to
 * the same payload as payload_build, and the text is kept byte for byte. */
static void test_payload_raw_passthrough(void **s)
{
    (void)s;
    const char *raw = "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":"
                      "{\"name\":\"d\\u00e9j\u00e0\",\"namespace\":\"vm-prod\",\"uid\":\"u7\","
                      "\"resourceVersion\":\"5\"},\"spec\":{\"z\":1,\"a\":[1,2.5,null,true]}}";
    json_t *o = json_loads(raw, 0, NULL);
    assert_non_null(o);
    fwd_event *ev = fwd_event_new_raw(EV_ADDED, FWD_PVC, ORIGIN_WATCH, o, raw, strlen(raw), 3);
    assert_non_null(ev);
    ev->seq = 7;
    assert_string_equal(ev->name, "d\u00e9j\u00e0");
    size_t len = 0;
    char *body = payload_dump(ev, "c\"1", &len);
    assert_non_null(body);
    assert_int_equal(len, strlen(body));
    assert_non_null(strstr(body, raw));                       /* verbatim */
    json_t *parsed = json_loads(body, 0, NULL);
    json_t *built = payload_build(ev, "c\"1");
    assert_non_null(parsed);
    assert_true(json_equal(parsed, built));
    assert_string_equal(jx_str(parsed, "cluster"), "c\"1");
    /* fwd_event_new serializes the tree instead: same payload */
    fwd_event *ev2 = fwd_event_new(EV_ADDED, FWD_PVC, ORIGIN_WATCH, o, 3);
    ev2->seq = 7;
    ev2->observed = ev->observed;
    char *body2 = payload_dump(ev2, "c\"1", NULL);
    json_t *parsed2 = json_loads(body2, 0, NULL);
    assert_true(json_equal(parsed, parsed2));
    free(body);
    free(body2);
    json_decref(parsed);
    json_decref(parsed2);
    json_decref(built);
    fwd_event_free(ev);
    fwd_event_free(ev2);
    json_decref(o);
}

/* The object's text taken from a watch line (watch_raw.c) is exactly the
 * parsed object: a line with more after the object (a hostile proxy, or a
 * duplicated key) must not get its extra members spliced into the payload,
 * where they would override header fields such as scopeNamespace (found by
 * tests/fuzz fuzz_watch_lines). */
static void test_watch_raw_object(void **s)
{
    (void)s;
    static const char obj[] = "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":"
                              "{\"name\":\"d\",\"namespace\":\"vm-prod\",\"uid\":\"u9\",\"resourceVersion\":"
                              "\"5\",\"annotations\":{\"a\":\"}}\\\"{\"}}}";
    char line[1024];
    size_t rawlen = 0;
    /* the API server's shape: found, byte for byte */
    int n = snprintf(line, sizeof line, "{\"type\":\"MODIFIED\",\"object\":%s}", obj);
    const char *raw = fwd_raw_object("MODIFIED", line, (size_t)n, &rawlen);
    assert_non_null(raw);
    assert_int_equal(rawlen, strlen(obj));
    assert_memory_equal(raw, obj, rawlen);
    /* other shapes: not found (the caller serializes the parsed object) */
    static const char *const others[][2] = {   /* text before and after the object */
        /* members after the object, ending in "}}" like an event */
        { "{\"type\":\"ADDED\",\"object\":", ",\"scopeNamespace\":\"victim\",\"x\":{}}" },
        { "{\"type\":\"ADDED\",\"object\":{\"kind\":\"X\"},\"object\":", "}" },   /* last wins */
        { "{\"type\":\"ADDED\",\"object\":", ",\"type\":{\"a\":{}}}" },
        { "{\"type\":\"ADDED\",\"object\":", " }" },
        { "{\"type\":\"ADD\\u0045D\",\"object\":", "}" },
        { "{\"object\":", ",\"type\":\"ADDED\"}" },
    };
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        n = snprintf(line, sizeof line, "%s%s%s", others[i][0], obj, others[i][1]);
        json_t *ev = json_loadb(line, (size_t)n, 0, NULL);
        assert_non_null(ev);
        const char *type = json_string_value(json_object_get(ev, "type"));
        json_t *o = json_object_get(ev, "object");
        raw = fwd_raw_object(type ? type : "ADDED", line, (size_t)n, &rawlen);
        if (raw)
            print_error("line %zu: object text '%.*s'\n", i, (int)rawlen, raw);
        if (i == 0) {   /* end to end: the payload's scopeNamespace is the object's */
            fwd_event *e = fwd_event_new_raw(EV_ADDED, FWD_PVC, ORIGIN_WATCH, o, raw, rawlen, 1);
            char *body = payload_dump(e, "c1", NULL);
            json_t *p = json_loads(body, 0, NULL);
            assert_string_equal(jx_str(p, "scopeNamespace"), "vm-prod");
            assert_true(json_equal(json_object_get(p, "resource"), o));
            json_decref(p);
            free(body);
            fwd_event_free(e);
        }
        assert_null(raw);
        json_decref(ev);
    }
}

/* ---- queue ------------------------------------------------------------ */

static fwd_event *mk(int type, const char *uid, const char *rv)
{
    json_t *o = pvc(uid, "ns", uid, rv);
    fwd_event *ev = fwd_event_new(type, FWD_PVC, ORIGIN_WATCH, o, 1);
    json_decref(o);
    return ev;
}

static void test_queue_coalescing_and_order(void **s)
{
    (void)s;
    fwd_queue *q = queue_new(100, 1);
    assert_int_equal(queue_push(q, mk(EV_ADDED, "a", "1")), 0);
    assert_int_equal(queue_push(q, mk(EV_MODIFIED, "a", "2")), 1);   /* coalesced */
    assert_int_equal(queue_push(q, mk(EV_ADDED, "b", "3")), 0);
    assert_int_equal(queue_push(q, mk(EV_DELETED, "a", "4")), 0);    /* appended */
    assert_int_equal(queue_push(q, mk(EV_MODIFIED, "a", "5")), 0);   /* after a DELETED: kept */
    assert_int_equal(queue_depth(q), 4);
    fwd_event *e1 = queue_take(q, 0.1);
    assert_string_equal(e1->uid, "a");
    assert_int_equal(e1->type, EV_ADDED);                 /* ADDED kept, latest state */
    assert_string_equal(e1->rv, "2");
    assert_int_equal(e1->seq, 2);
    fwd_event *e2 = queue_take(q, 0.1);
    assert_string_equal(e2->uid, "b");                    /* a is in flight: b overtakes */
    assert_null(queue_take(q, 0.05));                     /* nothing else deliverable */
    /* while a is in flight, a new event for it waits behind the pending DELETED */
    queue_done(q, e1);
    fwd_event *e3 = queue_take(q, 0.1);
    assert_string_equal(e3->uid, "a");
    assert_int_equal(e3->type, EV_DELETED);
    uint64_t seq3 = e3->seq;
    queue_done(q, e2);
    queue_done(q, e3);
    fwd_event *e4 = queue_take(q, 0.1);
    assert_int_equal(e4->type, EV_MODIFIED);
    assert_true(e4->seq > seq3);
    queue_done(q, e4);
    assert_int_equal(queue_drain_wait(q, 0.1), 0);
    queue_free(q);
}

typedef struct pusher { fwd_queue *q; int n; } pusher;
static void *push_many(void *arg)
{
    pusher *p = arg;
    char uid[16];
    for (int i = 0; i < p->n; i++) {
        snprintf(uid, sizeof uid, "o%d", i);
        queue_push(p->q, mk(EV_ADDED, uid, "1"));
    }
    return NULL;
}

static void test_queue_bound(void **s)
{
    (void)s;
    fwd_queue *q = queue_new(4, 1);
    pusher p = { q, 50 };
    pthread_t t;
    pthread_create(&t, NULL, push_many, &p);
    usleep(100000);
    assert_int_equal(queue_depth(q), 4);                  /* the pusher waits */
    /* an update to a queued object coalesces even when full */
    assert_int_equal(queue_push(q, mk(EV_MODIFIED, "o0", "2")), 1);
    int got = 0;
    uint64_t last = 0;
    while (got < 50) {
        fwd_event *e = queue_take(q, 1.0);
        assert_non_null(e);
        assert_true(e->seq != last);
        last = e->seq;
        queue_done(q, e);
        got++;
    }
    pthread_join(t, NULL);
    assert_int_equal(queue_depth(q), 0);
    queue_close(q);
    assert_int_equal(queue_push(q, mk(EV_ADDED, "late", "1")), -1);
    assert_true(queue_finished(q));
    queue_free(q);
}

/* ---- state ------------------------------------------------------------ */

static char *tmpdir(void)
{
    char *d = strdup("/tmp/fwdstateXXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

/* state_open() that must succeed (dir NULL: in memory only). */
static fwd_state *open_state(const char *dir)
{
    char err[256] = "";
    fwd_state *st = state_open(dir, err, sizeof err);
    if (!st)
        fail_msg("state_open(%s): %s", dir ? dir : "NULL", err);
    return st;
}

static void rm_dir(const char *d)
{
    char p[256];
    snprintf(p, sizeof p, "%s/journal.jsonl", d);
    unlink(p);
    snprintf(p, sizeof p, "%s/journal.jsonl.tmp", d);
    unlink(p);
    rmdir(d);
}

static void deliver_all(fwd_state *st, fwd_event **evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        state_delivered(st, evs[i]);
        fwd_event_free(evs[i]);
    }
}

static void test_state_observe(void **s)
{
    (void)s;
    fwd_state *st = open_state(NULL);
    json_t *a = pvc("u1", "ns", "a", "1");
    uint64_t h = noise_hash(a);
    assert_int_equal(state_observe(st, FWD_PVC, a, h, false, 0), EV_ADDED);
    assert_int_equal(state_observe(st, FWD_PVC, a, h, false, 0), -1);          /* noise */
    assert_int_equal(state_observe(st, FWD_PVC, a, h + 1, false, 0), EV_MODIFIED);
    assert_int_equal(state_observe(st, FWD_PVC, a, h + 1, true, 0), EV_DELETED);
    assert_int_equal(state_observe(st, FWD_PVC, a, h + 1, true, 0), -1);       /* dup delete */
    /* relist: b listed, c not listed -> c DELETED */
    json_t *b = pvc("u2", "ns", "b", "2"), *c = pvc("u3", "ns", "c", "3");
    assert_int_equal(state_observe(st, FWD_PVC, b, 5, false, 0), EV_ADDED);
    assert_int_equal(state_observe(st, FWD_PVC, c, 6, false, 0), EV_ADDED);
    uint32_t m = state_new_mark(st);
    assert_int_equal(state_observe(st, FWD_PVC, b, 5, false, m), -1);
    fwd_event **gone;
    assert_int_equal(state_sweep(st, FWD_PVC, "other-ns", m, ORIGIN_RELIST, &gone), 0);
    size_t n = state_sweep(st, FWD_PVC, "ns", m, ORIGIN_RELIST, &gone);
    assert_int_equal(n, 1);
    assert_string_equal(gone[0]->uid, "u3");
    assert_int_equal(gone[0]->type, EV_DELETED);
    json_t *g = fwd_event_object(gone[0]);
    assert_string_equal(jx_str(g, "metadata.name"), "c");   /* stub */
    json_decref(g);
    fwd_event_free(gone[0]);
    free(gone);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    state_close(st);
}

/* A deletion found by a resync carries the last resourceVersion seen, as
 * the API server wrote it: numeric (kept as a number) or not. */
static void test_state_sweep_keeps_rv_text(void **s)
{
    (void)s;
    fwd_state *st = open_state(NULL);
    const char *rvs[] = { "17", "0042", "abc-1", "0", "18446744073709551615" };
    char uid[8];
    for (int i = 0; i < 5; i++) {
        snprintf(uid, sizeof uid, "r%d", i);
        json_t *o = pvc(uid, "ns", uid, rvs[i]);
        assert_int_equal(state_observe(st, FWD_PVC, o, 1, false, 0), EV_ADDED);
        json_decref(o);
    }
    uint32_t m = state_new_mark(st);
    fwd_event **gone;
    size_t n = state_sweep(st, FWD_PVC, "ns", m, ORIGIN_RELIST, &gone);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        int k = gone[i]->uid[1] - '0';
        assert_string_equal(gone[i]->rv, rvs[k]);
        assert_string_equal(gone[i]->name, gone[i]->uid);
        fwd_event_free(gone[i]);
    }
    free(gone);
    state_close(st);
}

static void test_state_restart_diff(void **s)
{
    (void)s;
    char *dir = tmpdir();
    fwd_state *st = open_state(dir);
    /* deliver ADDED a, b, c (c with its spec) */
    const char *uids[] = { "ua", "ub", "uc" };
    fwd_event *evs[3];
    for (int i = 0; i < 3; i++) {
        json_t *o = pvc(uids[i], "vm-prod", uids[i] + 1, "1");
        uint64_t h = noise_hash(o);
        assert_int_equal(state_observe(st, FWD_PVC, o, h, false, 0), EV_ADDED);
        evs[i] = fwd_event_new(EV_ADDED, FWD_PVC, ORIGIN_WATCH, o, h);
        evs[i]->seq = 10 + (uint64_t)i;
        json_decref(o);
    }
    deliver_all(st, evs, 3);
    state_close(st);

    /* restart: a unchanged, b modified, c deleted while down, d new */
    st = open_state(dir);
    assert_int_equal(state_next_seq(st), 13);
    assert_int_equal(state_count(st), 3);
    uint32_t m = state_new_mark(st);
    json_t *a = pvc("ua", "vm-prod", "a", "1"), *b = pvc("ub", "vm-prod", "b", "7"),
           *d = pvc("ud", "vm-prod", "d", "8");
    jx_set(b, "spec.resources", json_pack("{s:{s:s}}", "requests", "storage", "2Gi"));
    assert_int_equal(state_observe(st, FWD_PVC, a, noise_hash(a), false, m), -1);
    assert_int_equal(state_observe(st, FWD_PVC, b, noise_hash(b), false, m), EV_MODIFIED);
    assert_int_equal(state_observe(st, FWD_PVC, d, noise_hash(d), false, m), EV_ADDED);
    fwd_event **gone;
    size_t n = state_sweep(st, FWD_PVC, "vm-prod", m, ORIGIN_LIST, &gone);
    assert_int_equal(n, 1);
    assert_string_equal(gone[0]->uid, "uc");
    /* the DELETED carries the last delivered object, spec included */
    json_t *g = fwd_event_object(gone[0]);
    assert_string_equal(jx_str(g, "spec.storageClassName"), "nfs-csi");
    assert_null(jx_get(g, "metadata.managedFields"));
    json_decref(g);
    gone[0]->seq = 20;
    deliver_all(st, gone, 1);
    free(gone);
    state_close(st);
    st = open_state(dir);
    assert_int_equal(state_count(st), 2);    /* c forgotten after its DELETED was delivered */
    assert_int_equal(state_next_seq(st), 21);
    state_close(st);
    json_decref(a);
    json_decref(b);
    json_decref(d);
    rm_dir(dir);
    free(dir);
}

/* ---- the watcher's LIST: an answer that is not a list --------------------- */

/* A scripted API server for an answer no real apiserver gives: the first
 * request (the streaming WATCH) gets 422, so the watcher falls back to LIST;
 * every later one gets `200 {}` - what a broken proxy in front of the
 * apiserver may answer. */
typedef struct notalist {
    int fd;
    int port;
    volatile int served;
    volatile int stop;
} notalist;

static void *notalist_serve(void *ud)
{
    notalist *n = ud;
    while (!n->stop) {
        int c = accept(n->fd, NULL, NULL);
        if (c < 0)
            break;
        char req[4096];
        (void)recv(c, req, sizeof req, 0);
        const char *a = n->served == 0
            ? "HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/json\r\n"
              "Content-Length: 57\r\nConnection: close\r\n\r\n"
              "{\"kind\":\"Status\",\"code\":422,\"reason\":\"Invalid\",\"x\":\"123\"}"
            : "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
              "Connection: close\r\n\r\n{}";
        (void)send(c, a, strlen(a), MSG_NOSIGNAL);
        n->served++;
        close(c);
    }
    return NULL;
}

/* The forwarder knows one delivered claim; the API server then answers the
 * relist with `200 {}`.  Read as "no objects", the sweep would emit a DELETED
 * for the claim - and the delete jobs take deletion events as evidence.  The
 * list must fail instead (and be retried): nothing is queued. */
static void test_watcher_list_not_a_list_deletes_nothing(void **s)
{
    (void)s;
    clear_env();
    notalist n = { .served = 0, .stop = 0 };
    n.fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(n.fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(n.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(n.fd, 16), 0);
    socklen_t l = sizeof a;
    getsockname(n.fd, (struct sockaddr *)&a, &l);
    n.port = ntohs(a.sin_port);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, notalist_serve, &n), 0);

    char *dir = tmpdir();
    char err[512] = "";
    fwd_state *st = open_state(dir);
    json_t *o = pvc("u-keep", "vm-prod", "keep", "5");
    uint64_t h = noise_hash(o);
    assert_int_equal(state_observe(st, FWD_PVC, o, h, false, 0), EV_ADDED);
    fwd_event *ev = fwd_event_new(EV_ADDED, FWD_PVC, ORIGIN_WATCH, o, h);
    ev->seq = 1;
    deliver_all(st, &ev, 1);
    json_decref(o);

    setenv("WEBHOOK_URL", "https://eda.example:5000/endpoint", 1);
    setenv("WATCH_NAMESPACES", "vm-prod", 1);
    fwd_config cfg;
    char *argv[] = { "fwd", NULL };
    assert_int_equal(config_load(&cfg, 1, argv, err, sizeof err), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", n.port);
    k8s_conn conn = { .host = url, .validate_certs = -1, .allow_insecure_http = true };
    k8s_config kcfg = { .max_retries = 0, .timeout_ms = 2000 };
    k8s_error ke;
    k8s_client *kc = k8s_client_new(&conn, &kcfg, &ke);
    assert_non_null(kc);
    fwd_queue *q = queue_new(100, 2);
    volatile int stop = 0;
    watcher *w = watcher_start(&cfg, kc, q, st, FWD_PVC, "vm-prod", &stop, err, sizeof err);
    assert_non_null(w);
    for (int i = 0; i < 100 && n.served < 3; i++)   /* the 422, then at least two lists */
        usleep(50 * 1000);
    assert_true(n.served >= 2);
    stop = 1;
    queue_stop_waiting(q);
    watcher_join(w);
    /* nothing queued: no DELETED for the claim the API server "did not list" */
    assert_int_equal(queue_depth(q), 0);
    n.stop = 1;
    shutdown(n.fd, SHUT_RDWR);
    close(n.fd);
    pthread_join(th, NULL);
    queue_free(q);
    k8s_client_free(kc);
    config_free(&cfg);
    state_close(st);
    rm_dir(dir);
    free(dir);
    clear_env();
}

/* ---- scopeNamespace ------------------------------------------------------ */

/* A PV bound to claim ns/name (ns NULL: unbound, no claimRef). */
static json_t *pv_obj(const char *uid, const char *ns, const char *rv)
{
    json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:{s:s,s:{s:s}},s:{s:s}}",
                          "apiVersion", "v1", "kind", "PersistentVolume", "metadata",
                          "name", uid, "uid", uid, "resourceVersion", rv,
                          "spec", "storageClassName", "nfs-csi", "nfs", "path", "/x",
                          "status", "phase", ns ? "Bound" : "Available");
    if (ns)
        jx_set(o, "spec.claimRef", json_pack("{s:s,s:s,s:s}", "kind", "PersistentVolumeClaim",
                                             "namespace", ns, "name", "data"));
    return o;
}

/* payload_build and the delivered body (payload_dump) agree on scopeNamespace;
 * returns it as the body has it (NULL for JSON null), asserts it is present. */
static char *scope_of(int type, int kind, json_t *o)
{
    char *raw = json_dumps(o, JSON_COMPACT);
    fwd_event *ev = fwd_event_new_raw(type, kind, ORIGIN_WATCH, o, raw, strlen(raw), 1);
    assert_non_null(ev);
    char *body = payload_dump(ev, "primary", NULL);
    json_t *p = json_loads(body, 0, NULL), *b = payload_build(ev, "primary");
    assert_non_null(p);
    assert_true(json_equal(p, b));
    json_t *v = json_object_get(p, "scopeNamespace");
    assert_non_null(v);                               /* always there, null or a string */
    assert_true(json_is_null(v) || json_is_string(v));
    char *out = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
    json_decref(p);
    json_decref(b);
    free(body);
    free(raw);
    fwd_event_free(ev);
    return out;
}

static void test_payload_scope_namespace(void **s)
{
    (void)s;
    char *v;
    json_t *o = pvc("u1", "vm-prod", "data", "3");
    assert_string_equal(v = scope_of(EV_MODIFIED, FWD_PVC, o), "vm-prod");
    free(v);
    assert_string_equal(v = scope_of(EV_DELETED, FWD_PVC, o), "vm-prod");
    free(v);
    json_decref(o);
    o = pv_obj("pv-1", "vm-prod", "4");                       /* bound PV: its claim's */
    assert_string_equal(v = scope_of(EV_MODIFIED, FWD_PV, o), "vm-prod");
    free(v);
    assert_string_equal(v = scope_of(EV_DELETED, FWD_PV, o), "vm-prod");
    free(v);
    json_decref(o);
    o = pv_obj("pv-2", NULL, "5");                            /* unbound PV: null */
    assert_null(scope_of(EV_ADDED, FWD_PV, o));
    json_decref(o);
    o = json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:{s:s},s:{s:b}}", "apiVersion",
                  "snapshot.storage.k8s.io/v1", "kind", "VolumeSnapshot", "metadata", "name", "snap",
                  "namespace", "vm-dev", "uid", "u3", "spec", "volumeSnapshotClassName", "c",
                  "status", "readyToUse", 1);
    assert_string_equal(v = scope_of(EV_MODIFIED, FWD_VS, o), "vm-dev");
    free(v);
    json_decref(o);
    o = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:{s:s,s:s},s:s}}", "apiVersion",
                  "snapshot.storage.k8s.io/v1", "kind", "VolumeSnapshotContent", "metadata",
                  "name", "snapcontent-1", "uid", "u4", "spec", "volumeSnapshotRef", "namespace",
                  "vm-dev", "name", "snap", "driver", "nfs.csi.k8s.io");
    assert_string_equal(v = scope_of(EV_ADDED, FWD_VSC, o), "vm-dev");
    free(v);
    json_object_del(json_object_get(o, "spec"), "volumeSnapshotRef");
    assert_null(scope_of(EV_ADDED, FWD_VSC, o));              /* no ref: null */
    json_decref(o);
}

/* Coalescing keeps the latest state's scope: a PV ADDED unbound, then bound
 * before delivery, is delivered as one ADDED about its claim's namespace. */
static void test_scope_coalesced_and_swept(void **s)
{
    (void)s;
    fwd_queue *q = queue_new(10, 1);
    json_t *a = pv_obj("pv-c", NULL, "1"), *b = pv_obj("pv-c", "vm-prod", "2");
    assert_int_equal(queue_push(q, fwd_event_new(EV_ADDED, FWD_PV, ORIGIN_WATCH, a, 1)), 0);
    assert_int_equal(queue_push(q, fwd_event_new(EV_MODIFIED, FWD_PV, ORIGIN_WATCH, b, 2)), 1);
    fwd_event *e = queue_take(q, 0.1);
    assert_int_equal(e->type, EV_ADDED);
    assert_string_equal(e->scope, "vm-prod");
    queue_done(q, e);
    queue_free(q);

    /* a deletion found by a relist, never delivered (memory only, so the
     * DELETED carries a stub without spec): the scope of the last seen object */
    fwd_state *st = open_state(NULL);
    assert_int_equal(state_observe(st, FWD_PV, a, 1, false, 0), EV_ADDED);
    assert_int_equal(state_observe(st, FWD_PV, b, 2, false, 0), EV_MODIFIED);
    json_t *u = pv_obj("pv-u", NULL, "3");                    /* unbound: stays null */
    assert_int_equal(state_observe(st, FWD_PV, u, 3, false, 0), EV_ADDED);
    uint32_t m = state_new_mark(st);
    fwd_event **gone;
    size_t n = state_sweep(st, FWD_PV, NULL, m, ORIGIN_RELIST, &gone);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        json_t *g = fwd_event_object(gone[i]);
        assert_null(jx_get(g, "spec"));                       /* a stub */
        json_decref(g);
        if (!strcmp(gone[i]->uid, "pv-c"))
            assert_string_equal(gone[i]->scope, "vm-prod");
        else
            assert_null(gone[i]->scope);
        char *body = payload_dump(gone[i], "c", NULL);
        json_t *p = json_loads(body, 0, NULL);
        if (gone[i]->scope)
            assert_string_equal(jx_str(p, "scopeNamespace"), gone[i]->scope);
        else
            assert_true(json_is_null(json_object_get(p, "scopeNamespace")));
        json_decref(p);
        free(body);
        fwd_event_free(gone[i]);
    }
    free(gone);
    state_close(st);
    json_decref(a);
    json_decref(b);
    json_decref(u);
}

/* STATE_DIR: a PV and a VSC delivered, then deleted while the forwarder was
 * down: the DELETED events re-derived at restart (origin list) carry the
 * scope of the last delivered object. */
static void test_scope_restart_deleted(void **s)
{
    (void)s;
    char *dir = tmpdir();
    fwd_state *st = open_state(dir);
    json_t *pv = pv_obj("pv-r", "vm-prod", "1");
    json_t *vsc = json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:{s:{s:s,s:s}}}", "apiVersion",
                            "snapshot.storage.k8s.io/v1", "kind", "VolumeSnapshotContent",
                            "metadata", "name", "sc-r", "uid", "sc-r", "resourceVersion", "2",
                            "spec", "volumeSnapshotRef", "namespace", "vm-dev", "name", "snap");
    fwd_event *evs[2];
    assert_int_equal(state_observe(st, FWD_PV, pv, 1, false, 0), EV_ADDED);
    assert_int_equal(state_observe(st, FWD_VSC, vsc, 2, false, 0), EV_ADDED);
    evs[0] = fwd_event_new(EV_ADDED, FWD_PV, ORIGIN_WATCH, pv, 1);
    evs[1] = fwd_event_new(EV_ADDED, FWD_VSC, ORIGIN_WATCH, vsc, 2);
    evs[0]->seq = 1;
    evs[1]->seq = 2;
    deliver_all(st, evs, 2);
    state_close(st);

    st = open_state(dir);
    uint32_t m = state_new_mark(st);
    fwd_event **gone;
    assert_int_equal(state_sweep(st, FWD_PV, NULL, m, ORIGIN_LIST, &gone), 1);
    assert_int_equal(gone[0]->type, EV_DELETED);
    assert_int_equal(gone[0]->origin, ORIGIN_LIST);
    assert_string_equal(gone[0]->scope, "vm-prod");
    fwd_event_free(gone[0]);
    free(gone);
    assert_int_equal(state_sweep(st, FWD_VSC, NULL, m, ORIGIN_LIST, &gone), 1);
    assert_string_equal(gone[0]->scope, "vm-dev");
    fwd_event_free(gone[0]);
    free(gone);
    state_close(st);
    json_decref(pv);
    json_decref(vsc);
    rm_dir(dir);
    free(dir);
}

/* ---- signing ----------------------------------------------------------- */

static void test_sign(void **s)
{
    (void)s;
    char out[256];
    const char *msg = "what do ya want for nothing?";
    assert_int_equal(deliver_sign("sha256", "hex", "Jefe", msg, strlen(msg), out, sizeof out), 0);
    assert_string_equal(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_int_equal(deliver_sign("sha256", "base64", "Jefe", msg, strlen(msg), out, sizeof out), 0);
    assert_string_equal(out, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    assert_int_equal(deliver_sign("sha512", "hex", "Jefe", msg, strlen(msg), out, sizeof out), 0);
    assert_string_equal(out, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
                             "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
    assert_int_equal(deliver_sign("nosuch", "hex", "Jefe", msg, strlen(msg), out, sizeof out), -1);
}

/* ---- delivery against a local receiver ---------------------------------- */

typedef struct recv_state {
    pthread_mutex_t mu;
    int fail_first;          /* answer 503 to this many requests */
    int requests, bad_auth, bad_sig;
    json_t *got;             /* payloads accepted, in arrival order */
} recv_state;

typedef struct rbody { char *p; size_t n; } rbody;

/* libmicrohttpd's POST body in pieces, collected into *con_cls (an rbody):
 * NULL while the body is still arriving, the rbody once it is complete. */
static rbody *rbody_complete(void **con_cls, const char *data, size_t *len)
{
    rbody *b = *con_cls;
    if (!b) {
        *con_cls = calloc(1, sizeof *b);
        return NULL;
    }
    if (*len) {
        b->p = realloc(b->p, b->n + *len + 1);
        memcpy(b->p + b->n, data, *len);
        b->n += *len;
        b->p[b->n] = '\0';
        *len = 0;
        return NULL;
    }
    return b;
}

static enum MHD_Result on_post(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *len, void **con_cls)
{
    recv_state *r = cls;
    rbody *b = rbody_complete(con_cls, data, len);
    if (!b)
        return MHD_YES;
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-hub-signature-256");
    char want[128] = "";
    deliver_sign("sha256", "hex", "hmac-secret-1", b->p ? b->p : "", b->n, want, sizeof want);
    unsigned status = 200;
    pthread_mutex_lock(&r->mu);
    r->requests++;
    if (!auth || strcmp(auth, "Bearer tok-123456")) {
        r->bad_auth++;
        status = 401;
    } else if (!sig || strcmp(sig, want)) {
        r->bad_sig++;
        status = 401;
    } else if (r->fail_first > 0) {
        r->fail_first--;
        status = 503;
    } else {
        json_array_append_new(r->got, json_loads(b->p, 0, NULL));
    }
    pthread_mutex_unlock(&r->mu);
    struct MHD_Response *resp = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    rbody *b = *con_cls;
    if (b) {
        free(b->p);
        free(b);
    }
}

static void test_deliver_retries_order(void **s)
{
    (void)s;
    recv_state r = { .fail_first = 5, .got = json_array() };
    pthread_mutex_init(&r.mu, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                                            0, NULL, NULL, on_post, &r,
                                            MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
    assert_non_null(d);
    int port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    clear_env();
    char url[64];
    snprintf(url, sizeof url, "--webhook-url=http://127.0.0.1:%d/endpoint", port);
    char *argv[] = { "fwd", url, "--webhook-token=tok-123456", "--hmac-secret=hmac-secret-1",
                     "--parallel=4", "--backoff-min-ms=5", "--backoff-max-ms=20",
                     "--log-level=error", "--allow-insecure-http", NULL };
    fwd_config c;
    char err[256] = "";
    assert_int_equal(config_load(&c, 9, argv, err, sizeof err), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    log_set_level(LOGL_ERROR);
    fwd_state *st = open_state(NULL);
    fwd_queue *q = queue_new(1000, 1);
    deliver *dl = deliver_start(&c, q, st, err, sizeof err);
    assert_non_null(dl);
    /* 20 objects x (ADDED, MODIFIED..., DELETED), interleaved */
    char uid[16], rv[16];
    int rvn = 0;
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 20; i++) {
            snprintf(uid, sizeof uid, "obj-%d", i);
            snprintf(rv, sizeof rv, "%d", ++rvn);
            json_t *o = pvc(uid, "ns", uid, rv);
            assert_int_equal(state_observe(st, FWD_PVC, o, (uint64_t)rvn, round == 4, 0),
                             round == 0 ? EV_ADDED : round == 4 ? EV_DELETED : EV_MODIFIED);
            queue_push(q, fwd_event_new(round == 0 ? EV_ADDED : round == 4 ? EV_DELETED : EV_MODIFIED,
                                        FWD_PVC, ORIGIN_WATCH, o, (uint64_t)rvn));
            json_decref(o);
        }
    queue_close(q);
    assert_int_equal(queue_drain_wait(q, 20), 0);
    deliver_stop(dl, 0);
    /* every object: first ADDED, last DELETED, sequences increasing */
    for (int i = 0; i < 20; i++) {
        snprintf(uid, sizeof uid, "obj-%d", i);
        long long lastseq = 0;
        int n = 0;
        const char *first = NULL, *lasttype = NULL;
        size_t k;
        json_t *p;
        json_array_foreach(r.got, k, p) {
            if (strcmp(jx_str_or(p, "uid", ""), uid))
                continue;
            assert_true(jx_int(p, "sequence", 0) > lastseq);
            lastseq = jx_int(p, "sequence", 0);
            if (!first)
                first = jx_str(p, "type");
            lasttype = jx_str(p, "type");
            n++;
        }
        assert_true(n >= 2);
        assert_string_equal(first, "ADDED");
        assert_string_equal(lasttype, "DELETED");
    }
    assert_int_equal(r.bad_auth, 0);
    assert_int_equal(r.bad_sig, 0);
    assert_true(r.requests >= 5 + 40);
    assert_true(metrics_get(M_FORWARDED, FWD_PVC, EV_DELETED) >= 20);
    assert_int_equal(state_count(st), 0);     /* all deleted and delivered */
    queue_free(q);
    state_close(st);
    config_free(&c);
    log_clear_secrets();
    MHD_stop_daemon(d);
    json_decref(r.got);
    pthread_mutex_destroy(&r.mu);
}

/* A scripted receiver for answers ansible-rulebook does not give on demand:
 * the status depends on the payload's name - "p400-..", "p404-..", "p413-..",
 * "p422-.." answer that status every time, "auth-.." 401 twice then 200,
 * "ra-.." 429 with Retry-After: 1 once then 200, "stuck-.." 503 while `stuck`
 * is set; anything else 200.  Counts POSTs per name, keeps accepted names
 * with their arrival time. */
typedef struct script_state {
    pthread_mutex_t mu;
    int stuck;
    json_t *tries;           /* name -> POSTs */
    json_t *got;             /* [[name, t], ...] accepted, in order */
} script_state;

static enum MHD_Result on_scripted(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *data,
                                   size_t *len, void **con_cls)
{
    script_state *r = cls;
    rbody *b = rbody_complete(con_cls, data, len);
    if (!b)
        return MHD_YES;
    json_t *p = json_loads(b->p ? b->p : "", 0, NULL);
    const char *name = jx_str_or(p, "name", "");
    pthread_mutex_lock(&r->mu);
    json_int_t n = json_integer_value(json_object_get(r->tries, name)) + 1;
    json_object_set_new(r->tries, name, json_integer(n));
    unsigned status = 200;
    const char *retry_after = NULL;
    if (name[0] == 'p' && strlen(name) > 4 && name[4] == '-')
        status = (unsigned)atoi(name + 1);
    else if (!strncmp(name, "auth-", 5) && n <= 2)
        status = 401;
    else if (!strncmp(name, "ra-", 3) && n <= 1) {
        status = 429;
        retry_after = "1";
    } else if (!strncmp(name, "stuck-", 6) && r->stuck)
        status = 503;
    if (status == 200)
        json_array_append_new(r->got, json_pack("[s,f]", name, fwd_mono()));
    pthread_mutex_unlock(&r->mu);
    json_decref(p);
    /* a body that echoes the token, as a careless receiver might */
    static const char echo[] = "rejected: Bearer tok-123456 \xff\xfe binary";
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        status == 200 ? 2 : sizeof echo - 1, status == 200 ? (void *)"ok" : (void *)echo,
        MHD_RESPMEM_PERSISTENT);
    if (retry_after)
        MHD_add_response_header(resp, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static int script_got(script_state *r, const char *name, double *at)
{
    int found = 0;
    size_t i;
    json_t *e;
    pthread_mutex_lock(&r->mu);
    json_array_foreach(r->got, i, e)
        if (!strcmp(json_string_value(json_array_get(e, 0)), name)) {
            found = 1;
            if (at)
                *at = json_real_value(json_array_get(e, 1));
        }
    pthread_mutex_unlock(&r->mu);
    return found;
}

static int script_tries(script_state *r, const char *name)
{
    pthread_mutex_lock(&r->mu);
    int n = (int)json_integer_value(json_object_get(r->tries, name));
    pthread_mutex_unlock(&r->mu);
    return n;
}

typedef struct scripted {
    script_state r;
    struct MHD_Daemon *d;
    fwd_config c;
    fwd_state *st;
    fwd_queue *q;
    deliver *dl;
    char *logbuf;
    size_t loglen;
    FILE *log;
    int rvn;
} scripted;

/* Starts the receiver and WEBHOOK_PARALLEL=4 workers configured through the
 * environment only (old builds ignore what they do not know). */
static void scripted_start(scripted *t, const char *extra_env)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->r.mu, NULL);
    t->r.tries = json_object();
    t->r.got = json_array();
    t->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, on_scripted, &t->r, MHD_OPTION_NOTIFY_COMPLETED, on_done,
                            NULL, MHD_OPTION_END);
    assert_non_null(t->d);
    clear_env();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/endpoint",
             MHD_get_daemon_info(t->d, MHD_DAEMON_INFO_BIND_PORT)->port);
    setenv("WEBHOOK_URL", url, 1);
    setenv("WEBHOOK_TOKEN", "tok-123456", 1);
    setenv("WEBHOOK_ALLOW_INSECURE_HTTP", "true", 1);
    setenv("WEBHOOK_PARALLEL", "4", 1);
    setenv("WEBHOOK_BACKOFF_MIN_MS", "5", 1);
    setenv("WEBHOOK_BACKOFF_MAX_MS", "40", 1);
    if (extra_env) {
        char *copy = strdup(extra_env), *save = NULL;
        for (char *kv = strtok_r(copy, " ", &save); kv; kv = strtok_r(NULL, " ", &save)) {
            char *eq = strchr(kv, '=');
            *eq = '\0';
            setenv(kv, eq + 1, 1);
        }
        free(copy);
    }
    char *argv[] = { "fwd", NULL };
    char err[512] = "";
    assert_int_equal(config_load(&t->c, 1, argv, err, sizeof err), 0);
    if (config_validate(&t->c, err, sizeof err) != 0)
        fail_msg("%s", err);
    t->log = open_memstream(&t->logbuf, &t->loglen);
    log_set_stream(t->log);
    log_set_level(LOGL_WARN);
    t->st = open_state(NULL);
    t->q = queue_new(1000, 1);
    t->dl = deliver_start(&t->c, t->q, t->st, err, sizeof err);
    assert_non_null(t->dl);
}

static void scripted_push(scripted *t, const char *name)
{
    char rv[16];
    snprintf(rv, sizeof rv, "%d", ++t->rvn);
    json_t *o = pvc(name, "vm-prod", name, rv);
    assert_int_equal(state_observe(t->st, FWD_PVC, o, (uint64_t)t->rvn, false, 0), EV_ADDED);
    assert_int_equal(queue_push(t->q, fwd_event_new(EV_ADDED, FWD_PVC, ORIGIN_WATCH, o,
                                                    (uint64_t)t->rvn)), 0);
    json_decref(o);
}

static int scripted_wait(scripted *t, const char *name, double timeout)
{
    for (double end = fwd_mono() + timeout; fwd_mono() < end; fwd_sleep(0.02))
        if (script_got(&t->r, name, NULL))
            return 1;
    return 0;
}

/* Stops everything; returns the log text (caller frees). */
static char *scripted_stop(scripted *t)
{
    queue_close(t->q);
    queue_drain_wait(t->q, 5);
    deliver_stop(t->dl, 1);
    queue_free(t->q);
    state_close(t->st);
    log_set_stream(NULL);
    log_set_level(LOGL_INFO);
    fclose(t->log);
    config_free(&t->c);
    log_clear_secrets();
    MHD_stop_daemon(t->d);
    json_decref(t->r.tries);
    json_decref(t->r.got);
    pthread_mutex_destroy(&t->r.mu);
    clear_env();
    return t->logbuf;
}

/* Issue #15 item 10: an answer that refuses the event itself (413, 422,
 * 422) used to be retried forever, pinning a worker: four such events (the
 * default WEBHOOK_PARALLEL) stopped all delivery.  Six poison events, then a
 * good one: the good one arrives; each poison event was tried exactly
 * WEBHOOK_REJECT_ATTEMPTS (default 3) times.  (This test uses only what the
 * old build had - configuration from the environment - so it shows the old
 * behaviour: it fails there with "the good event did not arrive".) */
static void test_deliver_poison_events_do_not_stop_delivery(void **s)
{
    (void)s;
    scripted t;
    scripted_start(&t, NULL);
    const char *poison[] = { "p413-a", "p422-b", "p413-c", "p422-d", "p413-e", "p422-f", NULL };
    for (int i = 0; poison[i]; i++)
        scripted_push(&t, poison[i]);
    scripted_push(&t, "good-1");
    int arrived = scripted_wait(&t, "good-1", 10);
    /* the poison events behind the good one finish their tries */
    for (double end = fwd_mono() + 3; fwd_mono() < end; fwd_sleep(0.02)) {
        int done = 0;
        for (int i = 0; poison[i]; i++)
            done += script_tries(&t.r, poison[i]) >= 3;
        if (done == 6)
            break;
    }
    fwd_sleep(0.2);   /* a 4th try would come within the 40 ms backoff */
    int tries[6];
    for (int i = 0; poison[i]; i++)
        tries[i] = script_tries(&t.r, poison[i]);
    free(scripted_stop(&t));
    if (!arrived)
        fail_msg("the good event did not arrive behind 6 poison events (tries of the first: %d)",
                 tries[0]);
    for (int i = 0; poison[i]; i++)
        if (tries[i] != 3)
            fail_msg("%s was tried %d times, want 3 (WEBHOOK_REJECT_ATTEMPTS)", poison[i], tries[i]);
}

/* What a dead letter leaves behind: a counter, an ERROR line naming the event
 * (kind, namespace, name, resourceVersion) with the receiver's answer scrubbed
 * of the token and made printable; it is not recorded as delivered.  401 and
 * 429 are retried (credentials rotate, a receiver sheds load), a 429's
 * Retry-After is honoured; WEBHOOK_REJECT_ATTEMPTS bounds the tries. */
static void test_deliver_dead_letter_log_metric_retry_after(void **s)
{
    (void)s;
    unsigned long long dl0 = metrics_get(M_DEAD_LETTERED, FWD_PVC, EV_ADDED);
    scripted t;
    scripted_start(&t, "WEBHOOK_REJECT_ATTEMPTS=2");
    double t0 = fwd_mono();
    scripted_push(&t, "p413-big");
    scripted_push(&t, "auth-1");
    scripted_push(&t, "ra-1");
    assert_true(scripted_wait(&t, "auth-1", 10));
    assert_true(scripted_wait(&t, "ra-1", 10));
    double ra_at = 0;
    script_got(&t.r, "ra-1", &ra_at);
    for (double end = fwd_mono() + 5; fwd_mono() < end && script_tries(&t.r, "p413-big") < 2;)
        fwd_sleep(0.02);
    fwd_sleep(0.2);
    int big = script_tries(&t.r, "p413-big"), auth = script_tries(&t.r, "auth-1");
    size_t known = state_count(t.st);
    char *log = scripted_stop(&t);
    assert_int_equal(big, 2);                 /* WEBHOOK_REJECT_ATTEMPTS=2 */
    assert_int_equal(auth, 3);                /* 401, 401, 200 */
    assert_true(ra_at - t0 >= 0.95);          /* Retry-After: 1, backoff only 5-40 ms */
    assert_int_equal(metrics_get(M_DEAD_LETTERED, FWD_PVC, EV_ADDED) - dl0, 1);
    assert_int_equal(known, 3);               /* observed objects stay known */
    json_t *dead = NULL;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        if (j && strstr(jx_str_or(j, "msg", ""), "dead-lettered")) {
            json_decref(dead);
            dead = j;
        } else {
            json_decref(j);
        }
    }
    if (!dead)
        fail_msg("no dead-letter line in the log");
    assert_string_equal(jx_str(dead, "level"), "error");
    assert_string_equal(jx_str(dead, "kind"), "PersistentVolumeClaim");
    assert_string_equal(jx_str(dead, "namespace"), "vm-prod");
    assert_string_equal(jx_str(dead, "name"), "p413-big");
    assert_string_equal(jx_str(dead, "resourceVersion"), "1");
    assert_int_equal(jx_int(dead, "status", 0), 413);
    assert_string_equal(jx_str(dead, "response"), "rejected: Bearer ******** ?? binary");
    json_decref(dead);
    free(log);
}

/* /readyz's stall watch: an event failing (503) for longer than
 * DELIVERY_STALL_SECONDS makes deliver_stalled() say so, naming the event
 * and the error; once it is delivered the stall is over. */
static void test_deliver_stall_reported(void **s)
{
    (void)s;
    scripted t;
    scripted_start(&t, "DELIVERY_STALL_SECONDS=1");
    assert_int_equal(t.c.stall_s, 1);
    pthread_mutex_lock(&t.r.mu);
    t.r.stuck = 1;
    pthread_mutex_unlock(&t.r.mu);
    double t0 = fwd_mono();
    scripted_push(&t, "stuck-1");
    scripted_push(&t, "fine-1");
    assert_true(scripted_wait(&t, "fine-1", 5));
    char why[512] = "";
    if (fwd_mono() - t0 < 0.8)   /* not yet (unless the machine is that slow) */
        assert_int_equal(deliver_stalled(t.dl, 1.0, why, sizeof why), 0);
    int stalled = 0;
    for (double end = fwd_mono() + 5; fwd_mono() < end && !stalled; fwd_sleep(0.05))
        stalled = deliver_stalled(t.dl, 1.0, why, sizeof why);
    assert_true(stalled);
    assert_non_null(strstr(why, "delivery stalled: 1 of 4 workers failing for more than 1 s"));
    assert_non_null(strstr(why, "PersistentVolumeClaim vm-prod/stuck-1 rv 1"));
    assert_non_null(strstr(why, "last error HTTP 503"));
    pthread_mutex_lock(&t.r.mu);
    t.r.stuck = 0;
    pthread_mutex_unlock(&t.r.mu);
    assert_true(scripted_wait(&t, "stuck-1", 5));
    fwd_sleep(0.1);
    assert_int_equal(deliver_stalled(t.dl, 1.0, why, sizeof why), 0);
    free(scripted_stop(&t));
}

static void test_rejects_event(void **s)
{
    (void)s;
    const long yes[] = { 413, 422, 0 };
    /* 400 (ansible-rulebook: signature header missing), 404/405 (wrong
     * URL): every event fails the same way - retried, never dead-lettered */
    const long no[] = { 200, 301, 400, 401, 403, 404, 405, 408, 409, 410, 415, 429, 499, 500,
                        502, 503, 0 };
    for (int i = 0; yes[i]; i++)
        assert_true(deliver_rejects_event(yes[i]));
    for (int i = 0; no[i]; i++)
        assert_false(deliver_rejects_event(no[i]));
}

/* ---- operations endpoint ---------------------------------------------- */

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    char **out = ud;
    size_t old = *out ? strlen(*out) : 0;
    *out = realloc(*out, old + sz * n + 1);
    memcpy(*out + old, p, sz * n);
    (*out)[old + sz * n] = '\0';
    return sz * n;
}

static long get(int port, const char *path, char **out)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    long code = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    return code;
}

static int ready_flag;
static int ready_cb(void *ud, char *why, size_t len)
{
    (void)ud;
    if (!ready_flag)
        snprintf(why, len, "PersistentVolume not established");
    return ready_flag;
}

static char *render_metrics(void *ud, size_t *len)
{
    (void)ud;
    return metrics_render(len);
}

static void test_http(void **s)
{
    (void)s;
    char err[256] = "";
    ops_http_handlers hh = { .ready = ready_cb, .metrics = render_metrics };
    ops_http *h = ops_http_start("127.0.0.1:0", &hh, err, sizeof err);
    assert_non_null(h);
    int port = ops_http_port(h);
    char *body = NULL;
    assert_int_equal(get(port, "/healthz", &body), 200);
    free(body);
    body = NULL;
    ready_flag = 0;
    assert_int_equal(get(port, "/readyz", &body), 503);
    assert_non_null(strstr(body, "PersistentVolume not established"));
    free(body);
    body = NULL;
    ready_flag = 1;
    assert_int_equal(get(port, "/readyz", &body), 200);
    free(body);
    body = NULL;
    metrics_count(M_SEEN, FWD_VS, EV_MODIFIED);
    assert_int_equal(get(port, "/metrics", &body), 200);
    assert_non_null(strstr(body, "ocpvdr_forwarder_events_seen_total{kind=\"VolumeSnapshot\",type=\"MODIFIED\"} "));
    assert_non_null(strstr(body, "# TYPE ocpvdr_forwarder_webhook_request_seconds histogram"));
    assert_non_null(strstr(body, "ocpvdr_forwarder_queue_depth "));
    free(body);
    body = NULL;
    assert_int_equal(get(port, "/nope", &body), 404);
    free(body);
    ops_http_stop(h);
    assert_null(ops_http_start("127.0.0.1", &hh, err, sizeof err));
    assert_non_null(strstr(err, "host:port"));
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults_and_env),
        cmocka_unit_test(test_watcher_list_not_a_list_deletes_nothing),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_help),
        cmocka_unit_test(test_config_insecure_http),
        cmocka_unit_test(test_config_secret_file_and_scrub),
        cmocka_unit_test(test_log_scrub_before_escaping),
        cmocka_unit_test(test_log_scrub_rules),
        cmocka_unit_test(test_dict),
        cmocka_unit_test(test_noise),
        cmocka_unit_test(test_payload),
        cmocka_unit_test(test_noise_member_order_and_nesting),
        cmocka_unit_test(test_payload_raw_passthrough),
        cmocka_unit_test(test_watch_raw_object),
        cmocka_unit_test(test_state_sweep_keeps_rv_text),
        cmocka_unit_test(test_queue_coalescing_and_order),
        cmocka_unit_test(test_queue_bound),
        cmocka_unit_test(test_state_observe),
        cmocka_unit_test(test_state_restart_diff),
        cmocka_unit_test(test_payload_scope_namespace),
        cmocka_unit_test(test_scope_coalesced_and_swept),
        cmocka_unit_test(test_scope_restart_deleted),
        cmocka_unit_test(test_sign),
        cmocka_unit_test(test_deliver_retries_order),
        cmocka_unit_test(test_deliver_poison_events_do_not_stop_delivery),
        cmocka_unit_test(test_deliver_dead_letter_log_metric_retry_after),
        cmocka_unit_test(test_deliver_stall_reported),
        cmocka_unit_test(test_rejects_event),
        cmocka_unit_test(test_http),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
