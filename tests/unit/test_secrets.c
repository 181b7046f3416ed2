/* test_secrets.c - cmocka tests of lib/base/secrets.h, the one set of rules that
 * keeps secret values out of module results and forwarder logs: minimum
 * length, escaped spellings, the mask, longest-first and overlapping
 * secrets, adjacent occurrences, a secret that cuts a UTF-8 character, JSON
 * values (keys included) and JSON text (a secret spelled with escapes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "secrets.h"

#include <stdlib.h>
#include <string.h>

static void expect_scrub(const secret_set *s, const char *in, const char *want)
{
    char *got = secrets_scrub_copy(s, in);
    if (strcmp(got, want) != 0)
        fail_msg("scrub(\"%s\") = \"%s\", want \"%s\"", in, got, want);
    free(got);
}

static void test_registration(void **state)
{
    (void)state;
    secret_set s = { 0 };
    secrets_add(&s, NULL);
    secrets_add(&s, "");                 /* shorter than SECRETS_MIN_LEN */
    assert_int_equal(secrets_count(&s), 0);
    secrets_add(&s, "x");                /* one byte is a secret */
    secrets_add(&s, "x");                /* duplicates ignored */
    assert_int_equal(secrets_count(&s), 1);
    expect_scrub(&s, "axb", "a" SECRETS_MASK "b");
    /* escaped spellings: '"' and non-ASCII have them, ASCII text not */
    secrets_add(&s, "q\"t");
    assert_int_equal(secrets_count(&s), 3);      /* x, q"t, q\"t (same with or without ensure_ascii) */
    secrets_add(&s, "caf\xc3\xa9");
    assert_int_equal(secrets_count(&s), 6);      /* + café, caf\u00E9 (jansson), caf\u00e9 (Python) */
    expect_scrub(&s, "{\"m\":\"q\\\"t\"} caf\\u00e9 caf\\u00E9",
                 "{\"m\":\"" SECRETS_MASK "\"} " SECRETS_MASK " " SECRETS_MASK);
    assert_true(secrets_in(&s, "..caf\xc3\xa9..", 8));
    assert_false(secrets_in(&s, "cafe", 4));
    secrets_clear(&s);
    assert_int_equal(secrets_count(&s), 0);
    expect_scrub(&s, "axb", "axb");
    secrets_clear(&s);
}

static void test_longest_first_and_overlap(void **state)
{
    (void)state;
    secret_set s = { 0 };
    /* registered shortest first: the longer is still masked whole */
    secrets_add(&s, "abc");
    secrets_add(&s, "abcdef");
    expect_scrub(&s, "1 abcdef 2 abc 3", "1 " SECRETS_MASK " 2 " SECRETS_MASK " 3");
    /* two secrets overlapping in the text: one run, no byte of either left */
    secrets_add(&s, "efgh");
    expect_scrub(&s, "abcdefgh!", SECRETS_MASK "!");
    /* adjacent occurrences stay one mask each */
    expect_scrub(&s, "abcabc", SECRETS_MASK SECRETS_MASK);
    /* overlapping occurrences of one secret */
    secret_set t = { 0 };
    secrets_add(&t, "aa");
    expect_scrub(&t, "aaa", SECRETS_MASK);
    expect_scrub(&t, "aaaa", SECRETS_MASK);      /* 0-2, 1-3, 2-4 overlap: one run */
    /* a secret containing the mask's character */
    secrets_add(&t, "*");
    expect_scrub(&t, "a*b", "a" SECRETS_MASK "b");
    secrets_clear(&t);
    secrets_clear(&s);
}

static void test_utf8_cut(void **state)
{
    (void)state;
    secret_set s = { 0 };
    secrets_add(&s, "\xa9-7781");                /* from a file: starts mid-character */
    expect_scrub(&s, "caf\xc3\xa9-7781", SECRETS_MASK);
    /* text that was not UTF-8 in the first place is masked in place */
    expect_scrub(&s, "\xff\xa9-7781", "\xff" SECRETS_MASK);
    json_t *v = json_pack("{s:s}", "k", "caf\xc3\xa9-7781 and more");
    secrets_scrub_json(&s, v);
    assert_string_equal(json_string_value(json_object_get(v, "k")), SECRETS_MASK);
    json_decref(v);
    secrets_clear(&s);
}

static void test_json_value(void **state)
{
    (void)state;
    secret_set s = { 0 };
    secrets_add(&s, "pw12");
    secrets_add(&s, "123456");
    json_t *v = json_pack("{s:s, s:[s, i, {s:s}], s:s}", "a", "pw12pw12", "b", "no", 123456,
                          "pw12-key", "deep pw12", "n", "port 123456");
    secrets_scrub_json(&s, v);
    assert_string_equal(json_string_value(json_object_get(v, "a")), SECRETS_MASK SECRETS_MASK);
    json_t *b = json_object_get(v, "b");
    assert_int_equal(json_integer_value(json_array_get(b, 1)), 123456);     /* numbers are kept */
    assert_string_equal(json_string_value(json_object_get(json_array_get(b, 2),
                                                          SECRETS_MASK "-key")), "deep " SECRETS_MASK);
    assert_null(json_object_get(json_array_get(b, 2), "pw12-key"));
    assert_string_equal(json_string_value(json_object_get(v, "n")), "port " SECRETS_MASK);
    /* a string holding NUL bytes */
    json_t *z = json_stringn("a\0pw12", 6);
    secrets_scrub_json(&s, z);
    assert_int_equal(json_string_length(z), 2 + strlen(SECRETS_MASK));
    json_decref(z);
    json_decref(v);
    secrets_scrub_json(&s, NULL);
    secret_set none = { 0 };
    v = json_string("pw12");
    secrets_scrub_json(&none, v);
    assert_string_equal(json_string_value(v), "pw12");
    json_decref(v);
    secrets_clear(&s);
}

static void test_json_text(void **state)
{
    (void)state;
    secret_set s = { 0 };
    size_t ol = 0;
    const char *clean = "{\"a\":\"nothing here\",\"b\":[1,2]}";
    assert_null(secrets_scrub_json_text(&s, clean, strlen(clean), &ol));   /* no secrets */
    secrets_add(&s, "abcdef");
    assert_null(secrets_scrub_json_text(&s, clean, strlen(clean), &ol));   /* kept as it is */
    /* a secret split by a JSON escape: not in the bytes, in the value */
    const char *split = "{\"k\":\"x ab\\u0063def y\",\"o\":1}";
    assert_null(strstr(split, "abcdef"));
    char *t = secrets_scrub_json_text(&s, split, strlen(split), &ol);
    assert_non_null(t);
    assert_string_equal(t, "{\"k\":\"x " SECRETS_MASK " y\",\"o\":1}");
    assert_int_equal(ol, strlen(t));
    free(t);
    /* in a key, literally */
    const char *lit = "{\"abcdef\":\"v\"}";
    t = secrets_scrub_json_text(&s, lit, strlen(lit), &ol);
    assert_string_equal(t, "{\"" SECRETS_MASK "\":\"v\"}");
    free(t);
    /* any escape means a re-write (an escape could spell a secret) */
    const char *esc = "{\"a\":\"caf\\u00e9\"}";
    t = secrets_scrub_json_text(&s, esc, strlen(esc), &ol);
    assert_string_equal(t, "{\"a\":\"caf\xc3\xa9\"}");
    free(t);
    /* not JSON: masked as bytes */
    const char *bad = "{abcdef";
    t = secrets_scrub_json_text(&s, bad, strlen(bad), &ol);
    assert_string_equal(t, "{" SECRETS_MASK);
    free(t);
    /* not JSON until a secret (a stray byte from a file) is masked: then its
     * escapes are read too (found by tests/fuzz: fuzz_secrets) */
    secrets_add(&s, "\xa9");
    const char *stray = "{\"k\":\"ab\\u0063def\",\"x\":\"\xa9\"}";
    t = secrets_scrub_json_text(&s, stray, strlen(stray), &ol);
    assert_string_equal(t, "{\"k\":\"" SECRETS_MASK "\",\"x\":\"" SECRETS_MASK "\"}");
    free(t);
    /* len is honoured (no NUL needed) */
    const char *part = "\"abcdef\"trailing abcdef";
    t = secrets_scrub_json_text(&s, part, 8, &ol);
    assert_string_equal(t, "\"" SECRETS_MASK "\"");
    free(t);
    secrets_clear(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registration),
        cmocka_unit_test(test_longest_first_and_overlap),
        cmocka_unit_test(test_utf8_cut),
        cmocka_unit_test(test_json_value),
        cmocka_unit_test(test_json_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
