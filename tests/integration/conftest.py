"""Session fixtures that expose the DR lab (tests/lab/up) to integration tests.

The lab is described by its env file: LAB_ENV if set, else tests/lab/.env
(the default instance; other instances: tests/lab/.state-<name>/env). Values
set in the process environment for LAB_VENV / LAB_VENV_216 win over the file.
Reading it, finding the forwarder build, wait_until and free ports live in
tests/_lab.py (shared with tests/lab and bench/); a missing lab FAILS, it
never skips.

Fixtures (all general; build on them):
  lab              dict of the env file (PRIMARY_KUBECONFIG, S3_ENDPOINT, ...)
  lab_env          os.environ + the lab's variables (for subprocesses)
  primary_api      kubernetes.client.ApiClient, admin, cluster primary
  dr_api           same for dr
  k8s_client       factory: k8s_client("primary"|"dr", limited=False) -> ApiClient
  unique_ns        factory: unique_ns("primary"|"dr", prefix="t") -> namespace name,
                   created now (admin) and deleted at the end of the test
  ansible_playbook runner: ansible_playbook(playbook, ...) -> AnsibleResult(rc, stdout,
                   stderr, json, run_dir) with the real ansible-playbook of LAB_VENV and the
                   repo's ansible.cfg; every run is a FRESH RUNNER (fresh_run_env): its own
                   empty HOME, TMPDIR, ANSIBLE_HOME, ANSIBLE_LOCAL_TEMP and report dir,
                   removed when the test ends (read its reports with result.report(kind))
  fresh_run_env    factory: fresh_run_env(env) -> (run_dir, env) for a process that runs
                   jobs outside ansible_playbook (ansible-rulebook); same rule
  lab_cluster      lab_cluster("dr", "rebuild") -> runs tests/lab/cluster for this instance
  netns_run        netns_run("nfs-primary", [argv...]) -> CompletedProcess inside that
                   storage host's network namespace
  s3_client        boto3 S3 client on the lab MinIO (SigV4, credentials from the file)
  free_port        free TCP port on 127.0.0.1
"""

import glob
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/: _lab.py
from _lab import (REPO, LAB_DIR, LabMissing, free_port as _free_port, lab_env_path,  # noqa: E402
                  read_lab_env, s3_credentials, wait_until)

# what the test files import from here (`from conftest import ...`)
__all__ = ["REPO", "LAB_DIR", "_free_port", "read_lab_env", "wait_until", "ansible_env", "s3_credentials",
           "seed_workload", "tree_sums", "make_fresh_run_env"]

# every key a test may read; a lab env file without one of them is an old or broken lab
REQUIRED_KEYS = ("LAB_NAME", "LAB_STATE_DIR", "LAB_BIN", "LAB_VENV", "PRIMARY_KUBECONFIG", "DR_KUBECONFIG",
                 "S3_ENDPOINT", "S3_BUCKET", "S3_CREDENTIALS_FILE", "LAB_INVENTORY")


@pytest.fixture(scope="session")
def lab():
    try:
        env = read_lab_env()
    except LabMissing as e:
        env, missing_file = None, str(e)
    if env is None:     # outside the except: no "during handling" chain in the report
        pytest.fail(missing_file, pytrace=False)
    unset = [k for k in REQUIRED_KEYS if not env.get(k)]
    if unset:
        pytest.fail(f"lab env file {lab_env_path()} lacks {', '.join(unset)}: written by an older "
                    f"tests/lab/up? run it again", pytrace=False)
    missing = [k for k in ("PRIMARY_KUBECONFIG", "DR_KUBECONFIG", "LAB_STATE_DIR", "S3_CREDENTIALS_FILE")
               if not os.path.exists(env[k])]
    if missing:
        pytest.fail(f"lab env file {lab_env_path()} names missing files ({', '.join(missing)}): "
                    f"the lab is down or half up; run tests/lab/up", pytrace=False)
    return env


@pytest.fixture(scope="session")
def lab_env(lab):
    env = dict(os.environ)
    env.update(lab)
    env["PATH"] = os.pathsep.join([os.path.join(lab["LAB_VENV"], "bin"), lab["LAB_BIN"], env.get("PATH", "")])
    return env


# ------------------------------------------------------------------ Kubernetes

def _kubeconfig(lab, cluster, limited):
    if cluster not in ("primary", "dr"):
        raise ValueError(f"cluster must be 'primary' or 'dr', not {cluster!r}")
    key = f"{cluster.upper()}_KUBECONFIG" + ("_LIMITED" if limited else "")
    return lab[key]


@pytest.fixture(scope="session")
def k8s_client(lab):
    from kubernetes import config

    cache = {}

    def make(cluster="primary", limited=False):
        path = _kubeconfig(lab, cluster, limited)
        # keyed by the file's mtime: `tests/lab/cluster X rebuild` rewrites the limited
        # kubeconfig with a new token, and a cached client would keep the dead one
        k = (cluster, limited, os.stat(path).st_mtime_ns)
        if k not in cache:
            cache[k] = config.new_client_from_config(config_file=path)
        return cache[k]
    return make


@pytest.fixture(scope="session")
def primary_api(k8s_client):
    return k8s_client("primary")


@pytest.fixture(scope="session")
def dr_api(k8s_client):
    return k8s_client("dr")


@pytest.fixture
def unique_ns(k8s_client):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    created = []

    def make(cluster="primary", prefix="t", labels=None):
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        api = client.CoreV1Api(k8s_client(cluster))
        api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=name, labels=dict({"ocpv-dr.io/test": "true"}, **(labels or {})))))
        created.append((cluster, name))
        return name
    yield make
    for cluster, name in created:
        try:
            client.CoreV1Api(k8s_client(cluster)).delete_namespace(name)
        except ApiException as e:   # already gone, or the cluster was stopped by the test
            if e.status != 404:
                pass
        except Exception:           # noqa: BLE001 - cluster down: nothing to clean
            pass


# ------------------------------------------------------------------ Ansible

@dataclass
class AnsibleResult:
    rc: int
    stdout: str
    stderr: str
    json: dict = field(default=None)
    cmd: list = field(default_factory=list)
    run_dir: str = None     # this run's fresh runner dir (removed when the test ends)

    @property
    def report_dir(self):
        return os.path.join(self.run_dir, "reports") if self.run_dir else None

    def reports(self, kind):
        """Paths of this run's JSON reports of one kind (periodic, failover, status...), oldest first."""
        return sorted(glob.glob(os.path.join(self.report_dir, f"{kind}-*.json"))) if self.run_dir else []

    def report(self, kind):
        """This run's (newest) JSON report of that kind, with "_md" = its Markdown file; None without one."""
        paths = self.reports(kind)
        if not paths:
            return None
        with open(paths[-1]) as f:
            rep = json.load(f)
        rep["_md"] = paths[-1][:-len(".json")] + ".md"
        return rep

    def task_results(self, host=None):
        """Every task result of the json callback: [(task name, host, result), ...]."""
        out = []
        for play in (self.json or {}).get("plays", []):
            for task in play.get("tasks", []):
                for h, res in task.get("hosts", {}).items():
                    if host is None or h == host:
                        out.append((task["task"]["name"], h, res))
        return out

    def __str__(self):
        return f"rc={self.rc}\ncmd={shlex.join(self.cmd)}\nstdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"


def ansible_env(lab, venv_key="LAB_VENV", json_output=True, extra=None):
    env = dict(os.environ)
    env.update(lab)
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_DEPRECATION_WARNINGS="0")
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)   # only the repo's ansible.cfg decides
    env.pop("ANSIBLE_COLLECTIONS_PATHS", None)
    env["PATH"] = os.pathsep.join([os.path.join(lab[venv_key], "bin"), env.get("PATH", "")])
    if json_output:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    env.update(extra or {})
    return env


@pytest.fixture
def twin_ns(k8s_client):
    """A fresh namespace of the same name on primary and DR (claims keep their
    namespace on DR); removed afterwards with the volumes named pv-<ns>-*."""
    from kubernetes import client
    name = f"twin-{uuid.uuid4().hex[:8]}"
    for cluster in ("primary", "dr"):
        client.CoreV1Api(k8s_client(cluster)).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"ocpv-dr.io/test": "true"})))
    yield name
    for cluster in ("primary", "dr"):
        api = client.CoreV1Api(k8s_client(cluster))
        for pv in api.list_persistent_volume().items:
            if pv.metadata.name.startswith(f"pv-{name}-"):
                api.delete_persistent_volume(pv.metadata.name)
        try:
            api.delete_namespace(name)
        except client.ApiException:
            pass


# Variables a job must not inherit from the machine that runs the tests: in AAP
# every job starts in a fresh execution-environment container, so state that
# must outlive a job lives in the clusters (#16), never in these.
RUNNER_STATE_VARS = ("OCPV_DR_EVENT_STATE_DIR", "OCPV_DR_REPORT_DIR", "ANSIBLE_HOME", "ANSIBLE_LOCAL_TEMP",
                     "ANSIBLE_PERSISTENT_CONTROL_PATH_DIR", "ANSIBLE_SSH_CONTROL_PATH_DIR", "TMPDIR", "HOME")


def make_fresh_run_env(env):
    """(run_dir, env): env with a new empty runner - HOME, TMPDIR, ANSIBLE_HOME,
    ANSIBLE_LOCAL_TEMP and OCPV_DR_REPORT_DIR inside run_dir (a short path under
    /tmp: ssh control sockets live there) - and no OCPV_DR_EVENT_STATE_DIR.
    The caller removes run_dir.  A value the test passed for one of these is an
    error: nothing may carry state from one job to the next through the runner."""
    run_dir = tempfile.mkdtemp(prefix="ocpvdr-run-", dir="/tmp")
    env = dict(env)
    for k in RUNNER_STATE_VARS:
        env.pop(k, None)
    home, tmp = os.path.join(run_dir, "home"), os.path.join(run_dir, "tmp")
    for d in (home, tmp):
        os.mkdir(d, 0o700)
    env.update(HOME=home, TMPDIR=tmp, ANSIBLE_HOME=os.path.join(home, ".ansible"),
               ANSIBLE_LOCAL_TEMP=os.path.join(tmp, "ansible-local"),
               OCPV_DR_REPORT_DIR=os.path.join(run_dir, "reports"))
    return run_dir, env


@pytest.fixture
def fresh_run_env():
    """fresh_run_env(env) -> (run_dir, env) (make_fresh_run_env); every run_dir is
    removed when the test ends."""
    made = []

    def make(env):
        run_dir, env = make_fresh_run_env(env)
        made.append(run_dir)
        return run_dir, env
    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def ansible_playbook(lab, fresh_run_env):
    """ansible_playbook(playbook, inventory=None (lab inventory), extra_vars=None (dict),
    venv="LAB_VENV" | "LAB_VENV_216", check=False, diff=False, limit=None, args=(),
    env=None (extra variables), json_output=True, timeout=600) -> AnsibleResult

    Every run is a fresh runner (make_fresh_run_env): nothing of an earlier run
    (reports, ~/.ansible, temp files, event marks) is there; its reports are
    read with result.report(kind) before the test ends."""

    def run(playbook, inventory=None, extra_vars=None, venv="LAB_VENV", check=False, diff=False,
            limit=None, args=(), env=None, json_output=True, timeout=600):
        clash = sorted(set(env or {}) & set(RUNNER_STATE_VARS))
        if clash:
            raise ValueError(f"ansible_playbook: {', '.join(clash)} are the fresh runner's (one per run, "
                             f"read reports with result.report(kind)), not the test's")
        cmd = [os.path.join(lab[venv], "bin", "ansible-playbook"), "-i", str(inventory or lab["LAB_INVENTORY"])]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if limit:
            cmd += ["--limit", limit]
        cmd += list(args) + [str(playbook)]
        run_dir, run_env = fresh_run_env(ansible_env(lab, venv, json_output, env))
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=run_env)
        parsed = None
        if json_output:
            start = p.stdout.find("{")
            if start >= 0:
                try:
                    parsed = json.loads(p.stdout[start:])
                except ValueError:
                    parsed = None
        return AnsibleResult(p.returncode, p.stdout, p.stderr, parsed, cmd, run_dir)
    return run


# ------------------------------------------------------------------ lab control, hosts, S3

@pytest.fixture(scope="session")
def lab_cluster(lab):
    """lab_cluster(cluster, action, *args, check=True) runs tests/lab/cluster on this lab instance
    (actions: up, stop [--kill], down [--wipe], restart, rebuild, status)."""

    def run(cluster, action, *args, check=True, timeout=600):
        p = subprocess.run([str(LAB_DIR / "cluster"), cluster, action, *args], capture_output=True, text=True,
                           timeout=timeout, env=dict(os.environ, LAB_NAME=lab["LAB_NAME"]))
        if check and p.returncode != 0:
            raise AssertionError(f"tests/lab/cluster {cluster} {action} failed (rc={p.returncode}):\n{p.stderr[-3000:]}")
        return p
    return run


@pytest.fixture(scope="session")
def netns_run(lab):
    """netns_run(host, argv, **subprocess_kwargs): run argv inside the network namespace of
    storage host 'nfs-primary' or 'nfs-dr' (as the host itself would run it)."""
    names = {"nfs-primary": lab["NFS_PRIMARY_NETNS"], "nfs-dr": lab["NFS_DR_NETNS"]}

    def run(host, argv, **kw):
        if host not in names:
            raise ValueError(f"host must be one of {sorted(names)}, not {host!r}")
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 120)
        return subprocess.run(["ip", "netns", "exec", names[host], *argv], **kw)
    return run


@pytest.fixture(scope="session")
def s3_client(lab):
    import boto3
    from botocore.config import Config

    key, secret = s3_credentials(lab)
    return boto3.client("s3", endpoint_url=lab["S3_ENDPOINT"], region_name=lab["S3_REGION"],
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        verify=lab.get("S3_CA_FILE") or None,   # set when the lab runs MinIO with TLS
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


@pytest.fixture
def free_port():
    return _free_port()


def seed_workload(lab, ns, count, prefix="demo", snapshots=0, files=None, wait=True, background=False,
                  timeout=600, classes=None):
    """Runs tests/lab/seed_workload.py: count claims (+ snapshots) with data files in
    ns on the primary; --wait for them to bind unless wait=False.  background=True
    returns the Popen (stderr piped) instead of waiting for the seeder."""
    cmd = [os.path.join(lab["LAB_VENV"], "bin", "python"), str(REPO / "tests/lab/seed_workload.py"),
           "--namespace", ns, "--count", str(count), "--prefix", prefix, "--snapshots", str(snapshots)]
    if files is not None:
        cmd += ["--files", str(files)]
    if classes:
        cmd += ["--classes", ",".join(classes)]
    if wait:
        cmd.append("--wait")
    env = dict(os.environ, LAB_ENV=str(lab_env_path()))
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert p.returncode == 0, p.stderr


def tree_sums(root, pattern, relative_to=None):
    """{path: sha256} of every file under the directories root/<pattern>
    (a glob, e.g. "<ns>-*" for a namespace's volume directories on an NFS
    export); paths relative to `relative_to` (default: root)."""
    root = Path(root)
    base = Path(relative_to) if relative_to else root
    return {str(f.relative_to(base)): hashlib.sha256(f.read_bytes()).hexdigest()
            for d in sorted(root.glob(pattern)) for f in sorted(d.rglob("*")) if f.is_file()}
