"""Lab tests of ocpv.dr.k8s_dr_clean through real ansible-playbook against the
lab's real kube-apiservers (primary, dr) and kube-controller-managers.

Every test works in namespaces of its own (created on both clusters, removed
afterwards), so tests and people sharing one lab do not see each other's
objects.  The module binary is taken from K8S_DR_CLEAN_BIN (default: the one
installed in the repo's collection) and run from a private copy of the
collection, so nobody else's installed modules are touched.
"""
import calendar
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import _modrun
from conftest import wait_until


def kubectl(lab, cluster, *args, kubeconfig=None, input=None, check=True):
    kc = kubeconfig or lab[f"{cluster.upper()}_KUBECONFIG"]
    p = subprocess.run([str(Path(lab["LAB_BIN"]) / "kubectl"), "--kubeconfig", kc, *args],
                       input=input, capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} on {cluster}: {p.stderr}")
    return p


def kget(lab, cluster, kind, name=None, ns=None, selector=None):
    args = ["get", kind, "-o", "json"]
    if name:
        args.insert(2, name)
    if ns:
        args += ["-n", ns]
    if selector:
        args += ["-l", selector]
    p = kubectl(lab, cluster, *args, check=False)
    if p.returncode != 0:
        if "NotFound" in p.stderr:
            return None
        raise AssertionError(p.stderr)
    return json.loads(p.stdout)


def kapply(lab, cluster, objs):
    kubectl(lab, cluster, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                "items": objs}))


# ------------------------------------------------------------------ objects

def pv(name, ns, claim, size="1Gi"):
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"test": "k8s-dr-clean"},
                         "annotations": {"pv.kubernetes.io/provisioned-by": "nfs.csi.k8s.io"}},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteMany"],
                     "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "nfs-csi",
                     "claimRef": {"namespace": ns, "name": claim},
                     "nfs": {"server": "10.0.0.10", "path": f"/srv/nfs/{name}"}}}


def pvc(name, ns, volume, size="1Gi"):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "nfs-csi",
                     "resources": {"requests": {"storage": size}}, "volumeName": volume}}


def vsc(name, ns, snap):
    return {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
            "metadata": {"name": name},
            "spec": {"deletionPolicy": "Delete", "driver": "nfs.csi.k8s.io",
                     "source": {"volumeHandle": f"10.0.0.10#srv#{name}##"},
                     "volumeSnapshotClassName": "csi-nfs-snapclass",
                     "volumeSnapshotRef": {"apiVersion": "snapshot.storage.k8s.io/v1",
                                           "kind": "VolumeSnapshot", "namespace": ns, "name": snap}}}


def vs(name, ns, claim):
    return {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"source": {"persistentVolumeClaimName": claim},
                     "volumeSnapshotClassName": "csi-nfs-snapclass"}}


class Scope:
    """Fresh namespaces on both clusters plus the PV/VSC names made here."""

    def __init__(self, lab, n_ns=1):
        self.lab = lab
        self.tag = uuid.uuid4().hex[:8]
        self.namespaces = [f"cl-{self.tag}-{i}" for i in range(n_ns)]
        self.cluster_objs = []   # (cluster, kind, name)
        for c in ("primary", "dr"):
            for ns in self.namespaces:
                kubectl(lab, c, "create", "namespace", ns)

    def pairs(self, n, ns=None, cluster="primary"):
        """n PV+PVC pairs on `cluster`, waits until the controller bound them."""
        ns = ns or self.namespaces[0]
        objs = []
        for i in range(n):
            pvn, pvcn = f"pv-{self.tag}-{ns[-1]}-{i}", f"data-{i}"
            objs += [pv(pvn, ns, pvcn), pvc(pvcn, ns, pvn)]
            self.cluster_objs.append((cluster, "pv", pvn))
        kapply(self.lab, cluster, objs)

        def phases():
            return {o["metadata"]["name"]: o.get("status", {}).get("phase")
                    for o in kget(self.lab, cluster, "pvc", ns=ns)["items"]}

        def bound():
            p = phases()
            return len(p) == n and set(p.values()) == {"Bound"}
        wait_until(bound, timeout=60, interval=0.5, what=f"{n} PVCs Bound on {cluster}/{ns}",
                   state=phases)   # on a timeout: what the controller-manager left
        return self.primary_objects()

    def snapshots(self, n, ns=None):
        """n VS/VSC pairs on the primary with the status a snapshot controller
        and CSI driver would write (no snapshot controller runs in the lab)."""
        ns = ns or self.namespaces[0]
        for i in range(n):
            cn, sn = f"snapcontent-{self.tag}-{i}", f"snap-{i}"
            kapply(self.lab, "primary", [vsc(cn, ns, sn), vs(sn, ns, "data-0")])
            self.cluster_objs.append(("primary", "volumesnapshotcontent", cn))
            kubectl(self.lab, "primary", "patch", "volumesnapshotcontent", cn, "--subresource=status",
                    "--type=merge", "-p", json.dumps({"status": {
                        "readyToUse": True, "restoreSize": 1073741824,
                        "snapshotHandle": f"10.0.0.10#srv#{cn}#snap#"}}))
            kubectl(self.lab, "primary", "patch", "volumesnapshot", sn, "-n", ns,
                    "--subresource=status", "--type=merge", "-p", json.dumps({"status": {
                        "boundVolumeSnapshotContentName": cn, "readyToUse": True}}))

    def primary_objects(self):
        out = []
        for ns in self.namespaces:
            out += kget(self.lab, "primary", "pvc", ns=ns)["items"]
            out += kget(self.lab, "primary", "volumesnapshot", ns=ns)["items"]
        for kind in ("pv", "volumesnapshotcontent"):
            for o in kget(self.lab, "primary", kind)["items"]:
                ref = o["spec"].get("claimRef") or o["spec"].get("volumeSnapshotRef") or {}
                if ref.get("namespace") in self.namespaces:
                    out.append(o)
        return out

    def dr_state(self):
        """{(kind, ns, name): resourceVersion} of everything in scope on DR,
        once DR's own PV binder is done with it (it binds a pre-bound claim
        whose volume arrived after it only on its next resync, up to 15 s
        later, and that write would read as ours)."""
        self.wait_dr_settled()
        st = {}
        for ns in self.namespaces:
            for kind in ("pvc", "volumesnapshot"):
                for o in kget(self.lab, "dr", kind, ns=ns)["items"]:
                    st[(o["kind"], ns, o["metadata"]["name"])] = o["metadata"]["resourceVersion"]
        for kind in ("pv", "volumesnapshotcontent"):
            for o in kget(self.lab, "dr", kind)["items"]:
                ref = o["spec"].get("claimRef") or o["spec"].get("volumeSnapshotRef") or {}
                if ref.get("namespace") in self.namespaces or self.tag in o["metadata"]["name"]:
                    st[(o["kind"], "", o["metadata"]["name"])] = o["metadata"]["resourceVersion"]
        return st

    def wait_dr_settled(self):
        pvs = {o["metadata"]["name"]: o for o in kget(self.lab, "dr", "pv")["items"]}

        def settled():
            for ns in self.namespaces:
                for o in kget(self.lab, "dr", "pvc", ns=ns)["items"]:
                    vol = o["spec"].get("volumeName")
                    if vol in pvs and not o["metadata"].get("deletionTimestamp") \
                            and o["status"].get("phase") != "Bound":
                        return False
            return True
        wait_until(settled, timeout=60, interval=0.5, what="DR claims with a volume Bound")

    def cleanup(self):
        for c in ("primary", "dr"):
            for ns in self.namespaces:
                kubectl(self.lab, c, "delete", "namespace", ns, "--wait=false", check=False)
            for kind in ("pv", "volumesnapshotcontent"):
                items = kget(self.lab, c, kind)["items"]
                names = [o["metadata"]["name"] for o in items if self.tag in o["metadata"]["name"]]
                if names:
                    kubectl(self.lab, c, "delete", kind, *names, "--wait=false", check=False)


def wait_dr_bound(scope, n, ns=None):
    ns = ns or scope.namespaces[0]

    def bound():
        items = kget(scope.lab, "dr", "pvc", ns=ns)["items"]
        claims = [o for o in items if o["spec"].get("volumeName")]
        return len(claims) == n and all(o["status"].get("phase") == "Bound" for o in claims) and claims
    return wait_until(bound, timeout=60, interval=0.5, what=f"{n} DR PVCs Bound in {ns}")


@pytest.fixture
def scope(lab):
    s = Scope(lab)
    yield s
    s.cleanup()


@pytest.fixture
def scope2(lab):
    s = Scope(lab, n_ns=2)
    yield s
    s.cleanup()


# ------------------------------------------------------------------ running the module

# a private copy of the collection holding the module under test
collection = _modrun.collection_fixture("k8s_dr_clean", "K8S_DR_CLEAN_BIN")


def run_module(lab, collection, args, check=False, diff=False):
    """Runs one ocpv.dr.k8s_dr_clean task through ansible-playbook; returns
    the task result (dict).  K8S_AUTH_* of the caller's environment are not
    passed on (the module would fall back to them)."""
    return _modrun.run_task(lab, collection, "k8s_dr_clean", args, check=check, diff=diff,
                            drop_env_prefix="K8S_AUTH_")


def run_module_warned(lab, collection, args, needle):
    """run_module, and whether a module warning containing `needle` was
    given (in the result's warnings, or as the [WARNING] ansible printed)."""
    res, text = _modrun.run_task(lab, collection, "k8s_dr_clean", args, drop_env_prefix="K8S_AUTH_",
                                 raw=True)
    warned = any(needle in w for w in res.get("warnings", [])) or needle in " ".join(text.split())
    return res, warned


def dr_conn(lab, limited=False):
    return {"kubeconfig": lab["DR_KUBECONFIG_LIMITED" if limited else "DR_KUBECONFIG"]}


def mirrored_3_and_1(lab, collection, s):
    """3 claim/volume pairs in the first namespace of Scope s and 1 in the
    second, mirrored to DR; returns (ns0, ns1, source connection)."""
    ns0, ns1 = s.namespaces
    s.pairs(3, ns=ns0)
    s.pairs(1, ns=ns1)
    src = {"kubeconfig": lab["PRIMARY_KUBECONFIG"]}
    assert not run_module(lab, collection, dict(dr_conn(lab), mode="mirror", namespaces=s.namespaces,
                                                source=src)).get("failed")
    return ns0, ns1, src


def actions(res):
    return {(r["kind"], r["namespace"], r["name"]): r["action"] for r in res["results"]}


# ------------------------------------------------------------------ tests

def test_apply_binds_pairs_on_dr_and_rerun_writes_nothing(lab, collection, scope):
    objs = scope.pairs(3)
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=objs,
                                           source_cluster="primary"))
    assert not res.get("failed"), res.get("msg")
    assert res["changed"] is True
    assert res["counts"]["created"] == 6 and res["counts"]["failed"] == 0
    # objects come back in apply order: PVs first
    kinds = [o["kind"] for o in res["objects"]]
    assert kinds == ["PersistentVolume"] * 3 + ["PersistentVolumeClaim"] * 3
    ns = scope.namespaces[0]

    # the real controller-manager binds each DR PVC to its own DR PV
    for claim in wait_dr_bound(scope, 3):
        i = claim["metadata"]["name"].split("-")[1]
        volume = f"pv-{scope.tag}-{ns[-1]}-{i}"
        assert claim["spec"]["volumeName"] == volume
        drpv = kget(lab, "dr", "pv", volume)
        assert drpv["status"]["phase"] == "Bound"
        assert drpv["spec"]["claimRef"]["name"] == claim["metadata"]["name"]
        assert drpv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]   # the DR claim's uid
        assert drpv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        ann = drpv["metadata"]["annotations"]
        assert drpv["metadata"]["labels"]["dr.ocpv.io/managed-by"] == "ocpv-dr"
        assert ann["dr.ocpv.io/source-cluster"] == "primary"
        src = kget(lab, "primary", "pv", volume)
        assert ann["dr.ocpv.io/source-uid"] == src["metadata"]["uid"]
        assert len(ann["dr.ocpv.io/hash"]) == 64

    # re-run with the primary's current objects: nothing to do.  It runs with
    # the least-privilege DR credential, which may read PVs/PVCs everywhere
    # but write neither PVs nor PVCs in this namespace: any write would fail
    # with 403, so success proves zero writes; resourceVersions prove it too.
    before = scope.dr_state()
    res2 = run_module(lab, collection, dict(dr_conn(lab, limited=True), mode="apply",
                                            resources=scope.primary_objects(),
                                            source_cluster="primary"))
    assert not res2.get("failed"), res2.get("msg")
    assert res2["changed"] is False
    assert res2["counts"]["unchanged"] == 6
    assert set(actions(res2).values()) == {"unchanged"}
    assert scope.dr_state() == before


def test_check_mode_writes_nothing_and_diff_shows_after(lab, collection, scope):
    objs = scope.pairs(2)
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=objs),
                     check=True, diff=True)
    assert not res.get("failed"), res.get("msg")
    assert res["changed"] is True and res["counts"]["created"] == 4
    assert scope.dr_state() == {}
    diff = res["diff"]
    diff = diff[0] if isinstance(diff, list) else diff
    assert len(diff["after"]) == 4
    assert all(v is None for v in diff["before"].values())


def test_update_only_changed_objects(lab, collection, scope):
    objs = scope.pairs(2)
    assert not run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=objs)).get("failed")
    ns = scope.namespaces[0]
    wait_dr_bound(scope, 2)
    kubectl(lab, "primary", "label", "pvc", "data-1", "-n", ns, "tier=gold")
    before = scope.dr_state()
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=scope.primary_objects()),
                     diff=True)
    assert not res.get("failed"), res.get("msg")
    acts = actions(res)
    assert acts[("PersistentVolumeClaim", ns, "data-1")] == "updated"
    assert list(acts.values()).count("unchanged") == 3
    after = scope.dr_state()
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {("PersistentVolumeClaim", ns, "data-1")}
    assert kget(lab, "dr", "pvc", "data-1", ns=ns)["metadata"]["labels"]["tier"] == "gold"
    # the bound DR PV's claimRef (completed by the DR controller) was not disturbed
    assert kget(lab, "dr", "pvc", "data-1", ns=ns)["status"]["phase"] == "Bound"


def test_mirror_snapshots_point_at_preprovisioned_content(lab, collection, scope):
    scope.pairs(1)
    scope.snapshots(2)
    # one snapshot still being cut: skipped, not failed
    ns = scope.namespaces[0]
    kapply(lab, "primary", [vs("in-progress", ns, "data-0")])
    res = run_module(lab, collection, dict(dr_conn(lab), mode="mirror", namespaces=scope.namespaces,
                                           source={"kubeconfig": lab["PRIMARY_KUBECONFIG"]}))
    assert not res.get("failed"), res.get("msg")
    acts = actions(res)
    assert acts[("VolumeSnapshot", ns, "in-progress")] == "skipped"
    assert res["counts"]["created"] == 6   # PV, PVC, 2 VSC, 2 VS
    for i in range(2):
        dvs = kget(lab, "dr", "volumesnapshot", f"snap-{i}", ns=ns)
        assert dvs["spec"]["source"] == {"volumeSnapshotContentName": f"snapcontent-{scope.tag}-{i}"}
        dvsc = kget(lab, "dr", "volumesnapshotcontent", f"snapcontent-{scope.tag}-{i}")
        assert dvsc["spec"]["deletionPolicy"] == "Retain"
        assert dvsc["spec"]["source"] == {"snapshotHandle": f"10.0.0.10#srv#snapcontent-{scope.tag}-{i}#snap#"}
        assert "uid" not in dvsc["spec"]["volumeSnapshotRef"]
    assert kget(lab, "dr", "volumesnapshot", "in-progress", ns=ns) is None
    wait_dr_bound(scope, 1)
    # mirror again: no writes
    before = scope.dr_state()
    res2 = run_module(lab, collection, dict(dr_conn(lab), mode="mirror", namespaces=scope.namespaces,
                                            source={"kubeconfig": lab["PRIMARY_KUBECONFIG"]}))
    assert res2["changed"] is False and res2["counts"]["unchanged"] == 6
    assert scope.dr_state() == before


def test_prune_deletes_exactly_the_stale_ones(lab, collection, scope2):
    s = scope2
    ns0, ns1, src = mirrored_3_and_1(lab, collection, s)
    # unmanaged object on DR in scope, and a managed one outside the scope
    kapply(lab, "dr", [pvc("handmade", ns0, "")])
    # the primary loses pair 2 in ns0 (claim and volume) and the pair in ns1
    kubectl(lab, "primary", "delete", "pvc", "data-2", "-n", ns0)
    kubectl(lab, "primary", "delete", "pv", f"pv-{s.tag}-{ns0[-1]}-2")
    kubectl(lab, "primary", "delete", "pvc", "data-0", "-n", ns1)
    kubectl(lab, "primary", "delete", "pv", f"pv-{s.tag}-{ns1[-1]}-0")
    # scope = ns0 only: ns1's stale pair is outside and must stay
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns0], source=src,
                                           max_delete_ratio=1.0), diff=True)
    assert not res.get("failed"), res.get("msg")
    deleted = {k for k, a in actions(res).items() if a == "deleted"}
    assert deleted == {("PersistentVolumeClaim", ns0, "data-2"),
                       ("PersistentVolume", "", f"pv-{s.tag}-{ns0[-1]}-2")}
    assert res["counts"]["deleted"] == 2 and res["changed"] is True
    # the deleted DR objects come back as they were (callers remove their data)
    pruned = {(o["kind"], o["metadata"]["name"]): o for o in res["pruned_objects"]}
    assert set(pruned) == {("PersistentVolumeClaim", "data-2"), ("PersistentVolume", f"pv-{s.tag}-{ns0[-1]}-2")}
    assert pruned[("PersistentVolume", f"pv-{s.tag}-{ns0[-1]}-2")]["metadata"]["labels"][
        "dr.ocpv.io/managed-by"] == "ocpv-dr"
    assert all("managedFields" not in o["metadata"] for o in pruned.values())
    wait_until(lambda: kget(lab, "dr", "pvc", "data-2", ns=ns0) is None, 60, 0.5, "stale PVC gone")
    wait_until(lambda: kget(lab, "dr", "pv", f"pv-{s.tag}-{ns0[-1]}-2") is None, 60, 0.5, "stale PV gone")
    assert kget(lab, "dr", "pvc", "handmade", ns=ns0) is not None
    assert kget(lab, "dr", "pvc", "data-0", ns=ns1) is not None
    assert kget(lab, "dr", "pvc", "data-1", ns=ns0) is not None
    # nothing left to prune
    res2 = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns0], source=src))
    assert res2["changed"] is False and res2["counts"]["deleted"] == 0


def test_list_selects_protected_objects_and_dr_copies(lab, collection, scope2):
    """mode list against the real apiservers: bound claims and their volumes
    only, a pending claim by name, ready snapshots with their contents, the
    namespace scope, and volumes_current = DR copies made from this very PV
    (a PV re-created on the primary under the same name is not current)."""
    s = scope2
    ns0, ns1 = s.namespaces
    s.pairs(3, ns=ns0)
    s.pairs(1, ns=ns1)
    s.snapshots(1, ns=ns0)
    kapply(lab, "primary", [vs("not-ready", ns0, "data-0"), pvc("waiting", ns0, "")])
    src = {"kubeconfig": lab["PRIMARY_KUBECONFIG"]}
    args = dict(dr_conn(lab), mode="list", namespaces=[ns0], source=src)
    t0 = time.time()
    res = run_module(lab, collection, dict(args, compare_dr=True))
    assert not res.get("failed"), res.get("msg")
    assert res["changed"] is False
    # taken before the first request: a full sync that starts from this
    # listing is at least this old (issue #16's full-sync.start)
    listed_at = calendar.timegm(time.strptime(res["listed_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert int(t0) - 1 <= listed_at <= time.time(), res["listed_at"]
    names = lambda key: sorted(o["metadata"]["name"] for o in res[key])  # noqa: E731
    pvs0 = [f"pv-{s.tag}-{ns0[-1]}-{i}" for i in range(3)]
    assert names("claims") == ["data-0", "data-1", "data-2"]
    assert res["claims_pending"] == ["waiting"]
    assert names("volumes") == pvs0                          # ns1's volume is out of scope
    assert names("snapshots") == ["snap-0"]                  # not-ready is left out
    assert names("snapshot_contents") == [f"snapcontent-{s.tag}-0"]
    assert res["volumes_current"] == []                      # nothing on DR yet
    assert all("managedFields" not in o["metadata"] for o in res["claims"] + res["volumes"])
    assert res["counts"] == {"claims": 3, "claims_pending": 1, "volumes": 3, "volumes_current": 0,
                             "snapshots": 1, "snapshot_contents": 1}
    # nothing was written anywhere
    assert kget(lab, "dr", "pvc", ns=ns0)["items"] == []

    # DR gets copies of the three volumes; then pv-2 is re-created on the
    # primary (new uid, same name): only 0 and 1 are current
    assert not run_module(lab, collection, dict(dr_conn(lab), mode="apply", source_cluster="primary",
                                                resources=res["volumes"])).get("failed")
    kubectl(lab, "primary", "delete", "pvc", "data-2", "-n", ns0)
    kubectl(lab, "primary", "delete", "pv", pvs0[2])
    kapply(lab, "primary", [pv(pvs0[2], ns0, "data-2"), pvc("data-2", ns0, pvs0[2])])
    wait_until(lambda: (kget(lab, "primary", "pvc", "data-2", ns=ns0) or {}).get(
        "status", {}).get("phase") == "Bound", 60, 0.5, "re-created claim bound")
    res = run_module(lab, collection, dict(args, compare_dr=True))
    assert sorted(res["volumes_current"]) == pvs0[:2]
    # without compare_dr DR is not read at all (not even reachable)
    res = run_module(lab, collection, dict(args, kubeconfig="/nonexistent/dr.kubeconfig"))
    assert not res.get("failed"), res.get("msg")
    assert "volumes_current" not in res
    # names: one claim (and its volume); [""] selects none
    res = run_module(lab, collection, dict(args, names=["data-1"]))
    assert names("claims") == ["data-1"] and names("volumes") == [pvs0[1]]
    res = run_module(lab, collection, dict(args, names=[""]))
    assert res["claims"] == [] and res["volumes"] == [] and res["claims_pending"] == []


def test_list_fails_clearly_and_never_half(lab, collection, scope):
    """A read that fails fails the task (a partial listing would look like
    deletions); bad combinations name the option."""
    ns = scope.namespaces[0]
    src = {"kubeconfig": lab["PRIMARY_KUBECONFIG"]}
    res = run_module(lab, collection, dict(dr_conn(lab), mode="list", namespaces=[ns]))
    assert res.get("failed") and "source: required for mode list" in res["msg"]
    res = run_module(lab, collection, dict(dr_conn(lab), mode="list", source=src))
    assert res.get("failed") and res["msg"].startswith("namespaces:")
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", names=["x"], resources=[]))
    assert res.get("failed") and res["msg"].startswith("names:")
    res = run_module(lab, collection, dict(dr_conn(lab), mode="list", source=src, namespaces=[ns],
                                           resources=[pvc("x", ns, "")]))
    assert res.get("failed") and res["msg"].startswith("resources:")
    # an unreachable primary fails the task, names the primary, shows no token
    res = run_module(lab, collection, dict(dr_conn(lab), mode="list", namespaces=[ns],
                                           source={"host": "https://127.0.0.1:1", "api_key": "sekret-token-1"}))
    assert res.get("failed") and "primary" in res["msg"] and "sekret-token-1" not in json.dumps(res)
    assert "claims" not in res


def test_prune_guards_stop_a_mass_delete(lab, collection, scope):
    ns = scope.namespaces[0]
    scope.pairs(4)
    src = {"kubeconfig": lab["PRIMARY_KUBECONFIG"]}
    assert not run_module(lab, collection, dict(dr_conn(lab), mode="mirror", namespaces=[ns],
                                                source=src)).get("failed")
    for i in range(3):
        kubectl(lab, "primary", "delete", "pvc", f"data-{i}", "-n", ns)
        kubectl(lab, "primary", "delete", "pv", f"pv-{scope.tag}-{ns[-1]}-{i}")
    before = scope.dr_state()
    # 6 of 8 managed objects stale: over the default ratio 0.5
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns], source=src))
    assert res.get("failed") and "max_delete_ratio" in res["msg"] and "nothing deleted" in res["msg"]
    assert scope.dr_state() == before
    # max_delete
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns], source=src,
                                           max_delete_ratio=1.0, max_delete=5))
    assert res.get("failed") and "max_delete=5" in res["msg"]
    assert scope.dr_state() == before
    # an empty primary (everything gone) while DR holds managed objects
    kubectl(lab, "primary", "delete", "pvc", "data-3", "-n", ns)
    kubectl(lab, "primary", "delete", "pv", f"pv-{scope.tag}-{ns[-1]}-3")
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns], source=src,
                                           max_delete_ratio=1.0))
    assert res.get("failed") and "allow_empty_source" in res["msg"]
    assert scope.dr_state() == before
    # the primary listing fails (the limited primary credential cannot list in a
    # namespace it cannot see? it can list: use a broken source instead)
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns],
                                           source={"host": "https://127.0.0.1:1", "validate_certs": False},
                                           max_delete_ratio=1.0, allow_empty_source=True))
    assert res.get("failed") and "nothing" in res["msg"]
    assert scope.dr_state() == before
    # explicitly allowed: everything goes
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns], source=src,
                                           max_delete_ratio=1.0, allow_empty_source=True))
    assert not res.get("failed"), res.get("msg")
    assert res["counts"]["deleted"] == 8


def test_least_privilege_credential_gets_a_clear_rbac_error(lab, collection, lab_ns="vm-prod"):
    tag = uuid.uuid4().hex[:8]
    pvn, claim = f"pv-{tag}", f"rbac-{tag}"
    objs = [pv(pvn, lab_ns, claim), pvc(claim, lab_ns, pvn)]
    try:
        res = run_module(lab, collection, dict(dr_conn(lab, limited=True), mode="apply", resources=objs))
        assert res.get("failed")
        acts = actions(res)
        assert acts[("PersistentVolume", "", pvn)] == "failed"
        assert acts[("PersistentVolumeClaim", lab_ns, claim)] == "created"   # allowed in vm-prod
        reason = next(r["reason"] for r in res["results"] if r["kind"] == "PersistentVolume")
        assert pvn in reason and "403" in reason and "Forbidden" in reason and "RBAC" in reason
        assert "1 of 2 objects failed" in res["msg"]
        token = Path(lab["DR_LIMITED_TOKEN_FILE"]).read_text().strip()
        assert token not in json.dumps(res)
    finally:
        kubectl(lab, "dr", "delete", "pvc", claim, "-n", lab_ns, "--ignore-not-found", check=False)
        kubectl(lab, "dr", "delete", "pv", pvn, "--ignore-not-found", check=False)


def test_bad_inputs(lab, collection, scope):
    ns = scope.namespaces[0]
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok", "namespace": ns},
            "data": {"a": "1"}}
    bad = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": ns}},
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": ns}},
        '{"apiVersion": "v1", "kind": ',
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nons"}},
    ]
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=[good] + bad))
    assert res.get("failed") and "4 of 5 objects failed" in res["msg"]
    reasons = [r["reason"] for r in res["results"] if r["action"] == "failed"]
    assert any("metadata.name is missing" in r for r in reasons)
    assert any("Widget" in r and "unknown kind" in r for r in reasons)
    assert any("resources[3]: malformed JSON" in r for r in reasons)
    assert any("ConfigMap nons" in r and "namespace is missing" in r for r in reasons)
    # the valid object was still applied; the bad ones left nothing behind
    assert kget(lab, "dr", "configmap", "ok", ns=ns)["data"] == {"a": "1"}

    # wrong connection details / rejected token: one clear message, no write
    res = run_module(lab, collection, {"mode": "apply", "resources": [good], "host": "https://127.0.0.1:1",
                                       "validate_certs": False})
    assert res.get("failed") and "127.0.0.1:1" in res["msg"]
    res = run_module(lab, collection, {"mode": "apply", "resources": [good], "host": lab["DR_API_URL"],
                                       "ca_cert": lab["DR_CA_FILE"], "api_key": "expired-token-abc123"})
    assert res.get("failed") and "401" in res["msg"] and "expired-token-abc123" not in json.dumps(res)

    # conflicting field managers: someone else owns a label with another value
    other = json.loads(json.dumps(good))
    other["metadata"]["name"] = "contested"
    other["metadata"]["labels"] = {"owner": "someone-else"}
    kubectl(lab, "dr", "apply", "--server-side", "--field-manager=someone-else", "-f", "-",
            input=json.dumps(other))
    mine = json.loads(json.dumps(other))
    mine["metadata"]["labels"] = {"owner": "ocpv-dr"}
    # not made by ocpv-dr: a conflict, left alone (take_over is opt-in)
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=[mine],
                                           force_conflicts=True))
    assert res.get("failed") and res["results"][0]["action"] == "conflict", res
    assert "take_over" in res["results"][0]["reason"]
    assert kget(lab, "dr", "configmap", "contested", ns=ns)["metadata"]["labels"] == {"owner": "someone-else"}
    # taken over: the field manager conflict (409) remains
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=[mine], take_over=True))
    assert res.get("failed")
    reason = res["results"][0]["reason"]
    assert "ConfigMap" in reason and "contested" in reason and "409" in reason and "force_conflicts" in reason
    assert kget(lab, "dr", "configmap", "contested", ns=ns)["metadata"]["labels"]["owner"] == "someone-else"
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=[mine], force_conflicts=True,
                                           take_over=True))
    assert not res.get("failed"), res.get("msg")
    assert kget(lab, "dr", "configmap", "contested", ns=ns)["metadata"]["labels"]["owner"] == "ocpv-dr"

    # bad parameters
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", resources=[good]))
    assert res.get("failed") and "namespaces" in res["msg"]
    res = run_module(lab, collection, dict(dr_conn(lab), mode="mirror", namespaces=[ns]))
    assert res.get("failed") and "source" in res["msg"]
    res = run_module(lab, collection, dict(dr_conn(lab), mode="mirror", namespaces=[ns],
                                           source={"kubeconfig": lab["DR_KUBECONFIG"]}))
    assert res.get("failed") and "same cluster" in res["msg"]
    res = run_module(lab, collection, dict(dr_conn(lab), mode="mirror", namespaces=[ns], kinds=["Gizmo"],
                                           source={"kubeconfig": lab["PRIMARY_KUBECONFIG"]}))
    assert res.get("failed") and "Gizmo" in res["msg"]
    # a kind two groups share (velero.io / longhorn.io Backup) needs its apiVersion
    res = run_module(lab, collection, dict(dr_conn(lab), mode="mirror", namespaces=[ns], kinds=["Backup"],
                                           source={"kubeconfig": lab["PRIMARY_KUBECONFIG"]}))
    assert res.get("failed") and 'unknown kind "Backup"' in res["msg"], res.get("msg")


def test_secret_values_are_applied_but_never_shown(lab, collection, scope):
    ns = scope.namespaces[0]
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "creds", "namespace": ns},
              "stringData": {"password": "hunter2-s3cr3t"}}
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=[secret],
                                           source_cluster="primary"), diff=True)
    assert not res.get("failed"), res.get("msg")
    assert "hunter2-s3cr3t" not in json.dumps(res)
    assert res["objects"][0]["stringData"]["password"] == "********"
    import base64
    got = kget(lab, "dr", "secret", "creds", ns=ns)
    assert base64.b64decode(got["data"]["password"]).decode() == "hunter2-s3cr3t"
    bad = run_module(lab, collection, dict(dr_conn(lab), mode="clean",
                                           resources=['{"kind": "Secret", "data": {"p": "hunter2-s3cr3t']))
    assert bad.get("failed") and "hunter2-s3cr3t" not in json.dumps(bad)
    # pruned (the primary has no such Secret): pruned_objects and the diff
    # return the DR object as it was - masked, neither the value nor its base64
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns], kinds=["Secret"],
                                           source={"kubeconfig": lab["PRIMARY_KUBECONFIG"]},
                                           source_cluster="primary",
                                           allow_empty_source=True, max_delete_ratio=1.0), diff=True)
    assert not res.get("failed"), res.get("msg")
    assert [o["metadata"]["name"] for o in res["pruned_objects"]] == ["creds"]
    out = json.dumps(res)
    assert "hunter2-s3cr3t" not in out and got["data"]["password"] not in out


def test_vm_cloud_init_data_is_applied_but_never_shown(lab, collection, scope):
    """A VirtualMachine's cloud-init userData / networkData (passwords, keys)
    is applied to DR as given, and masked wherever the module returns the
    object: objects, the diff, pruned_objects, the echoed module_args
    (lib/base/secret_mask.c; before, only Secrets were masked)."""
    ns = scope.namespaces[0]
    secret, net = "Sekr1t-cloudinit-pw", "Sekr1t-net-token"
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
          "metadata": {"name": "vm-ci", "namespace": ns},
          "spec": {"runStrategy": "Halted", "template": {"spec": {
              "domain": {"devices": {}},
              "volumes": [{"name": "ci", "cloudInitNoCloud": {
                  "userData": f"#cloud-config\npassword: {secret}\n",
                  "networkData": f"version: 2 # {net}\n"}}]}}}}
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=[vm],
                                           source_cluster="primary"), diff=True)
    assert not res.get("failed"), res.get("msg")
    out = json.dumps(res)
    assert secret not in out and net not in out
    vols = res["objects"][0]["spec"]["template"]["spec"]["volumes"]
    assert vols[0]["cloudInitNoCloud"] == {"userData": "********", "networkData": "********"}
    got = kget(lab, "dr", "virtualmachine", "vm-ci", ns=ns)
    assert secret in got["spec"]["template"]["spec"]["volumes"][0]["cloudInitNoCloud"]["userData"]
    # pruned (the primary has no such VM): returned as it was, masked
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns],
                                           kinds=["VirtualMachine"], source_cluster="primary",
                                           source={"kubeconfig": lab["PRIMARY_KUBECONFIG"]},
                                           allow_empty_source=True, max_delete_ratio=1.0), diff=True)
    assert not res.get("failed"), res.get("msg")
    assert [o["metadata"]["name"] for o in res["pruned_objects"]] == ["vm-ci"]
    out = json.dumps(res)
    assert secret not in out and net not in out


# ------------------------------------------------------------------ data safety (issue 15)

class _BadListProxy:
    """A plain-http front for the real primary apiserver (what a broken proxy
    or a login portal in front of it looks like): every GET is forwarded with
    the lab admin's credentials, except the claim list of one namespace,
    which gets `answer` with status 200."""

    def __init__(self, k8s_client, ns, answer, ctype="application/json"):
        import http.server
        import threading
        api = k8s_client("primary")
        host = api.configuration.host
        pool = api.rest_client.pool_manager
        prefix = f"/api/v1/namespaces/{ns}/persistentvolumeclaims"
        self.hits = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.split("?")[0] == prefix and "watch=" not in self.path:
                    outer.hits += 1
                    status, body, ct = 200, answer.encode(), ctype
                else:
                    r = pool.request("GET", host + self.path, headers={"Accept": "application/json"},
                                     preload_content=True)
                    status, body, ct = r.status, r.data, r.headers.get("Content-Type", "application/json")
                self.send_response(status)
                self.send_header("Content-Type", ct)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        self.th = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.th.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.mark.parametrize("answer,ctype", [
    ("{}", "application/json"),
    ("<html><body>Sign in to continue</body></html>", "text/html"),
    ('{"kind":"PersistentVolumeClaimList","apiVersion":"v1","metadata":{},"items":null}', "application/json"),
], ids=["empty-object", "html-login-page", "items-null"])
def test_prune_deletes_nothing_when_a_list_answer_is_not_a_list(lab, collection, scope, k8s_client,
                                                                 answer, ctype):
    """A 2xx answer to the primary's claim listing that is not a list (through
    a proxy in front of the real apiserver) fails the prune: nothing deleted,
    even with both guards relaxed - it is a failed read, never "no claims".
    (Before: the missing items read as zero claims and the namespace's DR
    claims were deleted.)"""
    ns = scope.namespaces[0]
    scope.pairs(2)
    src = {"kubeconfig": lab["PRIMARY_KUBECONFIG"]}
    assert not run_module(lab, collection, dict(dr_conn(lab), mode="mirror", namespaces=[ns], source=src,
                                                source_cluster="lab-primary")).get("failed")
    wait_dr_bound(scope, 2)
    before = scope.dr_state()
    proxy = _BadListProxy(k8s_client, ns, answer, ctype)
    try:
        res, warned = run_module_warned(lab, collection, dict(
            dr_conn(lab), mode="prune", namespaces=[ns], source={"host": proxy.url},
            source_cluster="lab-primary", max_delete_ratio=1.0, allow_empty_source=True), "plain http")
    finally:
        proxy.close()
    assert proxy.hits >= 1
    assert res.get("failed"), res
    assert "refusing to read it as" in res["msg"] and f"PersistentVolumeClaim in namespace {ns}" in res["msg"]
    assert "nothing applied or deleted" in res["msg"]
    assert scope.dr_state() == before
    assert warned   # the unencrypted primary connection was said out loud


def test_prune_empty_source_guard_holds_per_namespace(lab, collection, scope2):
    """One namespace empty on the primary while DR holds its managed objects
    stops the prune, however many objects other namespaces have (before, the
    guard counted a kind across all namespaces: 2 of 8 objects passed)."""
    s = scope2
    ns0, ns1, src = mirrored_3_and_1(lab, collection, s)
    kubectl(lab, "primary", "delete", "pvc", "data-0", "-n", ns1)
    kubectl(lab, "primary", "delete", "pv", f"pv-{s.tag}-{ns1[-1]}-0")
    before = s.dr_state()
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=s.namespaces, source=src))
    assert res.get("failed") and "allow_empty_source" in res["msg"], res.get("msg")
    assert f"in namespace {ns1}" in res["msg"] and "nothing deleted" in res["msg"]
    assert s.dr_state() == before
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=s.namespaces, source=src,
                                           allow_empty_source=True))
    assert not res.get("failed"), res.get("msg")
    assert {k for k, a in actions(res).items() if a == "deleted"} == {
        ("PersistentVolumeClaim", ns1, "data-0"), ("PersistentVolume", "", f"pv-{s.tag}-{ns1[-1]}-0")}


def test_deletion_events_are_evidence_only_for_what_they_name(lab, collection, scope):
    """deleted_sources (the objects of deletion events) exempt what they name
    from the empty-source and ratio guards; every other stale object of the
    job stays under both; max_delete caps everything."""
    ns = scope.namespaces[0]
    scope.pairs(2)
    src = {"kubeconfig": lab["PRIMARY_KUBECONFIG"]}
    args = dict(dr_conn(lab), mode="prune", namespaces=[ns], source=src, source_cluster="primary",
                kinds=["PersistentVolumeClaim", "PersistentVolume"])
    assert not run_module(lab, collection, dict(dr_conn(lab), mode="mirror", namespaces=[ns], source=src,
                                                source_cluster="primary")).get("failed")
    pvs = [f"pv-{scope.tag}-{ns[-1]}-{i}" for i in range(2)]
    # the objects as their DELETED events carry them
    ev_pvc0 = kget(lab, "primary", "pvc", "data-0", ns=ns)
    ev_pv1 = kget(lab, "primary", "pv", pvs[1])
    ev_pv1["status"]["phase"] = "Released"       # its claim was deleted first
    for i in range(2):
        kubectl(lab, "primary", "delete", "pvc", f"data-{i}", "-n", ns)
        kubectl(lab, "primary", "delete", "pv", pvs[i])
    before = scope.dr_state()
    # the namespace is empty on the primary; one event names claim 0 (and so
    # the volume it was bound to): claim 1 and volume 1 are not vouched for
    res = run_module(lab, collection, dict(args, deleted_sources=[ev_pvc0]))
    assert res.get("failed") and "allow_empty_source" in res["msg"], res.get("msg")
    assert "no deletion event names" in res["msg"]
    assert scope.dr_state() == before
    # uids work as well as objects; the count cap is never lifted
    res = run_module(lab, collection, dict(args, max_delete=3,
                                           deleted_sources=[ev_pvc0, ev_pv1["metadata"]["uid"],
                                                            ev_pv1]))
    assert res.get("failed") and "max_delete=3" in res["msg"], res.get("msg")
    assert scope.dr_state() == before
    # the claim's event names claim 0 and volume 0; the Released volume's
    # names volume 1 and claim 1: all four go, no guard relaxed
    res = run_module(lab, collection, dict(args, deleted_sources=[ev_pvc0, ev_pv1]))
    assert not res.get("failed"), res.get("msg")
    deleted = {k for k, a in actions(res).items() if a == "deleted"}
    assert deleted == {("PersistentVolumeClaim", ns, "data-0"), ("PersistentVolumeClaim", ns, "data-1"),
                       ("PersistentVolume", "", pvs[0]), ("PersistentVolume", "", pvs[1])}
    assert all("deletion event names it" in r["reason"] for r in res["results"] if r["action"] == "deleted")


def test_two_sources_sharing_dr_never_touch_each_other(lab, collection, scope):
    """Two primaries (simulated with source_cluster on the lab's one primary)
    share the DR cluster: prune of one deletes only its own objects; apply of
    one reports the other's object as a conflict; an unlabelled DR object is
    a conflict too, and taken over only when asked."""
    ns = scope.namespaces[0]
    objs = scope.pairs(2)
    by = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    pvs = [f"pv-{scope.tag}-{ns[-1]}-{i}" for i in range(2)]
    site_a = [by[("PersistentVolume", pvs[0])], by[("PersistentVolumeClaim", "data-0")]]
    site_b = [by[("PersistentVolume", pvs[1])], by[("PersistentVolumeClaim", "data-1")]]
    for name, objs_ in (("site-a", site_a), ("site-b", site_b)):
        res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=objs_, source_cluster=name))
        assert not res.get("failed"), res.get("msg")
    before = scope.dr_state()
    # site-a's primary has only its own pair: site-b's must not look stale to it
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns], resources=site_a,
                                           source_cluster="site-a"))
    assert not res.get("failed"), res.get("msg")
    assert res["counts"]["deleted"] == 0 and res["prune_other_sources"] == 2
    assert scope.dr_state() == before
    # prune without a source identity is refused
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns], resources=site_a))
    assert res.get("failed") and res["msg"].startswith("source_cluster:")
    # site-b apply of site-a's claim: a conflict, left as it was
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=[site_a[1]],
                                           source_cluster="site-b"))
    assert res.get("failed") and res["results"][0]["action"] == "conflict"
    assert 'source cluster "site-a"' in res["results"][0]["reason"]
    assert scope.dr_state() == before
    # site-b prunes its own (its primary lost pair 1): pair 0 (site-a's) stays
    res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns], resources=site_a,
                                           source_cluster="site-b", max_delete_ratio=1.0))
    assert not res.get("failed"), res.get("msg")
    assert {k for k, a in actions(res).items() if a == "deleted"} == {
        ("PersistentVolumeClaim", ns, "data-1"), ("PersistentVolume", "", pvs[1])}
    assert kget(lab, "dr", "pvc", "data-0", ns=ns) is not None
    # an unlabelled DR object of the same name: a conflict, untouched ...
    hand = pvc("handmade", ns, "")
    kapply(lab, "dr", [hand])
    mine = json.loads(json.dumps(hand))
    mine["metadata"]["labels"] = {"from": "primary"}
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=[mine], source_cluster="site-a",
                                           fail_on_error=False))
    assert not res.get("failed") and res["counts"]["conflict"] == 1, res
    assert "without the ocpv-dr label" in res["results"][0]["reason"]
    live = kget(lab, "dr", "pvc", "handmade", ns=ns)
    assert "dr.ocpv.io/managed-by" not in live["metadata"]["labels"]
    # ... so a prune can never delete it; taken over only when asked
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=[mine], source_cluster="site-a",
                                           take_over=True))
    assert not res.get("failed"), res.get("msg")
    assert res["results"][0]["action"] == "updated" and "taken over" in res["results"][0]["reason"]
    live = kget(lab, "dr", "pvc", "handmade", ns=ns)
    assert live["metadata"]["labels"]["dr.ocpv.io/managed-by"] == "ocpv-dr"
    assert live["metadata"]["annotations"]["dr.ocpv.io/source-cluster"] == "site-a"


def storage_class(name):
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "labels": {"test": "k8s-dr-clean"}},
            "provisioner": "nfs.csi.k8s.io", "reclaimPolicy": "Delete"}


def test_prune_cluster_scoped_kind_is_scoped_as_a_whole(lab, collection, scope):
    """A StorageClass belongs to no namespace: in scope as a whole, whether
    the primary's objects come from `resources` or from listing `source`
    (lib/dr/dr_scope, one rule).  Prune with kinds: [StorageClass] deletes the
    managed DR class the primary lacks and keeps the one it has.  Before,
    the resources path dropped every StorageClass from the primary (it has
    no namespace), so the empty-source guard refused the prune - or, with
    allow_empty_source, deleted the class the primary still has."""
    ns = scope.namespaces[0]
    keep, gone = f"sc-{scope.tag}-keep", f"sc-{scope.tag}-gone"
    site = f"site-sc-{scope.tag}"   # a source of its own: no other test's classes are in play
    try:
        kapply(lab, "primary", [storage_class(keep)])
        res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", source_cluster=site,
                                               resources=[storage_class(keep), storage_class(gone)]))
        assert not res.get("failed"), res.get("msg")
        primary_sc = kget(lab, "primary", "storageclass", keep)
        args = dict(dr_conn(lab), mode="prune", namespaces=[ns], kinds=["StorageClass"],
                    source_cluster=site)
        # check mode first: the plan, nothing deleted
        res = run_module(lab, collection, dict(args, resources=[primary_sc]), check=True)
        assert not res.get("failed"), res.get("msg")
        assert {k for k, a in actions(res).items() if a == "deleted"} == {("StorageClass", "", gone)}
        assert kget(lab, "dr", "storageclass", gone) is not None
        res = run_module(lab, collection, dict(args, resources=[primary_sc], allow_empty_source=True))
        assert not res.get("failed"), res.get("msg")
        assert {k for k, a in actions(res).items() if a == "deleted"} == {("StorageClass", "", gone)}
        assert kget(lab, "dr", "storageclass", keep) is not None
        wait_until(lambda: kget(lab, "dr", "storageclass", gone) is None, 60, 0.5, "stale class gone")
        # the same through the primary's listing: nothing more is stale
        res = run_module(lab, collection, dict(args, source={"kubeconfig": lab["PRIMARY_KUBECONFIG"]}))
        assert not res.get("failed"), res.get("msg")
        assert res["counts"]["deleted"] == 0 and kget(lab, "dr", "storageclass", keep) is not None
    finally:
        for c in ("primary", "dr"):
            kubectl(lab, c, "delete", "storageclass", keep, gone, "--ignore-not-found", check=False)


def test_prune_namespace_kind_is_scoped_by_its_name(lab, collection, scope):
    """A Namespace is in scope when its name is protected: prune with
    kinds: [Namespace] listing the primary never deletes a managed DR
    namespace outside `namespaces` (before, the listings kept every
    Namespace, so with allow_empty_source one outside the scope went)."""
    ns = scope.namespaces[0]
    outside = f"cl-{scope.tag}-outside"
    site = f"site-ns-{scope.tag}"
    nsobj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": outside}}
    try:
        res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", source_cluster=site,
                                               resources=[nsobj]))
        assert not res.get("failed"), res.get("msg")
        res = run_module(lab, collection, dict(dr_conn(lab), mode="prune", namespaces=[ns],
                                               kinds=["Namespace"], source_cluster=site,
                                               source={"kubeconfig": lab["PRIMARY_KUBECONFIG"]},
                                               allow_empty_source=True, max_delete_ratio=1.0))
        assert not res.get("failed"), res.get("msg")
        assert res["counts"]["deleted"] == 0, res["results"]
        live = kget(lab, "dr", "namespace", outside)
        assert live is not None and live["status"]["phase"] == "Active"
    finally:
        kubectl(lab, "dr", "delete", "namespace", outside, "--wait=false", "--ignore-not-found",
                check=False)


def test_dot_names_never_address_another_object(lab, collection, scope):
    """A claim named ".." (or "."), or a dot namespace, fails on its own with
    a clear reason and no request: libcurl used to collapse the dot segment,
    so the claim's read was a read of its Namespace and its apply a PATCH of
    the Namespace."""
    ns = scope.namespaces[0]
    nsobj_before = kget(lab, "dr", "namespace", ns)
    bad = [pvc("..", ns, ""), pvc(".", ns, ""), pvc("x", "..", "")]
    good = pvc("fine", ns, "")
    res = run_module(lab, collection, dict(dr_conn(lab), mode="apply", resources=bad + [good],
                                           source_cluster="primary", fail_on_error=False))
    assert not res.get("failed"), res.get("msg")
    acts = actions(res)
    assert acts[("PersistentVolumeClaim", ns, "fine")] == "created"
    reasons = {r["name"] + "@" + r["namespace"]: r for r in res["results"]}
    for key in ("..@" + ns, ".@" + ns, "x@.."):
        assert reasons[key]["action"] == "failed" and "dot segment" in reasons[key]["reason"], reasons[key]
    nsobj = kget(lab, "dr", "namespace", ns)
    assert nsobj["metadata"]["resourceVersion"] == nsobj_before["metadata"]["resourceVersion"]
    assert "dr.ocpv.io/managed-by" not in (nsobj["metadata"].get("labels") or {})


def test_insecure_transport_is_refused_or_said(lab, collection, scope):
    """A token never goes to an http:// API server unless allow_insecure_http;
    TLS verification off, or plain http allowed, is a warning every time."""
    ns = scope.namespaces[0]
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok", "namespace": ns}}
    plain = lab["DR_API_URL"].replace("https://", "http://")
    token = Path(lab["DR_LIMITED_TOKEN_FILE"]).read_text().strip()
    res = run_module(lab, collection, {"mode": "apply", "resources": [good], "host": plain, "api_key": token})
    assert res.get("failed") and "plain http" in res["msg"] and "allow_insecure_http" in res["msg"]
    assert token not in json.dumps(res)
    # allowed: said loudly (the https port does not speak http: the request fails after that)
    res, warned = run_module_warned(lab, collection, {"mode": "apply", "resources": [good], "host": plain,
                                                      "api_key": token, "allow_insecure_http": True},
                                    "plain http (allow_insecure_http)")
    assert warned, res
    assert token not in json.dumps(res)
    # verification off: works, and says so
    res, warned = run_module_warned(lab, collection, dict(dr_conn(lab), mode="apply", resources=[good],
                                                          validate_certs=False, source_cluster="primary"),
                                    "TLS certificate verification is OFF for the DR cluster")
    assert not res.get("failed"), res.get("msg")
    assert warned, res
    # verified: no such warning
    res, warned = run_module_warned(lab, collection, dict(dr_conn(lab), mode="apply", resources=[good],
                                                          source_cluster="primary"), "INSECURE")
    assert not res.get("failed"), res.get("msg")
    assert not warned, res


def test_event_delete_playbook_deletes_on_evidence_without_relaxing_guards(lab, twin_ns, k8s_client,
                                                                           ansible_playbook):
    """handle_pv_pvc_delete as the rulebook runs it: the event's objects are
    evidence for what they name (deleted), but a deletion the events do not
    name that would empty the namespace stops the job with nothing deleted
    (the role used to relax both guards: allow_empty_source AND ratio 1.0)."""
    from kubernetes import client
    from conftest import REPO, seed_workload
    ns = twin_ns
    base = {"target_namespaces": [ns], "watched_namespaces": [ns], "dr_rsync_ssh_key": lab["LAB_SSH_KEY"],
            "dr_rsync_known_hosts": lab["LAB_KNOWN_HOSTS"]}
    seed_workload(lab, ns, 2, "a", files=1)
    r = ansible_playbook(REPO / "playbooks/scheduled/execute_periodic_sync.yml", extra_vars=base)
    assert r.rc == 0, r.stderr[-3000:]
    api = k8s_client("primary")
    core = client.CoreV1Api(api)
    dr = client.CoreV1Api(k8s_client("dr"))

    def dr_claims():
        return sorted(c.metadata.name for c in dr.list_namespaced_persistent_volume_claim(ns).items)

    def dr_pvs():
        return sorted(p.metadata.name for p in dr.list_persistent_volume().items
                      if p.spec.claim_ref and p.spec.claim_ref.namespace == ns)
    assert dr_claims() == ["a-disk-0", "a-disk-1"]
    ev = {}
    for i in range(2):
        ev[f"pvc{i}"] = api.sanitize_for_serialization(core.read_namespaced_persistent_volume_claim(f"a-disk-{i}", ns))
        ev[f"pv{i}"] = api.sanitize_for_serialization(core.read_persistent_volume(f"pv-{ns}-a-disk-{i}"))
        ev[f"pvc{i}"].update(apiVersion="v1", kind="PersistentVolumeClaim")
        ev[f"pv{i}"].update(apiVersion="v1", kind="PersistentVolume")
    play = REPO / "playbooks/event_driven/handle_pv_pvc_delete.yml"
    # claim 0 and its volume deleted; the event names the claim: both go
    core.delete_namespaced_persistent_volume_claim("a-disk-0", ns)
    core.delete_persistent_volume(f"pv-{ns}-a-disk-0")
    r = ansible_playbook(play, extra_vars={**base, "resource_objects": [ev["pvc0"]]})
    assert r.rc == 0, r.stderr[-3000:]
    assert dr_claims() == ["a-disk-1"] and dr_pvs() == [f"pv-{ns}-a-disk-1"]
    # the last pair goes; the only event is the volume's, still Bound when it
    # was sent: it names the volume, not the claim - the claim would empty
    # the namespace unvouched for: nothing is deleted, the job fails
    core.delete_namespaced_persistent_volume_claim("a-disk-1", ns)
    core.delete_persistent_volume(f"pv-{ns}-a-disk-1")
    r = ansible_playbook(play, extra_vars={**base, "resource_objects": [ev["pv1"]]})
    assert r.rc != 0
    assert "allow_empty_source" in r.stdout, r.stdout[-3000:]
    assert dr_claims() == ["a-disk-1"] and dr_pvs() == [f"pv-{ns}-a-disk-1"]
    # the claim's deletion was inferred by the forwarder (missing from a
    # relist, or a restart diff: the rulebook's deletion_evidence leaves it
    # out) - a listing that lost objects is no evidence: nothing is deleted
    r = ansible_playbook(play, extra_vars={**base, "resource_objects": [ev["pvc1"]],
                                           "deletion_evidence": []})
    assert r.rc != 0
    assert "allow_empty_source" in r.stdout, r.stdout[-3000:]
    assert dr_claims() == ["a-disk-1"] and dr_pvs() == [f"pv-{ns}-a-disk-1"]
    # the claim's event (seen deleted by the watch) arrives: both go
    r = ansible_playbook(play, extra_vars={**base, "resource_objects": [ev["pvc1"]],
                                           "deletion_evidence": [ev["pvc1"]]})
    assert r.rc == 0, r.stderr[-3000:]
    assert dr_claims() == [] and dr_pvs() == []
