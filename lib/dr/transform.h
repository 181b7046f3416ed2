/* transform.h - object transforms that make Kubernetes objects portable to the
 * DR cluster.  Pure functions on jansson values: no I/O, no globals.
 *
 * What "clean" does to an object read from the primary cluster:
 *
 *   metadata  drops resourceVersion, uid, creationTimestamp, generation,
 *             managedFields, selfLink, deletionTimestamp,
 *             deletionGracePeriodSeconds, finalizers (the DR cluster's own
 *             controllers add theirs) and ownerReferences (an owner
 *             reference names the owner's uid, which never exists on DR: the
 *             DR garbage collector would delete the object);
 *             drops cluster-bound annotations (tf_default_drop_annotations)
 *             and any ocpv-dr marks already present (failback);
 *   status    dropped;
 *   PV        persistentVolumeReclaimPolicy forced to Retain; spec.claimRef
 *             reduced to namespace/name (TF_CLAIM_KEEP, so the DR PV binds
 *             only to its own PVC) or removed (TF_CLAIM_DROP);
 *   PVC       spec.volumeName kept, so the claim binds to its DR PV;
 *   VSC       spec.volumeSnapshotRef reduced to apiVersion/kind/namespace/
 *             name, deletionPolicy forced to Retain, a dynamic source
 *             (volumeHandle) turned into a pre-provisioned one
 *             (snapshotHandle from status);
 *   VS        spec.source pointed at the pre-provisioned content
 *             (volumeSnapshotContentName = status.boundVolumeSnapshotContentName).
 *
 * "mark" then labels the object as managed by ocpv-dr and annotates it with
 * the source cluster, source uid, source resourceVersion and the SHA-256 of
 * the cleaned object (computed before the marks are added), so a later run
 * can skip objects whose cleaned content did not change.
 */
#ifndef OCPVDR_TRANSFORM_H
#define OCPVDR_TRANSFORM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The ocpv-dr marks on DR objects. */
#define TF_MANAGED_LABEL        "dr.ocpv.io/managed-by"
#define TF_MANAGED_VALUE        "ocpv-dr"
#define TF_ANN_PREFIX           "dr.ocpv.io/"
#define TF_ANN_SOURCE_CLUSTER   "dr.ocpv.io/source-cluster"
#define TF_ANN_SOURCE_UID       "dr.ocpv.io/source-uid"
#define TF_ANN_SOURCE_RV        "dr.ocpv.io/source-resource-version"
#define TF_ANN_HASH             "dr.ocpv.io/hash"

typedef enum { TF_CLAIM_KEEP = 0, TF_CLAIM_DROP = 1 } tf_claim_ref;

typedef struct tf_opts {
    tf_claim_ref claim_ref;
    /* Annotation patterns (JSON arrays of strings, borrowed, may be NULL).
     * A pattern is an exact key or an fnmatch(3) glob such as "example.com/" followed by "*".
     * Precedence: drop_annotations > keep_annotations > built-in drop list. */
    json_t *keep_annotations;
    json_t *drop_annotations;
} tf_opts;

/* NULL-terminated built-in list of cluster-bound annotation patterns. */
extern const char *const tf_default_drop_annotations[];

/* true when annotation `key` is dropped under `o` (o may be NULL). */
bool tf_annotation_dropped(const char *key, const tf_opts *o);

/* Cleans `obj` in place.  Returns 0, or -1 with a malloc'd message in *err
 * naming the object and the reason (not an object, no kind/apiVersion, no
 * name, a VolumeSnapshot not bound to a content, ...).  On failure obj may
 * be partly cleaned: use tf_cleaned() to keep the input intact. */
int tf_clean(json_t *obj, const tf_opts *o, char **err);

/* Deep copy of obj, cleaned.  NULL with *err on failure. */
json_t *tf_cleaned(const json_t *obj, const tf_opts *o, char **err);

/* SHA-256 (hex) of a cleaned object with any ocpv-dr marks left out. */
void tf_hash(const json_t *cleaned, char out[65]);

/* Adds the management label and the source/hash annotations to a cleaned
 * object.  source_cluster, source_uid, source_rv may be NULL (annotation
 * omitted).  The hash is tf_hash() of the object before marking. */
void tf_mark(json_t *cleaned, const char *source_cluster, const char *source_uid,
             const char *source_rv);

/* Convenience: tf_cleaned() + tf_mark() with the source's own uid and
 * resourceVersion. */
json_t *tf_for_dr(const json_t *src, const tf_opts *o, const char *source_cluster,
                  char **err);

/* true when obj carries the ocpv-dr management label. */
bool tf_is_managed(const json_t *obj);
/* The hash annotation of a (DR) object, or NULL. */
const char *tf_hash_of(const json_t *obj);
/* Any annotation of an object (e.g. TF_ANN_SOURCE_CLUSTER,
 * TF_ANN_SOURCE_UID), or NULL. */
const char *tf_annotation_of(const json_t *obj, const char *key);
/* Whether a (DR) object was recorded from `source_cluster`: its
 * dr.ocpv.io/source-cluster annotation equals it, or both are absent /
 * empty.  Two primaries sharing one DR cluster never touch each other's
 * objects: prune deletes, and apply updates, only objects of its own
 * source. */
bool tf_same_source(const json_t *obj, const char *source_cluster);

/* Lets a desired object take over references that the DR cluster's
 * controllers completed after binding (PV spec.claimRef, VSC
 * spec.volumeSnapshotRef gain uid/resourceVersion): when the live object's
 * reference names the same namespace/name, the desired object uses the live
 * reference verbatim, so server-side apply neither conflicts with the
 * controller nor unbinds.  Call after hashing/marking.  Returns true when
 * something was taken over. */
bool tf_adopt_live_refs(json_t *desired, const json_t *live);

/* Apply order rank: Namespace < classes < PersistentVolume <
 * PersistentVolumeClaim < VolumeSnapshotContent < VolumeSnapshot <
 * DataVolume < other kinds < VirtualMachine.  Deletions go in reverse. */
int tf_rank_kind(const char *kind);
int tf_rank(const json_t *obj);

/* Stable sort of a JSON array of objects into apply order (in place). */
void tf_sort_apply_order(json_t *objects);

/* Objects every cluster creates for itself in every namespace (the
 * kube-root-ca.crt and openshift-service-ca.crt ConfigMaps): never
 * replicated - the DR cluster has its own, owned by its controllers. */
bool tf_cluster_generated(const json_t *obj);

/* Whether a kind is cluster-scoped among the kinds this file knows about
 * (PersistentVolume, VolumeSnapshotContent, StorageClass,
 * VolumeSnapshotClass, Namespace). */
bool tf_kind_cluster_scoped(const char *kind);

/* The namespace an object belongs to for DR scoping: its own namespace, or
 * for a PV its claimRef namespace, for a VSC its volumeSnapshotRef
 * namespace, for a Namespace its name.  NULL when it has none (e.g. an
 * unclaimed PV).  The rule is lib/dr/dr_scope.h's; this is its form for
 * an object of any kind (the forwarder's payload.scopeNamespace). */
const char *tf_scope_namespace(const json_t *obj);

#endif
