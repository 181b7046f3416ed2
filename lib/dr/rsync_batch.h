/* rsync_batch.h - planning which volumes share one rsync run, and
 * attributing a batch's itemized output back to its volumes.
 *
 * Volumes whose directories sit at the same relative path `rel` under one
 * source base and one destination base (src = SRC_BASE/rel, dest =
 * DEST_BASE/rel) can be synced by ONE rsync --relative
 * (lib/dr/rsync_cmd.h rc_sync_batch_argv), so a no-change re-sync of hundreds
 * of volumes costs a few rsync/ssh sessions instead of one per volume.
 * Pure functions (no I/O), unit-tested.
 */
#ifndef OCPVDR_RSYNC_BATCH_H
#define OCPVDR_RSYNC_BATCH_H

#include "rsync_cmd.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define RB_MAX_BATCH 64                 /* volumes per rsync (automatic sizing cap) */
#define RB_MAX_BATCH_ARGS (128 * 1024)  /* bytes of source arguments per rsync */

/* One volume as the planner sees it (borrowed strings). */
typedef struct rb_vol {
    const char *src;      /* local source directory (resolved) */
    const char *dest;     /* destination directory on the DR host */
    const char *rel;      /* the volume's path relative to its export root */
    bool runnable;        /* false: failed or skipped, not planned */
} rb_vol;

/* What one worker picks up: one volume (n == 1, no bases), or a batch of
 * volumes sharing src_base and dest_base (n > 1). */
typedef struct rb_task {
    size_t *idx;          /* indices into the rb_vol array */
    size_t n;
    char *src_base, *dest_base;
} rb_task;

typedef struct rb_plan {
    rb_task *tasks;
    size_t n, cap;
} rb_plan;

/* Volumes per batch: batch_opt > 1 as given; 0 (automatic): runnable shared
 * out over `parallel` runs, at most RB_MAX_BATCH; 1: no batching. */
size_t rb_batch_size(long long batch_opt, size_t runnable, size_t parallel);

/* "<base>/<rel>" -> base (malloc'd; "/" for a top-level dir), or NULL when
 * path does not end with "/" + rel. */
char *rb_base_of(const char *path, const char *rel);

/* Splits the runnable volumes into tasks: batches of up to `size` volumes
 * with the same (source base, destination base), in input order, each at
 * most RB_MAX_BATCH_ARGS bytes of source arguments; the rest one by one.
 * can_batch false or size <= 1: every volume alone.  0, or -1 when out of
 * memory (*plan freed). */
int rb_plan_tasks(const rb_vol *v, size_t nv, size_t size, bool can_batch, rb_plan *plan);
void rb_plan_free(rb_plan *plan);

/* Adds one itemized line (already parsed, rc_item_parse) of a batch to the
 * stats of the volume it belongs to: an item, its bytes, a deletion or a
 * transferred regular file. */
void rb_stats_item(rc_stats *st, const rc_item *it);

/* a += b (a volume re-run alone after its batch failed keeps what the
 * batch already did). */
void rb_stats_add(rc_stats *a, const rc_stats *b);

/* When a volume's copy ran (wall clock, epoch seconds; 0 = no rsync ran for
 * it).  started: right before the rsync was spawned - per volume or for
 * every member of a batch; a re-run alone after a failed batch starts again,
 * so it is the start of the rsync whose result the volume reports.
 * finished: when that rsync ended, never before started (the wall clock may
 * step back while rsync runs).  A verify pass moves neither. */
typedef struct rb_when {
    time_t started, finished;
} rb_when;

void rb_when_start(rb_when *w, time_t now);   /* started = now, finished = 0 */
void rb_when_end(rb_when *w, time_t now);     /* finished = max(now, started) */

#endif
