/* velero_restore.h - a Velero Restore's results in object storage:
 *
 *   <prefix>/restores/<name>/restore-<name>-results.gz
 *
 * gzip'd JSON {"errors": R, "warnings": R} where R is Velero's
 * results.Result {"velero": [msg], "cluster": [msg], "namespaces": {ns: [msg]}}
 * (every key omitted when empty).  The Velero server uploads it when the
 * Restore ends; `velero restore describe --details` shows the same data.
 * Reading it needs only the BSL's bucket, not the velero CLI.
 */
#ifndef OCPVDR_VELERO_RESTORE_H
#define OCPVDR_VELERO_RESTORE_H

#include "s3.h"

#include <jansson.h>
#include <stddef.h>

/* The results object's key under root ("<root><name>/restore-<name>-results.gz").  malloc'd. */
char *vs_restore_results_key(const char *root, const char *name);

/* Gunzips a whole gzip stream held in memory into a malloc'd, NUL-terminated
 * buffer.  Output larger than max, bad magic, corrupt or truncated data are
 * errors (*err, malloc'd). */
int vs_gunzip_mem(const void *in, size_t len, size_t max, char **out, size_t *outlen, char **err);

/* Parses the results JSON.  Returns (new ref)
 *   {"restore_results": {"errors": {"velero": [..], "cluster": [..], "namespaces": {ns: [..]}},
 *                        "warnings": {same}},
 *    "restore_error_messages": ["Velero: m", "Cluster: m", "Namespace ns: m", ..],
 *    "restore_warning_messages": [..],
 *    "restore_error_count": N, "restore_warning_count": N}
 * keeping at most max_msgs messages of each kind (in that order, in both the
 * structure and the flat list); the counts are the totals.  NULL with *err
 * when the text is not such a document. */
json_t *vs_restore_results_parse(const char *text, size_t len, size_t max_msgs, char **err);

/* Downloads, gunzips and parses the results of Restore `name` under root
 * (vs_restores_root, velero_store.h).  S3_NOTFOUND when the object does not exist (*err names
 * the key), S3_NOBUCKET when the bucket is missing, S3_ERR on any other failure. */
int vs_get_restore_results(s3_client *c, const char *root, const char *name, size_t max_msgs,
                           json_t **out, char **err);

#endif
