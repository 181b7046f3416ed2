/* module.c - the Ansible binary-module runtime (see module.h): reads the
 * arguments file, handles the _ansible_* control keys, builds the one JSON
 * result (masked, scrubbed) and prints it as the only thing on stdout.
 * Result building (set, changed, diff, warnings) is in module_result.c,
 * type conversions in module_types.c, remembering no_log values in
 * module_scrub.c (the masking rules are lib/base/secrets.c's), validation in
 * module_validate.c; this file uses them all and none of them uses it
 * (module_priv.h: the order).  Raw members (mod_set_raw) are written after
 * the rest of the result through a buffered writer (mod_out).
 */
#include "module_priv.h"
#include "xstr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Where the result goes: the real stdout, saved by mod_init before fd 1 is
 * pointed at stderr (so stray prints, and children, never corrupt it). */
static int result_fd = -1;

/* Lenient bool for control keys (Ansible always sends real booleans). */
static bool ctl_bool(json_t *args, const char *key)
{
    json_t *v = json_object_get(args, key);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        return !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1");
    }
    return json_is_true(v) || (json_is_integer(v) && json_integer_value(v) != 0);
}

/* ------------------------------------------------------------ parsing */

int mod_parse(module *m, const mod_spec *spec, json_t *args, char **err)
{
    memset(m, 0, sizeof *m);
    m->spec = spec;
    m->result = json_object();
    if (err)
        *err = NULL;

    const char *name = json_string_value(json_object_get(args, "_ansible_module_name"));
    const char *sname = spec && spec->name ? spec->name : "unknown";
    m->fqcn = name && *name ? strdup(name)
              : strchr(sname, '.') ? strdup(sname) : xfmt("ocpv.dr.%s", sname);
    m->check_mode = ctl_bool(args, "_ansible_check_mode");
    m->diff_mode = ctl_bool(args, "_ansible_diff");
    m->no_log = ctl_bool(args, "_ansible_no_log");
    m->inject_invocation = !json_object_get(args, "_ansible_inject_invocation")
                           || ctl_bool(args, "_ansible_inject_invocation");
    json_t *verb = json_object_get(args, "_ansible_verbosity");
    m->verbosity = json_is_integer(verb) ? (int)json_integer_value(verb) : 0;

    vctx c = { .m = m, .modname = m->fqcn,
               .ignore_unknown = ctl_bool(args, "_ansible_ignore_unknown_opts") };
    const char *conv = json_string_value(json_object_get(args, "_ansible_string_conversion_action"));
    c.conv = conv && !strcmp(conv, "ignore") ? CONV_IGNORE
             : conv && !strcmp(conv, "error") ? CONV_ERROR : CONV_WARN;

    int rc;
    if (!spec)
        rc = vc_error(&c, "module spec error: no spec given");
    else if (!json_is_object(args))
        rc = vc_error(&c, "module arguments must be a JSON object, got %s", mp_type_name(args));
    else
        rc = mp_validate(&c, spec, args, &m->params);
    if (rc != 0) {
        json_t *msg = json_string(c.err ? c.err : "argument validation failed");
        secrets_scrub_json(&m->secrets, msg);
        if (err)
            *err = strdup(json_string_value(msg));
        json_decref(msg);
        free(c.err);
        json_decref(m->params);
        m->params = NULL;
        return -1;
    }
    return 0;
}

/* Points fd 1 at stderr and keeps the real stdout for the result only. */
static void guard_stdout(void)
{
    if (result_fd >= 0)
        return;
    fflush(stdout);
    result_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (result_fd < 0)
        return;
    if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, STDOUT_FILENO);
            close(null);
        }
    }
}

/* Reads the arguments file without ever echoing its content (it holds
 * secrets): jansson's "near '<text>'" is cut from parse errors. */
static json_t *load_args(const char *path, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = xfmt("cannot read the module arguments file '%s': %s", path, strerror(errno));
        return NULL;
    }
    json_error_t e;
    json_t *v = json_loadf(f, 0, &e);
    fclose(f);
    if (!v) {
        char *near = strstr(e.text, " near ");
        if (near)
            *near = '\0';
        *err = xfmt("the module arguments file '%s' is not a valid JSON object "
                      "(line %d, column %d): %s", path, e.line, e.column, e.text);
    }
    return v;
}

void mod_init(module *m, const mod_spec *spec, int argc, char **argv)
{
    guard_stdout();
    char *err = NULL;
    json_t *args = NULL;
    if (argc < 2 || !argv[1] || !*argv[1])
        err = strdup("no module arguments file given: Ansible runs binary modules as "
                     "'<module> <arguments file>'");
    else
        args = load_args(argv[1], &err);
    if (!args) {
        memset(m, 0, sizeof *m);
        m->spec = spec;
        m->result = json_object();
    } else if (mod_parse(m, spec, args, &err) != 0 && !err) {
        err = strdup("argument validation failed");
    }
    json_decref(args);
    if (err) {   /* invocation is not shown for invalid input (params NULL) */
        mod_set(m, "failed", json_true());
        mod_set(m, "msg", json_string(err));
        free(err);
        mod_exit(m);
    }
    if (m->check_mode && !spec->supports_check_mode) {
        mod_set(m, "skipped", json_true());
        mod_set(m, "msg", json_sprintf("remote module (%s) does not support check mode", m->fqcn));
        mod_exit(m);
    }
}

void mod_free(module *m)
{
    json_decref(m->params);
    json_decref(m->result);
    secrets_clear(&m->secrets);
    for (size_t i = 0; i < m->nraw; i++) {
        if (m->raw[i].release)
            m->raw[i].release(m->raw[i].ctx);
        free(m->raw[i].key);
    }
    free(m->raw);
    free(m->fqcn);
    m->params = m->result = NULL;
    m->raw = NULL;
    m->nraw = 0;
    m->fqcn = NULL;
}

/* ------------------------------------------------------------ accessors */

json_t *mod_param(const module *m, const char *name)
{
    json_t *v = m->params ? json_object_get(m->params, name) : NULL;
    return json_is_null(v) ? NULL : v;
}

const char *mod_str(const module *m, const char *name)
{
    return json_string_value(mod_param(m, name));
}

bool mod_bool(const module *m, const char *name)
{
    return json_is_true(mod_param(m, name));
}

long long mod_int(const module *m, const char *name)
{
    json_t *v = mod_param(m, name);
    return json_is_integer(v) ? json_integer_value(v) : (long long)json_number_value(v);
}

double mod_float(const module *m, const char *name)
{
    return json_number_value(mod_param(m, name));
}

const char *mod_dict_str(json_t *dict, const char *name)
{
    return json_is_object(dict) ? json_string_value(json_object_get(dict, name)) : NULL;
}

/* Builds the final result.  steal: take m->result itself instead of a deep
 * copy (mod_exit / mod_fail, which print it and exit: a large result, e.g.
 * oadp_parse's object lists, is not copied once more). */
static json_t *render(module *m, bool failed, const char *msg, bool steal)
{
    json_t *r;
    if (steal && m->result) {
        r = m->result;
        m->result = NULL;
    } else {
        r = m->result ? json_deep_copy(m->result) : json_object();
    }
    if (!json_is_boolean(json_object_get(r, "changed")))
        json_object_set_new(r, "changed", json_false());
    json_object_set_new(r, "failed", json_boolean(failed));
    if (msg)
        json_object_set_new(r, "msg", json_string(msg));
    if (!m->diff_mode || m->no_log)
        json_object_del(r, "diff");
    json_object_del(r, "invocation");
    if (!m->no_log && m->inject_invocation && m->params) {
        json_t *args = json_deep_copy(m->params);
        mp_mask(m->spec ? m->spec->opts : NULL, args);
        json_object_set_new(r, "invocation", json_pack("{so}", "module_args", args));
    }
    for (size_t i = 0; i < m->nraw; i++)
        json_object_del(r, m->raw[i].key);
    secrets_scrub_json(&m->secrets, r);
    return r;
}

/* ------------------------------------------------------------ output */

/* The result's writer: buffered writes to fd, or (fd < 0) a growing memory
 * buffer for mod_render. */
struct mod_out {
    const module *m;
    int fd;
    char *b;
    size_t n, cap;
    bool bad;
};

static void out_write(mod_out *o, const char *p, size_t len)
{
    while (len > 0 && !o->bad) {
        ssize_t w = write(o->fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            o->bad = true;
            break;
        }
        p += w;
        len -= (size_t)w;
    }
}

static void out_flush(mod_out *o)
{
    if (o->fd >= 0) {
        out_write(o, o->b, o->n);
        o->n = 0;
    }
}

void mod_out_raw(mod_out *o, const char *p, size_t len)
{
    if (o->fd < 0) {                          /* memory */
        if (xgrow(&o->b, &o->cap, o->n + len + 1) != 0)
            abort();
        memcpy(o->b + o->n, p, len);
        o->n += len;
        o->b[o->n] = '\0';
        return;
    }
    if (o->n + len > o->cap)
        out_flush(o);
    if (len >= o->cap) {
        out_write(o, p, len);
        return;
    }
    memcpy(o->b + o->n, p, len);
    o->n += len;
}

void mod_out_json(mod_out *o, const char *text, size_t len)
{
    size_t cl;
    char *clean = secrets_scrub_json_text(&o->m->secrets, text, len, &cl);
    if (clean) {
        mod_out_raw(o, clean, cl);
        free(clean);
    } else {
        mod_out_raw(o, text, len);
    }
}

void mod_out_value(mod_out *o, json_t *v)
{
    secrets_scrub_json(&o->m->secrets, v);
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (!t)
        abort();
    mod_out_raw(o, t, strlen(t));
    free(t);
}

void mod_set_raw(module *m, const char *key, mod_raw_fn fn, void *ctx, void (*release)(void *ctx))
{
    struct mod_raw *nr = realloc(m->raw, (m->nraw + 1) * sizeof *nr);
    char *k = strdup(key);
    if (!nr || !k)
        abort();
    m->raw = nr;
    m->raw[m->nraw++] = (struct mod_raw){ .key = k, .fn = fn, .ctx = ctx, .release = release };
}

/* Writes raw member i's value into a memory buffer and parses it. */
static json_t *raw_value(module *m, size_t i)
{
    mod_out o = { .m = m, .fd = -1 };
    m->raw[i].fn(&o, m->raw[i].ctx);
    json_error_t e;
    json_t *v = o.b ? json_loadb(o.b, o.n, JSON_DECODE_ANY, &e) : NULL;
    free(o.b);
    if (!v) {
        fprintf(stderr, "raw member %s is not valid JSON\n", m->raw[i].key);
        abort();    /* the module's bug: its output would be unreadable */
    }
    return v;
}

json_t *mod_render(module *m, bool failed, const char *msg)
{
    json_t *r = render(m, failed, msg, false);
    for (size_t i = 0; i < m->nraw; i++) {
        json_t *k = json_string(m->raw[i].key);
        secrets_scrub_json(&m->secrets, k);
        json_object_set_new(r, json_string_value(k), raw_value(m, i));
        json_decref(k);
    }
    return r;
}

/* Writes the whole line to the saved stdout (or fd 1 outside mod_init):
 * the rendered result, its raw members before the closing brace. */
static void emit(module *m, json_t *r)
{
    char *s = json_dumps(r, JSON_COMPACT);
    mod_out o = { .m = m, .fd = result_fd >= 0 ? result_fd : STDOUT_FILENO };
    fflush(stdout);
    size_t len = s ? strlen(s) : 0;
    if (len < 2 || s[len - 1] != '}') {
        free(s);
        return;
    }
    if (m->nraw) {
        o.cap = 1 << 20;
        o.b = malloc(o.cap);
        if (!o.b)
            abort();
    }
    out_write(&o, s, len - 1);
    for (size_t i = 0; i < m->nraw; i++) {
        if (i || len > 2)
            mod_out_raw(&o, ",", 1);
        mod_out_value(&o, json_string(m->raw[i].key));
        mod_out_raw(&o, ":", 1);
        m->raw[i].fn(&o, m->raw[i].ctx);
    }
    out_flush(&o);
    out_write(&o, "}\n", 2);
    free(o.b);
    free(s);
}

noreturn void mod_exit(module *m)
{
    bool failed = json_is_true(json_object_get(m->result, "failed"));
    json_t *r = render(m, failed, NULL, true);
    emit(m, r);
    json_decref(r);
    mod_free(m);
    exit(failed ? 1 : 0);
}

noreturn void mod_fail(module *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvfmt(fmt, ap);
    va_end(ap);
    json_t *r = render(m, true, msg, true);
    free(msg);
    emit(m, r);
    json_decref(r);
    mod_free(m);
    exit(1);
}
