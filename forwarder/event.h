/* event.h - the event record that travels from a watcher through the queue
 * to a delivery worker: event types, origins, building one from an object.
 * (Was fwd.h, with the kind table - kinds.h - and the clocks - clock.h.) */
#ifndef OCPVDR_EVENT_H
#define OCPVDR_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kinds.h"   /* an event's kind indexes fwd_kinds[] */

enum { EV_ADDED = 0, EV_MODIFIED, EV_DELETED, EV_NTYPES };
extern const char *const fwd_type_names[EV_NTYPES];

/* Where an event came from: a watch stream, the first LIST at start (diffed
 * against the state directory when there is one), or a relist after 410. */
enum { ORIGIN_WATCH = 0, ORIGIN_LIST, ORIGIN_RELIST };
extern const char *const fwd_origin_names[3];

typedef struct fwd_event {
    struct fwd_event *next;   /* queue link */
    int type;                 /* EV_* */
    int kind;                 /* FWD_* */
    int origin;               /* ORIGIN_* */
    uint64_t seq;             /* assigned by the queue */
    double observed;          /* epoch seconds when the forwarder saw it */
    char *uid, *ns, *name, *rv;   /* ns NULL for cluster-scoped */
    char *scope;              /* the protected namespace the event is about
                               * (payload `scopeNamespace`, tf_scope_namespace():
                               * a PVC's / VS's namespace, a PV's claimRef /
                               * VSC's volumeSnapshotRef namespace); NULL: none */
    uint64_t hash;            /* significant-content hash (noise.h) */
    char *raw;                /* the full object as compact JSON text (the payload's
                               * `resource`): a queued event holds text, not a
                               * jansson tree (a fraction of the memory) */
    size_t rawlen;
    int attempts;             /* delivery attempts so far */
} fwd_event;

/* Builds an event from object: copies the metadata strings and the scope
 * namespace (from the parsed object, so delivery never parses it again) and
 * serializes the object (the caller keeps its reference). */
fwd_event *fwd_event_new(int type, int kind, int origin, json_t *object,
                         uint64_t hash);
/* The same with the object's JSON text as received (raw, len bytes), which is
 * copied as it is instead of serializing object again; object is only read
 * for its metadata. */
fwd_event *fwd_event_new_raw(int type, int kind, int origin, json_t *object,
                             const char *raw, size_t len, uint64_t hash);
/* The event's object parsed back (new reference; NULL if unparsable). */
json_t *fwd_event_object(const fwd_event *ev);
void fwd_event_free(fwd_event *ev);

#endif
