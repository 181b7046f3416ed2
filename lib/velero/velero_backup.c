/* velero_backup.c - streams a Velero backup .tar.gz: zlib gunzip (CRC and
 * length checked, truncation detected) feeding libarchive's tar reader, one
 * entry at a time, nothing written to disk.  Hands recognised items to a
 * vb_handler; skips hostile or odd entries with warnings; enforces the entry
 * size and count limits and the total uncompressed size. */
#include "velero_backup.h"
#include "xstr.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IN_SZ  (256 * 1024)
#define OUT_SZ (256 * 1024)

const char *const vb_warn_names[VB_WARN__COUNT] = {
    [VB_WARN_UNSAFE_PATH] = "unsafe_path",
    [VB_WARN_LINK] = "link",
    [VB_WARN_SPECIAL_FILE] = "special_file",
    [VB_WARN_NOT_JSON_NAME] = "unexpected_entry",
    [VB_WARN_INVALID_JSON] = "invalid_json",
    [VB_WARN_OVERSIZE] = "oversize",
    [VB_WARN_BAD_OBJECT] = "bad_object",
    [VB_WARN_LIMIT_REACHED] = "limit_reached",
};

typedef struct gz_src {
    vb_read_fn rd;
    void *ud;
    z_stream z;
    bool z_ready, member_end, in_eof, started;
    unsigned char *in, *out;
    char *err;                /* first source/gzip error */
    vb_stats *st;
    uint64_t max_total;       /* tar bytes allowed */
} gz_src;

/* Makes sure some compressed input is buffered; false at end or on error. */
static bool fill(gz_src *g)
{
    if (g->z.avail_in > 0)
        return true;
    if (g->in_eof || g->err)
        return false;
    char *e = NULL;
    ssize_t n = g->rd(g->ud, g->in, IN_SZ, &e);
    if (n < 0) {
        xerr_first(&g->err, "reading the backup failed: %s", e ? e : "read error");
        free(e);
        return false;
    }
    if (n == 0) {
        g->in_eof = true;
        return false;
    }
    g->st->compressed_bytes += (uint64_t)n;
    g->z.next_in = g->in;
    g->z.avail_in = (uInt)n;
    return true;
}

/* Produces up to cap bytes of tar data; 0 at the (verified) end, -1 on error. */
static ssize_t gz_read(gz_src *g, unsigned char *out, size_t cap)
{
    for (;;) {
        if (g->err)
            return -1;
        if (g->member_end) {
            /* Another gzip member may follow (gzip allows concatenation). */
            if (!fill(g))
                return g->err ? -1 : 0;
            if (g->z.next_in[0] != 0x1f) {
                xerr_first(&g->err, "corrupt backup: unexpected data after the end of the gzip stream");
                return -1;
            }
            inflateReset(&g->z);
            g->member_end = false;
        }
        if (!g->started) {
            if (!fill(g)) {
                if (!g->err)
                    xerr_first(&g->err, "the backup is empty (0 bytes)");
                return -1;
            }
            if (g->z.avail_in >= 1 && g->z.next_in[0] != 0x1f) {
                xerr_first(&g->err, "the backup is not gzip data (bad magic bytes)");
                return -1;
            }
            g->started = true;
        }
        bool have_in = fill(g);
        if (g->err)
            return -1;
        g->z.next_out = out;
        g->z.avail_out = (uInt)cap;
        int r = inflate(&g->z, Z_NO_FLUSH);
        size_t made = cap - g->z.avail_out;
        g->st->tar_bytes += made;
        if (g->st->tar_bytes > g->max_total) {
            xerr_first(&g->err, "the backup expands to more than %llu bytes when uncompressed "
                                "(after %llu compressed bytes; max_uncompressed_size): refusing "
                                "to read further",
                       (unsigned long long)g->max_total,
                       (unsigned long long)g->st->compressed_bytes);
            return -1;
        }
        if (r == Z_STREAM_END) {
            g->member_end = true;
        } else if (r == Z_DATA_ERROR || r == Z_NEED_DICT) {
            xerr_first(&g->err, "corrupt gzip data after %llu compressed bytes: %s",
                       (unsigned long long)g->st->compressed_bytes,
                       g->z.msg ? g->z.msg : "invalid deflate stream");
            return -1;
        } else if (r == Z_MEM_ERROR) {
            xerr_first(&g->err, "out of memory in gunzip");
            return -1;
        } else if (r == Z_BUF_ERROR && !have_in && made == 0) {
            xerr_first(&g->err, "truncated backup: the gzip stream ends early after %llu "
                                "compressed bytes (no end-of-stream / CRC trailer)",
                       (unsigned long long)g->st->compressed_bytes);
            return -1;
        }
        if (made > 0)
            return (ssize_t)made;
        if (!have_in && !g->member_end && g->in_eof) {
            xerr_first(&g->err, "truncated backup: the gzip stream ends early after %llu "
                                "compressed bytes (no end-of-stream / CRC trailer)",
                       (unsigned long long)g->st->compressed_bytes);
            return -1;
        }
    }
}

/* After a tar-level error: reads the rest of the gzip stream so that a
 * corrupt or truncated stream (the usual cause) is reported as such. */
static void drain(gz_src *g)
{
    while (!g->err && gz_read(g, g->out, OUT_SZ) > 0)
        ;
}

static la_ssize_t la_read(struct archive *a, void *ud, const void **buf)
{
    gz_src *g = ud;
    *buf = g->out;
    ssize_t n = gz_read(g, g->out, OUT_SZ);
    if (n < 0) {
        archive_set_error(a, EIO, "%s", g->err ? g->err : "read error");
        return -1;
    }
    return n;
}

typedef struct rd_state {
    const vb_limits *lim;
    const vb_handler *h;
    void *ud;
    vb_stats *st;
    char *buf;
    size_t cap;
} rd_state;

static void warn(rd_state *s, vb_warn_kind k, const char *entry, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void warn(rd_state *s, vb_warn_kind k, const char *entry, const char *fmt, ...)
{
    s->st->skipped++;
    if (!s->h->warn)
        return;
    char msg[512], pe[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->h->warn(s->ud, k, vb_printable(entry, pe, sizeof pe), msg);
}

/* Reads the current entry's data into s->buf (NUL-terminated).  Returns the
 * length, -1 when larger than max (entry skipped), -2 on an archive error. */
static ssize_t read_data(rd_state *s, struct archive *a, size_t max)
{
    size_t len = 0;
    for (;;) {
        if (len + 64 * 1024 + 1 > s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 128 * 1024;
            while (nc < len + 64 * 1024 + 1)
                nc *= 2;
            if (nc > max + 64 * 1024 + 1)
                nc = max + 64 * 1024 + 1;
            if (nc <= s->cap)
                return -1;
            char *g = realloc(s->buf, nc);
            if (!g)
                return -2;
            s->buf = g;
            s->cap = nc;
        }
        la_ssize_t n = archive_read_data(a, s->buf + len, s->cap - len - 1);
        if (n < 0)
            return -2;
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max)
            return -1;
    }
    s->buf[len] = '\0';
    return (ssize_t)len;
}

static const char *ftype_name(mode_t t)
{
    switch (t) {
    case AE_IFLNK: return "symbolic link";
    case AE_IFCHR: return "character device";
    case AE_IFBLK: return "block device";
    case AE_IFIFO: return "FIFO";
    case AE_IFSOCK: return "socket";
    default: return "special file";
    }
}

/* One entry; returns 0 to go on, -1 to stop with *err. */
static int handle_entry(rd_state *s, struct archive *a, struct archive_entry *e, char **err)
{
    const char *path = archive_entry_pathname(e);
    char pe[300];
    if (!path) {
        warn(s, VB_WARN_UNSAFE_PATH, "(unreadable name)", "entry name cannot be decoded; skipped");
        return 0;
    }
    if (archive_entry_hardlink(e)) {
        char tgt[300];
        warn(s, VB_WARN_LINK, path, "hard link to '%s' skipped",
             vb_printable(archive_entry_hardlink(e), tgt, sizeof tgt));
        return 0;
    }
    mode_t t = archive_entry_filetype(e);
    if (t == AE_IFDIR)
        return 0;
    if (t != AE_IFREG) {
        warn(s, t == AE_IFLNK ? VB_WARN_LINK : VB_WARN_SPECIAL_FILE, path, "%s skipped",
             ftype_name(t));
        return 0;
    }
    vb_path p;
    vb_path_kind k = vb_path_parse(path, &p);
    if (k == VB_PATH_UNSAFE) {
        warn(s, VB_WARN_UNSAFE_PATH, path, "%s; skipped", p.why);
        return 0;
    }
    if (k == VB_PATH_OTHER)
        return 0;
    if (k == VB_PATH_DIR_LIKE) {
        warn(s, VB_WARN_NOT_JSON_NAME, path, "%s; skipped", p.why);
        return 0;
    }
    size_t max = s->lim->max_entry_bytes;
    if (k == VB_PATH_VERSION) {
        ssize_t n = read_data(s, a, 256);
        if (n == -2)
            goto archive_error;
        if (n < 0) {
            warn(s, VB_WARN_OVERSIZE, path, "metadata/version is larger than 256 bytes; skipped");
            return 0;
        }
        char *v = s->buf;
        while (*v == ' ' || *v == '\n' || *v == '\r' || *v == '\t')
            v++;
        size_t l = strlen(v);
        while (l > 0 && (v[l - 1] == ' ' || v[l - 1] == '\n' || v[l - 1] == '\r' || v[l - 1] == '\t'))
            v[--l] = '\0';
        if (s->h->version)
            s->h->version(s->ud, vb_printable(v, pe, 64));
        return 0;
    }
    s->st->items++;
    if (s->h->want && !s->h->want(s->ud, &p))
        return 0;
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > (la_int64_t)max) {
        warn(s, VB_WARN_OVERSIZE, path, "entry is %lld bytes, over the %zu-byte limit; skipped",
             (long long)archive_entry_size(e), max);
        return 0;
    }
    ssize_t n = read_data(s, a, max);
    if (n == -2)
        goto archive_error;
    if (n < 0) {
        warn(s, VB_WARN_OVERSIZE, path, "entry is over the %zu-byte limit; skipped", max);
        return 0;
    }
    json_error_t je;
    json_t *obj = json_loadb(s->buf, (size_t)n, 0, &je);
    if (!obj) {
        char jt[200];
        warn(s, VB_WARN_INVALID_JSON, path, "not valid JSON (line %d: %s); skipped", je.line,
             vb_printable(je.text, jt, sizeof jt));
        return 0;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        warn(s, VB_WARN_BAD_OBJECT, path, "JSON is not an object; skipped");
        return 0;
    }
    s->st->parsed++;
    int rc = s->h->item_raw ? s->h->item_raw(s->ud, &p, obj, s->buf, (size_t)n, err)
             : s->h->item ? s->h->item(s->ud, &p, obj, err) : 0;
    json_decref(obj);
    return rc;

archive_error:
    xerr_first(err, "reading entry '%s' failed: %s", vb_printable(path, pe, sizeof pe),
               archive_error_string(a) ? archive_error_string(a) : "archive error");
    return -1;
}

int vb_read(vb_read_fn rd, void *rd_ud, const vb_limits *lim_in,
            const vb_handler *h, void *ud, vb_stats *st_out, char **err)
{
    vb_stats st_local;
    vb_stats *st = st_out ? st_out : &st_local;
    memset(st, 0, sizeof *st);
    vb_limits lim = lim_in ? *lim_in : (vb_limits){0};
    if (lim.max_entry_bytes == 0)
        lim.max_entry_bytes = (size_t)VB_DEFAULT_MAX_ENTRY_BYTES;
    if (lim.max_entries == 0)
        lim.max_entries = (size_t)VB_DEFAULT_MAX_ENTRIES;
    if (lim.max_total_bytes == 0)
        lim.max_total_bytes = VB_DEFAULT_MAX_TOTAL_BYTES;

    gz_src g = {.rd = rd, .ud = rd_ud, .st = st, .max_total = lim.max_total_bytes};
    g.in = malloc(IN_SZ);
    g.out = malloc(OUT_SZ);
    if (!g.in || !g.out || inflateInit2(&g.z, 16 + MAX_WBITS) != Z_OK) {
        free(g.in);
        free(g.out);
        xerr_first(err, "out of memory");
        return -1;
    }
    g.z_ready = true;
    rd_state s = {.lim = &lim, .h = h, .ud = ud, .st = st};
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    int rc = 0;
    if (archive_read_open(a, &g, NULL, la_read, NULL) != ARCHIVE_OK) {
        char *tar_msg = strdup(archive_error_string(a) ? archive_error_string(a) : "unreadable");
        drain(&g);
        if (g.err)
            xerr_first(err, "%s", g.err);
        else
            xerr_first(err, "damaged tar archive after 0 entries: %s (the gzip stream is intact)",
                       tar_msg ? tar_msg : "unreadable");
        free(tar_msg);
        rc = -1;
    }
    while (rc == 0) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            char *tar_msg = strdup(archive_error_string(a) ? archive_error_string(a) : "bad header");
            drain(&g);      /* a damaged gzip stream is the likelier cause: check it */
            if (g.err)
                xerr_first(err, "%s (after %llu tar entries)", g.err, (unsigned long long)st->entries);
            else
                xerr_first(err, "damaged tar archive after %llu entries: %s (the gzip stream is intact)",
                           (unsigned long long)st->entries, tar_msg ? tar_msg : "bad header");
            free(tar_msg);
            rc = -1;
            break;
        }
        if (++st->entries > lim.max_entries) {
            xerr_first(err, "the backup has more than %zu tar entries (max_entries); refusing "
                            "to read further", lim.max_entries);
            rc = -1;
            break;
        }
        rc = handle_entry(&s, a, e, err);
        if (rc != 0)
            drain(&g);
        if (rc != 0 && g.err)      /* a read error inside data: report the cause */
            xerr_set(err, "%s", g.err);
    }
    if (rc == 0) {
        /* Read what follows the tar end marker so the gzip CRC / length trailer
         * is verified and truncation is noticed. */
        ssize_t n;
        while ((n = gz_read(&g, g.out, OUT_SZ)) > 0)
            ;
        if (n < 0) {
            xerr_first(err, "%s", g.err ? g.err : "read error");
            rc = -1;
        }
    }
    archive_read_free(a);
    inflateEnd(&g.z);
    free(g.in);
    free(g.out);
    free(g.err);
    free(s.buf);
    return rc;
}

static ssize_t fd_read(void *ud, void *buf, size_t len, char **err)
{
    int fd = *(int *)ud;
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        xerr_set(err, "%s", strerror(errno));
        return -1;
    }
}

int vb_read_fd(int fd, const vb_limits *lim, const vb_handler *h, void *ud,
               vb_stats *st, char **err)
{
    return vb_read(fd_read, &fd, lim, h, ud, st, err);
}

typedef struct {
    const unsigned char *p;
    size_t left;
} mem_src;

static ssize_t mem_read(void *ud, void *buf, size_t len, char **err)
{
    (void)err;
    mem_src *m = ud;
    size_t n = len < m->left ? len : m->left;
    memcpy(buf, m->p, n);
    m->p += n;
    m->left -= n;
    return (ssize_t)n;
}

int vb_read_mem(const void *data, size_t len, const vb_limits *lim,
                const vb_handler *h, void *ud, vb_stats *st, char **err)
{
    mem_src m = {data, len};
    return vb_read(mem_read, &m, lim, h, ud, st, err);
}
