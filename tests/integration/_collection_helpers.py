"""_collection_helpers.py - helpers for test_collection.py: runs REAL
ansible-playbook (through conftest's `ansible_playbook` fixture) and
ansible-doc with the repo's ansible.cfg (collections_path = ./collections)
from one virtualenv, and collects registered task results.
"""
import json
import os
import subprocess
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTION = os.path.join(REPO, "collections", "ansible_collections", "ocpv", "dr")
MODULE_BIN = os.path.join(COLLECTION, "plugins", "modules", "dr_ping")


def ansible_env():
    """Environment for ansible-doc: the repo's ansible.cfg decides everything."""
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0")
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)    # only the repo's ansible.cfg decides
    env.pop("ANSIBLE_COLLECTIONS_PATHS", None)
    return env


class Runner:
    """Runs playbooks with one ansible-core release (venv_key: LAB_VENV or
    LAB_VENV_216) against the lab inventory, via conftest's ansible_playbook."""

    def __init__(self, ansible_playbook, lab, venv_key, workdir):
        self.run = ansible_playbook
        self.venv_key = venv_key
        self.workdir = workdir
        self.bin = os.path.join(lab[venv_key], "bin")

    def version(self):
        out = subprocess.run([os.path.join(self.bin, "ansible"), "--version"], cwd=REPO,
                             env=ansible_env(), capture_output=True, text=True, check=True).stdout
        return out.splitlines()[0]

    def playbook(self, text, *args, timeout=300):
        """Runs the playbook text with the default (text) callback; returns
        (AnsibleResult, results): results maps each name given to save() to
        that registered result."""
        fd, path = tempfile.mkstemp(suffix=".yml", dir=self.workdir)
        with os.fdopen(fd, "w") as f:
            f.write(text.replace("@OUT@", self.workdir))
        p = self.run(path, venv=self.venv_key, args=list(args), json_output=False,
                     env={"ANSIBLE_DEPRECATION_WARNINGS": "1"}, timeout=timeout)
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
