/* velero_store.h - Velero's object-storage layout on S3:
 *
 *   <prefix>/backups/<name>/velero-backup.json       the Backup object
 *   <prefix>/backups/<name>/<name>.tar.gz            the resources tarball
 *   <prefix>/backups/<name>/<name>-resource-list.json.gz, -logs.gz, ...
 *
 * Finds a backup (by name, or the latest Completed one by
 * completionTimestamp), summarises its metadata, and streams its tarball into
 * the archive reader through a socket pair fed by a download thread, so that
 * download, gunzip and parsing overlap and nothing but (optionally) the
 * archive itself touches the disk.
 */
#ifndef OCPVDR_VELERO_STORE_H
#define OCPVDR_VELERO_STORE_H

#include "s3.h"
#include "velero_backup.h"

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

/* "<prefix>/backups/" with the prefix's slashes normalised.  malloc'd. */
char *vs_backups_root(const char *prefix);

/* "<prefix>/restores/" likewise (see velero_restore.h).  malloc'd. */
char *vs_restores_root(const char *prefix);

/* RFC 3339 ("2024-05-01T10:00:00Z", fractions and offsets accepted) to
 * epoch seconds; false when unparsable. */
bool vs_parse_time(const char *s, time_t *out);

/* Summary of a velero-backup.json document (new reference):
 * {name, phase, started, completed, expiration, format_version,
 *  storage_location, included_namespaces, errors, warnings, age_seconds}. */
json_t *vs_backup_summary(json_t *backup, const char *fallback_name, time_t now);

/* Whether a phase is acceptable (Completed; PartiallyFailed with accept_partial). */
bool vs_phase_ok(const char *phase, bool accept_partial);

/* Reads <root><name>/velero-backup.json.  S3_NOTFOUND when absent, S3_NOBUCKET
 * when the bucket is. */
int vs_get_backup(s3_client *c, const char *root, const char *name, json_t **out, char **err);

/* Picks the latest acceptable backup under root by completionTimestamp.
 * *considered gets a summary list of every backup looked at (new ref).
 * Returns 0 with *out (the velero-backup.json, new ref) or S3_ERR / S3_NOBUCKET / S3_NOTFOUND
 * (no acceptable backup; *err lists what was found). */
int vs_find_latest(s3_client *c, const char *root, bool accept_partial, time_t now,
                   json_t **out, json_t **considered, char **err);

typedef struct vs_stream_result {
    long long downloaded;   /* bytes received from S3 */
    int attempts;
    bool dest_written;
} vs_stream_result;

/* Streams <root><name>/<name>.tar.gz through vb_read.  dest (may be NULL):
 * also save the archive there (written to dest.part, renamed on success,
 * removed on failure).  The download error wins over the parse error it causes. */
int vs_stream_backup(s3_client *c, const char *root, const char *name, const char *dest,
                     const vb_limits *lim, const vb_handler *h, void *ud,
                     vb_stats *st, vs_stream_result *res, char **err);

#endif
