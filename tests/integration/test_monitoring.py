"""Lab tests of ocpv-dr-status-exporter (exporter/) and monitoring/ against
the lab's real DR and primary kube-apiservers: records written on DR (as
the dr_state module writes them: DR PV annotations, a ConfigMap
ns-<namespace> in a state namespace, a Velero Backup) show in a real
/metrics scrape; the RPO grows between two scrapes with nothing written in
between and turns the namespace Degraded with no job; a failed attempt shows
as ocpv_dr_volume_last_sync_success 0; series go when their records go;
`promtool check metrics` accepts a real scrape; every ocpv_dr_* metric the
alert rules and the dashboard query is in a real scrape; the scrape and the
dr_state module's status (the dr_status.yml playbook's source) agree on the
same records; a kubeconfig token never reaches the exporter's log.

Each test uses a state namespace of its own on DR (also the "OADP namespace":
no Velero server watches it) and a protected namespace made on the primary
with one bound claim; everything it creates is deleted afterwards.  The
exporter binary: EXPORTER_BIN, else the first build dir that has one.
promtool: the lab's (tests/lab/build-bins); missing = failure.
"""
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

import _modrun
from _lab import kubectl
from conftest import REPO, _free_port, wait_until

collection = _modrun.collection_fixture("dr_state", "DR_STATE_BIN")

BUILDS = ("build-ci", "build-me", "build-exp", "build")
ANN = "dr.ocpv.io/"
SOURCE = "lab-primary"


def ts(t):
    return datetime.fromtimestamp(int(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def exporter_bin():
    given = os.environ.get("EXPORTER_BIN")
    if given:
        assert Path(given).is_file(), f"EXPORTER_BIN={given} does not exist"
        return given
    for b in BUILDS:
        p = REPO / b / "exporter/ocpv-dr-status-exporter"
        if p.is_file():
            return str(p)
    pytest.fail("ocpv-dr-status-exporter not built (meson compile) and EXPORTER_BIN unset",
                pytrace=False)


def promtool(lab):
    p = Path(os.environ.get("PROMTOOL") or Path(lab["LAB_BIN"]) / "promtool")
    assert p.is_file(), f"promtool not found at {p}: tests/lab/build-bins builds it"
    return str(p)


def samples(text):
    """{series (name{labels}): value} of a scrape."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, val = line.rpartition(" ")
            out[series] = float(val)
    return out


class Exporter:
    def __init__(self, lab, tmp_path, **env):
        self.port = _free_port()
        self.log = tmp_path / "exporter.log"
        e = {k: v for k, v in os.environ.items() if not k.startswith(("K8S_AUTH_", "KUBECONFIG"))}
        e.update(KUBECONFIG=lab["DR_KUBECONFIG"], LISTEN_ADDRESS=f"127.0.0.1:{self.port}",
                 CACHE_SECONDS="2", PRIMARY_CACHE_SECONDS="2", SOURCE_CLUSTER=SOURCE,
                 LOG_LEVEL="debug")
        e.update(env)
        self.proc = subprocess.Popen([exporter_bin()], env=e, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "w"))
        wait_until(lambda: self.get("/readyz")[0] == 200, timeout=30, what="exporter /readyz 200",
                   state=lambda: (self.proc.poll(), self.log.read_text()[-2000:]))

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def scrape(self):
        code, body = self.get("/metrics")
        assert code == 200, body
        return body

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Protected:
    """One protected namespace: a bound claim on the primary, its DR copy (a
    managed DR PV with the sync records), the namespace record and a Backup."""

    def __init__(self, lab, unique_ns):
        self.lab = lab
        self.tag = uuid.uuid4().hex[:8]
        self.state_ns = f"mst-{self.tag}"
        kubectl(lab, "create", "namespace", self.state_ns)
        self.ns = unique_ns("primary", prefix="mon")
        self.pv = f"pvm-{self.tag}"
        self.dr_pvs = []
        pk = lab["PRIMARY_KUBECONFIG"]
        kubectl(lab, "apply", "-f", "-", kubeconfig=pk, input=json.dumps({
            "apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": self.pv},
                 "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                          "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "nfs-csi",
                          "claimRef": {"namespace": self.ns, "name": "disk-0"},
                          "nfs": {"server": "10.0.0.10", "path": f"/srv/{self.pv}"}}},
                {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": "disk-0", "namespace": self.ns},
                 "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "nfs-csi",
                          "resources": {"requests": {"storage": "1Gi"}}, "volumeName": self.pv}}]}))

        def bound():
            p = json.loads(kubectl(lab, "get", "pvc", "disk-0", "-n", self.ns, "-o", "json",
                                   kubeconfig=pk).stdout)
            return p.get("status", {}).get("phase") == "Bound"
        wait_until(bound, timeout=60, interval=0.5, what="claim disk-0 bound on the primary")
        self.uid = json.loads(kubectl(lab, "get", "pv", self.pv, "-o", "json",
                                      kubeconfig=pk).stdout)["metadata"]["uid"]

    def record(self, start, rpo_s):
        """The records of a successful mode-two run that started at `start`."""
        ann = {ANN + "source-cluster": SOURCE, ANN + "source-uid": self.uid,
               ANN + "last-sync-start": ts(start), ANN + "last-sync-end": ts(start + 1),
               ANN + "last-sync-bytes": "4096", ANN + "last-sync-source-uid": self.uid,
               ANN + "last-sync-consistency": "live", ANN + "last-sync-by": "periodic/test",
               ANN + "last-attempt-start": ts(start), ANN + "last-attempt-result": "ok",
               ANN + "last-attempt-reason": ""}
        kubectl(self.lab, "apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": self.pv, "labels": {"dr.ocpv.io/managed-by": "ocpv-dr"},
                         "annotations": ann},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "nfs-csi",
                     "claimRef": {"namespace": self.ns, "name": "disk-0"},
                     "nfs": {"server": "10.0.0.10", "path": f"/srv/dr/{self.pv}"}}}))
        self.dr_pvs.append(self.pv)
        bound = json.dumps([{"claim": "disk-0", "pv": self.pv, "pv_uid": self.uid}])
        kubectl(self.lab, "apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"ns-{self.ns}", "namespace": self.state_ns,
                         "labels": {"dr.ocpv.io/state": "namespace",
                                    "dr.ocpv.io/namespace": self.ns},
                         "annotations": {ANN + "source-cluster": SOURCE}},
            "data": {"full-sync.start": ts(start), "full-sync.end": ts(start + 1),
                     "full-sync.result": "ok", "full-sync.reason": "", "full-sync.by": "periodic/test",
                     "full-sync.volumes": "1", "full-sync.volumes-failed": "0",
                     "full-sync.last-ok-start": ts(start), "claims.checked-at": ts(start),
                     "claims.bound": bound, "claims.pending": "[]",
                     "target.rpo-s": str(rpo_s), "target.rto-s": "900",
                     "target.backup-max-age-s": "3600"}}))
        kubectl(self.lab, "apply", "-f", "-", input=json.dumps({
            "apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": f"bk-{self.tag}", "namespace": self.state_ns},
            "spec": {"includedNamespaces": [self.ns], "storageLocation": "default"},
            "status": {"phase": "Completed", "startTimestamp": ts(start),
                       "completionTimestamp": ts(start + 2)}}))

    def cleanup(self):
        kubectl(self.lab, "delete", "namespace", self.state_ns, "--wait=false", check=False)
        if self.dr_pvs:
            kubectl(self.lab, "delete", "pv", *self.dr_pvs, "--wait=false", check=False)
        pk = self.lab["PRIMARY_KUBECONFIG"]
        kubectl(self.lab, "delete", "pvc", "disk-0", "-n", self.ns, "--wait=false", check=False,
                kubeconfig=pk)
        kubectl(self.lab, "delete", "pv", self.pv, "--wait=false", check=False, kubeconfig=pk)


@pytest.fixture
def protected(lab, unique_ns):
    p = Protected(lab, unique_ns)
    yield p
    p.cleanup()


def test_scrape_follows_the_dr_records(lab, protected, tmp_path):
    """Records on DR -> Protected in a real scrape; RPO grows between two
    scrapes with nothing written; past the target Degraded with no job; a
    failed attempt -> volume sync success 0; the records deleted -> the
    namespace's series gone.  promtool accepts the scrape; every metric the
    rules and the dashboard use is in it."""
    p = protected
    start = int(time.time())
    p.record(start, rpo_s=25)
    exp = Exporter(lab, tmp_path, STATE_NAMESPACE=p.state_ns, OADP_NAMESPACE=p.state_ns,
                   PRIMARY_KUBECONFIG=lab["PRIMARY_KUBECONFIG"])
    try:
        L = f'protected_namespace="{p.ns}",source_cluster="{SOURCE}"'
        VOL = f'{L},persistentvolume="{p.pv}",persistentvolumeclaim="disk-0"'
        body1 = exp.scrape()
        t1 = time.time()
        s1 = samples(body1)
        assert time.time() - start < 25, "the lab was too slow to see Protected first"
        assert s1[f'ocpv_dr_namespace_state{{{L},state="Protected"}}'] == 1, \
            [k for k, v in s1.items() if p.ns in k and "reason" in k and v == 1]
        assert s1["ocpv_dr_status_dr_up"] == 1
        assert s1[f'ocpv_dr_primary_up{{source_cluster="{SOURCE}"}}'] == 1
        assert s1[f"ocpv_dr_namespace_claims{{{L}}}"] == 1
        assert s1[f"ocpv_dr_namespace_rpo_target_seconds{{{L}}}"] == 25
        assert s1[f"ocpv_dr_volume_last_sync_start_timestamp_seconds{{{VOL}}}"] == start
        assert s1[f"ocpv_dr_volume_last_sync_bytes{{{VOL}}}"] == 4096
        assert s1[f"ocpv_dr_namespace_backup_start_timestamp_seconds{{{L}}}"] == start
        r1 = s1[f"ocpv_dr_namespace_rpo_seconds{{{L}}}"]
        assert 0 <= r1 <= t1 - start + 1

        # nothing written: the RPO grows with the clock
        time.sleep(4)
        body2 = exp.scrape()
        t2 = time.time()
        s2 = samples(body2)
        r2 = s2[f"ocpv_dr_namespace_rpo_seconds{{{L}}}"]
        assert r2 >= r1 + 3, (r1, r2)
        assert abs(r2 - (t2 - start)) <= 2, (r2, t2 - start)

        # a real scrape passes promtool's checks (format and naming lint)
        pt = subprocess.run([promtool(lab), "check", "metrics"], input=body2, capture_output=True,
                            text=True, timeout=60)
        assert pt.returncode == 0, pt.stdout + pt.stderr
        # every ocpv_dr_* metric the alert rules and the dashboard use is in it
        present = {k.split("{")[0] for k in s2}
        for f in (REPO / "monitoring/ocpv-dr.rules.yml", REPO / "monitoring/ocpv-dr-dashboard.json"):
            used = set(re.findall(r"\bocpv_dr_[a-z_]+", f.read_text()))
            assert used, f
            assert used <= present, f"{f.name} uses metrics not in a real scrape: {used - present}"

        # past the target (25 s), no job ran: Degraded, rpo_above_target
        def degraded():
            s = samples(exp.scrape())
            return s if s[f'ocpv_dr_namespace_state{{{L},state="Degraded"}}'] == 1 else None
        s3 = wait_until(degraded, timeout=40, interval=1, what="Degraded once RPO > target")
        assert s3[f'ocpv_dr_namespace_reason{{{L},reason="rpo_above_target"}}'] == 1
        assert s3[f"ocpv_dr_namespace_rpo_seconds{{{L}}}"] > 25
        assert s3[f'ocpv_dr_namespace_state{{{L},state="Protected"}}'] == 0

        # a failed attempt after the success: last sync failed, copy kept
        now = int(time.time())
        kubectl(lab, "annotate", "--overwrite", "pv", p.pv, f"{ANN}last-attempt-start={ts(now)}",
                f"{ANN}last-attempt-result=failed", f"{ANN}last-attempt-reason=rsync exited 23")

        def failing():
            s = samples(exp.scrape())
            return s if s.get(f"ocpv_dr_volume_last_sync_success{{{VOL}}}") == 0 else None
        s4 = wait_until(failing, timeout=20, interval=1, what="volume sync success 0")
        assert s4[f'ocpv_dr_namespace_reason{{{L},reason="volume_sync_failed"}}'] == 1
        assert s4[f"ocpv_dr_volume_last_sync_start_timestamp_seconds{{{VOL}}}"] == start

        # the records deleted: the namespace's series go (no stale series)
        kubectl(lab, "delete", "configmap", f"ns-{p.ns}", "-n", p.state_ns)
        kubectl(lab, "delete", "pv", p.pv, "--wait=true", "--timeout=60s")
        wait_until(lambda: p.ns not in exp.scrape(), timeout=30, interval=1,
                   what="the deleted namespace's series gone")
        assert exp.proc.poll() is None
    finally:
        exp.stop()
    assert exp.proc.returncode == 0, exp.log.read_text()[-2000:]


def test_failed_dr_read_never_logs_the_token(lab, tmp_path):
    """A kubeconfig with a bearer token against an API server that is not
    there: --once fails (exit 1, ocpv_dr_status_dr_up 0 on stdout) and the
    log names the error, never the token."""
    token = "tok-" + uuid.uuid4().hex
    kc = tmp_path / "kubeconfig"
    kc.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:9",
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "x", "user": {"token": token}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("K8S_AUTH_", "KUBECONFIG"))}
    env.update(KUBECONFIG=str(kc), REQUEST_TIMEOUT_SECONDS="2", LOG_LEVEL="debug")
    p = subprocess.run([exporter_bin(), "--once"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1, p.stderr
    assert "ocpv_dr_status_dr_up 0" in p.stdout
    assert "cannot read the DR records" in p.stderr and "127.0.0.1 port 9" in p.stderr
    assert token not in p.stdout + p.stderr


def test_scrape_agrees_with_dr_state_status(lab, protected, tmp_path, collection):
    """Same records, same clock: the exporter's states, reason codes and RPO
    are the dr_state module's (mode status, what dr_status.yml reports) -
    both computed by dst_compute; RPO within CACHE_SECONDS + 5 s."""
    p = protected
    start = int(time.time())
    p.record(start, rpo_s=3600)
    exp = Exporter(lab, tmp_path, STATE_NAMESPACE=p.state_ns, OADP_NAMESPACE=p.state_ns,
                   PRIMARY_KUBECONFIG=lab["PRIMARY_KUBECONFIG"])
    L = f'protected_namespace="{p.ns}",source_cluster="{SOURCE}"'
    try:
        for step in ("fresh", "failed attempt"):
            if step == "failed attempt":
                kubectl(lab, "annotate", "--overwrite", "pv", p.pv,
                        f"{ANN}last-attempt-start={ts(time.time())}",
                        f"{ANN}last-attempt-result=failed", f"{ANN}last-attempt-reason=test")
                time.sleep(3)   # > CACHE_SECONDS: the exporter re-reads
            res = _modrun.run_task(lab, collection, "dr_state", {
                "kubeconfig": lab["DR_KUBECONFIG"], "mode": "status", "namespaces": [p.ns],
                "state_namespace": p.state_ns, "oadp_namespace": p.state_ns,
                "primary": {"kubeconfig": lab["PRIMARY_KUBECONFIG"]}}, drop_env_prefix="K8S_AUTH_")
            assert not res.get("failed"), res.get("msg")
            s = samples(exp.scrape())
            n, = res["namespaces"]
            states = {k.split('state="')[1][:-2] for k, v in s.items()
                      if k.startswith(f"ocpv_dr_namespace_state{{{L},") and v == 1}
            reasons = {k.split('reason="')[1][:-2] for k, v in s.items()
                       if k.startswith(f"ocpv_dr_namespace_reason{{{L},") and v == 1}
            assert states == {n["state"]}, (step, states, n)
            assert reasons == {r["code"] for r in n["reasons"]}, (step, reasons, n["reasons"])
            assert abs(s[f"ocpv_dr_namespace_rpo_seconds{{{L}}}"] - n["rpo_s"]) <= 2 + 5, (step, n)
        assert n["state"] == "Degraded"
    finally:
        exp.stop()


class Prometheus:
    """The lab's real Prometheus (tests/lab/go/prometheus), scraping the
    exporter every second and evaluating monitoring/ocpv-dr.rules.yml every
    second with every `for:` set to 0s (the clearing, not the waiting, is
    under test; promtool's unit tests cover `for:`)."""

    def __init__(self, lab, tmp_path, exporter_port):
        binary = Path(os.environ.get("PROMETHEUS_BIN") or Path(lab["LAB_BIN"]) / "prometheus")
        assert binary.is_file(), f"prometheus not found at {binary}: tests/lab/build-bins builds it"
        rules = re.sub(r"(?m)^(\s+for:) \S+$", r"\1 0s",
                       (REPO / "monitoring/ocpv-dr.rules.yml").read_text())
        (tmp_path / "rules.yml").write_text(rules)
        (tmp_path / "prometheus.yml").write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules.yml")],
            "scrape_configs": [{"job_name": "ocpv-dr-status-exporter",
                                "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}]}))
        self.port = _free_port()
        self.log = tmp_path / "prometheus.log"
        self.proc = subprocess.Popen(
            [str(binary), f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        wait_until(lambda: self.api("/-/ready", raw=True) == "ok", timeout=60,
                   what="prometheus ready", state=lambda: self.log.read_text()[-2000:])

    def api(self, path, raw=False, **params):
        q = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}" + (f"?{q}" if q else ""),
                                        timeout=10) as r:
                body = r.read().decode()
        except urllib.error.HTTPError as e:
            body = e.read().decode()
        except OSError:
            return None
        if raw:
            return "ok" if body.strip().lower().startswith("prometheus server is ready") else body
        return json.loads(body)

    def firing(self, ns):
        res = self.api("/api/v1/alerts") or {}
        return {a["labels"]["alertname"] for a in res.get("data", {}).get("alerts", [])
                if a["state"] == "firing" and a["labels"].get("protected_namespace") == ns}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_alerts_fire_and_clear_in_a_real_prometheus(lab, protected, tmp_path):
    """A real Prometheus scraping the exporter: a failed attempt fires
    OcpvDrVolumeSyncFailing; a later successful sync (written on DR) clears
    it with nothing restarted.  Every dashboard panel expr ($namespace = the
    test's namespace) is a valid query there, the state and RPO panels with
    data."""
    p = protected
    start = int(time.time())
    p.record(start, rpo_s=3600)
    exp = Exporter(lab, tmp_path, STATE_NAMESPACE=p.state_ns, OADP_NAMESPACE=p.state_ns,
                   CACHE_SECONDS="1")
    prom = None
    try:
        prom = Prometheus(lab, tmp_path, exp.port)
        wait_until(lambda: (prom.api("/api/v1/query", query=f'ocpv_dr_namespace_state{{protected_namespace="{p.ns}",state="Protected"}} == 1') or {}).get("data", {}).get("result"),
                   timeout=30, interval=1, what="Protected in Prometheus")
        assert prom.firing(p.ns) == set()
        kubectl(lab, "annotate", "--overwrite", "pv", p.pv, f"{ANN}last-attempt-start={ts(time.time())}",
                f"{ANN}last-attempt-result=failed", f"{ANN}last-attempt-reason=rsync exited 23")
        wait_until(lambda: "OcpvDrVolumeSyncFailing" in prom.firing(p.ns), timeout=40, interval=1,
                   what="OcpvDrVolumeSyncFailing firing", state=lambda: prom.firing(p.ns))
        # dashboard queries against the real Prometheus
        dash = json.loads((REPO / "monitoring/ocpv-dr-dashboard.json").read_text())
        for panel in dash["panels"]:
            for t in panel["targets"]:
                expr = t["expr"].replace("$namespace", p.ns)
                res = prom.api("/api/v1/query", query=expr)
                assert res and res["status"] == "success", (panel["title"], expr, res)
                if any(m in expr for m in ("ocpv_dr_namespace_state", "ocpv_dr_namespace_rpo_seconds",
                                           "ocpv_dr_volume_last_sync_success")):
                    assert res["data"]["result"], (panel["title"], expr)
        # repaired: a newer successful sync recorded -> the alert clears by itself
        ok = int(time.time()) + 1
        kubectl(lab, "annotate", "--overwrite", "pv", p.pv, f"{ANN}last-sync-start={ts(ok)}",
                f"{ANN}last-attempt-start={ts(ok)}", f"{ANN}last-attempt-result=ok",
                f"{ANN}last-attempt-reason=")
        wait_until(lambda: "OcpvDrVolumeSyncFailing" not in prom.firing(p.ns), timeout=40,
                   interval=1, what="OcpvDrVolumeSyncFailing cleared",
                   state=lambda: prom.firing(p.ns))
        assert exp.proc.poll() is None and prom.proc.poll() is None   # nothing restarted
    finally:
        if prom:
            prom.stop()
        exp.stop()


def test_new_claim_on_the_primary_is_unprotected_without_a_job(lab, protected, tmp_path):
    """Honesty rule: a new bound claim on the primary with no DR copy makes
    the namespace Unprotected in the scrape (PRIMARY_KUBECONFIG, within
    PRIMARY_CACHE_SECONDS) with no job run, naming nothing stale: RPO +Inf."""
    p = protected
    p.record(int(time.time()), rpo_s=3600)
    exp = Exporter(lab, tmp_path, STATE_NAMESPACE=p.state_ns, OADP_NAMESPACE=p.state_ns,
                   PRIMARY_KUBECONFIG=lab["PRIMARY_KUBECONFIG"])
    L = f'protected_namespace="{p.ns}",source_cluster="{SOURCE}"'
    pk = lab["PRIMARY_KUBECONFIG"]
    pv2 = f"pvn-{p.tag}"
    try:
        s = samples(exp.scrape())
        assert s[f'ocpv_dr_namespace_state{{{L},state="Protected"}}'] == 1
        kubectl(lab, "apply", "-f", "-", kubeconfig=pk, input=json.dumps({
            "apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv2},
                 "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                          "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "nfs-csi",
                          "claimRef": {"namespace": p.ns, "name": "disk-new"},
                          "nfs": {"server": "10.0.0.10", "path": f"/srv/{pv2}"}}},
                {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": "disk-new", "namespace": p.ns},
                 "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "nfs-csi",
                          "resources": {"requests": {"storage": "1Gi"}}, "volumeName": pv2}}]}))

        def unprotected():
            s = samples(exp.scrape())
            return s if s[f'ocpv_dr_namespace_state{{{L},state="Unprotected"}}'] == 1 else None
        s = wait_until(unprotected, timeout=60, interval=1, what="Unprotected after a new claim")
        assert s[f'ocpv_dr_namespace_reason{{{L},reason="claim_without_dr_copy"}}'] == 1
        assert s[f"ocpv_dr_namespace_claims_without_dr_copy{{{L}}}"] == 1
        assert s[f"ocpv_dr_namespace_rpo_seconds{{{L}}}"] == float("inf")
        vol = f'{L},persistentvolume="{pv2}",persistentvolumeclaim="disk-new"'
        assert s[f"ocpv_dr_volume_rpo_seconds{{{vol}}}"] == float("inf")
    finally:
        exp.stop()
        kubectl(lab, "delete", "pvc", "disk-new", "-n", p.ns, "--wait=false", check=False,
                kubeconfig=pk)
        kubectl(lab, "delete", "pv", pv2, "--wait=false", check=False, kubeconfig=pk)


def test_primary_unreachable_answers_from_the_dr_records(lab, protected, tmp_path):
    """The primary not answering (a kubeconfig to a closed port): the scrape
    still answers from DR's records (recorded claims), says
    ocpv_dr_primary_up 0 and primary_not_checked, counts the failed reads."""
    p = protected
    p.record(int(time.time()), rpo_s=3600)
    kc = tmp_path / "primary.kubeconfig"
    kc.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:9",
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "x", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}))
    exp = Exporter(lab, tmp_path, STATE_NAMESPACE=p.state_ns, OADP_NAMESPACE=p.state_ns,
                   PRIMARY_KUBECONFIG=str(kc))
    L = f'protected_namespace="{p.ns}",source_cluster="{SOURCE}"'
    try:
        s = samples(exp.scrape())
        assert s[f'ocpv_dr_primary_up{{source_cluster="{SOURCE}"}}'] == 0
        assert s['ocpv_dr_status_read_errors_total{cluster="primary"}'] >= 1
        assert s["ocpv_dr_status_dr_up"] == 1
        assert s[f'ocpv_dr_namespace_reason{{{L},reason="primary_not_checked"}}'] == 1
        assert s[f'ocpv_dr_namespace_state{{{L},state="Protected"}}'] == 1   # recorded claim disk-0
        assert s[f"ocpv_dr_namespace_claims{{{L}}}"] == 1
    finally:
        exp.stop()
    assert "not-a-real-token" not in exp.log.read_text()


def test_exporter_manifests_server_dry_run(lab):
    """Every manifest in exporter/deploy is accepted by the real DR API server as
    shipped - except servicemonitor.yaml: the lab has no Prometheus Operator
    CRDs (its fields are checked statically in tests/static/test_monitoring.py)."""
    files = sorted((REPO / "exporter/deploy").glob("*.yaml"))
    names = {f.name for f in files}
    assert names >= {"serviceaccount.yaml", "clusterrole.yaml", "role.yaml", "service.yaml",
                     "deployment.yaml", "servicemonitor.yaml"}, names
    for f in files:
        if f.name == "servicemonitor.yaml":
            continue
        p = kubectl(lab, "apply", "--dry-run=server", "-f", str(f), check=False)
        assert p.returncode == 0, f"{f.name}: {p.stderr}"
