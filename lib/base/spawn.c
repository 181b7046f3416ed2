/* spawn.c - argv process spawning with bounded output capture, stdout line
 * callbacks, timeouts and exit-status reporting (see spawn.h).
 *
 * fork + exec (only async-signal-safe calls in the child, exec errors sent
 * back over a close-on-exec pipe), every descriptor created O_CLOEXEC; a
 * poll() loop multiplexes stdin/stdout/stderr and a
 * pidfd for the child (falling back to short waitpid polls when pidfds are
 * unavailable).
 */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdnoreturn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_TAIL   (64 * 1024)
#define MAX_LINE       (64 * 1024)   /* longer stdout lines are cut for the callback */
#define READ_CHUNK     (64 * 1024)

typedef struct tail {
    char *buf;
    size_t len, cap;
    size_t total;
} tail;

typedef struct linebuf {
    char *buf;
    size_t len, cap;
    bool overflow;        /* current line exceeded MAX_LINE: rest dropped */
} linebuf;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tail_init(tail *t, size_t cap)
{
    t->buf = malloc(cap + 1);
    if (!t->buf)
        return -1;
    t->buf[0] = '\0';
    t->len = 0;
    t->cap = cap;
    t->total = 0;
    return 0;
}

static void tail_add(tail *t, const char *data, size_t n)
{
    t->total += n;
    if (n >= t->cap) {
        memcpy(t->buf, data + (n - t->cap), t->cap);
        t->len = t->cap;
    } else if (t->len + n <= t->cap) {
        memcpy(t->buf + t->len, data, n);
        t->len += n;
    } else {
        size_t keep = t->cap - n;
        memmove(t->buf, t->buf + (t->len - keep), keep);
        memcpy(t->buf + keep, data, n);
        t->len = t->cap;
    }
    t->buf[t->len] = '\0';
}

static void line_emit(linebuf *lb, const spawn_opts *o)
{
    if (lb->buf) {
        lb->buf[lb->len] = '\0';
        o->on_stdout_line(o->cb_ctx, lb->buf, lb->len);
    }
    lb->len = 0;
    lb->overflow = false;
}

static void line_feed(linebuf *lb, const spawn_opts *o, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            line_emit(lb, o);
            continue;
        }
        if (lb->overflow)
            continue;
        if (lb->len + 1 >= lb->cap) {
            size_t ncap = lb->cap ? lb->cap * 2 : 256;
            if (ncap > MAX_LINE + 1)
                ncap = MAX_LINE + 1;
            if (lb->len + 1 >= ncap) {
                lb->overflow = true;
                continue;
            }
            char *nb = realloc(lb->buf, ncap);
            if (!nb) {
                lb->overflow = true;
                continue;
            }
            lb->buf = nb;
            lb->cap = ncap;
        }
        lb->buf[lb->len++] = data[i];
    }
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        fcntl((int)fd, F_SETFD, FD_CLOEXEC);
        return (int)fd;
    }
#else
    (void)pid;
#endif
    return -1;
}

/* Reads what is available from *fd into t (and the line callback).  Closes
 * *fd at EOF or on error. */
static void drain(int *fd, tail *t, linebuf *lb, const spawn_opts *o, char *chunk)
{
    for (;;) {
        ssize_t n = read(*fd, chunk, READ_CHUNK);
        if (n > 0) {
            tail_add(t, chunk, (size_t)n);
            if (lb)
                line_feed(lb, o, chunk, (size_t)n);
            if (n < READ_CHUNK)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close_fd(fd);   /* EOF or hard error */
        return;
    }
}

/* Writes stdin data without letting SIGPIPE kill us when the child closed
 * its end: SIGPIPE is blocked for this thread around the write and a signal
 * it raised is consumed. */
static void feed_stdin(int *fd, const char *data, size_t len, size_t *off)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigset_t pending;
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);

    while (*off < len) {
        ssize_t n = write(*fd, data + *off, len - *off);
        if (n > 0) {
            *off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        *off = len;     /* EPIPE or other error: the child does not want more */
        if (errno == EPIPE && !was_pending) {
            struct timespec zero = { 0, 0 };
            while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
        break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (*off >= len)
        close_fd(fd);
}

static void record_status(spawn_result *r, int st)
{
    if (WIFEXITED(st)) {
        r->exit_code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        r->exit_code = -1;
        r->term_signal = WTERMSIG(st);
    }
}

static void signal_child(pid_t pid, int sig)
{
    if (kill(-pid, sig) < 0)
        kill(pid, sig);
}

/* In the forked child: only async-signal-safe calls until exec.  On failure
 * the errno goes up the close-on-exec error pipe. */
static noreturn void child_exec(const char *const argv[], const spawn_opts *o, char *const *envp,
                                int in_fd, int out_fd, int err_fd, int errpipe)
{
    int e;
    setpgid(0, 0);
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGPIPE, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
        goto fail;
    if (o->cwd && chdir(o->cwd) < 0)
        goto fail;
    if (strchr(argv[0], '/'))
        execve(argv[0], (char *const *)argv, envp);
    else
        execvpe(argv[0], (char *const *)argv, envp);
fail:
    e = errno;
    while (write(errpipe, &e, sizeof e) < 0 && errno == EINTR)
        ;
    _exit(127);
}

int spawn_run(const char *const argv[], const spawn_opts *opts, spawn_result *r)
{
    static const spawn_opts none = { 0 };
    const spawn_opts *o = opts ? opts : &none;
    size_t cap = o->tail_max ? o->tail_max : DEFAULT_TAIL;
    double start = now_s();

    memset(r, 0, sizeof(*r));
    r->exit_code = -1;
    tail tout = { 0 }, terr = { 0 };
    if (tail_init(&tout, cap) < 0 || tail_init(&terr, cap) < 0) {
        free(tout.buf);
        free(terr.buf);
        r->out = strdup("");
        r->err = strdup("");
        r->spawn_errno = ENOMEM;
        return -1;
    }

    int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, inp[2] = { -1, -1 };
    int saved_errno = 0;
    pid_t pid = -1;

    if (!argv || !argv[0]) {
        saved_errno = EINVAL;
        goto not_started;
    }
    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        saved_errno = errno;
        goto not_started;
    }
    if (o->stdin_data) {
        if (pipe2(inp, O_CLOEXEC) < 0) {
            saved_errno = errno;
            goto not_started;
        }
    } else {
        inp[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (inp[0] < 0) {
            saved_errno = errno;
            goto not_started;
        }
    }

    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0) {
        saved_errno = errno;
        goto not_started;
    }
    char *const *envp = o->envp ? (char *const *)o->envp : environ;
    pid = fork();
    if (pid < 0) {
        saved_errno = errno;
        close(ep[0]);
        close(ep[1]);
        goto not_started;
    }
    if (pid == 0)
        child_exec(argv, o, envp, inp[0], outp[1], errp[1], ep[1]);
    close(ep[1]);
    /* also done in the child: whichever runs first, the group exists before
     * we might signal it */
    setpgid(pid, pid);
    int child_errno = 0;
    ssize_t got;
    while ((got = read(ep[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR)
        ;
    close(ep[0]);
    if (got == (ssize_t)sizeof child_errno) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        saved_errno = child_errno ? child_errno : ECHILD;
        goto not_started;
    }
    close_fd(&inp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[1]);

    char *chunk = malloc(READ_CHUNK);
    linebuf lb = { 0 };
    linebuf *lbp = o->on_stdout_line ? &lb : NULL;
    int pidfd = open_pidfd(pid);
    bool reaped = false;
    int kill_stage = 0;   /* 0 none, 1 SIGTERM sent, 2 SIGKILL sent */
    double deadline = o->timeout_s > 0 ? start + o->timeout_s : 0;
    double grace = o->kill_grace_s > 0 ? o->kill_grace_s : 2.0;
    size_t in_off = 0;

    set_nonblock(outp[0]);
    set_nonblock(errp[0]);
    if (inp[1] >= 0)
        set_nonblock(inp[1]);
    if (!chunk) {
        /* cannot capture: stop the child rather than block it on a full pipe */
        signal_child(pid, SIGKILL);
        close_fd(&outp[0]);
        close_fd(&errp[0]);
        close_fd(&inp[1]);
    }

    for (;;) {
        if (!reaped) {
            int st;
            pid_t w = waitpid(pid, &st, WNOHANG);
            if (w == pid) {
                record_status(r, st);
                reaped = true;
                close_fd(&pidfd);
                close_fd(&inp[1]);
            }
        }
        if (reaped && outp[0] < 0 && errp[0] < 0)
            break;

        int timeout_ms = -1;
        if (reaped) {
            timeout_ms = 0;        /* only take what is already there */
        } else {
            if (pidfd < 0)
                timeout_ms = 20;
            if (deadline > 0) {
                double left = deadline - now_s();
                if (left <= 0) {
                    if (kill_stage == 0) {
                        r->timed_out = true;
                        signal_child(pid, SIGTERM);
                        kill_stage = 1;
                        deadline = now_s() + grace;
                    } else if (kill_stage == 1) {
                        signal_child(pid, SIGKILL);
                        kill_stage = 2;
                        deadline = 0;
                    }
                    continue;
                }
                int ms = (int)(left * 1000.0) + 1;
                if (timeout_ms < 0 || ms < timeout_ms)
                    timeout_ms = ms;
            }
        }

        struct pollfd pf[4];
        int n = 0, i_out = -1, i_err = -1, i_in = -1, i_pid = -1;
        if (outp[0] >= 0) { i_out = n; pf[n++] = (struct pollfd){ .fd = outp[0], .events = POLLIN }; }
        if (errp[0] >= 0) { i_err = n; pf[n++] = (struct pollfd){ .fd = errp[0], .events = POLLIN }; }
        if (inp[1] >= 0)  { i_in = n;  pf[n++] = (struct pollfd){ .fd = inp[1], .events = POLLOUT }; }
        if (pidfd >= 0)   { i_pid = n; pf[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN }; }

        int pr = poll(pf, (nfds_t)n, timeout_ms);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            break;      /* cannot happen with valid fds; fall through to reap */
        }
        if (pr == 0) {
            if (reaped) {
                /* child gone and nothing pending: a grandchild holds the pipe */
                close_fd(&outp[0]);
                close_fd(&errp[0]);
                break;
            }
            continue;
        }
        if (i_out >= 0 && pf[i_out].revents)
            drain(&outp[0], &tout, lbp, o, chunk);
        if (i_err >= 0 && pf[i_err].revents)
            drain(&errp[0], &terr, NULL, o, chunk);
        if (i_in >= 0 && pf[i_in].revents) {
            if (pf[i_in].revents & (POLLERR | POLLHUP))
                close_fd(&inp[1]);
            else
                feed_stdin(&inp[1], o->stdin_data, o->stdin_len, &in_off);
        }
        (void)i_pid;    /* readiness only wakes us; waitpid above reaps */
    }

    close_fd(&outp[0]);
    close_fd(&errp[0]);
    close_fd(&inp[1]);
    close_fd(&pidfd);
    if (!reaped) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        record_status(r, st);
    }
    if (lbp && (lb.len > 0 || lb.overflow))
        line_emit(&lb, o);
    free(lb.buf);
    free(chunk);

    r->out = tout.buf;
    r->out_len = tout.len;
    r->out_total = tout.total;
    r->err = terr.buf;
    r->err_len = terr.len;
    r->err_total = terr.total;
    r->duration_s = now_s() - start;
    return 0;

not_started:
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    close_fd(&inp[0]);
    close_fd(&inp[1]);
    r->spawn_errno = saved_errno;
    r->out = tout.buf;
    r->err = terr.buf;
    r->duration_s = now_s() - start;
    return -1;
}

void spawn_result_free(spawn_result *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
    r->out_len = r->err_len = 0;
}

bool spawn_ok(const spawn_result *r)
{
    return r->spawn_errno == 0 && !r->timed_out && r->term_signal == 0 && r->exit_code == 0;
}

const char *spawn_describe(const spawn_result *r, const char *prog, char *buf, size_t len)
{
    if (r->spawn_errno)
        snprintf(buf, len, "cannot run %s: %s", prog ? prog : "program", strerror(r->spawn_errno));
    else if (r->timed_out)
        snprintf(buf, len, "%s timed out after %.0f s", prog ? prog : "program", r->duration_s);
    else if (r->term_signal)
        snprintf(buf, len, "%s killed by signal %d", prog ? prog : "program", r->term_signal);
    else
        snprintf(buf, len, "%s exited with status %d", prog ? prog : "program", r->exit_code);
    return buf;
}

char *spawn_last_lines(const char *text, int max_lines)
{
    if (!text)
        return strdup("");
    size_t end = strlen(text);
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r'))
        end--;
    size_t start = end;
    int lines = 0;
    while (start > 0) {
        if (text[start - 1] == '\n') {
            if (++lines >= max_lines)
                break;
        }
        start--;
    }
    if (max_lines <= 0)
        start = end;
    return strndup(text + start, end - start);
}

char *spawn_sh_quote(const char *const argv[])
{
    size_t need = 1;
    for (size_t i = 0; argv[i]; i++) {
        need += 3;                           /* quotes + separator */
        for (const char *p = argv[i]; *p; p++)
            need += (*p == '\'') ? 4 : 1;    /* ' -> '\'' */
    }
    char *s = malloc(need);
    if (!s)
        return NULL;
    char *w = s;
    for (size_t i = 0; argv[i]; i++) {
        if (i)
            *w++ = ' ';
        *w++ = '\'';
        for (const char *p = argv[i]; *p; p++) {
            if (*p == '\'') {
                memcpy(w, "'\\''", 4);
                w += 4;
            } else {
                *w++ = *p;
            }
        }
        *w++ = '\'';
    }
    *w = '\0';
    return s;
}
