/* dr_status.h - the protection state of one namespace, computed at read time
 * from the DR records (dr_record.h), the DR PVs, optionally the primary's
 * inventory, the Velero backups, the targets and `now` (issue #16).  Pure
 * (jansson + libc): the module dr_state (mode status) and the status
 * exporter (at every scrape, now = time(NULL)) call the same function, so
 * they cannot disagree.  Nothing stores a verdict: a stale success turns
 * Degraded purely because `now` moved.  docs/status.md has the rules. */
#ifndef OCPVDR_DR_STATUS_H
#define OCPVDR_DR_STATUS_H

#include "dr_record.h"

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

typedef enum {
    DST_PROTECTED = 0, DST_DEGRADED, DST_UNPROTECTED, DST_FAILING_OVER, DST_FAILED_OVER,
    DST_FAILING_BACK, DST_N_STATES
} dst_state;

/* Reason codes, fixed order (the exporter emits every one as a 0/1 series). */
typedef enum {
    DST_R_FAILOVER_IN_PROGRESS = 0, DST_R_FAILOVER_FAILED, DST_R_FAILED_OVER,
    DST_R_FAILBACK_IN_PROGRESS, DST_R_FAILBACK_FAILED, DST_R_AWAITING_FIRST_SYNC_AFTER_FAILBACK,
    DST_R_NEVER_SYNCED, DST_R_CLAIM_WITHOUT_DR_COPY, DST_R_NO_FULL_SYNC, DST_R_NO_BACKUP,
    DST_R_VOLUME_SYNC_FAILED, DST_R_VOLUME_SYNC_UNRECORDED, DST_R_FULL_SYNC_FAILED,
    DST_R_RPO_ABOVE_TARGET, DST_R_BACKUP_TOO_OLD, DST_R_CLOCK_SKEW, DST_R_RECORD_MALFORMED,
    DST_R_PRIMARY_NOT_CHECKED, DST_R_BACKUP_NOT_CHECKED, DST_N_REASONS
} dst_reason_code;

typedef enum {
    DST_VOL_OK = 0, DST_VOL_FAILING, DST_VOL_MISSING, DST_VOL_STALE_SOURCE, DST_VOL_UNRECORDED,
    DST_N_VOL_CLASSES
} dst_vol_class;

/* State names ("Protected"...), reason codes ("rpo_above_target"...) and volume
 * classes ("ok"...), indexed by the enums above. */
extern const char *const dst_states[DST_N_STATES];
extern const char *const dst_reason_codes[DST_N_REASONS];
extern const char *const dst_vol_classes[DST_N_VOL_CLASSES];

#define DST_CLOCK_SKEW_S 120   /* a recorded start further in the future is clock skew */

typedef struct dst_targets { double rpo_s, rto_s, backup_max_age_s; } dst_targets;

typedef struct dst_input {
    const char *ns;
    const json_t *record;         /* ConfigMap .data, or NULL (no record) */
    const json_t *dr_pvs;         /* DR PVs (only ocpv-dr-managed ones of ns are used), or NULL */
    const json_t *primary;        /* inv_build() output for ns, or NULL = primary not checked */
    const char *primary_error;    /* why not checked (shown), or NULL */
    const json_t *backups;        /* velero.io/v1 Backup objects, or NULL = not read */
    dst_targets defaults;         /* used where the record has no target.* */
    time_t now;
} dst_input;

typedef struct dst_reason {
    dst_reason_code code;
    char *message;                /* human text naming claims/volumes/fields */
} dst_reason;

typedef struct dst_volume {
    char *pv, *claim;             /* claim NULL when not known */
    dst_vol_class cls;
    bool has_start;               /* last good data start (ok/failing) */
    time_t last_sync_start;
    double age_s;                 /* now - last_sync_start; INFINITY without */
    long long bytes;              /* -1 unknown */
    bool has_attempt;
    time_t attempt_start;
    bool attempt_ok;
    char *attempt_reason;
} dst_volume;

typedef struct dst_result {
    char *ns;
    dst_state state;
    dst_reason *reasons;
    size_t n_reasons;
    bool active[DST_N_REASONS];   /* reason code -> present */
    double rpo_s;                 /* INFINITY when a volume has no valid copy, 0 with no volumes */
    dst_targets targets;
    const char *rpo_target_source, *rto_target_source, *backup_max_age_source; /* "record"|"default" */
    bool rpo_met;
    bool primary_checked;
    char *primary_error;
    size_t claims_bound;
    size_t claims_without_dr_copy;
    bool has_backup;
    char *backup_name, *backup_source;   /* source: "dr-velero" (live list) | the record's */
    time_t backup_started, backup_completed;
    double backup_age_s;          /* INFINITY without a backup */
    dst_volume *vols;
    size_t n_vols;
    drr_ns rec;                   /* the parsed record (full_sync, action, ... for reports);
                                   * its strings borrow from in->record: keep that alive
                                   * while the result is used */
} dst_result;

/* Computes the state of in->ns.  Never fails: bad input is a reason.  The
 * result owns its strings except out->rec's (see above); free it with
 * dst_result_free.  Typical use: dr_state mode=status per namespace, then
 * dst_to_json; the exporter per namespace at every scrape with now =
 * time(NULL) over its cached records (nothing latched between scrapes). */
void dst_compute(const dst_input *in, dst_result *out);
void dst_result_free(dst_result *r);

/* The result as JSON (new reference, never NULL): {namespace, state, reasons:
 * [{code, message}], rpo_s (null = +Inf), rpo_target_s, rpo_target_source, rpo_met,
 * rto_target_s, last_rto_s, rto_met, backup: {name, started, completed, age_s,
 * max_age_s, source} | null, full_sync: {...} | null, action: {...} | null,
 * primary_checked, primary_error, claims: {bound, without_dr_copy: [claims]},
 * volumes: [{pv, claim, class, last_sync_start, age_s, bytes, last_attempt:
 * {start, result, reason}}], record_errors: [..]}.  Times as RFC 3339 UTC. */
json_t *dst_to_json(const dst_result *r);

#endif
