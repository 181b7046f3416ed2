"""Every product module, run the way Ansible runs it (`<module> <args-file>`),
under valgrind memcheck (or LeakSanitizer for the statically linked
nfs_rsync_sync, which valgrind cannot instrument: its ASan build is dynamic),
on success paths and failure paths, against the real lab.  A leak, an invalid
read/write or a non-JSON stdout fails the test.

Binaries: $OCPVDR_BUILD (default build-ci) and $OCPVDR_ASAN_BUILD (default
build-ci-asan), as tests/run builds them."""
import json
import os
import pathlib
import shutil
import subprocess
import uuid

import pytest

from conftest import REPO

BUILD = REPO / os.environ.get("OCPVDR_BUILD", "build-ci")
ASAN_BUILD = REPO / os.environ.get("OCPVDR_ASAN_BUILD", "build-ci-asan")


def _binary(build, name):
    p = build / "modules" / name
    if not p.exists():   # a missing build fails: skipping would pass having checked nothing
        pytest.fail(f"{p} not built: tests/run builds it (or meson compile -C {build}; "
                    f"OCPVDR_BUILD / OCPVDR_ASAN_BUILD name another build dir)", pytrace=False)
    return p


def run_module(tmp_path, name, args, netns=None, expect_failed=False, env=None):
    """Runs the module under valgrind (or the ASan build for nfs_rsync_sync) and
    returns its JSON result.  Asserts: no leak, no memory error, JSON only."""
    args_file = tmp_path / f"args-{uuid.uuid4().hex[:6]}.json"
    args_file.write_text(json.dumps(args))
    e = dict(os.environ, **(env or {}))
    if name == "nfs_rsync_sync":
        binary = _binary(ASAN_BUILD, name)
        cmd = [str(binary), str(args_file)]
        e["ASAN_OPTIONS"] = "detect_leaks=1:exitcode=97"
        e["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    else:
        assert shutil.which("valgrind"), "valgrind is required (tests/lab/install-deps installs it)"
        binary = _binary(BUILD, name)
        cmd = ["valgrind", "--quiet", "--error-exitcode=97", "--leak-check=full",
               "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect",
               str(binary), str(args_file)]
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=e)
    assert p.returncode != 97, f"{name}: memory errors or leaks:\n{p.stderr[-6000:]}"
    try:
        result = json.loads(p.stdout)
    except ValueError:
        pytest.fail(f"{name}: stdout is not one JSON document:\n{p.stdout[:2000]}\n{p.stderr[-2000:]}")
    assert bool(result.get("failed")) == expect_failed, result
    assert p.returncode == (1 if expect_failed else 0), (p.returncode, result)
    return result


PV = {"apiVersion": "v1", "kind": "PersistentVolume",
      "metadata": {"name": "leak-pv", "uid": "u-1", "resourceVersion": "7",
                   "annotations": {"pv.kubernetes.io/bound-by-controller": "yes"}},
      "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
               "storageClassName": "nfs-subdir", "persistentVolumeReclaimPolicy": "Delete",
               "claimRef": {"namespace": "vm-prod", "name": "c", "uid": "x", "resourceVersion": "1"},
               "nfs": {"server": "192.0.2.1", "path": "/srv/nfs/vm-prod-c-leak-pv"}},
      "status": {"phase": "Bound"}}


def test_k8s_dr_clean_clean_and_bad_input(tmp_path):
    r = run_module(tmp_path, "k8s_dr_clean", {"mode": "clean", "resources": [PV]})
    assert r["objects"][0]["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    run_module(tmp_path, "k8s_dr_clean", {"mode": "clean", "resources": [{"kind": "PersistentVolume"}]},
               expect_failed=True)
    run_module(tmp_path, "k8s_dr_clean", {"mode": "bogus"}, expect_failed=True)


def test_k8s_dr_clean_mirror_against_lab(tmp_path, lab, unique_ns, k8s_client):
    from kubernetes import client
    ns = unique_ns("primary", prefix="leak")
    client.CoreV1Api(k8s_client("dr")).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        client.CoreV1Api(k8s_client("primary")).create_namespaced_persistent_volume_claim(
            ns, client.V1PersistentVolumeClaim(
                metadata=client.V1ObjectMeta(name="pending"),
                spec=client.V1PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteOnce"], storage_class_name="none",
                    resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}))))
        args = {"mode": "mirror", "kubeconfig": lab["DR_KUBECONFIG"],
                "source": {"kubeconfig": lab["PRIMARY_KUBECONFIG"]},
                "namespaces": [ns], "kinds": ["PersistentVolumeClaim"]}
        r = run_module(tmp_path, "k8s_dr_clean", args)
        assert r["changed"] is True
        r = run_module(tmp_path, "k8s_dr_clean", dict(args, _ansible_check_mode=True, _ansible_diff=True))
        assert r["changed"] is False
        # failure paths: source and DR are the same cluster; an unreadable kubeconfig
        r = run_module(tmp_path, "k8s_dr_clean", dict(args, source={"kubeconfig": lab["DR_KUBECONFIG"]}),
                       expect_failed=True)
        assert "same" in r["msg"], r["msg"]
        run_module(tmp_path, "k8s_dr_clean", dict(args, kubeconfig=str(tmp_path / "none.kubeconfig")),
                   expect_failed=True)
        # mode list (lib/dr/inventory): success with the DR comparison, and a DR
        # that cannot be read
        largs = dict(args, mode="list", kinds=["PersistentVolumeClaim", "PersistentVolume"], compare_dr=True)
        r = run_module(tmp_path, "k8s_dr_clean", largs)
        assert r["claims_pending"] == ["pending"] and r["volumes_current"] == [], r
        run_module(tmp_path, "k8s_dr_clean", dict(largs, kubeconfig=str(tmp_path / "none.kubeconfig")),
                   expect_failed=True)
    finally:
        client.CoreV1Api(k8s_client("dr")).delete_namespace(ns)


def test_longhorn_restore_plan_and_missing_backup(tmp_path, lab):
    args = {"kubeconfig": lab["DR_KUBECONFIG"], "volumes": [f"leak-{uuid.uuid4().hex[:6]}"],
            "wait": False, "_ansible_check_mode": True}
    r = run_module(tmp_path, "longhorn_restore", args)
    assert r["volumes"][0]["status"] in ("skipped", "failed", "planned"), r
    run_module(tmp_path, "longhorn_restore", {"kubeconfig": "/nonexistent/kubeconfig", "volumes": ["x"]},
               expect_failed=True)


def test_oadp_parse_local_and_s3(tmp_path, lab):
    out = tmp_path / "bucket"
    gen = [os.path.join(lab["LAB_VENV"], "bin", "python"), str(REPO / "tests/fixtures/velero/gen_backup.py")]
    subprocess.run(gen + ["--name", "leak-bk", "--namespaces", "vm-prod", "--vms-per-ns", "3", str(out)],
                   check=True, capture_output=True)
    tarball = next(out.rglob("leak-bk.tar.gz"))
    r = run_module(tmp_path, "oadp_parse", {"src": str(tarball), "namespaces": ["vm-prod"]})
    assert r["counts"], r
    run_module(tmp_path, "oadp_parse", {"src": str(tmp_path / "missing.tar.gz")}, expect_failed=True)
    r = run_module(tmp_path, "oadp_parse", {"s3": {"endpoint": lab["S3_ENDPOINT"], "region": lab["S3_REGION"],
                                                   "bucket": lab["S3_BUCKET"], "prefix": "leak-none",
                                                   "credentials_file": lab["S3_CREDENTIALS_FILE"],
                                                   "path_style": True,
                                                   # a lab MinIO without TLS: opted in explicitly
                                                   "allow_insecure_http": lab["S3_ENDPOINT"].startswith("http://")}},
                   expect_failed=True)
    assert "backup" in r["msg"].lower(), r["msg"]


def test_oadp_parse_restore_results(tmp_path, lab, s3_client):
    """restore_results: a results file the lab's Velero wrote (read, gunzipped,
    flattened) and a missing one (404 path) - both leak-free."""
    prefix = f"leak-rr-{uuid.uuid4().hex[:6]}"
    data = REPO / "tests/unit/data/oadp/restore-results-partiallyfailed.gz"
    s3_client.put_object(Bucket=lab["S3_BUCKET"], Key=f"{prefix}/restores/r1/restore-r1-results.gz",
                         Body=data.read_bytes())
    s3 = {"endpoint": lab["S3_ENDPOINT"], "region": lab["S3_REGION"], "bucket": lab["S3_BUCKET"],
          "prefix": prefix, "credentials_file": lab["S3_CREDENTIALS_FILE"], "path_style": True,
          "allow_insecure_http": lab["S3_ENDPOINT"].startswith("http://")}     # a lab MinIO without TLS
    r = run_module(tmp_path, "oadp_parse", {"s3": s3, "restore_results": "r1"})
    assert r["restore_error_count"] == 1 and "exceeded quota" in r["restore_error_messages"][0], r
    r = run_module(tmp_path, "oadp_parse", {"s3": s3, "restore_results": "r2"}, expect_failed=True)
    assert "results of Restore 'r2' not found" in r["msg"], r["msg"]
    r = run_module(tmp_path, "oadp_parse", {"s3": {**s3, "bucket": f"no-such-{prefix}"}, "restore_results": "r1"},
                   expect_failed=True)   # the NoSuchBucket path
    assert "NoSuchBucket" in r["msg"], r["msg"]


def test_nfs_rsync_sync_sync_check_and_absent(tmp_path, lab):
    src_root = pathlib.Path(lab["NFS_PRIMARY_EXPORT"])
    name = f"leak-{uuid.uuid4().hex[:6]}"
    d = src_root / f"vm-prod-c-{name}"
    d.mkdir()
    (d / "f").write_text("data\n")
    pv = json.loads(json.dumps(PV))
    pv["metadata"]["name"] = name
    pv["spec"]["nfs"] = {"server": lab["NFS_PRIMARY_ADDR"], "path": str(d)}
    pv["spec"]["claimRef"]["name"] = "c"
    args = {"volumes": [pv],
            "storage_profiles": {"nfs-subdir": {"dr_server": lab["NFS_DR_ADDR"],
                                                "primary_export": lab["NFS_PRIMARY_EXPORT"],
                                                "dr_export": lab["NFS_DR_EXPORT"]}},
            "dr_host": lab["NFS_DR_ADDR"], "dr_user": "root", "ssh_key": lab["LAB_SSH_KEY"],
            "known_hosts": lab["LAB_KNOWN_HOSTS"]}
    ns = lab["NFS_PRIMARY_NETNS"]
    r = run_module(tmp_path, "nfs_rsync_sync", dict(args, _ansible_check_mode=True), netns=ns)
    assert not (pathlib.Path(lab["NFS_DR_EXPORT"]) / d.name).exists()
    r = run_module(tmp_path, "nfs_rsync_sync", args, netns=ns)
    assert r["changed"] is True and len(r["pvs"]) == 1
    assert (pathlib.Path(lab["NFS_DR_EXPORT"]) / d.name / "f").read_text() == "data\n"
    # refused without the caller's confirmation, then removed
    run_module(tmp_path, "nfs_rsync_sync", dict(args, state="absent"), netns=ns, expect_failed=True)
    r = run_module(tmp_path, "nfs_rsync_sync", dict(args, state="absent", pv_exists_on_primary=False), netns=ns)
    assert not (pathlib.Path(lab["NFS_DR_EXPORT"]) / d.name / "f").exists()


def test_dr_state_write_status_guard_and_failures(tmp_path, lab):
    """dr_state (lib/drstate): a write with a 409 retry, status with an
    unreachable primary, guard refusing, a failed DR read."""
    import threading
    import time
    tag = uuid.uuid4().hex[:8]
    st_ns, ns, pv = f"leak-st-{tag}", f"leak-app-{tag}", f"leak-pv-{tag}"
    kc = lab["DR_KUBECONFIG"]
    kubectl = [str(pathlib.Path(lab["LAB_BIN"]) / "kubectl"), "--kubeconfig", kc]
    subprocess.run(kubectl + ["create", "namespace", st_ns], check=True, capture_output=True)
    subprocess.run(kubectl + ["apply", "-f", "-"], check=True, capture_output=True, text=True,
                   input=json.dumps({
                       "apiVersion": "v1", "kind": "PersistentVolume",
                       "metadata": {"name": pv, "labels": {"dr.ocpv.io/managed-by": "ocpv-dr"},
                                    "annotations": {"dr.ocpv.io/source-cluster": "leak",
                                                    "dr.ocpv.io/source-uid": "u1"}},
                       "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                                "persistentVolumeReclaimPolicy": "Retain",
                                "claimRef": {"namespace": ns, "name": "d"},
                                "nfs": {"server": "10.0.0.10", "path": "/x"}}}))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    base = {"kubeconfig": kc, "state_namespace": st_ns, "source_cluster": "leak"}
    sync = {"volumes": [{"name": pv, "ok": True, "skipped": False, "started_at": now,
                         "finished_at": now, "bytes_sent": 5, "error": None},
                        {"name": pv + "-x", "ok": False, "skipped": False, "started_at": now,
                         "error": "failed"}],
            "host_time": now}
    listing = {"listed_at": now, "volumes": [{"metadata": {"name": pv + "-x", "uid": "u2"},
                                              "spec": {"claimRef": {"namespace": ns, "name": "e"}}}]}
    stop = threading.Event()

    def bump():   # another writer: the module's first patches get 409
        i = 0
        while not stop.is_set():
            subprocess.run(kubectl + ["annotate", "--overwrite", "pv", pv, f"x.io/b={i}"],
                           capture_output=True)
            i += 1
            time.sleep(0.3)
    try:
        r = run_module(tmp_path, "dr_state", dict(base, mode="record_sync", job="leak", sync=sync,
                                                  listing=listing))
        assert r["changed"] is True
        th = threading.Thread(target=bump)
        th.start()
        try:
            later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 30))
            sync2 = {"volumes": [dict(sync["volumes"][0], started_at=later)], "host_time": later}
            r = run_module(tmp_path, "dr_state", dict(base, mode="record_sync", sync=sync2,
                                                      write_delay_ms=2000))
        finally:
            stop.set()
            th.join()
        assert r["conflicts_retried"] >= 1, r
        run_module(tmp_path, "dr_state", dict(base, mode="record_full_sync", namespaces=[ns],
                                              listing=dict(listing, claims=[]), sync=sync,
                                              applied={"results": []}),
                   expect_failed=False)
        run_module(tmp_path, "dr_state", dict(base, mode="record_action", namespaces=[ns],
                                              action="failover", phase="running",
                                              _ansible_check_mode=True))
        run_module(tmp_path, "dr_state", dict(base, mode="record_action", namespaces=[ns],
                                              action="failover", phase="running"))
        r = run_module(tmp_path, "dr_state", dict(base, mode="status", namespaces=[ns],
                                                  primary={"host": "https://127.0.0.1:9",
                                                           "api_key": "x"}, primary_timeout=1))
        assert r["namespaces"][0]["state"] == "FailingOver" and r["primary_checked"] is False
        r = run_module(tmp_path, "dr_state", dict(base, mode="guard", namespaces=[ns]),
                       expect_failed=True)
        assert "failover" in r["msg"]
        run_module(tmp_path, "dr_state", dict(base, mode="note_event_read", namespaces=[ns],
                                              listing=listing))
        run_module(tmp_path, "dr_state", dict(base, mode="status",
                                              kubeconfig=str(tmp_path / "none.kubeconfig")),
                   expect_failed=True)
        run_module(tmp_path, "dr_state", {"mode": "record_sync", "kubeconfig": kc},
                   expect_failed=True)
    finally:
        subprocess.run(kubectl + ["delete", "namespace", st_ns, "--wait=false"], capture_output=True)
        subprocess.run(kubectl + ["delete", "pv", pv, "--wait=false"], capture_output=True)
