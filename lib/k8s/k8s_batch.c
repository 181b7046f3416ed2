/* k8s_batch.c - many Kubernetes requests in flight at once on one curl multi
 * handle (at most k8s_config.max_in_flight), each retried on its own with
 * the same policy as k8s_request (backoff + jitter, Retry-After), each
 * reported to its callback when it completes.  A list request walks its
 * pages (checked as k8s_list checks them) and reports the whole list. */
#include "k8s_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct breq {
    k8s_client *c;             /* the client this request goes to */
    const char *method;        /* static string */
    char *path;
    const char *ctype;         /* static string or NULL */
    char *body;
    k8s_batch_cb cb;
    void *ud;
    bool invalid;              /* failed while queueing: report at run */
    k8s_error err;
    int attempts;
    long long due_ms;          /* earliest (re)start time */
    CURL *h;
    struct curl_slist *hdrs;
    k8s_resp resp;
    char ebuf[CURL_ERROR_SIZE];
    /* lists: the resource, the path without continue, the pages so far */
    const k8s_resource *res;
    char *ns;
    char *base;
    char *cont;
    json_t *all;
    long pages, empty_run;
    int restarts;
} breq;

struct k8s_batch {
    k8s_client *c;
    breq **q;
    size_t n, cap;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

k8s_batch *k8s_batch_new(k8s_client *c)
{
    k8s_batch *b = calloc(1, sizeof *b);
    if (b)
        b->c = c;
    return b;
}

static breq *push_on(k8s_batch *b, k8s_client *c, k8s_batch_cb cb, void *ud)
{
    if (!b)
        return NULL;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        breq **nq = realloc(b->q, cap * sizeof *nq);
        if (!nq)
            return NULL;
        b->q = nq;
        b->cap = cap;
    }
    breq *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->c = c ? c : b->c;
    r->cb = cb;
    r->ud = ud;
    r->resp.retry_after_s = -1;
    b->q[b->n++] = r;
    return r;
}

static breq *push(k8s_batch *b, k8s_batch_cb cb, void *ud)
{
    return push_on(b, NULL, cb, ud);
}

void k8s_batch_apply(k8s_batch *b, const k8s_resource *res, json_t *obj,
                     const k8s_write_opts *opts, k8s_batch_cb cb, void *ud)
{
    breq *r = push(b, cb, ud);
    if (!r)
        return;
    r->method = "PATCH";
    r->ctype = "application/apply-patch+yaml";
    if (k8s_build_apply(b->c, res, obj, opts, &r->path, &r->body, &r->err) != 0)
        r->invalid = true;
}

void k8s_batch_merge_patch(k8s_batch *b, const k8s_resource *res, const char *ns,
                           const char *name, json_t *patch, const k8s_write_opts *opts,
                           k8s_batch_cb cb, void *ud)
{
    breq *r = push(b, cb, ud);
    if (!r)
        return;
    r->method = "PATCH";
    r->ctype = "application/merge-patch+json";
    if (k8s_build_merge_patch(b->c, res, ns, name, patch, opts, &r->path, &r->body,
                              &r->err) != 0)
        r->invalid = true;
}

void k8s_batch_get(k8s_batch *b, const k8s_resource *res, const char *ns,
                   const char *name, k8s_batch_cb cb, void *ud)
{
    breq *r = push(b, cb, ud);
    if (!r)
        return;
    r->method = "GET";
    if (!name || !*name) {
        r->invalid = true;
        k8s_error_printf(&r->err, "get %s: name is required", res->kind);
        return;
    }
    if (k8s_path_build(res, ns, name, &r->path, &r->err) != 0)
        r->invalid = true;
}

void k8s_batch_delete(k8s_batch *b, const k8s_resource *res, const char *ns,
                      const char *name, const k8s_delete_opts *opts,
                      k8s_batch_cb cb, void *ud)
{
    breq *r = push(b, cb, ud);
    if (!r)
        return;
    r->method = "DELETE";
    r->ctype = "application/json";
    if (k8s_build_delete(res, ns, name, opts, &r->path, &r->body, &r->err) != 0)
        r->invalid = true;
}

void k8s_batch_list(k8s_batch *b, k8s_client *c, const k8s_resource *res, const char *ns,
                    const k8s_list_opts *opts, k8s_batch_cb cb, void *ud)
{
    breq *r = push_on(b, c, cb, ud);
    if (!r)
        return;
    r->method = "GET";
    r->res = res;
    r->all = json_array();
    char lim[32];
    snprintf(lim, sizeof lim, "%ld", opts && opts->limit > 0 ? opts->limit : 500);
    if ((ns && !(r->ns = strdup(ns))) || !r->all) {
        r->invalid = true;
        k8s_error_printf(&r->err, "list %s: out of memory", res->kind);
        return;
    }
    if (k8s_path_build(res, ns, NULL, &r->base, &r->err) != 0) {
        r->invalid = true;
        return;
    }
    int q = k8s_qs_add(&r->base, "limit", lim);
    if (q == 0 && opts && opts->label_selector && *opts->label_selector)
        q = k8s_qs_add(&r->base, "labelSelector", opts->label_selector);
    if (q == 0 && opts && opts->field_selector && *opts->field_selector)
        q = k8s_qs_add(&r->base, "fieldSelector", opts->field_selector);
    if (q != 0 || !(r->path = strdup(r->base))) {
        r->invalid = true;
        k8s_error_printf(&r->err, "list %s: out of memory", res->kind);
    }
}

/* The path of a list's next page (cont NULL: the first). */
static int list_path(breq *r)
{
    free(r->path);
    r->path = strdup(r->base);
    if (r->path && r->cont && k8s_qs_add(&r->path, "continue", r->cont) != 0) {
        free(r->path);
        r->path = NULL;
    }
    if (!r->path) {
        k8s_error_printf(&r->err, "list %s: out of memory", r->res->kind);
        return -1;
    }
    return 0;
}

/* A 2xx page of a list: checked, its items kept.  1 = the next page is
 * due (r->path set), 0 = the list is complete, -1 with r->err. */
static int list_page(breq *r, long status)
{
    json_t *page = k8s_parse_body(r->resp.data, r->resp.len);
    if (k8s_list_check(page, r->res, r->ns, r->path, status, &r->err) != 0) {
        json_decref(page);
        return -1;
    }
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(page, "items"), i, it) {
        k8s_fill_type(it, r->res);
        json_array_append(r->all, it);
    }
    char *next = NULL;
    int rc = k8s_list_continue(page, r->cont, &r->pages, &r->empty_run, r->res, r->ns, &next,
                               &r->err);
    json_decref(page);
    free(r->cont);
    r->cont = next;
    if (rc != 0)
        return -1;
    if (!next)
        return 0;
    return list_path(r) == 0 ? 1 : -1;
}

static void req_free(breq *r)
{
    if (r->h)
        curl_easy_cleanup(r->h);
    curl_slist_free_all(r->hdrs);
    k8s_resp_free(&r->resp);
    free(r->path);
    free(r->body);
    free(r->ns);
    free(r->base);
    free(r->cont);
    json_decref(r->all);
    free(r);
}

/* Starts one request on the multi handle; false (with r->err) when it could
 * not even be set up. */
static bool start(k8s_batch *b, CURLM *m, breq *r)
{
    r->h = curl_easy_init();
    if (!r->h) {
        k8s_error_printf(&r->err, "%s %s: cannot create a curl handle", r->method, r->path);
        return false;
    }
    (void)b;
    if (k8s_easy_setup(r->c, r->h, r->method, r->path, r->ctype, r->body, &r->hdrs,
                       &r->err) != 0)
        return false;
    r->resp.len = 0;
    r->resp.retry_after_s = -1;
    r->ebuf[0] = '\0';
    curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, k8s_resp_write);
    curl_easy_setopt(r->h, CURLOPT_WRITEDATA, &r->resp);
    curl_easy_setopt(r->h, CURLOPT_HEADERFUNCTION, k8s_resp_header);
    curl_easy_setopt(r->h, CURLOPT_HEADERDATA, &r->resp);
    curl_easy_setopt(r->h, CURLOPT_ERRORBUFFER, r->ebuf);
    curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
    if (curl_multi_add_handle(m, r->h) != CURLM_OK) {
        k8s_error_printf(&r->err, "%s %s: cannot start the request", r->method, r->path);
        return false;
    }
    return true;
}

static void finish_handle(breq *r)
{
    curl_easy_cleanup(r->h);
    r->h = NULL;
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
}

/* A request that failed for good: its callback gets the error (r->err). */
static void give_up(breq *r, int *failed, size_t *done)
{
    if (r->cb)
        r->cb(r->ud, -1, NULL, &r->err);
    (*failed)++;
    (*done)++;
}

int k8s_batch_run(k8s_batch *b)
{
    if (!b)
        return 0;
    int failed = 0;
    size_t n = b->n, done = 0, next = 0;
    int inflight = 0, max = b->c->cfg.max_in_flight;
    CURLM *m = curl_multi_init();
    /* retry queue: requests waiting for their due time */
    breq **wait = calloc(n ? n : 1, sizeof *wait);
    size_t nwait = 0;
    if (!m || !wait) {
        for (size_t i = 0; i < n; i++) {
            k8s_error e;
            k8s_error_printf(&e, "batch: out of memory");
            if (b->q[i]->cb)
                b->q[i]->cb(b->q[i]->ud, -1, NULL, &e);
        }
        failed = (int)n;
        goto out;
    }

    while (done < n) {
        long long now = now_ms();
        /* start retries that are due, then new requests */
        for (size_t i = 0; i < nwait && inflight < max;) {
            breq *r = wait[i];
            if (r->due_ms > now) {
                i++;
                continue;
            }
            wait[i] = wait[--nwait];
            if (start(b, m, r)) {
                inflight++;
            } else {
                finish_handle(r);
                if (r->cb)
                    r->cb(r->ud, -1, NULL, &r->err);
                failed++;
                done++;
            }
        }
        while (next < n && inflight < max) {
            breq *r = b->q[next++];
            if (!r->invalid && start(b, m, r)) {
                inflight++;
                continue;
            }
            finish_handle(r);
            give_up(r, &failed, &done);
        }
        if (done >= n)
            break;

        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *h = msg->easy_handle;
            CURLcode cc = msg->data.result;
            breq *r = NULL;
            curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&r);
            long status = 0;
            if (cc == CURLE_OK)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
            bool sent = cc == CURLE_OK || k8s_request_sent(h);
            curl_multi_remove_handle(m, h);
            finish_handle(r);
            inflight--;
            if (cc == CURLE_OK && status >= 200 && status < 300 && r->res) {
                int more = list_page(r, status);
                if (more > 0) {              /* the next page: at once */
                    r->attempts = 0;
                    r->due_ms = 0;
                    wait[nwait++] = r;
                    continue;
                }
                if (r->cb)
                    r->cb(r->ud, more, more == 0 ? r->all : NULL, more == 0 ? NULL : &r->err);
                failed += more != 0;
                done++;
                continue;
            }
            if (cc == CURLE_OK && status >= 200 && status < 300) {
                json_t *out = k8s_parse_body(r->resp.data, r->resp.len);
                if (r->cb)
                    r->cb(r->ud, 0, out, NULL);
                json_decref(out);
                done++;
                continue;
            }
            k8s_error_set(&r->err, r->method, r->path, status, (int)cc, r->ebuf,
                          r->resp.data, r->resp.len);
            if (r->res && status == 410 && r->cont && r->restarts < 3) {
                /* the continue token expired: list again from the start */
                r->restarts++;
                free(r->cont);
                r->cont = NULL;
                r->pages = r->empty_run = 0;
                json_array_clear(r->all);
                if (list_path(r) == 0) {
                    r->attempts = 0;
                    r->due_ms = 0;
                    wait[nwait++] = r;
                    continue;
                }
            }
            if (r->attempts < r->c->cfg.max_retries &&
                k8s_retryable(r->method, status, (int)cc, sent)) {
                r->due_ms = now_ms() + k8s_backoff_ms(r->attempts, r->resp.retry_after_s,
                                                      k8s_rand());
                r->attempts++;
                wait[nwait++] = r;
                continue;
            }
            give_up(r, &failed, &done);
        }
        if (done >= n)
            break;

        /* wait for activity, or for the next retry to become due */
        long tmo = next < n && inflight < max ? 0 : 1000;   /* free slot: start now */
        now = now_ms();
        for (size_t i = 0; i < nwait; i++) {
            long d = (long)(wait[i]->due_ms - now);
            if (d < tmo)
                tmo = d < 0 ? 0 : d;
        }
        if (inflight > 0)
            curl_multi_poll(m, NULL, 0, (int)tmo, NULL);
        else
            k8s_sleep_ms(tmo);
    }
out:
    free(wait);
    if (m)
        curl_multi_cleanup(m);
    for (size_t i = 0; i < b->n; i++)
        req_free(b->q[i]);
    b->n = 0;   /* the batch can be reused */
    return failed;
}

void k8s_batch_free(k8s_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        req_free(b->q[i]);
    free(b->q);
    free(b);
}
