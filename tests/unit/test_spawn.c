/* test_spawn.c - unit tests for lib/base/spawn.c (argv spawning, bounded capture,
 * line callback, timeouts, stdin feeding, fd hygiene, remote-shell quoting).
 *
 * The child programs are this test binary itself re-executed in a helper
 * mode (`test_spawn --helper <mode> ...`), so every behaviour (exit codes,
 * floods of output, ignoring SIGTERM, leaving a grandchild behind) is exact
 * and does not depend on what the host has installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spawn.h"

static char self_exe[4096];

/* ------------------------------------------------------------ helper modes */
static int helper(int argc, char **argv)
{
    const char *mode = argv[2];
    if (!strcmp(mode, "exit"))
        return atoi(argv[3]);
    if (!strcmp(mode, "echo")) {          /* echo OUT ERR: one line to each */
        printf("%s\n", argv[3]);
        fflush(stdout);
        fprintf(stderr, "%s\n", argv[4]);
        return 0;
    }
    if (!strcmp(mode, "flood")) {         /* flood N: N lines "line <i>" */
        long n = atol(argv[3]);
        for (long i = 0; i < n; i++)
            printf("line %ld\n", i);
        return 0;
    }
    if (!strcmp(mode, "sleep")) {
        usleep((useconds_t)(atof(argv[3]) * 1e6));
        return 0;
    }
    if (!strcmp(mode, "ignore-term")) {
        signal(SIGTERM, SIG_IGN);
        for (;;)
            pause();
    }
    if (!strcmp(mode, "cat")) {
        char buf[8192];
        ssize_t n;
        while ((n = read(0, buf, sizeof buf)) > 0)
            if (write(1, buf, (size_t)n) != n)
                return 3;
        return 0;
    }
    if (!strcmp(mode, "fds")) {           /* prints open fds other than 0-2 */
        DIR *d = opendir("/proc/self/fd");
        if (!d)
            return 4;
        int self = dirfd(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            int fd = atoi(e->d_name);
            if (fd > 2 && fd != self)
                printf("%d\n", fd);
        }
        closedir(d);
        return 0;
    }
    if (!strcmp(mode, "daemon")) {        /* leaves a grandchild holding stdout */
        pid_t p = fork();
        if (p == 0) {
            sleep(5);
            _exit(0);
        }
        printf("parent done\n");
        return 0;
    }
    if (!strcmp(mode, "args")) {          /* prints each argument on its own line */
        for (int i = 3; i < argc; i++)
            printf("[%s]\n", argv[i]);
        return 0;
    }
    if (!strcmp(mode, "pwd")) {
        char b[4096];
        printf("%s\n", getcwd(b, sizeof b) ? b : "?");
        return 0;
    }
    return 99;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ tests */
static void test_capture_and_exit(void **state)
{
    (void)state;
    const char *argv[] = { self_exe, "--helper", "echo", "hello out", "hello err", NULL };
    spawn_result r;
    assert_int_equal(spawn_run(argv, NULL, &r), 0);
    assert_true(spawn_ok(&r));
    assert_string_equal(r.out, "hello out\n");
    assert_string_equal(r.err, "hello err\n");
    assert_int_equal(r.out_total, 10);
    spawn_result_free(&r);

    const char *ex[] = { self_exe, "--helper", "exit", "23", NULL };
    assert_int_equal(spawn_run(ex, NULL, &r), 0);
    assert_false(spawn_ok(&r));
    assert_int_equal(r.exit_code, 23);
    char buf[128];
    assert_string_equal(spawn_describe(&r, "rsync", buf, sizeof buf), "rsync exited with status 23");
    spawn_result_free(&r);
}

static void test_missing_program(void **state)
{
    (void)state;
    const char *argv[] = { "/nonexistent/definitely-not-here", NULL };
    spawn_result r;
    assert_int_equal(spawn_run(argv, NULL, &r), -1);
    assert_int_equal(r.spawn_errno, ENOENT);
    assert_false(spawn_ok(&r));
    char buf[128];
    assert_non_null(strstr(spawn_describe(&r, "rsync", buf, sizeof buf), "cannot run rsync"));
    spawn_result_free(&r);

    const char *viapath[] = { "definitely-not-a-program-ocpvdr", NULL };
    assert_int_equal(spawn_run(viapath, NULL, &r), -1);
    assert_int_equal(r.spawn_errno, ENOENT);
    spawn_result_free(&r);
}

static void test_tail_is_bounded(void **state)
{
    (void)state;
    const char *argv[] = { self_exe, "--helper", "flood", "200000", NULL };
    spawn_opts o = { .tail_max = 1000 };
    spawn_result r;
    assert_int_equal(spawn_run(argv, &o, &r), 0);
    assert_true(spawn_ok(&r));
    assert_int_equal(r.out_len, 1000);
    assert_true(r.out_total > 1000000);
    /* the tail is the end of the output */
    size_t l = strlen(r.out);
    assert_int_equal(l, 1000);
    assert_string_equal(r.out + l - strlen("line 199999\n"), "line 199999\n");
    char *last = spawn_last_lines(r.out, 2);
    assert_string_equal(last, "line 199998\nline 199999");
    free(last);
    spawn_result_free(&r);
}

static void count_line(void *ctx, const char *line, size_t len)
{
    long *c = ctx;
    char want[32];
    snprintf(want, sizeof want, "line %ld", c[0]);
    if (strcmp(line, want) == 0 && strlen(line) == len)
        c[0]++;
    else
        c[1]++;
}

static void test_line_callback(void **state)
{
    (void)state;
    const char *argv[] = { self_exe, "--helper", "flood", "50000", NULL };
    long counts[2] = { 0, 0 };
    spawn_opts o = { .tail_max = 64, .on_stdout_line = count_line, .cb_ctx = counts };
    spawn_result r;
    assert_int_equal(spawn_run(argv, &o, &r), 0);
    assert_int_equal(counts[0], 50000);
    assert_int_equal(counts[1], 0);
    spawn_result_free(&r);
}

static void test_timeout_term(void **state)
{
    (void)state;
    const char *argv[] = { self_exe, "--helper", "sleep", "20", NULL };
    spawn_opts o = { .timeout_s = 0.3 };
    spawn_result r;
    double t0 = mono();
    assert_int_equal(spawn_run(argv, &o, &r), 0);
    assert_true(mono() - t0 < 5.0);
    assert_true(r.timed_out);
    assert_int_equal(r.term_signal, SIGTERM);
    assert_false(spawn_ok(&r));
    char buf[128];
    assert_non_null(strstr(spawn_describe(&r, "rsync", buf, sizeof buf), "timed out"));
    spawn_result_free(&r);
}

static void test_timeout_kill_escalation(void **state)
{
    (void)state;
    const char *argv[] = { self_exe, "--helper", "ignore-term", NULL };
    spawn_opts o = { .timeout_s = 0.2, .kill_grace_s = 0.3 };
    spawn_result r;
    double t0 = mono();
    assert_int_equal(spawn_run(argv, &o, &r), 0);
    double took = mono() - t0;
    assert_true(took >= 0.45);
    assert_true(took < 5.0);
    assert_true(r.timed_out);
    assert_int_equal(r.term_signal, SIGKILL);
    spawn_result_free(&r);
}

static void test_stdin_roundtrip(void **state)
{
    (void)state;
    size_t n = 300 * 1024;     /* more than a pipe buffer holds */
    char *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + i % 26);
    const char *argv[] = { self_exe, "--helper", "cat", NULL };
    spawn_opts o = { .stdin_data = data, .stdin_len = n, .tail_max = n };
    spawn_result r;
    assert_int_equal(spawn_run(argv, &o, &r), 0);
    assert_true(spawn_ok(&r));
    assert_int_equal(r.out_len, n);
    assert_memory_equal(r.out, data, n);
    spawn_result_free(&r);

    /* a child that never reads its stdin must not kill us with SIGPIPE */
    const char *ex[] = { self_exe, "--helper", "exit", "0", NULL };
    spawn_opts o2 = { .stdin_data = data, .stdin_len = n };
    assert_int_equal(spawn_run(ex, &o2, &r), 0);
    assert_true(spawn_ok(&r));
    spawn_result_free(&r);
    free(data);
}

static void test_no_fd_leak(void **state)
{
    (void)state;
    /* the child may only see what we hold without close-on-exec (whatever
     * the test runner passed down), never spawn's own pipes */
    char expect[4096] = "";
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(d))
            continue;
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC))
            snprintf(expect + strlen(expect), sizeof expect - strlen(expect), "%d\n", fd);
    }
    closedir(d);
    const char *argv[] = { self_exe, "--helper", "fds", NULL };
    spawn_result r;
    assert_int_equal(spawn_run(argv, NULL, &r), 0);
    assert_true(spawn_ok(&r));
    assert_string_equal(r.out, expect);
    spawn_result_free(&r);
}

static void test_grandchild_does_not_block(void **state)
{
    (void)state;
    const char *argv[] = { self_exe, "--helper", "daemon", NULL };
    spawn_result r;
    double t0 = mono();
    assert_int_equal(spawn_run(argv, NULL, &r), 0);
    assert_true(mono() - t0 < 3.0);
    assert_true(spawn_ok(&r));
    assert_string_equal(r.out, "parent done\n");
    spawn_result_free(&r);
}

static void test_cwd_and_env(void **state)
{
    (void)state;
    const char *argv[] = { self_exe, "--helper", "pwd", NULL };
    spawn_opts o = { .cwd = "/" };
    spawn_result r;
    assert_int_equal(spawn_run(argv, &o, &r), 0);
    assert_string_equal(r.out, "/\n");
    spawn_result_free(&r);

    /* bad cwd is a start failure, not a crash */
    spawn_opts bad = { .cwd = "/nonexistent-dir-ocpvdr" };
    assert_int_equal(spawn_run(argv, &bad, &r), -1);
    assert_int_equal(r.spawn_errno, ENOENT);
    spawn_result_free(&r);
}

static void test_argv_not_split(void **state)
{
    (void)state;
    const char *argv[] = { self_exe, "--helper", "args", "a b", "$(id)", "'q'", ";rm -rf /", NULL };
    spawn_result r;
    assert_int_equal(spawn_run(argv, NULL, &r), 0);
    assert_string_equal(r.out, "[a b]\n[$(id)]\n['q']\n[;rm -rf /]\n");
    spawn_result_free(&r);
}

static void test_sh_quote(void **state)
{
    (void)state;
    const char *a[] = { "realpath", "-m", "--", "/x y", "it's", "$(id)`x`", "", NULL };
    char *q = spawn_sh_quote(a);
    assert_string_equal(q, "'realpath' '-m' '--' '/x y' 'it'\\''s' '$(id)`x`' ''");
    /* a real POSIX shell must give back exactly the original words */
    size_t len = strlen(q) + 64;
    char *script = malloc(len);
    snprintf(script, len, "printf '[%%s]\\n' %s", q);
    const char *sh[] = { "/bin/sh", "-c", script, NULL };
    spawn_result r;
    assert_int_equal(spawn_run(sh, NULL, &r), 0);
    assert_string_equal(r.out, "[realpath]\n[-m]\n[--]\n[/x y]\n[it's]\n[$(id)`x`]\n[]\n");
    spawn_result_free(&r);
    free(script);
    free(q);
}

static void test_last_lines(void **state)
{
    (void)state;
    char *s = spawn_last_lines("a\nb\nc\n\n", 2);
    assert_string_equal(s, "b\nc");
    free(s);
    s = spawn_last_lines("only", 5);
    assert_string_equal(s, "only");
    free(s);
    s = spawn_last_lines(NULL, 5);
    assert_string_equal(s, "");
    free(s);
}

typedef struct {
    int ok;
    double done;    /* monotonic time the worker finished */
} thr_res;

static void *quick_worker(void *arg)
{
    thr_res *tr = arg;
    for (int i = 0; i < 5; i++) {
        const char *argv[] = { self_exe, "--helper", "echo", "x", "y", NULL };
        spawn_result r;
        if (spawn_run(argv, NULL, &r) == 0 && spawn_ok(&r) && !strcmp(r.out, "x\n"))
            tr->ok++;
        spawn_result_free(&r);
    }
    tr->done = mono();
    return NULL;
}

static void *slow_worker(void *arg)
{
    thr_res *tr = arg;
    const char *argv[] = { self_exe, "--helper", "sleep", "6", NULL };
    spawn_result r;
    if (spawn_run(argv, NULL, &r) == 0 && spawn_ok(&r))
        tr->ok = 1;
    tr->done = mono();
    spawn_result_free(&r);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t slow, quick[3];
    thr_res sr = { 0 }, qr[3] = { { 0 } };
    assert_int_equal(pthread_create(&slow, NULL, slow_worker, &sr), 0);
    usleep(100000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&quick[i], NULL, quick_worker, &qr[i]), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(quick[i], NULL);
    pthread_join(slow, NULL);
    assert_int_equal(sr.ok, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(qr[i].ok, 5);
        assert_true(qr[i].done < sr.done);    /* not held up by the sleeping child */
    }
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--helper"))
        return helper(argc, argv);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0)
        return 1;
    self_exe[n] = '\0';

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_and_exit),
        cmocka_unit_test(test_missing_program),
        cmocka_unit_test(test_tail_is_bounded),
        cmocka_unit_test(test_line_callback),
        cmocka_unit_test(test_timeout_term),
        cmocka_unit_test(test_timeout_kill_escalation),
        cmocka_unit_test(test_stdin_roundtrip),
        cmocka_unit_test(test_no_fd_leak),
        cmocka_unit_test(test_grandchild_does_not_block),
        cmocka_unit_test(test_cwd_and_env),
        cmocka_unit_test(test_argv_not_split),
        cmocka_unit_test(test_sh_quote),
        cmocka_unit_test(test_last_lines),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
