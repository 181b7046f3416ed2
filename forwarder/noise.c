/* noise.c - significant-content hash for noise control (see noise.h). */
#include "noise.h"

#include <stdbool.h>
#include <string.h>

static const char *const ignored[] = { "resourceVersion", "managedFields", "selfLink" };
#define NIGN (sizeof ignored / sizeof ignored[0])

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

#define FNV0 1469598103934665603ULL

static bool is_ignored(const char *key)
{
    for (size_t i = 0; i < NIGN; i++)
        if (!strcmp(key, ignored[i]))
            return true;
    return false;
}

/* Hash of a JSON value.  Objects combine their members by a sum of
 * per-member hashes, so member order does not matter (as in a canonical
 * form with sorted keys); arrays are ordered.  skip: the member names of
 * metadata that do not count. */
static uint64_t hv(const json_t *v, bool skip)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        uint64_t acc = 0x6f626a;
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m) {
            if (skip && is_ignored(k))
                continue;
            uint64_t kh = fnv(FNV0, k, strlen(k));
            acc += mix(kh ^ (hv(m, false) * 0x9e3779b97f4a7c15ULL));
        }
        return mix(acc ^ 0x4f);
    }
    case JSON_ARRAY: {
        uint64_t h = 0x617272;
        size_t i;
        json_t *e;
        json_array_foreach((json_t *)v, i, e)
            h = mix(h ^ hv(e, false)) + i;
        return mix(h ^ 0x41);
    }
    case JSON_STRING:
        return mix(fnv(FNV0 ^ 0x53, json_string_value(v), json_string_length(v)));
    case JSON_INTEGER:
        return mix((uint64_t)json_integer_value(v) ^ 0x49000000000000ULL);
    case JSON_REAL: {
        double d = json_real_value(v);
        uint64_t b;
        memcpy(&b, &d, sizeof b);
        return mix(b ^ 0x52000000000000ULL);
    }
    case JSON_TRUE:
        return 0x7472756574727565ULL;
    case JSON_FALSE:
        return 0x66616c7366616c73ULL;
    default:
        return 0x6e756c6c6e756c6cULL;
    }
}

uint64_t noise_hash(json_t *obj)
{
    uint64_t acc = 0x726f6f74;
    if (json_is_object(obj)) {   /* the top level, with metadata's bookkeeping left out */
        const char *k;
        json_t *m;
        json_object_foreach(obj, k, m) {
            uint64_t kh = fnv(FNV0, k, strlen(k));
            bool md = !strcmp(k, "metadata") && json_is_object(m);
            acc += mix(kh ^ (hv(m, md) * 0x9e3779b97f4a7c15ULL));
        }
        acc = mix(acc ^ 0x4f);
    } else {
        acc = hv(obj, false);
    }
    return acc ? acc : 1;
}
