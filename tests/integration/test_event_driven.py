"""Mode one end to end in the lab: the real C forwarder watching the primary
kube-apiserver posts to a real ansible-rulebook running the product CLI
rulebook (rulebooks/ocp_dr_events_cli.yml: eda.builtin.webhook with token and
HMAC, throttled rules, run_playbook), which runs the event playbooks with the
real ansible-playbook and the C modules (nfs_rsync_sync over rsync+ssh between
the lab's storage hosts, k8s_dr_clean against the DR kube-apiserver).

Checks: PVCs on nfs-subdir and nfs-csi appear on DR (PV pointing at nfs-dr,
Retain, claim Bound, byte-identical data), a VolumeSnapshot turning ready
appears on DR, deleting PVC and PV on the primary removes them and the DR data,
a forged deletion event naming another volume's directory removes nothing, an
unwatched namespace is ignored; event-to-DR latency is measured and printed
(`-s` shows the EDA-LATENCY lines; EDA_BURST=N sets the burst size).  Binding a
claim (PV + PVC MODIFIED Bound) and deleting it (PVC + PV DELETED) must each
cost ONE job: the rules are per handler, grouped by the payload's scopeNamespace
(EDA-RUNS lines).  EDA_RULEBOOK=<path> runs the main rig on another CLI
rulebook (e.g. an older one from git, to measure before/after).

The rulebooks are generated from rulebooks/src/rules.yml: tests/static/test_rulebooks.py
fails when a committed rulebook or the AAP job template names drift."""
import hashlib
import hmac
import json
import os
import re
import signal
import statistics
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import REPO, _free_port, ansible_env, make_fresh_run_env, seed_workload, tree_sums, wait_until
from _lab import forwarder_bin
from _webhook import wait_readyz, wait_webhook

TOKEN = "eda-test-token-" + uuid.uuid4().hex[:12]
HMAC_SECRET = "eda-test-hmac-" + uuid.uuid4().hex[:12]


# ------------------------------------------------------------------ helpers



def _seed(lab, ns, count, prefix, snapshots=0, wait=True, background=False):
    return seed_workload(lab, ns, count, prefix, snapshots=snapshots, files=2, wait=wait, background=background)


def _pct(vals, q):
    s = sorted(vals)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


class Rig:
    """ansible-rulebook (CLI rulebook) + forwarder, both real processes."""

    def __init__(self, lab, workdir, watched, also_forwarded, hmac=True):
        self.lab, self.workdir, self.hmac = lab, Path(workdir), hmac
        self.rb = self.fwd = self.run_dir = None
        self.rulebook = ((os.environ.get("EDA_RULEBOOK") or "rulebooks/ocp_dr_events_cli.yml") if hmac
                         else "rulebooks/ocp_dr_events_cli_token_only.yml")
        try:
            self._start(lab, watched, also_forwarded)
        except BaseException:
            self.stop(check_logs=False)     # never leave a rulebook or forwarder behind
            raise

    def _start(self, lab, watched, also_forwarded):
        self.port = _free_port()
        self.health = _free_port()
        inv = yaml.safe_load(Path(lab["LAB_INVENTORY"]).read_text())
        host = inv["all"]["children"]["primary_nfs_server"]["hosts"]["nfs-primary"]
        host.update(dr_rsync_ssh_key=lab["LAB_SSH_KEY"], dr_rsync_known_hosts=lab["LAB_KNOWN_HOSTS"])
        # as inventory/hosts.ini: the rulebook's `hosts: localhost` limits the playbooks to it
        inv["all"].setdefault("hosts", {})["localhost"] = {
            "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
        self.inventory = self.workdir / "inventory.yml"
        self.inventory.write_text(yaml.safe_dump(inv))
        self.vars = self.workdir / "vars.yml"
        rb_vars = {"watched_namespaces": watched, "webhook_host": "127.0.0.1", "webhook_port": self.port,
                   "webhook_token": TOKEN}
        if self.hmac:
            rb_vars["webhook_hmac_secret"] = HMAC_SECRET
        self.vars.write_text(yaml.safe_dump(rb_vars))
        self.rb_log = self.workdir / "rulebook.log"
        self.fwd_log = self.workdir / "forwarder.log"
        # a fresh runner (conftest make_fresh_run_env: empty HOME, TMPDIR, no
        # OCPV_DR_EVENT_STATE_DIR): jobs keep nothing on the runner's disk - a
        # queued job whose window a later-started job already covered finds
        # that out from DR's record (docs/eda.md); stop() checks that nothing
        # but ansible's own temp files was left there
        self.run_dir, env = make_fresh_run_env(ansible_env(lab, json_output=False))
        # profile_tasks: every task of every job with a timestamp and its
        # duration in rulebook.log (where a burst's time goes)
        env.update(JAVA_HOME=lab.get("JAVA_HOME", ""), PYTHONUNBUFFERED="1",
                   ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks")
        with open(self.rb_log, "a") as out:
            self.rb = subprocess.Popen(
                [os.path.join(lab["LAB_VENV"], "bin", "ansible-rulebook"),
                 "--rulebook", self.rulebook, "-i", str(self.inventory),
                 "--vars", str(self.vars), "--print-events"],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_webhook(self.rb, self.port, self.rb_log)
        fenv = dict(os.environ, KUBECONFIG=lab["PRIMARY_KUBECONFIG"],
                    WEBHOOK_URL=f"http://127.0.0.1:{self.port}/endpoint",
                    WEBHOOK_ALLOW_INSECURE_HTTP="true",   # the lab's rulebook: loopback, no TLS
                    WEBHOOK_TOKEN=TOKEN,
                    WATCH_NAMESPACES=",".join(watched + also_forwarded), CLUSTER_NAME="primary",
                    LISTEN_ADDRESS=f"127.0.0.1:{self.health}",
                    LOG_LEVEL="debug")    # "event forwarded" lines: when each event was delivered
        fenv.pop("WEBHOOK_HMAC_SECRET", None)
        if self.hmac:
            fenv["WEBHOOK_HMAC_SECRET"] = HMAC_SECRET
        with open(self.fwd_log, "a") as out:
            self.fwd = subprocess.Popen([forwarder_bin()], stdout=out, stderr=subprocess.STDOUT,
                                        env=fenv, start_new_session=True)
        wait_readyz(self.fwd, self.health, self.fwd_log, timeout=90)

    # what the tools themselves leave in a runner's HOME / TMPDIR (none of it ocpv-dr state):
    # ansible's temp dirs, ansible-rulebook's ansible-runner private data dirs (tmp/eda*),
    # the kubernetes client's API discovery cache (k8srcp-*.json), python multiprocessing
    RUNNER_OWN = re.compile(r"^(home/\.ansible/(tmp|cp)/|tmp/ansible-local|tmp/eda[^/]*/|tmp/k8srcp-[0-9a-f]+\.json$"
                            r"|tmp/pymp-[^/]+/)")

    def runner_files(self):
        """Files the jobs left under the runner's HOME and TMPDIR, other than the
        tools' own (RUNNER_OWN)."""
        if not self.run_dir:
            return []
        out = []
        for top in ("home", "tmp"):
            for d, _dirs, files in os.walk(os.path.join(self.run_dir, top)):
                out += [os.path.relpath(os.path.join(d, f), self.run_dir) for f in files]
        return sorted(f for f in out if not self.RUNNER_OWN.match(f))

    def post(self, body, token=TOKEN, sign=False):
        """POST body (bytes) to the rulebook's webhook; returns the HTTP status."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if sign:
            headers["x-hub-signature-256"] = "sha256=" + hmac.new(
                HMAC_SECRET.encode(), body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/endpoint", data=body,
                                     headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def playbook_runs(self):
        text = self.rb_log.read_text(errors="replace")
        return text.count("PLAY RECAP")

    def cpu(self):
        """CPU seconds of ansible-rulebook and of the jobs it ran and reaped
        (ansible-playbook and everything it ran: children's times)."""
        f = Path(f"/proc/{self.rb.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")

    def plays(self, playbook):
        """Runs of one event playbook started so far (its play header)."""
        return self.rb_log.read_text(errors="replace").count(f"PLAY [ocpv-dr event: {playbook}]")

    def wait_idle(self, quiet=8, timeout=600):
        """Until no job runs and none started for `quiet` seconds (longer than a
        throttle window plus a job's start): the jobs of earlier events are
        all counted."""
        last, since = None, time.time()
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.rb_log.read_text(errors="replace")
            now = (text.count("PLAY [ocpv-dr event: "), text.count("PLAY RECAP"))
            if now != last:
                last, since = now, time.time()
            elif now[0] == now[1] and time.time() - since >= quiet:
                return
            time.sleep(0.5)
        raise AssertionError(f"ansible-rulebook still running jobs after {timeout}s: {last}")

    def forwarded(self, types, kind, name):
        """Epoch seconds when the forwarder delivered (2xx) the LAST event of
        one of types (a string or a tuple) for the object; None when none."""
        from datetime import datetime, timezone
        types = (types,) if isinstance(types, str) else tuple(types)
        when = None
        for line in self.fwd_log.read_text(errors="replace").splitlines():
            if '"event forwarded"' not in line and '"webhook delivery recovered"' not in line:
                continue
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("type") in types and (e.get("kind"), e.get("name")) == (kind, name):
                when = datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=timezone.utc).timestamp()
        return when

    def stop(self, check_logs=True):
        for p in (self.fwd, self.rb):
            if p and p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(10)
        left = self.runner_files()
        if self.run_dir:
            import shutil
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if not check_logs:
            return
        assert not left, f"jobs left state on the runner's disk (AAP would lose it): {left[:20]}"
        logs = self.rb_log.read_text(errors="replace") + self.fwd_log.read_text(errors="replace")
        assert TOKEN not in logs.replace(f"webhook_token: {TOKEN}", "") and HMAC_SECRET not in self.fwd_log.read_text(), \
            "a secret reached a log"


@pytest.fixture(scope="module")
def nss(k8s_client):
    from kubernetes import client
    tag = uuid.uuid4().hex[:6]
    names = {"w": f"eda-{tag}-w", "w2": f"eda-{tag}-w2", "off": f"eda-{tag}-off", "tok": f"eda-{tag}-tok"}
    for cluster in ("primary", "dr"):
        api = client.CoreV1Api(k8s_client(cluster))
        for n in names.values():
            api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=n)))
    yield names
    for cluster in ("primary", "dr"):
        api = client.CoreV1Api(k8s_client(cluster))
        for pv in api.list_persistent_volume().items:
            if any(pv.metadata.name.startswith(f"pv-{n}-") for n in names.values()):
                api.delete_persistent_volume(pv.metadata.name)
        for n in names.values():
            try:
                api.delete_namespace(n)
            except client.ApiException:
                pass


@pytest.fixture(scope="module")
def rig(lab, nss, tmp_path_factory):
    r = Rig(lab, tmp_path_factory.mktemp("eda"), [nss["w"], nss["w2"]], [nss["off"]])
    yield r
    r.stop()


def _dr_state(k8s_client, ns):
    from kubernetes import client
    core = client.CoreV1Api(k8s_client("dr"))
    pvcs = {c.metadata.name: c for c in core.list_namespaced_persistent_volume_claim(ns).items}
    pvs = {p.metadata.name: p for p in core.list_persistent_volume().items
           if p.spec.claim_ref and p.spec.claim_ref.namespace == ns}
    return pvcs, pvs


def _converged_set(lab, k8s_client, ns, names):
    """The claims in names that are Bound on DR to their Retain PV on nfs-dr
    with byte-identical data - from ONE DR listing and one scan of each
    export (a check per claim made a poll over 200 claims take minutes, and
    the measured latencies with it)."""
    pvcs, pvs = _dr_state(k8s_client, ns)
    src_all, dst_all = tree_sums(lab["NFS_PRIMARY_EXPORT"], f"{ns}-*"), tree_sums(lab["NFS_DR_EXPORT"], f"{ns}-*")
    done = set()
    for n in names:
        c = pvcs.get(n)
        if not c or c.status.phase != "Bound":
            continue
        pv = pvs.get(c.spec.volume_name)
        if not pv or pv.spec.persistent_volume_reclaim_policy != "Retain":
            continue
        server = pv.spec.nfs.server if pv.spec.nfs else pv.spec.csi.volume_attributes["server"]
        if server != lab["NFS_DR_ADDR"]:
            continue
        sub = f"{ns}-{n}-"
        src = {k: v for k, v in src_all.items() if sub in k.split("/")[0]}
        if src and {k: v for k, v in dst_all.items() if sub in k.split("/")[0]} == src:
            done.add(n)
    return done


def _converged(lab, k8s_client, ns, names):
    """True when every claim in names is Bound on DR to its Retain PV on nfs-dr
    and its data is byte-identical."""
    return _converged_set(lab, k8s_client, ns, names) == set(names)


# ------------------------------------------------------------------ mode one

def test_event_driven_sync_and_delete(lab, k8s_client, nss, rig):
    from kubernetes import client
    ns, ns2, off = nss["w"], nss["w2"], nss["off"]
    t0 = time.time()
    # a second watched namespace at the same time: its events land in the same
    # throttle windows (one firing, several groups: `events`, not `event`)
    other = _seed(lab, ns2, 1, "c", wait=False, background=True)
    _seed(lab, ns, 2, "a", snapshots=1)      # a-disk-0 nfs-subdir, a-disk-1 nfs-csi, a-disk-0-snap
    _seed(lab, off, 2, "u", snapshots=1)     # forwarded, but not watched by the rulebook
    assert other.wait(300) == 0, other.stderr.read()
    names = ["a-disk-0", "a-disk-1"]
    wait_until(lambda: _converged(lab, k8s_client, ns, names) and _converged(lab, k8s_client, ns2, ["c-disk-0"]),
               timeout=600, interval=1, what=f"claims {names} and {ns2}/c-disk-0 replicated to DR")
    print(f"EDA-LATENCY first-sync (2+1 volumes in 2 namespaces + snapshot, cold): {time.time() - t0:.1f}s")
    multi = [line for line in rig.rb_log.read_text(errors="replace").splitlines()
             if "EDA-EVENT" in line and (f"{ns}, {ns2}" in line or f"{ns2}, {ns}" in line)]
    print(f"EDA-MULTI jobs that covered both namespaces at once: {len(multi)}")
    pvcs, pvs = _dr_state(k8s_client, ns)
    assert {pvcs[n].spec.storage_class_name for n in names} == {"nfs-subdir", "nfs-csi"}

    custom = client.CustomObjectsApi(k8s_client("dr"))
    vs = wait_until(lambda: [v for v in custom.list_namespaced_custom_object(
        "snapshot.storage.k8s.io", "v1", ns, "volumesnapshots")["items"]
        if v["metadata"]["name"] == "a-disk-0-snap"], timeout=300, interval=1,
        what="ready VolumeSnapshot on DR")
    assert vs[0]["metadata"]["labels"]["dr.ocpv.io/managed-by"] == "ocpv-dr"
    contents = custom.list_cluster_custom_object("snapshot.storage.k8s.io", "v1", "volumesnapshotcontents")["items"]
    assert any(c["spec"]["volumeSnapshotRef"]["namespace"] == ns for c in contents)
    # the snapshotter makes the content, then the snapshot ready (ms apart):
    # one rule for VS + VSC, one group (scopeNamespace) -> ONE snapshot job
    rig.wait_idle()
    snap_jobs = rig.plays("handle_snapshot_sync")
    t_vsc = rig.forwarded(("ADDED", "MODIFIED"), "VolumeSnapshotContent", f"snapcontent-{ns}-a-disk-0-snap")
    t_vs = rig.forwarded(("ADDED", "MODIFIED"), "VolumeSnapshot", "a-disk-0-snap")
    assert t_vsc and t_vs, "the forwarder log lacks the snapshot events (LOG_LEVEL=debug)"
    gap = abs(t_vs - t_vsc)
    print(f"EDA-RUNS snapshot VS + VSC ready: {snap_jobs} snapshot sync job(s); last events {gap:.2f}s apart")
    if gap < 2.5:
        assert snap_jobs == 1, f"{snap_jobs} snapshot sync jobs for one VS + VSC ready {gap:.2f}s apart"
    else:
        assert 1 <= snap_jobs <= 2, snap_jobs

    # the unwatched namespace: its events reached the rulebook (forwarder watches
    # it) but no rule matched, so nothing of it exists on DR
    text = rig.rb_log.read_text(errors="replace")
    assert off in text, "the unwatched namespace's events never reached the rulebook (the test proves nothing)"
    upvcs, upvs = _dr_state(k8s_client, off)
    assert not upvcs and not upvs and not tree_sums(lab["NFS_DR_EXPORT"], f"{off}-*")

    # delete the nfs-csi claim and its volume on the primary
    core_p = client.CoreV1Api(k8s_client("primary"))
    victim, pv_name = "a-disk-1", pvcs["a-disk-1"].spec.volume_name
    rig.wait_idle()
    deletes0 = rig.plays("handle_pv_pvc_delete")
    t1 = time.time()
    core_p.delete_namespaced_persistent_volume_claim(victim, ns)
    core_p.delete_persistent_volume(pv_name)
    sub = f"{ns}-{victim}-"

    def gone():
        c, p = _dr_state(k8s_client, ns)
        return victim not in c and pv_name not in p and not tree_sums(lab["NFS_DR_EXPORT"], f"{sub}*")
    wait_until(gone, timeout=600, interval=1, what="PVC, PV and data removed on DR")
    print(f"EDA-LATENCY delete (PVC + PV + data): {time.time() - t1:.1f}s")
    # PVC DELETED + PV DELETED: one rule, one throttle group (scopeNamespace)
    # -> ONE delete job when both arrived within one window (a rule per kind
    # made it two, back to back)
    rig.wait_idle()
    deletes = rig.plays("handle_pv_pvc_delete") - deletes0
    t_pvc, t_pv = (rig.forwarded("DELETED", "PersistentVolumeClaim", victim),
                   rig.forwarded("DELETED", "PersistentVolume", pv_name))
    assert t_pvc and t_pv, "the forwarder log lacks the DELETED events (LOG_LEVEL=debug)"
    gap = abs(t_pv - t_pvc)
    print(f"EDA-RUNS delete PVC + PV: {deletes} delete job(s); the two DELETED events {gap:.2f}s apart")
    if gap < 2.5:     # well inside one 3 s window
        assert deletes == 1, f"{deletes} delete jobs for one PVC + PV deleted {gap:.2f}s apart"
    else:
        assert 1 <= deletes <= 2, deletes

    # delete the snapshot on the primary; the snapshotter (played here as
    # seed_workload plays its creation, see there) then deletes its content
    # (deletionPolicy Delete): both go on DR - the delete role prunes against
    # a fresh primary listing - and a-disk-0 stays
    g, v = "snapshot.storage.k8s.io", "v1"
    custom_p = client.CustomObjectsApi(k8s_client("primary"))
    snap = custom_p.get_namespaced_custom_object(g, v, ns, "volumesnapshots", "a-disk-0-snap")
    content = snap["status"]["boundVolumeSnapshotContentName"]

    def dr_snaps():
        vss = [x["metadata"]["name"] for x in custom.list_namespaced_custom_object(g, v, ns, "volumesnapshots")["items"]]
        vscs = [x["metadata"]["name"] for x in custom.list_cluster_custom_object(g, v, "volumesnapshotcontents")["items"]
                if x["spec"]["volumeSnapshotRef"]["namespace"] == ns]
        return vss, vscs
    assert dr_snaps() == (["a-disk-0-snap"], [content]), dr_snaps()
    rig.wait_idle()
    sdel0 = rig.plays("handle_snapshot_delete")
    t2 = time.time()
    custom_p.delete_namespaced_custom_object(g, v, ns, "volumesnapshots", "a-disk-0-snap")
    custom_p.delete_cluster_custom_object(g, v, "volumesnapshotcontents", content)
    wait_until(lambda: dr_snaps() == ([], []), timeout=600, interval=1,
               what="VolumeSnapshot and its content removed on DR")
    print(f"EDA-LATENCY snapshot delete (VS + VSC): {time.time() - t2:.1f}s")
    rig.wait_idle()
    sdel = rig.plays("handle_snapshot_delete") - sdel0
    print(f"EDA-RUNS snapshot delete VS + VSC: {sdel} job(s)")
    assert 1 <= sdel <= 2, sdel
    # the unwatched namespace's snapshot was never on DR; the watched
    # namespace's volume is untouched (checked at the end)

    # the HMAC rulebook: the forwarder's signed posts were accepted (above);
    # a post with the token but without or with a wrong signature is not
    probe = json.dumps({"kind": "Probe", "type": "ADDED", "namespace": ns}).encode()
    assert rig.post(probe, sign=True) == 200
    assert rig.post(probe, sign=False) in (400, 401)
    assert rig.post(probe + b" ", sign=False, token=TOKEN) in (400, 401)
    assert rig.post(probe, sign=True, token="wrong-" + TOKEN) == 401
    # the other volume is untouched
    assert _converged(lab, k8s_client, ns, ["a-disk-0"])


def test_forged_delete_event_removes_nothing(lab, k8s_client, nss, rig):
    """Issue 15 item 2: a forged PV DELETED event - signed, as anyone who can
    post to the webhook can - whose PV spec names ANOTHER volume's directory
    removes nothing.  DR data is removed only for the DR PVs ocpv-dr itself
    recorded and the prune deleted (the primary no longer has them), never
    from the event's PV spec; the job says it left the data (EDA-DATA-KEPT)."""
    ns = nss["w2"]
    _seed(lab, ns, 1, "f")                    # f-disk-0: nfs-subdir
    wait_until(lambda: _converged(lab, k8s_client, ns, ["f-disk-0"]), timeout=600, interval=1,
               what=f"{ns}/f-disk-0 replicated to DR")
    pvcs, pvs = _dr_state(k8s_client, ns)
    pv_name = pvcs["f-disk-0"].spec.volume_name
    victim = f"{ns}-f-disk-0-{pv_name}"
    before = tree_sums(lab["NFS_DR_EXPORT"], victim)
    assert before, f"no DR data under {victim}: the test would prove nothing"
    rig.wait_idle()
    deletes0 = rig.plays("handle_pv_pvc_delete")
    forged_name = f"forged-{uuid.uuid4().hex[:8]}"
    server, export = lab["NFS_PRIMARY_ADDR"], lab["NFS_PRIMARY_EXPORT"]
    # an nfs-csi PV (no path_pattern to match) whose subdir is the victim's directory
    forged = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": forged_name, "uid": str(uuid.uuid4())},
              "spec": {"storageClassName": "nfs-csi", "persistentVolumeReclaimPolicy": "Delete",
                       "claimRef": {"namespace": ns, "name": "f-disk-0"},
                       "csi": {"driver": "nfs.csi.k8s.io", "volumeHandle": f"{server}#{export}#{victim}##",
                               "volumeAttributes": {"server": server, "share": export, "subdir": victim}}},
              "status": {"phase": "Released"}}
    payload = {"kind": "PersistentVolume", "type": "DELETED", "namespace": "", "scopeNamespace": ns,
               "name": forged_name, "uid": forged["metadata"]["uid"], "cluster": "primary",
               "sequence": 10 ** 9, "origin": "watch", "resource": forged}
    assert rig.post(json.dumps(payload).encode(), sign=True) == 200
    wait_until(lambda: rig.plays("handle_pv_pvc_delete") > deletes0, timeout=120, interval=0.5,
               what="the delete job of the forged event")
    rig.wait_idle()
    # the victim's data, claim and volume are all still on DR
    assert tree_sums(lab["NFS_DR_EXPORT"], victim) == before, "the forged event removed another volume's data"
    assert _converged(lab, k8s_client, ns, ["f-disk-0"])
    text = rig.rb_log.read_text(errors="replace")
    assert f"EDA-DATA-KEPT {forged_name}" in text, text[-4000:]


def _load():
    return Path("/proc/loadavg").read_text().split()[0]


def test_latency_single_and_burst(lab, k8s_client, nss, rig):
    ns = nss["w"]
    singles = []
    rig.wait_idle()               # the jobs of the previous test are not counted
    single_runs0, single_cpu0, loads = rig.playbook_runs(), rig.cpu(), [_load()]
    for i in range(int(os.environ.get("EDA_SINGLES", "3"))):
        t = time.time()
        _seed(lab, ns, 1, f"s{i}", wait=False)
        wait_until(lambda: _converged(lab, k8s_client, ns, [f"s{i}-disk-0"]), timeout=600, interval=0.5,
                   what=f"single s{i}")
        singles.append(time.time() - t)
        loads.append(_load())
    rig.wait_idle()
    # one new claim = PV MODIFIED Bound + PVC MODIFIED Bound, ms apart: one
    # window of the one sync rule (a rule per kind: 2 jobs, the 2nd a no-op)
    per_pvc = (rig.playbook_runs() - single_runs0) / len(singles)
    cpu_pvc = (rig.cpu() - single_cpu0) / len(singles)
    print(f"EDA-RUNS single: {per_pvc:.2f} playbook runs per PVC over {len(singles)} PVCs, "
          f"{cpu_pvc:.1f} CPU-s per PVC (ansible-rulebook + its jobs); "
          f"load 1-min during the singles: {' '.join(loads)}")
    burst = int(os.environ.get("EDA_BURST", "20"))
    runs0 = rig.playbook_runs()
    covered0 = rig.rb_log.read_text(errors="replace").count("EDA-COVERED")
    t = time.time()
    _seed(lab, ns, burst, "b", wait=False)
    done = {}
    names = [f"b-disk-{i}" for i in range(burst)]

    def all_done():
        ok = _converged_set(lab, k8s_client, ns, [n for n in names if n not in done])
        now = time.time()           # after the check: never earlier than the truth
        for n in ok:
            done[n] = now - t
        return len(done) == burst
    wait_until(all_done, timeout=1200, interval=1, what=f"burst of {burst}")
    lat = list(done.values())
    # per claim from its own creation on the primary (creationTimestamp, 1 s
    # resolution, same clock): the seeder itself takes a while for a big burst
    from kubernetes import client
    created = {c.metadata.name: c.metadata.creation_timestamp.timestamp() for c in
               client.CoreV1Api(k8s_client("primary")).list_namespaced_persistent_volume_claim(ns).items}
    own = [t + done[n] - created[n] for n in names]
    # ... and from its binding (the PV's status.lastPhaseTransitionTime to
    # Bound, 1 s resolution, truncated: never later than the truth) - what
    # the event path adds; the lab's controller-manager binds a few claims a
    # second, so a big burst is bound over a minute or more
    bound = {}
    for v in client.CoreV1Api(k8s_client("primary")).list_persistent_volume().items:
        ref = v.spec.claim_ref
        if ref and ref.namespace == ns and ref.name in done and v.status.last_phase_transition_time:
            bound[ref.name] = v.status.last_phase_transition_time.timestamp()
    from_bound = [t + done[n] - bound[n] for n in names if n in bound] or [float("nan")]
    runs = rig.playbook_runs() - runs0
    covered = rig.rb_log.read_text(errors="replace").count("EDA-COVERED") - covered0
    print(f"EDA-LATENCY single x{len(singles)}: p50 {statistics.median(singles):.1f}s "
          f"p95 {_pct(singles, 0.95):.1f}s; burst x{burst}: p50 {_pct(lat, 0.5):.1f}s "
          f"p95 {_pct(lat, 0.95):.1f}s last {max(lat):.1f}s (from the burst's start), from each claim's "
          f"creation p50 {_pct(own, 0.5):.1f}s p95 {_pct(own, 0.95):.1f}s; seeding took "
          f"{max(created[n] for n in names) - t:.0f}s, binding on the primary until "
          f"{max(bound.values(), default=t) - t:.0f}s; from each claim's binding p50 "
          f"{_pct(from_bound, 0.5):.1f}s p95 {_pct(from_bound, 0.95):.1f}s ({len(bound)} claims); "
          f"playbook runs for the burst: {runs} "
          f"({covered} ended early: covered by a later-started job)")
    assert runs < burst, f"{runs} playbook runs for {burst} claims: the throttle did not fold the burst"
    assert per_pvc < 2, f"{per_pvc:.2f} playbook runs per single PVC: PV and PVC Bound were not folded"


def test_token_only_rulebook(lab, k8s_client, nss, tmp_path):
    """The token-only variant (no HMAC): the real forwarder posts without a
    signature and the volume replicates; a post without the token is refused."""
    ns = nss["tok"]
    r = Rig(lab, tmp_path, [ns], [], hmac=False)
    try:
        probe = json.dumps({"kind": "Probe", "type": "ADDED", "namespace": ns}).encode()
        assert r.post(probe, sign=False) == 200
        assert r.post(probe, token=None) == 401
        assert r.post(probe, token="wrong-" + TOKEN) == 401
        t = time.time()
        _seed(lab, ns, 1, "t", wait=False)
        wait_until(lambda: _converged(lab, k8s_client, ns, ["t-disk-0"]), timeout=600, interval=1,
                   what="token-only: claim replicated to DR")
        print(f"EDA-LATENCY token-only single: {time.time() - t:.1f}s")
    finally:
        r.stop()


def test_action_templates_single_and_multi_match():
    """The actions' extra_vars render with ansible-rulebook's own renderer both
    for one throttle group (`event`) and several (`events.m_0..`), which is
    what once_after passes when a window saw several namespaces/kinds."""
    from ansible_rulebook.util import substitute_variables

    def ev(kind, ns, name, n, origin="watch", scope=""):
        res = {"kind": kind, "metadata": {"name": name, "namespace": ns}}
        scope = ns if scope == "" else scope
        return {"payload": {"kind": kind, "type": "ADDED", "namespace": ns, "scopeNamespace": scope,
                            "cluster": "primary",
                            "sequence": n, "resource": res, **({"origin": origin} if origin else {})},
                "meta": {"received_at": f"2026-11-22T12:00:0{n}.000000Z",
                         "rule_engine": {"events_in_window": n, "once_after_time_window": "3 SECONDS"}}}
    for book in ("ocp_dr_events.yml", "ocp_dr_events_token_only.yml", "ocp_dr_events_cli.yml",
                 "ocp_dr_events_cli_token_only.yml"):
        rules = yaml.safe_load((REPO / "rulebooks" / book).read_text())[0]["rules"]
        for rule in rules:
            assert "once_after" in rule["throttle"], (book, rule["name"])
            act = rule["action"]
            xv = (act["run_playbook"]["extra_vars"] if "run_playbook" in act
                  else act["run_job_template"]["job_args"]["extra_vars"])
            one = substitute_variables(xv, {"event": ev("PersistentVolumeClaim", "a", "c1", 4)})
            assert one["resource_objects"] == [{"kind": "PersistentVolumeClaim", "metadata": {"name": "c1", "namespace": "a"}}]
            assert one["resource_object"]["metadata"]["name"] == "c1"
            assert one["event_count"] == 4 and one["event_kind"] == "PersistentVolumeClaim"
            many = substitute_variables(xv, {"events": {"m_0": ev("PersistentVolumeClaim", "a", "c1", 2),
                                                        "m_1": ev("PersistentVolumeClaim", "b", "c2", 3)}})
            assert [o["metadata"]["namespace"] for o in many["resource_objects"]] == ["a", "b"]
            assert many["resource_object"]["metadata"]["name"] == "c1"
            assert many["event_count"] == 5 and many["event_sequence"] == 2
            assert many["event_window_start"] == "2026-11-22T12:00:02.000000Z" and many["event_window_s"] == 3
            # deletion evidence: only what the forwarder saw (origin watch); a
            # deletion inferred from a relist / restart diff, or a payload
            # without origin, vouches for nothing
            assert one["deletion_evidence"] == one["resource_objects"]
            assert [o["metadata"]["name"] for o in many["deletion_evidence"]] == ["c1", "c2"]
            mixed = substitute_variables(xv, {"events": {
                "m_0": ev("PersistentVolumeClaim", "a", "c1", 2, origin="relist"),
                "m_1": ev("PersistentVolumeClaim", "b", "c2", 3),
                "m_2": ev("PersistentVolumeClaim", "c", "c3", 1, origin="list"),
                "m_3": ev("PersistentVolumeClaim", "d", "c4", 1, origin=None)}})
            assert [o["metadata"]["name"] for o in mixed["deletion_evidence"]] == ["c2"]
            assert len(mixed["resource_objects"]) == 4
            # the job's namespaces are the forwarder's scopeNamespace values (a
            # PV's is its claim's namespace, an unbound PV has none), not
            # recomputed from the objects (roles/event_pv_pvc_sync/tasks/event_scope.yml)
            assert one["event_scope_namespaces"] == ["a"]
            pvs = substitute_variables(xv, {"events": {
                "m_0": ev("PersistentVolume", None, "pv1", 1, scope="b"),
                "m_1": ev("PersistentVolume", None, "pv2", 1, scope=None),
                "m_2": ev("PersistentVolumeClaim", "b", "c2", 1),
                "m_3": ev("PersistentVolumeClaim", "a", "c1", 1)}})
            assert pvs["event_scope_namespaces"] == ["b", "a"]
        src = (REPO / "rulebooks" / book).read_text()
        assert ("hmac_secret" in src) == ("token_only" not in book), book
