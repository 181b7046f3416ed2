/* secrets.c - registered secret values and masking them out of strings,
 * JSON values and JSON text, by the one set of rules in secrets.h. */
#define _GNU_SOURCE 1   /* memmem, explicit_bzero */
#include "secrets.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MASK_LEN (sizeof SECRETS_MASK - 1)

static void *xalloc(void *p)
{
    if (!p)
        abort();   /* cannot guarantee secrecy without memory: stop */
    return p;
}

static void add_one(secret_set *s, const char *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], v) == 0)
            return;
    s->v = xalloc(realloc(s->v, (s->n + 1) * sizeof *s->v));
    s->v[s->n++] = xalloc(strdup(v));
}

/* The value as it reads inside a JSON string (quotes stripped), with or
 * without \uXXXX for non-ASCII; NULL when that is the value itself (or it is
 * not UTF-8, which no JSON string holds). */
static char *json_spelling(const char *v, size_t flags)
{
    json_t *j = json_string(v);
    char *d = j ? json_dumps(j, JSON_ENCODE_ANY | flags) : NULL;
    json_decref(j);
    size_t n = d ? strlen(d) : 0;
    if (n < 2 || (n - 2 == strlen(v) && !strncmp(d + 1, v, n - 2))) {
        free(d);
        return NULL;
    }
    memmove(d, d + 1, n - 2);
    d[n - 2] = '\0';
    return d;
}

void secrets_add(secret_set *s, const char *value)
{
    if (!value || strlen(value) < SECRETS_MIN_LEN)
        return;
    add_one(s, value);
    for (int i = 0; i < 2; i++) {
        char *e = json_spelling(value, i ? 0 : JSON_ENSURE_ASCII);
        if (e)
            add_one(s, e);
        /* jansson writes \u00E9, Python's json (a webhook receiver, a
         * server's body) \u00e9: both */
        bool lowered = false;
        for (char *p = e; !i && p && (p = strstr(p, "\\u")); p += 2)
            for (int k = 2; k < 6 && p[k]; k++)
                if (p[k] >= 'A' && p[k] <= 'F') {
                    p[k] = (char)(p[k] - 'A' + 'a');
                    lowered = true;
                }
        if (lowered)
            add_one(s, e);
        free(e);
    }
}

size_t secrets_count(const secret_set *s)
{
    return s ? s->n : 0;
}

void secrets_clear(secret_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        explicit_bzero(s->v[i], strlen(s->v[i]));
        free(s->v[i]);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

bool secrets_in(const secret_set *s, const char *text, size_t len)
{
    for (size_t i = 0; s && text && i < s->n; i++)
        if (memmem(text, len, s->v[i], strlen(s->v[i])))
            return true;
    return false;
}

/* ------------------------------------------------------------ masking */

typedef struct span { size_t a, b; } span;   /* [a, b) */

static int by_start(const void *x, const void *y)
{
    const span *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    return p->b > q->b ? -1 : p->b < q->b;      /* longer first */
}

static bool utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* The text (len bytes) with every masked run replaced, NUL-terminated, its
 * length in *outlen; NULL when no secret occurs in it. */
static char *scrub_bytes(const secret_set *s, const char *p, size_t len, size_t *outlen)
{
    span *sp = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; s && i < s->n; i++) {
        const char *sec = s->v[i];
        size_t sl = strlen(sec);
        const char *from = p, *hit;
        while ((hit = memmem(from, len - (size_t)(from - p), sec, sl))) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                sp = xalloc(realloc(sp, cap * sizeof *sp));
            }
            sp[n].a = (size_t)(hit - p);
            sp[n++].b = (size_t)(hit - p) + sl;
            from = hit + 1;          /* overlapping occurrences of the same one too */
        }
    }
    if (!n)
        return NULL;
    qsort(sp, n, sizeof *sp, by_start);
    /* merge overlapping spans (adjacent ones stay separate masks) */
    size_t m = 0;
    for (size_t i = 1; i < n; i++) {
        if (sp[i].a < sp[m].b) {
            if (sp[i].b > sp[m].b)
                sp[m].b = sp[i].b;
        } else {
            sp[++m] = sp[i];
        }
    }
    m++;
    size_t cut = 0;
    for (size_t i = 0; i < m; i++)
        cut += sp[i].b - sp[i].a;
    size_t ol = len - cut + m * MASK_LEN;
    char *out = xalloc(malloc(ol + 1)), *w = out;
    size_t at = 0;
    for (size_t i = 0; i < m; i++) {
        memcpy(w, p + at, sp[i].a - at);
        w += sp[i].a - at;
        memcpy(w, SECRETS_MASK, MASK_LEN);
        w += MASK_LEN;
        at = sp[i].b;
    }
    memcpy(w, p + at, len - at);
    out[ol] = '\0';
    free(sp);
    /* a secret cut a UTF-8 sequence: nothing of the string is kept */
    if (!utf8_valid((const unsigned char *)out, ol) && utf8_valid((const unsigned char *)p, len)) {
        explicit_bzero(out, ol);
        free(out);
        out = xalloc(strdup(SECRETS_MASK));
        ol = MASK_LEN;
    }
    *outlen = ol;
    return out;
}

char *secrets_scrub_copy(const secret_set *s, const char *text)
{
    if (!text)
        return NULL;
    size_t ol;
    char *r = scrub_bytes(s, text, strlen(text), &ol);
    return r ? r : xalloc(strdup(text));
}

void secrets_scrub_json(const secret_set *s, json_t *v)
{
    if (!v || !s || !s->n)
        return;
    if (json_is_string(v)) {
        size_t ol;
        char *c = scrub_bytes(s, json_string_value(v), json_string_length(v), &ol);
        if (c && json_string_setn(v, c, ol) != 0)
            json_string_set(v, SECRETS_MASK);
        free(c);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            secrets_scrub_json(s, json_array_get(v, i));
    } else if (json_is_object(v)) {
        /* keys cannot be renamed in place: collect the renames first */
        const char *k;
        json_t *e;
        void *tmp;
        json_t *renamed = NULL;
        json_object_foreach_safe(v, tmp, k, e) {
            secrets_scrub_json(s, e);
            size_t ol;
            char *nk = scrub_bytes(s, k, strlen(k), &ol);
            if (nk) {
                if (!renamed)
                    renamed = xalloc(json_object());
                if (json_object_set(renamed, nk, e) != 0)
                    json_object_set(renamed, SECRETS_MASK, e);
                json_object_del(v, k);
                free(nk);
            }
        }
        if (renamed)
            json_object_update(v, renamed);
        json_decref(renamed);
    }
}

char *secrets_scrub_json_text(const secret_set *s, const char *text, size_t len, size_t *outlen)
{
    if (!s || !s->n || (!memchr(text, '\\', len) && !secrets_in(s, text, len)))
        return NULL;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!v) {
        char *b = scrub_bytes(s, text, len, outlen);
        /* masking can make it JSON (a secret was the byte that broke it),
         * whose escapes could spell another secret: then as JSON */
        v = b ? json_loadb(b, *outlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
        if (!v)
            return b;
        free(b);
    }
    secrets_scrub_json(s, v);
    char *t = xalloc(json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
    json_decref(v);
    *outlen = strlen(t);
    return t;
}
