/* test_inventory.c - unit tests for lib/dr/inventory (the selection behind
 * k8s_dr_clean mode list): bound vs pending claims, volumes of bound claims
 * only (or all in scope), a PV whose claimRef names another claim, DR copies
 * made from this very PV (source-uid) vs an older PV of the same name, ready
 * snapshots and their contents, the name filter, managedFields stripped
 * without touching the input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "inventory.h"
#include "jsonx.h"
#include "transform.h"

static json_t *pvc(const char *name, const char *phase, const char *vol)
{
    json_t *o = json_pack("{ss ss s{ss ss s[{ss}]} s{} s{ss}}", "apiVersion", "v1",
                          "kind", "PersistentVolumeClaim", "metadata", "name", name,
                          "namespace", "vm-prod", "managedFields", "manager", "kcm",
                          "spec", "status", "phase", phase);
    if (vol)
        jx_set(o, "spec.volumeName", json_string(vol));
    return o;
}

static json_t *pv(const char *name, const char *uid, const char *claim_ns, const char *claim)
{
    json_t *o = json_pack("{ss ss s{ss ss} s{ss} s{ss}}", "apiVersion", "v1", "kind",
                          "PersistentVolume", "metadata", "name", name, "uid", uid, "spec",
                          "storageClassName", "nfs-subdir", "status", "phase", "Bound");
    if (claim_ns)
        jx_set(o, "spec.claimRef", json_pack("{ssss}", "namespace", claim_ns, "name", claim));
    return o;
}

static json_t *dr_pv(const char *name, const char *source_uid, bool managed)
{
    json_t *o = json_pack("{ss ss s{ss s{ss} s{}}}", "apiVersion", "v1", "kind", "PersistentVolume",
                          "metadata", "name", name, "annotations", TF_ANN_SOURCE_UID, source_uid,
                          "labels");
    if (managed)
        json_object_set_new(jx_get(o, "metadata.labels"), TF_MANAGED_LABEL, json_string(TF_MANAGED_VALUE));
    return o;
}

static json_t *names_of(json_t *arr)
{
    json_t *n = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
        json_array_append_new(n, json_string(json_is_string(o) ? json_string_value(o)
                                                               : jx_str_or(o, "metadata.name", "?")));
    return n;
}

static void assert_names(json_t *arr, const char *expect_json)
{
    json_t *got = names_of(arr), *want = json_loads(expect_json, 0, NULL);
    char *g = json_dumps(got, JSON_COMPACT);
    assert_non_null(want);
    if (!json_equal(got, want))
        fail_msg("got %s, want %s", g, expect_json);
    free(g);
    json_decref(got);
    json_decref(want);
}

static json_t *fixture(void)
{
    json_t *p = json_array();
    json_array_append_new(p, pvc("a", "Bound", "pv-a"));
    json_array_append_new(p, pvc("b", "Pending", NULL));
    json_array_append_new(p, pvc("c", "Bound", "pv-c"));
    json_array_append_new(p, pv("pv-a", "uid-a", "vm-prod", "a"));
    /* claims c's volume name, but its claimRef names another claim (a stale
     * or hijacked binding): not c's volume */
    json_array_append_new(p, pv("pv-c", "uid-c", "vm-prod", "other"));
    /* Released: its claim is gone */
    json_array_append_new(p, pv("pv-r", "uid-r", "vm-prod", "gone"));
    return p;
}

static void test_bound_claims_and_their_volumes(void **state)
{
    (void)state;
    json_t *p = fixture();
    inv_opts o = { .volumes = INV_VOLUMES_BOUND };
    json_t *out = inv_build(p, NULL, &o);
    assert_names(json_object_get(out, "claims"), "[\"a\",\"c\"]");
    assert_names(json_object_get(out, "claims_pending"), "[\"b\"]");
    assert_names(json_object_get(out, "volumes"), "[\"pv-a\"]");
    assert_null(json_object_get(out, "volumes_current"));      /* DR not read */
    assert_int_equal(jx_int(out, "counts.claims", -1), 2);
    assert_int_equal(jx_int(out, "counts.volumes", -1), 1);
    assert_int_equal(jx_int(out, "counts.volumes_current", -1), -1);
    json_decref(out);

    o.volumes = INV_VOLUMES_ALL;
    out = inv_build(p, NULL, &o);
    assert_names(json_object_get(out, "volumes"), "[\"pv-a\",\"pv-c\",\"pv-r\"]");
    json_decref(out);
    json_decref(p);
}

static void test_current_needs_same_source_uid(void **state)
{
    (void)state;
    json_t *p = fixture();
    json_array_append_new(p, pvc("d", "Bound", "pv-d"));
    json_array_append_new(p, pv("pv-d", "uid-d-new", "vm-prod", "d"));
    json_array_append_new(p, pvc("e", "Bound", "pv-e"));
    json_array_append_new(p, pv("pv-e", "uid-e", "vm-prod", "e"));
    json_t *dr = json_array();
    json_array_append_new(dr, dr_pv("pv-a", "uid-a", true));        /* current */
    json_array_append_new(dr, dr_pv("pv-d", "uid-d-old", true));    /* PV re-created on primary */
    json_array_append_new(dr, dr_pv("pv-e", "uid-e", false));       /* not ocpv-dr's */
    inv_opts o = { .volumes = INV_VOLUMES_BOUND };
    json_t *out = inv_build(p, dr, &o);
    assert_names(json_object_get(out, "volumes"), "[\"pv-a\",\"pv-d\",\"pv-e\"]");
    assert_names(json_object_get(out, "volumes_current"), "[\"pv-a\"]");
    assert_int_equal(jx_int(out, "counts.volumes_current", -1), 1);
    json_decref(out);
    /* DR read and empty: nothing is current (not absent) */
    json_t *empty = json_array();
    out = inv_build(p, empty, &o);
    assert_int_equal(json_array_size(json_object_get(out, "volumes_current")), 0);
    json_decref(out);
    json_decref(empty);
    json_decref(dr);
    json_decref(p);
}

static void test_names_filter(void **state)
{
    (void)state;
    json_t *p = fixture();
    json_t *names = json_pack("[ss]", "c", "b");
    inv_opts o = { .volumes = INV_VOLUMES_BOUND, .names = names };
    json_t *out = inv_build(p, NULL, &o);
    assert_names(json_object_get(out, "claims"), "[\"c\"]");
    assert_names(json_object_get(out, "claims_pending"), "[\"b\"]");
    assert_names(json_object_get(out, "volumes"), "[]");   /* pv-c is not c's (claimRef) */
    json_decref(out);
    json_decref(names);
    json_decref(p);
}

static void test_snapshots_ready_with_contents(void **state)
{
    (void)state;
    json_t *p = json_array();
    json_array_append_new(p, json_pack("{ss s{ss ss} s{sb ss}}", "kind", "VolumeSnapshot", "metadata",
                                       "name", "s1", "namespace", "vm-prod", "status", "readyToUse", 1,
                                       "boundVolumeSnapshotContentName", "vsc-1"));
    json_array_append_new(p, json_pack("{ss s{ss ss} s{sb ss}}", "kind", "VolumeSnapshot", "metadata",
                                       "name", "s2", "namespace", "vm-prod", "status", "readyToUse", 0,
                                       "boundVolumeSnapshotContentName", "vsc-2"));
    json_array_append_new(p, json_pack("{ss s{ss ss}}", "kind", "VolumeSnapshot", "metadata",
                                       "name", "s3", "namespace", "vm-prod"));   /* no status yet */
    json_array_append_new(p, json_pack("{ss s{ss} s{sb}}", "kind", "VolumeSnapshotContent",
                                       "metadata", "name", "vsc-1", "status", "readyToUse", 1));
    json_array_append_new(p, json_pack("{ss s{ss} s{sb}}", "kind", "VolumeSnapshotContent",
                                       "metadata", "name", "vsc-2", "status", "readyToUse", 1));
    json_array_append_new(p, json_pack("{ss s{ss} s{sb}}", "kind", "VolumeSnapshotContent",
                                       "metadata", "name", "vsc-x", "status", "readyToUse", 1));
    inv_opts o = { 0 };
    json_t *out = inv_build(p, NULL, &o);
    assert_names(json_object_get(out, "snapshots"), "[\"s1\"]");
    assert_names(json_object_get(out, "snapshot_contents"), "[\"vsc-1\"]");
    assert_int_equal(jx_int(out, "counts.snapshot_contents", -1), 1);
    json_decref(out);
    json_decref(p);
}

static void test_slim_leaves_input_alone(void **state)
{
    (void)state;
    json_t *p = fixture();
    inv_opts o = { 0 };
    json_t *out = inv_build(p, NULL, &o);
    json_t *a = json_array_get(json_object_get(out, "claims"), 0);
    assert_null(jx_get(a, "metadata.managedFields"));
    assert_string_equal(jx_str(a, "metadata.name"), "a");
    assert_non_null(jx_get(json_array_get(p, 0), "metadata.managedFields"));
    json_decref(out);
    json_decref(p);
}

static void test_empty_and_foreign(void **state)
{
    (void)state;
    json_t *p = json_pack("[{ss s{ss}}, s, {}]", "kind", "ConfigMap", "metadata", "name", "x", "junk");
    inv_opts o = { 0 };
    json_t *out = inv_build(p, NULL, &o);
    static const char *const keys[] = { "claims", "claims_pending", "volumes", "snapshots",
                                        "snapshot_contents", NULL };
    for (const char *const *k = keys; *k; k++)
        assert_int_equal(json_array_size(json_object_get(out, *k)), 0);
    json_decref(out);
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_claims_and_their_volumes),
        cmocka_unit_test(test_current_needs_same_source_uid),
        cmocka_unit_test(test_names_filter),
        cmocka_unit_test(test_snapshots_ready_with_contents),
        cmocka_unit_test(test_slim_leaves_input_alone),
        cmocka_unit_test(test_empty_and_foreign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
