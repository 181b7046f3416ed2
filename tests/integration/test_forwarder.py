"""Lab tests of the C event forwarder (ocpv-dr-forwarder) against the lab's
real kube-apiserver (primary) and a real ansible-rulebook webhook source
(tests/integration/forwarder_rulebook.yml: eda.builtin.webhook with token and
HMAC, a debug action printing one parseable FWDEVENT line per event).

Every scenario checks the same invariant on what the rulebook received: for
each object (uid) the events arrive in order (strictly increasing sequence,
ADDED first, nothing after DELETED), the last state received is the last state
written, deletions arrive, and nothing from an unwatched namespace arrives.
Gaps covered: API server restart, 410 Gone (relist + diff), webhook down,
forwarder killed (SIGKILL) and restarted with its state directory, with
deletions made during each gap.

The tests use namespaces of their own (created and removed here).  The binary
comes from FORWARDER_BIN (default: the first build dir that has one, tests/_lab.py).
"""
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

import _lab
from _lab import REPO, forwarder_bin, free_port, wait_until
from _webhook import wait_readyz, wait_webhook

HERE = Path(__file__).resolve().parent
TOKEN = "fwd-test-token-" + uuid.uuid4().hex[:12]
HMAC_SECRET = "fwd-test-hmac-" + uuid.uuid4().hex[:12]


# ------------------------------------------------------------------ lab
# `lab` is conftest's session fixture (the env file named by LAB_ENV).

def kubectl(lab, *args, **kw):
    return _lab.kubectl(lab, *args, cluster="primary", **kw)


def apply(lab, obj):
    return kubectl(lab, "apply", "-f", "-", input=json.dumps(obj))


def rv_of(lab, kind, name, ns=None):
    args = ["get", kind, name, "-o", "jsonpath={.metadata.resourceVersion}"]
    if ns:
        args += ["-n", ns]
    return kubectl(lab, *args).stdout.strip()


def uid_of(lab, kind, name, ns=None):
    args = ["get", kind, name, "-o", "jsonpath={.metadata.uid}"]
    if ns:
        args += ["-n", ns]
    return kubectl(lab, *args).stdout.strip()


def pvc(name, ns, step, sc="nfs-csi"):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns, "labels": {"step": str(step)}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": sc,
                     "resources": {"requests": {"storage": "1Gi"}}}}


def pv(name, step, claim_ns=None):
    """A PV; with claim_ns pre-bound to claim `data` there (claimRef without
    uid: the PV controller leaves it Available, waiting for that claim)."""
    o = {"apiVersion": "v1", "kind": "PersistentVolume",
         "metadata": {"name": name, "labels": {"step": str(step)}},
         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                  "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "nfs-subdir",
                  "nfs": {"server": "198.18.0.9", "path": f"/export/{name}"}}}
    if claim_ns:
        o["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": claim_ns, "name": "data"}
    return o


def vs(name, ns, step):
    return {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": name, "namespace": ns, "labels": {"step": str(step)}},
            "spec": {"volumeSnapshotClassName": "csi-snap",
                     "source": {"persistentVolumeClaimName": "data"}}}


def vsc(name, ns, step):
    return {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
            "metadata": {"name": name, "labels": {"step": str(step)}},
            "spec": {"deletionPolicy": "Retain", "driver": "nfs.csi.k8s.io",
                     "source": {"snapshotHandle": f"handle-{name}"},
                     "volumeSnapshotRef": {"name": name, "namespace": ns}}}


# ------------------------------------------------------------------ receiver

class Rulebook:
    """A real ansible-rulebook running forwarder_rulebook.yml; every run
    appends to one log so events survive a restart of the receiver."""

    LINE = re.compile(r"FWDEVENT\|(.*)$")
    FIELDS = ["seq", "type", "kind", "ns", "name", "uid", "rv", "origin", "cluster", "step",
              "ready", "sc", "apiVersion", "rkind", "scope"]

    def __init__(self, lab, workdir):
        self.lab = lab
        self.port = free_port()
        self.log = Path(workdir) / "rulebook.log"
        self.vars = Path(workdir) / "vars.yml"
        self.vars.write_text(json.dumps({"fwd_port": self.port, "fwd_token": TOKEN,
                                         "fwd_hmac_secret": HMAC_SECRET}))
        self.proc = None
        venv = Path(lab["LAB_VENV"])
        self.exe = venv / "bin/ansible-rulebook"
        if not self.exe.is_file():
            pytest.fail(f"{self.exe} missing (LAB_VENV without ansible-rulebook)")

    def start(self):
        env = dict(os.environ, JAVA_HOME=self.lab.get("JAVA_HOME", ""), PYTHONUNBUFFERED="1",
                   PATH=f"{self.exe.parent}:{os.environ['PATH']}")
        out = open(self.log, "a")
        self.proc = subprocess.Popen(
            [str(self.exe), "--rulebook", str(HERE / "forwarder_rulebook.yml"),
             "-i", str(HERE / "forwarder_inventory.yml"), "--vars", str(self.vars)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        out.close()
        wait_webhook(self.proc, self.port, self.log, timeout=120)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def events(self):
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            m = self.LINE.search(line)
            if m:
                vals = m.group(1).split("|")
                if len(vals) == len(self.FIELDS):
                    e = dict(zip(self.FIELDS, vals))
                    e["seq"] = int(e["seq"])
                    out.append(e)
        return out


@pytest.fixture(scope="module")
def rulebook(lab, tmp_path_factory):
    rb = Rulebook(lab, tmp_path_factory.mktemp("rulebook"))
    rb.start()
    yield rb
    rb.stop()


# ------------------------------------------------------------------ namespaces

@pytest.fixture(scope="module")
def nss(lab):
    tag = uuid.uuid4().hex[:6]
    names = {"a": f"fwdt-{tag}-a", "b": f"fwdt-{tag}-b", "off": f"fwdt-{tag}-off"}
    for n in names.values():
        kubectl(lab, "create", "namespace", n)
    yield names
    for n in names.values():
        kubectl(lab, "delete", "namespace", n, "--wait=false", check=False)


# ------------------------------------------------------------------ forwarder

class Forwarder:
    def __init__(self, lab, rb, nss, workdir, state_dir=None, extra=None):
        self.lab, self.rb, self.workdir = lab, rb, Path(workdir)
        self.port = free_port()
        self.log = self.workdir / f"forwarder-{self.port}.log"
        self.env = dict(os.environ,
                        KUBECONFIG=lab["PRIMARY_KUBECONFIG"],
                        WEBHOOK_URL=f"http://127.0.0.1:{rb.port}/endpoint",
                        # the lab's rulebook listens on loopback without TLS
                        WEBHOOK_ALLOW_INSECURE_HTTP="true",
                        WEBHOOK_TOKEN=TOKEN, WEBHOOK_HMAC_SECRET=HMAC_SECRET,
                        WATCH_NAMESPACES=f"{nss['a']},{nss['b']}",
                        CLUSTER_NAME="lab-primary", LISTEN_ADDRESS=f"127.0.0.1:{self.port}",
                        WEBHOOK_BACKOFF_MAX_MS="1000", SHUTDOWN_GRACE_SECONDS="10",
                        LOG_LEVEL="info")
        if state_dir:
            self.env["STATE_DIR"] = str(state_dir)
        self.env.update(extra or {})
        self.proc = None

    def start(self, wait_ready=True):
        out = open(self.log, "a")
        self.proc = subprocess.Popen([forwarder_bin()], stdout=out, stderr=subprocess.STDOUT,
                                     env=self.env)
        out.close()
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=60):
        wait_readyz(self.proc, self.port, self.log, timeout)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def metric_sum(self, prefix):
        return sum(v for k, v in self.metrics().items() if k.startswith(prefix))

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc


@pytest.fixture
def forwarders(lab, rulebook, nss, tmp_path):
    started = []

    def make(**kw):
        f = Forwarder(lab, rulebook, nss, tmp_path, **kw)
        started.append(f)
        return f
    yield make
    for f in started:
        if f.proc and f.proc.poll() is None:
            f.stop(signal.SIGKILL)
    logs = "".join(f.log.read_text() for f in started if f.log.exists())
    assert TOKEN not in logs and HMAC_SECRET not in logs, "a secret reached the forwarder's log"


# ------------------------------------------------------------------ checks

def wait_for(rb, pred, timeout=90, what="events"):
    """The events rb received, once pred(events) holds; a timeout quotes the
    rulebook's errors and the last events received."""
    def state():
        errors = [l for l in rb.log.read_text(errors="replace").splitlines() if " ERROR " in l]
        return {"rulebook errors": errors[-5:],
                "received": [(e["type"], e["kind"], e["ns"], e["name"], e["step"]) for e in rb.events()][-40:]}
    return wait_until(lambda: (lambda evs: (evs,) if pred(evs) else None)(rb.events()),
                      timeout, 0.3, what, state=state)[0]


def history(evs, kind, name, ns=None):
    return [e for e in evs if e["kind"] == kind and e["name"] == name
            and (ns is None or e["ns"] == ns)]


def check_history(evs, kind, name, ns=None, final_step=None, deleted=False, first="ADDED"):
    """The invariant: ordered per object, first `first`, final state = last
    written, DELETED last (and only once) when deleted."""
    h = history(evs, kind, name, ns)
    assert h, f"no event for {kind} {ns}/{name}"
    # delivery is at-least-once: a POST the receiver took but whose answer was
    # lost (receiver killed mid-request) is sent again with the same sequence
    h = [e for i, e in enumerate(h) if i == 0 or e["seq"] != h[i - 1]["seq"]]
    seqs = [e["seq"] for e in h]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"{kind} {name}: reordered {seqs}"
    types = [e["type"] for e in h]
    if first:
        assert types[0] == first, f"{kind} {name}: first event {types}"
    dels = [i for i, t in enumerate(types) if t == "DELETED"]
    if deleted:
        assert dels == [len(types) - 1], f"{kind} {name}: DELETED must come once, last: {types}"
    else:
        assert not dels, f"{kind} {name}: unexpected DELETED: {types}"
    if final_step is not None:
        live = [e for e in h if e["type"] != "DELETED"]
        assert live and live[-1]["step"] == str(final_step), \
            f"{kind} {name}: last state received has step {live[-1]['step'] if live else None}, want {final_step}"
    for e in h:
        assert e["cluster"] == "lab-primary" and e["rkind"] == kind
    return h


def done(kind, name, ns=None, step=None, deleted=False):
    def pred(evs):
        h = history(evs, kind, name, ns)
        if deleted:
            return any(e["type"] == "DELETED" for e in h)
        return any(e["step"] == str(step) for e in h)
    return pred


def all_of(*preds):
    return lambda evs: all(p(evs) for p in preds)


# ================================================================== tests

def test_check_config_fails_fast(lab):
    exe = forwarder_bin()
    env = {"PATH": os.environ["PATH"], "WEBHOOK_URL": "ftp://nope", "WEBHOOK_TOKEN": TOKEN}
    p = subprocess.run([exe, "--check-config"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "WEBHOOK_URL: must start with http:// or https://" in p.stderr
    env["WEBHOOK_URL"] = "http://eda:5000/x"
    env["WEBHOOK_HMAC_SECRET"] = HMAC_SECRET
    env["WEBHOOK_HMAC_FORMAT"] = "raw"
    p = subprocess.run([exe, "--check-config"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "WEBHOOK_HMAC_FORMAT" in p.stderr
    del env["WEBHOOK_HMAC_FORMAT"]
    env["KUBECONFIG"] = lab["PRIMARY_KUBECONFIG"]
    # a plain http:// webhook would get the bearer token in clear text: refused...
    p = subprocess.run([exe, "--check-config"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "WEBHOOK_URL: plain http:// would send the bearer token (WEBHOOK_TOKEN)" in p.stderr
    assert "WEBHOOK_ALLOW_INSECURE_HTTP=true" in p.stderr
    # ...unless explicitly allowed, and then said loudly
    env["WEBHOOK_ALLOW_INSECURE_HTTP"] = "true"
    p = subprocess.run([exe, "--check-config"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "WARNING: INSECURE: the webhook is plain http://" in p.stderr
    assert "configuration OK" in p.stdout and TOKEN not in p.stdout + p.stderr
    assert HMAC_SECRET not in p.stdout + p.stderr
    h = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30)
    assert h.returncode == 0 and "WATCH_NAMESPACES" in h.stdout and "WEBHOOK_HMAC_ALGO" in h.stdout


def test_transport_warnings(lab, tmp_path):
    """Issue #15 item 9: every transport that is not verified TLS is named in
    a WARN line at start - webhook verification off, plain http allowed (even
    unused), the API server's verification off (kubeconfig
    insecure-skip-tls-verify) - and the running forwarder logs the same as
    JSON WARN lines; a verified https setup gives none."""
    exe = forwarder_bin()
    base = {"PATH": os.environ["PATH"], "WEBHOOK_TOKEN": TOKEN,
            "KUBECONFIG": lab["PRIMARY_KUBECONFIG"]}

    def check(extra):
        p = subprocess.run([exe, "--check-config"], env={**base, **extra}, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert TOKEN not in p.stdout + p.stderr
        summary = json.loads(p.stdout.split("configuration OK", 1)[1])
        return [w["setting"] for w in summary["warnings"]], p.stderr

    assert check({"WEBHOOK_URL": "https://eda.example:5000/x"}) == ([], "")
    settings, err = check({"WEBHOOK_URL": "https://eda.example:5000/x", "WEBHOOK_VERIFY_TLS": "false"})
    assert settings == ["WEBHOOK_VERIFY_TLS"] and "webhook TLS verification is off" in err
    settings, err = check({"WEBHOOK_URL": "https://eda.example:5000/x",
                           "WEBHOOK_ALLOW_INSECURE_HTTP": "true"})
    assert settings == ["WEBHOOK_ALLOW_INSECURE_HTTP"] and "plain http:// webhooks are accepted" in err
    # the lab's kubeconfig with TLS verification of the API server turned off
    kc = yaml.safe_load(Path(lab["PRIMARY_KUBECONFIG"]).read_text())
    for c in kc["clusters"]:
        c["cluster"].pop("certificate-authority", None)
        c["cluster"].pop("certificate-authority-data", None)
        c["cluster"]["insecure-skip-tls-verify"] = True
    insecure = tmp_path / "insecure.kubeconfig"
    insecure.write_text(yaml.safe_dump(kc))
    settings, err = check({"WEBHOOK_URL": "https://eda.example:5000/x", "KUBECONFIG": str(insecure)})
    assert settings == ["KUBECONFIG"] and "Kubernetes API TLS verification is off" in err


def test_manifests_server_dry_run(lab):
    """Every manifest in forwarder/deploy is accepted by the real API server."""
    files = sorted((REPO / "forwarder/deploy").glob("*.yaml"))
    assert {f.name for f in files} >= {"serviceaccount.yaml", "clusterrole.yaml",
                                       "clusterrolebinding.yaml", "secret.yaml", "deployment.yaml"}
    for f in files:
        p = kubectl(lab, "apply", "--dry-run=server", "-f", str(f), check=False)
        assert p.returncode == 0, f"{f.name}: {p.stderr}"
    dep = kubectl(lab, "apply", "--dry-run=server", "-o", "json", "-f",
                  str(REPO / "forwarder/deploy/deployment.yaml"))
    spec = json.loads(dep.stdout)["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["resources"]["limits"]["memory"]


def test_rbac_is_enough_and_least(lab, rulebook, nss, forwarders):
    """The ClusterRole is applied for real, the forwarder runs with a token of
    its ServiceAccount (not admin) and works; the account can do nothing else."""
    for f in ("serviceaccount.yaml", "clusterrole.yaml", "clusterrolebinding.yaml"):
        kubectl(lab, "apply", "-f", str(REPO / "forwarder/deploy" / f))
    sa = "system:serviceaccount:ocpv-dr:ocpv-dr-forwarder"
    for verb, res, want in [("watch", "persistentvolumes", "yes"),
                            ("list", "volumesnapshotcontents.snapshot.storage.k8s.io", "yes"),
                            ("watch", "persistentvolumeclaims", "yes"),
                            ("delete", "persistentvolumeclaims", "no"),
                            ("get", "secrets", "no"), ("list", "namespaces", "no"),
                            ("create", "volumesnapshots.snapshot.storage.k8s.io", "no")]:
        p = kubectl(lab, "auth", "can-i", verb, res, "--as", sa, "-A", check=False)
        assert p.stdout.strip() == want, f"can-i {verb} {res}: {p.stdout.strip()} (want {want})"
    token = kubectl(lab, "create", "token", "ocpv-dr-forwarder", "-n", "ocpv-dr").stdout.strip()
    f = forwarders(extra={"KUBECONFIG": "", "K8S_AUTH_HOST": lab["PRIMARY_API_URL"],
                          "K8S_AUTH_API_KEY": token, "K8S_AUTH_SSL_CA_CERT": lab["PRIMARY_CA_FILE"]})
    f.env.pop("KUBECONFIG")
    f.start()
    name = "rbac-" + uuid.uuid4().hex[:6]
    apply(lab, pvc(name, nss["a"], 1))
    evs = wait_for(rulebook, done("PersistentVolumeClaim", name, nss["a"], 1))
    check_history(evs, "PersistentVolumeClaim", name, nss["a"], final_step=1)
    assert token not in f.log.read_text()
    f.stop()
    kubectl(lab, "delete", "pvc", name, "-n", nss["a"], "--wait=false")


def test_every_change_in_watched_namespaces_arrives(lab, rulebook, nss, forwarders):
    f = forwarders().start()
    t = uuid.uuid4().hex[:6]
    objs = [("PersistentVolumeClaim", f"c-{t}", nss["a"], lambda s: pvc(f"c-{t}", nss["a"], s)),
            ("PersistentVolumeClaim", f"d-{t}", nss["b"], lambda s: pvc(f"d-{t}", nss["b"], s)),
            ("PersistentVolumeClaim", f"n-{t}", nss["off"], lambda s: pvc(f"n-{t}", nss["off"], s)),
            ("VolumeSnapshot", f"s-{t}", nss["a"], lambda s: vs(f"s-{t}", nss["a"], s)),
            ("VolumeSnapshot", f"o-{t}", nss["off"], lambda s: vs(f"o-{t}", nss["off"], s)),
            ("PersistentVolume", f"pv-{t}", None, lambda s: pv(f"pv-{t}", s)),
            ("VolumeSnapshotContent", f"vsc-{t}", None, lambda s: vsc(f"vsc-{t}", nss["a"], s))]
    for step in (1, 2, 3, 4):
        for _, _, _, mk in objs:
            apply(lab, mk(step))
    for kind, name, ns, _ in objs:
        kubectl(lab, "delete", kind.lower(), name, *(["-n", ns] if ns else []), "--wait=true", "--timeout=60s")
    watched = [o for o in objs if o[2] != nss["off"]]
    evs = wait_for(rulebook, all_of(*[done(k, n, ns, deleted=True) for k, n, ns, _ in watched]))
    for kind, name, ns, _ in watched:
        h = check_history(evs, kind, name, ns, final_step=4, deleted=True)
        assert h[0]["step"] in ("1", "2", "3", "4")
        assert h[0]["apiVersion"] == ("v1" if kind.startswith("Persistent") else "snapshot.storage.k8s.io/v1")
    for kind, name, ns, _ in objs:
        if ns == nss["off"]:
            assert not history(evs, kind, name), f"{kind} {ns}/{name} from an unwatched namespace arrived"
    # cluster-scoped kinds carry namespace null
    assert {e["ns"] for e in history(evs, "PersistentVolume", f"pv-{t}")} == {"None"}
    # scopeNamespace: the namespace for PVC/VS, the VSC's volumeSnapshotRef
    # namespace, null for a PV bound to no claim
    for kind, name, ns, _ in watched:
        want = {"PersistentVolume": "None", "VolumeSnapshotContent": nss["a"]}.get(kind, ns)
        assert {e["scope"] for e in history(evs, kind, name, ns)} == {want}, (kind, name)
    m = f.metrics()
    assert m['ocpvdr_forwarder_events_forwarded_total{kind="PersistentVolumeClaim",type="DELETED"}'] >= 2
    assert m["ocpvdr_forwarder_ready"] == 1
    f.stop()
    assert "stopped" in f.log.read_text()


def test_noise_is_filtered_and_ready_transition_arrives(lab, rulebook, nss, forwarders):
    f = forwarders().start()
    name = "snap-" + uuid.uuid4().hex[:6]
    apply(lab, vs(name, nss["a"], 1))
    wait_for(rulebook, done("VolumeSnapshot", name, nss["a"], 1))
    kubectl(lab, "patch", "volumesnapshot", name, "-n", nss["a"], "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": {"readyToUse": False}}))
    kubectl(lab, "patch", "volumesnapshot", name, "-n", nss["a"], "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": {"readyToUse": True,
                                                         "boundVolumeSnapshotContentName": "x"}}))
    evs = wait_for(rulebook, lambda evs: any(e["ready"] == "True" for e in
                                            history(evs, "VolumeSnapshot", name, nss["a"])))
    h = check_history(evs, "VolumeSnapshot", name, nss["a"], final_step=1)
    ready = [e["ready"] for e in h]
    assert ready[-1] == "True" and ready.index("True") > 0, ready
    before = f.metric_sum('ocpvdr_forwarder_events_filtered_total{kind="VolumeSnapshot"')
    # a write that changes only managedFields/resourceVersion: noise, not forwarded
    n_before = len(history(rulebook.events(), "VolumeSnapshot", name, nss["a"]))
    kubectl(lab, "patch", "volumesnapshot", name, "-n", nss["a"], "--type=merge", "-p",
            json.dumps({"metadata": {"managedFields": [{"manager": "noise-test", "operation": "Update",
                                                        "apiVersion": "snapshot.storage.k8s.io/v1",
                                                        "fieldsType": "FieldsV1",
                                                        "fieldsV1": {"f:metadata": {"f:labels": {}}}}]}}))
    time.sleep(3)
    assert len(history(rulebook.events(), "VolumeSnapshot", name, nss["a"])) == n_before
    assert f.metric_sum('ocpvdr_forwarder_events_filtered_total{kind="VolumeSnapshot"') > before
    kubectl(lab, "delete", "volumesnapshot", name, "-n", nss["a"])
    evs = wait_for(rulebook, done("VolumeSnapshot", name, nss["a"], deleted=True))
    check_history(evs, "VolumeSnapshot", name, nss["a"], deleted=True)
    f.stop()


def readyz(f):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{f.port}/readyz", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_webhook_down_then_up(lab, rulebook, nss, forwarders):
    """Receiver down: events queue (updates of one object coalesce), nothing
    is lost, order per object holds, deletions made meanwhile arrive.  While
    an event fails for longer than DELIVERY_STALL_SECONDS, /readyz says that
    delivery is stalled (503, naming the event); once it flows, ready again."""
    f = forwarders(extra={"DELIVERY_STALL_SECONDS": "2"}).start()
    t = uuid.uuid4().hex[:6]
    keep, gone, brief = f"keep-{t}", f"gone-{t}", f"brief-{t}"
    apply(lab, pvc(keep, nss["a"], 1))
    apply(lab, pvc(gone, nss["b"], 1))
    wait_for(rulebook, all_of(done("PersistentVolumeClaim", keep, nss["a"], 1),
                              done("PersistentVolumeClaim", gone, nss["b"], 1)))
    rulebook.stop()
    try:
        for step in range(2, 12):
            apply(lab, pvc(keep, nss["a"], step))
        kubectl(lab, "delete", "pvc", gone, "-n", nss["b"])
        apply(lab, pvc(brief, nss["a"], 1))
        apply(lab, pvc(brief, nss["a"], 2))
        kubectl(lab, "delete", "pvc", brief, "-n", nss["a"])
        time.sleep(5)   # down for a while: the forwarder retries with backoff
        assert f.metric_sum("ocpvdr_forwarder_webhook_errors_total") > 0
        assert f.metric_sum("ocpvdr_forwarder_events_coalesced_total") > 0
        status, body = readyz(f)
        assert status == 503 and "delivery stalled" in body and "PersistentVolumeClaim" in body, body
        assert f.metrics()["ocpvdr_forwarder_delivery_stalled"] == 1
    finally:
        rulebook.start()
    evs = wait_for(rulebook, all_of(done("PersistentVolumeClaim", keep, nss["a"], 11),
                                    done("PersistentVolumeClaim", gone, nss["b"], deleted=True),
                                    done("PersistentVolumeClaim", brief, nss["a"], deleted=True)))
    check_history(evs, "PersistentVolumeClaim", keep, nss["a"], final_step=11)
    check_history(evs, "PersistentVolumeClaim", gone, nss["b"], final_step=1, deleted=True)
    check_history(evs, "PersistentVolumeClaim", brief, nss["a"], final_step=2, deleted=True)
    assert len(history(evs, "PersistentVolumeClaim", keep, nss["a"])) < 11   # coalesced, not 10 more
    f.wait_ready(timeout=30)
    assert "webhook delivery stalled" in f.log.read_text()
    f.stop()


def big_pv(name, nbytes):
    """A PV whose JSON is about nbytes long (mountOptions are not limited in
    number): its event body exceeds ansible-rulebook's 1 MiB request limit."""
    o = pv(name, 1)
    o["spec"]["mountOptions"] = [f"opt{i:06d}=" + "x" * 90 for i in range(nbytes // 105)]
    return o


def test_poison_events_dead_lettered(lab, rulebook, nss, forwarders):
    """Issue #15 item 10: the webhook answers 413 to a body over its 1 MiB
    limit (aiohttp's client_max_size, a real ansible-rulebook answer).  Such
    an event was retried forever and pinned a worker: with the default four
    workers, five of them stopped delivery.  Now each is tried
    WEBHOOK_REJECT_ATTEMPTS (3) times, dead-lettered (counted, an ERROR line
    naming kind, name and resourceVersion) and a claim changed afterwards
    arrives.  The forwarder also says at start that it posts over plain http."""
    f = forwarders().start()
    t = uuid.uuid4().hex[:6]
    names = [f"poison-{t}-{i}" for i in range(5)]
    try:
        for n in names:
            kubectl(lab, "create", "-f", "-", input=json.dumps(big_pv(n, 1_200_000)))
        good = f"good-{t}"
        apply(lab, pvc(good, nss["a"], 1))
        evs = wait_for(rulebook, done("PersistentVolumeClaim", good, nss["a"], 1), timeout=120,
                       what="the claim created after five poison events")
        check_history(evs, "PersistentVolumeClaim", good, nss["a"], final_step=1)
        assert not any(e["name"] in names for e in evs), "a body over 1 MiB was accepted?"
        # the poison events still behind the claim (five, four workers) end too
        def log_lines():
            return [json.loads(line) for line in f.log.read_text().splitlines() if line.startswith("{")]

        def dead_lettered():
            return [r for r in log_lines() if "dead-lettered" in r.get("msg", "")]
        dl = wait_until(lambda: (lambda d: d if {r.get("name") for r in d} >= set(names) else None)(
            dead_lettered()), 60, 0.5, f"dead-letter lines for {names}", state=dead_lettered)
        lines = log_lines()
        dead = f.metric_sum('ocpvdr_forwarder_events_dead_lettered_total{kind="PersistentVolume",type="ADDED"')
        assert dead >= 5, dead
        for n in names:
            mine = [r for r in dl if r.get("name") == n]
            assert mine, f"no dead-letter line for {n}"
            r = mine[0]
            assert r["level"] == "error" and r["kind"] == "PersistentVolume" and r["status"] == 413
            assert r["resourceVersion"] and r["attempts"] == 3 and r.get("namespace") is None, r
        warns = [r for r in lines if r.get("level") == "warn"
                 and r.get("setting") == "WEBHOOK_ALLOW_INSECURE_HTTP"]
        assert warns and "plain http://" in warns[0]["msg"], "no start-up WARN line about http://"
        assert readyz(f)[0] == 200
    finally:
        f.stop()
        for n in names:
            kubectl(lab, "delete", "pv", n, "--wait=true", "--timeout=60s", check=False)


def test_killed_and_restarted_with_state_dir(lab, rulebook, nss, forwarders, tmp_path):
    """SIGKILL (a crash), changes and deletions while down, restart with the
    same state directory: the missed ADDED/MODIFIED/DELETED are emitted, the
    DELETED carrying the last known object (storage class)."""
    state = tmp_path / "state"
    state.mkdir()
    t = uuid.uuid4().hex[:6]
    stay, change, dele, new = f"stay-{t}", f"chg-{t}", f"del-{t}", f"new-{t}"
    pvname = f"pvdel-{t}"
    f = forwarders(state_dir=state).start()
    for n in (stay, change, dele):
        apply(lab, pvc(n, nss["a"], 1, sc="nfs-subdir"))
    apply(lab, pv(pvname, 1, claim_ns=nss["a"]))
    wait_for(rulebook, all_of(*[done("PersistentVolumeClaim", n, nss["a"], 1) for n in (stay, change, dele)],
                              done("PersistentVolume", pvname, None, 1)))
    time.sleep(1)
    assert f.stop(signal.SIGKILL) == -signal.SIGKILL
    n_stay = len(history(rulebook.events(), "PersistentVolumeClaim", stay, nss["a"]))
    apply(lab, pvc(change, nss["a"], 2, sc="nfs-subdir"))
    kubectl(lab, "delete", "pvc", dele, "-n", nss["a"])
    kubectl(lab, "delete", "pv", pvname)
    apply(lab, pvc(new, nss["b"], 1))
    f2 = forwarders(state_dir=state).start()
    evs = wait_for(rulebook, all_of(done("PersistentVolumeClaim", change, nss["a"], 2),
                                    done("PersistentVolumeClaim", dele, nss["a"], deleted=True),
                                    done("PersistentVolume", pvname, None, deleted=True),
                                    done("PersistentVolumeClaim", new, nss["b"], 1)))
    check_history(evs, "PersistentVolumeClaim", change, nss["a"], final_step=2)
    h = check_history(evs, "PersistentVolumeClaim", dele, nss["a"], final_step=1, deleted=True)
    assert h[-1]["origin"] == "list" and h[-1]["sc"] == "nfs-subdir", h[-1]
    hp = check_history(evs, "PersistentVolume", pvname, None, final_step=1, deleted=True)
    # re-derived from the journal: the claim's namespace of the last delivered PV
    assert hp[-1]["origin"] == "list" and hp[-1]["scope"] == nss["a"], hp[-1]
    check_history(evs, "PersistentVolumeClaim", new, nss["b"], final_step=1)
    # an unchanged object is not re-sent after the restart
    time.sleep(2)
    assert len(history(rulebook.events(), "PersistentVolumeClaim", stay, nss["a"])) == n_stay
    f2.stop()
    assert (state / "journal.jsonl").exists()


def _cluster(lab, *args):
    env = dict(os.environ, LAB_NAME=lab["LAB_NAME"])
    p = subprocess.run([str(REPO / "tests/lab/cluster"), "primary", *args], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]


def test_apiserver_restart(lab, rulebook, nss, forwarders):
    f = forwarders().start()
    t = uuid.uuid4().hex[:6]
    a, b = f"ra-{t}", f"rb-{t}"
    apply(lab, pvc(a, nss["a"], 1))
    apply(lab, pvc(b, nss["a"], 1))
    wait_for(rulebook, all_of(done("PersistentVolumeClaim", a, nss["a"], 1),
                              done("PersistentVolumeClaim", b, nss["a"], 1)))
    restarts = f.metric_sum("ocpvdr_forwarder_watch_restarts_total") + \
        f.metric_sum("ocpvdr_forwarder_relists_total")
    _cluster(lab, "restart", "apiserver")
    # right after the restart, before the forwarder has necessarily reconnected
    apply(lab, pvc(a, nss["a"], 2))
    kubectl(lab, "delete", "pvc", b, "-n", nss["a"])
    c = f"rc-{t}"
    apply(lab, pvc(c, nss["b"], 1))
    evs = wait_for(rulebook, all_of(done("PersistentVolumeClaim", a, nss["a"], 2),
                                    done("PersistentVolumeClaim", b, nss["a"], deleted=True),
                                    done("PersistentVolumeClaim", c, nss["b"], 1)), timeout=120)
    check_history(evs, "PersistentVolumeClaim", a, nss["a"], final_step=2)
    check_history(evs, "PersistentVolumeClaim", b, nss["a"], final_step=1, deleted=True)
    check_history(evs, "PersistentVolumeClaim", c, nss["b"], final_step=1)
    f.wait_ready()
    assert f.metric_sum("ocpvdr_forwarder_watch_restarts_total") + \
        f.metric_sum("ocpvdr_forwarder_relists_total") > restarts
    f.stop()


@pytest.mark.parametrize("sync_mode", ["stream", "list"])
def test_410_gone_relist_finds_missed_deletions(lab, rulebook, nss, forwarders, sync_mode):
    """The forwarder is frozen (SIGSTOP) while the API server restarts (its
    watch cache starts at a newer resourceVersion) and objects change: on
    resume its watch gets 410 Gone, it resyncs and the diff emits what it
    missed - the deletion included.  Both ways of resyncing: the streaming
    WATCH (sendInitialEvents, the default) and the paginated LIST."""
    f = forwarders(extra={"INITIAL_SYNC": sync_mode}).start()
    t = uuid.uuid4().hex[:6]
    x, z, y, pvx = f"gx-{t}", f"gz-{t}", f"gy-{t}", f"gpv-{t}"
    apply(lab, pvc(x, nss["a"], 1))
    apply(lab, pvc(z, nss["a"], 1))
    apply(lab, pv(pvx, 1, claim_ns=nss["b"]))
    wait_for(rulebook, all_of(done("PersistentVolumeClaim", x, nss["a"], 1),
                              done("PersistentVolumeClaim", z, nss["a"], 1),
                              done("PersistentVolume", pvx, None, 1)))
    relists = f.metric_sum("ocpvdr_forwarder_relists_total")
    f.proc.send_signal(signal.SIGSTOP)
    try:
        for i in range(5):   # move the global resourceVersion on
            kubectl(lab, "create", "configmap", f"churn-{t}-{i}", "-n", nss["off"])
        _cluster(lab, "restart", "apiserver")
        kubectl(lab, "delete", "pvc", x, "-n", nss["a"])
        kubectl(lab, "delete", "pv", pvx)
        apply(lab, pvc(z, nss["a"], 2))
        apply(lab, pvc(y, nss["a"], 1))
    finally:
        f.proc.send_signal(signal.SIGCONT)
    evs = wait_for(rulebook, all_of(done("PersistentVolumeClaim", x, nss["a"], deleted=True),
                                    done("PersistentVolumeClaim", z, nss["a"], 2),
                                    done("PersistentVolumeClaim", y, nss["a"], 1),
                                    done("PersistentVolume", pvx, None, deleted=True)), timeout=120)
    hx = check_history(evs, "PersistentVolumeClaim", x, nss["a"], final_step=1, deleted=True)
    check_history(evs, "PersistentVolumeClaim", z, nss["a"], final_step=2)
    check_history(evs, "PersistentVolumeClaim", y, nss["a"], final_step=1)
    assert f.metric_sum("ocpvdr_forwarder_relists_total") > relists
    log = f.log.read_text()
    assert "410 Gone" in log
    assert hx[-1]["origin"] == "relist", hx[-1]
    # no state dir: the PV's DELETED is a stub without spec, its scope is the
    # claim namespace remembered from the last version seen
    hp = check_history(evs, "PersistentVolume", pvx, None, final_step=1, deleted=True)
    assert hp[-1]["origin"] == "relist" and hp[-1]["scope"] == nss["b"] and hp[-1]["sc"] == "", hp[-1]
    resyncs = [json.loads(line) for line in log.splitlines()
               if '"msg":"relist done"' in line or '"msg":"initial list done"' in line]
    assert resyncs and {r["mode"] for r in resyncs} == {sync_mode}, resyncs
    f.stop()


def _cluster_env(lab, extra, *args):
    """tests/lab/cluster primary ARGS with extra environment (e.g. the
    apiserver's LAB_APISERVER_FEATURE_GATES); without extra, the lab's normal
    flags (any inherited knob removed)."""
    env = dict(os.environ, LAB_NAME=lab["LAB_NAME"])
    env.pop("LAB_APISERVER_FEATURE_GATES", None)
    env.update(extra)
    p = subprocess.run([str(REPO / "tests/lab/cluster"), "primary", *args], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]


def test_stream_refused_falls_back_to_list(lab, rulebook, nss, forwarders):
    """A kube-apiserver without streaming lists (--feature-gates=WatchList=false,
    like servers before 1.32) answers a sendInitialEvents=true watch with
    422 Invalid "sendInitialEvents is forbidden for watch unless the WatchList
    feature gate is enabled".  The forwarder (INITIAL_SYNC default = stream)
    must fall back to the paginated LIST once per watcher, say so in one
    warning, deliver every existing object (origin list) and then the live
    changes.  The primary apiserver is restarted with the gate off and
    restored to its normal flags whatever happens."""
    t = uuid.uuid4().hex[:6]
    pre = [(nss["a" if i % 2 else "b"], f"fb-{t}-{i}") for i in range(6)]
    for ns, name in pre:
        apply(lab, pvc(name, ns, 1))
    try:
        _cluster_env(lab, {"LAB_APISERVER_FEATURE_GATES": "WatchList=false"}, "restart", "apiserver")
        # the precondition: this server really refuses streaming
        probe = kubectl(lab, "get", "--raw",
                        f"/api/v1/namespaces/{nss['a']}/persistentvolumeclaims?watch=1"
                        "&allowWatchBookmarks=true&sendInitialEvents=true"
                        "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1", check=False)
        assert probe.returncode != 0 and "sendInitialEvents is forbidden" in probe.stderr, \
            (probe.returncode, probe.stdout[-500:], probe.stderr[-500:])

        f = forwarders().start()   # INITIAL_SYNC unset: stream
        evs = wait_for(rulebook, all_of(*(done("PersistentVolumeClaim", n, ns, 1) for ns, n in pre)),
                       what="the existing claims")
        for ns, name in pre:
            h = check_history(evs, "PersistentVolumeClaim", name, ns, final_step=1)
            assert h[0]["origin"] == "list", h[0]
        # live changes after the fallback: the plain watch works on this server
        (ma, mname), (da, dname) = pre[0], pre[1]
        new = f"fb-{t}-new"
        apply(lab, pvc(mname, ma, 2))
        kubectl(lab, "delete", "pvc", dname, "-n", da)
        apply(lab, pvc(new, nss["a"], 1))
        evs = wait_for(rulebook, all_of(done("PersistentVolumeClaim", mname, ma, 2),
                                        done("PersistentVolumeClaim", dname, da, deleted=True),
                                        done("PersistentVolumeClaim", new, nss["a"], 1)),
                       what="the live changes")
        check_history(evs, "PersistentVolumeClaim", mname, ma, final_step=2)
        check_history(evs, "PersistentVolumeClaim", dname, da, final_step=1, deleted=True)
        hn = check_history(evs, "PersistentVolumeClaim", new, nss["a"], final_step=1)
        assert hn[0]["origin"] == "watch", hn[0]
        f.wait_ready()
        lines = [json.loads(line) for line in f.log.read_text().splitlines()
                 if line.startswith("{")]
        falls = [r for r in lines if "falling back to LIST" in r.get("msg", "")]
        # one warning per watcher (kind, namespace), naming the kind; remembered
        fb = [(r.get("kind"), r.get("namespace")) for r in falls]
        assert len(fb) == len(set(fb)), f"streaming retried after the fallback: {fb}"
        assert ("PersistentVolumeClaim", nss["a"]) in fb and ("PersistentVolumeClaim", nss["b"]) in fb \
            and ("PersistentVolume", None) in fb, fb
        assert all(r.get("level", "warn").lower().startswith("warn") for r in falls), falls
        syncs = [r for r in lines if r.get("msg") in ("initial list done", "relist done")]
        assert syncs and {r["mode"] for r in syncs} == {"list"}, syncs
        assert len(syncs) == len(fb), (syncs, fb)
        f.stop()
    finally:
        _cluster_env(lab, {}, "restart", "apiserver")
