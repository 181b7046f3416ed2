/* module.h - the Ansible binary-module runtime.
 *
 * Ansible runs a binary module as `<module> <args-file>`: argv[1] names a JSON
 * file holding the task's arguments plus `_ansible_*` control keys.  Ansible
 * neither validates nor masks the arguments of binary modules, so this runtime
 * does what AnsibleModule does for Python modules:
 *
 *   - validates the arguments against a declarative spec (types, required,
 *     defaults, choices, list element types, sub-options of dicts,
 *     mutually-exclusive / required-together groups, environment fallbacks),
 *     failing with a message that names the parameter;
 *   - honours _ansible_check_mode, _ansible_diff and _ansible_no_log and
 *     ignores every other _ansible_* key (each ansible-core release adds some);
 *   - builds one JSON result and prints it as the only thing on stdout:
 *     changed, failed, msg, diff, warnings, invocation.module_args (no_log
 *     values masked, suppressed entirely under _ansible_no_log, and left out
 *     when ansible-core >= 2.21 sends _ansible_inject_invocation=false),
 *     plus the module's own return values;
 *   - scrubs every no_log value from every string in the result (messages
 *     built from server errors can echo a token), by the rules of secrets.h;
 *   - exits 0 on success, 1 on failure.
 *
 * Typical use:
 *
 *   static const mod_opt opts[] = {
 *       { .name = "state", .type = OPT_STR, .def = "\"present\"",
 *         .choices = (const char *[]){ "present", "absent", NULL } },
 *       { .name = "api_key", .type = OPT_STR, .no_log = true,
 *         .env_fallback = "K8S_AUTH_API_KEY" },
 *       { 0 }
 *   };
 *   static const mod_spec spec = { .name = "example", .opts = opts,
 *                                  .supports_check_mode = true };
 *   int main(int argc, char **argv) {
 *       module m;
 *       mod_init(&m, &spec, argc, argv);      // exits with failed=true on bad input
 *       ...
 *       mod_exit(&m);                         // prints the result, exit(0)
 *   }
 *
 * Tests call mod_parse() directly with a json_t and get the error back.
 */
#ifndef OCPVDR_MODULE_H
#define OCPVDR_MODULE_H

#include "secrets.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdnoreturn.h>

typedef enum {
    OPT_STR = 1,   /* string; numbers and bools given for it are converted */
    OPT_BOOL,      /* true/false, also "yes"/"no"/"true"/"false"/"1"/"0"/"on"/"off" */
    OPT_INT,       /* integer; "42" is accepted */
    OPT_FLOAT,     /* number; "1.5" is accepted */
    OPT_LIST,      /* JSON array, or a comma-separated string; see .elements */
    OPT_DICT,      /* JSON object; see .suboptions */
    OPT_PATH,      /* string, with a leading ~ expanded */
    OPT_RAW,       /* anything, unvalidated */
} opt_type;

typedef struct mod_opt mod_opt;
struct mod_opt {
    const char *name;
    opt_type type;
    bool required;
    const char *def;                 /* default as JSON text ("true", "\"x\"", "[]"); NULL = none */
    const char *const *choices;      /* NULL-terminated; for OPT_STR and list elements */
    opt_type elements;               /* for OPT_LIST: element type (0 = any) */
    const mod_opt *suboptions;       /* for OPT_DICT (or list of dicts): nested spec, {0}-terminated */
    bool no_log;                     /* mask in invocation, scrub from all output */
    const char *env_fallback;        /* environment variable used when the option is absent */
    const char *const *aliases;      /* NULL-terminated other names accepted for this option */
};

typedef struct mod_spec {
    const char *name;                      /* module name, for messages */
    const mod_opt *opts;                   /* {0}-terminated */
    const char *const *const *mutually_exclusive; /* NULL-terminated list of NULL-terminated name groups */
    const char *const *const *required_together;
    const char *const *const *required_one_of;
    bool supports_check_mode;
} mod_spec;

typedef struct module {
    const mod_spec *spec;
    json_t *params;        /* validated parameters, defaults applied (owned) */
    json_t *result;        /* the result object being built (owned) */
    bool check_mode;       /* _ansible_check_mode */
    bool diff_mode;        /* _ansible_diff */
    bool no_log;           /* _ansible_no_log */
    int verbosity;         /* _ansible_verbosity */
    secret_set secrets;    /* no_log values to scrub from output (secrets.h) */
    char *fqcn;            /* name for messages: _ansible_module_name, else
                              "ocpv.dr.<spec name>" (owned) */
    struct mod_raw *raw;   /* raw members (mod_set_raw), in order */
    size_t nraw;
    bool inject_invocation; /* _ansible_inject_invocation (ansible-core 2.21+,
                              default false there); true when the key is
                              absent (older cores expect invocation) */
} module;

/* Validates `args` (borrowed) against `spec` into m.  Returns 0, or -1 with a
 * malloc'd message in *err naming the offending parameter (no_log values
 * already scrubbed from it).  Does not print.  Either way m is initialised
 * and must be released with mod_free. */
int mod_parse(module *m, const mod_spec *spec, json_t *args, char **err);

/* Reads argv[1], parses and validates it.  On any error prints a failed
 * result and exits 1.  Also exits (skipped) when check mode is requested and
 * the spec does not support it, as Ansible does. */
void mod_init(module *m, const mod_spec *spec, int argc, char **argv);

/* Releases everything mod_parse/mod_init allocated (valgrind-clean exits). */
void mod_free(module *m);

/* Parameter accessors (validated values; NULL/false/0 when absent). */
json_t     *mod_param(const module *m, const char *name);
const char *mod_str(const module *m, const char *name);
bool        mod_bool(const module *m, const char *name);
long long   mod_int(const module *m, const char *name);
double      mod_float(const module *m, const char *name);
/* Accessors on a sub-dict (e.g. a `source` connection dict). */
const char *mod_dict_str(json_t *dict, const char *name);

/* Result building.  mod_set steals `value`.  mod_diff records before/after
 * only when diff mode is on (and not no_log); it steals both. */
void mod_set(module *m, const char *key, json_t *value);
void mod_changed(module *m, bool changed);
void mod_diff(module *m, json_t *before, json_t *after);
void mod_warn(module *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mod_deprecate(module *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print the result (scrubbed) and exit 0 / exit 1 with failed=true. */
noreturn void mod_exit(module *m);
noreturn void mod_fail(module *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Renders the final result object without printing or exiting (tests). */
json_t *mod_render(module *m, bool failed, const char *msg);

/* ---- raw members: a very large part of the result written as JSON text.
 * A module whose result holds a large part it already has as JSON text
 * (oadp_parse: tens of thousands of objects read from a backup) adds it as a
 * raw member instead of building a tree of it.  When the result is printed
 * (mod_exit / mod_fail) the runtime writes the rest of the result as always
 * (masked, scrubbed), then each raw member in the order added as
 * ,"<key>":<value> - fn writes the value through the mod_out it is given,
 * once - then the closing brace.  A raw member replaces a member of the same
 * key set with mod_set.  mod_render (tests) parses the values back into the
 * object it returns.
 *
 * Nothing written through mod_out escapes the runtime's scrubbing:
 * mod_out_json and mod_out_value scrub what they write (secrets.h: a JSON
 * text that may hold a secret is parsed and written back scrubbed, any other
 * text is copied byte for byte); mod_out_raw is for JSON syntax the caller
 * vouches for (brackets, commas).  The caller keeps ctx alive until mod_free,
 * which calls release(ctx) when release is not NULL. */
typedef struct mod_out mod_out;
typedef void (*mod_raw_fn)(mod_out *o, void *ctx);
void mod_set_raw(module *m, const char *key, mod_raw_fn fn, void *ctx, void (*release)(void *ctx));
void mod_out_raw(mod_out *o, const char *text, size_t len);
void mod_out_json(mod_out *o, const char *text, size_t len);
/* Steals v. */
void mod_out_value(mod_out *o, json_t *v);

/* Registers a secret the module learned at run time (a key read from a
 * file): scrubbed from all output like a no_log parameter (secrets.h:
 * copied; empty strings and duplicates ignored). */
void mod_add_secret(module *m, const char *s);

#endif
