/* kubeconfig.h - reads kubeconfig files (libyaml) and the in-cluster service
 * account into one flat description of how to reach and authenticate to an
 * API server.  Used by the Kubernetes client (k8s.c); nothing here talks to
 * the network.
 *
 * Supported: current-context or an explicit context; cluster server,
 * certificate-authority (file) and certificate-authority-data,
 * insecure-skip-tls-verify, tls-server-name; user token, tokenFile,
 * client-certificate / client-key (file) and -data.  Relative file paths are
 * resolved against the directory of the kubeconfig that names them.  A
 * KUBECONFIG-style list ("a:b:c") is merged like kubectl does (first file to
 * define a name or current-context wins; missing files in a list are skipped).
 * exec and auth-provider plugins and basic auth give a clear "not supported"
 * error.  *-data values are base64-decoded into memory blobs: nothing is
 * written to disk.
 *
 * Errors name the file and the field:
 *   kubeconfig /x: users["admin"].user.client-certificate-data: not valid base64
 */
#ifndef OCPVDR_KUBECONFIG_H
#define OCPVDR_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kc_blob {
    unsigned char *data;   /* malloc'd, NUL-terminated for convenience */
    size_t len;            /* 0 = not given */
} kc_blob;

typedef struct kubeconfig {
    char *source;          /* the file(s) read, or "in-cluster" */
    char *context;         /* context used (NULL for in-cluster) */
    char *cluster;         /* cluster name */
    char *user;            /* user name, NULL for anonymous */
    char *namespace;       /* context namespace, or NULL */

    char *server;          /* "https://host:port", no trailing slash */
    char *tls_server_name; /* SNI / verification name override, or NULL */
    bool insecure;         /* insecure-skip-tls-verify */
    char *ca_file;         /* absolute path, or NULL */
    kc_blob ca_data;       /* decoded PEM */

    char *token;           /* static bearer token (secret; no control characters) */
    char *token_file;      /* absolute path; re-read by the client when it changes */
    char *cert_file;
    kc_blob cert_data;
    char *key_file;
    kc_blob key_data;      /* secret */
} kubeconfig;

/* Reads `path` (a file, or a ':'-separated list) and resolves `context`
 * (NULL = current-context).  Returns 0, or -1 with *err malloc'd. */
int kubeconfig_load(const char *path, const char *context, kubeconfig *out, char **err);

/* Same for YAML/JSON text in memory; `name` is used in messages and `dir`
 * (may be NULL) resolves relative paths. */
int kubeconfig_parse(const char *text, size_t len, const char *name, const char *dir,
                     const char *context, kubeconfig *out, char **err);

/* The in-cluster service account: <dir>/token, <dir>/ca.crt, <dir>/namespace
 * and https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.  dir NULL =
 * $OCPVDR_SA_DIR or /var/run/secrets/kubernetes.io/serviceaccount.  The token
 * is given as token_file (bound tokens rotate). */
int kubeconfig_in_cluster(const char *dir, kubeconfig *out, char **err);

/* True when the in-cluster service account looks available (token file and
 * KUBERNETES_SERVICE_HOST present). */
bool kubeconfig_in_cluster_available(const char *dir);

/* Default kubeconfig location: $KUBECONFIG, else $HOME/.kube/config.
 * Returns a malloc'd string, or NULL when neither applies. */
char *kubeconfig_default_path(void);

void kubeconfig_free(kubeconfig *kc);

/* Decodes standard base64 (whitespace ignored, padding optional).  Returns
 * 0 with a malloc'd NUL-terminated buffer, or -1 when invalid. */
int kc_base64_decode(const char *in, unsigned char **out, size_t *outlen);

/* The index of the first control character (below 0x20 - CR, LF, TAB, ...
 * - or 0x7f) in a bearer token, or -1 when it has none.  A token with one
 * would split or end the Authorization header. */
int kc_token_check(const char *token);

/* Reads a whole (small) file into a malloc'd NUL-terminated buffer; -1 with
 * errno set on failure.  Trailing whitespace is kept. */
int kc_read_file(const char *path, char **out, size_t *len);

#endif
