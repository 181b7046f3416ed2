/* k8s_int.h - internals shared by the Kubernetes client's source files
 * (k8s.c, k8s_http.c, k8s_resources.c, k8s_watch.c, k8s_batch.c) and its
 * unit tests.  Not part of the public contract (k8s.h). */
#ifndef OCPVDR_K8S_INT_H
#define OCPVDR_K8S_INT_H

#include "k8s.h"
#include "kubeconfig.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sys/types.h>
#include <time.h>

struct k8s_client {
    unsigned long id;        /* unique per client, for per-thread handles */
    char *server;            /* https://host:port, no trailing slash */
    char *namespace;         /* context / service-account namespace, or NULL */
    char *url_base;          /* server with the host replaced by tls_server_name */
    struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO for tls_server_name, or NULL */
    bool insecure;           /* TLS verification off */
    bool plain_http;         /* server is http:// */
    bool allow_insecure_http; /* credentials may go over plain http (k8s_conn) */
    char *ca_file;
    kc_blob ca;
    char *cert_file;
    kc_blob cert;
    char *key_file;
    kc_blob key;

    pthread_mutex_t lock;    /* token refresh and discovery cache */
    char *token;             /* current bearer token (static or from token_file) */
    char *token_file;
    struct timespec token_mtime;
    ino_t token_ino;
    off_t token_size;

    k8s_config cfg;
    char *user_agent;
    char *field_manager;

    CURLSH *share;
    pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];

    /* discovery cache */
    json_t *disc_seen;       /* "group/version" -> true once fetched */
    k8s_resource **disc;
    size_t ndisc, capdisc;
};

/* Growable response buffer plus the headers we care about. */
typedef struct k8s_resp {
    char *data;
    size_t len, cap;
    long retry_after_s;      /* -1 = none */
} k8s_resp;

size_t k8s_resp_write(char *ptr, size_t size, size_t nmemb, void *ud);
size_t k8s_resp_header(char *ptr, size_t size, size_t nmemb, void *ud);
int k8s_resp_append(k8s_resp *r, const char *p, size_t n);
void k8s_resp_free(k8s_resp *r);

/* Sets up an easy handle for one request: URL, TLS, auth, method, body,
 * timeouts, sharing.  *hdrs must be freed by the caller after the transfer.
 * Returns -1 with err (e.g. unreadable token file). */
int k8s_easy_setup(k8s_client *c, CURL *h, const char *method, const char *path,
                   const char *content_type, const char *body, struct curl_slist **hdrs,
                   k8s_error *err);

/* Fills err from a response: curl failure (curl_code != 0) or an HTTP
 * status with an optional Status body.  The message names method + path. */
void k8s_error_set(k8s_error *err, const char *method, const char *path, long status,
                   int curl_code, const char *detail, const char *body, size_t len);
/* Parses a response body into JSON (non-JSON text becomes a JSON string,
 * an empty body null).  Never NULL except on allocation failure. */
json_t *k8s_parse_body(const char *body, size_t len);
void k8s_error_printf(k8s_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Retry policy (see k8s.h): may this failure be retried?  request_sent is
 * false when curl never sent the request (CURLINFO_REQUEST_SIZE == 0, e.g.
 * a connect or TLS handshake timeout): then any method may be retried. */
bool k8s_retryable(const char *method, long status, int curl_code, bool request_sent);
/* Whether the handle's request left this host (see above). */
bool k8s_request_sent(CURL *h);
/* Delay before retry number `attempt` (0-based): exponential from 200 ms,
 * capped at 10 s, with jitter in [d/2, d]; Retry-After (seconds, capped at
 * 120 s) wins when given (>= 0).  rnd is a random 32-bit value. */
long k8s_backoff_ms(int attempt, long retry_after_s, unsigned rnd);
/* Parses a Retry-After value: delta seconds or an HTTP date; -1 if invalid. */
long k8s_parse_retry_after(const char *value, time_t now);
unsigned k8s_rand(void);
void k8s_sleep_ms(long ms);

/* Appends ?key=value or &key=value (value URL-encoded) to a malloc'd path;
 * on failure frees *path, sets it NULL and returns -1. */
int k8s_qs_add(char **path, const char *key, const char *value);

/* The path + query of a watch request (watch=1, bookmarks, sendInitialEvents
 * + resourceVersionMatch=NotOlderThan, resourceVersion, selectors,
 * timeoutSeconds; values URL-encoded).  malloc'd; NULL with err (may be
 * NULL) on an invalid namespace or out of memory.  Defined in k8s_watch.c;
 * internal, exposed for the unit test. */
char *k8s_watch_path(const k8s_resource *r, const char *ns, const k8s_watch_opts *o,
                     k8s_error *err);

/* The body of a watch (k8s_watch_lines.c, no I/O): chunks in, one callback
 * per newline-terminated JSON event out.  Zero-initialise, set cb or line_cb,
 * ud, stop (optional) and max_line (0 = K8S_WATCH_MAX_LINE). */
#define K8S_WATCH_MAX_LINE (16u * 1024 * 1024)
typedef struct k8s_wlines {
    k8s_resp buf;            /* bytes not yet terminated by '\n' */
    size_t max_line;         /* longest event line accepted */
    k8s_watch_cb cb;
    k8s_watch_line_cb line_cb;   /* called instead of cb when set */
    void *ud;
    volatile int *stop;
    bool stopped;            /* by the callback or the stop flag */
    bool bad_event;          /* an undecodable or over-long line (bad_msg) */
    char bad_msg[200];
} k8s_wlines;
/* Takes n more bytes and dispatches every complete line.  false when the
 * stream must end: stopped, bad_event, or (neither set) out of memory. */
bool k8s_wlines_feed(k8s_wlines *l, const char *p, size_t n);
/* The stream ended: dispatches a last line that had no '\n'.  false as above. */
bool k8s_wlines_end(k8s_wlines *l);
void k8s_wlines_free(k8s_wlines *l);

/* Percent-encodes a query value (RFC 3986 unreserved kept). malloc'd. */
char *k8s_urlencode(const char *s);

/* Fills a listed item's apiVersion and kind from r when missing (the API
 * omits them in lists). */
void k8s_fill_type(json_t *item, const k8s_resource *r);

/* Releases the calling thread's cached easy handle of client c. */
void k8s_thread_handle_drop(k8s_client *c);

/* Re-reads c->token_file when it changed; call with c->lock held. */
int k8s_token_refresh(k8s_client *c, k8s_error *err);

/* The DeleteOptions body for k8s_delete_opts (NULL opts = defaults). */
json_t *k8s_delete_body(const k8s_delete_opts *o);

/* Path and body of an apply / delete request (used by k8s_apply, k8s_delete
 * and batches); both malloc'd.  -1 with err on an invalid object. */
int k8s_build_apply(k8s_client *c, const k8s_resource *r, json_t *obj,
                    const k8s_write_opts *opts, char **path, char **body, k8s_error *err);
/* Path and body of a JSON merge patch (k8s_merge_patch and batches). */
int k8s_build_merge_patch(k8s_client *c, const k8s_resource *r, const char *ns,
                          const char *name, json_t *patch, const k8s_write_opts *opts,
                          char **path, char **body, k8s_error *err);
int k8s_build_delete(const k8s_resource *r, const char *ns, const char *name,
                     const k8s_delete_opts *opts, char **path, char **body, k8s_error *err);

/* Frees the discovery cache. */
void k8s_discovery_free(k8s_client *c);

/* The resolved connection, for tests and k8sctl: fills kc from conn (same
 * rules as k8s_client_new).  -1 with err. */
int k8s_conn_resolve(const k8s_conn *conn, kubeconfig *kc, k8s_error *err);

#endif
