"""test_nfs_rsync_sync.py - lab tests of ocpv.dr.nfs_rsync_sync.

Everything goes through REAL ansible-playbook: the task is delegated to the
lab storage host nfs-primary (a network namespace with its own sshd), so
Ansible copies the static binary into nfs-primary's remote temp dir and runs
it there; the module then runs REAL rsync over REAL ssh to nfs-dr.  The lab's
storage hosts share this machine's file system, so the tests prepare source
data and check what arrived by reading the export directories directly
(sha256 of every file, symlink targets, modes).

Each test works in its own namespace-like prefix (uuid), so tests and lab
users do not see each other's volumes.

Run:  LAB_ENV=tests/lab/.state-<name>/env $LAB_VENV/bin/pytest tests/integration/test_nfs_rsync_sync.py
      (the module must be installed: meson install -C <build> --tags modules)
"""
import calendar
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest
import yaml

import _modrun

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: sync
      ocpv.dr.nfs_rsync_sync:
      args: "{{ mod_args }}"
      delegate_to: "{{ on_host }}"
      register: r
      ignore_errors: true
    - name: save result
      ansible.builtin.copy:
        content: "{{ r | to_json }}"
        dest: "{{ out_file }}"
      check_mode: false
"""


@pytest.fixture(scope="module")
def lab(lab, tmp_path_factory):
    """conftest's lab (a missing lab fails) plus this module's binary and export roots."""
    env = dict(lab)
    # the binary under test (NFS_RSYNC_SYNC_BIN, default: the installed one)
    # in a private copy of the collection
    env["COLLECTIONS_PATH"] = str(_modrun.private_collection(
        tmp_path_factory.mktemp("coll"), "nfs_rsync_sync", "NFS_RSYNC_SYNC_BIN"))
    with open(env["LAB_INVENTORY"]) as f:
        inv = yaml.safe_load(f)
    env["PRIMARY_ROOT"] = inv["all"]["children"]["primary_nfs_server"]["hosts"]["nfs-primary"]["export_root"]
    env["DR_ROOT"] = inv["all"]["children"]["dr_nfs_server"]["hosts"]["nfs-dr"]["export_root"]
    env["PLAYBOOK_BIN"] = os.path.join(env["LAB_VENV"], "bin", "ansible-playbook")
    assert os.access(env["PLAYBOOK_BIN"], os.X_OK), env["PLAYBOOK_BIN"]
    return env


@pytest.fixture
def prefix(lab):
    """A unique directory prefix; everything under it is removed afterwards."""
    p = "t" + uuid.uuid4().hex[:10]
    yield p
    for root in (lab["PRIMARY_ROOT"], lab["DR_ROOT"]):
        for name in os.listdir(root):
            if name.startswith(p):
                path = os.path.join(root, name)
                if os.path.islink(path) or not os.path.isdir(path):
                    os.unlink(path)
                else:
                    shutil.rmtree(path)


# ---------------------------------------------------------------- helpers
def profiles(lab):
    common = {"primary_server": lab["NFS_PRIMARY_ADDR"], "dr_server": lab["NFS_DR_ADDR"],
              "primary_export": lab["PRIMARY_ROOT"], "dr_export": lab["DR_ROOT"]}
    return {"nfs-subdir": dict(common), "nfs-dynamic": dict(common),
            "nfs-csi": dict(common, type="nfs-csi")}


def subdir_pv(lab, ns, pvc, pv):
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv, "uid": str(uuid.uuid4()), "resourceVersion": "42"},
            "spec": {"storageClassName": "nfs-subdir", "persistentVolumeReclaimPolicy": "Delete",
                     "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                     "claimRef": {"namespace": ns, "name": pvc},
                     "nfs": {"server": lab["NFS_PRIMARY_ADDR"],
                             "path": f"{lab['PRIMARY_ROOT']}/{ns}-{pvc}-{pv}"}}}


def filled_subdir_volume(lab, prefix, pvc, pv, seed):
    """An nfs-subdir PV (subdir_pv) whose primary directory holds fill(seed)'s
    tree; returns (pv, primary directory, DR directory)."""
    rel = f"{prefix}-{pvc}-{pv}"
    fill(f"{lab['PRIMARY_ROOT']}/{rel}", seed)
    return subdir_pv(lab, prefix, pvc, pv), f"{lab['PRIMARY_ROOT']}/{rel}", f"{lab['DR_ROOT']}/{rel}"


def dynamic_pv(lab, name, rel):
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"storageClassName": "nfs-dynamic", "persistentVolumeReclaimPolicy": "Delete",
                     "nfs": {"server": lab["NFS_PRIMARY_ADDR"], "path": f"{lab['PRIMARY_ROOT']}/{rel}"}}}


def csi_pv(lab, name, share_rel, subdir):
    share = f"{lab['PRIMARY_ROOT']}/{share_rel}"
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"storageClassName": "nfs-csi", "persistentVolumeReclaimPolicy": "Delete",
                     "csi": {"driver": "nfs.csi.k8s.io",
                             "volumeHandle": f"{lab['NFS_PRIMARY_ADDR']}#{share.strip('/')}#{subdir}##",
                             "volumeAttributes": {"server": lab["NFS_PRIMARY_ADDR"], "share": share,
                                                  "subdir": subdir}}}}


def fill(path, seed, nfiles=5):
    """Writes a small tree with random data, a subdir, an empty dir, a
    relative symlink and a name with spaces."""
    os.makedirs(os.path.join(path, "sub", "deeper"), exist_ok=True)
    os.makedirs(os.path.join(path, "empty"), exist_ok=True)
    for i in range(nfiles):
        with open(os.path.join(path, f"f{i}.bin"), "wb") as f:
            f.write(os.urandom(1000 + 997 * i))
    with open(os.path.join(path, "sub", "deeper", "disk image.qcow2"), "wb") as f:
        f.write(os.urandom(200_000) + seed.encode())
    os.chmod(os.path.join(path, "f0.bin"), 0o640)
    os.symlink("sub/deeper/disk image.qcow2", os.path.join(path, "link"))


def tree_digest(path):
    """{relative path: sha256 | 'dir mode' | 'link -> target'} of a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):    # links to directories are in dirnames
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, path)
            if os.path.islink(full):
                out[rel] = "link -> " + os.readlink(full)
            elif os.path.isdir(full):
                out[rel] = "dir %o" % (os.stat(full).st_mode & 0o7777)
            else:
                with open(full, "rb") as f:
                    out[rel] = "%s %o" % (hashlib.sha256(f.read()).hexdigest(), os.stat(full).st_mode & 0o7777)
    return out


def run_module(lab, args, check=False, verbose=False, host="nfs-primary"):
    """Runs the module through ansible-playbook delegated to `host`
    (nfs-primary; nfs-dr for state=inspect); returns the registered result
    (and ansible-playbook's output when verbose, run with -vvv)."""
    base = {"dr_host": lab["NFS_DR_ADDR"], "dr_user": "root", "ssh_key": lab["LAB_SSH_KEY"],
            "known_hosts": lab["LAB_KNOWN_HOSTS"]}
    base.update(args)
    with tempfile.TemporaryDirectory() as td:
        pb = os.path.join(td, "pb.yml")
        with open(pb, "w") as f:
            f.write(PLAYBOOK)
        out = os.path.join(td, "out.json")
        varsf = os.path.join(td, "vars.json")
        with open(varsf, "w") as f:
            json.dump({"mod_args": base, "out_file": out, "on_host": host}, f)
        cmd = [lab["PLAYBOOK_BIN"], "-i", lab["LAB_INVENTORY"], pb, "-e", "@" + varsf]
        if check:
            cmd.append("--check")
        if verbose:
            cmd.append("-vvv")
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                   ANSIBLE_COLLECTIONS_PATH=lab["COLLECTIONS_PATH"])
        p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        with open(out) as f:
            r = json.load(f)
    return (r, p.stdout) if verbose else r


def dr_sshd_log(lab):
    return os.path.join(lab.get("LAB_STATE_DIR") or os.path.dirname(lab["LAB_INVENTORY"]),
                        "logs", "sshd-nfs-dr.log")


def by_name(r):
    return {v["name"]: v for v in r["volumes"]}


# ---------------------------------------------------------------- tests
def rfc3339(v):
    """Seconds since the epoch of a module's RFC 3339 UTC stamp (2026-12-03T13:00:07Z)."""
    assert isinstance(v, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v), v
    return calendar.timegm(time.strptime(v, "%Y-%m-%dT%H:%M:%SZ"))


def test_sync_byte_identical_then_idempotent(lab, prefix):
    ns = prefix
    vols = [subdir_pv(lab, ns, "disk0", "pv-a"), dynamic_pv(lab, "pv-b", f"{prefix}-dyn/nested/vol"),
            csi_pv(lab, "pv-c", f"{prefix}-csi", "pvc-c")]
    srcs = {"pv-a": f"{lab['PRIMARY_ROOT']}/{ns}-disk0-pv-a",
            "pv-b": f"{lab['PRIMARY_ROOT']}/{prefix}-dyn/nested/vol",
            "pv-c": f"{lab['PRIMARY_ROOT']}/{prefix}-csi/pvc-c"}
    for name, src in srcs.items():
        fill(src, name)
    os.makedirs(f"{lab['DR_ROOT']}/{prefix}-csi", exist_ok=True)

    log = dr_sshd_log(lab)
    log_size = os.path.getsize(log)
    t0 = int(time.time())
    r, out = run_module(lab, {"volumes": vols, "storage_profiles": profiles(lab), "parallel": 3},
                        verbose=True)
    t1 = int(time.time())
    assert not r.get("failed"), r.get("msg")
    # the storage host's clock, and each volume's rsync window (the RPO basis
    # of issue #16: the data on DR is at least as fresh as started_at)
    host_time = rfc3339(r["host_time"])
    assert t0 - 5 <= host_time <= t1 + 5, r["host_time"]
    # the static binary was copied to nfs-primary's remote temp dir and run
    # there, and it was nfs-primary (not this host) that logged in to nfs-dr
    assert "ESTABLISH SSH CONNECTION FOR USER: root" in out and f"{lab['NFS_PRIMARY_ADDR']}" in out
    assert "/.ansible/tmp/ansible-tmp-" in out and "/nfs_rsync_sync" in out
    with open(log) as f:
        f.seek(log_size)
        assert f"Accepted publickey for root from {lab['NFS_PRIMARY_ADDR']} " in f.read()
    assert r["changed"] is True
    assert r["summary"] == {"total": 3, "ok": 3, "failed": 0, "skipped": 0, "changed": 3}
    res = by_name(r)
    for name, src in srcs.items():
        dest = src.replace(lab["PRIMARY_ROOT"], lab["DR_ROOT"], 1)
        assert tree_digest(dest) == tree_digest(src), name
        v = res[name]
        assert v["ok"] and v["synced"] and v["changed"] and v["rc"] == 0 and v["error"] is None
        assert v["files_transferred"] == 6
        assert v["bytes_sent"] > 200_000
        assert v["dest"] == f"root@{lab['NFS_DR_ADDR']}:{dest}"
        assert t0 - 5 <= rfc3339(v["started_at"]) <= rfc3339(v["finished_at"]) <= host_time + 1, v
    # the DR PVs point at the DR export, Retain
    pvs = {p["metadata"]["name"]: p for p in r["pvs"]}
    assert set(pvs) == {"pv-a", "pv-b", "pv-c"}
    assert pvs["pv-a"]["spec"]["nfs"] == {"server": lab["NFS_DR_ADDR"],
                                          "path": f"{lab['DR_ROOT']}/{ns}-disk0-pv-a"}
    assert pvs["pv-b"]["spec"]["nfs"]["path"] == f"{lab['DR_ROOT']}/{prefix}-dyn/nested/vol"
    csi = pvs["pv-c"]["spec"]["csi"]
    assert csi["volumeAttributes"]["server"] == lab["NFS_DR_ADDR"]
    assert csi["volumeAttributes"]["share"] == f"{lab['DR_ROOT']}/{prefix}-csi"
    assert csi["volumeHandle"] == f"{lab['NFS_DR_ADDR']}#{lab['DR_ROOT'].strip('/')}/{prefix}-csi#pvc-c##"
    assert all(p["spec"]["persistentVolumeReclaimPolicy"] == "Retain" for p in r["pvs"])

    # second run: nothing to do
    r2 = run_module(lab, {"volumes": vols, "storage_profiles": profiles(lab), "verify": "checksum"})
    assert not r2.get("failed"), r2.get("msg")
    assert r2["changed"] is False
    for v in r2["volumes"]:
        assert v["changed"] is False and v["items_changed"] == 0 and v["files_transferred"] == 0
        assert v["verified"] is True


def test_deletions_propagate_only_inside_the_volume(lab, prefix):
    pv, src, dest = filled_subdir_volume(lab, prefix, "d", "pv-del", "x")
    r = run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab)})
    assert not r.get("failed"), r.get("msg")
    # things on DR that are NOT part of this volume must survive
    sibling = f"{lab['DR_ROOT']}/{prefix}-sibling"
    os.makedirs(sibling)
    with open(f"{sibling}/keep", "w") as f:
        f.write("keep")
    with open(f"{lab['DR_ROOT']}/{prefix}-rootfile", "w") as f:
        f.write("keep")
    os.unlink(f"{src}/f3.bin")
    shutil.rmtree(f"{src}/sub/deeper")
    r = run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab)})
    assert not r.get("failed"), r.get("msg")
    v = r["volumes"][0]
    assert r["changed"] is True and v["changed"] is True
    assert v["files_deleted"] == 3       # f3.bin, deeper/ and the file in it (the link stays, dangling)
    assert tree_digest(dest) == tree_digest(src)
    assert not os.path.exists(f"{dest}/f3.bin")
    assert open(f"{sibling}/keep").read() == "keep"
    assert open(f"{lab['DR_ROOT']}/{prefix}-rootfile").read() == "keep"


def test_batched_volumes_keep_per_volume_results(lab, prefix):
    """One rsync for five volumes (batch: 5), among them a nested directory:
    figures, changes and deletions are still told per volume, --delete stays
    inside each volume dir, and batch: 1 gives the same outcome."""
    vols = [subdir_pv(lab, prefix, f"b{i}", f"pv-b{i}") for i in range(4)]
    vols.append(dynamic_pv(lab, "pv-nest", f"{prefix}-dyn/nested/vol"))
    srcs = {f"pv-b{i}": f"{lab['PRIMARY_ROOT']}/{prefix}-b{i}-pv-b{i}" for i in range(4)}
    srcs["pv-nest"] = f"{lab['PRIMARY_ROOT']}/{prefix}-dyn/nested/vol"
    for name, src in srcs.items():
        fill(src, name)
    dests = {n: s.replace(lab["PRIMARY_ROOT"], lab["DR_ROOT"], 1) for n, s in srcs.items()}
    args = {"volumes": vols, "storage_profiles": profiles(lab), "parallel": 2, "batch": 5}

    r = run_module(lab, args)
    assert not r.get("failed"), r.get("msg")
    res = by_name(r)
    for name in srcs:
        v = res[name]
        assert v["batched"] is True and v["ok"] and v["changed"] and v["rc"] == 0, v
        assert v["files_transferred"] == 6 and v["bytes_sent"] > 200_000, v
        assert tree_digest(dests[name]) == tree_digest(srcs[name]), name

    # things on DR that are not volumes, also beside the nested volume, survive
    keep = [f"{lab['DR_ROOT']}/{prefix}-sibling/keep", f"{lab['DR_ROOT']}/{prefix}-dyn/nested/keep",
            f"{lab['DR_ROOT']}/{prefix}-rootfile"]
    for k in keep:
        os.makedirs(os.path.dirname(k), exist_ok=True)
        with open(k, "w") as f:
            f.write("keep")
    os.unlink(f"{srcs['pv-b1']}/f3.bin")                # 3 deletions in pv-b1
    shutil.rmtree(f"{srcs['pv-b1']}/sub/deeper")
    with open(f"{srcs['pv-nest']}/f1.bin", "ab") as f:  # 1 changed file in pv-nest
        f.write(b"more")

    r = run_module(lab, args)
    assert not r.get("failed"), r.get("msg")
    res = by_name(r)
    assert r["summary"]["changed"] == 2
    assert res["pv-b1"]["changed"] and res["pv-b1"]["files_deleted"] == 3
    assert res["pv-b1"]["files_transferred"] == 0
    assert res["pv-nest"]["changed"] and res["pv-nest"]["files_transferred"] == 1
    assert res["pv-nest"]["files_deleted"] == 0
    for name in ("pv-b0", "pv-b2", "pv-b3"):
        assert res[name]["changed"] is False and res[name]["items_changed"] == 0, res[name]
    for name in srcs:
        assert tree_digest(dests[name]) == tree_digest(srcs[name]), name
    for k in keep:
        assert open(k).read() == "keep", k

    r = run_module(lab, dict(args, batch=1))
    assert not r.get("failed"), r.get("msg")
    assert r["changed"] is False
    assert not any(v["batched"] for v in r["volumes"])


def test_traversal_and_symlink_escapes_refused(lab, prefix):
    outside_p = tempfile.mkdtemp(prefix="nfs-outside-")
    outside_d = tempfile.mkdtemp(prefix="nfs-outside-dr-")
    try:
        with open(f"{outside_p}/secret", "w") as f:
            f.write("must not be copied")
        good = dynamic_pv(lab, "pv-good", f"{prefix}-good")
        fill(f"{lab['PRIMARY_ROOT']}/{prefix}-good", "g")
        dotdot = dynamic_pv(lab, "pv-dotdot", f"{prefix}-x/../../../etc")
        # source volume dir is a symlink leading out of the primary export
        os.symlink(outside_p, f"{lab['PRIMARY_ROOT']}/{prefix}-srclink")
        srclink = dynamic_pv(lab, "pv-srclink", f"{prefix}-srclink")
        # destination on DR is a symlink leading out of the DR export
        fill(f"{lab['PRIMARY_ROOT']}/{prefix}-dstlink", "d")
        os.symlink(outside_d, f"{lab['DR_ROOT']}/{prefix}-dstlink")
        dstlink = dynamic_pv(lab, "pv-dstlink", f"{prefix}-dstlink")
        # destination on DR is a symlink to ANOTHER volume inside the DR export
        fill(f"{lab['PRIMARY_ROOT']}/{prefix}-alias", "a")
        os.makedirs(f"{lab['DR_ROOT']}/{prefix}-victim")
        with open(f"{lab['DR_ROOT']}/{prefix}-victim/precious", "w") as f:
            f.write("other volume's data")
        os.symlink(f"{prefix}-victim", f"{lab['DR_ROOT']}/{prefix}-alias")
        alias = dynamic_pv(lab, "pv-alias", f"{prefix}-alias")
        csi_escape = csi_pv(lab, "pv-csi-escape", f"{prefix}-csi", "../../../../tmp")
        root_itself = dynamic_pv(lab, "pv-root", "")

        r = run_module(lab, {"volumes": [dotdot, good, srclink, dstlink, alias, csi_escape, root_itself],
                             "storage_profiles": profiles(lab)})
        assert r["failed"] is True
        assert "6 of 7 volume(s) failed" in r["msg"]
        res = by_name(r)
        assert "'..' is not allowed" in res["pv-dotdot"]["error"]
        assert "spec.nfs.path" in res["pv-dotdot"]["error"]
        assert "outside the export root" in res["pv-srclink"]["error"]
        assert "outside the export root" in res["pv-dstlink"]["error"]
        assert lab["NFS_DR_ADDR"] in res["pv-dstlink"]["error"]
        assert "a symlink inside the export" in res["pv-alias"]["error"]
        assert open(f"{lab['DR_ROOT']}/{prefix}-victim/precious").read() == "other volume's data"
        assert os.listdir(f"{lab['DR_ROOT']}/{prefix}-victim") == ["precious"]
        assert "'..' is not allowed" in res["pv-csi-escape"]["error"]
        assert "export root itself" in res["pv-root"]["error"]
        for n in ("pv-dotdot", "pv-srclink", "pv-dstlink", "pv-alias", "pv-csi-escape", "pv-root"):
            assert res[n]["ok"] is False and res[n]["rc"] is None
        # nothing was written outside the DR export, the good volume still synced
        assert os.listdir(outside_d) == []
        assert res["pv-good"]["ok"] and res["pv-good"]["synced"]
        assert [p["metadata"]["name"] for p in r["pvs"]] == ["pv-good"]
        assert tree_digest(f"{lab['DR_ROOT']}/{prefix}-good") == tree_digest(f"{lab['PRIMARY_ROOT']}/{prefix}-good")
    finally:
        shutil.rmtree(outside_p)
        shutil.rmtree(outside_d)


def test_broken_volume_does_not_stop_the_rest(lab, prefix):
    vols = []
    for i in range(6):
        vols.append(subdir_pv(lab, prefix, f"c{i}", f"pv{i}"))
        fill(f"{lab['PRIMARY_ROOT']}/{prefix}-c{i}-pv{i}", str(i), nfiles=2)
    missing = subdir_pv(lab, prefix, "gone", "pv-missing")           # no source dir
    unknown = dynamic_pv(lab, "pv-unknown", f"{prefix}-u")
    unknown["spec"]["storageClassName"] = "ceph-rbd"
    # DR side: an immutable file rsync must replace -> rsync fails for this
    # volume (alone and inside a batch)
    fill(f"{lab['PRIMARY_ROOT']}/{prefix}-c9-pv9", "9", nfiles=1)
    stuck = f"{lab['DR_ROOT']}/{prefix}-c9-pv9/f0.bin"
    os.makedirs(os.path.dirname(stuck))
    with open(stuck, "w") as f:
        f.write("in the way")
    subprocess.run(["chattr", "+i", stuck], check=True)
    blocked = subdir_pv(lab, prefix, "c9", "pv9")
    vols[3:3] = [missing, blocked, unknown]

    try:
        r = run_module(lab, {"volumes": vols, "storage_profiles": profiles(lab), "parallel": 4,
                             "fail_on_error": False})
    finally:
        subprocess.run(["chattr", "-i", stuck], check=True)
    assert not r.get("failed"), r.get("msg")
    res = by_name(r)
    assert "does not exist" in res["pv-missing"]["error"]
    assert "storage class 'ceph-rbd' has no entry" in res["pv-unknown"]["error"]
    assert res["pv9"]["rc"] not in (None, 0) and "rsync exited with status" in res["pv9"]["error"]
    assert res["pv9"]["stderr_tail"]
    assert r["summary"]["failed"] == 3 and r["summary"]["ok"] == 6
    # 7 runnable volumes, parallel 4: batches (pv0 pv1) (pv2 pv9) (pv3 pv4)
    # and pv5 alone; pv9 broke its batch and was re-run alone, its batch
    # partner pv2 still synced (checked below)
    assert res["pv9"]["batched"] is True and res["pv2"]["batched"] is True
    assert [res[f"pv{i}"]["batched"] for i in range(6)] == [True] * 5 + [False]
    assert any("3 of 9 volume(s) failed" in w for w in r.get("warnings", []))
    for i in range(6):
        assert res[f"pv{i}"]["synced"] is True
        assert tree_digest(f"{lab['DR_ROOT']}/{prefix}-c{i}-pv{i}") == \
            tree_digest(f"{lab['PRIMARY_ROOT']}/{prefix}-c{i}-pv{i}")
    assert sorted(p["metadata"]["name"] for p in r["pvs"]) == [f"pv{i}" for i in range(6)]

    # on_unknown: skip turns the unknown class into a skip, not an error
    r = run_module(lab, {"volumes": [unknown], "storage_profiles": profiles(lab), "on_unknown": "skip"})
    assert not r.get("failed") and r["volumes"][0]["skipped"] is True and r["changed"] is False


def test_check_mode_changes_nothing(lab, prefix):
    pv, src, dest = filled_subdir_volume(lab, prefix, "chk", "pv-chk", "c")
    r = run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab)}, check=True)
    assert not r.get("failed"), r.get("msg")
    assert r["changed"] is True and r["volumes"][0]["changed"] is True
    assert r["volumes"][0]["synced"] is False
    assert not os.path.exists(dest)
    # real sync, then a pending deletion + modification in check mode
    run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab)})
    before = tree_digest(dest)
    os.unlink(f"{src}/f1.bin")
    with open(f"{src}/f2.bin", "ab") as f:
        f.write(b"more")
    r = run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab)}, check=True)
    assert r["changed"] is True and r["volumes"][0]["files_deleted"] == 1
    assert tree_digest(dest) == before

    # silent corruption on DR (same size, same mtime): only checksums see it;
    # check mode + verify=checksum reports it and still writes nothing
    run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab)})
    victim = f"{dest}/f0.bin"
    st = os.stat(victim)
    with open(victim, "r+b") as f:
        b = f.read(1)
        f.seek(0)
        f.write(bytes([b[0] ^ 0xFF]))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    corrupted = tree_digest(dest)
    r = run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab)}, check=True)
    assert r["changed"] is False and r["volumes"][0]["items_changed"] == 0   # quick check is blind
    r = run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab), "verify": "checksum"},
                   check=True)
    v = r["volumes"][0]
    assert r["changed"] is True and v["items_changed"] == 1 and v["verified"] is False
    assert tree_digest(dest) == corrupted


def test_unreachable_dr_host_and_bad_key(lab, prefix):
    pvs = [subdir_pv(lab, prefix, f"u{i}", f"pv-u{i}") for i in range(3)]
    for i in range(3):
        fill(f"{lab['PRIMARY_ROOT']}/{prefix}-u{i}-pv-u{i}", "u", nfiles=1)
    net = lab["NFS_DR_ADDR"].rsplit(".", 1)[0]
    r = run_module(lab, {"volumes": pvs, "storage_profiles": profiles(lab),
                         "dr_host": f"{net}.250", "connect_timeout": 2})
    assert r["failed"] is True and "3 of 3 volume(s) failed" in r["msg"]
    for v in r["volumes"]:
        assert v["rc"] == 255 and f"cannot connect to DR host {net}.250" in v["error"], v
    assert r["pvs"] == []

    # a key the DR host does not accept: authentication failure per volume
    with tempfile.TemporaryDirectory() as td:
        key = os.path.join(td, "wrong_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        for multiplex in (True, False):
            r = run_module(lab, {"volumes": pvs, "storage_profiles": profiles(lab), "ssh_key": key,
                                 "ssh_multiplex": multiplex})
            assert r["failed"] is True
            for v in r["volumes"]:
                assert v["rc"] == 255 and "Permission denied" in v["error"], v
    assert not any(os.path.exists(f"{lab['DR_ROOT']}/{prefix}-u{i}-pv-u{i}") for i in range(3))

    # bad option values are refused before anything runs, naming the option
    r = run_module(lab, {"volumes": pvs, "storage_profiles": profiles(lab),
                         "dr_host": "-oProxyCommand=touch /tmp/pwned"})
    assert r["failed"] is True and "dr_host" in r["msg"]
    assert not os.path.exists("/tmp/pwned")


def test_snapshot_dir_and_verify(lab, prefix):
    pv, src, _ = filled_subdir_volume(lab, prefix, "snap", "pv-snap", "live")
    snap = f"{src}/.snapshot/hourly.0"
    fill(snap, "snapshot", nfiles=2)
    r = run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab),
                         "snapshot_dir": ".snapshot/hourly.0", "verify": "checksum"})
    assert not r.get("failed"), r.get("msg")
    v = r["volumes"][0]
    assert v["verified"] is True and v["src"] == os.path.realpath(snap)
    assert tree_digest(f"{lab['DR_ROOT']}/{prefix}-snap-pv-snap") == tree_digest(snap)
    # a snapshot_dir that leaves the volume is refused
    r = run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab), "snapshot_dir": "../x"})
    assert r["failed"] is True and "snapshot_dir" in r["msg"]


def test_absent_removes_only_the_volume_dir(lab, prefix):
    pv, src, dest = filled_subdir_volume(lab, prefix, "rm", "pv-rm", "r")
    r = run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab)})
    assert not r.get("failed"), r.get("msg")
    neighbour = f"{lab['DR_ROOT']}/{prefix}-rm-pv-rm2"     # shares the name prefix
    os.makedirs(neighbour)
    with open(f"{neighbour}/keep", "w") as f:
        f.write("keep")
    shutil.rmtree(src)        # the PV is gone on the primary

    # refused without the caller's confirmation
    r = run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab), "state": "absent"})
    assert r["failed"] is True and "pv_exists_on_primary" in r["msg"]
    r = run_module(lab, {"volumes": [pv], "storage_profiles": profiles(lab), "state": "absent",
                         "pv_exists_on_primary": True})
    assert r["failed"] is True and os.path.isdir(dest)
    # check mode reports, removes nothing
    args = {"volumes": [pv], "storage_profiles": profiles(lab), "state": "absent",
            "pv_exists_on_primary": False}
    r = run_module(lab, args, check=True)
    assert not r.get("failed"), r.get("msg")
    assert r["changed"] is True and r["volumes"][0]["removed"] is True and os.path.isdir(dest)
    # the real thing
    r = run_module(lab, args)
    assert not r.get("failed"), r.get("msg")
    assert r["changed"] is True and r["volumes"][0]["removed"] is True and r["pvs"] == []
    assert not os.path.exists(dest)
    assert open(f"{neighbour}/keep").read() == "keep"
    assert os.path.isdir(lab["DR_ROOT"])
    # again: nothing left to remove
    r = run_module(lab, args)
    assert not r.get("failed") and r["changed"] is False and r["volumes"][0]["removed"] is False

    # a DR volume dir whose PARENT is a symlink out of the export is refused
    outside = tempfile.mkdtemp(prefix="nfs-outside-rm-")
    try:
        os.makedirs(f"{outside}/vol")
        with open(f"{outside}/vol/precious", "w") as f:
            f.write("x")
        os.symlink(outside, f"{lab['DR_ROOT']}/{prefix}-esc")
        esc = dynamic_pv(lab, "pv-esc", f"{prefix}-esc/vol")
        r = run_module(lab, {"volumes": [esc], "storage_profiles": profiles(lab), "state": "absent",
                             "pv_exists_on_primary": False})
        assert r["failed"] is True and "outside the export root" in r["volumes"][0]["error"]
        assert os.path.exists(f"{outside}/vol/precious")
    finally:
        shutil.rmtree(outside)


# ------------------------------------------------- issue 15: items 2 and 5
def test_source_symlink_to_another_volume_refused(lab, prefix):
    """A primary volume directory that is (or runs through) a symlink to
    ANOTHER volume's directory inside the export would sync that volume's data
    as its own: refused, naming the volume, nothing written on DR for it."""
    root, dr = lab["PRIMARY_ROOT"], lab["DR_ROOT"]
    fill(f"{root}/{prefix}-victim", "victim")
    os.makedirs(f"{root}/{prefix}-other/v")
    with open(f"{root}/{prefix}-other/v/secret", "w") as f:
        f.write("other volume's data")
    os.symlink(f"{prefix}-victim", f"{root}/{prefix}-alias")          # the volume dir itself
    os.symlink(f"{prefix}-other", f"{root}/{prefix}-lp")              # a parent component
    fill(f"{root}/{prefix}-good", "good")
    vols = [dynamic_pv(lab, "pv-alias", f"{prefix}-alias"), dynamic_pv(lab, "pv-lp", f"{prefix}-lp/v"),
            dynamic_pv(lab, "pv-good", f"{prefix}-good")]
    for batch in (0, 1):
        r = run_module(lab, {"volumes": vols, "storage_profiles": profiles(lab), "batch": batch})
        assert r["failed"] is True and "2 of 3 volume(s) failed" in r["msg"], r.get("msg")
        res = by_name(r)
        for name, real in (("pv-alias", f"{prefix}-victim"), ("pv-lp", f"{prefix}-other/v")):
            err = res[name]["error"]
            assert err.startswith(f"PV {name}: ") and "a symlink inside the export" in err, err
            assert f"{root}/{real}" in err, err
            assert res[name]["ok"] is False and res[name]["rc"] is None
        assert res["pv-good"]["synced"] is True
        assert [p["metadata"]["name"] for p in r["pvs"]] == ["pv-good"]
        # nothing arrived on DR for the refused volumes
        assert not os.path.lexists(f"{dr}/{prefix}-alias")
        assert not os.path.lexists(f"{dr}/{prefix}-lp")
        assert not os.path.lexists(f"{dr}/{prefix}-victim") and not os.path.lexists(f"{dr}/{prefix}-other")


@pytest.mark.parametrize("batch", [5, 1])
def test_volume_holding_another_volume_is_refused(lab, prefix, batch):
    """A PV at <export>/team must not carry <export>/team/v1 (another volume)
    along: syncing it would copy v1's data as team's and --delete would rule
    over v1's DR directory.  Refused batched or not; v1 and the rest sync."""
    root, dr = lab["PRIMARY_ROOT"], lab["DR_ROOT"]
    fill(f"{root}/{prefix}-team", "team", nfiles=2)
    fill(f"{root}/{prefix}-team/v1", "v1", nfiles=2)
    fill(f"{root}/{prefix}-good", "good", nfiles=2)
    vols = [dynamic_pv(lab, "pv-team", f"{prefix}-team"), dynamic_pv(lab, "pv-v1", f"{prefix}-team/v1"),
            dynamic_pv(lab, "pv-good", f"{prefix}-good")]
    r = run_module(lab, {"volumes": vols, "storage_profiles": profiles(lab), "batch": batch, "parallel": 1})
    assert r["failed"] is True and "1 of 3 volume(s) failed" in r["msg"], r.get("msg")
    res = by_name(r)
    err = res["pv-team"]["error"]
    assert err.startswith("PV pv-team: ") and "contains the directory" in err and "volume pv-v1" in err, err
    assert res["pv-team"]["rc"] is None
    for name in ("pv-v1", "pv-good"):
        assert res[name]["synced"] is True, res[name]
    assert tree_digest(f"{dr}/{prefix}-team/v1") == tree_digest(f"{root}/{prefix}-team/v1")
    # none of team's own files went to DR
    assert sorted(os.listdir(f"{dr}/{prefix}-team")) == ["v1"]


def test_absent_never_removes_another_volume(lab, prefix):
    """state=absent refuses a directory that holds another volume's - one in
    the same call or one still in use (keep_volumes) - and one that IS or lies
    inside a kept volume's directory; the kept data survives, byte for byte."""
    dr = lab["DR_ROOT"]
    for d in ("team/v1", "team/v2", "solo", "shared", "inner/part"):
        fill(f"{dr}/{prefix}-{d}", d, nfiles=1)
    with open(f"{dr}/{prefix}-team/unrelated", "w") as f:
        f.write("not a volume")
    team = dynamic_pv(lab, "pv-team", f"{prefix}-team")
    v1 = dynamic_pv(lab, "pv-v1", f"{prefix}-team/v1")
    v2 = dynamic_pv(lab, "pv-v2", f"{prefix}-team/v2")
    shared_a = dynamic_pv(lab, "pv-shared-a", f"{prefix}-shared")
    shared_b = dynamic_pv(lab, "pv-shared-b", f"{prefix}-shared")
    inner_kept = dynamic_pv(lab, "pv-inner", f"{prefix}-inner")
    part = dynamic_pv(lab, "pv-part", f"{prefix}-inner/part")
    solo = dynamic_pv(lab, "pv-solo", f"{prefix}-solo")
    for v, uid in ((team, "u-team"), (v1, "u-v1"), (solo, "u-solo")):
        v["metadata"]["uid"] = uid
    base = {"storage_profiles": profiles(lab), "state": "absent", "pv_exists_on_primary": False,
            "fail_on_error": False}

    # team, v1 and v2 in one call: v1 and v2 go, team (holding them) stays
    r = run_module(lab, dict(base, volumes=[team, v1, v2]))
    res = by_name(r)
    assert os.path.isfile(f"{dr}/{prefix}-team/unrelated"), "team's directory was removed"
    err = res["pv-team"]["error"]
    assert err and err.startswith("PV pv-team: ") and "contains the directory" in err, err
    assert "volume pv-v" in err and res["pv-team"]["removed"] is False
    assert res["pv-v1"]["removed"] is True and res["pv-v2"]["removed"] is True
    assert sorted(os.listdir(f"{dr}/{prefix}-team")) == ["unrelated"]

    fill(f"{dr}/{prefix}-team/v1", "v1", nfiles=1)
    before = {d: tree_digest(f"{dr}/{prefix}-{d}") for d in ("team", "shared", "inner")}
    # check mode: the pruned PVs are still listed on DR (same uid): no conflict
    r = run_module(lab, dict(base, volumes=[solo], keep_volumes=[solo, v1]), check=True)
    assert not r.get("failed") and r["volumes"][0]["removed"] is True, r
    assert os.path.isdir(f"{dr}/{prefix}-solo")

    r = run_module(lab, dict(base, volumes=[team, shared_a, part, solo],
                             keep_volumes=[v1, shared_b, inner_kept, solo]))
    assert not r.get("failed"), r.get("msg")
    res = by_name(r)
    assert "contains the directory" in res["pv-team"]["error"], res["pv-team"]
    assert "volume pv-v1 (keep_volumes" in res["pv-team"]["error"]
    assert "is also the directory of volume pv-shared-b" in res["pv-shared-a"]["error"]
    assert "lies inside the directory" in res["pv-part"]["error"] and "pv-inner" in res["pv-part"]["error"]
    for n in ("pv-team", "pv-shared-a", "pv-part"):
        assert res[n]["removed"] is False and res[n]["rc"] is None and res[n]["error"].startswith(f"PV {n}: ")
    assert res["pv-solo"]["removed"] is True and not os.path.exists(f"{dr}/{prefix}-solo")
    for d, digest in before.items():
        assert tree_digest(f"{dr}/{prefix}-{d}") == digest, d


def test_layout_depth_refused(lab, prefix):
    """A volume directory outside the profile's layout (path_depth) is refused,
    synced or removed, batched or not; the volumes inside it are served."""
    root, dr = lab["PRIMARY_ROOT"], lab["DR_ROOT"]
    prof = profiles(lab)
    prof["nfs-dynamic"]["path_depth"] = 1
    fill(f"{root}/{prefix}-a", "a", nfiles=1)
    fill(f"{root}/{prefix}-b", "b", nfiles=1)
    fill(f"{root}/{prefix}-x/deep", "deep", nfiles=1)
    vols = [dynamic_pv(lab, "pv-a", f"{prefix}-a"), dynamic_pv(lab, "pv-deep", f"{prefix}-x/deep"),
            dynamic_pv(lab, "pv-b", f"{prefix}-b")]
    for batch in (0, 1):
        r = run_module(lab, {"volumes": vols, "storage_profiles": prof, "batch": batch, "parallel": 1,
                             "fail_on_error": False})
        res = by_name(r)
        err = res["pv-deep"]["error"]
        assert err and "2 level(s) below the export" in err and "path_depth" in err, res["pv-deep"]
        assert res["pv-a"]["synced"] and res["pv-b"]["synced"]
        assert res["pv-a"]["batched"] is (batch == 0)
        assert not os.path.exists(f"{dr}/{prefix}-x")
    # the DR copy of a volume outside the layout is not removed either
    fill(f"{dr}/{prefix}-x/deep", "deep-dr", nfiles=1)
    keep = tree_digest(f"{dr}/{prefix}-x")
    r = run_module(lab, {"volumes": [vols[1]], "storage_profiles": prof, "state": "absent",
                         "pv_exists_on_primary": False})
    assert r["failed"] is True and "path_depth" in r["volumes"][0]["error"]
    assert tree_digest(f"{dr}/{prefix}-x") == keep


def tree_counts(path):
    """(entries, regular files, bytes) below path, symlinks not followed."""
    entries = files = size = 0
    for dirpath, dirnames, filenames in os.walk(path):
        entries += len(dirnames) + len(filenames)
        for fn in filenames:
            st = os.lstat(os.path.join(dirpath, fn))
            if not os.path.islink(os.path.join(dirpath, fn)):
                files += 1
                size += st.st_size
    return entries, files, size


def test_named_classes_rewrite_inspect_and_dr_side_removal(lab, prefix):
    """Classes named `gold` (type nfs-subdir) and `silver-csi` (type nfs-csi): state=rewrite
    returns their DR form without any network or file access, state=inspect (on nfs-dr)
    finds and measures the DR copies by the same mapping, and state=absent with pv_side=dr
    removes a copy given the DR PV - all chosen by the profile's type, never the name."""
    common = {"primary_server": lab["NFS_PRIMARY_ADDR"], "dr_server": lab["NFS_DR_ADDR"],
              "primary_export": lab["PRIMARY_ROOT"], "dr_export": lab["DR_ROOT"]}
    profs = {"gold": dict(common, type="nfs-subdir"), "silver-csi": dict(common, type="nfs-csi", path_depth=1)}
    gold = subdir_pv(lab, prefix, "g0", "pv-g0")
    gold["spec"]["storageClassName"] = "gold"
    gold_missing = subdir_pv(lab, prefix, "g1", "pv-g1")
    gold_missing["spec"]["storageClassName"] = "gold"
    silver = csi_pv(lab, "pv-s0", "", f"{prefix}-s0")
    silver["spec"]["storageClassName"] = "silver-csi"
    bronze = dynamic_pv(lab, "pv-b0", f"{prefix}-b0")
    bronze["spec"]["storageClassName"] = "bronze"          # no profile
    for name, rel in (("pv-g0", f"{prefix}-g0-pv-g0"), ("pv-s0", f"{prefix}-s0")):
        fill(f"{lab['PRIMARY_ROOT']}/{rel}", name)

    # rewrite: no dr_host, no network (an unreachable dr_host would not matter), no files read
    r = run_module(lab, {"state": "rewrite", "volumes": [gold, gold_missing, silver, bronze],
                         "storage_profiles": profs, "on_unknown": "skip", "dr_host": "192.0.2.1"})
    assert not r.get("failed"), r.get("msg")
    assert r["changed"] is False and r["summary"] == {"total": 4, "ok": 3, "failed": 0, "skipped": 1, "changed": 0}
    pvs = {p["metadata"]["name"]: p for p in r["pvs"]}
    assert pvs["pv-g0"]["spec"]["nfs"] == {"server": lab["NFS_DR_ADDR"], "path": f"{lab['DR_ROOT']}/{prefix}-g0-pv-g0"}
    assert pvs["pv-s0"]["spec"]["csi"]["volumeAttributes"]["server"] == lab["NFS_DR_ADDR"]
    assert pvs["pv-s0"]["spec"]["csi"]["volumeAttributes"]["share"] == lab["DR_ROOT"]
    assert all(p["spec"]["persistentVolumeReclaimPolicy"] == "Retain" for p in pvs.values())
    assert not os.path.exists(f"{lab['DR_ROOT']}/{prefix}-g0-pv-g0")
    # the path_pattern check applies to a named class too: a forged path is refused
    forged = json.loads(json.dumps(gold))
    forged["spec"]["nfs"]["path"] = f"{lab['PRIMARY_ROOT']}/{prefix}-other"
    r = run_module(lab, {"state": "rewrite", "volumes": [forged], "storage_profiles": profs,
                         "fail_on_error": False})
    assert r["pvs"] == [] and "path_pattern" in (r["volumes"][0]["error"] or ""), r["volumes"]

    # sync gold + silver-csi, then inspect all four on the DR storage host
    r = run_module(lab, {"volumes": [gold, silver], "storage_profiles": profs})
    assert not r.get("failed"), r.get("msg")
    os.makedirs(f"{lab['DR_ROOT']}/{prefix}-empty", exist_ok=True)
    r = run_module(lab, {"state": "inspect", "volumes": [gold, gold_missing, silver, bronze],
                         "storage_profiles": profs, "on_unknown": "skip", "fail_on_error": False},
                   host="nfs-dr")
    v = by_name(r)
    assert r["changed"] is False
    for name, rel in (("pv-g0", f"{prefix}-g0-pv-g0"), ("pv-s0", f"{prefix}-s0")):
        entries, files, size = tree_counts(f"{lab['DR_ROOT']}/{rel}")
        assert v[name]["ok"] and v[name]["exists"] and v[name]["error"] is None, v[name]
        assert (v[name]["entries"], v[name]["files"], v[name]["bytes"]) == (entries, files, size), v[name]
        assert v[name]["dest"] == f"{lab['DR_ROOT']}/{rel}"
    assert v["pv-g1"]["ok"] is False and v["pv-g1"]["exists"] is False
    assert "no DR copy" in v["pv-g1"]["error"] and "pv-g1" in v["pv-g1"]["error"]
    assert v["pv-b0"]["skipped"] is True
    # fail_on_error (default): a missing copy fails the task, naming it
    r = run_module(lab, {"state": "inspect", "volumes": [gold_missing], "storage_profiles": profs},
                   host="nfs-dr")
    assert r.get("failed") and "pv-g1" in r["msg"], r
    # a DR copy that is a symlink to another volume's directory is not that volume's copy
    os.symlink(f"{lab['DR_ROOT']}/{prefix}-g0-pv-g0", f"{lab['DR_ROOT']}/{prefix}-g1-pv-g1")
    r = run_module(lab, {"state": "inspect", "volumes": [gold_missing], "storage_profiles": profs,
                         "fail_on_error": False}, host="nfs-dr")
    assert r["volumes"][0]["ok"] is False and r["volumes"][0]["entries"] == 0, r["volumes"]
    os.unlink(f"{lab['DR_ROOT']}/{prefix}-g1-pv-g1")

    # pv_side=dr: the DR PV (as rewrite returned it) names the DR export; its copy is removed
    r = run_module(lab, {"state": "absent", "volumes": [pvs["pv-g0"]], "storage_profiles": profs,
                         "pv_side": "dr", "pv_exists_on_primary": False})
    assert not r.get("failed"), r.get("msg")
    assert r["volumes"][0]["removed"] is True
    assert not os.path.exists(f"{lab['DR_ROOT']}/{prefix}-g0-pv-g0")
    assert os.path.isdir(f"{lab['DR_ROOT']}/{prefix}-s0")
    # ... and the primary PV is no DR PV (wrong server/export): refused, nothing removed
    r = run_module(lab, {"state": "absent", "volumes": [silver], "storage_profiles": profs,
                         "pv_side": "dr", "pv_exists_on_primary": False, "fail_on_error": False})
    assert r["volumes"][0]["ok"] is False and os.path.isdir(f"{lab['DR_ROOT']}/{prefix}-s0")
    # pv_side=dr makes no sense for a sync
    r = run_module(lab, {"volumes": [silver], "storage_profiles": profs, "pv_side": "dr"})
    assert r.get("failed") and "pv_side=dr" in r["msg"]
