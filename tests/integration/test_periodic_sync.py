"""Mode two end to end in the lab: playbooks/scheduled/execute_periodic_sync.yml
with the real ansible-playbook, the C modules (nfs_rsync_sync over real
rsync+ssh between the lab's storage hosts, k8s_dr_clean against the real DR
kube-apiserver) and the real kube-controller-manager binding the DR claims.

The only stand-in is the lab's workload seeder playing the CSI snapshotter
for VolumeSnapshot status (tests/lab/seed_workload.py says so)."""
import pathlib
import time

import pytest

from conftest import REPO, seed_workload, tree_sums, wait_until

PLAYBOOK = REPO / "playbooks/scheduled/execute_periodic_sync.yml"




def seed(lab, ns, count, prefix="demo", snapshots=2):
    seed_workload(lab, ns, count, prefix, snapshots=snapshots)


@pytest.fixture
def run_periodic(lab, ansible_playbook):
    def run(ns, check=False, extra=None):
        ev = {"target_namespaces": [ns], "dr_rsync_ssh_key": lab["LAB_SSH_KEY"],
              "dr_rsync_known_hosts": lab["LAB_KNOWN_HOSTS"]}
        ev.update(extra or {})
        # a fresh runner per run (conftest): the report is this run's only one
        r = ansible_playbook(PLAYBOOK, extra_vars=ev, check=check, json_output=False)
        assert len(r.reports("periodic")) <= 1, r.reports("periodic")
        return r, r.report("periodic")
    return run


def _dr_objects(api, ns):
    from kubernetes import client
    core = client.CoreV1Api(api)
    pvcs = {c.metadata.name: c for c in core.list_namespaced_persistent_volume_claim(ns).items}
    pvs = {p.metadata.name: p for p in core.list_persistent_volume().items
           if p.spec.claim_ref and p.spec.claim_ref.namespace == ns}
    return pvcs, pvs


def test_periodic_sync_mirrors_then_changes_nothing(lab, twin_ns, k8s_client, run_periodic):
    ns = twin_ns
    seed(lab, ns, 6)
    r, rep = run_periodic(ns)
    assert r.rc == 0, r
    assert rep["ok"] is True and rep["check_mode"] is False
    s = rep["summary"]
    assert (s["volumes"], s["volumes_synced"], s["volumes_failed"]) == (6, 6, 0)
    assert s["objects_created"] == 6 + 6 + 2 + 2        # PV, PVC, VSC, VS

    # DR: claims Bound (real controller-manager) to volumes that point at nfs-dr, Retain
    dr = k8s_client("dr")
    def bound():
        pvcs, _ = _dr_objects(dr, ns)
        return len(pvcs) == 6 and all(c.status.phase == "Bound" for c in pvcs.values())
    wait_until(bound, timeout=60, what="DR claims Bound")
    pvcs, pvs = _dr_objects(dr, ns)
    for pv in pvs.values():
        assert pv.spec.persistent_volume_reclaim_policy == "Retain"
        server = pv.spec.nfs.server if pv.spec.nfs else pv.spec.csi.volume_attributes["server"]
        assert server == lab["NFS_DR_ADDR"]
    assert tree_sums(lab["NFS_PRIMARY_EXPORT"], f"{ns}-*") == tree_sums(lab["NFS_DR_EXPORT"], f"{ns}-*")
    assert len(tree_sums(lab["NFS_DR_EXPORT"], f"{ns}-*")) == 6 * 5

    # a second run changes nothing: no data moved, no object written - only each DR PV's
    # sync record (dr.ocpv.io/last-*, field manager ocpv-dr-state, #16) moves to this run
    def _objects(pvs):
        return {n: (dr.sanitize_for_serialization(p.spec), p.metadata.labels,
                    {k: v for k, v in (p.metadata.annotations or {}).items() if not k.startswith("dr.ocpv.io/last-")})
                for n, p in pvs.items()}

    def _record(pvs, key):
        return {n: (p.metadata.annotations or {}).get(f"dr.ocpv.io/{key}") for n, p in pvs.items()}
    before, starts_before = _objects(pvs), _record(pvs, "last-sync-start")
    assert all(starts_before.values()), starts_before
    time.sleep(1.1)                 # the next run's starts are a later second
    r, rep = run_periodic(ns)
    assert r.rc == 0, r
    s = rep["summary"]
    assert s["volumes_changed"] == 0 and s["objects_created"] == 0 and s["objects_updated"] == 0, s
    assert s["objects_deleted"] == 0 and s["objects_unchanged"] == 16, s
    _, pvs = _dr_objects(dr, ns)
    assert _objects(pvs) == before
    after = _record(pvs, "last-sync-start")
    assert all(after[n] > starts_before[n] for n in after), (starts_before, after)
    assert set(_record(pvs, "last-attempt-result").values()) == {"ok"}


def test_periodic_sync_creates_missing_dr_namespace(lab, twin_ns, k8s_client, run_periodic):
    """A protected namespace that exists only on the primary is created on DR
    (empty but for the replicated claims), instead of failing the claims' apply."""
    from kubernetes import client
    ns = twin_ns
    dr_core = client.CoreV1Api(k8s_client("dr"))
    dr_core.delete_namespace(ns)

    def gone():
        try:
            dr_core.read_namespace(ns)
            return False
        except client.ApiException as e:
            return e.status == 404
    wait_until(gone, timeout=60, what=f"DR namespace {ns} deleted")
    seed(lab, ns, 2, snapshots=0)
    r, rep = run_periodic(ns)
    assert r.rc == 0, r
    assert rep["ok"] is True and rep["summary"]["volumes_synced"] == 2, rep["summary"]
    assert dr_core.read_namespace(ns).status.phase == "Active"
    wait_until(lambda: len(_dr_objects(k8s_client("dr"), ns)[0]) == 2, timeout=60, what="DR claims")


def test_periodic_sync_converges_after_missed_events(lab, twin_ns, k8s_client, run_periodic):
    """Changes made while nothing forwarded events (forwarder stopped): create,
    modify data, delete - one periodic run makes DR an exact mirror again."""
    from kubernetes import client
    ns = twin_ns
    seed(lab, ns, 4)
    r, rep = run_periodic(ns)
    assert r.rc == 0 and rep["ok"], r

    prim = pathlib.Path(lab["NFS_PRIMARY_EXPORT"])
    d0 = next(prim.glob(f"{ns}-demo-disk-0-*"))
    (d0 / "file-0.bin").write_bytes(b"modified while the forwarder was down\n")
    (d0 / "file-1.bin").unlink()
    (d0 / "new.txt").write_text("new file\n")
    core = client.CoreV1Api(k8s_client("primary"))
    core.delete_namespaced_persistent_volume_claim("demo-disk-3", ns)
    core.delete_persistent_volume(f"pv-{ns}-demo-disk-3")
    seed(lab, ns, 1, prefix="extra", snapshots=0)       # adds extra-disk-0

    r, rep = run_periodic(ns)
    assert r.rc == 0, r
    s = rep["summary"]
    assert rep["ok"], rep
    assert s["objects_created"] == 2 and s["objects_deleted"] == 2, s     # extra-disk-0 in, demo-disk-3 out
    assert s["volumes_changed"] == 2, s                                   # demo-disk-0 modified, extra-disk-0 new
    pvcs, pvs = _dr_objects(k8s_client("dr"), ns)
    assert sorted(pvcs) == ["demo-disk-0", "demo-disk-1", "demo-disk-2", "extra-disk-0"]
    assert sorted(pvs) == [f"pv-{ns}-{n}" for n in ("demo-disk-0", "demo-disk-1", "demo-disk-2", "extra-disk-0")]
    gone = f"{ns}-demo-disk-3-"          # its PV was deleted on the primary (data stays there)
    live = {k: v for k, v in tree_sums(lab["NFS_PRIMARY_EXPORT"], f"{ns}-*").items() if not k.startswith(gone)}
    dr_sums = tree_sums(lab["NFS_DR_EXPORT"], f"{ns}-*")
    # every live primary file is on DR byte for byte, the deleted file is gone
    # inside its volume, and the pruned volume's DR data is removed
    assert dr_sums == live
    assert not any(k.startswith(d0.name + "/file-1.bin") for k in dr_sums)
    assert s["volumes_data_removed"] == 1, s



def test_periodic_sync_check_mode_writes_nothing(lab, twin_ns, k8s_client, run_periodic):
    ns = twin_ns
    seed(lab, ns, 3, snapshots=1)
    r, rep = run_periodic(ns, check=True)
    assert r.rc == 0, r
    assert rep["check_mode"] is True
    pvcs, pvs = _dr_objects(k8s_client("dr"), ns)
    assert pvcs == {} and pvs == {}
    assert tree_sums(lab["NFS_DR_EXPORT"], f"{ns}-*") == {}


def test_periodic_sync_prune_guard_and_unmanaged_objects(lab, twin_ns, k8s_client, run_periodic):
    """The prune never touches DR objects ocpv-dr does not manage, and refuses a
    mass delete beyond dr_prune_max_delete without deleting anything."""
    from kubernetes import client
    ns = twin_ns
    seed(lab, ns, 4, snapshots=0)
    r, rep = run_periodic(ns)
    assert r.rc == 0 and rep["ok"], r
    dr = client.CoreV1Api(k8s_client("dr"))
    dr.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="keep-me")))
    dr.create_namespaced_persistent_volume_claim(ns, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="dr-only-unmanaged"),
        spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"], storage_class_name="none",
                                                resources=client.V1VolumeResourceRequirements(
                                                    requests={"storage": "1Gi"}))))
    core = client.CoreV1Api(k8s_client("primary"))
    for i in range(3):
        core.delete_namespaced_persistent_volume_claim(f"demo-disk-{i}", ns)
    r, rep = run_periodic(ns, extra={"dr_prune_max_delete": 2})
    assert r.rc != 0, "a prune beyond max_delete must fail the run"
    assert rep["ok"] is False and rep["prune_error"], rep
    assert "max_delete" in rep["prune_error"] or "exceed" in rep["prune_error"], rep["prune_error"]
    pvcs, _ = _dr_objects(k8s_client("dr"), ns)
    assert set(pvcs) >= {"demo-disk-0", "demo-disk-1", "demo-disk-2", "dr-only-unmanaged"}

    r, rep = run_periodic(ns)          # default guard allows it
    assert r.rc == 0, r
    pvcs, _ = _dr_objects(k8s_client("dr"), ns)
    assert sorted(pvcs) == ["demo-disk-3", "dr-only-unmanaged"]
    assert dr.read_namespaced_config_map("keep-me", ns).metadata.name == "keep-me"


def test_periodic_prune_never_removes_another_volumes_data(lab, twin_ns, k8s_client, run_periodic):
    """Issue 15 item 2, mode two: a managed DR PV the prune deletes whose DR
    directory holds another volume's directory (left by an older writer, or
    applied by hand) does not take that volume's data with it: the removal is
    refused and reported, the other volume's DR copy stays byte for byte."""
    from kubernetes import client
    ns = twin_ns
    prim, dr_exp = pathlib.Path(lab["NFS_PRIMARY_EXPORT"]), pathlib.Path(lab["NFS_DR_EXPORT"])
    # on the primary: an nfs-dynamic volume one level deeper, {ns}-team/v1
    src = prim / f"{ns}-team" / "v1"
    src.mkdir(parents=True)
    (src / "disk.img").write_bytes(b"v1's data\n" * 1000)
    core = client.CoreV1Api(k8s_client("primary"))
    pv_v1 = f"pv-{ns}-v1"
    core.create_persistent_volume({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_v1},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "nfs-dynamic",
                 "claimRef": {"namespace": ns, "name": "v1"},
                 "nfs": {"server": lab["NFS_PRIMARY_ADDR"], "path": str(src)}}})
    core.create_namespaced_persistent_volume_claim(ns, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "v1"},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "nfs-dynamic", "volumeName": pv_v1,
                 "resources": {"requests": {"storage": "1Gi"}}}})
    wait_until(lambda: core.read_namespaced_persistent_volume_claim("v1", ns).status.phase == "Bound",
               timeout=120, what="v1 Bound on the primary")
    r, rep = run_periodic(ns)
    assert r.rc == 0 and rep["ok"], r
    team_dr = dr_exp / f"{ns}-team"
    assert (team_dr / "v1" / "disk.img").read_bytes() == (src / "disk.img").read_bytes()
    (team_dr / "unrelated").write_text("not ocpv-dr's\n")
    before = tree_sums(dr_exp, f"{ns}-team")

    # a managed DR PV naming {ns}-team (the primary has no such PV: the prune deletes it)
    client.CoreV1Api(k8s_client("dr")).create_persistent_volume({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": f"pv-{ns}-team", "labels": {"dr.ocpv.io/managed-by": "ocpv-dr"},
                     "annotations": {"dr.ocpv.io/source-cluster": "primary"}},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "nfs-dynamic",
                 "claimRef": {"namespace": ns, "name": "team"},
                 "nfs": {"server": lab["NFS_DR_ADDR"], "path": str(team_dr)}}})
    r, rep = run_periodic(ns)
    assert tree_sums(dr_exp, f"{ns}-team") == before, "the prune removed another volume's data"
    assert r.rc != 0, "a refused data removal must fail the run"
    assert rep["summary"]["objects_deleted"] == 1 and rep["summary"]["volumes_data_removed"] == 0, rep["summary"]
    errors = [v["error"] for v in rep["failed_volumes"] if v.get("name") == f"pv-{ns}-team"]
    assert errors and "contains the directory" in errors[0] and pv_v1 in errors[0], rep["failed_volumes"]


def _task_block(stdout, task):
    """The -vvv output of the first task whose header contains `task` ("" when none)."""
    start = stdout.find(task)
    if start < 0:
        return ""
    end = stdout.find("\nTASK [", start)
    return stdout[start:end if end > 0 else len(stdout)]


def test_periodic_sync_runs_rsync_on_the_primary_storage_host(lab, twin_ns, ansible_playbook):
    """The play runs on localhost; nfs_rsync_sync is delegated to nfs-primary and must run ON it
    (over ssh: the lab's storage hosts are network namespaces with their own sshd), not on the
    controller.  The lab's hosts share this machine's file system, so the copy alone cannot
    tell; Ansible's -vvv output names the connection of the delegated task.  With the
    play-level `connection: local` of 217ccc1 it was LOCAL: the module ran on the controller."""
    seed(lab, twin_ns, 1, snapshots=0)
    ev = {"target_namespaces": [twin_ns], "dr_rsync_ssh_key": lab["LAB_SSH_KEY"],
          "dr_rsync_known_hosts": lab["LAB_KNOWN_HOSTS"]}
    r = ansible_playbook(PLAYBOOK, extra_vars=ev, json_output=False, args=("-vvv",))
    assert r.rc == 0, r
    block = _task_block(r.stdout, "Replicate the queued volumes to")
    assert block, r.stdout[-3000:]
    assert f"<{lab['NFS_PRIMARY_ADDR']}> ESTABLISH SSH CONNECTION" in block, block[:3000]
    assert "ESTABLISH LOCAL CONNECTION" not in block, block[:3000]
