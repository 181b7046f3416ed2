/* fuzz_oadp_archive.c - libFuzzer target for the archive + JSON path of
 * ocpv.dr.oadp_parse: bytes -> (gzip) -> tar (libarchive) -> Velero layout ->
 * JSON (jansson) -> collector (filters, dedup, bound PVs) -> result (tree and text).
 *
 * Input that starts with the gzip magic is read as is (exercising the gunzip
 * checks); anything else is treated as the tar stream and gzipped here first,
 * so that mutations reach the tar and JSON code instead of dying on a CRC.
 * Limits are small so that a huge-entry or many-entry input stays fast. */
#include "velero_backup.h"
#include "fuzz_gzip.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const void *gz, size_t len, bool filtered)
{
    const char *ns[] = {"vm-prod", "cluster"};
    char *err = NULL;
    vb_selector *sel = filtered ? vb_selector_parse("app in (app0,app1),!skip", &err) : NULL;
    vb_filter f = {0};
    if (filtered) {
        f.namespaces = ns;
        f.nnamespaces = 2;
        f.selector = sel;
    }
    vb_collector *c = vb_collector_new(&f, 8, &err);
    vb_limits lim = {.max_entry_bytes = 256 * 1024, .max_entries = 20000};
    vb_stats st;
    if (c && vb_read_mem(gz, len, &lim, &vb_collector_handler, c, &st, &err) == 0) {
        json_t *r = vb_collector_result(c, &st);
        char *s = json_dumps(r, JSON_COMPACT);   /* the result must serialise */
        if (!s)
            abort();
        free(s);
        /* the text result (what oadp_parse prints): every kept text is valid
         * JSON and the lists hold as many objects as the tree result's */
        vb_raw_result rr;
        json_t *rr_res = vb_collector_result_raw(c, &st, &rr);
        if (!rr_res)
            abort();
        for (size_t i = 0; i < 6; i++) {
            if (rr.known[i].n != json_array_size(json_object_get(r, rr.known[i].name)))
                abort();
            for (size_t k = 0; k < rr.known[i].n; k++) {
                json_t *o = json_loadb(rr.known[i].v[k].data, rr.known[i].v[k].len, 0, NULL);
                if (!json_is_object(o))
                    abort();
                json_decref(o);
            }
        }
        json_decref(rr_res);
        vb_raw_result_free(&rr);
        json_decref(r);
    }
    free(err);
    vb_collector_free(c);
    vb_selector_free(sel);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        run(data, size, false);
        return 0;
    }
    size_t len = 0;
    unsigned char *gz = fuzz_gzip(data, size, &len);
    if (!gz)
        return 0;
    run(gz, len, size % 2 == 0);
    free(gz);
    return 0;
}
