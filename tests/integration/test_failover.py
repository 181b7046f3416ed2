"""Mode three end to end: playbooks/manual_dr/execute_failover.yml against the lab
with REAL Velero (server + AWS object-store plugin built from their Go modules,
tests/lab/velero/start) taking the backups on primary and carrying out the
Restore on dr, with MinIO as the BackupStorageLocation.

What is not real: KubeVirt. tests/controllers/kubevirt_sim.py plays
virt-controller (VM printableStatus/ready/Ready condition, VMI phase) on both
clusters; it says so in its header. Volume data is real files on the lab NFS
hosts, replicated by the real rsync over ssh (mode two / the final sync).

RTO figures: FAILOVER_RTO_VMS=10 pytest tests/integration/test_failover.py -k rto -s
"""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from conftest import REPO, seed_workload, wait_until

PLAYBOOK = REPO / "playbooks/manual_dr/execute_failover.yml"
PERIODIC = REPO / "playbooks/scheduled/execute_periodic_sync.yml"
ADP = "openshift-adp"
KV = ("kubevirt.io", "v1")
VELERO = ("velero.io", "v1")


def _lab_name(lab):
    return lab.get("LAB_NAME") or pathlib.Path(lab["LAB_STATE_DIR"]).name.removeprefix(".state-")


def _lab_scripts(lab):
    """tests/lab of the checkout that runs this lab instance (LAB_REPO: its state dir
    lives there), so a test run from another worktree drives the same lab."""
    return pathlib.Path(lab.get("LAB_REPO") or REPO) / "tests/lab"


def velero_start(lab, cluster):
    """tests/lab/velero/start (idempotent: returns at once when the server runs).
    True when this call started it."""
    p = subprocess.run([str(_lab_scripts(lab) / "velero/start"), cluster], capture_output=True, text=True,
                       env=dict(os.environ, LAB_NAME=_lab_name(lab)), timeout=300)
    assert p.returncode == 0, f"velero/start {cluster} failed:\n{p.stderr[-3000:]}"
    return "already running" not in p.stderr


@pytest.fixture(scope="module")
def velero(lab):
    """Real Velero servers against primary (backups) and dr (BSL sync + restores);
    stopped afterwards only when this module started them (the lab's are shared)."""
    env = dict(os.environ, LAB_NAME=_lab_name(lab))
    started = [c for c in ("primary", "dr") if velero_start(lab, c)]
    yield
    if started:
        subprocess.run([str(_lab_scripts(lab) / "velero/stop"), *started], capture_output=True, env=env,
                       timeout=120)


@pytest.fixture
def kubevirt_sim(lab):
    procs = []

    def start(cluster, namespaces):
        kc = lab["PRIMARY_KUBECONFIG" if cluster == "primary" else "DR_KUBECONFIG"]
        log = open(pathlib.Path(lab["LAB_STATE_DIR"]) / "logs" / f"kubevirt-sim-{cluster}.log", "a")
        argv = [os.path.join(lab["LAB_VENV"], "bin", "python"), str(REPO / "tests/controllers/kubevirt_sim.py"),
                "--kubeconfig", kc, "--boot-seconds", "1"]
        for n in namespaces:
            argv += ["--namespace", n]
        p = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        procs.append(p)
        return p
    yield start
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=20)


@pytest.fixture
def ns(lab, k8s_client):
    from kubernetes import client
    name = f"fo-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(k8s_client("primary")).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"ocpv-dr.io/test": "true"})))
    yield name
    for cluster in ("primary", "dr"):
        try:
            api = client.CoreV1Api(k8s_client(cluster))
            for pv in api.list_persistent_volume().items:
                if pv.metadata.name.startswith(f"pv-{name}-"):
                    api.delete_persistent_volume(pv.metadata.name)
            api.delete_namespace(name)
        except Exception:  # noqa: BLE001 - already gone / cluster stopped
            pass


def make_workload(lab, k8s_client, ns, count, classes=None):
    """count NFS volumes with data (seed_workload.py; storage classes round robin, default
    nfs-subdir, nfs-csi, nfs-dynamic) and one VM per volume, running on primary.
    vm-0 uses spec.running (the older field), the others runStrategy."""
    from kubernetes import client
    seed_workload(lab, ns, count, "w", files=2, classes=classes)
    co = client.CustomObjectsApi(k8s_client("primary"))
    for i in range(count):
        spec = {"template": {"metadata": {"labels": {"kubevirt.io/vm": f"vm-{i}"}},
                             "spec": {"domain": {"devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]},
                                                 "resources": {"requests": {"memory": "64Mi"}}},
                                      "volumes": [{"name": "root", "persistentVolumeClaim": {"claimName": f"w-disk-{i}"}}]}}}
        if i == 0:
            spec["running"] = True
        else:
            spec["runStrategy"] = "Always"
        co.create_namespaced_custom_object(*KV, ns, "virtualmachines", {
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": f"vm-{i}", "namespace": ns, "labels": {"app": "failover-test"}}, "spec": spec})


def vm_states(k8s_client, cluster, ns):
    from kubernetes import client
    items = client.CustomObjectsApi(k8s_client(cluster)).list_namespaced_custom_object(*KV, ns, "virtualmachines")["items"]
    return {v["metadata"]["name"]: (v.get("status") or {}).get("printableStatus") for v in items}


def all_in(k8s_client, cluster, ns, state, count):
    s = vm_states(k8s_client, cluster, ns)
    return len(s) == count and all(v == state for v in s.values()) and s


def velero_backup(lab, k8s_client, ns, name=None):
    """A real Velero Backup of ns on primary (no volume snapshots: ocpv-dr owns the data)."""
    from kubernetes import client
    velero_start(lab, "primary")   # still running after an earlier test stopped the primary cluster?
    co = client.CustomObjectsApi(k8s_client("primary"))
    name = name or f"{ns}-{uuid.uuid4().hex[:5]}"
    co.create_namespaced_custom_object(*VELERO, ADP, "backups", {
        "apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": name, "namespace": ADP},
        "spec": {"includedNamespaces": [ns], "storageLocation": "default", "snapshotVolumes": False,
                 "defaultVolumesToFsBackup": False, "ttl": "24h0m0s"}})

    def done():
        st = co.get_namespaced_custom_object(*VELERO, ADP, "backups", name).get("status") or {}
        return st.get("phase") in ("Completed", "PartiallyFailed", "Failed", "FailedValidation") and st
    st = wait_until(done, timeout=180, interval=1, what=f"velero backup {name}")
    assert st["phase"] == "Completed", st
    return name


@pytest.fixture(scope="module")
def collections_env(tmp_path_factory):
    """With OADP_PARSE_BIN (a build dir's binary): the playbook runs a copy of the
    repo's collection holding that oadp_parse, so nobody's installed modules change."""
    binary = os.environ.get("OADP_PARSE_BIN")
    if not binary:
        return {}
    root = tmp_path_factory.mktemp("coll")
    coll = REPO / "collections/ansible_collections/ocpv/dr"
    dst = root / "ansible_collections/ocpv/dr"
    shutil.copytree(coll, dst, symlinks=True)
    shutil.copy(binary, dst / "plugins/modules/oadp_parse")
    return {"ANSIBLE_COLLECTIONS_PATH": str(root)}


@pytest.fixture
def run_failover(lab, ansible_playbook, collections_env):
    def run(ns, extra=None, timeout=900):
        ev = {"namespaces": [ns], "dr_rsync_ssh_key": lab["LAB_SSH_KEY"],
              "dr_rsync_known_hosts": lab["LAB_KNOWN_HOSTS"], "failover_vm_ready_timeout": 180}
        ev.update(extra or {})
        # a fresh runner per run (conftest): no report of an earlier run is there
        r = ansible_playbook(PLAYBOOK, extra_vars=ev, json_output=False, timeout=timeout, env=collections_env)
        return r, r.report("failover")
    return run


def restores_for(k8s_client, backup):
    from kubernetes import client
    co = client.CustomObjectsApi(k8s_client("dr"))
    return co.list_namespaced_custom_object(*VELERO, ADP, "restores",
                                            label_selector=f"dr.ocpv.io/failover-backup={backup}")["items"]


def test_planned_failover(lab, k8s_client, velero, kubevirt_sim, ns, run_failover):
    from kubernetes import client
    make_workload(lab, k8s_client, ns, 3)
    kubevirt_sim("primary", [ns])
    kubevirt_sim("dr", [ns])
    wait_until(lambda: all_in(k8s_client, "primary", ns, "Running", 3), timeout=60, what="VMs running on primary")
    backup = velero_backup(lab, k8s_client, ns)
    marker = pathlib.Path(lab["NFS_PRIMARY_EXPORT"]) / f".ocpv-dr-readonly-{ns}"
    # the read-only step records the network namespace it ran in: nfs-primary's, not the controller's
    r, rep = run_failover(ns, {"failover_type": "planned", "backup_name": backup, "verify_checksums": True,
                               "failover_primary_readonly_cmd": [
                                   "sh", "-c", f"readlink /proc/self/ns/net > {marker}"]})
    assert r.rc == 0, r
    assert rep and rep["ok"] is True, rep
    # phase 1: halted the way each VM asks for it, stopped, read-only step ran on nfs-primary
    co_p = client.CustomObjectsApi(k8s_client("primary"))
    vms_p = {v["metadata"]["name"]: v for v in co_p.list_namespaced_custom_object(*KV, ns, "virtualmachines")["items"]}
    assert vms_p["vm-0"]["spec"]["running"] is False and "runStrategy" not in vms_p["vm-0"]["spec"]
    assert all(vms_p[f"vm-{i}"]["spec"]["runStrategy"] == "Halted" for i in (1, 2))
    assert all(v["status"]["printableStatus"] == "Stopped" for v in vms_p.values())
    inv = yaml.safe_load(pathlib.Path(lab["LAB_INVENTORY"]).read_text())
    netns = inv["all"]["children"]["primary_nfs_server"]["hosts"]["nfs-primary"]["lab_netns"]
    assert marker.read_text().strip() == f"net:[{os.stat(f'/run/netns/{netns}').st_ino}]", marker.read_text()
    # phase 2: real Velero restore of the VMs, volumes excluded, data + PVs/PVCs on DR
    rs = restores_for(k8s_client, backup)
    assert len(rs) == 1 and rs[0]["status"]["phase"] == "Completed", rs
    assert {"persistentvolumes", "persistentvolumeclaims", "volumesnapshots",
            "volumesnapshotcontents"} <= set(rs[0]["spec"]["excludedResources"])
    assert rs[0]["spec"]["existingResourcePolicy"] == "update"
    core_d = client.CoreV1Api(k8s_client("dr"))
    for i in range(3):
        pvc = core_d.read_namespaced_persistent_volume_claim(f"w-disk-{i}", ns)
        pv = core_d.read_persistent_volume(pvc.spec.volume_name)
        server = pv.spec.nfs.server if pv.spec.nfs else pv.spec.csi.volume_attributes["server"]
        assert server == lab["NFS_DR_ADDR"], pv.spec
    src = sorted(pathlib.Path(lab["NFS_PRIMARY_EXPORT"]).glob(f"{ns}-*/file-*.bin"))
    assert len(src) == 6
    for f in src:
        dst = pathlib.Path(lab["NFS_DR_EXPORT"]) / f.parent.name / f.name
        assert dst.read_bytes() == f.read_bytes(), dst
    assert all(v["checksum"] == "match" and v["ok"] for v in rep["volumes"]), rep["volumes"]
    # phase 3: VMs Running/Ready on DR, report with RTO/RPO
    assert all_in(k8s_client, "dr", ns, "Running", 3)
    assert rep["summary"]["vms_ready"] == "3" or rep["summary"]["vms_ready"] == 3
    assert float(rep["rto_s"]) > 0 and set(rep["phases"]) >= {"primary_shutdown", "restore", "vms_ready"}
    assert rep["backup"]["name"] == backup and int(rep["rpo"]["backup_age_s"]) >= 0
    # per-volume RPO from DR's records: the final sync's own start (a fresh runner has no old reports)
    assert len(rep["rpo"]["volumes"]) == 3 and all(v["last_sync_start"] for v in rep["rpo"]["volumes"]), rep["rpo"]
    md = pathlib.Path(rep["_md"]).read_text()
    assert "RTO (measured)" in md and backup in md and "vm-2" in md
    # re-run: nothing duplicated, still OK
    r2, rep2 = run_failover(ns, {"failover_type": "planned", "backup_name": backup})
    assert r2.rc == 0, r2
    assert len(restores_for(k8s_client, backup)) == 1


# Storage classes named like no built-in one: the profile's `type` says how they map.
NAMED_CLASS_PROFILES = {
    "gold": "{{ dr_nfs_profile_common | combine({'type': 'nfs-subdir'}) }}",
    "silver-csi": "{{ dr_nfs_profile_common | combine({'type': 'nfs-csi', 'path_depth': 1}) }}",
}


def test_named_storage_class_gold(lab, k8s_client, velero, kubevirt_sim, ns, run_failover,
                                  ansible_playbook):
    """Classes `gold` (type nfs-subdir) and `silver-csi` (type nfs-csi) go through sync (mode two),
    failover verification (the DR copy of each is checked and compared by checksum) and
    provisioning (one volume's DR PV and claim are gone before the failover): the one mapping in
    C decides by the profile's type, never by the class name.  With the class-name dispatch of
    217ccc1 these classes had no sync/verify task file (unknown_class.yml): with
    dr_on_unknown_storage_class=fail the sync already failed ("no handler for it"), with the
    default skip their data was never replicated and the failover did not check it."""
    from kubernetes import client
    ev = {"dr_storage_profiles": NAMED_CLASS_PROFILES, "dr_on_unknown_storage_class": "fail"}
    make_workload(lab, k8s_client, ns, 3, classes=["gold", "silver-csi"])
    kubevirt_sim("primary", [ns])
    kubevirt_sim("dr", [ns])
    wait_until(lambda: all_in(k8s_client, "primary", ns, "Running", 3), timeout=60, what="VMs running on primary")
    core_d = client.CoreV1Api(k8s_client("dr"))
    core_d.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    # sync: mode two replicates the data and applies the DR PVs/PVCs
    r = ansible_playbook(PERIODIC, extra_vars={"target_namespaces": [ns], "dr_rsync_ssh_key": lab["LAB_SSH_KEY"],
                                               "dr_rsync_known_hosts": lab["LAB_KNOWN_HOSTS"], **ev},
                         json_output=False)
    assert r.rc == 0, r
    src = sorted(pathlib.Path(lab["NFS_PRIMARY_EXPORT"]).glob(f"{ns}-*/file-*.bin"))
    assert len(src) == 6
    for f in src:
        assert (pathlib.Path(lab["NFS_DR_EXPORT"]) / f.parent.name / f.name).read_bytes() == f.read_bytes()
    dr_pvs = {p.metadata.name: p for p in core_d.list_persistent_volume().items if p.metadata.name.startswith(f"pv-{ns}-")}
    assert sorted(dr_pvs) == [f"pv-{ns}-w-disk-{i}" for i in range(3)], sorted(dr_pvs)
    # provisioning: w-disk-1 (silver-csi) loses its DR claim and volume; the failover makes them again
    gone = f"pv-{ns}-w-disk-1"
    core_d.delete_namespaced_persistent_volume_claim("w-disk-1", ns)
    core_d.delete_persistent_volume(gone)

    def deleted():
        names = [p.metadata.name for p in core_d.list_persistent_volume().items]
        claims = [c.metadata.name for c in core_d.list_namespaced_persistent_volume_claim(ns).items]
        return gone not in names and "w-disk-1" not in claims
    wait_until(deleted, timeout=60, what="DR claim and volume of w-disk-1 deleted")
    backup = velero_backup(lab, k8s_client, ns)
    r, rep = run_failover(ns, {"failover_type": "planned", "backup_name": backup, "verify_checksums": True,
                               "failover_final_sync": False, **ev})
    assert r.rc == 0, r
    assert rep and rep["ok"] is True, rep
    # verification: every volume checked on the DR host, found, and equal to the primary
    checks = {v["pv"]: v for v in rep["volumes"]}
    assert sorted(checks) == sorted(dr_pvs), rep["volumes"]
    for name, v in checks.items():
        assert v["ok"] and v["exists"] and int(v["entries"]) == 2 and v["checksum"] == "match", v
        assert v["storage_class"] == ("silver-csi" if name == gone else "gold"), v
        assert v["dir"] == f"{lab['NFS_DR_EXPORT']}/{ns}-w-disk-{name[-1]}-{name}", v
    assert not any("not checked" in w for w in rep["warnings"]), rep["warnings"]
    # provisioning: the silver-csi volume back on DR, pointing at the DR export
    assert rep["storage"]["pvs_provisioned"] == [gone], rep["storage"]
    pv = core_d.read_persistent_volume(gone)
    attrs = pv.spec.csi.volume_attributes
    assert attrs["server"] == lab["NFS_DR_ADDR"] and attrs["share"] == lab["NFS_DR_EXPORT"], attrs
    assert pv.spec.csi.volume_handle.startswith(lab["NFS_DR_ADDR"] + "#"), pv.spec.csi.volume_handle
    assert pv.spec.persistent_volume_reclaim_policy == "Retain"
    assert core_d.read_namespaced_persistent_volume_claim("w-disk-1", ns).spec.volume_name == gone
    assert all_in(k8s_client, "dr", ns, "Running", 3)


def test_disaster_failover_latest_backup(lab, k8s_client, velero, kubevirt_sim, ns, run_failover,
                                         ansible_playbook, lab_cluster):
    make_workload(lab, k8s_client, ns, 3)
    kubevirt_sim("primary", [ns])
    kubevirt_sim("dr", [ns])
    wait_until(lambda: all_in(k8s_client, "primary", ns, "Running", 3), timeout=60, what="VMs running on primary")
    # warm standby (mode two) before the disaster; mode two expects the protected namespace on DR
    from kubernetes import client
    client.CoreV1Api(k8s_client("dr")).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    r = ansible_playbook(PERIODIC, extra_vars={"target_namespaces": [ns], "dr_rsync_ssh_key": lab["LAB_SSH_KEY"],
                                               "dr_rsync_known_hosts": lab["LAB_KNOWN_HOSTS"]},
                         json_output=False)
    assert r.rc == 0, r
    older = velero_backup(lab, k8s_client, ns)
    latest = velero_backup(lab, k8s_client, ns)
    lab_cluster("primary", "stop")
    try:
        t0 = time.monotonic()
        r, rep = run_failover(ns, {"failover_type": "disaster", "backup_name": ""})
        took = time.monotonic() - t0
    finally:
        lab_cluster("primary", "up")
    assert r.rc == 0, r
    assert rep["ok"] is True and rep["backup"]["name"] == latest != older, rep["backup"]
    assert any("primary not reachable" in w for w in rep["warnings"]), rep["warnings"]
    assert float(rep["phases"]["primary_shutdown"]) < 60, rep["phases"]
    assert took < 600
    assert all_in(k8s_client, "dr", ns, "Running", 3)
    # the RPO of the data comes from DR's records of the last periodic run (design case 9: this
    # fresh runner has no periodic-*.json; the old fileglob left every volume's last sync empty)
    assert len(rep["rpo"]["volumes"]) == 3 and all(v["last_sync_start"] for v in rep["rpo"]["volumes"]), rep["rpo"]
    assert all(v["age_s"] is not None and v["age_s"] >= 0 for v in rep["rpo"]["volumes"]), rep["rpo"]


def test_missing_dr_data_aborts(lab, k8s_client, velero, kubevirt_sim, ns, run_failover):
    make_workload(lab, k8s_client, ns, 2)
    backup = velero_backup(lab, k8s_client, ns)
    # disaster: no final sync, and nothing was ever replicated for this namespace
    r, rep = run_failover(ns, {"failover_type": "disaster", "backup_name": backup})
    assert r.rc != 0
    assert rep and rep["ok"] is False
    assert "CRITICAL" in rep["error"] and f"pv-{ns}-w-disk-0" in rep["error"] and f"pv-{ns}-w-disk-1" in rep["error"]
    assert restores_for(k8s_client, backup) == []
    assert rep["summary"]["volumes_missing"] in (2, "2")


def test_restore_errors_are_reported(lab, k8s_client, velero, kubevirt_sim, ns, run_failover):
    """A real PartiallyFailed Restore: the backup holds a Service the DR namespace's ResourceQuota
    (services: 0) forbids, so the DR API server rejects it and Velero records the error.  The
    failover goes on (the VMs are restored) and shows Velero's error in its output and report:
    read from the Restore's results file in the BSL bucket (ocpv.dr.oadp_parse
    restore_results), with no velero CLI (failover_velero_cli: '', as in an AAP
    execution environment)."""
    from kubernetes import client
    make_workload(lab, k8s_client, ns, 2)
    client.CoreV1Api(k8s_client("primary")).create_namespaced_service(ns, client.V1Service(
        metadata=client.V1ObjectMeta(name="vm-0-ssh"),
        spec=client.V1ServiceSpec(selector={"kubevirt.io/vm": "vm-0"}, ports=[client.V1ServicePort(port=22)])))
    kubevirt_sim("primary", [ns])
    kubevirt_sim("dr", [ns])
    wait_until(lambda: all_in(k8s_client, "primary", ns, "Running", 2), timeout=60, what="VMs running on primary")
    backup = velero_backup(lab, k8s_client, ns)
    core_d = client.CoreV1Api(k8s_client("dr"))
    core_d.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    core_d.create_namespaced_resource_quota(ns, client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="no-services"), spec=client.V1ResourceQuotaSpec(hard={"services": "0"})))
    wait_until(lambda: (core_d.read_namespaced_resource_quota("no-services", ns).status.hard or {}).get("services") == "0",
               timeout=60, what="quota computed by the controller-manager")
    r, rep = run_failover(ns, {"failover_type": "planned", "backup_name": backup, "failover_velero_cli": ""})
    assert r.rc == 0, r
    rs = restores_for(k8s_client, backup)
    assert len(rs) == 1 and rs[0]["status"]["phase"] == "PartiallyFailed" and rs[0]["status"]["errors"] >= 1, rs
    assert rep["restore"]["phase"] == "PartiallyFailed" and int(rep["restore"]["errors"]) >= 1, rep["restore"]
    # Velero's own message text, as the DR API server worded the rejection
    velero_msg = (f'error restoring services/{ns}/vm-0-ssh: services "vm-0-ssh" is forbidden: '
                  "exceeded quota: no-services")
    errs = rep["restore"]["error_messages"]
    assert any(e.startswith(f"Namespace {ns}: {velero_msg}") for e in errs), errs
    assert f"  Namespace {ns}: {velero_msg}" in "\n".join(rep["restore"]["details"]), rep["restore"]["details"]
    assert any("PartiallyFailed" in w and velero_msg in w for w in rep["warnings"]), rep["warnings"]
    assert (velero_msg in r.stdout or velero_msg.replace('"', '\\"') in r.stdout) and "PartiallyFailed" in r.stdout, r
    assert "restore describe" not in r.stdout, r     # no velero CLI was run
    md = pathlib.Path(rep["_md"]).read_text()
    assert "Velero restore errors" in md and velero_msg in md, md
    # the rest of the backup was restored: the VMs run on DR, the Service is not there
    assert all_in(k8s_client, "dr", ns, "Running", 2)
    assert [x.metadata.name for x in core_d.list_namespaced_service(ns).items] == []


def test_rerun_after_interrupted_failover(lab, k8s_client, velero, kubevirt_sim, ns, run_failover, fresh_run_env):
    from conftest import ansible_env
    make_workload(lab, k8s_client, ns, 3)
    kubevirt_sim("primary", [ns])
    wait_until(lambda: all_in(k8s_client, "primary", ns, "Running", 3), timeout=60, what="VMs running on primary")
    backup = velero_backup(lab, k8s_client, ns)
    # first run: no virt-controller on DR yet, so it hangs in phase 3; killed once the Restore completed
    ev = {"namespaces": [ns], "failover_type": "planned", "backup_name": backup, "dr_rsync_ssh_key": lab["LAB_SSH_KEY"],
          "dr_rsync_known_hosts": lab["LAB_KNOWN_HOSTS"], "failover_vm_ready_timeout": 300}
    cmd = [os.path.join(lab["LAB_VENV"], "bin", "ansible-playbook"), "-i", lab["LAB_INVENTORY"],
           "-e", json.dumps(ev), str(PLAYBOOK)]
    p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         env=fresh_run_env(ansible_env(lab, json_output=False))[1])
    try:
        wait_until(lambda: any((x.get("status") or {}).get("phase") == "Completed"
                               for x in restores_for(k8s_client, backup)), timeout=400, interval=1,
                   what="the first run's Restore")
        time.sleep(2)
        assert p.poll() is None, "the first run should still be waiting for the VMs"
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    from kubernetes import client

    def dr_uids():
        co = client.CustomObjectsApi(k8s_client("dr"))
        core = client.CoreV1Api(k8s_client("dr"))
        vms = co.list_namespaced_custom_object(*KV, ns, "virtualmachines")["items"]
        return ({v["metadata"]["name"]: v["metadata"]["uid"] for v in vms},
                {c.metadata.name: c.metadata.uid for c in core.list_namespaced_persistent_volume_claim(ns).items},
                {p.metadata.name: p.metadata.uid for p in core.list_persistent_volume().items
                 if p.metadata.name.startswith(f"pv-{ns}-")})
    before = dr_uids()
    assert [len(x) for x in before] == [3, 3, 3], before
    kubevirt_sim("dr", [ns])
    r, rep = run_failover(ns, {"failover_type": "planned", "backup_name": backup})
    assert r.rc == 0, r
    assert rep["ok"] is True
    assert len(restores_for(k8s_client, backup)) == 1
    assert all_in(k8s_client, "dr", ns, "Running", 3)
    # nothing deleted and re-created, nothing duplicated: the same VMs, claims and volumes
    assert dr_uids() == before


@pytest.mark.skipif(not os.environ.get("FAILOVER_RTO_VMS"), reason="RTO measurement: set FAILOVER_RTO_VMS=N")
def test_rto(lab, k8s_client, velero, kubevirt_sim, ns, run_failover):
    n = int(os.environ["FAILOVER_RTO_VMS"])
    make_workload(lab, k8s_client, ns, n)
    kubevirt_sim("primary", [ns])
    kubevirt_sim("dr", [ns])
    wait_until(lambda: all_in(k8s_client, "primary", ns, "Running", n), timeout=300, what="VMs running on primary")
    backup = velero_backup(lab, k8s_client, ns)
    import resource
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = pathlib.Path("/proc/loadavg").read_text().split()[:3]
    r, rep = run_failover(ns, {"failover_type": "planned", "backup_name": backup,
                               "failover_vm_ready_timeout": 600}, timeout=1800)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    load1 = pathlib.Path("/proc/loadavg").read_text().split()[:3]
    assert r.rc == 0, r
    assert all_in(k8s_client, "dr", ns, "Running", n)
    print(f"\nRTO planned failover, {n} VMs/{n} PVCs: {rep['rto_s']} s, phases {rep['phases']}, "
          f"restore {rep['restore']['items_restored']} items in {rep['restore']['started']}..{rep['restore']['completed']}; "
          f"ansible-playbook CPU user {ru1.ru_utime - ru0.ru_utime:.1f} s sys {ru1.ru_stime - ru0.ru_stime:.1f} s; "
          f"loadavg before {' '.join(load0)} after {' '.join(load1)}", file=sys.stderr)
