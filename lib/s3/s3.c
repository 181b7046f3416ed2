/* s3.c - the S3 client: request URLs, SigV4 signing (libcurl's
 * CURLOPT_AWS_SIGV4 "aws:amz:<region>:s3"), retries, streamed GetObject with
 * resume, ListObjectsV2 paging and HeadObject.  XML parsing is in s3_xml.c,
 * the credentials file in s3_creds.c. */
#include "s3.h"
#include "xstr.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* SHA-256 of the empty payload: every request this client sends has no body. */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ERR_BODY_MAX (64 * 1024)

struct s3_client {
    char *scheme_host;    /* "https://host:port" (no trailing slash) */
    char *host;           /* "host:port" */
    char *base_path;      /* path prefix of the endpoint ("" or "/sub") */
    char *region, *bucket, *access_key, *secret_key, *token, *ca_cert;
    char *sigv4;          /* "aws:amz:<region>:s3" */
    bool validate_certs, path_style, plain_http;
    int retries, max_list_pages;
    long connect_timeout, stall_timeout;
};

void s3_free(s3_client *c)
{
    if (!c)
        return;
    free(c->scheme_host);
    free(c->host);
    free(c->base_path);
    free(c->region);
    free(c->bucket);
    free(c->access_key);
    if (c->secret_key) {
        memset(c->secret_key, 0, strlen(c->secret_key));
        free(c->secret_key);
    }
    if (c->token) {
        memset(c->token, 0, strlen(c->token));
        free(c->token);
    }
    free(c->ca_cert);
    free(c->sigv4);
    free(c);
}

static bool bucket_name_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return false;
    for (const char *p = b; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.'))
            return false;
    return true;
}

s3_client *s3_new(const s3_conf *conf, char **err)
{
    static bool curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = true;
    }
    if (!conf->bucket || !*conf->bucket) {
        xerr_set(err, "s3: bucket is required");
        return NULL;
    }
    if (!bucket_name_ok(conf->bucket)) {
        xerr_set(err, "s3: bucket '%s' is not a valid bucket name (3-63 of a-z, 0-9, '-', '.')",
                 conf->bucket);
        return NULL;
    }
    if (!conf->access_key || !*conf->access_key || !conf->secret_key || !*conf->secret_key) {
        xerr_set(err, "s3: access_key and secret_key are required");
        return NULL;
    }
    /* credentials go into headers (the session token verbatim): a line
     * break would end the header and start another - refused, naming the
     * field, never the value */
    static const char *const cred_names[] = { "access_key", "secret_key", "session_token" };
    const char *creds[] = { conf->access_key, conf->secret_key, conf->session_token };
    for (size_t i = 0; i < 3; i++)
        for (const unsigned char *p = (const unsigned char *)creds[i]; p && *p; p++)
            if (*p < 0x20 || *p == 0x7f) {
                xerr_set(err, "s3: %s contains a control character (a line break?): refused",
                         cred_names[i]);
                return NULL;
            }
    s3_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->region = strdup(conf->region && *conf->region ? conf->region : "us-east-1");
    c->bucket = strdup(conf->bucket);
    c->access_key = strdup(conf->access_key);
    c->secret_key = strdup(conf->secret_key);
    c->token = conf->session_token && *conf->session_token ? strdup(conf->session_token) : NULL;
    c->ca_cert = conf->ca_cert && *conf->ca_cert ? strdup(conf->ca_cert) : NULL;
    c->validate_certs = conf->validate_certs;
    c->path_style = conf->path_style;
    c->retries = conf->retries < 0 ? 3 : conf->retries;
    c->connect_timeout = conf->connect_timeout > 0 ? conf->connect_timeout : 15;
    c->stall_timeout = conf->stall_timeout > 0 ? conf->stall_timeout : 60;
    c->max_list_pages = conf->max_list_pages > 0 ? conf->max_list_pages : S3_LIST_MAX_PAGES;
    c->sigv4 = xfmt("aws:amz:%s:s3", c->region);

    /* Split the endpoint into scheme://host[:port] and an optional base path. */
    char *ep = NULL;
    if (!conf->endpoint || !*conf->endpoint) {
        ep = xfmt("https://s3.%s.amazonaws.com", c->region);
    } else if (strstr(conf->endpoint, "://")) {
        ep = strdup(conf->endpoint);
    } else {
        ep = xfmt("https://%s", conf->endpoint);
    }
    if (!ep || !c->region || !c->bucket || !c->access_key || !c->secret_key || !c->sigv4) {
        free(ep);
        s3_free(c);
        xerr_set(err, "s3: out of memory");
        return NULL;
    }
    char *sep = strstr(ep, "://");
    if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) {
        xerr_set(err, "s3: endpoint '%s' must use http:// or https://", conf->endpoint);
        free(ep);
        s3_free(c);
        return NULL;
    }
    c->plain_http = strncmp(ep, "http://", 7) == 0;
    if (c->plain_http && !conf->allow_insecure_http) {
        /* every request carries the access key id and a signature, and the
         * session token itself: never over plain http unless asked to */
        xerr_set(err, "s3: endpoint '%s' is plain http: the access key id, request signatures "
                      "and session token would travel unencrypted; use https:// or set "
                      "allow_insecure_http: true", conf->endpoint);
        free(ep);
        s3_free(c);
        return NULL;
    }
    char *hoststart = sep + 3;
    char *slash = strchr(hoststart, '/');
    c->base_path = strdup(slash ? slash : "");
    if (slash)
        *slash = '\0';
    size_t bl = strlen(c->base_path);
    while (bl > 0 && c->base_path[bl - 1] == '/')
        c->base_path[--bl] = '\0';
    c->host = strdup(hoststart);
    *hoststart = '\0';
    c->scheme_host = strdup(ep);           /* "https://" */
    free(ep);
    if (!c->host || !*c->host) {
        xerr_set(err, "s3: endpoint '%s' has no host", conf->endpoint);
        s3_free(c);
        return NULL;
    }
    return c;
}

bool s3_is_plain_http(const s3_client *c)
{
    return c && c->plain_http;
}

char *s3_display(const s3_client *c, const char *key)
{
    return xfmt("s3://%s/%s", c->bucket, key ? key : "");
}

/* Percent-encodes per SigV4 (RFC 3986 unreserved kept); keep_slash for paths. */
static char *uri_encode(const char *s, bool keep_slash)
{
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
            (keep_slash && *p == '/'))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = '\0';
    return out;
}

char *s3_object_url(const s3_client *c, const char *key)
{
    char *ek = uri_encode(key ? key : "", true);
    if (!ek)
        return NULL;
    char *url = c->path_style
        ? xfmt("%s%s%s/%s/%s", c->scheme_host, c->host, c->base_path, c->bucket, ek)
        : xfmt("%s%s.%s%s/%s", c->scheme_host, c->bucket, c->host, c->base_path, ek);
    free(ek);
    return url;
}

/* ------------------------------------------------------------ one request */

typedef struct req {
    s3_client *c;
    const char *op, *key;       /* for messages */
    s3_sink sink;               /* 2xx bodies go here (NULL = into mem) */
    void *ud;
    long long resume_from;      /* Range start asked for (0 = none) */
    bool body_started;
    long long skip;             /* bytes to drop (server ignored our Range) */
    long long delivered;        /* bytes handed to sink / mem this request */
    bool sink_stopped;
    long status;
    char *mem; size_t len, cap, max;  /* 2xx body when sink == NULL */
    bool mem_overflow;
    char *ebody; size_t elen;         /* non-2xx body, capped */
    long long content_length;
    char etag[128];
    int attempts;
    long long total;
} req;

static bool is_success(long st) { return st >= 200 && st < 300; }

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    req *r = ud;
    size_t len = size * n;
    if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) {
        r->etag[0] = '\0';
        r->content_length = -1;
    } else if (len > 5 && strncasecmp(buf, "etag:", 5) == 0) {
        size_t i = 5, j = len;
        while (i < j && isspace((unsigned char)buf[i])) i++;
        while (j > i && isspace((unsigned char)buf[j - 1])) j--;
        if (j - i < sizeof r->etag) {
            memcpy(r->etag, buf + i, j - i);
            r->etag[j - i] = '\0';
        }
    } else if (len > 15 && strncasecmp(buf, "content-length:", 15) == 0) {
        r->content_length = strtoll(buf + 15, NULL, 10);
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud)
{
    req *r = ud;
    size_t len = size * n;
    if (!is_success(r->status)) {
        size_t room = ERR_BODY_MAX - r->elen, take = len < room ? len : room;
        if (take) {
            char *g = realloc(r->ebody, r->elen + take + 1);
            if (!g)
                return 0;
            r->ebody = g;
            memcpy(r->ebody + r->elen, buf, take);
            r->elen += take;
            r->ebody[r->elen] = '\0';
        }
        return len;
    }
    if (!r->body_started) {
        r->body_started = true;
        /* 206: the server honoured Range; 200: it sent the whole object. */
        r->skip = r->status == 200 ? r->resume_from : 0;
    }
    const char *p = buf;
    size_t rest = len;
    if (r->skip > 0) {
        size_t drop = (long long)rest < r->skip ? rest : (size_t)r->skip;
        r->skip -= (long long)drop;
        p += drop;
        rest -= drop;
    }
    if (rest == 0)
        return len;
    if (r->sink) {
        if (r->sink(r->ud, p, rest) != 0) {
            r->sink_stopped = true;
            return 0;
        }
    } else {
        if (r->len + rest > r->max) {
            r->mem_overflow = true;
            return 0;
        }
        if (xgrow(&r->mem, &r->cap, r->len + rest + 1) != 0)
            return 0;
        memcpy(r->mem + r->len, p, rest);
        r->len += rest;
        r->mem[r->len] = '\0';
    }
    r->delivered += (long long)rest;
    return len;
}

/* curl needs the handle to read the status in the write callback. */
typedef struct {
    req *r;
    CURL *h;
} body_ctx;

static size_t on_body_ctx(char *buf, size_t size, size_t n, void *ud)
{
    body_ctx *bc = ud;
    if (bc->r->status == 0)
        curl_easy_getinfo(bc->h, CURLINFO_RESPONSE_CODE, &bc->r->status);
    return on_body(buf, size, n, bc->r);
}

static bool retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT: case CURLE_OPERATION_TIMEDOUT: case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR: case CURLE_PARTIAL_FILE: case CURLE_GOT_NOTHING:
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static bool retryable_status(long st)
{
    return st == 500 || st == 502 || st == 503 || st == 504 || st == 429;
}

/* Performs one HTTP request.  Returns the curl code; r->status holds the
 * HTTP status (0 when none was received). */
static CURLcode perform(req *r, const char *url, bool head, const char *range,
                        const char *if_match, char *curl_err)
{
    s3_client *c = r->c;
    CURL *h = curl_easy_init();
    if (!h)
        return CURLE_OUT_OF_MEMORY;
    struct curl_slist *hdrs = curl_slist_append(NULL, "x-amz-content-sha256: " EMPTY_SHA256);
    char line[512];
    if (c->token) {
        char *t = xfmt("x-amz-security-token: %s", c->token);
        if (t) {
            hdrs = curl_slist_append(hdrs, t);
            memset(t, 0, strlen(t));
            free(t);
        }
    }
    if (range) {
        snprintf(line, sizeof line, "Range: %s", range);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (if_match && *if_match) {
        snprintf(line, sizeof line, "If-Match: %s", if_match);
        hdrs = curl_slist_append(hdrs, line);
    }
    body_ctx bc = {r, h};
    curl_easy_setopt(h, CURLOPT_URL, url);
    /* the key as given: libcurl would collapse "/../" and "/./" and so
     * address (and sign) another object than the one asked for */
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->connect_timeout);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->stall_timeout);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body_ctx);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &bc);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
    if (head)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (c->ca_cert)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_cert);
    if (!c->validate_certs) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_err[0] = '\0';
    r->status = 0;
    r->content_length = -1;
    CURLcode rc = curl_easy_perform(h);
    long st = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    if (st)
        r->status = st;
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    return rc;
}

static void sleep_backoff(int attempt)
{
    long ms = 200L << (attempt < 5 ? attempt : 5);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *status_text(long st)
{
    switch (st) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 416: return "Range Not Satisfiable";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "error";
    }
}

/* Runs a request with retries.  range_resume: a GET whose later attempts
 * resume after what was already delivered. */
static int run(req *r, const char *url, bool head, bool range_resume, char **err)
{
    s3_client *c = r->c;
    char curl_err[CURL_ERROR_SIZE];
    long long total = 0;       /* delivered over all attempts */
    char etag[128] = "";
    int attempt = 0;
    for (;; attempt++) {
        char range[64], *rng = NULL;
        if (range_resume && total > 0) {
            snprintf(range, sizeof range, "bytes=%lld-", total);
            rng = range;
        }
        free(r->ebody);
        r->ebody = NULL;
        r->elen = 0;
        r->delivered = 0;
        r->skip = 0;
        r->body_started = false;
        r->resume_from = rng ? total : 0;
        CURLcode rc = perform(r, url, head, rng, rng ? etag : NULL, curl_err);
        total += r->delivered;
        r->attempts = attempt + 1;
        r->total = total;
        if (r->etag[0] && !etag[0])
            snprintf(etag, sizeof etag, "%s", r->etag);
        char *what = s3_display(c, r->key);
        if (rc == CURLE_OK && is_success(r->status)) {
            free(what);
            return 0;
        }
        if (r->sink_stopped) {
            xerr_set(err, "s3 %s %s: stopped by the reader", r->op, what);
            free(what);
            return S3_ERR;
        }
        if (r->mem_overflow) {
            xerr_set(err, "s3 %s %s: object is larger than %zu bytes", r->op, what, r->max);
            free(what);
            return S3_ERR;
        }
        bool http_err = rc == CURLE_OK && r->status > 0;
        bool retry = attempt < c->retries &&
                     (http_err ? retryable_status(r->status) : retryable_curl(rc));
        if (retry) {
            free(what);
            sleep_backoff(attempt);
            continue;
        }
        bool nobucket = false;
        if (http_err) {
            char *s3msg = s3_parse_error(r->ebody, r->elen);
            /* "Code: Message"; the code is S3's, so this is the one place
             * that tells a missing bucket from a missing key */
            nobucket = s3msg && strncmp(s3msg, "NoSuchBucket", 12) == 0 &&
                       (s3msg[12] == ':' || s3msg[12] == '\0');
            if (s3msg)
                xerr_set(err, "s3 %s %s failed: HTTP %ld, %s", r->op, what, r->status, s3msg);
            else
                xerr_set(err, "s3 %s %s failed: HTTP %ld %s", r->op, what, r->status,
                         status_text(r->status));
            free(s3msg);
        } else {
            xerr_set(err, "s3 %s %s failed after %d attempt%s: %s%s%s", r->op, what,
                     attempt + 1, attempt ? "s" : "", curl_easy_strerror(rc),
                     curl_err[0] ? ": " : "", curl_err);
        }
        free(what);
        if (r->status != 404)
            return S3_ERR;
        return nobucket ? S3_NOBUCKET : S3_NOTFOUND;
    }
}

int s3_get(s3_client *c, const char *key, s3_sink sink, void *ud,
           s3_get_info *info, char **err)
{
    char *url = s3_object_url(c, key);
    if (!url) {
        xerr_set(err, "s3: out of memory");
        return S3_ERR;
    }
    req r = {.c = c, .op = "GetObject", .key = key, .sink = sink, .ud = ud};
    /* Resuming re-sends from `total`; run() sums deliveries across attempts. */
    int rc = run(&r, url, false, true, err);
    if (info) {
        info->size = r.content_length;
        info->received = r.total;
        info->attempts = r.attempts;
        snprintf(info->etag, sizeof info->etag, "%s", r.etag);
    }
    free(r.ebody);
    free(url);
    return rc;
}

int s3_get_mem(s3_client *c, const char *key, size_t max,
               char **buf, size_t *len, char **err)
{
    *buf = NULL;
    *len = 0;
    char *url = s3_object_url(c, key);
    if (!url) {
        xerr_set(err, "s3: out of memory");
        return S3_ERR;
    }
    req r = {.c = c, .op = "GetObject", .key = key, .max = max};
    /* In-memory bodies are small: a retry starts over instead of resuming. */
    int rc = run(&r, url, false, false, err);
    free(r.ebody);
    free(url);
    if (rc != 0) {
        free(r.mem);
        return rc;
    }
    if (!r.mem)
        r.mem = calloc(1, 1);
    *buf = r.mem;
    *len = r.len;
    return 0;
}

int s3_head(s3_client *c, const char *key, long long *size, char **etag, char **err)
{
    char *url = s3_object_url(c, key);
    if (!url) {
        xerr_set(err, "s3: out of memory");
        return S3_ERR;
    }
    req r = {.c = c, .op = "HeadObject", .key = key};
    int rc = run(&r, url, true, false, err);
    if (size)
        *size = r.content_length;
    if (etag)
        *etag = rc == 0 && r.etag[0] ? strdup(r.etag) : NULL;
    free(r.ebody);
    free(url);
    return rc;
}

int s3_list(s3_client *c, const char *prefix, const char *delimiter,
            size_t max_items, s3_listing *out, char **err)
{
    memset(out, 0, sizeof *out);
    if (max_items == 0)
        max_items = 1000000;
    char *base = s3_object_url(c, "");
    char *ep = uri_encode(prefix ? prefix : "", false);
    char *ed = uri_encode(delimiter ? delimiter : "", false);
    char *token = NULL;
    int rc = 0, pages = 0, empty = 0;
    if (!base || !ep || !ed) {
        xerr_set(err, "s3: out of memory");
        rc = S3_ERR;
    }
    while (rc == 0) {
        if (pages >= c->max_list_pages) {
            char *what = s3_display(c, prefix);
            xerr_set(err, "s3 ListObjectsV2 %s: the listing goes on past %d pages "
                          "(IsTruncated=true every time); giving up", what, c->max_list_pages);
            free(what);
            rc = S3_ERR;
            break;
        }
        pages++;
        /* Query parameters in SigV4 canonical order (sorted, encoded). */
        char *et = token ? uri_encode(token, false) : NULL;
        char *url = NULL;
        url = xfmt("%s?%s%s%s%s%s%slist-type=2&max-keys=1000&prefix=%s", base,
                   et ? "continuation-token=" : "", et ? et : "", et ? "&" : "",
                   *ed ? "delimiter=" : "", ed, *ed ? "&" : "", ep);
        free(et);
        if (!url) {
            xerr_set(err, "s3: out of memory");
            rc = S3_ERR;
            break;
        }
        req r = {.c = c, .op = "ListObjectsV2", .key = prefix ? prefix : "",
                 .max = 64u * 1024 * 1024};
        rc = run(&r, url, false, false, err);
        free(url);
        free(r.ebody);
        if (rc != 0) {
            free(r.mem);
            break;
        }
        bool truncated = false;
        char *next = NULL;
        size_t had = out->nobjects + out->nprefixes;
        rc = s3_parse_list_page(r.mem, r.len, max_items, out, &truncated, &next, err);
        free(r.mem);
        if (rc == 0 && truncated) {
            /* a server that pages forever: the token it was sent, or pages
             * without an entry, again and again */
            bool same = token && next && strcmp(token, next) == 0;
            empty = out->nobjects + out->nprefixes == had ? empty + 1 : 0;
            if (same || empty >= S3_LIST_MAX_EMPTY_PAGES) {
                char *what = s3_display(c, prefix);
                if (same)
                    xerr_set(err, "s3 ListObjectsV2 %s: page %d is truncated but its "
                                  "NextContinuationToken is the token that was sent (no progress)",
                             what, pages);
                else
                    xerr_set(err, "s3 ListObjectsV2 %s: %d truncated pages in a row without "
                                  "an entry (no progress)", what, empty);
                free(what);
                rc = S3_ERR;
            }
        }
        free(token);
        token = next;
        if (rc != 0 || !truncated)
            break;
    }
    free(token);
    free(base);
    free(ep);
    free(ed);
    return rc;
}
