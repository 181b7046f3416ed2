/* dr_record.h - the DR state records (issue #16), parsed and produced.  Pure
 * (jansson + libc): no I/O; the readers/writers (module dr_state, the status
 * exporter) fetch and patch the objects, this file decides what they hold.
 * docs/status.md describes the format; in short:
 *
 * Per volume - annotations on the managed DR PersistentVolume:
 *   dr.ocpv.io/last-sync-start        RFC 3339 UTC (xtime_parse_utc): start of the
 *                                     rsync that last completed OK (data as of)
 *   dr.ocpv.io/last-sync-end          RFC 3339 UTC
 *   dr.ocpv.io/last-sync-bytes        decimal >= 0
 *   dr.ocpv.io/last-sync-source-uid   primary PV uid that was copied
 *   dr.ocpv.io/last-sync-consistency  live | snapshot
 *   dr.ocpv.io/last-sync-by           <kind>/<job>
 *   dr.ocpv.io/last-attempt-start     RFC 3339 UTC: the latest attempt, ok or not
 *   dr.ocpv.io/last-attempt-result    ok | failed
 *   dr.ocpv.io/last-attempt-reason    text (<= DRR_REASON_MAX bytes), "" when ok
 *
 * Per namespace - data keys of ConfigMap <state ns>/ns-<namespace>:
 *   full-sync.{start,end,result,reason,by,volumes,volumes-failed,last-ok-start}
 *   claims.{checked-at,bound,pending}   bound = JSON [{"claim","pv","pv_uid"}],
 *                                       pending = JSON array of claim names
 *   pending.<pv>                        JSON {"source_uid","attempt_start","result","reason"}
 *   backup.{name,started,completed,phase,seen-at,source}
 *   action.{kind,phase,started,finished,by,backup,reason,rto-s}
 *   event.pv-pvc-read-at
 *   target.{rpo-s,rto-s,backup-max-age-s}
 *
 * Parsing never fails as a whole: every malformed field adds one message to
 * `errors` naming the key and the value ("dr.ocpv.io/last-sync-start: not an
 * RFC3339 UTC time: 'yesterday'") and is treated as ABSENT - an unreadable
 * start is never a fresh one.  Unknown keys are ignored (kept by the writers:
 * patches touch only their own keys).
 *
 * Patches are JSON merge patches ({"metadata":{"annotations":{...}}} for a PV,
 * {"data":{...}} for the ConfigMap) holding only the keys that change, or NULL
 * when the input is not newer than what is recorded ("newer start wins": a
 * slow old job never overwrites a newer record).  The writer adds
 * metadata.resourceVersion (optimistic lock) and, on 409, re-reads, re-parses
 * and calls the patch builder again.  Removal of a key is a JSON null. */
#ifndef OCPVDR_DR_RECORD_H
#define OCPVDR_DR_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#define DRR_ANN_SYNC_START       "dr.ocpv.io/last-sync-start"
#define DRR_ANN_SYNC_END         "dr.ocpv.io/last-sync-end"
#define DRR_ANN_SYNC_BYTES       "dr.ocpv.io/last-sync-bytes"
#define DRR_ANN_SYNC_SOURCE_UID  "dr.ocpv.io/last-sync-source-uid"
#define DRR_ANN_SYNC_CONSISTENCY "dr.ocpv.io/last-sync-consistency"
#define DRR_ANN_SYNC_BY          "dr.ocpv.io/last-sync-by"
#define DRR_ANN_ATTEMPT_START    "dr.ocpv.io/last-attempt-start"
#define DRR_ANN_ATTEMPT_RESULT   "dr.ocpv.io/last-attempt-result"
#define DRR_ANN_ATTEMPT_REASON   "dr.ocpv.io/last-attempt-reason"

#define DRR_REASON_MAX 512       /* bytes kept of a reason (cut on a UTF-8 boundary) */

/* ---- per volume ---------------------------------------------------------- */

/* A DR PV's record.  Strings are borrowed from the PV object (keep it alive);
 * `errors` is owned (drr_vol_free). */
typedef struct drr_vol {
    const char *pv;                 /* metadata.name */
    const char *source_uid;         /* dr.ocpv.io/source-uid (apply mark), or NULL */
    bool has_sync;                  /* a valid last-sync-start */
    time_t sync_start, sync_end;    /* sync_end 0 when absent/malformed */
    long long sync_bytes;           /* -1 when absent/malformed */
    const char *sync_source_uid, *sync_consistency, *sync_by;
    bool has_attempt;               /* valid last-attempt-start AND result */
    time_t attempt_start;
    bool attempt_ok;
    const char *attempt_reason;     /* "" when absent */
    json_t *errors;                 /* array of strings, never NULL after parse */
} drr_vol;

/* Parses pv's metadata.annotations into *out (any PV, managed or not; a PV
 * with no record gives has_sync = has_attempt = false and no errors). */
void drr_vol_parse(const json_t *pv, drr_vol *out);
void drr_vol_free(drr_vol *v);

/* One sync attempt of one volume, as the writer learnt it from
 * nfs_rsync_sync's per-volume result. */
typedef struct drr_sync {
    bool ok;
    time_t attempt_start;           /* when the rsync that ran started */
    time_t data_as_of;              /* ok: attempt_start, or the snapshot time */
    time_t end;                     /* ok: when it finished */
    long long bytes;                /* ok: bytes sent, -1 unknown */
    const char *source_uid;         /* primary PV uid */
    const char *consistency;        /* "live" | "snapshot" (NULL: not written) */
    const char *by;                 /* "<kind>/<job>" (NULL: not written) */
    const char *reason;             /* failed: why (already secret-scrubbed) */
} drr_sync;

/* The merge patch recording s on a PV whose current record is cur, or NULL
 * when nothing is newer: the last-sync-* keys only when s->ok and
 * s->data_as_of > cur's valid last-sync-start (or there is none); the
 * last-attempt-* keys only when s->attempt_start is newer than cur's valid
 * last-attempt-start (or there is none; in the same second only a failure
 * replaces a recorded ok).  A malformed recorded value counts as absent
 * (a new record repairs it). */
json_t *drr_vol_patch(const drr_vol *cur, const drr_sync *s);

/* ---- per namespace ------------------------------------------------------- */

typedef enum { DRR_ACT_NONE = 0, DRR_ACT_FAILOVER, DRR_ACT_FAILBACK } drr_action_kind;
typedef enum { DRR_PH_NONE = 0, DRR_PH_RUNNING, DRR_PH_COMPLETED, DRR_PH_FAILED } drr_action_phase;

/* A namespace record.  Strings are borrowed from the ConfigMap data (keep it
 * alive); json_t members and `errors` are owned (drr_ns_free). */
typedef struct drr_ns {
    bool present;                   /* a record was given (data object) */
    struct {
        bool has_start, has_end, has_result, ok, has_last_ok;
        time_t start, end, last_ok_start;
        const char *reason, *by;
        long long volumes, volumes_failed;   /* -1 absent */
    } full_sync;
    struct {
        bool has_checked_at;
        time_t checked_at;
        json_t *bound;              /* array of {claim,pv,pv_uid} (validated), or NULL */
        json_t *pending;            /* array of claim names, or NULL */
    } claims;
    json_t *pending;                /* object pv -> {source_uid, attempt_start (time as number
                                     * of epoch seconds), result "ok"|"failed", reason}; only
                                     * valid entries; never NULL after parse */
    struct {
        const char *name, *phase, *source;
        bool has_started, has_completed, has_seen_at;
        time_t started, completed, seen_at;
    } backup;
    struct {
        drr_action_kind kind;
        drr_action_phase phase;
        bool has_started, has_finished;
        time_t started, finished;
        const char *by, *backup, *reason;
        long long rto_s;            /* -1 absent */
    } action;
    bool has_event_read;
    time_t event_read_at;
    struct {
        bool has_rpo, has_rto, has_backup_max_age;
        double rpo_s, rto_s, backup_max_age_s;
    } target;
    json_t *errors;                 /* array of strings, never NULL after parse */
} drr_ns;

/* Parses ConfigMap .data (an object of strings, or NULL = no record). */
void drr_ns_parse(const json_t *cm_data, drr_ns *out);
void drr_ns_free(drr_ns *r);

/* Merge patches on the ConfigMap ({"data":{...}}), NULL when nothing newer.
 * Combine several into one request with drr_patch_merge. */

typedef struct drr_full_sync {
    time_t start;                   /* listed_at of the primary listing of the run */
    time_t end;
    bool ok;
    const char *reason, *by;
    long long volumes, volumes_failed;
} drr_full_sync;
/* Only when f->start > the recorded full-sync.start; full-sync.last-ok-start
 * moves to f->start when f->ok. */
json_t *drr_ns_patch_full_sync(const drr_ns *cur, const drr_full_sync *f);

/* claims.* when checked_at >= the recorded claims.checked-at.  bound: array of
 * {claim, pv, pv_uid}; pending: array of claim names (both borrowed). */
json_t *drr_ns_patch_claims(const drr_ns *cur, time_t checked_at, const json_t *bound,
                            const json_t *pending);

/* pending.<pv> set (s: a failed first sync, or ok data without a DR PV) when
 * s->attempt_start >= the recorded entry's; NULL s = remove the entry (null)
 * when there is one. */
json_t *drr_ns_patch_pending(const drr_ns *cur, const char *pv, const drr_sync *s);

typedef struct drr_backup {
    const char *name, *phase, *source;   /* source "dr-velero" | "s3" */
    time_t started, completed, seen_at;  /* completed 0: unknown */
} drr_backup;
/* backup.* when b->started is newer than the recorded backup.started (or the
 * same backup seen later: then only backup.seen-at). */
json_t *drr_ns_patch_backup(const drr_ns *cur, const drr_backup *b);

typedef struct drr_action {
    drr_action_kind kind;
    drr_action_phase phase;
    time_t started, finished;       /* finished: completed/failed only */
    const char *by, *backup, *reason;
} drr_action;
/* action.*: a `running` marker when a->started >= the recorded action.started
 * (a new action; replaces finished/rto); `completed`/`failed` when it closes
 * the recorded action (same kind and start) or is newer.  action.rto-s =
 * finished - started on completed. */
json_t *drr_ns_patch_action(const drr_ns *cur, const drr_action *a);

/* event.pv-pvc-read-at = max(recorded, t). */
json_t *drr_ns_patch_event_read(const drr_ns *cur, time_t t);

/* target.* (seconds, > 0) when they differ from the recorded ones. */
json_t *drr_ns_patch_targets(const drr_ns *cur, double rpo_s, double rto_s,
                             double backup_max_age_s);

/* Merges patch (taken over; may be NULL) into *acc (created when NULL):
 * objects merge key by key.  Returns *acc. */
json_t *drr_patch_merge(json_t **acc, json_t *patch);

/* Names for the enums ("failover", "running"...; "" for NONE). */
const char *drr_action_kind_name(drr_action_kind k);
const char *drr_action_phase_name(drr_action_phase p);

#endif
