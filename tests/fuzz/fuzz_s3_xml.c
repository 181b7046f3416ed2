/* fuzz_s3_xml.c - libFuzzer target for the S3 XML answers (lib/s3/s3_xml.c,
 * libxml2): <Error> bodies (s3_parse_error) and ListObjectsV2 pages
 * (s3_parse_list_page), the documents a hostile or broken bucket endpoint
 * writes.  The same bytes go through both parsers; the page is parsed twice
 * into one listing (as s3_list appends pages) with a small item cap, so the
 * cap and the append path are exercised too.
 *
 * Checked beyond "no crash, no leak": every kept object has a key; the item
 * cap holds; a page that succeeds with IsTruncated has a non-empty
 * continuation token (s3_list relies on it to make progress); a failure says
 * why and returns no token. */
#include "s3.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_listing(const s3_listing *l, size_t max)
{
    if (l->nobjects + l->nprefixes > max)
        abort();
    for (size_t i = 0; i < l->nobjects; i++)
        if (!l->objects[i].key)
            abort();
    for (size_t i = 0; i < l->nprefixes; i++)
        if (!l->prefixes[i])
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    free(s3_parse_error(body, size));

    enum { MAX = 64 };
    s3_listing l = { 0 };
    for (int page = 0; page < 2; page++) {
        bool truncated = true;
        char *next = (char *)1, *err = NULL;
        int rc = s3_parse_list_page(body, size, MAX, &l, &truncated, &next, &err);
        if (rc == 0) {
            if (err)
                abort();
            if (truncated && (!next || !*next))
                abort();
        } else if (rc != S3_ERR || !err || next) {
            abort();
        }
        check_listing(&l, MAX);
        free(next);
        free(err);
        if (rc != 0)
            break;
    }
    s3_listing_free(&l);
    return 0;
}
