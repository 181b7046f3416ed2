/* dr_prune.h - the rules that decide what k8s_dr_clean may write or delete
 * on the DR cluster, apart from the module's option handling:
 *
 *   ownership  an existing DR object is written only when ocpv-dr made it
 *              for this source cluster, or take_over says so; an unchanged
 *              hash means no write (dr_apply_decide)
 *   evidence   deleted_sources (the objects / uids deletion events carried)
 *              vouch for the DR objects made from them (dr_evidence_*)
 *   stale      a managed DR object of this source in scope that the primary
 *              lacks (dr_prune_consider)
 *   guards     nothing is deleted when, per kind and namespace, the primary
 *              has none while DR holds managed ones no event names (empty
 *              source), when the stale objects exceed max_delete, or when
 *              the ones no event names exceed max_delete_ratio of the
 *              managed ones no event names (dr_prune_guard)
 *
 * The namespace an object counts for is lib/dr/dr_scope's. */
#ifndef OCPVDR_DR_PRUNE_H
#define OCPVDR_DR_PRUNE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- ownership (apply) --------------------------------------------------- */

typedef enum dr_apply_verdict {
    DR_APPLY_CREATE,            /* absent on DR */
    DR_APPLY_UNCHANGED,         /* ours, the hash matches: no write */
    DR_APPLY_UPDATE,            /* ours, content changed */
    DR_APPLY_TAKE_UNMANAGED,    /* no ocpv-dr label: taken over (take_over) */
    DR_APPLY_TAKE_OTHER,        /* another source's: taken over (take_over) */
    DR_APPLY_CONFLICT_UNMANAGED,/* no ocpv-dr label: left alone */
    DR_APPLY_CONFLICT_OTHER,    /* another source's: left alone */
} dr_apply_verdict;

/* desired: the cleaned + marked object; live: the DR object or NULL;
 * source_cluster NULL = none recorded. */
dr_apply_verdict dr_apply_decide(const json_t *desired, const json_t *live,
                                 const char *source_cluster, bool take_over);

/* ---- deletion evidence --------------------------------------------------- */

typedef struct dr_evidence {
    json_t *uids;      /* uid -> true */
    json_t *bound;     /* "PersistentVolume/<name>" -> "<claim ns>/<claim name>", same for VSC */
} dr_evidence;

/* Reads deleted_sources (an array of uids or deleted objects).  An object
 * without metadata.uid is no evidence: a warning naming it is appended to
 * warnings (an array, optional).  -1 with *err (malloc'd, naming the
 * element) when an element is neither a string nor an object; ev is then
 * empty but valid (dr_evidence_free it). */
int dr_evidence_read(dr_evidence *ev, const json_t *deleted_sources, json_t *warnings,
                     char **err);
void dr_evidence_free(dr_evidence *ev);
/* Whether the stale DR object o (of kind) is named by a deletion event: its
 * source uid, or the claim / snapshot a deleted volume / content was bound
 * to (which o's claimRef / volumeSnapshotRef must name). */
bool dr_evidenced(const dr_evidence *ev, const json_t *o, const char *kind);

/* ---- stale objects and guards -------------------------------------------- */

typedef struct dr_prune dr_prune;

/* primary: the primary's objects in scope (any kinds; borrowed while the
 * plan lives); source_cluster: whose DR objects may go; ev: optional
 * (borrowed). */
dr_prune *dr_prune_new(const json_t *primary, const char *source_cluster, const dr_evidence *ev);
void dr_prune_free(dr_prune *p);

typedef enum dr_prune_verdict {
    DR_PRUNE_KEEP,              /* not managed by ocpv-dr, or still on the primary */
    DR_PRUNE_FOREIGN,           /* managed for another source cluster: never touched */
    DR_PRUNE_STALE,             /* ours, gone from the primary */
    DR_PRUNE_STALE_EVIDENCED,   /* ... and a deletion event names it */
} dr_prune_verdict;

/* One DR object in scope (kind: its resource's kind, namespaced: whether
 * that resource is), counted for the guards. */
dr_prune_verdict dr_prune_consider(dr_prune *p, const json_t *o, const char *kind,
                                   bool namespaced);

typedef struct dr_guard_opts {
    bool allow_empty_source;
    long long max_delete;       /* < 0: no cap */
    double max_delete_ratio;    /* 0..1 */
} dr_guard_opts;

/* NULL when the stale objects counted so far may be deleted, else why not
 * (malloc'd): the first of the empty-source (per kind and namespace, in
 * order of appearance), max_delete and ratio guards that trips. */
char *dr_prune_guard(const dr_prune *p, const dr_guard_opts *o);

/* Counts so far: managed DR objects of this source, of other sources, stale
 * ones, stale ones an event names. */
size_t dr_prune_managed(const dr_prune *p);
size_t dr_prune_foreign(const dr_prune *p);
size_t dr_prune_stale(const dr_prune *p);
size_t dr_prune_evidenced(const dr_prune *p);

#endif
