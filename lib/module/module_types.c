/* module_types.c - Ansible-compatible type conversions for the binary-module
 * runtime: what AnsibleModule's check_type_* functions accept for str, bool,
 * int, float, list (incl. comma-separated strings), dict (incl. JSON text and
 * key=value strings), path (~ and $VAR expanded) and raw.
 */
#include "module_priv.h"
#include "xstr.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ validation context */

int vc_error(vctx *c, const char *fmt, ...)
{
    if (!c->err) {
        va_list ap;
        va_start(ap, fmt);
        c->err = xvfmt(fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ------------------------------------------------------------ type names */

const char *mp_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return "str";
    case JSON_INTEGER: return "int";
    case JSON_REAL: return "float";
    case JSON_TRUE:
    case JSON_FALSE: return "bool";
    case JSON_ARRAY: return "list";
    case JSON_OBJECT: return "dict";
    default: return "null";
    }
}

const char *mp_opt_type_name(opt_type t)
{
    switch (t) {
    case OPT_STR: return "str";
    case OPT_BOOL: return "bool";
    case OPT_INT: return "int";
    case OPT_FLOAT: return "float";
    case OPT_LIST: return "list";
    case OPT_DICT: return "dict";
    case OPT_PATH: return "path";
    case OPT_RAW: return "raw";
    }
    return "raw";
}

/* Shortest text that reads back as the same double, Python style ("1.0"). */
static char *float_str(double d)
{
    char buf[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (!strpbrk(buf, ".eEn"))   /* n: inf/nan */
        strcat(buf, ".0");
    return strdup(buf);
}

char *mp_scalar_str(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return strdup(json_string_value(v));
    case JSON_INTEGER: return xfmt("%lld", (long long)json_integer_value(v));
    case JSON_REAL: return float_str(json_real_value(v));
    case JSON_TRUE: return strdup("True");
    case JSON_FALSE: return strdup("False");
    default: return NULL;
    }
}

/* Error helper: "<what> is of type T and we were unable to convert to W: why<where>". */
static int conv_error(vctx *c, const char *what, const json_t *v, opt_type t,
                      const char *why, const char *where)
{
    return vc_error(c, "%s is of type %s and we were unable to convert to %s: %s%s",
                    what, mp_type_name(v), mp_opt_type_name(t), why, where);
}

/* A short, quoted copy of a string for messages ('' for secrets). */
static char *quoted(const char *s, bool secret)
{
    if (secret)
        return strdup("the given value");
    if (strlen(s) > 60)
        return xfmt("'%.57s...'", s);
    return xfmt("'%s'", s);
}

static int to_str(vctx *c, json_t *v, json_t **out, const char *what,
                  const char *where, bool secret)
{
    if (json_is_string(v)) {
        *out = json_incref(v);
        return 0;
    }
    char *s = mp_scalar_str(v);
    if (!s)
        return conv_error(c, what, v, OPT_STR,
                          "lists and dicts are not converted to strings", where);
    if (c->conv != CONV_IGNORE) {
        char *msg;
        if (secret)
            msg = xfmt("The value of %s%s (type %s) in a string field was converted "
                         "to a string. If this does not look like what you expect, quote "
                         "the entire value to ensure it does not change.",
                         what, where, mp_type_name(v));
        else
            msg = xfmt("The value '%s' (type %s) in a string field was converted to "
                         "'%s' (type string). If this does not look like what you expect, "
                         "quote the entire value to ensure it does not change.",
                         s, mp_type_name(v), s);
        if (c->conv == CONV_ERROR) {
            vc_error(c, "%s%s", msg, secret ? "" : where);
            free(msg);
            free(s);
            return -1;
        }
        mod_warn(c->m, "%s", msg);
        free(msg);
    }
    *out = json_string(s);
    free(s);
    return 0;
}

static const char *const bool_true[] = { "y", "yes", "on", "1", "true", "t", NULL };
static const char *const bool_false[] = { "n", "no", "off", "0", "false", "f", NULL };

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(s, *list) == 0)
            return 1;
    return 0;
}

static int to_bool(vctx *c, json_t *v, json_t **out, const char *what,
                   const char *where, bool secret)
{
    int r = -1;
    if (json_is_boolean(v)) {
        r = json_is_true(v);
    } else if (json_is_integer(v) || json_is_real(v)) {
        double d = json_number_value(v);
        r = d == 1 ? 1 : d == 0 ? 0 : -1;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (isspace((unsigned char)*s))
            s++;
        size_t n = strlen(s);
        while (n && isspace((unsigned char)s[n - 1]))
            n--;
        char buf[8];
        if (n < sizeof buf) {
            memcpy(buf, s, n);
            buf[n] = '\0';
            r = in_list(buf, bool_true) ? 1 : in_list(buf, bool_false) ? 0 : -1;
        }
    }
    if (r < 0) {
        char *sv = json_is_string(v) ? quoted(json_string_value(v), secret) : NULL;
        char *why = xfmt("The value %s is not a valid boolean. Valid booleans include: "
                           "yes, on, 1, true, t, y, no, off, 0, false, f, n",
                           sv ? sv : "given");
        conv_error(c, what, v, OPT_BOOL, why, where);
        free(why);
        free(sv);
        return -1;
    }
    *out = json_boolean(r);
    return 0;
}

/* Trims ASCII space from both ends into a malloc'd copy. */
static char *trimmed(const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    char *t = xstr_trim(copy);
    if (t != copy)
        memmove(copy, t, strlen(t) + 1);
    return copy;
}

/* The conversion error for a string value that does not parse as `type`:
 * "'<value>' <problem>" (the value masked when secret).  Returns -1. */
static int bad_string(vctx *c, const char *what, json_t *v, opt_type type, const char *problem,
                      const char *where, bool secret)
{
    char *sv = quoted(json_string_value(v), secret);
    char *why = xfmt("%s %s", sv, problem);
    conv_error(c, what, v, type, why, where);
    free(why);
    free(sv);
    return -1;
}

static int to_int(vctx *c, json_t *v, json_t **out, const char *what,
                  const char *where, bool secret)
{
    if (json_is_integer(v)) {
        *out = json_incref(v);
        return 0;
    }
    if (json_is_boolean(v)) {            /* Python: bool is an int */
        *out = json_integer(json_is_true(v));
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9.2e18) {
            *out = json_integer((json_int_t)d);
            return 0;
        }
        return conv_error(c, what, v, OPT_INT, "it is not a whole number", where);
    }
    if (json_is_string(v)) {
        char *t = trimmed(json_string_value(v)), *end = NULL;
        errno = 0;
        long long n = t && *t ? strtoll(t, &end, 10) : 0;
        bool ok = t && *t && end && *end == '\0' && errno == 0;
        free(t);
        if (ok) {
            *out = json_integer(n);
            return 0;
        }
        return bad_string(c, what, v, OPT_INT, "is not a (64-bit) decimal integer", where, secret);
    }
    return conv_error(c, what, v, OPT_INT, "this type cannot be converted to an int", where);
}

static int to_float(vctx *c, json_t *v, json_t **out, const char *what,
                    const char *where, bool secret)
{
    if (json_is_real(v)) {
        *out = json_incref(v);
        return 0;
    }
    if (json_is_integer(v) || json_is_boolean(v)) {
        *out = json_real(json_is_boolean(v) ? json_is_true(v) : (double)json_integer_value(v));
        return 0;
    }
    if (json_is_string(v)) {
        char *t = trimmed(json_string_value(v)), *end = NULL;
        errno = 0;
        double d = t && *t ? strtod(t, &end) : 0;
        bool ok = t && *t && end && *end == '\0' && errno == 0 && isfinite(d);
        free(t);
        if (ok) {
            *out = json_real(d);
            return 0;
        }
        return bad_string(c, what, v, OPT_FLOAT, "is not a finite number", where, secret);
    }
    return conv_error(c, what, v, OPT_FLOAT, "this type cannot be converted to a float", where);
}

static int to_list(vctx *c, json_t *v, json_t **out, const char *what, const char *where)
{
    if (json_is_array(v)) {
        *out = json_incref(v);
        return 0;
    }
    if (json_is_string(v)) {          /* "a,b" -> ["a", "b"], no trimming (as Ansible) */
        json_t *a = json_array();
        const char *s = json_string_value(v);
        for (;;) {
            const char *comma = strchr(s, ',');
            size_t n = comma ? (size_t)(comma - s) : strlen(s);
            json_array_append_new(a, json_stringn(s, n));
            if (!comma)
                break;
            s = comma + 1;
        }
        *out = a;
        return 0;
    }
    if (json_is_number(v)) {
        char *s = mp_scalar_str(v);
        *out = json_pack("[s]", s);
        free(s);
        return 0;
    }
    return conv_error(c, what, v, OPT_LIST, "this type cannot be converted to a list", where);
}

/* Ansible's key=value parser: fields split on unquoted space/comma,
 * quotes group, backslash escapes; each field must hold '='. */
static json_t *parse_kv(const char *text)
{
    char *s = trimmed(text);
    size_t n = s ? strlen(s) : 0;
    char *buf = malloc(n + 1);
    json_t *obj = json_object();
    if (!s || !buf || !obj)
        goto fail;
    size_t len = 0;
    char quote = 0;
    bool esc = false;
    for (size_t i = 0; i <= n; i++) {
        char ch = s[i];
        bool end_field = ch == '\0';
        if (!end_field) {
            if (esc) {
                buf[len++] = ch;
                esc = false;
                continue;
            } else if (ch == '\\') {
                esc = true;
                continue;
            } else if (!quote && (ch == '\'' || ch == '"')) {
                quote = ch;
                continue;
            } else if (quote && ch == quote) {
                quote = 0;
                continue;
            } else if (!quote && (ch == ',' || ch == ' ')) {
                end_field = true;
            } else {
                buf[len++] = ch;
                continue;
            }
        }
        if (end_field && len) {
            buf[len] = '\0';
            char *eq = strchr(buf, '=');
            if (!eq)
                goto fail;
            *eq = '\0';
            json_object_set_new(obj, buf, json_string(eq + 1));
            len = 0;
        }
    }
    free(s);
    free(buf);
    return obj;
fail:
    free(s);
    free(buf);
    json_decref(obj);
    return NULL;
}

static int to_dict(vctx *c, json_t *v, json_t **out, const char *what, const char *where)
{
    if (json_is_object(v)) {
        *out = json_incref(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        json_t *d = NULL;
        if (s[0] == '{')
            d = json_loads(s, 0, NULL);
        else if (strchr(s, '='))
            d = parse_kv(s);
        if (json_is_object(d)) {
            *out = d;
            return 0;
        }
        json_decref(d);
        return conv_error(c, what, v, OPT_DICT,
                          "dictionary requested, could not parse JSON or key=value", where);
    }
    return conv_error(c, what, v, OPT_DICT, "this type cannot be converted to a dict", where);
}

/* Python os.path.expandvars: $NAME and ${NAME}; unknown ones stay as they are. */
static char *expand_vars(const char *s)
{
    size_t cap = strlen(s) + 1, len = 0;
    char *r = malloc(cap);
    if (!r)
        return NULL;
    while (*s) {
        const char *val = NULL, *next = s + 1;
        if (*s == '$') {
            const char *p = s + 1;
            bool brace = *p == '{';
            if (brace)
                p++;
            const char *q = p;
            while (isalnum((unsigned char)*q) || *q == '_')
                q++;
            if (q > p && (!brace || *q == '}')) {
                char name[256];
                size_t nl = (size_t)(q - p);
                if (nl < sizeof name) {
                    memcpy(name, p, nl);
                    name[nl] = '\0';
                    val = getenv(name);
                    if (val)
                        next = brace ? q + 1 : q;
                }
            }
        }
        const char *add = val ? val : s;
        size_t an = val ? strlen(val) : 1;
        if (len + an + 1 > cap) {
            cap = (len + an + 1) * 2;
            char *nr = realloc(r, cap);
            if (!nr) {
                free(r);
                return NULL;
            }
            r = nr;
        }
        memcpy(r + len, add, an);
        len += an;
        s = next;
    }
    r[len] = '\0';
    return r;
}

/* Python os.path.expanduser for "~" and "~/..." (from $HOME; "~user" is left
 * as it is: the passwd lookup does not work in statically linked modules). */
static char *expand_user(const char *s)
{
    const char *home = getenv("HOME");
    if (s[0] != '~' || (s[1] && s[1] != '/') || !home || !*home)
        return strdup(s);
    size_t hl = strlen(home);
    while (hl > 1 && home[hl - 1] == '/')
        hl--;
    return xfmt("%.*s%s", (int)hl, home, s + 1);
}

static int to_path(vctx *c, json_t *v, json_t **out, const char *what,
                   const char *where, bool secret)
{
    json_t *s = NULL;
    if (to_str(c, v, &s, what, where, secret) != 0)
        return -1;
    char *a = expand_vars(json_string_value(s));
    char *b = a ? expand_user(a) : NULL;
    json_decref(s);
    free(a);
    if (!b)
        return vc_error(c, "%s: out of memory%s", what, where);
    *out = json_string(b);
    free(b);
    return 0;
}

int mp_convert(vctx *c, opt_type t, json_t *v, json_t **out,
               const char *what, const char *where, bool secret)
{
    *out = NULL;
    switch (t) {
    case OPT_STR: return to_str(c, v, out, what, where, secret);
    case OPT_BOOL: return to_bool(c, v, out, what, where, secret);
    case OPT_INT: return to_int(c, v, out, what, where, secret);
    case OPT_FLOAT: return to_float(c, v, out, what, where, secret);
    case OPT_LIST: return to_list(c, v, out, what, where);
    case OPT_DICT: return to_dict(c, v, out, what, where);
    case OPT_PATH: return to_path(c, v, out, what, where, secret);
    case OPT_RAW:
    default:
        *out = json_incref(v);
        return 0;
    }
}
