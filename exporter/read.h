/* read.h - the status exporter's readers over lib/drstate: the DR records
 * (dsi_read) and the primary's claims (dsi_read_primary), as the callbacks
 * collect.h takes.  Error messages name the cluster and the list; they come
 * from the Kubernetes client and never carry a token. */
#ifndef OCPVDR_EXP_READ_H
#define OCPVDR_EXP_READ_H

#include "collect.h"
#include "k8s.h"

typedef struct exp_clients {
    k8s_client *dr;
    k8s_client *primary;           /* NULL = not read */
    const exp_config *cfg;
} exp_clients;

/* exp_read_dr_fn / exp_read_primary_fn with ud = exp_clients. */
int exp_read_dr(void *ud, exp_dr_snapshot *out, char *err, size_t len);
int exp_read_primary(void *ud, const json_t *namespaces, json_t **inv, char *err, size_t len);

#endif
