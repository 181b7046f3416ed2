/* state.c - seen/delivered object state and its journal (see state.h). */
#include "state.h"

#include "dict.h"
#include "jsonx.h"
#include "log.h"
#include "transform.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { S_UNKNOWN = 0, S_PRESENT, S_GONE };

/* One allocation per object: uid and name live in the record itself, and a
 * resourceVersion that is a decimal number (etcd's revision, always so far)
 * is kept as one, not as a string: ~140 bytes an object with the table. */
typedef struct rec {
    uint64_t seen_hash, del_hash;
    off_t off;                 /* journal line of the delivered version */
    const char *ns;            /* interned, NULL for cluster-scoped */
    const char *scope;         /* interned tf_scope_namespace() of the last
                                * object seen (a PV's claimRef namespace...):
                                * the scope of a DELETED built from a stub */
    char *rvs;                 /* resourceVersion when not numeric, else NULL */
    uint64_t rvn;              /* numeric resourceVersion + 1; 0 = none */
    uint32_t len;
    uint32_t mark;
    uint8_t kind, seen, delivered;
    char *name;                /* points into s */
    char uid[];                /* uid, '\0', name, '\0' */
} rec;

static void rec_set_rv(rec *r, const char *v)
{
    free(r->rvs);
    r->rvs = NULL;
    r->rvn = 0;
    if (!v)
        return;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (*v >= '0' && *v <= '9' && !*end && !errno && n < UINT64_MAX &&
        (v[0] != '0' || !v[1]))   /* canonical: no leading zero */
        r->rvn = n + 1;
    else
        r->rvs = strdup(v);
}

/* The resourceVersion as a string (buf >= 24 bytes), NULL when none. */
static const char *rec_rv(const rec *r, char *buf, size_t len)
{
    if (r->rvs)
        return r->rvs;
    if (!r->rvn)
        return NULL;
    snprintf(buf, len, "%" PRIu64, r->rvn - 1);
    return buf;
}

struct fwd_state {
    pthread_mutex_t mu;
    dict recs;                 /* uid -> rec */
    dict nss;                  /* interned namespace names */
    char *dir, *path;
    int fd;                    /* journal, -1 when memory-only */
    off_t size, live;          /* journal bytes, bytes of live lines */
    uint64_t next_seq;
    uint32_t marks;
};

static const char *intern(fwd_state *st, const char *ns)
{
    if (!ns)
        return NULL;
    char *s = dict_get(&st->nss, ns);
    if (!s && (s = strdup(ns)))
        dict_put(&st->nss, s, s);
    return s;
}

static void rec_free(rec *r)
{
    free(r->rvs);
    free(r);
}

static rec *rec_new(fwd_state *st, const char *uid, const char *name, int kind)
{
    size_t ul = strlen(uid) + 1, nl = strlen(name ? name : "") + 1;
    rec *r = calloc(1, sizeof *r + ul + nl);
    if (!r)
        return NULL;
    memcpy(r->uid, uid, ul);
    r->name = r->uid + ul;
    memcpy(r->name, name ? name : "", nl);
    r->kind = (uint8_t)kind;
    r->off = -1;
    if (dict_put(&st->recs, r->uid, r) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

static void rec_remove(fwd_state *st, rec *r)
{
    if (r->delivered)
        st->live -= r->len;
    dict_del(&st->recs, r->uid);
    rec_free(r);
}

/* ---- journal ------------------------------------------------------------ */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Appends one line; returns its offset or -1. */
static off_t append(fwd_state *st, const char *line, size_t len)
{
    if (st->fd < 0)
        return -1;
    off_t at = st->size;
    if (write_all(st->fd, line, len) != 0) {
        LOGJ(LOGL_ERROR, "state journal write failed", "{s:s,s:s}", "path", st->path,
             "error", strerror(errno));
        return -1;
    }
    st->size += (off_t)len;
    return at;
}

static json_t *read_line(fwd_state *st, const rec *r)
{
    if (st->fd < 0 || r->off < 0 || !r->len)
        return NULL;
    char *buf = malloc(r->len + 1);
    if (!buf)
        return NULL;
    ssize_t n = pread(st->fd, buf, r->len, r->off);
    json_t *j = NULL;
    if (n == (ssize_t)r->len) {
        buf[n] = '\0';
        j = json_loads(buf, 0, NULL);
    }
    free(buf);
    return j;
}

static void hash_hex(uint64_t h, char out[17]) { snprintf(out, 17, "%016" PRIx64, h); }

/* Rewrites the journal with only live lines (seq header first). */
static int compact(fwd_state *st)
{
    if (st->fd < 0)
        return 0;
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp", st->path) < 0)
        return -1;
    int nfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (nfd < 0) {
        LOGJ(LOGL_ERROR, "state journal compaction failed", "{s:s,s:s}", "path", tmp,
             "error", strerror(errno));
        free(tmp);
        return -1;
    }
    char head[64];
    int hl = snprintf(head, sizeof head, "{\"op\":\"seq\",\"s\":%" PRIu64 "}\n", st->next_seq);
    off_t size = hl;
    int rc = write_all(nfd, head, (size_t)hl);
    const char *k;
    void *v;
    char *buf = NULL;
    size_t bcap = 0;
    for (size_t it = 0; rc == 0 && dict_next(&st->recs, &it, &k, &v);) {
        rec *r = v;
        if (!r->delivered || r->off < 0)
            continue;
        if (r->len > bcap) {
            free(buf);
            bcap = r->len * 2;
            buf = malloc(bcap);
        }
        if (!buf || pread(st->fd, buf, r->len, r->off) != (ssize_t)r->len ||
            write_all(nfd, buf, r->len) != 0) {
            rc = -1;
            break;
        }
        r->off = size;
        size += r->len;
    }
    free(buf);
    if (rc == 0 && fdatasync(nfd) == 0 && rename(tmp, st->path) == 0) {
        close(st->fd);
        st->fd = nfd;
        lseek(st->fd, 0, SEEK_END);
        st->size = size;
        st->live = size - hl;
        int dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    } else {
        LOGJ(LOGL_ERROR, "state journal compaction failed", "{s:s,s:s}", "path", st->path,
             "error", strerror(errno));
        close(nfd);
        unlink(tmp);
        rc = -1;
    }
    free(tmp);
    return rc;
}

static int load(fwd_state *st, char *err, size_t errlen)
{
    FILE *f = fopen(st->path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "state: cannot read %s: %s", st->path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    off_t off = 0;
    long lineno = 0, bad = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        off_t here = off;
        off += n;
        if (line[n - 1] != '\n') {   /* torn last line (crash mid-write) */
            bad++;
            break;
        }
        json_t *j = json_loads(line, 0, NULL);
        const char *op = jx_str(j, "op"), *uid = jx_str(j, "u");
        long long s = jx_int(j, "s", 0);
        if (s > 0 && (uint64_t)s >= st->next_seq)
            st->next_seq = (uint64_t)s + 1;
        if (!op) {
            bad++;
        } else if (!strcmp(op, "put") && uid) {
            int kind = (int)jx_int(j, "k", -1);
            json_t *o = jx_get(j, "o");
            if (kind < 0 || kind >= FWD_NKINDS || !json_is_object(o)) {
                bad++;
            } else {
                rec *r = dict_get(&st->recs, uid);
                if (!r)
                    r = rec_new(st, uid, jx_str(o, "metadata.name"), kind);
                if (!r) {
                    json_decref(j);
                    break;
                }
                rec_set_rv(r, jx_str(o, "metadata.resourceVersion"));
                r->ns = fwd_kinds[kind].namespaced ? intern(st, jx_str(o, "metadata.namespace")) : NULL;
                r->scope = intern(st, tf_scope_namespace(o));
                r->del_hash = strtoull(jx_str_or(j, "h", "0"), NULL, 16);
                r->delivered = 1;
                r->off = here;
                r->len = (uint32_t)n;
            }
        } else if (!strcmp(op, "del") && uid) {
            rec *r = dict_get(&st->recs, uid);
            if (r) {
                dict_del(&st->recs, r->uid);
                rec_free(r);
            }
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    if (bad)
        LOGJ(LOGL_WARN, "state journal: skipped unreadable lines", "{s:s,s:I}", "path",
             st->path, "lines", (json_int_t)bad);
    (void)lineno;
    return 0;
}

fwd_state *state_open(const char *dir, char *err, size_t errlen)
{
    fwd_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    pthread_mutex_init(&st->mu, NULL);
    dict_init(&st->recs);
    dict_init(&st->nss);
    st->fd = -1;
    st->next_seq = 1;
    if (!dir)
        return st;
    st->dir = strdup(dir);
    if (asprintf(&st->path, "%s/journal.jsonl", dir) < 0)
        st->path = NULL;
    st->fd = open(st->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (st->fd < 0) {
        snprintf(err, errlen, "STATE_DIR: cannot open %s: %s", st->path, strerror(errno));
        state_close(st);
        return NULL;
    }
    if (load(st, err, errlen) != 0 || compact(st) != 0) {
        if (!*err)
            snprintf(err, errlen, "STATE_DIR: cannot rewrite %s", st->path);
        state_close(st);
        return NULL;
    }
    LOGJ(LOGL_INFO, "state loaded", "{s:s,s:I,s:I}", "path", st->path, "objects",
         (json_int_t)st->recs.len, "next_sequence", (json_int_t)st->next_seq);
    return st;
}

void state_close(fwd_state *st)
{
    if (!st)
        return;
    const char *k;
    void *v;
    for (size_t it = 0; dict_next(&st->recs, &it, &k, &v);)
        rec_free(v);
    dict_free(&st->recs);
    for (size_t it = 0; dict_next(&st->nss, &it, &k, &v);)
        free(v);
    dict_free(&st->nss);
    if (st->fd >= 0) {
        fdatasync(st->fd);
        close(st->fd);
    }
    free(st->dir);
    free(st->path);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

uint64_t state_next_seq(fwd_state *st)
{
    pthread_mutex_lock(&st->mu);
    uint64_t s = st->next_seq;
    pthread_mutex_unlock(&st->mu);
    return s;
}

size_t state_count(fwd_state *st)
{
    pthread_mutex_lock(&st->mu);
    size_t n = st->recs.len;
    pthread_mutex_unlock(&st->mu);
    return n;
}

uint32_t state_new_mark(fwd_state *st)
{
    pthread_mutex_lock(&st->mu);
    uint32_t m = ++st->marks;
    if (!m)
        m = ++st->marks;
    pthread_mutex_unlock(&st->mu);
    return m;
}

int state_observe(fwd_state *st, int kind, json_t *obj, uint64_t hash, bool deleted, uint32_t mark)
{
    const char *uid = jx_str(obj, "metadata.uid");
    if (!uid)
        return -1;
    int out = -1;
    pthread_mutex_lock(&st->mu);
    rec *r = dict_get(&st->recs, uid);
    if (!r) {
        r = rec_new(st, uid, jx_str(obj, "metadata.name"), kind);
        if (!r) {
            pthread_mutex_unlock(&st->mu);
            return -1;
        }
        r->ns = fwd_kinds[kind].namespaced ? intern(st, jx_str(obj, "metadata.namespace")) : NULL;
    }
    rec_set_rv(r, jx_str(obj, "metadata.resourceVersion"));
    const char *scope = tf_scope_namespace(obj);
    if (!scope || !r->scope || strcmp(r->scope, scope) != 0)
        r->scope = intern(st, scope);
    if (mark)
        r->mark = mark;
    if (deleted) {
        if (r->seen != S_GONE)
            out = EV_DELETED;
        r->seen = S_GONE;
    } else {
        uint64_t prev = r->seen == S_PRESENT ? r->seen_hash
                        : r->seen == S_UNKNOWN && r->delivered ? r->del_hash : 0;
        if (r->seen == S_GONE || (r->seen == S_UNKNOWN && !r->delivered))
            out = EV_ADDED;
        else if (prev != hash)
            out = EV_MODIFIED;
        r->seen = S_PRESENT;
        r->seen_hash = hash;
    }
    pthread_mutex_unlock(&st->mu);
    return out;
}

static json_t *stub(const rec *r)
{
    const fwd_kind *k = &fwd_kinds[r->kind];
    char rvb[24];
    return json_pack("{s:s,s:s,s:{s:s?,s:s?,s:s,s:s?}}", "apiVersion", k->api_version,
                     "kind", k->kind, "metadata", "name", r->name, "namespace", r->ns,
                     "uid", r->uid, "resourceVersion", rec_rv(r, rvb, sizeof rvb));
}

size_t state_sweep(fwd_state *st, int kind, const char *ns, uint32_t mark, int origin,
                   fwd_event ***out)
{
    *out = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&st->mu);
    const char *k;
    void *v;
    for (size_t it = 0; dict_next(&st->recs, &it, &k, &v);) {
        rec *r = v;
        if (r->kind != kind || r->mark == mark || r->seen == S_GONE)
            continue;
        if (ns && (!r->ns || strcmp(r->ns, ns) != 0))
            continue;
        if (r->seen == S_UNKNOWN && !r->delivered)
            continue;
        json_t *last = NULL;
        if (r->delivered) {
            json_t *line = read_line(st, r);
            last = json_incref(jx_get(line, "o"));
            json_decref(line);
        }
        int stubbed = !last;
        if (!last) {
            last = stub(r);
        } else {   /* deletion observed now: keep the last resourceVersion we know */
            char rvb[24];
            const char *rv = rec_rv(r, rvb, sizeof rvb);
            jx_set(last, "metadata.resourceVersion", rv ? json_string(rv) : json_null());
        }
        fwd_event *ev = fwd_event_new(EV_DELETED, kind, origin, last, r->seen_hash);
        json_decref(last);
        if (ev && stubbed && r->scope && !ev->scope && !(ev->scope = strdup(r->scope))) {
            fwd_event_free(ev);
            ev = NULL;
        }
        if (!ev)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            fwd_event **g = realloc(*out, cap * sizeof **out);
            if (!g) {
                fwd_event_free(ev);
                break;
            }
            *out = g;
        }
        (*out)[n++] = ev;
        r->seen = S_GONE;
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

/* The object without managedFields, as a journal "put" line. */
static char *put_line(const fwd_event *ev, size_t *len)
{
    json_t *o = fwd_event_object(ev);
    if (!o)
        return NULL;
    json_t *md = json_object_get(o, "metadata");
    if (json_is_object(md))
        json_object_del(md, "managedFields");
    char hh[17];
    hash_hex(ev->hash, hh);
    json_t *line = json_pack("{s:s,s:I,s:s,s:i,s:s,s:o}", "op", "put", "s", (json_int_t)ev->seq,
                             "u", ev->uid, "k", ev->kind, "h", hh, "o", o);
    char *s = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    *len = n + 1;
    return t;
}

void state_delivered(fwd_state *st, const fwd_event *ev)
{
    char *line = NULL;
    size_t len = 0;
    if (st->fd >= 0 && ev->type != EV_DELETED)
        line = put_line(ev, &len);   /* serialize outside the lock */
    pthread_mutex_lock(&st->mu);
    if (ev->seq >= st->next_seq)
        st->next_seq = ev->seq + 1;
    rec *r = dict_get(&st->recs, ev->uid);
    if (ev->type == EV_DELETED) {
        if (r && r->delivered && st->fd >= 0) {
            char buf[160];
            int n = snprintf(buf, sizeof buf, "{\"op\":\"del\",\"s\":%" PRIu64 ",\"u\":\"%s\"}\n",
                             ev->seq, ev->uid);
            if (n > 0 && (size_t)n < sizeof buf)
                append(st, buf, (size_t)n);
        }
        if (r && r->seen != S_PRESENT)
            rec_remove(st, r);
        else if (r && r->delivered) {
            st->live -= r->len;
            r->delivered = 0;
            r->off = -1;
        }
    } else {
        if (!r) {   /* deleted and already delivered: a late duplicate, keep nothing */
            pthread_mutex_unlock(&st->mu);
            free(line);
            return;
        }
        off_t at = line ? append(st, line, len) : -1;
        if (r->delivered)
            st->live -= r->len;
        r->delivered = 1;
        r->del_hash = ev->hash;
        r->off = at;
        r->len = at >= 0 ? (uint32_t)len : 0;
        st->live += r->len;
    }
    if (st->fd >= 0 && st->size > 2 * st->live + (8 << 20))
        compact(st);
    pthread_mutex_unlock(&st->mu);
    free(line);
}

void state_sync(fwd_state *st)
{
    pthread_mutex_lock(&st->mu);
    if (st->fd >= 0)
        fdatasync(st->fd);
    pthread_mutex_unlock(&st->mu);
}
