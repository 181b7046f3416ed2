/* s3.h - a small S3 client on libcurl (SigV4 via CURLOPT_AWS_SIGV4).
 *
 * What the DR modules need from object storage, nothing more:
 *   - ListObjectsV2 with prefix / delimiter, following continuation tokens;
 *   - GetObject streamed to a callback (resumed with Range on a retry), or
 *     into memory with a size cap;
 *   - HeadObject.
 * Path-style (http://host/bucket/key) and virtual-host style
 * (http://bucket.host/key) addressing; CA bundle or validate_certs=false;
 * plain http only with allow_insecure_http; retries with backoff on
 * connection errors and 5xx.  Keys are sent exactly as given (no dot-segment
 * collapsing: `a/../b` addresses the object `a/../b`).
 *
 * Errors come back as malloc'd messages naming the operation, the object and
 * the S3 error Code/Message from the response body.  The secret key is only
 * ever handed to libcurl: it is never formatted into any message.
 */
#ifndef OCPVDR_S3_H
#define OCPVDR_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Return codes besides 0 (success). */
#define S3_ERR      (-1)   /* any failure; *err says what */
#define S3_NOTFOUND (-2)   /* 404: the object (key) does not exist; *err says what */
#define S3_NOBUCKET (-3)   /* 404 NoSuchBucket: the bucket itself is missing - a
                              configuration error, never "no such object" */

typedef struct s3_conf {
    const char *endpoint;      /* "https://s3.example:9000"; scheme defaults to https;
                                  NULL/"" = https://s3.<region>.amazonaws.com */
    const char *region;        /* NULL/"" = us-east-1 */
    const char *bucket;        /* required */
    const char *access_key;    /* required */
    const char *secret_key;    /* required; never echoed */
    const char *session_token; /* optional (x-amz-security-token) */
    const char *ca_cert;       /* optional CA bundle file */
    bool validate_certs;       /* false = skip TLS peer/host verification */
    bool path_style;           /* true = http://host/bucket/key */
    bool allow_insecure_http;  /* false (the default): an http:// endpoint is refused,
                                  since every request carries the access key id and a
                                  signature (and the session token) */
    int retries;               /* extra attempts on 5xx / connection errors; <0 = default 3 */
    long connect_timeout;      /* seconds; 0 = 15 */
    long stall_timeout;        /* seconds without a byte before giving up; 0 = 60 */
    int max_list_pages;        /* pages one s3_list may read; 0 = S3_LIST_MAX_PAGES */
} s3_conf;

/* Listing guards: a server that answers IsTruncated=true forever (empty
 * pages, or the token it was sent) must not keep s3_list looping. */
#define S3_LIST_MAX_PAGES 10000
#define S3_LIST_MAX_EMPTY_PAGES 10   /* truncated pages in a row without an entry */

typedef struct s3_client s3_client;

/* Copies everything it needs from conf.  NULL with *err on a bad config
 * (including an http:// endpoint without allow_insecure_http). */
s3_client *s3_new(const s3_conf *conf, char **err);
void s3_free(s3_client *c);

/* "s3://bucket/key", for messages.  malloc'd. */
char *s3_display(const s3_client *c, const char *key);

/* The request URL for key ("" = the bucket itself), addressing applied and
 * the key percent-encoded as SigV4 expects.  malloc'd. */
char *s3_object_url(const s3_client *c, const char *key);

/* Reads an AWS-style credentials file (ini; `[profile]` or `[profile name]`
 * sections; aws_access_key_id, aws_secret_access_key, aws_session_token).
 * profile NULL/"" = "default".  Outputs are malloc'd (token may be NULL).
 * The values never appear in *err. */
int s3_load_credentials(const char *path, const char *profile,
                        char **access_key, char **secret_key,
                        char **session_token, char **err);

typedef struct s3_object {
    char *key;
    long long size;
    char *last_modified;   /* as the server sent it (ISO 8601) */
    char *etag;
} s3_object;

typedef struct s3_listing {
    s3_object *objects;  size_t nobjects;
    char **prefixes;     size_t nprefixes;   /* CommonPrefixes when a delimiter is used */
} s3_listing;

/* Whether the client talks plain http (allowed by allow_insecure_http). */
bool s3_is_plain_http(const s3_client *c);

/* ListObjectsV2 over all pages.  max_items (0 = 1,000,000) bounds
 * objects+prefixes so a huge bucket cannot exhaust memory: exceeding it is an
 * error.  So are more than max_list_pages pages, S3_LIST_MAX_EMPTY_PAGES
 * truncated pages in a row without an entry, and a continuation token equal
 * to the one sent (no progress).  out is zeroed first; free with
 * s3_listing_free even on error. */
int s3_list(s3_client *c, const char *prefix, const char *delimiter,
            size_t max_items, s3_listing *out, char **err);
void s3_listing_free(s3_listing *l);

/* Receives the object's bytes in order; return 0 to go on, non-zero to stop
 * (s3_get then fails with "stopped by the reader"). */
typedef int (*s3_sink)(void *ud, const void *buf, size_t len);

typedef struct s3_get_info {
    long long size;        /* Content-Length of the whole object, -1 if unknown */
    long long received;    /* bytes handed to the sink */
    int attempts;          /* requests made (1 = no retry) */
    char etag[128];
} s3_get_info;

/* GetObject streamed to sink.  A retry after a partial transfer resumes with
 * Range + If-Match, so the sink sees every byte exactly once.  info may be NULL. */
int s3_get(s3_client *c, const char *key, s3_sink sink, void *ud,
           s3_get_info *info, char **err);

/* GetObject into a malloc'd, NUL-terminated buffer; objects larger than max
 * are an error. */
int s3_get_mem(s3_client *c, const char *key, size_t max,
               char **buf, size_t *len, char **err);

/* HeadObject: size (-1 if absent) and ETag (may be NULL). */
int s3_head(s3_client *c, const char *key, long long *size, char **etag, char **err);

/* Parses an S3 <Error> document into "Code: Message" (malloc'd), or NULL
 * when body is not one.  Exposed for tests. */
char *s3_parse_error(const char *body, size_t len);

/* Parses one ListObjectsV2 page into out (appending); sets *truncated and
 * *next_token (malloc'd or NULL).  Exposed for tests. */
int s3_parse_list_page(const char *body, size_t len, size_t max_items,
                       s3_listing *out, bool *truncated, char **next_token,
                       char **err);

#endif
