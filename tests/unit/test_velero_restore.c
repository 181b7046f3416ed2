/* test_velero_restore.c - unit tests of a Velero Restore's results file
 * (lib/velero/velero_restore.c): a real restore-<name>-results.gz written by the
 * lab's Velero (a PartiallyFailed Restore: a Service refused by a quota),
 * a hand-written document with every kind of message, the message cap,
 * damaged gzip and documents of the wrong shape. */
#include "velero_restore.h"
#include "velero_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define DATA TEST_DATA_DIR "/oadp/"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

static const char *str_at(json_t *arr, size_t i)
{
    return json_string_value(json_array_get(arr, i));
}

static void test_paths(void **state)
{
    (void)state;
    char *r = vs_restores_root("/velero/");
    assert_string_equal(r, "velero/restores/");
    char *k = vs_restore_results_key(r, "ocpv-dr-failover-b1");
    assert_string_equal(k, "velero/restores/ocpv-dr-failover-b1/restore-ocpv-dr-failover-b1-results.gz");
    free(k);
    free(r);
    r = vs_restores_root("");
    assert_string_equal(r, "restores/");
    free(r);
    r = vs_backups_root("a/b");
    assert_string_equal(r, "a/b/backups/");
    free(r);
}

/* The file the lab's Velero wrote for a PartiallyFailed Restore. */
static void test_real_velero_results(void **state)
{
    (void)state;
    size_t gzlen, len;
    char *gz = read_file(DATA "restore-results-partiallyfailed.gz", &gzlen), *text = NULL, *err = NULL;
    assert_int_equal(vs_gunzip_mem(gz, gzlen, 1 << 20, &text, &len, &err), 0);
    assert_null(err);
    assert_int_equal(strlen(text), len);
    json_t *r = vs_restore_results_parse(text, len, 200, &err);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "restore_error_count")), 1);
    json_t *em = json_object_get(r, "restore_error_messages");
    assert_int_equal(json_array_size(em), 1);
    const char *m = str_at(em, 0);
    assert_non_null(strstr(m, "Namespace "));
    assert_non_null(strstr(m, "vm-0-ssh"));
    assert_non_null(strstr(m, "quota"));
    json_t *errs = json_object_get(json_object_get(r, "restore_results"), "errors");
    assert_int_equal(json_array_size(json_object_get(errs, "velero")), 0);
    assert_int_equal(json_array_size(json_object_get(errs, "cluster")), 0);
    assert_int_equal(json_object_size(json_object_get(errs, "namespaces")), 1);
    json_decref(r);
    free(text);
    /* cut short: truncated, never a partial document */
    assert_int_not_equal(vs_gunzip_mem(gz, gzlen - 9, 1 << 20, &text, &len, &err), 0);
    assert_null(text);
    assert_non_null(strstr(err, "truncated"));
    free(err);
    err = NULL;
    /* bigger than the cap */
    assert_int_not_equal(vs_gunzip_mem(gz, gzlen, 16, &text, &len, &err), 0);
    assert_non_null(strstr(err, "larger than 16 bytes"));
    free(err);
    err = NULL;
    /* a damaged byte in the deflate data */
    gz[gzlen / 2] ^= 0x55;
    assert_int_not_equal(vs_gunzip_mem(gz, gzlen, 1 << 20, &text, &len, &err), 0);
    assert_non_null(err);
    free(err);
    err = NULL;
    assert_int_not_equal(vs_gunzip_mem("{\"errors\":{}}xxxxxxxxxxx", 24, 1 << 20, &text, &len, &err), 0);
    assert_non_null(strstr(err, "not gzip"));
    free(err);
    free(gz);
}

static void test_every_kind_and_cap(void **state)
{
    (void)state;
    size_t len;
    char *text = read_file(DATA "restore-results-mixed.json", &len), *err = NULL;
    json_t *r = vs_restore_results_parse(text, len, 200, &err);
    assert_non_null(r);
    json_t *em = json_object_get(r, "restore_error_messages");
    assert_int_equal(json_array_size(em), 5);
    assert_string_equal(str_at(em, 0), "Velero: error restoring from backup: stream broken");
    assert_string_equal(str_at(em, 1), "Cluster: error restoring clusterroles.rbac.authorization.k8s.io/x: forbidden");
    assert_string_equal(str_at(em, 2), "Namespace vm-a: error restoring services/vm-a/ssh: exceeded quota: no-services");
    assert_string_equal(str_at(em, 4), "Namespace vm-b: error restoring secrets/vm-b/s: denied");
    json_t *wm = json_object_get(r, "restore_warning_messages");
    assert_int_equal(json_array_size(wm), 1);
    assert_non_null(strstr(str_at(wm, 0), "Namespace vm-a: could not restore, Service \"x\""));
    assert_int_equal(json_integer_value(json_object_get(r, "restore_warning_count")), 1);
    json_t *w = json_object_get(json_object_get(r, "restore_results"), "warnings");
    /* absent keys come back as empty lists / objects */
    assert_true(json_is_array(json_object_get(w, "velero")));
    assert_true(json_is_array(json_object_get(w, "cluster")));
    json_decref(r);

    /* capped at 3: the first three in order, the count says 5 */
    r = vs_restore_results_parse(text, len, 3, &err);
    assert_non_null(r);
    assert_int_equal(json_array_size(json_object_get(r, "restore_error_messages")), 3);
    assert_int_equal(json_integer_value(json_object_get(r, "restore_error_count")), 5);
    json_t *e = json_object_get(json_object_get(r, "restore_results"), "errors");
    json_t *nss = json_object_get(e, "namespaces");
    assert_int_equal(json_array_size(json_object_get(nss, "vm-a")), 1);
    assert_null(json_object_get(nss, "vm-b"));
    /* restore_details: the sections as `velero restore describe --details`
     * prints them, warnings first, with what the cap left out counted */
    json_t *d = json_object_get(r, "restore_details");
    assert_int_equal(json_array_size(d), 7);
    assert_string_equal(str_at(d, 0), "Warnings:");
    assert_non_null(strstr(str_at(d, 1), "  Namespace vm-a: could not restore"));
    assert_string_equal(str_at(d, 2), "Errors:");
    assert_string_equal(str_at(d, 3), "  Velero: error restoring from backup: stream broken");
    assert_string_equal(str_at(d, 6), "  ... 2 more");
    json_decref(r);
    free(text);

    /* empty results (a Completed Restore) */
    r = vs_restore_results_parse("{}", 2, 200, &err);
    assert_non_null(r);
    assert_int_equal(json_array_size(json_object_get(r, "restore_error_messages")), 0);
    assert_int_equal(json_integer_value(json_object_get(r, "restore_error_count")), 0);
    assert_int_equal(json_array_size(json_object_get(r, "restore_details")), 0);
    json_decref(r);
}

static void test_wrong_shape(void **state)
{
    (void)state;
    static const char *bad[][2] = {
        { "[1]", "not a JSON object" },
        { "{\"errors\":", "line 1" },
        { "{\"errors\":[]}", "'errors' is not an object" },
        { "{\"errors\":{\"velero\":\"x\"}}", "errors.velero is not a list" },
        { "{\"warnings\":{\"cluster\":[1]}}", "warnings.cluster[0] is not a string" },
        { "{\"errors\":{\"namespaces\":[]}}", "errors.namespaces is not an object" },
        { "{\"errors\":{\"namespaces\":{\"a\":[\"m\",{}]}}}", "errors.namespaces.a[1] is not a string" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *err = NULL;
        json_t *r = vs_restore_results_parse(bad[i][0], strlen(bad[i][0]), 200, &err);
        assert_null(r);
        assert_non_null(err);
        if (!strstr(err, bad[i][1]) || !strstr(err, "not a Velero restore results document"))
            fail_msg("%s: got '%s', want '%s'", bad[i][0], err, bad[i][1]);
        free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_real_velero_results),
        cmocka_unit_test(test_every_kind_and_cap),
        cmocka_unit_test(test_wrong_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
