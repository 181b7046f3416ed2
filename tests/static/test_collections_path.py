"""test_collections_path.py - which ocpv.dr collection a playbook of this
repository gets: the execution environment's when AAP/AWX runs the project,
the checkout's (with the binaries `meson install` put there) from a shell.
A static check: reads ansible.cfg, needs no lab, no build.

AWX does not pass the project's ansible.cfg `collections_path` to Ansible as
it is: RunJob.build_env (awx/main/tasks/jobs.py, AWX 24.6.1) reads it with
ConfigParser and sets ANSIBLE_COLLECTIONS_PATH (and _PATHS) to

    /runner/requirements_collections : <the cfg value> :
        ~/.ansible/collections : /usr/share/ansible/collections

(the cfg value only when one of its entries is not already a default), in
the job container, whose working directory is the project checkout
/runner/project. Ansible takes a collection from the first path that has
it. The checkout's collections/ansible_collections/ocpv/dr holds the module
docs but no binaries (they are build output, git-ignored), so a cfg value
that puts ./collections in front of /usr/share/ansible/collections, where
ansible-builder installs the EE's ocpv.dr, shadows the EE's collection and
every ocpv.dr module is "not found" in AWX.

awx_collections_path() below is that code, and when the AWX sources are at
hand (../shared/upstream/awx, or AWX_SOURCE) test_replica_matches_awx runs
AWX's own lines against the same ansible.cfg and compares.
"""
import ast
import configparser
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTAINER_ROOT = "/runner"
PROJECT = "/runner/project"              # the job's working directory in the EE
EE_COLLECTIONS = "/usr/share/ansible/collections"   # ansible_builder constants.base_collections_path
AWX_DEFAULT = "~/.ansible/collections:/usr/share/ansible/collections"


def cfg_values(cfg_text, keys=("collections_paths", "collections_path")):
    """awx/main/utils/ansible.py read_ansible_config: [defaults] keys."""
    p = configparser.ConfigParser()
    p.read_string(cfg_text)
    return {k: p["defaults"][k] for k in keys if "defaults" in p and k in p["defaults"]}


def awx_collections_path(cfg_text, env=None):
    """RunJob.build_env's ANSIBLE_COLLECTIONS_PATH(S) for a project whose
    ansible.cfg is cfg_text (replica of the loop over path_vars)."""
    env = dict(env or {})
    config_values = cfg_values(cfg_text)
    for env_key, config_setting, folder, default in (
            ("ANSIBLE_COLLECTIONS_PATHS", "collections_paths", "requirements_collections", AWX_DEFAULT),
            ("ANSIBLE_COLLECTIONS_PATH", "collections_path", "requirements_collections", AWX_DEFAULT)):
        paths = default.split(":")
        if env_key in env:
            for path in env[env_key].split(":"):
                if path not in paths:
                    paths = [env[env_key]] + paths
        elif config_setting in config_values:
            for path in config_values[config_setting].split(":"):
                if path not in paths:
                    paths = [config_values[config_setting]] + paths
        paths = [os.path.join(CONTAINER_ROOT, folder)] + paths
        env[env_key] = os.pathsep.join(paths)
    return env


def resolve(paths, base, home):
    """The directories Ansible searches, in order: ~ expanded, a relative
    entry resolved against `base` (the working directory for an environment
    variable, the config file's directory for ansible.cfg)."""
    out = []
    for p in paths.split(":"):
        p = p.replace("~", home, 1) if p.startswith("~") else p
        out.append(os.path.normpath(os.path.join(base, p)))
    return out


def first_with_ocpv_dr(search, has_ocpv_dr):
    return next((d for d in search if has_ocpv_dr(d)), None)


def cfg_text():
    return (REPO / "ansible.cfg").read_text()


def aap_winner(text):
    """Which ocpv.dr an AWX job gets: the project checkout has one (docs, no
    binaries), the EE has the built one in /usr/share/ansible/collections."""
    env = awx_collections_path(text)
    search = resolve(env["ANSIBLE_COLLECTIONS_PATH"], PROJECT, "/home/runner")
    return first_with_ocpv_dr(search, lambda d: d in (EE_COLLECTIONS, f"{PROJECT}/collections"))


def cli_winner(text):
    """Which ocpv.dr `ansible-playbook` from a checkout gets on a machine
    where the collection is installed nowhere else."""
    vals = cfg_values(text, ("collections_path",))
    assert "collections_path" in vals, "ansible.cfg: no collections_path (the checkout's collection is not found)"
    search = resolve(vals["collections_path"], str(REPO), os.path.expanduser("~"))
    return first_with_ocpv_dr(search, lambda d: (Path(d) / "ansible_collections/ocpv/dr/galaxy.yml").is_file()
                              and Path(d).is_relative_to(REPO))


def test_aap_uses_the_execution_environments_collection():
    assert aap_winner(cfg_text()) == EE_COLLECTIONS, (
        "AWX would take ocpv.dr from the project checkout (no binaries), not from the EE: "
        f"ANSIBLE_COLLECTIONS_PATH={awx_collections_path(cfg_text())['ANSIBLE_COLLECTIONS_PATH']}")


def test_cli_uses_the_checkouts_collection():
    assert cli_winner(cfg_text()) == str(REPO / "collections")


def test_check_catches_the_shadowing_setting():
    """The setting shipped before: ./collections alone put the checkout in
    front of the EE's collection in AWX."""
    before = "[defaults]\ncollections_path = ./collections\nroles_path = ./roles\n"
    assert aap_winner(before) == f"{PROJECT}/collections"
    assert cli_winner(before) == str(REPO / "collections")
    assert aap_winner("[defaults]\ncollections_path = ./collections:/usr/share/ansible/collections\n") \
        == f"{PROJECT}/collections"


def _awx_source():
    for c in (os.environ.get("AWX_SOURCE"), REPO.parent / "shared/upstream/awx",
              Path("/work/shared/upstream/awx")):
        if c and (Path(c) / "awx/main/tasks/jobs.py").is_file():
            return Path(c)
    return None


def test_replica_matches_awx(tmp_path):
    """Runs the statements of AWX's RunJob.build_env that build the
    collections paths (from `path_vars = ...` to the end of their loop),
    with AWX's read_ansible_config, against a project directory holding this
    ansible.cfg, and compares with awx_collections_path()."""
    src = _awx_source()
    if src is None:
        pytest.skip("AWX sources not found (../shared/upstream/awx or AWX_SOURCE)")
    tree = ast.parse((src / "awx/main/tasks/jobs.py").read_text())
    run_job = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RunJob")
    build_env = next(n for n in run_job.body if isinstance(n, ast.FunctionDef) and n.name == "build_env")
    body = build_env.body
    start = next(i for i, s in enumerate(body) if isinstance(s, ast.Assign)
                 and getattr(s.targets[0], "id", None) == "path_vars")
    stmts = body[start:start + 3]      # path_vars = ..., config_values = ..., for ...: ...
    assert isinstance(stmts[1], ast.Assign) and isinstance(stmts[2], ast.For), \
        "AWX's build_env changed shape: read it again and update awx_collections_path()"
    utils = ast.parse((src / "awx/main/utils/ansible.py").read_text())
    rac = next(n for n in utils.body if isinstance(n, ast.FunctionDef) and n.name == "read_ansible_config")
    (tmp_path / "project").mkdir()
    (tmp_path / "project/ansible.cfg").write_text(cfg_text())

    class _Log:
        def exception(self, *a):
            raise AssertionError(a)
    ns = {"os": os, "ConfigParser": configparser.ConfigParser, "logger": _Log(),
          "CONTAINER_ROOT": CONTAINER_ROOT}
    exec(compile(ast.Module(body=[rac], type_ignores=[]), "awx/main/utils/ansible.py", "exec"), ns)
    real_read = configparser.ConfigParser.read

    def read_project_only(self, fnames, encoding=None):
        # /etc/ansible/ansible.cfg of this machine is not the EE's
        return real_read(self, [f for f in fnames if f.startswith(str(tmp_path))], encoding)
    ns["ConfigParser"] = type("ConfigParser", (configparser.ConfigParser,), {"read": read_project_only})
    ns.update(env={}, private_data_dir=str(tmp_path))
    exec(compile(ast.Module(body=stmts, type_ignores=[]), "awx/main/tasks/jobs.py", "exec"), ns)
    want = awx_collections_path(cfg_text())
    for key in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS"):
        assert ns["env"][key] == want[key]
