/* test_ssh_master.c - unit tests for lib/dr/ssh_master.c: the exact argv that
 * starts, uses and stops a shared ssh connection (ControlMaster), how many
 * masters a run needs, and that a pool whose host cannot be reached reports
 * it once, naming the host (real ssh to a closed local port), and stops
 * cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ssh_master.h"

static char *joined(const rc_argv *a)
{
    size_t len = 1;
    for (size_t i = 0; i < a->n; i++)
        len += strlen(a->v[i]) + 1;
    char *s = calloc(1, len);
    for (size_t i = 0; i < a->n; i++) {
        if (i)
            strcat(s, " ");
        strcat(s, a->v[i]);
    }
    return s;
}

static const rc_conn conn = { .host = "nfs-dr.example", .user = "root", .ssh_key = "/k/id",
                              .known_hosts = "/k/kh", .host_key_checking = "yes",
                              .connect_timeout = 5 };

static void test_argv(void **state)
{
    (void)state;
    rc_argv a = { 0 };
    sm_start_argv(&conn, "/tmp/x/cm0", &a);
    char *s = joined(&a);
    assert_string_equal(s, "ssh -i /k/id -o IdentitiesOnly=yes -o BatchMode=yes "
                           "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/k/kh "
                           "-o ConnectTimeout=5 -o ClearAllForwardings=yes "
                           "-o ControlPath=/tmp/x/cm0 -o ControlMaster=yes -o ControlPersist=120 "
                           "-N -f -- root@nfs-dr.example");
    free(s);
    rc_argv_free(&a);

    rc_argv b = { 0 };
    sm_stop_argv(&conn, "/tmp/x/cm0", &b);
    s = joined(&b);
    assert_non_null(strstr(s, "-o ControlPath=/tmp/x/cm0 -O exit -- root@nfs-dr.example"));
    assert_null(strstr(s, "ControlMaster"));
    free(s);
    rc_argv_free(&b);

    /* no control path: a plain ssh */
    rc_argv c = { 0 };
    sm_ssh_argv(&conn, NULL, &c);
    s = joined(&c);
    assert_null(strstr(s, "ControlPath"));
    assert_string_equal(c.v[0], "ssh");
    free(s);
    rc_argv_free(&c);
}

static void test_count(void **state)
{
    (void)state;
    assert_int_equal(sm_count(8, 100), 1);
    assert_int_equal(sm_count(9, 100), 2);
    assert_int_equal(sm_count(64, 100), 8);
    assert_int_equal(sm_count(64, 3), 1);    /* fewer volumes than masters */
    assert_int_equal(sm_count(0, 3), 1);
}

static void test_pool_unreachable(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/test_ssh_master.XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    rc_conn c = { .host = "127.0.0.1", .port = 1, .host_key_checking = "no",
                  .known_hosts = "/dev/null", .connect_timeout = 3 };
    sm_pool p;
    assert_int_equal(sm_pool_init(&p, &c, 2), 0);
    assert_null(sm_pool_path(&p, 0));              /* nothing started yet */
    char *err = sm_pool_start(&p, dir, 0);
    assert_non_null(err);
    assert_non_null(strstr(err, "cannot connect to DR host 127.0.0.1"));
    free(err);
    assert_null(p.paths[0]);
    sm_pool_stop(&p);
    assert_int_equal(p.n, 0);
    assert_int_equal(rmdir(dir), 0);               /* no socket left behind */

    sm_pool none = { 0 };
    assert_null(sm_pool_path(&none, 3));
    sm_pool_stop(&none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_pool_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
