/* test_dr_scope.c - unit tests for lib/dr/dr_scope (the one scope rule of
 * k8s_dr_clean): namespaced objects by their namespace, PVs / contents by
 * their claim's / snapshot's namespace, a Namespace by its name, and other
 * cluster-scoped kinds (StorageClass, VolumeSnapshotClass, custom ones) in
 * scope as a whole - the meaning the primary listing and the DR listing
 * always had, and the prune-against-resources path did not (it dropped a
 * StorageClass, so its guard saw an empty primary). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dr_scope.h"

static json_t *nss(void)
{
    return json_pack("[ss]", "vm-prod", "vm-dev");
}

static void test_namespaced(void **state)
{
    (void)state;
    json_t *ns = nss();
    json_t *in = json_pack("{ss s{ss ss}}", "kind", "PersistentVolumeClaim", "metadata",
                           "name", "a", "namespace", "vm-dev");
    json_t *out = json_pack("{ss s{ss ss}}", "kind", "Secret", "metadata", "name", "a",
                            "namespace", "kube-system");
    json_t *none = json_pack("{ss s{ss}}", "kind", "ConfigMap", "metadata", "name", "a");
    /* a custom namespaced kind is judged by its namespace too */
    json_t *widget = json_pack("{ss s{ss ss}}", "kind", "Widget", "metadata", "name", "w",
                               "namespace", "vm-prod");
    bool whole = true;
    assert_string_equal(dr_scope_namespace(in, true, &whole), "vm-dev");
    assert_false(whole);
    assert_true(dr_in_scope(in, true, ns));
    assert_false(dr_in_scope(out, true, ns));
    assert_false(dr_in_scope(none, true, ns));
    assert_true(dr_in_scope(widget, true, ns));
    json_decref(in);
    json_decref(out);
    json_decref(none);
    json_decref(widget);
    json_decref(ns);
}

static void test_through_claim_and_snapshot(void **state)
{
    (void)state;
    json_t *ns = nss();
    json_t *pv_in = json_pack("{ss s{ss} s{s{ss ss}}}", "kind", "PersistentVolume", "metadata",
                              "name", "pv1", "spec", "claimRef", "namespace", "vm-prod",
                              "name", "disk");
    json_t *pv_out = json_pack("{ss s{ss} s{s{ss ss}}}", "kind", "PersistentVolume", "metadata",
                               "name", "pv2", "spec", "claimRef", "namespace", "other",
                               "name", "disk");
    json_t *pv_free = json_pack("{ss s{ss} s{}}", "kind", "PersistentVolume", "metadata",
                                "name", "pv3", "spec");
    json_t *vsc_in = json_pack("{ss s{ss} s{s{ss ss}}}", "kind", "VolumeSnapshotContent",
                               "metadata", "name", "c1", "spec", "volumeSnapshotRef",
                               "namespace", "vm-dev", "name", "snap");
    json_t *vsc_free = json_pack("{ss s{ss} s{}}", "kind", "VolumeSnapshotContent", "metadata",
                                 "name", "c2", "spec");
    bool whole = true;
    assert_string_equal(dr_scope_namespace(pv_in, false, &whole), "vm-prod");
    assert_false(whole);
    assert_true(dr_in_scope(pv_in, false, ns));
    assert_false(dr_in_scope(pv_out, false, ns));
    /* no claim: in no namespace, never in scope as a whole */
    assert_null(dr_scope_namespace(pv_free, false, &whole));
    assert_false(whole);
    assert_false(dr_in_scope(pv_free, false, ns));
    assert_true(dr_in_scope(vsc_in, false, ns));
    assert_false(dr_in_scope(vsc_free, false, ns));
    json_decref(pv_in);
    json_decref(pv_out);
    json_decref(pv_free);
    json_decref(vsc_in);
    json_decref(vsc_free);
    json_decref(ns);
}

static void test_namespace_by_name(void **state)
{
    (void)state;
    json_t *ns = nss();
    json_t *prot = json_pack("{ss s{ss}}", "kind", "Namespace", "metadata", "name", "vm-prod");
    json_t *sys = json_pack("{ss s{ss}}", "kind", "Namespace", "metadata", "name", "kube-system");
    assert_true(dr_in_scope(prot, false, ns));
    assert_false(dr_in_scope(sys, false, ns));
    json_decref(prot);
    json_decref(sys);
    json_decref(ns);
}

/* StorageClass, VolumeSnapshotClass, a cluster-scoped custom kind: in no
 * namespace, in scope as a whole (whatever namespaces say) */
static void test_cluster_scoped_whole(void **state)
{
    (void)state;
    json_t *ns = nss();
    const char *kinds[] = { "StorageClass", "VolumeSnapshotClass", "ClusterWidget" };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        json_t *o = json_pack("{ss s{ss}}", "kind", kinds[i], "metadata", "name", "gold");
        bool whole = false;
        assert_null(dr_scope_namespace(o, false, &whole));
        assert_true(whole);
        assert_true(dr_in_scope(o, false, ns));
        json_decref(o);
    }
    /* the same object read as namespaced (a kind that is namespaced on that
     * cluster) has no namespace: out */
    json_t *o = json_pack("{ss s{ss}}", "kind", "StorageClass", "metadata", "name", "gold");
    assert_false(dr_in_scope(o, true, ns));
    json_decref(o);
    json_decref(ns);
}

static void test_malformed(void **state)
{
    (void)state;
    json_t *ns = nss();
    json_t *s = json_string("x");
    bool whole = true;
    assert_null(dr_scope_namespace(s, false, &whole));
    assert_false(whole);
    assert_false(dr_in_scope(s, false, ns));
    assert_false(dr_in_scope(NULL, true, ns));
    /* a namespace that is not a string, an empty one */
    json_t *o = json_pack("{ss s{ss si}}", "kind", "Secret", "metadata", "name", "a",
                          "namespace", 3);
    assert_false(dr_in_scope(o, true, ns));
    json_t *e = json_pack("{ss s{ss ss}}", "kind", "Secret", "metadata", "name", "a",
                          "namespace", "");
    json_t *with_empty = json_pack("[s]", "");
    assert_false(dr_in_scope(e, true, with_empty));
    json_decref(o);
    json_decref(e);
    json_decref(with_empty);
    json_decref(s);
    json_decref(ns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_namespaced),
        cmocka_unit_test(test_through_claim_and_snapshot),
        cmocka_unit_test(test_namespace_by_name),
        cmocka_unit_test(test_cluster_scoped_whole),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
