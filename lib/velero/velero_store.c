/* velero_store.c - finds Velero backups in object storage (velero-backup.json
 * beside each tarball), picks the latest Completed one, and streams a
 * tarball from S3 into the archive reader through a socket pair fed by a
 * download thread (optionally teeing it into a kept copy, created with
 * openat(O_EXCL | O_NOFOLLOW) in the destination directory).  Backup names
 * come from the listed prefixes, are validated, and must match
 * velero-backup.json's metadata.name. */
#include "velero_store.h"
#include "xstr.h"
#include "xtime.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define META_MAX (8u * 1024 * 1024)

/* "<prefix>/<dir>/" with the prefix's slashes normalised. */
static char *store_root(const char *prefix, const char *dir)
{
    const char *p = prefix ? prefix : "";
    while (*p == '/')
        p++;
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == '/')
        n--;
    return xfmt("%.*s%s%s/", (int)n, p, n ? "/" : "", dir);
}

bool vs_name_ok(const char *name, const char **why)
{
    const char *w = NULL;
    size_t n = name ? strlen(name) : 0;
#define ALNUM(ch) (((ch) >= 'a' && (ch) <= 'z') || ((ch) >= '0' && (ch) <= '9'))
    if (n == 0)
        w = "it is empty";
    else if (n > 253)
        w = "it is longer than 253 characters";
    for (size_t i = 0; !w && i < n; i++)
        if (!ALNUM(name[i]) && name[i] != '-' && name[i] != '.')
            w = "only a-z, 0-9, '-' and '.' are allowed (no '/', upper case, space or "
                "control character)";
    for (size_t i = 0; !w && i < n; i++)
        if ((i == 0 || i == n - 1) && !ALNUM(name[i]))
            w = "it must start and end with a letter or digit";
        else if (name[i] == '.' && (!ALNUM(name[i - 1]) || !ALNUM(name[i + 1])))
            w = "every dot-separated part must start and end with a letter or digit "
                "(no \"..\")";
#undef ALNUM
    if (why)
        *why = w;
    return w == NULL;
}

char *vs_backups_root(const char *prefix)
{
    return store_root(prefix, "backups");
}

char *vs_restores_root(const char *prefix)
{
    return store_root(prefix, "restores");
}

bool vs_parse_time(const char *s, time_t *out)
{
    return xtime_parse(s, out);
}

bool vs_phase_ok(const char *phase, bool accept_partial)
{
    if (!phase)
        return false;
    return strcmp(phase, "Completed") == 0 ||
           (accept_partial && strcmp(phase, "PartiallyFailed") == 0);
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

json_t *vs_backup_summary(json_t *b, const char *fallback_name, time_t now)
{
    json_t *md = json_object_get(b, "metadata");
    json_t *spec = json_object_get(b, "spec");
    json_t *status = json_object_get(b, "status");
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *started = json_string_value(json_object_get(status, "startTimestamp"));
    const char *completed = json_string_value(json_object_get(status, "completionTimestamp"));
    json_t *s = json_object();
    json_object_set_new(s, "name", str_or_null(name ? name : fallback_name));
    json_object_set_new(s, "phase", str_or_null(json_string_value(json_object_get(status, "phase"))));
    json_object_set_new(s, "started", str_or_null(started));
    json_object_set_new(s, "completed", str_or_null(completed));
    json_object_set_new(s, "expiration",
                        str_or_null(json_string_value(json_object_get(status, "expiration"))));
    json_object_set_new(s, "format_version",
                        str_or_null(json_string_value(json_object_get(status, "formatVersion"))));
    json_object_set_new(s, "storage_location",
                        str_or_null(json_string_value(json_object_get(spec, "storageLocation"))));
    json_t *inc = json_object_get(spec, "includedNamespaces");
    json_object_set_new(s, "included_namespaces", json_is_array(inc) ? json_copy(inc) : json_array());
    json_object_set_new(s, "errors", json_integer(json_integer_value(json_object_get(status, "errors"))));
    json_object_set_new(s, "warnings", json_integer(json_integer_value(json_object_get(status, "warnings"))));
    time_t t;
    if (vs_parse_time(completed, &t) || vs_parse_time(started, &t))
        json_object_set_new(s, "age_seconds", json_integer((json_int_t)(now - t)));
    else
        json_object_set_new(s, "age_seconds", json_null());
    return s;
}

/* 0 when name is a valid backup name, else -1 with *err naming it (printable). */
static int check_backup_name(const char *name, char **err)
{
    const char *why;
    if (vs_name_ok(name, &why))
        return 0;
    char pn[300];
    xerr_set(err, "'%s' is not a backup name: %s", vb_printable(name ? name : "", pn, sizeof pn), why);
    return -1;
}

int vs_get_backup(s3_client *c, const char *root, const char *name, json_t **out, char **err)
{
    *out = NULL;
    if (check_backup_name(name, err) != 0)
        return S3_ERR;
    char *key = xfmt("%s%s/velero-backup.json", root, name);
    if (!key)
        return S3_ERR;
    char *buf = NULL;
    size_t len = 0;
    int rc = s3_get_mem(c, key, META_MAX, &buf, &len, err);
    if (rc == 0) {
        json_error_t je;
        *out = json_loadb(buf, len, 0, &je);
        if (!*out || !json_is_object(*out)) {
            char *what = s3_display(c, key);
            xerr_set(err, "%s is not a valid Backup JSON document (line %d: %s)", what,
                     je.line, je.text);
            free(what);
            json_decref(*out);
            *out = NULL;
            rc = S3_ERR;
        }
    }
    if (rc == 0) {
        /* the prefix is the authority: a document naming another backup is
         * a damaged or forged bucket, never a name to follow */
        const char *mdn = json_string_value(json_object_get(json_object_get(*out, "metadata"),
                                                            "name"));
        if (!mdn || strcmp(mdn, name) != 0) {
            char *what = s3_display(c, key);
            char pn[300];
            if (mdn)
                xerr_set(err, "%s names the backup '%s' (metadata.name), but it is stored as "
                              "backup '%s': refusing a backup whose metadata does not match "
                              "its place in the bucket", what, vb_printable(mdn, pn, sizeof pn),
                         name);
            else
                xerr_set(err, "%s has no metadata.name (it is stored as backup '%s'): not a "
                              "Velero Backup document", what, name);
            free(what);
            json_decref(*out);
            *out = NULL;
            rc = S3_ERR;
        }
    }
    free(buf);
    free(key);
    return rc;
}

int vs_find_latest(s3_client *c, const char *root, bool accept_partial, time_t now,
                   json_t **out, char **best_name, json_t **considered, char **err)
{
    *out = NULL;
    *best_name = NULL;
    *considered = json_array();
    s3_listing l;
    int rc = s3_list(c, root, "/", 100000, &l, err);
    if (rc != 0) {
        s3_listing_free(&l);
        return rc;
    }
    json_t *best = NULL;
    time_t best_t = 0;
    size_t rootlen = strlen(root);
    for (size_t i = 0; i < l.nprefixes; i++) {
        const char *p = l.prefixes[i];
        if (strncmp(p, root, rootlen) != 0)
            continue;
        char *name = strndup(p + rootlen, strlen(p + rootlen) - 1);   /* drop the '/' */
        json_t *b = NULL;
        char *e = NULL;
        const char *why = NULL;
        if (name && !vs_name_ok(name, &why)) {
            /* not a backup Velero wrote (nor one it could restore): listed, never read */
            char pn[300], *ph = NULL;
            ph = xfmt("(not a valid backup name: %s)", why);
            json_array_append_new(*considered, json_pack("{s:s, s:s?}", "name",
                                                         vb_printable(name, pn, sizeof pn),
                                                         "phase", ph));
            free(ph);
            free(name);
            continue;
        }
        int r = name ? vs_get_backup(c, root, name, &b, &e) : S3_NOTFOUND;
        if (r == S3_NOTFOUND) {
            json_array_append_new(*considered, json_pack("{s:s?, s:s}", "name", name,
                                                         "phase", "(no velero-backup.json)"));
        } else if (r != 0) {
            free(name);
            xerr_take(err, e);
            json_decref(best);
            free(*best_name);
            *best_name = NULL;
            s3_listing_free(&l);
            return r;
        } else {
            json_t *sum = vs_backup_summary(b, name, now);
            const char *phase = json_string_value(json_object_get(sum, "phase"));
            time_t t;
            bool has_t = vs_parse_time(json_string_value(json_object_get(sum, "completed")), &t);
            if (vs_phase_ok(phase, accept_partial) && has_t && (!best || t > best_t)) {
                json_decref(best);
                best = json_incref(b);
                best_t = t;
                free(*best_name);
                *best_name = strdup(name);
            }
            json_array_append_new(*considered, sum);
        }
        free(e);
        json_decref(b);
        free(name);
    }
    s3_listing_free(&l);
    if (!best) {
        char *where = s3_display(c, root);
        size_t n = json_array_size(*considered);
        char *list = NULL;
        size_t ll = 0;
        FILE *f = open_memstream(&list, &ll);
        for (size_t i = 0; f && i < n && i < 10; i++) {
            json_t *s = json_array_get(*considered, i);
            fprintf(f, "%s%s (%s)", i ? ", " : "",
                    json_string_value(json_object_get(s, "name")),
                    json_string_value(json_object_get(s, "phase")));
        }
        if (f) {
            if (n > 10)
                fprintf(f, ", ... %zu more", n - 10);
            fclose(f);
        }
        xerr_set(err, "no %s backup found under %s: %zu backup%s there%s%s",
                 accept_partial ? "Completed or PartiallyFailed" : "Completed", where, n,
                 n == 1 ? "" : "s", n ? ": " : "", n ? list : "");
        free(list);
        free(where);
        return S3_NOTFOUND;
    }
    if (!*best_name) {
        json_decref(best);
        xerr_set(err, "out of memory");
        return S3_ERR;
    }
    *out = best;
    return 0;
}

/* ------------------------------------------------------------ streaming */

typedef struct dl {
    s3_client *c;
    const char *key;
    int wfd, dest_fd;
    int rc;
    char *err;
    bool reader_gone, dest_failed;
    int dest_errno;
    s3_get_info info;
} dl;

static int write_all(int fd, const void *buf, size_t len, bool sock)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = sock ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int dl_sink(void *ud, const void *buf, size_t len)
{
    dl *d = ud;
    if (d->dest_fd >= 0 && !d->dest_failed && write_all(d->dest_fd, buf, len, false) != 0) {
        d->dest_failed = true;
        d->dest_errno = errno;
        return 1;
    }
    if (write_all(d->wfd, buf, len, true) != 0) {
        d->reader_gone = true;
        return 1;
    }
    return 0;
}

static void *dl_main(void *arg)
{
    dl *d = arg;
    d->rc = s3_get(d->c, d->key, dl_sink, d, &d->info, &d->err);
    shutdown(d->wfd, SHUT_WR);
    close(d->wfd);
    return NULL;
}

/* Creates a new hidden file for dest_file in dirfd: ".<dest_file>.<random>.part",
 * openat(O_CREAT | O_EXCL | O_NOFOLLOW), so it is a new regular file of
 * this run - never an existing file, a link's target, or outside dirfd.
 * Returns the fd and sets *part (malloc'd), or -1 with errno. */
static int create_part(int dirfd, const char *dest_file, char **part)
{
    *part = NULL;
    for (int tries = 0; tries < 8; tries++) {
        unsigned char rnd[6];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            return -1;
        *part = xfmt(".%s.%02x%02x%02x%02x%02x%02x.part", dest_file, rnd[0], rnd[1], rnd[2],
                     rnd[3], rnd[4], rnd[5]);
        if (!*part) {
            errno = ENOMEM;
            return -1;
        }
        int fd = openat(dirfd, *part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        int e = errno;
        free(*part);
        *part = NULL;
        errno = e;
        if (e != EEXIST)
            return -1;
    }
    return -1;
}

int vs_stream_backup(s3_client *c, const char *root, const char *name,
                     int dest_dirfd, const char *dest_file,
                     const vb_limits *lim, const vb_handler *h, void *ud,
                     vb_stats *st, vs_stream_result *res, char **err)
{
    memset(res, 0, sizeof *res);
    if (check_backup_name(name, err) != 0)
        return S3_ERR;
    if (dest_dirfd >= 0 && (!dest_file || !*dest_file || strchr(dest_file, '/') ||
                            strcmp(dest_file, ".") == 0 || strcmp(dest_file, "..") == 0)) {
        xerr_set(err, "dest: '%s' is not a file name", dest_file ? dest_file : "");
        return S3_ERR;
    }
    char *part = NULL;
    char *key = xfmt("%s%s/%s.tar.gz", root, name, name);
    if (!key)
        return S3_ERR;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        xerr_set(err, "socketpair: %s", strerror(errno));
        free(key);
        return S3_ERR;
    }
    int sz = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    dl d = {.c = c, .key = key, .wfd = sv[1], .dest_fd = -1};
    if (dest_dirfd >= 0) {
        d.dest_fd = create_part(dest_dirfd, dest_file, &part);
        if (d.dest_fd < 0) {
            xerr_set(err, "dest: cannot create a new file for %s: %s", dest_file, strerror(errno));
            close(sv[0]);
            close(sv[1]);
            free(key);
            return S3_ERR;
        }
    }
    pthread_t th;
    if (pthread_create(&th, NULL, dl_main, &d) != 0) {
        xerr_set(err, "cannot start the download thread");
        close(sv[0]);
        close(sv[1]);
        if (d.dest_fd >= 0) {
            close(d.dest_fd);
            unlinkat(dest_dirfd, part, 0);
        }
        free(part);
        free(key);
        return S3_ERR;
    }
    char *perr = NULL;
    int prc = vb_read_fd(sv[0], lim, h, ud, st, &perr);
    close(sv[0]);                     /* a still-running download gets EPIPE */
    pthread_join(th, NULL);
    res->downloaded = d.info.received;
    res->attempts = d.info.attempts;
    int rc = 0;
    if (d.rc != 0 && !d.reader_gone) {
        rc = d.rc;                    /* the download failed: that is the cause */
        xerr_take(err, d.err);
        d.err = NULL;
        if (d.dest_failed)
            xerr_set(err, "writing %s failed: %s", dest_file, strerror(d.dest_errno));
    } else if (prc != 0) {
        rc = S3_ERR;
        char *what = s3_display(c, key);
        xerr_set(err, "%s: %s", what, perr ? perr : "read failed");
        free(what);
    }
    free(perr);
    free(d.err);
    if (d.dest_fd >= 0) {
        bool ok = rc == 0 && fsync(d.dest_fd) == 0;
        close(d.dest_fd);
        /* renameat replaces dest_file itself (a file kept by an earlier run,
         * or a link - never what a link points to) */
        if (ok && renameat(dest_dirfd, part, dest_dirfd, dest_file) == 0) {
            res->dest_written = true;
        } else {
            int e = errno;
            unlinkat(dest_dirfd, part, 0);
            if (rc == 0) {
                xerr_set(err, "cannot save the archive as %s: %s", dest_file, strerror(e));
                rc = S3_ERR;
            }
        }
    }
    free(part);
    free(key);
    return rc;
}
