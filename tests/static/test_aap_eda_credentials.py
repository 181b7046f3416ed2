"""test_aap_eda_credentials.py - the EDA credentials of aap/credentials.yml
are ones the EDA controller accepts, and their injectors give the rulebook
the variables it reads (issue #19). A static check: reads files, needs no lab.

The lab has no EDA controller (AWX checks the controller credentials when
test_aap.py applies aap/; nothing checks the EDA ones), so this reads
eda-server's rules: a credential's inputs must be fields of its type and
give every required one (aap_eda/core/utils/credentials.py validate_inputs:
"Input keys ... are not defined in the schema"); the built-in types
(e.g. "Red Hat Ansible Automation Platform") are the ones
aap_eda/core/management/commands/create_initial_data.py creates, read from
../shared/upstream/eda-server (EDA_SERVER_SOURCE overrides). A custom type's
injectors may only use its own fields, and what they inject must cover the
`{{ var }}`s of the activation's rulebook that the activation's extra_vars
do not set.
"""
import ast
import os
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


class _Loader(yaml.SafeLoader):
    """YAML as Ansible reads the aap/ files (`!unsafe` strings)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _load(name):
    return yaml.load((REPO / "aap" / name).read_text(), Loader=_Loader)


def builtin_eda_types():
    """{type name: inputs schema} of eda-server's built-in credential types."""
    for c in (os.environ.get("EDA_SERVER_SOURCE"), REPO.parent / "shared/upstream/eda-server",
              Path("/work/shared/upstream/eda-server")):
        f = Path(c or "/nonexistent") / "src/aap_eda/core/management/commands/create_initial_data.py"
        if f.is_file():
            break
    else:
        pytest.skip("eda-server sources not found (../shared/upstream/eda-server or EDA_SERVER_SOURCE)")
    tree = ast.parse(f.read_text())
    enums = {}          # aap_eda/core/enums.py: DefaultCredentialType.AAP = "Red Hat ..."
    for node in ast.walk(ast.parse((f.parents[2] / "enums.py").read_text())):
        if isinstance(node, ast.ClassDef):
            for st in node.body:
                if isinstance(st, ast.Assign) and isinstance(st.value, ast.Constant):
                    enums[(node.name, st.targets[0].id)] = st.value.value
    class _Consts(dict):
        def __missing__(self, key):     # names the schemas do not need (help texts, imports)
            return f"<{key}>"
    consts = _Consts()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Dict):
            try:
                consts[node.targets[0].id] = eval(compile(ast.Expression(node.value), str(f), "eval"),
                                                  {"__builtins__": {}}, consts)
            except Exception:
                pass
    types = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = [k.value if isinstance(k, ast.Constant) else None for k in node.keys]
            if "name" in keys and "inputs" in keys:
                name = node.values[keys.index("name")]
                inputs = node.values[keys.index("inputs")]
                if isinstance(name, ast.Attribute) and isinstance(name.value, ast.Attribute):
                    name = ast.Constant(enums.get((name.value.attr, name.attr)))
                if isinstance(name, ast.Constant) and isinstance(inputs, ast.Name) and inputs.id in consts:
                    types[name.value] = consts[inputs.id]
    assert "Red Hat Ansible Automation Platform" in types, f"eda-server's built-in types not found in {f}"
    return types


def problems(creds, builtin, activation, rulebook_text):
    bad = []
    custom = {t["name"]: t for t in creds.get("eda_credential_types", [])}
    for t in custom.values():
        fields = {f["id"] for f in t["inputs"].get("fields", [])}
        for section, inj in (t.get("injectors") or {}).items():
            for var, tmpl in inj.items():
                used = set(re.findall(r"\{\{\s*(\w+)", str(tmpl)))
                if used - fields:
                    bad.append(f"EDA credential type {t['name']!r}: injector {section}.{var} uses "
                               f"{sorted(used - fields)}, not fields of the type")
    injected = set()
    names = activation.get("eda_credentials", [])
    for c in creds.get("eda_credentials", []):
        ctype = c["credential_type"]
        schema = custom[ctype]["inputs"] if ctype in custom else builtin.get(ctype)
        if schema is None:
            bad.append(f"EDA credential {c['name']!r}: type {ctype!r} is neither built into eda-server "
                       "nor defined in aap/credentials.yml eda_credential_types")
            continue
        fields = {f["id"] for f in schema.get("fields", [])}
        inputs = set(c.get("inputs") or {})
        if inputs - fields:
            bad.append(f"EDA credential {c['name']!r}: inputs {sorted(inputs - fields)} are not fields of "
                       f"{ctype!r} ({sorted(fields)})")
        if set(schema.get("required", [])) - inputs:
            bad.append(f"EDA credential {c['name']!r}: required inputs {sorted(set(schema['required']) - inputs)} "
                       f"of {ctype!r} missing")
        if c["name"] in names and ctype in custom:
            injected |= set((custom[ctype].get("injectors") or {}).get("extra_vars", {}))
    for n in names:
        if n not in {c["name"] for c in creds.get("eda_credentials", [])}:
            bad.append(f"activation {activation['name']!r}: credential {n!r} is not in aap/credentials.yml")
    if not any(c["credential_type"] == "Red Hat Ansible Automation Platform" and c["name"] in names
               for c in creds.get("eda_credentials", [])):
        bad.append(f"activation {activation['name']!r}: no 'Red Hat Ansible Automation Platform' credential "
                   "(run_job_template needs the controller)")
    wanted = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", rulebook_text))
    missing = wanted - set(activation.get("extra_vars") or {}) - injected
    if missing:
        bad.append(f"activation {activation['name']!r}: rulebook variables {sorted(missing)} come neither from "
                   "its extra_vars nor from its credentials")
    return bad


def _inputs():
    creds = _load("credentials.yml")
    act = next(a for a in _load("eda.yml")["eda_rulebook_activations"] if a["name"] == "ocpv-dr events")
    return creds, act, (REPO / "rulebooks" / act["rulebook"]).read_text()


def test_eda_credentials_are_accepted_and_feed_the_rulebook():
    creds, act, rb = _inputs()
    bad = problems(creds, builtin_eda_types(), act, rb)
    assert not bad, "\n".join(bad)


def test_check_catches():
    builtin = builtin_eda_types()
    creds, act, rb = _inputs()

    def cred(c, name):
        return next(x for x in c["eda_credentials"] if x["name"] == name)
    cases = {
        "unknown input": (lambda c, a: cred(c, "ocpv-dr AAP controller")["inputs"].update(url="x"),
                          "inputs ['url'] are not fields of 'Red Hat Ansible Automation Platform'"),
        "required input": (lambda c, a: cred(c, "ocpv-dr forwarder webhook")["inputs"].pop("webhook_hmac_secret"),
                           "required inputs ['webhook_hmac_secret']"),
        "injector field": (lambda c, a: c["eda_credential_types"][0]["injectors"]["extra_vars"].update(
                               webhook_token="{{ token }}"), "uses ['token'], not fields"),
        "not injected": (lambda c, a: a.update(eda_credentials=["ocpv-dr AAP controller"]),
                         "rulebook variables ['webhook_hmac_secret', 'webhook_token']"),
        "no controller": (lambda c, a: a.update(eda_credentials=["ocpv-dr forwarder webhook"]),
                          "no 'Red Hat Ansible Automation Platform' credential"),
    }
    import copy
    for name, (mutate, want) in cases.items():
        c, a = copy.deepcopy(creds), copy.deepcopy(act)
        mutate(c, a)
        bad = problems(c, builtin, a, rb)
        assert any(want in b for b in bad), f"{name}: no problem containing {want!r} in {bad}"
