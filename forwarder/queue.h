/* queue.h - the bounded event queue between watchers and delivery workers.
 *
 * Per-object ordering: events are grouped by object uid; at most one event
 * per object is in flight, so a worker never overtakes another on the same
 * object, while different objects are delivered in parallel.
 *
 * Coalescing: an event for an object that already has an undelivered
 * (pending, not in-flight) event replaces it with the latest state, keeping
 * the first type (ADDED stays ADDED); a DELETED is appended after it, never
 * merged away.  So an object holds at most two pending events and a webhook
 * outage costs memory per object, not per event.
 *
 * Bound: at most `max` pending events; a push that needs a new slot waits
 * for room (the watcher stops reading, the API server buffers or the watch
 * expires and is resumed/relisted): nothing is dropped. */
#ifndef OCPVDR_FWD_QUEUE_H
#define OCPVDR_FWD_QUEUE_H

#include "event.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fwd_queue fwd_queue;

fwd_queue *queue_new(size_t max, uint64_t first_seq);
void queue_free(fwd_queue *q);   /* frees anything still queued */

/* Takes ownership of ev and assigns ev->seq.  Returns 1 if it coalesced into
 * a pending event, 0 if queued, -1 if the queue is closed (ev freed). */
int queue_push(fwd_queue *q, fwd_event *ev);

/* Waits up to timeout seconds for a deliverable event; NULL on timeout or
 * when closed and empty.  The caller owns it until queue_done(). */
fwd_event *queue_take(fwd_queue *q, double timeout);
/* Marks the object's in-flight event finished (delivered or given up) and
 * frees ev. */
void queue_done(fwd_queue *q, fwd_event *ev);

/* Shutdown, step 1: pushes that would wait for room fail instead (the
 * state diff at the next start recovers those events). */
void queue_stop_waiting(fwd_queue *q);
/* Stops accepting pushes; takers drain what is left. */
void queue_close(fwd_queue *q);
/* Waits until nothing is pending or in flight, up to timeout seconds;
 * returns the number of events left. */
size_t queue_drain_wait(fwd_queue *q, double timeout);

/* Closed and nothing pending (workers may exit). */
int queue_finished(fwd_queue *q);
size_t queue_depth(fwd_queue *q);      /* pending events */
size_t queue_inflight(fwd_queue *q);
uint64_t queue_next_seq(fwd_queue *q);

#endif
