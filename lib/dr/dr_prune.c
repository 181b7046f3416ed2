/* dr_prune.c - what k8s_dr_clean may write or delete on DR (see
 * dr_prune.h): ownership of existing DR objects, deletion evidence, stale
 * objects and the guards against a mass delete. */
#include "dr_prune.h"
#include "dr_scope.h"
#include "jsonx.h"
#include "transform.h"
#include "xstr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ ownership */

dr_apply_verdict dr_apply_decide(const json_t *desired, const json_t *live,
                                 const char *source_cluster, bool take_over)
{
    if (!live)
        return DR_APPLY_CREATE;
    bool managed = tf_is_managed(live);
    bool ours = managed && tf_same_source(live, source_cluster);
    if (!ours) {
        /* not ocpv-dr's for this primary: applying would make it prunable
         * by this primary (or steal it from another one) */
        if (!take_over)
            return managed ? DR_APPLY_CONFLICT_OTHER : DR_APPLY_CONFLICT_UNMANAGED;
        return managed ? DR_APPLY_TAKE_OTHER : DR_APPLY_TAKE_UNMANAGED;
    }
    const char *want = tf_hash_of(desired), *have = tf_hash_of(live);
    if (want && have && strcmp(want, have) == 0)
        return DR_APPLY_UNCHANGED;
    return DR_APPLY_UPDATE;
}

/* ------------------------------------------------------------ evidence */

static const char *str_or_null(const json_t *o, const char *path)
{
    return jx_str((json_t *)o, path);
}

int dr_evidence_read(dr_evidence *ev, const json_t *deleted_sources, json_t *warnings,
                     char **err)
{
    ev->uids = json_object();
    ev->bound = json_object();
    size_t i;
    json_t *el;
    json_array_foreach(deleted_sources, i, el) {
        if (json_is_string(el)) {
            if (*json_string_value(el))
                json_object_set_new(ev->uids, json_string_value(el), json_true());
            continue;
        }
        if (!json_is_object(el)) {
            json_object_clear(ev->uids);
            json_object_clear(ev->bound);
            xerr_set(err, "deleted_sources[%zu]: must be a uid (string) or the deleted "
                     "object (dict)", i);
            return -1;
        }
        const char *uid = str_or_null(el, "metadata.uid");
        const char *kind = str_or_null(el, "kind"), *ns = str_or_null(el, "metadata.namespace");
        const char *name = str_or_null(el, "metadata.name");
        if (!uid || !*uid) {
            /* no uid, no evidence: its deletions stay under every guard */
            if (warnings) {
                char *w = xfmt("deleted_sources[%zu] (%.200s %.300s): no metadata.uid: not used "
                               "as evidence", i, kind ? kind : "?", name ? name : "?");
                if (w)
                    json_array_append_new(warnings, json_string(w));
                free(w);
            }
            continue;
        }
        json_object_set_new(ev->uids, uid, json_true());
        const char *bound = NULL, *bkind = NULL;
        if (kind && strcmp(kind, "PersistentVolumeClaim") == 0)
            bound = str_or_null(el, "spec.volumeName"), bkind = "PersistentVolume";
        else if (kind && strcmp(kind, "VolumeSnapshot") == 0)
            bound = str_or_null(el, "status.boundVolumeSnapshotContentName"),
            bkind = "VolumeSnapshotContent";
        if (bound && *bound && ns && name) {
            char k[600], v[600];
            snprintf(k, sizeof k, "%s/%s", bkind, bound);
            snprintf(v, sizeof v, "%s/%s", ns, name);
            json_object_set_new(ev->bound, k, json_string(v));
        }
        /* a deleted volume that says its claim is gone (Released), a
         * deleted content the snapshot controller marked as deleted with its
         * snapshot: evidence for that claim / snapshot too (by its uid) */
        const char *ref_uid = NULL;
        if (kind && strcmp(kind, "PersistentVolume") == 0) {
            const char *phase = str_or_null(el, "status.phase");
            if (phase && strcmp(phase, "Released") == 0)
                ref_uid = str_or_null(el, "spec.claimRef.uid");
        } else if (kind && strcmp(kind, "VolumeSnapshotContent") == 0) {
            const char *del = tf_annotation_of(el, "snapshot.storage.kubernetes.io/"
                                                   "volumesnapshot-being-deleted");
            if (del && strcmp(del, "yes") == 0)
                ref_uid = str_or_null(el, "spec.volumeSnapshotRef.uid");
        }
        if (ref_uid && *ref_uid)
            json_object_set_new(ev->uids, ref_uid, json_true());
    }
    return 0;
}

void dr_evidence_free(dr_evidence *ev)
{
    json_decref(ev->uids);
    json_decref(ev->bound);
    ev->uids = ev->bound = NULL;
}

bool dr_evidenced(const dr_evidence *ev, const json_t *o, const char *kind)
{
    if (!ev || !kind)
        return false;
    const char *uid = tf_annotation_of(o, TF_ANN_SOURCE_UID);
    if (uid && json_object_get(ev->uids, uid))
        return true;
    char k[600];
    snprintf(k, sizeof k, "%s/%s", kind, jx_str_or((json_t *)o, "metadata.name", ""));
    const char *want = json_string_value(json_object_get(ev->bound, k));
    if (!want)
        return false;
    const char *path = strcmp(kind, "PersistentVolume") == 0 ? "spec.claimRef"
                                                              : "spec.volumeSnapshotRef";
    json_t *ref = jx_get((json_t *)o, path);
    char have[600];
    snprintf(have, sizeof have, "%s/%s", jx_str_or(ref, "namespace", ""), jx_str_or(ref, "name", ""));
    return strcmp(have, want) == 0;
}

/* ------------------------------------------------------------ stale + guards */

struct dr_prune {
    const char *source_cluster;
    const dr_evidence *ev;
    json_t *present;          /* "Kind/ns/name" of the primary's objects */
    json_t *primary_count;    /* "Kind|ns" -> the primary's objects there */
    json_t *empty_ns;         /* "Kind|ns" -> stale objects no event names, primary empty there */
    size_t managed, foreign, stale, evid;
};

static char *obj_key(const char *kind, const char *ns, const char *name)
{
    return xfmt("%s/%s/%s", kind ? kind : "", ns ? ns : "", name ? name : "");
}

static void count(json_t *counts, const char *key)
{
    json_object_set_new(counts, key, json_integer(json_integer_value(json_object_get(counts, key)) + 1));
}

dr_prune *dr_prune_new(const json_t *primary, const char *source_cluster, const dr_evidence *ev)
{
    dr_prune *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->source_cluster = source_cluster;
    p->ev = ev;
    p->present = json_object();
    p->primary_count = json_object();
    p->empty_ns = json_object();
    size_t i;
    json_t *o;
    json_array_foreach(primary, i, o) {
        const char *kind = jx_str(o, "kind");
        bool namespaced = !tf_kind_cluster_scoped(kind);
        char *k = obj_key(kind, namespaced ? jx_str(o, "metadata.namespace") : "",
                          jx_str(o, "metadata.name"));
        if (k)
            json_object_set_new(p->present, k, json_true());
        free(k);
        const char *sns = dr_scope_namespace(o, namespaced, NULL);
        char ck[600];
        snprintf(ck, sizeof ck, "%s|%s", kind ? kind : "", sns ? sns : "");
        count(p->primary_count, ck);
    }
    return p;
}

void dr_prune_free(dr_prune *p)
{
    if (!p)
        return;
    json_decref(p->present);
    json_decref(p->primary_count);
    json_decref(p->empty_ns);
    free(p);
}

dr_prune_verdict dr_prune_consider(dr_prune *p, const json_t *o, const char *kind,
                                   bool namespaced)
{
    /* only what ocpv-dr manages (a reused lookup list holds everything),
     * and only what it made from this primary */
    if (!tf_is_managed(o))
        return DR_PRUNE_KEEP;
    if (!tf_same_source(o, p->source_cluster)) {
        p->foreign++;
        return DR_PRUNE_FOREIGN;
    }
    p->managed++;
    char *key = obj_key(kind, namespaced ? jx_str((json_t *)o, "metadata.namespace") : "",
                        jx_str((json_t *)o, "metadata.name"));
    bool gone = key && !json_object_get(p->present, key);
    free(key);
    if (!gone)
        return DR_PRUNE_KEEP;
    p->stale++;
    bool evid = dr_evidenced(p->ev, o, kind);
    p->evid += evid;
    const char *sns = dr_scope_namespace(o, namespaced, NULL);
    char ck[600];
    snprintf(ck, sizeof ck, "%s|%s", kind, sns ? sns : "");
    if (!evid && !json_object_get(p->primary_count, ck))
        count(p->empty_ns, ck);
    return evid ? DR_PRUNE_STALE_EVIDENCED : DR_PRUNE_STALE;
}

char *dr_prune_guard(const dr_prune *p, const dr_guard_opts *o)
{
    /* empty-source guard, per namespace and kind: a listing that came back
     * empty for one namespace (a broken answer, a proxy) must not empty that
     * namespace on DR, whatever the others hold */
    const char *ck;
    json_t *cnt;
    json_object_foreach(p->empty_ns, ck, cnt) {
        if (o->allow_empty_source)
            break;
        const char *bar = strchr(ck, '|');
        int kl = bar ? (int)(bar - ck) : (int)strlen(ck);
        const char *ns = bar ? bar + 1 : "";
        return xfmt("the primary has no %.*s %s%s while DR holds %lld managed ones from it%s: "
                    "refusing to empty DR there (set allow_empty_source: true if this is "
                    "intended)", kl, ck, *ns ? "in namespace " : "in scope", ns,
                    (long long)json_integer_value(cnt),
                    p->evid ? " that no deletion event names" : "");
    }
    if (o->max_delete >= 0 && (long long)p->stale > o->max_delete)
        return xfmt("%zu stale objects exceed max_delete=%lld", p->stale, o->max_delete);
    /* the ratio judges what no deletion event vouches for */
    size_t other = p->stale - p->evid, base = p->managed - p->evid;
    double ratio = base ? (double)other / (double)base : 0.0;
    if (other > 0 && ratio > o->max_delete_ratio)
        return xfmt("%zu of %zu managed DR objects in scope (%.0f%%) would be deleted%s, more "
                    "than max_delete_ratio=%g", other, base, ratio * 100,
                    p->evid ? " without a deletion event naming them" : "", o->max_delete_ratio);
    return NULL;
}

size_t dr_prune_managed(const dr_prune *p) { return p->managed; }
size_t dr_prune_foreign(const dr_prune *p) { return p->foreign; }
size_t dr_prune_stale(const dr_prune *p) { return p->stale; }
size_t dr_prune_evidenced(const dr_prune *p) { return p->evid; }
