/* state.h - what the forwarder knows about every watched object.
 *
 * Two views per object uid, under one lock:
 *   seen      - the last version a watcher saw (resourceVersion + the noise
 *               hash): MODIFIED events that do not change the hash are noise,
 *               and a relist after `410 Gone` is diffed against it;
 *   delivered - the last version the webhook acknowledged.
 * With a state directory the delivered view is kept in an append-only
 * journal (`journal.jsonl`, one JSON line per delivered event, compacted at
 * start and when it grows) so that after a restart the first LIST is diffed
 * against what the receiver already has: objects created, changed or deleted
 * while the forwarder was down produce ADDED / MODIFIED / DELETED events, and
 * a DELETED carries the last delivered object (storage class, volume source)
 * so the DR side can still clean up.  Delivery is at-least-once: a crash may
 * re-send the last events, never lose one. */
#ifndef OCPVDR_FWD_STATE_H
#define OCPVDR_FWD_STATE_H

#include "event.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fwd_state fwd_state;

/* dir NULL: memory only.  Loads and compacts the journal. */
fwd_state *state_open(const char *dir, char *err, size_t errlen);
void state_close(fwd_state *st);
uint64_t state_next_seq(fwd_state *st);     /* 1 + highest delivered sequence */
size_t state_count(fwd_state *st);          /* objects known */

/* A new relist generation for state_observe()/state_sweep(). */
uint32_t state_new_mark(fwd_state *st);

/* A watcher saw obj (kind) with significant hash; deleted for DELETED.
 * Returns the event type to emit (EV_*) or -1 when it is noise / already
 * known.  mark != 0 records that a relist saw the object. */
int state_observe(fwd_state *st, int kind, json_t *obj, uint64_t hash, bool deleted,
                  uint32_t mark);

/* After a LIST of kind (in namespace ns, NULL = all) marked with mark: every
 * object of that scope still known but not listed is gone.  Returns DELETED
 * events (the last delivered object, or a stub with the metadata known) in
 * *out (malloc'd array, *out NULL when none). */
size_t state_sweep(fwd_state *st, int kind, const char *ns, uint32_t mark, int origin,
                   fwd_event ***out);

/* The webhook acknowledged ev: record it (journal line when persistent). */
void state_delivered(fwd_state *st, const fwd_event *ev);

/* Writes pending journal data to disk (fdatasync). */
void state_sync(fwd_state *st);

#endif
