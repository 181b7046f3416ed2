/* jsonx.c - dotted-path access, canonical form and hashing for jansson values. */
#include "jsonx.h"
#include "xstr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Walks all but the last segment; returns the parent object and points *leaf
 * at the last segment (inside a caller-provided copy of path). */
static json_t *walk(json_t *root, char *p, char **leaf, bool create)
{
    json_t *cur = root;
    char *seg = p, *dot;
    while ((dot = strchr(seg, '.')) != NULL) {
        *dot = '\0';
        if (!json_is_object(cur))
            return NULL;
        json_t *next = json_object_get(cur, seg);
        if (!next && create) {
            next = json_object();
            if (json_object_set_new(cur, seg, next) != 0)
                return NULL;
        }
        if (!next)
            return NULL;
        cur = next;
        seg = dot + 1;
    }
    *leaf = seg;
    return json_is_object(cur) ? cur : NULL;
}

json_t *jx_get(json_t *root, const char *path)
{
    if (!root || !path)
        return NULL;
    size_t n = strlen(path);
    char buf[256];
    char *p = n < sizeof buf ? buf : malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, path, n + 1);
    char *leaf;
    json_t *parent = walk(root, p, &leaf, false);
    json_t *v = parent ? json_object_get(parent, leaf) : NULL;
    if (p != buf)
        free(p);
    return v;
}

const char *jx_str(json_t *root, const char *path)
{
    return json_string_value(jx_get(root, path));
}

const char *jx_str_or(json_t *root, const char *path, const char *fallback)
{
    const char *s = jx_str(root, path);
    return s ? s : fallback;
}

long long jx_int(json_t *root, const char *path, long long fallback)
{
    json_t *v = jx_get(root, path);
    return json_is_integer(v) ? json_integer_value(v) : fallback;
}

bool jx_bool(json_t *root, const char *path, bool fallback)
{
    json_t *v = jx_get(root, path);
    return json_is_boolean(v) ? json_is_true(v) : fallback;
}

int jx_set(json_t *root, const char *path, json_t *value)
{
    char *p = strdup(path), *leaf;
    json_t *parent = p ? walk(root, p, &leaf, true) : NULL;
    int rc = parent ? json_object_set_new(parent, leaf, value) : (json_decref(value), -1);
    free(p);
    return rc;
}

bool jx_del(json_t *root, const char *path)
{
    char *p = strdup(path), *leaf;
    json_t *parent = p ? walk(root, p, &leaf, false) : NULL;
    bool removed = parent && json_object_del(parent, leaf) == 0;
    free(p);
    return removed;
}

char *jx_canonical(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

json_t *jx_load_file(const char *path, char **err)
{
    json_error_t e;
    json_t *v = json_load_file(path, JSON_DECODE_ANY, &e);
    if (!v && err) {
        *err = NULL;
        xerr_set(err, "%s: line %d column %d: %s", path, e.line, e.column, e.text);
    }
    return v;
}

const char *jx_ref(json_t *obj, char *buf, size_t len)
{
    const char *ns = jx_str(obj, "metadata.namespace");
    const char *name = jx_str_or(obj, "metadata.name", "<no name>");
    if (ns && *ns)
        snprintf(buf, len, "%s/%s", ns, name);
    else
        snprintf(buf, len, "%s", name);
    return buf;
}
