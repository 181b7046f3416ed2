"""test_aap_docs.py - docs/aap.md and aap/*.yml describe the same AAP
configuration, and every file aap/ points AAP at exists (issue #19, Docs).
A static check: reads files, needs no lab, no build.

- every job template, credential type, credential, workflow, schedule,
  project, inventory, execution/decision environment and rulebook activation
  aap/*.yml creates is named in docs/aap.md;
- every secret variable (`vault_*`) aap/*.yml reads is in docs/aap.md's table
  of aap/secrets.vault.yml, and that table names no variable aap/ does not
  read; every other site variable aap/ defines (`ocpv_dr_*`) is documented;
- every playbook a job template runs, the inventory source's file, the
  activation's rulebook and every repository path docs/aap.md mentions exist;
- every `-f <file>` of an `oc apply` in docs/aap.md exists, every playbook
  docs/aap.md assigns to a template is the one aap/ assigns, and its
  `oc create secret` makes the Secret (name, namespace, keys) the forwarder's
  Deployment mounts. tests/integration/test_aap_docs_commands.py runs the
  forwarder commands against the lab's apiserver.
"""
import functools
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
AAP = REPO / "aap"
DOC = REPO / "docs" / "aap.md"


class _Loader(yaml.SafeLoader):
    """YAML as Ansible reads the aap/ files (`!unsafe` strings)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))

# aap/ variable -> what docs/aap.md calls the objects in it
OBJECT_VARS = {
    "controller_templates": "job template",
    "controller_credential_types": "credential type",
    "eda_credential_types": "EDA credential type",
    "controller_credentials": "credential",
    "eda_credentials": "EDA credential",
    "controller_workflows": "workflow",
    "controller_schedules": "schedule",
    "controller_projects": "project",
    "eda_projects": "EDA project",
    "controller_inventories": "inventory",
    "controller_execution_environments": "execution environment",
    "eda_decision_environments": "decision environment",
    "eda_rulebook_activations": "rulebook activation",
}


@functools.lru_cache(maxsize=None)
def aap_vars():
    """Every top-level variable of aap/*.yml (the variable files)."""
    out = {}
    for f in sorted(AAP.glob("*.yml")):
        d = yaml.load(f.read_text(), Loader=_Loader)
        if isinstance(d, dict):
            for k, v in d.items():
                out[k] = (f.name, v)
    return out


@functools.lru_cache(maxsize=None)
def aap_text():
    return "\n".join(f.read_text() for f in sorted(AAP.glob("*.yml")))


def objects_missing(doc):
    return [f"{what} {o['name']!r} ({fname} {var})"
            for var, what in OBJECT_VARS.items() if var in aap_vars()
            for fname, objs in [aap_vars()[var]] for o in objs or []
            if o["name"] not in doc]


def secrets_table(doc):
    """The variables in the first column of docs/aap.md's aap/secrets.vault.yml
    table (the table right after '`aap/secrets.vault.yml` holds:')."""
    m = re.search(r"`aap/secrets\.vault\.yml` holds:\s*\n\s*\n((?:\|.*\n)+)", doc)
    if not m:
        return None
    rows = m.group(1).splitlines()[2:]
    return {v for row in rows for v in re.findall(r"`(\w+)`", row.split("|")[1])}


def secrets_problems(doc):
    table = secrets_table(doc)
    if table is None:
        return ["docs/aap.md has no table after '`aap/secrets.vault.yml` holds:'"]
    read = set(re.findall(r"\bvault_\w+", aap_text()))
    bad = []
    if read - table:
        bad.append(f"aap/ reads secrets docs/aap.md does not list: {sorted(read - table)}")
    extra = {v for v in table if v.startswith("vault_")} - read
    if extra:
        bad.append(f"docs/aap.md lists secrets aap/ does not read: {sorted(extra)}")
    # configure.yml logs in to the controller: the command line gives hostname and
    # user, the password (or a token) must come from the secrets file
    if not {"aap_password", "aap_token"} & table:
        bad.append("docs/aap.md: the secrets file has neither aap_password nor aap_token "
                   "(configure.yml cannot log in)")
    return bad


def site_variables_missing(doc):
    site = {k for k in aap_vars() if k.startswith("ocpv_dr_")}
    site |= set(re.findall(r"\{\{\s*(ocpv_dr_\w+)", aap_text()))      # used in a template
    site = {v for v in site if not v.startswith("ocpv_dr_job_")}     # YAML anchors' holders
    return sorted(v for v in site if v not in doc)


def referenced_files():
    """(what, repository path) for every file aap/ makes AAP use."""
    v = aap_vars()
    refs = []
    for t in v.get("controller_templates", (None, []))[1]:
        refs.append((f"job template {t['name']!r} playbook", t["playbook"]))
    for s in v.get("controller_inventory_sources", (None, []))[1]:
        if s.get("source") == "scm":
            refs.append((f"inventory source {s['name']!r}", s["source_path"]))
    for a in v.get("eda_rulebook_activations", (None, []))[1]:
        # an EDA project finds rulebooks in the repository's rulebooks/
        refs.append((f"activation {a['name']!r} rulebook", f"rulebooks/{a['rulebook']}"))
    for f in yaml.load((AAP / "configure.yml").read_text(), Loader=_Loader)[0].get("vars_files", []):
        refs.append(("configure.yml vars_files", f"aap/{f}"))
    return refs


def doc_paths_missing(doc):
    paths = set(re.findall(
        r"`((?:aap|playbooks|rulebooks|forwarder|roles|inventory|collections|tests|docs)/[\w./-]+)", doc))
    paths |= set(re.findall(r"-f\s+((?:aap|forwarder)/[\w./-]+)", doc))
    paths |= {"docs/" + p for p in re.findall(r"\]\(([\w.-]+\.md)\)", doc)}
    paths -= {"aap/secrets.vault.yml"}          # the user creates it
    return sorted(p for p in paths if not (REPO / p).exists())


def template_table_problems(doc):
    """The job template table of docs/aap.md: template -> playbook as in aap/."""
    rows = dict(re.findall(r"^\| \*\*(.+?)\*\* \| `(playbooks/[^`]+)` \|", doc, re.M))
    want = {t["name"]: t["playbook"] for t in aap_vars()["controller_templates"][1]}
    if rows.keys() != want.keys():
        return [f"docs/aap.md's template table {sorted(rows)} is not aap/'s {sorted(want)}"]
    return [f"{n}: docs/aap.md {rows[n]}, aap/ {want[n]}" for n in want if rows[n] != want[n]]


def forwarder_secret_problems(doc):
    """docs/aap.md's `oc create secret generic` makes the Secret the
    Deployment mounts: forwarder/deploy/secret.yaml's name, namespace, keys."""
    sec = yaml.safe_load((REPO / "forwarder/deploy/secret.yaml").read_text())
    m = re.search(r"oc create secret generic (\S+) -n (\S+)((?:\s+\\?\s*--from-file=[\w.-]+=\S+)+)", doc)
    if not m:
        return ["docs/aap.md: no `oc create secret generic <name> -n <namespace> --from-file=...` for the forwarder"]
    keys = set(re.findall(r"--from-file=([\w.-]+)=", m.group(3)))
    want = (sec["metadata"]["name"], sec["metadata"]["namespace"], set(sec.get("stringData", {})) | set(sec.get("data", {})))
    got = (m.group(1), m.group(2), keys)
    return [] if got == want else [f"docs/aap.md creates the forwarder's Secret as {got}, "
                                   f"forwarder/deploy/secret.yaml is {want}"]


def problems(doc):
    return (objects_missing(doc) + secrets_problems(doc) + forwarder_secret_problems(doc)
            + [f"site variable {v} not documented" for v in site_variables_missing(doc)]
            + [f"path {p} does not exist" for p in doc_paths_missing(doc)]
            + template_table_problems(doc))


def test_every_aap_object_is_documented():
    missing = objects_missing(DOC.read_text())
    assert not missing, "docs/aap.md does not name:\n  " + "\n  ".join(missing)


def test_secrets_table_matches_aap():
    bad = secrets_problems(DOC.read_text())
    assert not bad, "\n".join(bad)


def test_site_variables_are_documented():
    missing = site_variables_missing(DOC.read_text())
    assert not missing, f"docs/aap.md does not mention the site variables {missing}"


def test_every_file_aap_points_at_exists():
    refs = referenced_files()
    assert any(w.startswith("job template") for w, _ in refs)
    missing = [f"{what}: {path}" for what, path in refs if not (REPO / path).is_file()]
    assert not missing, "aap/ points at files that do not exist:\n  " + "\n  ".join(missing)


def test_every_path_in_the_doc_exists():
    missing = doc_paths_missing(DOC.read_text())
    assert not missing, f"docs/aap.md names paths that do not exist: {missing}"


def test_doc_creates_the_forwarders_secret():
    bad = forwarder_secret_problems(DOC.read_text())
    assert not bad, "\n".join(bad)


def test_doc_template_table_matches_aap():
    bad = template_table_problems(DOC.read_text())
    assert not bad, "\n".join(bad)


MUTATIONS = {
    "template": ("EDA - Delete Snapshot from DR", "EDA - Delete Snapshots", "job template 'EDA - Delete Snapshot"),
    "credential type": ("ocpv-dr Webhook Secrets", "ocpv-dr webhook secrets",
                        "EDA credential type 'ocpv-dr Webhook Secrets'"),
    "secret": ("`vault_oadp_cloud_credentials`", "`oadp_cloud_credentials`", "does not list: ['vault_oadp_cloud"),
    "extra secret": ("| `vault_nfs_ssh_private_key` |", "| `vault_nfs_ssh_private_key`, `vault_nfs_password` |",
                     "aap/ does not read: ['vault_nfs_password']"),
    "password": ("`aap_password` (or `aap_token`)", "`x`", "neither aap_password nor aap_token"),
    "site variable": ("`ocpv_dr_git_branch`", "`git_branch`", "site variable ocpv_dr_git_branch"),
    "secret key": ("--from-file=hmac-secret=", "--from-file=hmac_secret=",
                   "creates the forwarder's Secret as"),
    "path": ("forwarder/deploy/pvc.yaml", "forwarder/deploy/state-pvc.yaml", "path forwarder/deploy/state-pvc.yaml"),
    "playbook": ("`playbooks/scheduled/execute_periodic_sync.yml`", "`playbooks/scheduled/periodic_sync.yml`",
                 "ocpv-dr - Periodic Sync: docs/aap.md playbooks/scheduled/periodic_sync.yml"),
}


def test_check_catches():
    """The checks are not tautologies: each kind of drift, made in a copy of
    docs/aap.md, is reported."""
    base = DOC.read_text()
    for name, (old, new, want) in MUTATIONS.items():
        assert old in base, f"mutation {name}: {old!r} not in docs/aap.md"
        bad = problems(base.replace(old, new))     # every occurrence
        assert any(want in b for b in bad), f"mutation {name}: no problem containing {want!r} in {bad}"
