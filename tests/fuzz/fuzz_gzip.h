/* fuzz_gzip.h - gzips a fuzz input in memory (zlib, fastest level), for the
 * targets whose parser reads gzip: mutated bytes are gzipped here so that
 * they reach the code behind the gunzip instead of failing its CRC check. */
#ifndef OCPVDR_FUZZ_GZIP_H
#define OCPVDR_FUZZ_GZIP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* malloc'd gzip stream of data, its length in *out_len; NULL on failure. */
static inline unsigned char *fuzz_gzip(const uint8_t *data, size_t size, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)size) + 64;
    unsigned char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    if (r != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

#endif
