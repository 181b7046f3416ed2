/* oadp_parse.c - Ansible binary module ocpv.dr.oadp_parse: finds an OADP
 * (Velero) backup - a local .tar.gz (`src`) or in S3 (`s3`: by `backup_name`,
 * or the latest Completed one) - and streams it (download -> gunzip -> tar)
 * without extracting anything, returning the PVs, PVCs, VolumeSnapshots,
 * VolumeSnapshotContents, VirtualMachines and DataVolumes it holds, filtered
 * by namespace / resource / label selector, plus the backup's times and age
 * (the RPO a failover will have).
 *
 * With `restore_results` (a Restore's name) it reads only that Restore's
 * results file from the same bucket (<prefix>/restores/<name>/
 * restore-<name>-results.gz) and returns its warnings and errors - what
 * `velero restore describe --details` shows, without the velero CLI.
 *
 * Reads only; `changed` is true only when `dest` (a kept copy of the archive)
 * was written, and check mode never writes it.  Secrets (secret_key, session
 * token, and keys read from credentials_file) are scrubbed from all output;
 * secret values inside the objects read (Secret data, cloud-init user data)
 * are masked.  The S3 connection (lib/connect/s3_module.c) refuses plain http unless
 * allow_insecure_http is set.
 *
 * A backup's name comes from the listed prefix (<prefix>/backups/<name>/) or
 * backup_name, never from the bucket's velero-backup.json: it must be a
 * Kubernetes name and match that document's metadata.name, so it can neither
 * address another object nor become a path under dest.
 *
 * The selected objects are kept as compact JSON text (the collector drops
 * the whitespace outside strings) and written into the result as they are,
 * as the runtime's raw members (mod_set_raw): no tree of tens of thousands
 * of objects is built, serialized and freed.  The runtime scrubs each
 * object's text like every other value (secrets.h: one that could hold a
 * secret is parsed and written back scrubbed).  The uncompressed stream (max_uncompressed_size) and
 * the kept objects (max_selected_size) are capped.
 */
#include "module.h"
#include "s3.h"
#include "s3_module.h"
#include "velero_backup.h"
#include "velero_restore.h"
#include "velero_store.h"

#include "xstr.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const mod_opt opts[] = {
    { .name = "src", .type = OPT_PATH },
    { .name = "s3", .type = OPT_DICT, .suboptions = s3_mod_opts },
    { .name = "backup_name", .type = OPT_STR },
    { .name = "namespaces", .type = OPT_LIST, .elements = OPT_STR, .def = "[]" },
    { .name = "resources", .type = OPT_LIST, .elements = OPT_STR, .def = "[]" },
    { .name = "label_selector", .type = OPT_STR, .def = "\"\"" },
    { .name = "accept_partial", .type = OPT_BOOL, .def = "false" },
    { .name = "dest", .type = OPT_PATH },
    { .name = "max_entry_size", .type = OPT_INT, .def = "16777216" },
    { .name = "max_entries", .type = OPT_INT, .def = "2000000" },
    { .name = "max_uncompressed_size", .type = OPT_INT, .def = "17179869184" },   /* 16 GiB */
    { .name = "max_selected_size", .type = OPT_INT, .def = "134217728" },         /* 128 MiB */
    { .name = "max_warnings", .type = OPT_INT, .def = "20" },
    { .name = "restore_results", .type = OPT_STR, .def = "\"\"" },
    { .name = "max_restore_messages", .type = OPT_INT, .def = "200" },
    { 0 }
};

static const char *const *const exclusive[] = {
    (const char *[]){ "src", "s3", NULL }, NULL };
static const char *const *const one_of[] = {
    (const char *[]){ "src", "s3", NULL }, NULL };

static const mod_spec spec = {
    .name = "oadp_parse", .opts = opts, .mutually_exclusive = exclusive,
    .required_one_of = one_of, .supports_check_mode = true,
};

/* Everything main() owns, released by cleanup() on every exit path. */
static struct {
    module m;
    s3_client *s3;
    vb_selector *sel;
    vb_collector *col;
    vb_raw_result rr;      /* the object lists, pointing into col's texts */
    const char **ns, **res;
    json_t *backup_doc, *considered;
    char *root, *err, *name, *dest_path;
    int fd, dest_dirfd;
} G = { .fd = -1, .dest_dirfd = -1 };

/* Releases everything but the module itself (mod_exit / mod_fail free that). */
static void cleanup(void)
{
    s3_free(G.s3);
    vb_selector_free(G.sel);
    vb_raw_result_free(&G.rr);
    vb_collector_free(G.col);
    free(G.ns);
    free(G.res);
    json_decref(G.backup_doc);
    json_decref(G.considered);
    free(G.root);
    free(G.err);
    free(G.name);
    free(G.dest_path);
    if (G.fd >= 0)
        close(G.fd);
    if (G.dest_dirfd >= 0)
        close(G.dest_dirfd);
}

static noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static noreturn void fail(const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cleanup();
    mod_fail(&G.m, "%s", msg);
}

static const char **str_list(json_t *arr, size_t *n)
{
    *n = json_array_size(arr);
    const char **v = calloc(*n + 1, sizeof *v);
    for (size_t i = 0; v && i < *n; i++)
        v[i] = json_string_value(json_array_get(arr, i));
    return v;
}

static s3_client *make_s3(json_t *d)
{
    s3_client *c = s3_mod_client(&G.m, d, &G.err);
    if (!c)
        fail("%s", G.err ? G.err : "s3: out of memory");
    return c;
}

/* Opens a local file to read without hanging or following a link: a FIFO,
 * device or socket (open would block, read would never end) and a symbolic
 * link are refused before anything is read.  what names the option. */
static int open_regular(const char *path, const char *what)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            fail("%s %s is a symbolic link: give the file itself", what, path);
        fail("cannot open %s %s: %s", what, path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        fail("%s %s is not a regular file", what, path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

/* ------------------------------------------------------------ result */
/* The object lists are raw members of the result (mod_set_raw): written as
 * the collector kept them, each object's text through the runtime's
 * scrubber (mod_out_json). */
static void write_list(mod_out *o, void *ctx)
{
    const vb_raw_list *l = ctx;
    mod_out_raw(o, "[", 1);
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            mod_out_raw(o, ",", 1);
        mod_out_json(o, l->v[i].data, l->v[i].len);
    }
    mod_out_raw(o, "]", 1);
}

static void write_other_lists(mod_out *o, void *ctx)
{
    const vb_raw_result *rr = ctx;
    mod_out_raw(o, "{", 1);
    for (size_t i = 0; i < rr->nother; i++) {
        if (i)
            mod_out_raw(o, ",", 1);
        mod_out_value(o, json_string(rr->other[i].name));
        mod_out_raw(o, ":", 1);
        write_list(o, &rr->other[i]);
    }
    mod_out_raw(o, "}", 1);
}

static void release_all(void *ctx)
{
    (void)ctx;
    cleanup();
}

/* A named backup without velero-backup.json: say what is there instead. */
static noreturn void fail_not_found(const char *name)
{
    char *where = s3_display(G.s3, G.root);
    s3_listing l;
    char *lerr = NULL, have[1024] = "", pp[300];
    size_t off = 0, rl = strlen(G.root);
    if (s3_list(G.s3, G.root, "/", 10000, &l, &lerr) == 0) {
        for (size_t i = 0; i < l.nprefixes && i < 10; i++) {
            const char *p = l.prefixes[i] + (strncmp(l.prefixes[i], G.root, rl) == 0 ? rl : 0);
            p = vb_printable(p, pp, sizeof pp);      /* names from the bucket: shown safely */
            int n = snprintf(have + off, sizeof have - off, "%s%.*s", i ? ", " : "",
                             (int)(strlen(p) > 0 ? strlen(p) - 1 : 0), p);
            if (n < 0 || (size_t)n >= sizeof have - off)
                break;
            off += (size_t)n;
        }
        if (l.nprefixes > 10 && off + 32 < sizeof have)
            snprintf(have + off, sizeof have - off, ", ... %zu more", l.nprefixes - 10);
    }
    size_t nb = l.nprefixes;
    s3_listing_free(&l);
    free(lerr);
    char msg[2048];
    snprintf(msg, sizeof msg, "backup '%s' not found: %s%s/velero-backup.json does not exist; "
             "%zu backup%s under %s%s%s", name, where, name, nb, nb == 1 ? "" : "s", where,
             nb ? ": " : "", have);
    free(where);
    fail("%s", msg);
}

static void check_phase(json_t *summary, bool accept_partial, const char *where)
{
    const char *phase = json_string_value(json_object_get(summary, "phase"));
    if (!vs_phase_ok(phase, accept_partial))
        fail("backup '%s' (%s) has phase %s: only Completed backups are used%s",
             json_string_value(json_object_get(summary, "name")), where,
             phase ? phase : "(none)",
             phase && strcmp(phase, "PartiallyFailed") == 0 ? " (set accept_partial: true "
                                                              "to use a PartiallyFailed one)" : "");
}

/* Local src: summary from a velero-backup.json beside the tarball, if any. */
static json_t *local_summary(const char *src, const char *name_opt, time_t now)
{
    char *copy = strdup(src), *base = strdup(src);
    char *dir = dirname(copy);
    char *bn = basename(base);
    size_t bl = strlen(bn);
    if (bl > 7 && strcmp(bn + bl - 7, ".tar.gz") == 0)
        bn[bl - 7] = '\0';
    else if (bl > 4 && strcmp(bn + bl - 4, ".tgz") == 0)
        bn[bl - 4] = '\0';
    char *meta = xfmt("%s/velero-backup.json", dir);
    json_t *summary = NULL;
    if (meta && access(meta, R_OK) == 0) {
        json_error_t je;
        int mfd = open_regular(meta, "src's velero-backup.json");
        json_t *doc = json_loadfd(mfd, 0, &je);
        close(mfd);
        if (!doc || !json_is_object(doc)) {
            json_decref(doc);
            fail("%s is not a valid Backup JSON document (line %d: %s)", meta, je.line, je.text);
        }
        summary = vs_backup_summary(doc, name_opt ? name_opt : bn, now);
        json_decref(doc);
    }
    if (!summary) {
        summary = json_pack("{s:s, s:n, s:n, s:n, s:n, s:n, s:n}", "name", name_opt ? name_opt : bn,
                            "phase", "started", "completed", "expiration", "format_version",
                            "age_seconds");
    }
    json_object_set_new(summary, "source", json_string(src));
    free(meta);
    free(copy);
    free(base);
    return summary;
}

/* A Velero object name option: NULL when empty; fails unless a Kubernetes
 * object name (it becomes part of S3 keys and of the file under dest). */
static const char *opt_name(module *m, const char *opt, const char *what)
{
    const char *v = mod_str(m, opt);
    const char *why;
    if (v && !*v)
        return NULL;
    if (v && !vs_name_ok(v, &why)) {
        char pv[300];
        fail("%s '%s' is not a %s name: %s", opt, vb_printable(v, pv, sizeof pv), what, why);
    }
    return v;
}

/* dest: an existing directory (the archive goes in as <name>.tar.gz) or a
 * file path.  Sets G.dest_path; outside check mode also opens the directory
 * (G.dest_dirfd) and returns the file name to create in it. */
static const char *open_dest(const char *dest, const char *name, bool check_mode)
{
    struct stat sb;
    char *dir = NULL;
    const char *file;
    static char fbuf[300];
    if (stat(dest, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(fbuf, sizeof fbuf, "%s.tar.gz", name);      /* name: <= 253, validated */
        G.dest_path = xfmt("%s%s%s", dest, dest[strlen(dest) - 1] == '/' ? "" : "/", fbuf);
        if (!G.dest_path)
            fail("out of memory");
        dir = strdup(dest);
    } else {
        size_t dl = strlen(dest);
        if (dl == 0 || dest[dl - 1] == '/')
            fail("dest %s is not an existing directory", dest);
        const char *slash = strrchr(dest, '/');
        if (strlen(slash ? slash + 1 : dest) >= sizeof fbuf)
            fail("dest %s: file name too long", dest);
        snprintf(fbuf, sizeof fbuf, "%s", slash ? slash + 1 : dest);
        if (strcmp(fbuf, ".") == 0 || strcmp(fbuf, "..") == 0)
            fail("dest %s is not a file name", dest);
        dir = slash ? strndup(dest, (size_t)(slash - dest) + (slash == dest)) : strdup(".");
        G.dest_path = strdup(dest);
    }
    file = fbuf;
    if (!dir || !G.dest_path)
        fail("out of memory");
    if (!check_mode) {
        G.dest_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (G.dest_dirfd < 0) {
            int e = errno;
            free(dir);
            fail("dest: cannot open the directory %s: %s", dest, strerror(e));
        }
    }
    free(dir);
    return file;
}

/* restore_results: the Restore's warnings and errors from its results file
 * in the bucket; nothing else is read.  Exits. */
static noreturn void read_restore_results(module *m, const char *name, const char *backup_name)
{
    if (!mod_param(m, "s3") || json_is_null(mod_param(m, "s3")))
        fail("restore_results needs s3 (the Restore's results are read from the "
             "BackupStorageLocation's bucket)");
    if (backup_name)
        fail("give either backup_name or restore_results, not both");
    /* the backup filters and dest do not apply to a Restore's results; saying
     * so beats silently returning everything */
    static const char *const backup_only[] = { "namespaces", "resources", "label_selector",
                                               "dest", NULL };
    for (size_t i = 0; backup_only[i]; i++) {
        json_t *v = mod_param(m, backup_only[i]);
        if (v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0) &&
            !(json_is_string(v) && !*json_string_value(v)))
            fail("%s applies to a backup's contents, not to restore_results (a Restore's "
                 "warnings and errors); leave it out", backup_only[i]);
    }
    long long maxm = mod_int(m, "max_restore_messages");
    if (maxm < 0)
        fail("max_restore_messages must not be negative");
    json_t *d = mod_param(m, "s3");
    G.s3 = make_s3(d);
    G.root = vs_restores_root(mod_dict_str(d, "prefix"));
    json_t *res = NULL;
    if (!G.root || vs_get_restore_results(G.s3, G.root, name, (size_t)maxm, &res, &G.err) != 0)
        fail("%s", G.err ? G.err : "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(res, k, v)
        mod_set(m, k, json_incref(v));
    json_decref(res);
    char *key = vs_restore_results_key(G.root, name);
    char *disp = key ? s3_display(G.s3, key) : NULL;
    mod_set(m, "restore", json_pack("{s:s, s:s?}", "name", name, "source", disp));
    free(disp);
    free(key);
    mod_changed(m, false);
    cleanup();
    mod_exit(m);
}

int main(int argc, char **argv)
{
    module *m = &G.m;
#ifdef M_MXFAST
    /* Results hold tens of thousands of JSON objects: without fastbins glibc
     * skips the consolidation passes that dominate freeing them (-17% CPU on
     * bench/oadp_parse), and a larger top pad means fewer brk calls. */
    mallopt(M_MXFAST, 0);
    mallopt(M_TOP_PAD, 64 << 20);
#endif
    mod_init(m, &spec, argc, argv);
    time_t now = time(NULL);

    /* ---- validate everything before touching the network or the disk */
    size_t nns = 0, nres = 0;
    G.ns = str_list(mod_param(m, "namespaces"), &nns);
    G.res = str_list(mod_param(m, "resources"), &nres);
    G.sel = vb_selector_parse(mod_str(m, "label_selector"), &G.err);
    if (!G.sel)
        fail("%s", G.err);
    long long mes = mod_int(m, "max_entry_size"), mne = mod_int(m, "max_entries");
    long long mus = mod_int(m, "max_uncompressed_size"), mss = mod_int(m, "max_selected_size");
    if (mes <= 0 || mne <= 0 || mus <= 0 || mss <= 0)
        fail("max_entry_size, max_entries, max_uncompressed_size and max_selected_size must be "
             "positive");
    vb_limits lim = { .max_entry_bytes = (size_t)mes, .max_entries = (size_t)mne,
                      .max_total_bytes = (uint64_t)mus };
    vb_filter f = { .namespaces = G.ns, .nnamespaces = nns, .resources = G.res,
                    .nresources = nres, .selector = G.sel, .max_kept_bytes = (size_t)mss };
    long long maxw = mod_int(m, "max_warnings");
    G.col = vb_collector_new(&f, maxw < 0 ? 0 : (size_t)maxw, &G.err);
    if (!G.col)
        fail("%s", G.err ? G.err : "out of memory");
    const char *backup_name = opt_name(m, "backup_name", "backup");
    const char *restore_name = opt_name(m, "restore_results", "Restore");
    if (restore_name)
        read_restore_results(m, restore_name, backup_name);     /* exits */
    bool accept_partial = mod_bool(m, "accept_partial");
    const char *dest = mod_str(m, "dest");
    const char *src = mod_str(m, "src");

    vb_stats st;
    json_t *summary = NULL;
    bool changed = false;
    if (src) {
        if (dest)
            mod_warn(m, "dest is only used with s3 (a local src is read in place)");
        G.fd = open_regular(src, "src");
        struct stat sb;
        if (fstat(G.fd, &sb) != 0)
            fail("src %s: %s", src, strerror(errno));
        summary = local_summary(src, backup_name, now);
        if (!json_is_null(json_object_get(summary, "phase")))
            check_phase(summary, accept_partial, src);
        if (vb_read_fd(G.fd, &lim, &vb_collector_handler, G.col, &st, &G.err) != 0)
            fail("%s: %s", src, G.err);
        json_object_set_new(summary, "size_bytes", json_integer((json_int_t)sb.st_size));
    } else {
        json_t *d = mod_param(m, "s3");
        G.s3 = make_s3(d);
        G.root = vs_backups_root(mod_dict_str(d, "prefix"));
        int rc;
        if (backup_name) {
            rc = vs_get_backup(G.s3, G.root, backup_name, &G.backup_doc, &G.err);
            if (rc == S3_NOTFOUND)
                fail_not_found(backup_name);
            G.name = strdup(backup_name);
        } else {
            /* the name is the listed prefix's (validated; velero-backup.json
             * must agree), never metadata.name read from the bucket */
            rc = vs_find_latest(G.s3, G.root, accept_partial, now, &G.backup_doc, &G.name,
                                &G.considered, &G.err);
        }
        if (rc != 0 || !G.name)
            fail("%s", G.err ? G.err : "out of memory");
        const char *name = G.name;
        summary = vs_backup_summary(G.backup_doc, name, now);
        json_object_set_new(summary, "name", json_string(name));
        check_phase(summary, accept_partial, "velero-backup.json");
        const char *dest_file = dest ? open_dest(dest, name, m->check_mode) : NULL;
        vs_stream_result sr;
        rc = vs_stream_backup(G.s3, G.root, name, G.dest_dirfd, dest_file, &lim,
                              &vb_collector_handler, G.col, &st, &sr, &G.err);
        if (rc != 0)
            fail("%s", G.err);
        char *key = xfmt("%s%s/%s.tar.gz", G.root, name, name);
        if (key) {
            char *disp = s3_display(G.s3, key);
            json_object_set_new(summary, "source", json_string(disp));
            free(disp);
        }
        free(key);
        json_object_set_new(summary, "size_bytes", json_integer(sr.downloaded));
        if (dest) {
            changed = true;       /* written, or would be in check mode */
            json_object_set_new(summary, "dest", json_string(G.dest_path));
        }
        if (G.considered)
            json_object_set(summary, "considered", G.considered);
    }

    json_t *res = vb_collector_result_raw(G.col, &st, &G.rr);
    if (!res)
        fail("out of memory building the result");
    const char *fv = json_string_value(json_object_get(res, "format_version"));
    json_t *sfv = json_object_get(summary, "format_version");
    if (fv && (!json_is_string(sfv) || !*json_string_value(sfv)))
        json_object_set_new(summary, "format_version", json_string(fv));
    json_object_set_new(summary, "archive_format_version", fv ? json_string(fv) : json_null());
    json_object_set_new(summary, "uncompressed_bytes", json_integer((json_int_t)st.tar_bytes));
    json_t *w;
    size_t i;
    json_array_foreach(json_object_get(res, "warnings"), i, w)
        mod_warn(m, "%s", json_string_value(w));
    mod_set(m, "counts", json_incref(json_object_get(res, "counts")));
    json_decref(res);
    mod_set(m, "backup", summary);
    mod_changed(m, changed);
    /* the object lists as read; what they point into (G.col) is released
     * by mod_free once they are written */
    for (size_t k = 0; k < sizeof G.rr.known / sizeof G.rr.known[0]; k++)
        mod_set_raw(m, G.rr.known[k].name, write_list, &G.rr.known[k], k ? NULL : release_all);
    mod_set_raw(m, "other_lists", write_other_lists, &G.rr, NULL);
    mod_exit(m);
}
