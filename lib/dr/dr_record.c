/* dr_record.c - the DR state records: parse from a PV's annotations / a
 * ConfigMap's data, and the monotonic merge patches (see dr_record.h). */
#include "dr_record.h"
#include "jsonx.h"
#include "transform.h"
#include "xstr.h"
#include "xtime.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- field readers: value or an error naming the key --------------------- */

static void err_add(json_t *errors, const char *key, const char *what, const char *val)
{
    char shown[80];
    size_t n = strlen(val);
    if (n >= sizeof shown - 4) {                 /* never echo a huge value */
        size_t cut = sizeof shown - 4;
        while (cut > 0 && ((unsigned char)val[cut] & 0xC0) == 0x80)
            cut--;                                  /* on a UTF-8 boundary */
        memcpy(shown, val, cut);
        memcpy(shown + cut, "...", 4);
    } else {
        memcpy(shown, val, n + 1);
    }
    json_t *m = json_sprintf("%s: %s: '%s'", key, what, shown);
    json_array_append_new(errors, m ? m : json_sprintf("%s: %s (value not valid UTF-8)", key, what));
}

/* The string at key of obj; a non-string is an error (absent). */
static const char *str_field(const json_t *obj, const char *key, json_t *errors)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return NULL;
    if (!json_is_string(v)) {
        json_array_append_new(errors, json_sprintf("%s: not a string", key));
        return NULL;
    }
    return json_string_value(v);
}

static bool time_field(const json_t *obj, const char *key, json_t *errors, time_t *out)
{
    const char *s = str_field(obj, key, errors);
    if (!s)
        return false;
    if (xtime_parse_utc(s, out))
        return true;
    err_add(errors, key, "not an RFC3339 UTC time", s);
    return false;
}

/* A decimal integer >= 0 (no sign, no space, fits long long); -1 when absent. */
static long long int_field(const json_t *obj, const char *key, json_t *errors)
{
    const char *s = str_field(obj, key, errors);
    if (!s)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = (s[0] >= '0' && s[0] <= '9') ? strtoll(s, &end, 10) : -1;
    if (v < 0 || errno || !end || *end) {
        err_add(errors, key, "not a non-negative integer", s);
        return -1;
    }
    return v;
}

/* One of the NULL-terminated words; index, or -1 (absent or an error). */
static int enum_field(const json_t *obj, const char *key, const char *const *words,
                      const char *what, json_t *errors)
{
    const char *s = str_field(obj, key, errors);
    if (!s)
        return -1;
    for (int i = 0; words[i]; i++)
        if (strcmp(s, words[i]) == 0)
            return i;
    err_add(errors, key, what, s);
    return -1;
}

static const char *const RESULT_WORDS[] = { "ok", "failed", NULL };

/* ---- per volume ---------------------------------------------------------- */

void drr_vol_parse(const json_t *pv, drr_vol *out)
{
    memset(out, 0, sizeof *out);
    out->errors = json_array();
    out->sync_bytes = -1;
    out->attempt_reason = "";
    out->pv = jx_str((json_t *)pv, "metadata.name");
    json_t *ann = jx_get((json_t *)pv, "metadata.annotations");
    if (!json_is_object(ann))
        return;
    json_t *e = out->errors;
    json_t *u = json_object_get(ann, TF_ANN_SOURCE_UID);
    out->source_uid = json_is_string(u) ? json_string_value(u) : NULL;
    out->has_sync = time_field(ann, DRR_ANN_SYNC_START, e, &out->sync_start);
    if (!time_field(ann, DRR_ANN_SYNC_END, e, &out->sync_end))
        out->sync_end = 0;
    out->sync_bytes = int_field(ann, DRR_ANN_SYNC_BYTES, e);
    out->sync_source_uid = str_field(ann, DRR_ANN_SYNC_SOURCE_UID, e);
    static const char *const cons[] = { "live", "snapshot", NULL };
    int c = enum_field(ann, DRR_ANN_SYNC_CONSISTENCY, cons, "not live or snapshot", e);
    out->sync_consistency = c < 0 ? NULL : cons[c];
    out->sync_by = str_field(ann, DRR_ANN_SYNC_BY, e);
    time_t as = 0;
    bool has_as = time_field(ann, DRR_ANN_ATTEMPT_START, e, &as);
    int r = enum_field(ann, DRR_ANN_ATTEMPT_RESULT, RESULT_WORDS, "not ok or failed", e);
    if (has_as && r >= 0) {
        out->has_attempt = true;
        out->attempt_start = as;
        out->attempt_ok = r == 0;
    } else if (has_as != (json_object_get(ann, DRR_ANN_ATTEMPT_RESULT) != NULL)) {
        json_array_append_new(e, json_sprintf("%s and %s: only one of them is recorded",
                                              DRR_ANN_ATTEMPT_START, DRR_ANN_ATTEMPT_RESULT));
    }
    const char *reason = str_field(ann, DRR_ANN_ATTEMPT_REASON, e);
    if (reason)
        out->attempt_reason = reason;
}

void drr_vol_free(drr_vol *v)
{
    json_decref(v->errors);
    v->errors = NULL;
}

static void set_time(json_t *o, const char *key, time_t t)
{
    char b[XTIME_RFC3339_LEN];
    xtime_rfc3339(t, b);
    json_object_set_new(o, key, json_string(b));
}

/* s cut to DRR_REASON_MAX bytes on a UTF-8 boundary (new string value;
 * invalid UTF-8 is replaced by a note, jansson refuses it). */
static json_t *reason_value(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (n > DRR_REASON_MAX) {
        n = DRR_REASON_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    json_t *v = json_stringn(s, n);
    return v ? v : json_string("(reason was not valid UTF-8)");
}

static json_t *ann_patch(json_t *ann)
{
    if (json_object_size(ann) == 0) {
        json_decref(ann);
        return NULL;
    }
    return json_pack("{s{so}}", "metadata", "annotations", ann);
}

json_t *drr_vol_patch(const drr_vol *cur, const drr_sync *s)
{
    json_t *a = json_object();
    if (s->ok && (!cur->has_sync || s->data_as_of > cur->sync_start)) {
        set_time(a, DRR_ANN_SYNC_START, s->data_as_of);
        set_time(a, DRR_ANN_SYNC_END, s->end);
        if (s->bytes >= 0)
            json_object_set_new(a, DRR_ANN_SYNC_BYTES, json_sprintf("%lld", s->bytes));
        else
            json_object_set_new(a, DRR_ANN_SYNC_BYTES, json_null());
        json_object_set_new(a, DRR_ANN_SYNC_SOURCE_UID, s->source_uid ? json_string(s->source_uid)
                                                                      : json_null());
        if (s->consistency)
            json_object_set_new(a, DRR_ANN_SYNC_CONSISTENCY, json_string(s->consistency));
        if (s->by)
            json_object_set_new(a, DRR_ANN_SYNC_BY, json_string(s->by));
    }
    /* same second: only a failure replaces a recorded ok (never hide one) */
    if (!cur->has_attempt || s->attempt_start > cur->attempt_start
        || (s->attempt_start == cur->attempt_start && !s->ok && cur->attempt_ok)) {
        set_time(a, DRR_ANN_ATTEMPT_START, s->attempt_start);
        json_object_set_new(a, DRR_ANN_ATTEMPT_RESULT, json_string(s->ok ? "ok" : "failed"));
        json_object_set_new(a, DRR_ANN_ATTEMPT_REASON, reason_value(s->ok ? "" : s->reason));
    }
    return ann_patch(a);
}

/* ---- per namespace ------------------------------------------------------- */

/* A JSON document in a string value; NULL (+ error) when absent/invalid. */
static json_t *json_field(const json_t *data, const char *key, json_t *errors)
{
    const char *s = str_field(data, key, errors);
    if (!s)
        return NULL;
    json_t *v = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
    if (!v)
        err_add(errors, key, "not valid JSON", s);
    return v;
}

static double target_field(const json_t *data, const char *key, json_t *errors, bool *has)
{
    long long v = int_field(data, key, errors);
    *has = v > 0;
    if (v == 0)
        json_array_append_new(errors, json_sprintf("%s: must be > 0", key));
    return v > 0 ? (double)v : 0;
}

static void parse_claims(const json_t *d, drr_ns *r)
{
    json_t *e = r->errors;
    r->claims.has_checked_at = time_field(d, "claims.checked-at", e, &r->claims.checked_at);
    json_t *b = json_field(d, "claims.bound", e);
    if (b) {
        bool good = json_is_array(b);
        size_t i;
        json_t *c;
        json_array_foreach(b, i, c) {
            const char *pv = jx_str(c, "pv"), *cl = jx_str(c, "claim");
            if (!pv || !cl || !pv[0] || !cl[0]
                || (json_object_get(c, "pv_uid") && !json_is_string(json_object_get(c, "pv_uid"))))
                good = false;
        }
        if (good) {
            r->claims.bound = b;
        } else {
            json_array_append_new(e, json_string("claims.bound: not an array of "
                                                 "{\"claim\",\"pv\",\"pv_uid\"} strings"));
            json_decref(b);
        }
    }
    json_t *p = json_field(d, "claims.pending", e);
    if (p) {
        bool good = json_is_array(p);
        size_t i;
        json_t *c;
        json_array_foreach(p, i, c)
            good = good && json_is_string(c);
        if (good) {
            r->claims.pending = p;
        } else {
            json_array_append_new(e, json_string("claims.pending: not an array of claim names"));
            json_decref(p);
        }
    }
}

static void parse_pending(const json_t *d, drr_ns *r)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)d, key, v) {
        if (strncmp(key, "pending.", 8) != 0)
            continue;
        const char *pv = key + 8;
        json_t *o = json_field(d, key, r->errors);
        if (!o)
            continue;
        time_t at;
        const char *res = jx_str(o, "result"), *uid = jx_str(o, "source_uid");
        if (!pv[0] || !json_is_object(o) || !xtime_parse_utc(jx_str(o, "attempt_start"), &at) || !res
            || (strcmp(res, "ok") != 0 && strcmp(res, "failed") != 0)) {
            json_array_append_new(r->errors, json_sprintf(
                "%s: not {\"source_uid\",\"attempt_start\" (RFC3339 UTC),\"result\" (ok|failed),"
                "\"reason\"}", key));
        } else {
            json_object_set_new(r->pending, pv, json_pack("{s:s?,s:I,s:s,s:s}", "source_uid", uid,
                                                          "attempt_start", (json_int_t)at,
                                                          "result", res, "reason",
                                                          jx_str_or(o, "reason", "")));
        }
        json_decref(o);
    }
}

void drr_ns_parse(const json_t *d, drr_ns *r)
{
    memset(r, 0, sizeof *r);
    r->errors = json_array();
    r->pending = json_object();
    r->full_sync.volumes = r->full_sync.volumes_failed = -1;
    r->action.rto_s = -1;
    if (!d)
        return;
    json_t *e = r->errors;
    if (!json_is_object(d)) {
        json_array_append_new(e, json_string("data: not an object"));
        return;
    }
    r->present = true;

    r->full_sync.has_start = time_field(d, "full-sync.start", e, &r->full_sync.start);
    r->full_sync.has_end = time_field(d, "full-sync.end", e, &r->full_sync.end);
    int res = enum_field(d, "full-sync.result", RESULT_WORDS, "not ok or failed", e);
    r->full_sync.has_result = res >= 0;
    r->full_sync.ok = res == 0;
    r->full_sync.reason = str_field(d, "full-sync.reason", e);
    r->full_sync.by = str_field(d, "full-sync.by", e);
    r->full_sync.volumes = int_field(d, "full-sync.volumes", e);
    r->full_sync.volumes_failed = int_field(d, "full-sync.volumes-failed", e);
    r->full_sync.has_last_ok = time_field(d, "full-sync.last-ok-start", e,
                                          &r->full_sync.last_ok_start);

    parse_claims(d, r);
    parse_pending(d, r);

    r->backup.name = str_field(d, "backup.name", e);
    r->backup.phase = str_field(d, "backup.phase", e);
    r->backup.source = str_field(d, "backup.source", e);
    r->backup.has_started = time_field(d, "backup.started", e, &r->backup.started);
    r->backup.has_completed = time_field(d, "backup.completed", e, &r->backup.completed);
    r->backup.has_seen_at = time_field(d, "backup.seen-at", e, &r->backup.seen_at);

    static const char *const kinds[] = { "failover", "failback", NULL };
    static const char *const phases[] = { "running", "completed", "failed", NULL };
    int k = enum_field(d, "action.kind", kinds, "not failover or failback", e);
    int p = enum_field(d, "action.phase", phases, "not running, completed or failed", e);
    r->action.has_started = time_field(d, "action.started", e, &r->action.started);
    r->action.has_finished = time_field(d, "action.finished", e, &r->action.finished);
    if (k >= 0 && p >= 0 && r->action.has_started) {
        r->action.kind = (drr_action_kind)(k + 1);
        r->action.phase = (drr_action_phase)(p + 1);
    } else if (k >= 0 || p >= 0 || r->action.has_started) {
        json_array_append_new(e, json_string("action: kind, phase and started are not all "
                                             "recorded validly"));
    }
    r->action.by = str_field(d, "action.by", e);
    r->action.backup = str_field(d, "action.backup", e);
    r->action.reason = str_field(d, "action.reason", e);
    r->action.rto_s = int_field(d, "action.rto-s", e);

    r->has_event_read = time_field(d, "event.pv-pvc-read-at", e, &r->event_read_at);

    r->target.rpo_s = target_field(d, "target.rpo-s", e, &r->target.has_rpo);
    r->target.rto_s = target_field(d, "target.rto-s", e, &r->target.has_rto);
    r->target.backup_max_age_s = target_field(d, "target.backup-max-age-s", e,
                                              &r->target.has_backup_max_age);
}

void drr_ns_free(drr_ns *r)
{
    json_decref(r->claims.bound);
    json_decref(r->claims.pending);
    json_decref(r->pending);
    json_decref(r->errors);
    memset(r, 0, sizeof *r);
}

static json_t *data_patch(json_t *data)
{
    if (json_object_size(data) == 0) {
        json_decref(data);
        return NULL;
    }
    return json_pack("{so}", "data", data);
}

static json_t *opt_str(const char *s)
{
    return json_string(s ? s : "");
}

json_t *drr_ns_patch_full_sync(const drr_ns *cur, const drr_full_sync *f)
{
    json_t *d = json_object();
    if (!cur->full_sync.has_start || f->start > cur->full_sync.start) {
        set_time(d, "full-sync.start", f->start);
        set_time(d, "full-sync.end", f->end);
        json_object_set_new(d, "full-sync.result", json_string(f->ok ? "ok" : "failed"));
        json_object_set_new(d, "full-sync.reason", reason_value(f->ok ? "" : f->reason));
        json_object_set_new(d, "full-sync.by", opt_str(f->by));
        json_object_set_new(d, "full-sync.volumes", json_sprintf("%lld", f->volumes < 0 ? 0 : f->volumes));
        json_object_set_new(d, "full-sync.volumes-failed",
                            json_sprintf("%lld", f->volumes_failed < 0 ? 0 : f->volumes_failed));
        if (f->ok && (!cur->full_sync.has_last_ok || f->start > cur->full_sync.last_ok_start))
            set_time(d, "full-sync.last-ok-start", f->start);
    }
    return data_patch(d);
}

json_t *drr_ns_patch_claims(const drr_ns *cur, time_t checked_at, const json_t *bound,
                            const json_t *pending)
{
    json_t *d = json_object();
    if (!cur->claims.has_checked_at || checked_at >= cur->claims.checked_at) {
        set_time(d, "claims.checked-at", checked_at);
        char *b = bound ? json_dumps(bound, JSON_COMPACT) : NULL;
        char *p = pending ? json_dumps(pending, JSON_COMPACT) : NULL;
        json_object_set_new(d, "claims.bound", json_string(b ? b : "[]"));
        json_object_set_new(d, "claims.pending", json_string(p ? p : "[]"));
        free(b);
        free(p);
    }
    return data_patch(d);
}

json_t *drr_ns_patch_pending(const drr_ns *cur, const char *pv, const drr_sync *s)
{
    json_t *d = json_object();
    char *key = xfmt("pending.%s", pv);
    json_t *old = json_object_get(cur->pending, pv);
    if (!s) {
        if (old)
            json_object_set_new(d, key, json_null());
    } else if (!old || (time_t)json_integer_value(json_object_get(old, "attempt_start"))
                           <= s->attempt_start) {
        char b[XTIME_RFC3339_LEN];
        xtime_rfc3339(s->attempt_start, b);
        json_t *o = json_pack("{s:s?,s:s,s:s,s:o}", "source_uid", s->source_uid, "attempt_start", b,
                              "result", s->ok ? "ok" : "failed", "reason",
                              reason_value(s->ok ? "" : s->reason));
        char *txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_object_set_new(d, key, json_string(txt));
        free(txt);
        json_decref(o);
    }
    free(key);
    return data_patch(d);
}

json_t *drr_ns_patch_backup(const drr_ns *cur, const drr_backup *b)
{
    json_t *d = json_object();
    bool same = cur->backup.has_started && b->started == cur->backup.started && cur->backup.name
                && b->name && strcmp(cur->backup.name, b->name) == 0;
    if (!cur->backup.has_started || b->started > cur->backup.started) {
        json_object_set_new(d, "backup.name", opt_str(b->name));
        json_object_set_new(d, "backup.phase", opt_str(b->phase));
        json_object_set_new(d, "backup.source", opt_str(b->source));
        set_time(d, "backup.started", b->started);
        if (b->completed > 0)
            set_time(d, "backup.completed", b->completed);
        else
            json_object_set_new(d, "backup.completed", json_null());
        set_time(d, "backup.seen-at", b->seen_at);
    } else if (same && (!cur->backup.has_seen_at || b->seen_at > cur->backup.seen_at)) {
        set_time(d, "backup.seen-at", b->seen_at);
    }
    return data_patch(d);
}

const char *drr_action_kind_name(drr_action_kind k)
{
    return k == DRR_ACT_FAILOVER ? "failover" : k == DRR_ACT_FAILBACK ? "failback" : "";
}

const char *drr_action_phase_name(drr_action_phase p)
{
    return p == DRR_PH_RUNNING ? "running" : p == DRR_PH_COMPLETED ? "completed"
         : p == DRR_PH_FAILED ? "failed" : "";
}

json_t *drr_ns_patch_action(const drr_ns *cur, const drr_action *a)
{
    json_t *d = json_object();
    if (a->kind == DRR_ACT_NONE || a->phase == DRR_PH_NONE)
        return data_patch(d);
    bool none = cur->action.kind == DRR_ACT_NONE || !cur->action.has_started;
    bool newer = none || a->started > cur->action.started;
    bool same = !none && a->started == cur->action.started && a->kind == cur->action.kind;
    /* a late `running` of an action already closed is stale: it never reopens it */
    bool write = newer || (same && !(a->phase == DRR_PH_RUNNING
                                     && cur->action.phase != DRR_PH_RUNNING));
    if (write) {
        json_object_set_new(d, "action.kind", json_string(drr_action_kind_name(a->kind)));
        json_object_set_new(d, "action.phase", json_string(drr_action_phase_name(a->phase)));
        set_time(d, "action.started", a->started);
        json_object_set_new(d, "action.by", opt_str(a->by));
        json_object_set_new(d, "action.backup", opt_str(a->backup));
        json_object_set_new(d, "action.reason", reason_value(a->phase == DRR_PH_FAILED ? a->reason : ""));
        if (a->phase == DRR_PH_RUNNING) {
            json_object_set_new(d, "action.finished", json_null());
            json_object_set_new(d, "action.rto-s", json_null());
        } else {
            set_time(d, "action.finished", a->finished);
            if (a->phase == DRR_PH_COMPLETED && a->finished >= a->started)
                json_object_set_new(d, "action.rto-s",
                                    json_sprintf("%lld", (long long)(a->finished - a->started)));
            else
                json_object_set_new(d, "action.rto-s", json_null());
        }
    }
    return data_patch(d);
}

json_t *drr_ns_patch_event_read(const drr_ns *cur, time_t t)
{
    json_t *d = json_object();
    if (!cur->has_event_read || t > cur->event_read_at)
        set_time(d, "event.pv-pvc-read-at", t);
    return data_patch(d);
}

static void target_set(json_t *d, const char *key, bool has, double cur, double v)
{
    if (v > 0 && isfinite(v) && (!has || cur != (double)(long long)v))
        json_object_set_new(d, key, json_sprintf("%lld", (long long)v));
}

json_t *drr_ns_patch_targets(const drr_ns *cur, double rpo_s, double rto_s, double backup_max_age_s)
{
    json_t *d = json_object();
    target_set(d, "target.rpo-s", cur->target.has_rpo, cur->target.rpo_s, rpo_s);
    target_set(d, "target.rto-s", cur->target.has_rto, cur->target.rto_s, rto_s);
    target_set(d, "target.backup-max-age-s", cur->target.has_backup_max_age,
               cur->target.backup_max_age_s, backup_max_age_s);
    return data_patch(d);
}

static void merge_into(json_t *dst, json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v) {
        json_t *o = json_object_get(dst, k);
        if (json_is_object(o) && json_is_object(v))
            merge_into(o, v);
        else
            json_object_set(dst, k, v);
    }
}

json_t *drr_patch_merge(json_t **acc, json_t *patch)
{
    if (!*acc)
        *acc = json_object();
    if (json_is_object(patch))
        merge_into(*acc, patch);
    json_decref(patch);
    return *acc;
}
