/* module_scrub.c - no_log values of the binary-module runtime: remembering
 * them (mp_add_secret*) and scrubbing them out of every string of a JSON
 * value, object keys included (mod_scrub), as Ansible's remove_values does.
 */
#include "module_priv.h"

#include <stdlib.h>
#include <string.h>

#define SCRUB_MASK "********"

void mp_add_secret(module *m, const char *s)
{
    if (!s || !*s)
        return;
    for (size_t i = 0; i < m->nsecrets; i++)
        if (strcmp(m->secrets[i], s) == 0)
            return;
    char **nv = realloc(m->secrets, (m->nsecrets + 1) * sizeof *nv);
    char *copy = strdup(s);
    if (!nv || !copy)
        abort();   /* cannot guarantee secrecy without memory: stop */
    m->secrets = nv;
    m->secrets[m->nsecrets++] = copy;
}

void mod_add_secret(module *m, const char *s)
{
    mp_add_secret(m, s);
}

void mp_add_secret_values(module *m, const json_t *v)
{
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            mp_add_secret_values(m, json_array_get(v, i));
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
            mp_add_secret_values(m, e);
    } else if (json_is_string(v) || json_is_number(v)) {
        char *s = mp_scalar_str(v);
        mp_add_secret(m, s);
        free(s);
    }
}

/* Longest first, so a secret containing a shorter one is masked whole. */
static int by_length_desc(const void *a, const void *b)
{
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

/* New string with every secret replaced, or NULL when nothing matched. */
static char *scrub_str(const char *s, char **sorted, size_t n)
{
    char *cur = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *src = cur ? cur : s;
        const char *sec = sorted[i];
        size_t sl = strlen(sec);
        if (!sl || !strstr(src, sec))
            continue;
        size_t count = 0;
        for (const char *p = src; (p = strstr(p, sec)); p += sl)
            count++;
        size_t ml = strlen(SCRUB_MASK);
        char *out = malloc(strlen(src) + count * ml + 1), *w = out;
        if (!out)
            abort();
        const char *p = src, *hit;
        while ((hit = strstr(p, sec))) {
            memcpy(w, p, (size_t)(hit - p));
            w += hit - p;
            memcpy(w, SCRUB_MASK, ml);
            w += ml;
            p = hit + sl;
        }
        strcpy(w, p);
        free(cur);
        cur = out;
    }
    return cur;
}

static void scrub(json_t *v, char **sorted, size_t n)
{
    if (json_is_string(v)) {
        char *s = scrub_str(json_string_value(v), sorted, n);
        if (s)
            json_string_set(v, s);
        free(s);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            scrub(json_array_get(v, i), sorted, n);
    } else if (json_is_object(v)) {
        /* keys cannot be renamed in place: collect the renames first */
        const char *k;
        json_t *e;
        void *tmp;
        json_t *renamed = json_object();
        json_object_foreach_safe(v, tmp, k, e) {
            scrub(e, sorted, n);
            char *nk = scrub_str(k, sorted, n);
            if (nk) {
                json_object_set(renamed, nk, e);
                json_object_del(v, k);
                free(nk);
            }
        }
        json_object_update(v, renamed);
        json_decref(renamed);
    }
}

void mod_scrub(json_t *v, char *const *secrets, size_t nsecrets)
{
    if (!v || !nsecrets)
        return;
    char **sorted = malloc(nsecrets * sizeof *sorted);
    if (!sorted)
        abort();
    memcpy(sorted, secrets, nsecrets * sizeof *sorted);
    qsort(sorted, nsecrets, sizeof *sorted, by_length_desc);
    scrub(v, sorted, nsecrets);
    free(sorted);
}
