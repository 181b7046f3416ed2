/* test_velero_backup.c - unit tests of the Velero backup reader
 * (lib/velero/velero_*.c): layout parsing, label selectors, reading generated
 * backups of both format versions (each object once, preferred version wins,
 * namespace / resource / selector filters, bound PVs), and hostile or damaged
 * archives built here with libarchive's writer (links, devices, traversal,
 * non-JSON, oversize, entry-count limit, truncated / CRC-damaged gzip,
 * whitespace padding, the total-uncompressed and kept-bytes limits), secret
 * values masked in what is kept, and the backup-name check
 * (lib/velero/velero_store.c vs_name_ok). */
#include "velero_backup.h"
#include "velero_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#define DATA TEST_DATA_DIR "/oadp/"


/* ------------------------------------------------------------- helpers */

typedef struct {
    char *buf;
    size_t len;
} blob;

static blob read_file(const char *path)
{
    blob b = {0};
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b.buf = malloc((size_t)n + 1);
    assert_int_equal(fread(b.buf, 1, (size_t)n, f), (size_t)n);
    b.len = (size_t)n;
    fclose(f);
    return b;
}

/* Runs the collector over a tar.gz in memory; returns the result (or NULL
 * with *err). */
static json_t *raw_list(const vb_raw_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) {
        json_t *o = json_loadb(l->v[i].data, l->v[i].len, 0, NULL);
        assert_non_null(o);            /* the kept text is valid JSON */
        json_array_append_new(a, o);
    }
    return a;
}

/* The text result (what oadp_parse prints) says exactly what the tree
 * result says. */
static void check_raw_result(vb_collector *c, const vb_stats *st, json_t *tree)
{
    vb_raw_result rr;
    json_t *r = vb_collector_result_raw(c, st, &rr);
    assert_non_null(r);
    json_t *other = json_object();
    for (size_t i = 0; i < 6; i++)
        json_object_set_new(r, rr.known[i].name, raw_list(&rr.known[i]));
    for (size_t i = 0; i < rr.nother; i++)
        json_object_set_new(other, rr.other[i].name, raw_list(&rr.other[i]));
    json_object_set_new(r, "other_lists", other);
    if (!json_equal(r, tree)) {
        char *a = json_dumps(tree, JSON_SORT_KEYS), *b = json_dumps(r, JSON_SORT_KEYS);
        fail_msg("raw result differs:\n tree %.2000s\n raw  %.2000s", a, b);
    }
    json_decref(r);
    vb_raw_result_free(&rr);
}

static json_t *collect(const blob *b, const vb_filter *f, const vb_limits *lim, char **err)
{
    vb_filter none = {0};
    char *cerr = NULL;
    vb_collector *c = vb_collector_new(f ? f : &none, 100, &cerr);
    assert_non_null(c);
    vb_stats st;
    int rc = vb_read_mem(b->buf, b->len, lim, &vb_collector_handler, c, &st, err);
    json_t *res = rc == 0 ? vb_collector_result(c, &st) : NULL;
    if (res)
        check_raw_result(c, &st, res);
    vb_collector_free(c);
    return res;
}

static size_t list_len(json_t *res, const char *name)
{
    return json_array_size(json_object_get(res, name));
}

static json_int_t skipped(json_t *res, const char *reason)
{
    json_t *c = json_object_get(json_object_get(res, "counts"), "skipped_by_reason");
    return json_integer_value(json_object_get(c, reason));
}

/* Builds a .tar.gz in memory with libarchive's writer. */
typedef struct {
    struct archive *a;
    char *buf;
    size_t cap, used;
} tgz;

static void tgz_open(tgz *t, size_t cap)
{
    t->cap = cap;
    t->buf = malloc(cap);
    t->used = 0;
    t->a = archive_write_new();
    archive_write_set_format_pax_restricted(t->a);
    archive_write_add_filter_gzip(t->a);
    archive_write_set_bytes_in_last_block(t->a, 1);
    assert_int_equal(archive_write_open_memory(t->a, t->buf, t->cap, &t->used), ARCHIVE_OK);
}

static void tgz_add(tgz *t, const char *name, mode_t type, const void *data, size_t len,
                    const char *link)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, 0755);
    archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)len : 0);
    if (link && type == AE_IFLNK)
        archive_entry_set_symlink(e, link);
    if (link && type == AE_IFREG)
        archive_entry_set_hardlink(e, link);
    if (type == AE_IFCHR || type == AE_IFBLK)
        archive_entry_set_rdev(e, 0x0801);
    assert_true(archive_write_header(t->a, e) >= ARCHIVE_WARN);   /* WARN: odd names */
    if (type == AE_IFREG && len && !link)
        assert_int_equal(archive_write_data(t->a, data, len), (la_ssize_t)len);
    archive_entry_free(e);
}

static void tgz_json(tgz *t, const char *name, const char *json)
{
    tgz_add(t, name, AE_IFREG, json, strlen(json), NULL);
}

static blob tgz_close(tgz *t)
{
    assert_int_equal(archive_write_close(t->a), ARCHIVE_OK);
    archive_write_free(t->a);
    return (blob){t->buf, t->used};
}

static const char PVC[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\","
    "\"metadata\":{\"name\":\"disk\",\"namespace\":\"vm-prod\",\"labels\":{\"app\":\"a\"}},"
    "\"spec\":{\"volumeName\":\"pv-1\"}}";
static const char PV[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":\"pv-1\"},"
    "\"spec\":{\"claimRef\":{\"namespace\":\"vm-prod\",\"name\":\"disk\"}}}";

/* --------------------------------------------------------------- paths */

static void test_path_layouts(void **state)
{
    (void)state;
    vb_path p;
    assert_int_equal(vb_path_parse("resources/persistentvolumeclaims/namespaces/ns1/d.json", &p),
                     VB_PATH_ITEM);
    assert_string_equal(p.resource, "persistentvolumeclaims");
    assert_string_equal(p.ns, "ns1");
    assert_string_equal(p.name, "d");
    assert_false(p.cluster);
    assert_string_equal(p.version, "");

    assert_int_equal(vb_path_parse("resources/persistentvolumes/v1-preferredversion/cluster/pv-1.json",
                                   &p), VB_PATH_ITEM);
    assert_true(p.cluster);
    assert_true(p.preferred);
    assert_string_equal(p.version, "v1");
    assert_string_equal(p.name, "pv-1");

    assert_int_equal(vb_path_parse(
        "resources/volumesnapshots.snapshot.storage.k8s.io/v1beta1/namespaces/n/s.json", &p),
        VB_PATH_ITEM);
    assert_false(p.preferred);
    assert_string_equal(p.version, "v1beta1");
    assert_string_equal(p.resource, "volumesnapshots.snapshot.storage.k8s.io");

    /* a namespace literally called "cluster" is still a namespace */
    assert_int_equal(vb_path_parse("resources/pods/namespaces/cluster/x.json", &p), VB_PATH_ITEM);
    assert_false(p.cluster);
    assert_string_equal(p.ns, "cluster");

    assert_int_equal(vb_path_parse("./resources/pods/namespaces/a/x.json", &p), VB_PATH_ITEM);
    assert_int_equal(vb_path_parse("metadata/version", &p), VB_PATH_VERSION);
    assert_int_equal(vb_path_parse("resources/pods/namespaces/a/x.yaml", &p), VB_PATH_DIR_LIKE);
    assert_int_equal(vb_path_parse("resources/pods/elsewhere/x.json", &p), VB_PATH_DIR_LIKE);
    assert_int_equal(vb_path_parse("resources/pods/namespaces/a/b/c/x.json", &p), VB_PATH_DIR_LIKE);
    assert_int_equal(vb_path_parse("resources/pods/cluster/x.json/", &p), VB_PATH_OTHER);
    assert_int_equal(vb_path_parse("velero-backup.json", &p), VB_PATH_OTHER);
    assert_int_equal(vb_path_parse("/etc/passwd", &p), VB_PATH_UNSAFE);
    assert_int_equal(vb_path_parse("resources/../../etc/x.json", &p), VB_PATH_UNSAFE);
    assert_int_equal(vb_path_parse("..", &p), VB_PATH_UNSAFE);
    assert_int_equal(vb_path_parse("", &p), VB_PATH_UNSAFE);
    /* a 300-char name does not fit a Kubernetes name: not an item */
    char longp[400] = "resources/pods/namespaces/a/";
    memset(longp + strlen(longp), 'x', 300);
    strcat(longp, ".json");
    assert_int_equal(vb_path_parse(longp, &p), VB_PATH_DIR_LIKE);
}

static void test_printable(void **state)
{
    (void)state;
    char b[16];
    assert_string_equal(vb_printable("a\x01\xff\"b", b, sizeof b), "a???b");
    assert_string_equal(vb_printable("0123456789abcdefghij", b, sizeof b), "0123456789ab...");
}

/* ----------------------------------------------------------- selectors */

static void test_selector(void **state)
{
    (void)state;
    json_t *l = json_pack("{s:s, s:s}", "app", "web", "tier", "db");
    char *err = NULL;
    struct { const char *sel; bool want; } cases[] = {
        {"", true}, {"app=web", true}, {"app==web", true}, {"app!=web", false},
        {"app=api", false}, {"app in (api, web)", true}, {"app notin (web)", false},
        {"tier", true}, {"!tier", false}, {"missing", false}, {"!missing", true},
        {"app=web,tier=db", true}, {"app=web, tier=x", false}, {"missing!=x", true},
        {"missing notin (x)", true}, {"missing in (x)", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vb_selector *s = vb_selector_parse(cases[i].sel, &err);
        assert_non_null(s);
        if (vb_selector_match(s, l) != cases[i].want)
            fail_msg("selector '%s' should %smatch", cases[i].sel, cases[i].want ? "" : "not ");
        vb_selector_free(s);
    }
    const char *bad[] = {"app=web,", "app in web", "app in (a", "=x", "app >"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(vb_selector_parse(bad[i], &err));
        assert_non_null(strstr(err, "label_selector"));
        free(err);
        err = NULL;
    }
    json_decref(l);
}

/* ----------------------------------------------------- generated backups */

static void test_format_11_each_object_once(void **state)
{
    (void)state;
    blob b = read_file(DATA "format-1.1-apigroupversions.tar.gz");
    char *err = NULL;
    json_t *r = collect(&b, NULL, NULL, &err);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "format_version")), "1.1.0");
    const char *lists[] = {"pv_info_list", "pvc_info_list", "vs_info_list", "vsc_info_list",
                           "vm_info_list", "dv_info_list"};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(list_len(r, lists[i]), 6);   /* 2 namespaces x 3 VMs */
    /* the v1beta1 copies (EnableAPIGroupVersions) lose to the preferred v1 */
    json_t *vs = json_array_get(json_object_get(r, "vs_info_list"), 0);
    assert_string_equal(json_string_value(json_object_get(vs, "apiVersion")),
                        "snapshot.storage.k8s.io/v1");
    json_t *dv = json_array_get(json_object_get(r, "dv_info_list"), 0);
    assert_string_equal(json_string_value(json_object_get(dv, "apiVersion")),
                        "cdi.kubevirt.io/v1beta1");
    json_t *counts = json_object_get(r, "counts");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(counts, "resources"),
                                                        "persistentvolumes")), 6);
    assert_int_equal(skipped(r, "invalid_json"), 0);
    json_decref(r);
    free(b.buf);
}

static void test_format_1_and_namespace_filter(void **state)
{
    (void)state;
    blob b = read_file(DATA "format-1.tar.gz");
    const char *ns[] = {"vm-prod"};
    vb_filter f = {.namespaces = ns, .nnamespaces = 1};
    char *err = NULL;
    json_t *r = collect(&b, &f, NULL, &err);
    assert_non_null(r);
    assert_true(json_is_null(json_object_get(r, "format_version")));  /* format 1 has no metadata/version */
    assert_int_equal(list_len(r, "pvc_info_list"), 3);
    assert_int_equal(list_len(r, "pv_info_list"), 3);     /* only those bound into vm-prod */
    assert_int_equal(list_len(r, "vsc_info_list"), 3);
    size_t i;
    json_t *pv;
    json_array_foreach(json_object_get(r, "pv_info_list"), i, pv) {
        json_t *ref = json_object_get(json_object_get(pv, "spec"), "claimRef");
        assert_string_equal(json_string_value(json_object_get(ref, "namespace")), "vm-prod");
    }
    json_decref(r);
    free(b.buf);
}

static void test_resources_and_selector(void **state)
{
    (void)state;
    blob b = read_file(DATA "format-1.1-apigroupversions.tar.gz");
    char *err = NULL;
    /* app=app0: one VM per namespace; its PVC matches, its PV has no labels
     * but is kept because it is bound to that PVC. */
    vb_selector *sel = vb_selector_parse("app=app0", &err);
    const char *res[] = {"pv", "PersistentVolumeClaim", "virtualmachines", "configmaps"};
    vb_filter f = {.resources = res, .nresources = 4, .selector = sel};
    json_t *r = collect(&b, &f, NULL, &err);
    assert_non_null(r);
    assert_int_equal(list_len(r, "pvc_info_list"), 2);
    assert_int_equal(list_len(r, "pv_info_list"), 2);
    assert_int_equal(list_len(r, "vm_info_list"), 2);
    assert_int_equal(list_len(r, "vs_info_list"), 0);      /* not requested */
    assert_int_equal(list_len(r, "dv_info_list"), 0);
    /* configmaps are labelled app=filler: none match */
    assert_int_equal(json_array_size(json_object_get(json_object_get(r, "other_lists"),
                                                     "configmaps")), 0);
    json_decref(r);
    vb_selector_free(sel);

    const char *bad[] = {"Persistent Volumes"};
    vb_filter fb = {.resources = bad, .nresources = 1};
    assert_null(vb_collector_new(&fb, 10, &err));
    assert_non_null(strstr(err, "Persistent Volumes"));
    free(err);
    free(b.buf);
}

/* ------------------------------------------------------ hostile archives */

static void test_hostile_entries_skipped(void **state)
{
    (void)state;
    tgz t;
    tgz_open(&t, 8 << 20);
    tgz_json(&t, "metadata/version", "1.1.0\n");
    tgz_json(&t, "resources/persistentvolumeclaims/namespaces/vm-prod/disk.json", PVC);
    tgz_json(&t, "resources/persistentvolumes/cluster/pv-1.json", PV);
    tgz_json(&t, "resources/persistentvolumes/cluster/../../../../etc/evil.json", PV);
    tgz_json(&t, "/etc/abs.json", PV);
    tgz_add(&t, "resources/persistentvolumes/cluster/link.json", AE_IFLNK, NULL, 0, "/etc/shadow");
    tgz_add(&t, "resources/persistentvolumes/cluster/hard.json", AE_IFREG, NULL, 0,
            "resources/persistentvolumes/cluster/pv-1.json");
    tgz_add(&t, "resources/persistentvolumes/cluster/sda.json", AE_IFBLK, NULL, 0, NULL);
    tgz_add(&t, "resources/persistentvolumes/cluster/tty.json", AE_IFCHR, NULL, 0, NULL);
    tgz_add(&t, "resources/persistentvolumes/cluster/fifo.json", AE_IFIFO, NULL, 0, NULL);
    tgz_json(&t, "resources/persistentvolumeclaims/namespaces/vm-prod/notes.txt", "hello");
    tgz_json(&t, "resources/persistentvolumeclaims/namespaces/vm-prod/broken.json", "{\"a\":");
    tgz_json(&t, "resources/persistentvolumeclaims/namespaces/vm-prod/arr.json", "[1]");
    tgz_json(&t, "resources/persistentvolumeclaims/namespaces/vm-\x01\xff/x.json", "nope");
    size_t big = 2u << 20;
    char *huge = malloc(big + 64);
    memset(huge, ' ', big + 64);
    memcpy(huge, "{\"kind\":\"PersistentVolume\"", 26);
    huge[big + 62] = '}';
    huge[big + 63] = '\0';
    tgz_json(&t, "resources/persistentvolumes/cluster/huge.json", huge);
    free(huge);
    blob b = tgz_close(&t);

    vb_limits lim = {.max_entry_bytes = 1u << 20};
    char *err = NULL;
    json_t *r = collect(&b, NULL, &lim, &err);
    if (!r)
        fail_msg("unexpected error: %s", err);
    assert_int_equal(list_len(r, "pvc_info_list"), 1);
    assert_int_equal(list_len(r, "pv_info_list"), 1);
    assert_int_equal(skipped(r, "unsafe_path"), 2);
    assert_int_equal(skipped(r, "link"), 2);
    assert_int_equal(skipped(r, "special_file"), 3);
    assert_int_equal(skipped(r, "unexpected_entry"), 1);
    assert_int_equal(skipped(r, "invalid_json"), 2);
    assert_int_equal(skipped(r, "bad_object"), 1);
    assert_int_equal(skipped(r, "oversize"), 1);
    /* warnings are printable (the \x01\xff name became '?') */
    json_t *w;
    size_t i;
    bool saw_sanitised = false;
    json_array_foreach(json_object_get(r, "warnings"), i, w) {
        const char *s = json_string_value(w);
        assert_non_null(s);
        for (const char *p = s; *p; p++)
            assert_true(*p >= 0x20 && *p < 0x7f);
        saw_sanitised = saw_sanitised || strstr(s, "vm-?" "?/x.json");
    }
    assert_true(saw_sanitised);
    json_decref(r);
    free(b.buf);
}

static blob tgz_small(void)
{
    tgz t;
    tgz_open(&t, 1 << 20);
    tgz_json(&t, "metadata/version", "1.1.0");
    for (int i = 0; i < 200; i++) {
        char name[128];
        snprintf(name, sizeof name, "resources/persistentvolumeclaims/namespaces/vm-prod/d%03d.json", i);
        tgz_json(&t, name, PVC);
    }
    return tgz_close(&t);
}

static void expect_error(blob *b, const vb_limits *lim, const char *needle)
{
    char *err = NULL;
    json_t *r = collect(b, NULL, lim, &err);
    if (r)
        fail_msg("expected an error containing '%s'", needle);
    assert_non_null(err);
    if (!strstr(err, needle))
        fail_msg("error '%s' lacks '%s'", err, needle);
    free(err);
}

static void test_entry_count_limit(void **state)
{
    (void)state;
    blob b = tgz_small();
    vb_limits lim = {.max_entries = 100};
    expect_error(&b, &lim, "more than 100 tar entries");
    lim.max_entries = 1000;
    char *err = NULL;
    json_t *r = collect(&b, NULL, &lim, &err);
    assert_non_null(r);
    assert_int_equal(list_len(r, "pvc_info_list"), 200);
    json_decref(r);
    free(b.buf);
}

/* ------------------------------------------ amplification, kept bytes */

/* A PVC padded with n bytes of whitespace (valid JSON) between its members. */
static char *padded_pvc(const char *name, size_t n)
{
    size_t len = strlen(PVC) + n + 64;
    char *t = malloc(len);
    assert_non_null(t);
    int h = snprintf(t, len, "{\"apiVersion\":\"v1\",");
    memset(t + h, ' ', n);
    t[h + n] = '\0';
    for (size_t i = h; i < h + n; i += 4096)
        t[i] = '\n';
    snprintf(t + h + n, len - h - n, "\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":"
             "\"%s\",\"namespace\":\"vm-prod\",\"annotations\":{\"keep\":\"  spaces \\\" \\\\ "
             "inside\\n\"}},\"spec\":{}}", name);
    return t;
}

/* The selected objects are kept and returned compact: whitespace padding in
 * the archive (a 3 MB entry that gzips to a few KB) is not kept nor printed;
 * whitespace inside strings is. */
static void test_padding_not_kept(void **state)
{
    (void)state;
    tgz t;
    tgz_open(&t, 1 << 20);
    char *big = padded_pvc("padded", 3u << 20);
    tgz_json(&t, "resources/persistentvolumeclaims/namespaces/vm-prod/padded.json", big);
    free(big);
    blob b = tgz_close(&t);
    assert_true(b.len < 64 * 1024);
    vb_filter none = {0};
    char *err = NULL;
    vb_collector *c = vb_collector_new(&none, 10, &err);
    vb_stats st;
    assert_int_equal(vb_read_mem(b.buf, b.len, NULL, &vb_collector_handler, c, &st, &err), 0);
    vb_raw_result rr;
    json_t *r = vb_collector_result_raw(c, &st, &rr);
    assert_non_null(r);
    assert_int_equal(rr.known[1].n, 1);
    const vb_raw *o = &rr.known[1].v[0];
    if (o->len > 400)
        fail_msg("kept %zu bytes for a ~200-byte object: %.100s", o->len, o->data);
    json_t *obj = json_loadb(o->data, o->len, 0, NULL);
    assert_non_null(obj);
    char *compact = json_dumps(obj, JSON_COMPACT);
    assert_int_equal(strlen(compact), o->len);             /* exactly the compact form */
    assert_memory_equal(compact, o->data, o->len);
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(obj,
                        "metadata"), "annotations"), "keep")), "  spaces \" \\ inside\n");
    free(compact);
    json_decref(obj);
    json_decref(r);
    vb_raw_result_free(&rr);
    vb_collector_free(c);
    free(b.buf);
}

/* max_total_bytes bounds the uncompressed stream; max_kept_bytes what the
 * collector keeps: past either the read stops with an error naming it. */
static void test_total_and_kept_limits(void **state)
{
    (void)state;
    tgz t;
    tgz_open(&t, 1 << 20);
    for (int i = 0; i < 4; i++) {
        char name[96], path[160];
        snprintf(name, sizeof name, "p%d", i);
        snprintf(path, sizeof path, "resources/persistentvolumeclaims/namespaces/vm-prod/%s.json", name);
        char *big = padded_pvc(name, 1u << 20);
        tgz_json(&t, path, big);
        free(big);
    }
    blob b = tgz_close(&t);
    vb_limits lim = {.max_total_bytes = 2u << 20};
    expect_error(&b, &lim, "expands to more than 2097152 bytes when uncompressed");
    lim.max_total_bytes = 8u << 20;
    char *err = NULL;
    json_t *r = collect(&b, NULL, &lim, &err);
    assert_non_null(r);
    assert_int_equal(list_len(r, "pvc_info_list"), 4);
    json_decref(r);

    /* kept: 4 compact objects of ~200 bytes; 500 bytes hold two of them */
    vb_filter f = {.max_kept_bytes = 500};
    r = collect(&b, &f, NULL, &err);
    assert_null(r);
    assert_non_null(err);
    if (!strstr(err, "the selected objects take more than 500 bytes (max_selected_size"))
        fail_msg("unexpected: %s", err);
    free(err);
    err = NULL;
    f.max_kept_bytes = 4096;
    r = collect(&b, &f, NULL, &err);
    assert_non_null(r);
    json_decref(r);
    free(b.buf);
}

/* ------------------------------------------------------------- secrets */

static const char SECRET_OBJ[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s1\",\"namespace\":"
    "\"vm-prod\",\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":"
    "\"{\\\"data\\\":{\\\"password\\\":\\\"SECRETLASTAPPLIED\\\"}}\"}},"
    "\"type\":\"Opaque\",\"data\":{\"password\":\"U0VDUkVUREFUQQ==\"},"
    "\"stringData\":{\"token\":\"SECRETSTRINGDATA\"}}";
/* cloud-init in NoCloud and ConfigDrive volumes, the key once spelled with
 * a JSON escape; a containerDisk volume stays as it is */
static const char VM_OBJ[] =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":"
    "\"vm1\",\"namespace\":\"vm-prod\"},\"spec\":{\"template\":{\"spec\":{\"volumes\":["
    "{\"name\":\"root\",\"containerDisk\":{\"image\":\"quay.io/x/fedora\"}},"
    "{\"name\":\"ci\",\"\\u0063loudInitNoCloud\":{\"userData\":\"#cloud-config\\npassword: "
    "SECRETUSERDATA\\n\",\"networkData\":\"SECRETNETDATA\"}},"
    "{\"name\":\"cd\",\"cloudInitConfigDrive\":{\"userDataBase64\":\"U0VDUkVUQjY0\","
    "\"networkDataBase64\":\"U0VDUkVUTkVUQjY0\",\"secretRef\":{\"name\":\"ci-secret\"}}}]}}}}";

/* Secret data / stringData and cloud-init data read from a backup never come
 * out in clear (k8s_dr_clean masks with the same lib/base/secret_mask.c). */
static void test_secret_values_masked(void **state)
{
    (void)state;
    tgz t;
    tgz_open(&t, 1 << 20);
    tgz_json(&t, "resources/secrets/namespaces/vm-prod/s1.json", SECRET_OBJ);
    tgz_json(&t, "resources/virtualmachines.kubevirt.io/namespaces/vm-prod/vm1.json", VM_OBJ);
    tgz_json(&t, "resources/persistentvolumeclaims/namespaces/vm-prod/disk.json", PVC);
    blob b = tgz_close(&t);
    const char *res[] = {"secrets", "vm", "pvc"};
    vb_filter f = {.resources = res, .nresources = 3};
    char *err = NULL;
    json_t *r = collect(&b, &f, NULL, &err);
    assert_non_null(r);
    char *text = json_dumps(r, JSON_COMPACT);
    if (strstr(text, "SECRET") || strstr(text, "U0VDUkVU"))
        fail_msg("a secret value came out: %s", text);
    json_t *sec = json_array_get(json_object_get(json_object_get(r, "other_lists"), "secrets"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(sec, "data"), "password")),
                        "********");
    assert_string_equal(json_string_value(json_object_get(json_object_get(sec, "stringData"),
                                                          "token")), "********");
    assert_string_equal(json_string_value(json_object_get(sec, "type")), "Opaque");
    json_t *vols = json_object_get(json_object_get(json_object_get(json_object_get(
        json_array_get(json_object_get(r, "vm_info_list"), 0), "spec"), "template"), "spec"), "volumes");
    json_t *nc = json_object_get(json_array_get(vols, 1), "cloudInitNoCloud");
    assert_string_equal(json_string_value(json_object_get(nc, "userData")), "********");
    json_t *cd = json_object_get(json_array_get(vols, 2), "cloudInitConfigDrive");
    assert_string_equal(json_string_value(json_object_get(cd, "networkDataBase64")), "********");
    assert_string_equal(json_string_value(json_object_get(json_object_get(cd, "secretRef"), "name")),
                        "ci-secret");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(vols, 0),
                        "containerDisk"), "image")), "quay.io/x/fedora");
    /* objects without secrets are kept as they were */
    json_t *pvc = json_array_get(json_object_get(r, "pvc_info_list"), 0);
    json_t *want = json_loads(PVC, 0, NULL);
    assert_true(json_equal(pvc, want));
    json_decref(want);
    free(text);
    json_decref(r);
    free(b.buf);
}

/* --------------------------------------------------------- backup names */

static void test_backup_names(void **state)
{
    (void)state;
    const char *good[] = {"b", "daily-20240501", "ocpv-dr.hourly.1", "0a", NULL};
    const char *bad[] = {"", ".", "..", "../pwned/evil", "a/b", "A", "a b", "-a", "a-", "a..b",
                         "a.-b", "a\nb", "a\x7f", "\xc3\xa4", ".a", NULL};
    for (size_t i = 0; good[i]; i++)
        if (!vs_name_ok(good[i], NULL))
            fail_msg("'%s' refused", good[i]);
    for (size_t i = 0; bad[i]; i++) {
        const char *why = NULL;
        if (vs_name_ok(bad[i], &why))
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(why);
    }
    char long_name[300];
    memset(long_name, 'a', 254);
    long_name[254] = '\0';
    assert_false(vs_name_ok(long_name, NULL));
    long_name[253] = '\0';
    assert_true(vs_name_ok(long_name, NULL));
}

static void test_damaged_gzip(void **state)
{
    (void)state;
    blob b = tgz_small();
    blob c = {malloc(b.len), b.len};

    memcpy(c.buf, b.buf, b.len);
    c.len = b.len / 2;
    expect_error(&c, NULL, "truncated");

    c.len = b.len - 4;                         /* only the length trailer missing */
    expect_error(&c, NULL, "truncated");

    c.len = b.len;
    c.buf[b.len - 8] ^= 0x55;                  /* CRC32 */
    expect_error(&c, NULL, "incorrect data check");

    memcpy(c.buf, b.buf, b.len);
    c.buf[b.len - 2] ^= 0x01;                  /* ISIZE */
    expect_error(&c, NULL, "incorrect length check");

    memcpy(c.buf, b.buf, b.len);
    for (size_t i = 40; i < 60; i++)
        c.buf[i] ^= 0x5a;
    expect_error(&c, NULL, "corrupt");

    memcpy(c.buf, "PK\x03\x04", 4);
    expect_error(&c, NULL, "not gzip");

    c.len = 0;
    expect_error(&c, NULL, "empty");

    free(c.buf);
    free(b.buf);
}

static void test_plain_tar_rejected(void **state)
{
    (void)state;
    char buf[8192];
    size_t used = 0;
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open_memory(a, buf, sizeof buf, &used);
    archive_write_close(a);
    archive_write_free(a);
    blob b = {buf, used};
    expect_error(&b, NULL, "not gzip");
}

/* Many entries: heap in use does not grow with the entry count (nothing is
 * kept per unselected entry) and the limit stops the read with a clear error.
 * The heap is sampled with mallinfo2() from inside the read (every 500th
 * item); under ASan malloc is not glibc's and the samples are 0. */
typedef struct {
    vb_collector *c;
    size_t n, base, peak;
} heap_probe;

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static bool probe_want(void *ud, const vb_path *p)
{
    heap_probe *hp = ud;
    if (++hp->n % 500 == 0) {
        size_t now = heap_in_use();
        if (now > hp->peak)
            hp->peak = now;
    }
    return vb_collector_handler.want(hp->c, p);
}

static int probe_item(void *ud, const vb_path *p, json_t *o, char **err)
{
    return vb_collector_handler.item(((heap_probe *)ud)->c, p, o, err);
}

static void probe_warn(void *ud, vb_warn_kind k, const char *e, const char *m)
{
    vb_collector_handler.warn(((heap_probe *)ud)->c, k, e, m);
}

static void probe_version(void *ud, const char *v)
{
    vb_collector_handler.version(((heap_probe *)ud)->c, v);
}

static void test_many_entries_bounded_memory(void **state)
{
    (void)state;
    tgz t;
    tgz_open(&t, 32u << 20);
    tgz_json(&t, "metadata/version", "1.1.0");
    for (int i = 0; i < 60000; i++) {
        char name[96];
        snprintf(name, sizeof name, "resources/configmaps/namespaces/bulk-%d/c%d.json", i % 50, i);
        tgz_add(&t, name, AE_IFREG, "", 0, NULL);
    }
    tgz_json(&t, "resources/persistentvolumeclaims/namespaces/vm-prod/disk.json", PVC);
    blob b = tgz_close(&t);
    vb_filter none = {0};
    char *err = NULL;
    heap_probe hp = {.c = vb_collector_new(&none, 10, &err)};
    vb_handler h = {.want = probe_want, .item = probe_item, .warn = probe_warn,
                    .version = probe_version};
    hp.base = hp.peak = heap_in_use();
    vb_stats st;
    assert_int_equal(vb_read_mem(b.buf, b.len, NULL, &h, &hp, &st, &err), 0);
    assert_int_equal(st.entries, 60002);
    json_t *r = vb_collector_result(hp.c, &st);
    assert_int_equal(list_len(r, "pvc_info_list"), 1);
    /* two 256 KiB stream buffers, one entry buffer, libarchive's state */
    if (hp.peak - hp.base > 4u << 20)
        fail_msg("heap grew by %zu bytes while reading 60,000 entries", hp.peak - hp.base);
    json_decref(r);
    vb_collector_free(hp.c);
    vb_limits lim = {.max_entries = 50000};
    expect_error(&b, &lim, "more than 50000 tar entries");
    free(b.buf);
}

/* A valid gzip stream around a broken tar: reported as a damaged tar. */
static void test_damaged_tar_in_good_gzip(void **state)
{
    (void)state;
    tgz t;
    tgz_open(&t, 1 << 20);
    tgz_json(&t, "resources/persistentvolumeclaims/namespaces/vm-prod/d.json", PVC);
    blob b = tgz_close(&t);
    /* gunzip, damage the first header's checksum field, gzip again */
    char tar[1 << 16];
    z_stream z = {0};
    inflateInit2(&z, 16 + MAX_WBITS);
    z.next_in = (Bytef *)b.buf;
    z.avail_in = (uInt)b.len;
    z.next_out = (Bytef *)tar;
    z.avail_out = sizeof tar;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    size_t tl = sizeof tar - z.avail_out;
    inflateEnd(&z);
    memset(tar + 148, 'Z', 8);
    char gz[1 << 16];
    z_stream d = {0};
    deflateInit2(&d, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    d.next_in = (Bytef *)tar;
    d.avail_in = (uInt)tl;
    d.next_out = (Bytef *)gz;
    d.avail_out = sizeof gz;
    assert_int_equal(deflate(&d, Z_FINISH), Z_STREAM_END);
    blob c = {gz, sizeof gz - d.avail_out};
    deflateEnd(&d);
    expect_error(&c, NULL, "damaged tar archive after 0 entries");
    free(b.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_layouts),
        cmocka_unit_test(test_printable),
        cmocka_unit_test(test_selector),
        cmocka_unit_test(test_format_11_each_object_once),
        cmocka_unit_test(test_format_1_and_namespace_filter),
        cmocka_unit_test(test_resources_and_selector),
        cmocka_unit_test(test_hostile_entries_skipped),
        cmocka_unit_test(test_entry_count_limit),
        cmocka_unit_test(test_padding_not_kept),
        cmocka_unit_test(test_total_and_kept_limits),
        cmocka_unit_test(test_secret_values_masked),
        cmocka_unit_test(test_backup_names),
        cmocka_unit_test(test_damaged_gzip),
        cmocka_unit_test(test_plain_tar_rejected),
        cmocka_unit_test(test_damaged_tar_in_good_gzip),
        cmocka_unit_test(test_many_entries_bounded_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
