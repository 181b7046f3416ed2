"""Lab tests of ocpv.dr.dr_state (modules/dr_state.c, lib/drstate) through real
ansible-playbook against the lab's real DR kube-apiserver: the records of
issue #16 written as DR PV annotations and ConfigMaps, read back as a
protection status, the failover guard, concurrent writers and 409 retries.

Each test works in a state namespace of its own (created on DR, removed
afterwards) and on DR PersistentVolumes named with its random tag, made here
as k8s_dr_clean apply makes them (label dr.ocpv.io/managed-by=ocpv-dr,
annotations dr.ocpv.io/source-cluster and source-uid); the protected
namespaces are names only (a record may exist before its namespace does).
The sync results are shaped as nfs_rsync_sync returns them (volumes[] with
name, ok, skipped, started_at, finished_at, bytes_sent, error; host_time).
The module binary is DR_STATE_BIN (default: the one installed in the repo's
collection), run from a private copy of the collection.
"""
import json
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

import _modrun
from _lab import kubectl

collection = _modrun.collection_fixture("dr_state", "DR_STATE_BIN")

SOURCE = "lab-primary"
ANN = "dr.ocpv.io/"


def ts(t):
    return datetime.fromtimestamp(int(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def kjson(lab, *args):
    return json.loads(kubectl(lab, *args, "-o", "json").stdout)


class Env:
    """A state namespace on DR, managed DR PVs of this test, and runs of the module."""

    def __init__(self, lab, collection):
        self.lab, self.collection = lab, collection
        self.tag = uuid.uuid4().hex[:8]
        self.state_ns = f"st-{self.tag}"
        self.ns = f"app-{self.tag}"          # the protected namespace (a name only)
        self.pvs = []
        kubectl(lab, "create", "namespace", self.state_ns)

    def make_pv(self, i, ns=None, source_uid=None, managed=True, source=SOURCE):
        name = f"pv-{self.tag}-{i}"
        ann = {ANN + "source-uid": source_uid or f"uid-{self.tag}-{i}"}
        if source:
            ann[ANN + "source-cluster"] = source
        obj = {"apiVersion": "v1", "kind": "PersistentVolume",
               "metadata": {"name": name, "labels": {"test": "dr-state"}, "annotations": ann},
               "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                        "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "nfs-csi",
                        "claimRef": {"namespace": ns or self.ns, "name": f"data-{i}"},
                        "nfs": {"server": "10.0.0.10", "path": f"/srv/nfs/{name}"}}}
        if managed:
            obj["metadata"]["labels"]["dr.ocpv.io/managed-by"] = "ocpv-dr"
        kubectl(self.lab, "apply", "-f", "-", input=json.dumps(obj))
        self.pvs.append(name)
        return name

    def pv_ann(self, name):
        return kjson(self.lab, "get", "pv", name)["metadata"].get("annotations", {})

    def record(self, ns=None):
        p = kubectl(self.lab, "get", "configmap", f"ns-{ns or self.ns}", "-n", self.state_ns,
                    "-o", "json", check=False)
        if p.returncode != 0:
            assert "NotFound" in p.stderr, p.stderr
            return None
        return json.loads(p.stdout)

    def run(self, args, check=False, conn=None):
        a = dict(conn or {"kubeconfig": self.lab["DR_KUBECONFIG"]}, state_namespace=self.state_ns,
                 **args)
        return _modrun.run_task(self.lab, self.collection, "dr_state", a, check=check,
                                drop_env_prefix="K8S_AUTH_")

    def sync_result(self, vols, host_time=None):
        """An nfs_rsync_sync-shaped result: vols = [(pv, ok, start, end, bytes, error)]."""
        out = []
        for pv, ok, start, end, nbytes, err in vols:
            out.append({"name": pv, "storage_class": "nfs-csi", "ok": ok, "skipped": False,
                        "changed": ok, "synced": ok, "bytes_sent": nbytes,
                        "started_at": ts(start) if start else None,
                        "finished_at": ts(end) if end else None,
                        "error": None if ok else err, "rc": 0 if ok else 23})
        return {"changed": True, "volumes": out, "host_time": ts(host_time or time.time()),
                "summary": {"total": len(out)}}

    def record_sync(self, vols, **kw):
        args = dict(mode="record_sync", source_cluster=SOURCE, kind="periodic", job="test-job",
                    sync=self.sync_result(vols))
        args.update(kw)
        return self.run(args)

    def cleanup(self):
        kubectl(self.lab, "delete", "namespace", self.state_ns, "--wait=false", check=False)
        if self.pvs:
            kubectl(self.lab, "delete", "pv", *self.pvs, "--wait=false", check=False)


@pytest.fixture
def env(lab, collection):
    e = Env(lab, collection)
    yield e
    e.cleanup()


def ok(res):
    assert not res.get("failed"), res.get("msg")
    return res


# ------------------------------------------------------------------ record_sync

def test_record_sync_writes_pv_annotations_and_newer_start_wins(env):
    """A completed sync writes last-sync-* / last-attempt-* on the DR PV and the
    namespace record (targets, labels, source); an OLDER start recorded later
    changes nothing; a newer one moves the record."""
    a, b = env.make_pv(0), env.make_pv(1)
    t1 = int(time.time()) - 600
    res = ok(env.record_sync([(a, True, t1, t1 + 30, 4096, None),
                              (b, True, t1 + 5, t1 + 40, 10, None)], targets={"rpo_s": 900}))
    assert res["changed"] is True
    ann = env.pv_ann(a)
    assert ann[ANN + "last-sync-start"] == ts(t1)
    assert ann[ANN + "last-sync-end"] == ts(t1 + 30)
    assert ann[ANN + "last-sync-bytes"] == "4096"
    assert ann[ANN + "last-sync-source-uid"] == f"uid-{env.tag}-0"   # from the DR PV's mark
    assert ann[ANN + "last-sync-by"] == "periodic/test-job"
    assert ann[ANN + "last-attempt-result"] == "ok"
    assert env.pv_ann(b)[ANN + "last-sync-start"] == ts(t1 + 5)
    # the source annotations k8s_dr_clean wrote are untouched
    assert ann[ANN + "source-cluster"] == SOURCE
    cm = env.record()
    assert cm["metadata"]["labels"] == {"dr.ocpv.io/state": "namespace",
                                        "dr.ocpv.io/namespace": env.ns}
    assert cm["metadata"]["annotations"][ANN + "source-cluster"] == SOURCE
    assert cm["data"]["target.rpo-s"] == "900"
    managers = {m["manager"] for m in kjson(env.lab, "get", "pv", a, "--show-managed-fields")
                ["metadata"]["managedFields"]}
    assert "ocpv-dr-state" in managers

    # an older job finishing late: nothing newer, nothing written
    rv = kjson(env.lab, "get", "pv", a)["metadata"]["resourceVersion"]
    res = ok(env.record_sync([(a, True, t1 - 300, t1 - 200, 1, None)], targets={"rpo_s": 900}))
    assert res["changed"] is False, res
    assert res["volumes"][0]["patch"] is None
    assert res["records"][0]["patch"] is None and res["records"][0]["changed"] is False
    assert kjson(env.lab, "get", "pv", a)["metadata"]["resourceVersion"] == rv
    assert env.pv_ann(a)[ANN + "last-sync-start"] == ts(t1)

    # a newer one moves it
    res = ok(env.record_sync([(a, True, t1 + 100, t1 + 110, 7, None)], targets={"rpo_s": 900}))
    assert res["changed"] is True
    assert env.pv_ann(a)[ANN + "last-sync-start"] == ts(t1 + 100)


def test_check_mode_writes_nothing_and_returns_the_patches(env):
    a = env.make_pv(0)
    t1 = int(time.time()) - 60
    res = ok(env.run(dict(mode="record_sync", source_cluster=SOURCE, job="chk",
                          sync=env.sync_result([(a, True, t1, t1 + 1, 1, None)])), check=True))
    assert res["changed"] is True
    assert res["volumes"][0]["patch"][ANN + "last-sync-start"] == ts(t1)
    assert res["records"][0]["patch"]["target.rpo-s"] == "7200"
    assert ANN + "last-sync-start" not in env.pv_ann(a)
    assert env.record() is None


def test_failed_attempt_after_success_keeps_last_sync_start(env):
    """Honesty rule: a failed sync after a success keeps the RPO basis
    (last-sync-start) and marks the last attempt failed; status says
    volume_sync_failed (Degraded or worse), never Protected."""
    a = env.make_pv(0)
    t1 = int(time.time()) - 300
    ok(env.record_sync([(a, True, t1, t1 + 10, 5, None)]))
    res = ok(env.record_sync([(a, False, t1 + 60, t1 + 61, 0,
                               "rsync: change_dir /export/pv failed: No such file (2)")]))
    assert res["changed"] is True
    ann = env.pv_ann(a)
    assert ann[ANN + "last-sync-start"] == ts(t1)
    assert ann[ANN + "last-attempt-start"] == ts(t1 + 60)
    assert ann[ANN + "last-attempt-result"] == "failed"
    assert "change_dir" in ann[ANN + "last-attempt-reason"]
    st = ok(env.run(dict(mode="status", namespaces=[env.ns])))
    n = st["namespaces"][0]
    assert n["state"] != "Protected"
    assert "volume_sync_failed" in {r["code"] for r in n["reasons"]}
    assert n["volumes"][0]["class"] == "failing"


def test_volume_without_dr_pv_is_pending_then_superseded(env):
    """A synced volume whose DR PV does not exist yet is recorded as
    pending.<pv> in the namespace record; once its DR PV exists and is
    recorded, the pending entry goes."""
    name = f"pv-{env.tag}-7"
    t1 = int(time.time()) - 100
    res = ok(env.record_sync([(name, False, t1, t1, 0, "first sync failed")],
                             listing={"listed_at": ts(t1), "volumes": [
                                 {"metadata": {"name": name, "uid": "u-7"},
                                  "spec": {"claimRef": {"namespace": env.ns, "name": "d7"}}}]}))
    assert res["volumes"][0]["recorded"] == "pending"
    pend = json.loads(env.record()["data"][f"pending.{name}"])
    assert pend == {"attempt_start": ts(t1), "reason": "first sync failed", "result": "failed",
                    "source_uid": "u-7"}
    env.make_pv(7, source_uid="u-7")
    ok(env.record_sync([(name, True, t1 + 50, t1 + 60, 3, None)]))
    assert f"pending.{name}" not in env.record()["data"]
    assert env.pv_ann(name)[ANN + "last-sync-start"] == ts(t1 + 50)


def test_record_of_another_source_cluster_is_a_conflict(env):
    a = env.make_pv(0, source="other-primary")
    t1 = int(time.time()) - 60
    res = env.record_sync([(a, True, t1, t1 + 1, 1, None)])
    assert res.get("failed"), res
    assert "other-primary" in res["msg"]
    assert ANN + "last-sync-start" not in env.pv_ann(a)
    # a namespace record of another source
    ns2 = env.ns + "-b"
    kubectl(env.lab, "create", "configmap", f"ns-{ns2}", "-n", env.state_ns,
            "--from-literal=target.rpo-s=60")
    kubectl(env.lab, "label", "configmap", f"ns-{ns2}", "-n", env.state_ns,
            "dr.ocpv.io/state=namespace", f"dr.ocpv.io/namespace={ns2}")
    kubectl(env.lab, "annotate", "configmap", f"ns-{ns2}", "-n", env.state_ns,
            f"{ANN}source-cluster=other-primary")
    res = env.run(dict(mode="record_action", source_cluster=SOURCE, namespaces=[ns2],
                       action="failover", phase="running"))
    assert res.get("failed") and "other-primary" in res["msg"], res
    assert env.record(ns2)["data"] == {"target.rpo-s": "60"}
    # a ConfigMap of that name that is not a record
    ns3 = env.ns + "-c"
    kubectl(env.lab, "create", "configmap", f"ns-{ns3}", "-n", env.state_ns,
            "--from-literal=mine=1")
    res = env.run(dict(mode="record_action", source_cluster=SOURCE, namespaces=[ns3],
                       action="failover", phase="running"))
    assert res.get("failed") and "not the ocpv-dr state record" in res["msg"], res
    assert env.record(ns3)["data"] == {"mine": "1"}


# ------------------------------------------------------------------ action + guard

def test_record_action_and_guard_refuses_sync_after_failover(env):
    """Data-safety rule: once a failover is recorded (running or completed) or
    a failback is running, guard fails naming namespace, action, phase, job
    and start; allow_after_failover lets it pass with a warning; a completed
    failback clears it."""
    ok(env.run(dict(mode="guard", namespaces=[env.ns])))          # no record: fine
    t0 = int(time.time())
    ok(env.run(dict(mode="record_action", source_cluster=SOURCE, namespaces=[env.ns],
                    action="failover", phase="running", job="job-42")))
    d = env.record()["data"]
    assert d["action.kind"] == "failover" and d["action.phase"] == "running"
    assert d["action.by"] == "failover/job-42"
    started = d["action.started"]
    assert ts(t0) <= started <= ts(time.time())
    res = env.run(dict(mode="guard", namespaces=[env.ns]))
    assert res.get("failed"), res
    msg = res["msg"]
    for word in (env.ns, "failover", "running", "failover/job-42", d["action.started"]):
        assert word in msg, (word, msg)
    assert res["guard"]["refused"][0]["namespace"] == env.ns
    res = ok(env.run(dict(mode="guard", namespaces=[env.ns], allow_after_failover=True)))
    assert res["guard"]["overridden"] is True
    assert any("allow_after_failover" in w for w in res.get("warnings", []))
    st = ok(env.run(dict(mode="status", namespaces=[env.ns])))
    assert st["namespaces"][0]["state"] == "FailingOver"

    time.sleep(1.1)
    ok(env.run(dict(mode="record_action", source_cluster=SOURCE, namespaces=[env.ns],
                    action="failover", phase="completed", job="job-42")))
    d = env.record()["data"]
    assert d["action.phase"] == "completed"
    assert d["action.started"] == started      # the running marker's start kept (closed)
    assert int(d["action.rto-s"]) >= 1
    assert env.run(dict(mode="guard", namespaces=[env.ns])).get("failed")
    st = ok(env.run(dict(mode="status", namespaces=[env.ns])))
    assert st["namespaces"][0]["state"] == "FailedOver"

    ok(env.run(dict(mode="record_action", source_cluster=SOURCE, namespaces=[env.ns],
                    action="failback", phase="running")))
    assert env.run(dict(mode="guard", namespaces=[env.ns])).get("failed")
    ok(env.run(dict(mode="record_action", source_cluster=SOURCE, namespaces=[env.ns],
                    action="failback", phase="completed")))
    res = ok(env.run(dict(mode="guard", namespaces=[env.ns])))
    assert res["guard"] == {"ok": True, "refused": [], "overridden": False}


# ------------------------------------------------------------------ status

def velero_backup(env, name, start, phase="Completed", included=None):
    """A velero.io/v1 Backup with the status Velero writes, in the test's own
    state namespace (no Velero server watches it: nothing runs it); status
    and record_backup read it with oadp_namespace = that namespace."""
    kubectl(env.lab, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": name, "namespace": env.state_ns},
        "spec": {"includedNamespaces": included or [env.ns], "storageLocation": "default"},
        "status": {"phase": phase, "startTimestamp": ts(start),
                   "completionTimestamp": ts(start + 2)}}))


def full_protect(env, pvs, start, rpo_s):
    """record_full_sync + a Completed backup (recorded by record_backup from
    the DR Velero Backups) so that the namespace can be Protected."""
    listing = {"listed_at": ts(start),
               "claims": [{"metadata": {"name": f"data-{i}", "namespace": env.ns},
                           "spec": {"volumeName": pv}} for i, pv in enumerate(pvs)],
               "claims_pending": [],
               "volumes": [{"metadata": {"name": pv, "uid": f"uid-{env.tag}-{i}"},
                            "spec": {"claimRef": {"namespace": env.ns, "name": f"data-{i}"}}}
                           for i, pv in enumerate(pvs)]}
    sync = env.sync_result([(pv, True, start, start + 1, 1, None) for pv in pvs])
    targets = {"rpo_s": rpo_s}
    ok(env.run(dict(mode="record_full_sync", source_cluster=SOURCE, namespaces=[env.ns],
                    listing=listing, sync=sync, applied={"results": []}, targets=targets)))
    velero_backup(env, f"bk-{env.tag}", start)
    velero_backup(env, f"bk-{env.tag}-other", start + 5, included=["someone-else"])
    velero_backup(env, f"bk-{env.tag}-failed", start + 6, phase="PartiallyFailed")
    res = ok(env.run(dict(mode="record_backup", source_cluster=SOURCE, namespaces=[env.ns],
                          oadp_namespace=env.state_ns, targets=targets)))
    d = env.record()["data"]
    assert d["backup.name"] == f"bk-{env.tag}" and d["backup.source"] == "dr-velero", res


def test_status_turns_degraded_when_now_passes_the_target(env):
    """Honesty rule: a stale success is not protection.  Recorded fresh, the
    namespace is Protected; with no job in between, once now - last sync start
    passes the (tiny) target, status says Degraded / rpo_above_target."""
    a = env.make_pv(0)
    start = int(time.time())
    full_protect(env, [a], start, rpo_s=25)
    d = env.record()["data"]
    assert d["full-sync.result"] == "ok" and d["full-sync.last-ok-start"] == ts(start)
    assert json.loads(d["claims.bound"]) == [{"claim": "data-0", "pv": a,
                                              "pv_uid": f"uid-{env.tag}-0"}]
    st = ok(env.run(dict(mode="status", namespaces=[env.ns], oadp_namespace=env.state_ns)))
    n = st["namespaces"][0]
    assert time.time() - start < 25, "the lab was too slow to see Protected first"
    assert n["state"] == "Protected", n["reasons"]
    assert n["rpo_target_s"] == 25 and n["rpo_target_source"] == "record"
    assert st["primary_checked"] is False and st["primary_error"]
    assert st["changed"] is False
    time.sleep(max(0, start + 27 - time.time()))
    st = ok(env.run(dict(mode="status", namespaces=[env.ns], oadp_namespace=env.state_ns)))
    n = st["namespaces"][0]
    assert n["state"] == "Degraded", n
    assert [r["code"] for r in n["reasons"] if r["code"] != "primary_not_checked"] == \
        ["rpo_above_target"]
    assert n["rpo_s"] >= 26


def test_status_with_primary_sees_a_new_claim(env, lab, unique_ns):
    """With `primary`, the claims come from the primary: a bound claim there
    whose volume has no DR copy makes the namespace Unprotected naming it."""
    ns = unique_ns("primary", prefix="dst")
    env.ns = ns
    a = env.make_pv(0, ns=ns)
    start = int(time.time())
    full_protect(env, [a], start, rpo_s=3600)
    pvname = f"pvp-{env.tag}"
    kubectl(lab, "apply", "-f", "-", kubeconfig=lab["PRIMARY_KUBECONFIG"], input=json.dumps({
        "apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pvname},
             "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                      "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "nfs-csi",
                      "claimRef": {"namespace": ns, "name": "newdisk"},
                      "nfs": {"server": "10.0.0.10", "path": "/srv/x"}}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "newdisk", "namespace": ns},
             "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "nfs-csi",
                      "resources": {"requests": {"storage": "1Gi"}}, "volumeName": pvname}}]}))
    try:
        deadline = time.time() + 60
        while True:
            p = json.loads(kubectl(lab, "get", "pvc", "newdisk", "-n", ns, "-o", "json",
                                   kubeconfig=lab["PRIMARY_KUBECONFIG"]).stdout)
            if p.get("status", {}).get("phase") == "Bound":
                break
            assert time.time() < deadline, "claim not bound on the primary"
            time.sleep(0.5)
        st = ok(env.run(dict(mode="status", namespaces=[ns], oadp_namespace=env.state_ns,
                             primary={"kubeconfig": lab["PRIMARY_KUBECONFIG"]})))
        n = st["namespaces"][0]
        assert st["primary_checked"] is True and st["primary_error"] is None
        assert n["state"] == "Unprotected", n
        msgs = " ".join(r["message"] for r in n["reasons"] if r["code"] == "claim_without_dr_copy")
        assert "newdisk" in msgs
        # the primary unreachable: still answers from the DR records, says so
        st = ok(env.run(dict(mode="status", namespaces=[ns], primary_timeout=2,
                             oadp_namespace=env.state_ns,
                             primary={"host": "https://127.0.0.1:9", "api_key": "x"})))
        assert st["primary_checked"] is False and "127.0.0.1:9" in st["primary_error"]
        assert st["namespaces"][0]["state"] == "Protected"   # recorded claims: data-0 only
    finally:
        kubectl(lab, "delete", "pvc", "newdisk", "-n", ns, "--wait=false", check=False,
                kubeconfig=lab["PRIMARY_KUBECONFIG"])
        kubectl(lab, "delete", "pv", pvname, "--wait=false", check=False,
                kubeconfig=lab["PRIMARY_KUBECONFIG"])


def test_malformed_record_is_a_reason_never_a_crash(env):
    a = env.make_pv(0)
    kubectl(env.lab, "annotate", "pv", a, f"{ANN}last-sync-start=yesterday",
            f"{ANN}last-attempt-result=maybe")
    kubectl(env.lab, "create", "configmap", f"ns-{env.ns}", "-n", env.state_ns,
            "--from-literal=full-sync.start=2026-13-45T99:00:00Z",
            "--from-literal=claims.bound=not json", "--from-literal=target.rpo-s=-5")
    kubectl(env.lab, "label", "configmap", f"ns-{env.ns}", "-n", env.state_ns,
            "dr.ocpv.io/state=namespace", f"dr.ocpv.io/namespace={env.ns}")
    st = ok(env.run(dict(mode="status", namespaces=[env.ns])))
    n = st["namespaces"][0]
    assert n["state"] in ("Unprotected", "Degraded")
    errs = " ".join(n["record_errors"]) + " ".join(r["message"] for r in n["reasons"])
    assert "yesterday" in errs and "full-sync.start" in errs
    assert "record_malformed" in {r["code"] for r in n["reasons"]}
    # an action marker that cannot be read: guard fails closed
    ok(env.run(dict(mode="guard", namespaces=[env.ns])))
    kubectl(env.lab, "patch", "configmap", f"ns-{env.ns}", "-n", env.state_ns, "--type=merge",
            "-p", json.dumps({"data": {"action.kind": "failover", "action.phase": "completed",
                                       "action.started": "last tuesday"}}))
    res = env.run(dict(mode="guard", namespaces=[env.ns]))
    assert res.get("failed") and "cannot be read" in res["msg"] and "last tuesday" in res["msg"], res
    # a new sync record repairs the malformed value (absent counts as older)
    t1 = int(time.time()) - 30
    ok(env.record_sync([(a, True, t1, t1 + 1, 1, None)]))
    assert env.pv_ann(a)[ANN + "last-sync-start"] == ts(t1)


# ------------------------------------------------------------------ failures

def test_failed_dr_read_fails_and_writes_nothing(env, lab):
    """A credential that may patch PVs but not list the records: the read
    fails first, the module fails naming it, and no PV is written."""
    a = env.make_pv(0)
    sa = f"w-{env.tag}"
    kubectl(lab, "create", "serviceaccount", sa, "-n", env.state_ns)
    kubectl(lab, "create", "clusterrole", sa, "--verb=get,list,patch",
            "--resource=persistentvolumes")
    kubectl(lab, "create", "clusterrolebinding", sa, f"--clusterrole={sa}",
            f"--serviceaccount={env.state_ns}:{sa}")
    try:
        token = kubectl(lab, "create", "token", sa, "-n", env.state_ns).stdout.strip()
        conn = {"host": lab["DR_API_URL"], "api_key": token, "ca_cert": lab["DR_CA_FILE"]}
        t1 = int(time.time()) - 30
        res = env.run(dict(mode="record_sync", source_cluster=SOURCE,
                           sync=env.sync_result([(a, True, t1, t1 + 1, 1, None)])), conn=conn)
        assert res.get("failed"), res
        assert "could not be read" in res["msg"] and "nothing written" in res["msg"]
        assert "403" in res["msg"] or "Forbidden" in res["msg"]
        assert token not in json.dumps(res)
        assert ANN + "last-sync-start" not in env.pv_ann(a)
        st = env.run(dict(mode="status", namespaces=[env.ns]), conn=conn)
        assert st.get("failed") and "could not be read" in st["msg"]
    finally:
        kubectl(lab, "delete", "clusterrolebinding", sa, check=False)
        kubectl(lab, "delete", "clusterrole", sa, check=False)


# ------------------------------------------------------------------ concurrency

def test_two_writers_at_once_keep_both_keys(env):
    """Two record_sync jobs on one namespace at the same time, each with a
    volume that has no DR PV (pending.<pv>): both entries survive (merge
    patches of distinct keys, 409 -> re-read and retry)."""
    t1 = int(time.time()) - 60
    names = [f"pv-{env.tag}-x{i}" for i in range(2)]
    results = [None, None]

    def writer(i):
        results[i] = env.record_sync(
            [(names[i], False, t1 + i, t1 + i, 0, f"failed {i}")], write_delay_ms=1500,
            listing={"listed_at": ts(t1), "volumes": [
                {"metadata": {"name": names[i], "uid": f"u{i}"},
                 "spec": {"claimRef": {"namespace": env.ns, "name": f"c{i}"}}}]})
    th = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    for r in results:
        ok(r)
    data = env.record()["data"]
    assert f"pending.{names[0]}" in data and f"pending.{names[1]}" in data, data
    # the ConfigMap was created by one and patched by the other (or retried)
    created = [r["records"][0]["created"] for r in results]
    assert created.count(True) == 1, results


def test_stale_resource_version_gets_409_and_is_retried(env):
    """The writer reads the record and the PV, then (write_delay_ms) another
    writer changes both; its patch carries the old resourceVersion, the API
    server answers 409, and the module re-reads, recomputes and writes - the
    other writer's keys kept, conflicts_retried counted."""
    a = env.make_pv(0)
    t1 = int(time.time()) - 60
    ok(env.record_sync([(a, True, t1 - 100, t1 - 90, 1, None)]))       # the record exists
    stop = threading.Event()
    bumps = [0]

    def other_writer():
        while not stop.is_set():
            kubectl(env.lab, "patch", "configmap", f"ns-{env.ns}", "-n", env.state_ns,
                    "--type=merge", "-p", json.dumps({"data": {"other.key": str(bumps[0])}}))
            kubectl(env.lab, "annotate", "--overwrite", "pv", a, f"other.io/bump={bumps[0]}")
            bumps[0] += 1
            time.sleep(0.3)
    th = threading.Thread(target=other_writer)
    th.start()
    try:
        res = ok(env.record_sync([(a, True, t1, t1 + 5, 9, None)], write_delay_ms=3000,
                                 targets={"rpo_s": 1234}))
    finally:
        stop.set()
        th.join()
    assert bumps[0] >= 3
    assert res["records"][0]["conflicts_retried"] >= 1, res["records"]
    assert res["volumes"][0]["conflicts_retried"] >= 1, res["volumes"]
    assert res["conflicts_retried"] >= 2
    data = env.record()["data"]
    assert data["target.rpo-s"] == "1234" and "other.key" in data
    ann = env.pv_ann(a)
    assert ann[ANN + "last-sync-start"] == ts(t1) and "other.io/bump" in ann


# ------------------------------------------------------------------ other modes

def test_record_full_sync_failed_object_and_volume(env):
    """full-sync.result is ok only when every bound claim's volume synced and
    nothing of the namespace failed to apply; last-ok-start stays at the last
    good run; an older listing changes nothing."""
    a, b = env.make_pv(0), env.make_pv(1)
    t1 = int(time.time()) - 400

    def listing(t):
        return {"listed_at": ts(t),
                "claims": [{"metadata": {"name": f"data-{i}", "namespace": env.ns},
                            "spec": {"volumeName": pv}} for i, pv in enumerate((a, b))],
                "claims_pending": ["waiting"],
                "volumes": [{"metadata": {"name": pv, "uid": f"uid-{env.tag}-{i}"},
                             "spec": {"claimRef": {"namespace": env.ns, "name": f"data-{i}"}}}
                            for i, pv in enumerate((a, b))]}
    good = env.sync_result([(a, True, t1, t1 + 1, 1, None), (b, True, t1, t1 + 1, 1, None)])
    ok(env.run(dict(mode="record_full_sync", source_cluster=SOURCE, namespaces=[env.ns],
                    listing=listing(t1), sync=good, applied={"results": []}, job="j1")))
    d = env.record()["data"]
    assert (d["full-sync.result"], d["full-sync.volumes"], d["full-sync.volumes-failed"]) == \
        ("ok", "2", "0")
    assert d["full-sync.last-ok-start"] == ts(t1) and d["full-sync.by"] == "periodic/j1"
    assert json.loads(d["claims.pending"]) == ["waiting"]
    # second run: b failed to sync, a PVC failed to apply
    t2 = t1 + 100
    bad = env.sync_result([(a, True, t2, t2 + 1, 1, None), (b, False, t2, t2, 0, "disk gone")])
    applied = {"results": [{"kind": "PersistentVolumeClaim", "namespace": env.ns,
                            "name": "data-0", "action": "failed", "reason": "403 Forbidden"}]}
    ok(env.run(dict(mode="record_full_sync", source_cluster=SOURCE, namespaces=[env.ns],
                    listing=listing(t2), sync=bad, applied=applied)))
    d = env.record()["data"]
    assert d["full-sync.result"] == "failed" and d["full-sync.volumes-failed"] == "1"
    assert "disk gone" in d["full-sync.reason"]
    assert d["full-sync.start"] == ts(t2) and d["full-sync.last-ok-start"] == ts(t1)
    assert env.pv_ann(b)[ANN + "last-attempt-result"] == "failed"
    # only an apply failure: still failed, named
    ok(env.run(dict(mode="record_full_sync", source_cluster=SOURCE, namespaces=[env.ns],
                    listing=listing(t2 + 10), sync=good, applied=applied)))
    d = env.record()["data"]
    assert d["full-sync.result"] == "failed" and "data-0" in d["full-sync.reason"]
    # an older listing finishing late changes nothing
    res = ok(env.run(dict(mode="record_full_sync", source_cluster=SOURCE, namespaces=[env.ns],
                          listing=listing(t1 + 5), sync=good, applied={"results": []})))
    assert env.record()["data"]["full-sync.start"] == ts(t2 + 10)
    assert res["changed"] is False, res["records"]


def test_note_event_read_keeps_the_newest(env):
    t1 = int(time.time()) - 100
    ok(env.run(dict(mode="note_event_read", source_cluster=SOURCE, namespaces=[env.ns],
                    listing={"listed_at": ts(t1)}, kind="event")))
    assert env.record()["data"]["event.pv-pvc-read-at"] == ts(t1)
    res = ok(env.run(dict(mode="note_event_read", source_cluster=SOURCE, namespaces=[env.ns],
                          listing={"listed_at": ts(t1 - 50)}, kind="event")))
    assert res["changed"] is False
    assert env.record()["data"]["event.pv-pvc-read-at"] == ts(t1)
    st = ok(env.run(dict(mode="status", namespaces=[env.ns])))
    assert st["namespaces"][0]["state"] == "Unprotected"      # nothing synced: never Protected


def test_record_backup_from_an_oadp_summary_and_failed_failover_guard(env):
    t1 = int(time.time()) - 3600
    ok(env.run(dict(mode="record_backup", source_cluster=SOURCE, namespaces=[env.ns],
                    backup={"name": "daily-1", "phase": "Completed", "started": ts(t1),
                            "completed": ts(t1 + 60), "source": "s3://velero/backups/daily-1"})))
    d = env.record()["data"]
    assert (d["backup.name"], d["backup.source"], d["backup.started"]) == ("daily-1", "s3", ts(t1))
    res = env.run(dict(mode="record_backup", source_cluster=SOURCE, namespaces=[env.ns],
                       backup={"name": "daily-2", "phase": "PartiallyFailed", "started": ts(t1)}))
    assert res.get("failed") and "not Completed" in res["msg"]
    # a failed failover may have started VMs on DR: still refused
    ok(env.run(dict(mode="record_action", source_cluster=SOURCE, namespaces=[env.ns],
                    action="failover", phase="failed", reason="VM did not start",
                    started_at=ts(t1 + 100))))
    d = env.record()["data"]
    assert d["action.phase"] == "failed" and d["action.reason"] == "VM did not start"
    res = env.run(dict(mode="guard", namespaces=[env.ns, env.ns + "-free"]))
    assert res.get("failed") and "failed" in res["msg"]
    assert [r["namespace"] for r in res["guard"]["refused"]] == [env.ns]


def test_two_writers_on_one_volume_newest_start_wins(env):
    """Two jobs record the same volume at once, the older one writing last
    (same read, then a longer pause): whatever order the writes land in, the
    newer start is the record (the late one gets 409, re-reads, finds
    nothing newer to write)."""
    a = env.make_pv(0)
    t1 = int(time.time()) - 200
    results = {}

    def writer(key, start, delay):
        results[key] = env.record_sync([(a, True, start, start + 1, 1, None)],
                                       write_delay_ms=delay, job=key)
    th = [threading.Thread(target=writer, args=("new", t1 + 50, 500)),
          threading.Thread(target=writer, args=("old", t1, 4000))]
    for t in th:
        t.start()
    for t in th:
        t.join()
    ok(results["new"])
    ok(results["old"])
    ann = env.pv_ann(a)
    assert ann[ANN + "last-sync-start"] == ts(t1 + 50), (ann, results)
    assert ann[ANN + "last-sync-by"] == "periodic/new"
    vol_old = results["old"]["volumes"][0]
    # the old writer read before the new one wrote (it then lost the race),
    # or after (nothing newer from the start): either way it wrote nothing
    assert vol_old["changed"] is False, vol_old


def test_per_namespace_targets_override_the_jobs(env):
    """targets.namespaces overrides the job's targets for that namespace only:
    its record stores them (target.*) and its status is judged by them; a bad
    key fails naming the field and writes nothing."""
    other = env.ns + "-b"
    t1 = int(time.time()) - 100
    targets = {"rpo_s": 7200, "rto_s": 3600, "backup_max_age_s": 93600,
               "namespaces": {env.ns: {"rpo_s": "30"}}}     # a string, as Jinja renders it
    ok(env.run(dict(mode="note_event_read", source_cluster=SOURCE, namespaces=[env.ns, other],
                    listing={"listed_at": ts(t1)}, kind="event", targets=targets)))
    d = env.record()["data"]
    assert float(d["target.rpo-s"]) == 30 and float(d["target.rto-s"]) == 3600, d
    d_other = kjson(env.lab, "get", "configmap", f"ns-{other}", "-n", env.state_ns)["data"]
    assert float(d_other["target.rpo-s"]) == 7200, d_other
    st = ok(env.run(dict(mode="status", namespaces=[env.ns, other])))
    by = {n["namespace"]: n for n in st["namespaces"]}
    assert by[env.ns]["rpo_target_s"] == 30 and by[other]["rpo_target_s"] == 7200, st["namespaces"]
    before = env.record()["metadata"]["resourceVersion"]
    for bad, field in (({env.ns: {"rpo": 5}}, f"targets.namespaces.{env.ns}.rpo"),
                       ({env.ns: {"rpo_s": -1}}, f"targets.namespaces.{env.ns}.rpo_s"),
                       ({env.ns: 900}, f"targets.namespaces.{env.ns}")):
        res = env.run(dict(mode="note_event_read", source_cluster=SOURCE, namespaces=[env.ns],
                           listing={"listed_at": ts(t1 + 10)}, kind="event",
                           targets=dict(targets, namespaces=bad)))
        assert res.get("failed") and field in res["msg"], res.get("msg")
    assert env.record()["metadata"]["resourceVersion"] == before
