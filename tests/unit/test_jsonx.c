/* test_jsonx.c - cmocka tests of the JSON helpers (lib/base/jsonx.h): dotted-path
 * getters and setters, canonical form and SHA-256, file loading errors and
 * object references for messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "jsonx.h"

#include <stdlib.h>
#include <string.h>

static json_t *load(const char *name)
{
    char path[512], *err = NULL;
    snprintf(path, sizeof path, "%s/module/%s", TEST_DATA_DIR, name);
    json_t *v = jx_load_file(path, &err);
    if (!v)
        fail_msg("%s", err);
    return v;
}

static void test_getters(void **state)
{
    json_t *o = load("args_valid.json");
    assert_string_equal(jx_str(o, "metadata.name"), "pvc-1");
    assert_string_equal(jx_str(o, "metadata.labels.app"), "vm");
    assert_null(jx_str(o, "metadata.labels.missing"));
    assert_null(jx_str(o, "metadata.name.deeper"));       /* through a string */
    assert_null(jx_str(o, "spec.replicas"));              /* not a string */
    assert_string_equal(jx_str_or(o, "spec.nope", "dflt"), "dflt");
    assert_int_equal(jx_int(o, "spec.replicas", -1), 3);
    assert_int_equal(jx_int(o, "metadata.name", -1), -1);
    assert_false(jx_bool(o, "spec.paused", true));
    assert_true(jx_bool(o, "spec.absent", true));
    assert_null(jx_get(NULL, "a"));
    assert_null(jx_get(o, NULL));
    char longpath[600];
    memset(longpath, 'x', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    assert_null(jx_get(o, longpath));                     /* the heap path */
    json_decref(o);
}

static void test_set_del(void **state)
{
    json_t *o = json_object();
    assert_int_equal(jx_set(o, "a.b.c", json_integer(1)), 0);
    assert_int_equal(jx_int(o, "a.b.c", 0), 1);
    assert_int_equal(jx_set(o, "a.b.d", json_string("x")), 0);
    assert_string_equal(jx_str(o, "a.b.d"), "x");
    assert_int_equal(jx_set(o, "a.b.c.e", json_true()), -1);   /* c is not an object */
    assert_int_equal(jx_set(o, "top", json_null()), 0);
    assert_true(jx_del(o, "a.b.c"));
    assert_false(jx_del(o, "a.b.c"));
    assert_false(jx_del(o, "x.y"));
    assert_null(jx_get(o, "a.b.c"));
    json_decref(o);
}

static void test_canonical_and_hash(void **state)
{
    json_t *a = json_pack("{s:[b,n], s:i}", "b", 1, "a", 1);
    json_t *b = json_pack("{s:i, s:[b,n]}", "a", 1, "b", 1);
    char *ca = jx_canonical(a), *cb = jx_canonical(b);
    assert_string_equal(ca, "{\"a\":1,\"b\":[true,null]}");
    assert_string_equal(ca, cb);
    char ha[65], hb[65];
    jx_sha256(a, ha);
    jx_sha256(b, hb);
    assert_string_equal(ha, "1cc69c7fa23616ca2ec3ee70d24390a6225c8832db8a4c814c7e0e7f942f8668");
    assert_string_equal(ha, hb);
    json_object_set_new(b, "c", json_integer(2));
    jx_sha256(b, hb);
    assert_string_not_equal(ha, hb);
    free(ca);
    free(cb);
    json_decref(a);
    json_decref(b);
}

static void test_load_errors(void **state)
{
    char path[512], *err = NULL;
    snprintf(path, sizeof path, "%s/module/args_trailing_comma.json", TEST_DATA_DIR);
    assert_null(jx_load_file(path, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "args_trailing_comma.json: line 4"));
    free(err);
    err = NULL;
    assert_null(jx_load_file("/nonexistent/x.json", &err));
    assert_non_null(strstr(err, "/nonexistent/x.json"));
    free(err);
    assert_null(jx_load_file("/nonexistent/x.json", NULL));
}

static void test_ref(void **state)
{
    char buf[64];
    json_t *o = load("args_valid.json");
    assert_string_equal(jx_ref(o, buf, sizeof buf), "vm-prod/pvc-1");
    jx_del(o, "metadata.namespace");
    assert_string_equal(jx_ref(o, buf, sizeof buf), "pvc-1");
    jx_del(o, "metadata.name");
    assert_string_equal(jx_ref(o, buf, sizeof buf), "<no name>");
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_set_del),
        cmocka_unit_test(test_canonical_and_hash),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_ref),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
