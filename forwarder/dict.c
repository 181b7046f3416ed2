/* dict.c - string-keyed open-addressing hash table (see dict.h). */
#include "dict.h"

#include <stdlib.h>
#include <string.h>

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ULL;   /* FNV-1a 64 */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void dict_init(dict *d) { memset(d, 0, sizeof *d); }

void dict_free(dict *d)
{
    free(d->slots);
    memset(d, 0, sizeof *d);
}

static dict_slot *find(const dict *d, const char *key, size_t h)
{
    if (!d->cap)
        return NULL;
    size_t m = d->cap - 1;
    for (size_t i = h & m;; i = (i + 1) & m) {
        dict_slot *s = &d->slots[i];
        if (!s->key)
            return NULL;
        if (s->h == h && strcmp(s->key, key) == 0)
            return s;
    }
}

void *dict_get(const dict *d, const char *key)
{
    dict_slot *s = find(d, key, hash_str(key));
    return s ? s->val : NULL;
}

static int grow(dict *d)
{
    size_t ncap = d->cap ? d->cap * 2 : 64;
    dict_slot *n = calloc(ncap, sizeof *n);
    if (!n)
        return -1;
    for (size_t i = 0; i < d->cap; i++) {
        dict_slot *s = &d->slots[i];
        if (!s->key)
            continue;
        size_t j = s->h & (ncap - 1);
        while (n[j].key)
            j = (j + 1) & (ncap - 1);
        n[j] = *s;
    }
    free(d->slots);
    d->slots = n;
    d->cap = ncap;
    return 0;
}

int dict_put(dict *d, const char *key, void *val)
{
    size_t h = hash_str(key);
    dict_slot *s = find(d, key, h);
    if (s) {
        s->key = key;
        s->val = val;
        return 0;
    }
    if ((d->len + 1) * 4 > d->cap * 3 && grow(d) != 0)
        return -1;
    size_t m = d->cap - 1, i = h & m;
    while (d->slots[i].key)
        i = (i + 1) & m;
    d->slots[i] = (dict_slot){ key, val, h };
    d->len++;
    return 0;
}

void *dict_del(dict *d, const char *key)
{
    dict_slot *s = find(d, key, hash_str(key));
    if (!s)
        return NULL;
    void *val = s->val;
    size_t m = d->cap - 1, i = (size_t)(s - d->slots), j = i;
    for (;;) {   /* backward-shift deletion keeps probe chains intact */
        j = (j + 1) & m;
        if (!d->slots[j].key)
            break;
        size_t home = d->slots[j].h & m;
        /* move slot j into the hole i if its home is not in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            d->slots[i] = d->slots[j];
            i = j;
        }
    }
    d->slots[i] = (dict_slot){ 0 };
    d->len--;
    return val;
}

int dict_next(const dict *d, size_t *iter, const char **key, void **val)
{
    for (; *iter < d->cap; (*iter)++) {
        dict_slot *s = &d->slots[*iter];
        if (s->key) {
            *key = s->key;
            *val = s->val;
            (*iter)++;
            return 1;
        }
    }
    return 0;
}
