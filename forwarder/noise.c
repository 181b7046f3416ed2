/* noise.c - significant-content hash for noise control (see noise.h). */
#include "noise.h"

#include "jsonx.h"

#include <stdlib.h>

static const char *const ignored[] = { "resourceVersion", "managedFields", "selfLink" };
#define NIGN (sizeof ignored / sizeof ignored[0])

uint64_t noise_hash(json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata");
    json_t *saved[NIGN] = { 0 };
    if (json_is_object(md))
        for (size_t i = 0; i < NIGN; i++) {
            saved[i] = json_incref(json_object_get(md, ignored[i]));
            if (saved[i])
                json_object_del(md, ignored[i]);
        }
    char *s = jx_canonical(obj);
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = s ? s : ""; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    free(s);
    for (size_t i = 0; i < NIGN; i++)
        if (saved[i])
            json_object_set_new(md, ignored[i], saved[i]);
    return h ? h : 1;
}
