/* test_s3.c - unit tests of the S3 client (lib/s3/, lib/connect/s3_module.c): URL building and
 * key encoding for both addressing styles, config errors, the credentials
 * file, S3 XML (errors, ListObjectsV2 pages), and the HTTP behaviour against
 * a scripted in-process HTTP server: SigV4 Authorization header, retry on
 * 503, resume of a broken download with Range + If-Match, error bodies
 * parsed into Code/Message, secrets never in messages, keys with dot
 * segments sent as they are, listings that page forever stopped, plain http
 * refused without allow_insecure_http; and the Velero store on top of it
 * (lib/velero/velero_store.c): backup names from the listed prefixes, a forged
 * metadata.name refused, the kept archive created inside dest only.  The live MinIO runs are in
 * tests/integration/test_oadp_parse.py. */
#include "module.h"
#include "s3.h"
#include "s3_module.h"
#include "velero_store.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define SECRET "sEcReT/kEy+9876543210abcdefghijklmnopqrst"

static s3_client *client(const char *endpoint, bool path_style, int retries)
{
    /* the scripted server speaks plain http: opted in explicitly */
    s3_conf c = {.endpoint = endpoint, .region = "eu-west-1", .bucket = "velero",
                 .access_key = "AKIDEXAMPLE", .secret_key = SECRET,
                 .validate_certs = true, .path_style = path_style, .retries = retries,
                 .allow_insecure_http = endpoint && strncmp(endpoint, "http://", 7) == 0};
    char *err = NULL;
    s3_client *s = s3_new(&c, &err);
    assert_non_null(s);
    return s;
}

static void no_secret(const char *msg)
{
    assert_non_null(msg);
    if (strstr(msg, SECRET) || strstr(msg, "sEcReT"))
        fail_msg("secret leaked into: %s", msg);
}

/* ------------------------------------------------------------ URLs */

static void test_urls(void **state)
{
    (void)state;
    s3_client *c = client("http://127.0.0.1:9000", true, 0);
    char *u = s3_object_url(c, "velero/backups/b 1/b+1.tar.gz");
    assert_string_equal(u, "http://127.0.0.1:9000/velero/velero/backups/b%201/b%2B1.tar.gz");
    free(u);
    s3_free(c);

    c = client("minio.example:9000/base/", false, 0);
    u = s3_object_url(c, "k\xc3\xbc~x");
    assert_string_equal(u, "https://velero.minio.example:9000/base/k%C3%BC~x");
    free(u);
    u = s3_display(c, "a/b");
    assert_string_equal(u, "s3://velero/a/b");
    free(u);
    s3_free(c);

    c = client(NULL, false, 0);
    u = s3_object_url(c, "x");
    assert_string_equal(u, "https://velero.s3.eu-west-1.amazonaws.com/x");
    free(u);
    s3_free(c);
}

static void test_config_errors(void **state)
{
    (void)state;
    struct { s3_conf c; const char *needle; } cases[] = {
        {{.bucket = NULL, .access_key = "a", .secret_key = SECRET}, "bucket is required"},
        {{.bucket = "Bad_Bucket", .access_key = "a", .secret_key = SECRET}, "not a valid bucket"},
        {{.bucket = "velero", .access_key = "a"}, "secret_key are required"},
        {{.bucket = "velero", .access_key = "a", .secret_key = SECRET, .endpoint = "ftp://x"},
         "http:// or https://"},
        {{.bucket = "velero", .access_key = "a", .secret_key = SECRET, .endpoint = "http://",
          .allow_insecure_http = true}, "no host"},
        /* credentials never go over plain http unless asked to */
        {{.bucket = "velero", .access_key = "a", .secret_key = SECRET, .session_token = SECRET,
          .endpoint = "http://minio.example:9000"}, "is plain http"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        assert_null(s3_new(&cases[i].c, &err));
        assert_non_null(err);
        if (!strstr(err, cases[i].needle))
            fail_msg("'%s' lacks '%s'", err, cases[i].needle);
        no_secret(err);
        free(err);
    }
}

/* An http:// endpoint needs allow_insecure_http; https and the scheme-less
 * default (https) do not, and report themselves as not plain http. */
static void test_insecure_http_opt_in(void **state)
{
    (void)state;
    s3_conf c = {.endpoint = "http://127.0.0.1:9000", .bucket = "velero", .access_key = "AKID",
                 .secret_key = SECRET, .session_token = "tOkEn-" SECRET};
    char *err = NULL;
    assert_null(s3_new(&c, &err));
    assert_non_null(strstr(err, "endpoint 'http://127.0.0.1:9000' is plain http"));
    assert_non_null(strstr(err, "allow_insecure_http: true"));
    no_secret(err);
    free(err);
    err = NULL;
    c.allow_insecure_http = true;
    s3_client *s = s3_new(&c, &err);
    assert_non_null(s);
    assert_true(s3_is_plain_http(s));
    s3_free(s);
    c.allow_insecure_http = false;
    const char *tls[] = {"https://127.0.0.1:9000", "minio.example:9000", NULL};
    for (size_t i = 0; i < 3; i++) {
        c.endpoint = tls[i];
        s = s3_new(&c, &err);
        assert_non_null(s);
        assert_false(s3_is_plain_http(s));
        s3_free(s);
    }
}

/* A line break in a credential would end its header and start another
 * (the session token goes into x-amz-security-token verbatim): refused,
 * naming the field, never showing the value. */
static void test_credential_control_chars(void **state)
{
    (void)state;
    const char *bad = SECRET "\r\nX-Injected: 1";
    for (int f = 0; f < 3; f++) {
        s3_conf c = {.endpoint = "https://127.0.0.1:9000", .bucket = "velero",
                     .access_key = f == 0 ? bad : "AKID", .secret_key = f == 1 ? bad : SECRET,
                     .session_token = f == 2 ? bad : NULL};
        char *err = NULL;
        assert_null(s3_new(&c, &err));
        const char *field[] = {"access_key", "secret_key", "session_token"};
        assert_non_null(strstr(err, field[f]));
        assert_non_null(strstr(err, "control character"));
        no_secret(err);
        free(err);
    }
}

/* ------------------------------------------------------ credentials file */

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/test_s3_credsXXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_credentials_file(void **state)
{
    (void)state;
    char *p = write_tmp("# velero cloud secret\n[default]\naws_access_key_id = AK1\n"
                        "aws_secret_access_key=" SECRET "\n\n[profile backup]\n"
                        "  aws_access_key_id = AK2  \n aws_secret_access_key = S2\n"
                        "aws_session_token = T2\n[broken]\naws_access_key_id = AK3\n");
    char *ak, *sk, *tok, *err = NULL;
    assert_int_equal(s3_load_credentials(p, NULL, &ak, &sk, &tok, &err), 0);
    assert_string_equal(ak, "AK1");
    assert_string_equal(sk, SECRET);
    assert_null(tok);
    free(ak);
    free(sk);
    assert_int_equal(s3_load_credentials(p, "backup", &ak, &sk, &tok, &err), 0);
    assert_string_equal(ak, "AK2");
    assert_string_equal(sk, "S2");
    assert_string_equal(tok, "T2");
    free(ak);
    free(sk);
    free(tok);
    assert_int_equal(s3_load_credentials(p, "nope", &ak, &sk, &tok, &err), S3_ERR);
    assert_non_null(strstr(err, "no [nope] profile"));
    free(err);
    err = NULL;
    assert_int_equal(s3_load_credentials(p, "broken", &ak, &sk, &tok, &err), S3_ERR);
    assert_non_null(strstr(err, "aws_secret_access_key"));
    no_secret(err);
    free(err);
    err = NULL;
    unlink(p);
    assert_int_equal(s3_load_credentials(p, NULL, &ak, &sk, &tok, &err), S3_ERR);
    assert_non_null(strstr(err, "cannot read credentials file"));
    free(err);
    free(p);
}

/* ------------------------------------------------ the modules' s3 option */

static const mod_opt s3mod_opts[] = {
    { .name = "s3", .type = OPT_DICT, .suboptions = s3_mod_opts },
    { 0 }
};
static const mod_spec s3mod_spec = { .name = "s3test", .opts = s3mod_opts };

/* s3_mod_client on module arguments (JSON text); returns the client. */
static s3_client *mod_client(module *m, const char *args, char **err)
{
    json_t *a = json_loads(args, 0, NULL);
    assert_non_null(a);
    char *perr = NULL;
    if (mod_parse(m, &s3mod_spec, a, &perr) != 0)
        fail_msg("mod_parse: %s", perr);
    json_decref(a);
    return s3_mod_client(m, mod_param(m, "s3"), err);
}

/* The rendered result as text, with `echo` set to a string holding v. */
static char *rendered_with(module *m, const char *v)
{
    char *e = NULL;
    assert_true(asprintf(&e, "values: %s.", v) > 0);
    mod_set(m, "echo", json_string(e));
    free(e);
    json_t *r = mod_render(m, false, NULL);
    char *t = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    return t;
}

/* Every value of a credentials file - the access key id too - is scrubbed
 * from the module's output, like a no_log parameter. */
static void test_module_credentials_file_scrubbed(void **state)
{
    (void)state;
    char path[] = "/tmp/test_s3_modcredsXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "[default]\naws_access_key_id = AKIAFILEKEYID12345\n"
                       "aws_secret_access_key = " SECRET "\naws_session_token = FiLeToKeN987654\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char args[512];
    snprintf(args, sizeof args, "{\"s3\": {\"bucket\": \"velero\", \"endpoint\": "
             "\"https://minio.example:9000\", \"credentials_file\": \"%s\"}}", path);
    module m;
    char *err = NULL;
    s3_client *c = mod_client(&m, args, &err);
    unlink(path);
    if (!c)
        fail_msg("s3_mod_client: %s", err);
    char *out = rendered_with(&m, "AKIAFILEKEYID12345 " SECRET " FiLeToKeN987654");
    if (strstr(out, "AKIAFILEKEYID12345") || strstr(out, "FiLeToKeN987654"))
        fail_msg("a credential from the file reached the output: %s", out);
    no_secret(out);
    assert_non_null(strstr(out, "values: ******** ******** ********."));
    assert_null(strstr(out, "\"warnings\""));     /* https, verified: nothing to warn about */
    free(out);
    s3_free(c);
    mod_free(&m);
}

/* Plain http is refused unless allowed; allowed, or with validate_certs
 * false, the module warns. */
static void test_module_insecure_transport_warns(void **state)
{
    (void)state;
    module m;
    char *err = NULL;
#define HTTP_ARGS(extra) "{\"s3\": {\"bucket\": \"velero\", \"endpoint\": \"http://127.0.0.1:9\", " \
                         "\"access_key\": \"AKID\", \"secret_key\": \"" SECRET "\"" extra "}}"
    const char *args = HTTP_ARGS("");
    assert_null(mod_client(&m, args, &err));
    assert_non_null(strstr(err, "is plain http"));
    no_secret(err);
    free(err);
    err = NULL;
    mod_free(&m);

    args = HTTP_ARGS(", \"allow_insecure_http\": true");
#undef HTTP_ARGS
    s3_client *c = mod_client(&m, args, &err);
    assert_non_null(c);
    char *out = rendered_with(&m, "x");
    assert_non_null(strstr(out, "allow_insecure_http is set and http://127.0.0.1:9 is plain http"));
    free(out);
    s3_free(c);
    mod_free(&m);

    c = mod_client(&m, "{\"s3\": {\"bucket\": \"velero\", \"endpoint\": \"https://h:9\", "
                       "\"access_key\": \"AKID\", \"secret_key\": \"x\", \"validate_certs\": false}}",
                   &err);
    assert_non_null(c);
    out = rendered_with(&m, "x");
    assert_non_null(strstr(out, "validate_certs is false: the TLS certificate of https://h:9 is "
                                "not verified"));
    free(out);
    s3_free(c);
    mod_free(&m);
}

/* ------------------------------------------------------------- XML */

static void test_parse_error(void **state)
{
    (void)state;
    const char *x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                    "<Message>Access Denied.</Message><Key>a</Key><RequestId>1</RequestId></Error>";
    char *m = s3_parse_error(x, strlen(x));
    assert_string_equal(m, "AccessDenied: Access Denied.");
    free(m);
    assert_null(s3_parse_error("<html>502</html>", 16));
    assert_null(s3_parse_error("not xml", 7));
    assert_null(s3_parse_error(NULL, 0));
    /* entities are not expanded (no billion laughs, no external files) */
    const char *bomb = "<?xml version=\"1.0\"?><!DOCTYPE e [<!ENTITY a \"aaaaaaaaaa\">"
                       "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
                       "<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
                       "<Error><Code>&b;</Code><Message>&x;</Message></Error>";
    m = s3_parse_error(bomb, strlen(bomb));
    if (m) {
        assert_null(strstr(m, "root:"));
        free(m);
    }
}

static void test_parse_list(void **state)
{
    (void)state;
    const char *page =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>velero</Name><Prefix>velero/backups/</Prefix><KeyCount>3</KeyCount>"
        "<MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>tok/+=</NextContinuationToken>"
        "<Contents><Key>velero/backups/x.txt</Key><LastModified>2024-05-01T10:00:00.000Z</LastModified>"
        "<ETag>&quot;abc&quot;</ETag><Size>42</Size><StorageClass>STANDARD</StorageClass></Contents>"
        "<CommonPrefixes><Prefix>velero/backups/b1/</Prefix></CommonPrefixes>"
        "<CommonPrefixes><Prefix>velero/backups/b2/</Prefix></CommonPrefixes>"
        "</ListBucketResult>";
    s3_listing l = {0};
    bool trunc;
    char *tok = NULL, *err = NULL;
    assert_int_equal(s3_parse_list_page(page, strlen(page), 100, &l, &trunc, &tok, &err), 0);
    assert_true(trunc);
    assert_string_equal(tok, "tok/+=");
    assert_int_equal(l.nobjects, 1);
    assert_string_equal(l.objects[0].key, "velero/backups/x.txt");
    assert_int_equal(l.objects[0].size, 42);
    assert_string_equal(l.objects[0].etag, "\"abc\"");
    assert_int_equal(l.nprefixes, 2);
    assert_string_equal(l.prefixes[1], "velero/backups/b2/");
    free(tok);
    /* the cap counts across pages */
    assert_int_equal(s3_parse_list_page(page, strlen(page), 4, &l, &trunc, &tok, &err), S3_ERR);
    assert_non_null(strstr(err, "more than 4 entries"));
    free(err);
    err = NULL;
    s3_listing_free(&l);

    const char *notok = "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
    assert_int_equal(s3_parse_list_page(notok, strlen(notok), 10, &l, &trunc, &tok, &err), S3_ERR);
    assert_non_null(strstr(err, "NextContinuationToken"));
    free(err);
    err = NULL;
    s3_listing_free(&l);
    assert_int_equal(s3_parse_list_page("<x/>", 4, 10, &l, &trunc, &tok, &err), S3_ERR);
    assert_non_null(strstr(err, "ListBucketResult"));
    free(err);
    s3_listing_free(&l);
}

/* ------------------------------------------------ scripted HTTP server */

typedef struct {
    const char *head;      /* status line + headers, without the blank line */
    const char *body;
    size_t send;           /* bytes of body actually sent (then close) */
} script_step;

typedef struct {
    int lfd;
    int port;
    const script_step *steps;
    size_t nsteps;
    char requests[8][2048];
    size_t nreq;
    pthread_t th;
} server;

static void *serve(void *arg)
{
    server *s = arg;
    for (size_t i = 0; i < s->nsteps; i++) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char *req = s->requests[s->nreq < 8 ? s->nreq : 7];
        size_t got = 0;
        while (got < 2047 && !strstr(req, "\r\n\r\n")) {
            ssize_t n = recv(fd, req + got, 2047 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
            req[got] = '\0';
        }
        s->nreq++;
        const script_step *st = &s->steps[i];
        char head[1024];
        int hl = snprintf(head, sizeof head, "%s\r\n\r\n", st->head);
        (void)!write(fd, head, (size_t)hl);
        if (st->send)
            (void)!write(fd, st->body, st->send);
        close(fd);
    }
    return NULL;
}

static void server_start(server *s, const script_step *steps, size_t n)
{
    memset(s, 0, sizeof *s);
    s->steps = steps;
    s->nsteps = n;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->th, NULL, serve, s);
}

/* Starts the scripted server and returns a path-style client pointed at it. */
static s3_client *client_on(server *srv, const script_step *steps, size_t n, int retries)
{
    server_start(srv, steps, n);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", srv->port);
    return client(ep, true, retries);
}

/* "HTTP/1.1 <status>" head of a close-delimited response with body length len. */
static void head_for(char *h, size_t hsize, const char *status, size_t len)
{
    snprintf(h, hsize, "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close", status, len);
}

static void server_stop(server *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

typedef struct {
    char buf[4096];
    size_t len;
} sinkbuf;

static int to_buf(void *ud, const void *p, size_t n)
{
    sinkbuf *b = ud;
    if (b->len + n > sizeof b->buf)
        return 1;
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 0;
}

static const char BODY[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

static void test_get_retry_and_resume(void **state)
{
    (void)state;
    char full_head[256], part_head[256];
    size_t n = sizeof BODY - 1;
    snprintf(full_head, sizeof full_head,
             "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nETag: \"e1\"\r\nConnection: close", n);
    snprintf(part_head, sizeof part_head,
             "HTTP/1.1 206 Partial Content\r\nContent-Length: %zu\r\nETag: \"e1\"\r\n"
             "Content-Range: bytes 20-%zu/%zu\r\nConnection: close", n - 20, n - 1, n);
    const script_step steps[] = {
        {"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close", "", 0},
        {full_head, BODY, 20},                 /* connection drops after 20 bytes */
        {part_head, BODY + 20, n - 20},
    };
    server srv;
    s3_client *c = client_on(&srv, steps, 3, 3);
    sinkbuf b = {.len = 0};
    s3_get_info info;
    char *err = NULL;
    int rc = s3_get(c, "velero/backups/b1/b1.tar.gz", to_buf, &b, &info, &err);
    server_stop(&srv);
    if (rc != 0)
        fail_msg("s3_get failed: %s", err);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.buf, BODY, n);       /* every byte exactly once */
    assert_int_equal(info.attempts, 3);
    assert_int_equal(info.received, (long long)n);
    /* requests are SigV4-signed, the key encoded, the resume ranged + pinned */
    assert_non_null(strstr(srv.requests[0], "GET /velero/velero/backups/b1/b1.tar.gz HTTP/1.1"));
    assert_non_null(strstr(srv.requests[0], "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
    assert_non_null(strstr(srv.requests[0], "/eu-west-1/s3/aws4_request"));
    assert_non_null(strstr(srv.requests[0], "x-amz-content-sha256: e3b0c442"));
    assert_null(strstr(srv.requests[1], "Range:"));
    assert_non_null(strstr(srv.requests[2], "Range: bytes=20-"));
    assert_non_null(strstr(srv.requests[2], "If-Match: \"e1\""));
    for (size_t i = 0; i < 3; i++)
        no_secret(srv.requests[i]);
    s3_free(c);
}

static void test_error_body_and_no_retry_on_403(void **state)
{
    (void)state;
    static const char xml[] = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>"
        "<Message>The request signature we calculated does not match</Message></Error>";
    char head[256];
    snprintf(head, sizeof head, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n"
             "Content-Length: %zu\r\nConnection: close", sizeof xml - 1);
    const script_step steps[] = {{head, xml, sizeof xml - 1}};
    server srv;
    s3_client *c = client_on(&srv, steps, 1, 3);
    sinkbuf b = {.len = 0};
    char *err = NULL;
    assert_int_equal(s3_get(c, "k", to_buf, &b, NULL, &err), S3_ERR);
    server_stop(&srv);                         /* exactly one request: 403 is not retried */
    assert_int_equal(srv.nreq, 1);
    assert_int_equal(b.len, 0);                /* the error body never reaches the sink */
    assert_non_null(strstr(err, "HTTP 403, SignatureDoesNotMatch: The request signature"));
    assert_non_null(strstr(err, "s3://velero/k"));
    no_secret(err);
    free(err);
    s3_free(c);
}

static void test_listing_pages_and_404(void **state)
{
    (void)state;
    static const char p1[] = "<ListBucketResult><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>n/2</NextContinuationToken>"
        "<CommonPrefixes><Prefix>velero/backups/a/</Prefix></CommonPrefixes></ListBucketResult>";
    static const char p2[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
        "<CommonPrefixes><Prefix>velero/backups/b/</Prefix></CommonPrefixes></ListBucketResult>";
    static const char nf[] = "<Error><Code>NoSuchKey</Code><Message>The specified key does not "
                             "exist.</Message></Error>";
    char h1[128], h2[128], h3[128];
    head_for(h1, sizeof h1, "200 OK", sizeof p1 - 1);
    head_for(h2, sizeof h2, "200 OK", sizeof p2 - 1);
    head_for(h3, sizeof h3, "404 Not Found", sizeof nf - 1);
    const script_step steps[] = {{h1, p1, sizeof p1 - 1}, {h2, p2, sizeof p2 - 1}, {h3, nf, sizeof nf - 1}};
    server srv;
    s3_client *c = client_on(&srv, steps, 3, 0);
    s3_listing l;
    char *err = NULL;
    assert_int_equal(s3_list(c, "velero/backups/", "/", 0, &l, &err), 0);
    assert_int_equal(l.nprefixes, 2);
    assert_string_equal(l.prefixes[1], "velero/backups/b/");
    s3_listing_free(&l);
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(s3_get_mem(c, "velero/backups/zz/velero-backup.json", 1024, &buf, &len, &err),
                     S3_NOTFOUND);
    server_stop(&srv);
    assert_non_null(strstr(err, "NoSuchKey"));
    free(err);
    /* query parameters in SigV4 canonical (sorted, encoded) order */
    assert_non_null(strstr(srv.requests[0],
        "GET /velero/?delimiter=%2F&list-type=2&max-keys=1000&prefix=velero%2Fbackups%2F HTTP/1.1"));
    assert_non_null(strstr(srv.requests[1], "GET /velero/?continuation-token=n%2F2&delimiter=%2F&"));
    s3_free(c);
}

/* A missing bucket is its own return code: callers treat a missing key as
 * "no such backup/restore" but a missing bucket as a configuration error. */
static void test_missing_bucket(void **state)
{
    (void)state;
    static const char nb[] = "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does "
                             "not exist</Message><BucketName>velero</BucketName></Error>";
    char h[128];
    head_for(h, sizeof h, "404 Not Found", sizeof nb - 1);
    const script_step steps[] = {{h, nb, sizeof nb - 1}, {h, nb, sizeof nb - 1}};
    server srv;
    s3_client *c = client_on(&srv, steps, 2, 0);
    s3_listing l;
    char *err = NULL;
    assert_int_equal(s3_list(c, "velero/backups/", "/", 0, &l, &err), S3_NOBUCKET);
    assert_non_null(strstr(err, "NoSuchBucket"));
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(s3_get_mem(c, "velero/backups/a/velero-backup.json", 1024, &buf, &len, &err),
                     S3_NOBUCKET);
    server_stop(&srv);
    assert_non_null(strstr(err, "HTTP 404, NoSuchBucket: The specified bucket does not exist"));
    assert_null(buf);
    no_secret(err);
    free(err);
    s3_free(c);
}

/* A key with dot segments addresses exactly that key: libcurl would collapse
 * "/../" and "/./" and fetch (and sign for) another object. */
static void test_dot_segments_sent_as_is(void **state)
{
    (void)state;
    static const char body[] = "{}";
    char h[128];
    head_for(h, sizeof h, "200 OK", sizeof body - 1);
    const script_step steps[] = {{h, body, sizeof body - 1}, {h, body, sizeof body - 1}};
    server srv;
    s3_client *c = client_on(&srv, steps, 2, 0);
    char *buf = NULL, *err = NULL;
    size_t len = 0;
    assert_int_equal(s3_get_mem(c, "velero/backups/../pwned/./x.json", 1024, &buf, &len, &err), 0);
    free(buf);
    long long size;
    char *etag = NULL;
    assert_int_equal(s3_head(c, "a/./b/../c", &size, &etag, &err), 0);
    free(etag);
    server_stop(&srv);
    if (!strstr(srv.requests[0], "GET /velero/velero/backups/../pwned/./x.json HTTP/1.1"))
        fail_msg("the key was not sent as given: %.120s", srv.requests[0]);
    if (!strstr(srv.requests[1], "HEAD /velero/a/./b/../c HTTP/1.1"))
        fail_msg("the key was not sent as given: %.120s", srv.requests[1]);
    s3_free(c);
}

/* A scripted server for a listing, its client failing fast (2 s stall) if it
 * asks for more pages than scripted. */
static s3_client *list_client(server *srv, const script_step *steps, size_t n, int max_pages)
{
    server_start(srv, steps, n);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", srv->port);
    s3_conf c = {.endpoint = ep, .bucket = "velero", .access_key = "AKIDEXAMPLE",
                 .secret_key = SECRET, .path_style = true, .retries = 0,
                 .allow_insecure_http = true, .stall_timeout = 2, .connect_timeout = 2,
                 .max_list_pages = max_pages};
    char *err = NULL;
    s3_client *s = s3_new(&c, &err);
    assert_non_null(s);
    return s;
}

/* IsTruncated=true forever: empty pages with fresh tokens, the token that
 * was sent, more pages than allowed - each stops with an error. */
static void test_listing_that_never_ends(void **state)
{
    (void)state;
    enum { EMPTY = S3_LIST_MAX_EMPTY_PAGES };
    static char pages[EMPTY][256];
    static char heads[EMPTY][128];
    script_step steps[EMPTY];
    for (int i = 0; i < EMPTY; i++) {
        snprintf(pages[i], sizeof pages[i], "<ListBucketResult><IsTruncated>true</IsTruncated>"
                 "<NextContinuationToken>t%d</NextContinuationToken></ListBucketResult>", i);
        head_for(heads[i], sizeof heads[i], "200 OK", strlen(pages[i]));
        steps[i] = (script_step){heads[i], pages[i], strlen(pages[i])};
    }
    server srv;
    s3_client *c = list_client(&srv, steps, EMPTY, 0);
    s3_listing l;
    char *err = NULL;
    assert_int_equal(s3_list(c, "velero/backups/", "/", 0, &l, &err), S3_ERR);
    server_stop(&srv);
    s3_listing_free(&l);
    if (!err || !strstr(err, "truncated pages in a row without an entry (no progress)"))
        fail_msg("unexpected: %s", err ? err : "(no error)");
    assert_non_null(strstr(err, "s3://velero/velero/backups/"));
    free(err);
    err = NULL;
    s3_free(c);

    /* the token it was sent, on a page that is not empty */
    static const char p1[] = "<ListBucketResult><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>same</NextContinuationToken>"
        "<CommonPrefixes><Prefix>velero/backups/a/</Prefix></CommonPrefixes></ListBucketResult>";
    char h1[128];
    head_for(h1, sizeof h1, "200 OK", sizeof p1 - 1);
    const script_step same[] = {{h1, p1, sizeof p1 - 1}, {h1, p1, sizeof p1 - 1}};
    c = list_client(&srv, same, 2, 0);
    assert_int_equal(s3_list(c, "velero/backups/", "/", 0, &l, &err), S3_ERR);
    server_stop(&srv);
    s3_listing_free(&l);
    if (!err || !strstr(err, "page 2 is truncated but its NextContinuationToken is the token "
                             "that was sent"))
        fail_msg("unexpected: %s", err ? err : "(no error)");
    free(err);
    err = NULL;
    s3_free(c);

    /* pages that each make progress, but more of them than allowed */
    static char full[3][256];
    static char fh[3][128];
    script_step prog[3];
    for (int i = 0; i < 3; i++) {
        snprintf(full[i], sizeof full[i], "<ListBucketResult><IsTruncated>true</IsTruncated>"
                 "<NextContinuationToken>p%d</NextContinuationToken><CommonPrefixes><Prefix>"
                 "velero/backups/b%d/</Prefix></CommonPrefixes></ListBucketResult>", i, i);
        head_for(fh[i], sizeof fh[i], "200 OK", strlen(full[i]));
        prog[i] = (script_step){fh[i], full[i], strlen(full[i])};
    }
    c = list_client(&srv, prog, 3, 3);
    assert_int_equal(s3_list(c, "velero/backups/", "/", 0, &l, &err), S3_ERR);
    server_stop(&srv);
    s3_listing_free(&l);
    if (!err || !strstr(err, "the listing goes on past 3 pages"))
        fail_msg("unexpected: %s", err ? err : "(no error)");
    free(err);
    s3_free(c);
}

/* ------------------------------------------------- the Velero store */

/* The listed prefix names a backup, never velero-backup.json: a prefix that
 * is not a Kubernetes name is listed and not read, a document naming
 * another backup ("../pwned/evil") is refused naming both. */
static void test_store_names_from_prefixes(void **state)
{
    (void)state;
    static const char list[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
        "<CommonPrefixes><Prefix>velero/backups/Bad Name/</Prefix></CommonPrefixes>"
        "<CommonPrefixes><Prefix>velero/backups/evilb/</Prefix></CommonPrefixes></ListBucketResult>";
    static const char doc[] = "{\"metadata\":{\"name\":\"../pwned/evil\"},\"status\":{\"phase\":"
        "\"Completed\",\"completionTimestamp\":\"2024-05-01T10:00:00Z\"}}";
    char h1[128], h2[128];
    head_for(h1, sizeof h1, "200 OK", sizeof list - 1);
    head_for(h2, sizeof h2, "200 OK", sizeof doc - 1);
    const script_step steps[] = {{h1, list, sizeof list - 1}, {h2, doc, sizeof doc - 1},
                                 {h2, doc, sizeof doc - 1}};
    server srv;
    s3_client *c = client_on(&srv, steps, 3, 0);
    json_t *out = NULL, *considered = NULL;
    char *name = NULL, *err = NULL;
    assert_int_equal(vs_find_latest(c, "velero/backups/", false, 0, &out, &name, &considered, &err),
                     S3_ERR);
    assert_null(out);
    assert_null(name);
    if (!strstr(err, "s3://velero/velero/backups/evilb/velero-backup.json names the backup "
                     "'../pwned/evil' (metadata.name), but it is stored as backup 'evilb'"))
        fail_msg("unexpected: %s", err);
    json_t *bad = json_array_get(considered, 0);
    assert_string_equal(json_string_value(json_object_get(bad, "name")), "Bad Name");
    assert_non_null(strstr(json_string_value(json_object_get(bad, "phase")), "not a valid backup name"));
    json_decref(considered);
    free(err);
    err = NULL;
    /* by name: the same refusal; an invalid name is never requested */
    assert_int_equal(vs_get_backup(c, "velero/backups/", "evilb", &out, &err), S3_ERR);
    assert_non_null(strstr(err, "stored as backup 'evilb'"));
    free(err);
    err = NULL;
    assert_int_equal(vs_get_backup(c, "velero/backups/", "../pwned/evil", &out, &err), S3_ERR);
    assert_non_null(strstr(err, "'../pwned/evil' is not a backup name"));
    free(err);
    server_stop(&srv);
    assert_int_equal(srv.nreq, 3);
    assert_null(strstr(srv.requests[0], "Bad"));
    assert_non_null(strstr(srv.requests[1], "GET /velero/velero/backups/evilb/velero-backup.json "));
    assert_non_null(strstr(srv.requests[2], "GET /velero/velero/backups/evilb/velero-backup.json "));
    s3_free(c);
}

static int count_handler_items;
static int count_item(void *ud, const vb_path *p, json_t *obj, char **err)
{
    (void)ud; (void)p; (void)obj; (void)err;
    count_handler_items++;
    return 0;
}

/* The kept archive is a new file created inside dest's directory and renamed
 * over the target: a symbolic link planted at the target is replaced, its
 * target never written; nothing else is left behind. */
static void test_store_dest_inside_directory(void **state)
{
    (void)state;
    FILE *f = fopen(TEST_DATA_DIR "/oadp/format-1.tar.gz", "rb");
    assert_non_null(f);
    static char tgz[64 * 1024];
    size_t n = fread(tgz, 1, sizeof tgz, f);
    fclose(f);
    assert_true(n > 0 && n < sizeof tgz);
    char h[128];
    head_for(h, sizeof h, "200 OK", n);
    const script_step steps[] = {{h, tgz, n}};
    char dir[] = "/tmp/test_s3_destXXXXXX", other[] = "/tmp/test_s3_otherXXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_non_null(mkdtemp(other));
    char target[128], planted[160];
    snprintf(target, sizeof target, "%s/good.tar.gz", dir);
    snprintf(planted, sizeof planted, "%s/outside.tar.gz", other);
    assert_int_equal(symlink(planted, target), 0);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    server srv;
    s3_client *c = client_on(&srv, steps, 1, 0);
    vb_handler h_ = {.item = count_item};
    vb_stats st;
    vs_stream_result res;
    char *err = NULL;
    /* refused before any request: a bad name, a dest file that is a path */
    assert_int_equal(vs_stream_backup(c, "velero/backups/", "../x", dfd, "x.tar.gz", NULL, &h_, NULL,
                                      &st, &res, &err), S3_ERR);
    assert_non_null(strstr(err, "is not a backup name"));
    assert_int_equal(vs_stream_backup(c, "velero/backups/", "good", dfd, "../x.tar.gz", NULL, &h_, NULL,
                                      &st, &res, &err), S3_ERR);
    assert_non_null(strstr(err, "is not a file name"));
    free(err);
    err = NULL;
    int rc = vs_stream_backup(c, "velero/backups/", "good", dfd, "good.tar.gz", NULL, &h_, NULL,
                              &st, &res, &err);
    server_stop(&srv);
    if (rc != 0)
        fail_msg("vs_stream_backup: %s", err);
    assert_true(res.dest_written);
    assert_true(count_handler_items > 0);
    assert_non_null(strstr(srv.requests[0], "GET /velero/velero/backups/good/good.tar.gz "));
    struct stat sb;
    assert_int_equal(lstat(target, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal((size_t)sb.st_size, n);
    assert_int_equal(lstat(planted, &sb), -1);          /* the link's target: never written */
    DIR *d = opendir(dir);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            entries++;
    closedir(d);
    assert_int_equal(entries, 1);                       /* no .part left */
    unlink(target);
    rmdir(dir);
    rmdir(other);
    close(dfd);
    s3_free(c);
}

static void test_connection_refused(void **state)
{
    (void)state;
    /* a port nobody listens on: bind then close to get one */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", ntohs(a.sin_port));
    close(fd);
    s3_client *c = client(ep, true, 1);
    char *err = NULL;
    long long size;
    char *etag;
    assert_int_equal(s3_head(c, "k", &size, &etag, &err), S3_ERR);
    assert_non_null(strstr(err, "after 2 attempts"));
    assert_non_null(strstr(err, "HeadObject s3://velero/k"));
    no_secret(err);
    free(err);
    s3_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_insecure_http_opt_in),
        cmocka_unit_test(test_credential_control_chars),
        cmocka_unit_test(test_module_credentials_file_scrubbed),
        cmocka_unit_test(test_module_insecure_transport_warns),
        cmocka_unit_test(test_credentials_file),
        cmocka_unit_test(test_parse_error),
        cmocka_unit_test(test_parse_list),
        cmocka_unit_test(test_get_retry_and_resume),
        cmocka_unit_test(test_error_body_and_no_retry_on_403),
        cmocka_unit_test(test_listing_pages_and_404),
        cmocka_unit_test(test_missing_bucket),
        cmocka_unit_test(test_dot_segments_sent_as_is),
        cmocka_unit_test(test_listing_that_never_ends),
        cmocka_unit_test(test_store_names_from_prefixes),
        cmocka_unit_test(test_store_dest_inside_directory),
        cmocka_unit_test(test_connection_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
