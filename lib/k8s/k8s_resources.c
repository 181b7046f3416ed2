/* k8s_resources.c - which REST path serves a kind: the built-in resource
 * table (core, snapshot, KubeVirt, CDI, Velero, Longhorn), API discovery for
 * anything else (GET /api/v1, /apis/<group>/<version>, cached per client),
 * and path building (every segment checked by k8s_check_segment). */
#include "k8s_int.h"
#include "xstr.h"

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
    { "storage.k8s.io", "v1", "StorageClass", "storageclasses", false },
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

const k8s_resource *k8s_resource_builtin_kind(const char *kind)
{
    const k8s_resource *found = NULL;
    for (size_t i = 0; kind && i < sizeof builtin / sizeof builtin[0]; i++) {
        if (strcmp(builtin[i].kind, kind) != 0)
            continue;
        if (found)
            return NULL;   /* two groups have it (velero / longhorn Backup): say which */
        found = &builtin[i];
    }
    return found;
}

const char *k8s_api_version(const k8s_resource *r, char *buf, size_t len)
{
    if (r->group && r->group[0])
        snprintf(buf, len, "%s/%s", r->group, r->version);
    else
        snprintf(buf, len, "%s", r->version);
    return buf;
}

/* Copies s for a message: at most 80 bytes, control characters as '?'. */
static void printable(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    for (; s && *s && o + 1 < cap && o < 80; s++) {
        unsigned char ch = (unsigned char)*s;
        dst[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    dst[o] = '\0';
}

int k8s_check_segment(const char *what, const char *value, k8s_error *err)
{
    const char *why = NULL;
    if (!value || !*value)
        why = "is empty";
    else if (strcmp(value, ".") == 0 || strcmp(value, "..") == 0)
        why = "is a dot segment (\".\" or \"..\" would address another object)";
    else if (strchr(value, '/'))
        why = "contains '/'";
    else if (strchr(value, '%'))
        why = "contains '%'";
    else
        for (const unsigned char *p = (const unsigned char *)value; *p && !why; p++)
            if (*p < 0x20 || *p == 0x7f)
                why = "contains a control character";
    if (!why)
        return 0;
    char shown[96];
    printable(shown, sizeof shown, value);
    k8s_error_printf(err, "%s \"%s\" %s: not a valid name for a request path", what, shown, why);
    if (err)
        snprintf(err->reason, sizeof err->reason, "Invalid");
    return -1;
}

int k8s_path_build(const k8s_resource *r, const char *ns, const char *name, char **out,
                   k8s_error *err)
{
    *out = NULL;
    const char *g = r->group && r->group[0] ? r->group : NULL;
    bool with_ns = r->namespaced && ns && *ns;
    if ((g && k8s_check_segment("API group", g, err) != 0) ||
        k8s_check_segment("API version", r->version, err) != 0 ||
        k8s_check_segment("resource", r->plural, err) != 0)
        return -1;
    if (with_ns && k8s_check_segment("namespace", ns, err) != 0)
        return -1;
    if (name) {
        char what[160];
        snprintf(what, sizeof what, "%s name", r->kind ? r->kind : "object");
        if (k8s_check_segment(what, name, err) != 0)
            return -1;
        if (r->namespaced && !with_ns) {
            char shown[96];
            printable(shown, sizeof shown, name);
            k8s_error_printf(err, "%s \"%s\": namespace is missing (the kind is namespaced)",
                             r->kind ? r->kind : "object", shown);
            if (err)
                snprintf(err->reason, sizeof err->reason, "Invalid");
            return -1;
        }
    }
    char *ens = with_ns ? k8s_urlencode(ns) : NULL;
    char *ename = name ? k8s_urlencode(name) : NULL;
    int rc = -1;
    if ((!with_ns || ens) && (!name || ename))
        rc = (*out = g ? xfmt("/apis/%s/%s%s%s/%s%s%s", g, r->version,
                              ens ? "/namespaces/" : "", ens ? ens : "", r->plural,
                              ename ? "/" : "", ename ? ename : "")
                       : xfmt("/api/%s%s%s/%s%s%s", r->version,
                              ens ? "/namespaces/" : "", ens ? ens : "", r->plural,
                              ename ? "/" : "", ename ? ename : "")) ? 0 : -1;
    free(ens);
    free(ename);
    if (rc < 0) {
        *out = NULL;
        k8s_error_printf(err, "%s: out of memory", r->kind ? r->kind : "path");
        return -1;
    }
    return 0;
}

char *k8s_path(const k8s_resource *r, const char *ns, const char *name)
{
    char *p = NULL;
    k8s_error e;
    return k8s_path_build(r, ns, name, &p, &e) == 0 ? p : NULL;
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
    if (k8s_check_segment("resource", name, NULL) != 0)
        return 0;   /* never a path segment: "..", "%2e", ... */
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
    if ((group[0] && k8s_check_segment("apiVersion group", group, err) != 0) ||
        k8s_check_segment("apiVersion version", version, err) != 0)
        return NULL;

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
