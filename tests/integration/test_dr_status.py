"""Honesty tests of the protection status (issue #16, design section 6) in the
lab: real primary and DR kube-apiservers, rsync over ssh between the storage
hosts, real Velero (backups on the primary, synced to DR), the real
playbooks.  Every assertion reads playbooks/status/dr_status.yml's JSON
report - what an operator (or AAP's failure notification) sees - never the
records directly, except where a test checks that a record was NOT moved.

1. a stale success ages: Protected right after mode two, Degraded
   (rpo_above_target) once the clock crosses the target, with no job between;
2. a failed sync after a success: the volume's last attempt is recorded as
   failed, its last good start kept, the namespace Degraded until a later
   success makes it Protected again;
3. a namespace that has failed over is FailedOver, never a stale Protected,
   and (data safety) a periodic run refuses to sync into it: nothing changes
   on DR, neither data nor objects;
4. a new claim on the primary without a DR copy makes the namespace
   Unprotected (claim_without_dr_copy naming it), until mode two copies it;
6. with the primary down the status still answers from DR's records and says
   the primary could not be checked.

Each runs in fresh runners (conftest: empty HOME, temp and report dirs per
run): everything the status knows comes from the clusters.
"""
import os
import pathlib
import shutil
import time
import uuid

import pytest

from conftest import REPO, seed_workload, tree_sums, wait_until
from test_failover import velero_backup, velero_start  # the lab's real Velero, one home

PERIODIC = REPO / "playbooks/scheduled/execute_periodic_sync.yml"
STATUS = REPO / "playbooks/status/dr_status.yml"
ADP = "openshift-adp"
VELERO = ("velero.io", "v1")


@pytest.fixture
def protected_ns(lab, twin_ns, k8s_client):
    """twin_ns with 2 claims with data on the primary and a Completed Velero
    backup of it seen on DR (the real DR Velero syncs it from the bucket)."""
    from kubernetes import client
    seed_workload(lab, twin_ns, 2, "p", files=2)
    velero_start(lab, "dr")         # idempotent; never stopped here (shared by the lab's users)
    name = velero_backup(lab, k8s_client, twin_ns)
    co = client.CustomObjectsApi(k8s_client("dr"))

    def on_dr():
        try:
            b = co.get_namespaced_custom_object(*VELERO, ADP, "backups", name)
        except client.ApiException:
            return False
        return (b.get("status") or {}).get("phase") == "Completed"
    wait_until(on_dr, timeout=120, interval=1, what=f"backup {name} synced to DR")
    return twin_ns


@pytest.fixture
def dr(lab, ansible_playbook):
    """dr.periodic(ns, rpo_s=...) / dr.status(ns, rpo_s=...) run the real playbooks, each in a
    fresh runner; status returns (AnsibleResult, the namespace's row of the JSON report, report)."""
    class DR:
        def _ev(self, ns, rpo_s, extra):
            ev = {"target_namespaces": [ns], "dr_rsync_ssh_key": lab["LAB_SSH_KEY"],
                  "dr_rsync_known_hosts": lab["LAB_KNOWN_HOSTS"]}
            if rpo_s:
                ev["dr_rpo_target_s"] = rpo_s
            ev.update(extra or {})
            return ev

        def periodic(self, ns, rpo_s=None, extra=None):
            r = ansible_playbook(PERIODIC, extra_vars=self._ev(ns, rpo_s, extra), json_output=False)
            return r, r.report("periodic")

        def status(self, ns, rpo_s=None, extra=None):
            r = ansible_playbook(STATUS, extra_vars=self._ev(ns, rpo_s, extra), json_output=False, timeout=300)
            rep = r.report("status")
            assert rep is not None, f"dr_status.yml wrote no report:\n{r}"
            rows = [n for n in rep["namespaces_status"] if n["namespace"] == ns]
            assert len(rows) == 1, rep
            return r, rows[0], rep
    return DR()


def _codes(row):
    return sorted(x["code"] for x in row["reasons"])


def _pv_annotations(k8s_client, ns):
    from kubernetes import client
    return {p.metadata.name: dict(p.metadata.annotations or {})
            for p in client.CoreV1Api(k8s_client("dr")).list_persistent_volume().items
            if p.metadata.name.startswith(f"pv-{ns}-")}


def test_stale_success_turns_degraded_without_a_job(lab, protected_ns, dr):
    """Honesty rule 1: RPO grows with the clock between syncs; crossing the target
    turns the state Degraded though no job ran.  Seen to fail with a stored verdict
    (a status that does not recompute from `now`)."""
    ns, target = protected_ns, 90
    r, rep = dr.periodic(ns, rpo_s=target)
    assert r.rc == 0 and rep["ok"], r
    r, row, full = dr.status(ns, rpo_s=target)
    assert row["state"] == "Protected", (row, r.stdout[-2000:])
    assert r.rc == 0, r
    assert row["rpo_target_s"] == target and row["rpo_met"] is True and row["rpo_s"] <= target, row
    assert full["primary_checked"] is True, full
    md = pathlib.Path(full["_md"]).read_text()
    assert f"| {ns} | **Protected** |" in md, md
    first_rpo = row["rpo_s"]
    # no job at all: only the clock moves
    time.sleep(max(0, target - first_rpo) + 5)
    r, row, full = dr.status(ns, rpo_s=target)
    assert r.rc != 0, "the status job must fail when a namespace is not Protected"
    assert row["state"] == "Degraded" and "rpo_above_target" in _codes(row), row
    assert row["rpo_s"] > target and row["rpo_s"] > first_rpo and row["rpo_met"] is False, row
    md = pathlib.Path(full["_md"]).read_text()
    assert "MISSED" in md
    print(f"DR-STATUS report after the target passed:\n{md}")


def test_failed_sync_after_success_is_not_protected(lab, protected_ns, dr, k8s_client):
    """Honesty rule 2: a failed sync after a success makes the volume (and the
    namespace) not Protected until a later success; the last good start stays."""
    ns = protected_ns
    r, rep = dr.periodic(ns)
    assert r.rc == 0 and rep["ok"], r
    r, row, _ = dr.status(ns)
    assert row["state"] == "Protected", row
    good = _pv_annotations(k8s_client, ns)
    pv0 = f"pv-{ns}-p-disk-0"
    start0 = good[pv0]["dr.ocpv.io/last-sync-start"]
    # p-disk-0's DR directory becomes a symlink: nfs_rsync_sync refuses to write through it
    dr_exp = pathlib.Path(lab["NFS_DR_EXPORT"])
    d = next(dr_exp.glob(f"{ns}-p-disk-0-*"))
    aside = d.with_name(d.name + ".aside")
    d.rename(aside)
    target = dr_exp / f"elsewhere-{uuid.uuid4().hex[:6]}"
    target.mkdir()
    os.symlink(target, d)
    try:
        time.sleep(1.1)             # a new attempt start (second resolution)
        r, rep = dr.periodic(ns)
        assert r.rc != 0 and not rep["ok"], r
        ann = _pv_annotations(k8s_client, ns)[pv0]
        assert ann["dr.ocpv.io/last-attempt-result"] == "failed", ann
        assert ann["dr.ocpv.io/last-sync-start"] == start0, "a failed sync moved the last good start"
        assert ann["dr.ocpv.io/last-attempt-start"] > start0, ann
        r, row, _ = dr.status(ns)
        assert r.rc != 0
        assert row["state"] == "Degraded" and "volume_sync_failed" in _codes(row), row
        assert pv0 in " ".join(x["message"] for x in row["reasons"]), row
    finally:
        os.unlink(d)
        aside.rename(d)
        shutil.rmtree(target, ignore_errors=True)
    time.sleep(1.1)
    r, rep = dr.periodic(ns)
    assert r.rc == 0 and rep["ok"], r
    r, row, _ = dr.status(ns)
    assert r.rc == 0 and row["state"] == "Protected", row


def _record_action(ansible_playbook, ns, phase, tmp_path):
    """Records a failover action on DR through ocpv.dr.dr_state, as execute_failover.yml does."""
    pb = tmp_path / "record_action.yml"
    pb.write_text(f"""
- hosts: localhost
  gather_facts: false
  roles: [{{role: ocpv_dr_common, ocpv_dr_needs_storage: false}}]
  tasks:
    - name: record
      ocpv.dr.dr_state:
        mode: record_action
        namespaces: ["{ns}"]
        action: failover
        phase: {phase}
        source_cluster: "{{{{ source_cluster_name }}}}"
        state_namespace: "{{{{ dr_state_namespace }}}}"
      environment: "{{{{ ocpv_dr_k8s_env }}}}"
""")
    r = ansible_playbook(pb, extra_vars={"target_namespaces": [ns]}, json_output=False)
    assert r.rc == 0, r


def test_failed_over_namespace_is_never_protected_and_not_synced_into(lab, protected_ns, dr, k8s_client,
                                                                     ansible_playbook, tmp_path):
    """Honesty rule 3 and the data-safety guard: after a (recorded) failover the
    namespace is FailingOver / FailedOver, never Protected however fresh its
    records; a periodic run then refuses (rsync would copy the old primary over
    the live DR volumes) and changes nothing on DR: same data, same objects."""
    from kubernetes import client
    ns = protected_ns
    r, rep = dr.periodic(ns)
    assert r.rc == 0 and rep["ok"], r
    r, row, _ = dr.status(ns)
    assert row["state"] == "Protected", row
    _record_action(ansible_playbook, ns, "running", tmp_path)
    r, row, _ = dr.status(ns)
    assert r.rc != 0 and row["state"] == "FailingOver" and "failover_in_progress" in _codes(row), row
    _record_action(ansible_playbook, ns, "completed", tmp_path)
    r, row, _ = dr.status(ns)
    assert r.rc != 0 and row["state"] == "FailedOver" and "failed_over" in _codes(row), row

    # the primary moves on (as the old primary might after a failover) ...
    prim = pathlib.Path(lab["NFS_PRIMARY_EXPORT"])
    for f in prim.glob(f"{ns}-p-disk-*/file-*"):
        f.write_bytes(b"old primary, after the failover\n")
    seed_workload(lab, ns, 1, "late", files=1)
    core = client.CoreV1Api(k8s_client("dr"))

    def dr_objects():
        return ({c.metadata.name: c.metadata.resource_version
                 for c in core.list_namespaced_persistent_volume_claim(ns).items},
                {p.metadata.name: p.metadata.resource_version for p in core.list_persistent_volume().items
                 if p.metadata.name.startswith(f"pv-{ns}-")})
    data_before, objs_before = tree_sums(lab["NFS_DR_EXPORT"], f"{ns}-*"), dr_objects()
    # ... and a periodic run is refused before it touches anything
    r, rep = dr.periodic(ns)
    assert r.rc != 0, r
    assert "failed over" in (r.stdout + r.stderr).lower() or "failover" in (r.stdout + r.stderr).lower(), \
        r.stdout[-3000:]
    assert tree_sums(lab["NFS_DR_EXPORT"], f"{ns}-*") == data_before, "the sync wrote into a failed-over namespace"
    assert dr_objects() == objs_before, "the sync changed DR objects of a failed-over namespace"
    assert not any(p.startswith(f"pv-{ns}-late") for p in objs_before[1]), objs_before


def test_new_claim_without_dr_copy_is_unprotected(lab, protected_ns, dr):
    """Honesty rule 4: a new bound claim on the primary with no DR copy makes the
    namespace Unprotected (claim_without_dr_copy, naming it), never silently
    Protected; mode two copies it and the namespace is Protected again."""
    ns = protected_ns
    r, rep = dr.periodic(ns)
    assert r.rc == 0 and rep["ok"], r
    r, row, _ = dr.status(ns)
    assert row["state"] == "Protected", row
    seed_workload(lab, ns, 1, "new", files=1)
    r, row, _ = dr.status(ns)
    assert r.rc != 0
    assert row["state"] == "Unprotected" and "claim_without_dr_copy" in _codes(row), row
    assert "new-disk-0" in " ".join(x["message"] for x in row["reasons"]), row
    assert row["rpo_s"] is None, row      # that claim's data would be lost entirely
    r, rep = dr.periodic(ns)
    assert r.rc == 0 and rep["ok"], r
    r, row, _ = dr.status(ns)
    assert r.rc == 0 and row["state"] == "Protected", row


def test_status_answers_with_the_primary_down(lab, protected_ns, dr, free_port, tmp_path):
    """Case 6: with the primary unreachable the status answers from DR's records
    (the claims recorded by the last mode two), says the primary could not be
    checked, and fails the job only by state.  The primary is made unreachable
    for this job only (its kubeconfig names a port nobody listens on): the lab's
    apiservers are shared and stay up."""
    import yaml
    ns = protected_ns
    r, rep = dr.periodic(ns)
    assert r.rc == 0 and rep["ok"], r
    kc = yaml.safe_load(pathlib.Path(lab["PRIMARY_KUBECONFIG"]).read_text())
    for c in kc["clusters"]:
        c["cluster"]["server"] = f"https://127.0.0.1:{free_port}"
    dead = tmp_path / "primary-gone.kubeconfig"
    dead.write_text(yaml.safe_dump(kc))
    dead.chmod(0o600)
    t0 = time.monotonic()
    r, row, full = dr.status(ns, extra={"ocp_primary_kubeconfig": str(dead)})
    took = time.monotonic() - t0
    assert full["primary_checked"] is False and full["primary_error"], full
    assert row["state"] == "Protected", row           # DR's records are fresh
    assert "primary_not_checked" in _codes(row), row
    assert r.rc == 0, r
    md = pathlib.Path(full["_md"]).read_text()
    assert "could not be checked" in md, md
    assert took < 120, f"the status took {took:.0f}s with the primary gone"
