/* nfs_rsync_sync.c - Ansible binary module ocpv.dr.nfs_rsync_sync.
 *
 * Runs on the primary NFS server (delegate_to) and replicates the data of a
 * batch of NFS-backed PVs to the DR NFS server with rsync over ssh, N volumes
 * in parallel, then returns per-volume figures and the PVs rewritten for DR
 * (lib/dr/storage_profile.h).  state=absent removes volume directories on the
 * DR server (delete handlers), only strictly inside the DR export root, only
 * when the caller says the PV no longer exists on the primary, and never a
 * directory that holds another volume's.  The callers pass the DR PVs
 * ocpv-dr itself recorded (k8s_dr_clean prune's pruned_objects, with
 * pv_side=dr: DR PVs name the DR export), never a path from an event, and
 * the PVs still on DR as keep_volumes.
 *
 * Two states touch neither the network nor the primary's files, so the
 * roles need no mapping of their own (lib/dr/storage_profile.h is the only
 * one): state=rewrite returns the DR form of the PVs (pvs) - the failover's
 * provisioning of missing DR PVs; state=inspect runs on the DR storage host
 * and reports whether each volume's DR copy exists at exactly dr_root/rel
 * and what it holds (entries, files, bytes; lib/dr/dir_stats.h) - the
 * failover's check before anything is restored.  Both choose by the
 * profile's type, never by the class name.
 *
 * Flow: validate everything (profiles, hosts, paths, layout, local realpath
 * checks: a source dir must resolve to exactly root/rel) -> refuse volume
 * directories that contain another volume's, or touch a keep_volumes one
 * (lib/dr/storage_profile.h sp_find_overlaps) -> one shared ssh connection per
 * 8 parallel sessions (lib/dr/ssh_master.h) -> one batched `realpath -m` on the
 * DR host to refuse symlinks (the same root/rel rule) -> worker threads run
 * rsync (argv only) -> results.  A failing volume never stops the others.
 * Linked statically: the host only needs rsync and ssh.
 *
 * Batching (lib/dr/rsync_batch.h plans it): volumes whose directories sit at
 * the same relative path under one source base and one DR base are synced
 * by ONE rsync --relative per batch (lib/dr/rsync_cmd.h rc_sync_batch_argv);
 * its itemized lines are attributed back to their volume by path.  When a
 * batch's rsync does not exit 0, each of its volumes is re-run on its own,
 * so a broken volume gets its own error and the others their results (what
 * the batch already did is counted too).  This file is the option spec and
 * the orchestration of those parts.
 */
#include "dir_stats.h"
#include "jsonx.h"
#include "module.h"
#include "rsync_batch.h"
#include "rsync_cmd.h"
#include "spawn.h"
#include "ssh_master.h"
#include "storage_profile.h"
#include "xstr.h"
#include "xtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PARALLEL 64

static const mod_opt opts[] = {
    { .name = "volumes", .type = OPT_LIST, .required = true },
    { .name = "storage_profiles", .type = OPT_DICT, .required = true },
    { .name = "state", .type = OPT_STR, .def = "\"present\"",
      .choices = (const char *[]){ "present", "absent", "rewrite", "inspect", NULL } },
    { .name = "pv_side", .type = OPT_STR, .def = "\"primary\"",
      .choices = (const char *[]){ "primary", "dr", NULL } },
    { .name = "dr_host", .type = OPT_STR },
    { .name = "dr_user", .type = OPT_STR },
    { .name = "dr_port", .type = OPT_INT },
    { .name = "ssh_key", .type = OPT_PATH },
    { .name = "known_hosts", .type = OPT_PATH },
    { .name = "host_key_checking", .type = OPT_STR, .def = "\"yes\"",
      .choices = (const char *[]){ "yes", "accept-new", "no", NULL } },
    { .name = "connect_timeout", .type = OPT_INT, .def = "10" },
    { .name = "ssh_multiplex", .type = OPT_BOOL, .def = "true" },
    { .name = "parallel", .type = OPT_INT, .def = "0" },
    { .name = "batch", .type = OPT_INT, .def = "0" },
    { .name = "snapshot_dir", .type = OPT_STR },
    { .name = "verify", .type = OPT_STR, .def = "\"none\"",
      .choices = (const char *[]){ "none", "checksum", NULL } },
    { .name = "bwlimit", .type = OPT_STR },
    { .name = "timeout", .type = OPT_INT, .def = "300" },
    { .name = "volume_timeout", .type = OPT_INT, .def = "0" },
    { .name = "acls", .type = OPT_BOOL, .def = "false" },
    { .name = "xattrs", .type = OPT_BOOL, .def = "false" },
    { .name = "rsync_path", .type = OPT_STR },
    { .name = "on_unknown", .type = OPT_STR, .def = "\"fail\"",
      .choices = (const char *[]){ "fail", "skip", NULL } },
    { .name = "pv_exists_on_primary", .type = OPT_BOOL },
    { .name = "keep_volumes", .type = OPT_LIST, .def = "[]" },
    { .name = "fail_on_error", .type = OPT_BOOL, .def = "true" },
    { 0 }
};

static const mod_spec spec = { .name = "nfs_rsync_sync", .opts = opts,
                               .supports_check_mode = true };

/* One volume: planned by the main thread, run by a worker (plain C data
 * only; workers never touch JSON). */
typedef struct job {
    char *name;
    char *uid;               /* the PV's metadata.uid, NULL when it has none */
    char *cls;
    const sp_profile *prof;
    sp_volume vol;
    char *src;               /* resolved local source (snapshot or volume dir) */
    json_t *pv_dr;           /* rewritten PV (present) */
    bool skipped;
    char *error;             /* set: failed (planning or run) */
    int rc;                  /* rsync exit status; -1 when it did not run */
    char *stderr_tail;
    char *warning;
    rc_stats st;
    bool verified;
    long long verify_diffs;
    double duration;
    bool batched;            /* synced (at least partly) by a batched rsync */
    rb_when when;            /* started_at / finished_at of its rsync (lib/dr/rsync_batch.h) */
    bool exists;             /* inspect: the DR copy's directory exists */
    ds_stats ds;             /* inspect: what it holds */
} job;

typedef enum { MODE_PRESENT, MODE_ABSENT, MODE_REWRITE, MODE_INSPECT } run_mode;

typedef struct run {
    module *m;
    job *jobs;
    size_t njobs;
    run_mode mode;
    bool absent, check, verify;
    rc_conn conn;
    rc_sync_opts so;
    const char *empty_dir;
    sm_pool pool;           /* shared ssh connections (lib/dr/ssh_master.h) */
    double volume_timeout;
    rb_plan plan;           /* what the workers pick up (lib/dr/rsync_batch.h) */
    size_t next;
    pthread_mutex_t lock;
} run;


static void job_fail(job *j, char *msg)
{
    free(j->error);
    j->error = msg ? msg : strdup("out of memory");
}

/* ------------------------------------------------------------ planning */
static json_t *volume_pv(json_t *item, json_t **owned)
{
    *owned = NULL;
    json_t *pv = json_object_get(item, "pv");
    if (!json_is_object(pv))
        return item;
    /* a PV+PVC pair: the PVC fills in a missing claimRef */
    json_t *pvc = json_object_get(item, "pvc");
    if (json_is_object(pvc) && !jx_get(pv, "spec.claimRef")) {
        *owned = json_deep_copy(pv);
        jx_set(*owned, "spec.claimRef.namespace",
               json_string(jx_str_or(pvc, "metadata.namespace", "")));
        jx_set(*owned, "spec.claimRef.name", json_string(jx_str_or(pvc, "metadata.name", "")));
        return *owned;
    }
    return pv;
}

static void plan_volume(run *r, job *j, json_t *item, size_t idx, sp_profile *profs,
                        const char **classes, size_t nprof, const char *snapshot_rel)
{
    module *m = r->m;
    j->rc = -1;
    json_t *owned = NULL;
    json_t *pv = json_is_object(item) ? volume_pv(item, &owned) : NULL;
    const char *name = pv ? jx_str(pv, "metadata.name") : NULL;
    const char *uid = pv ? jx_str(pv, "metadata.uid") : NULL;
    j->name = name ? strdup(name) : xfmt("volumes[%zu]", idx);
    j->uid = uid ? strdup(uid) : NULL;
    if (!pv) {
        job_fail(j, xfmt("volumes[%zu]: must be a PV object or a {pv, pvc} pair", idx));
        return;
    }
    const char *cls = jx_str(pv, "spec.storageClassName");
    j->cls = strdup(cls ? cls : "");
    for (size_t i = 0; i < nprof; i++)
        if (!strcmp(classes[i], j->cls))
            j->prof = &profs[i];
    if (!j->prof) {
        if (!strcmp(mod_str(m, "on_unknown"), "skip"))
            j->skipped = true;
        else
            job_fail(j, xfmt("PV %s: storage class '%s' has no entry in storage_profiles "
                             "(set on_unknown: skip to ignore such volumes)", j->name, j->cls));
        goto out;
    }
    char *err = NULL;
    if (sp_resolve(j->prof, pv, &j->vol, &err) < 0) {
        job_fail(j, xfmt("PV %s: %s", j->name, err ? err : "cannot resolve its directory"));
        free(err);
        goto out;
    }
    if (r->mode == MODE_REWRITE) {
        j->pv_dr = sp_rewrite_pv(j->prof, pv, &j->vol, &err);
        if (!j->pv_dr) {
            job_fail(j, xfmt("PV %s: %s", j->name, err ? err : "cannot rewrite"));
            free(err);
        }
    } else if (r->mode == MODE_PRESENT) {
        /* exactly primary_root/rel: a symlinked volume dir (or parent) would
         * copy another volume's data as this one's */
        char *real = sp_check_local(j->prof->primary_root, j->vol.src_dir, j->vol.rel,
                                    "source directory", &err);
        if (!real) {
            job_fail(j, xfmt("PV %s: %s", j->name, err));
            free(err);
            goto out;
        }
        if (snapshot_rel) {
            char *snap = sp_join(real, snapshot_rel);
            j->src = snap ? sp_check_local(real, snap, NULL, "snapshot_dir", &err) : NULL;
            free(snap);
            free(real);
            if (!j->src) {
                job_fail(j, xfmt("PV %s: %s", j->name, err ? err : "out of memory"));
                free(err);
                goto out;
            }
        } else {
            j->src = real;
        }
        j->pv_dr = sp_rewrite_pv(j->prof, pv, &j->vol, &err);
        if (!j->pv_dr) {
            job_fail(j, xfmt("PV %s: %s", j->name, err ? err : "cannot rewrite"));
            free(err);
        }
    }
out:
    json_decref(owned);
}

/* ------------------------------------------------------------ overlaps */
/* Adds the directories keep_volumes[i] may use under every profile (a PV
 * that matches no profile's export has no directory here to protect). */
static bool add_keep_dirs(json_t *keep, const sp_profile *profs, size_t nprof, sp_dir **d,
                          size_t *n, size_t *cap, module *m)
{
    size_t i;
    json_t *item;
    json_array_foreach(keep, i, item) {
        json_t *pv = json_is_object(json_object_get(item, "pv")) ? json_object_get(item, "pv") : item;
        if (!json_is_object(pv))
            mod_fail(m, "keep_volumes[%zu]: must be a PV object or a {pv, pvc} pair", i);
        for (size_t k = 0; k < nprof; k++) {
            char *rel = sp_pv_rel(&profs[k], pv);
            if (!rel)
                continue;
            char *path = sp_join(profs[k].dr_root, rel);
            free(rel);
            if (!path)
                return false;
            if (*n == *cap) {
                size_t nc = *cap * 2;
                sp_dir *nd = realloc(*d, nc * sizeof *nd);
                if (!nd) {
                    free(path);
                    return false;
                }
                *d = nd;
                *cap = nc;
            }
            (*d)[(*n)++] = (sp_dir){ .path = path, .pv_name = jx_str(pv, "metadata.name"),
                                     .pv_uid = jx_str(pv, "metadata.uid"), .keep = true };
        }
    }
    return true;
}

static char *entry_ref(const sp_dir *o)
{
    return o->keep ? xfmt("volume %s (keep_volumes: still in use)", o->pv_name ? o->pv_name : "?")
                   : xfmt("volume %s", o->pv_name ? o->pv_name : "?");
}

/* Refuses every runnable volume whose directory holds another volume's
 * directory, or (DR side) is, holds or lies inside a keep_volumes one: a
 * write or delete there would reach that other volume.  side_src: compare the
 * source directories (state=present: a copy of a directory holding another
 * volume would carry that volume's data as this one's). */
static void check_overlaps(run *r, json_t *keep, const sp_profile *profs, size_t nprof,
                           bool side_src)
{
    size_t n = 0, cap = r->njobs + 1;
    sp_dir *d = calloc(cap, sizeof *d);
    size_t *job_of = calloc(r->njobs + 1, sizeof *job_of);
    if (!d || !job_of)
        mod_fail(r->m, "out of memory");
    for (size_t i = 0; i < r->njobs; i++) {
        job *j = &r->jobs[i];
        const char *path = side_src ? j->vol.src_dir : j->vol.dest_dir;
        if (!path)
            continue;
        job_of[n] = i;
        d[n++] = (sp_dir){ .path = path, .pv_name = j->name, .pv_uid = j->uid };
    }
    size_t njobs_d = n;
    if (!side_src && !add_keep_dirs(keep, profs, nprof, &d, &n, &cap, r->m))
        mod_fail(r->m, "out of memory");
    sp_overlap *o = calloc(n + 1, sizeof *o);
    if (!o || sp_find_overlaps(d, n, o) < 0)
        mod_fail(r->m, "out of memory");
    const char *side = side_src ? "source directory" : "DR directory";
    const char *verb = r->absent ? "remove" : "sync into";
    for (size_t e = 0; e < njobs_d; e++) {
        job *j = &r->jobs[job_of[e]];
        if (!o[e].how || j->error || j->skipped)
            continue;
        const sp_dir *other = &d[o[e].other];
        char *ref = entry_ref(other);
        if (o[e].how == SP_OVERLAP_CONTAINS)
            job_fail(j, xfmt("PV %s: its %s %s contains the directory %s of %s; refusing to %s "
                             "a directory that holds another volume", j->name, side, d[e].path,
                             other->path, ref ? ref : "another volume", verb));
        else if (o[e].how == SP_OVERLAP_SAME)
            job_fail(j, xfmt("PV %s: its %s %s is also the directory of %s; refusing to %s it",
                             j->name, side, d[e].path, ref ? ref : "another volume", verb));
        else
            job_fail(j, xfmt("PV %s: its %s %s lies inside the directory %s of %s; refusing to "
                             "%s it", j->name, side, d[e].path, other->path,
                             ref ? ref : "another volume", verb));
        free(ref);
    }
    for (size_t e = njobs_d; e < n; e++)
        free((char *)d[e].path);
    free(d);
    free(job_of);
    free(o);
}

/* ------------------------------------------------------------ DR path check */
/* Resolves the DR roots and destinations of jobs[from, to) with one
 * `realpath -m` on the DR host and refuses volumes whose destination
 * escapes its root (a symlink on DR pointing elsewhere).  master: this ssh
 * also becomes the shared connection at that control path (ControlPersist
 * keeps it when the command is done), so the check costs no session of its
 * own; returns why the connection failed (malloc'd), else NULL and
 * r->pool.paths[0] = master. */
static char *check_remote_chunk(run *r, size_t from, size_t to, char *master)
{
    rc_argv a = { 0 };
    sm_ssh_argv(&r->conn, master ? master : sm_pool_path(&r->pool, 0), &a);
    if (master) {
        sm_master_opts(&a);
    } else if (r->pool.n) {
        rc_argv_add(&a, "-o");
        rc_argv_add(&a, "ControlMaster=no");
    }
    rc_argv_add(&a, "--");
    char *h = rc_dest_host(&r->conn, false);
    rc_argv_add(&a, h ? h : "");
    free(h);

    rc_argv cmd = { 0 };
    rc_argv_add(&cmd, "realpath");
    rc_argv_add(&cmd, "-m");
    rc_argv_add(&cmd, "--");
    size_t nargs = 0;
    for (size_t i = from; i < to; i++) {
        job *j = &r->jobs[i];
        if (j->error || j->skipped)
            continue;
        rc_argv_add(&cmd, j->prof->dr_root);
        rc_argv_add(&cmd, j->vol.dest_dir);
        nargs += 2;
    }
    if (nargs == 0) {
        rc_argv_free(&a);
        rc_argv_free(&cmd);
        if (master) {       /* nothing to check: a plain master (its dir is master's) */
            char *sl = strrchr(master, '/');
            *sl = '\0';
            char *e = sm_pool_start(&r->pool, master, 0);
            free(master);
            return e;
        }
        return NULL;
    }
    char *remote = spawn_sh_quote(rc_argv_get(&cmd));
    rc_argv_add(&a, remote ? remote : "false");
    free(remote);
    rc_argv_free(&cmd);

    spawn_opts so = { .timeout_s = 120, .tail_max = 1024 * 1024 + nargs * 4200 };
    spawn_result res;
    spawn_run(rc_argv_get(&a), &so, &res);
    rc_argv_free(&a);

    char *why = NULL;
    if (master) {
        if (res.spawn_errno || res.timed_out || res.term_signal || res.exit_code == 255) {
            char *d = sm_describe_failure(&res, "ssh");
            char *msg = xfmt("cannot connect to DR host %s: %s", r->conn.host, d ? d : "?");
            free(d);
            spawn_result_free(&res);
            unlink(master);
            free(master);
            return msg ? msg : strdup("cannot connect to DR host");
        }
        r->pool.paths[0] = master;     /* connected: the master persists */
    }
    if (!spawn_ok(&res)) {
        char *d = sm_describe_failure(&res, "realpath on the DR host");
        why = xfmt("cannot check destination paths on DR host %s: %s", r->conn.host, d ? d : "?");
        free(d);
    }
    /* one output line per argument, in order */
    char *save = NULL, *line = why ? NULL : strtok_r(res.out, "\n", &save);
    for (size_t i = from; i < to; i++) {
        job *j = &r->jobs[i];
        if (j->error || j->skipped)
            continue;
        if (why) {
            job_fail(j, xfmt("PV %s: %s", j->name, why));
            j->rc = 255;
            continue;
        }
        const char *root = line;
        line = line ? strtok_r(NULL, "\n", &save) : NULL;
        const char *dest = line;
        line = line ? strtok_r(NULL, "\n", &save) : NULL;
        if (!root || !dest) {
            job_fail(j, xfmt("PV %s: realpath on DR host %s returned too few lines", j->name,
                             r->conn.host));
            continue;
        }
        /* inside the root and exactly root/rel: no symlink INSIDE the export
         * on the way either (it could alias another volume's directory,
         * which --delete would then empty) - the rule the source obeys */
        char *err = NULL;
        char *label = xfmt("DR destination %s", j->vol.dest_dir);
        if (sp_check_resolved(root, dest, j->vol.rel, label ? label : "DR destination", &err) < 0)
            job_fail(j, xfmt("PV %s: %s (on %s)", j->name, err, r->conn.host));
        free(label);
        free(err);
    }
    free(why);
    spawn_result_free(&res);
    return NULL;
}

/* Checks all jobs, in chunks whose remote command stays far below Linux's
 * 128 KiB limit on one argument (ssh hands the remote side one string).
 * master (malloc'd, taken): the first chunk's ssh becomes the shared
 * connection there.  Returns why the connection failed, or NULL. */
static char *check_remote_paths(run *r, char *master)
{
    size_t from = 0, bytes = 0;
    for (size_t i = 0; i < r->njobs; i++) {
        job *j = &r->jobs[i];
        size_t need = (j->error || j->skipped) ? 0
                      : strlen(j->prof->dr_root) + strlen(j->vol.dest_dir) + 8;
        if (bytes + need > 60 * 1024) {
            char *e = check_remote_chunk(r, from, i, master);
            master = NULL;
            if (e)
                return e;
            from = i;
            bytes = 0;
        }
        bytes += need;
    }
    return check_remote_chunk(r, from, r->njobs, master);
}

/* ------------------------------------------------------------ workers */
static void on_line(void *ctx, const char *line, size_t len)
{
    (void)len;
    rc_stats_line(ctx, line);
}

/* Runs one rsync; returns its exit status (or -1) and fills st/err. */
static int run_rsync(const run *r, rc_argv *a, rc_stats *st, spawn_result *res)
{
    memset(st, 0, sizeof(*st));
    spawn_opts so = { .on_stdout_line = on_line, .cb_ctx = st, .tail_max = 16 * 1024,
                      .timeout_s = r->volume_timeout };
    spawn_run(rc_argv_get(a), &so, res);
    return res->spawn_errno ? -1 : res->exit_code;
}

static void run_job(run *r, job *j, const char *cp)
{
    rc_conn c = r->conn;
    c.control_path = cp;
    rc_sync_opts so = r->so;
    so.mkpath = strchr(j->vol.rel, '/') != NULL;   /* nested volume dirs need parents */
    rc_argv a = { 0 };
    char *err = NULL;
    int ok = r->absent ? rc_remove_argv(&c, &so, r->empty_dir, j->vol.dest_dir, &a, &err)
                       : rc_sync_argv(&c, &so, j->src, j->vol.dest_dir, &a, &err);
    if (ok < 0) {
        job_fail(j, xfmt("PV %s: %s", j->name, err ? err : "?"));
        free(err);
        rc_argv_free(&a);
        return;
    }
    spawn_result res;
    rb_when_start(&j->when, time(NULL));
    j->rc = run_rsync(r, &a, &j->st, &res);
    rb_when_end(&j->when, time(NULL));
    j->duration = res.duration_s;
    rc_argv_free(&a);
    if (res.spawn_errno) {
        job_fail(j, xfmt("PV %s: cannot run rsync: %s (is rsync installed on this host?)",
                         j->name, strerror(res.spawn_errno)));
    } else if (res.timed_out) {
        job_fail(j, xfmt("PV %s: rsync did not finish within volume_timeout (%.0f s)", j->name,
                         r->volume_timeout));
        j->stderr_tail = spawn_last_lines(res.err, 10);
    } else if (res.term_signal) {
        job_fail(j, xfmt("PV %s: rsync killed by signal %d", j->name, res.term_signal));
        j->stderr_tail = spawn_last_lines(res.err, 10);
    } else if (j->rc == 24 && !r->absent) {
        j->warning = xfmt("some source files vanished during the transfer (rsync exit 24); "
                          "use snapshot_dir for a consistent copy");
    } else if (j->rc != 0) {
        char *tail = spawn_last_lines(res.err, 3);
        job_fail(j, xfmt("PV %s: rsync exited with status %d (%s): %s", j->name, j->rc,
                         rc_exit_meaning(j->rc), tail && *tail ? tail : "no error output"));
        free(tail);
        j->stderr_tail = spawn_last_lines(res.err, 10);
    }
    spawn_result_free(&res);
    if (j->error || r->absent || r->check || !r->verify)
        return;

    /* verify: a checksum dry run must find nothing left to transfer */
    so.checksum = true;
    so.dry_run = true;
    so.bwlimit = NULL;
    rc_argv v = { 0 };
    if (rc_sync_argv(&c, &so, j->src, j->vol.dest_dir, &v, &err) < 0) {
        job_fail(j, xfmt("PV %s: verify: %s", j->name, err ? err : "?"));
        free(err);
        return;
    }
    rc_stats vst;
    int vrc = run_rsync(r, &v, &vst, &res);
    rc_argv_free(&v);
    j->duration += res.duration_s;
    if (vrc != 0) {
        char *tail = spawn_last_lines(res.err, 3);
        job_fail(j, xfmt("PV %s: verify pass failed: rsync exited with status %d: %s", j->name,
                         vrc, tail ? tail : ""));
        free(tail);
    } else {
        j->verify_diffs = vst.items;
        j->verified = vst.items == 0;
        if (!j->verified)
            job_fail(j, xfmt("PV %s: verify: %lld item(s) differ between %s and the DR copy "
                             "after the sync (source changing? use snapshot_dir)",
                             j->name, vst.items, j->src));
    }
    spawn_result_free(&res);
}

/* ------------------------------------------------------------ batches */
typedef struct batch_ctx {
    run *r;
    const rb_task *t;
    const char **rels;
} batch_ctx;

static void on_batch_line(void *ctx, const char *line, size_t len)
{
    (void)len;
    batch_ctx *b = ctx;
    rc_item it;
    if (rc_item_parse(line, &it) < 0)
        return;                       /* --stats lines: per-volume figures come from items */
    long o = rc_item_owner(it.name, b->rels, b->t->n);
    if (o < 0)
        return;                       /* an implied parent directory: nobody's data */
    rb_stats_item(&b->r->jobs[b->t->idx[o]].st, &it);
}

/* Re-runs a volume on its own after its batch failed, keeping what the
 * batch already did in its figures. */
static void rerun_alone(run *r, job *j, const char *cp)
{
    rc_stats before = j->st;
    double d = j->duration;
    run_job(r, j, cp);
    rb_stats_add(&j->st, &before);
    j->duration += d;
}

static void run_batch(run *r, const rb_task *t, const char *cp)
{
    batch_ctx b = { .r = r, .t = t, .rels = calloc(t->n, sizeof(char *)) };
    rc_conn c = r->conn;
    c.control_path = cp;
    rc_argv a = { 0 };
    char *err = NULL;
    int ok = -1;
    if (b.rels) {
        for (size_t i = 0; i < t->n; i++)
            b.rels[i] = r->jobs[t->idx[i]].vol.rel;
        ok = rc_sync_batch_argv(&c, &r->so, t->src_base, b.rels, t->n, t->dest_base, &a, &err);
    }
    free(err);
    if (ok < 0) {                     /* cannot batch these: one by one */
        rc_argv_free(&a);
        free(b.rels);
        for (size_t i = 0; i < t->n; i++)
            run_job(r, &r->jobs[t->idx[i]], cp);
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        job *j = &r->jobs[t->idx[i]];
        memset(&j->st, 0, sizeof j->st);
        j->batched = true;
    }
    spawn_opts so = { .on_stdout_line = on_batch_line, .cb_ctx = &b, .tail_max = 16 * 1024 };
    spawn_result res;
    time_t start = time(NULL);
    for (size_t i = 0; i < t->n; i++)
        rb_when_start(&r->jobs[t->idx[i]].when, start);
    spawn_run(rc_argv_get(&a), &so, &res);
    time_t end = time(NULL);
    rc_argv_free(&a);
    for (size_t i = 0; i < t->n; i++) {
        job *j = &r->jobs[t->idx[i]];
        rb_when_end(&j->when, end);
        j->duration = res.duration_s;
        j->st.have_stats = true;
    }
    if (res.spawn_errno) {
        for (size_t i = 0; i < t->n; i++) {
            job *j = &r->jobs[t->idx[i]];
            job_fail(j, xfmt("PV %s: cannot run rsync: %s (is rsync installed on this host?)",
                             j->name, strerror(res.spawn_errno)));
        }
    } else if (spawn_ok(&res)) {
        for (size_t i = 0; i < t->n; i++)
            r->jobs[t->idx[i]].rc = 0;
    } else {
        /* which volume broke it is not reliably in rsync's output: each
         * volume on its own gets its own status and error */
        for (size_t i = 0; i < t->n; i++)
            rerun_alone(r, &r->jobs[t->idx[i]], cp);
    }
    spawn_result_free(&res);
    free(b.rels);
}

/* Splits the runnable jobs into tasks (lib/dr/rsync_batch.h).  Batching only
 * for plain syncs: not for removals, a verify pass (it runs per volume) or
 * a per-volume timeout.  Returns false when out of memory. */
static bool plan_tasks(run *r, size_t par, long long batch_opt, size_t runnable)
{
    bool can = !r->absent && !(r->verify && !r->check) && r->volume_timeout == 0;
    rb_vol *v = calloc(r->njobs + 1, sizeof *v);
    if (!v)
        return false;
    for (size_t i = 0; i < r->njobs; i++) {
        const job *j = &r->jobs[i];
        v[i] = (rb_vol){ .src = j->src, .dest = j->vol.dest_dir, .rel = j->vol.rel,
                         .runnable = !j->error && !j->skipped };
    }
    int rc = rb_plan_tasks(v, r->njobs, rb_batch_size(batch_opt, runnable, par), can, &r->plan);
    free(v);
    return rc == 0;
}

typedef struct worker_arg {
    run *r;
    size_t id;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *wa = p;
    run *r = wa->r;
    const char *cp = sm_pool_path(&r->pool, wa->id);
    for (;;) {
        pthread_mutex_lock(&r->lock);
        size_t i = r->next++;
        pthread_mutex_unlock(&r->lock);
        if (i >= r->plan.n)
            break;
        const rb_task *t = &r->plan.tasks[i];
        if (t->n > 1)
            run_batch(r, t, cp);
        else if (t->n == 1)
            run_job(r, &r->jobs[t->idx[0]], cp);
    }
    return NULL;
}

/* ------------------------------------------------------------ inspect */
/* state=inspect, on the DR storage host: the volume's DR copy must be an
 * existing directory at exactly dr_root/rel (no symlink on the way: the
 * rule a sync obeys) holding at least one entry. */
static void inspect_job(job *j)
{
    struct stat sb;
    if (stat(j->vol.dest_dir, &sb) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            job_fail(j, xfmt("PV %s: no DR copy: no directory %s", j->name, j->vol.dest_dir));
        else
            job_fail(j, xfmt("PV %s: DR copy %s: %s", j->name, j->vol.dest_dir, strerror(errno)));
        return;
    }
    char *err = NULL;
    char *real = sp_check_local(j->prof->dr_root, j->vol.dest_dir, j->vol.rel, "DR copy", &err);
    if (!real) {
        job_fail(j, xfmt("PV %s: %s", j->name, err ? err : "out of memory"));
        free(err);
        return;
    }
    j->exists = true;
    if (ds_walk(real, &j->ds, &err) < 0)
        job_fail(j, xfmt("PV %s: DR copy: %s", j->name, err ? err : "out of memory"));
    else if (j->ds.entries == 0)
        job_fail(j, xfmt("PV %s: DR copy: directory %s is empty", j->name, j->vol.dest_dir));
    free(err);
    free(real);
}

/* ------------------------------------------------------------ results */
static char *dest_ref(const run *r, const job *j)
{
    char *h = rc_dest_host(&r->conn, true);
    char *s = xfmt("%s:%s", h ? h : "", j->vol.dest_dir);
    free(h);
    return s;
}

/* An rb_when stamp as RFC 3339 UTC, null when no rsync ran. */
static json_t *when_json(time_t t)
{
    if (t <= 0)
        return json_null();
    char buf[XTIME_RFC3339_LEN];
    xtime_rfc3339(t, buf);
    return json_string(buf);
}

/* state=rewrite / inspect: no rsync ran, no figures of one */
static json_t *job_result_local(const run *r, const job *j)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(j->name));
    json_object_set_new(o, "storage_class", json_string(j->cls ? j->cls : ""));
    json_object_set_new(o, "src", j->vol.src_dir ? json_string(j->vol.src_dir) : json_null());
    json_object_set_new(o, "dest", j->vol.dest_dir ? json_string(j->vol.dest_dir) : json_null());
    json_object_set_new(o, "dr_path", j->vol.dr_path ? json_string(j->vol.dr_path) : json_null());
    json_object_set_new(o, "changed", json_false());
    json_object_set_new(o, "skipped", json_boolean(j->skipped));
    json_object_set_new(o, "ok", json_boolean(!j->error && !j->skipped));
    if (r->mode == MODE_INSPECT) {
        json_object_set_new(o, "exists", json_boolean(j->exists));
        json_object_set_new(o, "entries", json_integer(j->ds.entries));
        json_object_set_new(o, "files", json_integer(j->ds.files));
        json_object_set_new(o, "bytes", json_integer(j->ds.bytes));
    }
    json_object_set_new(o, "error", j->error ? json_string(j->error) : json_null());
    return o;
}

static json_t *job_result(const run *r, const job *j)
{
    if (r->mode == MODE_REWRITE || r->mode == MODE_INSPECT)
        return job_result_local(r, j);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(j->name));
    json_object_set_new(o, "storage_class", json_string(j->cls ? j->cls : ""));
    json_object_set_new(o, "src", j->vol.src_dir ? json_string(j->src ? j->src : j->vol.src_dir)
                                                 : json_null());
    if (j->vol.dest_dir) {
        char *d = dest_ref(r, j);
        json_object_set_new(o, "dest", json_string(d));
        free(d);
    } else {
        json_object_set_new(o, "dest", json_null());
    }
    json_object_set_new(o, "dr_path", j->vol.dr_path ? json_string(j->vol.dr_path) : json_null());
    bool changed = !j->skipped && j->st.items > 0;
    json_object_set_new(o, "changed", json_boolean(changed));
    json_object_set_new(o, "skipped", json_boolean(j->skipped));
    json_object_set_new(o, "ok", json_boolean(!j->error && !j->skipped));
    if (r->absent)
        json_object_set_new(o, "removed", json_boolean(!j->error && !j->skipped && j->st.deletions > 0));
    else
        json_object_set_new(o, "synced", json_boolean(!j->error && !j->skipped && !r->check));
    json_object_set_new(o, "bytes_sent", json_integer(j->st.bytes_sent));
    json_object_set_new(o, "bytes_received", json_integer(j->st.bytes_received));
    json_object_set_new(o, "files_transferred", json_integer(j->st.files_transferred));
    json_object_set_new(o, "files_deleted", json_integer(j->st.deletions));
    json_object_set_new(o, "transferred_size", json_integer(j->st.transferred_size));
    json_object_set_new(o, "items_changed", json_integer(j->st.items));
    json_object_set_new(o, "duration_s", json_real((double)(long long)(j->duration * 1000) / 1000.0));
    json_object_set_new(o, "rc", j->rc >= 0 ? json_integer(j->rc) : json_null());
    json_object_set_new(o, "batched", json_boolean(j->batched));
    json_object_set_new(o, "started_at", when_json(j->when.started));
    json_object_set_new(o, "finished_at", when_json(j->when.started ? j->when.finished : 0));
    json_object_set_new(o, "error", j->error ? json_string(j->error) : json_null());
    if (j->stderr_tail)
        json_object_set_new(o, "stderr_tail", json_string(j->stderr_tail));
    if (j->warning)
        json_object_set_new(o, "warning", json_string(j->warning));
    if (r->verify && !r->absent)
        json_object_set_new(o, "verified", json_boolean(!j->error && !j->skipped &&
                                                        (r->check ? j->st.items == 0 : j->verified)));
    return o;
}

static void job_free(job *j)
{
    free(j->name);
    free(j->uid);
    free(j->cls);
    sp_volume_free(&j->vol);
    free(j->src);
    json_decref(j->pv_dr);
    free(j->error);
    free(j->stderr_tail);
    free(j->warning);
}

/* ------------------------------------------------------------ main */
static int default_parallel(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    n *= 2;
    return (int)(n < 2 ? 2 : n > 8 ? 8 : n);
}

static void remove_tmp(const char *tmpdir, const char *empty)
{
    if (empty)
        rmdir(empty);
    if (tmpdir)
        rmdir(tmpdir);
}

int main(int argc, char **argv)
{
    module m;
    mod_init(&m, &spec, argc, argv);

    run r = { .m = &m };
    pthread_mutex_init(&r.lock, NULL);
    const char *state = mod_str(&m, "state");
    r.mode = !strcmp(state, "absent")    ? MODE_ABSENT
             : !strcmp(state, "rewrite") ? MODE_REWRITE
             : !strcmp(state, "inspect") ? MODE_INSPECT
                                         : MODE_PRESENT;
    r.absent = r.mode == MODE_ABSENT;
    /* present/absent run rsync to dr_host; rewrite and inspect stay on this host */
    bool remote = r.mode == MODE_PRESENT || r.mode == MODE_ABSENT;
    bool dr_side = !strcmp(mod_str(&m, "pv_side"), "dr");
    if (remote && !mod_str(&m, "dr_host"))
        mod_fail(&m, "dr_host is required for state=%s (the DR storage host rsync writes to)", state);
    if (dr_side && (r.mode == MODE_PRESENT || r.mode == MODE_REWRITE))
        mod_fail(&m, "pv_side=dr (volumes are DR PVs) is only for state=absent and state=inspect, "
                     "not state=%s", state);
    r.check = m.check_mode;
    r.verify = !strcmp(mod_str(&m, "verify"), "checksum");
    r.conn = (rc_conn){
        .host = mod_str(&m, "dr_host"),
        .user = mod_str(&m, "dr_user"),
        .port = (int)mod_int(&m, "dr_port"),
        .ssh_key = mod_str(&m, "ssh_key"),
        .known_hosts = mod_str(&m, "known_hosts"),
        .host_key_checking = mod_str(&m, "host_key_checking"),
        .connect_timeout = (int)mod_int(&m, "connect_timeout"),
    };
    r.so = (rc_sync_opts){
        .acls = mod_bool(&m, "acls"),
        .xattrs = mod_bool(&m, "xattrs"),
        .dry_run = m.check_mode,
        /* check mode + verify=checksum: the dry run itself compares contents,
         * so items_changed says what differs by checksum (failover checks) */
        .checksum = m.check_mode && !strcmp(mod_str(&m, "verify"), "checksum"),
        .timeout = (int)mod_int(&m, "timeout"),
        .bwlimit = mod_str(&m, "bwlimit"),
        .rsync_path = mod_str(&m, "rsync_path"),
    };
    r.volume_timeout = (double)mod_int(&m, "volume_timeout");

    /* ---- validate everything before the first remote action */
    char *err = NULL;
    if (remote && rc_check_conn(&r.conn, &err) < 0)
        mod_fail(&m, "%s", err);
    if (!remote && mod_str(&m, "snapshot_dir"))
        mod_fail(&m, "snapshot_dir is only for state=present");
    if (!remote)
        ;   /* no ssh, no rsync: their options are not used */
    else if (r.conn.ssh_key && access(r.conn.ssh_key, R_OK) != 0)
        mod_fail(&m, "ssh_key '%s': cannot read it on this host: %s", r.conn.ssh_key,
                 strerror(errno));
    if (remote && r.conn.known_hosts && access(r.conn.known_hosts, R_OK) != 0 &&
        strcmp(r.conn.host_key_checking, "yes") == 0)
        mod_fail(&m, "known_hosts '%s': cannot read it on this host: %s", r.conn.known_hosts,
                 strerror(errno));
    if (remote) {
        rc_argv probe = { 0 };
        if (rc_sync_argv(&r.conn, &r.so, "/x", "/y", &probe, &err) < 0)
            mod_fail(&m, "%s", err);
        rc_argv_free(&probe);
    }
    if (mod_int(&m, "timeout") < 0 || mod_int(&m, "volume_timeout") < 0)
        mod_fail(&m, "timeout and volume_timeout must be >= 0");
    long long par = mod_int(&m, "parallel");
    if (par < 0 || par > MAX_PARALLEL)
        mod_fail(&m, "parallel %lld: must be 0 (automatic) to %d", par, MAX_PARALLEL);
    if (par == 0)
        par = default_parallel();
    long long batch_opt = mod_int(&m, "batch");
    if (batch_opt < 0)
        mod_fail(&m, "batch %lld: must be 0 (automatic), 1 (one rsync per volume) or more", batch_opt);
    if (r.absent) {
        json_t *pe = mod_param(&m, "pv_exists_on_primary");
        if (!json_is_false(pe))
            mod_fail(&m, "state=absent removes data on the DR server: pass "
                         "pv_exists_on_primary: false once the PV is confirmed gone from the "
                         "primary cluster (got %s)", json_is_true(pe) ? "true" : "nothing");
        if (mod_str(&m, "snapshot_dir"))
            mod_fail(&m, "snapshot_dir is only for state=present");
    }
    char *snapshot_rel = NULL;
    if (mod_str(&m, "snapshot_dir")) {
        snapshot_rel = sp_norm_rel(mod_str(&m, "snapshot_dir"), "snapshot_dir", &err);
        if (!snapshot_rel)
            mod_fail(&m, "%s", err);
    }

    json_t *profiles = mod_param(&m, "storage_profiles");
    size_t nprof = json_object_size(profiles);
    sp_profile *profs = calloc(nprof + 1, sizeof(*profs));
    const char **classes = calloc(nprof + 1, sizeof(char *));
    {
        size_t i = 0;
        const char *cls;
        json_t *pobj;
        json_object_foreach(profiles, cls, pobj) {
            if (sp_profile_parse(cls, pobj, &profs[i], &err) < 0) {
                for (size_t k = 0; k < i; k++)
                    sp_profile_free(&profs[k]);
                free(profs);
                free(classes);
                free(snapshot_rel);
                mod_fail(&m, "%s", err);
            }
            if (dr_side && sp_profile_dr_side(&profs[i]) < 0)
                mod_fail(&m, "out of memory");
            classes[i] = profs[i].class_name;
            i++;
        }
    }

    json_t *vols = mod_param(&m, "volumes");
    r.njobs = json_array_size(vols);
    r.jobs = calloc(r.njobs + 1, sizeof(job));
    for (size_t i = 0; i < r.njobs; i++)
        plan_volume(&r, &r.jobs[i], json_array_get(vols, i), i, profs, classes, nprof, snapshot_rel);
    /* no volume directory rsync writes or removes may hold another's
     * (batched or not) */
    if (remote) {
        check_overlaps(&r, mod_param(&m, "keep_volumes"), profs, nprof, false);
        if (!r.absent)
            check_overlaps(&r, NULL, profs, nprof, true);
    }

    size_t runnable = 0;
    for (size_t i = 0; i < r.njobs; i++)
        runnable += !r.jobs[i].error && !r.jobs[i].skipped;
    if (r.mode == MODE_INSPECT) {
        for (size_t i = 0; i < r.njobs; i++)
            if (!r.jobs[i].error && !r.jobs[i].skipped)
                inspect_job(&r.jobs[i]);
    }
    if (!remote)
        runnable = 0;     /* nothing to connect to */

    /* ---- connect, check DR paths, run */
    char tmpl[] = "/tmp/ocpvdr-nfs.XXXXXX";
    char *tmpdir = NULL, *empty = NULL;
    if (runnable) {
        tmpdir = mkdtemp(tmpl);
        if (!tmpdir && (mod_bool(&m, "ssh_multiplex") || r.absent))
            mod_fail(&m, "cannot create a private temporary directory in /tmp: %s", strerror(errno));
        if (r.absent) {
            empty = xfmt("%s/empty", tmpdir);
            if (mkdir(empty, 0700) < 0)
                mod_fail(&m, "cannot create %s: %s", empty, strerror(errno));
            r.empty_dir = empty;
        }
        char *conn_err = NULL;
        if (mod_bool(&m, "ssh_multiplex")) {
            /* the first master is opened by the DR path check itself */
            if (sm_pool_init(&r.pool, &r.conn, sm_count((size_t)par, runnable)) < 0)
                mod_fail(&m, "out of memory");
            char *cp0 = xfmt("%s/cm0", tmpdir);
            conn_err = cp0 ? check_remote_paths(&r, cp0) : strdup("out of memory");
            if (!conn_err)
                conn_err = sm_pool_start(&r.pool, tmpdir, 1);
        } else {
            conn_err = check_remote_paths(&r, NULL);
        }
        if (conn_err) {
            for (size_t i = 0; i < r.njobs; i++) {
                job *j = &r.jobs[i];
                if (!j->error && !j->skipped) {
                    job_fail(j, xfmt("PV %s: %s", j->name, conn_err));
                    j->rc = 255;
                }
            }
            free(conn_err);
        } else {
            size_t still = 0;
            for (size_t i = 0; i < r.njobs; i++)
                still += !r.jobs[i].error && !r.jobs[i].skipped;
            if (!plan_tasks(&r, (size_t)par, batch_opt, still))
                mod_fail(&m, "out of memory");
            size_t nthreads = (size_t)par < r.plan.n ? (size_t)par : r.plan.n;
            pthread_t *th = calloc(nthreads, sizeof(*th));
            worker_arg *wa = calloc(nthreads, sizeof(*wa));
            size_t started = 0;
            for (size_t t = 0; t < nthreads; t++) {
                wa[t] = (worker_arg){ .r = &r, .id = t };
                if (pthread_create(&th[t], NULL, worker, &wa[t]) == 0)
                    started++;
                else
                    break;
            }
            if (started == 0 && r.plan.n > 0)
                worker(&(worker_arg){ .r = &r, .id = 0 });
            for (size_t t = 0; t < started; t++)
                pthread_join(th[t], NULL);
            free(th);
            free(wa);
            rb_plan_free(&r.plan);
        }
        sm_pool_stop(&r.pool);
        remove_tmp(tmpdir, empty);
    }

    /* ---- results */
    json_t *out = json_array(), *pvs = json_array();
    size_t nfail = 0, nskip = 0, nchanged = 0;
    json_t *failed_names = json_array();
    for (size_t i = 0; i < r.njobs; i++) {
        job *j = &r.jobs[i];
        json_array_append_new(out, job_result(&r, j));
        if (j->skipped)
            nskip++;
        else if (j->error) {
            nfail++;
            json_array_append_new(failed_names, json_string(j->error));
        } else {
            if (j->st.items > 0)
                nchanged++;
            if (j->pv_dr)
                json_array_append(pvs, j->pv_dr);
        }
        if (j->warning)
            mod_warn(&m, "PV %s: %s", j->name, j->warning);
    }
    mod_set(&m, "volumes", out);
    {
        char now[XTIME_RFC3339_LEN];
        xtime_rfc3339(time(NULL), now);
        mod_set(&m, "host_time", json_string(now));
    }
    mod_set(&m, "pvs", pvs);
    mod_set(&m, "summary", json_pack("{sI,sI,sI,sI,sI}", "total", (json_int_t)r.njobs,
                                     "ok", (json_int_t)(r.njobs - nfail - nskip),
                                     "failed", (json_int_t)nfail, "skipped", (json_int_t)nskip,
                                     "changed", (json_int_t)nchanged));
    mod_changed(&m, nchanged > 0);

    for (size_t i = 0; i < r.njobs; i++)
        job_free(&r.jobs[i]);
    free(r.jobs);
    for (size_t i = 0; i < nprof; i++)
        sp_profile_free(&profs[i]);
    free(profs);
    free(classes);
    free(snapshot_rel);
    free(empty);
    free(err);
    pthread_mutex_destroy(&r.lock);

    if (nfail > 0) {
        char *first = NULL;
        json_t *f0 = json_array_get(failed_names, 0);
        first = strdup(json_string_value(f0));
        json_decref(failed_names);
        if (mod_bool(&m, "fail_on_error")) {
            mod_set(&m, "failed_count", json_integer((json_int_t)nfail));
            char msg[2048];
            snprintf(msg, sizeof msg, "%zu of %zu volume(s) failed; first: %s", nfail, r.njobs,
                     first ? first : "?");
            free(first);
            mod_fail(&m, "%s", msg);
        }
        mod_warn(&m, "%zu of %zu volume(s) failed; first: %s", nfail, r.njobs, first ? first : "?");
        free(first);
    } else {
        json_decref(failed_names);
    }
    mod_exit(&m);
}
