/* test_dir_stats.c - unit tests for lib/dr/dir_stats.c: counting a directory
 * tree's entries, regular files and bytes (nfs_rsync_sync state=inspect)
 * without following symlinks out of it, and the errors for a missing
 * directory or one that is itself a symlink.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir_stats.h"

static void write_file(const char *dir, const char *name, size_t size)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < size; i++)
        fputc('x', f);
    fclose(f);
}

static void test_counts_without_following_links(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/test_dir_stats.XXXXXX";
    char *root = mkdtemp(tmpl);
    assert_non_null(root);
    char vol[256], sub[256], other[256], link[256], empty[256];
    snprintf(vol, sizeof vol, "%s/vol", root);
    snprintf(sub, sizeof sub, "%s/vol/sub", root);
    snprintf(other, sizeof other, "%s/other", root);
    snprintf(link, sizeof link, "%s/vol/to-other", root);
    snprintf(empty, sizeof empty, "%s/empty", root);
    assert_int_equal(mkdir(vol, 0700), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(mkdir(other, 0700), 0);
    assert_int_equal(mkdir(empty, 0700), 0);
    write_file(vol, "a", 10);
    write_file(sub, "b", 100);
    write_file(sub, "c", 0);
    write_file(other, "big", 5000);
    assert_int_equal(symlink(other, link), 0);

    ds_stats st;
    char *err = NULL;
    assert_int_equal(ds_walk(vol, &st, &err), 0);
    assert_null(err);
    /* a, sub, sub/b, sub/c, to-other (the link itself, not what it points at) */
    assert_int_equal(st.entries, 5);
    assert_int_equal(st.files, 3);
    assert_int_equal(st.dirs, 1);
    assert_int_equal(st.bytes, 110);

    assert_int_equal(ds_walk(empty, &st, &err), 0);
    assert_int_equal(st.entries, 0);

    /* the directory itself a symlink: refused (O_NOFOLLOW), named */
    char dlink[256];
    snprintf(dlink, sizeof dlink, "%s/dlink", root);
    assert_int_equal(symlink(other, dlink), 0);
    assert_int_equal(ds_walk(dlink, &st, &err), -1);
    assert_non_null(err);
    assert_non_null(strstr(err, dlink));
    free(err);
    err = NULL;

    char missing[256];
    snprintf(missing, sizeof missing, "%s/missing", root);
    assert_int_equal(ds_walk(missing, &st, &err), -1);
    assert_non_null(strstr(err, "missing"));
    free(err);

    char path[512];
    const char *files[] = { "vol/a", "vol/sub/b", "vol/sub/c", "vol/to-other", "other/big", "dlink" };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", root, files[i]);
        unlink(path);
    }
    rmdir(sub);
    rmdir(vol);
    rmdir(other);
    rmdir(empty);
    rmdir(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_without_following_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
