/* dict.h - a string-keyed hash table (open addressing, linear probing,
 * backward-shift deletion).  Keys are borrowed: they must stay valid while
 * the entry exists (store them inside the value).  Not thread-safe. */
#ifndef OCPVDR_FWD_DICT_H
#define OCPVDR_FWD_DICT_H

#include <stddef.h>

typedef struct dict_slot { const char *key; void *val; size_t h; } dict_slot;
typedef struct dict { dict_slot *slots; size_t cap, len; } dict;

void  dict_init(dict *d);
void  dict_free(dict *d);                 /* frees the table, not the values */
void *dict_get(const dict *d, const char *key);
int   dict_put(dict *d, const char *key, void *val);   /* replaces; 0 or -1 (OOM) */
void *dict_del(dict *d, const char *key);  /* returns the removed value */

/* Iteration: for (size_t i = 0; dict_next(d, &i, &k, &v);) { ... }
 * Do not insert while iterating; deleting the current key is not allowed
 * either (collect keys first). */
int dict_next(const dict *d, size_t *iter, const char **key, void **val);

#endif
