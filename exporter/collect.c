/* collect.c - cache of raw DR records, status computed at every scrape
 * (collect.h). */
#include "collect.h"

#include "log.h"
#include "render.h"
#include "transform.h"
#include "xstr.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct exp_collector {
    const exp_config *cfg;
    exp_read_dr_fn read_dr;
    exp_read_primary_fn read_primary;
    void *ud;
    char *version;
    pthread_mutex_t mu;
    /* DR records */
    exp_dr_snapshot snap;
    bool have_snap;            /* a read has succeeded (snap is valid) */
    bool dr_up;
    bool dr_tried;
    double dr_attempt_mono;    /* when the last read (ok or not) started */
    time_t dr_read_at;         /* wall time the last good read started */
    unsigned long long dr_errors;
    char *dr_error;            /* last failure, for /readyz and the log */
    char *backups_error;       /* last logged backups error (log on change) */
    /* primary */
    json_t *inv;               /* namespace -> inventory of the last good read, or NULL */
    bool primary_up;
    bool primary_tried;
    double primary_attempt_mono;
    unsigned long long primary_errors;
    char *primary_error;
};

void exp_dr_snapshot_free(exp_dr_snapshot *s)
{
    json_decref(s->records);
    json_decref(s->pvs);
    json_decref(s->backups);
    free(s->backups_error);
    memset(s, 0, sizeof *s);
}

exp_collector *exp_collector_new(const exp_config *cfg, exp_read_dr_fn read_dr,
                                 exp_read_primary_fn read_primary, void *ud, const char *version)
{
    exp_collector *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = cfg;
    c->read_dr = read_dr;
    c->read_primary = read_primary;
    c->ud = ud;
    c->version = xstrdup(version ? version : "");
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void exp_collector_free(exp_collector *c)
{
    if (!c)
        return;
    exp_dr_snapshot_free(&c->snap);
    json_decref(c->inv);
    free(c->version);
    free(c->dr_error);
    free(c->backups_error);
    free(c->primary_error);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? xstrdup(s) : NULL;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The namespaces reported: PROTECTED_NAMESPACES, else every namespace with a
 * record or a managed DR PV (sorted; a JSON array of strings). */
static json_t *namespaces(const exp_collector *c)
{
    json_t *out = json_array();
    if (c->cfg->n_namespaces) {
        for (size_t i = 0; i < c->cfg->n_namespaces; i++)
            json_array_append_new(out, json_string(c->cfg->namespaces[i]));
        return out;
    }
    if (!c->have_snap)
        return out;
    json_t *seen = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(c->snap.records, k, v)
        json_object_set_new(seen, k, json_true());
    size_t i;
    json_array_foreach(c->snap.pvs, i, v) {
        const char *sn = tf_scope_namespace(v);
        if (tf_is_managed(v) && sn && *sn)
            json_object_set_new(seen, sn, json_true());
    }
    size_t n = json_object_size(seen), j = 0;
    const char **names = calloc(n + 1, sizeof *names);
    if (!names)
        abort();
    json_object_foreach(seen, k, v)
        names[j++] = k;
    qsort(names, n, sizeof *names, cmp_str);
    for (j = 0; j < n; j++)
        json_array_append_new(out, json_string(names[j]));
    free(names);
    json_decref(seen);
    return out;
}

static void refresh_dr(exp_collector *c, double mono)
{
    if (c->dr_tried && mono - c->dr_attempt_mono < (double)c->cfg->cache_s)
        return;
    c->dr_tried = true;
    c->dr_attempt_mono = mono;
    time_t started = time(NULL);
    exp_dr_snapshot s;
    memset(&s, 0, sizeof s);
    char err[1024] = "";
    if (c->read_dr(c->ud, &s, err, sizeof err) != 0) {
        c->dr_errors++;
        if (c->dr_up || !c->dr_error || strcmp(c->dr_error, err) != 0)
            LOGJ(LOGL_ERROR, c->have_snap ? "cannot read the DR records: serving the last ones read"
                                          : "cannot read the DR records",
                 "{s:s}", "error", err);
        c->dr_up = false;
        set_str(&c->dr_error, err);
        return;
    }
    if (!s.records)
        s.records = json_object();
    if (!s.pvs)
        s.pvs = json_array();
    if (!c->dr_up)   /* the first good read, or the first after failures */
        LOGJ(LOGL_INFO, "read the DR records", "{s:I,s:I,s:b}", "records",
             (json_int_t)json_object_size(s.records), "volumes", (json_int_t)json_array_size(s.pvs),
             "backups_read", s.backups != NULL);
    if (!same(s.backups_error, c->backups_error)) {
        if (s.backups_error)
            LOGJ(LOGL_WARN, "cannot read the Velero backups on DR: using the recorded ones",
                 "{s:s}", "error", s.backups_error);
        set_str(&c->backups_error, s.backups_error);
    }
    exp_dr_snapshot_free(&c->snap);
    c->snap = s;
    c->have_snap = true;
    c->dr_up = true;
    c->dr_read_at = started;
    set_str(&c->dr_error, NULL);
}

static void refresh_primary(exp_collector *c, double mono)
{
    if (!c->read_primary)
        return;
    if (c->primary_tried && mono - c->primary_attempt_mono < (double)c->cfg->primary_cache_s)
        return;
    json_t *ns = namespaces(c);
    if (json_array_size(ns) == 0 && !c->have_snap) {
        json_decref(ns);     /* nothing known to ask about yet */
        return;
    }
    c->primary_tried = true;
    c->primary_attempt_mono = mono;
    json_t *inv = NULL;
    char err[1024] = "";
    int rc = c->read_primary(c->ud, ns, &inv, err, sizeof err);
    json_decref(ns);
    json_decref(c->inv);
    c->inv = NULL;
    if (rc != 0) {
        json_decref(inv);
        c->primary_errors++;
        if (c->primary_up || !c->primary_error || strcmp(c->primary_error, err) != 0)
            LOGJ(LOGL_WARN, "cannot read the primary's claims: using the claims recorded on DR",
                 "{s:s}", "error", err);
        c->primary_up = false;
        set_str(&c->primary_error, err);
        return;
    }
    if (!c->primary_up)
        LOG0(LOGL_INFO, "read the primary's claims");
    c->inv = inv ? inv : json_object();
    c->primary_up = true;
    set_str(&c->primary_error, NULL);
}

int exp_collector_prime(exp_collector *c, double mono)
{
    pthread_mutex_lock(&c->mu);
    refresh_dr(c, mono);
    refresh_primary(c, mono);
    int ok = c->have_snap && c->dr_up;
    pthread_mutex_unlock(&c->mu);
    return ok ? 0 : -1;
}

char *exp_collector_scrape(exp_collector *c, time_t now, double mono, size_t *len)
{
    pthread_mutex_lock(&c->mu);
    refresh_dr(c, mono);
    refresh_primary(c, mono);
    json_t *ns = c->have_snap ? namespaces(c) : json_array();
    size_t n = json_array_size(ns);
    dst_result *res = calloc(n + 1, sizeof *res);
    exp_ns *views = calloc(n + 1, sizeof *views);
    if (!res || !views)
        abort();
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(ns, i));
        json_t *rec = json_object_get(c->snap.records, name);
        const json_t *data = json_object_get(rec, "data");
        char *perr = NULL;
        const json_t *prim = NULL;
        if (!c->read_primary)
            perr = xstrdup("PRIMARY_KUBECONFIG is not set");
        else if (!c->primary_up)
            perr = xstrdup(c->primary_error ? c->primary_error : "not read yet");
        else if (!(prim = json_object_get(c->inv, name)))
            perr = xfmt("namespace %s was not read from the primary", name);
        dst_input in = {
            .ns = name, .record = json_is_object(data) ? data : NULL, .dr_pvs = c->snap.pvs,
            .primary = prim, .primary_error = perr, .backups = c->snap.backups,
            .defaults = c->cfg->defaults, .now = now,
        };
        dst_compute(&in, &res[i]);
        free(perr);
        const char *sc = json_string_value(json_object_get(rec, "source_cluster"));
        views[i] = (exp_ns){ &res[i], sc && *sc ? sc : c->cfg->source_cluster };
    }
    exp_view v = {
        .ns = views, .n = n,
        .primary_configured = c->read_primary != NULL, .primary_up = c->primary_up,
        .primary_cluster = c->cfg->source_cluster,
        .dr_up = c->dr_up, .has_dr_read = c->have_snap, .last_dr_read = c->dr_read_at,
        .dr_read_errors = c->dr_errors, .primary_read_errors = c->primary_errors,
        .version = c->version,
    };
    char *body = exp_render(&v, len);
    for (size_t i = 0; i < n; i++)
        dst_result_free(&res[i]);
    free(res);
    free(views);
    json_decref(ns);
    pthread_mutex_unlock(&c->mu);
    return body;
}

int exp_collector_ready(exp_collector *c, char *why, size_t len)
{
    pthread_mutex_lock(&c->mu);
    int ok = c->have_snap;
    if (!ok)
        snprintf(why, len, "the DR records have not been read yet%s%s",
                 c->dr_error ? ": " : "", c->dr_error ? c->dr_error : "");
    pthread_mutex_unlock(&c->mu);
    return ok;
}
