/* storage_profile.c - storage profiles for NFS-backed PVs: source and DR
 * directories of a volume, safe path handling, PV rewrite for DR
 * (see storage_profile.h).
 */
#include "storage_profile.h"

#include "jsonx.h"
#include "xstr.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


const char *sp_kind_name(sp_kind k)
{
    switch (k) {
    case SP_NFS_SUBDIR:  return "nfs-subdir";
    case SP_NFS_DYNAMIC: return "nfs-dynamic";
    case SP_NFS_CSI:     return "nfs-csi";
    }
    return "?";
}

static bool kind_from_name(const char *s, sp_kind *k)
{
    if (!s)
        return false;
    if (!strcmp(s, "nfs-subdir")) { *k = SP_NFS_SUBDIR; return true; }
    if (!strcmp(s, "nfs-dynamic")) { *k = SP_NFS_DYNAMIC; return true; }
    if (!strcmp(s, "nfs-csi")) { *k = SP_NFS_CSI; return true; }
    return false;
}

/* ------------------------------------------------------------ lexical paths */
static bool safe_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-' || c == '+' || c == '@' || c == '=' ||
           c == ',' || c == ':' || c == '~';
}

/* Normalizes the components of s into out ("a/b/c", no leading '/'). */
static char *norm_components(const char *s, const char *what, char **err)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t w = 0;
    const char *p = s;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - p);
        if (len == 1 && p[0] == '.') {
            p = e;
            continue;
        }
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            xerr_take(err, xfmt("%s '%s': '..' is not allowed in a volume path", what, s));
            free(out);
            return NULL;
        }
        for (const char *c = p; c < e; c++) {
            if (!safe_char(*c)) {
                if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                    xerr_take(err, xfmt("%s: contains the control or non-ASCII byte 0x%02x; only "
                                     "[A-Za-z0-9._+@=,:~-] and '/' are allowed",
                                     what, (unsigned char)*c));
                else
                    xerr_take(err, xfmt("%s '%s': character '%c' is not allowed; only "
                                     "[A-Za-z0-9._+@=,:~-] and '/' are allowed", what, s, *c));
                free(out);
                return NULL;
            }
        }
        if (w)
            out[w++] = '/';
        memcpy(out + w, p, len);
        w += len;
        p = e;
    }
    out[w] = '\0';
    return out;
}

char *sp_norm_abs(const char *path, const char *what, char **err)
{
    if (!path || !*path) {
        xerr_take(err, xfmt("%s: empty path", what));
        return NULL;
    }
    if (path[0] != '/') {
        xerr_take(err, xfmt("%s '%s': must be an absolute path", what, path));
        return NULL;
    }
    char *c = norm_components(path, what, err);
    if (!c)
        return NULL;
    char *out = xfmt("/%s", c);
    free(c);
    return out;
}

char *sp_norm_rel(const char *path, const char *what, char **err)
{
    if (!path || !*path) {
        xerr_take(err, xfmt("%s: empty path", what));
        return NULL;
    }
    if (path[0] == '/') {
        xerr_take(err, xfmt("%s '%s': must be a relative path", what, path));
        return NULL;
    }
    char *c = norm_components(path, what, err);
    if (c && !*c) {
        xerr_take(err, xfmt("%s '%s': names no directory", what, path));
        free(c);
        return NULL;
    }
    return c;
}

char *sp_rel_under(const char *root, const char *path)
{
    size_t rl = strlen(root);
    if (!strcmp(root, "/"))
        return strdup(path + 1);
    if (strncmp(path, root, rl) != 0)
        return NULL;
    if (path[rl] == '\0')
        return strdup("");
    if (path[rl] != '/')
        return NULL;
    return strdup(path + rl + 1);
}

char *sp_join(const char *a, const char *b)
{
    if (!*b)
        return strdup(a);
    size_t al = strlen(a);
    if (al && a[al - 1] == '/')
        return xfmt("%s%s", a, b);
    return xfmt("%s/%s", a, b);
}

/* Components of a normalized relative path ("a/b" -> 2). */
static int rel_depth(const char *rel)
{
    int d = *rel ? 1 : 0;
    for (const char *c = rel; *c; c++)
        d += *c == '/';
    return d;
}

/* Directory levels a path_pattern expands to: its non-empty, non-"."
 * components (placeholders never expand to a '/': Kubernetes names have
 * none). */
static int pattern_depth(const char *pat)
{
    int d = 0;
    for (const char *p = pat; *p;) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        if (e > p && !(e - p == 1 && *p == '.'))
            d++;
        p = e;
    }
    return d;
}

/* ------------------------------------------------------------ profiles */
static int prof_str(const char *cls, json_t *obj, const char *key, bool required,
                    bool is_path, char **out, char **err)
{
    *out = NULL;
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) {
            xerr_take(err, xfmt("storage_profiles.%s.%s is required", cls, key));
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v) || !*json_string_value(v)) {
        xerr_take(err, xfmt("storage_profiles.%s.%s must be a non-empty string", cls, key));
        return -1;
    }
    if (is_path) {
        char what[256];
        snprintf(what, sizeof what, "storage_profiles.%s.%s", cls, key);
        *out = sp_norm_abs(json_string_value(v), what, err);
        return *out ? 0 : -1;
    }
    *out = strdup(json_string_value(v));
    return 0;
}

int sp_profile_parse(const char *cls, json_t *obj, sp_profile *p, char **err)
{
    memset(p, 0, sizeof(*p));
    if (!json_is_object(obj)) {
        xerr_take(err, xfmt("storage_profiles.%s must be a dict", cls));
        return -1;
    }
    static const char *known[] = { "type", "primary_server", "dr_server", "primary_export",
                                   "dr_export", "primary_root", "dr_root", "path_pattern",
                                   "path_depth", NULL };
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        bool ok = false;
        for (int i = 0; known[i]; i++)
            ok = ok || !strcmp(key, known[i]);
        if (!ok) {
            xerr_take(err, xfmt("storage_profiles.%s.%s: unknown field (known: type, primary_server, "
                             "dr_server, primary_export, dr_export, primary_root, dr_root, "
                             "path_pattern, path_depth)", cls, key));
            return -1;
        }
    }
    p->class_name = strdup(cls);
    const char *type = jx_str(obj, "type");
    if (json_object_get(obj, "type") && !type) {
        xerr_take(err, xfmt("storage_profiles.%s.type must be a string", cls));
        goto fail;
    }
    if (!kind_from_name(type ? type : cls, &p->kind)) {
        if (type)
            xerr_take(err, xfmt("storage_profiles.%s.type '%s': must be nfs-subdir, nfs-dynamic or "
                             "nfs-csi", cls, type));
        else
            xerr_take(err, xfmt("storage_profiles.%s.type is required (the class name is not "
                             "nfs-subdir, nfs-dynamic or nfs-csi)", cls));
        goto fail;
    }
    if (prof_str(cls, obj, "primary_server", false, false, &p->primary_server, err) ||
        prof_str(cls, obj, "dr_server", true, false, &p->dr_server, err) ||
        prof_str(cls, obj, "primary_export", true, true, &p->primary_export, err) ||
        prof_str(cls, obj, "dr_export", true, true, &p->dr_export, err) ||
        prof_str(cls, obj, "primary_root", false, true, &p->primary_root, err) ||
        prof_str(cls, obj, "dr_root", false, true, &p->dr_root, err))
        goto fail;
    for (const char *c = p->dr_server; *c; c++) {
        if (!safe_char(*c) && *c != '[' && *c != ']') {
            xerr_take(err, xfmt("storage_profiles.%s.dr_server '%s': not a host name or address",
                             cls, p->dr_server));
            goto fail;
        }
    }
    if (!p->primary_root)
        p->primary_root = strdup(p->primary_export);
    if (!p->dr_root)
        p->dr_root = strdup(p->dr_export);
    if (p->kind == SP_NFS_SUBDIR) {
        json_t *pp = json_object_get(obj, "path_pattern");
        if (!pp || json_is_null(pp)) {
            p->path_pattern = strdup("${namespace}-${pvcName}-${pvName}");
        } else if (!json_is_string(pp)) {
            xerr_take(err, xfmt("storage_profiles.%s.path_pattern must be a string", cls));
            goto fail;
        } else if (*json_string_value(pp)) {
            p->path_pattern = strdup(json_string_value(pp));
        }
    } else if (json_object_get(obj, "path_pattern")) {
        xerr_take(err, xfmt("storage_profiles.%s.path_pattern: only for type nfs-subdir", cls));
        goto fail;
    }
    json_t *pd = json_object_get(obj, "path_depth");
    if (pd && !json_is_null(pd)) {
        if (!json_is_integer(pd) || json_integer_value(pd) < 1 || json_integer_value(pd) > 64) {
            xerr_take(err, xfmt("storage_profiles.%s.path_depth must be an integer from 1 to 64 "
                                "(directory levels of a volume below the export)", cls));
            goto fail;
        }
        p->path_depth = (int)json_integer_value(pd);
    }
    if (p->path_pattern) {
        int d = pattern_depth(p->path_pattern);
        if (p->path_depth && p->path_depth != d) {
            xerr_take(err, xfmt("storage_profiles.%s.path_depth %d disagrees with its path_pattern "
                                "'%s', which makes directories %d level(s) deep", cls,
                                p->path_depth, p->path_pattern, d));
            goto fail;
        }
        p->path_depth = d;
    }
    return 0;
fail:
    sp_profile_free(p);
    return -1;
}

void sp_profile_free(sp_profile *p)
{
    free(p->class_name);
    free(p->primary_server);
    free(p->dr_server);
    free(p->primary_export);
    free(p->dr_export);
    free(p->primary_root);
    free(p->dr_root);
    free(p->path_pattern);
    memset(p, 0, sizeof(*p));
}

int sp_profile_dr_side(sp_profile *p)
{
    char *server = strdup(p->dr_server), *exp = strdup(p->dr_export), *root = strdup(p->dr_root);
    if (!server || !exp || !root) {
        free(server);
        free(exp);
        free(root);
        return -1;
    }
    free(p->primary_server);
    free(p->primary_export);
    free(p->primary_root);
    p->primary_server = server;
    p->primary_export = exp;
    p->primary_root = root;
    return 0;
}

/* ------------------------------------------------------------ volumes */
/* Expands the nfs-subdir pathPattern for pv; NULL + *err on unknown
 * placeholders or a missing claimRef. */
static char *expand_pattern(const char *pat, json_t *pv, const char *pvname, char **err)
{
    const char *ns = jx_str(pv, "spec.claimRef.namespace");
    const char *pvc = jx_str(pv, "spec.claimRef.name");
    size_t cap = strlen(pat) + 512, w = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (const char *s = pat; *s;) {
        if (s[0] == '$' && s[1] == '{') {
            const char *e = strchr(s, '}');
            if (!e) {
                xerr_take(err, xfmt("path_pattern '%s': unterminated ${", pat));
                free(out);
                return NULL;
            }
            size_t kl = (size_t)(e - s - 2);
            const char *key = s + 2, *val = NULL;
            bool claim = false;
#define IS(k) (kl == strlen(k) && !strncmp(key, k, kl))
            if (IS("namespace") || IS(".PVC.namespace")) {
                val = ns;
                claim = true;
            } else if (IS("pvcName") || IS(".PVC.name")) {
                val = pvc;
                claim = true;
            } else if (IS("pvName") || IS(".PV.name")) {
                val = pvname;
            } else {
                xerr_take(err, xfmt("path_pattern '%s': placeholder ${%.*s} is not supported "
                                 "(use ${namespace}, ${pvcName}, ${pvName})", pat, (int)kl, key));
                free(out);
                return NULL;
            }
#undef IS
            if (!val) {
                xerr_take(err, xfmt("spec.claimRef.%s is missing: needed by the nfs-subdir "
                                 "path_pattern '%s'", claim ? "namespace/name" : "?", pat));
                free(out);
                return NULL;
            }
            size_t vl = strlen(val);
            if (w + vl + 1 >= cap) {
                cap = (w + vl + 1) * 2;
                char *nb = realloc(out, cap);
                if (!nb) {
                    free(out);
                    return NULL;
                }
                out = nb;
            }
            memcpy(out + w, val, vl);
            w += vl;
            s = e + 1;
        } else {
            if (w + 2 >= cap) {
                cap *= 2;
                char *nb = realloc(out, cap);
                if (!nb) {
                    free(out);
                    return NULL;
                }
                out = nb;
            }
            out[w++] = *s++;
        }
    }
    out[w] = '\0';
    return out;
}

/* The directory the PV names, as an absolute export path, plus checks of the
 * server against the profile.  malloc'd, NULL + *err. */
static char *pv_export_path(const sp_profile *p, json_t *pv, char **err)
{
    char what[96];
    if (p->kind == SP_NFS_CSI) {
        const char *drv = jx_str(pv, "spec.csi.driver");
        if (!json_is_object(jx_get(pv, "spec.csi"))) {
            xerr_take(err, xfmt("spec.csi is missing: storage class %s (nfs-csi) expects a "
                             "csi-driver-nfs PV", p->class_name));
            return NULL;
        }
        if (drv && strcmp(drv, "nfs.csi.k8s.io") != 0) {
            xerr_take(err, xfmt("spec.csi.driver '%s' is not nfs.csi.k8s.io", drv));
            return NULL;
        }
        const char *server = jx_str(pv, "spec.csi.volumeAttributes.server");
        const char *share = jx_str(pv, "spec.csi.volumeAttributes.share");
        const char *subdir = jx_str(pv, "spec.csi.volumeAttributes.subdir");
        if (!server || !share) {
            xerr_take(err, xfmt("spec.csi.volumeAttributes.%s is missing", server ? "share" : "server"));
            return NULL;
        }
        if (p->primary_server && strcmp(server, p->primary_server) != 0) {
            xerr_take(err, xfmt("spec.csi.volumeAttributes.server '%s' is not the profile's "
                             "primary_server '%s'", server, p->primary_server));
            return NULL;
        }
        char *nshare = sp_norm_abs(share, "spec.csi.volumeAttributes.share", err);
        if (!nshare)
            return NULL;
        if (!subdir || !*subdir)
            return nshare;
        if (subdir[0] == '/') {
            xerr_take(err, xfmt("spec.csi.volumeAttributes.subdir '%s': must be relative to the share",
                             subdir));
            free(nshare);
            return NULL;
        }
        char *nsub = sp_norm_rel(subdir, "spec.csi.volumeAttributes.subdir", err);
        if (!nsub) {
            free(nshare);
            return NULL;
        }
        char *full = sp_join(nshare, nsub);
        free(nshare);
        free(nsub);
        return full;
    }
    if (!json_is_object(jx_get(pv, "spec.nfs"))) {
        xerr_take(err, xfmt("spec.nfs is missing: storage class %s (%s) expects an NFS PV",
                         p->class_name, sp_kind_name(p->kind)));
        return NULL;
    }
    const char *server = jx_str(pv, "spec.nfs.server");
    const char *path = jx_str(pv, "spec.nfs.path");
    if (!server || !path) {
        xerr_take(err, xfmt("spec.nfs.%s is missing", server ? "path" : "server"));
        return NULL;
    }
    if (p->primary_server && strcmp(server, p->primary_server) != 0) {
        xerr_take(err, xfmt("spec.nfs.server '%s' is not the profile's primary_server '%s'",
                         server, p->primary_server));
        return NULL;
    }
    snprintf(what, sizeof what, "spec.nfs.path");
    return sp_norm_abs(path, what, err);
}

int sp_resolve(const sp_profile *p, json_t *pv, sp_volume *v, char **err)
{
    memset(v, 0, sizeof(*v));
    const char *name = jx_str(pv, "metadata.name");
    if (!name || !*name) {
        xerr_take(err, xfmt("metadata.name is missing"));
        return -1;
    }
    v->pv_name = strdup(name);
    char *path = pv_export_path(p, pv, err);
    if (!path)
        goto fail;
    v->rel = sp_rel_under(p->primary_export, path);
    if (!v->rel) {
        xerr_take(err, xfmt("volume path '%s' is outside the primary export '%s' of storage class %s",
                         path, p->primary_export, p->class_name));
        free(path);
        goto fail;
    }
    if (!*v->rel) {
        xerr_take(err, xfmt("volume path '%s' is the export root itself; refusing to sync or "
                         "delete a whole export", path));
        free(path);
        goto fail;
    }
    free(path);
    if (p->kind == SP_NFS_SUBDIR && p->path_pattern) {
        char *pe = NULL;
        char *exp = expand_pattern(p->path_pattern, pv, name, &pe);
        if (!exp) {
            xerr_take(err, pe ? pe : strdup("out of memory"));
            goto fail;
        }
        char *nexp = norm_components(exp, "nfs-subdir path_pattern expansion", err);
        bool same = nexp && !strcmp(nexp, v->rel);
        if (nexp && !same)
            xerr_take(err, xfmt("spec.nfs.path directory '%s' does not match the nfs-subdir "
                             "path_pattern '%s' (expected '%s')", v->rel, p->path_pattern, nexp));
        free(exp);
        free(nexp);
        if (!same)
            goto fail;
    }
    if (p->path_depth && rel_depth(v->rel) != p->path_depth) {
        xerr_take(err, xfmt("volume directory '%s' is %d level(s) below the export, but storage "
                            "class %s keeps its volumes %d level(s) below it (path_depth / "
                            "path_pattern); refusing a directory outside the layout", v->rel,
                            rel_depth(v->rel), p->class_name, p->path_depth));
        goto fail;
    }
    v->src_dir = sp_join(p->primary_root, v->rel);
    v->dest_dir = sp_join(p->dr_root, v->rel);
    v->dr_path = sp_join(p->dr_export, v->rel);
    if (!v->src_dir || !v->dest_dir || !v->dr_path) {
        xerr_take(err, xfmt("out of memory"));
        goto fail;
    }
    return 0;
fail:
    sp_volume_free(v);
    return -1;
}

void sp_volume_free(sp_volume *v)
{
    free(v->pv_name);
    free(v->rel);
    free(v->src_dir);
    free(v->dest_dir);
    free(v->dr_path);
    memset(v, 0, sizeof(*v));
}

/* An absolute path cleaned lexically with '..' resolved ("/a/../b" ->
 * "/b", never above "/"); any other byte is kept.  NULL when not absolute. */
static char *lex_clean(const char *path)
{
    if (!path || path[0] != '/')
        return NULL;
    char *out = malloc(strlen(path) + 2);
    if (!out)
        return NULL;
    size_t w = 0;
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (w > 0 && out[w - 1] != '/')
                w--;
            if (w > 0)
                w--;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            out[w++] = '/';
            memcpy(out + w, p, len);
            w += len;
        }
        p = e;
    }
    if (w == 0)
        out[w++] = '/';
    out[w] = '\0';
    return out;
}

char *sp_pv_rel(const sp_profile *p, json_t *pv)
{
    char *raw = NULL;
    if (p->kind == SP_NFS_CSI) {
        const char *drv = jx_str(pv, "spec.csi.driver");
        const char *share = jx_str(pv, "spec.csi.volumeAttributes.share");
        const char *subdir = jx_str(pv, "spec.csi.volumeAttributes.subdir");
        if (!share || (drv && strcmp(drv, "nfs.csi.k8s.io") != 0))
            return NULL;
        raw = (subdir && *subdir) ? xfmt("%s/%s", share, subdir) : strdup(share);
    } else {
        const char *path = jx_str(pv, "spec.nfs.path");
        if (!path)
            return NULL;
        raw = strdup(path);
    }
    char *clean = lex_clean(raw);
    free(raw);
    char *rel = clean ? sp_rel_under(p->primary_export, clean) : NULL;
    free(clean);
    return rel;
}

/* ------------------------------------------------------------ overlaps */
/* Path order in which '/' sorts before every other byte, so a directory's
 * descendants follow it (and its equals) without a gap: "/a", "/a/x", "/a-b". */
static int path_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = *a == '/' ? 1 : *a ? (unsigned char)*a + 1 : 0;
        int cb = *b == '/' ? 1 : *b ? (unsigned char)*b + 1 : 0;
        if (ca != cb || !ca)
            return ca - cb;
    }
}

/* One entry of the sorted view: its path and its index in the caller's array. */
typedef struct ov_ent {
    const char *path;
    size_t i;
} ov_ent;

static int ent_cmp(const void *x, const void *y)
{
    return path_cmp(((const ov_ent *)x)->path, ((const ov_ent *)y)->path);
}

static bool same_pv(const sp_dir *a, const sp_dir *b)
{
    if (a->pv_uid && b->pv_uid)
        return strcmp(a->pv_uid, b->pv_uid) == 0;
    return a->pv_name && b->pv_name && strcmp(a->pv_name, b->pv_name) == 0;
}

/* First position in sorted e whose path is >= path. */
static size_t lower_bound(const ov_ent *e, size_t n, const char *path)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (path_cmp(e[mid].path, path) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Index (in d) of a keep entry of another PV than self with exactly this
 * path, or n. */
static size_t keep_at(const sp_dir *d, const ov_ent *e, size_t n, const char *path,
                      const sp_dir *self)
{
    for (size_t k = lower_bound(e, n, path); k < n && !strcmp(e[k].path, path); k++)
        if (d[e[k].i].keep && !same_pv(&d[e[k].i], self))
            return e[k].i;
    return n;
}

const char *sp_overlap_name(sp_overlap_kind k)
{
    switch (k) {
    case SP_OVERLAP_NONE:     return "none";
    case SP_OVERLAP_CONTAINS: return "contains";
    case SP_OVERLAP_SAME:     return "same";
    case SP_OVERLAP_INSIDE:   return "inside";
    }
    return "?";
}

int sp_find_overlaps(const sp_dir *d, size_t n, sp_overlap *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (sp_overlap){ SP_OVERLAP_NONE, 0 };
    if (n < 2)
        return 0;
    ov_ent *e = malloc(n * sizeof *e);
    size_t plen = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(d[i].path);
        plen = l > plen ? l : plen;
    }
    char *anc = malloc(plen + 1);
    if (!e || !anc) {
        free(e);
        free(anc);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        e[i] = (ov_ent){ d[i].path, i };
    qsort(e, n, sizeof *e, ent_cmp);

    for (size_t s = 0; s < n; s++) {
        const sp_dir *t = &d[e[s].i];
        if (t->keep)
            continue;
        sp_overlap *o = &out[e[s].i];
        size_t pl = strlen(t->path);
        /* the same directory as a keep entry of another PV */
        size_t k = keep_at(d, e, n, t->path, t);
        if (k < n) {
            *o = (sp_overlap){ SP_OVERLAP_SAME, k };
            continue;
        }
        /* descendants follow the block of equal paths without a gap */
        size_t j = s + 1;
        while (j < n && !strcmp(e[j].path, t->path))
            j++;
        for (; j < n; j++) {
            const char *q = e[j].path;
            bool below = !strcmp(t->path, "/") ? q[0] == '/' && q[1]
                                               : !strncmp(q, t->path, pl) && q[pl] == '/';
            if (!below)
                break;
            if (!same_pv(&d[e[j].i], t)) {
                *o = (sp_overlap){ SP_OVERLAP_CONTAINS, e[j].i };
                break;
            }
        }
        if (o->how)
            continue;
        /* ancestors: a keep entry of another PV at any of them */
        memcpy(anc, t->path, pl + 1);
        for (char *sl = strrchr(anc, '/'); sl; sl = strrchr(anc, '/')) {
            if (sl == anc) {
                if (!anc[1])
                    break;          /* "/" done */
                anc[1] = '\0';
            } else {
                *sl = '\0';
            }
            k = keep_at(d, e, n, anc, t);
            if (k < n) {
                *o = (sp_overlap){ SP_OVERLAP_INSIDE, k };
                break;
            }
        }
    }
    free(e);
    free(anc);
    return 0;
}

json_t *sp_rewrite_pv(const sp_profile *p, json_t *pv, const sp_volume *v, char **err)
{
    json_t *out = json_deep_copy(pv);
    if (!out) {
        xerr_take(err, xfmt("out of memory"));
        return NULL;
    }
    int bad = 0;
    if (p->kind == SP_NFS_CSI) {
        const char *share = jx_str(pv, "spec.csi.volumeAttributes.share");
        char *nshare = share ? sp_norm_abs(share, "spec.csi.volumeAttributes.share", err) : NULL;
        char *srel = nshare ? sp_rel_under(p->primary_export, nshare) : NULL;
        if (!srel) {
            if (nshare)
                xerr_take(err, xfmt("spec.csi.volumeAttributes.share '%s' is outside the primary "
                                 "export '%s'", nshare, p->primary_export));
            free(nshare);
            json_decref(out);
            return NULL;
        }
        char *dshare = sp_join(p->dr_export, srel);
        bad |= jx_set(out, "spec.csi.volumeAttributes.server", json_string(p->dr_server));
        bad |= jx_set(out, "spec.csi.volumeAttributes.share", json_string(dshare));
        const char *vh = jx_str(pv, "spec.csi.volumeHandle");
        if (vh && strchr(vh, '#')) {
            /* server#share#subdir#uuid#onDelete (csi-driver-nfs trims the
             * slashes of share): remap the first two fields, keep the rest */
            const char *f1 = strchr(vh, '#') + 1;
            const char *rest = strchr(f1, '#');
            const char *hshare = f1[0] == '/' ? dshare : dshare + 1;
            char *nh = xfmt("%s#%s%s", p->dr_server, hshare, rest ? rest : "");
            bad |= jx_set(out, "spec.csi.volumeHandle", json_string(nh));
            free(nh);
        }
        free(nshare);
        free(srel);
        free(dshare);
    } else {
        bad |= jx_set(out, "spec.nfs.server", json_string(p->dr_server));
        bad |= jx_set(out, "spec.nfs.path", json_string(v->dr_path));
    }
    bad |= jx_set(out, "spec.persistentVolumeReclaimPolicy", json_string("Retain"));
    if (bad) {
        xerr_take(err, xfmt("PV %s: cannot rewrite spec (not an object?)", v->pv_name));
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ------------------------------------------------------------ realpath checks */
int sp_check_resolved(const char *root_real, const char *dir_real, const char *rel,
                      const char *what, char **err)
{
    char *in = sp_rel_under(root_real, dir_real);
    if (!in || !*in || dir_real[0] != '/') {
        if (in)
            xerr_take(err, xfmt("%s resolves to the export root '%s' itself; refusing", what,
                                root_real));
        else
            xerr_take(err, xfmt("%s resolves to '%s', outside the export root '%s' (symlink?); "
                                "refusing", what, dir_real, root_real));
        free(in);
        return -1;
    }
    int rc = 0;
    if (rel && strcmp(in, rel) != 0) {
        char *want = sp_join(root_real, rel);
        xerr_take(err, xfmt("%s resolves to '%s', not '%s': a symlink inside the export (to "
                            "another volume?); refusing", what, dir_real, want ? want : rel));
        free(want);
        rc = -1;
    }
    free(in);
    return rc;
}

char *sp_check_local(const char *root, const char *dir, const char *rel, const char *what,
                     char **err)
{
    char rroot[PATH_MAX], rdir[PATH_MAX];
    if (!realpath(root, rroot)) {
        xerr_take(err, xfmt("export root '%s' on this host: %s", root, strerror(errno)));
        return NULL;
    }
    if (!realpath(dir, rdir)) {
        int e = errno;
        if (e == ENOENT)
            xerr_take(err, xfmt("%s '%s' does not exist on this host", what, dir));
        else
            xerr_take(err, xfmt("%s '%s': %s", what, dir, strerror(e)));
        return NULL;
    }
    char label[PATH_MAX + 64];
    snprintf(label, sizeof label, "%s '%s'", what, dir);
    if (sp_check_resolved(rroot, rdir, rel, label, err) < 0)
        return NULL;
    struct stat st;
    if (stat(rdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        xerr_take(err, xfmt("%s '%s' is not a directory", what, dir));
        return NULL;
    }
    return strdup(rdir);
}
