/* longhorn.h - Longhorn (longhorn.io/v1beta2) backup lookup and restore logic.
 *
 * Pure functions on JSON objects (no I/O), used by the longhorn_restore
 * module and unit-tested against real object shapes:
 *
 *   - finding a volume's BackupVolume the way each Longhorn release names it:
 *     >= 1.8 (multiple backup targets) names it "bv-<random>" and records the
 *     volume in spec.volumeName / spec.backupTargetName and in the labels
 *     longhorn.io/backup-volume / longhorn.io/backup-target; older releases
 *     name the CR after the volume;
 *   - validating the Backup CR that BackupVolume.status.lastBackupName names
 *     (state Completed, a url, a size);
 *   - classifying a Volume created with spec.fromBackup: still restoring,
 *     restored, or failed (from status.state, restoreRequired,
 *     restoreInitiated, isStandby, robustness and the Restore condition);
 *   - building the Volume, PersistentVolume and PersistentVolumeClaim;
 *   - matching equality-based label selectors.
 */
#ifndef OCPVDR_LONGHORN_H
#define OCPVDR_LONGHORN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define LH_LABEL_BACKUP_VOLUME "longhorn.io/backup-volume"
#define LH_LABEL_BACKUP_TARGET "longhorn.io/backup-target"
#define LH_CSI_DRIVER "driver.longhorn.io"

/* The volume name a BackupVolume belongs to: spec.volumeName, else the
 * longhorn.io/backup-volume label, else (pre-1.8) metadata.name. */
const char *lh_bv_volume_name(json_t *bv);
/* Its backup target: spec.backupTargetName, else the label, else NULL. */
const char *lh_bv_target_name(json_t *bv);

/* Picks the BackupVolume of `volume` from `items` (a JSON array of
 * BackupVolume objects).  `target` (may be NULL) restricts the match to one
 * backup target.  When several match (one per backup target), the one whose
 * status.lastBackupAt is the most recent wins.  Returns a borrowed object, or
 * NULL when none matches.  *nmatch (may be NULL) receives the match count. */
json_t *lh_find_backup_volume(json_t *items, const char *volume,
                              const char *target, size_t *nmatch);

typedef struct lh_backup_info {
    const char *name;        /* metadata.name (borrowed) */
    const char *url;         /* status.url */
    const char *size;        /* status.volumeSize, bytes as a decimal string */
    const char *target;      /* status.backupTargetName (may be NULL) */
    const char *created_at;  /* status.backupCreatedAt (may be NULL) */
} lh_backup_info;

/* Checks that `backup` can be restored for `volume`: status.state is
 * Completed, status.url is set, status.volumeSize is a positive integer and
 * status.volumeName (when present) is `volume`.  Returns 0 and fills *info
 * (strings borrowed from backup), or -1 with a message in err naming the
 * backup, its state and Longhorn's status.error when it has one. */
int lh_check_backup(json_t *backup, const char *volume, lh_backup_info *info,
                    char *err, size_t errlen);

typedef enum {
    LH_RESTORE_PENDING = 0,  /* Longhorn has not initiated the restore yet */
    LH_RESTORE_RUNNING,      /* restoreInitiated, restoreRequired still true */
    LH_RESTORE_DONE,         /* restored: detached/attached, restoreRequired false */
    LH_RESTORE_FAILED,       /* faulted, or Restore condition reason RestoreFailure */
} lh_restore_state;

/* Classifies a Volume created from a backup; `why` (may be NULL) receives a
 * short description of what Longhorn reports (state, robustness, ...). */
lh_restore_state lh_volume_restore_state(json_t *volume, char *why, size_t whylen);

/* "true", "yes", "on", "1" (any case, surrounding blanks ignored). */
bool lh_flag_true(const char *s);

typedef struct lh_volume_opts {
    const char *name;
    const char *ns;               /* Longhorn namespace */
    const char *from_backup;      /* backup url */
    const char *size;             /* bytes, decimal string */
    long long replicas;
    const char *access_mode;      /* rwo | rwop | rwx */
    const char *backup_name;      /* recorded in an annotation */
} lh_volume_opts;

/* A new Volume object (owned). */
json_t *lh_build_volume(const lh_volume_opts *o);

typedef struct lh_pvc_opts {
    const char *volume;           /* Longhorn volume = PV name = volumeHandle */
    const char *pvc_namespace;
    const char *pvc_name;
    const char *storage_class;
    const char *fs_type;
    const char *size;             /* bytes, decimal string */
    const char *access_mode;      /* Longhorn access mode: rwo | rwop | rwx */
    long long replicas;
} lh_pvc_opts;

/* PersistentVolume / PersistentVolumeClaim objects binding the PVC to the
 * Longhorn volume through the CSI driver (owned). */
json_t *lh_build_pv(const lh_pvc_opts *o);
json_t *lh_build_pvc(const lh_pvc_opts *o);

/* Kubernetes access mode for a Longhorn one ("ReadWriteOnce", ...), NULL if unknown. */
const char *lh_k8s_access_mode(const char *lh_mode);

/* Equality-based label selector ("a=b,c!=d,e,!f"; "==" accepted) matched
 * against a JSON object of labels (may be NULL).  Returns 1 match, 0 no
 * match, -1 when the selector is malformed. */
int lh_selector_match(const char *selector, json_t *labels);

#endif
