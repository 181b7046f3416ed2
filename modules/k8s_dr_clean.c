/* k8s_dr_clean.c - Ansible binary module ocpv.dr.k8s_dr_clean: makes
 * Kubernetes objects portable to the DR cluster (lib/transform), server-side
 * applies them there, prunes what ocpv-dr manages on DR but the primary no
 * longer has, or does all of that straight from the primary (mirror).
 *
 *   clean   resources -> cleaned + marked objects (no cluster access)
 *   apply   clean, read the DR objects (one batch), skip those whose hash
 *           annotation matches, server-side apply the rest (field manager
 *           ocpv-dr) in apply order, many requests in flight; a DR object
 *           ocpv-dr did not make for this source cluster is a conflict, left
 *           alone unless take_over
 *   prune   list the DR objects ocpv-dr manages in scope (namespaces x
 *           kinds; PV / VSC through their claim / snapshot) recorded from
 *           this source cluster, delete those the primary (the `source`
 *           listing, or `resources`) lacks; guards (per namespace and kind
 *           empty source, ratio, count) refuse a mass delete before anything
 *           is deleted; deleted_sources (deletion events) exempt the objects
 *           they name from the empty-source and ratio guards
 *   mirror  list the primary through `source`, then apply + prune
 *   list    list the primary through `source` (no writes anywhere) and return
 *           what is protected, digested (lib/inventory: bound claims and
 *           their volumes, ready snapshots and contents); with compare_dr
 *           also which volumes DR already holds a copy of
 *
 * Check mode writes nothing (dry-run requests validate the plan); diff mode
 * returns before/after of every changed object.
 */
#include "module.h"   /* first: k8s.h declares k8s_conn_opts[] of struct mod_opt */
#include "k8s.h"
#include "jsonx.h"
#include "transform.h"
#include "inventory.h"
#include "secret_mask.h"
#include "xstr.h"

#include <pthread.h>
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

typedef struct kind_ref { const char *api_version, *kind; } kind_ref;

static const kind_ref known_kinds[] = {
    { "v1", "PersistentVolume" }, { "v1", "PersistentVolumeClaim" },
    { "snapshot.storage.k8s.io/v1", "VolumeSnapshotContent" },
    { "snapshot.storage.k8s.io/v1", "VolumeSnapshot" },
    { "snapshot.storage.k8s.io/v1", "VolumeSnapshotClass" },
    { "v1", "ConfigMap" }, { "v1", "Secret" }, { "v1", "Namespace" },
    { "storage.k8s.io/v1", "StorageClass" },
    { "kubevirt.io/v1", "VirtualMachine" }, { "cdi.kubevirt.io/v1beta1", "DataVolume" },
};

/* "Kind" (a known kind) or "<apiVersion>/Kind" ("v1/ConfigMap",
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
    for (size_t i = 0; i < sizeof known_kinds / sizeof known_kinds[0]; i++)
        if (strcmp(known_kinds[i].kind, s) == 0) {
            *kind = known_kinds[i].kind;
            *api = xstrdup(known_kinds[i].api_version);
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

static void mask_secret(json_t *obj)
{
    sm_mask_secret_data(obj);       /* lib/secret_mask.c, shared with oadp_parse */
}

/* The runtime echoes the parameters (invocation.module_args): Secret values
 * and JSON text (which may hold them) must not be echoed.  Call after
 * take_resource() made its own copies. */
static void mask_input(json_t *resources)
{
    size_t i;
    json_t *el;
    json_array_foreach(resources, i, el) {
        if (json_is_string(el)) {
            json_array_set_new(resources, i, json_string("(JSON text, not echoed)"));
            continue;
        }
        const char *kind = jx_str(el, "kind");
        if (kind && strcmp(kind, "Secret") == 0)
            mask_secret(el);
        else if (json_is_array(json_object_get(el, "items")))
            mask_input(json_object_get(el, "items"));
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
    if (rc == 0 && k8s_object_check(out, it->res, NULL, 200, &e) != 0) {
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

/* A copy fit for output: a Secret's values are masked (they are applied,
 * never shown), managedFields left out. */
static json_t *for_output(const json_t *obj)
{
    if (!obj)
        return json_null();
    json_t *c = json_deep_copy(obj);
    json_object_del(json_object_get(c, "metadata"), "managedFields");
    const char *kind = jx_str(c, "kind");
    if (kind && strcmp(kind, "Secret") == 0)
        mask_secret(c);
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
        const char *want = tf_hash_of(it->desired);
        const char *have = it->live ? tf_hash_of(it->live) : NULL;
        bool managed = it->live && tf_is_managed(it->live);
        bool ours = managed && tf_same_source(it->live, r->source_cluster);
        const char *other = it->live ? tf_annotation_of(it->live, TF_ANN_SOURCE_CLUSTER) : NULL;
        char rb[700];
        if (it->live && !ours && !r->take_over) {
            /* not ocpv-dr's for this primary: applying would make it
             * prunable by this primary (or steal it from another one) */
            if (!managed)
                set_reason(it, A_CONFLICT, "%s: conflict: exists on DR without the ocpv-dr label "
                           "(not made by ocpv-dr): left untouched (take_over: true makes ocpv-dr "
                           "manage it, and prune it later)", ref_of(it, rb, sizeof rb));
            else
                set_reason(it, A_CONFLICT, "%s: conflict: managed by ocpv-dr for source cluster "
                           "\"%.200s\", not \"%.200s\": left untouched (take_over: true moves it to "
                           "this source)", ref_of(it, rb, sizeof rb), other ? other : "",
                           r->source_cluster ? r->source_cluster : "");
            continue;
        }
        if (ours && have && want && strcmp(have, want) == 0) {
            set_reason(it, A_UNCHANGED, "hash %.12s matches the DR object", want);
            continue;
        }
        if (it->live) {
            tf_adopt_live_refs(it->desired, it->live);
            if (!managed)
                set_reason(it, A_UPDATED, "%s", "exists on DR without the ocpv-dr label: taken over "
                           "(take_over)");
            else if (!ours)
                set_reason(it, A_UPDATED, "recorded from source cluster \"%.200s\": taken over "
                           "(take_over)", other ? other : "");
            else
                set_reason(it, A_UPDATED, "%s", "content changed on the primary");
        } else {
            set_reason(it, A_CREATED, "%s", "absent on DR");
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
 * ones whole and filtered through tf_scope_namespace (PV, VSC); other
 * cluster-scoped kinds are in scope as a whole.  Appends to *out.
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
    bool scoped = strcmp(res->kind, "PersistentVolume") == 0
                  || strcmp(res->kind, "VolumeSnapshotContent") == 0;
    json_t *o;
    json_array_foreach(items, i, o) {
        const char *sns = tf_scope_namespace(o);
        bool in = !scoped;
        size_t j;
        json_array_foreach(namespaces, j, ns)
            in = in || (sns && strcmp(sns, json_string_value(ns)) == 0);
        if (in)
            json_array_append(out, o);
    }
    json_decref(items);
    return 0;
}

/* ------------------------------------------------------------ prefetch */

/* One list request of prefetch(), run on its own thread (the client is
 * thread-safe; primary and DR lists overlap instead of queueing). */
typedef struct ljob {
    k8s_client *c;
    const k8s_resource *res;
    const char *ns;            /* NULL for cluster-scoped */
    bool primary;
    json_t *items;
    k8s_error err;
    int rc;
    pthread_t th;
} ljob;

static void *ljob_run(void *arg)
{
    ljob *j = arg;
    k8s_list_opts lo = { .limit = 500 };
    j->rc = k8s_list(j->c, j->res, j->ns, &lo, &j->items, NULL, &j->err);
    return NULL;
}

static bool in_scope(json_t *o, json_t *namespaces, const k8s_resource *res)
{
    if (res->namespaced || (strcmp(res->kind, "PersistentVolume") != 0
                            && strcmp(res->kind, "VolumeSnapshotContent") != 0))
        return true;
    const char *sns = tf_scope_namespace(o);
    size_t i;
    json_t *ns;
    json_array_foreach(namespaces, i, ns)
        if (sns && strcmp(sns, json_string_value(ns)) == 0)
            return true;
    return false;
}

/* Lists the primary (into *primary, scope-filtered) and the DR side (into
 * r->dr_lists, complete lists reused by lookup() and prune()) at once.  A
 * failed primary listing ends the run before any write; a failed DR listing
 * is only fatal for 401 / no answer (else lookup/prune ask again and report). */
static void prefetch(run *r, const k8s_resource **src_res, size_t nsrc,
                     const k8s_resource **dr_res, size_t ndr, json_t *namespaces,
                     json_t *primary)
{
    size_t nns = json_array_size(namespaces), cap = (nsrc + ndr) * (nns + 1), n = 0;
    ljob *jobs = calloc(cap ? cap : 1, sizeof *jobs);
    if (!jobs)
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
    /* waves of at most 16 threads */
    for (size_t w = 0; w < n; w += 16) {
        size_t end = w + 16 < n ? w + 16 : n;
        for (size_t i = w; i < end; i++)
            if (pthread_create(&jobs[i].th, NULL, ljob_run, &jobs[i]) != 0)
                ljob_run(&jobs[i]), jobs[i].th = 0;
        for (size_t i = w; i < end; i++)
            if (jobs[i].th)
                pthread_join(jobs[i].th, NULL);
    }
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
                if (in_scope(o, namespaces, j->res))
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

typedef struct victim {
    json_t *obj;
    const k8s_resource *res;
    item *it;
} victim;

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

/* Deletion evidence (deleted_sources): the primary objects deletion events
 * named.  uids: their metadata.uid (a DR object made from one carries it
 * as dr.ocpv.io/source-uid), and the uid of the claim a Released volume /
 * of the snapshot a content marked volumesnapshot-being-deleted names (the
 * claim / snapshot is gone: that is why).  bound: "Kind/name" of the volume / content a
 * deleted claim / snapshot was bound to (spec.volumeName,
 * status.boundVolumeSnapshotContentName) -> "ns/name" of that claim /
 * snapshot, which the DR object's claimRef / volumeSnapshotRef must name. */
typedef struct evidence {
    json_t *uids;
    json_t *bound;
} evidence;

static void evidence_read(run *r, evidence *ev)
{
    ev->uids = json_object();
    ev->bound = json_object();
    json_t *list = mod_param(&r->m, "deleted_sources"), *el;
    size_t i;
    json_array_foreach(list, i, el) {
        if (json_is_string(el)) {
            if (*json_string_value(el))
                json_object_set_new(ev->uids, json_string_value(el), json_true());
            continue;
        }
        if (!json_is_object(el))
            mod_fail(&r->m, "deleted_sources[%zu]: must be a uid (string) or the deleted "
                     "object (dict)", i);
        const char *uid = jx_str(el, "metadata.uid");
        const char *kind = jx_str(el, "kind"), *ns = jx_str(el, "metadata.namespace");
        const char *name = jx_str(el, "metadata.name");
        if (!uid || !*uid) {
            /* no uid, no evidence: its deletions stay under every guard */
            mod_warn(&r->m, "deleted_sources[%zu] (%s %s): no metadata.uid: not used as "
                     "evidence", i, kind ? kind : "?", name ? name : "?");
            continue;
        }
        json_object_set_new(ev->uids, uid, json_true());
        const char *bound = NULL, *bkind = NULL;
        if (kind && strcmp(kind, "PersistentVolumeClaim") == 0)
            bound = jx_str(el, "spec.volumeName"), bkind = "PersistentVolume";
        else if (kind && strcmp(kind, "VolumeSnapshot") == 0)
            bound = jx_str(el, "status.boundVolumeSnapshotContentName"),
            bkind = "VolumeSnapshotContent";
        if (bound && *bound && ns && name) {
            char k[600], v[600];
            snprintf(k, sizeof k, "%s/%s", bkind, bound);
            snprintf(v, sizeof v, "%s/%s", ns, name);
            json_object_set_new(ev->bound, k, json_string(v));
        }
        /* a deleted volume that says its claim is gone (Released), a
         * deleted content the snapshot controller marked as deleted with its
         * snapshot: evidence for that claim / snapshot too (by its uid) */
        const char *ref_uid = NULL;
        if (kind && strcmp(kind, "PersistentVolume") == 0) {
            const char *phase = jx_str(el, "status.phase");
            if (phase && strcmp(phase, "Released") == 0)
                ref_uid = jx_str(el, "spec.claimRef.uid");
        } else if (kind && strcmp(kind, "VolumeSnapshotContent") == 0) {
            const char *del = tf_annotation_of(el, "snapshot.storage.kubernetes.io/"
                                                   "volumesnapshot-being-deleted");
            if (del && strcmp(del, "yes") == 0)
                ref_uid = jx_str(el, "spec.volumeSnapshotRef.uid");
        }
        if (ref_uid && *ref_uid)
            json_object_set_new(ev->uids, ref_uid, json_true());
    }
}

/* Whether a stale DR object is named by a deletion event. */
static bool evidenced(const evidence *ev, const json_t *o, const char *kind)
{
    const char *uid = tf_annotation_of(o, TF_ANN_SOURCE_UID);
    if (uid && json_object_get(ev->uids, uid))
        return true;
    char k[600];
    snprintf(k, sizeof k, "%s/%s", kind, jx_str_or((json_t *)o, "metadata.name", ""));
    const char *want = json_string_value(json_object_get(ev->bound, k));
    if (!want)
        return false;
    const char *path = strcmp(kind, "PersistentVolume") == 0 ? "spec.claimRef"
                                                              : "spec.volumeSnapshotRef";
    json_t *ref = jx_get((json_t *)o, path);
    char have[600];
    snprintf(have, sizeof have, "%s/%s", jx_str_or(ref, "namespace", ""), jx_str_or(ref, "name", ""));
    return strcmp(have, want) == 0;
}

/* The namespace an object counts for in the per-namespace guard: its own,
 * a PV's / VSC's claim's / snapshot's, "" for other cluster-scoped kinds. */
static const char *guard_ns(const json_t *o, const k8s_resource *res)
{
    if (res->namespaced)
        return jx_str_or((json_t *)o, "metadata.namespace", "");
    const char *sns = tf_scope_namespace(o);
    return sns ? sns : "";
}

/* primary: the primary's objects in scope (any kinds).  Deletes the DR
 * objects ocpv-dr made from this source cluster that the primary lacks, or
 * nothing at all when a guard trips. */
static void prune(run *r, json_t *primary, const k8s_resource **dr_res, size_t nres)
{
    json_t *namespaces = mod_param(&r->m, "namespaces");
    bool allow_empty = mod_bool(&r->m, "allow_empty_source");
    json_t *present = json_object();
    json_t *primary_count = json_object();   /* "Kind|ns" -> objects on the primary */
    size_t i;
    json_t *o;
    json_array_foreach(primary, i, o) {
        const char *kind = jx_str(o, "kind");
        bool cs = tf_kind_cluster_scoped(kind);
        char *k = key_of(kind ? kind : "", cs ? "" : jx_str(o, "metadata.namespace"),
                         jx_str_or(o, "metadata.name", ""));
        json_object_set_new(present, k, json_true());
        free(k);
        const char *sns = cs ? tf_scope_namespace(o) : jx_str(o, "metadata.namespace");
        char ck[600];
        snprintf(ck, sizeof ck, "%s|%s", kind ? kind : "", sns ? sns : "");
        json_object_set_new(primary_count, ck,
                            json_integer(json_integer_value(json_object_get(primary_count, ck)) + 1));
    }
    evidence ev;
    evidence_read(r, &ev);
    /* DR side: managed objects of this source in scope, per kind */
    json_t *stale = json_array();
    json_t *empty_ns = json_object();   /* "Kind|ns" -> stale objects no event names, primary empty */
    size_t managed = 0, foreign = 0, nevid = 0;
    const char *guard = NULL;
    char gbuf[1024];
    for (size_t k = 0; k < nres; k++) {
        json_t *all = json_array();
        char *err = NULL;
        if (list_scope(r->dr, dr_res[k], namespaces, TF_MANAGED_LABEL "=" TF_MANAGED_VALUE,
                       r->dr_lists, all, &err) != 0) {
            json_decref(all);
            json_decref(stale); json_decref(present); json_decref(primary_count);
            json_decref(empty_ns); json_decref(ev.uids); json_decref(ev.bound);
            mod_set(&r->m, "counts", json_pack("{si}", "deleted", 0));
            mod_fail(&r->m, "prune: nothing deleted: DR %s", err ? err : "listing failed");
        }
        json_array_foreach(all, i, o) {
            /* only what ocpv-dr manages (a reused lookup list holds
             * everything), and only what it made from this primary */
            if (!tf_is_managed(o))
                continue;
            if (!tf_same_source(o, r->source_cluster)) {
                foreign++;
                continue;
            }
            managed++;
            char *key = key_of(dr_res[k]->kind, dr_res[k]->namespaced ? jx_str(o, "metadata.namespace") : "",
                               jx_str_or(o, "metadata.name", ""));
            bool gone = !json_object_get(present, key);
            free(key);
            if (!gone)
                continue;
            bool evid = evidenced(&ev, o, dr_res[k]->kind);
            nevid += evid;
            json_array_append_new(stale, json_pack("{sOsisb}", "obj", o, "res", (int)k,
                                                   "evidenced", evid));
            char ck[600];
            snprintf(ck, sizeof ck, "%s|%s", dr_res[k]->kind, guard_ns(o, dr_res[k]));
            if (!evid && !json_object_get(primary_count, ck))
                json_object_set_new(empty_ns, ck,
                                    json_integer(json_integer_value(json_object_get(empty_ns, ck)) + 1));
        }
        json_decref(all);
    }
    json_decref(present);
    json_decref(primary_count);
    json_decref(ev.uids);
    json_decref(ev.bound);
    mod_set(&r->m, "prune_other_sources", json_integer((json_int_t)foreign));
    /* empty-source guard, per namespace and kind: a listing that came back
     * empty for one namespace (a broken answer, a proxy) must not empty that
     * namespace on DR, whatever the others hold */
    const char *ck;
    json_t *cnt;
    json_object_foreach(empty_ns, ck, cnt) {
        if (allow_empty || guard)
            break;
        const char *bar = strchr(ck, '|');
        int kl = bar ? (int)(bar - ck) : (int)strlen(ck);
        const char *ns = bar ? bar + 1 : "";
        snprintf(gbuf, sizeof gbuf, "the primary has no %.*s %s%s while DR holds %lld managed "
                 "ones from it%s: refusing to empty DR there (set allow_empty_source: true if "
                 "this is intended)", kl, ck, *ns ? "in namespace " : "in scope", ns,
                 (long long)json_integer_value(cnt), nevid ? " that no deletion event names" : "");
        guard = gbuf;
    }
    json_decref(empty_ns);
    size_t nstale = json_array_size(stale);
    /* the ratio judges what no deletion event vouches for */
    size_t other = nstale - nevid, base = managed - nevid;
    double ratio = base ? (double)other / (double)base : 0.0;
    json_t *maxd = mod_param(&r->m, "max_delete");
    double maxr = mod_float(&r->m, "max_delete_ratio");
    if (!guard && json_is_integer(maxd) && (long long)nstale > json_integer_value(maxd)) {
        snprintf(gbuf, sizeof gbuf, "%zu stale objects exceed max_delete=%lld", nstale,
                 (long long)json_integer_value(maxd));
        guard = gbuf;
    }
    if (!guard && other > 0 && ratio > maxr) {
        snprintf(gbuf, sizeof gbuf, "%zu of %zu managed DR objects in scope (%.0f%%) would be "
                 "deleted%s, more than max_delete_ratio=%g", other, base, ratio * 100,
                 nevid ? " without a deletion event naming them" : "", maxr);
        guard = gbuf;
    }
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
     * object this module returns: no managedFields, Secret values masked */
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

static void check_same_cluster(run *r)
{
    const char *a = k8s_client_server(r->src), *b = k8s_client_server(r->dr);
    if (a && b && strcmp(a, b) == 0)
        mod_fail(&r->m, "source and DR connections point at the same cluster (%s): refusing to "
                 "mirror or prune a cluster onto itself", a);
}

/* ------------------------------------------------------------ list */

/* mode list: the primary's protected objects, digested (lib/inventory), and
 * with compare_dr which volumes DR holds a copy of.  Writes nothing; a read
 * that fails fails the run (a partial listing would look like an empty
 * namespace). */
static void list_mode(run *r, json_t *source, json_t *namespaces)
{
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
    size_t nconn = 0;
    while (nconn < K8S_CONN_OPT_COUNT && k8s_conn_opts[nconn].name)
        nconn++;
    memcpy(all_opts, k8s_conn_opts, nconn * sizeof all_opts[0]);
    memcpy(all_opts + nconn, own_opts, sizeof own_opts);
    /* the primary's connection never falls back to K8S_AUTH_* (those are the
     * DR cluster's): it must be given explicitly */
    memcpy(source_opts, k8s_conn_opts, nconn * sizeof source_opts[0]);
    for (size_t i = 0; i < nconn; i++)
        source_opts[i].env_fallback = NULL;
    for (size_t i = 0; all_opts[i].name; i++)
        if (strcmp(all_opts[i].name, "source") == 0)
            all_opts[i].suboptions = source_opts;

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
        /* prune against the given resources, filtered to the scope */
        for (size_t i = 0; i < r.n; i++)
            if (r.items[i].action == A_FAILED)
                mod_fail(&r.m, "prune: nothing deleted: %s", r.items[i].reason);
        for (size_t i = 0; i < r.n; i++) {
            json_t *o = r.items[i].src;
            const char *sns = tf_scope_namespace(o);
            size_t j;
            json_t *ns;
            bool in = false;
            json_array_foreach(namespaces, j, ns)
                in = in || (sns && strcmp(sns, json_string_value(ns)) == 0);
            if (in)
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
