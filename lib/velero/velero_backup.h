/* velero_backup.h - streaming reader for Velero (OADP) backup tarballs.
 *
 * A Velero backup is `<name>.tar.gz` holding one JSON file per Kubernetes
 * object:
 *
 *   metadata/version                                      "1.1.0"
 *   resources/<resource>[.<group>]/namespaces/<ns>/<name>.json
 *   resources/<resource>[.<group>]/cluster/<name>.json
 *   resources/<gr>/<version>[-preferredversion]/{namespaces/<ns>,cluster}/<name>.json
 *
 * Format 1.1 writes each object twice (the classic path and the
 * `<v>-preferredversion` path) and, with EnableAPIGroupVersions, once more per
 * other served version.  The collector returns each object once, preferred
 * version winning.
 *
 * The reader never writes anything to disk: compressed bytes come from a
 * callback (a file, a pipe fed by the S3 download), are gunzipped with zlib
 * (which checks the CRC and length trailer) and walked with libarchive's tar
 * reader.  Hostile archives: absolute paths, `..` segments, links, devices,
 * non-JSON entries and oversize entries are skipped with a warning; more
 * entries than the limit, corrupt or truncated gzip and broken tar headers are
 * errors, and so is a stream that expands past max_total_bytes.  Memory is
 * one entry buffer (<= max_entry_bytes) plus what the collector keeps (its
 * objects compacted - whitespace outside strings dropped - and capped by
 * vb_filter.max_kept_bytes).
 */
#ifndef OCPVDR_VELERO_BACKUP_H
#define OCPVDR_VELERO_BACKUP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "label_selector.h"   /* vb_selector, for vb_collect_opts.selector */

/* ---------------------------------------------------------------- paths */

typedef enum {
    VB_PATH_ITEM = 1,        /* resources/.../<name>.json */
    VB_PATH_VERSION,         /* metadata/version */
    VB_PATH_DIR_LIKE,        /* resources/... that is not an item (e.g. not .json) */
    VB_PATH_OTHER,           /* outside resources/ and metadata/version */
    VB_PATH_UNSAFE,          /* absolute, or has a ".." segment */
} vb_path_kind;

typedef struct vb_path {
    char resource[254];      /* group-resource: "persistentvolumes", "virtualmachines.kubevirt.io" */
    char version[64];        /* "" (classic dir) or "v1", "v1beta1" */
    bool preferred;          /* the version dir was "<v>-preferredversion" */
    bool cluster;            /* cluster-scoped (…/cluster/…) */
    char ns[254];            /* namespace ("" when cluster-scoped) */
    char name[254];          /* object name (file name without .json) */
    const char *why;         /* VB_PATH_DIR_LIKE / UNSAFE: what is wrong */
} vb_path;

/* Classifies an archive entry path and, for items, fills out. */
vb_path_kind vb_path_parse(const char *path, vb_path *out);

/* Copies s into buf (len > 4) replacing non-printable / non-ASCII bytes with
 * '?' and truncating with "..." - safe to put in JSON output and messages. */
const char *vb_printable(const char *s, char *buf, size_t len);

/* --------------------------------------------------------------- reader */

#define VB_DEFAULT_MAX_ENTRY_BYTES (16ull << 20)
#define VB_DEFAULT_MAX_ENTRIES 2000000ull
#define VB_DEFAULT_MAX_TOTAL_BYTES (16ull << 30)
#define VB_DEFAULT_MAX_KEPT_BYTES (128ull << 20)

typedef struct vb_limits {
    size_t max_entry_bytes;  /* one entry; larger ones are skipped (0 = 16 MiB) */
    size_t max_entries;      /* all tar entries; more is an error (0 = 2,000,000) */
    uint64_t max_total_bytes; /* the whole tar stream after gunzip; more is an
                                error (0 = 16 GiB): a small archive of padding
                                cannot keep the reader busy for hours */
} vb_limits;

typedef enum {
    VB_WARN_UNSAFE_PATH = 0,
    VB_WARN_LINK,
    VB_WARN_SPECIAL_FILE,
    VB_WARN_NOT_JSON_NAME,   /* under resources/ but not <name>.json / unexpected layout */
    VB_WARN_INVALID_JSON,
    VB_WARN_OVERSIZE,
    VB_WARN_BAD_OBJECT,      /* JSON, but not an object / inconsistent */
    VB_WARN_LIMIT_REACHED,   /* a collector table is full */
    VB_WARN__COUNT
} vb_warn_kind;

extern const char *const vb_warn_names[VB_WARN__COUNT];

typedef struct vb_handler {
    /* Whether to read and parse this item (cheap, path only). NULL = all. */
    bool (*want)(void *ud, const vb_path *p);
    /* A parsed item (obj borrowed: json_incref to keep).  Return 0, or -1 to
     * stop the read with *err set (malloc'd). */
    int (*item)(void *ud, const vb_path *p, json_t *obj, char **err);
    /* Same, with the entry's bytes (valid JSON, len bytes, borrowed until the
     * call returns): a handler can keep the text instead of the tree.  When
     * set it is called instead of item. */
    int (*item_raw)(void *ud, const vb_path *p, json_t *obj, const char *raw, size_t len,
                    char **err);
    /* A skipped entry.  entry is printable already. */
    void (*warn)(void *ud, vb_warn_kind kind, const char *entry, const char *msg);
    /* Contents of metadata/version (trimmed, printable). */
    void (*version)(void *ud, const char *format_version);
} vb_handler;

typedef struct vb_stats {
    uint64_t compressed_bytes;     /* read from the source */
    uint64_t tar_bytes;            /* after gunzip */
    uint64_t entries;              /* tar entries seen */
    uint64_t items;                /* resources/ items recognised */
    uint64_t parsed;               /* items read and parsed as JSON */
    uint64_t skipped;              /* entries skipped with a warning */
} vb_stats;

/* Supplies compressed bytes: returns the count, 0 at end of input, or -1
 * with a message in *err (malloc'd). */
typedef ssize_t (*vb_read_fn)(void *ud, void *buf, size_t len, char **err);

/* Reads a whole .tar.gz from rd.  Returns 0, or -1 with *err (malloc'd)
 * naming the problem (and the entry when there is one). */
int vb_read(vb_read_fn rd, void *rd_ud, const vb_limits *lim,
            const vb_handler *h, void *ud, vb_stats *st, char **err);

/* Same, from a file descriptor (read until EOF; not closed). */
int vb_read_fd(int fd, const vb_limits *lim, const vb_handler *h, void *ud,
               vb_stats *st, char **err);

/* Same, from memory (fuzzing, tests). */
int vb_read_mem(const void *data, size_t len, const vb_limits *lim,
                const vb_handler *h, void *ud, vb_stats *st, char **err);

/* Label selectors (vb_selector_*): k8s/label_selector.h, included above. */

/* ------------------------------------------------------------ collector */

/* Which objects to keep and how to report them; the module's semantics:
 *   - namespaces: namespaced objects in these namespaces (empty = all);
 *     PersistentVolumes bound (spec.claimRef) to a PVC in them and
 *     VolumeSnapshotContents bound (spec.volumeSnapshotRef) to a
 *     VolumeSnapshot in them;
 *   - resources: which resources to return (default: PV, PVC, VS, VSC,
 *     VirtualMachine, DataVolume); names, short names and kinds accepted;
 *   - label selector on metadata.labels; a PV / VSC that does not match is
 *     still kept when bound to a PVC / VS that does.
 * The kept objects are compact JSON (whitespace outside strings dropped) with
 * their secret values masked (lib/base/secret_mask.h: Secret data / stringData,
 * cloud-init user and network data); more than max_kept_bytes of them stops
 * the read with an error. */
typedef struct vb_filter {
    const char *const *namespaces;  size_t nnamespaces;
    const char *const *resources;   size_t nresources;   /* 0 = default set */
    const vb_selector *selector;                         /* NULL = everything */
    size_t max_kept_bytes;             /* 0 = VB_DEFAULT_MAX_KEPT_BYTES */
} vb_filter;

typedef struct vb_collector vb_collector;

/* NULL with *err when a resource name is unknown or malformed. */
vb_collector *vb_collector_new(const vb_filter *f, size_t max_warnings, char **err);
void vb_collector_free(vb_collector *c);
/* The handler to pass to vb_read with the collector as ud. */
extern const vb_handler vb_collector_handler;

/* The selected objects as their original JSON text, per output list.
 * Pointers stay valid until the collector is freed. */
typedef struct vb_raw {
    const char *data;
    size_t len;
} vb_raw;
typedef struct vb_raw_list {
    char *name;                  /* "pv_info_list", ... or a group-resource (other_lists) */
    vb_raw *v;
    size_t n, cap;
} vb_raw_list;
typedef struct vb_raw_result {
    vb_raw_list known[6];        /* pv, pvc, vs, vsc, vm, dv _info_list, in that order */
    vb_raw_list *other;          /* other_lists entries */
    size_t nother;
} vb_raw_result;

/* Like vb_collector_result, but the object lists (the *_info_list keys and
 * other_lists) are left out of the returned object and handed back as text
 * in *out (free with vb_raw_result_free): a large result is written without
 * building and serializing a tree of every object. */
json_t *vb_collector_result_raw(vb_collector *c, const vb_stats *st, vb_raw_result *out);
void vb_raw_result_free(vb_raw_result *r);

/* Builds the result (new reference):
 *   { "format_version", "pv_info_list", "pvc_info_list", "vs_info_list",
 *     "vsc_info_list", "vm_info_list", "dv_info_list",
 *     "other_lists": { "<group-resource>": [...] }  (other requested resources),
 *     "counts": { "pv", "pvc", "vs", "vsc", "vm", "dv", "resources": {gr: n},
 *                 "entries", "items", "skipped", "skipped_by_reason": {...},
 *                 "duplicates" },
 *     "warnings": [ "..." ] }
 * The collector is left as it is (vb_collector_result_raw may follow); free
 * it afterwards. */
json_t *vb_collector_result(vb_collector *c, const vb_stats *st);

#endif
