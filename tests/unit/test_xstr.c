/* test_xstr.c - unit tests for lib/base/xstr.c: the malloc'ing printf, xstrdup, xgrow, the error
 * out-parameter helpers (replace, keep-first, hand-over) and trimming. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "xstr.h"

static void test_fmt(void **state)
{
    (void)state;
    char *s = xfmt("%s-%d", "a", 7);
    assert_string_equal(s, "a-7");
    free(s);
}

static void test_err_set_replaces(void **state)
{
    (void)state;
    char *err = NULL;
    xerr_set(&err, "first %d", 1);
    assert_string_equal(err, "first 1");
    xerr_set(&err, "second %s", "x");   /* the first is freed (ASan/valgrind see a leak otherwise) */
    assert_string_equal(err, "second x");
    free(err);
    xerr_set(NULL, "nobody wants %s", "this");   /* a NULL out-parameter is allowed */
}

static void test_err_first_keeps_first(void **state)
{
    (void)state;
    char *err = NULL;
    xerr_first(&err, "cause %d", 1);
    xerr_first(&err, "consequence %d", 2);
    assert_string_equal(err, "cause 1");
    free(err);
    xerr_first(NULL, "%s", "ignored");
}

static void test_err_take(void **state)
{
    (void)state;
    char *err = xfmt("old");
    xerr_take(&err, xfmt("new"));
    assert_string_equal(err, "new");
    free(err);
    xerr_take(NULL, xfmt("freed, not leaked"));
}

static void test_strdup(void **state)
{
    (void)state;
    assert_null(xstrdup(NULL));            /* absent stays absent */
    char *d = xstrdup("abc");
    assert_string_equal(d, "abc");
    free(d);
}

static void test_grow(void **state)
{
    (void)state;
    char *b = NULL;
    size_t cap = 0;
    assert_int_equal(xgrow(&b, &cap, 1), 0);
    assert_int_equal(cap, 4096);
    assert_int_equal(xgrow(&b, &cap, 4096), 0);        /* fits: unchanged */
    assert_int_equal(cap, 4096);
    assert_int_equal(xgrow(&b, &cap, 10000), 0);
    assert_int_equal(cap, 16384);
    b[9999] = 'x';
    free(b);
}

static void test_trim(void **state)
{
    (void)state;
    char a[] = " \t x y \n", b[] = "   ", c[] = "z";
    assert_string_equal(xstr_trim(a), "x y");
    assert_string_equal(xstr_trim(b), "");
    assert_string_equal(xstr_trim(c), "z");
}

static void test_dns_label(void **state)
{
    (void)state;
    assert_true(xstr_dns_label("vm-prod"));
    assert_true(xstr_dns_label("a"));
    assert_true(xstr_dns_label("0x9"));
    char l63[64], l64[65];
    memset(l63, 'a', 63);
    l63[63] = '\0';
    memset(l64, 'a', 64);
    l64[64] = '\0';
    assert_true(xstr_dns_label(l63));
    assert_false(xstr_dns_label(l64));
    assert_false(xstr_dns_label(""));
    assert_false(xstr_dns_label(NULL));
    assert_false(xstr_dns_label("-a"));
    assert_false(xstr_dns_label("a-"));
    assert_false(xstr_dns_label("Vm"));
    assert_false(xstr_dns_label("vm_prod"));
    assert_false(xstr_dns_label("vm.prod"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmt),
        cmocka_unit_test(test_err_set_replaces),
        cmocka_unit_test(test_err_first_keeps_first),
        cmocka_unit_test(test_err_take),
        cmocka_unit_test(test_strdup),
        cmocka_unit_test(test_grow),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_dns_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
