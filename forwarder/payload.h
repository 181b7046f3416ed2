/* payload.h - the one JSON payload shape posted to the webhook for every
 * event (documented in forwarder/README.md, matched by the rulebook):
 *
 *   {"type":"MODIFIED","kind":"VolumeSnapshot",
 *    "apiVersion":"snapshot.storage.k8s.io/v1","namespace":"vm-prod",
 *    "scopeNamespace":"vm-prod","name":"snap-1","uid":"…","resourceVersion":"1234",
 *    "cluster":"primary","observedAt":"2026-11-22T12:00:00.123Z",
 *    "sequence":42,"origin":"watch","resource":{…the full object…}}
 *
 * namespace is null for cluster-scoped kinds (PV, VolumeSnapshotContent);
 * scopeNamespace is the protected namespace the event is about (a PV's
 * claimRef / a VSC's volumeSnapshotRef namespace), null when none. */
#ifndef OCPVDR_FWD_PAYLOAD_H
#define OCPVDR_FWD_PAYLOAD_H

#include "event.h"

#include <stddef.h>

json_t *payload_build(const fwd_event *ev, const char *cluster);
/* Compact serialization of payload_build(); malloc'd, *len set. */
char *payload_dump(const fwd_event *ev, const char *cluster, size_t *len);
/* "2026-11-22T12:00:00.123Z" into buf (>= 32 bytes). */
const char *payload_time(double epoch, char *buf, size_t len);

#endif
