/* velero_restore.c - reads a Velero Restore's results file from object
 * storage (restore-<name>-results.gz): gunzip in memory (zlib, size-capped),
 * check the {"errors", "warnings"} document's shape, and flatten its messages
 * the way `velero restore describe --details` lists them. */
#include "velero_restore.h"
#include "xstr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define RESULTS_GZ_MAX  (16u * 1024 * 1024)   /* compressed */
#define RESULTS_JSON_MAX (64u * 1024 * 1024)  /* uncompressed */

char *vs_restore_results_key(const char *root, const char *name)
{
    return xfmt("%s%s/restore-%s-results.gz", root, name, name);
}

int vs_gunzip_mem(const void *in, size_t len, size_t max, char **out, size_t *outlen, char **err)
{
    *out = NULL;
    *outlen = 0;
    const unsigned char *b = in;
    if (len < 18 || b[0] != 0x1f || b[1] != 0x8b) {
        xerr_set(err, "not gzip data (bad magic bytes)");
        return -1;
    }
    z_stream z = { 0 };
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        xerr_set(err, "cannot initialise zlib");
        return -1;
    }
    size_t cap = len * 4 < 4096 ? 4096 : len * 4, n = 0;
    char *buf = NULL;
    int rc = Z_OK;
    z.next_in = (unsigned char *)b;
    z.avail_in = (uInt)len;
    while (rc != Z_STREAM_END) {
        if (!buf || n == cap) {
            if (buf)
                cap *= 2;
            if (cap > max + 1)
                cap = max + 1;
            if (n == cap) {
                xerr_set(err, "uncompressed data larger than %zu bytes", max);
                goto fail;
            }
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                xerr_set(err, "out of memory");
                goto fail;
            }
            buf = nb;
        }
        z.next_out = (unsigned char *)buf + n;
        z.avail_out = (uInt)(cap - n);
        rc = inflate(&z, Z_NO_FLUSH);
        n = cap - z.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc == Z_BUF_ERROR && z.avail_in == 0) {
            xerr_set(err, "truncated gzip data");
            goto fail;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            xerr_set(err, "corrupt gzip data: %s", z.msg ? z.msg : zError(rc));
            goto fail;
        }
    }
    if (n > max) {
        xerr_set(err, "uncompressed data larger than %zu bytes", max);
        goto fail;
    }
    inflateEnd(&z);
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
fail:
    inflateEnd(&z);
    free(buf);
    return -1;
}

/* ------------------------------------------------------------ parsing */
typedef struct kind_acc {
    size_t total, kept, max;
    json_t *flat;   /* "Velero: m", ... */
} kind_acc;

/* Copies a message list (absent/null = empty) into dst, up to the cap. */
static int take_msgs(json_t *list, const char *what, const char *label, json_t *dst, kind_acc *k,
                     char **err)
{
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list)) {
        xerr_set(err, "%s is not a list of messages", what);
        return -1;
    }
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        if (!json_is_string(m)) {
            xerr_set(err, "%s[%zu] is not a string", what, i);
            return -1;
        }
        k->total++;
        if (k->kept >= k->max)
            continue;
        k->kept++;
        json_array_append(dst, m);
        char *line = xfmt("%s: %s", label, json_string_value(m));
        if (!line)
            abort();
        json_array_append_new(k->flat, json_string(line));
        free(line);
    }
    return 0;
}

/* One Result ({velero, cluster, namespaces}) into its normalised form. */
static json_t *take_result(json_t *r, const char *kind, kind_acc *k, char **err)
{
    json_t *out = json_pack("{s:[], s:[], s:{}}", "velero", "cluster", "namespaces");
    if (!out)
        abort();
    if (!r || json_is_null(r))
        return out;
    char what[600];
    if (!json_is_object(r)) {
        xerr_set(err, "'%s' is not an object", kind);
        goto fail;
    }
    snprintf(what, sizeof what, "%s.velero", kind);
    if (take_msgs(json_object_get(r, "velero"), what, "Velero",
                  json_object_get(out, "velero"), k, err) != 0)
        goto fail;
    snprintf(what, sizeof what, "%s.cluster", kind);
    if (take_msgs(json_object_get(r, "cluster"), what, "Cluster",
                  json_object_get(out, "cluster"), k, err) != 0)
        goto fail;
    json_t *nss = json_object_get(r, "namespaces");
    if (nss && !json_is_null(nss) && !json_is_object(nss)) {
        xerr_set(err, "%s.namespaces is not an object", kind);
        goto fail;
    }
    const char *ns;
    json_t *list;
    json_object_foreach(nss, ns, list) {
        json_t *dst = json_array();
        char *label = xfmt("Namespace %s", ns);
        if (!dst || !label)
            abort();
        snprintf(what, sizeof what, "%s.namespaces.%.200s", kind, ns);
        int rc = take_msgs(list, what, label, dst, k, err);
        free(label);
        if (rc != 0) {
            json_decref(dst);
            goto fail;
        }
        if (json_array_size(dst) > 0)
            json_object_set_new(json_object_get(out, "namespaces"), ns, dst);
        else
            json_decref(dst);
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* The Warnings:/Errors: sections as `velero restore describe --details`
 * prints them: a heading, "  <message>" per kept message, and
 * "  ... N more" when the cap left some out; a kind without messages has
 * no section.  What the failover prints and reports (restore_details). */
static void add_section(json_t *lines, const char *heading, const kind_acc *k)
{
    if (json_array_size(k->flat) == 0)
        return;
    json_array_append_new(lines, json_string(heading));
    size_t i;
    json_t *m;
    json_array_foreach(k->flat, i, m) {
        char *line = NULL;
        if (asprintf(&line, "  %s", json_string_value(m)) < 0)
            abort();
        json_array_append_new(lines, json_string(line));
        free(line);
    }
    if (k->total > k->kept) {
        char *line = NULL;
        if (asprintf(&line, "  ... %zu more", k->total - k->kept) < 0)
            abort();
        json_array_append_new(lines, json_string(line));
        free(line);
    }
}

json_t *vs_restore_results_parse(const char *text, size_t len, size_t max_msgs, char **err)
{
    json_error_t je;
    json_t *doc = json_loadb(text, len, 0, &je);
    if (!doc || !json_is_object(doc)) {
        if (doc)
            xerr_set(err, "not a Velero restore results document (not a JSON object)");
        else
            xerr_set(err, "not a Velero restore results document (line %d: %s)", je.line, je.text);
        json_decref(doc);
        return NULL;
    }
    kind_acc e = { .max = max_msgs, .flat = json_array() };
    kind_acc w = { .max = max_msgs, .flat = json_array() };
    json_t *errs = take_result(json_object_get(doc, "errors"), "errors", &e, err);
    json_t *warns = errs ? take_result(json_object_get(doc, "warnings"), "warnings", &w, err) : NULL;
    json_decref(doc);
    if (!errs || !warns) {
        json_decref(errs);
        json_decref(e.flat);
        json_decref(w.flat);
        /* formatted before the old message is freed, so it may quote it */
        xerr_set(err, "not a Velero restore results document: %s", *err ? *err : "bad shape");
        return NULL;
    }
    json_t *details = json_array();
    if (!details)
        abort();
    add_section(details, "Warnings:", &w);
    add_section(details, "Errors:", &e);
    return json_pack("{s:{s:o, s:o}, s:o, s:o, s:I, s:I, s:o}",
                     "restore_results", "errors", errs, "warnings", warns,
                     "restore_error_messages", e.flat, "restore_warning_messages", w.flat,
                     "restore_error_count", (json_int_t)e.total,
                     "restore_warning_count", (json_int_t)w.total,
                     "restore_details", details);
}

int vs_get_restore_results(s3_client *c, const char *root, const char *name, size_t max_msgs,
                           json_t **out, char **err)
{
    *out = NULL;
    char *key = vs_restore_results_key(root, name);
    if (!key)
        return S3_ERR;
    char *gz = NULL, *text = NULL, *where = s3_display(c, key);
    size_t gzlen = 0, tlen = 0;
    int rc = s3_get_mem(c, key, RESULTS_GZ_MAX, &gz, &gzlen, err);
    if (rc == S3_NOTFOUND) {
        xerr_set(err, "results of Restore '%s' not found: %s does not exist (no Restore of that "
                 "name has finished with this BackupStorageLocation)", name, where);
    } else if (rc == 0) {
        char *why = NULL;
        if (vs_gunzip_mem(gz, gzlen, RESULTS_JSON_MAX, &text, &tlen, &why) != 0 ||
            !(*out = vs_restore_results_parse(text, tlen, max_msgs, &why))) {
            xerr_set(err, "%s: %s", where, why ? why : "unreadable");
            rc = S3_ERR;
        }
        free(why);
    }
    free(where);
    free(text);
    free(gz);
    free(key);
    return rc;
}
