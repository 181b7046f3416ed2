/* test_dr_prune.c - unit tests for lib/dr/dr_prune (k8s_dr_clean's ownership
 * rules, deletion evidence, stale objects and prune guards): every apply
 * verdict; evidence by uid, by the claim a deleted volume names and by the
 * volume a deleted claim was bound to (only when the DR object still points
 * at that claim); the empty-source guard per kind and namespace (a
 * StorageClass counted "in scope"), exemption by evidence, max_delete never
 * lifted, the ratio over what no event names, other sources counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dr_prune.h"
#include "jsonx.h"
#include "transform.h"

/* A DR object as ocpv-dr marks it (source NULL: no ocpv-dr label). */
static json_t *dr_obj(const char *kind, const char *ns, const char *name, const char *source,
                      const char *hash, const char *src_uid)
{
    json_t *o = json_pack("{ss s{ss}}", "kind", kind, "metadata", "name", name);
    if (ns)
        jx_set(o, "metadata.namespace", json_string(ns));
    if (source) {
        jx_set(o, "metadata.labels", json_pack("{ss}", TF_MANAGED_LABEL, TF_MANAGED_VALUE));
        jx_set(o, "metadata.annotations", json_pack("{ss}", TF_ANN_SOURCE_CLUSTER, source));
        if (hash)
            json_object_set_new(jx_get(o, "metadata.annotations"), TF_ANN_HASH, json_string(hash));
        if (src_uid)
            json_object_set_new(jx_get(o, "metadata.annotations"), TF_ANN_SOURCE_UID,
                                json_string(src_uid));
    }
    return o;
}

static json_t *pv_claimed(const char *name, const char *source, const char *cns, const char *cname)
{
    json_t *o = dr_obj("PersistentVolume", NULL, name, source, NULL, NULL);
    jx_set(o, "spec.claimRef", json_pack("{ssss}", "namespace", cns, "name", cname));
    return o;
}

static void test_apply_decide(void **state)
{
    (void)state;
    json_t *desired = dr_obj("PersistentVolumeClaim", "a", "c", "site-a", "h1", NULL);
    json_t *same = dr_obj("PersistentVolumeClaim", "a", "c", "site-a", "h1", NULL);
    json_t *changed = dr_obj("PersistentVolumeClaim", "a", "c", "site-a", "h0", NULL);
    json_t *other = dr_obj("PersistentVolumeClaim", "a", "c", "site-b", "h1", NULL);
    json_t *hand = dr_obj("PersistentVolumeClaim", "a", "c", NULL, NULL, NULL);
    assert_int_equal(dr_apply_decide(desired, NULL, "site-a", false), DR_APPLY_CREATE);
    assert_int_equal(dr_apply_decide(desired, same, "site-a", false), DR_APPLY_UNCHANGED);
    assert_int_equal(dr_apply_decide(desired, changed, "site-a", false), DR_APPLY_UPDATE);
    assert_int_equal(dr_apply_decide(desired, other, "site-a", false), DR_APPLY_CONFLICT_OTHER);
    assert_int_equal(dr_apply_decide(desired, hand, "site-a", false), DR_APPLY_CONFLICT_UNMANAGED);
    /* taken over only when asked - even with a matching hash (it moves) */
    assert_int_equal(dr_apply_decide(desired, other, "site-a", true), DR_APPLY_TAKE_OTHER);
    assert_int_equal(dr_apply_decide(desired, hand, "site-a", true), DR_APPLY_TAKE_UNMANAGED);
    /* no source recorded: an object of a named source is not ours */
    assert_int_equal(dr_apply_decide(desired, same, NULL, false), DR_APPLY_CONFLICT_OTHER);
    json_decref(desired);
    json_decref(same);
    json_decref(changed);
    json_decref(other);
    json_decref(hand);
}

static void test_evidence(void **state)
{
    (void)state;
    json_t *list = json_pack("[s s"
                             " {ss s{ss ss ss} s{ss}}"                     /* deleted claim, bound */
                             " {ss s{ss ss} s{s{ss}} s{ss}}"               /* Released volume */
                             " {ss s{ss ss}}]",                            /* no uid */
                             "uid-1", "",
                             "kind", "PersistentVolumeClaim", "metadata", "name", "data-0",
                             "namespace", "vm-prod", "uid", "uid-claim0",
                             "spec", "volumeName", "pv-0",
                             "kind", "PersistentVolume", "metadata", "name", "pv-1",
                             "uid", "uid-pv1", "spec", "claimRef", "uid", "uid-claim1",
                             "status", "phase", "Released",
                             "kind", "PersistentVolumeClaim", "metadata", "name", "x",
                             "namespace", "vm-prod");
    dr_evidence ev;
    json_t *warnings = json_array();
    char *err = NULL;
    assert_int_equal(dr_evidence_read(&ev, list, warnings, &err), 0);
    assert_null(err);
    assert_int_equal(json_array_size(warnings), 1);
    assert_non_null(strstr(json_string_value(json_array_get(warnings, 0)),
                           "deleted_sources[4] (PersistentVolumeClaim x): no metadata.uid"));
    /* by source uid (a string, the claim's uid, the uid a Released volume names) */
    json_t *a = dr_obj("ConfigMap", "vm-prod", "a", "s", NULL, "uid-1");
    json_t *c1 = dr_obj("PersistentVolumeClaim", "vm-prod", "data-1", "s", NULL, "uid-claim1");
    json_t *none = dr_obj("ConfigMap", "vm-prod", "b", "s", NULL, "uid-9");
    assert_true(dr_evidenced(&ev, a, "ConfigMap"));
    assert_true(dr_evidenced(&ev, c1, "PersistentVolumeClaim"));
    assert_false(dr_evidenced(&ev, none, "ConfigMap"));
    /* the volume the deleted claim was bound to - only while the DR volume
     * still names that claim */
    json_t *pv0 = pv_claimed("pv-0", "s", "vm-prod", "data-0");
    json_t *pv0_other = pv_claimed("pv-0", "s", "vm-prod", "data-7");
    assert_true(dr_evidenced(&ev, pv0, "PersistentVolume"));
    assert_false(dr_evidenced(&ev, pv0_other, "PersistentVolume"));
    assert_false(dr_evidenced(NULL, pv0, "PersistentVolume"));
    dr_evidence_free(&ev);
    json_decref(a);
    json_decref(c1);
    json_decref(none);
    json_decref(pv0);
    json_decref(pv0_other);
    json_decref(warnings);
    json_decref(list);
    /* an element that is neither: refused, naming it */
    json_t *bad = json_pack("[s i]", "uid-1", 3);
    assert_int_equal(dr_evidence_read(&ev, bad, NULL, &err), -1);
    assert_string_equal(err, "deleted_sources[1]: must be a uid (string) or the deleted object (dict)");
    assert_int_equal(json_object_size(ev.uids), 0);
    free(err);
    dr_evidence_free(&ev);
    json_decref(bad);
}

/* The primary: ns-a holds claim keep-0; ns-b nothing.  DR (site-a): keep-0
 * (still there), gone-0..2 in ns-a, gone-b in ns-b, one of site-b's, one
 * without label. */
static dr_prune *plan_two_ns(json_t **primary, dr_evidence *ev, const char *ev_uid)
{
    *primary = json_pack("[{ss s{ss ss}}]", "kind", "PersistentVolumeClaim", "metadata",
                         "name", "keep-0", "namespace", "ns-a");
    json_t *del = ev_uid ? json_pack("[s]", ev_uid) : json_array();
    assert_int_equal(dr_evidence_read(ev, del, NULL, NULL), 0);
    json_decref(del);
    dr_prune *p = dr_prune_new(*primary, "site-a", ev);
    assert_non_null(p);
    struct { const char *ns, *name, *src, *uid; int want; } dr[] = {
        { "ns-a", "keep-0", "site-a", NULL, DR_PRUNE_KEEP },
        { "ns-a", "gone-0", "site-a", NULL, DR_PRUNE_STALE },
        { "ns-a", "gone-1", "site-a", NULL, DR_PRUNE_STALE },
        { "ns-a", "keep-1", "site-a", NULL, DR_PRUNE_STALE },   /* name differs from primary's */
        { "ns-b", "gone-b", "site-a", "uid-b", DR_PRUNE_STALE },
        { "ns-a", "theirs", "site-b", NULL, DR_PRUNE_FOREIGN },
        { "ns-a", "hand", NULL, NULL, DR_PRUNE_KEEP },
    };
    for (size_t i = 0; i < sizeof dr / sizeof dr[0]; i++) {
        json_t *o = dr_obj("PersistentVolumeClaim", dr[i].ns, dr[i].name, dr[i].src, NULL,
                           dr[i].uid);
        int want = dr[i].want;
        if (want == DR_PRUNE_STALE && ev_uid && dr[i].uid && strcmp(ev_uid, dr[i].uid) == 0)
            want = DR_PRUNE_STALE_EVIDENCED;
        assert_int_equal(dr_prune_consider(p, o, "PersistentVolumeClaim", true), want);
        json_decref(o);
    }
    return p;
}

static void test_guards(void **state)
{
    (void)state;
    json_t *primary;
    dr_evidence ev;
    dr_prune *p = plan_two_ns(&primary, &ev, NULL);
    assert_int_equal(dr_prune_managed(p), 5);
    assert_int_equal(dr_prune_foreign(p), 1);
    assert_int_equal(dr_prune_stale(p), 4);
    assert_int_equal(dr_prune_evidenced(p), 0);
    /* ns-b is empty on the primary while DR holds one there */
    dr_guard_opts o = { .max_delete = -1, .max_delete_ratio = 1.0 };
    char *g = dr_prune_guard(p, &o);
    assert_non_null(g);
    assert_string_equal(g, "the primary has no PersistentVolumeClaim in namespace ns-b while DR "
                           "holds 1 managed ones from it: refusing to empty DR there (set "
                           "allow_empty_source: true if this is intended)");
    free(g);
    /* allowed: the count cap, then the ratio (4 of 5) */
    o.allow_empty_source = true;
    o.max_delete = 3;
    g = dr_prune_guard(p, &o);
    assert_string_equal(g, "4 stale objects exceed max_delete=3");
    free(g);
    o.max_delete = 4;
    assert_null(dr_prune_guard(p, &o));
    o.max_delete_ratio = 0.5;
    g = dr_prune_guard(p, &o);
    assert_string_equal(g, "4 of 5 managed DR objects in scope (80%) would be deleted, more than "
                           "max_delete_ratio=0.5");
    free(g);
    o.max_delete_ratio = 0.8;   /* not more than */
    assert_null(dr_prune_guard(p, &o));
    dr_prune_free(p);
    dr_evidence_free(&ev);
    json_decref(primary);

    /* an event names gone-b: exempt from the empty-source guard and the
     * ratio (3 of 4 others), never from max_delete */
    p = plan_two_ns(&primary, &ev, "uid-b");
    assert_int_equal(dr_prune_evidenced(p), 1);
    o = (dr_guard_opts){ .max_delete = -1, .max_delete_ratio = 0.75 };
    assert_null(dr_prune_guard(p, &o));
    o.max_delete_ratio = 0.7;
    g = dr_prune_guard(p, &o);
    assert_string_equal(g, "3 of 4 managed DR objects in scope (75%) would be deleted without a "
                           "deletion event naming them, more than max_delete_ratio=0.7");
    free(g);
    o.max_delete = 3;
    g = dr_prune_guard(p, &o);
    assert_string_equal(g, "4 stale objects exceed max_delete=3");
    free(g);
    dr_prune_free(p);
    dr_evidence_free(&ev);
    json_decref(primary);
}

/* Cluster-scoped kinds: a StorageClass counts "in scope" (one bucket for the
 * empty-source guard), a PV for its claim's namespace. */
static void test_cluster_scoped(void **state)
{
    (void)state;
    json_t *primary = json_pack("[{ss s{ss}} {ss s{ss} s{s{ssss}}}]",
                                "kind", "StorageClass", "metadata", "name", "gold",
                                "kind", "PersistentVolume", "metadata", "name", "pv-a",
                                "spec", "claimRef", "namespace", "ns-a", "name", "c");
    dr_prune *p = dr_prune_new(primary, "s", NULL);
    json_t *gold = dr_obj("StorageClass", NULL, "gold", "s", NULL, NULL);
    json_t *silver = dr_obj("StorageClass", NULL, "silver", "s", NULL, NULL);
    json_t *pv_b = pv_claimed("pv-b", "s", "ns-b", "c");
    json_t *pv_a2 = pv_claimed("pv-a2", "s", "ns-a", "c2");
    assert_int_equal(dr_prune_consider(p, gold, "StorageClass", false), DR_PRUNE_KEEP);
    assert_int_equal(dr_prune_consider(p, silver, "StorageClass", false), DR_PRUNE_STALE);
    assert_int_equal(dr_prune_consider(p, pv_a2, "PersistentVolume", false), DR_PRUNE_STALE);
    dr_guard_opts o = { .max_delete = -1, .max_delete_ratio = 1.0 };
    assert_null(dr_prune_guard(p, &o));   /* the primary has classes and ns-a volumes */
    assert_int_equal(dr_prune_consider(p, pv_b, "PersistentVolume", false), DR_PRUNE_STALE);
    char *g = dr_prune_guard(p, &o);
    assert_non_null(strstr(g, "the primary has no PersistentVolume in namespace ns-b"));
    free(g);
    dr_prune_free(p);
    /* a primary without classes: the guard says "in scope" */
    json_t *empty = json_array();
    p = dr_prune_new(empty, "s", NULL);
    assert_int_equal(dr_prune_consider(p, silver, "StorageClass", false), DR_PRUNE_STALE);
    g = dr_prune_guard(p, &o);
    assert_non_null(strstr(g, "the primary has no StorageClass in scope while DR holds 1"));
    free(g);
    dr_prune_free(p);
    json_decref(empty);
    json_decref(gold);
    json_decref(silver);
    json_decref(pv_b);
    json_decref(pv_a2);
    json_decref(primary);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_decide),
        cmocka_unit_test(test_evidence),
        cmocka_unit_test(test_guards),
        cmocka_unit_test(test_cluster_scoped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
