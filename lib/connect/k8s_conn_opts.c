/* k8s_conn_opts.c - the module-spec entries for the kubernetes.core
 * connection parameters (names, aliases, no_log and K8S_AUTH_* environment
 * fallbacks exactly as kubernetes.core declares them) plus
 * allow_insecure_http, so every module that talks to a cluster accepts the
 * same options.  Read with k8s_conn_from_json() after mod_parse().  And the
 * warnings every such module gives about an unsafe transport. */
#include "k8s_conn_opts.h"

#include <string.h>

static const char *const verify_aliases[] = { "verify_ssl", NULL };
static const char *const ca_aliases[] = { "ssl_ca_cert", NULL };
static const char *const cert_aliases[] = { "cert_file", NULL };
static const char *const key_aliases[] = { "key_file", NULL };

const struct mod_opt k8s_conn_opts[K8S_CONN_OPT_COUNT + 1] = {
    { .name = "kubeconfig", .type = OPT_PATH, .env_fallback = "K8S_AUTH_KUBECONFIG" },
    { .name = "context", .type = OPT_STR, .env_fallback = "K8S_AUTH_CONTEXT" },
    { .name = "host", .type = OPT_STR, .env_fallback = "K8S_AUTH_HOST" },
    { .name = "api_key", .type = OPT_STR, .no_log = true, .env_fallback = "K8S_AUTH_API_KEY" },
    /* no spec default: absent means "true unless the kubeconfig says
     * insecure-skip-tls-verify", as in kubernetes.core */
    { .name = "validate_certs", .type = OPT_BOOL, .aliases = verify_aliases,
      .env_fallback = "K8S_AUTH_VERIFY_SSL" },
    { .name = "ca_cert", .type = OPT_PATH, .aliases = ca_aliases,
      .env_fallback = "K8S_AUTH_SSL_CA_CERT" },
    { .name = "client_cert", .type = OPT_PATH, .aliases = cert_aliases,
      .env_fallback = "K8S_AUTH_CERT_FILE" },
    { .name = "client_key", .type = OPT_PATH, .aliases = key_aliases,
      .env_fallback = "K8S_AUTH_KEY_FILE" },
    /* ocpv-dr's own: no environment fallback, it must be asked for where
     * the connection is described */
    { .name = "allow_insecure_http", .type = OPT_BOOL },   /* absent = false */
    { 0 }
};

void k8s_mod_warn_transport(struct module *m, const k8s_client *c, const char *what)
{
    if (!m || !c)
        return;
    if (k8s_client_plain_http(c))
        mod_warn(m, "INSECURE: the %s cluster connection %s is plain http "
                 "(allow_insecure_http): requests, answers and any credential travel "
                 "unencrypted and the server is not authenticated", what,
                 k8s_client_server(c));
    else if (k8s_client_tls_unverified(c))
        mod_warn(m, "INSECURE: TLS certificate verification is OFF for the %s cluster %s "
                 "(validate_certs: false or insecure-skip-tls-verify): the server is not "
                 "authenticated, anyone in the path can read the token and the objects",
                 what, k8s_client_server(c));
}

void k8s_conn_opts_compose(struct mod_opt *all, const struct mod_opt *own,
                           struct mod_opt *peer, const char *peer_name)
{
    size_t n = 0;
    for (size_t i = 0; i < K8S_CONN_OPT_COUNT; i++)
        all[n++] = k8s_conn_opts[i];
    for (size_t i = 0; own[i].name; i++)
        all[n++] = own[i];
    all[n] = (struct mod_opt){ 0 };
    if (!peer_name)
        return;
    for (size_t i = 0; i < K8S_CONN_OPT_COUNT; i++) {
        peer[i] = k8s_conn_opts[i];
        peer[i].env_fallback = NULL;
    }
    peer[K8S_CONN_OPT_COUNT] = (struct mod_opt){ 0 };
    for (size_t i = 0; all[i].name; i++)
        if (strcmp(all[i].name, peer_name) == 0)
            all[i].suboptions = peer;
}
