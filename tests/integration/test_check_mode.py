"""Check mode end to end (issue 9): the four event playbooks and the periodic
playbook run with --check against the lab exit 0, report what they would
change, and change NOTHING on DR - neither the object set (names and
resourceVersions of PVs, PVCs, VolumeSnapshots, VolumeSnapshotContents) nor
the data (sha256 of every file in the DR export).

Real parts: ansible-playbook, the C modules (nfs_rsync_sync --dry-run over
rsync+ssh between the lab's storage hosts, k8s_dr_clean against the DR
kube-apiserver), the controller-manager binding claims.  The seeder plays the
CSI snapshotter for VolumeSnapshot status (tests/lab/seed_workload.py)."""
import pathlib
import time

from conftest import REPO, seed_workload, tree_sums, wait_until

PERIODIC = REPO / "playbooks/scheduled/execute_periodic_sync.yml"
EVENT = REPO / "playbooks/event_driven"
SNAP = ("snapshot.storage.k8s.io", "v1")




def _dr_state(lab, k8s_client, ns):
    """Everything of ns on DR: objects (kind/name -> resourceVersion) and data."""
    from kubernetes import client
    api = k8s_client("dr")
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    objs = {}
    for c in core.list_namespaced_persistent_volume_claim(ns).items:
        objs[f"PVC/{c.metadata.name}"] = c.metadata.resource_version
    for p in core.list_persistent_volume().items:
        if p.spec.claim_ref and p.spec.claim_ref.namespace == ns:
            objs[f"PV/{p.metadata.name}"] = p.metadata.resource_version
    for v in custom.list_namespaced_custom_object(*SNAP, ns, "volumesnapshots")["items"]:
        objs[f"VS/{v['metadata']['name']}"] = v["metadata"]["resourceVersion"]
    for v in custom.list_cluster_custom_object(*SNAP, "volumesnapshotcontents")["items"]:
        if v["spec"].get("volumeSnapshotRef", {}).get("namespace") == ns:
            objs[f"VSC/{v['metadata']['name']}"] = v["metadata"]["resourceVersion"]
    return objs, tree_sums(lab["NFS_DR_EXPORT"], f"{ns}-*")


def _failures(r):
    out = []
    for play in (r.json or {}).get("plays", []):
        for task in play.get("tasks", []):
            for host, res in task.get("hosts", {}).items():
                if res.get("failed"):
                    out.append(f"{task['task']['name']}: {res.get('msg')}")
    return out or [r.stdout[-2000:], r.stderr[-2000:]]


def _changed(r):
    return sum(h.get("changed", 0) for h in (r.json or {}).get("stats", {}).values())


def test_check_mode_changes_nothing_on_dr(lab, twin_ns, k8s_client, ansible_playbook):
    from kubernetes import client
    ns = twin_ns
    base = {"target_namespaces": [ns], "watched_namespaces": [ns], "dr_rsync_ssh_key": lab["LAB_SSH_KEY"],
            "dr_rsync_known_hosts": lab["LAB_KNOWN_HOSTS"]}
    seed_workload(lab, ns, 3, "a", snapshots=1, files=2)
    r = ansible_playbook(PERIODIC, extra_vars=base)
    assert r.rc == 0, r.stderr[-3000:]
    # DR's controller-manager binds the new pairs after the sync returns (its
    # writes raise their resourceVersions): compare only once DR has settled -
    # every claim and volume Bound and nothing changed over 2 s (the first CI
    # run after a lab start caught the binder mid-way)

    def _settled():
        api = client.CoreV1Api(k8s_client("dr"))
        claims = api.list_namespaced_persistent_volume_claim(ns).items
        if len(claims) < 3 or any(c.status.phase != "Bound" for c in claims):
            return False
        s1 = _dr_state(lab, k8s_client, ns)[0]
        time.sleep(2)
        return s1 == _dr_state(lab, k8s_client, ns)[0]
    wait_until(_settled, timeout=120, what="DR claims Bound and settled")

    # the primary moves on: a new claim, a deleted claim + volume (+ its
    # snapshot), changed data - so every playbook has something it WOULD do
    core = client.CoreV1Api(k8s_client("primary"))
    custom = client.CustomObjectsApi(k8s_client("primary"))
    seed_workload(lab, ns, 1, "n", snapshots=1, files=2)
    new_pvc = k8s_client("primary").sanitize_for_serialization(core.read_namespaced_persistent_volume_claim("n-disk-0", ns))
    new_pv = k8s_client("primary").sanitize_for_serialization(core.read_persistent_volume(f"pv-{ns}-n-disk-0"))
    new_vs = custom.get_namespaced_custom_object(*SNAP, ns, "volumesnapshots", "n-disk-0-snap")
    old_pvc = k8s_client("primary").sanitize_for_serialization(core.read_namespaced_persistent_volume_claim("a-disk-2", ns))
    old_pv = k8s_client("primary").sanitize_for_serialization(core.read_persistent_volume(f"pv-{ns}-a-disk-2"))
    old_vs = custom.get_namespaced_custom_object(*SNAP, ns, "volumesnapshots", "a-disk-0-snap")
    core.delete_namespaced_persistent_volume_claim("a-disk-2", ns)
    core.delete_persistent_volume(f"pv-{ns}-a-disk-2")
    custom.delete_namespaced_custom_object(*SNAP, ns, "volumesnapshots", "a-disk-0-snap")
    d0 = next(pathlib.Path(lab["NFS_PRIMARY_EXPORT"]).glob(f"{ns}-a-disk-0-*"))
    (d0 / "changed-in-check-test.txt").write_text("primary moved on\n")

    before = _dr_state(lab, k8s_client, ns)
    assert "PVC/a-disk-2" in before[0] and "VS/a-disk-0-snap" in before[0] and before[1]

    runs = {
        "handle_pv_pvc_sync": {"resource_objects": [new_pvc, new_pv]},
        "handle_pv_pvc_delete": {"resource_objects": [old_pvc, old_pv]},
        "handle_snapshot_sync": {"resource_objects": [new_vs]},
        "handle_snapshot_delete": {"resource_objects": [old_vs]},
    }
    changed = {}
    for name, ev in runs.items():
        r = ansible_playbook(EVENT / f"{name}.yml", extra_vars={**base, **ev}, check=True)
        assert r.rc == 0, f"{name} --check failed: {_failures(r)}"
        changed[name] = _changed(r)
    r = ansible_playbook(PERIODIC, extra_vars=base, check=True)
    assert r.rc == 0, _failures(r)
    changed["periodic"] = _changed(r)
    print(f"CHECK-MODE tasks that would change: {changed}")

    # every playbook saw something to do (the test would prove nothing otherwise) ...
    assert all(n > 0 for n in changed.values()), changed
    # ... and DR is exactly as before: same objects, same versions, same data
    after = _dr_state(lab, k8s_client, ns)
    assert after[0] == before[0]
    assert after[1] == before[1]
