/* longhorn_restore.c - Ansible binary module ocpv.dr.longhorn_restore.
 *
 * The backup-aware restore orchestrator: after a cluster rebuild, brings
 * Longhorn volumes with well-known names back from their latest backup
 * before the workloads start.  For each volume it finds the BackupVolume
 * (>= 1.8 "bv-<random>" naming or the older one named after the volume, see
 * lib/dr/longhorn.h), takes status.lastBackupName, checks that Backup CR
 * (Completed, url, size), creates a Volume with spec.fromBackup, waits until
 * Longhorn reports it restored, and optionally creates the PV/PVC pair that
 * binds the workload's well-known PVC to it.  Existing volumes are skipped
 * (idempotent), a skip flag (parameter or ConfigMap key) skips everything,
 * and check mode only plans.  Returns one report entry per volume.
 */
#include "module.h"
#include "jsonx.h"
#include "k8s.h"
#include "k8s_conn_opts.h"
#include "longhorn.h"
#include "xstr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- spec ---------------------------------------------------------------- */

static const mod_opt skip_cm_opts[] = {
    { .name = "namespace", .type = OPT_STR, .required = true },
    { .name = "name", .type = OPT_STR, .required = true },
    { .name = "key", .type = OPT_STR, .def = "\"skip_backup_restore\"" },
    { 0 }
};

static const mod_opt create_pvc_opts[] = {
    { .name = "namespace", .type = OPT_STR, .required = true },
    { .name = "storage_class", .type = OPT_STR, .def = "\"longhorn\"" },
    { .name = "fs_type", .type = OPT_STR, .def = "\"ext4\"" },
    { 0 }
};

static const char *const access_modes[] = { "rwo", "rwop", "rwx", NULL };

static const mod_opt own_opts[] = {
    { .name = "volumes", .type = OPT_LIST, .elements = OPT_STR },
    { .name = "selector", .type = OPT_STR },
    { .name = "longhorn_namespace", .type = OPT_STR, .def = "\"longhorn-system\"" },
    { .name = "backup_target", .type = OPT_STR },
    { .name = "skip", .type = OPT_BOOL, .def = "false" },
    { .name = "skip_configmap", .type = OPT_DICT, .suboptions = skip_cm_opts },
    { .name = "number_of_replicas", .type = OPT_INT, .def = "3" },
    { .name = "access_mode", .type = OPT_STR, .def = "\"rwo\"", .choices = access_modes },
    { .name = "wait", .type = OPT_BOOL, .def = "true" },
    { .name = "timeout", .type = OPT_INT, .def = "600" },
    { .name = "poll_interval", .type = OPT_FLOAT, .def = "1.0" },
    { .name = "create_pvc", .type = OPT_DICT, .suboptions = create_pvc_opts },
    { 0 },
};
#define OWN_COUNT (sizeof own_opts / sizeof own_opts[0] - 1)

static mod_opt all_opts[K8S_CONN_OPT_COUNT + OWN_COUNT + 1];

static const char *const *const one_of[] = {
    (const char *const[]){ "volumes", "selector", NULL }, NULL };

static const mod_spec spec = {
    .name = "longhorn_restore",
    .opts = all_opts,
    .required_one_of = one_of,
    .supports_check_mode = true,
};

/* ---- per-volume record ----------------------------------------------------- */

typedef struct vol_rec {
    char *name;
    const char *status;        /* restored | skipped | failed | planned | restoring */
    char reason[768];
    char *bv_name, *backup_name, *backup_url, *backup_target, *size;
    struct timespec t0;
    double duration;
    bool waiting;
    json_t *pvc;               /* report of the PV/PVC pair, or NULL */
} vol_rec;

typedef struct ctx {
    module *m;
    k8s_client *kc;
    const char *ns;
    const k8s_resource *r_vol, *r_bv, *r_backup, *r_cm, *r_pv, *r_pvc;
    vol_rec *recs;
    size_t nrecs;
    bool changed;
    json_t *diff_after;        /* Volumes created, by name (one diff for the task) */
} ctx;

static double since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) { }
}

static void rec_set(vol_rec *r, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rec_set(vol_rec *r, const char *status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    r->status = status;
    r->duration = since(&r->t0);
    r->waiting = false;
}

static void add_rec(ctx *c, const char *name)
{
    for (size_t i = 0; i < c->nrecs; i++)
        if (strcmp(c->recs[i].name, name) == 0)
            return;
    vol_rec *n = realloc(c->recs, (c->nrecs + 1) * sizeof *n);
    if (!n)
        mod_fail(c->m, "out of memory");
    c->recs = n;
    memset(&c->recs[c->nrecs], 0, sizeof c->recs[0]);
    c->recs[c->nrecs].name = strdup(name);
    clock_gettime(CLOCK_MONOTONIC, &c->recs[c->nrecs].t0);
    c->nrecs++;
}

static void free_recs(ctx *c)
{
    for (size_t i = 0; i < c->nrecs; i++) {
        vol_rec *r = &c->recs[i];
        free(r->name);
        free(r->bv_name);
        free(r->backup_name);
        free(r->backup_url);
        free(r->backup_target);
        free(r->size);
        json_decref(r->pvc);
    }
    free(c->recs);
}

static json_t *report(ctx *c)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < c->nrecs; i++) {
        vol_rec *r = &c->recs[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:f}",
                              "name", r->name,
                              "status", r->status ? r->status : "failed",
                              "reason", r->reason,
                              "duration_s", (double)((long long)(r->duration * 1000.0)) / 1000.0);
        json_object_set_new(o, "backup_volume", r->bv_name ? json_string(r->bv_name) : json_null());
        json_object_set_new(o, "backup_name", r->backup_name ? json_string(r->backup_name) : json_null());
        json_object_set_new(o, "backup_url", r->backup_url ? json_string(r->backup_url) : json_null());
        json_object_set_new(o, "backup_target", r->backup_target ? json_string(r->backup_target) : json_null());
        json_object_set_new(o, "size", r->size ? json_string(r->size) : json_null());
        if (r->pvc)
            json_object_set(o, "pvc", r->pvc);
        json_array_append_new(arr, o);
    }
    return arr;
}

/* ---- steps --------------------------------------------------------------- */

/* Returns true when the skip flag is set; *source names where it came from. */
static bool skip_flag(ctx *c, char *source, size_t len)
{
    if (mod_bool(c->m, "skip")) {
        snprintf(source, len, "parameter skip=true");
        return true;
    }
    json_t *cm = mod_param(c->m, "skip_configmap");
    if (!json_is_object(cm))
        return false;
    const char *ns = mod_dict_str(cm, "namespace"), *name = mod_dict_str(cm, "name");
    const char *key = mod_dict_str(cm, "key");
    json_t *obj = NULL;
    k8s_error err;
    if (k8s_get(c->kc, c->r_cm, ns, name, &obj, &err) != 0) {
        if (err.status == 404)
            return false;   /* no ConfigMap: restore (as the seed's orchestrator does) */
        char buf[1400];
        mod_fail(c->m, "cannot read the skip flag from ConfigMap %s/%s: %s", ns, name,
                 k8s_strerror(&err, buf, sizeof buf));
    }
    json_t *data = jx_get(obj, "data");
    const char *v = data ? json_string_value(json_object_get(data, key)) : NULL;
    bool skip = lh_flag_true(v);
    if (skip)
        snprintf(source, len, "ConfigMap %s/%s key %s=%s", ns, name, key, v);
    json_decref(obj);
    return skip;
}

static json_t *list_backup_volumes(ctx *c)
{
    json_t *items = NULL;
    k8s_error err;
    if (k8s_list(c->kc, c->r_bv, c->ns, NULL, &items, NULL, &err) != 0) {
        char buf[1400];
        k8s_strerror(&err, buf, sizeof buf);
        if (err.status == 404 && strcmp(err.reason, "NotFound") == 0)
            mod_fail(c->m, "cannot list Longhorn BackupVolumes in namespace %s: %s "
                     "(is Longhorn installed, and is longhorn_namespace right?)", c->ns, buf);
        if (err.status == 403)
            mod_fail(c->m, "not allowed to list Longhorn BackupVolumes in namespace %s: %s "
                     "(the credential needs get/list on backupvolumes and backups, "
                     "get/create on volumes.longhorn.io there)", c->ns, buf);
        mod_fail(c->m, "cannot list Longhorn BackupVolumes in namespace %s: %s", c->ns, buf);
    }
    return items;
}

static void select_volumes(ctx *c, json_t *bvs)
{
    json_t *vols = mod_param(c->m, "volumes");
    size_t i;
    json_t *v;
    json_array_foreach(vols, i, v) {
        const char *s = json_string_value(v);
        if (s && *s)
            add_rec(c, s);
    }
    const char *sel = mod_str(c->m, "selector");
    if (!sel)
        return;
    if (lh_selector_match(sel, NULL) < 0)
        mod_fail(c->m, "selector %s is not a valid equality-based label selector", sel);
    json_array_foreach(bvs, i, v) {
        /* BackupVolume labels plus the backup labels Longhorn copies into status.labels */
        json_t *labels = json_object();
        json_t *ml = jx_get(v, "metadata.labels"), *sl = jx_get(v, "status.labels");
        if (json_is_object(sl))
            json_object_update(labels, sl);
        if (json_is_object(ml))
            json_object_update(labels, ml);
        if (lh_selector_match(sel, labels) == 1 && lh_bv_volume_name(v))
            add_rec(c, lh_bv_volume_name(v));
        json_decref(labels);
    }
}

/* Looks up backup and volume; creates the Volume (or plans it). */
static void start_restore(ctx *c, vol_rec *r, json_t *bvs)
{
    char buf[1400], why[512];
    k8s_error err;
    json_t *obj = NULL;

    if (k8s_get(c->kc, c->r_vol, c->ns, r->name, &obj, &err) == 0) {
        const char *fb = jx_str(obj, "spec.fromBackup");
        r->backup_url = xstrdup(fb && *fb ? fb : NULL);
        r->size = xstrdup(jx_str(obj, "spec.size"));
        rec_set(r, "skipped", "exists: Longhorn Volume %s/%s already exists%s", c->ns, r->name,
                fb && *fb ? " (created from a backup)" : "");
        json_decref(obj);
        return;
    }
    if (err.status != 404) {
        rec_set(r, "failed", "cannot read Volume %s/%s: %s", c->ns, r->name,
                k8s_strerror(&err, buf, sizeof buf));
        return;
    }

    size_t nmatch = 0;
    const char *target = mod_str(c->m, "backup_target");
    json_t *bv = lh_find_backup_volume(bvs, r->name, target, &nmatch);
    if (!bv) {
        rec_set(r, "skipped", "no backup: no BackupVolume for volume %s in namespace %s%s%s",
                r->name, c->ns, target ? " on backup target " : "", target ? target : "");
        return;
    }
    r->bv_name = xstrdup(jx_str(bv, "metadata.name"));
    r->backup_target = xstrdup(lh_bv_target_name(bv));
    const char *last = jx_str(bv, "status.lastBackupName");
    if (!last || !*last) {
        rec_set(r, "skipped", "no backup: BackupVolume %s has no status.lastBackupName yet "
                "(Longhorn has not synced a backup of %s)", r->bv_name, r->name);
        return;
    }
    r->backup_name = xstrdup(last);
    if (k8s_get(c->kc, c->r_backup, c->ns, last, &obj, &err) != 0) {
        if (err.status == 404)
            rec_set(r, "failed", "backup %s (status.lastBackupName of BackupVolume %s) is gone: "
                    "no Backup CR %s/%s; wait for the backup target to resync or pick another backup",
                    last, r->bv_name, c->ns, last);
        else
            rec_set(r, "failed", "cannot read Backup %s/%s: %s", c->ns, last,
                    k8s_strerror(&err, buf, sizeof buf));
        return;
    }
    lh_backup_info info;
    if (lh_check_backup(obj, r->name, &info, why, sizeof why) != 0) {
        rec_set(r, "failed", "%s", why);
        json_decref(obj);
        return;
    }
    r->backup_url = xstrdup(info.url);
    r->size = xstrdup(info.size);
    if (info.target && !r->backup_target)
        r->backup_target = xstrdup(info.target);

    lh_volume_opts vo = {
        .name = r->name, .ns = c->ns, .from_backup = info.url, .size = info.size,
        .replicas = mod_int(c->m, "number_of_replicas"),
        .access_mode = mod_str(c->m, "access_mode"), .backup_name = info.name,
    };
    json_t *vol = lh_build_volume(&vo);
    if (c->m->check_mode) {
        rec_set(r, "planned", "would create Volume %s/%s from backup %s (%s bytes)",
                c->ns, r->name, info.name, info.size);
        json_object_set_new(c->diff_after, r->name, vol);
        json_decref(obj);
        c->changed = true;
        return;
    }
    json_decref(obj);
    obj = NULL;
    int rc = k8s_create(c->kc, c->r_vol, vol, NULL, &obj, &err);
    if (rc == 0) {
        c->changed = true;
        json_object_set(c->diff_after, r->name, vol);
        r->status = "restoring";
        r->waiting = true;
    } else if (err.status == 409) {
        rec_set(r, "skipped", "exists: Volume %s/%s was created concurrently", c->ns, r->name);
    } else {
        rec_set(r, "failed", "cannot create Volume %s/%s from backup %s: %s", c->ns, r->name,
                r->backup_name, k8s_strerror(&err, buf, sizeof buf));
    }
    json_decref(vol);
    json_decref(obj);
}

static void wait_restores(ctx *c)
{
    bool wait = mod_bool(c->m, "wait");
    long long timeout = mod_int(c->m, "timeout");
    double poll = mod_float(c->m, "poll_interval");
    if (poll <= 0)
        poll = 1.0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        size_t pending = 0;
        for (size_t i = 0; i < c->nrecs; i++) {
            vol_rec *r = &c->recs[i];
            if (!r->waiting)
                continue;
            if (!wait) {
                rec_set(r, "restored", "Volume created from backup %s; not waiting (wait=false)",
                        r->backup_name);
                continue;
            }
            json_t *vol = NULL;
            k8s_error err;
            char buf[1400], why[512];
            if (k8s_get(c->kc, c->r_vol, c->ns, r->name, &vol, &err) != 0) {
                if (err.status == 404)
                    rec_set(r, "failed", "Volume %s/%s disappeared while restoring", c->ns, r->name);
                else if (err.status == 403)
                    rec_set(r, "failed", "cannot watch the restore of %s/%s: %s", c->ns, r->name,
                            k8s_strerror(&err, buf, sizeof buf));
                else
                    pending++;   /* transient (the client already retried): try again */
                continue;
            }
            lh_restore_state st = lh_volume_restore_state(vol, why, sizeof why);
            if (st == LH_RESTORE_DONE)
                rec_set(r, "restored", "restored from backup %s (%s)", r->backup_name, why);
            else if (st == LH_RESTORE_FAILED)
                rec_set(r, "failed", "Longhorn reports the restore from backup %s failed: %s",
                        r->backup_name, why);
            else if (since(&start) >= (double)timeout)
                rec_set(r, "failed", "timed out after %llds waiting for the restore from backup %s "
                        "(%s); the Volume is left in place, Longhorn may still finish it",
                        timeout, r->backup_name, why);
            else
                pending++;
            json_decref(vol);
        }
        if (!pending)
            return;
        sleep_s(poll);
    }
}

/* Creates (or checks) one object of the PV/PVC pair; returns a status word. */
static const char *ensure_obj(ctx *c, const k8s_resource *res, json_t *obj, const char *ns,
                              const char *name, const char *bound_path, const char *bound_to,
                              char *msg, size_t len)
{
    k8s_error err;
    json_t *cur = NULL;
    char buf[1400];
    if (k8s_get(c->kc, res, ns, name, &cur, &err) == 0) {
        const char *b = jx_str(cur, bound_path);
        bool ok = b && strcmp(b, bound_to) == 0;
        if (!ok)
            snprintf(msg, len, "%s %s%s%s exists but %s is %s, not %s", res->kind, ns ? ns : "",
                     ns ? "/" : "", name, bound_path, b ? b : "<unset>", bound_to);
        json_decref(cur);
        return ok ? "exists" : NULL;
    }
    if (err.status != 404) {
        snprintf(msg, len, "cannot read %s %s: %s", res->kind, name, k8s_strerror(&err, buf, sizeof buf));
        return NULL;
    }
    if (c->m->check_mode)
        return "planned";
    if (k8s_create(c->kc, res, obj, NULL, NULL, &err) != 0) {
        snprintf(msg, len, "cannot create %s %s%s%s: %s", res->kind, ns ? ns : "", ns ? "/" : "",
                 name, k8s_strerror(&err, buf, sizeof buf));
        return NULL;
    }
    c->changed = true;
    return "created";
}

static void ensure_pvcs(ctx *c)
{
    json_t *cp = mod_param(c->m, "create_pvc");
    if (!json_is_object(cp))
        return;
    for (size_t i = 0; i < c->nrecs; i++) {
        vol_rec *r = &c->recs[i];
        bool restored = r->status && (strcmp(r->status, "restored") == 0 ||
                                      strcmp(r->status, "planned") == 0);
        /* an existing volume restored by an earlier run still gets its PV/PVC */
        bool existing = r->status && strcmp(r->status, "skipped") == 0 &&
                        r->backup_url && strncmp(r->reason, "exists", 6) == 0;
        if ((!restored && !existing) || !r->size)
            continue;
        lh_pvc_opts po = {
            .volume = r->name, .pvc_namespace = mod_dict_str(cp, "namespace"),
            .pvc_name = r->name, .storage_class = mod_dict_str(cp, "storage_class"),
            .fs_type = mod_dict_str(cp, "fs_type"), .size = r->size,
            .access_mode = mod_str(c->m, "access_mode"),
            .replicas = mod_int(c->m, "number_of_replicas"),
        };
        char msg[1600] = "";
        json_t *pv = lh_build_pv(&po), *pvc = lh_build_pvc(&po);
        const char *pv_st = ensure_obj(c, c->r_pv, pv, NULL, r->name, "spec.csi.volumeHandle",
                                       r->name, msg, sizeof msg);
        const char *pvc_st = pv_st ? ensure_obj(c, c->r_pvc, pvc, po.pvc_namespace, r->name,
                                                "spec.volumeName", r->name, msg, sizeof msg)
                                   : NULL;
        r->pvc = json_pack("{s:s, s:s, s:s, s:s}", "namespace", po.pvc_namespace, "name", r->name,
                           "pv", pv_st ? pv_st : "failed", "pvc", pvc_st ? pvc_st : "failed");
        if (!pvc_st) {
            json_object_set_new(r->pvc, "reason", json_string(msg));
            char keep[sizeof r->reason];
            snprintf(keep, sizeof keep, "%s", r->reason);
            r->status = "failed";
            snprintf(r->reason, sizeof r->reason, "%.300s; but the PV/PVC pair failed: %.400s", keep, msg);
        }
        json_decref(pv);
        json_decref(pvc);
    }
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
    k8s_conn_opts_compose(all_opts, own_opts, NULL, NULL);

    module m;
    mod_init(&m, &spec, argc, argv);

    ctx c = { .m = &m, .diff_after = json_object() };
    c.ns = mod_str(&m, "longhorn_namespace");
    if (mod_int(&m, "timeout") < 0)
        mod_fail(&m, "timeout must be >= 0 seconds, got %lld", mod_int(&m, "timeout"));
    if (mod_int(&m, "number_of_replicas") < 1)
        mod_fail(&m, "number_of_replicas must be >= 1, got %lld", mod_int(&m, "number_of_replicas"));

    c.r_vol = k8s_resource_builtin("longhorn.io/v1beta2", "Volume");
    c.r_bv = k8s_resource_builtin("longhorn.io/v1beta2", "BackupVolume");
    c.r_backup = k8s_resource_builtin("longhorn.io/v1beta2", "Backup");
    c.r_cm = k8s_resource_builtin("v1", "ConfigMap");
    c.r_pv = k8s_resource_builtin("v1", "PersistentVolume");
    c.r_pvc = k8s_resource_builtin("v1", "PersistentVolumeClaim");
    if (!c.r_vol || !c.r_bv || !c.r_backup || !c.r_cm || !c.r_pv || !c.r_pvc)
        mod_fail(&m, "internal error: Longhorn or core resources missing from the k8s client's table");

    k8s_conn conn;
    memset(&conn, 0, sizeof conn);
    conn.validate_certs = -1;
    k8s_conn_from_json(&conn, m.params);
    k8s_conn_from_env(&conn);
    k8s_error err;
    c.kc = k8s_client_new(&conn, NULL, &err);
    if (!c.kc) {
        char buf[1400];
        mod_fail(&m, "cannot connect to Kubernetes: %s", k8s_strerror(&err, buf, sizeof buf));
    }
    k8s_mod_warn_transport(&m, c.kc, "Kubernetes");

    char source[512] = "";
    bool skip = skip_flag(&c, source, sizeof source);
    json_t *bvs = list_backup_volumes(&c);
    select_volumes(&c, bvs);

    for (size_t i = 0; i < c.nrecs; i++) {
        if (skip)
            rec_set(&c.recs[i], "skipped", "skip flag: %s", source);
        else
            start_restore(&c, &c.recs[i], bvs);
    }
    wait_restores(&c);
    ensure_pvcs(&c);
    json_decref(bvs);

    size_t n_rest = 0, n_skip = 0, n_fail = 0, n_plan = 0;
    for (size_t i = 0; i < c.nrecs; i++) {
        const char *s = c.recs[i].status;
        if (strcmp(s, "restored") == 0) n_rest++;
        else if (strcmp(s, "skipped") == 0) n_skip++;
        else if (strcmp(s, "planned") == 0) n_plan++;
        else n_fail++;
    }
    mod_set(&m, "volumes", report(&c));
    mod_set(&m, "summary", json_pack("{s:I, s:I, s:I, s:I}", "restored", (json_int_t)n_rest,
                                     "skipped", (json_int_t)n_skip, "failed", (json_int_t)n_fail,
                                     "planned", (json_int_t)n_plan));
    mod_changed(&m, c.changed);
    if (json_object_size(c.diff_after))
        mod_diff(&m, json_object(), c.diff_after);
    else
        json_decref(c.diff_after);

    char first[900] = "";
    for (size_t i = 0; i < c.nrecs; i++)
        if (strcmp(c.recs[i].status, "failed") == 0) {
            snprintf(first, sizeof first, "%s: %s", c.recs[i].name, c.recs[i].reason);
            break;
        }
    size_t total = c.nrecs;
    free_recs(&c);
    k8s_client_free(c.kc);
    if (n_fail)
        mod_fail(&m, "%zu of %zu Longhorn volume(s) failed to restore; first: %s", n_fail, total, first);
    if (total == 0)
        mod_warn(&m, "no volume matched: volumes is empty and selector matched no BackupVolume");
    mod_set(&m, "msg", json_sprintf("restored %zu, skipped %zu, failed 0%s", n_rest, n_skip,
                                    m.check_mode ? " (check mode: nothing written)" : ""));
    mod_exit(&m);
}
