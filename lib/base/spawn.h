/* spawn.h - run a program from an argv array (never through a shell).
 *
 * spawn_run() starts argv[0] (looked up in PATH when it has no '/'), feeds it
 * optional stdin data, captures stdout and stderr into bounded *tail* buffers
 * (the last N bytes of each, so a chatty program cannot exhaust memory while
 * the end of its output - where errors are - is kept), optionally hands every
 * complete stdout line to a callback, enforces a timeout (SIGTERM to the
 * child's process group, SIGKILL after a grace period) and reports how it
 * ended.  It is thread-safe: all descriptors are close-on-exec, so children
 * spawned concurrently from several threads never inherit each other's pipes.
 *
 * Note: lib/base/ is on the include path, so this header shadows the system
 * <spawn.h>; nothing here needs posix_spawn (fork + exec is used, with an
 * error pipe so exec failures come back as spawn_errno).
 *
 * The child runs in its own process group (so a timeout also stops its
 * helpers, e.g. rsync's ssh), with SIGPIPE reset to default.  When the direct
 * child has exited, spawn_run returns once no more output is immediately
 * available, even if a daemonized grandchild (ssh -f) still holds the pipes.
 *
 * spawn_sh_quote() is the one sanctioned way to build a command line for a
 * remote shell (ssh always hands the remote side a single string): every
 * argument is single-quoted.
 */
#ifndef OCPVDR_SPAWN_H
#define OCPVDR_SPAWN_H

#include <stdbool.h>
#include <stddef.h>

/* Called with each complete line of stdout (without the '\n'; a final
 * unterminated line is delivered too).  `line` is NUL-terminated. */
typedef void (*spawn_line_cb)(void *ctx, const char *line, size_t len);

typedef struct spawn_opts {
    const char *const *envp;     /* environment; NULL = inherit */
    const char *cwd;             /* working directory; NULL = inherit */
    const char *stdin_data;      /* bytes written to stdin; NULL = /dev/null */
    size_t stdin_len;
    size_t tail_max;             /* bytes kept of stdout and of stderr; 0 = 64 KiB */
    double timeout_s;            /* 0 = none */
    double kill_grace_s;         /* SIGTERM -> SIGKILL delay; 0 = 2 s */
    spawn_line_cb on_stdout_line;
    void *cb_ctx;
} spawn_opts;

typedef struct spawn_result {
    int exit_code;        /* exit status, or -1 when killed / not started */
    int term_signal;      /* signal that ended the child, or 0 */
    bool timed_out;       /* killed because timeout_s passed */
    int spawn_errno;      /* why it could not start (ENOENT: not found), or 0 */
    char *out;            /* NUL-terminated tail of stdout (never NULL after spawn_run) */
    size_t out_len;
    size_t out_total;     /* bytes the child wrote in all */
    char *err;            /* NUL-terminated tail of stderr */
    size_t err_len;
    size_t err_total;
    double duration_s;    /* wall time from start to reap */
} spawn_result;

/* Runs argv (NULL-terminated, argv[0] required) to completion.  Returns 0
 * when the child was started and reaped (look at exit_code/term_signal/
 * timed_out), -1 when it could not be started (spawn_errno says why; e.g.
 * ENOENT for a missing program).  Always fills *r; free with
 * spawn_result_free(). */
int spawn_run(const char *const argv[], const spawn_opts *opts, spawn_result *r);

void spawn_result_free(spawn_result *r);

/* true when the child ran and exited with status 0. */
bool spawn_ok(const spawn_result *r);

/* One-line description of how the run ended, for messages:
 * "exit 23", "killed by signal 9", "timed out after 30 s",
 * "cannot run rsync: No such file or directory".  Writes into buf. */
const char *spawn_describe(const spawn_result *r, const char *prog,
                           char *buf, size_t len);

/* The last `max_lines` lines of `text`, trailing newlines trimmed, as a
 * malloc'd string ("" when text is NULL or empty; NULL only when out of
 * memory). */
char *spawn_last_lines(const char *text, int max_lines);

/* Joins argv into one string for a POSIX remote shell, every element
 * single-quoted ('it'\''s').  malloc'd; NULL on allocation failure. */
char *spawn_sh_quote(const char *const argv[]);

#endif
