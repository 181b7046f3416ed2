/* module_scrub.c - no_log values of the binary-module runtime: remembering
 * them (mp_add_secret*, mod_add_secret) in the module's secret set; the
 * rules and the masking itself are lib/base/secrets.c's, applied to every string
 * of the result, object keys included, as Ansible's remove_values does.
 */
#include "module_priv.h"

#include <stdlib.h>

void mp_add_secret(module *m, const char *s)
{
    secrets_add(&m->secrets, s);
}

void mod_add_secret(module *m, const char *s)
{
    secrets_add(&m->secrets, s);
}

void mp_add_secret_values(module *m, const json_t *v)
{
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            mp_add_secret_values(m, json_array_get(v, i));
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
            mp_add_secret_values(m, e);
    } else if (json_is_string(v) || json_is_number(v)) {
        char *s = mp_scalar_str(v);
        mp_add_secret(m, s);
        free(s);
    }
}
