/* test_k8s.c - unit tests for the Kubernetes client's pure parts: the
 * built-in resource table and REST paths, Status error parsing and
 * formatting, Retry-After parsing, backoff bounds, the retry policy, URL
 * encoding, DeleteOptions bodies; and the retry loop / watch line splitting
 * against a scripted local HTTP server (a thread in this process), because a
 * real apiserver cannot be made to answer 503 + Retry-After on demand.  The
 * verbs themselves are tested against real apiservers by
 * tests/integration/test_k8s_client.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "k8s_int.h"

/* ---- resources and paths ------------------------------------------------ */

static void check_path(const char *av, const char *kind, const char *ns, const char *name,
                       const char *want)
{
    const k8s_resource *r = k8s_resource_builtin(av, kind);
    if (!r)
        print_error("no built-in %s %s\n", av, kind);
    assert_non_null(r);
    char *p = k8s_path(r, ns, name);
    if (strcmp(p, want) != 0)
        print_error("%s %s: got %s want %s\n", av, kind, p, want);
    assert_string_equal(p, want);
    free(p);
}

static void test_paths(void **state)
{
    (void)state;
    check_path("v1", "PersistentVolume", "ignored", "pv1", "/api/v1/persistentvolumes/pv1");
    check_path("v1", "PersistentVolumeClaim", "vms", "disk-0",
               "/api/v1/namespaces/vms/persistentvolumeclaims/disk-0");
    check_path("v1", "PersistentVolumeClaim", NULL, NULL, "/api/v1/persistentvolumeclaims");
    check_path("v1", "Namespace", NULL, "vms", "/api/v1/namespaces/vms");
    check_path("v1", "ConfigMap", "a", NULL, "/api/v1/namespaces/a/configmaps");
    check_path("v1", "Secret", "a", "s", "/api/v1/namespaces/a/secrets/s");
    check_path("snapshot.storage.k8s.io/v1", "VolumeSnapshot", "vms", "snap",
               "/apis/snapshot.storage.k8s.io/v1/namespaces/vms/volumesnapshots/snap");
    check_path("snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", "vms", "c",
               "/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents/c");
    check_path("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass", NULL, "cls",
               "/apis/snapshot.storage.k8s.io/v1/volumesnapshotclasses/cls");
    check_path("kubevirt.io/v1", "VirtualMachine", "vms", "vm1",
               "/apis/kubevirt.io/v1/namespaces/vms/virtualmachines/vm1");
    check_path("kubevirt.io/v1", "VirtualMachineInstance", "vms", "vm1",
               "/apis/kubevirt.io/v1/namespaces/vms/virtualmachineinstances/vm1");
    check_path("cdi.kubevirt.io/v1beta1", "DataVolume", "vms", "dv",
               "/apis/cdi.kubevirt.io/v1beta1/namespaces/vms/datavolumes/dv");
    check_path("velero.io/v1", "Backup", "openshift-adp", "b1",
               "/apis/velero.io/v1/namespaces/openshift-adp/backups/b1");
    check_path("velero.io/v1", "Restore", "openshift-adp", NULL,
               "/apis/velero.io/v1/namespaces/openshift-adp/restores");
    check_path("velero.io/v1", "BackupStorageLocation", "openshift-adp", "default",
               "/apis/velero.io/v1/namespaces/openshift-adp/backupstoragelocations/default");
    check_path("velero.io/v1", "Schedule", "x", "s", "/apis/velero.io/v1/namespaces/x/schedules/s");
    check_path("longhorn.io/v1beta2", "Volume", "longhorn-system", "pvc-1",
               "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/volumes/pvc-1");
    check_path("longhorn.io/v1beta2", "BackupVolume", "longhorn-system", "bv",
               "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/backupvolumes/bv");
    check_path("longhorn.io/v1beta2", "Backup", "longhorn-system", "b",
               "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/backups/b");
    check_path("longhorn.io/v1beta2", "BackupTarget", "longhorn-system", "default",
               "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/backuptargets/default");
    check_path("longhorn.io/v1beta2", "Setting", "longhorn-system", "backup-target",
               "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/settings/backup-target");
    /* names are URL-encoded */
    check_path("v1", "ConfigMap", "a b", "x?y#z", "/api/v1/namespaces/a%20b/configmaps/x%3Fy%23z");
    /* "..." is a name like any other (only "." and ".." are dot segments) */
    check_path("v1", "ConfigMap", "a", "...", "/api/v1/namespaces/a/configmaps/...");
    check_path("v1", "ConfigMap", "", NULL, "/api/v1/configmaps");   /* "" = all namespaces */

    /* same kind in two groups resolves by apiVersion */
    const k8s_resource *vb = k8s_resource_builtin("velero.io/v1", "Backup");
    const k8s_resource *lb = k8s_resource_builtin("longhorn.io/v1beta2", "Backup");
    assert_ptr_not_equal(vb, lb);
    assert_string_equal(vb->group, "velero.io");
    assert_string_equal(lb->version, "v1beta2");
    assert_true(k8s_resource_builtin("v1", "Namespace")->namespaced == false);

    assert_null(k8s_resource_builtin("v1", "Pod"));                 /* discovery's job */
    assert_null(k8s_resource_builtin("longhorn.io/v1beta1", "Volume"));
    assert_null(k8s_resource_builtin("v1", "persistentvolume"));    /* exact kind */
    assert_null(k8s_resource_builtin(NULL, "PersistentVolume"));

    char av[64];
    assert_string_equal(k8s_api_version(vb, av, sizeof av), "velero.io/v1");
    assert_string_equal(k8s_api_version(k8s_resource_builtin("v1", "Secret"), av, sizeof av),
                        "v1");
}

/* ---- names that cannot be a path segment -------------------------------- */

/* k8s_path_build refuses, naming the field; k8s_path gives NULL. */
static void check_bad_segment(const char *kind, const char *ns, const char *name,
                              const char *want)
{
    const k8s_resource *r = k8s_resource_builtin(
        strcmp(kind, "VolumeSnapshot") == 0 ? "snapshot.storage.k8s.io/v1" : "v1", kind);
    assert_non_null(r);
    char *p = (char *)"untouched";
    k8s_error e;
    int rc = k8s_path_build(r, ns, name, &p, &e);
    if (rc == 0 || !strstr(e.message, want))
        print_error("%s ns=%s name=%s: rc %d, path %s, message \"%s\", want \"%s\"\n", kind,
                    ns ? ns : "(null)", name ? name : "(null)", rc, rc == 0 ? p : "-",
                    e.message, want);
    assert_int_equal(rc, -1);
    assert_null(p);
    assert_non_null(strstr(e.message, want));
    assert_string_equal(e.reason, "Invalid");
    assert_null(k8s_path(r, ns, name));
}

static void test_dot_segments_refused(void **state)
{
    (void)state;
    /* a claim named ".." would be GET/PATCH/DELETE of its Namespace once a
     * URL parser collapses the dot segment; "." the claim collection */
    check_bad_segment("PersistentVolumeClaim", "vms", "..",
                      "PersistentVolumeClaim name \"..\" is a dot segment");
    check_bad_segment("PersistentVolumeClaim", "vms", ".",
                      "PersistentVolumeClaim name \".\" is a dot segment");
    check_bad_segment("PersistentVolumeClaim", "..", "disk", "namespace \"..\" is a dot segment");
    check_bad_segment("PersistentVolumeClaim", ".", NULL, "namespace \".\" is a dot segment");
    check_bad_segment("VolumeSnapshot", "..", NULL, "namespace \"..\" is a dot segment");
    check_bad_segment("PersistentVolume", NULL, "..", "PersistentVolume name \"..\"");
    check_bad_segment("PersistentVolume", NULL, "", "PersistentVolume name \"\" is empty");
    check_bad_segment("Secret", "a", "x/../../namespaces", "contains '/'");
    check_bad_segment("Secret", "a/b", "x", "namespace \"a/b\" contains '/'");
    check_bad_segment("Secret", "a", "%2e%2e", "contains '%'");
    check_bad_segment("Secret", "a", "x\r\ny", "Secret name \"x??y\" contains a control character");
    /* a named object of a namespaced kind needs its namespace */
    check_bad_segment("ConfigMap", NULL, "c", "namespace is missing");
    check_bad_segment("ConfigMap", "", "c", "namespace is missing");
    /* a cluster-scoped kind ignores the namespace (never in the path) */
    char *p = NULL;
    k8s_error e;
    assert_int_equal(k8s_path_build(k8s_resource_builtin("v1", "PersistentVolume"), "..", "pv1",
                                    &p, &e), 0);
    assert_string_equal(p, "/api/v1/persistentvolumes/pv1");
    free(p);
    /* a resource from discovery is checked too (a hostile server's plural) */
    k8s_resource evil = { "example.com", "v1", "Widget", "..", true };
    assert_int_equal(k8s_path_build(&evil, "a", "w", &p, &e), -1);
    assert_non_null(strstr(e.message, "resource \"..\" is a dot segment"));
    k8s_resource evil2 = { "..", "v1", "Widget", "widgets", true };
    assert_int_equal(k8s_path_build(&evil2, "a", "w", &p, &e), -1);
    assert_non_null(strstr(e.message, "API group \"..\""));
    /* the watch path of a dot namespace is refused, naming it */
    assert_null(k8s_watch_path(k8s_resource_builtin("v1", "PersistentVolumeClaim"), "..", NULL, &e));
    assert_non_null(strstr(e.message, "namespace \"..\""));
    assert_int_equal(k8s_check_segment("x", "ok-name.1", &e), 0);
    assert_int_equal(k8s_check_segment("x", NULL, NULL), -1);
}

/* ---- errors ------------------------------------------------------------- */

static void test_status_errors(void **state)
{
    (void)state;
    k8s_error e;
    static const char st[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
        "\"status\":\"Failure\",\"message\":\"persistentvolumeclaims \\\"d\\\" is forbidden: "
        "User \\\"system:serviceaccount:a:b\\\" cannot get resource\",\"reason\":\"Forbidden\","
        "\"details\":{\"name\":\"d\",\"kind\":\"persistentvolumeclaims\"},\"code\":403}";
    k8s_error_set(&e, "GET", "/api/v1/namespaces/a/persistentvolumeclaims/d", 403, 0, NULL,
                  st, sizeof st - 1);
    assert_int_equal(e.status, 403);
    assert_int_equal(e.curl_code, 0);
    assert_string_equal(e.reason, "Forbidden");
    assert_string_equal(e.message,
        "GET /api/v1/namespaces/a/persistentvolumeclaims/d: 403 Forbidden: "
        "persistentvolumeclaims \"d\" is forbidden: User \"system:serviceaccount:a:b\" "
        "cannot get resource");
    char buf[2048];
    assert_string_equal(k8s_strerror(&e, buf, sizeof buf), e.message);

    /* 409 AlreadyExists keeps the API reason, not the generic one */
    static const char ae[] = "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\","
                             "\"message\":\"x exists\",\"code\":409}";
    k8s_error_set(&e, "POST", "/api/v1/namespaces", 409, 0, NULL, ae, sizeof ae - 1);
    assert_string_equal(e.reason, "AlreadyExists");
    assert_string_equal(e.message, "POST /api/v1/namespaces: 409 AlreadyExists: x exists");

    /* not a Status (a proxy's HTML page): reason from the code, body excerpt
     * without control characters */
    static const char html[] = "<html>\r\n<b>Bad Gateway</b>\n</html>";
    k8s_error_set(&e, "GET", "/x", 502, 0, NULL, html, sizeof html - 1);
    assert_int_equal(e.status, 502);
    assert_string_equal(e.reason, "");
    assert_null(strchr(e.message, '\n'));
    assert_non_null(strstr(e.message, "GET /x: 502: <html>"));
    k8s_error_set(&e, "GET", "/y", 404, 0, NULL, NULL, 0);
    assert_string_equal(e.message, "GET /y: 404 NotFound");
    assert_string_equal(e.reason, "NotFound");

    /* transport failure */
    k8s_error_set(&e, "DELETE", "/api/v1/namespaces/a", 0, CURLE_COULDNT_CONNECT,
                  "Failed to connect to 127.0.0.1 port 1", NULL, 0);
    assert_int_equal(e.status, 0);
    assert_int_equal(e.curl_code, CURLE_COULDNT_CONNECT);
    assert_non_null(strstr(e.message, "DELETE /api/v1/namespaces/a: "));
    assert_non_null(strstr(e.message, "port 1"));

    /* a huge message is truncated, not overflowed */
    size_t n = 5000;
    char *big = malloc(n + 100);
    int o = snprintf(big, n + 100, "{\"kind\":\"Status\",\"reason\":\"Invalid\",\"message\":\"");
    memset(big + o, 'm', n - 200);
    strcpy(big + o + n - 200, "\",\"code\":422}");
    k8s_error_set(&e, "PATCH", "/p", 422, 0, NULL, big, strlen(big));
    assert_string_equal(e.reason, "Invalid");
    assert_true(strlen(e.message) < sizeof e.message);
    free(big);
}

/* ---- retry policy ------------------------------------------------------- */

static void test_retry_after(void **state)
{
    (void)state;
    time_t now = 1700000000;
    assert_int_equal(k8s_parse_retry_after(" 3\r\n", now), 3);
    assert_int_equal(k8s_parse_retry_after("0", now), 0);
    assert_int_equal(k8s_parse_retry_after("120", now), 120);
    assert_int_equal(k8s_parse_retry_after("", now), -1);
    assert_int_equal(k8s_parse_retry_after("soon", now), -1);
    assert_int_equal(k8s_parse_retry_after("-5", now), -1);
    assert_int_equal(k8s_parse_retry_after(NULL, now), -1);
    /* HTTP date 10 s after now; a past date means "now" */
    assert_int_equal(k8s_parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now), 10);
    assert_int_equal(k8s_parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), 0);
}

static void test_backoff(void **state)
{
    (void)state;
    /* exponential from 200 ms with jitter in [d/2, d], capped at 10 s */
    long prev_max = 0;
    for (int a = 0; a < 12; a++) {
        long d = 200L << (a < 6 ? a : 6);
        if (d > 10000)
            d = 10000;
        long lo = k8s_backoff_ms(a, -1, 0), hi = k8s_backoff_ms(a, -1, 0xffffffffu);
        assert_int_equal(lo, d / 2);
        assert_true(hi <= d && hi >= d / 2);
        assert_true(hi >= prev_max || d == 10000);
        prev_max = hi;
        for (unsigned r = 0; r < 1000; r += 37) {
            long v = k8s_backoff_ms(a, -1, r * 2654435761u);
            assert_true(v >= d / 2 && v <= d);
        }
    }
    /* Retry-After wins, capped at 120 s, small jitter */
    assert_true(k8s_backoff_ms(0, 2, 0) == 2000);
    assert_true(k8s_backoff_ms(3, 2, 1000) < 2250);
    assert_true(k8s_backoff_ms(0, 100000, 0) == 120000);
    assert_true(k8s_backoff_ms(0, 0, 5) < 250);
}

static void test_retryable(void **state)
{
    (void)state;
    /* transient statuses */
    assert_true(k8s_retryable("GET", 429, 0, true));
    assert_true(k8s_retryable("GET", 500, 0, true));
    assert_true(k8s_retryable("GET", 502, 0, true));
    assert_true(k8s_retryable("GET", 503, 0, true));
    assert_true(k8s_retryable("GET", 504, 0, true));
    assert_false(k8s_retryable("GET", 404, 0, true));
    assert_false(k8s_retryable("GET", 403, 0, true));
    assert_false(k8s_retryable("GET", 410, 0, true));
    /* writes: only 429/503 or when the request never reached the server */
    assert_true(k8s_retryable("PATCH", 429, 0, true));
    assert_true(k8s_retryable("DELETE", 503, 0, true));
    assert_false(k8s_retryable("PATCH", 500, 0, true));
    assert_false(k8s_retryable("POST", 504, 0, true));
    assert_false(k8s_retryable("PUT", 409, 0, true));
    assert_true(k8s_retryable("POST", 0, CURLE_COULDNT_CONNECT, true));
    assert_true(k8s_retryable("DELETE", 0, CURLE_COULDNT_RESOLVE_HOST, true));
    assert_false(k8s_retryable("POST", 0, CURLE_RECV_ERROR, true));
    assert_false(k8s_retryable("PATCH", 0, CURLE_OPERATION_TIMEDOUT, true));
    assert_true(k8s_retryable("GET", 0, CURLE_RECV_ERROR, true));
    assert_true(k8s_retryable("GET", 0, CURLE_OPERATION_TIMEDOUT, true));
    /* never sent (connect / handshake timeout): any method may be retried */
    assert_true(k8s_retryable("DELETE", 0, CURLE_OPERATION_TIMEDOUT, false));
    assert_true(k8s_retryable("POST", 0, CURLE_SSL_CONNECT_ERROR, false));
    assert_false(k8s_retryable("POST", 0, CURLE_PEER_FAILED_VERIFICATION, false));
    /* TLS verification failures are permanent */
    assert_false(k8s_retryable("GET", 0, CURLE_PEER_FAILED_VERIFICATION, true));
}

/* The query of a watch: a plain resume watch, and the streaming initial sync
 * (sendInitialEvents + resourceVersionMatch=NotOlderThan, bookmarks forced on
 * because the end of the initial events is a bookmark), values URL-encoded. */
static void check_watch_path(const k8s_watch_opts *o, const char *ns, const char *want)
{
    const k8s_resource *r = k8s_resource_builtin("v1", "PersistentVolumeClaim");
    assert_non_null(r);
    char *p = k8s_watch_path(r, ns, o, NULL);
    assert_non_null(p);
    if (strcmp(p, want) != 0)
        print_error("watch path: got %s want %s\n", p, want);
    assert_string_equal(p, want);
    free(p);
}

static void test_watch_paths(void **state)
{
    (void)state;
    /* no options: just watch=1 */
    check_watch_path(NULL, NULL, "/api/v1/persistentvolumeclaims?watch=1");
    /* plain resume watch: no sendInitialEvents, no resourceVersionMatch */
    k8s_watch_opts o = { .resource_version = "1234", .allow_bookmarks = true,
                         .timeout_seconds = 300 };
    check_watch_path(&o, "vm-prod",
                     "/api/v1/namespaces/vm-prod/persistentvolumeclaims?watch=1"
                     "&allowWatchBookmarks=true&resourceVersion=1234&timeoutSeconds=300");
    o.allow_bookmarks = false;
    o.resource_version = "";   /* empty = not sent */
    check_watch_path(&o, "vm-prod",
                     "/api/v1/namespaces/vm-prod/persistentvolumeclaims?watch=1&timeoutSeconds=300");
    /* streaming initial sync: bookmarks on even when not asked for */
    k8s_watch_opts s = { .send_initial_events = true };
    check_watch_path(&s, NULL,
                     "/api/v1/persistentvolumeclaims?watch=1&allowWatchBookmarks=true"
                     "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan");
    /* everything set, selectors escaped */
    s.resource_version = "77";
    s.label_selector = "app in (db, web),tier!=x";
    s.field_selector = "metadata.name=a&b";
    s.timeout_seconds = 60;
    check_watch_path(&s, "vm-dev",
                     "/api/v1/namespaces/vm-dev/persistentvolumeclaims?watch=1"
                     "&allowWatchBookmarks=true&sendInitialEvents=true"
                     "&resourceVersionMatch=NotOlderThan&resourceVersion=77"
                     "&labelSelector=app%20in%20%28db%2C%20web%29%2Ctier%21%3Dx"
                     "&fieldSelector=metadata.name%3Da%26b&timeoutSeconds=60");
    /* a zero or negative timeout is not sent */
    s.timeout_seconds = 0;
    s.label_selector = s.field_selector = NULL;
    check_watch_path(&s, "vm-dev",
                     "/api/v1/namespaces/vm-dev/persistentvolumeclaims?watch=1"
                     "&allowWatchBookmarks=true&sendInitialEvents=true"
                     "&resourceVersionMatch=NotOlderThan&resourceVersion=77");
}

static void test_encoding_and_bodies(void **state)
{
    (void)state;
    char *s = k8s_urlencode("app=web,tier in (a, b)&x~y");
    assert_string_equal(s, "app%3Dweb%2Ctier%20in%20%28a%2C%20b%29%26x~y");
    free(s);
    char *p = strdup("/api/v1/pods");
    assert_int_equal(k8s_qs_add(&p, "limit", "500"), 0);
    assert_int_equal(k8s_qs_add(&p, "labelSelector", "a=b"), 0);
    assert_string_equal(p, "/api/v1/pods?limit=500&labelSelector=a%3Db");
    free(p);

    k8s_delete_opts o = { .propagation = "Foreground", .uid = "u-1",
                          .resource_version = "42", .dry_run = true };
    json_t *b = k8s_delete_body(&o);
    char *t = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(t, "{\"apiVersion\":\"v1\",\"dryRun\":[\"All\"],\"kind\":\"DeleteOptions\","
                           "\"preconditions\":{\"resourceVersion\":\"42\",\"uid\":\"u-1\"},"
                           "\"propagationPolicy\":\"Foreground\"}");
    free(t);
    json_decref(b);
    b = k8s_delete_body(NULL);
    t = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(t, "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\"}");
    free(t);
    json_decref(b);

    json_t *v = k8s_parse_body("{\"a\":1}", 7);
    assert_int_equal(json_integer_value(json_object_get(v, "a")), 1);
    json_decref(v);
    v = k8s_parse_body("ok", 2);
    assert_string_equal(json_string_value(v), "ok");
    json_decref(v);
    v = k8s_parse_body(NULL, 0);
    assert_true(json_is_null(v));
}

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

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *serve(void *ud)
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

static void start_server(script *s, pthread_t *th)
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
static k8s_client *client_cfg(script *s, const char *token, const k8s_config *cfg)
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

static k8s_client *client_for(script *s, const char *token)
{
    return client_cfg(s, token, NULL);
}

#define CLOSE "Connection: close\r\n"

static void test_retry_loop(void **state)
{
    (void)state;
    static const char *const rs[] = {
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n" CLOSE
        "Content-Type: application/json\r\nContent-Length: 57\r\n\r\n"
        "{\"kind\":\"Status\",\"reason\":\"ServiceUnavailable\",\"code\":503}",
        "HTTP/1.1 200 OK\r\n" CLOSE "Content-Type: application/json\r\nContent-Length: 8\r\n\r\n"
        "{\"ok\":1}",
        NULL
    };
    script s = { .responses = rs };
    pthread_t th;
    start_server(&s, &th);
    k8s_client *c = client_for(&s, "tok-SECRET-1");
    json_t *out = NULL;
    k8s_error e;
    assert_int_equal(k8s_request(c, "GET", "/api/v1/namespaces", NULL, NULL, &out, &e), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "ok")), 1);
    json_decref(out);
    pthread_join(th, NULL);
    assert_int_equal(s.served, 2);
    long long gap = s.t_second - s.t_first;
    assert_true(gap >= 950 && gap < 6000);   /* Retry-After: 1 honoured (slack for valgrind) */
    assert_non_null(strstr(s.last_request, "Authorization: Bearer tok-SECRET-1"));
    assert_non_null(strstr(s.last_request, "User-Agent: ocpv-dr/"));
    close(s.fd);
    k8s_client_free(c);
}

static void test_no_retry_on_write_500(void **state)
{
    (void)state;
    static const char *const rs[] = {
        "HTTP/1.1 500 Internal Server Error\r\n" CLOSE "Content-Length: 2\r\n\r\nno",
        "HTTP/1.1 200 OK\r\n" CLOSE "Content-Length: 2\r\n\r\n{}",
        NULL
    };
    script s = { .responses = rs };
    pthread_t th;
    start_server(&s, &th);
    k8s_client *c = client_for(&s, "tok-SECRET-2");
    k8s_error e;
    assert_int_equal(k8s_request(c, "POST", "/api/v1/namespaces", "application/json", "{}",
                                 NULL, &e), -1);
    assert_int_equal(e.status, 500);
    assert_string_equal(e.reason, "InternalError");
    assert_null(strstr(e.message, "SECRET"));
    assert_int_equal(s.served, 1);
    /* the server thread still waits for a second connection: the GET gets it */
    assert_int_equal(k8s_request(c, "GET", "/x", NULL, NULL, NULL, &e), 0);
    pthread_join(th, NULL);
    close(s.fd);
    k8s_client_free(c);
}

typedef struct evs {
    int n;
    char types[8][16];
    long long rv_sum;
} evs;

static int collect(void *ud, const char *type, json_t *obj)
{
    evs *v = ud;
    if (v->n < 8)
        snprintf(v->types[v->n], sizeof v->types[0], "%s", type);
    v->n++;
    const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"),
                                                       "resourceVersion"));
    if (rv)
        v->rv_sum += atoll(rv);
    return 0;
}

/* One watch of the built-in v1 `kind` against the scripted server s (its
 * events into v, its error into e), the server thread joined and the client
 * freed afterwards; returns k8s_watch's result. */
static int watch_scripted(script *s, const char *kind, const char *ns, const k8s_watch_opts *wo,
                          evs *v, k8s_error *e)
{
    pthread_t th;
    start_server(s, &th);
    k8s_client *c = client_for(s, NULL);
    int rc = k8s_watch(c, k8s_resource_builtin("v1", kind), ns, wo, collect, v, e);
    pthread_join(th, NULL);
    close(s->fd);
    k8s_client_free(c);
    return rc;
}

static void test_watch_stream(void **state)
{
    (void)state;
    /* chunked stream delivered 7 bytes at a time: events split across reads,
     * a blank line, a final event without a trailing newline, an ERROR */
    static const char *const chunks[] = {
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"10\"}}}\n",
        "\n",
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",",
        "\"resourceVersion\":\"11\"}}}\n{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":",
        "{\"resourceVersion\":\"100\"}}}\n",
        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}",
        NULL
    };
    static char resp[2048];
    size_t o = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\n" CLOSE
                                "Content-Type: application/json\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n");
    for (const char *const *ch = chunks; *ch; ch++)
        o += (size_t)snprintf(resp + o, sizeof resp - o, "%zx\r\n%s\r\n", strlen(*ch), *ch);
    snprintf(resp + o, sizeof resp - o, "0\r\n\r\n");
    const char *const rs[] = { resp, NULL };
    script s = { .responses = rs };
    evs v = { 0 };
    k8s_watch_opts wo = { .resource_version = "9", .allow_bookmarks = true,
                          .timeout_seconds = 5, .label_selector = "app=x" };
    k8s_error e;
    int rc = watch_scripted(&s, "ConfigMap", "ns1", &wo, &v, &e);
    if (rc != 0)
        print_error("watch: %s\n", e.message);
    assert_int_equal(rc, 0);
    assert_int_equal(v.n, 4);
    assert_string_equal(v.types[0], "ADDED");
    assert_string_equal(v.types[1], "MODIFIED");
    assert_string_equal(v.types[2], "BOOKMARK");
    assert_string_equal(v.types[3], "ERROR");
    assert_int_equal(v.rv_sum, 121);
    assert_non_null(strstr(s.last_request, "GET /api/v1/namespaces/ns1/configmaps?watch=1&"
                                           "allowWatchBookmarks=true&resourceVersion=9&"
                                           "labelSelector=app%3Dx&timeoutSeconds=5 "));
    assert_null(strstr(s.last_request, "Authorization"));   /* no token, no header */
}

static void test_watch_garbage(void **state)
{
    (void)state;
    /* a line that is not an event ends the watch with an error naming it;
     * the events before it were delivered */
    static const char *const rs[] = {
        "HTTP/1.1 200 OK\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}\n"
        "<html>proxy error</html>\n"
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"2\"}}}\n",
        NULL
    };
    script s = { .responses = rs };
    evs v = { 0 };
    k8s_error e;
    assert_int_equal(watch_scripted(&s, "PersistentVolume", NULL, NULL, &v, &e), -1);
    assert_int_equal(v.n, 1);
    assert_non_null(strstr(e.message, "GET /api/v1/persistentvolumes?watch=1: undecodable "
                                      "watch event"));
}

/* An event line is bounded (K8S_WATCH_MAX_LINE): a stream that never sends
 * a newline ends with an error naming the limit, as soon as it is passed,
 * instead of being buffered whole. */
static void test_watch_line_limit(void **state)
{
    (void)state;
    static const char head[] = "HTTP/1.1 200 OK\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
                               "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}\n"
                               "{\"type\":\"ADDED\",\"object\":{\"x\":\"";
    size_t big = K8S_WATCH_MAX_LINE + 1024 * 1024;
    char *resp = malloc(sizeof head + big + 8);
    assert_non_null(resp);
    memcpy(resp, head, sizeof head - 1);
    memset(resp + sizeof head - 1, 'a', big);
    strcpy(resp + sizeof head - 1 + big, "\"}}\n");
    const char *const rs[] = { resp, NULL };
    script s = { .responses = rs, .piece = 64 * 1024 };
    evs v = { 0 };
    k8s_error e;
    assert_int_equal(watch_scripted(&s, "ConfigMap", NULL, NULL, &v, &e), -1);
    assert_int_equal(v.n, 1);
    if (!strstr(e.message, "watch event line longer than 16777216 bytes"))
        print_error("watch: %s\n", e.message);
    assert_non_null(strstr(e.message, "watch event line longer than 16777216 bytes"));
    free(resp);
}

/* k8s_wlines on its own: the events do not depend on how the stream is cut,
 * a CRLF or blank line is fine, the last line needs no newline, and
 * max_line applies to a terminated line too. */
typedef struct wl_log {
    char text[512];
    int n;
} wl_log;

static int wl_collect(void *ud, const char *type, json_t *obj, const char *line, size_t len)
{
    wl_log *l = ud;
    size_t o = strlen(l->text);
    snprintf(l->text + o, sizeof l->text - o, "%s:%.*s|", type, (int)len, line);
    l->n++;
    return 0;
}

static void test_watch_lines(void **state)
{
    (void)state;
    static const char stream[] = "{\"type\":\"ADDED\",\"object\":{\"a\":1}}\r\n\n"
                                 "{\"type\":\"DELETED\",\"object\":{\"b\":\"\\n\"}} \n"
                                 "{\"type\":\"BOOKMARK\",\"object\":{}}";
    static const char want[] = "ADDED:{\"type\":\"ADDED\",\"object\":{\"a\":1}}|"
                               "DELETED:{\"type\":\"DELETED\",\"object\":{\"b\":\"\\n\"}}|"
                               "BOOKMARK:{\"type\":\"BOOKMARK\",\"object\":{}}|";
    for (size_t piece = 1; piece <= sizeof stream; piece++) {
        wl_log log = { .text = "" };
        k8s_wlines l = { .line_cb = wl_collect, .ud = &log };
        for (size_t o = 0; o < sizeof stream - 1; o += piece) {
            size_t n = sizeof stream - 1 - o < piece ? sizeof stream - 1 - o : piece;
            assert_true(k8s_wlines_feed(&l, stream + o, n));
        }
        assert_true(k8s_wlines_end(&l));
        assert_true(k8s_wlines_end(&l));   /* once */
        assert_string_equal(log.text, want);
        assert_false(l.bad_event || l.stopped);
        k8s_wlines_free(&l);
    }
    wl_log log = { .text = "" };
    k8s_wlines l = { .line_cb = wl_collect, .ud = &log, .max_line = 36 };
    assert_false(k8s_wlines_feed(&l, stream, sizeof stream - 1));
    assert_true(l.bad_event);
    assert_int_equal(log.n, 1);   /* the first line fits, the second does not */
    assert_string_equal(l.bad_msg, "watch event line longer than 36 bytes");
    k8s_wlines_free(&l);
}

static void test_connection_refused(void **state)
{
    (void)state;
    /* a port nobody listens on: retried max_retries times, then a clear error */
    script s = { .responses = (const char *const[]){ NULL } };
    pthread_t th;
    start_server(&s, &th);
    pthread_join(th, NULL);
    close(s.fd);   /* now refused */
    k8s_client *c = client_for(&s, "tok-SECRET-3");
    k8s_error e;
    long long t0 = now_ms();
    assert_int_equal(k8s_get(c, k8s_resource_builtin("v1", "Namespace"), NULL, "x", NULL, &e),
                     -1);
    long long dt = now_ms() - t0;
    assert_int_equal(e.status, 0);
    assert_int_equal(e.curl_code, CURLE_COULDNT_CONNECT);
    assert_non_null(strstr(e.message, "GET /api/v1/namespaces/x: "));
    assert_null(strstr(e.message, "SECRET"));
    assert_true(dt >= 100 + 200 + 400);   /* three backoffs (lower jitter bounds) */
    k8s_client_free(c);
}

static void test_list_restart_on_410(void **state)
{
    (void)state;
    /* page 1 hands out a continue token; page 2 answers 410 Expired (the
     * token outlived etcd compaction); the list starts over and returns the
     * fresh snapshot only, with apiVersion/kind filled in */
#define JSONH "HTTP/1.1 200 OK\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
    static const char *const rs[] = {
        JSONH "{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":\"5\","
        "\"continue\":\"tok-1\"},\"items\":[{\"metadata\":{\"name\":\"old-a\"}}]}",
        "HTTP/1.1 410 Gone\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
        "{\"kind\":\"Status\",\"reason\":\"Expired\",\"message\":\"The provided continue "
        "parameter is too old\",\"code\":410}",
        JSONH "{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":\"9\","
        "\"continue\":\"tok-2\"},\"items\":[{\"metadata\":{\"name\":\"a\"}}]}",
        JSONH "{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":\"9\"},"
        "\"items\":[{\"metadata\":{\"name\":\"b\"}}]}",
        NULL
    };
#undef JSONH
    script s = { .responses = rs };
    pthread_t th;
    start_server(&s, &th);
    k8s_client *c = client_for(&s, NULL);
    k8s_list_opts lo = { .limit = 1, .label_selector = "x=y" };
    json_t *items = NULL;
    char *rv = NULL;
    k8s_error e;
    int rc = k8s_list(c, k8s_resource_builtin("v1", "ConfigMap"), "ns", &lo, &items, &rv, &e);
    if (rc != 0)
        print_error("list: %s\n", e.message);
    assert_int_equal(rc, 0);
    pthread_join(th, NULL);
    assert_int_equal(s.served, 4);
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(json_string_value(json_object_get(
        json_object_get(json_array_get(items, 0), "metadata"), "name")), "a");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "kind")),
                        "ConfigMap");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1),
                                                          "apiVersion")), "v1");
    assert_string_equal(rv, "9");
    assert_non_null(strstr(s.last_request, "GET /api/v1/namespaces/ns/configmaps?limit=1&"
                                           "labelSelector=x%3Dy&continue=tok-2 "));
    free(rv);
    json_decref(items);
    close(s.fd);
    k8s_client_free(c);
}

typedef struct bres {
    int ok, failed;
    char order[32];
} bres;

static void on_done(void *ud, int rc, json_t *out, const k8s_error *err)
{
    bres *b = ud;
    if (rc == 0 && json_is_object(out))
        b->ok++;
    else
        b->failed++;
    (void)err;
}

static void test_batch_one_in_flight(void **state)
{
    (void)state;
    /* 12 requests, one at a time: each must start as soon as the previous
     * completes (a regression once waited a full poll timeout in between);
     * a 503 with Retry-After: 0 is retried inside the batch */
    static const char ok[] = "HTTP/1.1 200 OK\r\n" CLOSE "Content-Length: 2\r\n\r\n{}";
    static const char busy[] = "HTTP/1.1 503 Busy\r\nRetry-After: 0\r\n" CLOSE
                               "Content-Length: 0\r\n\r\n";
    const char *rs[14];
    for (int i = 0; i < 13; i++)
        rs[i] = i == 3 ? busy : ok;
    rs[13] = NULL;
    script s = { .responses = rs };
    pthread_t th;
    start_server(&s, &th);
    k8s_config cfg = { .max_in_flight = 1, .max_retries = 2 };
    k8s_client *c = client_cfg(&s, NULL, &cfg);
    k8s_batch *b = k8s_batch_new(c);
    bres r = { 0 };
    const k8s_resource *ns = k8s_resource_builtin("v1", "Namespace");
    char name[16];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "n%d", i);
        k8s_batch_get(b, ns, NULL, name, on_done, &r);
    }
    k8s_batch_get(b, ns, NULL, NULL, on_done, &r);   /* invalid: fails alone, no request */
    long long t0 = now_ms();
    assert_int_equal(k8s_batch_run(b), 1);
    long long dt = now_ms() - t0;
    assert_int_equal(r.ok, 12);
    assert_int_equal(r.failed, 1);
    assert_true(dt < 5000);   /* the old stall cost 1 s per request: >= 12 s */
    pthread_join(th, NULL);
    assert_int_equal(s.served, 13);
    /* reusable: an empty run does nothing */
    assert_int_equal(k8s_batch_run(b), 0);
    k8s_batch_free(b);
    close(s.fd);
    k8s_client_free(c);
}

/* k8s_batch_merge_patch: PATCH with the merge-patch content type, the field
 * manager and the body (resourceVersion precondition included) as given; a
 * 409 is reported to the callback (never retried: the caller re-reads). */
static void test_batch_merge_patch(void **state)
{
    (void)state;
    static const char *const rs[] = {
        "HTTP/1.1 409 Conflict\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
        "{\"kind\":\"Status\",\"reason\":\"Conflict\",\"code\":409}",
        NULL };
    script s = { .responses = rs, .piece = 4096 };
    pthread_t th;
    start_server(&s, &th);
    k8s_config cfg = { .max_in_flight = 1, .max_retries = 3 };
    k8s_client *c = client_cfg(&s, NULL, &cfg);
    k8s_batch *b = k8s_batch_new(c);
    bres r = { 0 };
    const k8s_resource *pv = k8s_resource_builtin("v1", "PersistentVolume");
    json_t *patch = json_pack("{s:{s:s, s:{s:s}}}", "metadata", "resourceVersion", "41",
                              "annotations", "dr.ocpv.io/last-sync-start", "2026-12-03T13:00:07Z");
    k8s_write_opts wo = { .field_manager = "ocpv-dr-state" };
    k8s_batch_merge_patch(b, pv, NULL, "pv-1", patch, &wo, on_done, &r);
    k8s_batch_merge_patch(b, pv, NULL, "..", patch, &wo, on_done, &r);   /* invalid: no request */
    json_decref(patch);                                                  /* the batch copied it */
    assert_int_equal(k8s_batch_run(b), 2);
    pthread_join(th, NULL);
    assert_int_equal(r.failed, 2);
    assert_int_equal(s.served, 1);
    assert_string_equal(s.lines[0],
                        "PATCH /api/v1/persistentvolumes/pv-1?fieldManager=ocpv-dr-state HTTP/1.1");
    assert_non_null(strstr(s.last_request, "Content-Type: application/merge-patch+json"));
    assert_non_null(strstr(s.last_request, "\"resourceVersion\":\"41\""));
    k8s_batch_free(b);
    close(s.fd);
    k8s_client_free(c);
}

/* One batch list: its items (all pages) or its error. */
typedef struct blist {
    int rc;
    json_t *items;
    char msg[1100];
} blist;

static void on_list(void *ud, int rc, json_t *out, const k8s_error *err)
{
    blist *l = ud;
    l->rc = rc;
    l->items = rc == 0 ? json_incref(out) : NULL;
    snprintf(l->msg, sizeof l->msg, "%s", rc == 0 || !err ? "" : err->message);
}

/* k8s_batch_list: pages followed (continue token sent), an answer that is not
 * a list fails that list alone, an expired continue token (410) relists from
 * the start, items get apiVersion/kind, and one batch lists through two
 * clients (primary and DR in k8s_dr_clean's prefetch). */
static void test_batch_lists(void **state)
{
    (void)state;
#define JSONH "HTTP/1.1 200 OK\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
    static const char *const rs[] = {
        /* A: two pages */
        JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"metadata\":{\"continue\":\"t1\"},"
        "\"items\":[{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns-a\"}}]}",
        JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"metadata\":{},"
        "\"items\":[{\"metadata\":{\"name\":\"b\",\"namespace\":\"ns-a\"}}]}",
        /* B: not a list */
        JSONH "{}",
        /* C: page 2 answers 410 Gone (token expired): listed again */
        JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"metadata\":{\"continue\":\"t2\"},"
        "\"items\":[{\"metadata\":{\"name\":\"old\",\"namespace\":\"ns-c\"}}]}",
        "HTTP/1.1 410 Gone\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
        "{\"kind\":\"Status\",\"reason\":\"Expired\",\"code\":410}",
        JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"metadata\":{},"
        "\"items\":[{\"metadata\":{\"name\":\"new\",\"namespace\":\"ns-c\"}}]}",
        NULL };
    static const char *const rs2[] = {
        JSONH "{\"kind\":\"PersistentVolumeList\",\"metadata\":{},"
        "\"items\":[{\"metadata\":{\"name\":\"pv-1\"}}]}",
        NULL };
    script s = { .responses = rs, .piece = 4096 }, s2 = { .responses = rs2, .piece = 4096 };
    pthread_t th, th2;
    start_server(&s, &th);
    start_server(&s2, &th2);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s.port);
    k8s_conn conn = { .host = url, .validate_certs = -1, .allow_insecure_http = true };
    k8s_config cfg = { .max_in_flight = 1, .max_retries = 2 };   /* one at a time: in order */
    k8s_error e;
    k8s_client *c = k8s_client_new(&conn, &cfg, &e);
    k8s_client *c2 = client_for(&s2, NULL);
    assert_non_null(c);
    const k8s_resource *pvc = k8s_resource_builtin("v1", "PersistentVolumeClaim");
    const k8s_resource *pv = k8s_resource_builtin("v1", "PersistentVolume");
    k8s_batch *b = k8s_batch_new(c);
    blist la = { 0 }, lb = { 0 }, lc = { 0 }, ld = { 0 };
    k8s_list_opts lo = { .label_selector = "dr.ocpv.io/managed-by=ocpv-dr", .limit = 1 };
    k8s_batch_list(b, NULL, pvc, "ns-a", &lo, on_list, &la);
    k8s_batch_list(b, NULL, pvc, "ns-b", NULL, on_list, &lb);
    k8s_batch_list(b, NULL, pvc, "ns-c", NULL, on_list, &lc);
    k8s_batch_list(b, c2, pv, NULL, NULL, on_list, &ld);
    assert_int_equal(k8s_batch_run(b), 1);
    pthread_join(th, NULL);
    pthread_join(th2, NULL);
    assert_int_equal(s.served, 6);
    assert_int_equal(s2.served, 1);
    assert_int_equal(la.rc, 0);
    assert_int_equal(json_array_size(la.items), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(la.items, 1), "kind")),
                        "PersistentVolumeClaim");
    assert_string_equal(json_string_value(json_object_get(json_array_get(la.items, 1),
                                                          "apiVersion")), "v1");
    assert_int_equal(lb.rc, -1);
    assert_null(lb.items);
    assert_non_null(strstr(lb.msg, "list PersistentVolumeClaim in namespace ns-b"));
    assert_non_null(strstr(lb.msg, "is not a Kubernetes list"));
    assert_int_equal(lc.rc, 0);
    assert_int_equal(json_array_size(lc.items), 1);   /* the relist only, not "old" twice */
    assert_string_equal(json_string_value(json_object_get(json_object_get(
        json_array_get(lc.items, 0), "metadata"), "name")), "new");
    assert_int_equal(ld.rc, 0);
    assert_int_equal(json_array_size(ld.items), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ld.items, 0), "kind")),
                        "PersistentVolume");
    /* A's pages carried the selector and the page size, page 2 the token;
     * C's relist started without one */
    assert_non_null(strstr(s.lines[0], "/api/v1/namespaces/ns-a/persistentvolumeclaims?limit=1"
                                       "&labelSelector=dr.ocpv.io%2Fmanaged-by%3Docpv-dr "));
    assert_non_null(strstr(s.lines[1], "&continue=t1 "));
    assert_non_null(strstr(s.lines[4], "/namespaces/ns-c/persistentvolumeclaims?limit=500&continue=t2 "));
    assert_null(strstr(s.lines[5], "continue"));
    json_decref(la.items);
    json_decref(lc.items);
    json_decref(ld.items);
    /* a list of a path that cannot be built fails alone, no request */
    blist lx = { 0 };
    k8s_batch_list(b, NULL, pvc, "..", NULL, on_list, &lx);
    assert_int_equal(k8s_batch_run(b), 1);
    assert_int_equal(lx.rc, -1);
    assert_non_null(strstr(lx.msg, "dot segment"));
    k8s_batch_free(b);
    close(s.fd);
    close(s2.fd);
    k8s_client_free(c);
    k8s_client_free(c2);
#undef JSONH
}

/* A 2xx answer to a list that is not a list fails the call, naming the
 * resource and namespace: `200 {}`, a proxy's HTML login page, items
 * missing / null / not an array - never "no objects" (prune would delete
 * what the namespace holds on DR).  A real empty list is fine. */
static void test_list_not_a_list(void **state)
{
    (void)state;
#define JSONH "HTTP/1.1 200 OK\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
    static const struct { const char *resp, *want; } cases[] = {
        { JSONH "{}", "is not a Kubernetes list (no kind)" },
        { "HTTP/1.1 200 OK\r\n" CLOSE "Content-Type: text/html\r\n\r\n"
          "<html><body>Please log in</body></html>", "is text that is not JSON" },
        { JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"metadata\":{}}", "has no items" },
        { JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"items\":null}", "has items: null" },
        { JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"items\":{}}",
          "has items that are not an array" },
        { JSONH "{\"kind\":\"Status\",\"items\":[]}", "kind \"Status\"" },
        { JSONH "[]", "is an array, not a Kubernetes list" },
        { JSONH "", "is empty, not a Kubernetes list" },
        { JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"items\":[1]}", "items[0] is not an object" },
        /* a list, but not of what was asked for: prune takes each item's
         * namespace from the item */
        { JSONH "{\"kind\":\"PersistentVolumeList\",\"items\":[]}",
          "is a PersistentVolumeList, not a PersistentVolumeClaimList" },
        { JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"items\":[{\"kind\":\"Secret\","
          "\"metadata\":{\"name\":\"a\",\"namespace\":\"vm-prod\"}}]}", "items[0] is a Secret" },
        { JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"items\":[{\"metadata\":{\"name\":\"a\","
          "\"namespace\":\"vm-prod\"}},{\"metadata\":{\"name\":\"b\",\"namespace\":\"other\"}}]}",
          "items[1] is in namespace \"other\"" },
    };
    const k8s_resource *pvc = k8s_resource_builtin("v1", "PersistentVolumeClaim");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *rs[] = { cases[i].resp, NULL };
        script s = { .responses = rs };
        pthread_t th;
        start_server(&s, &th);
        k8s_client *c = client_for(&s, NULL);
        json_t *items = (json_t *)1;
        k8s_error e;
        int rc = k8s_list(c, pvc, "vm-prod", NULL, &items, NULL, &e);
        pthread_join(th, NULL);
        if (rc == 0 || !strstr(e.message, cases[i].want))
            print_error("case %zu: rc %d, message \"%s\", want \"%s\"\n", i, rc, e.message,
                        cases[i].want);
        assert_int_equal(rc, -1);
        assert_null(items);
        assert_non_null(strstr(e.message, "list PersistentVolumeClaim in namespace vm-prod: "
                                          "GET /api/v1/namespaces/vm-prod/persistentvolumeclaims"));
        assert_non_null(strstr(e.message, cases[i].want));
        assert_int_equal(e.status, 200);
        assert_string_equal(e.reason, "NotAList");
        assert_int_equal(s.served, 1);   /* not retried: it is not transient */
        close(s.fd);
        k8s_client_free(c);
    }
    /* page 2 of a paginated list is checked as page 1 is */
    static const char *const two[] = {
        JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"metadata\":{\"continue\":\"t\"},"
        "\"items\":[{\"metadata\":{\"name\":\"a\"}}]}",
        JSONH "{\"metadata\":{}}",
        NULL
    };
    script s = { .responses = two };
    pthread_t th;
    start_server(&s, &th);
    k8s_client *c = client_for(&s, NULL);
    json_t *items = NULL;
    k8s_error e;
    assert_int_equal(k8s_list(c, pvc, "vm-prod", NULL, &items, NULL, &e), -1);
    pthread_join(th, NULL);
    assert_null(items);
    assert_non_null(strstr(e.message, "continue=t"));
    close(s.fd);
    k8s_client_free(c);
    /* a listing that never ends: the continue token it was sent, or empty
     * pages that keep promising more - refused, not looped on (before: the
     * client looped, and grew, for as long as the server answered) */
    static const char *const same[] = {
        JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"metadata\":{\"continue\":\"t\"},"
        "\"items\":[{\"metadata\":{\"name\":\"a\"}}]}",
        JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"metadata\":{\"continue\":\"t\"},"
        "\"items\":[{\"metadata\":{\"name\":\"a\"}}]}",
        JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"items\":[]}",
        NULL
    };
    script se = { .responses = same };
    start_server(&se, &th);
    c = client_for(&se, NULL);
    items = NULL;
    assert_int_equal(k8s_list(c, pvc, "vm-prod", NULL, &items, NULL, &e), -1);
    assert_null(items);
    assert_string_equal(e.reason, "EndlessList");
    assert_non_null(strstr(e.message, "continue token it was sent"));
    assert_int_equal(se.served, 2);
    shutdown(se.fd, SHUT_RDWR);   /* the third answer is never asked for: wake accept() */
    close(se.fd);
    pthread_join(th, NULL);
    k8s_client_free(c);
    static const char *emptyp[K8S_LIST_MAX_EMPTY_PAGES + 2];
    static char pagebuf[K8S_LIST_MAX_EMPTY_PAGES + 1][160];
    for (int i = 0; i <= K8S_LIST_MAX_EMPTY_PAGES; i++) {
        snprintf(pagebuf[i], sizeof pagebuf[i], JSONH "{\"kind\":\"PersistentVolumeClaimList\","
                 "\"metadata\":{\"continue\":\"t%d\"},\"items\":[]}", i);
        emptyp[i] = pagebuf[i];
    }
    emptyp[K8S_LIST_MAX_EMPTY_PAGES + 1] = NULL;
    script sp = { .responses = emptyp, .piece = 4096 };
    start_server(&sp, &th);
    c = client_for(&sp, NULL);
    assert_int_equal(k8s_list(c, pvc, "vm-prod", NULL, &items, NULL, &e), -1);
    assert_string_equal(e.reason, "EndlessList");
    assert_non_null(strstr(e.message, "empty pages"));
    assert_int_equal(sp.served, K8S_LIST_MAX_EMPTY_PAGES);
    shutdown(sp.fd, SHUT_RDWR);
    close(sp.fd);
    pthread_join(th, NULL);
    k8s_client_free(c);
    /* an empty list is a list */
    static const char *const empty[] = {
        JSONH "{\"kind\":\"PersistentVolumeClaimList\",\"metadata\":{\"resourceVersion\":\"7\"},"
        "\"items\":[]}", NULL };
    script s2 = { .responses = empty };
    start_server(&s2, &th);
    c = client_for(&s2, NULL);
    assert_int_equal(k8s_list(c, pvc, "vm-prod", NULL, &items, NULL, &e), 0);
    pthread_join(th, NULL);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
    close(s2.fd);
    k8s_client_free(c);
    /* a GET of one object that is not that object fails too */
    static const char *const notobj[] = {
        "HTTP/1.1 200 OK\r\n" CLOSE "Content-Type: text/html\r\n\r\n<html>login</html>",
        JSONH "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"vm-prod\"}}",
        NULL };
    script s3 = { .responses = notobj };
    start_server(&s3, &th);
    c = client_for(&s3, NULL);
    json_t *obj = (json_t *)1;
    assert_int_equal(k8s_get(c, pvc, "vm-prod", "disk", &obj, &e), -1);
    assert_null(obj);
    assert_non_null(strstr(e.message, "not a PersistentVolumeClaim object"));
    assert_int_equal(k8s_get(c, pvc, "vm-prod", "disk", &obj, &e), -1);
    assert_non_null(strstr(e.message, "is a Namespace, not a PersistentVolumeClaim"));
    pthread_join(th, NULL);
    close(s3.fd);
    k8s_client_free(c);
#undef JSONH
}

/* A kind by name alone resolves through the built-in table (k8s_dr_clean's
 * `kinds`); a name two groups share does not. */
static void test_builtin_kind(void **state)
{
    (void)state;
    char av[64];
    const k8s_resource *sc = k8s_resource_builtin_kind("StorageClass");
    assert_non_null(sc);
    assert_string_equal(k8s_api_version(sc, av, sizeof av), "storage.k8s.io/v1");
    assert_false(sc->namespaced);
    assert_ptr_equal(sc, k8s_resource_builtin("storage.k8s.io/v1", "StorageClass"));
    const k8s_resource *pvc = k8s_resource_builtin_kind("PersistentVolumeClaim");
    assert_string_equal(k8s_api_version(pvc, av, sizeof av), "v1");
    assert_string_equal(k8s_api_version(k8s_resource_builtin_kind("DataVolume"), av, sizeof av),
                        "cdi.kubevirt.io/v1beta1");
    assert_null(k8s_resource_builtin_kind("Backup"));      /* velero.io and longhorn.io */
    assert_null(k8s_resource_builtin_kind("Widget"));
    assert_null(k8s_resource_builtin_kind("storageclass"));
    assert_null(k8s_resource_builtin_kind(NULL));
}

/* A GET answered with another object than the one asked for (another name,
 * another namespace - a proxy's cache, a rewrite) fails: taken for the asked
 * object it would be compared, updated or deleted in its place.  The right
 * object passes. */
static void test_get_other_object_refused(void **state)
{
    (void)state;
#define JSONH "HTTP/1.1 200 OK\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
    static const char *const rs[] = {
        JSONH "{\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"other\","
        "\"namespace\":\"vm-prod\"}}",
        JSONH "{\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"disk\","
        "\"namespace\":\"vm-dev\"}}",
        JSONH "{\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"disk\","
        "\"namespace\":\"vm-prod\"}}",
        JSONH "{\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":\"pv-9\"}}",
        NULL };
    script s = { .responses = rs };
    pthread_t th;
    start_server(&s, &th);
    k8s_client *c = client_for(&s, NULL);
    const k8s_resource *pvc = k8s_resource_builtin("v1", "PersistentVolumeClaim");
    const k8s_resource *pv = k8s_resource_builtin("v1", "PersistentVolume");
    json_t *obj = (json_t *)1;
    k8s_error e;
    assert_int_equal(k8s_get(c, pvc, "vm-prod", "disk", &obj, &e), -1);
    assert_null(obj);
    assert_non_null(strstr(e.message, "get PersistentVolumeClaim in namespace vm-prod: GET "
                                      "/api/v1/namespaces/vm-prod/persistentvolumeclaims/disk"));
    assert_non_null(strstr(e.message, "is PersistentVolumeClaim \"other\", not the "
                                      "PersistentVolumeClaim \"disk\" asked for"));
    assert_int_equal(e.status, 200);
    assert_int_equal(k8s_get(c, pvc, "vm-prod", "disk", &obj, &e), -1);
    assert_non_null(strstr(e.message, "is in namespace \"vm-dev\", not \"vm-prod\""));
    assert_int_equal(k8s_get(c, pvc, "vm-prod", "disk", &obj, &e), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(obj, "metadata"),
                                                          "name")), "disk");
    json_decref(obj);
    assert_int_equal(k8s_get(c, pv, NULL, "pv-1", &obj, &e), -1);
    assert_non_null(strstr(e.message, "is PersistentVolume \"pv-9\", not the PersistentVolume "
                                      "\"pv-1\" asked for"));
    pthread_join(th, NULL);
    assert_int_equal(s.served, 4);
    close(s.fd);
    k8s_client_free(c);
    /* the check itself, as callers with their own requests (batch GETs) use it */
    json_t *o = json_pack("{ss s{ss ss}}", "kind", "PersistentVolumeClaim", "metadata",
                          "name", "disk", "namespace", "vm-prod");
    assert_int_equal(k8s_object_check(o, pvc, "vm-prod", "disk", NULL, 200, &e), 0);
    assert_int_equal(k8s_object_check(o, pvc, NULL, NULL, NULL, 200, &e), 0);
    assert_int_equal(k8s_object_check(o, pvc, "vm-prod", "disk2", NULL, 200, &e), -1);
    assert_int_equal(k8s_object_check(o, pvc, "x", "disk", NULL, 200, &e), -1);
    json_decref(o);
#undef JSONH
}

/* A claim named ".." (or a dot namespace) is refused before any request by
 * every verb; and a path is sent as built (CURLOPT_PATH_AS_IS): libcurl
 * would otherwise turn /namespaces/a/persistentvolumeclaims/.. into
 * /namespaces/a - the Namespace object. */
static void test_dot_names_never_requested(void **state)
{
    (void)state;
    static const char *const rs[] = {
        "HTTP/1.1 200 OK\r\n" CLOSE "Content-Length: 2\r\n\r\n{}", NULL };
    script s = { .responses = rs };
    pthread_t th;
    start_server(&s, &th);
    k8s_client *c = client_for(&s, "tok-SECRET-4");
    const k8s_resource *pvc = k8s_resource_builtin("v1", "PersistentVolumeClaim");
    k8s_error e;
    json_t *out = NULL;
    assert_int_equal(k8s_get(c, pvc, "a", "..", &out, &e), -1);
    assert_non_null(strstr(e.message, "PersistentVolumeClaim name \"..\" is a dot segment"));
    json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
                            "PersistentVolumeClaim", "metadata", "name", "..", "namespace", "a");
    k8s_write_opts wo = { 0 };
    assert_int_equal(k8s_apply(c, pvc, obj, &wo, &out, &e), -1);
    assert_non_null(strstr(e.message, "name \"..\""));
    assert_int_equal(k8s_create(c, pvc, obj, &wo, &out, &e), -1);
    assert_non_null(strstr(e.message, "name \"..\""));
    assert_int_equal(k8s_update_status(c, pvc, obj, &out, &e), -1);
    json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "x", "y");
    assert_int_equal(k8s_merge_patch(c, pvc, "a", "..", patch, &wo, &out, &e), -1);
    assert_int_equal(k8s_merge_patch(c, pvc, "..", "disk", patch, &wo, &out, &e), -1);
    assert_non_null(strstr(e.message, "namespace \"..\""));
    assert_int_equal(k8s_delete(c, pvc, "a", "..", NULL, &e), -1);
    assert_int_equal(k8s_delete(c, pvc, "a", ".", NULL, &e), -1);
    json_t *items = NULL;
    assert_int_equal(k8s_list(c, pvc, "..", NULL, &items, NULL, &e), -1);
    assert_int_equal(k8s_watch(c, pvc, "..", NULL, collect, NULL, &e), -1);
    assert_non_null(strstr(e.message, "namespace \"..\""));
    k8s_batch *b = k8s_batch_new(c);
    bres br = { 0 };
    k8s_batch_get(b, pvc, "a", "..", on_done, &br);
    k8s_batch_apply(b, pvc, obj, &wo, on_done, &br);
    k8s_batch_delete(b, pvc, "a", "..", NULL, on_done, &br);
    assert_int_equal(k8s_batch_run(b), 3);
    assert_int_equal(br.failed, 3);
    k8s_batch_free(b);
    json_decref(obj);
    json_decref(patch);
    assert_int_equal(s.served, 0);   /* not one request left this process */
    /* the one request: a dot segment typed into a raw path reaches the server as is */
    assert_int_equal(k8s_request(c, "GET", "/api/v1/namespaces/a/persistentvolumeclaims/../x/./y",
                                 NULL, NULL, NULL, &e), 0);
    pthread_join(th, NULL);
    assert_non_null(strstr(s.last_request,
                           "GET /api/v1/namespaces/a/persistentvolumeclaims/../x/./y HTTP/1.1"));
    close(s.fd);
    k8s_client_free(c);
}

/* Credentials never go over plain http unless allow_insecure_http; the
 * client says when the transport is unsafe (modules warn from that). */
static void test_insecure_http_refused(void **state)
{
    (void)state;
    k8s_error e;
    k8s_conn conn = { .host = "http://127.0.0.1:1", .api_key = "tok-SECRET-5",
                      .validate_certs = -1 };
    assert_null(k8s_client_new(&conn, NULL, &e));
    assert_non_null(strstr(e.message, "server http://127.0.0.1:1 is plain http: refusing to send "
                                      "the bearer token"));
    assert_non_null(strstr(e.message, "allow_insecure_http"));
    assert_null(strstr(e.message, "SECRET"));
    /* a client certificate neither */
    k8s_conn cert = { .host = "http://127.0.0.1:1", .client_cert = TEST_DATA_DIR "/kubeconfig/client.crt",
                      .client_key = TEST_DATA_DIR "/kubeconfig/client.key", .validate_certs = -1 };
    assert_null(k8s_client_new(&cert, NULL, &e));
    assert_non_null(strstr(e.message, "client certificate"));
    /* asked for: allowed, and said */
    conn.allow_insecure_http = true;
    k8s_client *c = k8s_client_new(&conn, NULL, &e);
    assert_non_null(c);
    assert_true(k8s_client_plain_http(c));
    assert_false(k8s_client_tls_unverified(c));
    k8s_client_free(c);
    /* no credential: nothing to leak, allowed (still plain http) */
    k8s_conn anon = { .host = "HTTP://127.0.0.1:1", .validate_certs = -1 };
    c = k8s_client_new(&anon, NULL, &e);
    assert_non_null(c);
    assert_true(k8s_client_plain_http(c));
    k8s_client_free(c);
    /* https with verification off */
    k8s_conn off = { .host = "https://127.0.0.1:1", .api_key = "t", .validate_certs = 0 };
    c = k8s_client_new(&off, NULL, &e);
    assert_non_null(c);
    assert_false(k8s_client_plain_http(c));
    assert_true(k8s_client_tls_unverified(c));
    k8s_client_free(c);
    k8s_conn on = { .host = "https://127.0.0.1:1", .api_key = "t", .validate_certs = -1 };
    c = k8s_client_new(&on, NULL, &e);
    assert_non_null(c);
    assert_false(k8s_client_plain_http(c) || k8s_client_tls_unverified(c));
    k8s_client_free(c);
    /* from module parameters */
    json_t *p = json_pack("{s:s, s:b}", "host", "http://h", "allow_insecure_http", 1);
    k8s_conn_from_json(&conn, p);
    assert_true(conn.allow_insecure_http);
    json_decref(p);
    p = json_pack("{s:s}", "host", "http://h");
    k8s_conn_from_json(&conn, p);
    assert_false(conn.allow_insecure_http);
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_dot_segments_refused),
        cmocka_unit_test(test_status_errors),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_retryable),
        cmocka_unit_test(test_encoding_and_bodies),
        cmocka_unit_test(test_watch_paths),
        cmocka_unit_test(test_retry_loop),
        cmocka_unit_test(test_no_retry_on_write_500),
        cmocka_unit_test(test_watch_stream),
        cmocka_unit_test(test_watch_garbage),
        cmocka_unit_test(test_watch_line_limit),
        cmocka_unit_test(test_watch_lines),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_batch_one_in_flight),
        cmocka_unit_test(test_batch_lists),
        cmocka_unit_test(test_batch_merge_patch),
        cmocka_unit_test(test_list_restart_on_410),
        cmocka_unit_test(test_list_not_a_list),
        cmocka_unit_test(test_builtin_kind),
        cmocka_unit_test(test_get_other_object_refused),
        cmocka_unit_test(test_dot_names_never_requested),
        cmocka_unit_test(test_insecure_http_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
