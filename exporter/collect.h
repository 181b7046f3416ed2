/* collect.h - the status exporter's cache of raw DR records and its scrape:
 * the records are re-read at most every CACHE_SECONDS (the primary's claims
 * every PRIMARY_CACHE_SECONDS), under one mutex so concurrent scrapes share
 * one read; EVERY scrape computes the status anew (dst_compute with the
 * caller's `now`), so RPO grows between scrapes with no job and no re-read
 * and nothing is latched.  A failed DR read keeps the last good records
 * (ages still grow: conservative) and turns ocpv_dr_status_dr_up to 0; a
 * namespace's series disappear only when its records do.
 *
 * The readers are callbacks (main.c wires lib/drstate's; the unit test
 * scripts them), so the cache rules are tested without a cluster. */
#ifndef OCPVDR_EXP_COLLECT_H
#define OCPVDR_EXP_COLLECT_H

#include "config.h"

#include <jansson.h>
#include <stddef.h>
#include <time.h>

/* One successful read of the DR records (all owned by the snapshot). */
typedef struct exp_dr_snapshot {
    json_t *records;   /* object: namespace -> {"data": ConfigMap data, "source_cluster": str|null} */
    json_t *pvs;       /* array of the managed DR PersistentVolumes */
    json_t *backups;   /* array of the Velero Backups on DR, or NULL = could not be read */
    char *backups_error;   /* why not (logged once per change), or NULL */
} exp_dr_snapshot;

void exp_dr_snapshot_free(exp_dr_snapshot *s);

/* Reads the DR records into *out: 0, or -1 with a message in err (then *out
 * is untouched). */
typedef int (*exp_read_dr_fn)(void *ud, exp_dr_snapshot *out, char *err, size_t len);
/* Reads the primary's claims of the namespaces (array of names): *inv = object
 * namespace -> inv_build() output; 0, or -1 with err. */
typedef int (*exp_read_primary_fn)(void *ud, const json_t *namespaces, json_t **inv, char *err,
                                   size_t len);

typedef struct exp_collector exp_collector;

/* cfg is borrowed (namespaces, cache times, default targets, labels).
 * read_primary NULL = the primary is not read (no ocpv_dr_primary_up). */
exp_collector *exp_collector_new(const exp_config *cfg, exp_read_dr_fn read_dr,
                                 exp_read_primary_fn read_primary, void *ud, const char *version);
void exp_collector_free(exp_collector *c);

/* One /metrics body: refreshes what is older than its cache time (mono: a
 * monotonic clock in seconds), then computes every namespace's status at
 * `now` and renders it.  malloc'd; NULL only when out of memory. */
char *exp_collector_scrape(exp_collector *c, time_t now, double mono, size_t *len);

/* /readyz: ready once a read of the DR records has succeeded. */
int exp_collector_ready(exp_collector *c, char *why, size_t len);

/* Reads now if never read (start-up, --once): 0 when the DR read succeeded. */
int exp_collector_prime(exp_collector *c, double mono);

#endif
