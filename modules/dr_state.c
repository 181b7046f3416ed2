/* dr_state.c - Ansible binary module ocpv.dr.dr_state: writes the DR state
 * records of issue #16 on the DR cluster and reads them back as a
 * protection status (docs/status.md).  Spec and orchestration only: what a
 * record holds and the "newer start wins" rules are lib/dr/dr_record.c, the
 * state is lib/dr/dr_status.c, the reads/writes (409 retry) lib/drstate.
 *
 *   record_sync       nfs_rsync_sync's per-volume results -> DR PV annotations
 *                     (last-sync-*, last-attempt-*); a volume with no usable DR PV
 *                     -> pending.<pv> in the namespace record
 *   record_full_sync  the same, plus full-sync.* (start = the listing's listed_at;
 *                     ok iff every bound claim's volume synced, every applied object
 *                     ok, prune ok) and claims.* from the listing
 *   record_backup     backup.* (the given summary, or the newest Completed DR
 *                     Velero Backup covering the namespace)
 *   record_action     action.* (failover|failback, running|completed|failed)
 *   note_event_read   event.pv-pvc-read-at = listing.listed_at, claims.*
 *   status            dsi_read (+ the primary's claims when `primary` is given) ->
 *                     dst_compute per namespace; never fails on a state
 *   guard             fails when a namespace's record says DR may hold the live
 *                     data (a failover recorded, or a failback not completed):
 *                     a sync job must not rsync the old primary over it
 *
 * Every writing mode also writes target.* (the targets in force).  Nothing is
 * written when a read fails; check mode writes nothing and returns the patches
 * it would send; `changed` only when a record changed. */
#include "module.h"
#include "k8s.h"
#include "k8s_conn_opts.h"
#include "drstate.h"
#include "dr_record.h"
#include "dr_status.h"
#include "jsonx.h"
#include "transform.h"
#include "xstr.h"
#include "xtime.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ spec */

static const char *const modes[] = { "record_sync", "record_full_sync", "record_backup",
    "record_action", "note_event_read", "status", "guard", NULL };
static const char *const kinds[] = { "event", "periodic", "failover", NULL };
static const char *const actions[] = { "failover", "failback", NULL };
static const char *const phases[] = { "running", "completed", "failed", NULL };

static const mod_opt target_opts[] = {
    { .name = "rpo_s", .type = OPT_FLOAT, .def = "7200" },
    { .name = "rto_s", .type = OPT_FLOAT, .def = "3600" },
    { .name = "backup_max_age_s", .type = OPT_FLOAT, .def = "93600" },
    /* per namespace: {<namespace>: {rpo_s, rto_s, backup_max_age_s}}, each key
     * overriding the ones above for that namespace only */
    { .name = "namespaces", .type = OPT_DICT, .def = "{}" },
    { 0 }
};

static const mod_opt own_opts[] = {
    { .name = "mode", .type = OPT_STR, .required = true, .choices = modes },
    { .name = "namespaces", .type = OPT_LIST, .elements = OPT_STR, .def = "[]" },
    { .name = "source_cluster", .type = OPT_STR },
    { .name = "state_namespace", .type = OPT_STR, .def = "\"" DSI_DEFAULT_STATE_NS "\"" },
    { .name = "oadp_namespace", .type = OPT_STR, .def = "\"" DSI_DEFAULT_OADP_NS "\"" },
    { .name = "sync", .type = OPT_DICT },
    { .name = "applied", .type = OPT_DICT },
    { .name = "listing", .type = OPT_DICT },
    { .name = "pruned", .type = OPT_DICT },
    { .name = "kind", .type = OPT_STR, .def = "\"periodic\"", .choices = kinds },
    { .name = "action", .type = OPT_STR, .choices = actions },
    { .name = "phase", .type = OPT_STR, .choices = phases },
    { .name = "started_at", .type = OPT_STR },
    { .name = "reason", .type = OPT_STR },
    { .name = "backup", .type = OPT_DICT },
    { .name = "targets", .type = OPT_DICT, .def = "{}", .suboptions = target_opts },
    { .name = "job", .type = OPT_STR },
    { .name = "primary", .type = OPT_DICT },     /* suboptions filled in main() */
    { .name = "primary_timeout", .type = OPT_INT, .def = "5" },
    { .name = "allow_after_failover", .type = OPT_BOOL, .def = "false" },
    { .name = "fail_on_error", .type = OPT_BOOL, .def = "true" },
    { .name = "write_delay_ms", .type = OPT_INT, .def = "0" },
    { 0 }
};
#define OWN_COUNT (sizeof own_opts / sizeof own_opts[0] - 1)

static mod_opt all_opts[K8S_CONN_OPT_COUNT + OWN_COUNT + 1];
static mod_opt primary_opts[K8S_CONN_OPT_COUNT + 1];
static const mod_spec spec = { .name = "dr_state", .opts = all_opts,
                               .supports_check_mode = true };

/* ------------------------------------------------------------ run state */

/* One volume of a sync result, as it will be recorded. */
typedef struct vol {
    const char *pv;
    char *ns;                   /* protected namespace (claimRef), NULL unknown */
    const char *source_uid;     /* primary PV uid, NULL unknown */
    const json_t *dr_pv;        /* the managed DR PV (snapshot), NULL absent */
    drr_sync s;
    bool use;                   /* recorded */
    bool pending;               /* as pending.<pv> (no usable DR PV) */
    bool skipped;               /* storage class skipped by nfs_rsync_sync */
    char *by;                   /* owned */
    char *reason;               /* owned */
    char *note;                 /* why not recorded / error, owned */
    bool error;                 /* note is an error (fails the task) */
    int pvw;                    /* index into the PV writes, -1 none */
} vol;

/* What one namespace record gets (the pure mutation's input). */
typedef struct nsjob {
    const char *ns;
    /* pending.<pv>: set (vol pending) or remove (vol recorded on its DR PV) */
    vol **pend_set;  size_t n_set;
    const char **pend_rm; size_t n_rm;
    bool has_full;   drr_full_sync full;
    bool has_claims; time_t claims_at; json_t *bound, *cpending; bool pending_unknown;
    bool has_backup; drr_backup backup;
    bool has_action; drr_action action; bool action_started_given;
    bool has_event;  time_t event_at;
    bool has_targets; double t_rpo, t_rto, t_bk;
    /* result */
    dsi_update u;
    int rc;
    char error[1400];
} nsjob;

typedef struct run {
    module m;
    k8s_client *dr, *primary;
    const char *mode, *state_ns, *oadp_ns, *source_cluster;
    char *job, *by;
    time_t now;
    bool check;
    long delay_ms;
    dst_targets targets;
    json_t *ns_targets;           /* targets.namespaces (borrowed from the params), or NULL */
    dsi_snapshot snap;
    json_t *info;               /* pv name -> {ns, uid} learnt from the inputs */
    vol *vols; size_t nvols;
    nsjob *jobs; size_t njobs;
    size_t nerrors;
    char first_error[1600];
} run;

static void err_note(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err_note(run *r, const char *fmt, ...)
{
    r->nerrors++;
    if (r->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->first_error, sizeof r->first_error, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ helpers */

static k8s_client *cluster_connect(run *r, json_t *params, const char *what, long timeout_ms,
                           int retries)
{
    k8s_conn conn;
    memset(&conn, 0, sizeof conn);
    conn.validate_certs = -1;
    k8s_conn_from_json(&conn, params);
    k8s_config cfg = { .max_retries = retries, .timeout_ms = timeout_ms,
                       .connect_timeout_ms = timeout_ms < 10000 ? timeout_ms : 10000,
                       .max_in_flight = 16, .field_manager = DSI_FIELD_MANAGER };
    k8s_error e = { 0 };
    k8s_client *c = k8s_client_new(&conn, &cfg, &e);
    if (!c) {
        char eb[1400];
        mod_fail(&r->m, "%s cluster connection: %s", what, k8s_strerror(&e, eb, sizeof eb));
    }
    k8s_mod_warn_transport(&r->m, c, what);
    return c;
}

static double num_or(json_t *o, const char *key, double def)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : def;
}

/* The targets in force for ns: the job's, overridden by targets.namespaces[ns]
 * (validated in main). */
static dst_targets targets_for(const run *r, const char *ns)
{
    dst_targets t = r->targets;
    json_t *o = json_object_get(r->ns_targets, ns);
    t.rpo_s = num_or(o, "rpo_s", t.rpo_s);
    t.rto_s = num_or(o, "rto_s", t.rto_s);
    t.backup_max_age_s = num_or(o, "backup_max_age_s", t.backup_max_age_s);
    return t;
}

/* targets.namespaces: a dict of namespace -> dict of the three positive targets;
 * anything else fails the task naming the field. */
static void check_ns_targets(module *m, json_t *nst)
{
    const char *ns;
    json_t *o;
    json_object_foreach(nst, ns, o) {
        if (!json_is_object(o))
            mod_fail(m, "targets.namespaces.%s: must be a dict of rpo_s, rto_s, backup_max_age_s", ns);
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
            if (strcmp(k, "rpo_s") && strcmp(k, "rto_s") && strcmp(k, "backup_max_age_s"))
                mod_fail(m, "targets.namespaces.%s.%s: unknown target (rpo_s, rto_s, backup_max_age_s)",
                         ns, k);
            if (json_is_string(v)) {     /* "900" from a Jinja template */
                char *end = NULL;
                double d = strtod(json_string_value(v), &end);
                if (end && end != json_string_value(v) && !*end)
                    json_object_set_new(o, k, json_real(d));
                v = json_object_get(o, k);
            }
            if (!json_is_number(v) || !(json_number_value(v) > 0))
                mod_fail(m, "targets.namespaces.%s.%s: must be a positive number of seconds", ns, k);
        }
    }
}

static bool opt_time(const char *s, time_t *out)
{
    return s && *s && xtime_parse(s, out);
}

static json_t *jtime(time_t t)
{
    char b[XTIME_RFC3339_LEN];
    xtime_rfc3339(t, b);
    return json_string(b);
}

static const json_t *ns_list(run *r)
{
    return mod_param(&r->m, "namespaces");
}

static bool in_scope(run *r, const char *ns)
{
    const json_t *l = ns_list(r);
    if (json_array_size(l) == 0)
        return true;
    size_t i;
    json_t *v;
    json_array_foreach(l, i, v)
        if (ns && strcmp(json_string_value(v), ns) == 0)
            return true;
    return false;
}

static nsjob *job_for(run *r, const char *ns)
{
    for (size_t i = 0; i < r->njobs; i++)
        if (strcmp(r->jobs[i].ns, ns) == 0)
            return &r->jobs[i];
    nsjob *p = realloc(r->jobs, (r->njobs + 1) * sizeof *p);
    if (!p)
        mod_fail(&r->m, "out of memory");
    r->jobs = p;
    nsjob *j = &r->jobs[r->njobs++];
    memset(j, 0, sizeof *j);
    j->ns = ns;
    return j;
}

/* Learns pv -> {ns, uid} from a PV object (primary or DR). */
static void learn_pv(run *r, const json_t *pv, bool primary)
{
    const char *name = jx_str((json_t *)pv, "metadata.name");
    if (!name)
        return;
    json_t *cur = json_object_get(r->info, name);
    if (!cur) {
        cur = json_object();
        json_object_set_new(r->info, name, cur);
    }
    const char *ns = jx_str((json_t *)pv, "spec.claimRef.namespace");
    if (ns && !json_object_get(cur, "ns"))
        json_object_set_new(cur, "ns", json_string(ns));
    const char *uid = primary ? jx_str((json_t *)pv, "metadata.uid")
                              : tf_annotation_of(pv, TF_ANN_SOURCE_UID);
    if (uid && !json_object_get(cur, "uid"))
        json_object_set_new(cur, "uid", json_string(uid));
}

static void learn_inputs(run *r)
{
    size_t i;
    json_t *o;
    json_t *listing = mod_param(&r->m, "listing");
    json_array_foreach(json_object_get(listing, "volumes"), i, o)
        learn_pv(r, o, true);
    json_t *sync = mod_param(&r->m, "sync");
    /* the volumes nfs_rsync_sync was given (PV objects or {pv, pvc}) */
    json_array_foreach(jx_get(sync, "invocation.module_args.volumes"), i, o) {
        json_t *pv = json_is_object(json_object_get(o, "pv")) ? json_object_get(o, "pv") : o;
        learn_pv(r, pv, true);
        json_t *pvc = json_object_get(o, "pvc");
        const char *name = jx_str(pv, "metadata.name"), *cns = jx_str(pvc, "metadata.namespace");
        json_t *cur = name ? json_object_get(r->info, name) : NULL;
        if (cur && cns && !json_object_get(cur, "ns"))
            json_object_set_new(cur, "ns", json_string(cns));
    }
    json_array_foreach(r->snap.pvs, i, o)
        learn_pv(r, o, false);
}

static const json_t *dr_pv_named(run *r, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(r->snap.pvs, i, o) {
        const char *n = jx_str(o, "metadata.name");
        if (n && strcmp(n, name) == 0)
            return o;
    }
    return NULL;
}

/* ------------------------------------------------------------ reading */

static void read_dr(run *r, bool pvs, bool backups)
{
    dsi_scope sc = { .state_ns = r->state_ns, .oadp_ns = r->oadp_ns, .skip_pvs = !pvs,
                     .skip_backups = !backups };
    k8s_error e = { 0 };
    if (dsi_read(r->dr, &sc, &r->snap, &e) != 0) {
        char eb[1400];
        mod_fail(&r->m, "DR cluster %s: %s: nothing written", k8s_client_server(r->dr),
                 k8s_strerror(&e, eb, sizeof eb));
    }
    size_t i;
    json_t *w;
    json_array_foreach(r->snap.warnings, i, w)
        mod_warn(&r->m, "%s", json_string_value(w));
}

/* ------------------------------------------------------------ record_sync */

/* The volumes of `sync` (nfs_rsync_sync's registered result) in scope. */
static void plan_volumes(run *r)
{
    json_t *sync = mod_param(&r->m, "sync");
    json_t *vols = json_object_get(sync, "volumes");
    if (!json_is_array(vols))
        mod_fail(&r->m, "sync: not a registered nfs_rsync_sync result (no `volumes` list)%s",
                 jx_get(sync, "msg") ? ": its task failed before syncing anything" : "");
    time_t host_now = 0;
    bool has_host = opt_time(jx_str(sync, "host_time"), &host_now);
    r->vols = calloc(json_array_size(vols) + 1, sizeof *r->vols);
    if (!r->vols)
        mod_fail(&r->m, "out of memory");
    size_t i;
    json_t *o;
    json_array_foreach(vols, i, o) {
        vol *v = &r->vols[r->nvols++];
        v->pvw = -1;
        v->pv = jx_str(o, "name");
        if (!v->pv || !*v->pv) {
            v->note = xfmt("sync.volumes[%zu]: no name", i);
            v->error = true;
            err_note(r, "%s", v->note);
            continue;
        }
        json_t *inf = json_object_get(r->info, v->pv);
        const char *ns = jx_str(inf, "ns");
        v->ns = ns ? xstrdup(ns) : NULL;
        v->source_uid = jx_str(o, "source_uid");
        if (!v->source_uid)
            v->source_uid = jx_str(inf, "uid");
        v->dr_pv = dr_pv_named(r, v->pv);
        if (!v->ns) {
            v->note = xfmt("PV %s: its namespace is unknown (no claimRef in the listing, the "
                           "sync input or on DR): not recorded", v->pv);
            continue;
        }
        if (!in_scope(r, v->ns)) {
            v->note = xfmt("namespace %s is not in namespaces: not recorded", v->ns);
            continue;
        }
        v->skipped = json_is_true(json_object_get(o, "skipped"));
        bool ok = json_is_true(json_object_get(o, "ok")) && !v->skipped;
        const char *err = jx_str(o, "error");
        time_t start = 0, end = 0, as_of = 0;
        bool has_start = opt_time(jx_str(o, "started_at"), &start);
        if (v->skipped) {
            if (v->dr_pv) {
                v->note = xstrdup("skipped by nfs_rsync_sync (storage class without a profile); "
                                  "its DR PV keeps its record");
                continue;
            }
            start = r->now;
            v->reason = xfmt("skipped: storage class \"%s\" has no storage profile "
                             "(on_unknown: skip)", jx_str_or(o, "storage_class", ""));
        } else if (ok && !has_start) {
            v->note = xfmt("PV %s: synced, but the result has no started_at (nfs_rsync_sync "
                           "older than #16?): the data age is unknown, not recorded", v->pv);
            v->error = true;
            err_note(r, "%s", v->note);
            continue;
        } else if (!has_start) {
            /* failed before its rsync started (planning, ssh): the job's time */
            start = has_host ? host_now : r->now;
        }
        if (start > r->now + DST_CLOCK_SKEW_S) {
            char b[XTIME_RFC3339_LEN];
            xtime_rfc3339(start, b);
            v->note = xfmt("PV %s: clock_skew: its start %s is more than %d s ahead of this "
                           "controller's clock (NTP on the storage host?): not recorded",
                           v->pv, b, DST_CLOCK_SKEW_S);
            v->error = true;
            err_note(r, "%s", v->note);
            continue;
        }
        if (!opt_time(jx_str(o, "data_as_of"), &as_of))
            as_of = start;
        if (!opt_time(jx_str(o, "finished_at"), &end))
            end = 0;
        if (!v->reason && !ok)
            v->reason = xstrdup(err && *err ? err : "failed (no error text in the result)");
        v->by = xstrdup(r->by);
        json_t *bs = json_object_get(o, "bytes_sent");
        v->s = (drr_sync){ .ok = ok, .attempt_start = start, .data_as_of = as_of, .end = end,
                           .bytes = json_is_integer(bs) ? (long long)json_integer_value(bs) : -1,
                           .source_uid = v->source_uid,
                           .consistency = jx_str_or(o, "consistency",
                                                    jx_str(sync, "invocation.module_args."
                                                           "snapshot_dir") ? "snapshot" : "live"),
                           .by = v->by, .reason = v->reason };
        v->use = true;
        /* a DR PV made from another primary PV (claim recreated, apply failed)
         * is not this volume's copy */
        const char *dr_uid = v->dr_pv ? tf_annotation_of(v->dr_pv, TF_ANN_SOURCE_UID) : NULL;
        v->pending = !v->dr_pv || (v->source_uid && dr_uid && strcmp(dr_uid, v->source_uid) != 0);
        nsjob *j = job_for(r, v->ns);
        if (v->pending) {
            vol **p = realloc(j->pend_set, (j->n_set + 1) * sizeof *p);
            if (!p)
                mod_fail(&r->m, "out of memory");
            j->pend_set = p;
            j->pend_set[j->n_set++] = v;
        } else {
            const char **p = realloc(j->pend_rm, (j->n_rm + 1) * sizeof *p);
            if (!p)
                mod_fail(&r->m, "out of memory");
            j->pend_rm = p;
            j->pend_rm[j->n_rm++] = v->pv;
        }
    }
}

static json_t *write_pvs(run *r)
{
    size_t n = 0;
    dsi_pv_write *w = calloc(r->nvols + 1, sizeof *w);
    if (!w)
        mod_fail(&r->m, "out of memory");
    for (size_t i = 0; i < r->nvols; i++) {
        vol *v = &r->vols[i];
        if (!v->use || v->pending)
            continue;
        v->pvw = (int)n;
        w[n++] = (dsi_pv_write){ .pv = v->pv, .live = v->dr_pv, .sync = v->s };
    }
    if (n)
        dsi_patch_pvs(r->dr, w, n, r->source_cluster, r->check, r->delay_ms);
    json_t *out = json_array();
    int conflicts = 0;
    for (size_t i = 0; i < r->nvols; i++) {
        vol *v = &r->vols[i];
        json_t *o = json_pack("{s:s?, s:s?}", "pv", v->pv, "namespace", v->ns);
        if (v->pvw >= 0) {
            dsi_pv_write *x = &w[v->pvw];
            json_object_set_new(o, "recorded", json_string("pv"));
            json_object_set_new(o, "result", json_string(v->s.ok ? "ok" : "failed"));
            json_object_set_new(o, "changed", json_boolean(x->changed));
            json_object_set_new(o, "patch", x->patch ? json_incref(x->patch) : json_null());
            json_object_set_new(o, "conflicts_retried", json_integer(x->conflicts));
            conflicts += x->conflicts;
            if (x->rc != 0) {
                json_object_set_new(o, "error", json_string(x->error));
                err_note(r, "%s", x->error);
            }
            if (x->changed)
                mod_changed(&r->m, true);
        } else if (v->use) {
            json_object_set_new(o, "recorded", json_string("pending"));
            json_object_set_new(o, "result", json_string(v->s.ok ? "ok" : "failed"));
        } else {
            json_object_set_new(o, "recorded", json_string("none"));
        }
        if (v->note)
            json_object_set_new(o, v->error ? "error" : "note", json_string(v->note));
        json_array_append_new(out, o);
    }
    json_t *prev = json_object_get(r->m.result, "conflicts_retried");
    mod_set(&r->m, "conflicts_retried",
            json_integer(conflicts + (prev ? json_integer_value(prev) : 0)));
    dsi_pv_write_clear(w, n);
    free(w);
    return out;
}

/* ------------------------------------------------------------ namespace writes */

static json_t *mutate(void *ud, const drr_ns *cur, const json_t *cm)
{
    nsjob *j = ud;
    (void)cm;
    json_t *acc = NULL;
    for (size_t i = 0; i < j->n_set; i++)
        drr_patch_merge(&acc, drr_ns_patch_pending(cur, j->pend_set[i]->pv, &j->pend_set[i]->s));
    for (size_t i = 0; i < j->n_rm; i++)
        drr_patch_merge(&acc, drr_ns_patch_pending(cur, j->pend_rm[i], NULL));
    if (j->has_full)
        drr_patch_merge(&acc, drr_ns_patch_full_sync(cur, &j->full));
    if (j->has_claims) {
        json_t *p = drr_ns_patch_claims(cur, j->claims_at, j->bound, j->cpending);
        if (p && j->pending_unknown)
            json_object_set_new(json_object_get(p, "data"), "claims.pending", json_null());
        drr_patch_merge(&acc, p);
    }
    if (j->has_backup)
        drr_patch_merge(&acc, drr_ns_patch_backup(cur, &j->backup));
    if (j->has_action) {
        drr_action a = j->action;
        if (a.phase != DRR_PH_RUNNING && !j->action_started_given
            && cur->action.kind == a.kind && cur->action.has_started
            && cur->action.phase == DRR_PH_RUNNING)
            a.started = cur->action.started;     /* closes the running marker */
        if (a.phase != DRR_PH_RUNNING && a.finished < a.started)
            a.finished = a.started;
        drr_patch_merge(&acc, drr_ns_patch_action(cur, &a));
    }
    if (j->has_event)
        drr_patch_merge(&acc, drr_ns_patch_event_read(cur, j->event_at));
    if (j->has_targets)
        drr_patch_merge(&acc, drr_ns_patch_targets(cur, j->t_rpo, j->t_rto, j->t_bk));
    return acc;
}

static json_t *write_namespaces(run *r)
{
    json_t *out = json_array();
    int conflicts = 0;
    for (size_t i = 0; i < r->njobs; i++) {
        nsjob *j = &r->jobs[i];
        dst_targets t = targets_for(r, j->ns);
        j->has_targets = true;
        j->t_rpo = t.rpo_s;
        j->t_rto = t.rto_s;
        j->t_bk = t.backup_max_age_s;
        j->u = (dsi_update){ .source_cluster = r->source_cluster, .dry_run = r->check,
                             .delay_first_write_ms = r->delay_ms };
        k8s_error e = { 0 };
        j->rc = dsi_update_ns(r->dr, r->state_ns, j->ns, mutate, j, &j->u, &e);
        json_t *o = json_pack("{s:s, s:b, s:b, s:i, s:O?}", "namespace", j->ns,
                              "changed", j->u.changed, "created", j->u.created,
                              "conflicts_retried", j->u.conflicts, "patch", j->u.patch);
        if (!j->u.patch)
            json_object_set_new(o, "patch", json_null());
        conflicts += j->u.conflicts;
        if (j->rc != 0) {
            k8s_strerror(&e, j->error, sizeof j->error);
            json_object_set_new(o, "error", json_string(j->error));
            err_note(r, "namespace %s: %s", j->ns, j->error);
        }
        if (j->u.changed)
            mod_changed(&r->m, true);
        json_array_append_new(out, o);
        dsi_update_clear(&j->u);
    }
    json_t *prev = json_object_get(r->m.result, "conflicts_retried");
    mod_set(&r->m, "conflicts_retried",
            json_integer(conflicts + (prev ? json_integer_value(prev) : 0)));
    return out;
}

/* ------------------------------------------------------------ record_full_sync */

/* Failures of k8s_dr_clean results (applied / pruned) that concern ns. */
static const char *dr_clean_failure(run *r, const json_t *res, const char *ns, const char *what,
                                    char *buf, size_t len)
{
    if (!json_is_object(res))
        return NULL;
    const char *guard = jx_str((json_t *)res, "prune_guard");
    if (guard) {
        snprintf(buf, len, "%s: prune stopped by a guard: %s", what, guard);
        return buf;
    }
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(res, "results"), i, o) {
        const char *a = jx_str(o, "action");
        if (!a || (strcmp(a, "failed") != 0 && strcmp(a, "conflict") != 0))
            continue;
        const char *ons = jx_str(o, "namespace"), *name = jx_str(o, "name");
        if (!ons || !*ons) {   /* cluster-scoped (PV): its claim's namespace */
            json_t *inf = name ? json_object_get(r->info, name) : NULL;
            ons = jx_str(inf, "ns");
        }
        if (ons && strcmp(ons, ns) == 0) {
            snprintf(buf, len, "%s: %s %s %s: %s", what, jx_str_or(o, "kind", "object"),
                     name ? name : "?", a, jx_str_or(o, "reason", ""));
            return buf;
        }
    }
    if (json_is_true(json_object_get(res, "failed")) && !json_object_get(res, "results")) {
        snprintf(buf, len, "%s: the task failed: %s", what, jx_str_or((json_t *)res, "msg", "?"));
        return buf;
    }
    return NULL;
}

static void plan_full_sync(run *r, time_t listed_at)
{
    json_t *listing = mod_param(&r->m, "listing");
    json_t *sync = mod_param(&r->m, "sync");
    const json_t *nss = ns_list(r);
    json_t *claims = json_object_get(listing, "claims");
    json_t *pend = json_object_get(listing, "claims_pending");
    size_t i, k;
    json_t *nsv, *c;
    json_array_foreach(nss, i, nsv) {
        const char *ns = json_string_value(nsv);
        nsjob *j = job_for(r, ns);
        long long nvol = 0, nfail = 0;
        char why[1200] = "";
        j->bound = json_array();
        json_array_foreach(claims, k, c) {
            if (strcmp(jx_str_or(c, "metadata.namespace", ""), ns) != 0)
                continue;
            const char *pv = jx_str(c, "spec.volumeName");
            json_t *inf = pv ? json_object_get(r->info, pv) : NULL;
            json_array_append_new(j->bound, json_pack("{s:s, s:s?, s:s?}", "claim",
                                  jx_str_or(c, "metadata.name", ""), "pv", pv,
                                  "pv_uid", jx_str(inf, "uid")));
            nvol++;
            /* its volume must have synced in this run */
            vol *v = NULL;
            for (size_t x = 0; pv && x < r->nvols; x++)
                if (r->vols[x].pv && strcmp(r->vols[x].pv, pv) == 0)
                    v = &r->vols[x];
            bool ok = v && v->use && v->s.ok;
            if (!ok) {
                nfail++;
                if (!why[0])
                    snprintf(why, sizeof why, "claim %s (PV %s): %s", jx_str_or(c, "metadata.name",
                             "?"), pv ? pv : "?", !sync ? "no sync result given"
                             : !v ? "not in the sync result" : v->reason ? v->reason
                             : v->note ? v->note : "not synced");
            }
        }
        char b2[1200];
        const char *f = dr_clean_failure(r, mod_param(&r->m, "applied"), ns, "apply", b2, sizeof b2);
        if (!f)
            f = dr_clean_failure(r, mod_param(&r->m, "pruned"), ns, "prune", b2, sizeof b2);
        if (f && !why[0])
            snprintf(why, sizeof why, "%s", f);
        j->has_full = true;
        j->full = (drr_full_sync){ .start = listed_at, .end = r->now, .ok = !why[0],
                                   .reason = NULL, .by = r->by, .volumes = nvol,
                                   .volumes_failed = nfail };
        j->has_claims = true;
        j->claims_at = listed_at;
        if (json_array_size(nss) == 1 && json_is_array(pend))
            j->cpending = json_incref(pend);
        else
            j->pending_unknown = true;        /* names only: namespace unknown */
        if (why[0])
            j->full.reason = xstrdup(why);    /* freed in cleanup() */
    }
}

/* ------------------------------------------------------------ record_backup */

static bool covers(const json_t *b, const char *ns)
{
    json_t *inc = jx_get((json_t *)b, "spec.includedNamespaces");
    json_t *exc = jx_get((json_t *)b, "spec.excludedNamespaces");
    size_t i;
    json_t *v;
    json_array_foreach(exc, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), ns) == 0)
            return false;
    if (json_array_size(inc) == 0)
        return true;
    json_array_foreach(inc, i, v)
        if (json_is_string(v) && (strcmp(json_string_value(v), "*") == 0
                                  || strcmp(json_string_value(v), ns) == 0))
            return true;
    return false;
}

static void plan_backup(run *r)
{
    json_t *bk = mod_param(&r->m, "backup");
    const json_t *nss = ns_list(r);
    size_t i;
    json_t *nsv;
    json_array_foreach(nss, i, nsv) {
        const char *ns = json_string_value(nsv);
        drr_backup b = { .seen_at = r->now };
        bool have = false;
        if (json_is_object(bk) && json_object_size(bk)) {
            const char *src = jx_str(bk, "source");
            b.name = jx_str(bk, "name");
            b.phase = jx_str(bk, "phase");
            b.source = src && strcmp(src, "dr-velero") == 0 ? "dr-velero" : "s3";
            if (!b.name || !opt_time(jx_str(bk, "started"), &b.started))
                mod_fail(&r->m, "backup: needs name and started (RFC 3339), as oadp_parse's "
                         "`backup` summary has them");
            if (!opt_time(jx_str(bk, "completed"), &b.completed))
                b.completed = 0;
            if (b.phase && strcmp(b.phase, "Completed") != 0)
                mod_fail(&r->m, "backup: %s is %s, not Completed: not recorded as this "
                         "namespace's backup", b.name, b.phase);
            have = true;
        } else {
            size_t k;
            json_t *o;
            json_array_foreach(r->snap.backups, k, o) {
                time_t st = 0;
                if (strcmp(jx_str_or(o, "status.phase", ""), "Completed") != 0 || !covers(o, ns)
                    || !opt_time(jx_str(o, "status.startTimestamp"), &st))
                    continue;
                if (!have || st > b.started) {
                    have = true;
                    b.name = jx_str(o, "metadata.name");
                    b.phase = "Completed";
                    b.source = "dr-velero";
                    b.started = st;
                    if (!opt_time(jx_str(o, "status.completionTimestamp"), &b.completed))
                        b.completed = 0;
                }
            }
        }
        nsjob *j = job_for(r, ns);
        if (have) {
            j->has_backup = true;
            j->backup = b;
        }
    }
}

/* ------------------------------------------------------------ status / guard */

static void status_mode(run *r)
{
    read_dr(r, true, true);
    json_t *nss = json_array_size(ns_list(r)) ? json_incref((json_t *)ns_list(r))
                                             : dsi_record_namespaces(&r->snap);
    json_t *inv = NULL;
    char *perr = NULL;
    json_t *primary = mod_param(&r->m, "primary");
    if (json_is_object(primary) && json_object_size(primary)) {
        if (!mod_dict_str(primary, "kubeconfig") && !mod_dict_str(primary, "host"))
            mod_fail(&r->m, "primary: give kubeconfig or host for the primary cluster");
        long tmo = mod_int(&r->m, "primary_timeout");
        r->primary = cluster_connect(r, primary, "primary", (tmo > 0 ? tmo : 5) * 1000, 1);
        k8s_error e = { 0 };
        if (dsi_read_primary(r->primary, nss, &inv, &e) != 0) {
            char eb[1400];
            perr = xstrdup(k8s_strerror(&e, eb, sizeof eb));
        }
    } else {
        perr = xstrdup("no primary connection given");
    }
    json_t *out = json_array(), *bad = json_array();
    size_t i;
    json_t *nsv;
    json_array_foreach(nss, i, nsv) {
        const char *ns = json_string_value(nsv);
        dst_result res;
        dsi_status(&r->snap, ns, inv ? json_object_get(inv, ns) : NULL, perr, targets_for(r, ns),
                   r->now, &res);
        json_array_append_new(out, dst_to_json(&res));
        if (res.state != DST_PROTECTED)
            json_array_append_new(bad, json_string(ns));
        dst_result_free(&res);
    }
    mod_set(&r->m, "namespaces", out);
    mod_set(&r->m, "not_protected", bad);
    mod_set(&r->m, "primary_checked", json_boolean(inv != NULL));
    mod_set(&r->m, "primary_error", perr && !inv ? json_string(perr) : json_null());
    mod_set(&r->m, "checked_at", jtime(r->now));
    if (r->snap.backups_error)
        mod_set(&r->m, "backups_error", json_string(r->snap.backups_error));
    free(perr);
    json_decref(inv);
    json_decref(nss);
    mod_changed(&r->m, false);
}

static void guard_mode(run *r)
{
    if (json_array_size(ns_list(r)) == 0)
        mod_fail(&r->m, "namespaces: required for mode guard (the namespaces about to be synced)");
    read_dr(r, false, false);
    json_t *refused = json_array();
    size_t i;
    json_t *nsv;
    char first[1200] = "";
    json_array_foreach(ns_list(r), i, nsv) {
        const char *ns = json_string_value(nsv);
        const json_t *cm = dsi_record(&r->snap, ns);
        drr_ns rec;
        drr_ns_parse(cm ? json_object_get(cm, "data") : NULL, &rec);
        bool fo = rec.action.kind == DRR_ACT_FAILOVER;
        bool fb_open = rec.action.kind == DRR_ACT_FAILBACK && rec.action.phase != DRR_PH_COMPLETED;
        /* an action marker that cannot be read is treated as a failover
         * (fail closed: it may say DR is live) */
        const char *bad = NULL;
        size_t ei;
        json_t *ev;
        json_array_foreach(rec.errors, ei, ev) {
            const char *t = json_string_value(ev);
            if (t && (strncmp(t, "action.kind", 11) == 0 || strncmp(t, "action.phase", 12) == 0
                      || strncmp(t, "action.started", 14) == 0 || strncmp(t, "action:", 7) == 0))
                bad = bad ? bad : t;
        }
        if (bad && !fo && !fb_open) {
            json_array_append_new(refused, json_pack("{s:s, s:s, s:s, s:s, s:s}", "namespace", ns,
                                  "action", "unreadable", "phase", "unknown", "by", "unknown job",
                                  "started", "unknown"));
            if (!first[0])
                snprintf(first, sizeof first, "namespace %s: its action record cannot be read "
                         "(%s): it may say DR holds the live data; fix or remove the action.* "
                         "keys of ConfigMap %s/ns-%s", ns, bad, r->state_ns, ns);
        }
        if (fo || fb_open) {
            char st[XTIME_RFC3339_LEN] = "unknown";
            if (rec.action.has_started)
                xtime_rfc3339(rec.action.started, st);
            const char *k = drr_action_kind_name(rec.action.kind);
            const char *ph = drr_action_phase_name(rec.action.phase);
            const char *by = rec.action.by && *rec.action.by ? rec.action.by : "unknown job";
            json_array_append_new(refused, json_pack("{s:s, s:s, s:s, s:s, s:s}", "namespace", ns,
                                  "action", k, "phase", ph[0] ? ph : "unknown", "by", by,
                                  "started", st));
            if (!first[0])
                snprintf(first, sizeof first, "namespace %s: a %s is recorded as %s (job %s, "
                         "started %s): DR may hold the live data, syncing the primary over it "
                         "would destroy it", ns, k, ph[0] ? ph : "unknown", by, st);
        }
        drr_ns_free(&rec);
    }
    bool allow = mod_bool(&r->m, "allow_after_failover");
    size_t n = json_array_size(refused);
    mod_set(&r->m, "guard", json_pack("{s:o, s:b, s:b}", "refused", refused, "ok", n == 0,
                                      "overridden", n > 0 && allow));
    mod_changed(&r->m, false);
    if (n && allow)
        mod_warn(&r->m, "allow_after_failover is set: syncing although %s. DR volumes may be "
                 "overwritten with the old primary's data", first);
    else if (n)
        mod_fail(&r->m, "guard: refusing to sync %zu namespace(s): %s. Fail back first (or, "
                 "knowing the DR data will be overwritten, set allow_after_failover: true)", n,
                 first);
}

/* ------------------------------------------------------------ main */

static void cleanup(run *r)
{
    for (size_t i = 0; i < r->nvols; i++) {
        free(r->vols[i].ns);
        free(r->vols[i].by);
        free(r->vols[i].reason);
        free(r->vols[i].note);
    }
    free(r->vols);
    for (size_t i = 0; i < r->njobs; i++) {
        free(r->jobs[i].pend_set);
        free(r->jobs[i].pend_rm);
        json_decref(r->jobs[i].bound);
        json_decref(r->jobs[i].cpending);
        if (r->jobs[i].has_full)
            free((char *)r->jobs[i].full.reason);
        dsi_update_clear(&r->jobs[i].u);
    }
    free(r->jobs);
    dsi_snapshot_free(&r->snap);
    json_decref(r->info);
    if (r->dr)
        k8s_client_free(r->dr);
    if (r->primary)
        k8s_client_free(r->primary);
    free(r->job);
    free(r->by);
}

static void finish(run *r)
{
    cleanup(r);
    if (r->nerrors && mod_bool(&r->m, "fail_on_error"))
        mod_fail(&r->m, "dr_state %s: %zu record(s) could not be written%s; first: %s", r->mode,
                 r->nerrors, r->check ? " (check mode)" : "", r->first_error);
    if (r->nerrors)
        mod_warn(&r->m, "dr_state %s: %zu record(s) could not be written; first: %s", r->mode,
                 r->nerrors, r->first_error);
    mod_exit(&r->m);
}

int main(int argc, char **argv)
{
    /* the primary connection never falls back to K8S_AUTH_* (the DR's) */
    k8s_conn_opts_compose(all_opts, own_opts, primary_opts, "primary");

    run r;
    memset(&r, 0, sizeof r);
    mod_init(&r.m, &spec, argc, argv);
    r.now = time(NULL);
    r.mode = mod_str(&r.m, "mode");
    r.state_ns = mod_str(&r.m, "state_namespace");
    r.oadp_ns = mod_str(&r.m, "oadp_namespace");
    r.source_cluster = mod_str(&r.m, "source_cluster");
    if (r.source_cluster && !*r.source_cluster)
        r.source_cluster = NULL;
    r.check = r.m.check_mode;
    r.delay_ms = mod_int(&r.m, "write_delay_ms");
    r.info = json_object();
    json_t *t = mod_param(&r.m, "targets");
    r.targets = (dst_targets){ .rpo_s = num_or(t, "rpo_s", 7200),
                               .rto_s = num_or(t, "rto_s", 3600),
                               .backup_max_age_s = num_or(t, "backup_max_age_s", 93600) };
    if (!(r.targets.rpo_s > 0) || !(r.targets.rto_s > 0) || !(r.targets.backup_max_age_s > 0))
        mod_fail(&r.m, "targets: rpo_s, rto_s and backup_max_age_s must be positive seconds");
    r.ns_targets = json_object_get(t, "namespaces");
    if (r.ns_targets && !json_is_object(r.ns_targets))
        mod_fail(&r.m, "targets.namespaces: must be a dict of namespace -> targets");
    check_ns_targets(&r.m, r.ns_targets);
    const char *job = mod_str(&r.m, "job");
    if (job && *job) {
        r.job = xstrdup(job);
    } else {
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        r.job = xfmt("cli-%ld@%s", (long)getpid(), host);
    }
    bool is_action = strcmp(r.mode, "record_action") == 0;
    r.by = xfmt("%s/%s", is_action ? jx_str_or(r.m.params, "action", "action")
                                    : mod_str(&r.m, "kind"), r.job);
    mod_set(&r.m, "mode", json_string(r.mode));
    mod_set(&r.m, "job", json_string(r.job));
    mod_set(&r.m, "state_namespace", json_string(r.state_ns));

    bool writes = strcmp(r.mode, "status") != 0 && strcmp(r.mode, "guard") != 0;
    if (writes && !r.source_cluster)
        mod_fail(&r.m, "source_cluster: required for mode %s (a record names the primary it "
                 "describes; a record of another source cluster is never overwritten)", r.mode);
    if (r.delay_ms < 0 || r.delay_ms > 60000)
        mod_fail(&r.m, "write_delay_ms: between 0 and 60000");
    {
        char nb[80];
        size_t i;
        json_t *v;
        json_array_foreach(ns_list(&r), i, v)
            if (!dsi_cm_name(json_string_value(v), nb, sizeof nb))
                mod_fail(&r.m, "namespaces[%zu]: \"%s\" is not a namespace name", i,
                         json_string_value(v));
    }
    r.dr = cluster_connect(&r, r.m.params, "DR", 30000, 5);

    if (strcmp(r.mode, "status") == 0) {
        status_mode(&r);
        finish(&r);
    }
    if (strcmp(r.mode, "guard") == 0) {
        guard_mode(&r);
        finish(&r);
    }

    json_t *listing = mod_param(&r.m, "listing");
    if (strcmp(r.mode, "record_sync") == 0) {
        if (!json_is_object(mod_param(&r.m, "sync")))
            mod_fail(&r.m, "sync: required for mode record_sync (the registered result of "
                     "nfs_rsync_sync)");
        read_dr(&r, true, false);
        learn_inputs(&r);
        plan_volumes(&r);
    } else if (strcmp(r.mode, "record_full_sync") == 0) {
        time_t listed_at;
        if (!json_is_object(listing) || !opt_time(jx_str(listing, "listed_at"), &listed_at))
            mod_fail(&r.m, "listing: required for mode record_full_sync: the registered result "
                     "of k8s_dr_clean mode=list (its listed_at is the run's start)");
        if (json_array_size(ns_list(&r)) == 0)
            mod_fail(&r.m, "namespaces: required for mode record_full_sync");
        read_dr(&r, true, false);
        learn_inputs(&r);
        if (json_is_object(mod_param(&r.m, "sync")))
            plan_volumes(&r);
        plan_full_sync(&r, listed_at);
    } else if (strcmp(r.mode, "record_backup") == 0) {
        if (json_array_size(ns_list(&r)) == 0)
            mod_fail(&r.m, "namespaces: required for mode record_backup");
        json_t *bk = mod_param(&r.m, "backup");
        read_dr(&r, false, !(json_is_object(bk) && json_object_size(bk)));
        plan_backup(&r);
    } else if (is_action) {
        const char *a = mod_str(&r.m, "action"), *ph = mod_str(&r.m, "phase");
        if (!a || !ph)
            mod_fail(&r.m, "action and phase: required for mode record_action");
        if (json_array_size(ns_list(&r)) == 0)
            mod_fail(&r.m, "namespaces: required for mode record_action");
        time_t started = r.now;
        bool given = false;
        const char *sa = mod_str(&r.m, "started_at");
        if (sa && *sa) {
            if (!xtime_parse(sa, &started))
                mod_fail(&r.m, "started_at: not an RFC 3339 time: '%.60s'", sa);
            given = true;
        }
        read_dr(&r, false, false);
        size_t i;
        json_t *v;
        json_array_foreach(ns_list(&r), i, v) {
            nsjob *j = job_for(&r, json_string_value(v));
            j->has_action = true;
            j->action_started_given = given;
            j->action = (drr_action){
                .kind = strcmp(a, "failover") == 0 ? DRR_ACT_FAILOVER : DRR_ACT_FAILBACK,
                .phase = strcmp(ph, "running") == 0 ? DRR_PH_RUNNING
                       : strcmp(ph, "completed") == 0 ? DRR_PH_COMPLETED : DRR_PH_FAILED,
                .started = started, .finished = r.now, .by = r.by,
                .backup = jx_str(mod_param(&r.m, "backup"), "name"),
                .reason = mod_str(&r.m, "reason") };
        }
    } else if (strcmp(r.mode, "note_event_read") == 0) {
        time_t at;
        if (!json_is_object(listing) || !opt_time(jx_str(listing, "listed_at"), &at))
            mod_fail(&r.m, "listing: required for mode note_event_read: the registered result "
                     "of k8s_dr_clean mode=list (its listed_at is recorded)");
        if (json_array_size(ns_list(&r)) == 0)
            mod_fail(&r.m, "namespaces: required for mode note_event_read");
        read_dr(&r, false, false);
        learn_inputs(&r);
        size_t i;
        json_t *v;
        json_array_foreach(ns_list(&r), i, v) {
            nsjob *j = job_for(&r, json_string_value(v));
            j->has_event = true;
            j->event_at = at;
        }
    }
    if (r.nvols)
        mod_set(&r.m, "volumes", write_pvs(&r));
    mod_set(&r.m, "records", write_namespaces(&r));
    mod_set(&r.m, "check_mode", json_boolean(r.check));
    finish(&r);
}
