/* module.c - the Ansible binary-module runtime (see module.h): reads the
 * arguments file, handles the _ansible_* control keys, builds the one JSON
 * result (masked, scrubbed) and prints it as the only thing on stdout.
 * Result building (set, changed, diff, warnings) is in module_result.c,
 * type conversions in module_types.c, no_log scrubbing in module_scrub.c,
 * validation in module_validate.c; this file uses them all and none of them
 * uses it (module_priv.h: the order).
 */
#include "module_priv.h"

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
              : strchr(sname, '.') ? strdup(sname) : mp_fmt("ocpv.dr.%s", sname);
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
        mod_scrub(msg, m->secrets, m->nsecrets);
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
        *err = mp_fmt("cannot read the module arguments file '%s': %s", path, strerror(errno));
        return NULL;
    }
    json_error_t e;
    json_t *v = json_loadf(f, 0, &e);
    fclose(f);
    if (!v) {
        char *near = strstr(e.text, " near ");
        if (near)
            *near = '\0';
        *err = mp_fmt("the module arguments file '%s' is not a valid JSON object "
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
    for (size_t i = 0; i < m->nsecrets; i++)
        free(m->secrets[i]);
    free(m->secrets);
    free(m->fqcn);
    m->params = m->result = NULL;
    m->secrets = NULL;
    m->nsecrets = 0;
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
    mod_scrub(r, m->secrets, m->nsecrets);
    return r;
}

json_t *mod_render(module *m, bool failed, const char *msg)
{
    return render(m, failed, msg, false);
}

int mod_result_fd(void)
{
    return result_fd >= 0 ? result_fd : STDOUT_FILENO;
}

/* Writes the whole line to the saved stdout (or fd 1 outside mod_init). */
static void emit(json_t *r)
{
    char *s = json_dumps(r, JSON_COMPACT);
    int fd = result_fd >= 0 ? result_fd : STDOUT_FILENO;
    fflush(stdout);
    if (s) {
        size_t len = strlen(s), off = 0;
        s[len] = '\0';
        while (off < len) {
            ssize_t w = write(fd, s + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        while (write(fd, "\n", 1) < 0 && errno == EINTR)
            ;
    }
    free(s);
}

noreturn void mod_exit(module *m)
{
    bool failed = json_is_true(json_object_get(m->result, "failed"));
    json_t *r = render(m, failed, NULL, true);
    emit(r);
    json_decref(r);
    mod_free(m);
    exit(failed ? 1 : 0);
}

noreturn void mod_fail(module *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = mp_vfmt(fmt, ap);
    va_end(ap);
    json_t *r = render(m, true, msg, true);
    free(msg);
    emit(r);
    json_decref(r);
    mod_free(m);
    exit(1);
}
