/* k8s_conn_opts.h - the Kubernetes client as binary modules see it: the
 * module-spec entries for the kubernetes.core connection parameters and the
 * warnings about an unsafe transport.  Lives in connect/ (above both the
 * module runtime and the k8s client) so that the client itself never
 * depends on the module runtime. */
#ifndef OCPVDR_K8S_CONN_OPTS_H
#define OCPVDR_K8S_CONN_OPTS_H

#include "k8s.h"
#include "module.h"

/* The module-spec entries for the kubernetes.core connection parameters, so
 * every module declares them the same way: kubeconfig, context, host,
 * api_key (no_log), validate_certs, ca_cert, client_cert, client_key, with
 * K8S_AUTH_* fallbacks, and allow_insecure_http (ocpv-dr's own, no
 * fallback).  {0}-terminated; read with k8s_conn_from_json() after
 * mod_parse(). */
extern const struct mod_opt k8s_conn_opts[];
#define K8S_CONN_OPT_COUNT 9

/* Builds a module's option table: `all` (room for K8S_CONN_OPT_COUNT + the
 * entries of `own` + 1) gets the connection entries, then `own`
 * ({0}-terminated), then the terminator.  With peer_name set, `peer` (room
 * for K8S_CONN_OPT_COUNT + 1) gets the connection entries WITHOUT their
 * K8S_AUTH_* fallbacks - those name the DR cluster; a second cluster's
 * connection (the primary) must be given explicitly - and becomes the
 * suboptions of own's option peer_name.  Call once at the top of main(). */
void k8s_conn_opts_compose(struct mod_opt *all, const struct mod_opt *own,
                           struct mod_opt *peer, const char *peer_name);

/* Emits a module warning (mod_warn) for each transport risk of the client
 * (k8s_client_plain_http, k8s_client_tls_unverified), naming `what` ("DR",
 * "source (primary)") and the server.  Every module that connects calls it
 * right after k8s_client_new. */
void k8s_mod_warn_transport(struct module *m, const k8s_client *c, const char *what);

#endif
