/* longhorn.c - Longhorn backup lookup and restore-state logic (see longhorn.h).
 * No I/O: everything here works on JSON objects so it can be unit-tested on
 * real BackupVolume / Backup / Volume shapes. */
#include "longhorn.h"
#include "xstr.h"

#include "jsonx.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool nonempty(const char *s) { return s && *s; }

/* A BackupVolume's spec field, else its label (older Longhorn sets only the
 * label); NULL when neither is set. */
static const char *spec_or_label(json_t *bv, const char *spec_path, const char *label)
{
    const char *v = jx_str(bv, spec_path);
    if (nonempty(v))
        return v;
    json_t *labels = jx_get(bv, "metadata.labels");
    v = labels ? json_string_value(json_object_get(labels, label)) : NULL;
    return nonempty(v) ? v : NULL;
}

const char *lh_bv_volume_name(json_t *bv)
{
    const char *v = spec_or_label(bv, "spec.volumeName", LH_LABEL_BACKUP_VOLUME);
    return v ? v : jx_str(bv, "metadata.name");
}

const char *lh_bv_target_name(json_t *bv)
{
    return spec_or_label(bv, "spec.backupTargetName", LH_LABEL_BACKUP_TARGET);
}

json_t *lh_find_backup_volume(json_t *items, const char *volume,
                              const char *target, size_t *nmatch)
{
    json_t *best = NULL;
    size_t n = 0, i;
    json_t *bv;
    if (nmatch)
        *nmatch = 0;
    if (!json_is_array(items) || !nonempty(volume))
        return NULL;
    json_array_foreach(items, i, bv) {
        const char *vn = lh_bv_volume_name(bv);
        if (!vn || strcmp(vn, volume) != 0)
            continue;
        if (nonempty(target)) {
            const char *t = lh_bv_target_name(bv);
            /* a pre-1.8 BackupVolume has no target: it belongs to "default" */
            if (!t)
                t = "default";
            if (strcmp(t, target) != 0)
                continue;
        }
        n++;
        if (!best) {
            best = bv;
            continue;
        }
        const char *a = jx_str_or(bv, "status.lastBackupAt", "");
        const char *b = jx_str_or(best, "status.lastBackupAt", "");
        if (strcmp(a, b) > 0)
            best = bv;
    }
    if (nmatch)
        *nmatch = n;
    return best;
}

static bool is_positive_int(const char *s)
{
    if (!nonempty(s))
        return false;
    bool nonzero = false;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        if (*p != '0')
            nonzero = true;
    }
    return nonzero;
}

int lh_check_backup(json_t *backup, const char *volume, lh_backup_info *info,
                    char *err, size_t errlen)
{
    const char *name = jx_str_or(backup, "metadata.name", "?");
    const char *state = jx_str_or(backup, "status.state", "");
    const char *berr = jx_str(backup, "status.error");
    memset(info, 0, sizeof *info);
    if (strcmp(state, "Completed") != 0) {
        snprintf(err, errlen, "backup %s is not Completed (status.state=%s%s%s): "
                 "Longhorn cannot restore from it",
                 name, *state ? state : "<empty>",
                 nonempty(berr) ? ", status.error: " : "", nonempty(berr) ? berr : "");
        return -1;
    }
    const char *vn = jx_str(backup, "status.volumeName");
    if (nonempty(vn) && nonempty(volume) && strcmp(vn, volume) != 0) {
        snprintf(err, errlen, "backup %s belongs to volume %s, not %s", name, vn, volume);
        return -1;
    }
    const char *url = jx_str(backup, "status.url");
    if (!nonempty(url)) {
        snprintf(err, errlen, "backup %s is Completed but has no status.url", name);
        return -1;
    }
    const char *size = jx_str(backup, "status.volumeSize");
    if (!is_positive_int(size)) {
        snprintf(err, errlen, "backup %s has no usable status.volumeSize (%s)", name,
                 size ? size : "missing");
        return -1;
    }
    info->name = name;
    info->url = url;
    info->size = size;
    info->target = jx_str(backup, "status.backupTargetName");
    info->created_at = jx_str(backup, "status.backupCreatedAt");
    return 0;
}

/* The Restore condition (type "Restore", or "restore" before v1beta2). */
static json_t *restore_condition(json_t *vol)
{
    json_t *conds = jx_get(vol, "status.conditions");
    size_t i;
    json_t *c;
    if (!json_is_array(conds))
        return NULL;
    json_array_foreach(conds, i, c) {
        const char *t = jx_str(c, "type");
        if (t && strcasecmp(t, "Restore") == 0)
            return c;
    }
    return NULL;
}

lh_restore_state lh_volume_restore_state(json_t *vol, char *why, size_t whylen)
{
    const char *state = jx_str_or(vol, "status.state", "");
    const char *rob = jx_str_or(vol, "status.robustness", "");
    bool required = jx_bool(vol, "status.restoreRequired", false);
    bool initiated = jx_bool(vol, "status.restoreInitiated", false);
    bool standby = jx_bool(vol, "status.isStandby", false);
    json_t *cond = restore_condition(vol);
    const char *creason = cond ? jx_str_or(cond, "reason", "") : "";
    const char *cmsg = cond ? jx_str_or(cond, "message", "") : "";

    if (why && whylen)
        snprintf(why, whylen, "state=%s robustness=%s restoreInitiated=%s restoreRequired=%s%s%s",
                 *state ? state : "<none>", *rob ? rob : "<none>",
                 initiated ? "true" : "false", required ? "true" : "false",
                 standby ? " isStandby=true" : "",
                 *creason ? (strcmp(creason, "RestoreFailure") == 0 ? " Restore condition: RestoreFailure"
                                                                     : " Restore condition: RestoreInProgress")
                          : "");
    if (strcmp(creason, "RestoreFailure") == 0 || strcmp(rob, "faulted") == 0) {
        if (why && whylen && *cmsg) {
            size_t l = strlen(why);
            snprintf(why + l, whylen - l, " (%s)", cmsg);
        }
        return LH_RESTORE_FAILED;
    }
    if (!initiated)
        return LH_RESTORE_PENDING;
    if (required || standby)
        return LH_RESTORE_RUNNING;
    if (strcmp(state, "detached") == 0 || strcmp(state, "attached") == 0)
        return LH_RESTORE_DONE;
    return LH_RESTORE_RUNNING;   /* detaching after the restore */
}

bool lh_flag_true(const char *s)
{
    if (!s)
        return false;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    static const char *const yes[] = { "true", "yes", "on", "1", NULL };
    for (int i = 0; yes[i]; i++)
        if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0)
            return true;
    return false;
}

json_t *lh_build_volume(const lh_volume_opts *o)
{
    json_t *v = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}, s:{s:s}}, s:{s:s, s:s, s:I, s:s}}",
        "apiVersion", "longhorn.io/v1beta2",
        "kind", "Volume",
        "metadata",
            "name", o->name,
            "namespace", o->ns,
            "labels", "app.kubernetes.io/managed-by", "ocpv-dr",
            "annotations", "ocpv.dr/restored-from-backup", o->backup_name ? o->backup_name : "",
        "spec",
            "fromBackup", o->from_backup,
            "size", o->size,
            "numberOfReplicas", (json_int_t)o->replicas,
            "accessMode", o->access_mode ? o->access_mode : "rwo");
    return v;
}

const char *lh_k8s_access_mode(const char *m)
{
    if (!m || strcmp(m, "rwo") == 0)
        return "ReadWriteOnce";
    if (strcmp(m, "rwop") == 0)
        return "ReadWriteOncePod";
    if (strcmp(m, "rwx") == 0)
        return "ReadWriteMany";
    return NULL;
}

json_t *lh_build_pv(const lh_pvc_opts *o)
{
    char replicas[32];
    snprintf(replicas, sizeof replicas, "%lld", o->replicas);
    return json_pack(
        "{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:{s:s}, s:[s], s:s, s:s, s:s,"
        " s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s, s:{s:s, s:s}}}}",
        "apiVersion", "v1",
        "kind", "PersistentVolume",
        "metadata",
            "name", o->volume,
            "labels", "app.kubernetes.io/managed-by", "ocpv-dr",
        "spec",
            "capacity", "storage", o->size,
            "accessModes", lh_k8s_access_mode(o->access_mode),
            "persistentVolumeReclaimPolicy", "Retain",
            "storageClassName", o->storage_class,
            "volumeMode", "Filesystem",
            "claimRef",
                "apiVersion", "v1",
                "namespace", o->pvc_namespace,
                "name", o->pvc_name,
            "csi",
                "driver", LH_CSI_DRIVER,
                "volumeHandle", o->volume,
                "fsType", o->fs_type ? o->fs_type : "ext4",
                "volumeAttributes",
                    "numberOfReplicas", replicas,
                    "staleReplicaTimeout", "30");
}

json_t *lh_build_pvc(const lh_pvc_opts *o)
{
    return json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s, s:s, s:[s], s:s, s:{s:{s:s}}}}",
        "apiVersion", "v1",
        "kind", "PersistentVolumeClaim",
        "metadata",
            "name", o->pvc_name,
            "namespace", o->pvc_namespace,
            "labels", "app.kubernetes.io/managed-by", "ocpv-dr",
        "spec",
            "storageClassName", o->storage_class,
            "volumeName", o->volume,
            "accessModes", lh_k8s_access_mode(o->access_mode),
            "volumeMode", "Filesystem",
            "resources", "requests", "storage", o->size);
}

/* ---- label selectors ---------------------------------------------------- */

static bool valid_label_part(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.' || *p == '/'))
            return false;
    return true;
}

int lh_selector_match(const char *selector, json_t *labels)
{
    if (!selector)
        return 1;
    char *copy = strdup(selector);
    if (!copy)
        return -1;
    int result = 1, nreq = 0;
    char *rest = copy, *tok;
    while ((tok = strsep(&rest, ",")) != NULL) {   /* strsep keeps empty terms: "a,,b" is an error */
        char *req = xstr_trim(tok);
        if (!*req) {
            result = -1;
            break;
        }
        nreq++;
        bool neg = false, exists_only = false, not_exists = false;
        char *key = req, *val = NULL, *op;
        if ((op = strstr(req, "!=")) != NULL) {
            *op = '\0';
            val = op + 2;
            neg = true;
        } else if ((op = strstr(req, "==")) != NULL) {
            *op = '\0';
            val = op + 2;
        } else if ((op = strchr(req, '=')) != NULL) {
            *op = '\0';
            val = op + 1;
        } else if (*req == '!') {
            key = req + 1;
            not_exists = true;
        } else {
            exists_only = true;
        }
        key = xstr_trim(key);
        if (val)
            val = xstr_trim(val);
        if (!valid_label_part(key) || (val && *val && !valid_label_part(val))) {
            result = -1;
            break;
        }
        const char *have = labels ? json_string_value(json_object_get(labels, key)) : NULL;
        bool ok;
        if (exists_only)
            ok = have != NULL;
        else if (not_exists)
            ok = have == NULL;
        else if (neg)
            ok = !have || strcmp(have, val) != 0;
        else
            ok = have && strcmp(have, val) == 0;
        if (!ok)
            result = 0;   /* keep parsing: a malformed later term is still an error */
    }
    free(copy);
    if (result != -1 && nreq == 0)
        result = -1;
    return result;
}
