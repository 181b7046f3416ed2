/* rsync_cmd.h - building rsync / ssh argv arrays safely and reading rsync's
 * output back (itemized changes + --stats).
 *
 * Nothing here runs a program (lib/base/spawn.h does): these are pure functions
 * so the exact command lines and the parsing are unit-tested.
 *
 * Safety: rsync's -e value is ONE argv element that rsync itself splits on
 * whitespace, and the remote path travels through the remote shell.  So
 * every user-controlled piece (host, user, key path, known_hosts path,
 * control path, remote directory) is validated against a strict character
 * set with no whitespace, quotes or shell metacharacters, and nothing may
 * start with '-' (no option injection into ssh or rsync).
 */
#ifndef OCPVDR_RSYNC_CMD_H
#define OCPVDR_RSYNC_CMD_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rc_conn {
    const char *host;               /* DR storage host (name, IPv4, IPv6) */
    const char *user;               /* NULL: ssh's default */
    int port;                       /* 0: ssh's default */
    const char *ssh_key;            /* NULL: ssh's default identities */
    const char *known_hosts;        /* NULL: ssh's default files */
    const char *host_key_checking;  /* "yes" | "accept-new" | "no" */
    int connect_timeout;            /* seconds; 0: ssh's default */
    const char *control_path;       /* NULL: no connection sharing */
} rc_conn;

/* Validation; 0 or -1 with a malloc'd *err naming `what`. */
int rc_check_host(const char *host, const char *what, char **err);
int rc_check_user(const char *user, const char *what, char **err);
int rc_check_conn(const rc_conn *c, char **err);

/* A growable NULL-terminated argv whose strings it owns. */
typedef struct rc_argv {
    char **v;
    size_t n, cap;
    bool oom;
} rc_argv;
void rc_argv_add(rc_argv *a, const char *s);
void rc_argv_addf(rc_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rc_argv_free(rc_argv *a);
const char *const *rc_argv_get(const rc_argv *a);

/* ssh options for c (no program name, no destination): -i, -p and -o ... */
void rc_ssh_opts(const rc_conn *c, rc_argv *a);
/* The -e value for rsync: "ssh <opts>" joined by single spaces.  malloc'd. */
char *rc_ssh_e(const rc_conn *c);
/* "[user@]host" (IPv6 bracketed for rsync: "user@[::1]"). malloc'd. */
char *rc_dest_host(const rc_conn *c, bool for_rsync);

typedef struct rc_sync_opts {
    bool acls, xattrs;
    bool checksum;         /* compare by checksum (verify pass) */
    bool dry_run;
    bool mkpath;           /* create missing parents of the destination */
    int timeout;           /* rsync --timeout (I/O), seconds; 0: none */
    const char *bwlimit;   /* rsync --bwlimit value (validated), NULL: none */
    const char *rsync_path;/* --rsync-path on the remote (validated), NULL: rsync */
} rc_sync_opts;

/* rsync argv copying directory src (local, contents) to dest (remote dir):
 *   rsync -a --numeric-ids [-A] [-X] --delete --partial --timeout=T
 *         [--bwlimit=B] [-c] [-n] [--mkpath] --stats --out-format=@%i
 *         -e "<ssh>" -- SRC/ [user@]host:DEST/
 * --delete applies only inside DEST because the transfer root is DEST. */
int rc_sync_argv(const rc_conn *c, const rc_sync_opts *o, const char *src, const char *dest,
                 rc_argv *a, char **err);

/* One rsync for many volume directories that share a source base and a
 * destination base: rel[i] is copied from SRC_BASE/rel[i] to
 * [user@]host:DEST_BASE/rel[i] with --relative ("SRC_BASE/./rel/"), so
 *   rsync -a --numeric-ids [-A] [-X] --delete --partial [-c] --relative
 *         --timeout=T [--bwlimit=B] [-n] --stats --out-format=@%i %b %l %n
 *         -e "<ssh>" -- SRC_BASE/./REL1/ SRC_BASE/./REL2/ ... [user@]host:DEST_BASE/
 * --delete acts only inside each REL (the directories whose contents are
 * sent); DEST_BASE itself and its other entries are never touched (implied
 * parent directories are not synchronized).  Every rel must be a normalized
 * relative path of printable characters without '\' (so rsync's itemized
 * names can be matched back to it), and no rel may lie inside another. */
int rc_sync_batch_argv(const rc_conn *c, const rc_sync_opts *o, const char *src_base,
                       const char *const *rels, size_t nrels, const char *dest_base,
                       rc_argv *a, char **err);

/* One itemized line of a batch run ("@%i %b %l %n"): *item points at the
 * 11-character change string, *name at the path (relative to the base).
 * Returns 0, or -1 when the line is not an itemized line. */
typedef struct rc_item {
    const char *flags;            /* "<f+++++++++", "*deleting  ", ".d..t......" */
    long long bytes;              /* %b: bytes actually transferred */
    long long length;             /* %l: file length */
    const char *name;             /* %n: path relative to the transfer base */
} rc_item;
int rc_item_parse(const char *line, rc_item *it);

/* The rel (index into rels) that `name` lies in: name equals rel, rel + "/"
 * or starts with rel + "/".  -1 when none. */
long rc_item_owner(const char *name, const char *const *rels, size_t nrels);

/* rsync argv that removes directory `dest` (remote) and nothing else: an
 * empty local directory `empty` is synced with --delete onto dest's parent
 * with filters that include only /<basename>, so every other entry of the
 * parent is protected.  dest must have a parent (not "/"). */
int rc_remove_argv(const rc_conn *c, const rc_sync_opts *o, const char *empty, const char *dest,
                   rc_argv *a, char **err);

/* What an rsync run did, from --out-format=@%i lines and --stats. */
typedef struct rc_stats {
    long long items;              /* itemized lines: anything changed or deleted */
    long long deletions;          /* "*deleting" lines */
    long long files_transferred;  /* "Number of regular files transferred" */
    long long files_created;
    long long files_deleted;
    long long bytes_sent;         /* "Total bytes sent" */
    long long bytes_received;
    long long transferred_size;   /* "Total transferred file size" */
    bool have_stats;
} rc_stats;

/* Feed one stdout line (a spawn line callback can call this). */
void rc_stats_line(rc_stats *s, const char *line);

/* Meaning of an rsync exit status ("partial transfer", ...). */
const char *rc_exit_meaning(int code);

#endif
