/* noise.h - noise control: a hash of what DR cares about in an object.
 *
 * Two versions of an object with the same hash differ only in bookkeeping
 * the API server changes on every write (metadata.resourceVersion,
 * metadata.managedFields, metadata.selfLink): a MODIFIED event between them is
 * noise and is not forwarded.  Everything else counts, status included, so a
 * VolumeSnapshot turning readyToUse or a PV changing phase is forwarded. */
#ifndef OCPVDR_FWD_NOISE_H
#define OCPVDR_FWD_NOISE_H

#include <jansson.h>
#include <stdint.h>

/* 64-bit hash of the object without the ignored fields, independent of the
 * order of object members (as a canonical form would be) but computed by a
 * walk of the tree: nothing is serialized or allocated.  The object is not
 * modified.  Never returns 0. */
uint64_t noise_hash(json_t *obj);

#endif
