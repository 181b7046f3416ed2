"""test_longhorn_restore.py - lab tests of ocpv.dr.longhorn_restore and of the
Longhorn DR exercise playbook.

Everything runs against the lab's REAL kube-apiserver of the `dr` cluster
(real Longhorn v1beta2 CRDs) through REAL ansible-playbook.  Longhorn's
manager cannot run here, so tests/controllers/longhorn_sim.py plays its part
(status written as longhorn-manager writes it; volume data kept as real files,
see its header).  Backups are made the real way: Volume -> Snapshot CR ->
Backup CR -> Completed; a "lost cluster" is simulated per test by deleting
the Volume CRs (the backups stay in the backup store), and the exercise test
really destroys and rebuilds the `dr` cluster (tests/lab/cluster dr down
--wipe / up).

Run:  LAB_ENV=tests/lab/.state-<name>/env $LAB_VENV/bin/pytest tests/integration/test_longhorn_restore.py
"""
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from conftest import wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIM = os.path.join(REPO, "tests", "controllers", "longhorn_sim.py")
MODULE_BIN = os.path.join(REPO, "collections", "ansible_collections", "ocpv", "dr", "plugins", "modules",
                          "longhorn_restore")
NS = "longhorn-system"
G, V = "longhorn.io", "v1beta2"
GI = 1024 ** 3


@pytest.fixture(scope="module")
def lab(lab):
    """conftest's lab env (dict) plus `_api`: a client of the dr cluster."""
    if not os.access(MODULE_BIN, os.X_OK):
        pytest.fail(f"{MODULE_BIN} missing: run meson install -C <build> --tags modules")
    from kubernetes import client, config
    cfg = client.Configuration()
    config.load_kube_config(config_file=lab["DR_KUBECONFIG"], client_configuration=cfg)
    return dict(lab, _api=client.ApiClient(cfg))


def api(lab):
    from kubernetes import client
    return client.CustomObjectsApi(lab["_api"])


def core(lab):
    from kubernetes import client
    return client.CoreV1Api(lab["_api"])


def lh_list(lab, plural):
    return api(lab).list_namespaced_custom_object(G, V, NS, plural)["items"]


def lh_get(lab, plural, name):
    from kubernetes.client.rest import ApiException
    try:
        return api(lab).get_namespaced_custom_object(G, V, NS, plural, name)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def lh_delete_all(lab):
    from kubernetes.client.rest import ApiException
    for plural in ("volumes", "snapshots", "backups", "backupvolumes", "backuptargets"):
        for o in lh_list(lab, plural):
            try:
                api(lab).delete_namespaced_custom_object(G, V, NS, plural, o["metadata"]["name"])
            except ApiException as e:
                if e.status != 404:
                    raise


class Sim:
    """The test controller as a subprocess, with its store and data dirs."""

    def __init__(self, lab, tmp, naming):
        self.lab, self.naming = lab, naming
        self.store = os.path.join(tmp, "backupstore")
        self.data = os.path.join(tmp, "lhdata")
        self.log = open(os.path.join(tmp, "longhorn_sim.log"), "w")
        self.proc = None

    def start(self):
        py = os.path.join(self.lab["LAB_VENV"], "bin", "python3")
        self.proc = subprocess.Popen([py, SIM, "--kubeconfig", self.lab["DR_KUBECONFIG"], "--store", self.store,
                                      "--data", self.data, "--naming", self.naming, "--interval", "0.2"],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def volume_dir(self, vol):
        return os.path.join(self.data, "volumes", vol["metadata"]["uid"])


@pytest.fixture
def sim(lab, tmp_path, request):
    naming = getattr(request, "param", "v18")
    lh_delete_all(lab)
    s = Sim(lab, str(tmp_path), naming)
    s.start()
    wait_until(lambda: ((lh_get(lab, "backuptargets", "default") or {}).get("status") or {}).get("available"),
               timeout=60, what="backup target available")
    yield s
    s.stop()
    if s.proc.returncode not in (0, -15):
        print(open(os.path.join(str(tmp_path), "longhorn_sim.log")).read(), file=sys.stderr)


def make_backup(lab, sim, name, content, size=GI, labels=None):
    """Volume with real data -> Snapshot -> Backup (Completed); returns the Backup."""
    a = api(lab)
    a.create_namespaced_custom_object(G, V, NS, "volumes", {
        "apiVersion": f"{G}/{V}", "kind": "Volume", "metadata": {"name": name},
        "spec": {"size": str(size), "numberOfReplicas": 3, "accessMode": "rwo"}})
    vol = wait_until(lambda: (lambda v: v if ((v or {}).get("status") or {}).get("state") == "detached" else None)(
                     lh_get(lab, "volumes", name)), timeout=60, what=f"volume {name} detached")
    with open(os.path.join(sim.volume_dir(vol), "data.txt"), "w") as f:
        f.write(content)
    snap, bname = f"{name}-snap", f"{name}-backup-{uuid.uuid4().hex[:6]}"
    a.create_namespaced_custom_object(G, V, NS, "snapshots", {
        "apiVersion": f"{G}/{V}", "kind": "Snapshot", "metadata": {"name": snap},
        "spec": {"volume": name, "createSnapshot": True}})
    wait_until(lambda: ((lh_get(lab, "snapshots", snap) or {}).get("status") or {}).get("readyToUse"),
               timeout=60, what=f"snapshot {snap}")
    a.create_namespaced_custom_object(G, V, NS, "backups", {
        "apiVersion": f"{G}/{V}", "kind": "Backup", "metadata": {"name": bname},
        "spec": {"snapshotName": snap, "labels": labels or {}}})
    b = wait_until(lambda: (lambda o: o if ((o or {}).get("status") or {}).get("state") == "Completed" else None)(
                   lh_get(lab, "backups", bname)), timeout=60, what=f"backup {bname} Completed")
    wait_until(lambda: [bv for bv in lh_list(lab, "backupvolumes")
                        if (bv.get("status") or {}).get("lastBackupName") == bname],
               timeout=60, what=f"BackupVolume of {name} names {bname}")
    return b, vol


def lose_volumes(lab, names):
    """The cluster 'lost' these volumes: delete the Volume (and Snapshot) CRs."""
    for n in names:
        api(lab).delete_namespaced_custom_object(G, V, NS, "volumes", n)
        if lh_get(lab, "snapshots", f"{n}-snap"):
            api(lab).delete_namespaced_custom_object(G, V, NS, "snapshots", f"{n}-snap")
    wait_until(lambda: all(lh_get(lab, "volumes", n) is None for n in names), timeout=60, what="volumes gone")


def run_module(lab, tmp_path, args, check=False, kubeconfig=None):
    """Runs ocpv.dr.longhorn_restore through ansible-playbook; returns the registered result."""
    out = os.path.join(str(tmp_path), f"result-{uuid.uuid4().hex[:8]}.json")
    args = dict(args)
    args.setdefault("kubeconfig", kubeconfig or lab["DR_KUBECONFIG"])
    args.setdefault("poll_interval", 0.2)
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"name": "restore", "ocpv.dr.longhorn_restore": args, "register": "r", "ignore_errors": True,
         "check_mode": check},
        {"name": "save", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": out},
         "check_mode": False}]}]
    pb = os.path.join(str(tmp_path), f"play-{uuid.uuid4().hex[:8]}.yml")
    with open(pb, "w") as f:
        json.dump(play, f)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    p = subprocess.run([os.path.join(lab["LAB_VENV"], "bin", "ansible-playbook"), "-i", "localhost,", pb,
                        "-e", "ansible_python_interpreter=" + os.path.join(lab["LAB_VENV"], "bin", "python3")],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert os.path.exists(out), f"playbook did not run:\n{p.stdout}\n{p.stderr}"
    with open(out) as f:
        return json.load(f)


def by_name(result):
    return {v["name"]: v for v in result["volumes"]}


# ---------------------------------------------------------------- module tests

def test_restore_several_volumes_v18_naming_and_idempotent(lab, sim, tmp_path):
    names = ["lh-app-a", "lh-app-b", "lh-app-c"]
    backups = {}
    for n in names:
        backups[n], _ = make_backup(lab, sim, n, f"data of {n} {uuid.uuid4()}")
    for bv in lh_list(lab, "backupvolumes"):   # >= 1.8 naming really in use
        assert bv["metadata"]["name"].startswith("bv-")
        assert bv["spec"]["volumeName"] in names
    contents = {n: open(os.path.join(sim.store, "backupstore", "volumes", n, "data",
                                     backups[n]["metadata"]["name"], "data.txt")).read() for n in names}
    lose_volumes(lab, names)

    r = run_module(lab, tmp_path, {"volumes": names, "timeout": 60})
    assert not r.get("failed"), r.get("msg")
    assert r["changed"] is True
    vols = by_name(r)
    for n in names:
        v = vols[n]
        b = backups[n]
        assert v["status"] == "restored", v
        assert v["backup_name"] == b["metadata"]["name"]
        assert v["backup_url"] == b["status"]["url"]
        assert v["backup_volume"].startswith("bv-")
        assert v["size"] == str(GI)
        assert v["duration_s"] > 0
        vol = lh_get(lab, "volumes", n)
        assert vol["spec"]["fromBackup"] == b["status"]["url"]
        assert vol["spec"]["size"] == str(GI)
        assert vol["status"]["state"] == "detached" and vol["status"]["restoreRequired"] is False
        # the data really came back from the backup store into the new volume
        with open(os.path.join(sim.volume_dir(vol), "data.txt")) as f:
            assert f.read() == contents[n]
    assert r["summary"] == {"restored": 3, "skipped": 0, "failed": 0, "planned": 0}

    again = run_module(lab, tmp_path, {"volumes": names})
    assert not again.get("failed") and again["changed"] is False
    assert all(v["status"] == "skipped" and v["reason"].startswith("exists") for v in again["volumes"])


@pytest.mark.parametrize("sim", ["legacy"], indirect=True)
def test_restore_pre18_naming(lab, sim, tmp_path):
    b, _ = make_backup(lab, sim, "lh-legacy", "legacy data")
    assert [bv["metadata"]["name"] for bv in lh_list(lab, "backupvolumes")] == ["lh-legacy"]
    lose_volumes(lab, ["lh-legacy"])
    r = run_module(lab, tmp_path, {"volumes": ["lh-legacy"], "backup_target": "default"})
    v = by_name(r)["lh-legacy"]
    assert v["status"] == "restored", v
    assert v["backup_volume"] == "lh-legacy" and v["backup_name"] == b["metadata"]["name"]


def test_skip_flag_parameter_and_configmap(lab, sim, tmp_path):
    from kubernetes import client
    make_backup(lab, sim, "lh-skip", "skip me")
    lose_volumes(lab, ["lh-skip"])
    r = run_module(lab, tmp_path, {"volumes": ["lh-skip"], "skip": True})
    v = by_name(r)["lh-skip"]
    assert v["status"] == "skipped" and v["reason"].startswith("skip flag"), v
    cm_name = f"cluster-config-{uuid.uuid4().hex[:6]}"
    core(lab).create_namespaced_config_map("ocpv-dr", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=cm_name), data={"skip_backup_restore": "true"}))
    try:
        cm = {"namespace": "ocpv-dr", "name": cm_name}
        r = run_module(lab, tmp_path, {"volumes": ["lh-skip"], "skip_configmap": cm})
        v = by_name(r)["lh-skip"]
        assert v["status"] == "skipped" and f"ConfigMap ocpv-dr/{cm_name}" in v["reason"], v
        assert r["changed"] is False and lh_get(lab, "volumes", "lh-skip") is None
        core(lab).patch_namespaced_config_map(cm_name, "ocpv-dr", {"data": {"skip_backup_restore": "false"}})
        r = run_module(lab, tmp_path, {"volumes": ["lh-skip"], "skip_configmap": cm})
        assert by_name(r)["lh-skip"]["status"] == "restored", r
    finally:
        core(lab).delete_namespaced_config_map(cm_name, "ocpv-dr")


def test_existing_volume_and_missing_backup_are_skipped(lab, sim, tmp_path):
    make_backup(lab, sim, "lh-exists", "still here")     # Volume stays: it exists
    r = run_module(lab, tmp_path, {"volumes": ["lh-exists", "lh-never-backed-up"]})
    assert not r.get("failed") and r["changed"] is False
    v = by_name(r)
    assert v["lh-exists"]["status"] == "skipped" and v["lh-exists"]["reason"].startswith("exists")
    assert v["lh-never-backed-up"]["status"] == "skipped"
    assert v["lh-never-backed-up"]["reason"].startswith("no backup")
    assert lh_get(lab, "volumes", "lh-never-backed-up") is None


def write_store_volume(sim, vol, last_backup, backup_cfg=None):
    """Puts a volume into the backup store directly (as another cluster's Longhorn would)."""
    d = os.path.join(sim.store, "backupstore", "volumes", vol)
    os.makedirs(os.path.join(d, "backups"), exist_ok=True)
    if backup_cfg is not None:
        with open(os.path.join(d, "backups", f"backup_{last_backup}.cfg"), "w") as f:
            f.write(backup_cfg)
    with open(os.path.join(d, "volume.cfg"), "w") as f:
        json.dump({"Name": vol, "Size": str(GI), "Labels": {}, "CreatedTime": "2026-11-20T02:00:00Z",
                   "LastBackupName": last_backup, "LastBackupAt": "2026-11-20T02:00:07Z", "DataStored": "0"}, f)


def test_gone_and_not_completed_backups_are_refused(lab, sim, tmp_path):
    # gone: the store's volume.cfg names a backup whose config was deleted (retention race)
    write_store_volume(sim, "lh-gone", "backup-deadbeef00000000")
    # not Completed: the backup config cannot be inspected -> Longhorn marks the Backup Error
    write_store_volume(sim, "lh-broken", "backup-badc0ffee0000000", backup_cfg="{not json")
    wait_until(lambda: len([bv for bv in lh_list(lab, "backupvolumes")
                            if (bv.get("status") or {}).get("lastBackupName")]) == 2,
               timeout=60, what="BackupVolumes synced")
    wait_until(lambda: ((lh_get(lab, "backups", "backup-badc0ffee0000000") or {})
                        .get("status") or {}).get("state") == "Error", timeout=60, what="Error backup pulled")
    r = run_module(lab, tmp_path, {"volumes": ["lh-gone", "lh-broken"]})
    assert r["failed"] is True
    assert "2 of 2 Longhorn volume(s) failed" in r["msg"]
    v = by_name(r)
    assert v["lh-gone"]["status"] == "failed"
    assert "backup-deadbeef00000000" in v["lh-gone"]["reason"] and "is gone" in v["lh-gone"]["reason"]
    assert v["lh-broken"]["status"] == "failed"
    assert "is not Completed (status.state=Error" in v["lh-broken"]["reason"]
    assert "failed to inspect the backup config" in v["lh-broken"]["reason"]
    assert lh_get(lab, "volumes", "lh-gone") is None and lh_get(lab, "volumes", "lh-broken") is None


def test_timeout(lab, sim, tmp_path):
    # 1 TiB at the simulated 4 GiB/s takes ~256 s to restore: an 8 s timeout must expire
    make_backup(lab, sim, "lh-big", "big", size=1024 * GI)
    lose_volumes(lab, ["lh-big"])
    t0 = time.monotonic()
    r = run_module(lab, tmp_path, {"volumes": ["lh-big"], "timeout": 8})
    assert time.monotonic() - t0 < 60
    assert r["failed"] is True
    v = by_name(r)["lh-big"]
    assert v["status"] == "failed" and "timed out after 8s" in v["reason"], v
    assert "state=attached" in v["reason"] and "restoreRequired=true" in v["reason"]
    assert 8 <= v["duration_s"] < 40
    assert lh_get(lab, "volumes", "lh-big") is not None   # left in place, as documented


def test_rbac_error_with_least_privilege_credential(lab, sim, tmp_path):
    make_backup(lab, sim, "lh-rbac", "rbac")
    lose_volumes(lab, ["lh-rbac"])
    r = run_module(lab, tmp_path, {"volumes": ["lh-rbac"]}, kubeconfig=lab["DR_KUBECONFIG_LIMITED"])
    assert r["failed"] is True
    text = r["msg"] + json.dumps(r.get("volumes", []))
    assert "403" in text and "Forbidden" in text, r["msg"]
    assert "backupvolumes" in text or "volumes.longhorn.io" in text or "Volume" in text
    assert lh_get(lab, "volumes", "lh-rbac") is None
    token = open(lab["DR_LIMITED_TOKEN_FILE"]).read().strip()
    assert token not in json.dumps(r)

    # allowed to read BackupVolumes/Backups/Volumes but not to create Volumes:
    # the lookup works and the volume fails with the API's 403, nothing is created
    from kubernetes import client
    rbac = client.RbacAuthorizationV1Api(lab["_api"])
    sa_ns, sa_name = lab["LAB_LIMITED_SA"].split("/")
    rname = f"lh-read-{uuid.uuid4().hex[:6]}"
    rbac.create_namespaced_role(NS, {"metadata": {"name": rname}, "rules": [
        {"apiGroups": ["longhorn.io"], "resources": ["backupvolumes", "backups", "volumes"],
         "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding(NS, {"metadata": {"name": rname},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": rname},
        "subjects": [{"kind": "ServiceAccount", "namespace": sa_ns, "name": sa_name}]})
    try:
        r = wait_until(lambda: (lambda x: x if "lh-rbac" in by_name(x) else None)(
            run_module(lab, tmp_path, {"volumes": ["lh-rbac"]}, kubeconfig=lab["DR_KUBECONFIG_LIMITED"])),
            timeout=30, interval=1, what="RBAC read grant effective")
        v = by_name(r)["lh-rbac"]
        assert r["failed"] is True and v["status"] == "failed", v
        assert v["reason"].startswith("cannot create Volume longhorn-system/lh-rbac from backup ")
        assert "403" in v["reason"] and v["backup_url"]
        assert lh_get(lab, "volumes", "lh-rbac") is None
        assert token not in json.dumps(r)
    finally:
        rbac.delete_namespaced_role_binding(rname, NS)
        rbac.delete_namespaced_role(rname, NS)


def test_check_mode_plans_only_and_selector(lab, sim, tmp_path):
    make_backup(lab, sim, "lh-sel-a", "a", labels={"dr-exercise": "true"})
    make_backup(lab, sim, "lh-sel-b", "b", labels={"dr-exercise": "true"})
    make_backup(lab, sim, "lh-sel-c", "c", labels={"dr-exercise": "false"})
    lose_volumes(lab, ["lh-sel-a", "lh-sel-b", "lh-sel-c"])
    r = run_module(lab, tmp_path, {"selector": "dr-exercise=true"}, check=True)
    assert not r.get("failed"), r.get("msg")
    assert r["changed"] is True
    assert sorted(by_name(r)) == ["lh-sel-a", "lh-sel-b"]
    assert all(v["status"] == "planned" and v["backup_url"] for v in r["volumes"])
    time.sleep(1)
    assert lh_get(lab, "volumes", "lh-sel-a") is None and lh_get(lab, "volumes", "lh-sel-b") is None


def test_create_pvc_binds_the_well_known_claim(lab, sim, tmp_path):
    make_backup(lab, sim, "lh-pvc", "pvc data")
    lose_volumes(lab, ["lh-pvc"])
    c = core(lab)
    try:
        r = run_module(lab, tmp_path, {"volumes": ["lh-pvc"], "create_pvc": {"namespace": "vm-prod"}})
        v = by_name(r)["lh-pvc"]
        assert v["status"] == "restored", v
        assert v["pvc"] == {"namespace": "vm-prod", "name": "lh-pvc", "pv": "created", "pvc": "created"}
        pv = c.read_persistent_volume("lh-pvc")
        assert pv.spec.csi.driver == "driver.longhorn.io" and pv.spec.csi.volume_handle == "lh-pvc"
        # the lab's real kube-controller-manager binds the claim to the PV
        wait_until(lambda: c.read_namespaced_persistent_volume_claim("lh-pvc", "vm-prod").status.phase == "Bound",
                   timeout=60, what="PVC Bound")
        again = run_module(lab, tmp_path, {"volumes": ["lh-pvc"], "create_pvc": {"namespace": "vm-prod"}})
        assert again["changed"] is False and by_name(again)["lh-pvc"]["pvc"]["pvc"] == "exists"
    finally:
        for fn, args in ((c.delete_namespaced_persistent_volume_claim, ("lh-pvc", "vm-prod")),
                         (c.delete_persistent_volume, ("lh-pvc",))):
            try:
                fn(*args)
            except Exception:
                pass


# ---------------------------------------------------------------- the exercise

def run_exercise(lab, sim, tmp_path, extra):
    cluster = os.path.join(REPO, "tests", "lab", "cluster")
    local = os.path.join(str(tmp_path), "local")
    ev = {
        "longhorn_dr_exercise_cluster": "lab-dr",
        "longhorn_dr_exercise_kubeconfig": lab["DR_KUBECONFIG"],
        "longhorn_dr_exercise_create_volume": True,
        "longhorn_dr_exercise_volume": "dr-exercise-data",
        "longhorn_dr_exercise_data_mode": "directory",
        "longhorn_dr_exercise_data_path": sim.data + "/volumes/{{ _lh_volume_uid }}",
        "longhorn_dr_exercise_destroy_cmd": [cluster, "dr", "down", "--wipe"],
        "longhorn_dr_exercise_rebuild_cmd": [cluster, "dr", "up"],
        "longhorn_dr_exercise_cmd_chdir": REPO,
        "longhorn_dr_exercise_wait_deployments": [],
        "longhorn_dr_exercise_local_dir": local,
        "longhorn_dr_exercise_poll_delay": 1,
        "longhorn_dr_exercise_api_timeout": 300,
        "longhorn_dr_exercise_restore_timeout": 120,
    }
    ev.update(extra)
    evf = os.path.join(str(tmp_path), "exercise-vars.json")
    with open(evf, "w") as f:
        json.dump(ev, f)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               LAB_NAME=lab["LAB_NAME"], PATH=os.path.join(lab["LAB_VENV"], "bin") + ":" + os.environ["PATH"])
    p = subprocess.run([os.path.join(lab["LAB_VENV"], "bin", "ansible-playbook"), "-i", "localhost,",
                        os.path.join(REPO, "playbooks", "exercise", "longhorn_dr_exercise.yml"), "-e", "@" + evf,
                        "-e", "ansible_python_interpreter=" + os.path.join(lab["LAB_VENV"], "bin", "python3")],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    report = os.path.join(local, "report-lab-dr-last.json")
    with open(os.path.join(str(tmp_path), "exercise.log"), "w") as f:
        f.write(p.stdout + p.stderr)
    assert os.path.exists(report), f"no report written:\n{p.stdout[-4000:]}\n{p.stderr[-2000:]}"
    with open(report) as f:
        return p, json.load(f)


def test_exercise_end_to_end_destroys_and_rebuilds_dr(lab, sim, tmp_path):
    p, rep = run_exercise(lab, sim, tmp_path, {})
    assert p.returncode == 0, p.stdout[-4000:]
    assert rep["result"] == "passed"
    phases = [ph["phase"] for ph in rep["phases"]]
    assert phases == ["preflight", "setup", "write_sentinel", "backup", "destroy", "rebuild", "wait_ready",
                      "restore", "verify"]
    assert all(ph["status"] == "passed" and float(ph["duration_s"]) >= 0 for ph in rep["phases"])
    assert "=== Longhorn DR exercise: PASSED ===" in p.stdout
    (vol,) = [v for v in rep["restore"] if v["name"] == "dr-exercise-data"]
    assert vol["status"] == "restored" and vol["backup_name"] == rep["backup"]
    # the cluster was really wiped: the restored Volume is a new object whose data
    # came from the backup store, and it holds the sentinel with the local checksum
    new = lh_get(lab, "volumes", "dr-exercise-data")
    state = json.load(open(os.path.join(str(tmp_path), "local", "state-lab-dr.json")))
    assert new["metadata"]["uid"] != state["volume_uid"]
    assert new["spec"]["fromBackup"] == rep["backup_url"]
    import hashlib
    with open(os.path.join(sim.volume_dir(new), "sentinel.txt"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == state["sentinel_sha256"] == rep["sentinel_sha256"]


def test_exercise_failure_names_phase_and_recovery(lab, sim, tmp_path):
    cluster = os.path.join(REPO, "tests", "lab", "cluster")
    try:
        p, rep = run_exercise(lab, sim, tmp_path, {"longhorn_dr_exercise_rebuild_cmd": ["/bin/false"],
                                                   "longhorn_dr_exercise_phases":
                                                   ["preflight", "setup", "destroy", "rebuild", "verify"]})
    finally:
        subprocess.run([cluster, "dr", "up"], env=dict(os.environ, LAB_NAME=lab["LAB_NAME"]),
                       capture_output=True, timeout=600, check=True)
    assert p.returncode != 0
    assert rep["result"] == "failed" and rep["failed_phase"] == "rebuild"
    assert [ph["phase"] for ph in rep["phases"]] == ["preflight", "setup", "destroy", "rebuild"]
    assert rep["phases"][-1]["status"] == "failed"
    assert "Phase 4 failure" in rep["recovery"] and "/bin/false" in rep["recovery"]
    assert "DR exercise FAILED in phase rebuild" in p.stdout
