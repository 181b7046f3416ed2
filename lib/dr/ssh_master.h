/* ssh_master.h - shared ssh connections (OpenSSH ControlMaster) to the DR
 * storage host: one authenticated connection carries up to
 * SM_SESSIONS_PER_MASTER parallel rsync/ssh sessions, so N volumes cost a
 * few handshakes, and an unreachable host fails once, fast.
 *
 * A pool holds the control socket paths of its masters (in a private
 * temporary directory the caller owns).  Masters persist (ControlPersist)
 * only SM_PERSIST_S seconds once idle, so they go away even if the caller
 * dies.  Every command is an argv (lib/dr/rsync_cmd.h builds the ssh options
 * from validated values); the argv builders are pure for unit tests.
 */
#ifndef OCPVDR_SSH_MASTER_H
#define OCPVDR_SSH_MASTER_H

#include "rsync_cmd.h"
#include "spawn.h"

#include <stddef.h>

#define SM_SESSIONS_PER_MASTER 8   /* sshd's default MaxSessions is 10 */
#define SM_PERSIST_S 120

typedef struct sm_pool {
    rc_conn conn;          /* borrowed strings; conn.control_path unused */
    char **paths;          /* per master; NULL entries when not connected */
    size_t n;
} sm_pool;

/* How many masters `parallel` sessions need: one per SM_SESSIONS_PER_MASTER,
 * at least 1, and just 1 when there are fewer runnable volumes than that
 * would make masters. */
size_t sm_count(size_t parallel, size_t runnable);

/* "ssh <opts for conn through control path cp>" (cp NULL: no sharing). */
void sm_ssh_argv(const rc_conn *conn, const char *cp, rc_argv *a);
/* Options that make this ssh the master at its control path. */
void sm_master_opts(rc_argv *a);
/* Full argv that starts a background master at cp (-N -f). */
void sm_start_argv(const rc_conn *conn, const char *cp, rc_argv *a);
/* Full argv that tells the master at cp to exit. */
void sm_stop_argv(const rc_conn *conn, const char *cp, rc_argv *a);

/* "<how it failed>: <last lines of stderr>" for a failed run of prog. */
char *sm_describe_failure(const spawn_result *res, const char *prog);

/* Allocates n empty slots.  0, or -1 when out of memory. */
int sm_pool_init(sm_pool *p, const rc_conn *conn, size_t n);
/* Starts masters first..n-1 at "<dir>/cm<i>".  NULL, or why the connection
 * failed (malloc'd, naming the host); started masters stay in the pool. */
char *sm_pool_start(sm_pool *p, const char *dir, size_t first);
/* The control path session i uses (round robin), NULL without masters. */
const char *sm_pool_path(const sm_pool *p, size_t i);
/* Stops every started master, removes its socket, frees the pool. */
void sm_pool_stop(sm_pool *p);

#endif
