/* deliver.c - webhook delivery workers (see deliver.h): one POST per event
 * with token + HMAC, retries with backoff, dead letters for events the
 * webhook rejects as such, and the stall watch /readyz reports. */
#include "deliver.h"

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "payload.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What one worker is doing, for the stall watch: since when the event it
 * holds has been failing (0: none), which event, the last error. */
typedef struct slot {
    double failing_since;     /* fwd_mono() of the first failed attempt */
    char what[320];           /* "Kind ns/name rv N" */
    char error[96];           /* "HTTP 503", a transport error */
} slot;

typedef struct worker_arg { struct deliver *d; long i; } worker_arg;

struct deliver {
    const fwd_config *cfg;
    fwd_queue *q;
    fwd_state *st;
    pthread_t *threads;
    worker_arg *args;
    long n;
    atomic_int abort_retries;
    pthread_mutex_t mu;       /* slots */
    slot *slots;
};

int deliver_sign(const char *algo, const char *format, const char *secret, const char *body,
                 size_t len, char *out, size_t outlen)
{
    const EVP_MD *md = config_hmac_md(algo);
    if (!md || !secret)
        return -1;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    if (!HMAC(md, secret, (int)strlen(secret), (const unsigned char *)body, len, mac, &mlen))
        return -1;
    if (!strcmp(format, "hex")) {
        if (outlen < 2 * (size_t)mlen + 1)
            return -1;
        for (unsigned i = 0; i < mlen; i++)
            snprintf(out + 2 * i, 3, "%02x", mac[i]);
        return 0;
    }
    if (!strcmp(format, "base64")) {
        if (outlen < 4 * (((size_t)mlen + 2) / 3) + 1)
            return -1;
        EVP_EncodeBlock((unsigned char *)out, mac, (int)mlen);
        return 0;
    }
    return -1;
}

/* The start of an answer's body: enough to scrub a secret it echoes as a
 * whole before a short excerpt is logged (see response_excerpt). */
typedef struct resp { char text[4096]; size_t len; } resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    size_t total = sz * n, room = sizeof r->text - 1 - r->len;
    size_t take = total < room ? total : room;
    memcpy(r->text + r->len, p, take);
    r->len += take;
    r->text[r->len] = '\0';
    return total;
}

/* The answer's body for a log line: secrets scrubbed from the whole
 * captured text first, then cut to 200 bytes and made printable ASCII (a
 * body that is not UTF-8 would make the whole log line's fields unbuildable).
 * malloc'd. */
static char *response_excerpt(const resp *r)
{
    char *s = log_scrub(r->text);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    if (n > 200)
        strcpy(s + 197, "...");
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            *p = '?';
    return s;
}

/* A failed answer that says this very event is refused, so sending it again
 * cannot help and other events may still pass: 413 (too large: ansible-
 * rulebook's 1 MiB body limit) and 422 (unprocessable).  Every other 4xx is
 * retried: 400 (ansible-rulebook's answer to a missing signature header),
 * 404/405 (a wrong URL), 401/403 (credentials) fail EVERY event the same
 * way - dead-lettering them would drop the whole stream with only a counter
 * to show for it; retried, they stall delivery, and /readyz says so. */
int deliver_rejects_event(long status)
{
    return status == 413 || status == 422;
}

static CURL *make_handle(const fwd_config *c, resp *r)
{
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    curl_easy_setopt(h, CURLOPT_URL, c->webhook_url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->webhook_timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     c->webhook_timeout_ms < 5000 ? c->webhook_timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ocpv-dr-forwarder/0.1");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    /* https:// never falls back to http (there are no redirects either) */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, config_plain_http(c) ? "http" : "https");
    if (c->ca_bundle)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_bundle);
    if (c->client_cert) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->client_cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->client_key);
    }
    if (!c->webhook_verify_tls) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return h;
}

/* One POST.  Returns -1 on success, else the W_* reason; *status set, and
 * *retry_after_s to the answer's Retry-After (-1: none). */
static int post(deliver *d, CURL *h, resp *r, const char *body, size_t len, long *status,
                long *retry_after_s, char *cerr, size_t cerrlen)
{
    const fwd_config *c = d->cfg;
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:");
    char line[1024];
    if (c->token) {
        char *auth = NULL;
        if (asprintf(&auth, "Authorization: Bearer %s", c->token) >= 0) {
            hdr = curl_slist_append(hdr, auth);
            memset(auth, 0, strlen(auth));
            free(auth);
        }
    }
    if (c->hmac_secret) {
        char sig[EVP_MAX_MD_SIZE * 2 + 8];
        if (deliver_sign(c->hmac_algo, c->hmac_format, c->hmac_secret, body, len, sig,
                         sizeof sig) == 0) {
            snprintf(line, sizeof line, "%s: %s", c->hmac_header, sig);
            hdr = curl_slist_append(hdr, line);
        }
    }
    r->len = 0;
    r->text[0] = '\0';
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdr);   /* the token line is in a curl-owned copy */
    *status = 0;
    *retry_after_s = -1;
    if (rc != CURLE_OK) {
        snprintf(cerr, cerrlen, "%s", curl_easy_strerror(rc));
        return rc == CURLE_OPERATION_TIMEDOUT ? W_TIMEOUT : W_TRANSPORT;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (*status >= 200 && *status < 300)
        return -1;
    curl_off_t ra = -1;
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        *retry_after_s = ra > 86400 ? 86400 : (long)ra;
    snprintf(cerr, cerrlen, "HTTP %ld", *status);
    return *status >= 500 ? W_HTTP_5XX : W_HTTP_4XX;
}

/* Sleeps ms in slices, returning early when retries are aborted. */
static void backoff_sleep(deliver *d, long ms)
{
    double until = fwd_mono() + ms / 1000.0;
    while (!atomic_load(&d->abort_retries)) {
        double left = until - fwd_mono();
        if (left <= 0)
            break;
        fwd_sleep(left < 0.05 ? left : 0.05);
    }
}

static void slot_set(deliver *d, long i, const fwd_event *ev, const char *error)
{
    pthread_mutex_lock(&d->mu);
    slot *sl = &d->slots[i];
    if (!ev) {
        sl->failing_since = 0;
    } else {
        if (!sl->failing_since) {
            sl->failing_since = fwd_mono();
            snprintf(sl->what, sizeof sl->what, "%s %s%s%s rv %s", fwd_kinds[ev->kind].kind,
                     ev->ns ? ev->ns : "", ev->ns ? "/" : "", ev->name, ev->rv ? ev->rv : "?");
        }
        snprintf(sl->error, sizeof sl->error, "%s", error);
    }
    pthread_mutex_unlock(&d->mu);
}

static void *worker(void *arg)
{
    worker_arg *wa = arg;
    deliver *d = wa->d;
    resp r = { { 0 }, 0 };
    CURL *h = make_handle(d->cfg, &r);
    unsigned seed = (unsigned)(uintptr_t)&r ^ (unsigned)fwd_mono();
    for (;;) {
        if (atomic_load(&d->abort_retries))
            break;              /* leftovers are counted as dropped by queue_free */
        fwd_event *ev = queue_take(d->q, 0.5);
        if (!ev) {
            if (queue_finished(d->q))
                break;
            continue;
        }
        size_t len = 0;
        char *body = payload_dump(ev, d->cfg->cluster_name, &len);
        long delay = d->cfg->backoff_min_ms;
        int rejected = 0;     /* answers refusing this very event (deliver_rejects_event) */
        for (;;) {
            long status = 0, retry_after_s = -1;
            char cerr[256] = "";
            double t0 = fwd_mono();
            int why = body && h ? post(d, h, &r, body, len, &status, &retry_after_s, cerr, sizeof cerr)
                                : W_TRANSPORT;
            ev->attempts++;
            if (why < 0) {
                double now = fwd_mono();
                metrics_webhook_latency(now - t0);
                metrics_event_latency(fwd_now() - ev->observed);
                metrics_count(M_FORWARDED, ev->kind, ev->type);
                state_delivered(d->st, ev);
                if (ev->attempts > 1)
                    LOGJ(LOGL_INFO, "webhook delivery recovered", "{s:s,s:s,s:s,s:s,s:I,s:i}",
                         "type", fwd_type_names[ev->type],
                         "kind", fwd_kinds[ev->kind].kind, "name", ev->name, "uid", ev->uid,
                         "sequence", (json_int_t)ev->seq, "attempts", ev->attempts);
                else
                    LOGJ(LOGL_DEBUG, "event forwarded", "{s:s,s:s,s:s?,s:s?,s:s,s:I}",
                         "type", fwd_type_names[ev->type], "kind", fwd_kinds[ev->kind].kind,
                         "namespace", ev->ns, "scopeNamespace", ev->scope, "name", ev->name,
                         "sequence", (json_int_t)ev->seq);
                break;
            }
            metrics_webhook_error(why);
            if (why == W_HTTP_4XX && deliver_rejects_event(status) &&
                ++rejected >= d->cfg->reject_attempts) {
                /* Dead letter: this event cannot be delivered as it is; the
                 * object's next events must not wait behind it forever.  It
                 * is not recorded as delivered, so with STATE_DIR the next
                 * start diffs the object against the last delivered state
                 * and sends its then current state again. */
                char *excerpt = response_excerpt(&r);
                metrics_count(M_DEAD_LETTERED, ev->kind, ev->type);
                LOGJ(LOGL_ERROR, "webhook rejected the event: dead-lettered, not retried",
                     "{s:s,s:s,s:s?,s:s,s:s,s:s?,s:I,s:I,s:i,s:s}",
                     "type", fwd_type_names[ev->type], "kind", fwd_kinds[ev->kind].kind,
                     "namespace", ev->ns, "name", ev->name, "uid", ev->uid,
                     "resourceVersion", ev->rv, "sequence", (json_int_t)ev->seq,
                     "status", (json_int_t)status, "attempts", ev->attempts,
                     "response", excerpt ? excerpt : "");
                free(excerpt);
                break;
            }
            slot_set(d, wa->i, ev, cerr);
            if (ev->attempts == 1 || ev->attempts % 10 == 0) {
                char *excerpt = response_excerpt(&r);
                LOGJ(LOGL_WARN, "webhook delivery failed, will retry",
                     "{s:s,s:s?,s:s,s:s,s:s?,s:I,s:i,s:s,s:s,s:I}",
                     "kind", fwd_kinds[ev->kind].kind, "namespace", ev->ns, "name", ev->name,
                     "uid", ev->uid, "resourceVersion", ev->rv,
                     "sequence", (json_int_t)ev->seq, "attempts", ev->attempts,
                     "error", cerr, "response", excerpt ? excerpt : "",
                     "retry_in_ms", (json_int_t)delay);
                free(excerpt);
            }
            if (atomic_load(&d->abort_retries)) {
                metrics_count(M_DROPPED, ev->kind, ev->type);
                LOGJ(LOGL_ERROR, "event not delivered before shutdown", "{s:s,s:s,s:s,s:s,s:I}",
                     "type", fwd_type_names[ev->type], "kind", fwd_kinds[ev->kind].kind,
                     "name", ev->name, "uid", ev->uid, "sequence", (json_int_t)ev->seq);
                break;
            }
            long jitter = delay / 4 ? (long)(rand_r(&seed) % (unsigned)(delay / 4 + 1)) : 0;
            long wait = delay - delay / 8 + jitter;
            /* a 429/503 that says when: not sooner (at most 120 s, as the
             * Kubernetes client caps it) */
            if (retry_after_s > 0) {
                long ra = (retry_after_s < 120 ? retry_after_s : 120) * 1000;
                if (ra > wait)
                    wait = ra;
            }
            backoff_sleep(d, wait);
            delay = delay * 2 > d->cfg->backoff_max_ms ? d->cfg->backoff_max_ms : delay * 2;
        }
        slot_set(d, wa->i, NULL, NULL);
        free(body);
        queue_done(d->q, ev);
    }
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

int deliver_stalled(deliver *d, double threshold_s, char *why, size_t len)
{
    if (!d)
        return 0;
    double now = fwd_mono(), oldest = 0;
    long stuck = 0, at = -1;
    pthread_mutex_lock(&d->mu);
    for (long i = 0; i < d->n; i++) {
        double since = d->slots[i].failing_since;
        if (since && now - since > threshold_s) {
            stuck++;
            if (at < 0 || since < oldest) {
                oldest = since;
                at = i;
            }
        }
    }
    if (stuck && why && len)
        snprintf(why, len, "delivery stalled: %ld of %ld workers failing for more than %.0f s "
                 "(oldest %.0f s: %s, last error %s)", stuck, d->n, threshold_s, now - oldest,
                 d->slots[at].what, d->slots[at].error);
    pthread_mutex_unlock(&d->mu);
    return stuck > 0;
}

deliver *deliver_start(const fwd_config *cfg, fwd_queue *q, fwd_state *st, char *err, size_t errlen)
{
    deliver *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->cfg = cfg;
    d->q = q;
    d->st = st;
    pthread_mutex_init(&d->mu, NULL);
    d->threads = calloc((size_t)cfg->parallel, sizeof *d->threads);
    d->args = calloc((size_t)cfg->parallel, sizeof *d->args);
    d->slots = calloc((size_t)cfg->parallel, sizeof *d->slots);
    if (!d->threads || !d->args || !d->slots) {
        snprintf(err, errlen, "out of memory starting %ld delivery workers", cfg->parallel);
        deliver_stop(d, 1);
        return NULL;
    }
    for (long i = 0; i < cfg->parallel; i++) {
        d->args[i] = (worker_arg){ d, i };
        /* n first: deliver_stalled() reads slots [0, n) */
        pthread_mutex_lock(&d->mu);
        d->n = i + 1;
        pthread_mutex_unlock(&d->mu);
        if (pthread_create(&d->threads[i], NULL, worker, &d->args[i]) != 0) {
            snprintf(err, errlen, "cannot start delivery worker %ld", i);
            d->n = i;
            deliver_stop(d, 1);
            return NULL;
        }
    }
    return d;
}

void deliver_stop(deliver *d, int abort_retries)
{
    if (!d)
        return;
    if (abort_retries)
        atomic_store(&d->abort_retries, 1);
    queue_close(d->q);
    for (long i = 0; i < d->n; i++)
        pthread_join(d->threads[i], NULL);
    pthread_mutex_destroy(&d->mu);
    free(d->threads);
    free(d->args);
    free(d->slots);
    free(d);
}
