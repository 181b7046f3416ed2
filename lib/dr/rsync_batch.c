/* rsync_batch.c - batch planning for rsync runs and the per-volume
 * attribution of a batch's output (see rsync_batch.h).
 */
#include "rsync_batch.h"

#include <stdlib.h>
#include <string.h>

size_t rb_batch_size(long long batch_opt, size_t runnable, size_t parallel)
{
    if (batch_opt == 1)
        return 1;
    if (batch_opt > 1)
        return (size_t)batch_opt;
    size_t size = (runnable + parallel - 1) / (parallel ? parallel : 1);
    return size > RB_MAX_BATCH ? RB_MAX_BATCH : size;
}

char *rb_base_of(const char *path, const char *rel)
{
    size_t pl = strlen(path), rl = strlen(rel);
    if (rl == 0 || pl < rl + 1 || strcmp(path + pl - rl, rel) != 0 || path[pl - rl - 1] != '/')
        return NULL;
    size_t bl = pl - rl - 1;
    return bl ? strndup(path, bl) : strdup("/");
}

static int task_add(rb_plan *p, rb_task t)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 64;
        rb_task *nt = realloc(p->tasks, nc * sizeof *nt);
        if (!nt)
            return -1;
        p->tasks = nt;
        p->cap = nc;
    }
    p->tasks[p->n++] = t;
    return 0;
}

static int task_single(rb_plan *p, size_t i)
{
    size_t *idx = malloc(sizeof *idx);
    if (!idx)
        return -1;
    *idx = i;
    if (task_add(p, (rb_task){ .idx = idx, .n = 1 }) < 0) {
        free(idx);
        return -1;
    }
    return 0;
}

int rb_plan_tasks(const rb_vol *v, size_t nv, size_t size, bool can_batch, rb_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    bool can = can_batch && size > 1;
    char **sb = calloc(nv + 1, sizeof(char *)), **db = calloc(nv + 1, sizeof(char *));
    bool *done = calloc(nv + 1, sizeof(bool));
    bool okm = sb && db && done;
    for (size_t i = 0; okm && i < nv; i++) {
        if (!v[i].runnable) {
            done[i] = true;
            continue;
        }
        if (can) {
            sb[i] = rb_base_of(v[i].src, v[i].rel);
            db[i] = sb[i] ? rb_base_of(v[i].dest, v[i].rel) : NULL;
        }
    }
    for (size_t i = 0; okm && i < nv; i++) {
        if (done[i])
            continue;
        if (!sb[i] || !db[i]) {
            done[i] = true;
            okm = task_single(plan, i) == 0;
            continue;
        }
        /* a batch: i plus the next volumes with the same bases */
        size_t *idx = malloc(size * sizeof *idx), n = 0, bytes = 0;
        if (!idx) {
            okm = false;
            break;
        }
        for (size_t k = i; k < nv && n < size; k++) {
            if (done[k] || !sb[k] || !db[k] || strcmp(sb[k], sb[i]) || strcmp(db[k], db[i]))
                continue;
            size_t need = strlen(sb[k]) + strlen(v[k].rel) + 8;
            if (n > 0 && bytes + need > RB_MAX_BATCH_ARGS)
                break;
            bytes += need;
            idx[n++] = k;
            done[k] = true;
        }
        rb_task t = { .idx = idx, .n = n };
        if (n > 1) {
            t.src_base = strdup(sb[i]);
            t.dest_base = strdup(db[i]);
            okm = t.src_base && t.dest_base;
        }
        if (!okm || task_add(plan, t) < 0) {
            free(t.src_base);
            free(t.dest_base);
            free(idx);
            okm = false;
        }
    }
    for (size_t i = 0; sb && i < nv; i++)
        free(sb[i]);
    for (size_t i = 0; db && i < nv; i++)
        free(db[i]);
    free(sb);
    free(db);
    free(done);
    if (!okm) {
        rb_plan_free(plan);
        return -1;
    }
    return 0;
}

void rb_plan_free(rb_plan *plan)
{
    for (size_t i = 0; i < plan->n; i++) {
        free(plan->tasks[i].idx);
        free(plan->tasks[i].src_base);
        free(plan->tasks[i].dest_base);
    }
    free(plan->tasks);
    memset(plan, 0, sizeof *plan);
}

void rb_stats_item(rc_stats *st, const rc_item *it)
{
    st->items++;
    st->bytes_sent += it->bytes;
    if (!strncmp(it->flags, "*deleting", 9)) {
        st->deletions++;
    } else if (it->flags[1] == 'f' && (it->flags[0] == '<' || it->flags[0] == '>')) {
        st->files_transferred++;
        st->transferred_size += it->length;
    }
}

void rb_stats_add(rc_stats *a, const rc_stats *b)
{
    a->items += b->items;
    a->deletions += b->deletions;
    a->files_transferred += b->files_transferred;
    a->files_created += b->files_created;
    a->files_deleted += b->files_deleted;
    a->bytes_sent += b->bytes_sent;
    a->bytes_received += b->bytes_received;
    a->transferred_size += b->transferred_size;
    a->have_stats |= b->have_stats;
}

void rb_when_start(rb_when *w, time_t now)
{
    w->started = now;
    w->finished = 0;
}

void rb_when_end(rb_when *w, time_t now)
{
    w->finished = now < w->started ? w->started : now;
}
