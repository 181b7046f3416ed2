"""test_aap_keys.py - every field aap/*.yml gives an AAP object is one the
infra.aap_configuration role that applies it passes on (issue #19). A static
check: reads files, needs no lab, no AAP.

The collection's roles loop over a variable (controller_templates,
eda_rulebook_activations, ...) and hand the module only the fields they name
(`{{ __ra_item.eda_credentials | default(omit) }}`); a field the role does
not name is dropped without a word. aap/eda.yml gave the activation its
credentials as `credentials:` - the role reads `eda_credentials` - so the
activation would have started without the controller credential and without
the webhook token and HMAC secret.

The roles are read from ../shared/upstream/infra.aap_configuration (the
version configure.yml is applied with; INFRA_AAP_CONFIGURATION overrides):
the dispatch role's defaults bind each variable to its role, and each role's
tasks name the fields of its loop item (and of nested loops such as a
workflow's simplified_workflow_nodes); the fields a role reads `| mandatory`
must be given.
"""
import os
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
AAP = REPO / "aap"


class _Loader(yaml.SafeLoader):
    """YAML as Ansible reads the aap/ files (`!unsafe` strings)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _collection():
    for c in (os.environ.get("INFRA_AAP_CONFIGURATION"), REPO.parent / "shared/upstream/infra.aap_configuration",
              Path("/work/shared/upstream/infra.aap_configuration")):
        if c and (Path(c) / "roles/dispatch/defaults/main.yml").is_file():
            return Path(c)
    pytest.skip("infra.aap_configuration not found (../shared/upstream or INFRA_AAP_CONFIGURATION)")


def dispatch_roles(coll):
    d = yaml.load((coll / "roles/dispatch/defaults/main.yml").read_text(), Loader=_Loader)
    out = {}
    for key, val in d.items():
        if key.endswith("_dispatcher_roles") and isinstance(val, list):
            for r in val:
                if isinstance(r, dict) and "var" in r and "role" in r:
                    out.setdefault(r["var"], r["role"])
    return out


def _tasks(items):
    for t in items or []:
        if isinstance(t, dict):
            yield t
            for k in ("block", "rescue", "always"):
                yield from _tasks(t.get(k))


def role_fields(coll, role, var):
    """{path: fields}: path () is the loop item over `var`; ("x",) the items
    of a nested loop over <item>.x; fields are the names the role reads."""
    texts, loops = [], []
    for f in sorted((coll / "roles" / role / "tasks").glob("*.yml")):
        text = f.read_text()
        texts.append(text)
        for t in _tasks(yaml.load(text, Loader=_Loader)):
            lv = (t.get("loop_control") or {}).get("loop_var")
            if lv and isinstance(t.get("loop"), str):
                loops.append((t["loop"], lv))
    text = "\n".join(texts)
    item = next((lv for loop, lv in loops if re.search(r"\b%s\b" % re.escape(var), loop)), None)
    assert item, f"infra.aap_configuration role {role}: no loop over {var}"
    out = {(): set(re.findall(r"\b%s\.(\w+)" % re.escape(item), text)),
           "mandatory": set(re.findall(r"\b%s\.(\w+) \| mandatory" % re.escape(item), text))}
    for loop, lv in loops:
        m = re.fullmatch(r"\{\{\s*%s\.(\w+)\s*\}\}" % re.escape(item), loop.strip())
        if m:
            out[(m.group(1),)] = set(re.findall(r"\b%s\.(\w+)" % re.escape(lv), text))
    return out


def aap_objects():
    out = {}
    for f in sorted(AAP.glob("*.yml")):
        d = yaml.load(f.read_text(), Loader=_Loader)
        if isinstance(d, dict):
            for k, v in d.items():
                if isinstance(v, list):
                    out[k] = (f.name, v)
    return out


def problems(objects, coll):
    roles = dispatch_roles(coll)
    bad = []
    for var, (fname, items) in objects.items():
        role = roles.get(var)
        if role is None:
            continue        # not applied by the dispatch role: tests/static/test_aap_applied.py's
        fields = role_fields(coll, role, var)
        for o in items:
            name = o.get("name", "?")
            for k in sorted(fields["mandatory"] - set(o)):
                bad.append(f"aap/{fname} {var} {name!r}: no {k!r} ({role} requires it)")
            for k, v in o.items():
                if k not in fields[()]:
                    bad.append(f"aap/{fname} {var} {name!r}: field {k!r} is dropped by "
                               f"infra.aap_configuration's {role} (it reads {sorted(fields[()])})")
                elif (k,) in fields and isinstance(v, list):
                    for sub in v:
                        for sk in sub:
                            if sk not in fields[(k,)]:
                                bad.append(f"aap/{fname} {var} {name!r} {k}: field {sk!r} is dropped by "
                                           f"{role} (it reads {sorted(fields[(k,)])})")
    return bad


def test_every_aap_field_is_applied():
    bad = problems(aap_objects(), _collection())
    assert not bad, "\n".join(bad)


def test_check_catches():
    """The activation's credentials as shipped before, a misspelt template
    field and a misspelt workflow node field are reported."""
    coll = _collection()
    objs = aap_objects()
    fname, acts = objs["eda_rulebook_activations"]
    act = dict(acts[0])
    act["credentials"] = act.pop("eda_credentials", act.get("credentials"))
    fname_t, jts = objs["controller_templates"]
    fname_w, wfs = objs["controller_workflows"]
    wf = dict(wfs[0], simplified_workflow_nodes=[dict(wfs[0]["simplified_workflow_nodes"][0], job_template="x")])
    ee_f, ees = objs["controller_execution_environments"]
    bad = problems({"eda_rulebook_activations": (fname, [act]),
                    "controller_execution_environments": (ee_f, [{k: v for k, v in ees[0].items() if k != "image"}]),
                    "controller_templates": (fname_t, [dict(jts[0], ask_vars_on_launch=True)]),
                    "controller_workflows": (fname_w, [wf])}, coll)
    for want in ("field 'credentials' is dropped by infra.aap_configuration's eda_rulebook_activations",
                 "field 'ask_vars_on_launch' is dropped",
                 "simplified_workflow_nodes: field 'job_template' is dropped",
                 "'ocpv-dr EE': no 'image' (controller_execution_environments requires it)"):
        assert any(want in b for b in bad), f"no problem containing {want!r} in {bad}"
