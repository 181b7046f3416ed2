"""edabench.py - what bench/eda/run and bench/eda/periodic share: the lab's
env file, the load average, and the baseline tree (the playbooks, roles and
config of an older git revision, run side by side with ours against the same
lab and the same installed module binaries)."""
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def lab_env():
    env = {}
    for line in Path(os.environ.get("LAB_ENV", REPO / "tests/lab/.env")).read_text().splitlines():
        if line.startswith("export "):
            k, _, v = line[7:].strip().partition("=")
            env[k] = v.strip("'\"")
    return env


def load():
    return Path("/proc/loadavg").read_text().split()[0]


def baseline_tree(rev, dest):
    """The playbooks, roles and config of git revision rev, unpacked into dest."""
    dest.mkdir(parents=True)
    arc = subprocess.run(["git", "-C", str(REPO), "archive", rev, "ansible.cfg", "playbooks", "roles", "group_vars"],
                         check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=arc, check=True)
    return dest


def tree_env(env, tree):
    """env for ansible-playbook running tree's playbooks with the repo's modules."""
    return dict(env, ANSIBLE_CONFIG=str(tree / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"))
