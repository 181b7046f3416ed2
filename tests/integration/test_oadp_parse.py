"""Lab tests of ocpv.dr.oadp_parse through real ansible-playbook against the
lab's real MinIO.

Backups are written by tests/fixtures/velero/gen_backup.py exactly as Velero
lays them out in object storage (velero-backup.json, the tarball, resource
list, logs, ... side by side) and uploaded with boto3 under a prefix of the
test's own, so tests and people sharing one lab do not see each other's
backups; the prefix is removed afterwards.  The module binary is taken from
OADP_PARSE_BIN (default: the one installed in the repo's collection) and run
from a private copy of the collection (_modrun.py).
"""
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/fixtures/velero"))
import gen_backup  # noqa: E402
import _modrun  # noqa: E402
from conftest import s3_credentials  # noqa: E402

NOW = datetime.now(timezone.utc)


# ------------------------------------------------------------------ lab
# `lab` and `s3_client` are conftest's session fixtures: a missing lab fails.

@pytest.fixture(scope="module")
def creds(lab):
    return s3_credentials(lab)


class Store:
    """A private prefix in the lab bucket; backups generated locally, uploaded."""

    def __init__(self, lab, s3, tmp):
        self.lab, self.s3, self.bucket = lab, s3, lab["S3_BUCKET"]
        self.prefix = f"oadp-test-{uuid.uuid4().hex[:10]}"
        self.local = tmp

    def add(self, name, **kw):
        kw.setdefault("start", NOW - timedelta(hours=1))
        tar = gen_backup.write_backup(str(self.local), name, prefix=self.prefix, **kw)
        bdir = Path(self.local, self.prefix, "backups", name)
        for f in bdir.iterdir():
            self.s3.upload_file(str(f), self.bucket, f"{self.prefix}/backups/{name}/{f.name}")
        return tar

    def s3_args(self, **over):
        a = {"endpoint": self.lab["S3_ENDPOINT"], "region": self.lab.get("S3_REGION", "us-east-1"),
             "bucket": self.bucket, "prefix": self.prefix,
             "credentials_file": self.lab["S3_CREDENTIALS_FILE"]}
        if self.lab["S3_ENDPOINT"].startswith("http://"):
            a["allow_insecure_http"] = True       # a lab MinIO without TLS: opted in, visibly
        a.update(over)
        return a

    def put_json(self, key, doc):
        self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=json.dumps(doc).encode())

    def get_json(self, key):
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")["Body"].read())

    def add_entries(self, name, tar, texts):
        """Adds entries {path in the archive: JSON text} to a generated backup's
        tarball and uploads it again."""
        import gzip
        import io
        import tarfile
        tar = Path(tar)
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tar.read_bytes()))) as src:
            members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src.getmembers()]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as dst:
            for m, data in members:
                dst.addfile(m, io.BytesIO(data) if data is not None else None)
            for path, text in texts.items():
                ti = tarfile.TarInfo(path)
                ti.size = len(text.encode())
                dst.addfile(ti, io.BytesIO(text.encode()))
        tar.write_bytes(gzip.compress(buf.getvalue()))
        self.s3.upload_file(str(tar), self.bucket, f"{self.prefix}/backups/{name}/{tar.name}")

    def cleanup(self):
        pag = self.s3.get_paginator("list_objects_v2")
        for page in pag.paginate(Bucket=self.bucket, Prefix=self.prefix + "/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})


@pytest.fixture
def store(lab, s3_client, tmp_path):
    st = Store(lab, s3_client, tmp_path / "bucket")
    yield st
    st.cleanup()


# ------------------------------------------------------------------ running the module

collection = _modrun.collection_fixture("oadp_parse", "OADP_PARSE_BIN")


def run_module(lab, collection, args, check=False, raw=False):
    """One ocpv.dr.oadp_parse task through ansible-playbook; returns the task
    result (and with raw=True also the whole stdout+stderr text)."""
    return _modrun.run_task(lab, collection, "oadp_parse", args, check=check, raw=raw)


def ok(res):
    assert not res.get("failed"), res.get("msg")
    return res


def failed(res, *needles):
    assert res.get("failed"), "expected a failure"
    for n in needles:
        assert n in res["msg"], f"{n!r} not in {res['msg']!r}"
    return res["msg"]


# ------------------------------------------------------------------ selection

def test_latest_completed_among_several(lab, collection, store):
    store.add("hourly-old", start=NOW - timedelta(hours=5), seed=1)
    store.add("hourly-good", start=NOW - timedelta(hours=2), seed=2)
    store.add("hourly-partial", start=NOW - timedelta(minutes=50), phase="PartiallyFailed", seed=3)
    store.add("hourly-failed", start=NOW - timedelta(minutes=40), phase="Failed", seed=4)
    store.add("hourly-running", start=NOW - timedelta(minutes=5), phase="InProgress", seed=5)
    # a backup directory whose velero-backup.json was never written (upload in progress)
    store.add("hourly-incomplete", start=NOW - timedelta(minutes=1), seed=6)
    store.s3.delete_object(Bucket=store.bucket, Key=f"{store.prefix}/backups/hourly-incomplete/velero-backup.json")

    res = ok(run_module(lab, collection, {"s3": store.s3_args()}))
    b = res["backup"]
    assert b["name"] == "hourly-good" and b["phase"] == "Completed"
    # completion = start + 3 min; NOW was taken when pytest imported this file,
    # which in a full run can be long before this test runs
    expected_age = (datetime.now(timezone.utc) - (NOW - timedelta(hours=2) + timedelta(minutes=3))).total_seconds()
    assert abs(b["age_seconds"] - expected_age) < 120, (b, expected_age)
    assert b["format_version"] == "1.1.0"
    assert b["started"].endswith("Z") and b["completed"] > b["started"]
    assert {c["name"] for c in b["considered"]} == {
        "hourly-old", "hourly-good", "hourly-partial", "hourly-failed", "hourly-running", "hourly-incomplete"}
    assert res["changed"] is False

    res = ok(run_module(lab, collection, {"s3": store.s3_args(), "accept_partial": True}))
    assert res["backup"]["name"] == "hourly-partial"


def test_no_completed_backup(lab, collection, store):
    store.add("b-failed", phase="Failed")
    store.add("b-running", phase="InProgress")
    msg = failed(run_module(lab, collection, {"s3": store.s3_args()}), "no Completed backup found",
                 "b-failed (Failed)", "b-running (InProgress)")
    assert store.prefix in msg


def test_empty_prefix_and_missing_backup(lab, collection, store):
    failed(run_module(lab, collection, {"s3": store.s3_args()}), "no Completed backup found", "0 backups")
    store.add("present-1")
    failed(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "absent-7"}),
           "backup 'absent-7' not found", "velero-backup.json does not exist", "present-1")


def test_missing_bucket_is_a_configuration_error(lab, collection, store):
    """A bucket that does not exist on the real MinIO is never reported as
    "backup/restore not found" (which would send the operator looking for a
    backup): every entry point names the bucket and S3's NoSuchBucket."""
    gone = f"no-such-{uuid.uuid4().hex[:10]}"
    where = {"s3": store.s3_args(bucket=gone)}
    for extra in ({}, {"backup_name": "b1"}, {"restore_results": "r1"}):
        msg = failed(run_module(lab, collection, {**where, **extra}), "NoSuchBucket", f"s3://{gone}/")
        assert "not found" not in msg, (extra, msg)


def test_named_backup_must_be_completed(lab, collection, store):
    store.add("pf", phase="PartiallyFailed")
    failed(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "pf"}),
           "phase PartiallyFailed", "accept_partial")
    ok(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "pf", "accept_partial": True}))


# ------------------------------------------------------------------ contents

def test_format_11_with_api_group_versions(lab, collection, store):
    store.add("agv", api_group_versions=True, vms_per_ns=4, namespaces=("vm-prod", "vm-dev", "other"))
    res = ok(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "agv",
                                          "namespaces": ["vm-prod", "vm-dev"]}))
    c = res["counts"]
    assert (c["pv"], c["pvc"], c["vs"], c["vsc"], c["vm"], c["dv"]) == (8, 8, 8, 8, 8, 8)
    # each object once, the preferred version (v1) beats the v1beta1 copies
    names = [o["metadata"]["name"] for o in res["vs_info_list"]]
    assert len(names) == len(set(names))
    assert {o["apiVersion"] for o in res["vs_info_list"]} == {"snapshot.storage.k8s.io/v1"}
    assert {o["apiVersion"] for o in res["dv_info_list"]} == {"cdi.kubevirt.io/v1beta1"}
    # PVs / VSCs only when bound into the selected namespaces
    assert {p["spec"]["claimRef"]["namespace"] for p in res["pv_info_list"]} == {"vm-prod", "vm-dev"}
    assert {v["spec"]["volumeSnapshotRef"]["namespace"] for v in res["vsc_info_list"]} == {"vm-prod", "vm-dev"}
    assert {p["spec"]["storageClassName"] for p in res["pv_info_list"]} >= {"nfs-csi", "nfs-dynamic"}
    assert {v["kind"] for v in res["vm_info_list"]} == {"VirtualMachine"}
    assert res["backup"]["archive_format_version"] == "1.1.0"


def test_format_1_layout(lab, collection, store):
    store.add("old", fmt="1", vms_per_ns=2)
    res = ok(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "old"}))
    c = res["counts"]
    assert (c["pv"], c["pvc"], c["vm"], c["dv"], c["vs"], c["vsc"]) == (4, 4, 4, 4, 4, 4)
    assert res["backup"]["archive_format_version"] is None
    assert c["duplicates"] == 0


def test_filters_resources_and_labels(lab, collection, store):
    store.add("f", vms_per_ns=6)
    res = ok(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "f",
                                          "resources": ["pv", "PersistentVolumeClaim", "vm", "configmaps"],
                                          "label_selector": "app in (app1)", "namespaces": ["vm-prod"]}))
    c = res["counts"]
    # app1 = VMs 1 and 4 of vm-prod; their PVs carry no labels but are bound to the PVCs
    assert (c["vm"], c["pvc"], c["pv"], c["vs"], c["dv"]) == (2, 2, 2, 0, 0)
    assert {p["spec"]["claimRef"]["name"] for p in res["pv_info_list"]} == \
        {p["metadata"]["name"] for p in res["pvc_info_list"]}
    assert res["other_lists"] == {"configmaps": []}      # the filler configmaps are app=filler
    failed(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "f",
                                        "label_selector": "app in app1"}), "label_selector")


# ------------------------------------------------------------------ credentials

def test_credentials_as_parameters_never_echoed(lab, collection, store, creds):
    store.add("c1")
    res, text = run_module(lab, collection, {"s3": store.s3_args(credentials_file=None, access_key=creds[0],
                                                                 secret_key=creds[1]),
                                             "backup_name": "c1"}, raw=True)
    ok(res)
    assert creds[1] not in text


def test_credentials_file_secret_never_echoed(lab, collection, store, creds):
    store.add("c2")
    res, text = run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "c2"}, raw=True)
    ok(res)
    assert creds[1] not in text


def test_secret_inside_backup_objects_is_scrubbed(lab, collection, store, creds):
    """Objects are written into the result as the text read from the archive;
    one that holds the secret - literally, or spelled with a JSON escape -
    still comes out scrubbed, and the others unchanged."""
    tar = Path(store.add("leak"))
    secret = creds[1]
    # every character as a \u escape: escaping only some lets the secret reappear
    # across an escape's own digits ("\u0037" + "e32..." holds "7e32..."); a
    # secret of 6+ characters without a backslash cannot occur in "\u00XX\u00YY..."
    assert len(secret) >= 6 and "\\" not in secret
    escaped = "".join("\\u%04x" % ord(ch) for ch in secret)
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "NAME", "namespace": "vm-prod", "annotations": {"note": "X"}},
           "spec": {"accessModes": ["ReadWriteOnce"]}}
    texts = {"leak-plain": json.dumps(pvc).replace("NAME", "leak-plain").replace('"X"', f'"key={secret}!"'),
             "leak-escaped": json.dumps(pvc).replace("NAME", "leak-escaped").replace('"X"', f'"key={escaped}!"'),
             "clean": json.dumps(pvc).replace("NAME", "clean").replace('"X"', '"nothing here"')}
    assert secret not in texts["leak-escaped"]
    store.add_entries("leak", tar, {f"resources/persistentvolumeclaims/namespaces/vm-prod/{n}.json": t
                                    for n, t in texts.items()})

    res, text = run_module(lab, collection, {"s3": store.s3_args(credentials_file=None, access_key=creds[0],
                                                                 secret_key=secret),
                                             "backup_name": "leak"}, raw=True)
    ok(res)
    assert secret not in text
    got = {p["metadata"]["name"]: p["metadata"]["annotations"]["note"] for p in res["pvc_info_list"]
           if p["metadata"]["name"] in texts}
    assert got == {"leak-plain": "key=********!", "leak-escaped": "key=********!", "clean": "nothing here"}


def test_wrong_secret_shows_s3_code_not_secret(lab, collection, store, creds):
    store.add("c3")
    bad = "WrongSecret" + uuid.uuid4().hex
    res, text = run_module(lab, collection, {"s3": store.s3_args(credentials_file=None, access_key=creds[0],
                                                                 secret_key=bad),
                                             "backup_name": "c3"}, raw=True)
    failed(res, "SignatureDoesNotMatch", "HTTP 403")
    assert bad not in text and creds[1] not in text
    res = run_module(lab, collection, {"s3": store.s3_args(credentials_file=None, access_key="NOSUCHKEY",
                                                           secret_key=bad)})
    failed(res, "InvalidAccessKeyId")


def test_wrong_credentials_file(lab, collection, store, tmp_path):
    cf = tmp_path / "cloud"
    cf.write_text("[default]\naws_access_key_id = nobody\naws_secret_access_key = Hunter2Hunter2\n")
    res, text = run_module(lab, collection, {"s3": store.s3_args(credentials_file=str(cf))}, raw=True)
    failed(res, "InvalidAccessKeyId")
    assert "Hunter2Hunter2" not in text
    failed(run_module(lab, collection, {"s3": store.s3_args(credentials_file=str(cf), profile="dr")}),
           "has no [dr] profile")


def test_access_key_from_credentials_file_scrubbed(lab, collection, store, creds):
    """Every value of the credentials file is as secret as a no_log parameter:
    an object holding the access key id comes out with it scrubbed."""
    tar = store.add("akid")
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "has-akid", "namespace": "vm-prod", "annotations": {"note": f"id={creds[0]}"}},
           "spec": {}}
    store.add_entries("akid", tar, {"resources/persistentvolumeclaims/namespaces/vm-prod/has-akid.json":
                                    json.dumps(pvc)})
    res, text = run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "akid"}, raw=True)
    ok(res)
    assert creds[0] not in text and creds[1] not in text
    [note] = [p["metadata"]["annotations"]["note"] for p in res["pvc_info_list"]
              if p["metadata"]["name"] == "has-akid"]
    assert note == "id=********"


# ------------------------------------------------------------------ transport

def test_plain_http_needs_opt_in(lab, collection, store):
    """No credential goes to a plain http:// endpoint unless allow_insecure_http
    says so; allowed (or with validate_certs: false) the task warns."""
    store.add("tr")
    http_ep = lab["S3_ENDPOINT"] if lab["S3_ENDPOINT"].startswith("http://") else "http://127.0.0.1:9"
    args = store.s3_args(endpoint=http_ep)
    args.pop("allow_insecure_http", None)
    for extra in ({"backup_name": "tr"}, {}, {"restore_results": "r1"}):
        failed(run_module(lab, collection, {"s3": args, **extra}), f"endpoint '{http_ep}' is plain http",
               "allow_insecure_http: true")
    if lab["S3_ENDPOINT"].startswith("http://"):
        res = ok(run_module(lab, collection, {"s3": dict(args, allow_insecure_http=True), "backup_name": "tr"}))
        assert any("allow_insecure_http is set" in w and "unencrypted" in w for w in res["warnings"]), res["warnings"]
    else:
        res = ok(run_module(lab, collection, {"s3": store.s3_args(validate_certs=False), "backup_name": "tr"}))
        assert any("validate_certs is false" in w for w in res["warnings"]), res["warnings"]


# ------------------------------------------------------------------ names from the bucket

def test_backup_name_comes_from_the_prefix(lab, collection, store, tmp_path):
    """velero-backup.json is data from the bucket: a metadata.name of
    "../pwned/evil" neither selects another tarball (libcurl would collapse the
    dot segments of <prefix>/backups/../pwned/evil/../pwned/evil.tar.gz into
    <prefix>/pwned/pwned/evil.tar.gz) nor becomes a path outside dest.  The
    listed prefix is the authority; a mismatch fails naming both."""
    store.add("good", start=NOW - timedelta(hours=3))
    store.add("evilb", start=NOW - timedelta(minutes=20))
    doc = store.get_json("backups/evilb/velero-backup.json")
    doc["metadata"]["name"] = "../pwned/evil"
    store.put_json("backups/evilb/velero-backup.json", doc)
    # what the forged name would have fetched instead of evilb/evilb.tar.gz
    forged = store.add("forged", namespaces=("attacker",), vms_per_ns=1)
    store.s3.upload_file(forged, store.bucket, f"{store.prefix}/pwned/pwned/evil.tar.gz")
    dest, outside = tmp_path / "dest", tmp_path / "pwned"
    dest.mkdir()
    outside.mkdir()
    for extra in ({}, {"backup_name": "evilb"}):
        msg = failed(run_module(lab, collection, {"s3": store.s3_args(), "dest": str(dest), **extra}),
                     "names the backup '../pwned/evil' (metadata.name)", "stored as backup 'evilb'")
        assert f"{store.prefix}/backups/evilb/velero-backup.json" in msg, msg
        assert list(dest.iterdir()) == [] and list(outside.iterdir()) == [], (extra, msg)
    # the same document with its own name again: read, kept under dest by the prefix's name
    doc["metadata"]["name"] = "evilb"
    store.put_json("backups/evilb/velero-backup.json", doc)
    res = ok(run_module(lab, collection, {"s3": store.s3_args(), "dest": str(dest)}))
    assert res["backup"]["name"] == "evilb" and res["backup"]["dest"] == str(dest / "evilb.tar.gz")
    assert [p.name for p in dest.iterdir()] == ["evilb.tar.gz"] and list(outside.iterdir()) == []
    assert "attacker" not in {v["metadata"]["namespace"] for v in res["vm_info_list"]}


def test_invalid_prefix_names_listed_not_read(lab, collection, store):
    """A listed prefix that is not a Kubernetes name is reported among the
    backups considered and never read; the latest valid one is used."""
    store.add("ok-1", start=NOW - timedelta(hours=2))
    newer = {"metadata": {"name": "Bad Name"}, "status": {"phase": "Completed",
             "completionTimestamp": (NOW - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    store.put_json("backups/Bad Name/velero-backup.json", newer)
    store.put_json("backups/x..y/velero-backup.json", dict(newer, metadata={"name": "x..y"}))
    res = ok(run_module(lab, collection, {"s3": store.s3_args()}))
    assert res["backup"]["name"] == "ok-1"
    phases = {c["name"]: c["phase"] for c in res["backup"]["considered"]}
    assert phases["Bad Name"].startswith("(not a valid backup name") and phases["x..y"].startswith(
        "(not a valid backup name"), phases
    failed(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "Bad Name"}),
           "backup_name 'Bad Name' is not a backup name")


# ------------------------------------------------------------------ secrets inside the backup

def test_secret_values_in_backup_are_masked(lab, collection, store):
    """Secret data / stringData and VM cloud-init user and network data read
    from the backup are masked in the result (as k8s_dr_clean masks them)."""
    tar = store.add("sec", vms_per_ns=1)
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "db", "namespace": "vm-prod", "annotations": {
                  "kubectl.kubernetes.io/last-applied-configuration": '{"stringData":{"pw":"Sekr1tApplied"}}'}},
              "data": {"pw": "U2VrcjF0RGF0YQ=="}, "stringData": {"token": "Sekr1tString"}}
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
          "metadata": {"name": "vm-ci", "namespace": "vm-prod"},
          "spec": {"runStrategy": "Always", "template": {"spec": {"volumes": [
              {"name": "root", "containerDisk": {"image": "quay.io/containerdisks/fedora:40"}},
              {"name": "ci", "cloudInitNoCloud": {"userData": "#cloud-config\npassword: Sekr1tUser\n",
                                                  "networkDataBase64": "U2VrcjF0TmV0"}}]}}}}
    store.add_entries("sec", tar, {
        "resources/secrets/namespaces/vm-prod/db.json": json.dumps(secret),
        "resources/virtualmachines.kubevirt.io/namespaces/vm-prod/vm-ci.json": json.dumps(vm)})
    res, text = run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "sec",
                                             "resources": ["secrets", "vm"], "namespaces": ["vm-prod"]},
                           raw=True)
    ok(res)
    assert "Sekr1t" not in text and "U2VrcjF0" not in text
    [db] = [x for x in res["other_lists"]["secrets"] if x["metadata"]["name"] == "db"]
    assert db["data"] == {"pw": "********"} and db["stringData"] == {"token": "********"}
    assert db["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "********"
    [v] = [x for x in res["vm_info_list"] if x["metadata"]["name"] == "vm-ci"]
    vols = {x["name"]: x for x in v["spec"]["template"]["spec"]["volumes"]}
    assert vols["ci"]["cloudInitNoCloud"] == {"userData": "********", "networkDataBase64": "********"}
    assert vols["root"]["containerDisk"]["image"] == "quay.io/containerdisks/fedora:40"


# ------------------------------------------------------------------ damaged / hostile

def _padded_archive(path, entries, pad):
    """A small .tar.gz of whitespace-padded (valid) JSON PVCs."""
    import gzip
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        add("metadata/version", b"1.1.0")
        for i in range(entries):
            text = json.dumps({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                               "metadata": {"name": f"pad-{i}", "namespace": "vm-prod"}, "spec": {}})
            add(f"resources/persistentvolumeclaims/namespaces/vm-prod/pad-{i}.json",
                (text[:1] + " " * pad + text[1:]).encode())
    Path(path).write_bytes(gzip.compress(buf.getvalue(), 9))


def test_padded_archive_is_bounded(lab, collection, store, tmp_path):
    """A ~50 KB archive expanding to 48 MB of whitespace-padded JSON: the result
    holds the objects compactly (it used to print the padding), and
    max_uncompressed_size stops the read with a clear error."""
    store.add("padded")
    tar = tmp_path / "padded.tar.gz"
    _padded_archive(tar, 4, 12 * 1024 * 1024)
    assert tar.stat().st_size < 100 * 1024
    store.s3.upload_file(str(tar), store.bucket, f"{store.prefix}/backups/padded/padded.tar.gz")
    res, text = run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "padded"}, raw=True)
    ok(res)
    assert res["counts"]["pvc"] == 4 and res["backup"]["uncompressed_bytes"] > 48 * 1024 * 1024
    assert len(text) < 256 * 1024, len(text)
    failed(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "padded",
                                        "max_uncompressed_size": 20 * 1024 * 1024}),
           "expands to more than 20971520 bytes when uncompressed", "max_uncompressed_size")
    failed(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "padded",
                                        "max_selected_size": 300}),
           "the selected objects take more than 300 bytes (max_selected_size")


@pytest.mark.parametrize("how,needle", [
    ("truncate", "truncated"),
    ("truncate-trailer", "truncated"),
    ("crc", "incorrect data check"),
    ("deflate", "corrupt"),
    ("not-gzip", "not gzip"),
])
def test_damaged_archive_fails_clearly(lab, collection, store, how, needle):
    store.add("dmg", corrupt=how, vms_per_ns=5)
    msg = failed(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "dmg"}), needle)
    assert "dmg.tar.gz" in msg


def test_missing_tarball(lab, collection, store):
    store.add("notar", no_tarball=True)
    failed(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "notar"}),
           "NoSuchKey", "notar/notar.tar.gz")


def test_hostile_entries_are_skipped_with_warnings(lab, collection, store):
    store.add("evil", hostile=gen_backup.HOSTILE, oversize_bytes=3 * 1024 * 1024)
    res = ok(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "evil",
                                          "max_entry_size": 1024 * 1024}))
    r = res["counts"]["skipped_by_reason"]
    assert r == {"unsafe_path": 3, "link": 2, "special_file": 3, "unexpected_entry": 2,
                 "invalid_json": 1, "bad_object": 1, "oversize": 1}, r
    assert res["counts"]["pv"] == 6 and res["counts"]["pvc"] == 6     # the real ones are intact
    assert any("/etc/shadow" not in w and "link.json" in w for w in res["warnings"])
    assert any("huge.json" in w and "limit" in w for w in res["warnings"])


def test_entry_count_limit(lab, collection, store):
    store.add("many", extra_entries=6000)
    failed(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "many", "max_entries": 5000}),
           "more than 5000 tar entries")
    res = ok(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "many"}))
    assert res["counts"]["entries"] > 6000


# ------------------------------------------------------------------ dest, src, check mode

def test_dest_keeps_archive_and_check_mode_does_not(lab, collection, store, tmp_path):
    tar = store.add("keep")
    dest = tmp_path / "audit"
    dest.mkdir()
    res = run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "keep", "dest": str(dest)},
                     check=True)
    ok(res)
    assert res["changed"] is True and list(dest.iterdir()) == []
    res = ok(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "keep", "dest": str(dest)}))
    assert res["changed"] is True
    kept = dest / "keep.tar.gz"
    assert res["backup"]["dest"] == str(kept)
    assert kept.read_bytes() == Path(tar).read_bytes()
    assert [p.name for p in dest.iterdir()] == ["keep.tar.gz"]          # no .part left
    # a failed download leaves nothing behind
    store.add("keep-bad", corrupt="truncate")
    failed(run_module(lab, collection, {"s3": store.s3_args(), "backup_name": "keep-bad", "dest": str(dest)}),
           "truncated")
    assert [p.name for p in dest.iterdir()] == ["keep.tar.gz"]


def test_nothing_written_without_dest(lab, collection, store, tmp_path):
    """The module binary run directly with an empty cwd and TMPDIR: no file appears."""
    store.add("nodisk", vms_per_ns=4)
    work = tmp_path / "work"
    work.mkdir()
    args = work.parent / "args.json"
    args.write_text(json.dumps({"s3": store.s3_args(), "backup_name": "nodisk"}))
    binary = Path(collection) / "ansible_collections/ocpv/dr/plugins/modules/oadp_parse"
    p = subprocess.run([str(binary), str(args)], cwd=work, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, TMPDIR=str(work)))
    res = json.loads(p.stdout)
    ok(res)
    assert res["counts"]["vm"] == 8
    assert list(work.iterdir()) == []


def test_local_src(lab, collection, store):
    tar = store.add("local", vms_per_ns=2, phase="Completed")
    res = ok(run_module(lab, collection, {"src": tar, "namespaces": ["vm-dev"]}))
    assert res["backup"]["name"] == "local" and res["backup"]["phase"] == "Completed"
    assert res["counts"]["vm"] == 2 and res["counts"]["pv"] == 2
    failed(run_module(lab, collection, {"src": tar + ".missing"}), "cannot open src")
    failed(run_module(lab, collection, {"src": tar, "s3": store.s3_args()}), "mutually exclusive")


def test_src_fifo_and_link_refused_without_hanging(lab, collection, store, tmp_path):
    """A FIFO given as src (or lying beside it as velero-backup.json) used to
    block the module forever in open(); it and a symbolic link are refused
    before anything is read."""
    fifo = tmp_path / "b.tar.gz"
    os.mkfifo(fifo)
    res = _modrun.run_task(lab, collection, "oadp_parse", {"src": str(fifo)}, timeout=60)
    failed(res, f"src {fifo} is not a regular file")
    link = tmp_path / "link.tar.gz"
    link.symlink_to(store.add("real"))
    failed(_modrun.run_task(lab, collection, "oadp_parse", {"src": str(link)}, timeout=60),
           f"src {link} is a symbolic link")
    d = tmp_path / "side"
    d.mkdir()
    real = Path(store.add("side"))
    (d / "side.tar.gz").write_bytes(real.read_bytes())
    os.mkfifo(d / "velero-backup.json")
    failed(_modrun.run_task(lab, collection, "oadp_parse", {"src": str(d / "side.tar.gz")}, timeout=60),
           "velero-backup.json", "is not a regular file")


# ------------------------------------------------------------------ restore results

RESULTS_GZ = REPO / "tests/unit/data/oadp/restore-results-partiallyfailed.gz"


def test_restore_results_read_and_scrubbed(lab, collection, store, creds):
    """restore_results reads <prefix>/restores/<name>/restore-<name>-results.gz (a file
    the lab's Velero wrote for a PartiallyFailed Restore, plus one whose message holds
    the secret key): the messages come back structured and as lines, the secret scrubbed."""
    import gzip
    key = f"{store.prefix}/restores/r1/restore-r1-results.gz"
    store.s3.put_object(Bucket=store.bucket, Key=key, Body=RESULTS_GZ.read_bytes())
    res = ok(run_module(lab, collection, {"s3": store.s3_args(), "restore_results": "r1"}))
    assert res["restore"] == {"name": "r1", "source": f"s3://{store.bucket}/{key}"}
    assert res["restore_error_count"] == 1 and res["restore_warning_count"] == 0
    [msg] = res["restore_error_messages"]
    assert msg.startswith("Namespace fo-") and "vm-0-ssh" in msg and "exceeded quota: no-services" in msg, msg
    [(ns, msgs)] = res["restore_results"]["errors"]["namespaces"].items()
    assert msg == f"Namespace {ns}: {msgs[0]}"
    assert res["restore_results"]["warnings"] == {"velero": [], "cluster": [], "namespaces": {}}
    assert "pv_info_list" not in res and "backup" not in res and res["changed"] is False

    secret = creds[1]
    doc = {"errors": {"velero": [f"bad credentials {secret} rejected"]},
           "warnings": {"cluster": ["w1", "w2", "w3"]}}
    store.s3.put_object(Bucket=store.bucket, Key=f"{store.prefix}/restores/r2/restore-r2-results.gz",
                        Body=gzip.compress(json.dumps(doc).encode()))
    res, text = run_module(lab, collection, {"s3": store.s3_args(credentials_file=None, access_key=creds[0],
                                                                 secret_key=secret),
                                             "restore_results": "r2", "max_restore_messages": 2}, raw=True)
    ok(res)
    assert secret not in text
    assert res["restore_error_messages"] == ["Velero: bad credentials ******** rejected"]
    assert res["restore_warning_messages"] == ["Cluster: w1", "Cluster: w2"] and res["restore_warning_count"] == 3


def test_restore_results_missing_restore(lab, collection, store, creds):
    """A Restore without a results file: a clear error naming the key, no secret."""
    store.add("b1")         # a backup of that prefix exists; the restore does not
    res, text = run_module(lab, collection, {"s3": store.s3_args(credentials_file=None, access_key=creds[0],
                                                                 secret_key=creds[1]),
                                             "restore_results": "ocpv-dr-failover-nope"}, raw=True)
    failed(res, "results of Restore 'ocpv-dr-failover-nope' not found",
           f"s3://{store.bucket}/{store.prefix}/restores/ocpv-dr-failover-nope/"
           "restore-ocpv-dr-failover-nope-results.gz does not exist")
    assert creds[1] not in text and creds[0] not in res["msg"]
    failed(run_module(lab, collection, {"s3": store.s3_args(), "restore_results": "../x"}),
           "restore_results '../x' is not a Restore name")
    failed(run_module(lab, collection, {"s3": store.s3_args(), "restore_results": "r", "backup_name": "b1"}),
           "either backup_name or restore_results")
    failed(run_module(lab, collection, {"src": str(RESULTS_GZ), "restore_results": "r"}),
           "restore_results needs s3")
    for opt, val in (("namespaces", ["vm-prod"]), ("resources", ["pods"]), ("label_selector", "a=b"),
                     ("dest", str(RESULTS_GZ.parent / "out"))):
        failed(run_module(lab, collection, {"s3": store.s3_args(), "restore_results": "r", opt: val}),
               f"{opt} applies to a backup's contents, not to restore_results")
