/* watcher.h - one thread per watched (kind, namespace): paginated LIST, then
 * WATCH from the list's resourceVersion with bookmarks.  A watch that ends
 * or fails is resumed from the last resourceVersion seen (bookmarks keep it
 * fresh) with exponential backoff; `410 Gone` (the resourceVersion was
 * compacted away) triggers a relist that is diffed against the state, so the
 * ADDED / MODIFIED / DELETED events missed meanwhile are emitted — deletions
 * included.  Events go through noise control (noise.h) into the queue. */
#ifndef OCPVDR_FWD_WATCHER_H
#define OCPVDR_FWD_WATCHER_H

#include "config.h"
#include "k8s.h"
#include "queue.h"
#include "state.h"

#include <time.h>

typedef struct watcher watcher;

/* ns NULL: all namespaces (or a cluster-scoped kind).  stop is shared by all
 * watchers; set it to make them return. */
watcher *watcher_start(const fwd_config *cfg, k8s_client *kc, fwd_queue *q, fwd_state *st,
                       int kind, const char *ns, volatile int *stop, char *err, size_t errlen);
int watcher_established(watcher *w);
const char *watcher_name(watcher *w);    /* "PersistentVolumeClaim/vm-prod" */
void watcher_join(watcher *w);           /* joins and frees */
/* Joins until the CLOCK_REALTIME deadline; 0 when joined (and freed), -1
 * when the thread is still busy (e.g. a LIST against a dead API server). */
int watcher_join_until(watcher *w, const struct timespec *deadline);

#endif
