/* inventory.h - what is protected on the primary, digested for the playbooks
 * (k8s_dr_clean mode list): the bound claims of the protected namespaces and
 * their volumes, the ready snapshots and their contents, and which volumes
 * the DR cluster already holds a copy of.  Pure functions on jansson values:
 * the module lists, this file selects.
 *
 * Selection rules (the same the roles applied in Jinja before):
 *   claims             PVCs with status.phase Bound and spec.volumeName
 *                      (and, when `names` is given, only those names);
 *   claims_pending     names of the other PVCs (same name filter);
 *   volumes            INV_VOLUMES_BOUND: the PVs the listed claims are bound
 *                      to (name = claim's spec.volumeName, spec.claimRef =
 *                      that claim); INV_VOLUMES_ALL: every PV whose claimRef
 *                      namespace is in scope (a Released volume included:
 *                      the scheduled sync keeps replicating it);
 *   volumes_current    names of selected volumes whose ocpv-dr-managed DR PV
 *                      of the same name was made from this very primary PV
 *                      (dr.ocpv.io/source-uid = the primary PV's uid);
 *   snapshots          VolumeSnapshots with status.readyToUse true and
 *                      status.boundVolumeSnapshotContentName;
 *   snapshot_contents  the ready VolumeSnapshotContents those name.
 * Returned objects are copies without metadata.managedFields (half of a
 * listed object's size, and nothing downstream reads it).
 */
#ifndef OCPVDR_INVENTORY_H
#define OCPVDR_INVENTORY_H

#include <jansson.h>
#include <stdbool.h>

typedef enum { INV_VOLUMES_BOUND = 0, INV_VOLUMES_ALL = 1 } inv_volumes;

typedef struct inv_opts {
    inv_volumes volumes;
    const json_t *names;   /* claim names to keep (array of strings); NULL or [] = all */
} inv_opts;

/* primary: array of the primary's objects in scope (PVC, PV, VS, VSC; others
 * are ignored), each with kind set.  dr: array of DR PersistentVolumes (only
 * the ocpv-dr-managed ones count), or NULL when DR was not read (then
 * volumes_current is absent).  Returns a new object with the keys above and
 * `counts` (per key, numbers).  Never NULL. */
json_t *inv_build(const json_t *primary, const json_t *dr, const inv_opts *o);

/* A copy of obj without metadata.managedFields (new reference). */
json_t *inv_slim(const json_t *obj);

#endif
