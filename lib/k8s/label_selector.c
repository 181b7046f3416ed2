/* label_selector.c - Kubernetes label selectors ("a=b,c!=d,e in (x,y),
 * f notin (z),g,!h") parsed once and matched against metadata.labels. */
#include "label_selector.h"
#include "xstr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOT_EXISTS } sel_op;

typedef struct req {
    char *key;
    sel_op op;
    char **vals;
    size_t nvals;
} req;

struct vb_selector {
    req *reqs;
    size_t n;
};

void vb_selector_free(vb_selector *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->reqs[i].key);
        for (size_t j = 0; j < s->reqs[i].nvals; j++)
            free(s->reqs[i].vals[j]);
        free(s->reqs[i].vals);
    }
    free(s->reqs);
    free(s);
}

static bool tok_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '/';
}

static void skip_ws(const char **p)
{
    while (isspace((unsigned char)**p))
        (*p)++;
}

/* A key or value token; "" allowed for values (a=). malloc'd. */
static char *token(const char **p)
{
    skip_ws(p);
    const char *s = *p;
    while (tok_char(**p))
        (*p)++;
    return strndup(s, (size_t)(*p - s));
}

static bool word(const char **p, const char *w)
{
    size_t n = strlen(w);
    if (strncmp(*p, w, n) == 0 && !tok_char((*p)[n])) {
        *p += n;
        return true;
    }
    return false;
}

static int add_val(req *r, char *v)
{
    char **g = realloc(r->vals, (r->nvals + 1) * sizeof *g);
    if (!g) {
        free(v);
        return -1;
    }
    r->vals = g;
    r->vals[r->nvals++] = v;
    return 0;
}

static vb_selector *fail(vb_selector *s, char **err, const char *text, const char *p,
                         const char *what)
{
    xerr_set(err, "label_selector '%s': %s at offset %d", text, what, (int)(p - text));
    vb_selector_free(s);
    return NULL;
}

vb_selector *vb_selector_parse(const char *text, char **err)
{
    vb_selector *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    const char *p = text ? text : "";
    skip_ws(&p);
    if (!*p)
        return s;
    for (;;) {
        req *g = realloc(s->reqs, (s->n + 1) * sizeof *g);
        if (!g)
            return fail(s, err, text, p, "out of memory");
        s->reqs = g;
        req *r = &s->reqs[s->n];
        memset(r, 0, sizeof *r);
        s->n++;
        skip_ws(&p);
        bool neg = false;
        if (*p == '!') {
            neg = true;
            p++;
        }
        r->key = token(&p);
        if (!r->key || !*r->key)
            return fail(s, err, text, p, "expected a label key");
        skip_ws(&p);
        if (neg) {
            r->op = OP_NOT_EXISTS;
        } else if (*p == ',' || *p == '\0') {
            r->op = OP_EXISTS;
        } else if (p[0] == '!' && p[1] == '=') {
            p += 2;
            r->op = OP_NE;
        } else if (p[0] == '=' && p[1] == '=') {
            p += 2;
            r->op = OP_EQ;
        } else if (p[0] == '=') {
            p += 1;
            r->op = OP_EQ;
        } else if (word(&p, "in")) {
            r->op = OP_IN;
        } else if (word(&p, "notin")) {
            r->op = OP_NOTIN;
        } else {
            return fail(s, err, text, p, "expected =, ==, !=, in or notin");
        }
        if (r->op == OP_EQ || r->op == OP_NE) {
            if (add_val(r, token(&p)) != 0)
                return fail(s, err, text, p, "out of memory");
        } else if (r->op == OP_IN || r->op == OP_NOTIN) {
            skip_ws(&p);
            if (*p != '(')
                return fail(s, err, text, p, "expected '(' after in/notin");
            p++;
            for (;;) {
                if (add_val(r, token(&p)) != 0)
                    return fail(s, err, text, p, "out of memory");
                skip_ws(&p);
                if (*p == ',') {
                    p++;
                    continue;
                }
                if (*p == ')') {
                    p++;
                    break;
                }
                return fail(s, err, text, p, "expected ',' or ')' in the value list");
            }
        }
        skip_ws(&p);
        if (*p == '\0')
            break;
        if (*p != ',')
            return fail(s, err, text, p, "expected ',' between requirements");
        p++;
    }
    return s;
}

bool vb_selector_match(const vb_selector *s, json_t *labels)
{
    if (!s)
        return true;
    for (size_t i = 0; i < s->n; i++) {
        const req *r = &s->reqs[i];
        json_t *v = json_is_object(labels) ? json_object_get(labels, r->key) : NULL;
        const char *val = json_is_string(v) ? json_string_value(v) : NULL;
        bool in = false;
        for (size_t j = 0; val && j < r->nvals; j++)
            in = in || strcmp(val, r->vals[j]) == 0;
        bool ok;
        switch (r->op) {
        case OP_EQ: case OP_IN: ok = val && in; break;
        case OP_NE: case OP_NOTIN: ok = !val || !in; break;
        case OP_EXISTS: ok = v != NULL; break;
        default: ok = v == NULL; break;
        }
        if (!ok)
            return false;
    }
    return true;
}
