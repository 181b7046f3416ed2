/* test_dr_record.c - unit tests for lib/dr/dr_record.c: the per-volume
 * annotations and the per-namespace ConfigMap record (parse, patch, round
 * trip), the monotonic "newer start wins" rules (a slow old job never
 * overwrites a newer record), malformed fields (an error naming the field,
 * treated as absent) and the reason cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dr_record.h"
#include "jsonx.h"

#define T0 1796302807   /* 2026-12-03T13:00:07Z */

/* RFC 7386 merge patch, as the API server applies it. */
static void apply(json_t *target, const json_t *patch)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v) {
        if (json_is_null(v)) {
            json_object_del(target, k);
        } else if (json_is_object(v)) {
            json_t *t = json_object_get(target, k);
            if (!json_is_object(t)) {
                t = json_object();
                json_object_set_new(target, k, t);
            }
            apply(t, v);
        } else {
            json_object_set(target, k, v);
        }
    }
}

static json_t *pv_with(const char *ann_json)
{
    json_t *ann = json_loads(ann_json, 0, NULL);
    assert_non_null(ann);
    return json_pack("{s:s,s:{s:s,s:o}}", "kind", "PersistentVolume", "metadata", "name", "pv-1",
                     "annotations", ann);
}

static const char *ann(json_t *pv, const char *key)
{
    return json_string_value(json_object_get(jx_get(pv, "metadata.annotations"), key));
}

static drr_sync ok_sync(time_t start)
{
    return (drr_sync){ .ok = true, .attempt_start = start, .data_as_of = start, .end = start + 30,
                       .bytes = 4096, .source_uid = "uid-a", .consistency = "live",
                       .by = "periodic/42" };
}

static void test_vol_round_trip(void **state)
{
    (void)state;
    json_t *pv = pv_with("{}");
    drr_vol cur;
    drr_vol_parse(pv, &cur);
    assert_false(cur.has_sync);
    assert_false(cur.has_attempt);
    assert_int_equal(json_array_size(cur.errors), 0);
    drr_sync s = ok_sync(T0);
    json_t *p = drr_vol_patch(&cur, &s);
    drr_vol_free(&cur);
    assert_non_null(p);
    apply(pv, p);
    json_decref(p);
    assert_string_equal(ann(pv, DRR_ANN_SYNC_START), "2026-12-03T13:00:07Z");
    assert_string_equal(ann(pv, DRR_ANN_SYNC_END), "2026-12-03T13:00:37Z");
    assert_string_equal(ann(pv, DRR_ANN_SYNC_BYTES), "4096");
    assert_string_equal(ann(pv, DRR_ANN_ATTEMPT_RESULT), "ok");
    assert_string_equal(ann(pv, DRR_ANN_ATTEMPT_REASON), "");
    drr_vol_parse(pv, &cur);
    assert_true(cur.has_sync);
    assert_int_equal(cur.sync_start, T0);
    assert_int_equal(cur.sync_end, T0 + 30);
    assert_int_equal(cur.sync_bytes, 4096);
    assert_string_equal(cur.sync_source_uid, "uid-a");
    assert_string_equal(cur.sync_consistency, "live");
    assert_string_equal(cur.sync_by, "periodic/42");
    assert_true(cur.has_attempt);
    assert_true(cur.attempt_ok);
    assert_int_equal(json_array_size(cur.errors), 0);
    /* the same sync again: nothing newer */
    assert_null(drr_vol_patch(&cur, &s));
    drr_vol_free(&cur);
    json_decref(pv);
}

/* A slow old job finishing after a newer one never overwrites it. */
static void test_vol_old_job_loses(void **state)
{
    (void)state;
    json_t *pv = pv_with("{}");
    drr_vol cur;
    drr_vol_parse(pv, &cur);
    drr_sync newer = ok_sync(T0 + 600);
    json_t *p = drr_vol_patch(&cur, &newer);
    apply(pv, p);
    json_decref(p);
    drr_vol_free(&cur);
    drr_vol_parse(pv, &cur);
    drr_sync old_ok = ok_sync(T0);
    assert_null(drr_vol_patch(&cur, &old_ok));
    drr_sync old_failed = { .ok = false, .attempt_start = T0, .reason = "rsync exit 23" };
    assert_null(drr_vol_patch(&cur, &old_failed));
    drr_vol_free(&cur);
    json_decref(pv);
}

/* A failure after a success: attempt keys move, the RPO basis stays. */
static void test_vol_failed_after_success(void **state)
{
    (void)state;
    json_t *pv = pv_with("{\"dr.ocpv.io/last-sync-start\":\"2026-12-03T13:00:07Z\","
                         "\"dr.ocpv.io/last-attempt-start\":\"2026-12-03T13:00:07Z\","
                         "\"dr.ocpv.io/last-attempt-result\":\"ok\"}");
    drr_vol cur;
    drr_vol_parse(pv, &cur);
    drr_sync f = { .ok = false, .attempt_start = T0 + 3600, .reason = "ssh: connection refused" };
    json_t *p = drr_vol_patch(&cur, &f);
    drr_vol_free(&cur);
    assert_non_null(p);
    assert_null(json_object_get(jx_get(p, "metadata.annotations"), DRR_ANN_SYNC_START));
    apply(pv, p);
    json_decref(p);
    assert_string_equal(ann(pv, DRR_ANN_SYNC_START), "2026-12-03T13:00:07Z");
    assert_string_equal(ann(pv, DRR_ANN_ATTEMPT_START), "2026-12-03T14:00:07Z");
    assert_string_equal(ann(pv, DRR_ANN_ATTEMPT_RESULT), "failed");
    assert_string_equal(ann(pv, DRR_ANN_ATTEMPT_REASON), "ssh: connection refused");
    /* same second: a failure replaces an ok, an ok never hides a failure */
    drr_vol_parse(pv, &cur);
    drr_sync ok_same = ok_sync(T0 + 3600);
    p = drr_vol_patch(&cur, &ok_same);
    assert_non_null(p);                       /* its data is newer: sync keys only */
    assert_non_null(json_object_get(jx_get(p, "metadata.annotations"), DRR_ANN_SYNC_START));
    assert_null(json_object_get(jx_get(p, "metadata.annotations"), DRR_ANN_ATTEMPT_RESULT));
    json_decref(p);
    drr_vol_free(&cur);
    json_decref(pv);
}

static void test_vol_malformed(void **state)
{
    (void)state;
    json_t *pv = pv_with("{\"dr.ocpv.io/last-sync-start\":\"yesterday\","
                         "\"dr.ocpv.io/last-sync-bytes\":\"-5\","
                         "\"dr.ocpv.io/last-sync-consistency\":\"fresh\","
                         "\"dr.ocpv.io/last-attempt-start\":\"2026-12-03T13:00:07+01:00\","
                         "\"dr.ocpv.io/last-attempt-result\":\"maybe\"}");
    drr_vol cur;
    drr_vol_parse(pv, &cur);
    assert_false(cur.has_sync);               /* never taken as fresh */
    assert_false(cur.has_attempt);
    assert_int_equal(cur.sync_bytes, -1);
    assert_null(cur.sync_consistency);
    char *all = json_dumps(cur.errors, 0);
    assert_non_null(strstr(all, "dr.ocpv.io/last-sync-start: not an RFC3339 UTC time: 'yesterday'"));
    assert_non_null(strstr(all, "dr.ocpv.io/last-sync-bytes: not a non-negative integer: '-5'"));
    assert_non_null(strstr(all, "dr.ocpv.io/last-sync-consistency: not live or snapshot: 'fresh'"));
    assert_non_null(strstr(all, "dr.ocpv.io/last-attempt-start: not an RFC3339 UTC time: "
                                "'2026-12-03T13:00:07+01:00'"));
    assert_non_null(strstr(all, "dr.ocpv.io/last-attempt-result: not ok or failed: 'maybe'"));
    free(all);
    /* a new record repairs it */
    drr_sync s = ok_sync(T0);
    json_t *p = drr_vol_patch(&cur, &s);
    assert_non_null(p);
    json_decref(p);
    drr_vol_free(&cur);
    json_decref(pv);

    pv = pv_with("{\"dr.ocpv.io/last-sync-start\":7,"
                 "\"dr.ocpv.io/last-attempt-start\":\"2026-12-03T13:00:07Z\"}");
    drr_vol_parse(pv, &cur);
    all = json_dumps(cur.errors, 0);
    assert_non_null(strstr(all, "dr.ocpv.io/last-sync-start: not a string"));
    assert_non_null(strstr(all, "only one of them is recorded"));
    free(all);
    drr_vol_free(&cur);
    json_decref(pv);
}

/* A long malformed value is shown cut, on a UTF-8 boundary (not dropped). */
static void test_long_malformed_value_shown_cut(void **state)
{
    (void)state;
    char v[300] = "x";                           /* odd: byte 76 is inside an é */
    for (int i = 0; i < 100; i++)
        strcat(v, "\xc3\xa9");                 /* é: 2 bytes each */
    json_t *pv = json_pack("{s:{s:s,s:{s:s}}}", "metadata", "name", "pv-1", "annotations",
                           DRR_ANN_SYNC_START, v);
    drr_vol cur;
    drr_vol_parse(pv, &cur);
    assert_false(cur.has_sync);
    const char *m = json_string_value(json_array_get(cur.errors, 0));
    assert_non_null(m);
    assert_non_null(strstr(m, "dr.ocpv.io/last-sync-start: not an RFC3339 UTC time: 'x\xc3\xa9"));
    assert_non_null(strstr(m, "\xc3\xa9...'"));
    drr_vol_free(&cur);
    json_decref(pv);
}

static void test_reason_cap(void **state)
{
    (void)state;
    char big[1200];
    memset(big, 'x', sizeof big);
    memcpy(big + 510, "\xc3\xa9\xc3\xa9", 4);  /* a 2-byte char straddles byte 512 */
    big[sizeof big - 1] = '\0';
    json_t *pv = pv_with("{}");
    drr_vol cur;
    drr_vol_parse(pv, &cur);
    drr_sync f = { .ok = false, .attempt_start = T0, .reason = big };
    json_t *p = drr_vol_patch(&cur, &f);
    const char *r = json_string_value(json_object_get(jx_get(p, "metadata.annotations"),
                                                      DRR_ANN_ATTEMPT_REASON));
    assert_non_null(r);
    assert_int_equal(strlen(r), 512);           /* 510 x + one complete é */
    json_decref(p);
    drr_vol_free(&cur);
    json_decref(pv);
}

/* ---- namespace ---------------------------------------------------------- */

static void test_ns_full_sync_monotonic(void **state)
{
    (void)state;
    json_t *data = json_object();
    drr_ns r;
    drr_ns_parse(data, &r);
    assert_true(r.present);
    assert_false(r.full_sync.has_last_ok);
    drr_full_sync ok = { .start = T0, .end = T0 + 100, .ok = true, .by = "periodic/1", .volumes = 3 };
    json_t *p = drr_ns_patch_full_sync(&r, &ok);
    drr_ns_free(&r);
    apply(data, json_object_get(p, "data"));
    json_decref(p);
    assert_string_equal(json_string_value(json_object_get(data, "full-sync.last-ok-start")),
                        "2026-12-03T13:00:07Z");
    drr_ns_parse(data, &r);
    assert_true(r.full_sync.has_last_ok);
    assert_true(r.full_sync.ok);
    assert_int_equal(r.full_sync.volumes, 3);
    /* an older run finishing late: nothing */
    drr_full_sync late = { .start = T0 - 60, .end = T0 + 200, .ok = false, .reason = "x" };
    assert_null(drr_ns_patch_full_sync(&r, &late));
    /* a newer failed run: recorded, last-ok-start kept */
    drr_full_sync failed = { .start = T0 + 3600, .end = T0 + 3700, .ok = false, .reason = "prune failed",
                             .volumes = 3, .volumes_failed = 1 };
    p = drr_ns_patch_full_sync(&r, &failed);
    assert_null(json_object_get(json_object_get(p, "data"), "full-sync.last-ok-start"));
    drr_ns_free(&r);
    apply(data, json_object_get(p, "data"));
    json_decref(p);
    drr_ns_parse(data, &r);
    assert_false(r.full_sync.ok);
    assert_int_equal(r.full_sync.last_ok_start, T0);
    assert_string_equal(r.full_sync.reason, "prune failed");
    drr_ns_free(&r);
    json_decref(data);
}

static void test_ns_action(void **state)
{
    (void)state;
    json_t *data = json_object();
    drr_ns r;
    drr_ns_parse(data, &r);
    drr_action run = { .kind = DRR_ACT_FAILOVER, .phase = DRR_PH_RUNNING, .started = T0, .by = "failover/7" };
    json_t *p = drr_ns_patch_action(&r, &run);
    drr_ns_free(&r);
    apply(data, json_object_get(p, "data"));
    json_decref(p);
    drr_ns_parse(data, &r);
    assert_int_equal(r.action.kind, DRR_ACT_FAILOVER);
    assert_int_equal(r.action.phase, DRR_PH_RUNNING);
    drr_action done = run;
    done.phase = DRR_PH_COMPLETED;
    done.finished = T0 + 900;
    p = drr_ns_patch_action(&r, &done);
    drr_ns_free(&r);
    apply(data, json_object_get(p, "data"));
    json_decref(p);
    drr_ns_parse(data, &r);
    assert_int_equal(r.action.phase, DRR_PH_COMPLETED);
    assert_int_equal(r.action.rto_s, 900);
    /* a late `running` of the same action never reopens it; an older action is ignored */
    assert_null(drr_ns_patch_action(&r, &run));
    drr_action older = { .kind = DRR_ACT_FAILBACK, .phase = DRR_PH_COMPLETED, .started = T0 - 10,
                         .finished = T0 - 5 };
    assert_null(drr_ns_patch_action(&r, &older));
    drr_action fb = { .kind = DRR_ACT_FAILBACK, .phase = DRR_PH_RUNNING, .started = T0 + 5000 };
    p = drr_ns_patch_action(&r, &fb);
    assert_true(json_is_null(json_object_get(json_object_get(p, "data"), "action.rto-s")));
    json_decref(p);
    drr_ns_free(&r);
    json_decref(data);
}

static void test_ns_backup_event_targets_claims_pending(void **state)
{
    (void)state;
    json_t *data = json_object();
    json_t *acc = NULL;
    drr_ns r;
    drr_ns_parse(data, &r);
    drr_backup b = { .name = "daily-1", .phase = "Completed", .source = "dr-velero", .started = T0,
                     .completed = T0 + 60, .seen_at = T0 + 100 };
    drr_patch_merge(&acc, drr_ns_patch_backup(&r, &b));
    drr_patch_merge(&acc, drr_ns_patch_event_read(&r, T0));
    drr_patch_merge(&acc, drr_ns_patch_targets(&r, 900, 3600, 93600));
    json_t *bound = json_loads("[{\"claim\":\"disk\",\"pv\":\"pv-1\",\"pv_uid\":\"u1\"}]", 0, NULL);
    json_t *pend = json_loads("[\"new\"]", 0, NULL);
    drr_patch_merge(&acc, drr_ns_patch_claims(&r, T0, bound, pend));
    drr_sync f = { .ok = false, .attempt_start = T0, .source_uid = "u2", .reason = "skipped: class" };
    drr_patch_merge(&acc, drr_ns_patch_pending(&r, "pv-2", &f));
    assert_null(drr_ns_patch_pending(&r, "pv-9", NULL));      /* nothing to remove */
    drr_ns_free(&r);
    apply(data, json_object_get(acc, "data"));
    json_decref(acc);
    acc = NULL;
    drr_ns_parse(data, &r);
    assert_int_equal(json_array_size(r.errors), 0);
    assert_string_equal(r.backup.name, "daily-1");
    assert_int_equal(r.backup.started, T0);
    assert_true(r.has_event_read);
    assert_int_equal(r.target.rpo_s, 900);
    assert_true(json_equal(r.claims.bound, bound));
    assert_true(json_equal(r.claims.pending, pend));
    json_t *pe = json_object_get(r.pending, "pv-2");
    assert_string_equal(jx_str(pe, "result"), "failed");
    assert_int_equal(json_integer_value(json_object_get(pe, "attempt_start")), T0);
    /* nothing newer: all NULL */
    assert_null(drr_ns_patch_backup(&r, &b));
    assert_null(drr_ns_patch_event_read(&r, T0 - 1));
    assert_null(drr_ns_patch_targets(&r, 900, 3600, 93600));
    assert_null(drr_ns_patch_claims(&r, T0 - 1, bound, pend));
    json_t *p = drr_ns_patch_claims(&r, T0 + 1, NULL, NULL);  /* none known: empty lists */
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "data"), "claims.bound")), "[]");
    json_decref(p);
    drr_sync older = f;
    older.attempt_start = T0 - 1;
    assert_null(drr_ns_patch_pending(&r, "pv-2", &older));
    drr_backup old_b = b;
    old_b.name = "daily-0";
    old_b.started = T0 - 86400;
    assert_null(drr_ns_patch_backup(&r, &old_b));
    drr_backup seen = b;
    seen.seen_at = T0 + 999;                                  /* same backup seen later */
    p = drr_ns_patch_backup(&r, &seen);
    assert_int_equal(json_object_size(json_object_get(p, "data")), 1);
    json_decref(p);
    p = drr_ns_patch_pending(&r, "pv-2", NULL);               /* removal is a null */
    assert_true(json_is_null(json_object_get(json_object_get(p, "data"), "pending.pv-2")));
    json_decref(p);
    drr_ns_free(&r);
    json_decref(bound);
    json_decref(pend);
    json_decref(data);
}

static void test_ns_malformed(void **state)
{
    (void)state;
    json_t *data = json_loads(
        "{\"full-sync.last-ok-start\":\"soon\",\"full-sync.result\":\"great\","
        "\"claims.bound\":\"[{\\\"claim\\\":1}]\",\"claims.pending\":\"not json\","
        "\"pending.pv-3\":\"{\\\"result\\\":\\\"ok\\\"}\",\"backup.started\":\"2026-13-01T00:00:00Z\","
        "\"action.kind\":\"failover\",\"target.rpo-s\":\"0\",\"target.rto-s\":\"1h\","
        "\"unknown.key\":\"kept\"}", 0, NULL);
    assert_non_null(data);
    drr_ns r;
    drr_ns_parse(data, &r);
    assert_false(r.full_sync.has_last_ok);
    assert_false(r.full_sync.has_result);
    assert_null(r.claims.bound);
    assert_null(r.claims.pending);
    assert_int_equal(json_object_size(r.pending), 0);
    assert_false(r.backup.has_started);
    assert_int_equal(r.action.kind, DRR_ACT_NONE);
    assert_false(r.target.has_rpo);
    assert_false(r.target.has_rto);
    char *all = json_dumps(r.errors, 0);
    static const char *const want[] = {
        "full-sync.last-ok-start: not an RFC3339 UTC time: 'soon'",
        "full-sync.result: not ok or failed: 'great'", "claims.bound: not an array",
        "claims.pending: not valid JSON: 'not json'", "pending.pv-3: not {",
        "backup.started: not an RFC3339 UTC time", "action: kind, phase and started",
        "target.rpo-s: must be > 0", "target.rto-s: not a non-negative integer: '1h'", NULL
    };
    for (const char *const *w = want; *w; w++)
        if (!strstr(all, *w))
            fail_msg("missing error '%s' in %s", *w, all);
    assert_null(strstr(all, "unknown.key"));
    free(all);
    drr_ns_free(&r);
    json_decref(data);
    json_t *notobj = json_string("x");
    drr_ns_parse(notobj, &r);
    assert_false(r.present);
    assert_int_equal(json_array_size(r.errors), 1);
    drr_ns_free(&r);
    json_decref(notobj);
    drr_ns_parse(NULL, &r);
    assert_false(r.present);
    assert_int_equal(json_array_size(r.errors), 0);
    drr_ns_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vol_round_trip),
        cmocka_unit_test(test_vol_old_job_loses),
        cmocka_unit_test(test_vol_failed_after_success),
        cmocka_unit_test(test_vol_malformed),
        cmocka_unit_test(test_long_malformed_value_shown_cut),
        cmocka_unit_test(test_reason_cap),
        cmocka_unit_test(test_ns_full_sync_monotonic),
        cmocka_unit_test(test_ns_action),
        cmocka_unit_test(test_ns_backup_event_targets_claims_pending),
        cmocka_unit_test(test_ns_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
