/* k8s_resources.c - which REST path serves a kind: the built-in resource
 * table (core, snapshot, KubeVirt, CDI, Velero, Longhorn), API discovery for
 * anything else (GET /api/v1, /apis/<group>/<version>, cached per client),
 * and path building. */
#include "k8s_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const k8s_resource builtin[] = {
    { "", "v1", "PersistentVolume", "persistentvolumes", false },
    { "", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true },
    { "", "v1", "Namespace", "namespaces", false },
    { "", "v1", "ConfigMap", "configmaps", true },
    { "", "v1", "Secret", "secrets", true },
    { "snapshot.storage.k8s.io", "v1", "VolumeSnapshot", "volumesnapshots", true },
    { "snapshot.storage.k8s.io", "v1", "VolumeSnapshotContent", "volumesnapshotcontents", false },
    { "snapshot.storage.k8s.io", "v1", "VolumeSnapshotClass", "volumesnapshotclasses", false },
    { "kubevirt.io", "v1", "VirtualMachine", "virtualmachines", true },
    { "kubevirt.io", "v1", "VirtualMachineInstance", "virtualmachineinstances", true },
    { "cdi.kubevirt.io", "v1beta1", "DataVolume", "datavolumes", true },
    { "velero.io", "v1", "Backup", "backups", true },
    { "velero.io", "v1", "Restore", "restores", true },
    { "velero.io", "v1", "BackupStorageLocation", "backupstoragelocations", true },
    { "velero.io", "v1", "Schedule", "schedules", true },
    { "longhorn.io", "v1beta2", "Volume", "volumes", true },
    { "longhorn.io", "v1beta2", "BackupVolume", "backupvolumes", true },
    { "longhorn.io", "v1beta2", "Backup", "backups", true },
    { "longhorn.io", "v1beta2", "BackupTarget", "backuptargets", true },
    { "longhorn.io", "v1beta2", "Setting", "settings", true },
};

/* Splits "group/version" or "version". */
static void split_av(const char *av, char *group, size_t gl, const char **version)
{
    const char *slash = strchr(av, '/');
    if (slash) {
        size_t n = (size_t)(slash - av);
        if (n >= gl)
            n = gl - 1;
        memcpy(group, av, n);
        group[n] = '\0';
        *version = slash + 1;
    } else {
        group[0] = '\0';
        *version = av;
    }
}

const k8s_resource *k8s_resource_builtin(const char *api_version, const char *kind)
{
    if (!api_version || !kind)
        return NULL;
    char group[256];
    const char *version;
    split_av(api_version, group, sizeof group, &version);
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
        const k8s_resource *r = &builtin[i];
        if (strcmp(r->group, group) == 0 && strcmp(r->version, version) == 0 &&
            strcmp(r->kind, kind) == 0)
            return r;
    }
    return NULL;
}

const char *k8s_api_version(const k8s_resource *r, char *buf, size_t len)
{
    if (r->group && r->group[0])
        snprintf(buf, len, "%s/%s", r->group, r->version);
    else
        snprintf(buf, len, "%s", r->version);
    return buf;
}

char *k8s_path(const k8s_resource *r, const char *ns, const char *name)
{
    char *p = NULL;
    const char *g = r->group && r->group[0] ? r->group : NULL;
    char base[512];
    if (g)
        snprintf(base, sizeof base, "/apis/%s/%s", g, r->version);
    else
        snprintf(base, sizeof base, "/api/%s", r->version);
    char *ens = r->namespaced && ns && *ns ? k8s_urlencode(ns) : NULL;
    char *ename = name && *name ? k8s_urlencode(name) : NULL;
    int rc = asprintf(&p, "%s%s%s/%s%s%s", base, ens ? "/namespaces/" : "", ens ? ens : "",
                      r->plural, ename ? "/" : "", ename ? ename : "");
    free(ens);
    free(ename);
    return rc < 0 ? NULL : p;
}

/* ---- discovery ---------------------------------------------------------- */

static void free_res(k8s_resource *r)
{
    free((char *)r->group);
    free((char *)r->version);
    free((char *)r->kind);
    free((char *)r->plural);
    free(r);
}

void k8s_discovery_free(k8s_client *c)
{
    for (size_t i = 0; i < c->ndisc; i++)
        free_res(c->disc[i]);
    free(c->disc);
    c->disc = NULL;
    c->ndisc = c->capdisc = 0;
    json_decref(c->disc_seen);
    c->disc_seen = NULL;
}

/* Looks in the cache; caller holds c->lock.  Accepts the kind, or (for
 * convenience on command lines) the plural or kind case-insensitively. */
static const k8s_resource *cache_find(k8s_client *c, const char *group, const char *version,
                                      const char *kind)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < c->ndisc; i++) {
            const k8s_resource *r = c->disc[i];
            if (strcmp(r->group, group) != 0 || strcmp(r->version, version) != 0)
                continue;
            if (pass == 0 ? strcmp(r->kind, kind) == 0
                          : (strcasecmp(r->kind, kind) == 0 || strcmp(r->plural, kind) == 0))
                return r;
        }
    return NULL;
}

static int cache_add(k8s_client *c, const char *group, const char *version, json_t *res)
{
    const char *name = json_string_value(json_object_get(res, "name"));
    const char *kind = json_string_value(json_object_get(res, "kind"));
    if (!name || !kind || strchr(name, '/'))
        return 0;   /* subresources (x/status) are not kinds */
    if (c->ndisc == c->capdisc) {
        size_t cap = c->capdisc ? c->capdisc * 2 : 32;
        k8s_resource **nd = realloc(c->disc, cap * sizeof *nd);
        if (!nd)
            return -1;
        c->disc = nd;
        c->capdisc = cap;
    }
    k8s_resource *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->group = strdup(group);
    r->version = strdup(version);
    r->kind = strdup(kind);
    r->plural = strdup(name);
    r->namespaced = json_is_true(json_object_get(res, "namespaced"));
    if (!r->group || !r->version || !r->kind || !r->plural) {
        free_res(r);
        return -1;
    }
    c->disc[c->ndisc++] = r;
    return 0;
}

const k8s_resource *k8s_resource_find(k8s_client *c, const char *api_version,
                                      const char *kind, k8s_error *err)
{
    if (!api_version || !*api_version || !kind || !*kind) {
        k8s_error_printf(err, "resource lookup: apiVersion and kind are required");
        return NULL;
    }
    const k8s_resource *r = k8s_resource_builtin(api_version, kind);
    if (r)
        return r;
    char group[256];
    const char *version;
    split_av(api_version, group, sizeof group, &version);

    pthread_mutex_lock(&c->lock);
    r = cache_find(c, group, version, kind);
    bool seen = c->disc_seen && json_object_get(c->disc_seen, api_version);
    pthread_mutex_unlock(&c->lock);
    if (r || seen)
        goto done;

    char path[600];
    if (group[0])
        snprintf(path, sizeof path, "/apis/%s/%s", group, version);
    else
        snprintf(path, sizeof path, "/api/%s", version);
    json_t *list = NULL;
    k8s_error e;
    if (k8s_request(c, "GET", path, NULL, NULL, &list, &e) != 0) {
        if (e.status == 404) {
            k8s_error_printf(err, "unknown kind %s in apiVersion %s: the server does not "
                             "serve %s", kind, api_version, api_version);
            if (err) {
                err->status = 404;
                snprintf(err->reason, sizeof err->reason, "NotFound");
            }
        } else if (err) {
            *err = e;
        }
        return NULL;
    }
    pthread_mutex_lock(&c->lock);
    if (!c->disc_seen)
        c->disc_seen = json_object();
    if (!json_object_get(c->disc_seen, api_version)) {
        json_object_set_new(c->disc_seen, api_version, json_true());
        json_t *arr = json_object_get(list, "resources"), *it;
        size_t i;
        json_array_foreach(arr, i, it)
            cache_add(c, group, version, it);
    }
    r = cache_find(c, group, version, kind);
    pthread_mutex_unlock(&c->lock);
    json_decref(list);
done:
    if (!r) {
        k8s_error_printf(err, "unknown kind %s in apiVersion %s", kind, api_version);
        if (err) {
            err->status = 404;
            snprintf(err->reason, sizeof err->reason, "NotFound");
        }
    }
    return r;
}
