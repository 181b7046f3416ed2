/* rsync_cmd.c - safe rsync/ssh argv building and rsync output parsing
 * (see rsync_cmd.h).
 */
#include "rsync_cmd.h"

#include "storage_profile.h"
#include "xstr.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------ argv */
void rc_argv_add(rc_argv *a, const char *s)
{
    if (a->oom)
        return;
    if (a->n + 2 > a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 32;
        char **nv = realloc(a->v, nc * sizeof(*nv));
        if (!nv) {
            a->oom = true;
            return;
        }
        a->v = nv;
        a->cap = nc;
    }
    char *d = strdup(s);
    if (!d) {
        a->oom = true;
        return;
    }
    a->v[a->n++] = d;
    a->v[a->n] = NULL;
}

void rc_argv_addf(rc_argv *a, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = xvfmt(f, ap);
    va_end(ap);
    if (!s) {
        a->oom = true;
        return;
    }
    rc_argv_add(a, s);
    free(s);
}

void rc_argv_free(rc_argv *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof(*a));
}

const char *const *rc_argv_get(const rc_argv *a)
{
    return (const char *const *)a->v;
}

/* ------------------------------------------------------------ validation */
int rc_check_host(const char *h, const char *what, char **err)
{
    if (!h || !*h) {
        xerr_take(err, xfmt("%s: empty host", what));
        return -1;
    }
    size_t n = strlen(h);
    bool v6 = strchr(h, ':') != NULL;
    const char *p = h;
    if (v6 && h[0] == '[' && h[n - 1] == ']') {
        p = h + 1;
        n -= 2;
    }
    if (n == 0 || n > 253 || p[0] == '-' || p[0] == '.') {
        xerr_take(err, xfmt("%s '%s': not a valid host name or address", what, h));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = isalnum((unsigned char)c) || c == '.' || c == '-' || (v6 && c == ':') ||
                  (v6 && c == '%');
        if (!ok) {
            xerr_take(err, xfmt("%s '%s': character '%c' is not allowed in a host name or address",
                             what, h, c));
            return -1;
        }
    }
    return 0;
}

int rc_check_user(const char *u, const char *what, char **err)
{
    if (!u || !*u || !(isalpha((unsigned char)u[0]) || u[0] == '_') || strlen(u) > 64) {
        xerr_take(err, xfmt("%s '%s': not a valid user name", what, u ? u : ""));
        return -1;
    }
    for (const char *c = u; *c; c++) {
        if (!(isalnum((unsigned char)*c) || *c == '_' || *c == '.' || *c == '-')) {
            xerr_take(err, xfmt("%s '%s': character '%c' is not allowed in a user name", what, u, *c));
            return -1;
        }
    }
    return 0;
}

/* An absolute path that needs no quoting anywhere (rsync -e splitting,
 * remote shell). */
static int check_plain_path(const char *p, const char *what, char **err)
{
    char *n = sp_norm_abs(p, what, err);
    if (!n)
        return -1;
    free(n);
    return 0;
}

int rc_check_conn(const rc_conn *c, char **err)
{
    if (rc_check_host(c->host, "dr_host", err) < 0)
        return -1;
    if (c->user && rc_check_user(c->user, "dr_user", err) < 0)
        return -1;
    if (c->port < 0 || c->port > 65535) {
        xerr_take(err, xfmt("dr_port %d: must be 1-65535", c->port));
        return -1;
    }
    if (c->ssh_key && check_plain_path(c->ssh_key, "ssh_key", err) < 0)
        return -1;
    if (c->known_hosts && check_plain_path(c->known_hosts, "known_hosts", err) < 0)
        return -1;
    if (c->control_path && check_plain_path(c->control_path, "control path", err) < 0)
        return -1;
    const char *k = c->host_key_checking ? c->host_key_checking : "yes";
    if (strcmp(k, "yes") && strcmp(k, "accept-new") && strcmp(k, "no")) {
        xerr_take(err, xfmt("host_key_checking '%s': must be yes, accept-new or no", k));
        return -1;
    }
    return 0;
}

static int check_bwlimit(const char *b, char **err)
{
    const char *p = b;
    if (!isdigit((unsigned char)*p))
        goto bad;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            goto bad;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p && strchr("bBkKmMgGtTpP", *p))
        p++;
    if (*p)
        goto bad;
    return 0;
bad:
    xerr_take(err, xfmt("bwlimit '%s': must be a number with an optional K/M/G unit (e.g. 50M)", b));
    return -1;
}

static int check_rsync_path(const char *r, char **err)
{
    if (!*r || r[0] == '-' || r[0] == ' ')
        goto bad;
    for (const char *c = r; *c; c++)
        if (!(isalnum((unsigned char)*c) || strchr("._/+=-", *c) || (*c == ' ' && c[1] != ' ')))
            goto bad;
    return 0;
bad:
    xerr_take(err, xfmt("rsync_path '%s': only letters, digits, '._/+=-' and single spaces are "
                     "allowed", r));
    return -1;
}

/* ------------------------------------------------------------ commands */
void rc_ssh_opts(const rc_conn *c, rc_argv *a)
{
    if (c->ssh_key) {
        rc_argv_add(a, "-i");
        rc_argv_add(a, c->ssh_key);
        rc_argv_add(a, "-o");
        rc_argv_add(a, "IdentitiesOnly=yes");
    }
    if (c->port > 0) {
        rc_argv_add(a, "-p");
        rc_argv_addf(a, "%d", c->port);
    }
    rc_argv_add(a, "-o");
    rc_argv_add(a, "BatchMode=yes");
    rc_argv_add(a, "-o");
    rc_argv_addf(a, "StrictHostKeyChecking=%s",
                 c->host_key_checking ? c->host_key_checking : "yes");
    if (c->known_hosts) {
        rc_argv_add(a, "-o");
        rc_argv_addf(a, "UserKnownHostsFile=%s", c->known_hosts);
    }
    if (c->connect_timeout > 0) {
        rc_argv_add(a, "-o");
        rc_argv_addf(a, "ConnectTimeout=%d", c->connect_timeout);
    }
    rc_argv_add(a, "-o");
    rc_argv_add(a, "ClearAllForwardings=yes");
    if (c->control_path) {
        rc_argv_add(a, "-o");
        rc_argv_addf(a, "ControlPath=%s", c->control_path);
    }
}

char *rc_ssh_e(const rc_conn *c)
{
    rc_argv a = { 0 };
    rc_argv_add(&a, "ssh");
    rc_ssh_opts(c, &a);
    if (c->control_path) {
        rc_argv_add(&a, "-o");
        rc_argv_add(&a, "ControlMaster=no");
    }
    size_t len = 1;
    for (size_t i = 0; i < a.n; i++)
        len += strlen(a.v[i]) + 1;
    char *s = a.oom ? NULL : malloc(len);
    if (s) {
        s[0] = '\0';
        for (size_t i = 0; i < a.n; i++) {
            if (i)
                strcat(s, " ");
            strcat(s, a.v[i]);
        }
    }
    rc_argv_free(&a);
    return s;
}

char *rc_dest_host(const rc_conn *c, bool for_rsync)
{
    bool v6 = strchr(c->host, ':') && c->host[0] != '[';
    const char *lb = (v6 && for_rsync) ? "[" : "", *rb = (v6 && for_rsync) ? "]" : "";
    if (c->user)
        return xfmt("%s@%s%s%s", c->user, lb, c->host, rb);
    return xfmt("%s%s%s", lb, c->host, rb);
}

static int common_checks(const rc_conn *c, const rc_sync_opts *o, char **err)
{
    if (rc_check_conn(c, err) < 0)
        return -1;
    if (o->bwlimit && check_bwlimit(o->bwlimit, err) < 0)
        return -1;
    if (o->rsync_path && check_rsync_path(o->rsync_path, err) < 0)
        return -1;
    return 0;
}

static void add_tail_opts(const rc_conn *c, const rc_sync_opts *o, rc_argv *a)
{
    if (o->timeout > 0)
        rc_argv_addf(a, "--timeout=%d", o->timeout);
    if (o->bwlimit)
        rc_argv_addf(a, "--bwlimit=%s", o->bwlimit);
    if (o->dry_run)
        rc_argv_add(a, "--dry-run");
    if (o->rsync_path)
        rc_argv_addf(a, "--rsync-path=%s", o->rsync_path);
    rc_argv_add(a, "--stats");
    rc_argv_add(a, "--out-format=@%i");
    char *e = rc_ssh_e(c);
    rc_argv_add(a, "-e");
    if (e)
        rc_argv_add(a, e);
    else
        a->oom = true;
    free(e);
    rc_argv_add(a, "--");
}

/* The copy options every sync shares, single volume or batched: "rsync", then
 * archive mode with numeric ids, ACLs/xattrs when asked, --delete (confined
 * by the caller's paths), --partial, --checksum when asked. */
static void add_copy_opts(const rc_sync_opts *o, rc_argv *a)
{
    rc_argv_add(a, "rsync");
    rc_argv_add(a, "-a");
    rc_argv_add(a, "--numeric-ids");
    if (o->acls)
        rc_argv_add(a, "-A");
    if (o->xattrs)
        rc_argv_add(a, "-X");
    rc_argv_add(a, "--delete");
    rc_argv_add(a, "--partial");
    if (o->checksum)
        rc_argv_add(a, "--checksum");
}

/* The command's tail: "SRC/ HOST:DEST/" (rsync copies the contents of SRC
 * into DEST); -1 with "out of memory" when any argument could not be added. */
static int add_src_dest(const rc_conn *c, const char *src, const char *dest, rc_argv *a,
                        char **err)
{
    rc_argv_addf(a, "%s/", src);
    char *h = rc_dest_host(c, true);
    rc_argv_addf(a, "%s:%s/", h ? h : "", dest);
    free(h);
    if (a->oom) {
        xerr_take(err, xfmt("out of memory"));
        return -1;
    }
    return 0;
}

int rc_sync_argv(const rc_conn *c, const rc_sync_opts *o, const char *src, const char *dest,
                 rc_argv *a, char **err)
{
    if (common_checks(c, o, err) < 0 || check_plain_path(src, "source directory", err) < 0 ||
        check_plain_path(dest, "destination directory", err) < 0)
        return -1;
    if (!strcmp(dest, "/")) {
        xerr_take(err, xfmt("destination directory '/': refusing"));
        return -1;
    }
    add_copy_opts(o, a);
    if (o->mkpath)
        rc_argv_add(a, "--mkpath");
    add_tail_opts(c, o, a);
    return add_src_dest(c, src, dest, a, err);
}

/* A rel usable in a batch: normalized, printable, no backslash (rsync
 * escapes unprintable bytes in %n as "\#ooo", which would not match). */
static int check_batch_rel(const char *rel, char **err)
{
    char *n = sp_norm_rel(rel, "volume directory", err);
    if (!n)
        return -1;
    int bad = strcmp(n, rel) != 0;
    free(n);
    for (const char *p = rel; !bad && *p; p++)
        bad = (unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || *p == '\\';
    if (bad || !strcmp(rel, ".") || !strncmp(rel, "./", 2)) {
        xerr_take(err, xfmt("volume directory '%s': not usable in a batched rsync", rel));
        return -1;
    }
    return 0;
}

int rc_sync_batch_argv(const rc_conn *c, const rc_sync_opts *o, const char *src_base,
                       const char *const *rels, size_t nrels, const char *dest_base,
                       rc_argv *a, char **err)
{
    if (common_checks(c, o, err) < 0 || check_plain_path(src_base, "source base", err) < 0 ||
        check_plain_path(dest_base, "destination base", err) < 0)
        return -1;
    if (nrels == 0) {
        xerr_take(err, xfmt("batched rsync: no volume directories"));
        return -1;
    }
    for (size_t i = 0; i < nrels; i++) {
        if (check_batch_rel(rels[i], err) < 0)
            return -1;
        for (size_t k = 0; k < nrels; k++) {
            size_t l = strlen(rels[k]);
            if (k != i && !strncmp(rels[i], rels[k], l) && (rels[i][l] == '/' || !rels[i][l])) {
                xerr_take(err, xfmt("batched rsync: volume directory '%s' lies inside '%s'",
                                    rels[i], rels[k]));
                return -1;
            }
        }
    }
    add_copy_opts(o, a);
    rc_argv_add(a, "--relative");
    add_tail_opts(c, o, a);
    /* add_tail_opts wrote --out-format=@%i; the batch needs names too */
    for (size_t i = 0; i < a->n; i++) {
        if (!strcmp(a->v[i], "--out-format=@%i")) {
            char *f = strdup("--out-format=@%i %b %l %n");
            if (!f) {
                a->oom = true;
                break;
            }
            free(a->v[i]);
            a->v[i] = f;
        }
    }
    const char *sb = strcmp(src_base, "/") ? src_base : "";
    for (size_t i = 0; i < nrels; i++)
        rc_argv_addf(a, "%s/./%s/", sb, rels[i]);
    char *h = rc_dest_host(c, true);
    rc_argv_addf(a, "%s:%s/", h ? h : "", strcmp(dest_base, "/") ? dest_base : "");
    free(h);
    if (a->oom) {
        xerr_take(err, xfmt("out of memory"));
        return -1;
    }
    return 0;
}

/* Figures in rsync's output stop growing at NUM_CAP (no overflow; no real
 * transfer comes near it). */
#define NUM_CAP ((long long)1 << 58)

static const char *parse_ll(const char *p, long long *v)
{
    if (!isdigit((unsigned char)*p))
        return NULL;
    long long x = 0;
    while (isdigit((unsigned char)*p)) {
        if (x < NUM_CAP)
            x = x * 10 + (*p - '0');
        p++;
    }
    *v = x;
    return p;
}

int rc_item_parse(const char *line, rc_item *it)
{
    /* "@" + 11-char change string + " " + %b + " " + %l + " " + name */
    if (line[0] != '@' || strnlen(line + 1, 12) < 12 || line[12] != ' ')
        return -1;
    it->flags = line + 1;
    const char *p = parse_ll(line + 13, &it->bytes);
    if (!p || *p != ' ' || !(p = parse_ll(p + 1, &it->length)) || *p != ' ' || !p[1])
        return -1;
    it->name = p + 1;
    return 0;
}

long rc_item_owner(const char *name, const char *const *rels, size_t nrels)
{
    for (size_t i = 0; i < nrels; i++) {
        size_t l = strlen(rels[i]);
        if (!strncmp(name, rels[i], l) && (name[l] == '/' || name[l] == '\0'))
            return (long)i;
    }
    return -1;
}

int rc_remove_argv(const rc_conn *c, const rc_sync_opts *o, const char *empty, const char *dest,
                   rc_argv *a, char **err)
{
    if (common_checks(c, o, err) < 0 || check_plain_path(empty, "empty directory", err) < 0 ||
        check_plain_path(dest, "directory to remove", err) < 0)
        return -1;
    char *n = sp_norm_abs(dest, "directory to remove", err);
    const char *slash = n ? strrchr(n, '/') : NULL;
    if (!n || !slash || !slash[1] || slash == n) {
        if (n)
            xerr_take(err, xfmt("directory to remove '%s': needs a parent directory below '/'", dest));
        free(n);
        return -1;
    }
    char *parent = strndup(n, (size_t)(slash - n));
    const char *base = slash + 1;
    rc_argv_add(a, "rsync");
    rc_argv_add(a, "--recursive");
    rc_argv_add(a, "--delete");
    rc_argv_addf(a, "--include=/%s", base);
    rc_argv_addf(a, "--include=/%s/**", base);
    rc_argv_add(a, "--exclude=*");
    add_tail_opts(c, o, a);
    int rc = add_src_dest(c, empty, parent, a, err);
    free(parent);
    free(n);
    return rc;
}

/* ------------------------------------------------------------ output */
static long long num_after(const char *line, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (strncmp(line, prefix, pl) != 0)
        return -1;
    long long v = 0;
    bool any = false;
    for (const char *p = line + pl; *p; p++) {
        if (*p == ' ' && !any)
            continue;
        if (isdigit((unsigned char)*p)) {
            if (v < NUM_CAP)
                v = v * 10 + (*p - '0');
            any = true;
        } else if ((*p == ',' || *p == '.') && any && isdigit((unsigned char)p[1])) {
            continue;   /* thousands separators (locale dependent) */
        } else {
            break;
        }
    }
    return any ? v : -1;
}

void rc_stats_line(rc_stats *s, const char *line)
{
    if (line[0] == '@') {
        s->items++;
        if (!strncmp(line + 1, "*deleting", 9))
            s->deletions++;
        return;
    }
    long long v;
    if ((v = num_after(line, "Number of regular files transferred:")) >= 0) {
        s->files_transferred = v;
        s->have_stats = true;
    } else if ((v = num_after(line, "Number of created files:")) >= 0) {
        s->files_created = v;
    } else if ((v = num_after(line, "Number of deleted files:")) >= 0) {
        s->files_deleted = v;
    } else if ((v = num_after(line, "Total bytes sent:")) >= 0) {
        s->bytes_sent = v;
        s->have_stats = true;
    } else if ((v = num_after(line, "Total bytes received:")) >= 0) {
        s->bytes_received = v;
    } else if ((v = num_after(line, "Total transferred file size:")) >= 0) {
        s->transferred_size = v;
    }
}

const char *rc_exit_meaning(int code)
{
    switch (code) {
    case 0:   return "success";
    case 1:   return "syntax or usage error";
    case 2:   return "protocol incompatibility";
    case 3:   return "errors selecting input/output files, dirs";
    case 4:   return "requested action not supported";
    case 5:   return "error starting client-server protocol";
    case 10:  return "error in socket I/O";
    case 11:  return "error in file I/O (disk full?)";
    case 12:  return "error in rsync protocol data stream (rsync missing on the DR host, or it died?)";
    case 13:  return "errors with program diagnostics";
    case 14:  return "error in IPC code";
    case 20:  return "received SIGUSR1 or SIGINT";
    case 21:  return "some error returned by waitpid()";
    case 22:  return "error allocating core memory buffers";
    case 23:  return "partial transfer due to error";
    case 24:  return "partial transfer due to vanished source files";
    case 25:  return "the --max-delete limit stopped deletions";
    case 30:  return "timeout in data send/receive";
    case 35:  return "timeout waiting for daemon connection";
    case 255: return "ssh failed (DR host unreachable or authentication refused?)";
    }
    return "unknown error";
}
