/* k8s_http.c - the Kubernetes client's HTTP layer: easy-handle setup (TLS,
 * bearer token with tokenFile rotation, client certificates as in-memory
 * blobs), response buffering, API Status error parsing, and the retry policy
 * (backoff with jitter, Retry-After) used by k8s_request and batches. */
#include "k8s_int.h"
#include "xstr.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BODY ((size_t)1 << 30)

/* ---- response buffer ---------------------------------------------------- */

int k8s_resp_append(k8s_resp *r, const char *p, size_t n)
{
    if (n > MAX_BODY - r->len)
        return -1;
    if (xgrow(&r->data, &r->cap, r->len + n + 1) != 0)
        return -1;
    memcpy(r->data + r->len, p, n);
    r->len += n;
    r->data[r->len] = '\0';
    return 0;
}

size_t k8s_resp_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    return k8s_resp_append(ud, ptr, n) == 0 ? n : 0;
}

size_t k8s_resp_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    k8s_resp *r = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(ptr, name, sizeof name - 1) == 0) {
        char v[128];
        size_t vl = n - (sizeof name - 1);
        if (vl >= sizeof v)
            vl = sizeof v - 1;
        memcpy(v, ptr + sizeof name - 1, vl);
        v[vl] = '\0';
        r->retry_after_s = k8s_parse_retry_after(v, time(NULL));
    }
    return n;
}

void k8s_resp_free(k8s_resp *r)
{
    free(r->data);
    r->data = NULL;
    r->len = r->cap = 0;
}

json_t *k8s_parse_body(const char *body, size_t len)
{
    if (!body || len == 0)
        return json_null();
    json_t *v = json_loadb(body, len, JSON_DECODE_ANY, NULL);
    if (v)
        return v;
    v = json_stringn(body, len);
    return v ? v : json_string("(response is not valid UTF-8)");
}

/* ---- errors ------------------------------------------------------------- */

static const char *reason_for(long status)
{
    switch (status) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 406: return "NotAcceptable";
    case 409: return "Conflict";
    case 410: return "Expired";
    case 413: return "RequestEntityTooLarge";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default:  return "";
    }
}

void k8s_error_printf(k8s_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* Copies at most n bytes of text, replacing control characters. */
static void clean_copy(char *dst, size_t cap, const char *src, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

void k8s_error_set(k8s_error *err, const char *method, const char *path, long status,
                   int curl_code, const char *detail, const char *body, size_t len)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    err->status = status;
    err->curl_code = curl_code;
    if (curl_code) {
        snprintf(err->message, sizeof err->message, "%s %s: %s%s%s", method, path,
                 curl_easy_strerror((CURLcode)curl_code), detail && *detail ? ": " : "",
                 detail ? detail : "");
        return;
    }
    char msg[768] = "";
    json_t *st = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *kind = json_string_value(json_object_get(st, "kind"));
    if (st && kind && strcmp(kind, "Status") == 0) {
        const char *reason = json_string_value(json_object_get(st, "reason"));
        const char *m = json_string_value(json_object_get(st, "message"));
        json_int_t code = json_integer_value(json_object_get(st, "code"));
        if (reason)
            snprintf(err->reason, sizeof err->reason, "%s", reason);
        if (m)
            clean_copy(msg, sizeof msg, m, strlen(m));
        if (!status && code)
            err->status = (long)code;
    } else if (body && len) {
        clean_copy(msg, sizeof msg, body, len < 200 ? len : 200);
    }
    json_decref(st);
    if (!err->reason[0])
        snprintf(err->reason, sizeof err->reason, "%s", reason_for(err->status));
    snprintf(err->message, sizeof err->message, "%s %s: %ld%s%s%s%s", method, path,
             err->status, err->reason[0] ? " " : "", err->reason, msg[0] ? ": " : "", msg);
}

const char *k8s_strerror(const k8s_error *err, char *buf, size_t len)
{
    if (!buf || !len)
        return "";
    if (!err)
        snprintf(buf, len, "no error");
    else if (err->message[0])
        snprintf(buf, len, "%s", err->message);
    else if (err->curl_code)
        snprintf(buf, len, "%s", curl_easy_strerror((CURLcode)err->curl_code));
    else
        snprintf(buf, len, "%ld %s", err->status, err->reason);
    return buf;
}

/* ---- retry policy ------------------------------------------------------- */

bool k8s_request_sent(CURL *h)
{
    long n = 0;
    return curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &n) != CURLE_OK || n > 0;
}

bool k8s_retryable(const char *method, long status, int curl_code, bool request_sent)
{
    bool read = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    switch (curl_code) {
    case 0:
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_WRITE_ERROR:
    case CURLE_OUT_OF_MEMORY:
        return false;           /* permanent, or our own doing */
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
        return true;            /* the request never reached the server */
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return read || !request_sent;
    default:
        return !request_sent;
    }
    if (status == 429 || status == 503)
        return true;
    if (status == 500 || status == 502 || status == 504)
        return read;
    return false;
}

long k8s_backoff_ms(int attempt, long retry_after_s, unsigned rnd)
{
    if (retry_after_s >= 0) {
        if (retry_after_s > 120)
            retry_after_s = 120;
        return retry_after_s * 1000 + (long)(rnd % 250);
    }
    long d = 200;
    for (int i = 0; i < attempt && d < 10000; i++)
        d *= 2;
    if (d > 10000)
        d = 10000;
    return d / 2 + (long)(rnd % (unsigned)(d / 2 + 1));
}

long k8s_parse_retry_after(const char *value, time_t now)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    char v[128];
    size_t n = strcspn(value, "\r\n");
    if (n == 0 || n >= sizeof v)
        return -1;
    memcpy(v, value, n);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    v[n] = '\0';
    if (n == 0)
        return -1;
    bool digits = true;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)v[i]))
            digits = false;
    if (digits) {
        if (n > 9)
            return 999999999;
        return strtol(v, NULL, 10);
    }
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1)
        return -1;
    return t > now ? (long)(t - now) : 0;
}

unsigned k8s_rand(void)
{
    static _Thread_local unsigned state;
    if (!state) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = (unsigned)ts.tv_nsec ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)&ts;
        if (!state)
            state = 1;
    }
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

void k8s_sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

char *k8s_urlencode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *o = malloc(n * 3 + 1), *p = o;
    if (!o)
        return NULL;
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        if (isalnum(*q) || *q == '-' || *q == '_' || *q == '.' || *q == '~') {
            *p++ = (char)*q;
        } else {
            *p++ = '%';
            *p++ = hex[*q >> 4];
            *p++ = hex[*q & 15];
        }
    }
    *p = '\0';
    return o;
}

/* ---- handle setup ------------------------------------------------------- */

/* Re-reads the token file when it changed (bound service-account tokens
 * rotate).  Called with c->lock held.  Keeps the old token if the file is
 * briefly unreadable during a rotation. */
int k8s_token_refresh(k8s_client *c, k8s_error *err)
{
    struct stat st;
    if (stat(c->token_file, &st) != 0) {
        if (c->token)
            return 0;
        k8s_error_printf(err, "token file %s: %s", c->token_file, strerror(errno));
        return -1;
    }
    if (c->token && st.st_ino == c->token_ino && st.st_size == c->token_size &&
        st.st_mtim.tv_sec == c->token_mtime.tv_sec &&
        st.st_mtim.tv_nsec == c->token_mtime.tv_nsec)
        return 0;
    char *t;
    size_t len;
    if (kc_read_file(c->token_file, &t, &len) != 0) {
        if (c->token)
            return 0;
        k8s_error_printf(err, "token file %s: %s", c->token_file, strerror(errno));
        return -1;
    }
    while (len > 0 && isspace((unsigned char)t[len - 1]))
        t[--len] = '\0';
    if (len > 0 && kc_token_check(t) >= 0) {
        /* a CR/LF inside would end the Authorization header early: never
         * send it, even in place of a good old token */
        explicit_bzero(t, len);
        free(t);
        k8s_error_printf(err, "token file %s: the token contains a control character (CR, "
                         "LF, ...) inside it: refusing it", c->token_file);
        return -1;
    }
    if (len == 0) {
        free(t);
        if (c->token)
            return 0;
        k8s_error_printf(err, "token file %s: empty", c->token_file);
        return -1;
    }
    if (c->token) {
        explicit_bzero(c->token, strlen(c->token));
        free(c->token);
    }
    c->token = t;
    c->token_ino = st.st_ino;
    c->token_size = st.st_size;
    c->token_mtime = st.st_mtim;
    return 0;
}

static int add_auth(k8s_client *c, struct curl_slist **hdrs, k8s_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (c->token_file)
        rc = k8s_token_refresh(c, err);
    if (rc == 0 && c->token && kc_token_check(c->token) >= 0) {
        rc = -1;   /* checked where it is read; never a header with CR/LF */
        k8s_error_printf(err, "bearer token: contains a control character: not sent");
    }
    if (rc == 0 && c->plain_http && !c->allow_insecure_http && c->token) {
        rc = -1;   /* checked at creation; never a token over plain http */
        k8s_error_printf(err, "bearer token: not sent over plain http (allow_insecure_http)");
    }
    if (rc == 0 && c->token) {
        size_t n = strlen(c->token) + 32;
        char *h = malloc(n);
        if (!h) {
            rc = -1;
            k8s_error_printf(err, "out of memory");
        } else {
            snprintf(h, n, "Authorization: Bearer %s", c->token);
            struct curl_slist *l = curl_slist_append(*hdrs, h);
            explicit_bzero(h, n);
            free(h);
            if (!l) {
                rc = -1;
                k8s_error_printf(err, "out of memory");
            } else {
                *hdrs = l;
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void set_blob(CURL *h, CURLoption opt, const kc_blob *b)
{
    struct curl_blob blob = { .data = b->data, .len = b->len, .flags = CURL_BLOB_COPY };
    curl_easy_setopt(h, opt, &blob);
}

int k8s_easy_setup(k8s_client *c, CURL *h, const char *method, const char *path,
                   const char *content_type, const char *body, struct curl_slist **hdrs,
                   k8s_error *err)
{
    size_t n = strlen(c->url_base) + strlen(path) + 2;
    char *url = malloc(n);
    if (!url) {
        k8s_error_printf(err, "%s %s: out of memory", method, path);
        return -1;
    }
    snprintf(url, n, "%s%s%s", c->url_base, path[0] == '/' ? "" : "/", path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    free(url);   /* curl copies the URL */
    /* never collapse "/../" or "/./": a path is sent as built (its
     * segments were checked by k8s_check_segment) */
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);

    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->cfg.timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    if (c->share)
        curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    if (c->connect_to)
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->connect_to);

    if (c->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (c->ca.len) {
        set_blob(h, CURLOPT_CAINFO_BLOB, &c->ca);
    } else if (c->ca_file) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    }
    if (c->cert.len) {
        set_blob(h, CURLOPT_SSLCERT_BLOB, &c->cert);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    } else if (c->cert_file) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
    }
    if (c->key.len) {
        set_blob(h, CURLOPT_SSLKEY_BLOB, &c->key);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (c->key_file) {
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
    }

    struct curl_slist *l = curl_slist_append(NULL, "Accept: application/json");
    if (l && content_type) {
        char ct[160];
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        struct curl_slist *l2 = curl_slist_append(l, ct);
        if (!l2) {
            curl_slist_free_all(l);
            l = NULL;
        } else {
            l = l2;
        }
    }
    if (!l) {
        k8s_error_printf(err, "%s %s: out of memory", method, path);
        return -1;
    }
    if (add_auth(c, &l, err) != 0) {
        curl_slist_free_all(l);
        char m[sizeof err->message];
        snprintf(m, sizeof m, "%s", err->message);
        k8s_error_printf(err, "%s %s: %s", method, path, m);
        return -1;
    }
    *hdrs = l;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);

    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
            curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, body);
        } else if (strcmp(method, "DELETE") != 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, "");
        }
    }
    return 0;
}

/* ---- per-thread easy handles -------------------------------------------- */

/* libcurl does not support sharing a connection cache between concurrent
 * threads (CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT), so each thread keeps
 * an easy handle per client (for the last TL_SLOTS clients it used): their
 * connections stay open between requests.  Between requests a cached
 * handle is detached from the client's share, so nothing it holds points
 * into a client.  Freed at thread exit, or by k8s_client_free() in the
 * thread that frees the client. */
#define TL_SLOTS 4
typedef struct tl_handles {
    unsigned long client_id[TL_SLOTS];
    CURL *h[TL_SLOTS];
    unsigned next;     /* round-robin eviction */
} tl_handles;

static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static int tl_ok;

static void tl_free(void *p)
{
    tl_handles *t = p;
    for (int i = 0; t && i < TL_SLOTS; i++)
        if (t->h[i])
            curl_easy_cleanup(t->h[i]);
    free(t);
}

static void tl_init(void)
{
    tl_ok = pthread_key_create(&tl_key, tl_free) == 0;
}

static tl_handles *tl_get(bool create)
{
    pthread_once(&tl_once, tl_init);
    if (!tl_ok)
        return NULL;
    tl_handles *t = pthread_getspecific(tl_key);
    if (!t && create) {
        t = calloc(1, sizeof *t);
        if (t && pthread_setspecific(tl_key, t) != 0) {
            free(t);
            t = NULL;
        }
    }
    return t;
}

/* The calling thread's handle for client c (reset), or a fresh handle the
 * caller must clean up itself when *owned is set. */
static CURL *handle_get(k8s_client *c, bool *owned)
{
    *owned = false;
    tl_handles *t = tl_get(true);
    if (!t) {
        *owned = true;
        return curl_easy_init();
    }
    int slot = -1;
    for (int i = 0; i < TL_SLOTS; i++) {
        if (t->h[i] && t->client_id[i] == c->id) {
            curl_easy_reset(t->h[i]);
            return t->h[i];
        }
        if (!t->h[i] && slot < 0)
            slot = i;
    }
    if (slot < 0) {
        slot = (int)(t->next++ % TL_SLOTS);
        curl_easy_cleanup(t->h[slot]);
    }
    t->h[slot] = curl_easy_init();
    t->client_id[slot] = c->id;
    return t->h[slot];
}

void k8s_thread_handle_drop(k8s_client *c)
{
    tl_handles *t = tl_get(false);
    for (int i = 0; t && i < TL_SLOTS; i++)
        if (t->h[i] && t->client_id[i] == c->id) {
            curl_easy_cleanup(t->h[i]);
            t->h[i] = NULL;
            t->client_id[i] = 0;
        }
}

/* ---- the generic request with retries ----------------------------------- */

int k8s_request(k8s_client *c, const char *method, const char *path,
                const char *content_type, const char *body, json_t **out,
                k8s_error *err)
{
    k8s_error scratch;
    if (!err)
        err = &scratch;
    if (out)
        *out = NULL;
    for (int attempt = 0;; attempt++) {
        bool owned;
        CURL *h = handle_get(c, &owned);
        if (!h) {
            k8s_error_printf(err, "%s %s: cannot create a curl handle", method, path);
            return -1;
        }
        struct curl_slist *hdrs = NULL;
        if (k8s_easy_setup(c, h, method, path, content_type, body, &hdrs, err) != 0) {
            if (owned)
                curl_easy_cleanup(h);
            return -1;
        }
        k8s_resp resp = { .retry_after_s = -1 };
        char ebuf[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, k8s_resp_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, k8s_resp_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        if (cc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        bool sent = cc == CURLE_OK || k8s_request_sent(h);
        /* drop header / body / error-buffer pointers that die with this loop */
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(h, CURLOPT_SHARE, NULL);
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, NULL);
        if (owned)
            curl_easy_cleanup(h);
        curl_slist_free_all(hdrs);

        if (cc == CURLE_OK && status >= 200 && status < 300) {
            memset(err, 0, sizeof *err);
            err->status = status;
            if (out) {
                *out = k8s_parse_body(resp.data, resp.len);
                if (!*out) {
                    k8s_resp_free(&resp);
                    k8s_error_printf(err, "%s %s: out of memory", method, path);
                    return -1;
                }
            }
            k8s_resp_free(&resp);
            return 0;
        }
        k8s_error_set(err, method, path, status, (int)cc, ebuf, resp.data, resp.len);
        k8s_resp_free(&resp);
        if (attempt >= c->cfg.max_retries || !k8s_retryable(method, status, (int)cc, sent))
            return -1;
        k8s_sleep_ms(k8s_backoff_ms(attempt, resp.retry_after_s, k8s_rand()));
    }
}
