/* k8s.h - a small Kubernetes API client on libcurl and jansson.
 *
 * Connection: a kubeconfig file (see kubeconfig.h), the in-cluster service
 * account, or explicit host + bearer token + CA, with the same parameter names
 * and K8S_AUTH_* environment fallbacks as kubernetes.core.
 *
 * Verbs: get, list (paginated with limit/continue, selectors), watch
 * (streamed, bookmarks, timeouts), server-side apply, merge patch, create,
 * delete (propagation policy, uid / resourceVersion preconditions).
 * Batches: many requests in flight at once on one curl multi handle
 * (gets, applies, merge patches, deletes, whole paginated lists; several
 * clients at once).
 *
 * Every failing call fills a k8s_error: the HTTP status, and the API
 * `Status` reason and message when the server sent one, or the curl error.
 * Secrets (tokens, keys) never appear in error messages.
 *
 * Transient failures (connection errors, 429, 500, 502, 503, 504) are retried
 * with exponential backoff and jitter, honouring Retry-After, up to
 * k8s_config.max_retries times.  Writes are retried only when the request
 * never reached the server or the server answered 429/503 (safe to repeat:
 * apply and delete-with-precondition are idempotent).
 *
 * Threads: one k8s_client may be used from several threads at once (e.g. one
 * watch per thread); each thread keeps its own connections.  A k8s_batch
 * belongs to one thread.  The token file (tokenFile, service account) is
 * re-read whenever it changes, so rotated tokens are picked up.
 */
#ifndef OCPVDR_K8S_H
#define OCPVDR_K8S_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- errors ------------------------------------------------------------- */

typedef struct k8s_error {
    long status;          /* HTTP status, 0 when no response (see curl_code) */
    int curl_code;        /* CURLcode when the transport failed, else 0 */
    char reason[64];      /* API Status.reason, e.g. "NotFound", "Forbidden", "Conflict" */
    char message[1024];   /* human-readable, names the request (verb + path) */
} k8s_error;

/* ---- connection --------------------------------------------------------- */

/* Connection parameters, kubernetes.core names.  NULL / -1 = not given.
 * Resolution order: explicit host (+api_key/client cert) > kubeconfig
 * (+context) > in-cluster service account > ~/.kube/config.
 * k8s_conn_from_env() fills unset fields from K8S_AUTH_KUBECONFIG,
 * K8S_AUTH_CONTEXT, K8S_AUTH_HOST, K8S_AUTH_API_KEY, K8S_AUTH_VERIFY_SSL,
 * K8S_AUTH_SSL_CA_CERT, K8S_AUTH_CERT_FILE, K8S_AUTH_KEY_FILE (and KUBECONFIG). */
typedef struct k8s_conn {
    const char *kubeconfig;
    const char *context;
    const char *host;
    const char *api_key;
    const char *ca_cert;       /* path */
    const char *client_cert;   /* path */
    const char *client_key;    /* path */
    int validate_certs;        /* 1, 0, or -1 = default (true) */
    bool in_cluster;           /* force the service account */
    /* A bearer token or client certificate is never sent over plain
     * http:// unless this is set (k8s_client_new fails instead). */
    bool allow_insecure_http;
} k8s_conn;

void k8s_conn_from_env(k8s_conn *c);

/* Fills a k8s_conn from a JSON object holding kubernetes.core-style
 * parameters (a module's params, or a `source:` sub-dict).  Borrowed strings
 * point into `params`, which must outlive the k8s_conn. */
void k8s_conn_from_json(k8s_conn *c, json_t *params);

/* The module-spec entries for these parameters (k8s_conn_opts[]) and the
 * module warnings about an unsafe transport are the module runtime's side:
 * connect/k8s_conn_opts.h (this client does not depend on the runtime). */

typedef struct k8s_client k8s_client;

typedef struct k8s_config {
    int max_retries;           /* default 5 (0 = default); negative = no retries */
    long timeout_ms;           /* per request, default 30000; 0 = none */
    long connect_timeout_ms;   /* default 10000 */
    int max_in_flight;         /* batch parallelism, default 16 */
    const char *user_agent;    /* default "ocpv-dr/<version>" */
    const char *field_manager; /* default "ocpv-dr" */
} k8s_config;

/* Creates a client; cfg may be NULL for defaults.  Returns NULL and fills err
 * (e.g. "kubeconfig /x: context \"foo\" not found"). */
k8s_client *k8s_client_new(const k8s_conn *conn, const k8s_config *cfg, k8s_error *err);
void k8s_client_free(k8s_client *c);
const char *k8s_client_server(const k8s_client *c);   /* the API server URL */
/* Transport safety, for warnings: the server is plain http:// (nothing
 * encrypted, the server not authenticated), or TLS certificate verification
 * is off (validate_certs false / insecure-skip-tls-verify). */
bool k8s_client_plain_http(const k8s_client *c);
bool k8s_client_tls_unverified(const k8s_client *c);
/* The default namespace of the connection: the kubeconfig context's
 * namespace or the service account's; NULL when none was given. */
const char *k8s_client_namespace(const k8s_client *c);

/* ---- resources ---------------------------------------------------------- */

typedef struct k8s_resource {
    const char *group;       /* "" for core */
    const char *version;     /* "v1", "v1beta2" */
    const char *kind;        /* "PersistentVolume" */
    const char *plural;      /* "persistentvolumes" */
    bool namespaced;
} k8s_resource;

/* Built-in table: core/v1 PersistentVolume, PersistentVolumeClaim, Namespace,
 * ConfigMap, Secret; snapshot.storage.k8s.io/v1 VolumeSnapshot,
 * VolumeSnapshotContent, VolumeSnapshotClass; storage.k8s.io/v1
 * StorageClass; kubevirt.io/v1 VirtualMachine,
 * VirtualMachineInstance; cdi.kubevirt.io/v1beta1 DataVolume; velero.io/v1
 * Backup, Restore, BackupStorageLocation, Schedule; longhorn.io/v1beta2
 * Volume, BackupVolume, Backup, BackupTarget, Setting. */
const k8s_resource *k8s_resource_builtin(const char *api_version, const char *kind);
/* The built-in entry of a kind given by name alone ("StorageClass"); NULL
 * when the table has no such kind, or has it in two groups (Backup: velero.io
 * and longhorn.io - the caller must ask for the apiVersion). */
const k8s_resource *k8s_resource_builtin_kind(const char *kind);
/* "group/version" or "version" (the apiVersion) of a resource, into buf. */
const char *k8s_api_version(const k8s_resource *r, char *buf, size_t len);

/* Built-in table first, then API discovery (cached per client).  Returns
 * NULL with err filled ("unknown kind Foo in apiVersion x/v1") when the
 * server does not serve it. */
const k8s_resource *k8s_resource_find(k8s_client *c, const char *api_version,
                                      const char *kind, k8s_error *err);

/* Whether `value` may be one segment of a request path: not empty, not "."
 * or ".." (libcurl and servers collapse those: a claim named ".." would
 * address its Namespace), no '/', no '%' (the apiserver's own rule for
 * names), no control character.  -1 with err naming `what` and the reason.
 * Every path this client builds goes through it. */
int k8s_check_segment(const char *what, const char *value, k8s_error *err);

/* "/api/v1/namespaces/ns/persistentvolumeclaims/name" etc. into *out
 * (malloc'd).  ns ignored for cluster-scoped resources; NULL or "" = all
 * namespaces (collections only: a named object of a namespaced kind needs
 * one); name NULL = the collection.  Every segment is checked with
 * k8s_check_segment: -1 with err (nothing is requested). */
int k8s_path_build(const k8s_resource *r, const char *ns, const char *name, char **out,
                   k8s_error *err);
/* The same, NULL on an invalid segment or out of memory. */
char *k8s_path(const k8s_resource *r, const char *ns, const char *name);

/* ---- verbs (all return 0 on success, -1 with err filled) ---------------- */

int k8s_get(k8s_client *c, const k8s_resource *r, const char *ns,
            const char *name, json_t **out, k8s_error *err);

typedef struct k8s_list_opts {
    const char *label_selector;
    const char *field_selector;
    long limit;                 /* page size, default 500 */
} k8s_list_opts;

/* Lists all pages.  *items is a new JSON array of objects, each with
 * apiVersion and kind filled in (the API omits them in lists).
 * resource_version (optional) receives the list's resourceVersion for a
 * subsequent watch (malloc'd).  ns NULL = all namespaces.  Every page must
 * pass k8s_list_check: an answer that is not a list (`200 {}`, an HTML
 * login page from a proxy, items missing or null) fails the whole call -
 * it is never read as "no objects". */
int k8s_list(k8s_client *c, const k8s_resource *r, const char *ns,
             const k8s_list_opts *opts, json_t **items, char **resource_version,
             k8s_error *err);

/* A listing stops growing: at most K8S_LIST_MAX_PAGES pages, at most
 * K8S_LIST_MAX_EMPTY_PAGES empty pages in a row that promise more, never
 * the continue token that was sent. */
#define K8S_LIST_MAX_PAGES 100000
#define K8S_LIST_MAX_EMPTY_PAGES 10
/* After a checked page: *next (malloc'd) = its continue token, NULL at the
 * end.  sent = the token this page was asked with (NULL for the first);
 * *pages and *empty_run start at 0 and are kept by the caller.  -1 with
 * err (reason "EndlessList") when the server pages endlessly. */
int k8s_list_continue(const json_t *page, const char *sent, long *pages, long *empty_run,
                      const k8s_resource *r, const char *ns, char **next, k8s_error *err);

/* Whether a 2xx answer to a list request is a list: a JSON object whose
 * kind ends in "List" with an `items` array of objects.  -1 with err
 * (status 200-299 kept, reason "NotAList") naming the resource, the
 * namespace and the path. */
int k8s_list_check(const json_t *page, const k8s_resource *r, const char *ns,
                   const char *path, long status, k8s_error *err);
/* Whether a 2xx answer to a GET of one object is that object: a JSON
 * object whose kind (when given) is r->kind, whose metadata.name is `name`
 * and, for a namespaced kind asked in namespace `ns`, whose
 * metadata.namespace (when given) is ns.  name / ns NULL: not compared.
 * -1 with err as above. */
int k8s_object_check(const json_t *obj, const k8s_resource *r, const char *ns,
                     const char *name, const char *path, long status, k8s_error *err);

typedef struct k8s_write_opts {
    bool dry_run;               /* dryRun=All */
    bool force;                 /* apply: force=true (take over conflicting fields) */
    const char *field_manager;  /* default from k8s_config */
} k8s_write_opts;

/* Server-side apply (PATCH application/apply-patch+yaml, body in JSON). */
int k8s_apply(k8s_client *c, const k8s_resource *r, json_t *obj,
              const k8s_write_opts *opts, json_t **out, k8s_error *err);
int k8s_create(k8s_client *c, const k8s_resource *r, json_t *obj,
               const k8s_write_opts *opts, json_t **out, k8s_error *err);
int k8s_merge_patch(k8s_client *c, const k8s_resource *r, const char *ns,
                    const char *name, json_t *patch, const k8s_write_opts *opts,
                    json_t **out, k8s_error *err);
/* Replaces the status subresource (used by lab test controllers). */
int k8s_update_status(k8s_client *c, const k8s_resource *r, json_t *obj,
                      json_t **out, k8s_error *err);

typedef struct k8s_delete_opts {
    const char *propagation;    /* "Foreground", "Background", "Orphan"; NULL = server default */
    const char *uid;            /* precondition */
    const char *resource_version; /* precondition */
    bool dry_run;
} k8s_delete_opts;

/* NotFound is an error here (status 404, reason NotFound); callers that
 * treat it as success check err->status. */
int k8s_delete(k8s_client *c, const k8s_resource *r, const char *ns,
               const char *name, const k8s_delete_opts *opts, k8s_error *err);

/* ---- watch -------------------------------------------------------------- */

/* Called for each event.  type is "ADDED", "MODIFIED", "DELETED", "BOOKMARK"
 * or "ERROR" (object is then a Status; code 410 means the resourceVersion is
 * too old: relist).  Return 0 to continue, non-zero to stop the watch. */
typedef int (*k8s_watch_cb)(void *ud, const char *type, json_t *object);
/* The same, plus the event's line as the server sent it (without the
 * newline), for callers that pass the object's JSON on unchanged. */
typedef int (*k8s_watch_line_cb)(void *ud, const char *type, json_t *object,
                                 const char *line, size_t len);

typedef struct k8s_watch_opts {
    const char *resource_version;  /* start point (from k8s_list) */
    const char *label_selector;
    const char *field_selector;
    long timeout_seconds;          /* server-side timeoutSeconds; 0 = server default */
    bool allow_bookmarks;
    volatile int *stop;            /* optional: watch returns soon after *stop != 0 */
    /* Streaming list (WatchList, Kubernetes >= 1.27 behind a gate, on by
     * default since 1.32): sendInitialEvents=true&resourceVersionMatch=
     * NotOlderThan.  The stream starts with a synthetic ADDED per existing
     * object (from the API server's watch cache, no paginated LIST), then a
     * BOOKMARK annotated k8s.io/initial-events-end=true (bookmarks are
     * turned on), then live events.  resource_version empty = a consistent
     * (most recent) starting point.  A server without the feature answers
     * 4xx (caller falls back to LIST + WATCH). */
    bool send_initial_events;
    k8s_watch_line_cb line_cb;     /* optional: called instead of cb */
} k8s_watch_opts;

/* Streams one watch request until the server closes it, the callback stops
 * it, *stop is set, or the connection fails.  Returns 0 when the stream ended
 * normally (server timeout or callback/stop), -1 with err otherwise.  Does
 * not retry: the caller resumes from the last resourceVersion it saw. */
int k8s_watch(k8s_client *c, const k8s_resource *r, const char *ns,
              const k8s_watch_opts *opts, k8s_watch_cb cb, void *ud,
              k8s_error *err);

/* ---- batches: many requests in flight ---------------------------------- */

typedef struct k8s_batch k8s_batch;

/* Called once per request when it completes (after retries). rc 0 = success,
 * out is the parsed response (owned by the callee: incref to keep). */
typedef void (*k8s_batch_cb)(void *ud, int rc, json_t *out, const k8s_error *err);

k8s_batch *k8s_batch_new(k8s_client *c);
/* Queue requests; the body is copied.  Nothing is sent until run. */
void k8s_batch_apply(k8s_batch *b, const k8s_resource *r, json_t *obj,
                     const k8s_write_opts *opts, k8s_batch_cb cb, void *ud);
/* A JSON merge patch, as k8s_merge_patch sends it (the patch is copied; a
 * metadata.resourceVersion in it makes it conditional: 409 Conflict when the
 * object changed since).  Retried like the other writes (only when it never
 * reached the server, or on 429/503). */
void k8s_batch_merge_patch(k8s_batch *b, const k8s_resource *r, const char *ns,
                           const char *name, json_t *patch, const k8s_write_opts *opts,
                           k8s_batch_cb cb, void *ud);
void k8s_batch_get(k8s_batch *b, const k8s_resource *r, const char *ns,
                   const char *name, k8s_batch_cb cb, void *ud);
void k8s_batch_delete(k8s_batch *b, const k8s_resource *r, const char *ns,
                      const char *name, const k8s_delete_opts *opts,
                      k8s_batch_cb cb, void *ud);
/* A whole list, as k8s_list does it (every page checked, continue tokens
 * followed, endless listings refused, an expired token relisted): out is
 * the array of all items (apiVersion and kind filled in).  Pages of one
 * list follow each other; different lists are in flight at once.  c: the
 * client to ask, NULL = the batch's own - one batch can list the primary
 * and the DR cluster at once (max_in_flight is the batch client's). */
void k8s_batch_list(k8s_batch *b, k8s_client *c, const k8s_resource *r, const char *ns,
                    const k8s_list_opts *opts, k8s_batch_cb cb, void *ud);
/* Runs everything queued with up to max_in_flight requests at once; returns
 * the number of failed requests.  The batch can be reused afterwards. */
int k8s_batch_run(k8s_batch *b);
void k8s_batch_free(k8s_batch *b);

/* ---- generic request --------------------------------------------------- */

/* method "GET"/"POST"/"PUT"/"PATCH"/"DELETE"; path with query string; body
 * may be NULL.  Non-2xx is an error (err filled from the Status).  out may be
 * NULL.  Retries as described above. */
int k8s_request(k8s_client *c, const char *method, const char *path,
                const char *content_type, const char *body, json_t **out,
                k8s_error *err);

/* Formats an error as "verb path: 403 Forbidden: message" into buf. */
const char *k8s_strerror(const k8s_error *err, char *buf, size_t len);

#endif
