/* velero_collect.c - the vb_handler that turns a streamed Velero backup into
 * the oadp_parse result: filters by namespace / resource / label selector,
 * keeps each object once (a preferred-version copy beats other API versions),
 * keeps PVs / VSCs bound to selected PVCs / VSs, counts every resource, and
 * records capped warnings.  Memory: the selected objects plus small tables. */
#include "velero_backup.h"

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
    json_t *items;         /* key -> {"rank","obj","gr","pending"} (insertion ordered) */
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
            if (asprintf(err, "resources: '%s' is not a resource name (lowercase plural, "
                              "optionally .<group>, e.g. configmaps or deployments.apps)",
                         name) < 0)
                *err = NULL;
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

static int c_item(void *ud, const vb_path *p, json_t *obj, char **err)
{
    (void)err;
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
    char key[800];
    item_key(p, key, sizeof key);
    json_t *rec = json_pack("{s:i, s:O, s:s, s:b}", "rank", rank_of(p), "obj", obj,
                            "gr", p->resource, "pending", pending);
    if (!rec)
        return 0;
    if (json_object_get(c->items, key))
        c->duplicates++;
    json_object_set_new_nocheck(c->items, key, rec);
    return 0;
}

static void c_warn(void *ud, vb_warn_kind kind, const char *entry, const char *msg)
{
    vb_collector *c = ud;
    c->by_kind[kind]++;
    c->nwarn_total++;
    if (json_array_size(c->warnings) < c->max_warnings) {
        char *s = NULL;
        if (asprintf(&s, "%s: %s", entry, msg) >= 0) {
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
    .want = c_want, .item = c_item, .warn = c_warn, .version = c_version,
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
        const char *gr = json_string_value(json_object_get(rec, "gr"));
        json_t *obj = json_object_get(rec, "obj");
        int k = known_index(gr);
        if (json_is_true(json_object_get(rec, "pending"))) {
            json_t *spec = json_object_get(obj, "spec");
            json_t *ref = json_object_get(spec, k == K_PV ? "claimRef" : "volumeSnapshotRef");
            const char *rns = json_string_value(json_object_get(ref, "namespace"));
            const char *rname = json_string_value(json_object_get(ref, "name"));
            if (!kept(c->items, KNOWN[k == K_PV ? K_PVC : K_VS].gr, rns, rname))
                continue;
        }
        if (k >= 0) {
            json_array_append(lists[k], obj);
        } else {
            json_t *l = json_object_get(other, gr);
            if (!l) {       /* matched a bare resource name: list it under the name asked for */
                for (size_t i = 0; i < c->nwant && !l; i++)
                    if (!strchr(c->want_gr[i], '.') && strncmp(c->want_gr[i], gr, strlen(c->want_gr[i])) == 0 &&
                        gr[strlen(c->want_gr[i])] == '.')
                        l = json_object_get(other, c->want_gr[i]);
            }
            if (!l) {
                l = json_array();
                json_object_set_new_nocheck(other, gr, l);
            }
            json_array_append(l, obj);
        }
    }
    json_object_set_new(res, "other_lists", other);
    json_object_set_new(res, "format_version",
                        c->format_version[0] ? json_string(c->format_version) : json_null());

    json_t *counts = json_object();
    for (size_t i = 0; i < NKNOWN; i++)
        json_object_set_new(counts, KNOWN[i].count, json_integer((json_int_t)json_array_size(lists[i])));
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
    if (c->nwarn_total > json_array_size(c->warnings)) {
        char s[128];
        snprintf(s, sizeof s, "... and %zu more skipped entries (see counts.skipped_by_reason)",
                 c->nwarn_total - json_array_size(c->warnings));
        json_array_append_new(c->warnings, json_string(s));
    }
    json_object_set(res, "warnings", c->warnings);
    json_object_clear(c->items);
    return res;
}
