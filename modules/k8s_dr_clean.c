/* k8s_dr_clean.c - Ansible binary module ocpv.dr.k8s_dr_clean: makes
 * Kubernetes objects portable to the DR cluster (lib/dr/transform), server-side
 * applies them there, prunes what ocpv-dr manages on DR but the primary no
 * longer has, or does all of that straight from the primary (mirror).
 *
 *   clean   resources -> cleaned + marked objects (no cluster access)
 *   apply   clean, read the DR objects (one batch), skip those whose hash
 *           annotation matches, server-side apply the rest (field manager
 *           ocpv-dr) in apply order, many requests in flight; a DR object
 *           ocpv-dr did not make for this source cluster is a conflict, left
 *           alone unless take_over (lib/dr/dr_prune: dr_apply_decide)
 *   prune   list the DR objects ocpv-dr manages in scope (namespaces x
 *           kinds, lib/dr/dr_scope: PV / VSC through their claim / snapshot, a
 *           Namespace by name, other cluster-scoped kinds whole) recorded
 *           from this source cluster, delete those the primary (the `source`
 *           listing, or `resources`) lacks; guards (lib/dr/dr_prune: per
 *           namespace and kind empty source, ratio, count) refuse a mass
 *           delete before anything is deleted; deleted_sources (deletion
 *           events) exempt the objects they name from the empty-source and
 *           ratio guards
 *   mirror  list the primary through `source`, then apply + prune (the
 *           primary's and DR's lists in flight together, one k8s_batch)
 *   list    list the primary through `source` (no writes anywhere) and return
 *           what is protected, digested (lib/dr/inventory: bound claims and
 *           their volumes, ready snapshots and contents); with compare_dr
 *           also which volumes DR already holds a copy of
 *
 * Check mode writes nothing (dry-run requests validate the plan); diff mode
 * returns before/after of every changed object.
 */
#include "module.h"
#include "k8s.h"
#include "k8s_conn_opts.h"
#include "jsonx.h"
#include "transform.h"
#include "inventory.h"
#include "secret_mask.h"
#include "dr_scope.h"
#include "dr_prune.h"
#include "xstr.h"
#include "xtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ spec */

static const char *const modes[] = { "clean", "apply", "prune", "mirror", "list", NULL };
static const char *const volume_modes[] = { "bound", "all", NULL };
static const char *const claim_modes[] = { "keep", "drop", NULL };

static const mod_opt own_opts[] = {
    { .name = "mode", .type = OPT_STR, .def = "\"apply\"", .choices = modes },
    { .name = "resources", .type = OPT_LIST, .def = "[]" },
    { .name = "source", .type = OPT_DICT },   /* suboptions filled in main() */
    { .name = "source_cluster", .type = OPT_STR },
    { .name = "namespaces", .type = OPT_LIST, .elements = OPT_STR, .def = "[]" },
    { .name = "kinds", .type = OPT_LIST, .elements = OPT_STR,
      .def = "[\"PersistentVolume\",\"PersistentVolumeClaim\","
             "\"VolumeSnapshotContent\",\"VolumeSnapshot\"]" },
    { .name = "claim_ref", .type = OPT_STR, .def = "\"keep\"", .choices = claim_modes },
    { .name = "keep_annotations", .type = OPT_LIST, .elements = OPT_STR, .def = "[]" },
    { .name = "drop_annotations", .type = OPT_LIST, .elements = OPT_STR, .def = "[]" },
    { .name = "max_delete", .type = OPT_INT },
    { .name = "max_delete_ratio", .type = OPT_FLOAT, .def = "0.5" },
    { .name = "allow_empty_source", .type = OPT_BOOL, .def = "false" },
    { .name = "force_conflicts", .type = OPT_BOOL, .def = "false" },
    { .name = "take_over", .type = OPT_BOOL, .def = "false" },
    { .name = "deleted_sources", .type = OPT_LIST, .def = "[]" },
    { .name = "fail_on_error", .type = OPT_BOOL, .def = "true" },
    { .name = "parallel", .type = OPT_INT, .def = "16" },
    { .name = "return_objects", .type = OPT_BOOL, .def = "true" },
    { .name = "names", .type = OPT_LIST, .elements = OPT_STR, .def = "[]" },
    { .name = "volumes", .type = OPT_STR, .def = "\"bound\"", .choices = volume_modes },
    { .name = "compare_dr", .type = OPT_BOOL, .def = "false" },
    { 0 }
};
#define OWN_COUNT (sizeof own_opts / sizeof own_opts[0] - 1)

static mod_opt all_opts[K8S_CONN_OPT_COUNT + OWN_COUNT + 1];
static mod_opt source_opts[K8S_CONN_OPT_COUNT + 1];
static const mod_spec spec = { .name = "k8s_dr_clean", .opts = all_opts,
                               .supports_check_mode = true };

/* ------------------------------------------------------------ state */

enum action { A_NONE, A_CLEANED, A_CREATED, A_UPDATED, A_UNCHANGED, A_DELETED,
              A_SKIPPED, A_CONFLICT, A_FAILED };
static const char *const action_names[] = { "none", "cleaned", "created", "updated",
    "unchanged", "deleted", "skipped", "conflict", "failed" };

typedef struct item {
    json_t *src;                /* the object as given / listed (owned ref) */
    json_t *desired;            /* cleaned + marked (owned), NULL when it failed */
    json_t *live;               /* the DR object, NULL when absent (owned) */
    const k8s_resource *res;    /* on the DR cluster */
    char kind[128], ns[254], name[254];
    enum action action;
    char *reason;               /* malloc'd */
    bool looked_up;
    bool fatal;                 /* a read got 401 or no answer: the whole run stops */
} item;

typedef struct run {
    module m;
    tf_opts topts;
    k8s_client *dr, *src;
    const char *source_cluster;
    bool take_over;             /* apply may take over objects not ocpv-dr's for this source */
    k8s_write_opts wopts;
    item *items;
    size_t n, cap;
    json_t *index;              /* "Kind/ns/name" -> item index */
    json_t *diff_before, *diff_after;
    size_t nfailed;
    bool changed;
    json_t *timings;            /* phase -> seconds, returned */
    json_t *dr_lists;           /* "plural|ns" -> DR list taken by lookup(), reused by prune() */
    double t_mark;
} run;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Records the seconds since the previous mark under `phase`. */
static void mark(run *r, const char *phase)
{
    double t = now_s();
    json_object_set_new(r->timings, phase, json_real((double)(long long)((t - r->t_mark) * 1000) / 1000));
    r->t_mark = t;
}

static void set_reason(item *it, enum action a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_reason(item *it, enum action a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(it->reason);
    if (vasprintf(&it->reason, fmt, ap) < 0)
        it->reason = NULL;
    va_end(ap);
    it->action = a;
}

static const char *ref_of(const item *it, char *buf, size_t len)
{
    if (it->ns[0])
        snprintf(buf, len, "%s %s/%s", it->kind, it->ns, it->name);
    else
        snprintf(buf, len, "%s %s", it->kind[0] ? it->kind : "object", it->name);
    return buf;
}

static void fail_item_k8s(item *it, const char *verb, const k8s_error *err)
{
    char ebuf[1400], rbuf[700];
    k8s_strerror(err, ebuf, sizeof ebuf);
    const char *hint = "";
    if (err->status == 403)
        hint = " (the credential lacks RBAC permission for this)";
    else if (err->status == 409)
        hint = " (another field manager owns these fields: set force_conflicts to take them over)";
    else if (err->status == 401)
        hint = " (credential rejected: expired or wrong token?)";
    set_reason(it, A_FAILED, "%s: %s failed: %s%s", ref_of(it, rbuf, sizeof rbuf), verb, ebuf, hint);
}

static char *key_of(const char *kind, const char *ns, const char *name)
{
    char *k = NULL;
    if (asprintf(&k, "%s/%s/%s", kind, ns ? ns : "", name) < 0)
        return xstrdup("");
    return k;
}

static item *add_item(run *r, json_t *src)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        item *p = realloc(r->items, r->cap * sizeof *p);
        if (!p) {
            fputs("k8s_dr_clean: out of memory\n", stderr);
            exit(1);
        }
        r->items = p;
    }
    item *it = &r->items[r->n++];
    memset(it, 0, sizeof *it);
    it->src = json_incref(src);
    snprintf(it->kind, sizeof it->kind, "%s", jx_str_or(src, "kind", ""));
    snprintf(it->ns, sizeof it->ns, "%s", jx_str_or(src, "metadata.namespace", ""));
    snprintf(it->name, sizeof it->name, "%s", jx_str_or(src, "metadata.name", ""));
    return it;
}

/* ------------------------------------------------------------ kinds */

/* "Kind" (a kind of lib/k8s/k8s_resources.c's built-in table) or
 * "<apiVersion>/Kind" ("v1/ConfigMap",
 * "example.com/v1/Widget").  Fills api (malloc'd) and kind (pointer into s). */
static int split_kind(const char *s, char **api, const char **kind, char **err)
{
    const char *slash = strrchr(s, '/');
    if (slash) {
        *kind = slash + 1;
        *api = strndup(s, (size_t)(slash - s));
        if (!**kind || !**api) {
            xerr_set(err, "kinds: \"%s\" is not Kind or <apiVersion>/Kind", s);
            return -1;
        }
        return 0;
    }
    const k8s_resource *b = k8s_resource_builtin_kind(s);
    if (b) {
        char av[300];
        *kind = b->kind;
        *api = xstrdup(k8s_api_version(b, av, sizeof av));
        return 0;
    }
    xerr_set(err, "kinds: unknown kind \"%s\": give it with its apiVersion, "
                  "e.g. \"example.com/v1/%s\"", s, s);
    return -1;
}

static const k8s_resource *resolve_kind(k8s_client *c, const char *cluster, const char *s,
                                        char **err)
{
    char *api = NULL;
    const char *kind;
    if (split_kind(s, &api, &kind, err) != 0) {
        free(api);
        return NULL;
    }
    k8s_error e = { 0 };
    const k8s_resource *res = k8s_resource_find(c, api, kind, &e);
    if (!res) {
        char eb[1400];
        xerr_set(err, "kinds: %s on the %s cluster: %s", s, cluster,
                 k8s_strerror(&e, eb, sizeof eb));
    }
    free(api);
    return res;
}

/* ------------------------------------------------------------ connections */

static k8s_client *dr_connect(run *r, json_t *params, const char *what)
{
    k8s_conn conn;
    memset(&conn, 0, sizeof conn);
    conn.validate_certs = -1;
    k8s_conn_from_json(&conn, params);
    k8s_config cfg = { .max_retries = 5, .timeout_ms = 30000, .connect_timeout_ms = 10000,
                       .max_in_flight = (int)mod_int(&r->m, "parallel"),
                       .field_manager = "ocpv-dr" };
    if (cfg.max_in_flight < 1)
        cfg.max_in_flight = 1;
    k8s_error e = { 0 };
    k8s_client *c = k8s_client_new(&conn, &cfg, &e);
    if (!c) {
        char eb[1400];
        mod_fail(&r->m, "%s cluster connection: %s", what, k8s_strerror(&e, eb, sizeof eb));
    }
    k8s_mod_warn_transport(&r->m, c, what);
    return c;
}

/* ------------------------------------------------------------ input */

/* One element of `resources`: an object, a JSON string, or a *List. */
static void take_resource(run *r, json_t *el, size_t idx)
{
    json_t *obj = el;
    if (json_is_string(el)) {
        json_error_t je;
        obj = json_loads(json_string_value(el), 0, &je);
        if (!obj) {
            /* jansson quotes the input near the error: never echo it (it may
             * hold a Secret's data) */
            char *near = strstr(je.text, " near '");
            if (near)
                *near = '\0';
            item *it = add_item(r, json_null());
            set_reason(it, A_FAILED, "resources[%zu]: malformed JSON at line %d column %d: %s",
                       idx, je.line, je.column, je.text);
            return;
        }
    } else {
        json_incref(obj);
    }
    if (!json_is_object(obj)) {
        item *it = add_item(r, json_null());
        set_reason(it, A_FAILED, "resources[%zu]: not an object (a dict or a JSON string is needed)",
                   idx);
        json_decref(obj);
        return;
    }
    const char *kind = jx_str(obj, "kind");
    json_t *items = json_object_get(obj, "items");
    if (kind && strlen(kind) > 4 && strcmp(kind + strlen(kind) - 4, "List") == 0
        && json_is_array(items)) {
        size_t i;
        json_t *sub;
        json_array_foreach(items, i, sub)
            take_resource(r, sub, idx);
        json_decref(obj);
        return;
    }
    if (kind && strcmp(kind, "Secret") == 0) {
        /* a private copy: the input is masked for the invocation echo */
        json_t *cp = json_deep_copy(obj);
        add_item(r, cp);
        json_decref(cp);
    } else {
        add_item(r, obj);
    }
    json_decref(obj);
}

/* The runtime echoes the parameters (invocation.module_args): Secret values,
 * cloud-init user / network data (lib/base/secret_mask.c) and JSON text (which
 * may hold them) must not be echoed.  An element that holds any is replaced
 * by a masked copy: the items keep the object to apply. */
static void mask_input(json_t *resources)
{
    size_t i;
    json_t *el;
    json_array_foreach(resources, i, el) {
        if (json_is_string(el)) {
            json_array_set_new(resources, i, json_string("(JSON text, not echoed)"));
            continue;
        }
        if (json_is_array(json_object_get(el, "items"))) {
            mask_input(json_object_get(el, "items"));
            continue;
        }
        json_t *c = json_deep_copy(el);
        if (c && sm_mask_object(c, NULL, 0))
            json_array_set_new(resources, i, c);
        else
            json_decref(c);
    }
}

/* Cleans every pending item and resolves its DR resource.  In mirror mode
 * an in-progress snapshot is skipped rather than failed. */
static void prepare(run *r, bool need_resource, bool skip_in_progress)
{
    for (size_t i = 0; i < r->n; i++) {
        item *it = &r->items[i];
        if (it->action != A_NONE)
            continue;
        if (tf_cluster_generated(it->src)) {
            set_reason(it, A_SKIPPED, "%s/%s: created by every cluster for itself, not replicated",
                       it->ns, it->name);
            continue;
        }
        char *err = NULL;
        it->desired = tf_for_dr(it->src, &r->topts, r->source_cluster, &err);
        if (!it->desired) {
            const char *k = it->kind;
            bool in_progress = err && (strstr(err, "not bound to a VolumeSnapshotContent yet")
                                       || strstr(err, "not cut yet"));
            set_reason(it, skip_in_progress && in_progress && (strcmp(k, "VolumeSnapshot") == 0
                       || strcmp(k, "VolumeSnapshotContent") == 0) ? A_SKIPPED : A_FAILED,
                       "%s", err ? err : "cannot clean the object");
            free(err);
            continue;
        }
        if (!need_resource)
            continue;
        k8s_error e = { 0 };
        it->res = k8s_resource_find(r->dr, jx_str(it->desired, "apiVersion"), it->kind, &e);
        char rb[700], eb[1400];
        if (!it->res) {
            set_reason(it, A_FAILED, "%s: unknown kind %s %s on the DR cluster: %s",
                       ref_of(it, rb, sizeof rb), jx_str(it->desired, "apiVersion"), it->kind,
                       k8s_strerror(&e, eb, sizeof eb));
        } else if (it->res->namespaced && !it->ns[0]) {
            set_reason(it, A_FAILED, "%s: metadata.namespace is missing (the kind is namespaced)",
                       ref_of(it, rb, sizeof rb));
        } else if (!it->res->namespaced) {
            it->ns[0] = '\0';
            json_object_del(json_object_get(it->desired, "metadata"), "namespace");
        }
        /* a name or namespace that cannot be one path segment ("..", "a/b")
         * fails here, before any request (the client refuses it too) */
        char *path = NULL;
        if (it->res && it->action == A_NONE &&
            k8s_path_build(it->res, it->ns[0] ? it->ns : NULL, jx_str(it->desired, "metadata.name"),
                           &path, &e) != 0)
            set_reason(it, A_FAILED, "%s: %s", ref_of(it, rb, sizeof rb),
                       k8s_strerror(&e, eb, sizeof eb));
        free(path);
    }
    /* duplicates: the later one fails, naming the earlier */
    for (size_t i = 0; i < r->n; i++) {
        item *it = &r->items[i];
        if (it->action != A_NONE)
            continue;
        char *k = key_of(it->kind, it->ns, it->name);
        json_t *prev = json_object_get(r->index, k);
        char rb[700];
        if (prev)
            set_reason(it, A_FAILED, "%s: duplicate: given twice in the input",
                       ref_of(it, rb, sizeof rb));
        else
            json_object_set_new(r->index, k, json_integer((json_int_t)i));
        free(k);
    }
}

/* ------------------------------------------------------------ lookup */

static void on_get(void *ud, int rc, json_t *out, const k8s_error *err)
{
    item *it = ud;
    it->looked_up = true;
    k8s_error e = { 0 };
    if (rc == 0 && k8s_object_check(out, it->res, it->ns[0] ? it->ns : NULL, it->name, NULL, 200, &e) != 0) {
        it->fatal = true;   /* a DR server that answers nonsense: write nothing */
        fail_item_k8s(it, "read of the DR object", &e);
    } else if (rc == 0) {
        it->live = json_incref(out);
    } else if (err && err->status != 404) {
        it->fatal = err->status == 401 || (err->status == 0 && err->curl_code != 0);
        fail_item_k8s(it, "read of the DR object", err);
    }
}

/* Reads the current DR object of every pending item: a list per
 * (kind, namespace) when many objects share it, else one GET each, all in
 * one batch.  A 401 ends the module before any write. */
static void lookup(run *r)
{
    /* lists prefetched by prefetch(): resolve their items without requests */
    const char *cached_key;
    json_t *cached;
    json_object_foreach(r->dr_lists, cached_key, cached) {
        size_t i;
        json_t *o;
        json_array_foreach(cached, i, o) {
            const char *kind = jx_str(o, "kind");
            char *k = key_of(kind ? kind : "", tf_kind_cluster_scoped(kind) ? "" : jx_str(o, "metadata.namespace"),
                             jx_str_or(o, "metadata.name", ""));
            json_t *idx = json_object_get(r->index, k);
            free(k);
            if (idx) {
                item *it = &r->items[json_integer_value(idx)];
                if (it->action == A_NONE && !it->live)
                    it->live = json_incref(o);
            }
        }
    }
    for (size_t i = 0; i < r->n; i++) {
        item *it = &r->items[i];
        char k[400];
        if (it->action != A_NONE || !it->res)
            continue;
        snprintf(k, sizeof k, "%s|%s", it->res->plural, it->res->namespaced ? it->ns : "");
        if (json_object_get(r->dr_lists, k))
            it->looked_up = true;   /* absent from a complete list: does not exist */
    }

    json_t *groups = json_object();   /* "Kind/ns" -> count */
    for (size_t i = 0; i < r->n; i++) {
        item *it = &r->items[i];
        if (it->action != A_NONE || it->looked_up)
            continue;
        char g[400];
        snprintf(g, sizeof g, "%s/%s", it->kind, it->ns);
        json_object_set_new(groups, g, json_integer(json_integer_value(json_object_get(groups, g)) + 1));
    }
    const char *g;
    json_t *cnt;
    json_object_foreach(groups, g, cnt) {
        if (json_integer_value(cnt) < 32)
            continue;
        /* find one item of the group to learn resource + namespace */
        item *first = NULL;
        for (size_t i = 0; i < r->n && !first; i++) {
            item *it = &r->items[i];
            char gg[400];
            snprintf(gg, sizeof gg, "%s/%s", it->kind, it->ns);
            if (it->action == A_NONE && !it->looked_up && strcmp(gg, g) == 0)
                first = it;
        }
        if (!first)
            continue;
        json_t *list = NULL;
        k8s_error e = { 0 };
        if (k8s_list(r->dr, first->res, first->res->namespaced ? first->ns : NULL, NULL,
                     &list, NULL, &e) != 0) {
            if (e.status == 401 || e.status == 0) {
                char eb[1400];
                json_decref(groups);
                mod_fail(&r->m, "DR cluster %s: %s (credential rejected or server unreachable)",
                         k8s_client_server(r->dr), k8s_strerror(&e, eb, sizeof eb));
            }
            continue;   /* e.g. no list permission: fall back to GETs */
        }
        char ck[400];
        snprintf(ck, sizeof ck, "%s|%s", first->res->plural, first->res->namespaced ? first->ns : "");
        json_object_set(r->dr_lists, ck, list);
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o) {
            char *k = key_of(first->kind, first->res->namespaced ? jx_str(o, "metadata.namespace") : "",
                             jx_str_or(o, "metadata.name", ""));
            json_t *idx = json_object_get(r->index, k);
            free(k);
            if (idx) {
                item *it = &r->items[json_integer_value(idx)];
                if (it->action == A_NONE && !it->looked_up) {
                    it->live = json_incref(o);
                }
            }
        }
        /* everything of the group not in the list does not exist */
        for (size_t j = 0; j < r->n; j++) {
            item *it = &r->items[j];
            char gg[400];
            snprintf(gg, sizeof gg, "%s/%s", it->kind, it->ns);
            if (it->action == A_NONE && strcmp(gg, g) == 0)
                it->looked_up = true;
        }
        json_decref(list);
    }
    json_decref(groups);

    k8s_batch *b = k8s_batch_new(r->dr);
    size_t queued = 0;
    for (size_t i = 0; i < r->n; i++) {
        item *it = &r->items[i];
        if (it->action != A_NONE || it->looked_up)
            continue;
        k8s_batch_get(b, it->res, it->ns[0] ? it->ns : NULL, it->name, on_get, it);
        queued++;
    }
    if (queued)
        k8s_batch_run(b);
    k8s_batch_free(b);
    for (size_t i = 0; i < r->n; i++) {
        item *it = &r->items[i];
        if (it->fatal)
            mod_fail(&r->m, "DR cluster %s: nothing written: %s", k8s_client_server(r->dr),
                     it->reason);
    }
}

/* ------------------------------------------------------------ apply */

/* A copy fit for output (objects, pruned_objects, diff before/after): a
 * Secret's values and VM cloud-init user / network data are masked
 * (lib/base/secret_mask.c: they are applied, never shown), managedFields left
 * out. */
static json_t *for_output(const json_t *obj)
{
    if (!obj)
        return json_null();
    json_t *c = json_deep_copy(obj);
    json_object_del(json_object_get(c, "metadata"), "managedFields");
    sm_mask_object(c, NULL, 0);
    return c;
}

static void record_diff(run *r, item *it, json_t *after)
{
    if (!r->m.diff_mode)
        return;
    char rb[700];
    ref_of(it, rb, sizeof rb);
    json_object_set_new(r->diff_before, rb, for_output(it->live));
    json_object_set_new(r->diff_after, rb, for_output(after));
}

static void on_apply(void *ud, int rc, json_t *out, const k8s_error *err)
{
    item *it = ud;
    (void)out;
    if (rc != 0)
        fail_item_k8s(it, "server-side apply", err);
}

static void apply_all(run *r)
{
    /* plan */
    for (size_t i = 0; i < r->n; i++) {
        item *it = &r->items[i];
        if (it->action != A_NONE)
            continue;
        const char *other = it->live ? tf_annotation_of(it->live, TF_ANN_SOURCE_CLUSTER) : NULL;
        char rb[700];
        switch (dr_apply_decide(it->desired, it->live, r->source_cluster, r->take_over)) {
        case DR_APPLY_CONFLICT_UNMANAGED:
            set_reason(it, A_CONFLICT, "%s: conflict: exists on DR without the ocpv-dr label "
                       "(not made by ocpv-dr): left untouched (take_over: true makes ocpv-dr "
                       "manage it, and prune it later)", ref_of(it, rb, sizeof rb));
            break;
        case DR_APPLY_CONFLICT_OTHER:
            set_reason(it, A_CONFLICT, "%s: conflict: managed by ocpv-dr for source cluster "
                       "\"%.200s\", not \"%.200s\": left untouched (take_over: true moves it to "
                       "this source)", ref_of(it, rb, sizeof rb), other ? other : "",
                       r->source_cluster ? r->source_cluster : "");
            break;
        case DR_APPLY_UNCHANGED:
            set_reason(it, A_UNCHANGED, "hash %.12s matches the DR object", tf_hash_of(it->desired));
            break;
        case DR_APPLY_TAKE_UNMANAGED:
            tf_adopt_live_refs(it->desired, it->live);
            set_reason(it, A_UPDATED, "%s", "exists on DR without the ocpv-dr label: taken over "
                       "(take_over)");
            break;
        case DR_APPLY_TAKE_OTHER:
            tf_adopt_live_refs(it->desired, it->live);
            set_reason(it, A_UPDATED, "recorded from source cluster \"%.200s\": taken over "
                       "(take_over)", other ? other : "");
            break;
        case DR_APPLY_UPDATE:
            tf_adopt_live_refs(it->desired, it->live);
            set_reason(it, A_UPDATED, "%s", "content changed on the primary");
            break;
        case DR_APPLY_CREATE:
            set_reason(it, A_CREATED, "%s", "absent on DR");
            break;
        }
    }
    /* write, rank by rank (PV before PVC, VSC before VS) */
    k8s_batch *b = k8s_batch_new(r->dr);
    int rank = -1;
    for (;;) {
        int next = 1 << 30;
        for (size_t i = 0; i < r->n; i++) {
            item *it = &r->items[i];
            int rk = tf_rank_kind(it->kind);
            if ((it->action == A_CREATED || it->action == A_UPDATED) && rk > rank && rk < next)
                next = rk;
        }
        if (next == 1 << 30)
            break;
        rank = next;
        for (size_t i = 0; i < r->n; i++) {
            item *it = &r->items[i];
            if ((it->action == A_CREATED || it->action == A_UPDATED)
                && tf_rank_kind(it->kind) == rank)
                k8s_batch_apply(b, it->res, it->desired, &r->wopts, on_apply, it);
        }
        k8s_batch_run(b);
    }
    k8s_batch_free(b);
    for (size_t i = 0; i < r->n; i++) {
        item *it = &r->items[i];
        if (it->action == A_CREATED || it->action == A_UPDATED) {
            r->changed = true;
            record_diff(r, it, it->desired);
            if (r->m.check_mode) {
                char *old = it->reason;
                it->reason = NULL;
                set_reason(it, it->action, "%s (check mode: validated with dryRun, not written)",
                           old ? old : "");
                free(old);
            }
        }
    }
}

/* ------------------------------------------------------------ listing */

/* Lists `res` in scope: namespaced kinds per namespace, cluster-scoped
 * ones whole and filtered through dr_in_scope (lib/dr/dr_scope.h: PV / VSC
 * through their claim / snapshot, Namespace by name, other cluster-scoped
 * kinds in scope as a whole).  Appends to *out.
 * Returns 0 or -1 with *err. */
static int list_scope(k8s_client *c, const k8s_resource *res, json_t *namespaces,
                      const char *selector, json_t *cache, json_t *out, char **err)
{
    k8s_list_opts lo = { .label_selector = selector, .limit = 500 };
    size_t i;
    json_t *ns;
    char ck[400];
    if (res->namespaced) {
        json_array_foreach(namespaces, i, ns) {
            snprintf(ck, sizeof ck, "%s|%s", res->plural, json_string_value(ns));
            if (json_object_get(cache, ck)) {
                json_array_extend(out, json_object_get(cache, ck));
                continue;
            }
            json_t *items = NULL;
            k8s_error e = { 0 };
            if (k8s_list(c, res, json_string_value(ns), &lo, &items, NULL, &e) != 0) {
                char eb[1400];
                xerr_set(err, "listing %s in namespace %s: %s", res->kind,
                         json_string_value(ns), k8s_strerror(&e, eb, sizeof eb));
                return -1;
            }
            json_array_extend(out, items);
            json_decref(items);
        }
        return 0;
    }
    json_t *items = NULL;
    k8s_error e = { 0 };
    snprintf(ck, sizeof ck, "%s|", res->plural);
    if ((items = json_incref(json_object_get(cache, ck))) == NULL
        && k8s_list(c, res, NULL, &lo, &items, NULL, &e) != 0) {
        char eb[1400];
        xerr_set(err, "listing %s: %s", res->kind, k8s_strerror(&e, eb, sizeof eb));
        return -1;
    }
    json_t *o;
    json_array_foreach(items, i, o)
        if (dr_in_scope(o, res->namespaced, namespaces))
            json_array_append(out, o);
    json_decref(items);
    return 0;
}

/* ------------------------------------------------------------ prefetch */

/* One list of prefetch(): a request of its batch. */
typedef struct ljob {
    k8s_client *c;
    const k8s_resource *res;
    const char *ns;            /* NULL for cluster-scoped */
    bool primary;
    json_t *items;
    k8s_error err;
    int rc;
} ljob;

static void on_list(void *ud, int rc, json_t *out, const k8s_error *err)
{
    ljob *j = ud;
    j->rc = rc;
    if (rc == 0)
        j->items = json_incref(out);
    else if (err)
        j->err = *err;
}

/* Lists the primary (into *primary, scope-filtered) and the DR side (into
 * r->dr_lists, complete lists reused by lookup() and prune()) at once: one
 * k8s_batch, both clusters' lists in flight together.  A failed primary
 * listing ends the run before any write; a failed DR listing is only fatal
 * for 401 / no answer (else lookup/prune ask again and report). */
static void prefetch(run *r, const k8s_resource **src_res, size_t nsrc,
                     const k8s_resource **dr_res, size_t ndr, json_t *namespaces,
                     json_t *primary)
{
    size_t nns = json_array_size(namespaces), cap = (nsrc + ndr) * (nns + 1), n = 0;
    ljob *jobs = calloc(cap ? cap : 1, sizeof *jobs);
    k8s_batch *b = k8s_batch_new(r->src ? r->src : r->dr);
    if (!jobs || !b)
        mod_fail(&r->m, "prefetch: out of memory");
    for (int side = 0; side < 2; side++) {
        const k8s_resource **res = side == 0 ? src_res : dr_res;
        size_t nres = side == 0 ? nsrc : ndr;
        for (size_t k = 0; k < nres; k++) {
            if (!res[k]->namespaced) {
                jobs[n++] = (ljob){ .c = side == 0 ? r->src : r->dr, .res = res[k], .primary = side == 0 };
                continue;
            }
            for (size_t i = 0; i < nns; i++)
                jobs[n++] = (ljob){ .c = side == 0 ? r->src : r->dr, .res = res[k],
                                    .ns = json_string_value(json_array_get(namespaces, i)),
                                    .primary = side == 0 };
        }
    }
    k8s_list_opts lo = { .limit = 500 };
    for (size_t i = 0; i < n; i++)
        k8s_batch_list(b, jobs[i].c, jobs[i].res, jobs[i].ns, &lo, on_list, &jobs[i]);
    k8s_batch_run(b);
    k8s_batch_free(b);
    char msg[1600] = "";
    for (size_t i = 0; i < n; i++) {
        ljob *j = &jobs[i];
        char eb[1400];
        if (j->rc != 0 && !msg[0] && (j->primary || j->err.status == 401 || j->err.status == 0))
            snprintf(msg, sizeof msg, "%s cluster %s: listing %s%s%s: %s%s",
                     j->primary ? "primary (source)" : "DR", k8s_client_server(j->c), j->res->kind,
                     j->ns ? " in namespace " : "", j->ns ? j->ns : "",
                     k8s_strerror(&j->err, eb, sizeof eb),
                     j->err.status == 401 ? " (credential rejected: expired or wrong token?)" : "");
        if (j->rc != 0)
            continue;
        if (j->primary) {
            size_t k;
            json_t *o;
            json_array_foreach(j->items, k, o)
                if (dr_in_scope(o, j->res->namespaced, namespaces))
                    json_array_append(primary, o);
        } else {
            char ck[400];
            snprintf(ck, sizeof ck, "%s|%s", j->res->plural, j->ns ? j->ns : "");
            json_object_set(r->dr_lists, ck, j->items);
        }
    }
    for (size_t i = 0; i < n; i++)
        json_decref(jobs[i].items);
    free(jobs);
    if (msg[0])
        mod_fail(&r->m, "%s: nothing applied or deleted", msg);
}

/* ------------------------------------------------------------ prune */

static void on_delete(void *ud, int rc, json_t *out, const k8s_error *err)
{
    item *it = ud;
    (void)out;
    if (rc != 0 && err && err->status == 404) {
        set_reason(it, A_DELETED, "%s", "already gone from DR");
        return;
    }
    if (rc != 0)
        fail_item_k8s(it, "delete", err);
}

/* primary: the primary's objects in scope (any kinds).  Deletes the DR
 * objects ocpv-dr made from this source cluster that the primary lacks, or
 * nothing at all when a guard trips (lib/dr/dr_prune: stale objects, deletion
 * evidence, guards). */
static void prune(run *r, json_t *primary, const k8s_resource **dr_res, size_t nres)
{
    json_t *namespaces = mod_param(&r->m, "namespaces");
    size_t i;
    json_t *o;
    dr_evidence ev;
    char *eerr = NULL;
    json_t *warnings = json_array();
    if (dr_evidence_read(&ev, mod_param(&r->m, "deleted_sources"), warnings, &eerr) != 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", eerr ? eerr : "deleted_sources: cannot read");
        free(eerr);
        mod_fail(&r->m, "%s", msg);
    }
    json_array_foreach(warnings, i, o)
        mod_warn(&r->m, "%s", json_string_value(o));
    json_decref(warnings);
    dr_prune *plan = dr_prune_new(primary, r->source_cluster, &ev);
    if (!plan)
        mod_fail(&r->m, "prune: out of memory");
    /* DR side: managed objects of this source in scope, per kind */
    json_t *stale = json_array();
    for (size_t k = 0; k < nres; k++) {
        json_t *all = json_array();
        char *err = NULL;
        if (list_scope(r->dr, dr_res[k], namespaces, TF_MANAGED_LABEL "=" TF_MANAGED_VALUE,
                       r->dr_lists, all, &err) != 0) {
            json_decref(all);
            json_decref(stale);
            dr_prune_free(plan);
            dr_evidence_free(&ev);
            mod_set(&r->m, "counts", json_pack("{si}", "deleted", 0));
            mod_fail(&r->m, "prune: nothing deleted: DR %s", err ? err : "listing failed");
        }
        json_array_foreach(all, i, o) {
            dr_prune_verdict v = dr_prune_consider(plan, o, dr_res[k]->kind,
                                                   dr_res[k]->namespaced);
            if (v == DR_PRUNE_STALE || v == DR_PRUNE_STALE_EVIDENCED)
                json_array_append_new(stale, json_pack("{sOsisb}", "obj", o, "res", (int)k,
                                                       "evidenced", v == DR_PRUNE_STALE_EVIDENCED));
        }
        json_decref(all);
    }
    mod_set(&r->m, "prune_other_sources", json_integer((json_int_t)dr_prune_foreign(plan)));
    json_t *maxd = mod_param(&r->m, "max_delete");
    dr_guard_opts go = { .allow_empty_source = mod_bool(&r->m, "allow_empty_source"),
                         .max_delete = json_is_integer(maxd) ? json_integer_value(maxd) : -1,
                         .max_delete_ratio = mod_float(&r->m, "max_delete_ratio") };
    char *gmsg = dr_prune_guard(plan, &go);
    char gbuf[1024];
    const char *guard = NULL;
    if (gmsg) {
        snprintf(gbuf, sizeof gbuf, "%s", gmsg);
        guard = gbuf;
        free(gmsg);
    }
    dr_prune_free(plan);
    dr_evidence_free(&ev);
    /* items for the victims (results), in reverse apply order */
    size_t first = r->n;
    json_array_foreach(stale, i, o) {
        json_t *obj = json_object_get(o, "obj");
        item *it = add_item(r, obj);
        it->res = dr_res[json_integer_value(json_object_get(o, "res"))];
        snprintf(it->kind, sizeof it->kind, "%s", it->res->kind);
        it->live = json_incref(obj);
        set_reason(it, A_DELETED, "%s", json_is_true(json_object_get(o, "evidenced"))
                   ? "managed by ocpv-dr on DR, gone from the primary (a deletion event names it)"
                   : "managed by ocpv-dr on DR, gone from the primary");
    }
    json_decref(stale);
    if (guard) {
        for (size_t j = first; j < r->n; j++)
            set_reason(&r->items[j], A_SKIPPED, "%s", "not deleted: a prune guard stopped the run");
        r->nfailed++;
        mod_set(&r->m, "prune_guard", json_string(guard));
        mod_set(&r->m, "pruned_objects", json_array());
        mod_warn(&r->m, "prune: nothing deleted: %s", guard);
        return;
    }
    /* the opts must outlive the run: one per victim (uid precondition:
     * never delete an object re-created meanwhile) */
    k8s_delete_opts *dopts = calloc(r->n - first + 1, sizeof *dopts);
    if (!dopts)
        mod_fail(&r->m, "prune: out of memory");
    k8s_batch *b = k8s_batch_new(r->dr);
    for (int rank = 100; rank >= 0; rank--) {
        size_t queued = 0;
        for (size_t j = first; j < r->n; j++) {
            item *it = &r->items[j];
            if (tf_rank_kind(it->kind) != rank)
                continue;
            k8s_delete_opts *d = &dopts[j - first];
            d->propagation = "Background";
            d->dry_run = r->m.check_mode;
            d->uid = jx_str(it->live, "metadata.uid");
            k8s_batch_delete(b, it->res, it->ns[0] ? it->ns : NULL, it->name, d, on_delete, it);
            queued++;
        }
        if (queued)
            k8s_batch_run(b);
    }
    k8s_batch_free(b);
    free(dopts);
    /* the DR objects as they were (callers remove their data), as every
     * object this module returns: no managedFields, Secret values and cloud-init
     * data masked */
    json_t *pruned = json_array();
    for (size_t j = first; j < r->n; j++) {
        item *it = &r->items[j];
        if (it->action == A_DELETED) {
            json_array_append_new(pruned, for_output(it->live));
            r->changed = true;
            record_diff(r, it, NULL);
            if (r->m.check_mode)
                set_reason(it, A_DELETED, "%s", "gone from the primary (check mode: validated "
                           "with dryRun, not deleted)");
        }
    }
    mod_set(&r->m, "pruned_objects", pruned);
}

/* ------------------------------------------------------------ results */

static void finish(run *r)
{
    json_t *results = json_array(), *objects = json_array();
    size_t counts[A_FAILED + 1] = { 0 };
    const char *first_fail = NULL;
    for (size_t i = 0; i < r->n; i++) {
        item *it = &r->items[i];
        if (it->action == A_NONE)
            it->action = A_CLEANED;
        counts[it->action]++;
        if ((it->action == A_FAILED || it->action == A_CONFLICT) && !first_fail)
            first_fail = it->reason;
        json_t *res = json_pack("{ss ss ss ss ss}", "kind", it->kind, "namespace", it->ns,
                                "name", it->name, "action", action_names[it->action],
                                "reason", it->reason ? it->reason : "");
        json_array_append_new(results, res);
        if (it->desired && it->action != A_FAILED && it->action != A_DELETED
            && it->action != A_CONFLICT)
            json_array_append_new(objects, for_output(it->desired));
    }
    tf_sort_apply_order(objects);
    r->nfailed += counts[A_FAILED];
    json_t *c = json_object();
    for (int a = A_CLEANED; a <= A_FAILED; a++)
        json_object_set_new(c, action_names[a], json_integer((json_int_t)counts[a]));
    mod_set(&r->m, "counts", c);
    mod_set(&r->m, "results", results);
    if (mod_bool(&r->m, "return_objects"))
        mod_set(&r->m, "objects", objects);
    else
        json_decref(objects);
    mod_changed(&r->m, r->changed);
    mod_set(&r->m, "timings", json_incref(r->timings));
    if (r->m.diff_mode && (json_object_size(r->diff_before) || json_object_size(r->diff_after)))
        mod_diff(&r->m, json_incref(r->diff_before), json_incref(r->diff_after));
    json_t *guard = json_object_get(r->m.result, "prune_guard");
    if (json_is_string(guard))
        mod_fail(&r->m, "k8s_dr_clean: prune stopped, nothing deleted: %s", json_string_value(guard));
    /* a conflict leaves an object unreplicated: as loud as a failure */
    size_t bad = counts[A_FAILED] + counts[A_CONFLICT];
    if (bad && mod_bool(&r->m, "fail_on_error"))
        mod_fail(&r->m, "k8s_dr_clean: %zu of %zu objects failed%s; first: %s", bad, r->n,
                 counts[A_CONFLICT] ? " (conflicts included: not taken over)" : "",
                 first_fail ? first_fail : "?");
}

static void cleanup(run *r)
{
    for (size_t i = 0; i < r->n; i++) {
        json_decref(r->items[i].src);
        json_decref(r->items[i].desired);
        json_decref(r->items[i].live);
        free(r->items[i].reason);
    }
    free(r->items);
    json_decref(r->index);
    json_decref(r->diff_before);
    json_decref(r->diff_after);
    json_decref(r->timings);
    json_decref(r->dr_lists);
    if (r->dr)
        k8s_client_free(r->dr);
    if (r->src)
        k8s_client_free(r->src);
}

/* ------------------------------------------------------------ main */

static void resolve_scope_kinds(run *r, k8s_client *c, const char *cluster,
                                const k8s_resource **out, size_t *nout)
{
    json_t *kinds = mod_param(&r->m, "kinds");
    size_t i;
    json_t *k;
    *nout = 0;
    json_array_foreach(kinds, i, k) {
        char *err = NULL;
        const k8s_resource *res = resolve_kind(c, cluster, json_string_value(k), &err);
        if (!res) {
            char msg[1600];
            snprintf(msg, sizeof msg, "%s", err ? err : "kinds: cannot resolve");
            free(err);
            mod_fail(&r->m, "%s", msg);
        }
        out[(*nout)++] = res;
    }
}

/* The kind of `kinds` (resolved on DR) a given primary object is of: same
 * kind and API group (the version may differ between the clusters); NULL
 * when its kind is not in scope.  Without apiVersion, by kind alone. */
static const k8s_resource *scope_kind_of(json_t *o, const k8s_resource **res, size_t nres)
{
    const char *kind = jx_str(o, "kind"), *av = jx_str(o, "apiVersion");
    if (!kind)
        return NULL;
    const char *slash = av ? strchr(av, '/') : NULL;
    size_t glen = slash ? (size_t)(slash - av) : 0;
    for (size_t i = 0; i < nres; i++)
        if (strcmp(res[i]->kind, kind) == 0 && (!av || (strlen(res[i]->group) == glen
            && strncmp(res[i]->group, av, glen) == 0)))
            return res[i];
    return NULL;
}

static void check_same_cluster(run *r)
{
    const char *a = k8s_client_server(r->src), *b = k8s_client_server(r->dr);
    if (a && b && strcmp(a, b) == 0)
        mod_fail(&r->m, "source and DR connections point at the same cluster (%s): refusing to "
                 "mirror or prune a cluster onto itself", a);
}

/* ------------------------------------------------------------ list */

/* mode list: the primary's protected objects, digested (lib/dr/inventory), and
 * with compare_dr which volumes DR holds a copy of.  Writes nothing; a read
 * that fails fails the run (a partial listing would look like an empty
 * namespace). */
static void list_mode(run *r, json_t *source, json_t *namespaces)
{
    /* listed_at: before the first request, so nothing the listing shows is
     * older than it claims (the DR state records compare against it) */
    char listed_at[XTIME_RFC3339_LEN];
    xtime_rfc3339(time(NULL), listed_at);
    bool cmp = mod_bool(&r->m, "compare_dr");
    r->src = dr_connect(r, source, "source (primary)");
    if (cmp) {
        r->dr = dr_connect(r, r->m.params, "DR");
        check_same_cluster(r);
    }
    mark(r, "connect");
    const k8s_resource *src_res[64];
    size_t nsrc = 0;
    resolve_scope_kinds(r, r->src, "source", src_res, &nsrc);
    json_t *primary = json_array();
    prefetch(r, src_res, nsrc, NULL, 0, namespaces, primary);
    json_t *dr = NULL;
    if (cmp) {
        char *err = NULL;
        const k8s_resource *pv = resolve_kind(r->dr, "DR", "PersistentVolume", &err);
        dr = json_array();
        if (!pv || list_scope(r->dr, pv, namespaces, TF_MANAGED_LABEL "=" TF_MANAGED_VALUE,
                              NULL, dr, &err) != 0) {
            char msg[1600];
            snprintf(msg, sizeof msg, "compare_dr: DR cluster %s: %s", k8s_client_server(r->dr),
                     err ? err : "listing PersistentVolumes failed");
            free(err);
            mod_fail(&r->m, "%s", msg);
        }
    }
    mark(r, "list");
    inv_opts io = { .volumes = strcmp(mod_str(&r->m, "volumes"), "all") == 0 ? INV_VOLUMES_ALL
                                                                           : INV_VOLUMES_BOUND,
                    .names = mod_param(&r->m, "names") };
    json_t *inv = inv_build(primary, dr, &io);
    mark(r, "select");
    const char *key;
    json_t *v;
    json_object_foreach(inv, key, v)
        mod_set(&r->m, key, json_incref(v));
    mod_set(&r->m, "listed_at", json_string(listed_at));
    json_decref(inv);
    json_decref(primary);
    json_decref(dr);
    mod_changed(&r->m, false);
    mod_set(&r->m, "timings", json_incref(r->timings));
    cleanup(r);
    mod_exit(&r->m);
}

int main(int argc, char **argv)
{
    /* the source (primary) connection never falls back to K8S_AUTH_* (the DR's) */
    k8s_conn_opts_compose(all_opts, own_opts, source_opts, "source");

    run r;
    memset(&r, 0, sizeof r);
    mod_init(&r.m, &spec, argc, argv);
    r.index = json_object();
    r.diff_before = json_object();
    r.diff_after = json_object();
    r.timings = json_object();
    r.dr_lists = json_object();
    r.t_mark = now_s();
    r.topts.claim_ref = strcmp(mod_str(&r.m, "claim_ref"), "drop") == 0 ? TF_CLAIM_DROP : TF_CLAIM_KEEP;
    r.topts.keep_annotations = mod_param(&r.m, "keep_annotations");
    r.topts.drop_annotations = mod_param(&r.m, "drop_annotations");
    r.wopts.field_manager = "ocpv-dr";
    r.wopts.force = mod_bool(&r.m, "force_conflicts");
    r.wopts.dry_run = r.m.check_mode;
    r.source_cluster = mod_str(&r.m, "source_cluster");
    if (r.source_cluster && !*r.source_cluster)
        r.source_cluster = NULL;
    r.take_over = mod_bool(&r.m, "take_over");

    const char *mode = mod_str(&r.m, "mode");
    json_t *resources = mod_param(&r.m, "resources");
    json_t *source = mod_param(&r.m, "source");
    json_t *namespaces = mod_param(&r.m, "namespaces");
    bool has_source = json_is_object(source) && json_object_size(source) > 0;
    double ratio = mod_float(&r.m, "max_delete_ratio");
    json_t *maxd = mod_param(&r.m, "max_delete");

    if (ratio < 0 || ratio > 1)
        mod_fail(&r.m, "max_delete_ratio: %g is not between 0 and 1", ratio);
    if (json_is_integer(maxd) && json_integer_value(maxd) < 0)
        mod_fail(&r.m, "max_delete: must be 0 or more");
    bool is_list = strcmp(mode, "list") == 0;
    bool scoped = strcmp(mode, "prune") == 0 || strcmp(mode, "mirror") == 0 || is_list;
    if (scoped && json_array_size(namespaces) == 0)
        mod_fail(&r.m, "namespaces: required for mode %s: the namespaces decide what %s", mode,
                 is_list ? "is listed" : "may be deleted");
    if (json_array_size(mod_param(&r.m, "kinds")) > 64)
        mod_fail(&r.m, "kinds: at most 64 kinds");
    if ((strcmp(mode, "mirror") == 0 || is_list) && !has_source)
        mod_fail(&r.m, "source: required for mode %s (the primary cluster's connection)", mode);
    if (!is_list && json_array_size(mod_param(&r.m, "names")) > 0)
        mod_fail(&r.m, "names: only mode list selects claims by name (mode is %s)", mode);
    if (is_list && json_array_size(resources) > 0)
        mod_fail(&r.m, "resources: mode list reads the primary through source; resources are not used");
    if (strcmp(mode, "prune") == 0 && !has_source && json_array_size(resources) == 0
        && !mod_bool(&r.m, "allow_empty_source"))
        mod_fail(&r.m, "prune needs the primary's objects: give source (to list them) or resources");
    /* prune touches only objects recorded from its own primary: it must
     * know which one (with source, its URL unless source_cluster says) */
    if (strcmp(mode, "prune") == 0 && !has_source && !r.source_cluster)
        mod_fail(&r.m, "source_cluster: required for mode prune without source: prune deletes "
                 "only DR objects recorded from this primary (dr.ocpv.io/source-cluster)");
    if (json_array_size(mod_param(&r.m, "deleted_sources")) > 0 && strcmp(mode, "prune") != 0
        && strcmp(mode, "mirror") != 0)
        mod_fail(&r.m, "deleted_sources: only modes prune and mirror delete (mode is %s)", mode);
    if (has_source && !mod_dict_str(source, "kubeconfig") && !mod_dict_str(source, "host"))
        mod_fail(&r.m, "source: give kubeconfig or host for the primary cluster");
    if ((strcmp(mode, "clean") == 0 || strcmp(mode, "apply") == 0) && json_array_size(resources) == 0)
        mod_warn(&r.m, "resources is empty: nothing to %s", mode);

    /* input objects */
    if (strcmp(mode, "mirror") != 0) {
        size_t i;
        json_t *el;
        json_array_foreach(resources, i, el)
            take_resource(&r, el, i);
    }
    mask_input(resources);

    if (is_list)
        list_mode(&r, source, namespaces);

    if (strcmp(mode, "clean") == 0) {
        prepare(&r, false, false);
        finish(&r);
        cleanup(&r);
        mod_exit(&r.m);
    }

    r.dr = dr_connect(&r, r.m.params, "DR");
    if (has_source && scoped) {
        r.src = dr_connect(&r, source, "source (primary)");
        check_same_cluster(&r);
        if (!r.source_cluster)
            r.source_cluster = k8s_client_server(r.src);
    }

    if (strcmp(mode, "apply") == 0) {
        prepare(&r, true, false);
        mark(&r, "prepare");
        lookup(&r);
        mark(&r, "read_dr");
        apply_all(&r);
        mark(&r, "apply");
        finish(&r);
        cleanup(&r);
        mod_exit(&r.m);
    }

    /* prune / mirror: resolve kinds on both sides, list the primary */
    const k8s_resource *dr_res[64], *src_res[64];
    size_t ndr = 0, nsrc = 0;
    mark(&r, "connect");
    resolve_scope_kinds(&r, r.dr, "DR", dr_res, &ndr);
    json_t *primary = json_array();
    if (r.src) {
        resolve_scope_kinds(&r, r.src, "source", src_res, &nsrc);
        prefetch(&r, src_res, nsrc, dr_res, ndr, namespaces, primary);
    } else {
        /* prune against the given resources, filtered to the scope by
         * the rule the listings use (a kind outside `kinds` plays no part) */
        for (size_t i = 0; i < r.n; i++)
            if (r.items[i].action == A_FAILED)
                mod_fail(&r.m, "prune: nothing deleted: %s", r.items[i].reason);
        for (size_t i = 0; i < r.n; i++) {
            json_t *o = r.items[i].src;
            const k8s_resource *res = scope_kind_of(o, dr_res, ndr);
            if (res && dr_in_scope(o, res->namespaced, namespaces))
                json_array_append(primary, o);
        }
    }
    /* in prune mode the resources only describe the primary */
    for (size_t i = 0; i < r.n; i++) {
        json_decref(r.items[i].src);
        free(r.items[i].reason);
    }
    r.n = 0;

    mark(&r, "list");
    if (strcmp(mode, "mirror") == 0) {
        size_t i;
        json_t *o;
        json_array_foreach(primary, i, o)
            add_item(&r, o);
        prepare(&r, true, true);
        mark(&r, "prepare");
        lookup(&r);
        mark(&r, "read_dr");
        apply_all(&r);
        mark(&r, "apply");
    }
    prune(&r, primary, dr_res, ndr);
    mark(&r, "prune");
    json_decref(primary);
    finish(&r);
    cleanup(&r);
    mod_exit(&r.m);
}
