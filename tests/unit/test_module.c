/* test_module.c - cmocka tests of the binary-module runtime (lib/module/module.h):
 * type conversions, required/default/choices/elements/suboptions/aliases/env
 * fallback/groups, unknown parameters, _ansible_* control keys, no_log
 * masking and scrubbing, check/diff/no_log result shapes, and the process
 * level behaviour of mod_init/mod_exit (args file errors, stdout guard,
 * exit codes, unsupported check mode) in forked children.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "jsonx.h"
#include "module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ fixtures */

static const char *const state_choices[] = { "present", "absent", NULL };
static const char *const color_choices[] = { "red", "green", NULL };
static const char *const token_aliases[] = { "api_key", "api_token", NULL };

static const mod_opt conn_opts[] = {
    { .name = "host", .type = OPT_STR, .required = true },
    { .name = "port", .type = OPT_INT, .def = "6443" },
    { .name = "token", .type = OPT_STR, .no_log = true },
    { 0 }
};

static const mod_opt vol_opts[] = {
    { .name = "name", .type = OPT_STR, .required = true },
    { .name = "password", .type = OPT_STR, .no_log = true },
    { .name = "size", .type = OPT_INT },
    { 0 }
};

static const mod_opt opts[] = {
    { .name = "state", .type = OPT_STR, .def = "\"present\"", .choices = state_choices },
    { .name = "name", .type = OPT_STR },
    { .name = "count", .type = OPT_INT },
    { .name = "ratio", .type = OPT_FLOAT },
    { .name = "force", .type = OPT_BOOL, .def = "false" },
    { .name = "tags", .type = OPT_LIST, .elements = OPT_STR },
    { .name = "ports", .type = OPT_LIST, .elements = OPT_INT },
    { .name = "colors", .type = OPT_LIST, .elements = OPT_STR, .choices = color_choices },
    { .name = "labels", .type = OPT_DICT },
    { .name = "dest", .type = OPT_PATH },
    { .name = "extra", .type = OPT_RAW },
    { .name = "token", .type = OPT_STR, .no_log = true, .aliases = token_aliases,
      .env_fallback = "TEST_MODULE_TOKEN" },
    { .name = "source", .type = OPT_DICT, .suboptions = conn_opts },
    { .name = "volumes", .type = OPT_LIST, .elements = OPT_DICT, .suboptions = vol_opts },
    { .name = "a", .type = OPT_STR },
    { .name = "b", .type = OPT_STR },
    { .name = "c", .type = OPT_STR },
    { 0 }
};

static const char *const g_ab[] = { "a", "b", NULL };
static const char *const g_bc[] = { "b", "c", NULL };
static const char *const *const mutex[] = { g_ab, NULL };
static const char *const *const together[] = { g_bc, NULL };

static const mod_spec spec = {
    .name = "example", .opts = opts, .supports_check_mode = true,
    .mutually_exclusive = mutex, .required_together = together,
};

static const mod_opt need_opts[] = {
    { .name = "x", .type = OPT_STR, .required = true },
    { .name = "y", .type = OPT_STR, .required = true },
    { .name = "p", .type = OPT_STR },
    { .name = "q", .type = OPT_STR },
    { 0 }
};
static const char *const g_pq[] = { "p", "q", NULL };
static const char *const *const one_of[] = { g_pq, NULL };
static const mod_spec need_spec = { .name = "need", .opts = need_opts, .required_one_of = one_of,
                                    .supports_check_mode = true };

/* Parses JSON text against sp; returns mod_parse's rc, *err as given. */
static int parse(module *m, const mod_spec *sp, const char *text, char **err)
{
    json_error_t e;
    json_t *args = json_loads(text, 0, &e);
    if (!args)
        fail_msg("test JSON invalid: %s: %s", text, e.text);
    int rc = mod_parse(m, sp, args, err);
    json_decref(args);
    return rc;
}

/* Expects validation to fail with a message containing `want`. */
static void expect_error(const mod_spec *sp, const char *text, const char *want)
{
    module m;
    char *err = NULL;
    int rc = parse(&m, sp, text, &err);
    if (rc == 0 || !err || !strstr(err, want))
        fail_msg("args %s: want error containing \"%s\", got rc=%d \"%s\"",
                 text, want, rc, err ? err : "(none)");
    free(err);
    mod_free(&m);
}

static void ok(module *m, const mod_spec *sp, const char *text)
{
    char *err = NULL;
    if (parse(m, sp, text, &err) != 0)
        fail_msg("args %s: unexpected error: %s", text, err);
}

static bool contains(json_t *v, const char *needle)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    bool r = s && strstr(s, needle);
    free(s);
    return r;
}

/* ------------------------------------------------------------ types */

static void test_defaults_and_absent(void **state)
{
    module m;
    ok(&m, &spec, "{}");
    assert_string_equal(mod_str(&m, "state"), "present");
    assert_false(mod_bool(&m, "force"));
    assert_true(json_is_false(mod_param(&m, "force")));
    assert_null(mod_param(&m, "name"));          /* absent: NULL, not json null */
    assert_null(mod_str(&m, "name"));
    assert_int_equal(mod_int(&m, "count"), 0);
    assert_true(json_is_null(json_object_get(m.params, "name")));  /* shown as null */
    assert_null(mod_param(&m, "source"));          /* dict with suboptions stays absent */
    mod_free(&m);
}

static void test_str_conversion(void **state)
{
    module m;
    ok(&m, &spec, "{\"name\": 42}");
    assert_string_equal(mod_str(&m, "name"), "42");
    json_t *w = json_object_get(m.result, "warnings");
    assert_int_equal(json_array_size(w), 1);
    assert_non_null(strstr(json_string_value(json_array_get(w, 0)), "converted to '42'"));
    mod_free(&m);
    ok(&m, &spec, "{\"name\": 1.5, \"_ansible_string_conversion_action\": \"ignore\"}");
    assert_string_equal(mod_str(&m, "name"), "1.5");
    assert_null(json_object_get(m.result, "warnings"));
    mod_free(&m);
    ok(&m, &spec, "{\"name\": true}");
    assert_string_equal(mod_str(&m, "name"), "True");
    mod_free(&m);
    expect_error(&spec, "{\"name\": 7, \"_ansible_string_conversion_action\": \"error\"}",
                 "in a string field was converted");
    expect_error(&spec, "{\"name\": [1]}", "argument 'name' is of type list");
}

static void test_bool_conversion(void **state)
{
    const char *yes[] = { "true", "\"yes\"", "\"on\"", "\"1\"", "1", "\"TRUE\"", "\" y \"", "\"t\"" };
    const char *no[] = { "false", "\"no\"", "\"off\"", "\"0\"", "0", "\"False\"", "\"n\"", "\"f\"" };
    for (size_t i = 0; i < 8; i++) {
        char buf[64];
        module m;
        snprintf(buf, sizeof buf, "{\"force\": %s}", yes[i]);
        ok(&m, &spec, buf);
        assert_true(mod_bool(&m, "force"));
        mod_free(&m);
        snprintf(buf, sizeof buf, "{\"force\": %s}", no[i]);
        ok(&m, &spec, buf);
        assert_false(mod_bool(&m, "force"));
        assert_true(json_is_boolean(mod_param(&m, "force")));
        mod_free(&m);
    }
    expect_error(&spec, "{\"force\": \"maybe\"}",
                 "argument 'force' is of type str and we were unable to convert to bool");
    expect_error(&spec, "{\"force\": 2}", "argument 'force'");
    expect_error(&spec, "{\"force\": [true]}", "argument 'force' is of type list");
}

static void test_int_float_conversion(void **state)
{
    module m;
    ok(&m, &spec, "{\"count\": \" 42 \", \"ratio\": \"1.5\"}");
    assert_int_equal(mod_int(&m, "count"), 42);
    assert_true(json_is_integer(mod_param(&m, "count")));
    assert_true(mod_float(&m, "ratio") == 1.5);
    mod_free(&m);
    ok(&m, &spec, "{\"count\": 3.0, \"ratio\": 2}");
    assert_int_equal(mod_int(&m, "count"), 3);
    assert_true(json_is_real(mod_param(&m, "ratio")));
    mod_free(&m);
    expect_error(&spec, "{\"count\": \"4x\"}",
                 "argument 'count' is of type str and we were unable to convert to int");
    expect_error(&spec, "{\"count\": 1.5}", "argument 'count' is of type float");
    expect_error(&spec, "{\"count\": \"99999999999999999999\"}", "argument 'count'");
    expect_error(&spec, "{\"ratio\": \"nan\"}", "argument 'ratio'");
    expect_error(&spec, "{\"ratio\": {}}", "argument 'ratio' is of type dict");
}

static void test_list_conversion(void **state)
{
    module m;
    ok(&m, &spec, "{\"tags\": \"a,b, c\", \"ports\": [\"80\", 443]}");
    json_t *t = mod_param(&m, "tags");
    assert_int_equal(json_array_size(t), 3);
    assert_string_equal(json_string_value(json_array_get(t, 2)), " c");  /* no trim, as Ansible */
    json_t *p = mod_param(&m, "ports");
    assert_true(json_is_integer(json_array_get(p, 0)));
    assert_int_equal(json_integer_value(json_array_get(p, 0)), 80);
    mod_free(&m);
    ok(&m, &spec, "{\"tags\": 5, \"ports\": \"22,23\"}");
    assert_string_equal(json_string_value(json_array_get(mod_param(&m, "tags"), 0)), "5");
    assert_int_equal(json_integer_value(json_array_get(mod_param(&m, "ports"), 1)), 23);
    mod_free(&m);
    expect_error(&spec, "{\"ports\": [80, \"http\"]}",
                 "Elements value for option 'ports' is of type str and we were unable to convert to int");
    expect_error(&spec, "{\"tags\": {\"a\": 1}}", "argument 'tags' is of type dict");
    ok(&m, &spec, "{\"colors\": \"red,green\"}");
    mod_free(&m);
    expect_error(&spec, "{\"colors\": [\"red\", \"blue\"]}",
                 "value of colors must be one or more of: red, green. Got no match for: blue");
}

static void test_dict_conversion(void **state)
{
    module m;
    ok(&m, &spec, "{\"labels\": \"{\\\"app\\\": \\\"vm\\\"}\"}");
    assert_string_equal(mod_dict_str(mod_param(&m, "labels"), "app"), "vm");
    mod_free(&m);
    ok(&m, &spec, "{\"labels\": \"a=1, b='x y' c=\\\"q=r\\\"\"}");
    json_t *l = mod_param(&m, "labels");
    assert_string_equal(mod_dict_str(l, "a"), "1");
    assert_string_equal(mod_dict_str(l, "b"), "x y");
    assert_string_equal(mod_dict_str(l, "c"), "q=r");
    assert_null(mod_dict_str(l, "missing"));
    assert_null(mod_dict_str(NULL, "a"));
    mod_free(&m);
    expect_error(&spec, "{\"labels\": \"just words\"}",
                 "argument 'labels' is of type str and we were unable to convert to dict");
    expect_error(&spec, "{\"labels\": \"{not json\"}", "argument 'labels'");
    expect_error(&spec, "{\"labels\": [1]}", "argument 'labels' is of type list");
}

static void test_path_and_raw(void **state)
{
    module m;
    setenv("HOME", "/home/tester", 1);
    setenv("TEST_MODULE_DIR", "data", 1);
    ok(&m, &spec, "{\"dest\": \"~/x/$TEST_MODULE_DIR/${TEST_MODULE_DIR}/$NOPE_NOT_SET\", "
                  "\"extra\": {\"any\": [1, 2]}}");
    assert_string_equal(mod_str(&m, "dest"), "/home/tester/x/data/data/$NOPE_NOT_SET");
    assert_true(json_is_object(mod_param(&m, "extra")));
    mod_free(&m);
    ok(&m, &spec, "{\"dest\": \"/abs/~x\"}");
    assert_string_equal(mod_str(&m, "dest"), "/abs/~x");
    mod_free(&m);
}

/* ------------------------------------------------------------ rules */

static void test_choices(void **state)
{
    module m;
    ok(&m, &spec, "{\"state\": \"absent\"}");
    assert_string_equal(mod_str(&m, "state"), "absent");
    mod_free(&m);
    expect_error(&spec, "{\"state\": \"gone\"}",
                 "value of state must be one of: present, absent, got: gone");
}

static void test_required(void **state)
{
    expect_error(&need_spec, "{\"p\": \"1\"}", "missing required arguments: x, y");
    expect_error(&need_spec, "{\"x\": \"1\", \"y\": null, \"p\": \"1\"}",
                 "missing required arguments: y");
    expect_error(&need_spec, "{\"x\": \"1\", \"y\": \"2\"}",
                 "one of the following is required: p, q");
    module m;
    ok(&m, &need_spec, "{\"x\": \"1\", \"y\": \"2\", \"q\": \"3\"}");
    mod_free(&m);
}

static void test_groups(void **state)
{
    expect_error(&spec, "{\"a\": \"1\", \"b\": \"2\", \"c\": \"3\"}",
                 "parameters are mutually exclusive: a|b");
    expect_error(&spec, "{\"b\": \"2\"}", "parameters are required together: b, c");
    module m;
    ok(&m, &spec, "{\"b\": \"2\", \"c\": \"3\"}");
    mod_free(&m);
    ok(&m, &spec, "{\"a\": \"1\", \"b\": null}");   /* null counts as absent */
    mod_free(&m);
}

static void test_unknown_parameters(void **state)
{
    expect_error(&need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\", \"zz\": 1, \"aa\": 2}",
                 "Unsupported parameters for (ocpv.dr.need) module: aa, zz. "
                 "Supported parameters include: p, q, x, y.");
    expect_error(&spec, "{\"bogus\": 1}",
                 "Supported parameters include: a, b, c, colors, count, dest, extra, force, "
                 "labels, name, ports, ratio, source, state, tags, token (api_key, api_token), volumes.");
    /* the FQCN Ansible sends is used in the message */
    expect_error(&need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\", \"zz\": 1, "
                             "\"_ansible_module_name\": \"ocpv.dr.real_name\"}",
                 "Unsupported parameters for (ocpv.dr.real_name) module: zz.");
    /* unknown _ansible_* keys are ignored, at the top level only */
    module m;
    ok(&m, &need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\", \"_ansible_brand_new\": [1], "
                       "\"_ansible_tmpdir\": \"/tmp/x\", \"_ansible_remote_tmp\": \"~/.a\"}");
    assert_null(json_object_get(m.params, "_ansible_brand_new"));
    mod_free(&m);
    expect_error(&spec, "{\"source\": {\"host\": \"h\", \"_ansible_x\": 1}}",
                 "module: _ansible_x found in source.");
    /* _ansible_ignore_unknown_opts */
    ok(&m, &need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\", \"zz\": 1, "
                       "\"_ansible_ignore_unknown_opts\": true}");
    assert_null(json_object_get(m.params, "zz"));
    mod_free(&m);
}

static void test_aliases_and_env(void **state)
{
    module m;
    unsetenv("TEST_MODULE_TOKEN");
    ok(&m, &spec, "{\"api_key\": \"k1\"}");
    assert_string_equal(mod_str(&m, "token"), "k1");
    assert_null(json_object_get(m.params, "api_key"));
    mod_free(&m);
    ok(&m, &spec, "{\"token\": \"k1\", \"api_token\": \"k2\"}");
    assert_string_equal(mod_str(&m, "token"), "k2");             /* the alias wins */
    assert_true(contains(json_object_get(m.result, "warnings"),
                         "Both option token and its alias api_token are set."));
    mod_free(&m);
    setenv("TEST_MODULE_TOKEN", "from-env", 1);
    ok(&m, &spec, "{}");
    assert_string_equal(mod_str(&m, "token"), "from-env");
    assert_int_equal(secrets_count(&m.secrets), 1);               /* env value is no_log */
    mod_free(&m);
    ok(&m, &spec, "{\"token\": \"given\"}");
    assert_string_equal(mod_str(&m, "token"), "given");
    mod_free(&m);
    unsetenv("TEST_MODULE_TOKEN");
}

static void test_suboptions(void **state)
{
    module m;
    ok(&m, &spec, "{\"source\": {\"host\": \"api\", \"port\": \"8443\"}, "
                  "\"volumes\": [{\"name\": \"v1\", \"size\": \"3\"}, \"name=v2 size=4\"]}");
    json_t *src = mod_param(&m, "source");
    assert_string_equal(mod_dict_str(src, "host"), "api");
    assert_int_equal(json_integer_value(json_object_get(src, "port")), 8443);
    assert_true(json_is_null(json_object_get(src, "token")));
    json_t *vols = mod_param(&m, "volumes");
    assert_int_equal(json_array_size(vols), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(vols, 1), "size")), 4);
    mod_free(&m);
    ok(&m, &spec, "{\"source\": \"host=api\"}");
    assert_int_equal(json_integer_value(json_object_get(mod_param(&m, "source"), "port")), 6443);
    mod_free(&m);
    expect_error(&spec, "{\"source\": {\"port\": 1}}", "missing required arguments: host found in source");
    expect_error(&spec, "{\"source\": {\"host\": \"h\", \"port\": \"x\"}}",
                 "argument 'port' is of type str and we were unable to convert to int");
    expect_error(&spec, "{\"source\": {\"host\": \"h\", \"port\": \"x\"}}", "found in source");
    expect_error(&spec, "{\"source\": {\"host\": \"h\", \"nope\": 1}}",
                 "Unsupported parameters for (ocpv.dr.example) module: nope found in source. "
                 "Supported parameters include: host, port, token.");
    expect_error(&spec, "{\"volumes\": [{\"name\": \"a\"}, {\"size\": 1}]}",
                 "missing required arguments: name found in volumes[1]");
}

static void test_control_keys(void **state)
{
    module m;
    ok(&m, &need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\"}");
    assert_false(m.check_mode);
    assert_false(m.diff_mode);
    assert_false(m.no_log);
    assert_int_equal(m.verbosity, 0);
    mod_free(&m);
    ok(&m, &need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\", \"_ansible_check_mode\": true, "
                       "\"_ansible_diff\": true, \"_ansible_no_log\": true, \"_ansible_verbosity\": 3}");
    assert_true(m.check_mode);
    assert_true(m.diff_mode);
    assert_true(m.no_log);
    assert_int_equal(m.verbosity, 3);
    mod_free(&m);
}

static void test_spec_errors(void **state)
{
    static const mod_opt bad_def[] = { { .name = "x", .type = OPT_INT, .def = "nope" }, { 0 } };
    static const mod_spec s1 = { .name = "bad", .opts = bad_def };
    expect_error(&s1, "{}", "module spec error: the default of 'x' is not JSON text");
    static const mod_opt bad_choice_def[] = {
        { .name = "x", .type = OPT_STR, .def = "\"z\"", .choices = state_choices }, { 0 } };
    static const mod_spec s2 = { .name = "bad", .opts = bad_choice_def };
    expect_error(&s2, "{}", "value of x must be one of: present, absent, got: z");
    static const char *const g_x[] = { "x", "ghost", NULL };
    static const char *const *const gg[] = { g_x, NULL };
    static const mod_spec s3 = { .name = "bad", .opts = bad_def, .mutually_exclusive = gg };
    expect_error(&s3, "{}", "group names unknown option 'ghost'");
    expect_error(&need_spec, "[1, 2]", "module arguments must be a JSON object");
    static const mod_opt req_def[] = {
        { .name = "x", .type = OPT_INT, .required = true, .def = "1" }, { 0 } };
    static const mod_spec s4 = { .name = "bad", .opts = req_def };
    expect_error(&s4, "{}", "module spec error: option 'x' is required and has a default");
    static const char *const y_alias[] = { "y", NULL };
    static const mod_opt clash[] = {
        { .name = "x", .type = OPT_STR, .aliases = y_alias },
        { .name = "y", .type = OPT_STR }, { 0 } };
    static const mod_opt nested_clash[] = {
        { .name = "d", .type = OPT_DICT, .suboptions = clash }, { 0 } };
    static const mod_spec s5 = { .name = "bad", .opts = nested_clash };
    expect_error(&s5, "{}", "module spec error: alias 'y' of option 'x'");
}

/* ------------------------------------------------------------ results */

static void test_render_shape(void **state)
{
    module m;
    ok(&m, &need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\"}");
    json_t *r = mod_render(&m, false, NULL);
    assert_true(json_is_false(json_object_get(r, "changed")));
    assert_true(json_is_false(json_object_get(r, "failed")));
    assert_null(json_object_get(r, "msg"));
    assert_null(json_object_get(r, "diff"));
    assert_null(json_object_get(r, "warnings"));
    assert_string_equal(jx_str(r, "invocation.module_args.x"), "1");
    json_decref(r);
    mod_changed(&m, true);
    mod_set(&m, "custom", json_integer(7));
    mod_set(&m, "ignored", NULL);
    mod_warn(&m, "look at %s", "this");
    mod_deprecate(&m, "old %d", 1);
    mod_diff(&m, json_string("a"), json_string("b"));     /* diff mode off: dropped */
    r = mod_render(&m, true, "it broke");
    assert_true(json_is_true(json_object_get(r, "changed")));
    assert_true(json_is_true(json_object_get(r, "failed")));
    assert_string_equal(json_string_value(json_object_get(r, "msg")), "it broke");
    assert_int_equal(json_integer_value(json_object_get(r, "custom")), 7);
    assert_string_equal(json_string_value(json_array_get(json_object_get(r, "warnings"), 0)),
                        "look at this");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(r, "deprecations"), 0), "msg")), "old 1");
    assert_null(json_object_get(r, "diff"));
    json_decref(r);
    mod_free(&m);
}

static void test_diff_mode(void **state)
{
    module m;
    ok(&m, &need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\", \"_ansible_diff\": true}");
    mod_diff(&m, json_string("old"), json_pack("{ss}", "k", "new"));
    json_t *r = mod_render(&m, false, NULL);
    json_t *d = json_object_get(r, "diff");
    assert_string_equal(json_string_value(json_object_get(d, "before")), "old");
    assert_string_equal(mod_dict_str(json_object_get(d, "after"), "k"), "new");
    json_decref(r);
    mod_free(&m);
    /* no_log: diff and invocation suppressed, even if a module sets diff itself */
    ok(&m, &need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\", \"_ansible_diff\": true, "
                       "\"_ansible_no_log\": true}");
    mod_diff(&m, json_string("old"), json_string("new"));
    mod_set(&m, "diff", json_pack("{ss}", "before", "x"));
    r = mod_render(&m, false, NULL);
    assert_null(json_object_get(r, "diff"));
    assert_null(json_object_get(r, "invocation"));
    json_decref(r);
    mod_free(&m);
}

static void test_masking(void **state)
{
    module m;
    ok(&m, &spec, "{\"token\": \"tok-SECRET-1\", \"name\": \"n\", "
                  "\"source\": {\"host\": \"h\", \"token\": \"src-SECRET-2\"}, "
                  "\"volumes\": [{\"name\": \"v\", \"password\": \"vol-SECRET-3\"}]}");
    /* the module still sees the real values */
    assert_string_equal(mod_str(&m, "token"), "tok-SECRET-1");
    assert_string_equal(mod_dict_str(mod_param(&m, "source"), "token"), "src-SECRET-2");
    json_t *r = mod_render(&m, false, NULL);
    json_t *args = json_object_get(json_object_get(r, "invocation"), "module_args");
    assert_non_null(args);
    assert_string_equal(mod_dict_str(args, "token"), "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER");
    assert_string_equal(mod_dict_str(json_object_get(args, "source"), "token"),
                        "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER");
    assert_string_equal(mod_dict_str(json_array_get(json_object_get(args, "volumes"), 0), "password"),
                        "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER");
    assert_string_equal(mod_dict_str(args, "name"), "n");
    assert_true(json_is_null(json_object_get(args, "count")));     /* absent shown as null */
    assert_false(contains(r, "SECRET"));
    json_decref(r);
    mod_free(&m);
    /* ansible-core 2.21+: invocation only when asked for */
    ok(&m, &need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\", \"_ansible_inject_invocation\": false}");
    r = mod_render(&m, false, NULL);
    assert_null(json_object_get(r, "invocation"));
    json_decref(r);
    mod_free(&m);
    ok(&m, &need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\", \"_ansible_inject_invocation\": true}");
    r = mod_render(&m, false, NULL);
    assert_non_null(json_object_get(r, "invocation"));
    json_decref(r);
    mod_free(&m);
}

static void test_scrubbing(void **state)
{
    module m;
    ok(&m, &spec, "{\"token\": \"abc\", \"source\": {\"host\": \"h\", \"token\": \"abcdef\"}}");
    mod_set(&m, "stdout", json_string("server said abcdef and abc twice: abc"));
    mod_set(&m, "nested", json_pack("{s:[s,{s:s}]}", "list", "x-abc-y", "abcdef-key", "deep abc"));
    mod_warn(&m, "token abc leaked");
    json_t *r = mod_render(&m, true, "failed with abcdef");
    assert_false(contains(r, "abc"));
    assert_false(contains(r, "def"));      /* the longer secret is masked whole */
    assert_string_equal(json_string_value(json_object_get(r, "stdout")),
                        "server said ******** and ******** twice: ********");
    assert_string_equal(json_string_value(json_object_get(r, "msg")), "failed with ********");
    assert_non_null(json_object_get(json_array_get(json_object_get(json_object_get(r, "nested"), "list"), 1),
                                    "********-key"));
    json_decref(r);
    mod_free(&m);

    ok(&m, &spec, "{\"source\": {\"host\": \"h\", \"port\": 31337, \"token\": \"t0k\"}, "
                  "\"volumes\": [{\"name\": \"n\", \"password\": 123456}]}");
    r = mod_render(&m, false, "port 31337, pw 123456, t0k");
    assert_string_equal(json_string_value(json_object_get(r, "msg")), "port 31337, pw ********, ********");
    json_decref(r);
    mod_free(&m);
}

/* The rules of lib/base/secrets.h as the runtime applies them (each guarded a
 * gap of the runtime's own scrubber): a secret's JSON-escaped spelling in a
 * text (a server's JSON body in a message), overlapping secrets, and a
 * secret read from a file that ends inside a UTF-8 character. */
static void test_scrub_rules(void **state)
{
    (void)state;
    module m;
    ok(&m, &spec, "{\"token\": \"tok\\\"quote-7781\", "
                  "\"source\": {\"host\": \"h\", \"token\": \"defghi\"}, "
                  "\"volumes\": [{\"name\": \"n\", \"password\": \"abcdef\"}]}");
    /* escaped spelling: how a JSON body quotes tok"quote-7781 */
    mod_set(&m, "body", json_string("{\"detail\": \"bad tok\\\"quote-7781\"}"));
    /* overlapping secrets: no byte of either survives */
    mod_set(&m, "overlap", json_string("x abcdefghi y"));
    mod_set(&m, "adjacent", json_string("abcdefdefghi"));
    /* a secret from a file that starts inside a UTF-8 character */
    mod_add_secret(&m, "\xa9-7781");
    mod_set(&m, "cut", json_string("caf\xc3\xa9-7781"));
    json_t *r = mod_render(&m, false, NULL);
    assert_string_equal(json_string_value(json_object_get(r, "body")),
                        "{\"detail\": \"bad ********\"}");
    assert_string_equal(json_string_value(json_object_get(r, "overlap")), "x ******** y");
    assert_string_equal(json_string_value(json_object_get(r, "adjacent")), "****************");
    assert_string_equal(json_string_value(json_object_get(r, "cut")), "********");
    json_decref(r);
    mod_free(&m);
}

static void test_secret_not_in_errors(void **state)
{
    static const mod_opt so[] = {
        { .name = "pw", .type = OPT_STR, .no_log = true, .choices = state_choices },
        { .name = "n", .type = OPT_INT, .no_log = true },
        { .name = "other", .type = OPT_INT },
        { .name = "sub", .type = OPT_DICT, .suboptions = conn_opts },
        { 0 } };
    static const mod_spec ss = { .name = "sec", .opts = so };
    module m;
    char *err = NULL;
    assert_int_equal(parse(&m, &ss, "{\"pw\": \"hunter2\"}", &err), -1);
    assert_non_null(strstr(err, "value of pw must be one of"));
    assert_null(strstr(err, "hunter2"));
    free(err);
    mod_free(&m);
    assert_int_equal(parse(&m, &ss, "{\"n\": \"hunter3\"}", &err), -1);
    assert_non_null(strstr(err, "argument 'n'"));
    assert_null(strstr(err, "hunter3"));
    free(err);
    mod_free(&m);
    /* a non-secret parameter's error echoing a secret value is scrubbed */
    assert_int_equal(parse(&m, &ss, "{\"other\": \"x-hunter4\", \"sub\": {\"host\": \"h\", "
                                    "\"token\": \"hunter4\"}}", &err), -1);
    assert_non_null(strstr(err, "argument 'other'"));
    assert_null(strstr(err, "hunter4"));
    free(err);
    mod_free(&m);
}

/* ------------------------------------------------------------ processes */

typedef struct {
    int status;
    char out[8192];
    char errout[8192];
} run_result;

static const mod_spec nocheck_spec = { .name = "nocheck", .opts = need_opts };

/* Called in the child before mod_exit when set. */
static void (*child_hook)(module *m);

/* Runs mod_init (+ a stray printf, + mod_exit) in a child with the args
 * file content `args` (NULL: no argv[1]); captures stdout and stderr. */
static void run_child(const mod_spec *sp, const char *args, bool fail_after, run_result *rr)
{
    char path[] = "/tmp/test_module_args.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    if (args)
        assert_int_equal(write(fd, args, strlen(args)), (ssize_t)strlen(args));
    close(fd);
    int po[2], pe[2];
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        close(po[1]);
        close(pe[1]);
        char *argv[] = { "mod", args ? path : NULL, NULL };
        module m;
        mod_init(&m, sp, args ? 2 : 1, argv);
        printf("stray output that must not reach stdout\n");
        if (fail_after)
            mod_fail(&m, "failing on purpose with %s", mod_str(&m, "x"));
        mod_set(&m, "x", json_string(mod_str(&m, "x")));
        if (child_hook)
            child_hook(&m);
        mod_exit(&m);
    }
    close(po[1]);
    close(pe[1]);
    size_t no = 0, ne = 0;
    ssize_t n;
    while ((n = read(po[0], rr->out + no, sizeof rr->out - 1 - no)) > 0)
        no += (size_t)n;
    while ((n = read(pe[0], rr->errout + ne, sizeof rr->errout - 1 - ne)) > 0)
        ne += (size_t)n;
    rr->out[no] = rr->errout[ne] = '\0';
    close(po[0]);
    close(pe[0]);
    waitpid(pid, &rr->status, 0);
    unlink(path);
}

static json_t *only_json(const run_result *rr)
{
    json_error_t e;
    json_t *r = json_loads(rr->out, 0, &e);   /* exactly one JSON document on stdout */
    if (!r)
        fail_msg("stdout is not exactly one JSON document: %s (%s)", rr->out, e.text);
    return r;
}

static void test_process_success_and_stdout_guard(void **state)
{
    run_result rr;
    run_child(&need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"s3cr\", \"_ansible_new_key\": 1}",
              false, &rr);
    assert_true(WIFEXITED(rr.status));
    assert_int_equal(WEXITSTATUS(rr.status), 0);
    json_t *r = only_json(&rr);
    assert_string_equal(mod_dict_str(r, "x"), "1");
    assert_true(json_is_false(json_object_get(r, "failed")));
    assert_non_null(strstr(rr.errout, "stray output"));
    json_decref(r);
}

/* ---- raw members (mod_set_raw): JSON text written after the rest of the
 * result, scrubbed by the runtime */
static const char *const RAW_OBJS[] = {
    "{\"a\":\"x s3cr-9\"}",                 /* the secret, literally */
    "{\"b\":\"s3\\u0063r-9 split\"}",       /* the secret, spelled with an escape */
    "{\"n\":1,\"s\":\"clean\"}",            /* kept byte for byte */
};
static int raw_released;

static void write_objs(mod_out *o, void *ctx)
{
    (void)ctx;
    mod_out_raw(o, "[", 1);
    for (size_t i = 0; i < 3; i++) {
        if (i)
            mod_out_raw(o, ",", 1);
        mod_out_json(o, RAW_OBJS[i], strlen(RAW_OBJS[i]));
    }
    mod_out_raw(o, "]", 1);
}

static void write_map(mod_out *o, void *ctx)
{
    mod_out_raw(o, "{", 1);
    mod_out_value(o, json_string(ctx));         /* a key holding the secret */
    mod_out_raw(o, ":[]}", 4);
}

static void release_raw(void *ctx)
{
    (void)ctx;
    raw_released++;
}

static void add_raw(module *m)
{
    mod_add_secret(m, "s3cr-9");
    mod_set(m, "objs", json_string("replaced by the raw member"));
    mod_set_raw(m, "objs", write_objs, NULL, release_raw);
    mod_set_raw(m, "map", write_map, "k-s3cr-9", NULL);
}

static void test_raw_members(void **state)
{
    (void)state;
    module m;
    ok(&m, &need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"v\"}");
    raw_released = 0;
    add_raw(&m);
    json_t *r = mod_render(&m, false, NULL);
    json_t *want = json_loads("[{\"a\":\"x ********\"},{\"b\":\"******** split\"},"
                              "{\"n\":1,\"s\":\"clean\"}]", 0, NULL);
    assert_true(json_equal(json_object_get(r, "objs"), want));
    assert_non_null(json_object_get(json_object_get(r, "map"), "k-********"));
    json_decref(want);
    json_decref(r);
    assert_int_equal(raw_released, 0);
    mod_free(&m);
    assert_int_equal(raw_released, 1);

    /* printed: the rest of the result, then the raw members, one line */
    run_result rr;
    child_hook = add_raw;
    run_child(&need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"v\"}", false, &rr);
    child_hook = NULL;
    assert_int_equal(WEXITSTATUS(rr.status), 0);
    const char *tail = ",\"objs\":[{\"a\":\"x ********\"},{\"b\":\"******** split\"},"
                       "{\"n\":1,\"s\":\"clean\"}],\"map\":{\"k-********\":[]}}\n";
    size_t ol = strlen(rr.out), tl = strlen(tail);
    assert_true(ol > tl);
    assert_string_equal(rr.out + ol - tl, tail);
    assert_null(strstr(rr.out, "s3cr"));
    assert_null(strstr(rr.out, "replaced by"));
    r = only_json(&rr);
    assert_string_equal(mod_dict_str(r, "x"), "1");
    json_decref(r);
}

static void test_process_failure_exit_code(void **state)
{
    run_result rr;
    run_child(&need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\"}", true, &rr);
    assert_int_equal(WEXITSTATUS(rr.status), 1);
    json_t *r = only_json(&rr);
    assert_true(json_is_true(json_object_get(r, "failed")));
    assert_string_equal(mod_dict_str(r, "msg"), "failing on purpose with 1");
    json_decref(r);
}

static void test_process_bad_args_files(void **state)
{
    run_result rr;
    /* malformed JSON: error names the file, never echoes its content */
    run_child(&need_spec, "{\"x\": \"1\", \"y\": TOPSECRETVALUE}", false, &rr);
    assert_int_equal(WEXITSTATUS(rr.status), 1);
    json_t *r = only_json(&rr);
    assert_true(json_is_true(json_object_get(r, "failed")));
    assert_non_null(strstr(mod_dict_str(r, "msg"), "is not a valid JSON object"));
    assert_non_null(strstr(mod_dict_str(r, "msg"), "/tmp/test_module_args."));
    assert_null(strstr(rr.out, "TOPSECRET"));
    assert_null(strstr(rr.errout, "TOPSECRET"));
    assert_null(json_object_get(r, "invocation"));
    json_decref(r);
    /* empty file */
    run_child(&need_spec, "", false, &rr);
    assert_int_equal(WEXITSTATUS(rr.status), 1);
    r = only_json(&rr);
    assert_non_null(strstr(mod_dict_str(r, "msg"), "is not a valid JSON object"));
    json_decref(r);
    /* not an object */
    run_child(&need_spec, "[\"x\"]", false, &rr);
    assert_int_equal(WEXITSTATUS(rr.status), 1);
    r = only_json(&rr);
    assert_non_null(strstr(mod_dict_str(r, "msg"), "must be a JSON object"));
    json_decref(r);
    /* no argv[1] */
    run_child(&need_spec, NULL, false, &rr);
    assert_int_equal(WEXITSTATUS(rr.status), 1);
    r = only_json(&rr);
    assert_non_null(strstr(mod_dict_str(r, "msg"), "no module arguments file given"));
    json_decref(r);
    /* validation error: failed, message names the parameter, secrets scrubbed */
    run_child(&need_spec, "{\"y\": \"2\", \"p\": \"1\"}", false, &rr);
    assert_int_equal(WEXITSTATUS(rr.status), 1);
    r = only_json(&rr);
    assert_string_equal(mod_dict_str(r, "msg"), "missing required arguments: x");
    json_decref(r);
}

static void test_process_check_mode_unsupported(void **state)
{
    run_result rr;
    run_child(&nocheck_spec, "{\"x\": \"1\", \"y\": \"2\", \"_ansible_check_mode\": true, "
                             "\"_ansible_module_name\": \"ocpv.dr.nocheck\"}", false, &rr);
    assert_int_equal(WEXITSTATUS(rr.status), 0);
    json_t *r = only_json(&rr);
    assert_true(json_is_true(json_object_get(r, "skipped")));
    assert_true(json_is_false(json_object_get(r, "changed")));
    assert_string_equal(mod_dict_str(r, "msg"), "remote module (ocpv.dr.nocheck) does not support check mode");
    assert_null(strstr(rr.errout, "stray output"));    /* the module body never ran */
    json_decref(r);
    /* supported: runs, check_mode set */
    run_child(&need_spec, "{\"x\": \"1\", \"y\": \"2\", \"p\": \"1\", \"_ansible_check_mode\": true}",
              false, &rr);
    assert_int_equal(WEXITSTATUS(rr.status), 0);
    r = only_json(&rr);
    assert_null(json_object_get(r, "skipped"));
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_absent),
        cmocka_unit_test(test_str_conversion),
        cmocka_unit_test(test_bool_conversion),
        cmocka_unit_test(test_int_float_conversion),
        cmocka_unit_test(test_list_conversion),
        cmocka_unit_test(test_dict_conversion),
        cmocka_unit_test(test_path_and_raw),
        cmocka_unit_test(test_choices),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_unknown_parameters),
        cmocka_unit_test(test_aliases_and_env),
        cmocka_unit_test(test_suboptions),
        cmocka_unit_test(test_control_keys),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_render_shape),
        cmocka_unit_test(test_diff_mode),
        cmocka_unit_test(test_masking),
        cmocka_unit_test(test_scrubbing),
        cmocka_unit_test(test_scrub_rules),
        cmocka_unit_test(test_secret_not_in_errors),
        cmocka_unit_test(test_process_success_and_stdout_guard),
        cmocka_unit_test(test_raw_members),
        cmocka_unit_test(test_process_failure_exit_code),
        cmocka_unit_test(test_process_bad_args_files),
        cmocka_unit_test(test_process_check_mode_unsupported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
