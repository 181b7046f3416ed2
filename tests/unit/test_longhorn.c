/* test_longhorn.c - unit tests for lib/dr/longhorn.c: BackupVolume lookup with
 * Longhorn < 1.8 naming (CR named after the volume) and >= 1.8 naming
 * ("bv-<random>" + spec.volumeName/backupTargetName + labels), Backup
 * validation, restore-state classification of Volumes, object builders and
 * label selectors.  Data: tests/unit/data/longhorn/ (real object shapes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "longhorn.h"

static json_t *load(const char *name)
{
    char path[1024], *err = NULL;
    snprintf(path, sizeof path, "%s/longhorn/%s", TEST_DATA_DIR, name);
    json_t *j = jx_load_file(path, &err);
    if (!j)
        fail_msg("cannot load %s: %s", path, err ? err : "?");
    return j;
}

static void test_lookup_pre18_named_after_volume(void **state)
{
    (void)state;
    json_t *items = load("backupvolumes_v17.json");
    size_t n = 99;
    json_t *bv = lh_find_backup_volume(items, "dr-exercise-data", NULL, &n);
    assert_non_null(bv);
    assert_int_equal(n, 1);
    assert_string_equal(jx_str(bv, "metadata.name"), "dr-exercise-data");
    assert_string_equal(jx_str(bv, "status.lastBackupName"), "backup-3f1e0c6b9a2d4e57");
    assert_null(lh_bv_target_name(bv));
    /* a pre-1.8 BackupVolume belongs to the default target */
    assert_ptr_equal(lh_find_backup_volume(items, "dr-exercise-data", "default", NULL), bv);
    assert_null(lh_find_backup_volume(items, "dr-exercise-data", "offsite", &n));
    assert_int_equal(n, 0);
    assert_null(lh_find_backup_volume(items, "dr-exercise", NULL, NULL));
    json_decref(items);
}

static void test_lookup_18_random_suffix(void **state)
{
    (void)state;
    json_t *items = load("backupvolumes_v18.json");
    size_t n = 0;
    /* two targets hold a BackupVolume for the volume: the latest backup wins */
    json_t *bv = lh_find_backup_volume(items, "dr-exercise-data", NULL, &n);
    assert_int_equal(n, 2);
    assert_string_equal(jx_str(bv, "metadata.name"), "bv-q7w3e9r2t5y8u1i4");
    assert_string_equal(lh_bv_target_name(bv), "offsite");
    /* restricted to one target */
    bv = lh_find_backup_volume(items, "dr-exercise-data", "default", &n);
    assert_int_equal(n, 1);
    assert_string_equal(jx_str(bv, "metadata.name"), "bv-8k2j5xq4m9ztwr6p");
    assert_string_equal(lh_bv_volume_name(bv), "dr-exercise-data");
    /* labels only (empty spec) */
    bv = lh_find_backup_volume(items, "grafana-data", NULL, &n);
    assert_non_null(bv);
    assert_string_equal(jx_str(bv, "metadata.name"), "bv-z0x9c8v7b6n5m4l3");
    assert_string_equal(lh_bv_target_name(bv), "default");
    /* the CR name is not the volume name any more: no prefix or name match */
    assert_null(lh_find_backup_volume(items, "bv-8k2j5xq4m9ztwr6p", NULL, NULL));
    bv = lh_find_backup_volume(items, "dr-exercise-data-old", NULL, &n);
    assert_int_equal(n, 1);
    assert_string_equal(jx_str(bv, "status.lastBackupName"), "backup-1111111111111111");
    assert_null(lh_find_backup_volume(items, "missing", NULL, NULL));
    assert_null(lh_find_backup_volume(NULL, "x", NULL, NULL));
    json_decref(items);
}

static void test_check_backup(void **state)
{
    (void)state;
    json_t *b = load("backups.json");
    lh_backup_info info;
    char err[512];
    assert_int_equal(lh_check_backup(json_object_get(b, "completed"), "dr-exercise-data",
                                     &info, err, sizeof err), 0);
    assert_string_equal(info.name, "backup-7d1c2b3a4f5e6d7c");
    assert_string_equal(info.size, "1073741824");
    assert_string_equal(info.target, "default");
    assert_non_null(strstr(info.url, "?backup=backup-7d1c2b3a4f5e6d7c&volume=dr-exercise-data"));

    assert_int_equal(lh_check_backup(json_object_get(b, "error"), "dr-exercise-data",
                                     &info, err, sizeof err), -1);
    assert_non_null(strstr(err, "backup-a1b2c3d4e5f60718 is not Completed"));
    assert_non_null(strstr(err, "status.state=Error"));
    assert_non_null(strstr(err, "cannot reach s3 endpoint"));
    assert_null(info.url);

    assert_int_equal(lh_check_backup(json_object_get(b, "in_progress"), "dr-exercise-data",
                                     &info, err, sizeof err), -1);
    assert_non_null(strstr(err, "InProgress"));

    assert_int_equal(lh_check_backup(json_object_get(b, "other_volume"), "dr-exercise-data",
                                     &info, err, sizeof err), -1);
    assert_non_null(strstr(err, "belongs to volume grafana-data"));

    assert_int_equal(lh_check_backup(json_object_get(b, "no_size"), "v", &info, err, sizeof err), -1);
    assert_non_null(strstr(err, "volumeSize"));
    json_decref(b);
}

static void test_restore_state(void **state)
{
    (void)state;
    json_t *v = load("volumes.json");
    char why[512];
    assert_int_equal(lh_volume_restore_state(json_object_get(v, "just_created"), why, sizeof why),
                     LH_RESTORE_PENDING);
    assert_int_equal(lh_volume_restore_state(json_object_get(v, "creating"), why, sizeof why),
                     LH_RESTORE_PENDING);
    assert_int_equal(lh_volume_restore_state(json_object_get(v, "restoring_attached"), why, sizeof why),
                     LH_RESTORE_RUNNING);
    assert_non_null(strstr(why, "state=attached"));
    assert_non_null(strstr(why, "restoreRequired=true"));
    assert_int_equal(lh_volume_restore_state(json_object_get(v, "restored_detaching"), why, sizeof why),
                     LH_RESTORE_RUNNING);
    assert_int_equal(lh_volume_restore_state(json_object_get(v, "restored_detached"), why, sizeof why),
                     LH_RESTORE_DONE);
    assert_non_null(strstr(why, "state=detached"));
    /* a DR (standby) volume never counts as restored */
    assert_int_equal(lh_volume_restore_state(json_object_get(v, "standby"), why, sizeof why),
                     LH_RESTORE_RUNNING);
    assert_int_equal(lh_volume_restore_state(json_object_get(v, "faulted"), why, sizeof why),
                     LH_RESTORE_FAILED);
    assert_non_null(strstr(why, "All replica restore failed"));
    assert_int_equal(lh_volume_restore_state(json_object_get(v, "faulted"), NULL, 0), LH_RESTORE_FAILED);
    json_decref(v);
}

static void test_flag(void **state)
{
    (void)state;
    assert_true(lh_flag_true("true"));
    assert_true(lh_flag_true(" TRUE\n"));
    assert_true(lh_flag_true("yes"));
    assert_true(lh_flag_true("1"));
    assert_false(lh_flag_true("false"));
    assert_false(lh_flag_true(""));
    assert_false(lh_flag_true(NULL));
    assert_false(lh_flag_true("truex"));
}

static void test_builders(void **state)
{
    (void)state;
    lh_volume_opts vo = { .name = "dr-exercise-data", .ns = "longhorn-system",
                          .from_backup = "s3://b@r/?backup=backup-1&volume=dr-exercise-data",
                          .size = "1073741824", .replicas = 3, .access_mode = "rwo",
                          .backup_name = "backup-1" };
    json_t *v = lh_build_volume(&vo);
    assert_non_null(v);
    assert_string_equal(jx_str(v, "apiVersion"), "longhorn.io/v1beta2");
    assert_string_equal(jx_str(v, "spec.fromBackup"), vo.from_backup);
    assert_string_equal(jx_str(v, "spec.size"), "1073741824");
    assert_int_equal(jx_int(v, "spec.numberOfReplicas", 0), 3);
    assert_string_equal(jx_str(v, "spec.accessMode"), "rwo");
    assert_string_equal(jx_str(v, "metadata.namespace"), "longhorn-system");
    json_decref(v);

    lh_pvc_opts po = { .volume = "dr-exercise-data", .pvc_namespace = "dr-exercise",
                       .pvc_name = "dr-exercise-data", .storage_class = "longhorn",
                       .fs_type = "ext4", .size = "1073741824", .access_mode = "rwx",
                       .replicas = 2 };
    json_t *pv = lh_build_pv(&po), *pvc = lh_build_pvc(&po);
    assert_string_equal(jx_str(pv, "spec.csi.driver"), "driver.longhorn.io");
    assert_string_equal(jx_str(pv, "spec.csi.volumeHandle"), "dr-exercise-data");
    assert_string_equal(jx_str(pv, "spec.claimRef.namespace"), "dr-exercise");
    assert_string_equal(jx_str(pv, "spec.capacity.storage"), "1073741824");
    assert_string_equal(jx_str(pv, "spec.csi.volumeAttributes.numberOfReplicas"), "2");
    assert_string_equal(json_string_value(json_array_get(jx_get(pv, "spec.accessModes"), 0)),
                        "ReadWriteMany");
    assert_string_equal(jx_str(pvc, "spec.volumeName"), "dr-exercise-data");
    assert_string_equal(jx_str(pvc, "spec.resources.requests.storage"), "1073741824");
    json_decref(pv);
    json_decref(pvc);
    assert_string_equal(lh_k8s_access_mode("rwop"), "ReadWriteOncePod");
    assert_null(lh_k8s_access_mode("bogus"));
}

static void test_selector(void **state)
{
    (void)state;
    json_t *l = json_pack("{s:s, s:s}", "dr-exercise", "true", "longhorn.io/backup-target", "default");
    assert_int_equal(lh_selector_match("dr-exercise=true", l), 1);
    assert_int_equal(lh_selector_match("dr-exercise==true, longhorn.io/backup-target=default", l), 1);
    assert_int_equal(lh_selector_match("dr-exercise=false", l), 0);
    assert_int_equal(lh_selector_match("dr-exercise!=false", l), 1);
    assert_int_equal(lh_selector_match("dr-exercise", l), 1);
    assert_int_equal(lh_selector_match("!dr-exercise", l), 0);
    assert_int_equal(lh_selector_match("!absent", l), 1);
    assert_int_equal(lh_selector_match("app=x", NULL), 0);
    assert_int_equal(lh_selector_match("=x", l), -1);
    assert_int_equal(lh_selector_match("a=b,,c", l), -1);
    assert_int_equal(lh_selector_match("", l), -1);
    assert_int_equal(lh_selector_match("a in (b)", l), -1);
    json_decref(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_pre18_named_after_volume),
        cmocka_unit_test(test_lookup_18_random_suffix),
        cmocka_unit_test(test_check_backup),
        cmocka_unit_test(test_restore_state),
        cmocka_unit_test(test_flag),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_selector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
