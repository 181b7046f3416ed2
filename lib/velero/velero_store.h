/* velero_store.h - Velero's object-storage layout on S3:
 *
 *   <prefix>/backups/<name>/velero-backup.json       the Backup object
 *   <prefix>/backups/<name>/<name>.tar.gz            the resources tarball
 *   <prefix>/backups/<name>/<name>-resource-list.json.gz, -logs.gz, ...
 *
 * The listed prefix is the authority on a backup's name: a name must be a
 * Kubernetes object name (vs_name_ok) and velero-backup.json's metadata.name
 * must equal it, or the backup is refused - a name read from the bucket never
 * becomes another key or a path.
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

/* Whether name is a Kubernetes object name as Velero's Backups and Restores
 * have (a DNS-1123 subdomain: 1-253 of a-z, 0-9, '-', '.', every
 * dot-separated part starting and ending with a letter or digit - so no '/',
 * no "." or "..", no control character).  *why (may be NULL) says what is
 * wrong. */
bool vs_name_ok(const char *name, const char **why);

/* "<prefix>/backups/" with the prefix's slashes normalised.  malloc'd. */
char *vs_backups_root(const char *prefix);

/* "<prefix>/restores/" likewise (see velero_restore.h).  malloc'd. */
char *vs_restores_root(const char *prefix);

/* RFC 3339 ("2024-05-01T10:00:00Z", fractions and offsets accepted) to
 * epoch seconds; false when unparsable.  xtime_parse (lib/base/xtime.h). */
bool vs_parse_time(const char *s, time_t *out);

/* Summary of a velero-backup.json document (new reference):
 * {name, phase, started, completed, expiration, format_version,
 *  storage_location, included_namespaces, errors, warnings, age_seconds}. */
json_t *vs_backup_summary(json_t *backup, const char *fallback_name, time_t now);

/* Whether a phase is acceptable (Completed; PartiallyFailed with accept_partial). */
bool vs_phase_ok(const char *phase, bool accept_partial);

/* Reads <root><name>/velero-backup.json.  S3_NOTFOUND when absent, S3_NOBUCKET
 * when the bucket is; S3_ERR when name is not a valid name (nothing is read)
 * or the document's metadata.name is not name (the error names both). */
int vs_get_backup(s3_client *c, const char *root, const char *name, json_t **out, char **err);

/* Picks the latest acceptable backup under root by completionTimestamp.
 * *considered gets a summary list of every backup looked at (new ref); a
 * prefix that is not a valid name is listed there and never read.
 * Returns 0 with *out (the velero-backup.json, new ref) and *name (its
 * prefix's name, malloc'd) or S3_ERR / S3_NOBUCKET / S3_NOTFOUND (no
 * acceptable backup; *err lists what was found). */
int vs_find_latest(s3_client *c, const char *root, bool accept_partial, time_t now,
                   json_t **out, char **name, json_t **considered, char **err);

typedef struct vs_stream_result {
    long long downloaded;   /* bytes received from S3 */
    int attempts;
    bool dest_written;
} vs_stream_result;

/* Streams <root><name>/<name>.tar.gz through vb_read (name must pass
 * vs_name_ok).  dest_dirfd >= 0: also save the archive as dest_file (one
 * path component) in that directory: written to a new hidden file created
 * with openat(O_CREAT | O_EXCL | O_NOFOLLOW), renamed over dest_file on
 * success, removed on failure - nothing is ever written through a symbolic
 * link or outside the directory.  The download error wins over the parse
 * error it causes. */
int vs_stream_backup(s3_client *c, const char *root, const char *name,
                     int dest_dirfd, const char *dest_file,
                     const vb_limits *lim, const vb_handler *h, void *ud,
                     vb_stats *st, vs_stream_result *res, char **err);

#endif
