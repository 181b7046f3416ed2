/* test_drstate.c - unit tests of lib/drstate against a scripted local HTTP
 * server (scripted_http.h), for answers the lab's real apiserver does not give
 * on demand: a record list that is not a list (never read as "no records"),
 * Velero's Backup kind not served (404: backups not checked, not an error), a
 * record ConfigMap whose label does not name it, 409 after 409 until the
 * retries run out, a create that loses the race (AlreadyExists -> re-read and
 * patch), a record of another source cluster.  The behaviour against a real
 * apiserver (409 from a stale resourceVersion, concurrent writers) is
 * tests/integration/test_dr_state.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "drstate.h"
#include "scripted_http.h"

#define JSONH "HTTP/1.1 200 OK\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
#define CONFLICT "HTTP/1.1 409 Conflict\r\n" CLOSE "Content-Type: application/json\r\n\r\n" \
    "{\"kind\":\"Status\",\"reason\":\"Conflict\",\"code\":409}"
#define REC(rv, src) JSONH "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":" \
    "\"ns-app\",\"namespace\":\"ocpv-dr\",\"resourceVersion\":\"" rv "\",\"labels\":{" \
    "\"dr.ocpv.io/state\":\"namespace\",\"dr.ocpv.io/namespace\":\"app\"},\"annotations\":{" \
    "\"dr.ocpv.io/source-cluster\":\"" src "\"}},\"data\":{\"target.rpo-s\":\"60\"}}"

static k8s_client *one_at_a_time(script *s)
{
    k8s_config cfg = { .max_in_flight = 1, .max_retries = 1, .timeout_ms = 5000 };
    return client_cfg(s, NULL, &cfg);
}

/* a 200 answer that is not a list fails the whole read */
static void test_read_not_a_list(void **state)
{
    (void)state;
    static const char *const rs[] = {
        JSONH "{}",
        JSONH "{\"kind\":\"PersistentVolumeList\",\"metadata\":{},\"items\":[]}",
        JSONH "{\"kind\":\"BackupList\",\"metadata\":{},\"items\":[]}",
        NULL };
    script s = { .responses = rs, .piece = 4096 };
    pthread_t th;
    start_server(&s, &th);
    k8s_client *c = one_at_a_time(&s);
    dsi_snapshot snap;
    k8s_error e = { 0 };
    assert_int_equal(dsi_read(c, NULL, &snap, &e), -1);
    assert_non_null(strstr(e.message, "could not be read"));
    assert_null(snap.records);
    pthread_join(th, NULL);
    assert_non_null(strstr(s.lines[0], "labelSelector=dr.ocpv.io%2Fstate%3Dnamespace"));
    assert_non_null(strstr(s.lines[0], "/namespaces/ocpv-dr/configmaps"));
    assert_non_null(strstr(s.lines[1], "labelSelector=dr.ocpv.io%2Fmanaged-by%3Docpv-dr"));
    assert_non_null(strstr(s.lines[2], "/apis/velero.io/v1/namespaces/openshift-adp/backups"));
    dsi_snapshot_free(&snap);
    close(s.fd);
    k8s_client_free(c);
}

/* Backups not served: read anyway, backups NULL with the reason; a record
 * whose label does not name it is left out with a warning; dsi_status runs */
static void test_read_backups_not_served(void **state)
{
    (void)state;
    static const char *const rs[] = {
        JSONH "{\"kind\":\"ConfigMapList\",\"metadata\":{},\"items\":["
        "{\"metadata\":{\"name\":\"ns-app\",\"labels\":{\"dr.ocpv.io/namespace\":\"app\"}},"
        "\"data\":{\"action.kind\":\"failover\",\"action.phase\":\"running\","
        "\"action.started\":\"2026-12-03T13:00:07Z\"}},"
        "{\"metadata\":{\"name\":\"ns-other\",\"labels\":{\"dr.ocpv.io/namespace\":\"app\"}}},"
        "{\"metadata\":{\"name\":\"ns-b\",\"labels\":{\"dr.ocpv.io/namespace\":\"b\"}}}]}",
        JSONH "{\"kind\":\"PersistentVolumeList\",\"metadata\":{},\"items\":[]}",
        "HTTP/1.1 404 Not Found\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
        "{\"kind\":\"Status\",\"reason\":\"NotFound\",\"code\":404}",
        NULL };
    script s = { .responses = rs, .piece = 4096 };
    pthread_t th;
    start_server(&s, &th);
    k8s_client *c = one_at_a_time(&s);
    dsi_snapshot snap;
    k8s_error e = { 0 };
    assert_int_equal(dsi_read(c, NULL, &snap, &e), 0);
    pthread_join(th, NULL);
    assert_null(snap.backups);
    assert_non_null(strstr(snap.backups_error, "not served"));
    assert_int_equal(json_array_size(snap.warnings), 1);
    assert_non_null(strstr(json_string_value(json_array_get(snap.warnings, 0)), "ns-other"));
    json_t *names = dsi_record_namespaces(&snap);
    assert_int_equal(json_array_size(names), 2);
    assert_string_equal(json_string_value(json_array_get(names, 0)), "app");
    assert_string_equal(json_string_value(json_array_get(names, 1)), "b");
    json_decref(names);
    assert_non_null(json_object_get(dsi_record(&snap, "b"), "data"));   /* data {} added */
    dst_result r;
    dsi_status(&snap, "app", NULL, "not requested", (dst_targets){ 60, 60, 60 },
               1796302807 + 30, &r);
    assert_int_equal(r.state, DST_FAILING_OVER);
    assert_true(r.active[DST_R_BACKUP_NOT_CHECKED]);
    dst_result_free(&r);
    dsi_snapshot_free(&snap);
    close(s.fd);
    k8s_client_free(c);
}

static json_t *set_key(void *ud, const drr_ns *cur, const json_t *cm)
{
    int *calls = ud;
    (*calls)++;
    (void)cur;
    (void)cm;
    return json_pack("{s:{s:s}}", "data", "event.pv-pvc-read-at", "2026-12-03T13:00:07Z");
}

/* 409 on every write: 1 + DSI_MAX_RETRIES attempts, each re-read and
 * re-mutated, then a failure that says so */
static void test_update_conflicts_run_out(void **state)
{
    (void)state;
    const char *rs[2 * (DSI_MAX_RETRIES + 1) + 1];
    int n = 0;
    for (int i = 0; i <= DSI_MAX_RETRIES; i++) {
        rs[n++] = REC("5", "prim");
        rs[n++] = CONFLICT;
    }
    rs[n] = NULL;
    script s = { .responses = rs, .piece = 4096 };
    pthread_t th;
    start_server(&s, &th);
    k8s_client *c = one_at_a_time(&s);
    int calls = 0;
    dsi_update u = { .source_cluster = "prim" };
    k8s_error e = { 0 };
    assert_int_equal(dsi_update_ns(c, "ocpv-dr", "app", set_key, &calls, &u, &e), -1);
    pthread_join(th, NULL);
    assert_int_equal(calls, DSI_MAX_RETRIES + 1);
    assert_int_equal(u.conflicts, DSI_MAX_RETRIES + 1);
    assert_false(u.changed);
    assert_non_null(strstr(e.message, "still conflicting"));
    assert_int_equal(s.served, 2 * (DSI_MAX_RETRIES + 1));
    assert_non_null(strstr(s.lines[1], "PATCH /api/v1/namespaces/ocpv-dr/configmaps/ns-app"));
    assert_non_null(strstr(s.last_request, "\"resourceVersion\":\"5\""));
    dsi_update_clear(&u);
    close(s.fd);
    k8s_client_free(c);
}

/* absent -> create; AlreadyExists (another writer was first) -> re-read and
 * patch with the new resourceVersion */
static void test_update_create_race(void **state)
{
    (void)state;
    static const char *const rs[] = {
        "HTTP/1.1 404 Not Found\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
        "{\"kind\":\"Status\",\"reason\":\"NotFound\",\"code\":404}",
        "HTTP/1.1 409 Conflict\r\n" CLOSE "Content-Type: application/json\r\n\r\n"
        "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\",\"code\":409}",
        REC("9", "prim"),
        JSONH "{}",
        NULL };
    script s = { .responses = rs, .piece = 4096 };
    pthread_t th;
    start_server(&s, &th);
    k8s_client *c = one_at_a_time(&s);
    int calls = 0;
    dsi_update u = { .source_cluster = "prim" };
    k8s_error e = { 0 };
    assert_int_equal(dsi_update_ns(c, "ocpv-dr", "app", set_key, &calls, &u, &e), 0);
    pthread_join(th, NULL);
    assert_int_equal(calls, 2);
    assert_int_equal(u.conflicts, 1);
    assert_true(u.changed);
    assert_false(u.created);
    assert_non_null(strstr(s.lines[1], "POST /api/v1/namespaces/ocpv-dr/configmaps?"));
    assert_non_null(strstr(s.lines[3], "PATCH"));
    assert_non_null(strstr(s.last_request, "\"resourceVersion\":\"9\""));
    assert_string_equal(json_string_value(json_object_get(u.patch, "event.pv-pvc-read-at")),
                        "2026-12-03T13:00:07Z");
    dsi_update_clear(&u);
    close(s.fd);
    k8s_client_free(c);
}

/* a record of another source cluster: nothing written; a bad namespace name:
 * no request */
static void test_update_other_source(void **state)
{
    (void)state;
    static const char *const rs[] = { REC("3", "someone-else"), NULL };
    script s = { .responses = rs, .piece = 4096 };
    pthread_t th;
    start_server(&s, &th);
    k8s_client *c = one_at_a_time(&s);
    int calls = 0;
    dsi_update u = { .source_cluster = "prim" };
    k8s_error e = { 0 };
    assert_int_equal(dsi_update_ns(c, "ocpv-dr", "app", set_key, &calls, &u, &e), -1);
    pthread_join(th, NULL);
    assert_string_equal(e.reason, "Conflict");
    assert_non_null(strstr(e.message, "someone-else"));
    assert_int_equal(calls, 0);
    assert_int_equal(s.served, 1);
    assert_int_equal(dsi_update_ns(c, "ocpv-dr", "Bad/Name", set_key, &calls, &u, &e), -1);
    char buf[80];
    assert_false(dsi_cm_name("-x", buf, sizeof buf));
    assert_true(dsi_cm_name("vm-prod", buf, sizeof buf));
    assert_string_equal(buf, "ns-vm-prod");
    dsi_update_clear(&u);
    close(s.fd);
    k8s_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_not_a_list),
        cmocka_unit_test(test_read_backups_not_served),
        cmocka_unit_test(test_update_conflicts_run_out),
        cmocka_unit_test(test_update_create_race),
        cmocka_unit_test(test_update_other_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
