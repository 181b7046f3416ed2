/* test_exporter.c - unit tests for exporter/ (ocpv-dr-status-exporter):
 * the Prometheus text it renders (HELP and TYPE once per family, in order,
 * samples contiguous; names ^ocpv_dr_[a-z_]+$; every state and reason code
 * always present as 0/1; +Inf RPO; label value escaping), the values of a
 * fixture snapshot (tests/unit/data/exporter_snapshot.json) next to what
 * dst_to_json (the dr_state module's status) says of the same input, the
 * cache rules (RPO grows between scrapes with no re-read; a failed read keeps
 * the last records and turns ocpv_dr_status_dr_up to 0; a namespace's series
 * go when its records go; the primary unreachable), the configuration
 * errors, and that every ocpv_dr_* metric the alert rules and the dashboard
 * (monitoring/) use is one the exporter renders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect.h"
#include "config.h"
#include "dr_status.h"
#include "render.h"

#define NOW 1796302807   /* 2026-12-03T13:00:07Z, the fixture's "now" */

/* ---- helpers ------------------------------------------------------------- */

/* The scripted DR reader: serves a copy of `snap` (or fails), counts calls. */
typedef struct script {
    json_t *snap;            /* {records, pvs, backups} */
    int fail;                /* next reads fail */
    int reads;
    int primary_fail;
    json_t *primary;         /* namespace -> inventory */
    int primary_reads;
} script;

static int read_dr(void *ud, exp_dr_snapshot *out, char *err, size_t len)
{
    script *s = ud;
    s->reads++;
    if (s->fail) {
        snprintf(err, len, "DR cluster: list configmaps: connection refused");
        return -1;
    }
    json_t *c = json_deep_copy(s->snap);
    out->records = json_incref(json_object_get(c, "records"));
    out->pvs = json_incref(json_object_get(c, "pvs"));
    out->backups = json_incref(json_object_get(c, "backups"));
    out->backups_error = NULL;
    json_decref(c);
    return 0;
}

static int read_primary(void *ud, const json_t *namespaces, json_t **inv, char *err, size_t len)
{
    script *s = ud;
    (void)namespaces;
    s->primary_reads++;
    if (s->primary_fail) {
        snprintf(err, len, "primary cluster: timed out");
        return -1;
    }
    *inv = json_deep_copy(s->primary);
    return 0;
}

static json_t *load_fixture(void)
{
    json_error_t je;
    json_t *j = json_load_file(TEST_DATA_DIR "/exporter_snapshot.json", 0, &je);
    if (!j)
        fail_msg("exporter_snapshot.json: %s (line %d)", je.text, je.line);
    return j;
}

static exp_config base_config(void)
{
    exp_config c;
    memset(&c, 0, sizeof c);
    c.cache_s = 30;
    c.primary_cache_s = 60;
    c.defaults = (dst_targets){ 7200, 3600, 93600 };
    c.source_cluster = (char *)"fallback";
    return c;
}

/* The value of the one sample whose line starts with `series` followed by
 * a space ("name{labels}"); fails the test when there is none or several. */
static double value(const char *body, const char *series)
{
    size_t n = strlen(series);
    const char *found = NULL;
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            if (found)
                fail_msg("two samples of %s", series);
            found = p + n + 1;
        }
    }
    if (!found)
        fail_msg("no sample %s in:\n%s", series, body);
    return strtod(found, NULL);
}

static bool has_series(const char *body, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, n) == 0)
            return true;
    return false;
}

static size_t count_lines(const char *body, const char *prefix)
{
    size_t k = 0, n = strlen(prefix);
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, n) == 0)
            k++;
    return k;
}

#define NSL(ns) "protected_namespace=\"" ns "\",source_cluster=\"primary-a\""

static char *scrape_fixture(script *s, exp_collector **out_c, exp_config *cfg)
{
    s->snap = load_fixture();
    exp_collector *c = exp_collector_new(cfg, read_dr, NULL, s, "1.2.3");
    assert_non_null(c);
    size_t len = 0;
    char *body = exp_collector_scrape(c, NOW, 1000.0, &len);
    assert_non_null(body);
    assert_int_equal(strlen(body), len);
    *out_c = c;
    return body;
}

/* ---- rendering ------------------------------------------------------------ */

static void test_help_type_and_names(void **st)
{
    (void)st;
    script s = { 0 };
    exp_config cfg = base_config();
    exp_collector *c;
    char *body = scrape_fixture(&s, &c, &cfg);
    regex_t re;
    assert_int_equal(regcomp(&re, "^ocpv_dr_[a-z_]+$", REG_EXTENDED | REG_NOSUB), 0);
    size_t fam = 0;
    const char *cur = NULL;
    char *copy = strdup(body), *save = NULL;
    bool seen_type = false;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_true(fam < exp_n_families);
            cur = exp_families[fam++].name;
            char name[128];
            assert_int_equal(sscanf(line + 7, "%127s", name), 1);
            assert_string_equal(name, cur);
            assert_int_equal(regexec(&re, name, 0, NULL, 0), 0);
            assert_true(strlen(line) > 7 + strlen(name) + 10);   /* a real help text */
            seen_type = false;
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[128], type[32];
            assert_int_equal(sscanf(line + 7, "%127s %31s", name, type), 2);
            assert_string_equal(name, cur);
            assert_string_equal(type, exp_families[fam - 1].type);
            assert_true(!strcmp(type, "gauge") || !strcmp(type, "counter"));
            if (!strcmp(type, "counter"))
                assert_non_null(strstr(name, "_total"));
            else
                assert_null(strstr(name, "_total"));
            assert_false(seen_type);
            seen_type = true;
        } else {
            /* a sample of the current family, after its TYPE */
            assert_true(seen_type);
            size_t n = strcspn(line, "{ ");
            assert_int_equal(n, strlen(cur));
            assert_memory_equal(line, cur, n);
        }
    }
    assert_int_equal(fam, exp_n_families);
    free(copy);
    regfree(&re);
    /* every state and every reason, for each of the 4 namespaces */
    assert_int_equal(count_lines(body, "ocpv_dr_namespace_state{"), 4 * DST_N_STATES);
    assert_int_equal(count_lines(body, "ocpv_dr_namespace_reason{"), 4 * DST_N_REASONS);
    for (int i = 0; i < DST_N_STATES; i++) {
        char p[200];
        snprintf(p, sizeof p, "ocpv_dr_namespace_state{" NSL("vm-prod") ",state=\"%s\"}",
                 dst_states[i]);
        assert_true(value(body, p) == (i == DST_PROTECTED ? 1 : 0));
    }
    free(body);
    exp_collector_free(c);
    json_decref(s.snap);
}

static void test_fixture_values(void **st)
{
    (void)st;
    script s = { 0 };
    exp_config cfg = base_config();
    exp_collector *c;
    char *b = scrape_fixture(&s, &c, &cfg);
    /* vm-prod: Protected, RPO = oldest start (20 min), targets of the record */
    assert_true(value(b, "ocpv_dr_namespace_rpo_seconds{" NSL("vm-prod") "}") == 1200);
    assert_true(value(b, "ocpv_dr_namespace_rpo_target_seconds{" NSL("vm-prod") "}") == 1800);
    assert_true(value(b, "ocpv_dr_namespace_rto_target_seconds{" NSL("vm-prod") "}") == 900);
    assert_true(value(b, "ocpv_dr_namespace_backup_max_age_seconds{" NSL("vm-prod") "}") == 86400);
    assert_true(value(b, "ocpv_dr_namespace_backup_age_seconds{" NSL("vm-prod") "}") == 3600);
    assert_true(value(b, "ocpv_dr_namespace_backup_start_timestamp_seconds{" NSL("vm-prod") "}")
                == NOW - 3600);
    assert_true(value(b, "ocpv_dr_namespace_last_full_sync_start_timestamp_seconds{" NSL("vm-prod")
                         "}") == NOW - 1200);
    assert_true(value(b, "ocpv_dr_namespace_last_full_sync_end_timestamp_seconds{" NSL("vm-prod")
                         "}") == NOW - 1200);
    assert_true(value(b, "ocpv_dr_namespace_last_full_sync_success{" NSL("vm-prod") "}") == 1);
    assert_true(value(b, "ocpv_dr_namespace_claims{" NSL("vm-prod") "}") == 2);
    assert_true(value(b, "ocpv_dr_namespace_claims_without_dr_copy{" NSL("vm-prod") "}") == 0);
    assert_true(value(b, "ocpv_dr_volume_last_sync_start_timestamp_seconds{" NSL("vm-prod")
                         ",persistentvolume=\"pv-b\",persistentvolumeclaim=\"disk-b\"}") == NOW - 1200);
    assert_true(value(b, "ocpv_dr_volume_last_sync_bytes{" NSL("vm-prod")
                         ",persistentvolume=\"pv-b\",persistentvolumeclaim=\"disk-b\"}") == 2048);
    assert_true(value(b, "ocpv_dr_volume_rpo_seconds{" NSL("vm-prod")
                         ",persistentvolume=\"pv-a\",persistentvolumeclaim=\"disk-a\"}") == 600);
    assert_true(value(b, "ocpv_dr_volume_last_sync_success{" NSL("vm-prod")
                         ",persistentvolume=\"pv-a\",persistentvolumeclaim=\"disk-a\"}") == 1);
    assert_false(has_series(b, "ocpv_dr_namespace_last_failover_rto_seconds{" NSL("vm-prod")));
    /* vm-new: a recorded claim without DR copy -> Unprotected, RPO +Inf (literally) */
    assert_true(value(b, "ocpv_dr_namespace_state{" NSL("vm-new") ",state=\"Unprotected\"}") == 1);
    assert_true(value(b, "ocpv_dr_namespace_reason{" NSL("vm-new")
                         ",reason=\"claim_without_dr_copy\"}") == 1);
    assert_non_null(strstr(b, "ocpv_dr_namespace_rpo_seconds{" NSL("vm-new") "} +Inf\n"));
    assert_non_null(strstr(b, "ocpv_dr_volume_rpo_seconds{" NSL("vm-new")
                              ",persistentvolume=\"pv-new\",persistentvolumeclaim=\"disk-new\"} +Inf\n"));
    assert_true(isinf(value(b, "ocpv_dr_namespace_rpo_seconds{" NSL("vm-new") "}")));
    assert_true(value(b, "ocpv_dr_namespace_claims_without_dr_copy{" NSL("vm-new") "}") == 1);
    assert_false(has_series(b, "ocpv_dr_volume_last_sync_success{" NSL("vm-new")
                               ",persistentvolume=\"pv-new\""));   /* nothing attempted */
    /* vm-fail: failed after success -> Degraded, last good start kept */
    assert_true(value(b, "ocpv_dr_namespace_state{" NSL("vm-fail") ",state=\"Degraded\"}") == 1);
    assert_true(value(b, "ocpv_dr_namespace_reason{" NSL("vm-fail")
                         ",reason=\"volume_sync_failed\"}") == 1);
    assert_true(value(b, "ocpv_dr_namespace_reason{" NSL("vm-fail")
                         ",reason=\"full_sync_failed\"}") == 1);
    assert_true(value(b, "ocpv_dr_namespace_last_full_sync_success{" NSL("vm-fail") "}") == 0);
    assert_true(value(b, "ocpv_dr_volume_last_sync_success{" NSL("vm-fail")
                         ",persistentvolume=\"pv-d\",persistentvolumeclaim=\"disk-d\"}") == 0);
    assert_true(value(b, "ocpv_dr_volume_last_sync_start_timestamp_seconds{" NSL("vm-fail")
                         ",persistentvolume=\"pv-d\",persistentvolumeclaim=\"disk-d\"}") == NOW - 7200);
    assert_true(value(b, "ocpv_dr_namespace_rpo_seconds{" NSL("vm-fail") "}") == 7200);
    /* the Failed backup is not one; the "*" backup two hours ago is */
    assert_true(value(b, "ocpv_dr_namespace_backup_age_seconds{" NSL("vm-fail") "}") == 7200);
    /* vm-fo: FailedOver however fresh, with its measured RTO */
    assert_true(value(b, "ocpv_dr_namespace_state{" NSL("vm-fo") ",state=\"FailedOver\"}") == 1);
    assert_true(value(b, "ocpv_dr_namespace_state{" NSL("vm-fo") ",state=\"Protected\"}") == 0);
    assert_true(value(b, "ocpv_dr_namespace_last_failover_rto_seconds{" NSL("vm-fo") "}") == 420);
    /* exporter health; no primary configured: no ocpv_dr_primary_up series */
    assert_true(value(b, "ocpv_dr_status_dr_up") == 1);
    assert_true(value(b, "ocpv_dr_status_read_errors_total{cluster=\"dr\"}") == 0);
    assert_false(has_series(b, "ocpv_dr_status_read_errors_total{cluster=\"primary\"}"));
    assert_false(has_series(b, "ocpv_dr_primary_up"));
    assert_true(value(b, "ocpv_dr_status_build_info{version=\"1.2.3\"}") == 1);
    assert_true(value(b, "ocpv_dr_namespace_reason{" NSL("vm-prod")
                         ",reason=\"primary_not_checked\"}") == 1);
    free(b);
    exp_collector_free(c);
    json_decref(s.snap);
}

/* The scrape says what dst_to_json (the dr_state module's status of the same
 * records) says: state, reason codes, RPO. */
static void test_scrape_agrees_with_status_json(void **st)
{
    (void)st;
    script s = { 0 };
    exp_config cfg = base_config();
    exp_collector *c;
    char *b = scrape_fixture(&s, &c, &cfg);
    const char *ns;
    json_t *rec;
    json_object_foreach(json_object_get(s.snap, "records"), ns, rec) {
        dst_input in = { .ns = ns, .record = json_object_get(rec, "data"),
                         .dr_pvs = json_object_get(s.snap, "pvs"), .primary = NULL,
                         .primary_error = "PRIMARY_KUBECONFIG is not set",
                         .backups = json_object_get(s.snap, "backups"),
                         .defaults = cfg.defaults, .now = NOW };
        dst_result r;
        dst_compute(&in, &r);
        json_t *j = dst_to_json(&r);
        char p[300];
        for (int i = 0; i < DST_N_STATES; i++) {
            snprintf(p, sizeof p, "ocpv_dr_namespace_state{protected_namespace=\"%s\","
                     "source_cluster=\"primary-a\",state=\"%s\"}", ns, dst_states[i]);
            assert_true(value(b, p) == (strcmp(json_string_value(json_object_get(j, "state")),
                                               dst_states[i]) == 0));
        }
        for (int i = 0; i < DST_N_REASONS; i++) {
            bool in_json = false;
            size_t k;
            json_t *x;
            json_array_foreach(json_object_get(j, "reasons"), k, x)
                in_json = in_json || !strcmp(json_string_value(json_object_get(x, "code")),
                                             dst_reason_codes[i]);
            snprintf(p, sizeof p, "ocpv_dr_namespace_reason{protected_namespace=\"%s\","
                     "source_cluster=\"primary-a\",reason=\"%s\"}", ns, dst_reason_codes[i]);
            assert_true(value(b, p) == in_json);
        }
        snprintf(p, sizeof p, "ocpv_dr_namespace_rpo_seconds{protected_namespace=\"%s\","
                 "source_cluster=\"primary-a\"}", ns);
        json_t *rpo = json_object_get(j, "rpo_s");
        if (json_is_null(rpo))
            assert_true(isinf(value(b, p)));
        else
            assert_true(value(b, p) == json_number_value(rpo));
        json_decref(j);
        dst_result_free(&r);
    }
    free(b);
    exp_collector_free(c);
    json_decref(s.snap);
}

static void test_label_escaping_and_special_values(void **st)
{
    (void)st;
    dst_result r;
    memset(&r, 0, sizeof r);
    r.ns = (char *)"ns-\"q\"\\x";
    r.rpo_s = INFINITY;
    r.backup_age_s = INFINITY;
    r.targets = (dst_targets){ 0.5, 3600, 93600 };
    dst_volume v;
    memset(&v, 0, sizeof v);
    v.pv = (char *)"pv\nnew";
    v.claim = NULL;
    v.cls = DST_VOL_MISSING;
    v.age_s = INFINITY;
    v.bytes = -1;
    r.vols = &v;
    r.n_vols = 1;
    exp_ns n = { &r, "a\"b\\c\nd" };
    exp_view view = { .ns = &n, .n = 1, .primary_configured = true, .primary_up = false,
                      .primary_cluster = NULL, .dr_up = false, .version = "v\"1" };
    size_t len;
    char *b = exp_render(&view, &len);
    assert_non_null(b);
    assert_non_null(strstr(b, "ocpv_dr_namespace_rpo_seconds{protected_namespace=\"ns-\\\"q\\\"\\\\x\","
                              "source_cluster=\"a\\\"b\\\\c\\nd\"} +Inf\n"));
    assert_non_null(strstr(b, ",persistentvolume=\"pv\\nnew\",persistentvolumeclaim=\"\"} +Inf\n"));
    assert_non_null(strstr(b, "ocpv_dr_namespace_rpo_target_seconds{protected_namespace=\"ns-\\\"q\\\"\\\\x\","
                              "source_cluster=\"a\\\"b\\\\c\\nd\"} 0.5\n"));
    assert_non_null(strstr(b, "\nocpv_dr_primary_up{source_cluster=\"\"} 0\n"));
    assert_non_null(strstr(b, "\nocpv_dr_status_dr_up 0\n"));
    assert_non_null(strstr(b, "\nocpv_dr_status_read_errors_total{cluster=\"primary\"} 0\n"));
    assert_non_null(strstr(b, "\nocpv_dr_status_build_info{version=\"v\\\"1\"} 1\n"));
    /* no backup: no backup series (not an infinite age); never read: no read time */
    assert_null(strstr(b, "ocpv_dr_namespace_backup_age_seconds{"));
    assert_null(strstr(b, "\nocpv_dr_status_last_dr_read_timestamp_seconds "));
    /* no raw newline inside any sample line: every line is a comment or name-first */
    for (const char *p = b; *p; p = strchr(p, '\n') + 1)
        assert_true(p[0] == '#' || strncmp(p, "ocpv_dr_", 8) == 0);
    free(b);
}

/* ---- cache rules ------------------------------------------------------------ */

static void test_rpo_grows_between_scrapes_without_a_read(void **st)
{
    (void)st;
    script s = { 0 };
    exp_config cfg = base_config();
    exp_collector *c;
    char *b = scrape_fixture(&s, &c, &cfg);
    free(b);
    /* 100 s later, inside the cache time: no read, RPO +100 */
    b = exp_collector_scrape(c, NOW + 100, 1001.0, NULL);
    assert_int_equal(s.reads, 1);
    assert_true(value(b, "ocpv_dr_namespace_rpo_seconds{" NSL("vm-prod") "}") == 1300);
    assert_true(value(b, "ocpv_dr_namespace_state{" NSL("vm-prod") ",state=\"Protected\"}") == 1);
    free(b);
    /* past the target (1800 s): Degraded with no job and no read */
    b = exp_collector_scrape(c, NOW + 700, 1002.0, NULL);
    assert_int_equal(s.reads, 1);
    assert_true(value(b, "ocpv_dr_namespace_rpo_seconds{" NSL("vm-prod") "}") == 1900);
    assert_true(value(b, "ocpv_dr_namespace_state{" NSL("vm-prod") ",state=\"Degraded\"}") == 1);
    assert_true(value(b, "ocpv_dr_namespace_state{" NSL("vm-prod") ",state=\"Protected\"}") == 0);
    assert_true(value(b, "ocpv_dr_namespace_reason{" NSL("vm-prod") ",reason=\"rpo_above_target\"}")
                == 1);
    free(b);
    /* the cache time passed: one read */
    b = exp_collector_scrape(c, NOW + 730, 1030.0, NULL);
    assert_int_equal(s.reads, 2);
    free(b);
    exp_collector_free(c);
    json_decref(s.snap);
}

static void test_failed_read_keeps_last_records(void **st)
{
    (void)st;
    script s = { 0 };
    exp_config cfg = base_config();
    exp_collector *c;
    char *b = scrape_fixture(&s, &c, &cfg);
    free(b);
    char why[256] = "";
    assert_int_equal(exp_collector_ready(c, why, sizeof why), 1);
    s.fail = 1;
    b = exp_collector_scrape(c, NOW + 40, 1040.0, NULL);
    assert_int_equal(s.reads, 2);
    assert_true(value(b, "ocpv_dr_status_dr_up") == 0);
    assert_true(value(b, "ocpv_dr_status_read_errors_total{cluster=\"dr\"}") == 1);
    /* last good records, ages still growing */
    assert_true(value(b, "ocpv_dr_namespace_rpo_seconds{" NSL("vm-prod") "}") == 1240);
    assert_true(value(b, "ocpv_dr_status_last_dr_read_timestamp_seconds") > 0);
    assert_int_equal(exp_collector_ready(c, why, sizeof why), 1);
    free(b);
    /* failures are retried once per cache time, not at every scrape */
    b = exp_collector_scrape(c, NOW + 41, 1041.0, NULL);
    assert_int_equal(s.reads, 2);
    free(b);
    s.fail = 0;
    b = exp_collector_scrape(c, NOW + 80, 1080.0, NULL);
    assert_int_equal(s.reads, 3);
    assert_true(value(b, "ocpv_dr_status_dr_up") == 1);
    assert_true(value(b, "ocpv_dr_status_read_errors_total{cluster=\"dr\"}") == 1);
    free(b);
    exp_collector_free(c);
    json_decref(s.snap);
}

static void test_never_read_is_not_ready(void **st)
{
    (void)st;
    script s = { .fail = 1 };
    s.snap = load_fixture();
    exp_config cfg = base_config();
    exp_collector *c = exp_collector_new(&cfg, read_dr, NULL, &s, "x");
    assert_int_equal(exp_collector_prime(c, 5.0), -1);
    char why[256] = "";
    assert_int_equal(exp_collector_ready(c, why, sizeof why), 0);
    assert_non_null(strstr(why, "connection refused"));
    char *b = exp_collector_scrape(c, NOW, 6.0, NULL);
    assert_int_equal(s.reads, 1);
    assert_true(value(b, "ocpv_dr_status_dr_up") == 0);
    assert_false(has_series(b, "ocpv_dr_namespace_state{"));
    assert_false(has_series(b, "ocpv_dr_status_last_dr_read_timestamp_seconds"));
    free(b);
    exp_collector_free(c);
    json_decref(s.snap);
}

static void test_series_go_with_their_records(void **st)
{
    (void)st;
    script s = { 0 };
    exp_config cfg = base_config();
    exp_collector *c;
    char *b = scrape_fixture(&s, &c, &cfg);
    assert_true(has_series(b, "ocpv_dr_namespace_state{" NSL("vm-fo")));
    assert_true(has_series(b, "ocpv_dr_volume_rpo_seconds{" NSL("vm-prod") ",persistentvolume=\"pv-b\""));
    free(b);
    /* vm-fo's record and PV deleted; pv-b pruned from vm-prod (and from its claims) */
    json_object_del(json_object_get(s.snap, "records"), "vm-fo");
    json_t *pvs = json_object_get(s.snap, "pvs");
    for (size_t i = json_array_size(pvs); i-- > 0;) {
        const char *name = json_string_value(json_object_get(json_object_get(json_array_get(pvs, i),
                                                                             "metadata"), "name"));
        if (!strcmp(name, "pv-e") || !strcmp(name, "pv-b"))
            json_array_remove(pvs, i);
    }
    json_object_set_new(json_object_get(json_object_get(json_object_get(s.snap, "records"),
                                                        "vm-prod"), "data"),
                        "claims.bound",
                        json_string("[{\"claim\":\"disk-a\",\"pv\":\"pv-a\",\"pv_uid\":\"uid-a\"}]"));
    b = exp_collector_scrape(c, NOW + 60, 1060.0, NULL);
    assert_int_equal(s.reads, 2);
    assert_false(has_series(b, "ocpv_dr_namespace_state{" NSL("vm-fo")));
    assert_false(has_series(b, "ocpv_dr_namespace_last_failover_rto_seconds{" NSL("vm-fo")));
    assert_false(has_series(b, "ocpv_dr_volume_rpo_seconds{" NSL("vm-prod") ",persistentvolume=\"pv-b\""));
    assert_true(has_series(b, "ocpv_dr_volume_rpo_seconds{" NSL("vm-prod") ",persistentvolume=\"pv-a\""));
    assert_int_equal(count_lines(b, "ocpv_dr_namespace_state{"), 3 * DST_N_STATES);
    free(b);
    exp_collector_free(c);
    json_decref(s.snap);
}

static void test_protected_namespaces_and_primary(void **st)
{
    (void)st;
    script s = { 0 };
    s.snap = load_fixture();
    exp_config cfg = base_config();
    char *names[] = { (char *)"vm-prod", (char *)"vm-none", NULL };
    cfg.namespaces = names;
    cfg.n_namespaces = 2;
    /* the primary lists vm-prod's two claims and a new one without DR copy */
    s.primary = json_loads(
        "{\"vm-prod\":{\"claims\":["
        "{\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"disk-a\",\"namespace\":\"vm-prod\"},\"spec\":{\"volumeName\":\"pv-a\"}},"
        "{\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"disk-b\",\"namespace\":\"vm-prod\"},\"spec\":{\"volumeName\":\"pv-b\"}},"
        "{\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"disk-z\",\"namespace\":\"vm-prod\"},\"spec\":{\"volumeName\":\"pv-z\"}}],"
        "\"volumes\":["
        "{\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":\"pv-a\",\"uid\":\"uid-a\"}},"
        "{\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":\"pv-b\",\"uid\":\"uid-b\"}},"
        "{\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":\"pv-z\",\"uid\":\"uid-z\"}}]}}",
        0, NULL);
    assert_non_null(s.primary);
    s.primary_fail = 1;
    exp_collector *c = exp_collector_new(&cfg, read_dr, read_primary, &s, "x");
    char *b = exp_collector_scrape(c, NOW, 10.0, NULL);
    /* only the configured namespaces; one without any record is Unprotected */
    assert_int_equal(count_lines(b, "ocpv_dr_namespace_state{"), 2 * DST_N_STATES);
    assert_true(value(b, "ocpv_dr_namespace_state{protected_namespace=\"vm-none\","
                         "source_cluster=\"fallback\",state=\"Unprotected\"}") == 1);
    assert_true(value(b, "ocpv_dr_namespace_reason{protected_namespace=\"vm-none\","
                         "source_cluster=\"fallback\",reason=\"never_synced\"}") == 1);
    /* primary down: recorded claims, said so */
    assert_true(value(b, "ocpv_dr_primary_up{source_cluster=\"fallback\"}") == 0);
    assert_true(value(b, "ocpv_dr_status_read_errors_total{cluster=\"primary\"}") == 1);
    assert_true(value(b, "ocpv_dr_namespace_reason{" NSL("vm-prod") ",reason=\"primary_not_checked\"}")
                == 1);
    assert_true(value(b, "ocpv_dr_namespace_state{" NSL("vm-prod") ",state=\"Protected\"}") == 1);
    free(b);
    /* the primary back (after PRIMARY_CACHE_SECONDS): the new claim makes it Unprotected */
    s.primary_fail = 0;
    b = exp_collector_scrape(c, NOW + 30, 40.0, NULL);
    assert_int_equal(s.primary_reads, 1);   /* 30 s < 60 s: not yet */
    free(b);
    b = exp_collector_scrape(c, NOW + 61, 71.0, NULL);
    assert_int_equal(s.primary_reads, 2);
    assert_true(value(b, "ocpv_dr_primary_up{source_cluster=\"fallback\"}") == 1);
    assert_true(value(b, "ocpv_dr_namespace_reason{" NSL("vm-prod") ",reason=\"primary_not_checked\"}")
                == 0);
    assert_true(value(b, "ocpv_dr_namespace_state{" NSL("vm-prod") ",state=\"Unprotected\"}") == 1);
    assert_true(value(b, "ocpv_dr_namespace_claims{" NSL("vm-prod") "}") == 3);
    assert_true(value(b, "ocpv_dr_namespace_claims_without_dr_copy{" NSL("vm-prod") "}") == 1);
    assert_true(isinf(value(b, "ocpv_dr_namespace_rpo_seconds{" NSL("vm-prod") "}")));
    free(b);
    exp_collector_free(c);
    json_decref(s.snap);
    json_decref(s.primary);
}

/* ---- configuration ------------------------------------------------------------ */

static const char *const ENV_VARS[] = {
    "KUBECONFIG", "PRIMARY_KUBECONFIG", "STATE_NAMESPACE", "OADP_NAMESPACE", "SOURCE_CLUSTER",
    "PROTECTED_NAMESPACES", "CACHE_SECONDS", "PRIMARY_CACHE_SECONDS", "REQUEST_TIMEOUT_SECONDS",
    "DEFAULT_RPO_TARGET_S", "DEFAULT_RTO_TARGET_S", "DEFAULT_BACKUP_MAX_AGE_S", "LISTEN_ADDRESS",
    "LOG_LEVEL", NULL };

static void clear_env(void)
{
    for (int i = 0; ENV_VARS[i]; i++)
        unsetenv(ENV_VARS[i]);
}

static void expect_config_error(const char *var, const char *val, const char *needle)
{
    clear_env();
    setenv(var, val, 1);
    exp_config c;
    char err[512] = "";
    char *argv[] = { (char *)"exp", NULL };
    assert_int_equal(exp_config_load(&c, 1, argv, err, sizeof err), -1);
    if (!strstr(err, needle))
        fail_msg("%s=%s: error \"%s\" lacks \"%s\"", var, val, err, needle);
    exp_config_free(&c);
}

static void test_config(void **st)
{
    (void)st;
    clear_env();
    exp_config c;
    char err[512] = "";
    char *argv[] = { (char *)"exp", (char *)"--once", NULL };
    assert_int_equal(exp_config_load(&c, 2, argv, err, sizeof err), 0);
    assert_true(c.once);
    assert_null(c.kubeconfig);
    assert_null(c.primary_kubeconfig);
    assert_string_equal(c.state_namespace, "ocpv-dr");
    assert_string_equal(c.oadp_namespace, "openshift-adp");
    assert_string_equal(c.listen, "0.0.0.0:9750");
    assert_int_equal(c.cache_s, 30);
    assert_int_equal(c.primary_cache_s, 60);
    assert_true(c.defaults.rpo_s == 7200 && c.defaults.rto_s == 3600
                && c.defaults.backup_max_age_s == 93600);
    assert_int_equal(c.n_namespaces, 0);
    exp_config_free(&c);

    setenv("PROTECTED_NAMESPACES", " vm-a, vm-b ,,vm-a", 1);
    setenv("CACHE_SECONDS", "5", 1);
    setenv("DEFAULT_RPO_TARGET_S", "900", 1);
    char *argv1[] = { (char *)"exp", NULL };
    assert_int_equal(exp_config_load(&c, 1, argv1, err, sizeof err), 0);
    assert_int_equal(c.n_namespaces, 2);
    assert_string_equal(c.namespaces[0], "vm-a");
    assert_string_equal(c.namespaces[1], "vm-b");
    assert_int_equal(c.cache_s, 5);
    assert_true(c.defaults.rpo_s == 900);
    json_t *sum = exp_config_summary(&c);
    assert_int_equal(json_array_size(json_object_get(sum, "protected_namespaces")), 2);
    json_decref(sum);
    exp_config_free(&c);

    expect_config_error("CACHE_SECONDS", "abc", "CACHE_SECONDS: \"abc\"");
    expect_config_error("CACHE_SECONDS", "-1", "CACHE_SECONDS");
    expect_config_error("DEFAULT_RPO_TARGET_S", "0", "DEFAULT_RPO_TARGET_S");
    expect_config_error("PROTECTED_NAMESPACES", "vm-a,Bad_NS", "PROTECTED_NAMESPACES: \"Bad_NS\"");
    expect_config_error("STATE_NAMESPACE", "a.b", "STATE_NAMESPACE");
    expect_config_error("LISTEN_ADDRESS", "9750", "LISTEN_ADDRESS");
    expect_config_error("LOG_LEVEL", "loud", "LOG_LEVEL");
    expect_config_error("KUBECONFIG", "/nonexistent/kubeconfig", "KUBECONFIG: /nonexistent/kubeconfig");
    clear_env();
    char *bad[] = { (char *)"exp", (char *)"--bogus", NULL };
    assert_int_equal(exp_config_load(&c, 2, bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "--bogus"));
    exp_config_free(&c);
}

/* ---- monitoring/ uses only what is rendered ----------------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = NULL;
    size_t cap = 0;
    FILE *m = open_memstream(&buf, &cap);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    return buf;
}

/* Every ocpv_dr_<name> in the file is a family the exporter renders with at
 * least one sample for the fixture; returns how many names were checked. */
static size_t check_names_rendered(const char *path, const char *body)
{
    char *text = slurp(path);
    size_t checked = 0;
    for (const char *p = strstr(text, "ocpv_dr_"); p; p = strstr(p + 1, "ocpv_dr_")) {
        if (p > text && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z')))
            continue;
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
        char name[128];
        if (n >= sizeof name)
            fail_msg("%s: name too long", path);
        memcpy(name, p, n);
        name[n] = '\0';
        bool fam = false;
        for (size_t i = 0; i < exp_n_families; i++)
            fam = fam || strcmp(exp_families[i].name, name) == 0;
        if (!fam)
            fail_msg("%s uses %s, which ocpv-dr-status-exporter does not render", path, name);
        char series[140];
        snprintf(series, sizeof series, "\n%s{", name);
        char plain[140];
        snprintf(plain, sizeof plain, "\n%s ", name);
        if (!strstr(body, series) && !strstr(body, plain))
            fail_msg("%s uses %s: no sample in the fixture's scrape", path, name);
        checked++;
    }
    free(text);
    return checked;
}

static void test_monitoring_uses_rendered_metrics(void **st)
{
    (void)st;
    script s = { 0 };
    exp_config cfg = base_config();
    exp_collector *c;
    s.snap = load_fixture();
    /* with a (failing) primary, so ocpv_dr_primary_up has a sample too */
    s.primary_fail = 1;
    c = exp_collector_new(&cfg, read_dr, read_primary, &s, "x");
    char *b = exp_collector_scrape(c, NOW, 1.0, NULL);
    assert_true(check_names_rendered(SOURCE_ROOT "/monitoring/ocpv-dr.rules.yml", b) >= 10);
    assert_true(check_names_rendered(SOURCE_ROOT "/monitoring/ocpv-dr-dashboard.json", b) >= 5);
    free(b);
    exp_collector_free(c);
    json_decref(s.snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_type_and_names),
        cmocka_unit_test(test_fixture_values),
        cmocka_unit_test(test_scrape_agrees_with_status_json),
        cmocka_unit_test(test_label_escaping_and_special_values),
        cmocka_unit_test(test_rpo_grows_between_scrapes_without_a_read),
        cmocka_unit_test(test_failed_read_keeps_last_records),
        cmocka_unit_test(test_never_read_is_not_ready),
        cmocka_unit_test(test_series_go_with_their_records),
        cmocka_unit_test(test_protected_namespaces_and_primary),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_monitoring_uses_rendered_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
