/* fuzz_dr_record.c - libFuzzer target for lib/dr/dr_record.c and
 * lib/dr/dr_status.c: the DR state records are read from objects anyone with
 * write access to the DR cluster (or a hand edit) may have changed.
 *
 * Input: a JSON object, used as a PV's metadata.annotations AND as the
 * namespace ConfigMap's data (non-objects are wrapped as {"x": input}); the
 * first line, if not JSON, is also fed to the time parsers.
 *
 * Checked beyond "no crash, no leak": a parsed time formats back to a string
 * that parses to the same time; a patch built on the parsed record is NULL or
 * an object; dst_compute gives a state and reasons within the tables, RPO
 * >= 0 (or +Inf), the JSON rendering is never NULL and has a state; a
 * malformed record (of the
 * namespace, or of a volume in scope) is never Protected. */
#include "dr_record.h"
#include "dr_status.h"
#include "xtime.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_time(const char *s)
{
    time_t t, u;
    char b[XTIME_RFC3339_LEN];
    if (xtime_parse(s, &t)) {
        xtime_rfc3339(t, b);
        if (!xtime_parse_utc(b, &u) || u != t)
            abort();
    }
    if (xtime_parse_utc(s, &t)) {
        xtime_rfc3339(t, b);
        if (strcmp(b, s) != 0 && !(strlen(s) == 20 && memcmp(s + 17, "60", 2) == 0))
            abort();            /* the strict form is canonical (but :60 -> :59) */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size);
    char *nl = strchr(text, '\n');
    if (nl) {
        *nl = '\0';
        check_time(text);
        *nl = '\n';
    } else {
        check_time(text);
    }
    json_t *in = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    free(text);
    if (!in)
        return 0;
    json_t *obj = json_is_object(in) ? json_incref(in) : json_pack("{sO}", "x", in);

    json_t *pv = json_pack("{s:s,s:{s:s,s:{s:s},s:O},s:{s:{s:s,s:s}}}", "kind", "PersistentVolume",
                           "metadata", "name", "pv-1", "labels", "dr.ocpv.io/managed-by", "ocpv-dr",
                           "annotations", obj, "spec", "claimRef", "namespace", "ns", "name", "c");
    drr_vol v;
    drr_vol_parse(pv, &v);
    if (v.has_sync && v.sync_start < 0)
        abort();
    drr_sync s = { .ok = true, .attempt_start = 1796302807, .data_as_of = 1796302807,
                   .end = 1796302900, .bytes = 1, .source_uid = "u" };
    json_t *p = drr_vol_patch(&v, &s);
    if (p && !json_is_object(p))
        abort();
    json_decref(p);
    size_t vol_errors = json_array_size(v.errors);
    drr_vol_free(&v);

    drr_ns r;
    drr_ns_parse(obj, &r);
    drr_full_sync f = { .start = 1796302807, .end = 1796302900, .ok = true };
    json_t *acc = NULL;
    drr_patch_merge(&acc, drr_ns_patch_full_sync(&r, &f));
    drr_action a = { .kind = DRR_ACT_FAILOVER, .phase = DRR_PH_COMPLETED, .started = 1796302807,
                     .finished = 1796302900 };
    drr_patch_merge(&acc, drr_ns_patch_action(&r, &a));
    drr_patch_merge(&acc, drr_ns_patch_pending(&r, "pv-1", NULL));
    json_decref(acc);
    drr_ns_free(&r);

    json_t *pvs = json_pack("[O]", pv);
    dst_input di = { .ns = "ns", .record = obj, .dr_pvs = pvs,
                     .defaults = { 7200, 3600, 93600 }, .now = 1796302807 };
    dst_result res;
    dst_compute(&di, &res);
    if ((int)res.state < 0 || res.state >= DST_N_STATES || res.rpo_s < 0 || isnan(res.rpo_s))
        abort();
    for (size_t i = 0; i < res.n_reasons; i++)
        if ((int)res.reasons[i].code < 0 || res.reasons[i].code >= DST_N_REASONS || !res.reasons[i].message)
            abort();
    /* the PV's record counts only when its volume is in scope (the recorded
     * claims may not name it: a DR PV of a deleted claim, left to prune) */
    bool pv_in_scope = false;
    for (size_t i = 0; i < res.n_vols; i++)
        pv_in_scope = pv_in_scope || strcmp(res.vols[i].pv, "pv-1") == 0;
    if (((vol_errors && pv_in_scope) || json_array_size(res.rec.errors)) && res.state == DST_PROTECTED)
        abort();
    json_t *j = dst_to_json(&res);
    if (!j || !json_object_get(j, "state"))
        abort();
    json_decref(j);
    dst_result_free(&res);

    json_decref(pvs);
    json_decref(pv);
    json_decref(obj);
    json_decref(in);
    return 0;
}
