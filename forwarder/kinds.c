/* kinds.c - the kind table and lookup by name (see kinds.h). */
#include "kinds.h"

#include <strings.h>

const fwd_kind fwd_kinds[FWD_NKINDS] = {
    { "pv", "PersistentVolume", "v1", "", "v1", "persistentvolumes", false },
    { "pvc", "PersistentVolumeClaim", "v1", "", "v1", "persistentvolumeclaims", true },
    { "vs", "VolumeSnapshot", "snapshot.storage.k8s.io/v1", "snapshot.storage.k8s.io",
      "v1", "volumesnapshots", true },
    { "vsc", "VolumeSnapshotContent", "snapshot.storage.k8s.io/v1", "snapshot.storage.k8s.io",
      "v1", "volumesnapshotcontents", false },
};

int fwd_kind_find(const char *name)
{
    for (int i = 0; i < FWD_NKINDS; i++)
        if (strcasecmp(name, fwd_kinds[i].short_name) == 0 ||
            strcasecmp(name, fwd_kinds[i].plural) == 0 ||
            strcasecmp(name, fwd_kinds[i].kind) == 0)
            return i;
    return -1;
}
