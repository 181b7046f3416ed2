/* kinds.h - the four kinds the forwarder watches (PV, PVC, VolumeSnapshot,
 * VolumeSnapshotContent): their API coordinates, in a fixed order. */
#ifndef OCPVDR_KINDS_H
#define OCPVDR_KINDS_H

#include <stdbool.h>

/* The four kinds DR cares about, in a fixed order (indexes into arrays). */
enum { FWD_PV = 0, FWD_PVC, FWD_VS, FWD_VSC, FWD_NKINDS };

typedef struct fwd_kind {
    const char *short_name;   /* "pv" */
    const char *kind;         /* "PersistentVolume" */
    const char *api_version;  /* "v1" */
    const char *group;        /* "" */
    const char *version;      /* "v1" */
    const char *plural;       /* "persistentvolumes" */
    bool namespaced;
} fwd_kind;

extern const fwd_kind fwd_kinds[FWD_NKINDS];
/* Index of a kind from its short name, plural or Kind (case-insensitive); -1. */
int fwd_kind_find(const char *name);

#endif
