/* fuzz_label_selector.c - libFuzzer target for the label selector
 * (lib/k8s/label_selector.c: "a=b,c!=d,e in (x,y),f notin (z),g,!h", the
 * label_selector option of oadp_parse) and its matching.
 *
 * Input: the selector text up to the first newline; the rest is the labels
 * to match, as a JSON object when it parses as one, else as "key=value" lines.
 *
 * Checked beyond "no crash, no leak": a failed parse says why (and a success
 * leaves no message); matching is the same for labels that are not an object
 * and for no labels; the answer does not depend on the labels' order. */
#include "velero_backup.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *labels_from(const char *p, size_t n, bool reversed)
{
    json_t *o = json_loadb(p, n, 0, NULL);
    if (json_is_object(o) && !reversed)
        return o;
    if (json_is_object(o)) {   /* the same members, inserted in reverse order */
        json_t *r = json_object();
        const char **keys = calloc(json_object_size(o) + 1, sizeof *keys);
        size_t k = 0;
        const char *key;
        json_t *v;
        json_object_foreach(o, key, v)
            keys[k++] = key;
        while (k-- > 0)
            json_object_set(r, keys[k], json_object_get(o, keys[k]));
        free(keys);
        json_decref(o);
        return r;
    }
    json_decref(o);
    o = json_object();
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *eq = memchr(p, '=', (size_t)(le - p));
        char *key = strndup(p, (size_t)((eq ? eq : le) - p));
        json_t *val = eq ? json_stringn(eq + 1, (size_t)(le - eq - 1)) : json_null();
        if (key && val)
            json_object_set_new(o, key, val);   /* invalid UTF-8 keys are refused */
        else
            json_decref(val);
        free(key);
        p = le + 1;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t tl = nl ? (size_t)(nl - in) : size;
    char *text = strndup(in, tl);
    if (!text)
        return 0;
    const char *rest = nl ? nl + 1 : in + size;
    size_t rl = size - (size_t)(rest - in);

    char *err = NULL;
    vb_selector *s = vb_selector_parse(text, &err);
    if (!s == !err)
        abort();   /* a message exactly when it failed */
    if (s) {
        json_t *labels = labels_from(rest, rl, false), *rev = labels_from(rest, rl, true);
        json_t *none = json_object(), *str = json_string("x");
        if (vb_selector_match(s, labels) != vb_selector_match(s, rev))
            abort();
        if (vb_selector_match(s, none) != vb_selector_match(s, str) ||
            vb_selector_match(s, none) != vb_selector_match(s, NULL))
            abort();
        json_decref(labels);
        json_decref(rev);
        json_decref(none);
        json_decref(str);
    }
    vb_selector_free(s);
    free(err);
    free(text);
    return 0;
}
