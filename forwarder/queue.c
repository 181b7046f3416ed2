/* queue.c - bounded, per-object ordered, coalescing event queue (queue.h). */
#include "queue.h"

#include "dict.h"
#include "metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct qobj {
    char *uid;
    fwd_event *head, *tail;      /* pending, oldest first (<= 2) */
    int npending;
    int inflight;
    int ready;                   /* in the ready FIFO */
    struct qobj *rnext;
} qobj;

struct fwd_queue {
    pthread_mutex_t mu;
    pthread_cond_t can_take, can_push, drained;
    dict objs;                   /* uid -> qobj */
    qobj *rhead, *rtail;         /* objects with pending events, not in flight */
    size_t max, depth, inflight;
    uint64_t seq;
    int closed;
    int no_wait;                 /* shutting down: a full queue refuses */
};

static void abs_deadline(struct timespec *ts, double timeout)
{
    clock_gettime(CLOCK_REALTIME, ts);
    double t = (double)ts->tv_sec + ts->tv_nsec / 1e9 + timeout;
    ts->tv_sec = (time_t)t;
    ts->tv_nsec = (long)((t - (double)ts->tv_sec) * 1e9);
}

fwd_queue *queue_new(size_t max, uint64_t first_seq)
{
    fwd_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->can_take, NULL);
    pthread_cond_init(&q->can_push, NULL);
    pthread_cond_init(&q->drained, NULL);
    dict_init(&q->objs);
    q->max = max ? max : 1;
    q->seq = first_seq ? first_seq : 1;
    return q;
}

static void ready_push(fwd_queue *q, qobj *o)
{
    o->ready = 1;
    o->rnext = NULL;
    if (q->rtail)
        q->rtail->rnext = o;
    else
        q->rhead = o;
    q->rtail = o;
}

void queue_free(fwd_queue *q)
{
    if (!q)
        return;
    const char *k;
    void *v;
    for (size_t it = 0; dict_next(&q->objs, &it, &k, &v);) {
        qobj *o = v;
        for (fwd_event *e = o->head, *n; e; e = n) {
            n = e->next;
            metrics_count(M_DROPPED, e->kind, e->type);
            fwd_event_free(e);
        }
        free(o->uid);
        free(o);
    }
    dict_free(&q->objs);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->can_take);
    pthread_cond_destroy(&q->can_push);
    pthread_cond_destroy(&q->drained);
    free(q);
}

/* Replaces pending event `into` with the newer `ev` (same object). */
static void coalesce(fwd_event *into, fwd_event *ev)
{
    int type = into->type == EV_ADDED ? EV_ADDED : ev->type;
    fwd_event *keep_next = into->next;
    int attempts = into->attempts;
    /* swap contents: into takes ev's data, ev takes the old data to be freed */
    fwd_event tmp = *into;
    *into = *ev;
    *ev = tmp;
    into->type = type;
    into->next = keep_next;
    into->attempts = attempts;
    ev->next = NULL;
    fwd_event_free(ev);
}

int queue_push(fwd_queue *q, fwd_event *ev)
{
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->closed) {
            pthread_mutex_unlock(&q->mu);
            fwd_event_free(ev);
            return -1;
        }
        qobj *o = dict_get(&q->objs, ev->uid);
        if (o && o->tail && o->tail->type != EV_DELETED && ev->type != EV_DELETED) {
            ev->seq = q->seq++;
            int kind = ev->kind, type = ev->type;
            coalesce(o->tail, ev);
            metrics_count(M_COALESCED, kind, type);
            pthread_mutex_unlock(&q->mu);
            return 1;
        }
        if (q->depth < q->max) {
            if (!o) {
                o = calloc(1, sizeof *o);
                o->uid = strdup(ev->uid);
                dict_put(&q->objs, o->uid, o);
            }
            ev->seq = q->seq++;
            ev->next = NULL;
            if (o->tail)
                o->tail->next = ev;
            else
                o->head = ev;
            o->tail = ev;
            o->npending++;
            q->depth++;
            metrics_gauge_set(G_QUEUE_DEPTH, (double)q->depth);
            if (!o->inflight && !o->ready) {
                ready_push(q, o);
                pthread_cond_signal(&q->can_take);
            }
            pthread_mutex_unlock(&q->mu);
            return 0;
        }
        if (q->no_wait) {
            pthread_mutex_unlock(&q->mu);
            fwd_event_free(ev);
            return -1;
        }
        pthread_cond_wait(&q->can_push, &q->mu);
    }
}

fwd_event *queue_take(fwd_queue *q, double timeout)
{
    struct timespec ts;
    abs_deadline(&ts, timeout);
    pthread_mutex_lock(&q->mu);
    while (!q->rhead) {
        if (q->closed && q->depth == 0) {
            pthread_mutex_unlock(&q->mu);
            return NULL;
        }
        if (pthread_cond_timedwait(&q->can_take, &q->mu, &ts) == ETIMEDOUT && !q->rhead) {
            pthread_mutex_unlock(&q->mu);
            return NULL;
        }
    }
    qobj *o = q->rhead;
    q->rhead = o->rnext;
    if (!q->rhead)
        q->rtail = NULL;
    o->ready = 0;
    o->rnext = NULL;
    fwd_event *ev = o->head;
    o->head = ev->next;
    if (!o->head)
        o->tail = NULL;
    ev->next = NULL;
    o->npending--;
    o->inflight = 1;
    q->depth--;
    q->inflight++;
    metrics_gauge_set(G_QUEUE_DEPTH, (double)q->depth);
    metrics_gauge_set(G_INFLIGHT, (double)q->inflight);
    pthread_cond_signal(&q->can_push);
    pthread_mutex_unlock(&q->mu);
    return ev;
}

void queue_done(fwd_queue *q, fwd_event *ev)
{
    pthread_mutex_lock(&q->mu);
    qobj *o = dict_get(&q->objs, ev->uid);
    if (o) {
        o->inflight = 0;
        if (o->head) {
            ready_push(q, o);
            pthread_cond_signal(&q->can_take);
        } else {
            dict_del(&q->objs, o->uid);
            free(o->uid);
            free(o);
        }
    }
    q->inflight--;
    metrics_gauge_set(G_INFLIGHT, (double)q->inflight);
    if (q->depth == 0 && q->inflight == 0)
        pthread_cond_broadcast(&q->drained);
    if (q->closed)
        pthread_cond_broadcast(&q->can_take);
    pthread_mutex_unlock(&q->mu);
    fwd_event_free(ev);
}

void queue_stop_waiting(fwd_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->no_wait = 1;
    pthread_cond_broadcast(&q->can_push);
    pthread_mutex_unlock(&q->mu);
}

void queue_close(fwd_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->can_take);
    pthread_cond_broadcast(&q->can_push);
    pthread_mutex_unlock(&q->mu);
}

size_t queue_drain_wait(fwd_queue *q, double timeout)
{
    struct timespec ts;
    abs_deadline(&ts, timeout);
    pthread_mutex_lock(&q->mu);
    while (q->depth + q->inflight > 0)
        if (pthread_cond_timedwait(&q->drained, &q->mu, &ts) == ETIMEDOUT)
            break;
    size_t left = q->depth + q->inflight;
    pthread_mutex_unlock(&q->mu);
    return left;
}

int queue_finished(fwd_queue *q)
{
    pthread_mutex_lock(&q->mu);
    int f = q->closed && q->depth == 0;
    pthread_mutex_unlock(&q->mu);
    return f;
}

size_t queue_depth(fwd_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->depth;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t queue_inflight(fwd_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->inflight;
    pthread_mutex_unlock(&q->mu);
    return n;
}

uint64_t queue_next_seq(fwd_queue *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t n = q->seq;
    pthread_mutex_unlock(&q->mu);
    return n;
}
