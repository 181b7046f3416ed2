"""_collection_helpers.py - helpers for test_collection.py: reading the lab
env file and running REAL ansible-playbook / ansible-doc with the repo's
ansible.cfg (collections_path = ./collections) from a given virtualenv.
"""
import json
import os
import shlex
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTION = os.path.join(REPO, "collections", "ansible_collections", "ocpv", "dr")
MODULE_BIN = os.path.join(COLLECTION, "plugins", "modules", "dr_ping")


def read_lab_env():
    """The lab env file (LAB_ENV, default tests/lab/.env) as a dict; values
    set in the process environment win (e.g. LAB_VENV_216=/other/venv)."""
    path = os.environ.get("LAB_ENV", os.path.join(REPO, "tests", "lab", ".env"))
    if not os.path.exists(path):
        pytest.skip(f"lab env file {path} not found: run tests/lab/up (or set LAB_ENV)")
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export "):
                k, _, v = line[len("export "):].partition("=")
                env[k] = shlex.split(v)[0] if v else ""
    for k in ("LAB_VENV", "LAB_VENV_216"):
        if os.environ.get(k):
            env[k] = os.environ[k]
    return env


def ansible_env():
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0")
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)    # only the repo's ansible.cfg decides
    env.pop("ANSIBLE_COLLECTIONS_PATHS", None)
    return env


class Runner:
    """Runs playbooks with one ansible-core release against the lab inventory."""

    def __init__(self, venv, inventory, workdir):
        self.venv = venv
        self.inventory = inventory
        self.workdir = workdir
        self.bin = os.path.join(venv, "bin")

    def version(self):
        out = subprocess.run([os.path.join(self.bin, "ansible"), "--version"], cwd=REPO,
                             env=ansible_env(), capture_output=True, text=True, check=True).stdout
        return out.splitlines()[0]

    def playbook(self, text, *args, timeout=300):
        """Runs the playbook text; returns (CompletedProcess, results) where
        results maps each saved name to the registered result (see save())."""
        fd, path = tempfile.mkstemp(suffix=".yml", dir=self.workdir)
        with os.fdopen(fd, "w") as f:
            f.write(text.replace("@OUT@", self.workdir))
        cmd = [os.path.join(self.bin, "ansible-playbook"), "-i", self.inventory, path, *args]
        p = subprocess.run(cmd, cwd=REPO, env=ansible_env(), capture_output=True, text=True,
                           timeout=timeout)
        results = {}
        for name in os.listdir(self.workdir):
            if name.startswith("result-") and name.endswith(".json"):
                with open(os.path.join(self.workdir, name)) as f:
                    results[name[len("result-"):-len(".json")]] = json.load(f)
                os.unlink(os.path.join(self.workdir, name))
        return p, results

    def doc(self, *args):
        return subprocess.run([os.path.join(self.bin, "ansible-doc"), *args], cwd=REPO,
                              env=ansible_env(), capture_output=True, text=True, timeout=120)


def save(name):
    """A task that saves registered variable `name` to the work dir."""
    return f"""
    - name: save {name}
      ansible.builtin.copy:
        content: "{{{{ {name} | to_json }}}}"
        dest: "@OUT@/result-{name}.json"
      check_mode: false
      diff: false
      delegate_to: localhost
"""
