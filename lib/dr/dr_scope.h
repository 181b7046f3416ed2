/* dr_scope.h - the one rule for "is this object in the protected
 * namespaces" (the scope of k8s_dr_clean's prune, mirror and list):
 *
 *   namespaced kinds        their metadata.namespace is protected
 *   PersistentVolume        the namespace of its claim (spec.claimRef)
 *   VolumeSnapshotContent   the namespace of its snapshot (spec.volumeSnapshotRef)
 *   Namespace               its own name is protected
 *   other cluster-scoped    (StorageClass, VolumeSnapshotClass, a cluster-
 *   kinds                   scoped custom kind) belong to no namespace:
 *                           in scope as a whole, as apply / mirror replicate
 *                           them whole - prune of such a kind deletes the
 *                           managed DR objects the primary lacks.
 *
 * A PV without a claim, a content without a snapshot reference: in no
 * namespace, so out of scope (never pruned through a namespace). */
#ifndef OCPVDR_DR_SCOPE_H
#define OCPVDR_DR_SCOPE_H

#include <jansson.h>
#include <stdbool.h>

/* The namespace obj counts for (borrowed from obj), or NULL.  namespaced:
 * whether obj's kind is a namespaced resource (k8s_resource.namespaced).
 * *whole (optional) is set true for a kind that belongs to no namespace
 * (in scope as a whole), false otherwise. */
const char *dr_scope_namespace(const json_t *obj, bool namespaced, bool *whole);

/* Whether obj is in scope: namespaces is an array of namespace names. */
bool dr_in_scope(const json_t *obj, bool namespaced, const json_t *namespaces);

#endif
