/* test_transform.c - unit tests for lib/dr/transform (DR object transforms) on
 * real object shapes from tests/unit/data/transform/: nfs and csi-nfs PVs,
 * bound and pending PVCs, VolumeSnapshot / VolumeSnapshotContent, a KubeVirt
 * VirtualMachine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "transform.h"

static json_t *load(const char *name)
{
    char path[512], *err = NULL;
    snprintf(path, sizeof path, "%s/transform/%s", TEST_DATA_DIR, name);
    json_t *v = jx_load_file(path, &err);
    if (!v)
        fail_msg("%s", err ? err : path);
    return v;
}

static json_t *clean_ok(const char *name, const tf_opts *o)
{
    json_t *src = load(name);
    char *err = NULL;
    json_t *c = tf_cleaned(src, o, &err);
    if (!c)
        fail_msg("%s: %s", name, err ? err : "?");
    json_decref(src);
    return c;
}

static void assert_metadata_clean(json_t *c)
{
    static const char *const gone[] = { "metadata.resourceVersion", "metadata.uid",
        "metadata.creationTimestamp", "metadata.generation", "metadata.managedFields",
        "metadata.selfLink", "metadata.deletionTimestamp", "metadata.finalizers",
        "metadata.ownerReferences", "status", NULL };
    for (const char *const *p = gone; *p; p++)
        if (jx_get(c, *p))
            fail_msg("%s still present", *p);
}

static json_t *ann(json_t *c, const char *key)
{
    return json_object_get(jx_get(c, "metadata.annotations"), key);
}

static void test_cluster_generated(void **state)
{
    (void)state;
    json_t *root_ca = json_pack("{ss ss s{ss ss}}", "apiVersion", "v1", "kind", "ConfigMap",
                                "metadata", "name", "kube-root-ca.crt", "namespace", "vm-prod");
    json_t *svc_ca = json_pack("{ss ss s{ss ss}}", "apiVersion", "v1", "kind", "ConfigMap",
                               "metadata", "name", "openshift-service-ca.crt", "namespace", "vm-prod");
    json_t *mine = json_pack("{ss ss s{ss ss}}", "apiVersion", "v1", "kind", "ConfigMap",
                             "metadata", "name", "app-config", "namespace", "vm-prod");
    json_t *secret = json_pack("{ss ss s{ss ss}}", "apiVersion", "v1", "kind", "Secret",
                               "metadata", "name", "kube-root-ca.crt", "namespace", "vm-prod");
    assert_true(tf_cluster_generated(root_ca));
    assert_true(tf_cluster_generated(svc_ca));
    assert_false(tf_cluster_generated(mine));
    assert_false(tf_cluster_generated(secret));
    json_decref(root_ca);
    json_decref(svc_ca);
    json_decref(mine);
    json_decref(secret);
}

static void test_pv_nfs(void **state)
{
    (void)state;
    json_t *c = clean_ok("pv_nfs.json", NULL);
    assert_metadata_clean(c);
    assert_string_equal(jx_str(c, "spec.persistentVolumeReclaimPolicy"), "Retain");
    json_t *ref = jx_get(c, "spec.claimRef");
    assert_int_equal(json_object_size(ref), 2);
    assert_string_equal(jx_str(ref, "namespace"), "vm-prod");
    assert_string_equal(jx_str(ref, "name"), "db-data");
    assert_null(ann(c, "pv.kubernetes.io/bound-by-controller"));
    assert_null(ann(c, "kubectl.kubernetes.io/last-applied-configuration"));
    assert_non_null(ann(c, "pv.kubernetes.io/provisioned-by"));   /* identifies the driver: kept */
    assert_non_null(ann(c, "example.com/owner-team"));
    assert_string_equal(jx_str(c, "spec.nfs.server"), "10.0.0.10");
    assert_string_equal(jx_str(c, "metadata.labels.app"), "db");
    json_decref(c);
}

static void test_pv_claim_ref_drop(void **state)
{
    (void)state;
    tf_opts o = { .claim_ref = TF_CLAIM_DROP };
    json_t *c = clean_ok("pv_csi_nfs.json", &o);
    assert_null(jx_get(c, "spec.claimRef"));
    assert_string_equal(jx_str(c, "spec.persistentVolumeReclaimPolicy"), "Retain");
    assert_string_equal(jx_str(c, "spec.csi.driver"), "nfs.csi.k8s.io");
    assert_non_null(jx_get(c, "spec.csi.volumeAttributes"));
    assert_metadata_clean(c);
    json_decref(c);
}

static void test_pv_csi_keep(void **state)
{
    (void)state;
    json_t *c = clean_ok("pv_csi_nfs.json", NULL);
    assert_string_equal(jx_str(c, "spec.claimRef.name"), "rootdisk-vm1");
    assert_null(jx_get(c, "spec.claimRef.uid"));
    assert_null(jx_get(c, "spec.claimRef.resourceVersion"));
    /* annotations not on the built-in list survive, even empty ones */
    assert_non_null(ann(c, "volume.kubernetes.io/provisioner-deletion-secret-name"));
    json_decref(c);
}

static void test_pvc_bound(void **state)
{
    (void)state;
    json_t *c = clean_ok("pvc_bound.json", NULL);
    assert_metadata_clean(c);
    assert_string_equal(jx_str(c, "spec.volumeName"), "pvc-7e2a4c19-55d0-4b8e-bf3a-90c1d2e3f4a5");
    assert_string_equal(jx_str(c, "metadata.namespace"), "vm-prod");
    static const char *const dropped[] = { "pv.kubernetes.io/bind-completed",
        "pv.kubernetes.io/bound-by-controller", "volume.beta.kubernetes.io/storage-provisioner",
        "volume.kubernetes.io/storage-provisioner", "volume.kubernetes.io/selected-node", NULL };
    for (const char *const *p = dropped; *p; p++)
        if (ann(c, *p))
            fail_msg("%s kept", *p);
    assert_string_equal(json_string_value(ann(c, "cdi.kubevirt.io/storage.contentType")), "kubevirt");
    json_decref(c);
}

static void test_pvc_pending(void **state)
{
    (void)state;
    json_t *c = clean_ok("pvc_pending.json", NULL);
    assert_null(jx_get(c, "spec.volumeName"));
    assert_null(jx_get(c, "metadata.annotations"));   /* emptied map removed */
    assert_string_equal(jx_str(c, "spec.storageClassName"), "nfs-csi");
    json_decref(c);
}

static void test_vsc(void **state)
{
    (void)state;
    json_t *c = clean_ok("vsc.json", NULL);
    assert_metadata_clean(c);
    assert_string_equal(jx_str(c, "spec.deletionPolicy"), "Retain");
    json_t *ref = jx_get(c, "spec.volumeSnapshotRef");
    assert_null(json_object_get(ref, "uid"));
    assert_null(json_object_get(ref, "resourceVersion"));
    assert_string_equal(jx_str(ref, "name"), "rootdisk-vm1-nightly");
    assert_string_equal(jx_str(ref, "namespace"), "vm-prod");
    /* dynamic source became pre-provisioned */
    assert_null(jx_get(c, "spec.source.volumeHandle"));
    assert_string_equal(jx_str(c, "spec.source.snapshotHandle"),
        "10.0.0.10#srv/csi#pvc-7e2a4c19-55d0-4b8e-bf3a-90c1d2e3f4a5#snapshot-aa11bb22#");
    assert_string_equal(jx_str(c, "spec.sourceVolumeMode"), "Filesystem");
    assert_null(jx_get(c, "metadata.annotations"));
    json_decref(c);
}

static void test_vsc_not_cut(void **state)
{
    (void)state;
    json_t *v = load("vsc.json");
    json_object_del(json_object_get(v, "status"), "snapshotHandle");
    char *err = NULL;
    assert_null(tf_cleaned(v, NULL, &err));
    assert_non_null(strstr(err, "VolumeSnapshotContent snapcontent-aa11bb22"));
    assert_non_null(strstr(err, "snapshotHandle"));
    free(err);
    /* input untouched by a failed tf_cleaned */
    assert_string_equal(jx_str(v, "metadata.uid"), "e1e2e3e4-f5f6-4a7b-8c9d-0a1b2c3d4e5f");
    json_decref(v);
}

static void test_vs(void **state)
{
    (void)state;
    json_t *c = clean_ok("vs.json", NULL);
    assert_metadata_clean(c);
    json_t *src = jx_get(c, "spec.source");
    assert_int_equal(json_object_size(src), 1);
    assert_string_equal(jx_str(src, "volumeSnapshotContentName"),
                        "snapcontent-aa11bb22-cc33-4d44-8e55-ff6677889900");
    assert_string_equal(jx_str(c, "spec.volumeSnapshotClassName"), "csi-nfs-snapclass");
    json_decref(c);
}

static void test_vs_unbound(void **state)
{
    (void)state;
    json_t *v = load("vs_unbound.json");
    char *err = NULL;
    assert_null(tf_cleaned(v, NULL, &err));
    assert_string_equal(err, "VolumeSnapshot vm-prod/in-progress: not bound to a VolumeSnapshotContent "
                             "yet (status.boundVolumeSnapshotContentName missing)");
    free(err);
    json_decref(v);
}

static void test_vm(void **state)
{
    (void)state;
    json_t *c = clean_ok("vm.json", NULL);
    assert_metadata_clean(c);
    assert_null(ann(c, "kubevirt.io/latest-observed-api-version"));
    assert_string_equal(json_string_value(ann(c, "description")), "web frontend");
    /* a stale management label from the source (failback) is removed */
    assert_null(json_object_get(jx_get(c, "metadata.labels"), TF_MANAGED_LABEL));
    assert_string_equal(jx_str(c, "spec.runStrategy"), "Always");
    assert_non_null(jx_get(c, "spec.template.spec.domain"));
    json_decref(c);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        { "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"namespace\":\"a\"}}",
          "PersistentVolumeClaim a/<no name>: metadata.name is missing" },
        { "{\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"x\"}}", "object x: kind is missing" },
        { "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}", "ConfigMap x: apiVersion is missing" },
        { "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":\"p\"}}",
          "PersistentVolume p: spec is missing" },
        { "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":\"p\"},"
          "\"spec\":{\"claimRef\":{\"name\":\"c\"}}}",
          "PersistentVolume p: spec.claimRef must name the claim's namespace and name" },
        { "[1,2]", "object: not a JSON object" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = json_loads(cases[i][0], JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        char *err = NULL;
        assert_int_equal(tf_clean(v, NULL, &err), -1);
        assert_string_equal(err, cases[i][1]);
        free(err);
        json_decref(v);
    }
}

static void test_annotation_lists(void **state)
{
    (void)state;
    json_t *keep = json_pack("[s]", "volume.kubernetes.io/selected-node");
    json_t *drop = json_pack("[ss]", "cdi.kubevirt.io/*", "volume.kubernetes.io/selected-node");
    tf_opts o = { .keep_annotations = keep };
    json_t *c = clean_ok("pvc_bound.json", &o);
    assert_string_equal(json_string_value(ann(c, "volume.kubernetes.io/selected-node")), "worker-1");
    assert_null(ann(c, "pv.kubernetes.io/bind-completed"));
    json_decref(c);
    o.drop_annotations = drop;   /* drop wins over keep */
    c = clean_ok("pvc_bound.json", &o);
    assert_null(ann(c, "volume.kubernetes.io/selected-node"));
    assert_null(ann(c, "cdi.kubevirt.io/storage.contentType"));
    json_decref(c);
    /* ocpv-dr's own marks are never taken from the source, even if "kept" */
    json_t *keep_all = json_pack("[s]", "*");
    tf_opts o2 = { .keep_annotations = keep_all };
    assert_true(tf_annotation_dropped(TF_ANN_HASH, &o2));
    assert_false(tf_annotation_dropped("pv.kubernetes.io/bind-completed", &o2));
    assert_true(tf_annotation_dropped("pv.kubernetes.io/bind-completed", NULL));
    json_decref(keep_all);
    json_decref(keep);
    json_decref(drop);
}

static void test_mark_and_hash(void **state)
{
    (void)state;
    json_t *src = load("pvc_bound.json");
    char *err = NULL;
    json_t *a = tf_for_dr(src, NULL, "primary", &err);
    assert_non_null(a);
    assert_true(tf_is_managed(a));
    assert_string_equal(json_string_value(ann(a, TF_ANN_SOURCE_CLUSTER)), "primary");
    assert_string_equal(json_string_value(ann(a, TF_ANN_SOURCE_UID)), "7e2a4c19-55d0-4b8e-bf3a-90c1d2e3f4a5");
    assert_string_equal(json_string_value(ann(a, TF_ANN_SOURCE_RV)), "201135");
    const char *h = tf_hash_of(a);
    assert_non_null(h);
    assert_int_equal(strlen(h), 64);

    /* status-only change + new resourceVersion on the primary: same hash */
    json_t *src2 = json_deep_copy(src);
    jx_set(src2, "metadata.resourceVersion", json_string("999999"));
    jx_set(src2, "status.phase", json_string("Lost"));
    json_t *b = tf_for_dr(src2, NULL, "primary", &err);
    assert_string_equal(tf_hash_of(a), tf_hash_of(b));
    /* hashing the marked object again yields the recorded hash */
    char again[65];
    tf_hash(b, again);
    assert_string_equal(again, tf_hash_of(b));

    /* a spec change: different hash */
    jx_set(src2, "spec.resources.requests.storage", json_string("40Gi"));
    json_t *c = tf_for_dr(src2, NULL, "primary", &err);
    assert_string_not_equal(tf_hash_of(a), tf_hash_of(c));

    /* cleaning an already-cleaned (marked) object is a fixed point */
    json_t *d = tf_for_dr(c, NULL, "primary", &err);
    assert_string_equal(tf_hash_of(c), tf_hash_of(d));
    json_decref(a); json_decref(b); json_decref(c); json_decref(d);
    json_decref(src); json_decref(src2);
    /* an object without marks is not managed */
    json_t *plain = load("pvc_pending.json");
    assert_false(tf_is_managed(plain));
    assert_null(tf_hash_of(plain));
    json_decref(plain);
}

static void test_adopt_live_refs(void **state)
{
    (void)state;
    json_t *src = load("pv_nfs.json");
    char *err = NULL;
    json_t *desired = tf_for_dr(src, NULL, "primary", &err);
    json_t *live = json_deep_copy(desired);
    jx_set(live, "spec.claimRef.uid", json_string("dr-uid"));
    jx_set(live, "spec.claimRef.kind", json_string("PersistentVolumeClaim"));
    char hash[65];
    strcpy(hash, tf_hash_of(desired));
    assert_true(tf_adopt_live_refs(desired, live));
    assert_string_equal(jx_str(desired, "spec.claimRef.uid"), "dr-uid");
    assert_string_equal(tf_hash_of(desired), hash);     /* recorded hash unchanged */
    assert_false(tf_adopt_live_refs(desired, live));    /* already equal */
    /* a live ref to another claim is not adopted */
    json_t *desired2 = tf_for_dr(src, NULL, "primary", &err);
    jx_set(live, "spec.claimRef.name", json_string("other"));
    assert_false(tf_adopt_live_refs(desired2, live));
    assert_null(jx_get(desired2, "spec.claimRef.uid"));
    json_decref(desired); json_decref(desired2); json_decref(live); json_decref(src);

    json_t *vsc = load("vsc.json");
    json_t *dv = tf_for_dr(vsc, NULL, NULL, &err);
    json_t *lv = json_deep_copy(dv);
    jx_set(lv, "spec.volumeSnapshotRef.uid", json_string("dr-vs-uid"));
    assert_true(tf_adopt_live_refs(dv, lv));
    assert_string_equal(jx_str(dv, "spec.volumeSnapshotRef.uid"), "dr-vs-uid");
    assert_null(ann(dv, TF_ANN_SOURCE_CLUSTER));
    json_decref(dv); json_decref(lv); json_decref(vsc);
}

static void test_apply_order(void **state)
{
    (void)state;
    static const char *const files[] = { "vs.json", "vm.json", "pvc_bound.json", "vsc.json",
        "pv_nfs.json", "pvc_pending.json", "pv_csi_nfs.json" };
    json_t *arr = json_array();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        json_array_append_new(arr, load(files[i]));
    json_array_append_new(arr, json_pack("{ss ss s{ss}}", "apiVersion", "v1", "kind", "ConfigMap",
                                         "metadata", "name", "cm"));
    tf_sort_apply_order(arr);
    static const char *const want[][2] = {
        { "PersistentVolume", "pvc-0b6f7a8e-3c1d-4f55-9a1e-2f0d7b9c4e11" },
        { "PersistentVolume", "pvc-7e2a4c19-55d0-4b8e-bf3a-90c1d2e3f4a5" },
        { "PersistentVolumeClaim", "rootdisk-vm1" },
        { "PersistentVolumeClaim", "scratch" },
        { "VolumeSnapshotContent", NULL }, { "VolumeSnapshot", NULL },
        { "ConfigMap", NULL }, { "VirtualMachine", NULL },
    };
    assert_int_equal(json_array_size(arr), 8);
    for (size_t i = 0; i < 8; i++) {
        json_t *o = json_array_get(arr, i);
        assert_string_equal(jx_str(o, "kind"), want[i][0]);
        if (want[i][1])
            assert_string_equal(jx_str(o, "metadata.name"), want[i][1]);
    }
    assert_true(tf_rank_kind("PersistentVolume") < tf_rank_kind("PersistentVolumeClaim"));
    assert_true(tf_rank_kind("VolumeSnapshotContent") < tf_rank_kind("VolumeSnapshot"));
    json_decref(arr);
}

static void test_scope(void **state)
{
    (void)state;
    json_t *pv = load("pv_nfs.json"), *vsc = load("vsc.json"), *pvc = load("pvc_pending.json");
    assert_string_equal(tf_scope_namespace(pv), "vm-prod");
    assert_string_equal(tf_scope_namespace(vsc), "vm-prod");
    assert_string_equal(tf_scope_namespace(pvc), "vm-dev");
    json_object_del(json_object_get(pv, "spec"), "claimRef");
    assert_null(tf_scope_namespace(pv));
    assert_true(tf_kind_cluster_scoped("PersistentVolume"));
    assert_false(tf_kind_cluster_scoped("PersistentVolumeClaim"));
    json_decref(pv); json_decref(vsc); json_decref(pvc);
}

/* Which source cluster a DR object belongs to: prune and apply touch only
 * objects whose dr.ocpv.io/source-cluster is their own. */
static void test_same_source(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                          "metadata", "name", "c");
    tf_mark(o, "primary-a", "uid-1", "7");
    assert_true(tf_same_source(o, "primary-a"));
    assert_false(tf_same_source(o, "primary-b"));
    assert_false(tf_same_source(o, NULL));   /* a run without a name is not its owner */
    assert_false(tf_same_source(o, ""));
    assert_string_equal(tf_annotation_of(o, TF_ANN_SOURCE_UID), "uid-1");
    assert_null(tf_annotation_of(o, "nope"));
    json_t *anon = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                             "metadata", "name", "c");
    tf_mark(anon, NULL, "uid-2", "8");
    assert_true(tf_same_source(anon, NULL));
    assert_true(tf_same_source(anon, ""));
    assert_false(tf_same_source(anon, "primary-a"));   /* never pruned by a named source */
    json_decref(o);
    json_decref(anon);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pv_nfs),
        cmocka_unit_test(test_pv_claim_ref_drop),
        cmocka_unit_test(test_pv_csi_keep),
        cmocka_unit_test(test_pvc_bound),
        cmocka_unit_test(test_pvc_pending),
        cmocka_unit_test(test_vsc),
        cmocka_unit_test(test_vsc_not_cut),
        cmocka_unit_test(test_vs),
        cmocka_unit_test(test_vs_unbound),
        cmocka_unit_test(test_vm),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_annotation_lists),
        cmocka_unit_test(test_mark_and_hash),
        cmocka_unit_test(test_adopt_live_refs),
        cmocka_unit_test(test_apply_order),
        cmocka_unit_test(test_scope),
        cmocka_unit_test(test_same_source),
        cmocka_unit_test(test_cluster_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
