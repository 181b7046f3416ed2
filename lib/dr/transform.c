/* transform.c - pure DR object transforms (see transform.h): clean metadata,
 * kind-specific rewrites (PV, PVC, VolumeSnapshot, VolumeSnapshotContent),
 * ocpv-dr marks and hashing, apply-order ranking. */
#include "transform.h"
#include "dr_scope.h"

#include "jsonx.h"
#include "xstr.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const tf_default_drop_annotations[] = {
    "kubectl.kubernetes.io/last-applied-configuration",
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "pv.kubernetes.io/migrated-to",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/selected-node",
    "volume.kubernetes.io/storage-resizer",
    "snapshot.storage.kubernetes.io/volumesnapshot-being-created",
    "snapshot.storage.kubernetes.io/volumesnapshot-being-deleted",
    "kubevirt.io/latest-observed-api-version",
    "kubevirt.io/storage-observed-api-version",
    "deployment.kubernetes.io/revision",
    TF_ANN_PREFIX "*",
    NULL,
};

static const char *const drop_metadata[] = {
    "resourceVersion", "uid", "creationTimestamp", "generation", "managedFields",
    "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers",
    "ownerReferences", NULL,
};

static bool matches_any(json_t *patterns, const char *key)
{
    size_t i;
    json_t *p;
    json_array_foreach(patterns, i, p) {
        const char *s = json_string_value(p);
        if (s && (strcmp(s, key) == 0 || fnmatch(s, key, 0) == 0))
            return true;
    }
    return false;
}

bool tf_annotation_dropped(const char *key, const tf_opts *o)
{
    if (o && matches_any(o->drop_annotations, key))
        return true;
    if (o && matches_any(o->keep_annotations, key))
        return strncmp(key, TF_ANN_PREFIX, strlen(TF_ANN_PREFIX)) == 0; /* marks never kept */
    for (const char *const *p = tf_default_drop_annotations; *p; p++)
        if (strcmp(*p, key) == 0 || fnmatch(*p, key, 0) == 0)
            return true;
    return false;
}

static int fail(char **err, const json_t *obj, const char *msg)
{
    char ref[320];
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    jx_ref((json_t *)obj, ref, sizeof ref);
    xerr_set(err, "%s %s: %s", kind && *kind ? kind : "object", ref, msg);
    return -1;
}

/* Keeps only the listed keys of an object. */
static void keep_only(json_t *o, const char *const *keys)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(o, tmp, k, v) {
        bool keep = false;
        for (const char *const *p = keys; *p; p++)
            keep = keep || strcmp(*p, k) == 0;
        if (!keep)
            json_object_del(o, k);
    }
}

/* Removes from metadata md our managed-by label and annotations: those that
 * must not travel (tf_annotation_dropped(k, o)) or, with only_ours, just our
 * own TF_ANN_PREFIX marks; drops the maps when they end up empty. */
static void strip_marks(json_t *md, bool only_ours, const tf_opts *o)
{
    json_t *ann = json_object_get(md, "annotations");
    if (json_is_object(ann)) {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(ann, tmp, k, v)
            if (only_ours ? strncmp(k, TF_ANN_PREFIX, strlen(TF_ANN_PREFIX)) == 0
                          : tf_annotation_dropped(k, o))
                json_object_del(ann, k);
        if (json_object_size(ann) == 0)
            json_object_del(md, "annotations");
    }
    json_t *labels = json_object_get(md, "labels");
    if (json_is_object(labels)) {
        json_object_del(labels, TF_MANAGED_LABEL);
        if (json_object_size(labels) == 0)
            json_object_del(md, "labels");
    }
}

static void clean_metadata(json_t *md, const tf_opts *o)
{
    for (const char *const *p = drop_metadata; *p; p++)
        json_object_del(md, *p);
    strip_marks(md, false, o);
}

static int clean_pv(json_t *obj, json_t *spec, const tf_opts *o, char **err)
{
    json_object_set_new(spec, "persistentVolumeReclaimPolicy", json_string("Retain"));
    json_t *ref = json_object_get(spec, "claimRef");
    if (!ref)
        return 0;
    if (o && o->claim_ref == TF_CLAIM_DROP) {
        json_object_del(spec, "claimRef");
        return 0;
    }
    if (!json_is_object(ref) || !jx_str(ref, "name") || !jx_str(ref, "namespace"))
        return fail(err, obj, "spec.claimRef must name the claim's namespace and name");
    static const char *const keep[] = { "namespace", "name", NULL };
    keep_only(ref, keep);
    return 0;
}

static int clean_vsc(json_t *obj, json_t *spec, json_t *status, char **err)
{
    json_object_set_new(spec, "deletionPolicy", json_string("Retain"));
    json_t *ref = json_object_get(spec, "volumeSnapshotRef");
    if (!json_is_object(ref) || !jx_str(ref, "name") || !jx_str(ref, "namespace"))
        return fail(err, obj, "spec.volumeSnapshotRef must name the snapshot's namespace and name");
    static const char *const keep[] = { "apiVersion", "kind", "namespace", "name", NULL };
    keep_only(ref, keep);
    json_t *src = json_object_get(spec, "source");
    if (!json_is_object(src))
        return fail(err, obj, "spec.source is missing");
    if (jx_str(src, "snapshotHandle"))
        return 0;
    /* Dynamically provisioned on the primary: on DR it is pre-provisioned,
     * identified by the snapshot handle the driver reported. */
    const char *handle = jx_str(status, "snapshotHandle");
    if (!handle)
        return fail(err, obj, "dynamic content without status.snapshotHandle: "
                              "the snapshot is not cut yet, it cannot be pre-provisioned on DR");
    json_object_set_new(spec, "source", json_pack("{ss}", "snapshotHandle", handle));
    return 0;
}

static int clean_vs(json_t *obj, json_t *spec, json_t *status, char **err)
{
    json_t *src = json_object_get(spec, "source");
    if (!json_is_object(src))
        return fail(err, obj, "spec.source is missing");
    if (jx_str(src, "volumeSnapshotContentName")) {
        json_object_del(src, "persistentVolumeClaimName");
        return 0;
    }
    const char *content = jx_str(status, "boundVolumeSnapshotContentName");
    if (!content)
        return fail(err, obj, "not bound to a VolumeSnapshotContent yet "
                              "(status.boundVolumeSnapshotContentName missing)");
    json_object_set_new(spec, "source",
                        json_pack("{ss}", "volumeSnapshotContentName", content));
    return 0;
}

int tf_clean(json_t *obj, const tf_opts *o, char **err)
{
    if (err)
        *err = NULL;
    if (!json_is_object(obj)) {
        if (err)
            *err = strdup("object: not a JSON object");
        return -1;
    }
    const char *kind = jx_str(obj, "kind");
    if (!kind || !*kind)
        return fail(err, obj, "kind is missing");
    if (!jx_str(obj, "apiVersion"))
        return fail(err, obj, "apiVersion is missing");
    json_t *md = json_object_get(obj, "metadata");
    const char *name = jx_str(md, "name");
    if (!json_is_object(md) || !name || !*name)
        return fail(err, obj, "metadata.name is missing");
    if (!tf_kind_cluster_scoped(kind) && json_is_string(json_object_get(md, "namespace"))
        && !*jx_str(md, "namespace"))
        json_object_del(md, "namespace");
    if (tf_kind_cluster_scoped(kind))
        json_object_del(md, "namespace");
    clean_metadata(md, o);

    json_t *status = json_incref(json_object_get(obj, "status"));
    json_object_del(obj, "status");
    json_t *spec = json_object_get(obj, "spec");
    int rc = 0;
    bool needs_spec = strcmp(kind, "PersistentVolume") == 0
        || strcmp(kind, "VolumeSnapshotContent") == 0 || strcmp(kind, "VolumeSnapshot") == 0;
    if (needs_spec && !json_is_object(spec))
        rc = fail(err, obj, "spec is missing");
    else if (strcmp(kind, "PersistentVolume") == 0)
        rc = clean_pv(obj, spec, o, err);
    else if (strcmp(kind, "VolumeSnapshotContent") == 0)
        rc = clean_vsc(obj, spec, status, err);
    else if (strcmp(kind, "VolumeSnapshot") == 0)
        rc = clean_vs(obj, spec, status, err);
    json_decref(status);
    return rc;
}

json_t *tf_cleaned(const json_t *obj, const tf_opts *o, char **err)
{
    json_t *c = json_deep_copy(obj);
    if (!c) {
        if (err)
            *err = strdup("object: out of memory copying");
        return NULL;
    }
    if (tf_clean(c, o, err) != 0) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static bool has_marks(const json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata");
    if (json_object_get(json_object_get(md, "labels"), TF_MANAGED_LABEL))
        return true;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(md, "annotations"), k, v)
        if (strncmp(k, TF_ANN_PREFIX, strlen(TF_ANN_PREFIX)) == 0)
            return true;
    return false;
}

void tf_hash(const json_t *cleaned, char out[65])
{
    if (!has_marks(cleaned)) {   /* the common case: no copy needed */
        jx_sha256(cleaned, out);
        return;
    }
    json_t *c = json_deep_copy(cleaned);
    strip_marks(json_object_get(c, "metadata"), true, NULL);
    jx_sha256(c, out);
    json_decref(c);
}

static void set_ann(json_t *ann, const char *key, const char *value)
{
    if (value)
        json_object_set_new(ann, key, json_string(value));
}

void tf_mark(json_t *cleaned, const char *source_cluster, const char *source_uid,
             const char *source_rv)
{
    char hash[65];
    tf_hash(cleaned, hash);
    json_t *md = json_object_get(cleaned, "metadata");
    if (!json_is_object(md))
        return;
    json_t *labels = json_object_get(md, "labels");
    if (!json_is_object(labels)) {
        labels = json_object();
        json_object_set_new(md, "labels", labels);
    }
    json_object_set_new(labels, TF_MANAGED_LABEL, json_string(TF_MANAGED_VALUE));
    json_t *ann = json_object_get(md, "annotations");
    if (!json_is_object(ann)) {
        ann = json_object();
        json_object_set_new(md, "annotations", ann);
    }
    set_ann(ann, TF_ANN_SOURCE_CLUSTER, source_cluster);
    set_ann(ann, TF_ANN_SOURCE_UID, source_uid);
    set_ann(ann, TF_ANN_SOURCE_RV, source_rv);
    set_ann(ann, TF_ANN_HASH, hash);
}

json_t *tf_for_dr(const json_t *src, const tf_opts *o, const char *source_cluster, char **err)
{
    json_t *c = tf_cleaned(src, o, err);
    if (c)
        tf_mark(c, source_cluster, jx_str((json_t *)src, "metadata.uid"),
                jx_str((json_t *)src, "metadata.resourceVersion"));
    return c;
}

bool tf_is_managed(const json_t *obj)
{
    json_t *labels = jx_get((json_t *)obj, "metadata.labels");
    const char *v = json_string_value(json_object_get(labels, TF_MANAGED_LABEL));
    return v && strcmp(v, TF_MANAGED_VALUE) == 0;
}

const char *tf_hash_of(const json_t *obj)
{
    json_t *ann = jx_get((json_t *)obj, "metadata.annotations");
    return json_string_value(json_object_get(ann, TF_ANN_HASH));
}

const char *tf_annotation_of(const json_t *obj, const char *key)
{
    json_t *ann = jx_get((json_t *)obj, "metadata.annotations");
    return json_string_value(json_object_get(ann, key));
}

bool tf_same_source(const json_t *obj, const char *source_cluster)
{
    const char *have = tf_annotation_of(obj, TF_ANN_SOURCE_CLUSTER);
    if (!have || !*have)
        have = NULL;
    if (source_cluster && !*source_cluster)
        source_cluster = NULL;
    return have ? source_cluster && strcmp(have, source_cluster) == 0 : !source_cluster;
}

static bool adopt_ref(json_t *desired, const json_t *live, const char *path)
{
    json_t *d = jx_get(desired, path), *l = jx_get((json_t *)live, path);
    if (!json_is_object(d) || !json_is_object(l))
        return false;
    const char *dn = jx_str(d, "name"), *dns = jx_str(d, "namespace");
    const char *ln = jx_str(l, "name"), *lns = jx_str(l, "namespace");
    if (!dn || !dns || !ln || !lns || strcmp(dn, ln) != 0 || strcmp(dns, lns) != 0)
        return false;
    if (json_equal(d, l))
        return false;
    jx_set(desired, path, json_deep_copy(l));
    return true;
}

bool tf_adopt_live_refs(json_t *desired, const json_t *live)
{
    const char *kind = jx_str(desired, "kind");
    if (!kind || !live)
        return false;
    if (strcmp(kind, "PersistentVolume") == 0)
        return adopt_ref(desired, live, "spec.claimRef");
    if (strcmp(kind, "VolumeSnapshotContent") == 0)
        return adopt_ref(desired, live, "spec.volumeSnapshotRef");
    return false;
}

int tf_rank_kind(const char *kind)
{
    static const struct { const char *kind; int rank; } ranks[] = {
        { "Namespace", 0 }, { "StorageClass", 10 }, { "VolumeSnapshotClass", 10 },
        { "PersistentVolume", 20 }, { "PersistentVolumeClaim", 30 },
        { "VolumeSnapshotContent", 40 }, { "VolumeSnapshot", 50 },
        { "DataVolume", 60 }, { "VirtualMachine", 90 },
    };
    for (size_t i = 0; kind && i < sizeof ranks / sizeof ranks[0]; i++)
        if (strcmp(ranks[i].kind, kind) == 0)
            return ranks[i].rank;
    return 70;
}

int tf_rank(const json_t *obj)
{
    return tf_rank_kind(jx_str((json_t *)obj, "kind"));
}

void tf_sort_apply_order(json_t *objects)
{
    size_t n = json_array_size(objects);
    if (n < 2)
        return;
    json_t **v = malloc(n * sizeof *v);
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(objects, i));
    /* insertion sort by rank is stable; merge by buckets keeps it O(n * ranks) */
    size_t out = 0;
    json_array_clear(objects);
    for (int rank = 0; rank <= 100 && out < n; rank++)
        for (size_t i = 0; i < n; i++)
            if (v[i] && tf_rank(v[i]) == rank) {
                json_array_append(objects, v[i]);
                json_decref(v[i]);
                v[i] = NULL;
                out++;
            }
    for (size_t i = 0; i < n; i++)   /* ranks outside 0..100 (none today) keep input order */
        if (v[i]) {
            json_array_append_new(objects, v[i]);
        }
    free(v);
}

bool tf_cluster_generated(const json_t *obj)
{
    static const char *const cms[] = { "kube-root-ca.crt", "openshift-service-ca.crt", NULL };
    const char *kind = jx_str((json_t *)obj, "kind");
    const char *name = jx_str((json_t *)obj, "metadata.name");
    if (!kind || !name || strcmp(kind, "ConfigMap") != 0)
        return false;
    for (const char *const *p = cms; *p; p++)
        if (strcmp(*p, name) == 0)
            return true;
    return false;
}

bool tf_kind_cluster_scoped(const char *kind)
{
    static const char *const cs[] = { "PersistentVolume", "VolumeSnapshotContent",
        "StorageClass", "VolumeSnapshotClass", "Namespace", NULL };
    for (const char *const *p = cs; kind && *p; p++)
        if (strcmp(*p, kind) == 0)
            return true;
    return false;
}

/* The rule itself is lib/dr/dr_scope.c's (one home): a PV / VSC by its
 * reference, a Namespace by its name; any other object by its own
 * metadata.namespace (NULL for other cluster-scoped kinds). */
const char *tf_scope_namespace(const json_t *obj)
{
    bool whole;
    const char *ns = dr_scope_namespace(obj, false, &whole);
    return whole ? jx_str((json_t *)obj, "metadata.namespace") : ns;
}
