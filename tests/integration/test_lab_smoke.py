"""Smoke tests proving the DR lab is made of real parts: the controller-manager
binds a PV and PVC, a watch sees ADDED/MODIFIED/DELETED, MinIO checks S3 SigV4,
rsync goes over ssh from nfs-primary to nfs-dr across the lab network,
ansible-rulebook's webhook source runs a playbook, Ansible reaches both storage
hosts over SSH, and the least-privilege credential is refused what its role
does not grant.

Run:  tests/lab/up && .cache/venv/bin/pytest tests/integration/test_lab_smoke.py
"""

import json
import os
import re
import subprocess
import threading
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import REPO, _free_port, s3_credentials, wait_until


def _core(api):
    from kubernetes import client
    return client.CoreV1Api(api)


def test_pv_pvc_bound_by_controller_manager(lab, primary_api, unique_ns):
    from kubernetes import client

    core = _core(primary_api)
    ns = unique_ns("primary", "smoke-bind")
    sc = f"lab-smoke-{uuid.uuid4().hex[:6]}"   # no StorageClass object: static binding by class name
    pv_name = f"smoke-pv-{uuid.uuid4().hex[:8]}"
    core.create_persistent_volume(client.V1PersistentVolume(
        metadata=client.V1ObjectMeta(name=pv_name),
        spec=client.V1PersistentVolumeSpec(
            capacity={"storage": "1Gi"}, access_modes=["ReadWriteMany"], storage_class_name=sc,
            persistent_volume_reclaim_policy="Retain",
            nfs=client.V1NFSVolumeSource(server=lab["NFS_PRIMARY_ADDR"], path=f"{lab['NFS_PRIMARY_EXPORT']}/{pv_name}"))))
    try:
        core.create_namespaced_persistent_volume_claim(ns, client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name="data"),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteMany"], storage_class_name=sc,
                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}))))
        pvc = wait_until(lambda: (lambda c: c if c.status.phase == "Bound" else None)(
            core.read_namespaced_persistent_volume_claim("data", ns)), 90, 0.5, "PVC Bound")
        assert pvc.spec.volume_name == pv_name
        pv = wait_until(lambda: (lambda v: v if v.status.phase == "Bound" else None)(
            core.read_persistent_volume(pv_name)), 30, 0.5, "PV Bound")
        assert pv.spec.claim_ref.namespace == ns and pv.spec.claim_ref.name == "data"
        # the binder annotates what it did: proof it was the controller, not us
        assert pvc.metadata.annotations.get("pv.kubernetes.io/bind-completed") == "yes"
    finally:
        core.delete_persistent_volume(pv_name)


def test_watch_sees_added_modified_deleted(primary_api, unique_ns):
    from kubernetes import client, watch

    core = _core(primary_api)
    ns = unique_ns("primary", "smoke-watch")
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    events = []

    def consume():
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=30):
            if ev["object"].metadata.name == "cm":
                events.append((ev["type"], ev["object"].data))
                if ev["type"] == "DELETED":
                    w.stop()
    t = threading.Thread(target=consume, daemon=True)
    t.start()
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"), data={"v": "1"}))
    core.patch_namespaced_config_map("cm", ns, {"data": {"v": "2"}})
    core.delete_namespaced_config_map("cm", ns)
    t.join(40)
    assert [e[0] for e in events] == ["ADDED", "MODIFIED", "DELETED"], events
    assert events[1][1] == {"v": "2"}


def test_minio_s3_sigv4_roundtrip(lab, s3_client):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    key = f"{lab['S3_PREFIX']}/smoke/{uuid.uuid4().hex}.bin"
    body = os.urandom(64 * 1024)
    s3_client.put_object(Bucket=lab["S3_BUCKET"], Key=key, Body=body)
    try:
        got = s3_client.get_object(Bucket=lab["S3_BUCKET"], Key=key)["Body"].read()
        assert got == body
        listed = s3_client.list_objects_v2(Bucket=lab["S3_BUCKET"], Prefix=f"{lab['S3_PREFIX']}/smoke/")
        assert key in [o["Key"] for o in listed.get("Contents", [])]
        # signatures are really checked: a wrong secret is refused
        access, _ = s3_credentials(lab)
        bad = boto3.client("s3", endpoint_url=lab["S3_ENDPOINT"], region_name=lab["S3_REGION"],
                           aws_access_key_id=access, aws_secret_access_key="wrong-" + uuid.uuid4().hex,
                           verify=lab.get("S3_CA_FILE") or None,
                           config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        with pytest.raises(ClientError) as ei:
            bad.get_object(Bucket=lab["S3_BUCKET"], Key=key)
        assert ei.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    finally:
        s3_client.delete_object(Bucket=lab["S3_BUCKET"], Key=key)


def test_rsync_over_ssh_from_nfs_primary_to_nfs_dr(lab, netns_run):
    d = f"smoke-rsync-{uuid.uuid4().hex[:8]}"
    src = Path(lab["NFS_PRIMARY_EXPORT"]) / d
    dst = Path(lab["NFS_DR_EXPORT"]) / d
    src.mkdir(parents=True)
    payload = os.urandom(256 * 1024)
    (src / "disk.img").write_bytes(payload)
    try:
        p = netns_run("nfs-primary", ["rsync", "-a", "--stats", "-e", f"ssh -F {lab['LAB_SSH_CONFIG']}",
                                      f"{src}/", f"nfs-dr:{dst}/"])
        assert p.returncode == 0, p.stderr
        assert (dst / "disk.img").read_bytes() == payload
        # it went over the lab network: nfs-dr's sshd saw nfs-primary's address
        log = Path(lab["LAB_STATE_DIR"], "logs", "sshd-nfs-dr.log").read_text()
        assert f"Accepted publickey for root from {lab['NFS_PRIMARY_ADDR']}" in log
        # and nfs-primary has no route but the lab's: the host's loopback is not its loopback
        p = netns_run("nfs-primary", ["ip", "-4", "-o", "addr", "show"])
        assert lab["NFS_PRIMARY_ADDR"] in p.stdout and lab["NFS_DR_ADDR"] not in p.stdout
    finally:
        subprocess.run(["rm", "-rf", str(src), str(dst)], check=False)


@pytest.mark.parametrize("venv", ["LAB_VENV", "LAB_VENV_216"])
def test_ansible_reaches_both_storage_hosts(lab, ansible_playbook, tmp_path, venv):
    pb = tmp_path / "ping.yml"
    pb.write_text(
        "- hosts: primary_nfs_server:dr_nfs_server\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - ansible.builtin.ping:\n"
        "    - ansible.builtin.stat: {path: '{{ export_root }}'}\n"
        "      register: st\n"
        "    - ansible.builtin.assert: {that: [st.stat.isdir]}\n")
    r = ansible_playbook(pb, venv=venv)
    assert r.rc == 0, str(r)
    stats = r.json["stats"]
    assert set(stats) == {"nfs-primary", "nfs-dr"}
    assert all(s["failures"] == 0 and s["unreachable"] == 0 for s in stats.values())


def test_ansible_rulebook_webhook_runs_playbook(lab, lab_env, tmp_path):
    port = _free_port()
    marker = tmp_path / "marker.json"
    token = uuid.uuid4().hex
    (tmp_path / "write.yml").write_text(
        "- hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - ansible.builtin.copy:\n"
        f"        dest: {marker}\n"
        "        content: '{{ ansible_eda.event.payload | to_json }}'\n")
    (tmp_path / "rulebook.yml").write_text(
        "- name: lab smoke\n"
        "  hosts: all\n"
        "  sources:\n"
        "    - eda.builtin.webhook:\n"
        "        host: 127.0.0.1\n"
        f"        port: {port}\n"
        "  rules:\n"
        "    - name: smoke event\n"
        f"      condition: event.payload.smoke == \"{token}\"\n"
        "      action:\n"
        "        run_playbook:\n"
        f"          name: {tmp_path / 'write.yml'}\n")
    (tmp_path / "inventory.yml").write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {os.path.join(lab['LAB_VENV'], 'bin', 'python')}\n")
    env = dict(lab_env, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    if lab.get("JAVA_HOME"):
        env["JAVA_HOME"] = lab["JAVA_HOME"]
    log = open(tmp_path / "rulebook.log", "w")
    proc = subprocess.Popen([os.path.join(lab["LAB_VENV"], "bin", "ansible-rulebook"),
                             "--rulebook", str(tmp_path / "rulebook.yml"), "-i", str(tmp_path / "inventory.yml"),
                             "--print-events"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        def post():
            if proc.poll() is not None:
                pytest.fail(f"ansible-rulebook exited rc={proc.returncode}:\n{(tmp_path / 'rulebook.log').read_text()[-3000:]}")
            req = urllib.request.Request(f"http://127.0.0.1:{port}/endpoint", method="POST",
                                         data=json.dumps({"smoke": token, "n": 1}).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_until(post, 90, 0.5, "ansible-rulebook webhook to accept a POST")
        wait_until(marker.exists, 120, 0.5, "the playbook run by the rule to write its marker")
        assert json.loads(marker.read_text()) == {"smoke": token, "n": 1}
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(5)
        log.close()


def test_least_privilege_credential(lab, k8s_client):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    for cluster in ("primary", "dr"):
        limited = client.CoreV1Api(k8s_client(cluster, limited=True))
        limited.list_persistent_volume()                           # granted: read PVs
        limited.list_namespaced_persistent_volume_claim("vm-prod")  # granted: read PVCs
        snap = client.CustomObjectsApi(k8s_client(cluster, limited=True))
        snap.list_cluster_custom_object("snapshot.storage.k8s.io", "v1", "volumesnapshotcontents")
        name = f"smoke-{uuid.uuid4().hex[:8]}"
        pvc = client.V1PersistentVolumeClaim(metadata=client.V1ObjectMeta(name=name), spec=client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"], storage_class_name="lab-none",
            resources=client.V1VolumeResourceRequirements(requests={"storage": "1Mi"})))
        limited.create_namespaced_persistent_volume_claim("vm-prod", pvc)   # granted: write in a DR namespace
        limited.delete_namespaced_persistent_volume_claim(name, "vm-prod")
        forbidden = [
            lambda: limited.list_namespaced_secret("vm-prod"),
            lambda: limited.create_namespaced_persistent_volume_claim("not-watched", pvc),
            lambda: limited.delete_persistent_volume("does-not-matter"),
            lambda: limited.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name))),
        ]
        for i, call in enumerate(forbidden):
            with pytest.raises(ApiException) as ei:
                call()
            assert ei.value.status == 403, f"{cluster} call #{i}: expected 403, got {ei.value.status}"
    # each cluster has its own CA and service-account key: primary's token is worthless on dr
    tok = Path(lab["PRIMARY_LIMITED_TOKEN_FILE"]).read_text().strip()
    req = urllib.request.Request(f"{lab['DR_API_URL']}/api/v1/persistentvolumes",
                                 headers={"Authorization": f"Bearer {tok}"})
    import ssl
    ctx = ssl.create_default_context(cafile=lab["DR_CA_FILE"])
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, context=ctx, timeout=10)
    assert ei.value.code == 401


def test_cluster_rebuild_gives_an_empty_dr_with_the_same_address(lab, dr_api, k8s_client, lab_cluster):
    """tests/lab/cluster dr rebuild: etcd wiped, same URL/CA, CRDs, namespaces and RBAC back."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = _core(dr_api)
    name = f"smoke-rebuild-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_config_map("vm-dev", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name)))
    lab_cluster("dr", "rebuild")
    with pytest.raises(ApiException) as ei:         # the same admin client still works...
        core.read_namespaced_config_map(name, "vm-dev")
    assert ei.value.status == 404                   # ...and the data is gone
    crds = client.ApiextensionsV1Api(dr_api).list_custom_resource_definition().items
    assert {"volumesnapshots.snapshot.storage.k8s.io", "virtualmachines.kubevirt.io",
            "backups.velero.io", "volumes.longhorn.io"} <= {c.metadata.name for c in crds}
    assert "vm-prod" in {n.metadata.name for n in core.list_namespace().items}
    # the limited kubeconfig was rewritten with the new token
    client.CoreV1Api(k8s_client("dr", limited=True)).list_persistent_volume()
    out = lab_cluster("dr", "status").stdout
    assert "apiserver: running" in out and "api: ready" in out


def _lab_kubernetes_version():
    """The k8s.io/kubernetes version tests/lab/go/k8s/go.mod pins (what the
    lab's apiservers, controller-manager and kubectl are built from)."""
    text = (REPO / "tests/lab/go/k8s/go.mod").read_text()
    m = re.search(r"^\s*k8s\.io/kubernetes (v\d+\.\d+\.\d+\S*)\s*$", text, re.M)
    assert m, "tests/lab/go/k8s/go.mod does not require k8s.io/kubernetes"
    return m.group(1)


def test_kubernetes_binaries_report_their_version(lab, primary_api, dr_api):
    """Clients read /version (Velero, kubernetes.core, AWX's OpenShift
    credential check): the lab's apiservers, kubectl and controller-manager
    report the Kubernetes release they are built from, not the unstamped
    v0.0.0-master+$Format:%H$ of a plain `go build` (tests/lab/build-bins)."""
    from kubernetes import client
    want = _lab_kubernetes_version()
    major, minor = re.match(r"v(\d+)\.(\d+)", want).groups()
    for name, api in (("primary", primary_api), ("dr", dr_api)):
        v = client.VersionApi(api).get_code()
        assert not v.git_version.startswith("v0.0.0"), f"{name} apiserver /version: {v.git_version}"
        assert (v.git_version, v.major, v.minor.rstrip("+")) == (want, major, minor), \
            f"{name} apiserver /version: {v}"
        assert "$Format" not in (v.git_commit or ""), f"{name} apiserver /version: {v}"
    out = subprocess.run([os.path.join(lab["LAB_BIN"], "kubectl"), "version", "--client", "-o", "json"],
                         capture_output=True, text=True, check=True).stdout
    cv = json.loads(out)["clientVersion"]
    assert (cv["gitVersion"], cv["major"]) == (want, major), f"kubectl version --client: {cv}"
    out = subprocess.run([os.path.join(lab["LAB_BIN"], "kube-controller-manager"), "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["Kubernetes", want], f"kube-controller-manager --version: {out!r}"
