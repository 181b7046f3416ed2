/* secret_mask.c - masks Secret values and KubeVirt cloud-init data in
 * Kubernetes objects before they are shown (see secret_mask.h).  Shared by
 * k8s_dr_clean (its output and diffs) and oadp_parse (objects read from a
 * backup). */
#define _GNU_SOURCE 1   /* memmem */
#include "secret_mask.h"

#include <string.h>

#define LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"

/* Replaces every value of obj[field] (an object) by the mask. */
static bool mask_values(json_t *obj, const char *field)
{
    json_t *d = json_object_get(obj, field);
    const char *k;
    json_t *v;
    bool any = false;
    json_object_foreach(d, k, v) {
        json_object_set_new(d, k, json_string(SM_MASK));
        any = true;
    }
    return any;
}

void sm_mask_secret_data(json_t *secret)
{
    mask_values(secret, "data");
    mask_values(secret, "stringData");
}

static const char *const CLOUD_INIT_SOURCES[] = { "cloudInitNoCloud", "cloudInitConfigDrive", NULL };
static const char *const CLOUD_INIT_FIELDS[] = { "userData", "userDataBase64", "networkData",
                                                 "networkDataBase64", NULL };

/* Masks the inline data of every cloud-init volume source under v. */
static bool mask_cloud_init(json_t *v, int depth)
{
    bool any = false;
    if (depth > 64)                 /* deeper than any real object; jansson limits input depth too */
        return false;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
            any |= mask_cloud_init(e, depth + 1);
        return any;
    }
    if (!json_is_object(v))
        return false;
    for (const char *const *s = CLOUD_INIT_SOURCES; *s; s++) {
        json_t *src = json_object_get(v, *s);
        for (const char *const *f = CLOUD_INIT_FIELDS; json_is_object(src) && *f; f++) {
            if (json_object_get(src, *f)) {
                json_object_set_new(src, *f, json_string(SM_MASK));
                any = true;
            }
        }
    }
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e)
        if (json_is_object(e) || json_is_array(e))
            any |= mask_cloud_init(e, depth + 1);
    return any;
}

bool sm_mask_object(json_t *obj, const char *text, size_t len)
{
    if (!json_is_object(obj))
        return false;
    bool any = false;
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    if (kind && strcmp(kind, "Secret") == 0) {
        any |= mask_values(obj, "data");
        any |= mask_values(obj, "stringData");
    }
    /* "cloudInit" can only be spelled without those bytes through a JSON escape */
    if (!text || memmem(text, len, "cloudInit", 9) || memchr(text, '\\', len))
        any |= mask_cloud_init(obj, 0);
    json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
    json_t *la = json_object_get(ann, LAST_APPLIED);
    if (json_is_string(la) && (any || (kind && strcmp(kind, "Secret") == 0) ||
                               strstr(json_string_value(la), "cloudInit"))) {
        json_object_set_new(ann, LAST_APPLIED, json_string(SM_MASK));
        any = true;
    }
    return any;
}
