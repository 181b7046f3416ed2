/* velero_collect.c - the vb_handler that turns a streamed Velero backup into
 * the oadp_parse result: filters by namespace / resource / label selector,
 * keeps each object once (a preferred-version copy beats other API versions),
 * keeps PVs / VSCs bound to selected PVCs / VSs, counts every resource, and
 * records capped warnings.  Memory: the selected objects' JSON text (kept as
 * compact text, not as jansson trees; secret values masked; capped by
 * max_kept_bytes) plus small tables. */
#include "velero_backup.h"
#include "secret_mask.h"
#include "xstr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_RESOURCE_KINDS 4096

typedef struct known {
    const char *gr, *list, *count, *aliases[4];
} known;

static const known KNOWN[] = {
    {"persistentvolumes", "pv_info_list", "pv", {"pv", "persistentvolume", NULL}},
    {"persistentvolumeclaims", "pvc_info_list", "pvc", {"pvc", "persistentvolumeclaim", NULL}},
    {"volumesnapshots.snapshot.storage.k8s.io", "vs_info_list", "vs",
     {"vs", "volumesnapshot", "volumesnapshots", NULL}},
    {"volumesnapshotcontents.snapshot.storage.k8s.io", "vsc_info_list", "vsc",
     {"vsc", "volumesnapshotcontent", "volumesnapshotcontents", NULL}},
    {"virtualmachines.kubevirt.io", "vm_info_list", "vm",
     {"vm", "virtualmachine", "virtualmachines", NULL}},
    {"datavolumes.cdi.kubevirt.io", "dv_info_list", "dv",
     {"dv", "datavolume", "datavolumes", NULL}},
};
#define NKNOWN (sizeof KNOWN / sizeof KNOWN[0])
enum { K_PV = 0, K_PVC, K_VS, K_VSC, K_VM, K_DV };

struct vb_collector {
    char **want_gr;  size_t nwant;     /* requested group-resources (exact or bare resource) */
    const char *const *ns; size_t nns;
    const vb_selector *sel;
    json_t *items;         /* key -> {"rank","raw","gr","pending"[,"rns","rname"]}
                              (insertion ordered; "raw" indexes raw[]) */
    char **raw;            /* the kept objects' JSON text (NULL: replaced) */
    size_t *rawlen;
    size_t nraw, rawcap;
    size_t kept_bytes, max_kept_bytes;
    json_t *rcounts;       /* gr -> [classic, preferred, other] */
    json_t *warnings;      /* capped list of strings */
    size_t max_warnings, nwarn_total;
    size_t by_kind[VB_WARN__COUNT];
    size_t duplicates;
    char format_version[64];
    bool rcount_full;
};

static int known_index(const char *gr)
{
    for (size_t i = 0; i < NKNOWN; i++)
        if (strcmp(KNOWN[i].gr, gr) == 0)
            return (int)i;
    return -1;
}

/* Resolves a user-given resource name to a group-resource (malloc'd). */
static char *resolve(const char *name, char **err)
{
    for (size_t i = 0; i < NKNOWN; i++) {
        if (strcasecmp(name, KNOWN[i].gr) == 0)
            return strdup(KNOWN[i].gr);
        for (size_t j = 0; KNOWN[i].aliases[j]; j++)
            if (strcasecmp(name, KNOWN[i].aliases[j]) == 0)
                return strdup(KNOWN[i].gr);
    }
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.')) {
            xerr_set(err, "resources: '%s' is not a resource name (lowercase plural, "
                          "optionally .<group>, e.g. configmaps or deployments.apps)", name);
            return NULL;
        }
    }
    if (!*name) {
        *err = strdup("resources: empty resource name");
        return NULL;
    }
    return strdup(name);
}

void vb_collector_free(vb_collector *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nwant; i++)
        free(c->want_gr[i]);
    free(c->want_gr);
    json_decref(c->items);
    for (size_t i = 0; i < c->nraw; i++)
        free(c->raw[i]);
    free(c->raw);
    free(c->rawlen);
    json_decref(c->rcounts);
    json_decref(c->warnings);
    free(c);
}

vb_collector *vb_collector_new(const vb_filter *f, size_t max_warnings, char **err)
{
    vb_collector *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ns = f->namespaces;
    c->nns = f->nnamespaces;
    c->sel = f->selector;
    c->max_warnings = max_warnings;
    c->max_kept_bytes = f->max_kept_bytes ? f->max_kept_bytes : (size_t)VB_DEFAULT_MAX_KEPT_BYTES;
    c->items = json_object();
    c->rcounts = json_object();
    c->warnings = json_array();
    size_t n = f->nresources ? f->nresources : NKNOWN;
    c->want_gr = calloc(n, sizeof *c->want_gr);
    if (!c->items || !c->rcounts || !c->warnings || !c->want_gr) {
        vb_collector_free(c);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char *gr = f->nresources ? resolve(f->resources[i], err) : strdup(KNOWN[i].gr);
        if (!gr) {
            vb_collector_free(c);
            return NULL;
        }
        c->want_gr[c->nwant++] = gr;
    }
    return c;
}

static bool ns_selected(const vb_collector *c, const char *ns)
{
    if (c->nns == 0)
        return true;
    if (!ns)
        return false;
    for (size_t i = 0; i < c->nns; i++)
        if (strcmp(c->ns[i], ns) == 0)
            return true;
    return false;
}

static bool resource_wanted(const vb_collector *c, const char *gr)
{
    size_t grl = strcspn(gr, ".");
    for (size_t i = 0; i < c->nwant; i++) {
        const char *w = c->want_gr[i];
        if (strcmp(w, gr) == 0)
            return true;
        if (!strchr(w, '.') && strlen(w) == grl && strncmp(w, gr, grl) == 0)
            return true;
    }
    return false;
}

/* 2: the preferred version (classic dir or <v>-preferredversion; Velero
 * writes the same bytes to both), 1: another API version. */
static int rank_of(const vb_path *p)
{
    return (p->version[0] == '\0' || p->preferred) ? 2 : 1;
}

static void item_key(const vb_path *p, char *buf, size_t len)
{
    snprintf(buf, len, "%s\n%s\n%s", p->resource, p->ns, p->name);
}

static void count_resource(vb_collector *c, const vb_path *p)
{
    json_t *cnt = json_object_get(c->rcounts, p->resource);
    if (!cnt) {
        if (json_object_size(c->rcounts) >= MAX_RESOURCE_KINDS) {
            if (!c->rcount_full) {
                c->rcount_full = true;
                c->by_kind[VB_WARN_LIMIT_REACHED]++;
                if (json_array_size(c->warnings) < c->max_warnings)
                    json_array_append_new(c->warnings, json_string(
                        "more than 4096 resource directories: counts.resources is incomplete"));
            }
            return;
        }
        cnt = json_pack("[iii]", 0, 0, 0);
        json_object_set_new_nocheck(c->rcounts, p->resource, cnt);
    }
    int slot = p->version[0] == '\0' ? 0 : p->preferred ? 1 : 2;
    json_t *v = json_array_get(cnt, (size_t)slot);
    json_integer_set(v, json_integer_value(v) + 1);
}

static bool c_want(void *ud, const vb_path *p)
{
    vb_collector *c = ud;
    if (p->cluster || ns_selected(c, p->ns))
        count_resource(c, p);
    if (!resource_wanted(c, p->resource))
        return false;
    if (!p->cluster && !ns_selected(c, p->ns))
        return false;
    char key[800];
    item_key(p, key, sizeof key);
    json_t *have = json_object_get(c->items, key);
    if (have && json_integer_value(json_object_get(have, "rank")) >= rank_of(p)) {
        c->duplicates++;
        return false;
    }
    return true;
}

static const char *ref_ns(json_t *obj, const char *field)
{
    json_t *spec = json_object_get(obj, "spec");
    json_t *ref = json_object_get(spec, field);
    return json_string_value(json_object_get(ref, "namespace"));
}

static const char *ref_name(json_t *obj, const char *field)
{
    json_t *spec = json_object_get(obj, "spec");
    json_t *ref = json_object_get(spec, field);
    return json_string_value(json_object_get(ref, "name"));
}

/* Copies JSON text (valid: the reader parsed it) into dst without the
 * whitespace outside strings; returns the new length (<= len). */
static size_t minify(char *dst, const char *src, size_t len)
{
    size_t o = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        char ch = src[i];
        if (in_str) {
            dst[o++] = ch;
            if (esc)
                esc = false;
            else if (ch == '\\')
                esc = true;
            else if (ch == '"')
                in_str = false;
        } else if (ch != ' ' && ch != '\n' && ch != '\t' && ch != '\r') {
            if (ch == '"')
                in_str = true;
            dst[o++] = ch;
        }
    }
    return o;
}

/* Keeps a compact copy of the entry's text; its index, or -1 when out of
 * memory. */
static long keep_raw(vb_collector *c, const char *raw, size_t len)
{
    if (c->nraw == c->rawcap) {
        size_t nc = c->rawcap ? c->rawcap * 2 : 1024;
        char **nr = realloc(c->raw, nc * sizeof *nr);
        if (!nr)
            return -1;
        c->raw = nr;
        size_t *nl = realloc(c->rawlen, nc * sizeof *nl);
        if (!nl)
            return -1;
        c->rawlen = nl;
        c->rawcap = nc;
    }
    char *d = malloc(len ? len : 1);
    if (!d)
        return -1;
    size_t n = minify(d, raw, len);
    if (n < len) {
        char *s = realloc(d, n ? n : 1);
        if (s)
            d = s;
    }
    len = n;
    c->raw[c->nraw] = d;
    c->rawlen[c->nraw] = len;
    return (long)c->nraw++;
}

static int c_item_raw(void *ud, const vb_path *p, json_t *obj, const char *raw, size_t len,
                      char **err)
{
    vb_collector *c = ud;
    int k = known_index(p->resource);
    if (p->cluster && c->nns > 0) {
        /* Cluster-scoped PV / VSC: only when bound into a selected namespace. */
        if (k == K_PV && !ns_selected(c, ref_ns(obj, "claimRef")))
            return 0;
        if (k == K_VSC && !ns_selected(c, ref_ns(obj, "volumeSnapshotRef")))
            return 0;
    }
    json_t *md = json_object_get(obj, "metadata");
    bool match = vb_selector_match(c->sel, json_object_get(md, "labels"));
    bool pending = false;
    if (!match) {
        if (k != K_PV && k != K_VSC)
            return 0;
        pending = true;       /* kept if its PVC / VS is selected (decided at the end) */
    }
    /* secret values never leave the collector: the masked object is kept */
    char *masked = sm_mask_object(obj, raw, len) ? json_dumps(obj, JSON_COMPACT) : NULL;
    if (masked) {
        raw = masked;
        len = strlen(masked);
    }
    long idx = keep_raw(c, raw, len);
    free(masked);
    if (idx < 0) {
        *err = strdup("out of memory keeping the selected objects");
        return -1;
    }
    c->kept_bytes += c->rawlen[idx];
    if (c->kept_bytes > c->max_kept_bytes) {
        xerr_set(err, "the selected objects take more than %zu bytes (max_selected_size; "
                      "at %s/%s/%s): narrow namespaces, resources or label_selector, or raise "
                      "the limit", c->max_kept_bytes, p->resource, p->cluster ? "" : p->ns, p->name);
        return -1;
    }
    char key[800];
    item_key(p, key, sizeof key);
    json_t *rec = json_pack("{s:i, s:I, s:s, s:b}", "rank", rank_of(p), "raw", (json_int_t)idx,
                            "gr", p->resource, "pending", pending);
    if (!rec) {
        c->kept_bytes -= c->rawlen[idx];
        free(c->raw[idx]);
        c->raw[idx] = NULL;
        return 0;
    }
    if (pending) {
        const char *field = k == K_PV ? "claimRef" : "volumeSnapshotRef";
        const char *rns = ref_ns(obj, field), *rname = ref_name(obj, field);
        if (rns)
            json_object_set_new_nocheck(rec, "rns", json_string(rns));
        if (rname)
            json_object_set_new_nocheck(rec, "rname", json_string(rname));
    }
    json_t *old = json_object_get(c->items, key);
    if (old) {
        c->duplicates++;
        json_int_t oi = json_integer_value(json_object_get(old, "raw"));
        if (oi >= 0 && (size_t)oi < c->nraw && c->raw[oi]) {
            c->kept_bytes -= c->rawlen[oi];
            free(c->raw[oi]);
            c->raw[oi] = NULL;
        }
    }
    json_object_set_new_nocheck(c->items, key, rec);
    return 0;
}

/* The tree-only entry point (callers that parsed the object themselves):
 * keeps its compact serialization. */
static int c_item(void *ud, const vb_path *p, json_t *obj, char **err)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    if (!text) {
        *err = strdup("out of memory keeping the selected objects");
        return -1;
    }
    int rc = c_item_raw(ud, p, obj, text, strlen(text), err);
    free(text);
    return rc;
}

static void c_warn(void *ud, vb_warn_kind kind, const char *entry, const char *msg)
{
    vb_collector *c = ud;
    c->by_kind[kind]++;
    c->nwarn_total++;
    if (json_array_size(c->warnings) < c->max_warnings) {
        char *s = xfmt("%s: %s", entry, msg);
        if (s) {
            json_array_append_new(c->warnings, json_string(s));
            free(s);
        }
    }
}

static void c_version(void *ud, const char *v)
{
    vb_collector *c = ud;
    snprintf(c->format_version, sizeof c->format_version, "%s", v);
}

const vb_handler vb_collector_handler = {
    .want = c_want, .item = c_item, .item_raw = c_item_raw, .warn = c_warn,
    .version = c_version,
};

/* Whether a kept object of resource gr has namespace/name. */
static bool kept(json_t *items, const char *gr, const char *ns, const char *name)
{
    if (!ns || !name)
        return false;
    char key[800];
    snprintf(key, sizeof key, "%s\n%s\n%s", gr, ns, name);
    json_t *rec = json_object_get(items, key);
    return rec && !json_is_true(json_object_get(rec, "pending"));
}

/* Where a kept record goes: -2 nowhere (a pending PV / VSC whose claim is
 * not kept), 0..NKNOWN-1 a known list, -1 other_lists[*other]. */
static int target_of(const vb_collector *c, json_t *rec, const char **other)
{
    const char *gr = json_string_value(json_object_get(rec, "gr"));
    int k = known_index(gr);
    if (json_is_true(json_object_get(rec, "pending"))) {
        const char *rns = json_string_value(json_object_get(rec, "rns"));
        const char *rname = json_string_value(json_object_get(rec, "rname"));
        if (!kept(c->items, KNOWN[k == K_PV ? K_PVC : K_VS].gr, rns, rname))
            return -2;
    }
    if (k >= 0)
        return k;
    *other = gr;
    /* matched a bare resource name: list it under the name asked for */
    for (size_t i = 0; i < c->nwant; i++) {
        if (!strcmp(c->want_gr[i], gr))
            return -1;
    }
    for (size_t i = 0; i < c->nwant; i++) {
        size_t wl = strlen(c->want_gr[i]);
        if (!strchr(c->want_gr[i], '.') && strncmp(c->want_gr[i], gr, wl) == 0 && gr[wl] == '.') {
            *other = c->want_gr[i];
            break;
        }
    }
    return -1;
}

/* format_version, counts and warnings (lists are the caller's). */
static void finish(vb_collector *c, const vb_stats *st, json_t *res, const size_t *sizes)
{
    const char *key;
    json_object_set_new(res, "format_version",
                        c->format_version[0] ? json_string(c->format_version) : json_null());
    json_t *counts = json_object();
    for (size_t i = 0; i < NKNOWN; i++)
        json_object_set_new(counts, KNOWN[i].count, json_integer((json_int_t)sizes[i]));
    json_t *rc = json_object();
    json_t *arr;
    json_object_foreach(c->rcounts, key, arr) {
        json_int_t cl = json_integer_value(json_array_get(arr, 0));
        json_int_t pr = json_integer_value(json_array_get(arr, 1));
        json_int_t ot = json_integer_value(json_array_get(arr, 2));
        json_object_set_new_nocheck(rc, key, json_integer(pr ? pr : cl ? cl : ot));
    }
    json_object_set_new(counts, "resources", rc);
    json_object_set_new(counts, "entries", json_integer(st ? (json_int_t)st->entries : 0));
    json_object_set_new(counts, "items", json_integer(st ? (json_int_t)st->items : 0));
    json_object_set_new(counts, "parsed", json_integer(st ? (json_int_t)st->parsed : 0));
    json_object_set_new(counts, "skipped", json_integer((json_int_t)c->nwarn_total));
    json_object_set_new(counts, "duplicates", json_integer((json_int_t)c->duplicates));
    json_t *bk = json_object();
    for (size_t i = 0; i < VB_WARN__COUNT; i++)
        if (c->by_kind[i])
            json_object_set_new(bk, vb_warn_names[i], json_integer((json_int_t)c->by_kind[i]));
    json_object_set_new(counts, "skipped_by_reason", bk);
    json_object_set_new(res, "counts", counts);
    json_t *w = json_copy(c->warnings);       /* the collector stays as it is */
    if (w && c->nwarn_total > json_array_size(c->warnings)) {
        char s[128];
        snprintf(s, sizeof s, "... and %zu more skipped entries (see counts.skipped_by_reason)",
                 c->nwarn_total - json_array_size(c->warnings));
        json_array_append_new(w, json_string(s));
    }
    json_object_set_new(res, "warnings", w ? w : json_array());
}

json_t *vb_collector_result(vb_collector *c, const vb_stats *st)
{
    json_t *res = json_object();
    json_t *lists[NKNOWN];
    for (size_t i = 0; i < NKNOWN; i++) {
        lists[i] = json_array();
        json_object_set_new(res, KNOWN[i].list, lists[i]);
    }
    json_t *other = json_object();
    for (size_t i = 0; i < c->nwant; i++)      /* every requested one, even if empty */
        if (known_index(c->want_gr[i]) < 0 && !json_object_get(other, c->want_gr[i]))
            json_object_set_new_nocheck(other, c->want_gr[i], json_array());
    const char *key;
    json_t *rec;
    json_object_foreach(c->items, key, rec) {
        const char *oname = NULL;
        int k = target_of(c, rec, &oname);
        json_int_t ri = json_integer_value(json_object_get(rec, "raw"));
        if (k == -2 || ri < 0 || (size_t)ri >= c->nraw || !c->raw[ri])
            continue;
        json_t *obj = json_loadb(c->raw[ri], c->rawlen[ri], 0, NULL);
        if (!obj)
            continue;
        json_t *l = k >= 0 ? lists[k] : json_object_get(other, oname);
        if (!l) {
            l = json_array();
            json_object_set_new_nocheck(other, oname, l);
        }
        json_array_append_new(l, obj);
    }
    json_object_set_new(res, "other_lists", other);
    size_t sizes[NKNOWN];
    for (size_t i = 0; i < NKNOWN; i++)
        sizes[i] = json_array_size(lists[i]);
    finish(c, st, res, sizes);
    return res;
}

static bool raw_push(vb_raw_list *l, const char *data, size_t len)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        vb_raw *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return false;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = (vb_raw){ data, len };
    return true;
}

static vb_raw_list *other_list(vb_raw_result *out, const char *name)
{
    for (size_t i = 0; i < out->nother; i++)
        if (!strcmp(out->other[i].name, name))
            return &out->other[i];
    vb_raw_list *no = realloc(out->other, (out->nother + 1) * sizeof *no);
    if (!no)
        return NULL;
    out->other = no;
    vb_raw_list *l = &out->other[out->nother];
    *l = (vb_raw_list){ .name = strdup(name) };
    if (!l->name)
        return NULL;
    out->nother++;
    return l;
}

void vb_raw_result_free(vb_raw_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < NKNOWN; i++) {
        free(r->known[i].name);
        free(r->known[i].v);
    }
    for (size_t i = 0; i < r->nother; i++) {
        free(r->other[i].name);
        free(r->other[i].v);
    }
    free(r->other);
    memset(r, 0, sizeof *r);
}

json_t *vb_collector_result_raw(vb_collector *c, const vb_stats *st, vb_raw_result *out)
{
    memset(out, 0, sizeof *out);
    bool ok = true;
    for (size_t i = 0; i < NKNOWN; i++)
        ok &= (out->known[i].name = strdup(KNOWN[i].list)) != NULL;
    for (size_t i = 0; ok && i < c->nwant; i++)   /* every requested one, even if empty */
        if (known_index(c->want_gr[i]) < 0)
            ok = other_list(out, c->want_gr[i]) != NULL;
    const char *key;
    json_t *rec;
    json_object_foreach(c->items, key, rec) {
        if (!ok)
            break;
        const char *oname = NULL;
        int k = target_of(c, rec, &oname);
        json_int_t ri = json_integer_value(json_object_get(rec, "raw"));
        if (k == -2 || ri < 0 || (size_t)ri >= c->nraw || !c->raw[ri])
            continue;
        vb_raw_list *l = k >= 0 ? &out->known[k] : other_list(out, oname);
        ok = l && raw_push(l, c->raw[ri], c->rawlen[ri]);
    }
    if (!ok) {
        vb_raw_result_free(out);
        return NULL;
    }
    json_t *res = json_object();
    size_t sizes[NKNOWN];
    for (size_t i = 0; i < NKNOWN; i++)
        sizes[i] = out->known[i].n;
    finish(c, st, res, sizes);
    return res;
}
