"""tests/_lab.py - the one place that knows how to find the DR lab and the
builds under test; used by tests/integration (through conftest.py), by
tests/lab/seed_workload.py and by the bench/ scripts.  Standard library only,
so any Python can import it (add tests/ to sys.path).

  lab_env_path()    the lab's env file: LAB_ENV, else tests/lab/.env
  read_lab_env()    that file as a dict (lines `export KEY=<shell-quoted value>`,
                    as tests/lab/components.sh's write_env writes them);
                    raises LabMissing (a FileNotFoundError) with the command
                    to run when the file is missing
  read_env_file()   the parser alone (also for the lab AWX's env file)
  forwarder_bin()   the ocpv-dr-forwarder under test: FORWARDER_BIN, else the
                    first build dir that has one with the payload field the
                    rulebooks match on
  wait_until()      poll a predicate until it is truthy or fail naming it
  free_port()       a free TCP port on 127.0.0.1
  s3_credentials()  (access key, secret key) of the lab's MinIO

Every "not there" here is an error, never a silent skip: a suite that cannot
reach what it tests must not come out green.
"""
import configparser
import os
import shlex
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAB_DIR = REPO / "tests" / "lab"

# the build dirs a forwarder binary is looked for in, in this order (tests/run builds build-ci/)
FORWARDER_BUILDS = ("build-ci", "build-eda", "build-fwd", "build")


class LabMissing(FileNotFoundError):
    """The lab's env file (or what it names) is not there."""


class NotBuilt(AssertionError):
    """A binary under test is missing or stale."""


class WaitTimeout(AssertionError):
    """wait_until() ran out of time."""


def lab_env_path():
    return Path(os.environ.get("LAB_ENV") or LAB_DIR / ".env")


def read_env_file(path):
    """{KEY: value} of the `export KEY=<shell-quoted value>` lines of path
    (the lab's env file, the lab AWX's env file); other lines are ignored."""
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line.startswith("export "):
            continue
        key, sep, val = line[len("export "):].partition("=")
        if not sep or not key:
            continue
        parts = shlex.split(val)
        env[key] = parts[0] if parts else ""
    return env


def read_lab_env(path=None):
    """Parse the lab env file into a dict.  Values set in the process
    environment for LAB_VENV / LAB_VENV_216 win over the file (a venv other
    than the lab's own).  Raises LabMissing naming the command to run."""
    path = Path(path) if path else lab_env_path()
    if not path.is_file():
        raise LabMissing(
            f"lab env file {path} not found: bring the lab up first with "
            f"`tests/lab/up` (or `LAB_NAME=<name> tests/lab/up` and "
            f"LAB_ENV=tests/lab/.state-<name>/env)")
    env = read_env_file(path)
    for k in ("LAB_VENV", "LAB_VENV_216"):
        if os.environ.get(k):
            env[k] = os.environ[k]
    return env


def forwarder_bin():
    """FORWARDER_BIN, else the first build that has the payload field the
    rulebooks match on (scopeNamespace): a stale build dir is passed over, a
    stale FORWARDER_BIN is an error (the rules would silently match nothing).
    Raises NotBuilt when there is none."""
    stale = []
    given = os.environ.get("FORWARDER_BIN")
    cands = [given] + [REPO / b / "forwarder/ocpv-dr-forwarder" for b in FORWARDER_BUILDS]
    for i, c in enumerate(cands):
        if not c or not Path(c).is_file():
            if i == 0 and given:
                raise NotBuilt(f"FORWARDER_BIN={given} does not exist")
            continue
        if b"scopeNamespace" in Path(c).read_bytes():
            return str(c)
        if i == 0:
            raise NotBuilt(f"FORWARDER_BIN={c} is a build without the payload field scopeNamespace: rebuild it")
        stale.append(str(c))
    raise NotBuilt("ocpv-dr-forwarder not built (meson compile; tests/run builds build-ci/) and FORWARDER_BIN unset"
                   + (f"; stale builds without scopeNamespace (rebuild): {stale}" if stale else ""))


def wait_until(pred, timeout=30.0, interval=0.2, what="condition", state=None):
    """Poll pred() until it returns a truthy value; return it, or raise
    WaitTimeout (an AssertionError: a test failure) naming `what` and, when
    given, what state() says was there instead."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    seen = f"; found: {state()!r}" if state else ""
    raise WaitTimeout(f"timed out after {timeout}s waiting for {what} (last value: {last!r}){seen}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3_credentials(lab):
    """(access key, secret key) from the lab's AWS-style credentials file."""
    cp = configparser.ConfigParser()
    cp.read(lab["S3_CREDENTIALS_FILE"])
    return cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"]


def kubectl(lab, *args, cluster="dr", input=None, check=True, kubeconfig=None):
    """The lab's real kubectl against `cluster` (dr | primary) or `kubeconfig`;
    fails the test with kubectl's stderr unless check=False."""
    kc = kubeconfig or lab["DR_KUBECONFIG" if cluster == "dr" else "PRIMARY_KUBECONFIG"]
    p = subprocess.run([str(Path(lab["LAB_BIN"]) / "kubectl"), "--kubeconfig", kc, *args],
                       input=input, capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {p.stderr}")
    return p
