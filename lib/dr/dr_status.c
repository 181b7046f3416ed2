/* dr_status.c - one namespace's protection state from records + now (see
 * dr_status.h; rules in docs/status.md, "State rules").  Order of the rules
 * (first match wins): an action (failover/failback) decides; else any
 * Unprotected reason; else any Degraded reason; else Protected.  Every
 * reason found is reported, whatever rule decided. */
#include "dr_status.h"
#include "jsonx.h"
#include "transform.h"
#include "xstr.h"
#include "xtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const dst_states[DST_N_STATES] = {
    "Protected", "Degraded", "Unprotected", "FailingOver", "FailedOver", "FailingBack"
};

const char *const dst_reason_codes[DST_N_REASONS] = {
    "failover_in_progress", "failover_failed", "failed_over", "failback_in_progress",
    "failback_failed", "awaiting_first_sync_after_failback", "never_synced",
    "claim_without_dr_copy", "no_full_sync", "no_backup", "volume_sync_failed",
    "volume_sync_unrecorded", "full_sync_failed", "rpo_above_target", "backup_too_old",
    "clock_skew", "record_malformed", "primary_not_checked", "backup_not_checked"
};

const char *const dst_vol_classes[DST_N_VOL_CLASSES] = {
    "ok", "failing", "missing", "stale_source", "unrecorded"
};

/* Reasons are gathered as items per code, then joined into one message. */
typedef struct gather {
    json_t *items[DST_N_REASONS];   /* array of strings, or NULL */
    char *text[DST_N_REASONS];      /* fixed message when no items */
} gather;

static void add(gather *g, dst_reason_code c, char *text)
{
    if (!g->text[c])
        g->text[c] = text;
    else
        free(text);
}

static void add_item(gather *g, dst_reason_code c, const char *lead, char *item)
{
    if (!g->items[c])
        g->items[c] = json_array();
    json_array_append_new(g->items[c], json_string(item));
    free(item);
    if (!g->text[c])
        g->text[c] = xstrdup(lead);
}

static void stamp(time_t t, char b[XTIME_RFC3339_LEN])
{
    xtime_rfc3339(t, b);
}

static double age(time_t now, time_t t)
{
    return t >= now ? 0.0 : (double)(now - t);
}

/* ---- scope: which volumes must be protected ------------------------------ */

typedef struct want { const char *pv, *claim, *uid; } want;

static want *scope_volumes(const dst_input *in, const drr_ns *rec, const json_t *dr_mine,
                           size_t *n)
{
    size_t i, cap = 0;
    json_t *o;
    want *w = NULL;
    *n = 0;
    if (in->primary) {
        json_t *claims = json_object_get(in->primary, "claims");
        json_t *vols = json_object_get(in->primary, "volumes");
        cap = json_array_size(claims);
        w = calloc(cap + 1, sizeof *w);
        json_t *idx = json_object();             /* primary PV name -> index in vols */
        json_array_foreach(vols, i, o)
            if (jx_str(o, "metadata.name"))
                json_object_set_new(idx, jx_str(o, "metadata.name"), json_integer((json_int_t)i));
        json_array_foreach(claims, i, o) {
            const char *pv = jx_str(o, "spec.volumeName");
            if (!pv || !w)
                continue;
            json_t *at = json_object_get(idx, pv);
            const char *uid = at ? jx_str(json_array_get(vols, (size_t)json_integer_value(at)),
                                          "metadata.uid") : NULL;
            w[(*n)++] = (want){ pv, jx_str(o, "metadata.name"), uid };
        }
        json_decref(idx);
    } else if (rec->claims.bound) {
        cap = json_array_size(rec->claims.bound);
        w = calloc(cap + 1, sizeof *w);
        json_array_foreach(rec->claims.bound, i, o)
            w[(*n)++] = (want){ jx_str(o, "pv"), jx_str(o, "claim"), jx_str(o, "pv_uid") };
    } else {
        cap = json_array_size(dr_mine);
        w = calloc(cap + 1, sizeof *w);
        json_array_foreach(dr_mine, i, o)
            w[(*n)++] = (want){ jx_str(o, "metadata.name"), jx_str(o, "spec.claimRef.name"), NULL };
    }
    if (!w)
        abort();
    return w;
}

/* DR PV by name: dr_index maps name -> index in dr_mine. */
static const json_t *find_pv(const json_t *dr_mine, const json_t *dr_index, const char *name)
{
    json_t *at = name ? json_object_get(dr_index, name) : NULL;
    return at ? json_array_get(dr_mine, (size_t)json_integer_value(at)) : NULL;
}

static const char *claim_label(const dst_volume *v)
{
    return v->claim ? v->claim : v->pv;
}

static void classify(const dst_input *in, const drr_ns *rec, const want *w, const json_t *dr_mine,
                     const json_t *dr_index, dst_volume *v, gather *g, bool *skew)
{
    memset(v, 0, sizeof *v);
    v->pv = xstrdup(w->pv);
    v->claim = xstrdup(w->claim);
    v->bytes = -1;
    v->age_s = INFINITY;
    v->attempt_reason = xstrdup("");
    const json_t *pv = find_pv(dr_mine, dr_index, w->pv);
    if (!pv) {
        json_t *p = json_object_get(rec->pending, w->pv);
        const char *puid = jx_str(p, "source_uid");
        if (p && strcmp(jx_str_or(p, "result", ""), "ok") == 0 && (!w->uid || !puid
                                                                  || strcmp(puid, w->uid) == 0)) {
            v->cls = DST_VOL_FAILING;            /* data copied, DR PV not applied */
            v->has_start = true;
            v->last_sync_start = (time_t)json_integer_value(json_object_get(p, "attempt_start"));
            v->has_attempt = true;
            v->attempt_start = v->last_sync_start;
            v->attempt_ok = true;
            add_item(g, DST_R_VOLUME_SYNC_FAILED, "volumes whose last sync failed",
                     xfmt("%s (%s: data copied, DR PV not applied)", claim_label(v), v->pv));
        } else {
            v->cls = DST_VOL_MISSING;
            if (p) {
                free(v->attempt_reason);
                v->attempt_reason = xstrdup(jx_str_or(p, "reason", ""));
                v->has_attempt = true;
                v->attempt_start = (time_t)json_integer_value(json_object_get(p, "attempt_start"));
            }
            add_item(g, DST_R_CLAIM_WITHOUT_DR_COPY, "claims without a DR copy",
                     xfmt("%s (%s: %s)", claim_label(v), v->pv,
                          p ? "first sync failed or skipped" : "no DR PV"));
        }
        if (v->has_start)
            v->age_s = age(in->now, v->last_sync_start);
        return;
    }
    drr_vol r;
    drr_vol_parse(pv, &r);
    size_t i;
    json_t *e;
    json_array_foreach(r.errors, i, e)
        add_item(g, DST_R_RECORD_MALFORMED, "malformed records (treated as absent)",
                 xfmt("PV %s: %s", v->pv, json_string_value(e)));
    v->bytes = r.sync_bytes;
    v->has_attempt = r.has_attempt;
    v->attempt_start = r.attempt_start;
    v->attempt_ok = r.attempt_ok;
    free(v->attempt_reason);
    v->attempt_reason = xstrdup(r.attempt_reason);
    if (r.has_sync) {
        v->has_start = true;
        v->last_sync_start = r.sync_start;
        v->age_s = age(in->now, r.sync_start);
        if (r.sync_start > in->now + DST_CLOCK_SKEW_S)
            *skew = true;
    }
    if (r.has_attempt && r.attempt_start > in->now + DST_CLOCK_SKEW_S)
        *skew = true;
    bool other = w->uid && ((r.sync_source_uid && strcmp(r.sync_source_uid, w->uid) != 0)
                            || (r.source_uid && strcmp(r.source_uid, w->uid) != 0));
    if (other) {
        v->cls = DST_VOL_STALE_SOURCE;
        v->has_start = false;                    /* a copy of another volume is no copy */
        v->age_s = INFINITY;
        add_item(g, DST_R_CLAIM_WITHOUT_DR_COPY, "claims without a DR copy",
                 xfmt("%s (%s: DR PV copied from another primary PV, uid %s)", claim_label(v),
                      v->pv, r.sync_source_uid ? r.sync_source_uid : r.source_uid));
    } else if (!r.has_sync) {
        v->cls = DST_VOL_UNRECORDED;
        add_item(g, DST_R_VOLUME_SYNC_UNRECORDED, "volumes with no recorded successful sync",
                 xfmt("%s (%s)", claim_label(v), v->pv));
    } else if (r.has_attempt && !r.attempt_ok && r.attempt_start >= r.sync_start) {
        v->cls = DST_VOL_FAILING;
        char b[XTIME_RFC3339_LEN];
        stamp(r.attempt_start, b);
        add_item(g, DST_R_VOLUME_SYNC_FAILED, "volumes whose last sync failed",
                 xfmt("%s (%s: attempt at %s failed: %s)", claim_label(v), v->pv, b,
                      r.attempt_reason[0] ? r.attempt_reason : "no reason recorded"));
    } else {
        v->cls = DST_VOL_OK;
    }
    drr_vol_free(&r);
}

/* ---- backups ------------------------------------------------------------- */

static bool str_in(const json_t *arr, const char *s)
{
    size_t i;
    json_t *o;
    json_array_foreach((json_t *)arr, i, o)
        if (json_is_string(o) && strcmp(json_string_value(o), s) == 0)
            return true;
    return false;
}

static bool covers(json_t *b, const char *ns)
{
    json_t *inc = jx_get(b, "spec.includedNamespaces");
    json_t *exc = jx_get(b, "spec.excludedNamespaces");
    if (str_in(exc, ns) || str_in(exc, "*"))
        return false;
    return json_array_size(inc) == 0 || str_in(inc, "*") || str_in(inc, ns);
}

static void pick_backup(const dst_input *in, dst_result *out, gather *g)
{
    if (!in->backups) {
        add(g, DST_R_BACKUP_NOT_CHECKED,
            xstrdup("DR backups were not read; using the recorded newest backup"));
        const drr_ns *r = &out->rec;
        if (r->backup.has_started && (!r->backup.phase || strcmp(r->backup.phase, "Completed") == 0)) {
            out->has_backup = true;
            out->backup_name = xstrdup(r->backup.name);
            out->backup_source = xstrdup(r->backup.source ? r->backup.source : "record");
            out->backup_started = r->backup.started;
            out->backup_completed = r->backup.has_completed ? r->backup.completed : 0;
        }
        return;
    }
    size_t i;
    json_t *b;
    json_array_foreach((json_t *)in->backups, i, b) {
        time_t st, co = 0;
        const char *phase = jx_str(b, "status.phase");
        if (!phase || strcmp(phase, "Completed") != 0 || !covers(b, in->ns)
            || !xtime_parse(jx_str(b, "status.startTimestamp"), &st))
            continue;
        if (out->has_backup && st <= out->backup_started)
            continue;
        if (!xtime_parse(jx_str(b, "status.completionTimestamp"), &co))
            co = 0;
        free(out->backup_name);
        free(out->backup_source);
        out->has_backup = true;
        out->backup_name = xstrdup(jx_str(b, "metadata.name"));
        out->backup_source = xstrdup("dr-velero");
        out->backup_started = st;
        out->backup_completed = co;
    }
}

/* ---- the rules ----------------------------------------------------------- */

static void finish_reasons(dst_result *out, gather *g)
{
    out->reasons = calloc(DST_N_REASONS, sizeof *out->reasons);
    if (!out->reasons)
        abort();
    for (int c = 0; c < DST_N_REASONS; c++) {
        if (!g->text[c])
            continue;
        char *msg;
        if (g->items[c]) {
            size_t len = strlen(g->text[c]) + 3, i;
            json_t *it;
            json_array_foreach(g->items[c], i, it)
                len += strlen(json_string_value(it)) + 2;
            msg = malloc(len);
            if (!msg)
                abort();
            strcpy(msg, g->text[c]);
            strcat(msg, ": ");
            json_array_foreach(g->items[c], i, it) {
                if (i)
                    strcat(msg, ", ");
                strcat(msg, json_string_value(it));
            }
            free(g->text[c]);
            json_decref(g->items[c]);
        } else {
            msg = g->text[c];
        }
        out->active[c] = true;
        out->reasons[out->n_reasons++] = (dst_reason){ (dst_reason_code)c, msg };
    }
}

void dst_compute(const dst_input *in, dst_result *out)
{
    memset(out, 0, sizeof *out);
    gather g;
    memset(&g, 0, sizeof g);
    out->ns = xstrdup(in->ns ? in->ns : "");
    drr_ns_parse(in->record, &out->rec);
    const drr_ns *rec = &out->rec;
    size_t i;
    json_t *e;
    json_array_foreach(rec->errors, i, e)
        add_item(&g, DST_R_RECORD_MALFORMED, "malformed records (treated as absent)",
                 xfmt("ConfigMap ns-%s: %s", out->ns, json_string_value(e)));

    /* targets */
    out->targets = in->defaults;
    out->rpo_target_source = out->rto_target_source = out->backup_max_age_source = "default";
    if (rec->target.has_rpo) {
        out->targets.rpo_s = rec->target.rpo_s;
        out->rpo_target_source = "record";
    }
    if (rec->target.has_rto) {
        out->targets.rto_s = rec->target.rto_s;
        out->rto_target_source = "record";
    }
    if (rec->target.has_backup_max_age) {
        out->targets.backup_max_age_s = rec->target.backup_max_age_s;
        out->backup_max_age_source = "record";
    }

    /* primary */
    out->primary_checked = in->primary != NULL;
    if (!in->primary) {
        out->primary_error = xstrdup(in->primary_error ? in->primary_error : "not requested");
        char b[XTIME_RFC3339_LEN];
        if (rec->claims.has_checked_at)
            stamp(rec->claims.checked_at, b);
        add(&g, DST_R_PRIMARY_NOT_CHECKED,
            rec->claims.has_checked_at
                ? xfmt("the primary could not be checked (%s); using the claims recorded at %s",
                       out->primary_error, b)
                : xfmt("the primary could not be checked (%s) and no claims are recorded; "
                       "using the DR PVs", out->primary_error));
    }

    /* DR PVs of this namespace, managed ones only */
    json_t *mine = json_array(), *mine_index = json_object();
    json_t *o;
    json_array_foreach((json_t *)in->dr_pvs, i, o) {
        const char *sn = tf_scope_namespace(o), *name = jx_str(o, "metadata.name");
        if (tf_is_managed(o) && sn && name && strcmp(sn, out->ns) == 0) {
            json_object_set_new(mine_index, name, json_integer((json_int_t)json_array_size(mine)));
            json_array_append(mine, o);
        }
    }

    /* volumes */
    bool skew = false;
    size_t n = 0;
    want *w = scope_volumes(in, rec, mine, &n);
    out->vols = calloc(n + 1, sizeof *out->vols);
    if (!out->vols)
        abort();
    bool inf = false, any = false;
    time_t oldest = 0;
    for (size_t k = 0; k < n; k++) {
        dst_volume *v = &out->vols[out->n_vols++];
        classify(in, rec, &w[k], mine, mine_index, v, &g, &skew);
        if (v->cls == DST_VOL_MISSING || v->cls == DST_VOL_STALE_SOURCE)
            out->claims_without_dr_copy++;
        if (!v->has_start)
            inf = true;
        else if (!any || v->last_sync_start < oldest) {
            oldest = v->last_sync_start;
            any = true;
        }
    }
    free(w);
    out->claims_bound = n;
    out->rpo_s = inf ? INFINITY : n == 0 ? 0.0 : age(in->now, oldest);
    out->rpo_met = out->rpo_s <= out->targets.rpo_s;

    /* backups */
    pick_backup(in, out, &g);
    out->backup_age_s = out->has_backup ? age(in->now, out->backup_started) : INFINITY;
    if (out->has_backup && out->backup_started > in->now + DST_CLOCK_SKEW_S)
        skew = true;
    if (rec->full_sync.has_start && rec->full_sync.start > in->now + DST_CLOCK_SKEW_S)
        skew = true;

    /* Unprotected reasons */
    if (!rec->present && json_array_size(mine) == 0)
        add(&g, DST_R_NEVER_SYNCED, xfmt("namespace %s has no DR record and no DR volume", out->ns));
    if (!rec->full_sync.has_last_ok)
        add(&g, DST_R_NO_FULL_SYNC, xstrdup("no successful full (mode two) sync is recorded"));
    if (!out->has_backup)
        add(&g, DST_R_NO_BACKUP, xfmt("no Completed backup covering namespace %s", out->ns));
    json_decref(mine);
    json_decref(mine_index);

    /* Degraded reasons */
    char b[XTIME_RFC3339_LEN];
    if (rec->full_sync.has_result && !rec->full_sync.ok) {
        stamp(rec->full_sync.start, b);
        add(&g, DST_R_FULL_SYNC_FAILED, xfmt("the last full sync (started %s) failed: %s", b,
                                             rec->full_sync.reason && rec->full_sync.reason[0]
                                                 ? rec->full_sync.reason : "no reason recorded"));
    }
    if (!out->rpo_met && n > 0) {
        if (isinf(out->rpo_s))
            add(&g, DST_R_RPO_ABOVE_TARGET,
                xfmt("RPO is unbounded (a volume has no valid DR copy), target %.0f s",
                     out->targets.rpo_s));
        else
            add(&g, DST_R_RPO_ABOVE_TARGET, xfmt("RPO %.0f s is above the target %.0f s",
                                                 out->rpo_s, out->targets.rpo_s));
    }
    if (out->has_backup && out->backup_age_s > out->targets.backup_max_age_s)
        add(&g, DST_R_BACKUP_TOO_OLD, xfmt("newest backup %s is %.0f s old, limit %.0f s",
                                           out->backup_name ? out->backup_name : "?",
                                           out->backup_age_s, out->targets.backup_max_age_s));
    if (skew)
        add(&g, DST_R_CLOCK_SKEW, xfmt("a recorded time is more than %d s in the future of this "
                                       "clock (NTP?); its age is taken as 0", DST_CLOCK_SKEW_S));

    /* action */
    const char *by = rec->action.by && rec->action.by[0] ? rec->action.by : "unknown job";
    if (rec->action.kind != DRR_ACT_NONE) {
        stamp(rec->action.started, b);
        bool fo = rec->action.kind == DRR_ACT_FAILOVER;
        if (rec->action.phase == DRR_PH_RUNNING)
            add(&g, fo ? DST_R_FAILOVER_IN_PROGRESS : DST_R_FAILBACK_IN_PROGRESS,
                xfmt("%s started %s by %s, running for %.0f s", fo ? "failover" : "failback", b,
                     by, age(in->now, rec->action.started)));
        else if (rec->action.phase == DRR_PH_FAILED)
            add(&g, fo ? DST_R_FAILOVER_FAILED : DST_R_FAILBACK_FAILED,
                xfmt("%s started %s by %s failed: %s", fo ? "failover" : "failback", b, by,
                     rec->action.reason && rec->action.reason[0] ? rec->action.reason
                                                                 : "no reason recorded"));
        else if (fo)
            add(&g, DST_R_FAILED_OVER, xfmt("failed over (started %s by %s): nothing replicates "
                                            "this namespace until protection is re-established",
                                            b, by));
        else {
            time_t fin = rec->action.has_finished ? rec->action.finished : rec->action.started;
            if (!(rec->full_sync.has_last_ok && rec->full_sync.last_ok_start > fin)) {
                stamp(fin, b);
                add(&g, DST_R_AWAITING_FIRST_SYNC_AFTER_FAILBACK,
                    xfmt("failback finished %s; no successful full sync started after it", b));
            }
        }
    }

    /* the state: first match wins */
    const bool *a;
    finish_reasons(out, &g);
    a = out->active;
    if (a[DST_R_FAILOVER_IN_PROGRESS] || a[DST_R_FAILOVER_FAILED])
        out->state = DST_FAILING_OVER;
    else if (a[DST_R_FAILED_OVER])
        out->state = DST_FAILED_OVER;
    else if (a[DST_R_FAILBACK_IN_PROGRESS] || a[DST_R_FAILBACK_FAILED]
             || a[DST_R_AWAITING_FIRST_SYNC_AFTER_FAILBACK])
        out->state = DST_FAILING_BACK;
    else if (a[DST_R_NEVER_SYNCED] || a[DST_R_CLAIM_WITHOUT_DR_COPY] || a[DST_R_NO_FULL_SYNC]
             || a[DST_R_NO_BACKUP])
        out->state = DST_UNPROTECTED;
    else if (a[DST_R_VOLUME_SYNC_FAILED] || a[DST_R_VOLUME_SYNC_UNRECORDED]
             || a[DST_R_FULL_SYNC_FAILED] || a[DST_R_RPO_ABOVE_TARGET] || a[DST_R_BACKUP_TOO_OLD]
             || a[DST_R_CLOCK_SKEW] || a[DST_R_RECORD_MALFORMED])
        out->state = DST_DEGRADED;
    else
        out->state = DST_PROTECTED;
}

void dst_result_free(dst_result *r)
{
    for (size_t i = 0; i < r->n_reasons; i++)
        free(r->reasons[i].message);
    free(r->reasons);
    for (size_t i = 0; i < r->n_vols; i++) {
        free(r->vols[i].pv);
        free(r->vols[i].claim);
        free(r->vols[i].attempt_reason);
    }
    free(r->vols);
    free(r->ns);
    free(r->primary_error);
    free(r->backup_name);
    free(r->backup_source);
    drr_ns_free(&r->rec);
    memset(r, 0, sizeof *r);
}

/* ---- JSON ---------------------------------------------------------------- */

static json_t *jtime(bool has, time_t t)
{
    if (!has)
        return json_null();
    char b[XTIME_RFC3339_LEN];
    xtime_rfc3339(t, b);
    return json_string(b);
}

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jstr(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *dst_to_json(const dst_result *r)
{
    json_t *reasons = json_array();
    for (size_t i = 0; i < r->n_reasons; i++)
        json_array_append_new(reasons, json_pack("{s:s,s:s}", "code",
                                                 dst_reason_codes[r->reasons[i].code], "message",
                                                 r->reasons[i].message));
    json_t *vols = json_array(), *without = json_array();
    for (size_t i = 0; i < r->n_vols; i++) {
        const dst_volume *v = &r->vols[i];
        if (v->cls == DST_VOL_MISSING || v->cls == DST_VOL_STALE_SOURCE)
            json_array_append_new(without, json_string(v->claim ? v->claim : v->pv));
        json_array_append_new(vols, json_pack(
            "{s:s,s:o,s:s,s:o,s:o,s:o,s:o}", "pv", v->pv, "claim", jstr(v->claim), "class",
            dst_vol_classes[v->cls], "last_sync_start", jtime(v->has_start, v->last_sync_start),
            "age_s", jnum(v->age_s), "bytes", v->bytes >= 0 ? json_integer(v->bytes) : json_null(),
            "last_attempt", v->has_attempt
                ? json_pack("{s:o,s:s,s:s}", "start", jtime(true, v->attempt_start), "result",
                            v->attempt_ok ? "ok" : "failed", "reason", v->attempt_reason)
                : json_null()));
    }
    const drr_ns *rec = &r->rec;
    json_t *backup = r->has_backup
        ? json_pack("{s:o,s:o,s:o,s:o,s:f,s:o}", "name", jstr(r->backup_name), "started",
                    jtime(true, r->backup_started), "completed",
                    jtime(r->backup_completed > 0, r->backup_completed), "age_s",
                    jnum(r->backup_age_s), "max_age_s", r->targets.backup_max_age_s, "source",
                    jstr(r->backup_source))
        : json_null();
    json_t *full = rec->full_sync.has_start || rec->full_sync.has_last_ok
        ? json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "start", jtime(rec->full_sync.has_start,
                                                                 rec->full_sync.start),
                    "end", jtime(rec->full_sync.has_end, rec->full_sync.end), "result",
                    rec->full_sync.has_result ? json_string(rec->full_sync.ok ? "ok" : "failed")
                                              : json_null(),
                    "reason", jstr(rec->full_sync.reason), "by", jstr(rec->full_sync.by),
                    "last_ok_start", jtime(rec->full_sync.has_last_ok, rec->full_sync.last_ok_start))
        : json_null();
    json_t *action = rec->action.kind != DRR_ACT_NONE
        ? json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "kind", drr_action_kind_name(rec->action.kind),
                    "phase", drr_action_phase_name(rec->action.phase), "started",
                    jtime(true, rec->action.started), "finished",
                    jtime(rec->action.has_finished, rec->action.finished), "by", jstr(rec->action.by),
                    "reason", jstr(rec->action.reason), "rto_s",
                    rec->action.rto_s >= 0 ? json_integer(rec->action.rto_s) : json_null())
        : json_null();
    bool has_rto = rec->action.rto_s >= 0;
    json_t *out = json_pack(
        "{s:s,s:s,s:o,s:o,s:f,s:s,s:b,s:f,s:s,s:o,s:o,s:f,s:s,s:o,s:o,s:o,s:b,s:o,"
        "s:{s:I,s:o},s:o,s:O}",
        "namespace", r->ns, "state", dst_states[r->state], "reasons", reasons,
        "rpo_s", jnum(r->rpo_s), "rpo_target_s", r->targets.rpo_s,
        "rpo_target_source", r->rpo_target_source, "rpo_met", r->rpo_met,
        "rto_target_s", r->targets.rto_s, "rto_target_source", r->rto_target_source,
        "last_rto_s", has_rto ? json_integer(rec->action.rto_s) : json_null(),
        "rto_met", has_rto ? json_boolean((double)rec->action.rto_s <= r->targets.rto_s) : json_null(),
        "backup_max_age_s", r->targets.backup_max_age_s,
        "backup_max_age_source", r->backup_max_age_source,
        "backup", backup, "full_sync", full, "action", action,
        "primary_checked", r->primary_checked, "primary_error", jstr(r->primary_error),
        "claims", "bound", (json_int_t)r->claims_bound, "without_dr_copy", without,
        "volumes", vols, "record_errors", rec->errors);
    return out ? out : json_pack("{s:s,s:s}", "namespace", r->ns, "state", dst_states[r->state]);
}
