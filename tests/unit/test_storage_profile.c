/* test_storage_profile.c - unit tests for lib/dr/storage_profile.c: where a
 * volume's data is on the primary and DR storage hosts for each storage
 * profile (nfs-subdir, nfs-dynamic, nfs-csi), traversal and symlink-escape
 * refusal, the exact root/rel realpath rule, the path layout (path_depth),
 * which volume directories hold or touch another volume's
 * (sp_find_overlaps), and the DR rewrite of PVs.  PV fixtures are in
 * tests/unit/data/nfs/.  (The rsync/ssh argv and output parsing of
 * lib/dr/rsync_cmd.c: test_rsync_cmd.c.)
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

#include "jsonx.h"
#include "storage_profile.h"

static json_t *load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/nfs/%s", TEST_DATA_DIR, name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fail_msg("%s: %s", path, e.text);
    return j;
}

static void profile(const char *cls, sp_profile *p)
{
    json_t *all = load("profiles.json");
    char *err = NULL;
    if (sp_profile_parse(cls, json_object_get(all, cls), p, &err) != 0)
        fail_msg("profile %s: %s", cls, err);
    json_decref(all);
}

/* resolve expecting failure; checks that the message contains `needle` */
static void expect_resolve_error(const sp_profile *p, json_t *pv, const char *needle)
{
    sp_volume v;
    char *err = NULL;
    assert_int_equal(sp_resolve(p, pv, &v, &err), -1);
    assert_non_null(err);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    free(err);
}

static void test_norm(void **state)
{
    (void)state;
    char *err = NULL;
    char *s = sp_norm_abs("/a//b/./c/", "x", &err);
    assert_string_equal(s, "/a/b/c");
    free(s);
    s = sp_norm_abs("/", "x", &err);
    assert_string_equal(s, "/");
    free(s);
    assert_null(sp_norm_abs("/a/../etc", "spec.nfs.path", &err));
    assert_non_null(strstr(err, "spec.nfs.path"));
    assert_non_null(strstr(err, "'..'"));
    assert_null(sp_norm_abs("/a/..", "x", &err));
    assert_null(sp_norm_abs("relative/x", "x", &err));
    assert_non_null(strstr(err, "absolute"));
    assert_null(sp_norm_abs("/a b", "x", &err));
    assert_non_null(strstr(err, "' '"));
    assert_null(sp_norm_abs("/a\nb", "x", &err));
    assert_non_null(strstr(err, "0x0a"));
    assert_null(sp_norm_abs("/a/$(id)", "x", &err));
    assert_null(sp_norm_abs("/a/'b", "x", &err));
    assert_null(sp_norm_abs("", "x", &err));
    /* '...' is a legal name, not a traversal */
    s = sp_norm_abs("/a/.../b", "x", &err);
    assert_string_equal(s, "/a/.../b");
    free(s);
    s = sp_norm_rel("./.snapshot//hourly.0/", "snapshot_dir", &err);
    assert_string_equal(s, ".snapshot/hourly.0");
    free(s);
    assert_null(sp_norm_rel("/abs", "snapshot_dir", &err));
    assert_null(sp_norm_rel("../x", "snapshot_dir", &err));
    assert_null(sp_norm_rel(".", "snapshot_dir", &err));
    free(err);
}

static void test_rel_under(void **state)
{
    (void)state;
    char *r = sp_rel_under("/exports", "/exports/a/b");
    assert_string_equal(r, "a/b");
    free(r);
    r = sp_rel_under("/exports", "/exports");
    assert_string_equal(r, "");
    free(r);
    assert_null(sp_rel_under("/exports", "/exports2/a"));   /* component boundary */
    assert_null(sp_rel_under("/exports", "/export"));
    r = sp_rel_under("/", "/x");
    assert_string_equal(r, "x");
    free(r);
}

static void test_subdir(void **state)
{
    (void)state;
    sp_profile p;
    profile("nfs-subdir", &p);
    assert_int_equal(p.kind, SP_NFS_SUBDIR);
    json_t *pv = load("pv-subdir.json");
    sp_volume v;
    char *err = NULL;
    assert_int_equal(sp_resolve(&p, pv, &v, &err), 0);
    const char *dir = "vm-prod-rhel9-disk-pvc-6f1c2a9e-1b1d-4c57-9a0e-2b7e1d0c4f11";
    assert_string_equal(v.rel, dir);
    char want[512];
    snprintf(want, sizeof want, "/data/primary-export/%s", dir);
    assert_string_equal(v.src_dir, want);
    snprintf(want, sizeof want, "/data/dr-export/%s", dir);
    assert_string_equal(v.dest_dir, want);
    snprintf(want, sizeof want, "/srv/nfs/dr/%s", dir);
    assert_string_equal(v.dr_path, want);

    json_t *dr = sp_rewrite_pv(&p, pv, &v, &err);
    assert_non_null(dr);
    assert_string_equal(jx_str(dr, "spec.nfs.server"), "10.20.0.7");
    assert_string_equal(jx_str(dr, "spec.nfs.path"), want);
    assert_string_equal(jx_str(dr, "spec.persistentVolumeReclaimPolicy"), "Retain");
    /* the input is not modified */
    assert_string_equal(jx_str(pv, "spec.nfs.server"), "10.0.10.5");
    assert_string_equal(jx_str(pv, "spec.persistentVolumeReclaimPolicy"), "Delete");
    json_decref(dr);
    sp_volume_free(&v);

    /* the path must agree with the provisioner's pattern */
    jx_set(pv, "spec.nfs.path", json_string("/srv/nfs/primary/vm-prod-other-disk-x"));
    expect_resolve_error(&p, pv, "does not match the nfs-subdir path_pattern");
    /* traversal via the pattern inputs or the path */
    jx_set(pv, "spec.nfs.path", json_string("/srv/nfs/primary/../../../etc"));
    expect_resolve_error(&p, pv, "'..'");
    /* the server must be the profile's primary */
    jx_set(pv, "spec.nfs.server", json_string("10.9.9.9"));
    expect_resolve_error(&p, pv, "primary_server");
    json_decref(pv);

    /* no claimRef: the pattern cannot be checked */
    pv = load("pv-subdir.json");
    jx_del(pv, "spec.claimRef");
    expect_resolve_error(&p, pv, "spec.claimRef");
    json_decref(pv);
    sp_profile_free(&p);
}

static void test_dynamic(void **state)
{
    (void)state;
    sp_profile p;
    profile("nfs-dynamic", &p);
    json_t *pv = load("pv-dynamic.json");
    sp_volume v;
    char *err = NULL;
    assert_int_equal(sp_resolve(&p, pv, &v, &err), 0);
    assert_string_equal(v.rel, "dynamic/win2022-data");
    assert_string_equal(v.src_dir, "/exports/dynamic/win2022-data");
    assert_string_equal(v.dest_dir, "/exports-dr/dynamic/win2022-data");
    json_t *dr = sp_rewrite_pv(&p, pv, &v, &err);
    assert_string_equal(jx_str(dr, "spec.nfs.server"), "nfs-dr.example.com");
    assert_string_equal(jx_str(dr, "spec.nfs.path"), "/exports-dr/dynamic/win2022-data");
    json_decref(dr);
    sp_volume_free(&v);

    jx_set(pv, "spec.nfs.path", json_string("/exports"));
    expect_resolve_error(&p, pv, "export root itself");
    jx_set(pv, "spec.nfs.path", json_string("/exports/."));
    expect_resolve_error(&p, pv, "export root itself");
    jx_set(pv, "spec.nfs.path", json_string("/exportsX/a"));
    expect_resolve_error(&p, pv, "outside the primary export");
    jx_set(pv, "spec.nfs.path", json_string("/etc"));
    expect_resolve_error(&p, pv, "outside the primary export");
    jx_set(pv, "spec.nfs.path", json_string("/exports/a/../../etc"));
    expect_resolve_error(&p, pv, "'..'");
    jx_del(pv, "spec.nfs");
    expect_resolve_error(&p, pv, "spec.nfs is missing");
    json_decref(pv);
    sp_profile_free(&p);
}

static void test_csi(void **state)
{
    (void)state;
    sp_profile p;
    profile("nfs-csi", &p);
    json_t *pv = load("pv-csi.json");
    sp_volume v;
    char *err = NULL;
    assert_int_equal(sp_resolve(&p, pv, &v, &err), 0);
    assert_string_equal(v.rel, "csi/pvc-9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff");
    assert_string_equal(v.src_dir, "/srv/nfs/primary/csi/pvc-9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff");
    assert_string_equal(v.dest_dir, "/srv/nfs/dr/csi/pvc-9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff");
    json_t *dr = sp_rewrite_pv(&p, pv, &v, &err);
    assert_non_null(dr);
    assert_string_equal(jx_str(dr, "spec.csi.volumeAttributes.server"), "10.20.0.7");
    assert_string_equal(jx_str(dr, "spec.csi.volumeAttributes.share"), "/srv/nfs/dr/csi");
    assert_string_equal(jx_str(dr, "spec.csi.volumeAttributes.subdir"),
                        "pvc-9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff");
    assert_string_equal(jx_str(dr, "spec.csi.volumeHandle"),
                        "10.20.0.7#srv/nfs/dr/csi#pvc-9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff##");
    assert_string_equal(jx_str(dr, "spec.persistentVolumeReclaimPolicy"), "Retain");
    /* everything else is kept (dotted keys are not paths: look them up directly) */
    assert_string_equal(json_string_value(json_object_get(jx_get(dr, "spec.csi.volumeAttributes"),
                                                          "csi.storage.k8s.io/pvc/name")),
                        "fedora-root");
    assert_string_equal(jx_str(dr, "metadata.name"), "pvc-9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff");
    json_decref(dr);
    sp_volume_free(&v);

    /* static CSI PV without subdir: the share itself is the volume dir */
    json_t *st = load("pv-csi.json");
    jx_del(st, "spec.csi.volumeAttributes.subdir");
    jx_set(st, "spec.csi.volumeAttributes.share", json_string("/srv/nfs/primary/static-vol"));
    jx_set(st, "spec.csi.volumeHandle", json_string("static-vol-handle"));
    assert_int_equal(sp_resolve(&p, st, &v, &err), 0);
    assert_string_equal(v.rel, "static-vol");
    dr = sp_rewrite_pv(&p, st, &v, &err);
    assert_string_equal(jx_str(dr, "spec.csi.volumeAttributes.share"), "/srv/nfs/dr/static-vol");
    assert_string_equal(jx_str(dr, "spec.csi.volumeHandle"), "static-vol-handle");
    json_decref(dr);
    sp_volume_free(&v);
    json_decref(st);

    jx_set(pv, "spec.csi.volumeAttributes.subdir", json_string("../../../../etc"));
    expect_resolve_error(&p, pv, "'..'");
    jx_set(pv, "spec.csi.volumeAttributes.subdir", json_string("/etc"));
    expect_resolve_error(&p, pv, "must be relative");
    jx_set(pv, "spec.csi.volumeAttributes.subdir", json_string("x"));
    jx_set(pv, "spec.csi.volumeAttributes.share", json_string("/srv"));
    expect_resolve_error(&p, pv, "outside the primary export");
    jx_set(pv, "spec.csi.driver", json_string("rook-ceph.rbd.csi.ceph.com"));
    expect_resolve_error(&p, pv, "not nfs.csi.k8s.io");
    jx_del(pv, "spec.csi");
    expect_resolve_error(&p, pv, "spec.csi is missing");
    json_decref(pv);
    sp_profile_free(&p);
}

static void test_profile_errors(void **state)
{
    (void)state;
    sp_profile p;
    char *err = NULL;
    json_t *o = json_pack("{s:s,s:s}", "primary_export", "/e", "dr_export", "/d");
    assert_int_equal(sp_profile_parse("nfs-dynamic", o, &p, &err), -1);
    assert_string_equal(err, "storage_profiles.nfs-dynamic.dr_server is required");
    json_object_set_new(o, "dr_server", json_string("dr"));
    assert_int_equal(sp_profile_parse("fast-nfs", o, &p, &err), -1);
    assert_non_null(strstr(err, "storage_profiles.fast-nfs.type is required"));
    assert_int_equal(sp_profile_parse("nfs-dynamic", o, &p, &err), 0);
    assert_string_equal(p.primary_root, "/e");
    assert_string_equal(p.dr_root, "/d");
    assert_null(p.path_pattern);
    sp_profile_free(&p);
    json_object_set_new(o, "dr_server", json_string("-oProxyCommand=x"));
    assert_int_equal(sp_profile_parse("nfs-dynamic", o, &p, &err), 0);   /* '-' leading is caught by the module's host check */
    sp_profile_free(&p);
    json_object_set_new(o, "dr_server", json_string("dr host"));
    assert_int_equal(sp_profile_parse("nfs-dynamic", o, &p, &err), -1);
    assert_non_null(strstr(err, "dr_server"));
    json_object_set_new(o, "dr_server", json_string("dr"));
    json_object_set_new(o, "dr_exprot", json_string("/typo"));
    assert_int_equal(sp_profile_parse("nfs-dynamic", o, &p, &err), -1);
    assert_non_null(strstr(err, "storage_profiles.nfs-dynamic.dr_exprot: unknown field"));
    json_object_del(o, "dr_exprot");
    json_object_set_new(o, "dr_root", json_string("/d/../etc"));
    assert_int_equal(sp_profile_parse("nfs-dynamic", o, &p, &err), -1);
    assert_non_null(strstr(err, "storage_profiles.nfs-dynamic.dr_root"));
    json_object_set_new(o, "dr_root", json_string("/d"));
    json_object_set_new(o, "path_pattern", json_string("${pvName}"));
    assert_int_equal(sp_profile_parse("nfs-dynamic", o, &p, &err), -1);
    assert_non_null(strstr(err, "only for type nfs-subdir"));
    json_object_set_new(o, "type", json_string("nfs-subdir"));
    assert_int_equal(sp_profile_parse("gold", o, &p, &err), 0);
    assert_string_equal(p.path_pattern, "${pvName}");
    sp_profile_free(&p);
    json_object_set_new(o, "type", json_string("ceph"));
    assert_int_equal(sp_profile_parse("gold", o, &p, &err), -1);
    assert_non_null(strstr(err, "type 'ceph'"));
    json_t *notdict = json_string("x");
    assert_int_equal(sp_profile_parse("gold", notdict, &p, &err), -1);
    assert_non_null(strstr(err, "storage_profiles.gold must be a dict"));
    json_decref(notdict);
    json_decref(o);
    free(err);
}

static void test_custom_pattern(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "type", "nfs-subdir", "dr_server", "dr",
                          "primary_export", "/e", "dr_export", "/d");
    json_object_set_new(o, "path_pattern", json_string("${.PVC.namespace}/${.PVC.name}"));
    sp_profile p;
    char *err = NULL;
    assert_int_equal(sp_profile_parse("nfs-subdir", o, &p, &err), 0);
    json_t *pv = json_pack("{s:{s:s},s:{s:{s:s,s:s},s:{s:s,s:s}}}", "metadata", "name", "pv1",
                           "spec", "claimRef", "namespace", "vm-prod", "name", "disk0",
                           "nfs", "server", "s", "path", "/e/vm-prod/disk0");
    sp_volume v;
    assert_int_equal(sp_resolve(&p, pv, &v, &err), 0);
    assert_string_equal(v.dest_dir, "/d/vm-prod/disk0");
    sp_volume_free(&v);
    /* a claim name that would climb out is refused by normalization */
    jx_set(pv, "spec.claimRef.name", json_string(".."));
    jx_set(pv, "spec.nfs.path", json_string("/e/vm-prod"));
    expect_resolve_error(&p, pv, "'..'");
    sp_profile_free(&p);
    json_object_set_new(o, "path_pattern", json_string("${.PVC.annotations.x}"));
    assert_int_equal(sp_profile_parse("nfs-subdir", o, &p, &err), 0);
    expect_resolve_error(&p, pv, "not supported");
    sp_profile_free(&p);
    json_decref(pv);
    json_decref(o);
    free(err);
}

static void test_realpath_checks(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/test_storage_profile.XXXXXX";
    char *base = mkdtemp(tmpl);
    assert_non_null(base);
    char root[256], vol[512], esc[512], inner[512], outside[512], file[512];
    snprintf(root, sizeof root, "%s/export", base);
    snprintf(vol, sizeof vol, "%s/vol", root);
    snprintf(outside, sizeof outside, "%s/outside", base);
    snprintf(esc, sizeof esc, "%s/escape", root);
    snprintf(inner, sizeof inner, "%s/alias", root);
    snprintf(file, sizeof file, "%s/afile", root);
    assert_int_equal(mkdir(root, 0700), 0);
    assert_int_equal(mkdir(vol, 0700), 0);
    assert_int_equal(mkdir(outside, 0700), 0);
    assert_int_equal(symlink(outside, esc), 0);
    assert_int_equal(symlink("vol", inner), 0);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);

    char *err = NULL;
    char *r = sp_check_local(root, vol, NULL, "source directory", &err);
    assert_non_null(r);
    free(r);
    r = sp_check_local(root, inner, NULL, "source directory", &err);   /* symlink staying inside */
    assert_non_null(r);
    assert_non_null(strstr(r, "/export/vol"));
    free(r);
    assert_null(sp_check_local(root, esc, NULL, "source directory", &err));
    assert_non_null(strstr(err, "outside the export root"));
    assert_null(sp_check_local(root, root, NULL, "source directory", &err));
    assert_non_null(strstr(err, "export root"));
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nope", root);
    assert_null(sp_check_local(root, missing, NULL, "source directory", &err));
    assert_non_null(strstr(err, "does not exist"));
    assert_null(sp_check_local(root, file, NULL, "source directory", &err));
    assert_non_null(strstr(err, "not a directory"));

    assert_int_equal(sp_check_resolved("/srv/dr", "/srv/dr/x", NULL, "dest", &err), 0);
    assert_int_equal(sp_check_resolved("/srv/dr", "/srv/dr", NULL, "dest", &err), -1);
    assert_int_equal(sp_check_resolved("/srv/dr", "/srv/dr2/x", NULL, "dest", &err), -1);
    assert_int_equal(sp_check_resolved("/srv/dr", "/etc", NULL, "dest", &err), -1);
    assert_int_equal(sp_check_resolved("/", "/x", NULL, "dest", &err), 0);
    assert_int_equal(sp_check_resolved("/", "/", NULL, "dest", &err), -1);
    free(err);

    unlink(esc);
    unlink(inner);
    unlink(file);
    rmdir(vol);
    rmdir(root);
    rmdir(outside);
    rmdir(base);
}

/* realpath(dir) must be exactly realpath(root)/rel when rel is given (both
 * sides of a sync): a volume dir that is - or runs through - a symlink to
 * another place inside the export is refused (issue 15 item 5). */
static void test_realpath_exact(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/test_rsync_exact.XXXXXX";
    char *base = mkdtemp(tmpl);
    assert_non_null(base);
    char root[256], vol[512], other[512], alias[512], lparent[512], nested[512], viap[512];
    snprintf(root, sizeof root, "%s/export", base);
    snprintf(vol, sizeof vol, "%s/vol", root);
    snprintf(other, sizeof other, "%s/other", root);
    snprintf(nested, sizeof nested, "%s/other/v", root);
    snprintf(alias, sizeof alias, "%s/alias", root);       /* -> vol */
    snprintf(lparent, sizeof lparent, "%s/lp", root);      /* -> other */
    snprintf(viap, sizeof viap, "%s/lp/v", root);          /* other/v through lp */
    assert_int_equal(mkdir(root, 0700), 0);
    assert_int_equal(mkdir(vol, 0700), 0);
    assert_int_equal(mkdir(other, 0700), 0);
    assert_int_equal(mkdir(nested, 0700), 0);
    assert_int_equal(symlink("vol", alias), 0);
    assert_int_equal(symlink("other", lparent), 0);

    char *err = NULL;
    char *r = sp_check_local(root, vol, "vol", "source directory", &err);
    assert_non_null(r);
    free(r);
    r = sp_check_local(root, nested, "other/v", "source directory", &err);
    assert_non_null(r);
    free(r);
    /* the volume dir itself is a symlink to another volume */
    assert_null(sp_check_local(root, alias, "alias", "source directory", &err));
    assert_non_null(strstr(err, "a symlink inside the export"));
    assert_non_null(strstr(err, "/export/vol"));
    assert_non_null(strstr(err, "source directory"));
    /* a parent component is a symlink */
    assert_null(sp_check_local(root, viap, "lp/v", "source directory", &err));
    assert_non_null(strstr(err, "a symlink inside the export"));
    /* without rel (snapshot_dir): inside is enough */
    r = sp_check_local(root, alias, NULL, "snapshot_dir", &err);
    assert_non_null(r);
    free(r);
    /* the root itself may be a symlink: only what lies below it counts */
    char lroot[512], lvol[600];
    snprintf(lroot, sizeof lroot, "%s/rootlink", base);
    assert_int_equal(symlink(root, lroot), 0);
    snprintf(lvol, sizeof lvol, "%s/vol", lroot);
    r = sp_check_local(lroot, lvol, "vol", "source directory", &err);
    assert_non_null(r);
    free(r);

    /* the same rule on paths resolved elsewhere (the DR host) */
    assert_int_equal(sp_check_resolved("/srv/dr", "/srv/dr/a/b", "a/b", "dest", &err), 0);
    assert_int_equal(sp_check_resolved("/srv/dr", "/srv/dr/victim", "alias", "dest", &err), -1);
    assert_non_null(strstr(err, "not '/srv/dr/alias'"));
    assert_int_equal(sp_check_resolved("/", "/x/y", "x/y", "dest", &err), 0);
    assert_int_equal(sp_check_resolved("/", "/x/z", "x/y", "dest", &err), -1);
    assert_int_equal(sp_check_resolved("/srv/dr", "/etc/x", "x", "dest", &err), -1);
    assert_non_null(strstr(err, "outside the export root"));
    free(err);

    unlink(lroot);
    unlink(alias);
    unlink(lparent);
    rmdir(nested);
    rmdir(other);
    rmdir(vol);
    rmdir(root);
    rmdir(base);
}

/* path_depth: the layout of a profile; nfs-subdir takes it from its
 * path_pattern.  A volume directory at another depth is refused. */
static void test_path_depth(void **state)
{
    (void)state;
    char *err = NULL;
    sp_profile p;
    json_t *o = json_pack("{s:s,s:s,s:s}", "dr_server", "dr", "primary_export", "/exports",
                          "dr_export", "/exports-dr");
    assert_int_equal(sp_profile_parse("nfs-dynamic", o, &p, &err), 0);
    assert_int_equal(p.path_depth, 0);                    /* any depth */
    sp_profile_free(&p);
    const char *bad[] = { "1", "x" };
    for (size_t i = 0; i < 2; i++) {
        json_object_set_new(o, "path_depth", json_string(bad[i]));
        assert_int_equal(sp_profile_parse("nfs-dynamic", o, &p, &err), -1);
        assert_non_null(strstr(err, "storage_profiles.nfs-dynamic.path_depth"));
    }
    long long badn[] = { 0, -1, 65 };
    for (size_t i = 0; i < 3; i++) {
        json_object_set_new(o, "path_depth", json_integer(badn[i]));
        assert_int_equal(sp_profile_parse("nfs-dynamic", o, &p, &err), -1);
        assert_non_null(strstr(err, "storage_profiles.nfs-dynamic.path_depth"));
    }

    /* nfs-dynamic at depth 2 ("dynamic/win2022-data") */
    json_t *pv = load("pv-dynamic.json");
    sp_volume v;
    json_object_set_new(o, "path_depth", json_integer(1));
    assert_int_equal(sp_profile_parse("nfs-dynamic", o, &p, &err), 0);
    expect_resolve_error(&p, pv, "2 level(s) below the export");
    expect_resolve_error(&p, pv, "path_depth");
    jx_set(pv, "spec.nfs.path", json_string("/exports/dynamic"));   /* the parent: depth 1 */
    assert_int_equal(sp_resolve(&p, pv, &v, &err), 0);
    sp_volume_free(&v);
    sp_profile_free(&p);
    json_object_set_new(o, "path_depth", json_integer(2));
    assert_int_equal(sp_profile_parse("nfs-dynamic", o, &p, &err), 0);
    expect_resolve_error(&p, pv, "1 level(s) below the export");
    jx_set(pv, "spec.nfs.path", json_string("/exports/dynamic/win2022-data"));
    assert_int_equal(sp_resolve(&p, pv, &v, &err), 0);
    sp_volume_free(&v);
    sp_profile_free(&p);
    json_decref(pv);

    /* nfs-subdir: the pattern's depth, and an explicit one must agree */
    json_object_del(o, "path_depth");
    json_object_set_new(o, "type", json_string("nfs-subdir"));
    assert_int_equal(sp_profile_parse("nfs-subdir", o, &p, &err), 0);
    assert_int_equal(p.path_depth, 1);
    sp_profile_free(&p);
    json_object_set_new(o, "path_pattern", json_string("${namespace}//./${pvcName}/"));
    assert_int_equal(sp_profile_parse("nfs-subdir", o, &p, &err), 0);
    assert_int_equal(p.path_depth, 2);
    sp_profile_free(&p);
    json_object_set_new(o, "path_depth", json_integer(1));
    assert_int_equal(sp_profile_parse("nfs-subdir", o, &p, &err), -1);
    assert_non_null(strstr(err, "path_depth 1 disagrees with its path_pattern"));
    /* no pattern: path_depth alone */
    json_object_set_new(o, "path_pattern", json_string(""));
    json_object_set_new(o, "path_depth", json_integer(1));
    assert_int_equal(sp_profile_parse("nfs-subdir", o, &p, &err), 0);
    json_t *team = json_pack("{s:{s:s},s:{s:{s:s,s:s}}}", "metadata", "name", "team",
                             "spec", "nfs", "server", "s", "path", "/exports/team/v1");
    expect_resolve_error(&p, team, "2 level(s) below the export");
    json_decref(team);
    sp_profile_free(&p);
    json_decref(o);
    free(err);
}

/* lenient directory of a PV to protect: no character or server checks, '..'
 * resolved lexically */
static void test_pv_rel(void **state)
{
    (void)state;
    sp_profile dyn, csi;
    profile("nfs-dynamic", &dyn);
    profile("nfs-csi", &csi);
    json_t *pv = load("pv-dynamic.json");
    char *r = sp_pv_rel(&dyn, pv);
    assert_string_equal(r, "dynamic/win2022-data");
    free(r);
    jx_set(pv, "spec.nfs.path", json_string("/exports/a/../team/v 1"));
    r = sp_pv_rel(&dyn, pv);
    assert_string_equal(r, "team/v 1");
    free(r);
    jx_set(pv, "spec.nfs.path", json_string("/exports/../../exports"));
    r = sp_pv_rel(&dyn, pv);
    assert_string_equal(r, "");                       /* the export root itself */
    free(r);
    jx_set(pv, "spec.nfs.path", json_string("/exports2/x"));
    assert_null(sp_pv_rel(&dyn, pv));
    jx_set(pv, "spec.nfs.path", json_string("relative"));
    assert_null(sp_pv_rel(&dyn, pv));
    assert_null(sp_pv_rel(&csi, pv));                 /* no spec.csi */
    json_decref(pv);
    pv = load("pv-csi.json");
    r = sp_pv_rel(&csi, pv);
    assert_string_equal(r, "csi/pvc-9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff");
    free(r);
    assert_null(sp_pv_rel(&dyn, pv));                 /* no spec.nfs */
    json_decref(pv);
    sp_profile_free(&dyn);
    sp_profile_free(&csi);
}

static void expect_overlaps(const sp_dir *d, size_t n, const int *how, const long *other)
{
    sp_overlap o[16];
    assert_true(n <= 16);
    assert_int_equal(sp_find_overlaps(d, n, o), 0);
    for (size_t i = 0; i < n; i++) {
        if ((int)o[i].how != how[i])
            fail_msg("entry %zu (%s): %s, expected %s", i, d[i].path, sp_overlap_name(o[i].how),
                     sp_overlap_name((sp_overlap_kind)how[i]));
        if (how[i] && (long)o[i].other != other[i])
            fail_msg("entry %zu (%s): other %zu, expected %ld", i, d[i].path, o[i].other, other[i]);
    }
}

#define N_ SP_OVERLAP_NONE
#define C_ SP_OVERLAP_CONTAINS
#define S_ SP_OVERLAP_SAME
#define I_ SP_OVERLAP_INSIDE

/* which volume directories may not be written or removed (issue 15 item 2) */
static void test_overlaps(void **state)
{
    (void)state;
    /* a PV at /e/team would take /e/team/v1 (another volume) with it */
    sp_dir a[] = { { "/e/team", "team", NULL, false }, { "/e/team/v1", "v1", NULL, false } };
    expect_overlaps(a, 2, (int[]){ C_, N_ }, (long[]){ 1, 0 });
    /* ... also when v1 is only known as still present (keep) */
    sp_dir b[] = { { "/e/team/v1", "v1", "u1", true }, { "/e/team", "team", "u0", false } };
    expect_overlaps(b, 2, (int[]){ N_, C_ }, (long[]){ 0, 0 });
    /* deeper descendants and siblings sorting between them */
    sp_dir c[] = { { "/e/a-b", "x", NULL, true }, { "/e/a", "a", NULL, false },
                   { "/e/a.b", "y", NULL, true }, { "/e/a/x/y/z", "z", NULL, true },
                   { "/e/a0", "w", NULL, true } };
    expect_overlaps(c, 5, (int[]){ N_, C_, N_, N_, N_ }, (long[]){ 0, 3, 0, 0, 0 });
    /* name prefixes are not parents */
    sp_dir d[] = { { "/e/a", "a", NULL, false }, { "/e/a-b", "x", NULL, true },
                   { "/e/ab", "y", NULL, true }, { "/e/a.b/c", "z", NULL, true },
                   { "/e/a-b/c", "t", NULL, false } };
    expect_overlaps(d, 5, (int[]){ N_, N_, N_, N_, I_ }, (long[]){ 0, 0, 0, 0, 1 });
    /* the same directory as a kept PV: refused; as the same PV (check mode:
     * the pruned PV is still listed) or another target (shared RWX): fine */
    sp_dir e[] = { { "/e/a", "a", "u1", false }, { "/e/a", "a", "u1", true },
                   { "/e/b", "b", "u2", false }, { "/e/b", "b2", "u3", false },
                   { "/e/c", "c", "u4", false }, { "/e/c", "c", "u5", true } };
    expect_overlaps(e, 6, (int[]){ N_, N_, N_, N_, S_, N_ }, (long[]){ 0, 0, 0, 0, 5, 0 });
    /* identity by name when a uid is missing */
    sp_dir f[] = { { "/e/a", "a", NULL, false }, { "/e/a", "a", "u9", true },
                   { "/e/b", "b", NULL, false }, { "/e/b", "other", "u9", true } };
    expect_overlaps(f, 4, (int[]){ N_, N_, S_, N_ }, (long[]){ 0, 0, 3, 0 });
    /* inside a kept volume, at any depth; a kept PV naming the whole export */
    sp_dir g[] = { { "/e/team", "team", NULL, true }, { "/e/team/v1/x", "x", NULL, false },
                   { "/f/x", "fx", NULL, false }, { "/", "everything", NULL, true } };
    expect_overlaps(g, 4, (int[]){ N_, I_, I_, N_ }, (long[]){ 0, 0, 3, 0 });
    /* a target "/" contains everything; one entry or none: nothing to say */
    sp_dir h[] = { { "/", "root", NULL, false }, { "/x", "x", NULL, false } };
    expect_overlaps(h, 2, (int[]){ C_, N_ }, (long[]){ 1, 0 });
    expect_overlaps(h, 1, (int[]){ N_ }, (long[]){ 0 });
    assert_int_equal(sp_find_overlaps(h, 0, NULL), 0);
    /* the same PV at two places (two profiles) does not conflict with itself */
    sp_dir i[] = { { "/e/v", "v", "u", false }, { "/e/v/in", "v", "u", true } };
    expect_overlaps(i, 2, (int[]){ N_, N_ }, (long[]){ 0, 0 });

    /* scale: 20000 entries, one nested pair, in well under a second */
    size_t n = 20000;
    sp_dir *big = calloc(n, sizeof *big);
    char **names = calloc(n, sizeof *names);
    sp_overlap *o = calloc(n, sizeof *o);
    for (size_t k = 0; k < n; k++) {
        names[k] = calloc(1, 64);
        snprintf(names[k], 64, "/e/ns%zu-pvc-%zu", k % 97, k);
        big[k] = (sp_dir){ names[k], names[k] + 3, NULL, k % 2 == 0 };
    }
    snprintf(names[n - 1], 64, "/e/ns%zu-pvc-%zu/inner", (size_t)1 % 97, (size_t)1);
    assert_int_equal(sp_find_overlaps(big, n, o), 0);
    for (size_t k = 0; k < n; k++) {
        if (k == 1) {
            assert_int_equal(o[k].how, SP_OVERLAP_CONTAINS);
            assert_int_equal(o[k].other, n - 1);
        } else {
            assert_int_equal(o[k].how, SP_OVERLAP_NONE);
        }
        free(names[k]);
    }
    free(names);
    free(big);
    free(o);
}


/* A DR PV (the rewrite of a primary one) read with the profile's DR side
 * (sp_profile_dr_side: what state=absent/inspect with pv_side=dr use)
 * resolves to the same DR directory as the primary PV; and a class called
 * anything ("gold") maps by its type exactly like the class of that name. */
static void test_dr_side_and_named_class(void **state)
{
    (void)state;
    json_t *all = load("profiles.json");
    json_t *gold_obj = json_deep_copy(json_object_get(all, "nfs-subdir"));
    json_object_set_new(gold_obj, "type", json_string("nfs-subdir"));
    sp_profile p, gold, dr;
    char *err = NULL;
    assert_int_equal(sp_profile_parse("nfs-subdir", json_object_get(all, "nfs-subdir"), &p, &err), 0);
    assert_int_equal(sp_profile_parse("gold", gold_obj, &gold, &err), 0);
    assert_int_equal(sp_profile_parse("nfs-subdir", json_object_get(all, "nfs-subdir"), &dr, &err), 0);
    assert_int_equal(sp_profile_dr_side(&dr), 0);
    assert_string_equal(dr.primary_export, "/srv/nfs/dr");
    assert_string_equal(dr.primary_root, "/data/dr-export");
    assert_string_equal(dr.primary_server, "10.20.0.7");
    assert_string_equal(dr.dr_root, "/data/dr-export");

    json_t *pv = load("pv-subdir.json");
    sp_volume v, vg, vd;
    assert_int_equal(sp_resolve(&p, pv, &v, &err), 0);
    json_t *pv_dr = sp_rewrite_pv(&p, pv, &v, &err);
    assert_non_null(pv_dr);
    /* the named class: same directories, same DR PV */
    json_object_set_new(json_object_get(pv, "spec"), "storageClassName", json_string("gold"));
    assert_int_equal(sp_resolve(&gold, pv, &vg, &err), 0);
    assert_string_equal(vg.dest_dir, v.dest_dir);
    json_t *pv_dr_gold = sp_rewrite_pv(&gold, pv, &vg, &err);
    assert_string_equal(jx_str(pv_dr_gold, "spec.nfs.path"), jx_str(pv_dr, "spec.nfs.path"));
    assert_string_equal(jx_str(pv_dr_gold, "spec.nfs.server"), "10.20.0.7");
    /* the DR PV with the DR side: the same DR directory, the same rel */
    assert_int_equal(sp_resolve(&dr, pv_dr, &vd, &err), 0);
    assert_string_equal(vd.rel, v.rel);
    assert_string_equal(vd.dest_dir, v.dest_dir);
    assert_string_equal(vd.src_dir, v.dest_dir);
    /* ... and the primary PV does not pass as a DR one (server, export) */
    expect_resolve_error(&dr, pv, "server");

    sp_volume_free(&v);
    sp_volume_free(&vg);
    sp_volume_free(&vd);
    json_decref(pv_dr);
    json_decref(pv_dr_gold);
    json_decref(pv);
    json_decref(gold_obj);
    json_decref(all);
    sp_profile_free(&p);
    sp_profile_free(&gold);
    sp_profile_free(&dr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_norm),
        cmocka_unit_test(test_rel_under),
        cmocka_unit_test(test_subdir),
        cmocka_unit_test(test_dynamic),
        cmocka_unit_test(test_csi),
        cmocka_unit_test(test_profile_errors),
        cmocka_unit_test(test_custom_pattern),
        cmocka_unit_test(test_realpath_checks),
        cmocka_unit_test(test_realpath_exact),
        cmocka_unit_test(test_path_depth),
        cmocka_unit_test(test_pv_rel),
        cmocka_unit_test(test_overlaps),
        cmocka_unit_test(test_dr_side_and_named_class),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
