/* dr_scope.c - whether a Kubernetes object is in the protected namespaces
 * (see dr_scope.h): one rule for k8s_dr_clean's primary listing, its DR
 * listing and its prune against given resources. */
#include "dr_scope.h"

#include <string.h>

static const char *str_at(const json_t *obj, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(obj, a), b);
    return json_string_value(v);
}

const char *dr_scope_namespace(const json_t *obj, bool namespaced, bool *whole)
{
    if (whole)
        *whole = false;
    if (!json_is_object(obj))
        return NULL;
    if (namespaced)
        return str_at(obj, "metadata", "namespace");
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    json_t *spec = json_object_get(obj, "spec");
    if (kind && strcmp(kind, "PersistentVolume") == 0)
        return str_at(spec, "claimRef", "namespace");
    if (kind && strcmp(kind, "VolumeSnapshotContent") == 0)
        return str_at(spec, "volumeSnapshotRef", "namespace");
    if (kind && strcmp(kind, "Namespace") == 0)
        return str_at(obj, "metadata", "name");
    if (whole)
        *whole = true;
    return NULL;
}

bool dr_in_scope(const json_t *obj, bool namespaced, const json_t *namespaces)
{
    bool whole;
    const char *ns = dr_scope_namespace(obj, namespaced, &whole);
    if (whole)
        return true;
    if (!ns || !*ns)
        return false;
    size_t i;
    json_t *el;
    json_array_foreach(namespaces, i, el)
        if (json_is_string(el) && strcmp(json_string_value(el), ns) == 0)
            return true;
    return false;
}
