/* module_validate.c - validates a binary module's arguments against its
 * mod_spec the way Ansible's ArgumentSpecValidator does: aliases, unknown
 * parameters, environment fallbacks, mutually_exclusive, defaults, required,
 * types and choices, required_together, required_one_of, then sub-options of
 * dicts and lists of dicts, recursively.  Also collects no_log values and
 * masks them for invocation.module_args.
 */
#include "module_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_LOG_MASK "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"

/* ------------------------------------------------------------ name lists */

typedef struct {
    const char **v;
    size_t n, cap;
} names;

static void names_add(names *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        const char **nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            abort();
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted, joined with sep; malloc'd. */
static char *names_join(names *l, const char *sep, bool sort)
{
    if (sort && l->n)
        qsort(l->v, l->n, sizeof *l->v, cmp_str);
    size_t len = 1, sl = strlen(sep);
    for (size_t i = 0; i < l->n; i++)
        len += strlen(l->v[i]) + sl;
    char *r = malloc(len);
    if (!r)
        abort();
    r[0] = '\0';
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            strcat(r, sep);
        strcat(r, l->v[i]);
    }
    return r;
}

static char *list_join(const char *const *v, const char *sep)
{
    names l = { 0 };
    for (; v && *v; v++)
        names_add(&l, *v);
    char *r = names_join(&l, sep, false);
    free(l.v);
    return r;
}

/* ------------------------------------------------------------ helpers */

static const mod_opt *find_opt(const mod_opt *opts, const char *key)
{
    for (const mod_opt *o = opts; o->name; o++) {
        if (strcmp(o->name, key) == 0)
            return o;
        for (const char *const *a = o->aliases; a && *a; a++)
            if (strcmp(*a, key) == 0)
                return o;
    }
    return NULL;
}

static const mod_opt *find_name(const mod_opt *opts, const char *name)
{
    for (const mod_opt *o = opts; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

/* present = given and not null */
static bool present(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    return v && !json_is_null(v);
}

/* " found in x" or "" (malloc'd) */
static char *found_in(const char *where)
{
    return where ? xfmt(" found in %s", where) : strdup("");
}

/* Value's text for comparing with choices; NULL for lists/dicts/null. */
static char *choice_text(const json_t *v)
{
    if (json_is_boolean(v))
        return strdup(json_is_true(v) ? "true" : "false");
    return mp_scalar_str(v);
}

static bool in_choices(const json_t *v, const char *const *choices)
{
    char *t = choice_text(v);
    bool ok = false;
    for (const char *const *c = choices; t && *c && !ok; c++) {
        ok = strcmp(*c, t) == 0;
        if (!ok && json_is_boolean(v))   /* True/False spelled like Python */
            ok = strcmp(*c, json_is_true(v) ? "True" : "False") == 0;
    }
    free(t);
    return ok;
}

/* ------------------------------------------------------------ no_log values */

/* Walks raw (unvalidated) input along the spec, remembering no_log values so
 * that any message built before validation finishes is scrubbed too. */
static void collect_raw(module *m, const mod_opt *opts, json_t *in)
{
    if (!json_is_object(in))
        return;
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v) {
        const mod_opt *o = find_opt(opts, key);
        if (!o)
            continue;
        if (o->no_log) {
            mp_add_secret_values(m, v);
        } else if (o->suboptions) {
            if (json_is_object(v)) {
                collect_raw(m, o->suboptions, v);
            } else if (json_is_array(v)) {
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e)
                    collect_raw(m, o->suboptions, e);
            }
        }
    }
}

void mp_mask(const mod_opt *opts, json_t *params)
{
    if (!opts || !json_is_object(params))
        return;
    for (const mod_opt *o = opts; o->name; o++) {
        json_t *v = json_object_get(params, o->name);
        if (!v || json_is_null(v))
            continue;
        if (o->no_log) {
            json_object_set_new(params, o->name, json_string(NO_LOG_MASK));
        } else if (o->suboptions) {
            if (json_is_object(v)) {
                mp_mask(o->suboptions, v);
            } else if (json_is_array(v)) {
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e)
                    mp_mask(o->suboptions, e);
            }
        }
    }
}

/* ------------------------------------------------------------ groups */

static int check_groups(vctx *c, const mod_spec *spec, json_t *given)
{
    for (const char *const *const *g = spec->mutually_exclusive; g && *g; g++) {
        size_t count = 0;
        for (const char *const *n = *g; *n; n++)
            count += present(given, *n);
        if (count > 1) {
            char *j = list_join(*g, "|");
            vc_error(c, "parameters are mutually exclusive: %s", j);
            free(j);
            return -1;
        }
    }
    return 0;
}

static int check_late_groups(vctx *c, const mod_spec *spec, json_t *given)
{
    for (const char *const *const *g = spec->required_together; g && *g; g++) {
        size_t count = 0, n = 0;
        for (const char *const *p = *g; *p; p++, n++)
            count += present(given, *p);
        if (count && count != n) {
            char *j = list_join(*g, ", ");
            vc_error(c, "parameters are required together: %s", j);
            free(j);
            return -1;
        }
    }
    for (const char *const *const *g = spec->required_one_of; g && *g; g++) {
        size_t count = 0;
        for (const char *const *p = *g; *p; p++)
            count += present(given, *p);
        if (!count) {
            char *j = list_join(*g, ", ");
            vc_error(c, "one of the following is required: %s", j);
            free(j);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ one level */

static int validate_level(vctx *c, const mod_opt *opts, const mod_spec *spec,
                          json_t *in, json_t **out, const char *where);

/* Aliases and unknown keys: builds `given` (canonical names). */
static int gather(vctx *c, const mod_opt *opts, json_t *in, json_t *given,
                  const char *where, bool top)
{
    for (const mod_opt *o = opts; o->name; o++) {
        json_t *v = json_object_get(in, o->name);
        for (const char *const *a = o->aliases; a && *a; a++) {
            json_t *av = json_object_get(in, *a);
            if (!av)
                continue;
            if (v)   /* as Ansible: warn, the alias wins */
                mod_warn(c->m, "Both option %s and its alias %s are set.", o->name, *a);
            v = av;
        }
        if (v)
            json_object_set(given, o->name, v);
    }
    names unknown = { 0 };
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v) {
        if (top && strncmp(key, "_ansible_", 9) == 0)
            continue;
        if (!find_opt(opts, key))
            names_add(&unknown, key);
    }
    if (!unknown.n || c->ignore_unknown) {
        free(unknown.v);
        return 0;
    }
    char *bad = names_join(&unknown, ", ", true);
    names sup = { 0 };
    size_t nopts = 0;
    for (const mod_opt *o = opts; o->name; o++)
        nopts++;
    char **owned = calloc(nopts + 1, sizeof *owned);
    size_t nowned = 0;
    for (const mod_opt *o = opts; o->name; o++) {
        if (o->aliases && o->aliases[0] && owned) {
            char *al = list_join(o->aliases, ", ");
            owned[nowned] = xfmt("%s (%s)", o->name, al);
            free(al);
            names_add(&sup, owned[nowned++]);
        } else {
            names_add(&sup, o->name);
        }
    }
    char *good = names_join(&sup, ", ", true);
    char *fi = found_in(where);
    vc_error(c, "Unsupported parameters for (%s) module: %s%s. Supported parameters include: %s.",
             c->modname, bad, fi, good);
    free(fi);
    free(good);
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    free(owned);
    free(sup.v);
    free(bad);
    free(unknown.v);
    return -1;
}

static int apply_defaults(vctx *c, const mod_opt *opts, json_t *given)
{
    for (const mod_opt *o = opts; o->name; o++) {
        if (present(given, o->name) || !o->def)
            continue;
        json_error_t e;
        json_t *d = json_loads(o->def, JSON_DECODE_ANY, &e);
        if (!d)
            return vc_error(c, "module spec error: the default of '%s' is not JSON text: %s",
                            o->name, e.text);
        json_object_set_new(given, o->name, d);
    }
    return 0;
}

static int check_required(vctx *c, const mod_opt *opts, json_t *given, const char *where)
{
    names missing = { 0 };
    for (const mod_opt *o = opts; o->name; o++)
        if (o->required && !present(given, o->name))
            names_add(&missing, o->name);
    if (!missing.n)
        return 0;
    char *j = names_join(&missing, ", ", true);
    char *fi = found_in(where);
    vc_error(c, "missing required arguments: %s%s", j, fi);
    free(fi);
    free(j);
    free(missing.v);
    return -1;
}

/* Converts and checks choices of one option's value into *out. */
static int convert_opt(vctx *c, const mod_opt *o, json_t *v, json_t **out, const char *where)
{
    char *fi = found_in(where);
    char *what = xfmt("argument '%s'", o->name);
    int rc = mp_convert(c, o->type, v, out, what, fi, o->no_log);
    free(what);
    if (rc == 0 && o->type == OPT_LIST && o->elements) {
        json_t *conv = json_array();
        char *ewhat = xfmt("Elements value for option '%s'", o->name);
        size_t i;
        json_t *e;
        json_array_foreach(*out, i, e) {
            json_t *ce = NULL;
            if (mp_convert(c, o->elements, e, &ce, ewhat, fi, o->no_log) != 0) {
                rc = -1;
                break;
            }
            json_array_append_new(conv, ce);
        }
        free(ewhat);
        json_decref(*out);
        *out = conv;
    }
    if (rc == 0 && o->choices) {
        char *allowed = list_join(o->choices, ", ");
        if (json_is_array(*out)) {
            names bad = { 0 };
            char **texts = calloc(json_array_size(*out) + 1, sizeof *texts);
            size_t i, nt = 0;
            json_t *e;
            json_array_foreach(*out, i, e) {
                if (!in_choices(e, o->choices)) {
                    texts[nt] = choice_text(e);
                    names_add(&bad, texts[nt] ? texts[nt] : "(list or dict)");
                    nt++;
                }
            }
            if (bad.n) {
                char *j = o->no_log ? strdup("(value hidden: no_log)") : names_join(&bad, ", ", false);
                rc = vc_error(c, "value of %s must be one or more of: %s. Got no match for: %s%s",
                              o->name, allowed, j, fi);
                free(j);
            }
            for (size_t k = 0; k < nt; k++)
                free(texts[k]);
            free(texts);
            free(bad.v);
        } else if (!in_choices(*out, o->choices)) {
            char *t = choice_text(*out);
            if (o->no_log || !t)
                rc = vc_error(c, "value of %s must be one of: %s, got a value that is not "
                              "among them%s", o->name, allowed, fi);
            else
                rc = vc_error(c, "value of %s must be one of: %s, got: %s%s",
                              o->name, allowed, t, fi);
            free(t);
        }
        free(allowed);
    }
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    free(fi);
    return rc;
}

/* Validates the sub-options of a dict option (or each dict of a list). */
static int validate_sub(vctx *c, const mod_opt *o, json_t *params, const char *where)
{
    json_t *v = json_object_get(params, o->name);
    if (!o->suboptions || !v || json_is_null(v))
        return 0;
    if (json_is_object(v)) {
        char *w = where ? xfmt("%s -> %s", where, o->name) : strdup(o->name);
        json_t *nv = NULL;
        int rc = validate_level(c, o->suboptions, NULL, v, &nv, w);
        free(w);
        if (rc == 0)
            json_object_set_new(params, o->name, nv);
        return rc;
    }
    if (!json_is_array(v))
        return 0;
    json_t *arr = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        char *w = where ? xfmt("%s -> %s[%zu]", where, o->name, i)
                        : xfmt("%s[%zu]", o->name, i);
        json_t *ne = NULL;
        int rc = json_is_object(e) ? validate_level(c, o->suboptions, NULL, e, &ne, w)
                                   : vc_error(c, "Elements value for option '%s' is of type %s "
                                              "and we were unable to convert to dict: "
                                              "sub-options need a dict found in %s",
                                              o->name, mp_type_name(e), w);
        free(w);
        if (rc != 0) {
            json_decref(arr);
            return -1;
        }
        json_array_append_new(arr, ne);
    }
    json_object_set_new(params, o->name, arr);
    return 0;
}

static int validate_level(vctx *c, const mod_opt *opts, const mod_spec *spec,
                          json_t *in, json_t **out, const char *where)
{
    bool top = spec != NULL;
    json_t *given = json_object();
    json_t *res = json_object();
    *out = NULL;
    if (gather(c, opts, in, given, where, top) != 0)
        goto fail;
    for (const mod_opt *o = opts; o->name; o++) {
        const char *ev;
        if (!present(given, o->name) && o->env_fallback && (ev = getenv(o->env_fallback)))
            json_object_set_new(given, o->name, json_string(ev));
    }
    if (top && check_groups(c, spec, given) != 0)
        goto fail;
    if (apply_defaults(c, opts, given) != 0 || check_required(c, opts, given, where) != 0)
        goto fail;
    for (const mod_opt *o = opts; o->name; o++) {
        json_t *v = json_object_get(given, o->name), *cv = NULL;
        if (!v || json_is_null(v)) {
            json_object_set_new(res, o->name, json_null());
            continue;
        }
        if (convert_opt(c, o, v, &cv, where) != 0)
            goto fail;
        if (o->no_log)
            mp_add_secret_values(c->m, cv);
        json_object_set_new(res, o->name, cv);
    }
    if (top && check_late_groups(c, spec, res) != 0)
        goto fail;
    for (const mod_opt *o = opts; o->name; o++)
        if (validate_sub(c, o, res, where) != 0)
            goto fail;
    json_decref(given);
    *out = res;
    return 0;
fail:
    json_decref(given);
    json_decref(res);
    return -1;
}

/* Mistakes in a spec that Ansible also refuses (AnsibleModule raises an
 * internal error for them); checked recursively through sub-options. */
static int check_spec(vctx *c, const mod_opt *opts)
{
    for (const mod_opt *o = opts; o->name; o++) {
        if (o->required && o->def)
            return vc_error(c, "module spec error: option '%s' is required and has a default",
                            o->name);
        for (const char *const *a = o->aliases; a && *a; a++) {
            const mod_opt *other = find_opt(opts, *a);
            if (other != o || find_name(opts, *a))
                return vc_error(c, "module spec error: alias '%s' of option '%s' is also "
                                "the name or alias of another option", *a, o->name);
        }
        if (o->suboptions && check_spec(c, o->suboptions) != 0)
            return -1;
    }
    return 0;
}

int mp_validate(vctx *c, const mod_spec *spec, json_t *args, json_t **out)
{
    static const mod_opt none[] = { { 0 } };
    const mod_opt *opts = spec->opts ? spec->opts : none;
    /* sanity of the spec itself: groups must name declared options */
    const char *const *const *groups[] = { spec->mutually_exclusive, spec->required_together,
                                           spec->required_one_of };
    for (size_t k = 0; k < 3; k++)
        for (const char *const *const *g = groups[k]; g && *g; g++)
            for (const char *const *n = *g; *n; n++)
                if (!find_name(opts, *n))
                    return vc_error(c, "module spec error: group names unknown option '%s'", *n);
    if (check_spec(c, opts) != 0)
        return -1;
    collect_raw(c->m, opts, args);
    return validate_level(c, opts, spec, args, out, NULL);
}
