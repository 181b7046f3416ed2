/* inventory.c - selects the protected objects of a primary listing (see
 * inventory.h for the rules).  One pass per kind, hash lookups by name. */
#include "inventory.h"

#include "jsonx.h"
#include "transform.h"

#include <stdio.h>
#include <string.h>

json_t *inv_slim(const json_t *obj)
{
    json_t *c = json_copy((json_t *)obj);           /* shallow: shares children */
    json_t *md = json_object_get(c, "metadata");
    if (json_is_object(md) && json_object_get(md, "managedFields")) {
        json_t *m2 = json_copy(md);                 /* never edit the shared child */
        json_object_del(m2, "managedFields");
        json_object_set_new(c, "metadata", m2);
    }
    return c;
}

static bool is_kind(json_t *o, const char *kind)
{
    const char *k = jx_str(o, "kind");
    return k && strcmp(k, kind) == 0;
}

static bool name_wanted(const json_t *names, const char *name)
{
    if (!json_is_array(names) || json_array_size(names) == 0)
        return true;
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
        if (json_is_string(n) && name && strcmp(json_string_value(n), name) == 0)
            return true;
    return false;
}

/* "ns/name" key into buf. */
static const char *nskey(const char *ns, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", ns ? ns : "", name ? name : "");
    return buf;
}

static void count(json_t *counts, json_t *out, const char *key)
{
    json_object_set_new(counts, key, json_integer((json_int_t)json_array_size(json_object_get(out, key))));
}

json_t *inv_build(const json_t *primary, const json_t *dr, const inv_opts *o)
{
    json_t *claims = json_array(), *pending = json_array(), *volumes = json_array();
    json_t *snaps = json_array(), *contents = json_array();
    json_t *bound_pv = json_object();     /* PV name -> "ns/claim" of a bound claim */
    json_t *ready_vsc = json_object();    /* VSC name -> true, named by a ready snapshot */
    char kb[600];
    size_t i;
    json_t *obj;

    json_array_foreach((json_t *)primary, i, obj) {
        const char *name = jx_str(obj, "metadata.name");
        if (is_kind(obj, "PersistentVolumeClaim")) {
            if (!name_wanted(o->names, name))
                continue;
            const char *phase = jx_str(obj, "status.phase"), *vol = jx_str(obj, "spec.volumeName");
            if (phase && strcmp(phase, "Bound") == 0 && vol && vol[0]) {
                json_array_append_new(claims, inv_slim(obj));
                json_object_set_new(bound_pv, vol, json_string(nskey(jx_str(obj, "metadata.namespace"),
                                                                     name, kb, sizeof kb)));
            } else {
                json_array_append_new(pending, json_string(name ? name : ""));
            }
        } else if (is_kind(obj, "VolumeSnapshot")) {
            const char *vsc = jx_str(obj, "status.boundVolumeSnapshotContentName");
            if (jx_bool(obj, "status.readyToUse", false) && vsc && vsc[0]) {
                json_array_append_new(snaps, inv_slim(obj));
                json_object_set_new(ready_vsc, vsc, json_true());
            }
        }
    }
    /* DR copies: PV name -> source uid */
    json_t *dr_uid = json_object();
    json_array_foreach((json_t *)dr, i, obj) {
        const char *name = jx_str(obj, "metadata.name");
        /* annotation keys hold dots: a jx path cannot address them */
        json_t *ann = jx_get(obj, "metadata.annotations");
        json_t *u = json_is_object(ann) ? json_object_get(ann, TF_ANN_SOURCE_UID) : NULL;
        const char *uid = json_is_string(u) ? json_string_value(u) : NULL;
        if (name && uid && tf_is_managed(obj))
            json_object_set_new(dr_uid, name, json_string(uid));
    }
    json_t *current = dr ? json_array() : NULL;
    json_array_foreach((json_t *)primary, i, obj) {
        const char *name = jx_str(obj, "metadata.name");
        if (!name)
            continue;
        if (is_kind(obj, "PersistentVolume")) {
            bool take;
            if (o->volumes == INV_VOLUMES_ALL) {
                take = jx_str(obj, "spec.claimRef.namespace") != NULL;
            } else {
                json_t *claim = json_object_get(bound_pv, name);
                take = claim && strcmp(json_string_value(claim),
                                       nskey(jx_str(obj, "spec.claimRef.namespace"),
                                             jx_str(obj, "spec.claimRef.name"), kb, sizeof kb)) == 0;
            }
            if (!take)
                continue;
            json_array_append_new(volumes, inv_slim(obj));
            json_t *du = json_object_get(dr_uid, name);
            const char *uid = jx_str(obj, "metadata.uid");
            if (current && du && uid && strcmp(json_string_value(du), uid) == 0)
                json_array_append_new(current, json_string(name));
        } else if (is_kind(obj, "VolumeSnapshotContent")) {
            if (json_object_get(ready_vsc, name) && jx_bool(obj, "status.readyToUse", false))
                json_array_append_new(contents, inv_slim(obj));
        }
    }
    json_decref(bound_pv);
    json_decref(ready_vsc);
    json_decref(dr_uid);

    json_t *out = json_pack("{soso soso so}", "claims", claims, "claims_pending", pending,
                            "volumes", volumes, "snapshots", snaps, "snapshot_contents", contents);
    if (current)
        json_object_set_new(out, "volumes_current", current);
    json_t *counts = json_object();
    static const char *const keys[] = { "claims", "claims_pending", "volumes", "volumes_current",
                                        "snapshots", "snapshot_contents", NULL };
    for (const char *const *k = keys; *k; k++)
        if (json_object_get(out, *k))
            count(counts, out, *k);
    json_object_set_new(out, "counts", counts);
    return out;
}
