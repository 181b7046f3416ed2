/* deliver.h - delivery workers: take events from the queue and POST their
 * payload to the webhook over kept-alive connections (one libcurl handle per
 * worker), with `Authorization: Bearer <token>` and the HMAC signature header
 * ansible-rulebook's webhook source verifies (hmac_secret / hmac_algo /
 * hmac_header / hmac_format).  A failure (transport error, timeout, non-2xx)
 * is retried with exponential backoff and jitter until it succeeds or the
 * shutdown grace period ends; the object's later events wait behind it while
 * other objects keep flowing. */
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

/* HMAC signature of body as the webhook source computes it (hex or base64)
 * into out; returns 0 or -1 for an unknown algorithm/format. */
int deliver_sign(const char *algo, const char *format, const char *secret, const char *body,
                 size_t len, char *out, size_t outlen);

#endif
