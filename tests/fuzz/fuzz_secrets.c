/* fuzz_secrets.c - libFuzzer target for lib/base/secrets.c, which masks secret
 * values in what peers send back (server errors, webhook answers, objects
 * read from a backup) before it is shown.
 *
 * Input: up to 8 secrets, one a line, ended by an empty line; the rest is
 * the text, scrubbed both as a C string (secrets_scrub_copy) and as JSON
 * text (secrets_scrub_json_text).
 *
 * Checked beyond "no crash, no leak", for every registered spelling that
 * holds no '*' (the mask's byte, which could join a neighbour into one):
 * it does not occur in the scrubbed copy; valid UTF-8 stays valid UTF-8; text
 * is kept as it is only when it holds no secret, and JSON text only when it
 * has no backslash either; JSON
 * text that parses comes back as JSON none of whose strings and keys holds
 * a secret. */
#include "secrets.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_secret(const secret_set *s, const char *p, size_t n)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strchr(s->v[i], '*') && memmem(p, n, s->v[i], strlen(s->v[i])))
            return true;
    return false;
}

static void check_tree(const secret_set *s, json_t *v)
{
    if (json_is_string(v) && has_secret(s, json_string_value(v), json_string_length(v)))
        abort();
    const char *k;
    json_t *e;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, k, e) {
            if (has_secret(s, k, strlen(k)))
                abort();
            check_tree(s, e);
        }
    }
    if (json_is_array(v))
        json_array_foreach(v, i, e)
            check_tree(s, e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    secret_set s = { 0 };
    for (int n = 0; n < 8 && p < end; n++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        if (nl == p) {          /* the empty line: the text follows */
            p++;
            break;
        }
        char *sec = strndup(p, (size_t)(nl - p));
        secrets_add(&s, sec);
        free(sec);
        p = nl + 1;
    }
    size_t tl = (size_t)(end - p);

    char *text = strndup(p, tl);
    char *c = secrets_scrub_copy(&s, text);
    if (has_secret(&s, c, strlen(c)))
        abort();
    json_t *probe = json_stringn(text, strlen(text));       /* NULL: not UTF-8 */
    json_t *after = json_stringn(c, strlen(c));
    if (probe && !after)
        abort();
    json_decref(probe);
    json_decref(after);
    free(c);
    free(text);

    size_t ol = 0;
    char *j = secrets_scrub_json_text(&s, p, tl, &ol);
    if (!j) {
        if (secrets_in(&s, p, tl))
            abort();
        json_t *in = s.n && memchr(p, '\\', tl)
                     ? json_loadb(p, tl, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
        if (in)
            abort();            /* JSON with an escape is always re-written */
    } else {
        json_t *in = json_loadb(p, tl, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        json_t *out = json_loadb(j, ol, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (in && !out)
            abort();
        if (out && ol != strlen(j))
            abort();            /* JSON written back: no NUL inside */
        if (out)
            check_tree(&s, out);
        else if (has_secret(&s, j, ol))
            abort();
        json_decref(in);
        json_decref(out);
        free(j);
    }
    secrets_clear(&s);
    return 0;
}
