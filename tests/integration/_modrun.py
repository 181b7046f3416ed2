"""_modrun.py - run one ocpv.dr binary module as a real ansible-playbook task
from a private copy of the collection (shared by the module tests).

private_collection() (as a test file's `collection` fixture:
collection_fixture()) copies galaxy.yml, meta/ and the module's sidecar doc
into a temporary collection root and puts the binary under test next to them:
the one named by an environment variable (e.g. K8S_DR_CLEAN_BIN, set it to a
build dir's binary) or else the one installed in the repo's collection.  So
nobody else's installed modules are touched and a test runs exactly the
binary it was asked to.

run_task() writes a one-task play (`ocpv.dr.<module>: '{{ args }}'`), runs it
with the lab venv's ansible-playbook on localhost (json stdout callback) and
returns the task's result dict.
"""
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLL = REPO / "collections/ansible_collections/ocpv/dr"


def private_collection(root, module, bin_env):
    """Collection root (for ANSIBLE_COLLECTIONS_PATH) under `root` holding
    `module`: the binary from $bin_env, default the installed one."""
    binary = Path(os.environ.get(bin_env, COLL / "plugins/modules" / module))
    if not binary.is_file():
        pytest.fail(f"module binary {binary} missing: build it (meson install --tags modules) "
                    f"or set {bin_env}")
    root = Path(root)
    dst = root / "ansible_collections/ocpv/dr"
    (dst / "plugins/modules").mkdir(parents=True)
    for f in ("galaxy.yml", "meta"):
        src = COLL / f
        if src.is_dir():
            shutil.copytree(src, dst / f)
        elif src.exists():
            shutil.copy(src, dst / f)
    shutil.copy(binary, dst / "plugins/modules" / module)
    shutil.copy(COLL / "plugins/modules" / f"{module}.yml", dst / "plugins/modules/")
    return root


def collection_fixture(module, bin_env):
    """The module-scoped fixture `collection` of a module's test file
    (`collection = _modrun.collection_fixture("oadp_parse", "OADP_PARSE_BIN")`):
    private_collection() of that module in a temporary directory."""
    @pytest.fixture(scope="module")
    def collection(tmp_path_factory):
        return private_collection(tmp_path_factory.mktemp("coll"), module, bin_env)
    return collection


def run_task(lab, collection, module, args, check=False, diff=False, drop_env_prefix=None,
             raw=False, timeout=600):
    """One ocpv.dr.<module> task through ansible-playbook; returns the task
    result (with raw=True: (result, stdout + stderr text)).  drop_env_prefix:
    environment variables starting with it are not passed on (e.g. K8S_AUTH_,
    which a module's env fallbacks would pick up)."""
    with tempfile.TemporaryDirectory() as d:
        Path(d, "vars.json").write_text(json.dumps({"mod_args": args}))
        Path(d, "play.yml").write_text(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            f"    - ocpv.dr.{module}: '{{{{ mod_args }}}}'\n")
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collection),
                   ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOCALHOST_WARNING="false",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_NOCOLOR="1")
        if drop_env_prefix:
            for k in list(env):
                if k.startswith(drop_env_prefix):
                    del env[k]
        venv = Path(lab["LAB_VENV"])
        cmd = [str(venv / "bin/ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", "@" + str(Path(d, "vars.json")),
               "-e", "ansible_python_interpreter=" + str(venv / "bin/python"),
               str(Path(d, "play.yml"))]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=d)
    try:
        res = json.loads(p.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError(f"ansible-playbook rc={p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return (res, p.stdout + p.stderr) if raw else res
