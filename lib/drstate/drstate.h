/* drstate.h - reads and writes the DR state records of issue #16 on the DR
 * cluster (layer drstate: uses base, k8s, dr).  What the records hold and
 * the monotonic "newer start wins" rules are lib/dr/dr_record.h's (pure);
 * the state computed from them is lib/dr/dr_status.h's.  This file does the
 * I/O: the three DR lists a status needs, the primary's claims, and the
 * conditional writes (merge patch carrying metadata.resourceVersion, field
 * manager "ocpv-dr-state", 409 -> re-read, re-run the pure mutation, retry).
 *
 * Callers: the module dr_state (modes record_*, note_event_read, status,
 * guard) and the status exporter (dsi_read + dsi_read_primary + dsi_status at
 * every scrape).  Errors are never "empty": a failed or malformed list fails
 * the read as a whole (k8s_list refuses an answer that is not a list), so a
 * status is never computed from half the records, and a writer that could
 * not read writes nothing. */
#ifndef OCPVDR_DRSTATE_H
#define OCPVDR_DRSTATE_H

#include "dr_record.h"
#include "dr_status.h"
#include "k8s.h"

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#define DSI_FIELD_MANAGER     "ocpv-dr-state"
#define DSI_STATE_LABEL       "dr.ocpv.io/state"       /* = "namespace" on every record */
#define DSI_STATE_VALUE       "namespace"
#define DSI_NS_LABEL          "dr.ocpv.io/namespace"   /* the protected namespace */
#define DSI_CM_PREFIX         "ns-"                    /* ConfigMap name = ns-<namespace> */
#define DSI_DEFAULT_STATE_NS  "ocpv-dr"
#define DSI_DEFAULT_OADP_NS   "openshift-adp"
#define DSI_MAX_RETRIES       8                        /* 409s retried per write */

/* ---- reading -------------------------------------------------------------- */

typedef struct dsi_scope {
    const char *state_ns;          /* NULL = DSI_DEFAULT_STATE_NS */
    const char *oadp_ns;           /* NULL = DSI_DEFAULT_OADP_NS */
    bool skip_pvs;                 /* do not list the DR PVs (guard: records only) */
    bool skip_backups;             /* do not list the Velero Backups */
} dsi_scope;

typedef struct dsi_snapshot {
    json_t *records;               /* object: namespace -> its ConfigMap (whole object) */
    json_t *pvs;                   /* array: DR PVs labelled dr.ocpv.io/managed-by=ocpv-dr
                                    * (empty array when skip_pvs) */
    json_t *backups;               /* array: velero.io/v1 Backups of oadp_ns; NULL when not
                                    * read (skip_backups, or the kind is not served on DR:
                                    * backups_error says so) */
    char *backups_error;           /* why backups is NULL, or NULL */
    json_t *warnings;              /* array of strings (a record ConfigMap that is not
                                    * ns-<its dr.ocpv.io/namespace label>: ignored) */
    time_t read_at;                /* time(NULL) before the first request */
} dsi_snapshot;

/* Lists, in one k8s_batch (in flight together): the record ConfigMaps
 * (label dr.ocpv.io/state=namespace) in the state namespace, the managed DR
 * PVs, the Velero Backups in the OADP namespace.  0, or -1 with e filled
 * (naming the list) and *out left empty (free it anyway).  A Backup list
 * answered 404 (Velero's CRD not installed on DR) is not an error: backups
 * NULL, backups_error set (the status says backup_not_checked). */
int dsi_read(k8s_client *dr, const dsi_scope *s, dsi_snapshot *out, k8s_error *e);
void dsi_snapshot_free(dsi_snapshot *s);

/* The record ConfigMap of ns (borrowed), or NULL. */
const json_t *dsi_record(const dsi_snapshot *s, const char *ns);
/* The namespaces that have a record, sorted (new array). */
json_t *dsi_record_namespaces(const dsi_snapshot *s);

/* The primary's claims of every namespace: one batch listing the PVCs of each
 * namespace and the PVs, then inv_build (lib/dr/inventory.h, volumes of the
 * bound claims) per namespace.  *inv = object namespace -> inv_build output.
 * 0, or -1 with e (nothing in *inv).  The client's timeout/retries are the
 * caller's (the status uses a short one: the primary may be gone). */
int dsi_read_primary(k8s_client *p, const json_t *namespaces, json_t **inv, k8s_error *e);

/* dst_compute for ns from a snapshot: its record's data, the DR PVs, the
 * Backups; primary = that namespace's inv_build output (or NULL with
 * primary_error).  The result borrows from the snapshot: keep it alive. */
void dsi_status(const dsi_snapshot *s, const char *ns, const json_t *primary,
                const char *primary_error, dst_targets defaults, time_t now, dst_result *out);

/* ---- writing: the namespace record ---------------------------------------- */

/* The pure mutation: the merge patch {"data": {...}} to apply on the record as
 * it is now (cur parsed from cm's data; cm NULL = no record yet), or NULL when
 * nothing changes.  Called again after every 409 with the fresh record. */
typedef json_t *(*dsi_mutate_fn)(void *ud, const drr_ns *cur, const json_t *cm);

typedef struct dsi_update {
    /* in */
    const char *source_cluster;    /* required: a record of another source is a conflict */
    bool dry_run;                  /* read + mutate, write nothing (check mode) */
    long delay_first_write_ms;     /* testing aid: pause between the first read and its
                                    * write (widens the race window); 0 = none */
    /* out */
    bool changed;                  /* the record changed (dry_run: would change) */
    bool created;                  /* ... by creating the ConfigMap */
    int conflicts;                 /* 409s (stale resourceVersion, AlreadyExists) retried */
    json_t *patch;                 /* the data patch written (would be), NULL = none; owned */
} dsi_update;

/* Reads ConfigMap <state_ns>/ns-<ns>, runs fn, writes its patch as a merge
 * patch carrying the read metadata.resourceVersion (field manager
 * ocpv-dr-state).  On 409 re-reads and retries (at most DSI_MAX_RETRIES
 * times, 50-400 ms jitter); an absent record is created (labels, source
 * annotation), AlreadyExists -> re-read and patch.  A record whose
 * dr.ocpv.io/source-cluster differs from u->source_cluster is a conflict
 * (-1, reason "Conflict", nothing written).  0 or -1 with e; free u->patch
 * with dsi_update_clear. */
int dsi_update_ns(k8s_client *dr, const char *state_ns, const char *ns, dsi_mutate_fn fn,
                  void *ud, dsi_update *u, k8s_error *e);
void dsi_update_clear(dsi_update *u);

/* ---- writing: the per-volume records (DR PV annotations) ------------------ */

typedef struct dsi_pv_write {
    /* in */
    const char *pv;                /* DR PV name */
    const json_t *live;            /* the PV as listed (resourceVersion + current record),
                                    * NULL = GET it first */
    drr_sync sync;                 /* the attempt to record (strings borrowed) */
    /* out */
    int rc;                        /* 0 written / nothing newer, -1 failed (error) */
    bool changed;
    int conflicts;                 /* 409s retried */
    json_t *patch;                 /* the annotations patch written (would be), NULL = none */
    char error[1200];
} dsi_pv_write;

/* Records each w[i].sync on its PV: drr_vol_patch on the current record, sent
 * as a merge patch with the PV's resourceVersion (field manager
 * ocpv-dr-state), all first attempts in one k8s_batch; a 409 is retried per
 * PV (re-GET, re-run drr_vol_patch) up to DSI_MAX_RETRIES times.  A PV that
 * is not managed by ocpv-dr, or was recorded from another source cluster
 * (source_cluster non-NULL), fails (rc -1, nothing written on it).  Returns
 * the number of failed entries.  Free with dsi_pv_write_clear. */
size_t dsi_patch_pvs(k8s_client *dr, dsi_pv_write *w, size_t n, const char *source_cluster,
                     bool dry_run, long delay_first_write_ms);
void dsi_pv_write_clear(dsi_pv_write *w, size_t n);

/* The ConfigMap name of ns ("ns-<ns>") into buf; false when it does not fit
 * or ns is not a valid namespace name (DNS label). */
bool dsi_cm_name(const char *ns, char *buf, size_t len);

#endif
