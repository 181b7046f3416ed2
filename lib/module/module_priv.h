/* module_priv.h - internals shared by the files of the binary-module runtime.
 * Modules never include it.  The files use each other in one direction only
 * (the build checks it: lib/meson.build, target lib-layers):
 *
 *   module_result.c    mod_set, mod_changed, mod_diff, mod_warn, ...
 *     ^ module_types.c     vc_error; Ansible-style type conversions (mp_convert)
 *       ^ module_scrub.c     no_log values: mp_add_secret*, mod_scrub
 *         ^ module_validate.c  spec validation (mp_validate), masking (mp_mask)
 *           ^ module.c           arguments file, _ansible_* keys, mod_parse,
 *                                rendering and printing the result
 */
#ifndef OCPVDR_MODULE_PRIV_H
#define OCPVDR_MODULE_PRIV_H

#include "module.h"

#include <stdarg.h>
#include <stddef.h>

/* A raw member (mod_set_raw). */
struct mod_raw {
    char *key;
    mod_raw_fn fn;
    void *ctx;
    void (*release)(void *ctx);
};

/* What a conversion may do with a non-string given for a string option
 * (_ansible_string_conversion_action). */
typedef enum { CONV_WARN = 0, CONV_IGNORE, CONV_ERROR } conv_action;

/* State of one validation run. */
typedef struct vctx {
    module *m;
    const char *modname;      /* FQCN for messages */
    bool ignore_unknown;      /* _ansible_ignore_unknown_opts */
    conv_action conv;
    char *err;                /* first error (malloc'd) */
} vctx;

/* Sets c->err (first error wins) from a printf format; returns -1.
 * (module_types.c) */
int vc_error(vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* malloc'd printf: lib/base/xstr.h's xfmt / xvfmt (never NULL). */
#include "xstr.h"

/* "str", "int", "float", "bool", "list", "dict", "null" */
const char *mp_type_name(const json_t *v);
/* Name Ansible uses for an option type ("str", "bool", ...). */
const char *mp_opt_type_name(opt_type t);

/* Python's str() of a scalar (shortest round-trip float, True/False);
 * malloc'd, NULL for arrays, objects and null. */
char *mp_scalar_str(const json_t *v);

/* Converts v (borrowed) to type t into *out (new reference).  `what` names
 * the value for messages ("argument 'port'" or "Elements value for option
 * 'ports'"), `where` is " found in x" or "".  A no_log value is never quoted
 * in a message.  Returns 0 or -1 with c->err set. */
int mp_convert(vctx *c, opt_type t, json_t *v, json_t **out,
               const char *what, const char *where, bool secret);

/* Remembers a no_log value (copied; empty strings ignored, duplicates too). */
void mp_add_secret(module *m, const char *s);
/* Remembers every scalar inside v (values, not keys) as a no_log value. */
void mp_add_secret_values(module *m, const json_t *v);

/* Validates args (an object) against spec into a new object *out. */
int mp_validate(vctx *c, const mod_spec *spec, json_t *args, json_t **out);

/* Replaces the values of no_log options in params (a copy, modified in
 * place) by VALUE_SPECIFIED_IN_NO_LOG_PARAMETER, recursing into sub-options. */
void mp_mask(const mod_opt *opts, json_t *params);

#endif
