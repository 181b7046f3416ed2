"""edabench.py - what bench/eda/run and bench/eda/periodic share: the path
to tests/_lab.py (the lab's env file), the load average, and the baseline tree (the playbooks, roles and
config of an older git revision, run side by side with ours against the same
lab and the same installed module binaries)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))   # _lab.py: the lab's env file (read_lab_env, lab_env_path)


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
