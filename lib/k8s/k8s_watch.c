/* k8s_watch.c - streaming watches: one long GET ?watch=1 whose body is
 * newline-delimited JSON events, split and decoded by k8s_watch_lines.c
 * and handed to a callback.  The transfer runs on a private multi handle
 * polled every 200 ms, so a stop flag ends it promptly even when the stream
 * is idle; the callback can end it too; TCP keepalive ends it when the
 * connection silently dies. */
#include "k8s_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wstate {
    CURL *h;
    k8s_wlines lines;      /* the event stream (k8s_watch_lines.c) */
    k8s_resp errbody;      /* body of a non-200 answer */
    volatile int *stop;
    bool stopped;          /* by the stop flag */
    long status;
} wstate;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    wstate *w = ud;
    size_t n = size * nmemb;
    if (!w->status)
        curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &w->status);
    if (w->status != 200)
        return k8s_resp_append(&w->errbody, ptr, n) == 0 ? n : 0;
    return k8s_wlines_feed(&w->lines, ptr, n) ? n : 0;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    wstate *w = ud;
    if (w->stop && *w->stop) {
        w->stopped = true;
        return 1;
    }
    return 0;
}

/* Drives the transfer on a private multi handle so the stop flag is seen
 * within STOP_POLL_MS even while the stream is idle. */
#define STOP_POLL_MS 200
static CURLcode run_stream(CURL *h, wstate *w)
{
    CURLM *m = curl_multi_init();
    if (!m)
        return CURLE_OUT_OF_MEMORY;
    if (curl_multi_add_handle(m, h) != CURLM_OK) {
        curl_multi_cleanup(m);
        return CURLE_FAILED_INIT;
    }
    CURLcode cc = CURLE_OK;
    int running = 1;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            cc = CURLE_FAILED_INIT;
            break;
        }
        if (!running)
            break;
        if (w->stop && *w->stop) {
            w->stopped = true;
            cc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        curl_multi_poll(m, NULL, 0, STOP_POLL_MS, NULL);
    }
    if (!running) {
        int left;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(m, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
                cc = msg->data.result;
    }
    curl_multi_remove_handle(m, h);
    curl_multi_cleanup(m);
    return cc;
}

/* The watch request's path + query (see k8s_int.h). */
char *k8s_watch_path(const k8s_resource *r, const char *ns, const k8s_watch_opts *o,
                     k8s_error *err)
{
    char *p;
    if (k8s_path_build(r, ns, NULL, &p, err) != 0)
        return NULL;
    k8s_error_printf(err, "watch %s: out of memory", r->kind);   /* for the NULLs below */
    char num[32];
    if (k8s_qs_add(&p, "watch", "1") != 0)
        return NULL;
    if (o && (o->allow_bookmarks || o->send_initial_events) &&
        k8s_qs_add(&p, "allowWatchBookmarks", "true") != 0)
        return NULL;
    if (o && o->send_initial_events &&
        (k8s_qs_add(&p, "sendInitialEvents", "true") != 0 ||
         k8s_qs_add(&p, "resourceVersionMatch", "NotOlderThan") != 0))
        return NULL;
    if (o && o->resource_version && *o->resource_version &&
        k8s_qs_add(&p, "resourceVersion", o->resource_version) != 0)
        return NULL;
    if (o && o->label_selector && *o->label_selector &&
        k8s_qs_add(&p, "labelSelector", o->label_selector) != 0)
        return NULL;
    if (o && o->field_selector && *o->field_selector &&
        k8s_qs_add(&p, "fieldSelector", o->field_selector) != 0)
        return NULL;
    if (o && o->timeout_seconds > 0) {
        snprintf(num, sizeof num, "%ld", o->timeout_seconds);
        if (k8s_qs_add(&p, "timeoutSeconds", num) != 0)
            return NULL;
    }
    if (err)
        memset(err, 0, sizeof *err);
    return p;
}

int k8s_watch(k8s_client *c, const k8s_resource *r, const char *ns,
              const k8s_watch_opts *opts, k8s_watch_cb cb, void *ud,
              k8s_error *err)
{
    k8s_error scratch;
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    char *path = k8s_watch_path(r, ns, opts, err);
    if (!path)
        return -1;
    CURL *h = curl_easy_init();
    if (!h) {
        k8s_error_printf(err, "GET %s: cannot create a curl handle", path);
        free(path);
        return -1;
    }
    struct curl_slist *hdrs = NULL;
    if (k8s_easy_setup(c, h, "GET", path, NULL, NULL, &hdrs, err) != 0) {
        curl_easy_cleanup(h);
        free(path);
        return -1;
    }
    wstate w = { .h = h, .stop = opts ? opts->stop : NULL,
                 .lines = { .cb = cb, .line_cb = opts ? opts->line_cb : NULL, .ud = ud,
                            .stop = opts ? opts->stop : NULL } };
    char ebuf[CURL_ERROR_SIZE] = "";
    long tmo = opts && opts->timeout_seconds > 0 ? (opts->timeout_seconds + 30) * 1000 : 0;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, tmo);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);   /* a watch holds its connection */
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL); /* stream, do not buffer */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &w);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);

    CURLcode cc = run_stream(h, &w);
    if (!w.status)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &w.status);
    int rc = 0;
    if (w.stopped || w.lines.stopped) {
        rc = 0;
    } else if (w.lines.bad_event) {
        k8s_error_printf(err, "GET %s: %s", path, w.lines.bad_msg);
        rc = -1;
    } else if (cc == CURLE_OK && w.status == 200) {
        if (!k8s_wlines_end(&w.lines) && w.lines.bad_event) {
            k8s_error_printf(err, "GET %s: %s", path, w.lines.bad_msg);
            rc = -1;
        }
    } else if (cc == CURLE_OK || (w.status && w.status != 200)) {
        k8s_error_set(err, "GET", path, w.status, 0, NULL, w.errbody.data, w.errbody.len);
        rc = -1;
    } else {
        k8s_error_set(err, "GET", path, 0, (int)cc, ebuf, NULL, 0);
        rc = -1;
    }
    k8s_wlines_free(&w.lines);
    k8s_resp_free(&w.errbody);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    free(path);
    return rc;
}
