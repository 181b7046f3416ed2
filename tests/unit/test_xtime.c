/* test_xtime.c - unit tests for lib/base/xtime.c: RFC 3339 formatting (UTC,
 * floored seconds), the full parser (fractions floored, offsets converted)
 * and the strict UTC parser, and the garbage both refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "velero_store.h"
#include "xtime.h"

static void test_format(void **state)
{
    (void)state;
    char b[XTIME_RFC3339_LEN];
    xtime_rfc3339(0, b);
    assert_string_equal(b, "1970-01-01T00:00:00Z");
    xtime_rfc3339(1796302807, b);            /* 2026-12-03T13:00:07Z */
    assert_string_equal(b, "2026-12-03T13:00:07Z");
    xtime_rfc3339(951782400, b);             /* leap day 2000 */
    assert_string_equal(b, "2000-02-29T00:00:00Z");
    xtime_rfc3339(-5, b);
    assert_string_equal(b, "1970-01-01T00:00:00Z");
}

static void test_round_trip(void **state)
{
    (void)state;
    char b[XTIME_RFC3339_LEN];
    for (time_t t = 0; t < 4102444800; t += 86399 * 7 + 13) {   /* up to 2100, odd steps */
        time_t back = -1;
        xtime_rfc3339(t, b);
        assert_true(xtime_parse_utc(b, &back));
        assert_int_equal(back, t);
        back = -1;
        assert_true(xtime_parse(b, &back));
        assert_int_equal(back, t);
    }
}

static void test_parse_full(void **state)
{
    (void)state;
    time_t t = 0;
    assert_true(xtime_parse("2026-12-03T13:00:07.999Z", &t));     /* fraction floored */
    assert_int_equal(t, 1796302807);
    assert_true(xtime_parse("2026-12-03T14:00:07+01:00", &t));    /* offset converted */
    assert_int_equal(t, 1796302807);
    assert_true(xtime_parse("2026-12-03T08:30:07-04:30", &t));
    assert_int_equal(t, 1796302807);
    assert_true(xtime_parse("2026-12-03t13:00:07z", &t));
    assert_int_equal(t, 1796302807);
    assert_true(xtime_parse("2016-12-31T23:59:60Z", &t));         /* leap second -> :59 */
    assert_int_equal(t, 1483228799);
}

static void test_parse_utc_refuses_offsets(void **state)
{
    (void)state;
    time_t t = 42;
    assert_false(xtime_parse_utc("2026-12-03T14:00:07+01:00", &t));
    assert_false(xtime_parse_utc("2026-12-03T13:00:07.5Z", &t));
    assert_false(xtime_parse_utc("2026-12-03t13:00:07Z", &t));
    assert_false(xtime_parse_utc("2026-12-03T13:00:07z", &t));
    assert_int_equal(t, 42);                                     /* untouched */
}

static void test_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "yesterday", "2026-12-03", "2026-12-03T13:00:07", " 2026-12-03T13:00:07Z",
        "2026-12-03T13:00:07Z ", "2026-12-03T13:00:07Zx", "2026-13-03T13:00:07Z",
        "2026-00-03T13:00:07Z", "2026-02-29T13:00:07Z", "2026-04-31T00:00:00Z",
        "2026-12-00T13:00:07Z", "2026-12-03T24:00:00Z", "2026-12-03T13:60:00Z",
        "2026-12-03T13:00:61Z", "2026-12-3T13:00:07Z", "+026-12-03T13:00:07Z",
        "1969-12-31T23:59:59Z", "2026-12-03 13:00:07Z", "2026-12-03T13:00:07.Z",
        "2026-12-03T13:00:07+0100", "2026-12-03T13:00:07+24:00", "2026-12-03T13:00:07+01",
        "1970-01-01T00:30:00+01:00", "２026-12-03T13:00:07Z", NULL
    };
    for (const char *const *b = bad; *b; b++) {
        time_t t = 42;
        if (xtime_parse(*b, &t) || xtime_parse_utc(*b, &t))
            fail_msg("accepted '%s'", *b);
        assert_int_equal(t, 42);
    }
    time_t t = 42;
    assert_false(xtime_parse(NULL, &t));
    assert_false(xtime_parse_utc(NULL, &t));
    assert_true(xtime_parse("2024-02-29T00:00:00Z", &t));          /* leap year ok */
}

/* velero's backup times go through the same parser: strptime's leniency
 * (single digits, day 30 of February normalised into March) is gone. */
static void test_velero_uses_strict_parser(void **state)
{
    (void)state;
    time_t t = 42;
    assert_false(vs_parse_time("2026-02-30T00:00:00Z", &t));
    assert_false(vs_parse_time("2026-12-3T13:00:07Z", &t));
    assert_false(vs_parse_time(" 2026-12-03T13:00:07Z", &t));
    assert_int_equal(t, 42);
    assert_true(vs_parse_time("2026-12-03T14:00:07.25+01:00", &t));
    assert_int_equal(t, 1796302807);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_parse_full),
        cmocka_unit_test(test_parse_utc_refuses_offsets),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_velero_uses_strict_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
