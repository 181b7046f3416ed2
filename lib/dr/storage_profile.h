/* storage_profile.h - where an NFS-backed PV's data lives, on the primary and
 * on the DR storage host, and what the PV looks like on DR.
 *
 * A storage profile (one per storageClassName, from the playbook's
 * `storage_profiles` dict) says how PVs of that class address their data and
 * how the primary export maps to the DR export:
 *
 *   type            nfs-subdir | nfs-dynamic | nfs-csi (default: the class
 *                   name when it is one of these)
 *   primary_server  NFS server named in primary PVs (checked when given)
 *   dr_server       NFS server written into DR PVs (required)
 *   primary_export  export path as PVs name it, e.g. /exports (required)
 *   dr_export       DR export path as DR PVs will name it (required)
 *   primary_root    directory of primary_export on the primary storage host
 *                   (default: primary_export)
 *   dr_root         directory of dr_export on the DR storage host
 *                   (default: dr_export)
 *   path_pattern    nfs-subdir only: the provisioner's pathPattern, default
 *                   ${namespace}-${pvcName}-${pvName}; "" disables the check
 *   path_depth      how many directory levels a volume directory lies below
 *                   the export (1: <export>/<dir>); a volume elsewhere is
 *                   refused.  Default: the path_pattern's depth for
 *                   nfs-subdir, any depth otherwise
 *
 * Kinds:
 *   nfs-subdir   nfs-subdir-external-provisioner: spec.nfs.server/path, path =
 *                <export>/<pattern expansion>; the PV's path must agree with
 *                the pattern computed from its claimRef.
 *   nfs-dynamic  any PV with spec.nfs.server/path under the export.
 *   nfs-csi      csi-driver-nfs: spec.csi.volumeAttributes.server/share/subdir
 *                and volumeHandle "server#share#subdir#..." (share under the
 *                export; subdir optional).
 *
 * Path safety: every path is normalized lexically (duplicate '/' and '.'
 * dropped), '..' components and characters outside [A-Za-z0-9._+@=,:~-] are
 * refused, the volume directory must be strictly inside the export root
 * (never the root itself) and follow the profile's layout (path_pattern,
 * path_depth), and sp_check_local() / sp_check_resolved() repeat that check
 * on realpath()s: a volume directory must resolve to exactly root/rel, so no
 * symlink can lead outside the root or onto another volume.
 * sp_find_overlaps() refuses a volume directory that holds another volume's
 * (or one that must be kept): no write or delete reaches a second volume.
 */
#ifndef OCPVDR_STORAGE_PROFILE_H
#define OCPVDR_STORAGE_PROFILE_H

#include <jansson.h>
#include <stdbool.h>

typedef enum { SP_NFS_SUBDIR = 1, SP_NFS_DYNAMIC, SP_NFS_CSI } sp_kind;

typedef struct sp_profile {
    char *class_name;
    sp_kind kind;
    char *primary_server;   /* NULL = not checked */
    char *dr_server;
    char *primary_export;   /* normalized */
    char *dr_export;
    char *primary_root;
    char *dr_root;
    char *path_pattern;     /* nfs-subdir; NULL = no check */
    int path_depth;         /* levels below the export; 0 = any */
} sp_profile;

typedef struct sp_volume {
    char *pv_name;
    char *rel;        /* directory relative to the export root ("ns-pvc-pv") */
    char *src_dir;    /* primary_root/rel: where the data is on the primary host */
    char *dest_dir;   /* dr_root/rel: where it goes on the DR host */
    char *dr_path;    /* dr_export/rel: the path the DR PV names */
} sp_volume;

const char *sp_kind_name(sp_kind k);

/* Parses profile `obj` (borrowed) for class `class_name`.  0, or -1 with a
 * malloc'd *err naming the field ("storage_profiles.nfs-csi.dr_export: ..."). */
int sp_profile_parse(const char *class_name, json_t *obj, sp_profile *p, char **err);
void sp_profile_free(sp_profile *p);

/* Turns p into the profile of PVs that already name the DR side (DR PVs,
 * e.g. the ones a prune deleted): their server, export and root are p's DR
 * ones, so primary_* := dr_* (dr_* unchanged: the data lies at dr_root/rel).
 * 0, or -1 when out of memory (p unchanged). */
int sp_profile_dr_side(sp_profile *p);

/* Computes the volume's directories from PV `pv` (borrowed).  0, or -1 with
 * *err naming the PV field and reason (server, path, layout). */
int sp_resolve(const sp_profile *p, json_t *pv, sp_volume *v, char **err);
void sp_volume_free(sp_volume *v);

/* Where PV `pv` would lie below p's primary export, leniently, for
 * protecting it (not for writing): no server, pattern, depth or character
 * checks, '..' resolved lexically.  malloc'd rel ("" for the export root
 * itself), NULL when the PV names no directory of p's kind under the export. */
char *sp_pv_rel(const sp_profile *p, json_t *pv);

/* Overlap of volume directories.  Each entry is one volume's directory
 * (absolute, normalized) with the PV it belongs to; `keep` entries must
 * survive untouched, the others are targets (written or removed). */
typedef struct sp_dir {
    const char *path;
    const char *pv_name;    /* identity: uid when both have one, else name */
    const char *pv_uid;     /* NULL: unknown */
    bool keep;
} sp_dir;

typedef enum {
    SP_OVERLAP_NONE = 0,
    SP_OVERLAP_CONTAINS,    /* the target's directory holds the other's */
    SP_OVERLAP_SAME,        /* the target's directory is a keep entry's */
    SP_OVERLAP_INSIDE       /* the target's directory lies inside a keep entry's */
} sp_overlap_kind;

typedef struct sp_overlap {
    sp_overlap_kind how;
    size_t other;           /* index of the other entry */
} sp_overlap;

/* For every target d[i], out[i] tells whether its directory is unsafe to
 * write or remove because of another PV's entry: it CONTAINS any other
 * entry (target or keep), is the SAME directory as a keep entry, or lies
 * INSIDE a keep entry.  Two targets sharing one directory are fine (PVs
 * sharing a volume), and entries of one PV never conflict.  Keep entries get
 * SP_OVERLAP_NONE.  O(n log n).  0, or -1 when out of memory. */
int sp_find_overlaps(const sp_dir *d, size_t n, sp_overlap *out);
const char *sp_overlap_name(sp_overlap_kind k);

/* A deep copy of `pv` rewritten for DR: NFS server/path or CSI server/share
 * and volumeHandle pointing at the DR export, reclaim policy Retain.  NULL
 * with *err on failure. */
json_t *sp_rewrite_pv(const sp_profile *p, json_t *pv, const sp_volume *v, char **err);

/* Lexical helpers (exposed for tests and for callers building paths).
 * sp_norm_abs: absolute path -> normalized malloc'd copy, or NULL + *err.
 * sp_norm_rel: relative path (no leading '/', not empty) -> normalized copy.
 * sp_rel_under: the part of `path` below `root` (both normalized), malloc'd;
 *               "" when equal; NULL when path is not under root. */
char *sp_norm_abs(const char *path, const char *what, char **err);
char *sp_norm_rel(const char *path, const char *what, char **err);
char *sp_rel_under(const char *root, const char *path);
char *sp_join(const char *a, const char *b);

/* Resolves root and dir with realpath() on this host and checks that dir is
 * an existing directory strictly inside root - and, when rel is given (a
 * normalized relative path), that it is exactly realpath(root)/rel: no
 * symlink anywhere below the root (one to another volume's directory would
 * make this volume's copy that volume's data).  On success returns the
 * resolved dir (malloc'd); NULL + *err otherwise. */
char *sp_check_local(const char *root, const char *dir, const char *rel, const char *what,
                     char **err);

/* The same rule on paths already resolved elsewhere (e.g. `realpath -m` run
 * on the DR host): 0 when dir_real is strictly inside root_real and, with
 * rel, equal to root_real/rel.  Both sides of a sync use this one check. */
int sp_check_resolved(const char *root_real, const char *dir_real, const char *rel,
                      const char *what, char **err);

#endif
