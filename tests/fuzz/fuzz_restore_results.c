/* fuzz_restore_results.c - libFuzzer target for a Velero Restore's results
 * file (lib/velero/velero_restore.c): restore-<name>-results.gz gunzipped in memory
 * (vs_gunzip_mem, size-capped) and its {"errors", "warnings"} JSON checked
 * and flattened (vs_restore_results_parse), as vs_get_restore_results does
 * with what the bucket holds.
 *
 * Input that starts with the gzip magic is gunzipped as is (the zlib error
 * paths, the size cap); anything else is the JSON text, gzipped here first so
 * that mutations reach the JSON code (and also parsed directly).
 *
 * Checked beyond "no crash, no leak": the gunzipped length is within the cap;
 * a parsed result serialises, keeps at most max_msgs messages of each kind in
 * its flat lists, and its counts are not below what it kept. */
#include "velero_restore.h"
#include "fuzz_gzip.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_OUT = 1024 * 1024, MAX_MSGS = 7 };

static void parse(const char *text, size_t len)
{
    char *err = NULL;
    json_t *r = vs_restore_results_parse(text, len, MAX_MSGS, &err);
    if (!r) {
        if (!err)
            abort();   /* every failure says why */
        free(err);
        return;
    }
    if (err)
        abort();
    char *s = json_dumps(r, JSON_COMPACT);
    if (!s)
        abort();
    free(s);
    static const char *const kinds[][2] = {
        { "restore_error_messages", "restore_error_count" },
        { "restore_warning_messages", "restore_warning_count" },
    };
    for (int k = 0; k < 2; k++) {
        size_t kept = json_array_size(json_object_get(r, kinds[k][0]));
        json_int_t total = json_integer_value(json_object_get(r, kinds[k][1]));
        if (kept > MAX_MSGS || total < (json_int_t)kept)
            abort();
    }
    json_decref(r);
}

static void gunzip_and_parse(const void *gz, size_t len)
{
    char *text = NULL, *err = NULL;
    size_t tlen = 0;
    if (vs_gunzip_mem(gz, len, MAX_OUT, &text, &tlen, &err) == 0) {
        if (err || !text || tlen > MAX_OUT || text[tlen] != '\0')
            abort();
        parse(text, tlen);
    } else if (!err || text) {
        abort();
    }
    free(text);
    free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        gunzip_and_parse(data, size);
        return 0;
    }
    parse((const char *)data, size);
    size_t len = 0;
    unsigned char *gz = fuzz_gzip(data, size, &len);
    if (gz)
        gunzip_and_parse(gz, len);
    free(gz);
    return 0;
}
