/* test_rsync_cmd.c - unit tests for lib/dr/rsync_cmd.c: the exact rsync/ssh
 * argv (no option or shell injection through host, user, key or paths) and
 * the parsing of rsync's itemized output and --stats.  (Where the paths come
 * from, lib/dr/storage_profile.c: test_storage_profile.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsync_cmd.h"

static char *joined(const rc_argv *a)
{
    size_t len = 1;
    for (size_t i = 0; i < a->n; i++)
        len += strlen(a->v[i]) + 3;
    char *s = calloc(1, len);
    for (size_t i = 0; i < a->n; i++) {
        strcat(s, i ? " <" : "<");
        strcat(s, a->v[i]);
        strcat(s, ">");
    }
    return s;
}

static void test_sync_argv(void **state)
{
    (void)state;
    rc_conn c = { .host = "198.18.0.3", .user = "root", .ssh_key = "/k/id", .known_hosts = "/k/kh",
                  .host_key_checking = "yes", .connect_timeout = 10, .control_path = "/tmp/x/cm0" };
    rc_sync_opts o = { .acls = true, .xattrs = true, .timeout = 300, .bwlimit = "50M" };
    rc_argv a = { 0 };
    char *err = NULL;
    assert_int_equal(rc_sync_argv(&c, &o, "/e/vol", "/d/vol", &a, &err), 0);
    char *j = joined(&a);
    assert_string_equal(j,
        "<rsync> <-a> <--numeric-ids> <-A> <-X> <--delete> <--partial> <--timeout=300> "
        "<--bwlimit=50M> <--stats> <--out-format=@%i> <-e> "
        "<ssh -i /k/id -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes "
        "-o UserKnownHostsFile=/k/kh -o ConnectTimeout=10 -o ClearAllForwardings=yes "
        "-o ControlPath=/tmp/x/cm0 -o ControlMaster=no> <--> </e/vol/> <root@198.18.0.3:/d/vol/>");
    free(j);
    rc_argv_free(&a);
    (void)err;
}

static void test_sync_argv_minimal_and_v6(void **state)
{
    (void)state;
    rc_conn c = { .host = "fd00::3", .host_key_checking = "accept-new" };
    rc_sync_opts o = { .dry_run = true, .checksum = true, .mkpath = true };
    rc_argv a = { 0 };
    char *err = NULL;
    assert_int_equal(rc_sync_argv(&c, &o, "/e/a/b", "/d/a/b", &a, &err), 0);
    char *j = joined(&a);
    assert_string_equal(j,
        "<rsync> <-a> <--numeric-ids> <--delete> <--partial> <--checksum> <--mkpath> "
        "<--dry-run> <--stats> <--out-format=@%i> <-e> "
        "<ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ClearAllForwardings=yes> "
        "<--> </e/a/b/> <[fd00::3]:/d/a/b/>");
    free(j);
    rc_argv_free(&a);
}

static void expect_argv_error(rc_conn c, const char *src, const char *dest, const char *bw,
                              const char *needle)
{
    rc_sync_opts o = { .bwlimit = bw };
    rc_argv a = { 0 };
    char *err = NULL;
    if (!c.host_key_checking)
        c.host_key_checking = "yes";
    assert_int_equal(rc_sync_argv(&c, &o, src, dest, &a, &err), -1);
    assert_int_equal(a.n, 0);        /* nothing built */
    assert_non_null(err);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    free(err);
    rc_argv_free(&a);
}

static void test_injection_refused(void **state)
{
    (void)state;
    rc_conn ok = { .host = "dr1.example.com" };
    expect_argv_error((rc_conn){ .host = "-oProxyCommand=touch /tmp/pwn" }, "/a/b", "/c/d", NULL, "dr_host");
    expect_argv_error((rc_conn){ .host = "dr1 -oProxyCommand=x" }, "/a/b", "/c/d", NULL, "dr_host");
    expect_argv_error((rc_conn){ .host = "dr1;id" }, "/a/b", "/c/d", NULL, "dr_host");
    expect_argv_error((rc_conn){ .host = "" }, "/a/b", "/c/d", NULL, "dr_host");
    expect_argv_error((rc_conn){ .host = "dr1", .user = "-oX" }, "/a/b", "/c/d", NULL, "dr_user");
    expect_argv_error((rc_conn){ .host = "dr1", .user = "ro ot" }, "/a/b", "/c/d", NULL, "dr_user");
    expect_argv_error((rc_conn){ .host = "dr1", .ssh_key = "/k/id -oProxyCommand=x" }, "/a/b", "/c/d", NULL, "ssh_key");
    expect_argv_error((rc_conn){ .host = "dr1", .ssh_key = "relative/key" }, "/a/b", "/c/d", NULL, "ssh_key");
    expect_argv_error((rc_conn){ .host = "dr1", .known_hosts = "/k/'kh" }, "/a/b", "/c/d", NULL, "known_hosts");
    expect_argv_error((rc_conn){ .host = "dr1", .host_key_checking = "ask" }, "/a/b", "/c/d", NULL, "host_key_checking");
    expect_argv_error((rc_conn){ .host = "dr1", .port = 70000 }, "/a/b", "/c/d", NULL, "dr_port");
    expect_argv_error(ok, "/a/b", "/c/$(reboot)", NULL, "destination directory");
    expect_argv_error(ok, "/a/b", "/c/d e", NULL, "destination directory");
    expect_argv_error(ok, "/a/../b", "/c/d", NULL, "source directory");
    expect_argv_error(ok, "/a/b", "/", NULL, "refusing");
    expect_argv_error(ok, "/a/b", "/c/d", "5M; rm", "bwlimit");
    expect_argv_error(ok, "/a/b", "/c/d", "--delete-excluded", "bwlimit");
}

static void test_remove_argv(void **state)
{
    (void)state;
    rc_conn c = { .host = "dr1", .user = "root", .host_key_checking = "yes" };
    rc_sync_opts o = { .dry_run = true };
    rc_argv a = { 0 };
    char *err = NULL;
    assert_int_equal(rc_remove_argv(&c, &o, "/tmp/t/empty", "/d/export/ns-pvc-pv", &a, &err), 0);
    char *j = joined(&a);
    assert_string_equal(j,
        "<rsync> <--recursive> <--delete> <--include=/ns-pvc-pv> <--include=/ns-pvc-pv/**> "
        "<--exclude=*> <--dry-run> <--stats> <--out-format=@%i> <-e> "
        "<ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ClearAllForwardings=yes> "
        "<--> </tmp/t/empty/> <root@dr1:/d/export/>");
    free(j);
    rc_argv_free(&a);
    assert_int_equal(rc_remove_argv(&c, &o, "/tmp/t/empty", "/top", &a, &err), -1);
    assert_non_null(strstr(err, "parent"));
    assert_int_equal(rc_remove_argv(&c, &o, "/tmp/t/empty", "/d/*", &a, &err), -1);
    assert_int_equal(rc_remove_argv(&c, &o, "/tmp/t/empty", "/d/x/..", &a, &err), -1);
    rc_argv_free(&a);
    free(err);
}

static void test_batch_argv(void **state)
{
    (void)state;
    rc_conn c = { .host = "198.18.0.3", .user = "root", .host_key_checking = "yes",
                  .control_path = "/tmp/x/cm0" };
    rc_sync_opts o = { .timeout = 300 };
    const char *rels[] = { "ns-a-pv1", "ns-b-pv2", "nested/dir" };
    rc_argv a = { 0 };
    char *err = NULL;
    assert_int_equal(rc_sync_batch_argv(&c, &o, "/e", rels, 3, "/d", &a, &err), 0);
    char *j = joined(&a);
    assert_string_equal(j,
        "<rsync> <-a> <--numeric-ids> <--delete> <--partial> <--relative> <--timeout=300> "
        "<--stats> <--out-format=@%i %b %l %n> <-e> "
        "<ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ClearAllForwardings=yes "
        "-o ControlPath=/tmp/x/cm0 -o ControlMaster=no> <--> </e/./ns-a-pv1/> </e/./ns-b-pv2/> "
        "</e/./nested/dir/> <root@198.18.0.3:/d/>");
    free(j);
    rc_argv_free(&a);

    /* bases at the root */
    const char *one[] = { "v" };
    assert_int_equal(rc_sync_batch_argv(&c, &o, "/", one, 1, "/", &a, &err), 0);
    assert_string_equal(a.v[a.n - 2], "/./v/");
    assert_string_equal(a.v[a.n - 1], "root@198.18.0.3:/");
    rc_argv_free(&a);

    /* refused: unusable rels (not normalized, traversal, unprintable, a
     * backslash, a space), a rel inside another, no rels, bad bases */
    const char *bad[][2] = { { "../x", "x" }, { "a/../b", "x" }, { "a//b", "x" }, { "./a", "x" },
                             { "a\x01b", "x" }, { "a\\b", "x" }, { "a b", "x" }, { "/abs", "x" },
                             { "a", "a/b" }, { "a/b", "a" }, { "same", "same" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *r2[] = { bad[i][0], bad[i][1] };
        assert_int_equal(rc_sync_batch_argv(&c, &o, "/e", r2, 2, "/d", &a, &err), -1);
        assert_int_equal(a.n, 0);
        assert_non_null(err);
        free(err);
        err = NULL;
    }
    assert_int_equal(rc_sync_batch_argv(&c, &o, "/e", rels, 0, "/d", &a, &err), -1);
    free(err);
    err = NULL;
    assert_int_equal(rc_sync_batch_argv(&c, &o, "e", rels, 1, "/d", &a, &err), -1);
    free(err);
    err = NULL;
    assert_int_equal(rc_sync_batch_argv(&c, &o, "/e", rels, 1, "/d -oX", &a, &err), -1);
    free(err);
    rc_argv_free(&a);
}

static void test_item_lines(void **state)
{
    (void)state;
    rc_item it;
    assert_int_equal(rc_item_parse("@<f+++++++++ 45 2 ns-a-pv1/f1", &it), 0);
    assert_memory_equal(it.flags, "<f+++++++++", 11);
    assert_int_equal(it.bytes, 45);
    assert_int_equal(it.length, 2);
    assert_string_equal(it.name, "ns-a-pv1/f1");
    assert_int_equal(rc_item_parse("@*deleting   0 0 ns-b-pv2/old file", &it), 0);
    assert_memory_equal(it.flags, "*deleting", 9);
    assert_string_equal(it.name, "ns-b-pv2/old file");
    assert_int_equal(rc_item_parse("@.d..t...... 0 4096 nested/dir/", &it), 0);
    assert_string_equal(it.name, "nested/dir/");
    /* not item lines */
    assert_int_equal(rc_item_parse("Number of files: 9", &it), -1);
    assert_int_equal(rc_item_parse("@<f+++++++++", &it), -1);
    assert_int_equal(rc_item_parse("@<f+++++++++ 45 2 ", &it), -1);
    assert_int_equal(rc_item_parse("@<f+++++++++ x 2 a", &it), -1);
    assert_int_equal(rc_item_parse("@<f+++++++++ 45 a", &it), -1);
    assert_int_equal(rc_item_parse("@short", &it), -1);
    assert_int_equal(rc_item_parse("", &it), -1);

    const char *rels[] = { "ns-a-pv1", "ns-a-pv10", "nested/dir" };
    assert_int_equal(rc_item_owner("ns-a-pv1/f1", rels, 3), 0);
    assert_int_equal(rc_item_owner("ns-a-pv1/", rels, 3), 0);
    assert_int_equal(rc_item_owner("ns-a-pv10/x", rels, 3), 1);   /* not pv1's */
    assert_int_equal(rc_item_owner("nested/dir/a/b", rels, 3), 2);
    assert_int_equal(rc_item_owner("nested/", rels, 3), -1);      /* implied parent */
    assert_int_equal(rc_item_owner("ns-a-pv", rels, 3), -1);
    assert_int_equal(rc_item_owner("other/x", rels, 3), -1);
}

static void test_stats_parsing(void **state)
{
    (void)state;
    /* real rsync 3.2+ output of a push with --stats --out-format=@%i */
    const char *lines[] = {
        "@>f+++++++++", "@cd+++++++++", "@>f.st......", "@*deleting  ", "@*deleting  ",
        "@.d..t......", "",
        "Number of files: 1,234 (reg: 1,200, dir: 34)",
        "Number of created files: 3 (reg: 2, dir: 1)",
        "Number of deleted files: 2 (reg: 2)",
        "Number of regular files transferred: 1,002",
        "Total file size: 5,000,000 bytes",
        "Total transferred file size: 4,200,000 bytes",
        "Literal data: 4,200,000 bytes",
        "Matched data: 0 bytes",
        "File list size: 0",
        "Total bytes sent: 4,231,919",
        "Total bytes received: 19,111",
        "",
        "sent 4,231,919 bytes  received 19,111 bytes  850,206.00 bytes/sec",
        NULL,
    };
    rc_stats st = { 0 };
    for (int i = 0; lines[i]; i++)
        rc_stats_line(&st, lines[i]);
    assert_true(st.have_stats);
    assert_int_equal(st.items, 6);
    assert_int_equal(st.deletions, 2);
    assert_int_equal(st.files_transferred, 1002);
    assert_int_equal(st.files_created, 3);
    assert_int_equal(st.files_deleted, 2);
    assert_int_equal(st.transferred_size, 4200000);
    assert_int_equal(st.bytes_sent, 4231919);
    assert_int_equal(st.bytes_received, 19111);

    /* nothing to do: no itemized line at all */
    rc_stats none = { 0 };
    rc_stats_line(&none, "Number of regular files transferred: 0");
    rc_stats_line(&none, "Total bytes sent: 1,103");
    assert_int_equal(none.items, 0);
    assert_int_equal(none.bytes_sent, 1103);
    /* absurd figures stop growing instead of overflowing (signed overflow
     * is undefined; it used to wrap negative - found by tests/fuzz
     * fuzz_rsync_output) */
    rc_stats big = { 0 };
    rc_stats_line(&big, "Total bytes sent: 9999999999999999999");
    rc_stats_line(&big, "Total bytes received: 9,999,999,999,999,999,999,999,999");
    assert_true(big.bytes_sent >= (1LL << 58) && big.bytes_received >= (1LL << 58));
    rc_item it;
    assert_int_equal(rc_item_parse("@<f+++++++++ 99999999999999999999999 9999999999999999999 a", &it),
                     0);
    assert_true(it.bytes >= (1LL << 58) && it.length >= (1LL << 58));
    assert_string_equal(rc_exit_meaning(23), "partial transfer due to error");
    assert_non_null(strstr(rc_exit_meaning(255), "ssh"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_argv),
        cmocka_unit_test(test_sync_argv_minimal_and_v6),
        cmocka_unit_test(test_injection_refused),
        cmocka_unit_test(test_remove_argv),
        cmocka_unit_test(test_batch_argv),
        cmocka_unit_test(test_item_lines),
        cmocka_unit_test(test_stats_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
