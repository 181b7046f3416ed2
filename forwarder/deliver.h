/* deliver.h - delivery workers: take events from the queue and POST their
 * payload to the webhook over kept-alive connections (one libcurl handle per
 * worker), with `Authorization: Bearer <token>` and the HMAC signature header
 * ansible-rulebook's webhook source verifies (hmac_secret / hmac_algo /
 * hmac_header / hmac_format).
 *
 * A failure is retried with exponential backoff and jitter (not sooner than
 * a 429/503's Retry-After): transport errors, timeouts, 5xx, 401/403, 408,
 * 429 until delivered or the shutdown grace period ends.  An answer that
 * refuses the event itself (another 4xx: 400, 404, 413, 422...) is tried
 * WEBHOOK_REJECT_ATTEMPTS times, then dead-lettered: logged (kind,
 * namespace, name, resourceVersion), counted, not recorded as delivered (a
 * restart with STATE_DIR sends the object's current state again) - so a
 * poison event never pins a worker.  The object's later events wait behind
 * its event in flight while other objects keep flowing.
 *
 * Stall watch: each worker notes since when its event has been failing;
 * deliver_stalled() reports one failing for longer than a threshold. */
#ifndef OCPVDR_FWD_DELIVER_H
#define OCPVDR_FWD_DELIVER_H

#include "config.h"
#include "queue.h"
#include "state.h"

#include <stddef.h>

typedef struct deliver deliver;

deliver *deliver_start(const fwd_config *cfg, fwd_queue *q, fwd_state *st, char *err,
                       size_t errlen);
/* Closes the queue and joins the workers: they exit once it is drained, or
 * at once (giving up the event they retry) with abort_retries. */
void deliver_stop(deliver *d, int abort_retries);

/* Whether some worker's event has been failing for more than threshold_s
 * seconds; then 1 and why (e.g. "delivery stalled: 4 of 4 workers failing
 * for more than 120 s (oldest 300 s: PersistentVolumeClaim ns/x rv 12, last
 * error HTTP 503)").  0 otherwise.  Thread-safe. */
int deliver_stalled(deliver *d, double threshold_s, char *why, size_t len);

/* An HTTP status by which the webhook refuses the event itself (sending it
 * again cannot help, other events may pass): 413 and 422.  Any other 4xx is
 * a configuration fault that fails every event (wrong path, credentials,
 * signature header): retried, so the stall shows in /readyz. */
int deliver_rejects_event(long status);

/* HMAC signature of body as the webhook source computes it (hex or base64)
 * into out; returns 0 or -1 for an unknown algorithm/format. */
int deliver_sign(const char *algo, const char *format, const char *secret, const char *body,
                 size_t len, char *out, size_t outlen);

#endif
