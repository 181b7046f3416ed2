/* secret_mask.h - masks the secret values a Kubernetes object carries
 * before it is shown (module results, diffs): a Secret's data / stringData
 * values, and KubeVirt cloud-init user and network data (cloudInitNoCloud /
 * cloudInitConfigDrive userData, userDataBase64, networkData,
 * networkDataBase64: passwords, keys, tokens) wherever they sit in an object
 * (VirtualMachine, VirtualMachineInstance, pools, templates, snapshots).
 * The kubectl last-applied-configuration annotation of such an object is
 * masked too, since it repeats them.  Every masked value becomes "********"
 * (SECRETS_MASK, the token lib/base/secrets.c masks registered values with);
 * keys stay, so the shape of the object is still visible. */
#ifndef OCPVDR_SECRET_MASK_H
#define OCPVDR_SECRET_MASK_H

#include "secrets.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define SM_MASK SECRETS_MASK   /* one mask for every secret shown (secrets.h) */

/* A Secret's data and stringData values (whatever the object's kind). */
void sm_mask_secret_data(json_t *secret);

/* Everything this file knows of, by the object's kind and content.  text
 * (optional): the object's JSON text, which lets an object that cannot hold
 * cloud-init data (no "cloudInit", no escape) skip the walk of its tree.
 * Returns whether anything was masked. */
bool sm_mask_object(json_t *obj, const char *text, size_t len);

#endif
