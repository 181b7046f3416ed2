"""Lab tests of the C Kubernetes client (lib/k8s/k8s*.c, lib/k8s/kubeconfig.c),
driven through tests/tools/k8sctl against the lab's real kube-apiservers
(primary and dr): get/list (pagination, selectors), server-side apply
(dry-run, field-manager conflicts, force), create, merge patch, status
update, delete (preconditions, dry-run, propagation), watch (events in order,
bookmarks, stop flag), discovery, batches (curl multi), and every way of
connecting (admin kubeconfig with embedded client certificate, limited
token kubeconfig, explicit host + token + CA, K8S_AUTH_* environment,
in-cluster service-account directory, TLS failures) with the token never
appearing in any output.

Lab access comes from the shared fixtures of conftest.py (`lab`,
`unique_ns`); each test works in a namespace of its own.
k8sctl comes from K8SCTL (default: the newest of build-ci/, build/,
build-k8s/ in the repo).
"""
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import wait_until

REPO = Path(__file__).resolve().parents[2]


def _k8sctl_bin():
    """K8SCTL, else the newest k8sctl among the usual build directories."""
    if os.environ.get("K8SCTL"):
        return os.environ["K8SCTL"]
    cands = [p for p in (REPO / d / "tests/tools/k8sctl" for d in ("build-ci", "build", "build-k8s"))
             if p.is_file()]
    if not cands:
        pytest.fail("k8sctl is not built (meson compile builds tests/tools/k8sctl) and K8SCTL "
                    "is unset")
    return str(max(cands, key=lambda p: p.stat().st_mtime))


CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith("K8S_AUTH_") and k not in ("KUBECONFIG", "OCPVDR_SA_DIR",
                                                            "KUBERNETES_SERVICE_HOST",
                                                            "KUBERNETES_SERVICE_PORT")}


class K:
    """Runs k8sctl with a fixed set of connection arguments."""

    def __init__(self, conn, env=None):
        self.bin = _k8sctl_bin()
        self.conn = list(conn)
        self.env = dict(CLEAN_ENV, **(env or {}))

    def run(self, *args, input=None, check=True, timeout=120):
        p = subprocess.run([self.bin, *self.conn, *args], input=input, capture_output=True,
                           text=True, timeout=timeout, env=self.env)
        if check and p.returncode != 0:
            raise AssertionError(f"k8sctl {' '.join(args)} -> {p.returncode}: {p.stdout} {p.stderr}")
        return p

    def json(self, *args, **kw):
        return json.loads(self.run(*args, **kw).stdout)

    def err(self, *args, **kw):
        p = self.run(*args, check=False, **kw)
        assert p.returncode == 1, f"expected failure: {p.stdout} {p.stderr}"
        return json.loads(p.stdout)["error"], p

    def apply(self, obj, *flags):
        return self.json("apply", "-", *flags, input=json.dumps(obj))


@pytest.fixture(scope="module")
def k(lab):
    return K(["--kubeconfig", lab["PRIMARY_KUBECONFIG"]])


@pytest.fixture(scope="module")
def kdr(lab):
    return K(["--kubeconfig", lab["DR_KUBECONFIG"]])


@pytest.fixture
def ns(unique_ns):
    return unique_ns("primary", prefix="k8sc")


def cm(name, ns, data=None, labels=None):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "data": data or {}}


def token_of(lab, key="PRIMARY_LIMITED_TOKEN_FILE"):
    return Path(lab[key]).read_text().strip()


def assert_no_secret(lab, *texts):
    tok = token_of(lab)
    assert len(tok) > 20
    for t in texts:
        assert tok not in t
        assert tok[:16] not in t


# ------------------------------------------------------------------ basics

def test_server_and_get(lab, k, kdr):
    assert k.json("server") == lab["PRIMARY_API_URL"].rstrip("/")
    assert kdr.json("server") == lab["DR_API_URL"].rstrip("/")
    obj = k.json("get", "v1", "Namespace", "default")
    assert obj["kind"] == "Namespace" and obj["metadata"]["name"] == "default"
    e, p = k.err("get", "v1", "Namespace", "no-such-ns-" + uuid.uuid4().hex[:6])
    assert e["status"] == 404 and e["reason"] == "NotFound" and e["curl_code"] == 0
    assert e["message"].startswith("GET /api/v1/namespaces/no-such-ns-")
    assert "not found" in e["message"]
    assert "GET /api/v1/namespaces/" in p.stderr


def test_list_pagination_and_selectors(k, ns):
    for i in range(23):
        k.apply(cm(f"p{i:02d}", ns, {"i": str(i)}, {"set": "page", "odd": str(i % 2)}))
    full = k.json("list", "v1", "ConfigMap", "-n", ns, "-l", "set=page")
    paged = k.json("list", "v1", "ConfigMap", "-n", ns, "-l", "set=page", "--limit", "5")
    names = sorted(o["metadata"]["name"] for o in paged["items"])
    assert names == [f"p{i:02d}" for i in range(23)]            # 5 pages, nothing lost or doubled
    assert sorted(o["metadata"]["name"] for o in full["items"]) == names
    assert all(o["apiVersion"] == "v1" and o["kind"] == "ConfigMap" for o in paged["items"])
    assert int(paged["resourceVersion"]) > 0
    odd = k.json("list", "v1", "ConfigMap", "-n", ns, "-l", "set=page,odd in (1)", "--limit", "4")
    assert len(odd["items"]) == 11
    one = k.json("list", "v1", "ConfigMap", "-n", ns, "--field-selector", "metadata.name=p07")
    assert [o["metadata"]["name"] for o in one["items"]] == ["p07"]
    # all namespaces (ns omitted) sees these too
    allns = k.json("list", "v1", "ConfigMap", "-l", "set=page", "--limit", "7")
    assert len([o for o in allns["items"] if o["metadata"]["namespace"] == ns]) == 23
    e, _ = k.err("list", "v1", "ConfigMap", "-n", ns, "-l", "not a selector!!")
    assert e["status"] == 400 and e["reason"] == "BadRequest"
    assert "labelSelector=not%20a%20selector%21%21" in e["message"]   # encoded in the URL
    assert "unable to parse requirement" in e["message"]


def test_apply_dry_run_conflict_force(lab, k, ns):
    out = k.apply(cm("ssa", ns, {"a": "1"}), "--dry-run")
    assert out["data"] == {"a": "1"}
    k.err("get", "v1", "ConfigMap", "ssa", "-n", ns)             # dry run wrote nothing
    out = k.apply(cm("ssa", ns, {"a": "1"}))
    managers = {m["manager"]: m["operation"] for m in out["metadata"]["managedFields"]}
    assert managers.get("ocpv-dr") == "Apply"
    # another manager owns data.a now
    k.apply(cm("ssa", ns, {"a": "2"}), "--field-manager", "someone-else", "--force")
    e, _ = k.err("apply", "-", input=json.dumps(cm("ssa", ns, {"a": "3"})))
    assert e["status"] == 409 and e["reason"] == "Conflict"
    assert "someone-else" in e["message"] and "PATCH /api/v1/namespaces/" in e["message"]
    assert "fieldManager=ocpv-dr" in e["message"]
    out = k.apply(cm("ssa", ns, {"a": "3"}), "--force")
    assert out["data"]["a"] == "3"
    # a namespaced object without a namespace is refused before any request
    bad = cm("x", ns)
    del bad["metadata"]["namespace"]
    e, _ = k.err("apply", "-", input=json.dumps(bad))
    assert "metadata.namespace is missing" in e["message"]


def test_create_patch_delete_preconditions(k, ns):
    made = k.json("create", "-", input=json.dumps(cm("c1", ns, {"x": "1"})))
    uid, rv = made["metadata"]["uid"], made["metadata"]["resourceVersion"]
    e, _ = k.err("create", "-", input=json.dumps(cm("c1", ns)))
    assert e["status"] == 409 and e["reason"] == "AlreadyExists"
    patched = k.json("patch", "v1", "ConfigMap", "c1", '{"data":{"y":"2","x":null}}', "-n", ns)
    assert patched["data"] == {"y": "2"}
    # stale resourceVersion precondition / wrong uid: 409 Conflict, object kept
    e, _ = k.err("delete", "v1", "ConfigMap", "c1", "-n", ns, "--resource-version", rv)
    assert e["status"] == 409 and e["reason"] == "Conflict"
    e, _ = k.err("delete", "v1", "ConfigMap", "c1", "-n", ns, "--uid", str(uuid.uuid4()))
    assert e["status"] == 409 and "UID in the precondition" in e["message"]
    k.json("delete", "v1", "ConfigMap", "c1", "-n", ns, "--dry-run")
    assert k.json("get", "v1", "ConfigMap", "c1", "-n", ns)["metadata"]["uid"] == uid
    k.json("delete", "v1", "ConfigMap", "c1", "-n", ns, "--uid", uid,
           "--propagation", "Foreground")
    # Foreground: gone or terminating with the finalizer, then gone.  The
    # finalizer is removed by kube-controller-manager's garbage collector,
    # which on a loaded CI machine took more than 5 s once (the next delete
    # then found the object still terminating) - wait for it, up to 60 s.
    wait_until(lambda: k.run("get", "v1", "ConfigMap", "c1", "-n", ns, check=False).returncode,
               timeout=60, interval=0.1, what="the foreground-deleted ConfigMap to be gone")
    e, _ = k.err("delete", "v1", "ConfigMap", "c1", "-n", ns)
    assert e["status"] == 404 and e["reason"] == "NotFound"
    k.apply(cm("c2", ns))
    e, _ = k.err("delete", "v1", "ConfigMap", "c2", "-n", ns, "--propagation", "Sideways")
    assert e["status"] == 422 and e["reason"] == "Invalid" and "propagationPolicy" in e["message"]


def test_status_update_on_crd(k, ns):
    vs = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
          "metadata": {"name": "s1", "namespace": ns},
          "spec": {"source": {"persistentVolumeClaimName": "disk"},
                   "volumeSnapshotClassName": "csi"}}
    made = k.apply(vs)
    assert "status" not in made
    made["status"] = {"readyToUse": True, "restoreSize": "1Gi"}
    out = k.json("update-status", "-", input=json.dumps(made))
    assert out["status"]["readyToUse"] is True
    got = k.json("get", "snapshot.storage.k8s.io/v1", "VolumeSnapshot", "s1", "-n", ns)
    assert got["status"] == {"readyToUse": True, "restoreSize": "1Gi"}
    # the main resource ignores status (subresource), so apply cannot fake it
    vs["status"] = {"readyToUse": False}
    assert k.apply(vs)["status"]["readyToUse"] is True


# ------------------------------------------------------------------ discovery

def test_resources_table_and_discovery(k):
    r = k.json("resource", "longhorn.io/v1beta2", "BackupVolume")
    assert r["plural"] == "backupvolumes" and r["namespaced"]
    r = k.json("resource", "v1", "Pod")                          # discovery, core group
    assert r == {"group": "", "version": "v1", "kind": "Pod", "plural": "pods",
                 "namespaced": True, "path": "/api/v1/namespaces/NS/pods"}
    r = k.json("resource", "rbac.authorization.k8s.io/v1", "ClusterRole")
    assert r["plural"] == "clusterroles" and not r["namespaced"]
    r = k.json("resource", "apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert r["path"] == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    lst = k.json("list", "rbac.authorization.k8s.io/v1", "ClusterRole", "--limit", "50")
    assert len(lst["items"]) > 50 and all(o["kind"] == "ClusterRole" for o in lst["items"])
    e, _ = k.err("resource", "v1", "NoSuchKind")
    assert "unknown kind NoSuchKind in apiVersion v1" in e["message"]
    e, _ = k.err("resource", "nothing.example.com/v1", "Foo")
    assert "does not serve nothing.example.com/v1" in e["message"]


# ------------------------------------------------------------------ watch

def test_watch_events_in_order(k, ns):
    rv = k.json("list", "v1", "ConfigMap", "-n", ns)["resourceVersion"]
    w = subprocess.Popen([k.bin, *k.conn, "watch", "v1", "ConfigMap", "-n", ns,
                          "--resource-version", rv, "--timeout", "6", "--bookmarks",
                          "-l", "w=1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=k.env)
    time.sleep(0.5)
    k.apply(cm("w1", ns, {"v": "1"}, {"w": "1"}))
    k.apply(cm("w1", ns, {"v": "2"}, {"w": "1"}))
    k.apply(cm("other", ns, {"v": "1"}, {"w": "0"}))              # filtered by the selector
    k.json("delete", "v1", "ConfigMap", "w1", "-n", ns)
    out, err = w.communicate(timeout=60)
    assert w.returncode == 0, err
    evs = [json.loads(line) for line in out.splitlines()]
    typed = [(e["type"], e["object"]["metadata"].get("name"), e["object"].get("data", {}).get("v"))
             for e in evs if e["type"] != "BOOKMARK"]
    assert typed == [("ADDED", "w1", "1"), ("MODIFIED", "w1", "2"), ("DELETED", "w1", "2")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
    assert rvs == sorted(rvs)
    assert evs[-1]["type"] == "BOOKMARK"      # the apiserver's bookmark before the timeout


def test_watch_stop_flag_and_max_events(k, ns):
    t0 = time.monotonic()
    p = k.run("watch", "v1", "ConfigMap", "-n", ns, "-l", "nothing=here", "--stop-after-ms", "700")
    dt = time.monotonic() - t0
    # an idle watch without a server timeout ends only through the stop flag
    # (~200 ms after it is set); the bound is loose because process start and
    # the TLS handshake dominate on a loaded machine - a broken flag hangs
    # until the 120 s subprocess timeout
    assert p.stdout == "" and dt < 15.0, dt
    k.apply(cm("m1", ns, labels={"me": "1"}))
    k.apply(cm("m2", ns, labels={"me": "1"}))
    p = k.run("watch", "v1", "ConfigMap", "-n", ns, "-l", "me=1", "--max-events", "1",
              timeout=20)
    assert len(p.stdout.splitlines()) == 1                       # callback stopped it


def _compact_primary_etcd(lab):
    """Compacts the primary's etcd to its current revision (etcd's own JSON
    gateway), so that resourceVersion 1 is gone whatever the lab's age."""
    import urllib.request
    ports = dict(line.split("=", 1) for line in
                 (Path(lab["LAB_STATE_DIR"]) / "ports.env").read_text().split())
    base = f"http://127.0.0.1:{ports['PRIMARY_ETCD']}/v3/kv"

    def post(path, body):
        req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    rev = int(post("/range", {"key": "AA==", "limit": 1})["header"]["revision"])
    post("/compaction", {"revision": str(rev), "physical": True})


def test_watch_errors(k, ns, lab, lab_cluster):
    # a resourceVersion older than the watch cache and etcd's compaction: an
    # ERROR event (410 Expired) reaches the caller, and the stream ends
    # normally.  On a young lab the watch cache still reaches back to
    # resourceVersion 1, so compact etcd and restart the apiserver: its new
    # cache starts at the current revision.
    for i in range(3):
        k.apply(cm(f"compact-{i}", ns))
    _compact_primary_etcd(lab)
    lab_cluster("primary", "restart", "apiserver")
    for i in range(3):
        k.apply(cm(f"after-{i}", ns))
    p = k.run("watch", "v1", "ConfigMap", "--resource-version", "1", "--timeout", "5", timeout=30)
    evs = [json.loads(line) for line in p.stdout.splitlines()]
    assert evs[0]["type"] == "ERROR", evs[:1]
    assert evs[0]["object"]["code"] == 410 and evs[0]["object"]["reason"] == "Expired"
    # a malformed resourceVersion: the HTTP error, with the Status message
    e, _ = k.err("watch", "v1", "ConfigMap", "-n", ns, "--resource-version", "not-a-number",
                 "--timeout", "2")
    assert e["status"] == 500 and e["reason"] == "InternalError", e
    assert "resourceVersion: Invalid value" in e["message"]
    assert e["message"].startswith(f"GET /api/v1/namespaces/{ns}/configmaps?watch=1&")


# ------------------------------------------------------------------ batches

def test_batch_apply_get_delete(k, ns):
    objs = [cm(f"b{i:03d}", ns, {"i": str(i)}, {"set": "batch"}) for i in range(60)]
    k2 = K(k.conn + ["--max-in-flight", "8"])
    t0 = time.monotonic()
    res = k2.json("apply", "-", "--batch", input=json.dumps(objs))
    dt = time.monotonic() - t0
    assert [r["metadata"]["name"] for r in res] == [o["metadata"]["name"] for o in objs]
    lst = k.json("list", "v1", "ConfigMap", "-n", ns, "-l", "set=batch")
    assert len(lst["items"]) == 60
    names = [f"b{i:03d}" for i in range(0, 60, 3)] + ["missing-1"]
    p = k2.run("batch-get", "v1", "ConfigMap", *names, "-n", ns, check=False)
    assert p.returncode == 1
    out = json.loads(p.stdout)
    assert out["failed"] == 1
    assert [r.get("metadata", {}).get("name") for r in out["results"][:-1]] == names[:-1]
    assert out["results"][-1]["error"]["status"] == 404
    # a bad object in a batch fails alone
    mixed = [cm("good", ns), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}]
    p = k2.run("apply", "-", "--batch", input=json.dumps(mixed), check=False)
    out = json.loads(p.stdout)
    assert p.returncode == 1 and out[0]["metadata"]["name"] == "good"
    assert "metadata.name is missing" in out[1]["error"]["message"]
    p = k2.run("batch-delete", "v1", "ConfigMap", *[f"b{i:03d}" for i in range(60)], "-n", ns)
    assert json.loads(p.stdout)["failed"] == 0
    assert k.json("list", "v1", "ConfigMap", "-n", ns, "-l", "set=batch")["items"] == []
    print(f"batch apply of 60 objects with 8 in flight: {dt:.2f}s")


def test_one_client_many_threads(k):
    # the forwarder shares one client between its watch threads: 8 threads x
    # 40 gets over the shared connection cache (run this under ASan too:
    # K8SCTL=build-asan/tests/tools/k8sctl)
    out = k.json("threads", "8", "40", "v1", "Namespace", "default", timeout=300)
    assert out["ok"] == 320 and out["failed"] == 0
    print(f"320 gets from 8 threads on one client: {out['seconds']:.2f}s")


# ------------------------------------------------------------------ connecting

def test_limited_token_kubeconfig_and_rbac(lab):
    kl = K(["--kubeconfig", lab["PRIMARY_KUBECONFIG_LIMITED"]])
    lst = kl.json("list", "v1", "PersistentVolumeClaim", "--limit", "10")
    assert isinstance(lst["items"], list)
    e, p = kl.err("list", "v1", "ConfigMap", "-n", "vm-prod")
    assert e["status"] == 403 and e["reason"] == "Forbidden"
    assert "system:serviceaccount:ocpv-dr:ocpv-dr-limited" in e["message"]
    assert e["message"].startswith("GET /api/v1/namespaces/vm-prod/configmaps?limit=500")
    assert_no_secret(lab, p.stdout, p.stderr)
    # writes allowed in vm-prod only
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "k8sc-" + uuid.uuid4().hex[:6], "namespace": "vm-prod"},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    out = kl.apply(pvc, "--dry-run")
    assert out["metadata"]["name"] == pvc["metadata"]["name"]
    pvc["metadata"]["namespace"] = "not-watched"
    e, p = kl.err("apply", "-", "--dry-run", input=json.dumps(pvc))
    assert e["status"] == 403
    assert_no_secret(lab, p.stdout, p.stderr)


def test_explicit_host_token_ca_and_env(lab, tmp_path):
    tf = lab["PRIMARY_LIMITED_TOKEN_FILE"]
    kh = K(["--host", lab["PRIMARY_API_URL"], "--ca-cert", lab["PRIMARY_CA_FILE"],
            "--token-file", tf])
    assert isinstance(kh.json("list", "v1", "PersistentVolume")["items"], list)
    # the same through the kubernetes.core environment variables
    ke = K([], env={"K8S_AUTH_HOST": lab["PRIMARY_API_URL"], "K8S_AUTH_API_KEY": token_of(lab),
                    "K8S_AUTH_SSL_CA_CERT": lab["PRIMARY_CA_FILE"]})
    assert isinstance(ke.json("list", "v1", "PersistentVolume")["items"], list)
    e, p = ke.err("get", "v1", "Namespace", "default")
    assert e["status"] == 403
    assert_no_secret(lab, p.stdout, p.stderr)
    # K8S_AUTH_KUBECONFIG + K8S_AUTH_CONTEXT, KUBECONFIG
    kk = K([], env={"K8S_AUTH_KUBECONFIG": lab["DR_KUBECONFIG"]})
    assert kk.json("server") == lab["DR_API_URL"].rstrip("/")
    kk = K([], env={"KUBECONFIG": f"{tmp_path}/missing:{lab['PRIMARY_KUBECONFIG']}"})
    assert kk.json("server") == lab["PRIMARY_API_URL"].rstrip("/")
    e, _ = K([], env={"K8S_AUTH_KUBECONFIG": lab["DR_KUBECONFIG"],
                      "K8S_AUTH_CONTEXT": "nope"}).err("server")
    assert 'context "nope" not found' in e["message"]
    # a bad token: 401 Unauthorized, token not echoed
    bad = tmp_path / "bad.token"
    bad.write_text("not-a-valid-token-0123456789abcdef\n")
    kb = K(["--host", lab["PRIMARY_API_URL"], "--ca-cert", lab["PRIMARY_CA_FILE"],
            "--token-file", str(bad)])
    e, p = kb.err("get", "v1", "Namespace", "default")
    assert e["status"] == 401 and e["reason"] == "Unauthorized"
    assert "not-a-valid-token" not in p.stdout + p.stderr


def test_tls_verification(lab, tmp_path):
    tf = lab["PRIMARY_LIMITED_TOKEN_FILE"]
    # no CA: the system store does not know the lab CA
    e, p = K(["--host", lab["PRIMARY_API_URL"], "--token-file", tf, "--retries", "-1"]).err(
        "list", "v1", "PersistentVolume")
    assert e["status"] == 0 and e["curl_code"] == 60, e     # CURLE_PEER_FAILED_VERIFICATION
    assert_no_secret(lab, p.stdout, p.stderr)
    # the other cluster's CA does not verify this one
    e, _ = K(["--host", lab["PRIMARY_API_URL"], "--ca-cert", lab["DR_CA_FILE"],
              "--token-file", tf, "--retries", "-1"]).err("list", "v1", "PersistentVolume")
    assert e["curl_code"] == 60
    # validate_certs=false
    ki = K(["--host", lab["PRIMARY_API_URL"], "--insecure", "--token-file", tf])
    assert isinstance(ki.json("list", "v1", "PersistentVolume")["items"], list)
    e, _ = K(["--host", lab["PRIMARY_API_URL"], "--ca-cert", str(tmp_path / "none.crt")]).err(
        "server")
    assert "ca_cert" in e["message"] and "none.crt" in e["message"]


def test_kubeconfig_token_file_and_tls_server_name(lab, tmp_path):
    # server by IP, verification by tls-server-name (a SAN of the lab's
    # apiserver certificate), credentials from a tokenFile relative to the
    # kubeconfig, CA from a relative file
    url = lab["PRIMARY_API_URL"].rstrip("/")
    (tmp_path / "tok").write_text(token_of(lab) + "\n")
    (tmp_path / "ca.pem").write_bytes(Path(lab["PRIMARY_CA_FILE"]).read_bytes())

    def kubeconfig(sni):
        f = tmp_path / f"kc-{sni}.yaml"
        f.write_text(f"""apiVersion: v1
kind: Config
current-context: sa
clusters:
- name: lab
  cluster:
    server: {url}
    certificate-authority: ca.pem
    tls-server-name: {sni}
contexts:
- name: sa
  context: {{cluster: lab, user: sa, namespace: vm-prod}}
users:
- name: sa
  user: {{tokenFile: tok}}
""")
        return str(f)
    kk = K(["--kubeconfig", kubeconfig("kubernetes.default.svc")])
    assert kk.json("server") == url
    assert isinstance(kk.json("list", "v1", "PersistentVolumeClaim", "-n", "vm-prod")["items"], list)
    e, p = K(["--kubeconfig", kubeconfig("not-in-the-cert.example"), "--retries", "-1"]).err(
        "list", "v1", "PersistentVolume")
    assert e["curl_code"] == 60, e           # the name really is what gets verified
    assert_no_secret(lab, p.stdout, p.stderr)


def test_in_cluster_service_account(lab, tmp_path):
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(token_of(lab))
    (sa / "ca.crt").write_bytes(Path(lab["PRIMARY_CA_FILE"]).read_bytes())
    (sa / "namespace").write_text("ocpv-dr")
    url = lab["PRIMARY_API_URL"].rstrip("/")
    host, port = url[len("https://"):].rsplit(":", 1)
    env = {"OCPVDR_SA_DIR": str(sa), "KUBERNETES_SERVICE_HOST": host,
           "KUBERNETES_SERVICE_PORT": port, "HOME": str(tmp_path)}
    kc = K(["--in-cluster"], env=env)
    assert kc.json("server") == url
    assert isinstance(kc.json("list", "v1", "PersistentVolume")["items"], list)
    e, _ = kc.err("list", "v1", "Secret", "-n", "ocpv-dr")
    assert e["status"] == 403
    # without --in-cluster and without a kubeconfig, the service account is found
    assert K([], env=env).json("server") == url


def test_connection_refused_is_clear(lab):
    e, p = K(["--host", "https://127.0.0.1:1", "--insecure", "--retries", "-1"]).err(
        "get", "v1", "Namespace", "default", timeout=30)
    assert e["status"] == 0 and e["curl_code"] == 7
    assert e["message"].startswith("GET /api/v1/namespaces/default: ")


def test_dr_cluster_is_separate(k, kdr, ns):
    k.apply(cm("only-primary", ns))
    e, _ = kdr.err("get", "v1", "ConfigMap", "only-primary", "-n", ns)
    assert e["status"] == 404


# ------------------------------------------------------------------ data safety (issue 15)

def test_dot_segments_never_reach_the_server(k, ns):
    """A claim named ".." is refused before any request (libcurl used to
    collapse /persistentvolumeclaims/.. into the Namespace's own path: a get
    of the claim returned the Namespace); a dot namespace likewise."""
    for name in ("..", "."):
        e, _ = k.err("get", "v1", "PersistentVolumeClaim", name, "-n", ns)
        assert "is a dot segment" in e["message"] and e["status"] == 0, e
        e, _ = k.err("delete", "v1", "PersistentVolumeClaim", name, "-n", ns)
        assert "is a dot segment" in e["message"], e
    e, _ = k.err("list", "v1", "PersistentVolumeClaim", "-n", "..")
    assert 'namespace ".."' in e["message"], e
    e, _ = k.err("apply", "-", input=json.dumps({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                                  "metadata": {"name": "..", "namespace": ns},
                                                  "spec": {"accessModes": ["ReadWriteOnce"],
                                                           "resources": {"requests": {"storage": "1Gi"}}}}))
    assert "is a dot segment" in e["message"], e
    # the Namespace was not touched by any of that
    nsobj = k.json("get", "v1", "Namespace", ns)
    assert all(f.get("manager") != "ocpv-dr" for f in nsobj["metadata"].get("managedFields", []))


def test_token_over_plain_http_is_refused(lab, tmp_path):
    """An http:// server with a bearer token: refused at connection time,
    the token never printed; a token with a CR/LF in it is refused too."""
    tok = token_of(lab)
    tf = tmp_path / "tok"
    tf.write_text(tok)
    plain = lab["PRIMARY_API_URL"].replace("https://", "http://")
    p = K(["--host", plain, "--token-file", str(tf)]).run("get", "v1", "Namespace", "default", check=False)
    assert p.returncode != 0
    assert "plain http" in p.stdout + p.stderr and "allow_insecure_http" in p.stdout + p.stderr
    assert_no_secret(lab, p.stdout, p.stderr)
    # a CR/LF inside the token (tokenFile, or token in the kubeconfig) is
    # refused naming the field: it would have split the Authorization header
    tf.write_text(tok[:10] + "\r\nX-Injected: 1\r\n" + tok[10:])
    for user in ({"tokenFile": str(tf)}, {"token": tok[:10] + "\r\nX-Injected: 1" + tok[10:]}):
        kc = tmp_path / "kc.json"
        kc.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "p", "cluster": {"server": lab["PRIMARY_API_URL"],
                                                   "certificate-authority": lab["PRIMARY_CA_FILE"]}}],
            "contexts": [{"name": "c", "context": {"cluster": "p", "user": "u"}}],
            "users": [{"name": "u", "user": user}]}))
        p = K(["--kubeconfig", str(kc)]).run("get", "v1", "Namespace", "default", check=False)
        out = p.stdout + p.stderr
        assert p.returncode != 0 and "control character" in out, out
        assert ("token file" in out) if "tokenFile" in user else ('users["u"].user.token' in out)
        assert_no_secret(lab, p.stdout, p.stderr)
