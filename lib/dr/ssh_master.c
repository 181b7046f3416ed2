/* ssh_master.c - starting, using and stopping shared ssh connections
 * (ControlMaster) to the DR storage host; see ssh_master.h.
 */
#include "ssh_master.h"
#include "xstr.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

size_t sm_count(size_t parallel, size_t runnable)
{
    size_t nm = (parallel + SM_SESSIONS_PER_MASTER - 1) / SM_SESSIONS_PER_MASTER;
    if (nm == 0 || nm > runnable)
        nm = 1;
    return nm;
}

void sm_ssh_argv(const rc_conn *conn, const char *cp, rc_argv *a)
{
    rc_conn c = *conn;
    c.control_path = cp;
    rc_argv_add(a, "ssh");
    rc_ssh_opts(&c, a);
}

void sm_master_opts(rc_argv *a)
{
    rc_argv_add(a, "-o");
    rc_argv_add(a, "ControlMaster=yes");
    rc_argv_add(a, "-o");
    rc_argv_addf(a, "ControlPersist=%d", SM_PERSIST_S);   /* idle masters go away even if we die */
}

static void add_dest(const rc_conn *conn, rc_argv *a)
{
    rc_argv_add(a, "--");
    char *h = rc_dest_host(conn, false);
    rc_argv_add(a, h ? h : "");
    free(h);
}

void sm_start_argv(const rc_conn *conn, const char *cp, rc_argv *a)
{
    sm_ssh_argv(conn, cp, a);
    sm_master_opts(a);
    rc_argv_add(a, "-N");
    rc_argv_add(a, "-f");
    add_dest(conn, a);
}

void sm_stop_argv(const rc_conn *conn, const char *cp, rc_argv *a)
{
    sm_ssh_argv(conn, cp, a);
    rc_argv_add(a, "-O");
    rc_argv_add(a, "exit");
    add_dest(conn, a);
}

char *sm_describe_failure(const spawn_result *res, const char *prog)
{
    char how[256];
    spawn_describe(res, prog, how, sizeof how);
    char *tail = spawn_last_lines(res->err, 3);
    char *s = (tail && *tail) ? xfmt("%s: %s", how, tail) : xfmt("%s", how);
    free(tail);
    return s;
}

int sm_pool_init(sm_pool *p, const rc_conn *conn, size_t n)
{
    memset(p, 0, sizeof *p);
    p->conn = *conn;
    p->conn.control_path = NULL;
    p->paths = calloc(n ? n : 1, sizeof(char *));
    if (!p->paths)
        return -1;
    p->n = n;
    return 0;
}

char *sm_pool_start(sm_pool *p, const char *dir, size_t first)
{
    for (size_t i = first; i < p->n; i++) {
        char *cp = xfmt("%s/cm%zu", dir, i);
        if (!cp)
            return strdup("out of memory");
        rc_argv a = { 0 };
        sm_start_argv(&p->conn, cp, &a);
        spawn_opts so = { .timeout_s = (p->conn.connect_timeout > 0 ? p->conn.connect_timeout : 30) + 15 };
        spawn_result res;
        spawn_run(rc_argv_get(&a), &so, &res);
        rc_argv_free(&a);
        if (!spawn_ok(&res)) {
            char *why = sm_describe_failure(&res, "ssh");
            char *msg = xfmt("cannot connect to DR host %s: %s", p->conn.host, why ? why : "?");
            free(why);
            spawn_result_free(&res);
            free(cp);
            return msg ? msg : strdup("cannot connect to DR host");
        }
        spawn_result_free(&res);
        p->paths[i] = cp;
    }
    return NULL;
}

const char *sm_pool_path(const sm_pool *p, size_t i)
{
    return p->n ? p->paths[i % p->n] : NULL;
}

void sm_pool_stop(sm_pool *p)
{
    for (size_t i = 0; p->paths && i < p->n; i++) {
        if (!p->paths[i])
            continue;
        rc_argv a = { 0 };
        sm_stop_argv(&p->conn, p->paths[i], &a);
        spawn_opts so = { .timeout_s = 15 };
        spawn_result res;
        spawn_run(rc_argv_get(&a), &so, &res);
        spawn_result_free(&res);
        rc_argv_free(&a);
        unlink(p->paths[i]);
        free(p->paths[i]);
    }
    free(p->paths);
    p->paths = NULL;
    p->n = 0;
}
