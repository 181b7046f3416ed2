/* drstate.c - the DR state records on the DR cluster: reads (three lists in
 * one batch; the primary's claims), conditional writes with 409 retry (see
 * drstate.h).  All decisions about record content are lib/dr/dr_record.c's;
 * this file only fetches, patches and retries. */
#include "drstate.h"
#include "inventory.h"
#include "jsonx.h"
#include "transform.h"
#include "xstr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void efill(k8s_error *e, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void efill(k8s_error *e, const char *reason, const char *fmt, ...)
{
    if (!e)
        return;
    memset(e, 0, sizeof *e);
    snprintf(e->reason, sizeof e->reason, "%s", reason ? reason : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* Prefixes e->message with context (keeps status/reason). */
static void eprefix(k8s_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void eprefix(k8s_error *e, const char *fmt, ...)
{
    char pre[512], old[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    k8s_strerror(e, old, sizeof old);
    size_t n = strlen(pre);
    if (n + 2 < sizeof e->message) {
        memcpy(e->message, pre, n);
        memcpy(e->message + n, ": ", 2);
        size_t room = sizeof e->message - n - 3, ol = strlen(old);
        if (ol > room)
            ol = room;
        memcpy(e->message + n + 2, old, ol);
        e->message[n + 2 + ol] = '\0';
    }
}

/* metadata.labels[key] (label keys hold dots: not a jx path). */
static const char *label_of(const json_t *obj, const char *key)
{
    json_t *l = json_object_get(json_object_get(obj, "metadata"), "labels");
    return json_string_value(json_object_get(l, key));
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* 50-400 ms, different per process and call (xorshift seeded from the clock). */
static long jitter_ms(void)
{
    static unsigned long long x;
    if (!x) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = ((unsigned long long)ts.tv_nsec << 20) ^ (unsigned long long)ts.tv_sec
            ^ ((unsigned long long)getpid() << 40) ^ 0x9E3779B97F4A7C15ull;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return 50 + (long)(x % 351);
}

bool dsi_cm_name(const char *ns, char *buf, size_t len)
{
    size_t n = ns ? strlen(ns) : 0;
    if (n == 0 || n > 63 || ns[0] == '-' || ns[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((ns[i] >= 'a' && ns[i] <= 'z') || (ns[i] >= '0' && ns[i] <= '9') || ns[i] == '-'))
            return false;
    int w = snprintf(buf, len, DSI_CM_PREFIX "%s", ns);
    return w > 0 && (size_t)w < len;
}

/* ------------------------------------------------------------------ reading */

typedef struct lres {
    int rc;
    json_t *items;
    k8s_error err;
    bool done;
} lres;

static void on_list(void *ud, int rc, json_t *out, const k8s_error *err)
{
    lres *l = ud;
    l->done = true;
    l->rc = rc;
    if (rc == 0)
        l->items = json_incref(out);
    else if (err)
        l->err = *err;
    else
        efill(&l->err, "", "list failed");
}

void dsi_snapshot_free(dsi_snapshot *s)
{
    if (!s)
        return;
    json_decref(s->records);
    json_decref(s->pvs);
    json_decref(s->backups);
    json_decref(s->warnings);
    free(s->backups_error);
    memset(s, 0, sizeof *s);
}

int dsi_read(k8s_client *dr, const dsi_scope *s, dsi_snapshot *out, k8s_error *e)
{
    memset(out, 0, sizeof *out);
    out->read_at = time(NULL);
    const char *state_ns = s && s->state_ns && *s->state_ns ? s->state_ns : DSI_DEFAULT_STATE_NS;
    const char *oadp_ns = s && s->oadp_ns && *s->oadp_ns ? s->oadp_ns : DSI_DEFAULT_OADP_NS;
    bool want_pvs = !(s && s->skip_pvs), want_backups = !(s && s->skip_backups);
    const k8s_resource *cm_r = k8s_resource_builtin("v1", "ConfigMap");
    const k8s_resource *pv_r = k8s_resource_builtin("v1", "PersistentVolume");
    const k8s_resource *bk_r = k8s_resource_builtin("velero.io/v1", "Backup");
    if (!cm_r || !pv_r || !bk_r) {
        efill(e, "", "dsi_read: built-in resource table lacks ConfigMap/PV/Backup");
        return -1;
    }
    lres lc = { 0 }, lp = { 0 }, lb = { 0 };
    k8s_batch *b = k8s_batch_new(dr);
    if (!b) {
        efill(e, "", "dsi_read: out of memory");
        return -1;
    }
    k8s_list_opts co = { .label_selector = DSI_STATE_LABEL "=" DSI_STATE_VALUE, .limit = 500 };
    k8s_list_opts po = { .label_selector = TF_MANAGED_LABEL "=" TF_MANAGED_VALUE, .limit = 500 };
    k8s_list_opts bo = { .limit = 500 };
    k8s_batch_list(b, NULL, cm_r, state_ns, &co, on_list, &lc);
    if (want_pvs)
        k8s_batch_list(b, NULL, pv_r, NULL, &po, on_list, &lp);
    if (want_backups)
        k8s_batch_list(b, NULL, bk_r, oadp_ns, &bo, on_list, &lb);
    k8s_batch_run(b);
    k8s_batch_free(b);

    int rc = -1;
    if (!lc.done || lc.rc != 0) {
        if (!lc.done)
            efill(&lc.err, "", "not run");
        *e = lc.err;
        eprefix(e, "DR state records (ConfigMaps labelled %s=%s in namespace %s) could not be "
                   "read", DSI_STATE_LABEL, DSI_STATE_VALUE, state_ns);
        goto out;
    }
    if (want_pvs && (!lp.done || lp.rc != 0)) {
        if (!lp.done)
            efill(&lp.err, "", "not run");
        *e = lp.err;
        eprefix(e, "DR PersistentVolumes (%s=%s) could not be listed", TF_MANAGED_LABEL,
                TF_MANAGED_VALUE);
        goto out;
    }
    if (want_backups && (!lb.done || lb.rc != 0)) {
        if (lb.done && lb.err.status == 404) {
            char eb[1400];
            out->backups_error = xfmt("velero.io/v1 Backup is not served on the DR cluster "
                                      "(%s)", k8s_strerror(&lb.err, eb, sizeof eb));
        } else {
            if (!lb.done)
                efill(&lb.err, "", "not run");
            *e = lb.err;
            eprefix(e, "DR Velero Backups in namespace %s could not be listed", oadp_ns);
            goto out;
        }
    } else if (want_backups) {
        out->backups = json_incref(lb.items);
    } else {
        out->backups_error = xstrdup("not read");
    }
    out->pvs = want_pvs ? json_incref(lp.items) : json_array();
    out->records = json_object();
    out->warnings = json_array();
    size_t i;
    json_t *cm;
    json_array_foreach(lc.items, i, cm) {
        const char *name = jx_str(cm, "metadata.name");
        const char *ns = label_of(cm, DSI_NS_LABEL);
        char want[80];
        if (!ns || !name || !dsi_cm_name(ns, want, sizeof want) || strcmp(want, name) != 0) {
            char *w = xfmt("ConfigMap %s/%s is labelled %s=%s but its %s label (\"%s\") does "
                           "not name it: ignored", state_ns, name ? name : "?", DSI_STATE_LABEL,
                           DSI_STATE_VALUE, DSI_NS_LABEL, ns ? ns : "");
            json_array_append_new(out->warnings, json_string(w));
            free(w);
            continue;
        }
        json_t *c = json_copy(cm);
        if (!json_is_object(json_object_get(c, "data")))
            json_object_set_new(c, "data", json_object());
        json_object_set_new(out->records, ns, c);
    }
    rc = 0;
out:
    json_decref(lc.items);
    json_decref(lp.items);
    json_decref(lb.items);
    if (rc != 0)
        dsi_snapshot_free(out);
    return rc;
}

const json_t *dsi_record(const dsi_snapshot *s, const char *ns)
{
    return s && s->records && ns ? json_object_get(s->records, ns) : NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

json_t *dsi_record_namespaces(const dsi_snapshot *s)
{
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(s ? s->records : NULL, k, v)
        json_array_append_new(arr, json_string(k));
    size_t n = json_array_size(arr);
    if (n > 1) {
        json_t **tmp = malloc(n * sizeof *tmp);
        if (!tmp)
            abort();
        for (size_t i = 0; i < n; i++)
            tmp[i] = json_incref(json_array_get(arr, i));
        qsort(tmp, n, sizeof *tmp, cmp_str);
        json_array_clear(arr);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, tmp[i]);
        free(tmp);
    }
    return arr;
}

int dsi_read_primary(k8s_client *p, const json_t *namespaces, json_t **inv, k8s_error *e)
{
    *inv = NULL;
    const k8s_resource *pvc_r = k8s_resource_builtin("v1", "PersistentVolumeClaim");
    const k8s_resource *pv_r = k8s_resource_builtin("v1", "PersistentVolume");
    size_t n = json_array_size(namespaces);
    lres *l = calloc(n + 1, sizeof *l);
    k8s_batch *b = k8s_batch_new(p);
    if (!l || !b || !pvc_r || !pv_r) {
        free(l);
        k8s_batch_free(b);
        efill(e, "", "dsi_read_primary: out of memory");
        return -1;
    }
    k8s_list_opts lo = { .limit = 500 };
    k8s_batch_list(b, NULL, pv_r, NULL, &lo, on_list, &l[n]);
    for (size_t i = 0; i < n; i++)
        k8s_batch_list(b, NULL, pvc_r, json_string_value(json_array_get(namespaces, i)), &lo,
                       on_list, &l[i]);
    k8s_batch_run(b);
    k8s_batch_free(b);
    int rc = 0;
    for (size_t i = 0; i <= n && rc == 0; i++) {
        if (l[i].done && l[i].rc == 0)
            continue;
        if (!l[i].done)
            efill(&l[i].err, "", "not run");
        *e = l[i].err;
        if (i == n)
            eprefix(e, "primary %s: listing PersistentVolumes", k8s_client_server(p));
        else
            eprefix(e, "primary %s: listing PersistentVolumeClaims in namespace %s",
                    k8s_client_server(p), json_string_value(json_array_get(namespaces, i)));
        rc = -1;
    }
    if (rc == 0) {
        *inv = json_object();
        inv_opts io = { .volumes = INV_VOLUMES_BOUND, .names = NULL };
        for (size_t i = 0; i < n; i++) {
            json_t *objs = json_copy(l[i].items);
            json_array_extend(objs, l[n].items);
            json_object_set_new(*inv, json_string_value(json_array_get(namespaces, i)),
                                inv_build(objs, NULL, &io));
            json_decref(objs);
        }
    }
    for (size_t i = 0; i <= n; i++)
        json_decref(l[i].items);
    free(l);
    return rc;
}

void dsi_status(const dsi_snapshot *s, const char *ns, const json_t *primary,
                const char *primary_error, dst_targets defaults, time_t now, dst_result *out)
{
    const json_t *cm = dsi_record(s, ns);
    dst_input in = {
        .ns = ns,
        .record = cm ? json_object_get(cm, "data") : NULL,
        .dr_pvs = s->pvs,
        .primary = primary,
        .primary_error = primary ? NULL : primary_error,
        .backups = s->backups,
        .defaults = defaults,
        .now = now,
    };
    dst_compute(&in, out);
}

/* ------------------------------------------------------- namespace records */

void dsi_update_clear(dsi_update *u)
{
    if (!u)
        return;
    json_decref(u->patch);
    u->patch = NULL;
}

/* data after applying a merge patch's data part (null removes). */
static json_t *apply_data(const json_t *data, const json_t *pdata)
{
    json_t *d = json_is_object(data) ? json_copy((json_t *)data) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)pdata, k, v) {
        if (json_is_null(v))
            json_object_del(d, k);
        else
            json_object_set(d, k, v);
    }
    return d;
}

static bool is_record(const json_t *cm, const char *ns)
{
    const char *st = label_of(cm, DSI_STATE_LABEL);
    const char *lns = label_of(cm, DSI_NS_LABEL);
    return st && strcmp(st, DSI_STATE_VALUE) == 0 && lns && strcmp(lns, ns) == 0;
}

int dsi_update_ns(k8s_client *dr, const char *state_ns, const char *ns, dsi_mutate_fn fn,
                  void *ud, dsi_update *u, k8s_error *e)
{
    u->changed = u->created = false;
    u->conflicts = 0;
    json_decref(u->patch);
    u->patch = NULL;
    char name[80];
    if (!state_ns || !*state_ns)
        state_ns = DSI_DEFAULT_STATE_NS;
    if (!dsi_cm_name(ns, name, sizeof name)) {
        efill(e, "Invalid", "namespace \"%.100s\" is not a valid namespace name (DNS label)",
              ns ? ns : "");
        return -1;
    }
    if (!u->source_cluster || !*u->source_cluster) {
        efill(e, "Invalid", "record of namespace %s: the source cluster is required", ns);
        return -1;
    }
    const k8s_resource *cm_r = k8s_resource_builtin("v1", "ConfigMap");
    k8s_write_opts wo = { .field_manager = DSI_FIELD_MANAGER };
    for (int attempt = 0;; attempt++) {
        json_t *cm = NULL;
        k8s_error ge = { 0 };
        if (k8s_get(dr, cm_r, state_ns, name, &cm, &ge) != 0) {
            if (ge.status != 404) {
                *e = ge;
                eprefix(e, "reading the DR state record %s/%s", state_ns, name);
                return -1;
            }
            cm = NULL;
        }
        if (cm && !is_record(cm, ns)) {
            efill(e, "Conflict", "ConfigMap %s/%s exists but is not the ocpv-dr state record of "
                  "namespace %s (labels %s=%s, %s=%s missing): left untouched", state_ns, name,
                  ns, DSI_STATE_LABEL, DSI_STATE_VALUE, DSI_NS_LABEL, ns);
            json_decref(cm);
            return -1;
        }
        const char *other = cm ? tf_annotation_of(cm, TF_ANN_SOURCE_CLUSTER) : NULL;
        if (other && strcmp(other, u->source_cluster) != 0) {
            efill(e, "Conflict", "DR state record %s/%s belongs to source cluster \"%.200s\", "
                  "not \"%.200s\": left untouched", state_ns, name, other, u->source_cluster);
            json_decref(cm);
            return -1;
        }
        json_t *empty = json_object();
        const json_t *data = cm ? json_object_get(cm, "data") : NULL;
        const json_t *before = json_is_object(data) ? data : empty;
        drr_ns cur;
        drr_ns_parse(cm ? before : NULL, &cur);
        json_t *patch = fn(ud, &cur, cm);
        drr_ns_free(&cur);
        json_t *pdata = patch ? json_object_get(patch, "data") : NULL;
        json_decref(u->patch);
        u->patch = pdata && json_object_size(pdata) ? json_incref(pdata) : NULL;
        bool need_meta = cm && !other;
        json_t *after = apply_data(before, u->patch);
        bool differs = !json_equal(after, before);
        json_decref(empty);
        if ((!u->patch || (!differs && cm)) && !need_meta) {
            json_decref(u->patch);          /* nothing is sent */
            u->patch = NULL;
            json_decref(after);
            json_decref(patch);
            json_decref(cm);
            return 0;                       /* nothing newer to record */
        }
        if (u->dry_run) {
            u->changed = differs || need_meta;
            u->created = !cm && u->patch;
            json_decref(after);
            json_decref(patch);
            json_decref(cm);
            return 0;
        }
        if (attempt == 0 && u->delay_first_write_ms > 0)
            sleep_ms(u->delay_first_write_ms);
        k8s_error we = { 0 };
        int wrc;
        if (!cm) {
            if (!u->patch) {
                json_decref(after);
                json_decref(patch);
                return 0;
            }
            json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}, s:{s:s}}, s:O}",
                                    "apiVersion", "v1", "kind", "ConfigMap",
                                    "metadata", "name", name, "namespace", state_ns,
                                    "labels", DSI_STATE_LABEL, DSI_STATE_VALUE, DSI_NS_LABEL, ns,
                                    "annotations", TF_ANN_SOURCE_CLUSTER, u->source_cluster,
                                    "data", after);
            wrc = k8s_create(dr, cm_r, obj, &wo, NULL, &we);
            json_decref(obj);
            if (wrc == 0)
                u->changed = u->created = true;
        } else {
            json_t *body = json_pack("{s:{s:s}}", "metadata", "resourceVersion",
                                     jx_str_or(cm, "metadata.resourceVersion", ""));
            if (need_meta)
                json_object_set_new(json_object_get(body, "metadata"), "annotations",
                                    json_pack("{s:s}", TF_ANN_SOURCE_CLUSTER, u->source_cluster));
            if (u->patch)
                json_object_set(body, "data", u->patch);
            wrc = k8s_merge_patch(dr, cm_r, state_ns, name, body, &wo, NULL, &we);
            json_decref(body);
            if (wrc == 0)
                u->changed = differs || need_meta;
        }
        json_decref(after);
        json_decref(patch);
        json_decref(cm);
        if (wrc == 0)
            return 0;
        if (we.status != 409) {
            *e = we;
            eprefix(e, "writing the DR state record %s/%s", state_ns, name);
            return -1;
        }
        u->conflicts++;
        if (u->conflicts > DSI_MAX_RETRIES) {
            *e = we;
            eprefix(e, "writing the DR state record %s/%s: still conflicting after %d retries "
                    "(other writers keep changing it); not recorded", state_ns, name,
                    DSI_MAX_RETRIES);
            return -1;
        }
        sleep_ms(jitter_ms());
    }
}

/* ------------------------------------------------------------ PV records */

void dsi_pv_write_clear(dsi_pv_write *w, size_t n)
{
    for (size_t i = 0; w && i < n; i++) {
        json_decref(w[i].patch);
        w[i].patch = NULL;
    }
}

static void pv_err(dsi_pv_write *w, const char *what, const k8s_error *e)
{
    char eb[1400];
    snprintf(w->error, sizeof w->error, "PV %s: %s: %s", w->pv, what,
             k8s_strerror(e, eb, sizeof eb));
    w->rc = -1;
}

/* The body to send for w on live (its annotations patch + resourceVersion);
 * NULL with w->rc/error set when live may not be written, or when nothing is
 * newer (w->rc 0, w->patch NULL). */
static json_t *pv_body(dsi_pv_write *w, const json_t *live, const char *source_cluster)
{
    json_decref(w->patch);
    w->patch = NULL;
    if (!tf_is_managed(live)) {
        snprintf(w->error, sizeof w->error, "PV %s: not managed by ocpv-dr (label %s=%s "
                 "missing): no record written on it", w->pv, TF_MANAGED_LABEL, TF_MANAGED_VALUE);
        w->rc = -1;
        return NULL;
    }
    const char *other = tf_annotation_of(live, TF_ANN_SOURCE_CLUSTER);
    if (source_cluster && other && strcmp(other, source_cluster) != 0) {
        snprintf(w->error, sizeof w->error, "PV %s: recorded from source cluster \"%.200s\", "
                 "not \"%.200s\": no record written on it", w->pv, other, source_cluster);
        w->rc = -1;
        return NULL;
    }
    drr_vol cur;
    drr_vol_parse(live, &cur);
    json_t *p = drr_vol_patch(&cur, &w->sync);
    drr_vol_free(&cur);
    w->rc = 0;
    if (!p)
        return NULL;
    w->patch = json_incref(json_object_get(json_object_get(p, "metadata"), "annotations"));
    json_object_set_new(json_object_get(p, "metadata"), "resourceVersion",
                        json_string(jx_str_or((json_t *)live, "metadata.resourceVersion", "")));
    return p;
}

typedef struct pv_done {
    int rc;
    k8s_error err;
} pv_done;

static void on_pv_patch(void *ud, int rc, json_t *out, const k8s_error *err)
{
    pv_done *d = ud;
    (void)out;
    d->rc = rc;
    if (rc != 0 && err)
        d->err = *err;
}

size_t dsi_patch_pvs(k8s_client *dr, dsi_pv_write *w, size_t n, const char *source_cluster,
                     bool dry_run, long delay_first_write_ms)
{
    const k8s_resource *pv_r = k8s_resource_builtin("v1", "PersistentVolume");
    k8s_write_opts wo = { .field_manager = DSI_FIELD_MANAGER };
    pv_done *done = calloc(n + 1, sizeof *done);
    json_t **fetched = calloc(n + 1, sizeof *fetched);
    if (!done || !fetched)
        abort();
    /* PVs not given: GET (one batch would do; callers pass the listed PVs) */
    for (size_t i = 0; i < n; i++) {
        w[i].rc = 0;
        w[i].changed = false;
        w[i].conflicts = 0;
        w[i].error[0] = '\0';
        if (!w[i].live) {
            k8s_error ge = { 0 };
            if (k8s_get(dr, pv_r, NULL, w[i].pv, &fetched[i], &ge) != 0)
                pv_err(&w[i], "read", &ge);
        }
    }
    k8s_batch *b = k8s_batch_new(dr);
    size_t queued = 0;
    json_t **bodies = calloc(n + 1, sizeof *bodies);
    if (!b || !bodies)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (w[i].rc != 0)
            continue;
        const json_t *live = w[i].live ? w[i].live : fetched[i];
        bodies[i] = pv_body(&w[i], live, source_cluster);
        done[i].rc = 1;                     /* 1 = not sent */
        if (!bodies[i])
            continue;
        if (dry_run) {
            w[i].changed = true;
            continue;
        }
        k8s_batch_merge_patch(b, pv_r, NULL, w[i].pv, bodies[i], &wo, on_pv_patch, &done[i]);
        queued++;
    }
    if (queued) {
        if (delay_first_write_ms > 0)
            sleep_ms(delay_first_write_ms);
        k8s_batch_run(b);
    }
    k8s_batch_free(b);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (bodies[i] && !dry_run) {
            if (done[i].rc == 0) {
                w[i].changed = true;
            } else if (done[i].err.status != 409) {
                pv_err(&w[i], "writing its record", &done[i].err);
            } else {
                /* someone wrote it in between: re-read, decide again */
                for (;;) {
                    w[i].conflicts++;
                    if (w[i].conflicts > DSI_MAX_RETRIES) {
                        pv_err(&w[i], "writing its record: still conflicting after the retries",
                               &done[i].err);
                        break;
                    }
                    sleep_ms(jitter_ms());
                    json_t *live = NULL;
                    k8s_error ge = { 0 };
                    if (k8s_get(dr, pv_r, NULL, w[i].pv, &live, &ge) != 0) {
                        pv_err(&w[i], "re-read after a conflict", &ge);
                        break;
                    }
                    json_t *body = pv_body(&w[i], live, source_cluster);
                    json_decref(live);
                    if (!body)
                        break;              /* refused, or nothing newer any more */
                    k8s_error pe = { 0 };
                    int rc = k8s_merge_patch(dr, pv_r, NULL, w[i].pv, body, &wo, NULL, &pe);
                    json_decref(body);
                    if (rc == 0) {
                        w[i].changed = true;
                        break;
                    }
                    if (pe.status != 409) {
                        pv_err(&w[i], "writing its record", &pe);
                        break;
                    }
                    done[i].err = pe;
                }
            }
        }
        if (w[i].rc != 0)
            failed++;
        json_decref(bodies[i]);
        json_decref(fetched[i]);
    }
    free(bodies);
    free(fetched);
    free(done);
    return failed;
}
