/* module_result.c - building the binary-module result: return values,
 * changed, diff, warnings and deprecations (see module.h), and the runtime's
 * malloc'ing printf.  The bottom of the runtime: uses no other file of it
 * (module_priv.h: the order).
 */
#include "module_priv.h"
#include "xstr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------ results */

void mod_set(module *m, const char *key, json_t *value)
{
    if (!value)
        return;
    json_object_set_new(m->result, key, value);
}

void mod_changed(module *m, bool changed)
{
    json_object_set_new(m->result, "changed", json_boolean(changed));
}

void mod_diff(module *m, json_t *before, json_t *after)
{
    if (!m->diff_mode || m->no_log) {
        json_decref(before);
        json_decref(after);
        return;
    }
    json_t *d = json_object();
    json_object_set_new(d, "before", before ? before : json_string(""));
    json_object_set_new(d, "after", after ? after : json_string(""));
    json_object_set_new(m->result, "diff", d);
}

static void append_to(module *m, const char *key, json_t *item)
{
    json_t *list = json_object_get(m->result, key);
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(m->result, key, list);
    }
    json_array_append_new(list, item);
}

void mod_warn(module *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvfmt(fmt, ap);
    va_end(ap);
    append_to(m, "warnings", json_string(s));
    free(s);
}

void mod_deprecate(module *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvfmt(fmt, ap);
    va_end(ap);
    append_to(m, "deprecations", json_pack("{ss}", "msg", s));
    free(s);
}
