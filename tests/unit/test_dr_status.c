/* test_dr_status.c - unit tests for lib/dr/dr_status.c: dst_compute() with a
 * fixed `now` on hand-made records, one test per honesty rule of issue #16
 * (a stale success turns Degraded purely by advancing now; failed after
 * success; FailedOver is not Protected; a new claim without DR copy is
 * Unprotected; a failback needs a full sync after it), the precedence of the
 * rules, the primary not checked, backups, malformed and future records, and
 * the JSON rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dr_status.h"
#include "jsonx.h"

#define NOW 1796302807          /* 2026-12-03T13:00:07Z */
#define TS_M10 "2026-12-03T12:50:07Z"   /* NOW - 600 */
#define TS_M20 "2026-12-03T12:40:07Z"   /* NOW - 1200 */
#define TS_M60 "2026-12-03T12:00:07Z"   /* NOW - 3600 */
#define TS_M1D "2026-12-02T14:00:07Z"   /* NOW - 82800 */

/* A managed DR PV of namespace app bound to claim `claim`, with extra annotations. */
static json_t *dr_pv(const char *name, const char *claim, const char *uid, const char *ann_json)
{
    json_t *ann = json_loads(ann_json ? ann_json : "{}", 0, NULL);
    assert_non_null(ann);
    json_object_set_new(ann, "dr.ocpv.io/source-uid", json_string(uid));
    return json_pack("{s:s,s:{s:s,s:{s:s},s:o},s:{s:{s:s,s:s}}}", "kind", "PersistentVolume",
                     "metadata", "name", name, "labels", "dr.ocpv.io/managed-by", "ocpv-dr",
                     "annotations", ann, "spec", "claimRef", "namespace", "app", "name", claim);
}

static json_t *synced_pv(const char *name, const char *claim, const char *uid, const char *start)
{
    char a[400];
    snprintf(a, sizeof a, "{\"dr.ocpv.io/last-sync-start\":\"%s\",\"dr.ocpv.io/last-sync-source-uid\":"
             "\"%s\",\"dr.ocpv.io/last-sync-bytes\":\"10\",\"dr.ocpv.io/last-attempt-start\":\"%s\","
             "\"dr.ocpv.io/last-attempt-result\":\"ok\"}", start, uid, start);
    return dr_pv(name, claim, uid, a);
}

/* inv_build()-shaped primary inventory: claims and their PVs. */
static json_t *primary(int n, const char *const *claim_pv_uid)
{
    json_t *claims = json_array(), *vols = json_array();
    for (int i = 0; i < n; i++) {
        const char *c = claim_pv_uid[3 * i], *pv = claim_pv_uid[3 * i + 1], *uid = claim_pv_uid[3 * i + 2];
        json_array_append_new(claims, json_pack("{s:s,s:{s:s,s:s},s:{s:s}}", "kind",
                                                "PersistentVolumeClaim", "metadata", "name", c,
                                                "namespace", "app", "spec", "volumeName", pv));
        json_array_append_new(vols, json_pack("{s:s,s:{s:s,s:s}}", "kind", "PersistentVolume",
                                              "metadata", "name", pv, "uid", uid));
    }
    return json_pack("{s:o,s:o}", "claims", claims, "volumes", vols);
}

static json_t *backup(const char *name, const char *started, const char *phase, const char *inc)
{
    return json_pack("{s:{s:s},s:{s:[s]},s:{s:s,s:s}}", "metadata", "name", name, "spec",
                     "includedNamespaces", inc, "status", "phase", phase, "startTimestamp", started);
}

/* A healthy namespace: two volumes synced 10 and 20 minutes ago, a full sync
 * ok, a backup an hour old. */
typedef struct fixture {
    json_t *record, *pvs, *primary, *backups;
    dst_input in;
} fixture;

static const char *const TWO[] = { "disk-a", "pv-a", "uid-a", "disk-b", "pv-b", "uid-b" };

static fixture *fx_new(void)
{
    fixture *f = calloc(1, sizeof *f);
    f->record = json_pack("{s:s,s:s,s:s,s:s}", "full-sync.start", TS_M20, "full-sync.result", "ok",
                          "full-sync.last-ok-start", TS_M20, "target.rpo-s", "1800");
    f->pvs = json_pack("[oo]", synced_pv("pv-a", "disk-a", "uid-a", TS_M10),
                       synced_pv("pv-b", "disk-b", "uid-b", TS_M20));
    f->primary = primary(2, TWO);
    f->backups = json_pack("[o]", backup("daily", TS_M60, "Completed", "app"));
    f->in = (dst_input){ .ns = "app", .record = f->record, .dr_pvs = f->pvs, .primary = f->primary,
                         .backups = f->backups,
                         .defaults = { .rpo_s = 7200, .rto_s = 3600, .backup_max_age_s = 93600 },
                         .now = NOW };
    return f;
}

static void fx_free(fixture *f)
{
    json_decref(f->record);
    json_decref(f->pvs);
    json_decref(f->primary);
    json_decref(f->backups);
    free(f);
}

static int setup(void **state)
{
    *state = fx_new();
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

static void set_ann(json_t *pv, const char *key, const char *val)
{
    json_object_set_new(jx_get(pv, "metadata.annotations"), key, json_string(val));
}

static const char *reason_msg(const dst_result *r, dst_reason_code c)
{
    for (size_t i = 0; i < r->n_reasons; i++)
        if (r->reasons[i].code == c)
            return r->reasons[i].message;
    return NULL;
}

/* Only the listed codes are active (terminated by -1). */
static void assert_reasons(const dst_result *r, ...)
{
    bool want[DST_N_REASONS] = { false };
    va_list ap;
    va_start(ap, r);
    for (int c; (c = va_arg(ap, int)) >= 0;)
        want[c] = true;
    va_end(ap);
    for (int c = 0; c < DST_N_REASONS; c++)
        if (want[c] != r->active[c])
            fail_msg("reason %s: want %d, got %d", dst_reason_codes[c], want[c], r->active[c]);
}

static void test_protected(void **state)
{
    fixture *f = *state;
    dst_result r;
    dst_compute(&f->in, &r);
    assert_string_equal(dst_states[r.state], "Protected");
    assert_reasons(&r, -1);
    assert_true(r.rpo_s == 1200.0);               /* the oldest volume bounds the loss */
    assert_true(r.rpo_met);
    assert_true(r.targets.rpo_s == 1800.0);       /* from the record */
    assert_string_equal(r.rpo_target_source, "record");
    assert_string_equal(r.backup_max_age_source, "default");
    assert_int_equal(r.n_vols, 2);
    assert_int_equal(r.vols[0].cls, DST_VOL_OK);
    assert_true(r.vols[0].age_s == 600.0);
    assert_true(r.backup_age_s == 3600.0);
    assert_string_equal(r.backup_name, "daily");
    dst_result_free(&r);
}

/* Honesty rule 1: RPO grows with the clock; crossing the target turns the
 * state Degraded with no job running (same records, later now). */
static void test_stale_success_degrades_by_clock(void **state)
{
    fixture *f = *state;
    dst_result r;
    f->in.now = NOW + 600;                         /* rpo 1800 = target: still met */
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_PROTECTED);
    dst_result_free(&r);
    f->in.now = NOW + 601;
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_DEGRADED);
    assert_reasons(&r, DST_R_RPO_ABOVE_TARGET, -1);
    assert_true(r.rpo_s == 1801.0);
    assert_false(r.rpo_met);
    assert_string_equal(reason_msg(&r, DST_R_RPO_ABOVE_TARGET), "RPO 1801 s is above the target 1800 s");
    dst_result_free(&r);
    /* a backup older than its limit also degrades, with its own reason */
    f->in.now = NOW + 93601 - 3600 + 1;
    dst_compute(&f->in, &r);
    assert_true(r.active[DST_R_BACKUP_TOO_OLD]);
    dst_result_free(&r);
}

/* Honesty rule 2: a failed sync after a success: not Protected until a later
 * success; the RPO keeps the last good start. */
static void test_failed_after_success(void **state)
{
    fixture *f = *state;
    json_t *pv = json_array_get(f->pvs, 0);
    set_ann(pv, "dr.ocpv.io/last-attempt-start", "2026-12-03T12:55:07Z");
    set_ann(pv, "dr.ocpv.io/last-attempt-result", "failed");
    set_ann(pv, "dr.ocpv.io/last-attempt-reason", "rsync exit 23");
    dst_result r;
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_DEGRADED);
    assert_reasons(&r, DST_R_VOLUME_SYNC_FAILED, -1);
    assert_int_equal(r.vols[0].cls, DST_VOL_FAILING);
    assert_true(r.rpo_s == 1200.0);
    assert_non_null(strstr(reason_msg(&r, DST_R_VOLUME_SYNC_FAILED),
                           "disk-a (pv-a: attempt at 2026-12-03T12:55:07Z failed: rsync exit 23)"));
    dst_result_free(&r);
    /* a later success clears it */
    set_ann(pv, "dr.ocpv.io/last-sync-start", "2026-12-03T12:58:07Z");
    set_ann(pv, "dr.ocpv.io/last-attempt-start", "2026-12-03T12:58:07Z");
    set_ann(pv, "dr.ocpv.io/last-attempt-result", "ok");
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_PROTECTED);
    dst_result_free(&r);
}

/* Honesty rule 3: a failed-over namespace is never Protected, however fresh. */
static void test_failed_over_not_protected(void **state)
{
    fixture *f = *state;
    json_object_set_new(f->record, "action.kind", json_string("failover"));
    json_object_set_new(f->record, "action.phase", json_string("running"));
    json_object_set_new(f->record, "action.started", json_string(TS_M10));
    json_object_set_new(f->record, "action.by", json_string("failover/7"));
    dst_result r;
    dst_compute(&f->in, &r);
    assert_string_equal(dst_states[r.state], "FailingOver");
    assert_reasons(&r, DST_R_FAILOVER_IN_PROGRESS, -1);
    assert_non_null(strstr(reason_msg(&r, DST_R_FAILOVER_IN_PROGRESS), "by failover/7, running for 600 s"));
    dst_result_free(&r);
    json_object_set_new(f->record, "action.phase", json_string("completed"));
    json_object_set_new(f->record, "action.finished", json_string("2026-12-03T12:55:07Z"));
    dst_compute(&f->in, &r);
    assert_string_equal(dst_states[r.state], "FailedOver");
    assert_reasons(&r, DST_R_FAILED_OVER, -1);
    dst_result_free(&r);
    /* FailedOver wins even over Unprotected reasons */
    json_array_clear(f->pvs);
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_FAILED_OVER);
    assert_true(r.active[DST_R_CLAIM_WITHOUT_DR_COPY]);
    dst_result_free(&r);
    json_object_set_new(f->record, "action.phase", json_string("failed"));
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_FAILING_OVER);
    assert_true(r.active[DST_R_FAILOVER_FAILED]);
    dst_result_free(&r);
}

/* Honesty rule 4: a new claim on the primary with no DR copy: Unprotected,
 * named, RPO +Inf - never silently Protected. */
static void test_new_claim_unprotected(void **state)
{
    fixture *f = *state;
    static const char *const THREE[] = { "disk-a", "pv-a", "uid-a", "disk-b", "pv-b", "uid-b",
                                         "disk-new", "pv-new", "uid-n" };
    json_decref(f->primary);
    f->primary = primary(3, THREE);
    f->in.primary = f->primary;
    dst_result r;
    dst_compute(&f->in, &r);
    assert_string_equal(dst_states[r.state], "Unprotected");
    assert_reasons(&r, DST_R_CLAIM_WITHOUT_DR_COPY, DST_R_RPO_ABOVE_TARGET, -1);
    assert_string_equal(reason_msg(&r, DST_R_CLAIM_WITHOUT_DR_COPY),
                        "claims without a DR copy: disk-new (pv-new: no DR PV)");
    assert_true(isinf(r.rpo_s));
    assert_int_equal(r.claims_without_dr_copy, 1);
    assert_int_equal(r.vols[2].cls, DST_VOL_MISSING);
    json_t *j = dst_to_json(&r);
    assert_true(json_is_null(json_object_get(j, "rpo_s")));
    assert_string_equal(json_string_value(json_array_get(jx_get(j, "claims.without_dr_copy"), 0)),
                        "disk-new");
    json_decref(j);
    dst_result_free(&r);
    /* a recreated claim (same PV name, new uid): the old copy is no copy */
    static const char *const RECREATED[] = { "disk-a", "pv-a", "uid-a2", "disk-b", "pv-b", "uid-b" };
    json_decref(f->primary);
    f->primary = primary(2, RECREATED);
    f->in.primary = f->primary;
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_UNPROTECTED);
    assert_int_equal(r.vols[0].cls, DST_VOL_STALE_SOURCE);
    assert_true(isinf(r.rpo_s));
    dst_result_free(&r);
    /* data copied but the DR PV not applied (pending ok): failing, not missing */
    json_decref(f->primary);
    f->primary = primary(3, THREE);
    f->in.primary = f->primary;
    json_object_set_new(f->record, "pending.pv-new", json_string(
        "{\"source_uid\":\"uid-n\",\"attempt_start\":\"" TS_M10 "\",\"result\":\"ok\",\"reason\":\"\"}"));
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_DEGRADED);
    assert_int_equal(r.vols[2].cls, DST_VOL_FAILING);
    dst_result_free(&r);
}

/* Honesty rule 5 (#17): after a failback, Protected only once a full sync
 * started after it finished. */
static void test_failback_needs_full_sync(void **state)
{
    fixture *f = *state;
    json_object_set_new(f->record, "action.kind", json_string("failback"));
    json_object_set_new(f->record, "action.phase", json_string("completed"));
    json_object_set_new(f->record, "action.started", json_string(TS_M60));
    json_object_set_new(f->record, "action.finished", json_string(TS_M20));   /* = last-ok-start */
    dst_result r;
    dst_compute(&f->in, &r);
    assert_string_equal(dst_states[r.state], "FailingBack");
    assert_reasons(&r, DST_R_AWAITING_FIRST_SYNC_AFTER_FAILBACK, -1);
    dst_result_free(&r);
    json_object_set_new(f->record, "full-sync.start", json_string(TS_M10));
    json_object_set_new(f->record, "full-sync.last-ok-start", json_string(TS_M10));
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_PROTECTED);
    dst_result_free(&r);
    json_object_set_new(f->record, "action.phase", json_string("running"));
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_FAILING_BACK);
    assert_true(r.active[DST_R_FAILBACK_IN_PROGRESS]);
    dst_result_free(&r);
}

static void test_unprotected_reasons(void **state)
{
    fixture *f = *state;
    dst_result r;
    /* nothing at all */
    dst_input empty = { .ns = "app", .primary = NULL, .defaults = f->in.defaults, .now = NOW,
                        .backups = f->backups };
    dst_compute(&empty, &r);
    assert_int_equal(r.state, DST_UNPROTECTED);
    assert_reasons(&r, DST_R_NEVER_SYNCED, DST_R_NO_FULL_SYNC, DST_R_PRIMARY_NOT_CHECKED, -1);
    assert_true(r.rpo_s == 0.0);
    dst_result_free(&r);
    /* no full sync ok, no backup covering (excluded / other namespace / not Completed) */
    json_object_del(f->record, "full-sync.last-ok-start");
    json_array_clear(f->backups);
    json_array_append_new(f->backups, backup("other", TS_M10, "Completed", "other-ns"));
    json_array_append_new(f->backups, backup("partial", TS_M10, "PartiallyFailed", "app"));
    json_t *ex = backup("all-but", TS_M10, "Completed", "*");
    json_object_set_new(json_object_get(ex, "spec"), "excludedNamespaces", json_pack("[s]", "app"));
    json_array_append_new(f->backups, ex);
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_UNPROTECTED);
    assert_reasons(&r, DST_R_NO_FULL_SYNC, DST_R_NO_BACKUP, -1);
    dst_result_free(&r);
    /* a "*" backup and an empty include list cover */
    json_array_append_new(f->backups, backup("star", TS_M20, "Completed", "*"));
    json_t *all = backup("all", TS_M10, "Completed", "x");
    json_array_clear(jx_get(all, "spec.includedNamespaces"));
    json_array_append_new(f->backups, all);
    dst_compute(&f->in, &r);
    assert_false(r.active[DST_R_NO_BACKUP]);
    assert_string_equal(r.backup_name, "all");           /* the newest */
    dst_result_free(&r);
}

static void test_primary_not_checked(void **state)
{
    fixture *f = *state;
    f->in.primary = NULL;
    f->in.primary_error = "connection refused";
    dst_result r;
    /* no recorded claims: the DR PVs are the scope */
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_PROTECTED);            /* informational reason only */
    assert_reasons(&r, DST_R_PRIMARY_NOT_CHECKED, -1);
    assert_false(r.primary_checked);
    assert_non_null(strstr(reason_msg(&r, DST_R_PRIMARY_NOT_CHECKED), "connection refused"));
    dst_result_free(&r);
    /* recorded claims name one the DR does not have */
    json_object_set_new(f->record, "claims.checked-at", json_string(TS_M10));
    json_object_set_new(f->record, "claims.bound", json_string(
        "[{\"claim\":\"disk-a\",\"pv\":\"pv-a\",\"pv_uid\":\"uid-a\"},"
        "{\"claim\":\"disk-c\",\"pv\":\"pv-c\",\"pv_uid\":\"uid-c\"}]"));
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_UNPROTECTED);
    assert_reasons(&r, DST_R_PRIMARY_NOT_CHECKED, DST_R_CLAIM_WITHOUT_DR_COPY, DST_R_RPO_ABOVE_TARGET, -1);
    assert_non_null(strstr(reason_msg(&r, DST_R_PRIMARY_NOT_CHECKED), "recorded at " TS_M10));
    dst_result_free(&r);
    /* backups not read: the record's backup; none recorded = no_backup */
    f->in.backups = NULL;
    json_object_set_new(f->record, "claims.bound", json_string("[]"));
    dst_compute(&f->in, &r);
    assert_reasons(&r, DST_R_PRIMARY_NOT_CHECKED, DST_R_BACKUP_NOT_CHECKED, DST_R_NO_BACKUP, -1);
    dst_result_free(&r);
    json_object_set_new(f->record, "backup.name", json_string("daily"));
    json_object_set_new(f->record, "backup.started", json_string(TS_M1D));
    json_object_set_new(f->record, "backup.phase", json_string("Completed"));
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_PROTECTED);
    assert_true(r.backup_age_s == 82800.0);
    dst_result_free(&r);
}

/* Malformed or impossible records are reported and never count as fresh. */
static void test_malformed_and_future(void **state)
{
    fixture *f = *state;
    json_t *pv = json_array_get(f->pvs, 0);
    set_ann(pv, "dr.ocpv.io/last-sync-start", "yesterday");
    dst_result r;
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_DEGRADED);
    assert_reasons(&r, DST_R_VOLUME_SYNC_UNRECORDED, DST_R_RECORD_MALFORMED, DST_R_RPO_ABOVE_TARGET, -1);
    assert_int_equal(r.vols[0].cls, DST_VOL_UNRECORDED);
    assert_true(isinf(r.rpo_s));
    assert_non_null(strstr(reason_msg(&r, DST_R_RECORD_MALFORMED),
                           "PV pv-a: dr.ocpv.io/last-sync-start: not an RFC3339 UTC time: 'yesterday'"));
    dst_result_free(&r);
    /* a start far in the future is not "fresh forever" */
    set_ann(pv, "dr.ocpv.io/last-sync-start", "2099-01-01T00:00:00Z");
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_DEGRADED);
    assert_reasons(&r, DST_R_CLOCK_SKEW, -1);
    dst_result_free(&r);
    set_ann(pv, "dr.ocpv.io/last-sync-start", TS_M10);
    /* a malformed namespace record: named, Degraded at least */
    json_object_set_new(f->record, "full-sync.result", json_string("sure"));
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_DEGRADED);
    assert_non_null(strstr(reason_msg(&r, DST_R_RECORD_MALFORMED),
                           "ConfigMap ns-app: full-sync.result: not ok or failed: 'sure'"));
    dst_result_free(&r);
    /* a malformed last-ok-start is no full sync */
    json_object_set_new(f->record, "full-sync.result", json_string("ok"));
    json_object_set_new(f->record, "full-sync.last-ok-start", json_string("2026-12-03 12:00"));
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_UNPROTECTED);
    assert_true(r.active[DST_R_NO_FULL_SYNC]);
    dst_result_free(&r);
    /* unmanaged PVs and PVs of other namespaces are not copies */
    json_object_del(jx_get(pv, "metadata.labels"), "dr.ocpv.io/managed-by");
    json_object_set_new(jx_get(json_array_get(f->pvs, 1), "spec.claimRef"), "namespace",
                        json_string("other"));
    json_object_set_new(f->record, "full-sync.last-ok-start", json_string(TS_M10));
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_UNPROTECTED);
    assert_int_equal(r.claims_without_dr_copy, 2);
    dst_result_free(&r);
}

static void test_full_sync_failed_degrades(void **state)
{
    fixture *f = *state;
    json_object_set_new(f->record, "full-sync.start", json_string(TS_M10));
    json_object_set_new(f->record, "full-sync.result", json_string("failed"));
    json_object_set_new(f->record, "full-sync.reason", json_string("prune refused"));
    dst_result r;
    dst_compute(&f->in, &r);
    assert_int_equal(r.state, DST_DEGRADED);
    assert_reasons(&r, DST_R_FULL_SYNC_FAILED, -1);
    assert_non_null(strstr(reason_msg(&r, DST_R_FULL_SYNC_FAILED), "prune refused"));
    dst_result_free(&r);
}

/* Many volumes: every one found by name (indexes), the one without a copy named. */
static void test_many_volumes(void **state)
{
    fixture *f = *state;
    enum { N = 3000 };
    json_t *claims = json_array(), *vols = json_array();
    json_array_clear(f->pvs);
    char c[32], pv[32], uid[32];
    for (int i = 0; i < N; i++) {
        snprintf(c, sizeof c, "disk-%d", i);
        snprintf(pv, sizeof pv, "pv-%d", i);
        snprintf(uid, sizeof uid, "uid-%d", i);
        json_array_append_new(claims, json_pack("{s:{s:s},s:{s:s}}", "metadata", "name", c, "spec",
                                                "volumeName", pv));
        json_array_append_new(vols, json_pack("{s:{s:s,s:s}}", "metadata", "name", pv, "uid", uid));
        if (i != 1234)
            json_array_append_new(f->pvs, synced_pv(pv, c, uid, i == 77 ? TS_M20 : TS_M10));
    }
    json_decref(f->primary);
    f->primary = json_pack("{s:o,s:o}", "claims", claims, "volumes", vols);
    f->in.primary = f->primary;
    dst_result r;
    dst_compute(&f->in, &r);
    assert_int_equal(r.n_vols, N);
    assert_int_equal(r.state, DST_UNPROTECTED);
    assert_int_equal(r.claims_without_dr_copy, 1);
    assert_string_equal(reason_msg(&r, DST_R_CLAIM_WITHOUT_DR_COPY),
                        "claims without a DR copy: disk-1234 (pv-1234: no DR PV)");
    assert_int_equal(r.vols[77].cls, DST_VOL_OK);
    assert_true(r.vols[77].age_s == 1200.0);
    dst_result_free(&r);
}

static void test_json(void **state)
{
    fixture *f = *state;
    json_object_set_new(f->record, "action.kind", json_string("failover"));
    json_object_set_new(f->record, "action.phase", json_string("completed"));
    json_object_set_new(f->record, "action.started", json_string(TS_M60));
    json_object_set_new(f->record, "action.finished", json_string(TS_M20));
    json_object_set_new(f->record, "action.rto-s", json_string("2400"));
    dst_result r;
    dst_compute(&f->in, &r);
    json_t *j = dst_to_json(&r);
    assert_string_equal(jx_str(j, "state"), "FailedOver");
    assert_string_equal(jx_str(j, "namespace"), "app");
    assert_true(json_real_value(json_object_get(j, "rpo_s")) == 1200.0);
    assert_int_equal(jx_int(j, "last_rto_s", 0), 2400);
    assert_true(json_is_true(json_object_get(j, "rto_met")));
    assert_string_equal(jx_str(j, "backup.name"), "daily");
    assert_string_equal(jx_str(j, "backup.started"), TS_M60);
    assert_string_equal(jx_str(j, "full_sync.last_ok_start"), TS_M20);
    assert_string_equal(jx_str(j, "action.kind"), "failover");
    json_t *v = json_array_get(json_object_get(j, "volumes"), 0);
    assert_string_equal(jx_str(v, "class"), "ok");
    assert_string_equal(jx_str(v, "claim"), "disk-a");
    assert_string_equal(jx_str(v, "last_sync_start"), TS_M10);
    assert_string_equal(jx_str(v, "last_attempt.result"), "ok");
    assert_string_equal(jx_str(json_array_get(json_object_get(j, "reasons"), 0), "code"), "failed_over");
    assert_true(json_is_true(json_object_get(j, "primary_checked")));
    json_decref(j);
    dst_result_free(&r);
    /* the name tables are complete */
    for (int i = 0; i < DST_N_STATES; i++)
        assert_non_null(dst_states[i]);
    for (int i = 0; i < DST_N_REASONS; i++)
        assert_non_null(dst_reason_codes[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_protected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_success_degrades_by_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_after_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_over_not_protected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_claim_unprotected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failback_needs_full_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unprotected_reasons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_primary_not_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_and_future, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_sync_failed_degrades, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_volumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
