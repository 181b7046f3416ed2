"""test_aap_applied.py - every AAP object aap/ defines is applied by
aap/configure.yml (issue #19).  A static check: reads files, needs no lab.

configure.yml hands the variables of its vars_files to infra.aap_configuration's
dispatch role, which applies a variable only when one of its roles is bound to
that name (`aap_configuration_dispatcher_roles`, roles/dispatch/defaults/main.yml
of the pinned collection in ../shared/upstream).  A variable no role is bound to
is silently ignored: aap/credentials.yml's `eda_credential_types` was, with
infra.aap_configuration 3.0.0, so the activation's credential type never existed.
This test fails for any `controller_*`, `eda_*`, `gateway_*` or `hub_*` variable
of aap/ that neither the dispatch role nor a task file under aap/tasks/ that
configure.yml includes applies, and for an aap/*.yml variable file that
configure.yml does not load.
"""
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
AAP = REPO / "aap"
CONFIG_PREFIXES = ("controller_", "eda_", "gateway_", "hub_")


class _Loader(yaml.SafeLoader):
    """YAML as Ansible reads the aap/ files (`!unsafe` strings)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _upstream_dispatch_defaults():
    for base in (REPO.parent / "shared" / "upstream", Path("/work/shared/upstream")):
        f = base / "infra.aap_configuration" / "roles" / "dispatch" / "defaults" / "main.yml"
        if f.is_file():
            return f
    pytest.fail("infra.aap_configuration not found in ../shared/upstream (the version configure.yml is "
                "applied with); the check cannot run without it", pytrace=False)


def dispatch_vars(defaults_text):
    """The variable names the dispatch role applies (`var:` of every role list)."""
    d = yaml.load(defaults_text, Loader=_Loader)
    names = set()
    for key, val in d.items():
        if key.endswith("_dispatcher_roles") and isinstance(val, list):
            names |= {r["var"] for r in val if isinstance(r, dict) and "var" in r}
    return names


def task_vars(playbook_text, tasks_dir):
    """Variables looped over by the task files the playbook includes."""
    names = set()
    for inc in re.findall(r"include_tasks:\s*(\S+)", playbook_text):
        f = tasks_dir.parent / inc
        assert f.is_file(), f"configure.yml includes {inc}, which does not exist"
        names |= set(re.findall(r'loop:\s*"\{\{\s*([a-z_]+)\s*\}\}"', f.read_text()))
    return names


def unapplied(aap_dir, defaults_text):
    """(file, variable) of every configuration variable nothing applies, and
    ('configure.yml', file) of every variable file it does not load."""
    pb_text = (aap_dir / "configure.yml").read_text()
    play = yaml.load(pb_text, Loader=_Loader)[0]
    loaded = set(play.get("vars_files") or [])
    applied = dispatch_vars(defaults_text) | task_vars(pb_text, aap_dir / "tasks")
    bad = []
    for f in sorted(aap_dir.glob("*.yml")):
        if f.name == "configure.yml":
            continue
        data = yaml.load(f.read_text(), Loader=_Loader)
        if not isinstance(data, dict):
            continue
        if f.name not in loaded:
            bad.append(("configure.yml", f.name))
        for var in data:
            if var.startswith(CONFIG_PREFIXES) and var not in applied:
                bad.append((f.name, var))
    return bad


def test_every_aap_variable_is_applied():
    assert unapplied(AAP, _upstream_dispatch_defaults().read_text()) == []


def test_check_catches_an_unapplied_variable(tmp_path):
    """The check itself: configure.yml without the EDA credential type tasks (as
    shipped before this test) leaves eda_credential_types unapplied."""
    (tmp_path / "tasks").mkdir()
    for f in AAP.glob("*.yml"):
        (tmp_path / f.name).write_text(f.read_text())
    pb = (AAP / "configure.yml").read_text()
    (tmp_path / "configure.yml").write_text(re.sub(r"(?s)  pre_tasks:.*?(?=  roles:)", "", pb))
    assert ("credentials.yml", "eda_credential_types") in unapplied(tmp_path, _upstream_dispatch_defaults().read_text())
    # and a variable file configure.yml does not load
    (tmp_path / "extra.yml").write_text("controller_labels: []\n")
    assert ("configure.yml", "extra.yml") in unapplied(tmp_path, _upstream_dispatch_defaults().read_text())
