"""test_aap_launch.py - what AWX / the automation controller says when the
objects of aap/ are launched the way this project launches them (issue #19):
the rulebook activation's run_job_template, a user launching the failover
workflow with its survey, the workflow's node. A static check: reads files,
needs no lab, no AWX.

- ansible-rulebook's run_job_template always sends extra_vars (the action's
  job_args.extra_vars plus `ansible_eda`, ansible_rulebook/action/helper.py
  collect_extra_vars); the controller refuses them ("Variables ansible_eda
  are not allowed on launch") unless the template asks for variables on
  launch. Every other job_args key (limit, inventory, ...) needs its
  ask_<key>_on_launch. The template must exist in the action's organization.
- A workflow launched with its survey answers: AWX accepts the survey's
  variables even without ask_variables_on_launch, checks each answer against
  its question, and passes them to the node's job whatever the node's
  template asks (WorkflowJobNode.get_job_kwargs); the playbook must read them.
- The survey spec as AWX's survey endpoint validates it.

Where AWX's sources are at hand (../shared/upstream/awx or AWX_SOURCE) the
launch and survey checks run AWX's own code (SurveyJobTemplateMixin
._accept_or_ignore_variables / _survey_element_validation from
awx/main/models/mixins.py, JobTemplateSurveySpec._validate_spec_data from
awx/api/views/__init__.py), lifted out of the Django classes with ast; without
them those tests are skipped and the structural checks still run.
"""
import ast
import copy
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
AAP = REPO / "aap"


class _Loader(yaml.SafeLoader):
    """YAML as Ansible reads the aap/ files (`!unsafe` strings)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def aap():
    out = {}
    for f in sorted(AAP.glob("*.yml")):
        d = yaml.load(f.read_text(), Loader=_Loader)
        if isinstance(d, dict):
            out.update(d)
    return out


def rulebook_launches():
    """(rulebook, rule, action kind, action args) of every controller launch
    in rulebooks/*.yml."""
    out = []
    for f in sorted((REPO / "rulebooks").glob("*.yml")):
        for rs in yaml.safe_load(f.read_text()) or []:
            for rule in rs.get("rules", []):
                acts = rule.get("actions") or [rule.get("action")]
                for a in acts:
                    for kind in ("run_job_template", "run_workflow_template"):
                        if a and kind in a:
                            out.append((f.name, rule["name"], kind, a[kind]))
    return out


# ---------------------------------------------------------------- structure
ASK = {"extra_vars": "ask_variables_on_launch", "limit": "ask_limit_on_launch",
       "inventory": "ask_inventory_on_launch", "credentials": "ask_credential_on_launch",
       "job_tags": "ask_tags_on_launch", "skip_tags": "ask_skip_tags_on_launch",
       "job_type": "ask_job_type_on_launch", "verbosity": "ask_verbosity_on_launch",
       "diff_mode": "ask_diff_mode_on_launch", "scm_branch": "ask_scm_branch_on_launch",
       "execution_environment": "ask_execution_environment_on_launch",
       "labels": "ask_labels_on_launch", "forks": "ask_forks_on_launch",
       "job_slice_count": "ask_job_slice_count_on_launch", "timeout": "ask_timeout_on_launch",
       "instance_groups": "ask_instance_groups_on_launch"}


def launch_problems(cfg, launches):
    bad = []
    jts = {t["name"]: t for t in cfg.get("controller_templates", [])}
    wfs = {w["name"]: w for w in cfg.get("controller_workflows", [])}
    for rb, rule, kind, args in launches:
        objs = jts if kind == "run_job_template" else wfs
        what = f"rulebooks/{rb} rule {rule!r} {kind} {args.get('name')!r}"
        t = objs.get(args.get("name"))
        if t is None:
            bad.append(f"{what}: aap/ creates no such template")
            continue
        if args.get("organization") != t.get("organization"):
            bad.append(f"{what}: organization {args.get('organization')!r}, aap/ puts it in "
                       f"{t.get('organization')!r} (the controller looks it up by both)")
        # ansible-rulebook adds ansible_eda to extra_vars on every launch
        sent = set(args.get("job_args") or {}) | {"extra_vars"}
        for key in sorted(sent):
            ask = ASK.get(key)
            if ask is None or (kind == "run_workflow_template" and key not in (
                    "extra_vars", "limit", "inventory", "scm_branch", "labels", "job_tags", "skip_tags")):
                bad.append(f"{what}: job_args {key!r} cannot be prompted on a {kind[4:]}")
            elif not t.get(ask, False):
                bad.append(f"{what}: sends {key} but the template has no {ask}: true "
                           f"(the controller refuses the launch)")
    for w in cfg.get("controller_workflows", []):
        for n in w.get("simplified_workflow_nodes", []):
            ujt = n.get("unified_job_template")
            if ujt not in jts and ujt not in wfs:
                bad.append(f"workflow {w['name']!r} node {n.get('identifier')!r}: no template {ujt!r} in aap/")
    for s in cfg.get("controller_schedules", []):
        if s.get("unified_job_template") not in jts and s.get("unified_job_template") not in wfs:
            bad.append(f"schedule {s['name']!r}: no template {s.get('unified_job_template')!r} in aap/")
    return bad


def test_rulebook_launches_are_accepted():
    launches = rulebook_launches()
    assert launches, "no run_job_template in rulebooks/"
    bad = launch_problems(aap(), launches)
    assert not bad, "\n".join(bad)


def test_survey_variables_reach_the_playbook():
    """Each survey answer of a workflow is read by the playbook of every job
    template its nodes run (AWX passes them to every node)."""
    cfg = aap()
    jts = {t["name"]: t for t in cfg["controller_templates"]}
    bad = []
    for w in cfg.get("controller_workflows", []):
        for n in w.get("simplified_workflow_nodes", []):
            t = jts.get(n["unified_job_template"])
            if not t or not w.get("survey_enabled"):
                continue
            text = (REPO / t["playbook"]).read_text()
            for q in w["survey_spec"]["spec"]:
                if not re.search(r"\b%s\b" % re.escape(q["variable"]), text):
                    bad.append(f"workflow {w['name']!r}: survey variable {q['variable']!r} is not read "
                               f"by {t['playbook']}")
    assert not bad, "\n".join(bad)


def _mutated(fn):
    cfg = copy.deepcopy(aap())
    launches = copy.deepcopy(rulebook_launches())
    fn(cfg, launches)
    return launch_problems(cfg, launches)


def _jt(cfg, name):
    return next(t for t in cfg["controller_templates"] if t["name"] == name)


MUTATIONS = {
    "no ask_variables": (lambda c, l: _jt(c, "EDA - Sync PV/PVC to DR").update(ask_variables_on_launch=False),
                         "sends extra_vars but the template has no ask_variables_on_launch"),
    "ask_variables omitted": (lambda c, l: _jt(c, "EDA - Delete Snapshot from DR").pop("ask_variables_on_launch"),
                              "'EDA - Delete Snapshot from DR': sends extra_vars"),
    "limit": (lambda c, l: l[0][3].setdefault("job_args", {}).update(limit="localhost"),
              "sends limit but the template has no ask_limit_on_launch"),
    "organization": (lambda c, l: _jt(c, "EDA - Sync Snapshot to DR").update(organization="ocpv-dr"),
                     "aap/ puts it in 'ocpv-dr'"),
    "template name": (lambda c, l: _jt(c, "EDA - Delete PV/PVC from DR").update(name="EDA - Delete PV/PVC"),
                      "'EDA - Delete PV/PVC from DR': aap/ creates no such template"),
    "workflow node": (lambda c, l: c["controller_workflows"][0]["simplified_workflow_nodes"][0]
                      .update(unified_job_template="ocpv-dr Failover"), "no template 'ocpv-dr Failover'"),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_check_catches(name):
    fn, want = MUTATIONS[name]
    bad = _mutated(fn)
    assert any(want in b for b in bad), f"{name}: no problem containing {want!r} in {bad}"


# ---------------------------------------------------------------- AWX's own code
def _awx_source():
    for c in (os.environ.get("AWX_SOURCE"), REPO.parent / "shared/upstream/awx",
              Path("/work/shared/upstream/awx")):
        if c and (Path(c) / "awx/main/models/mixins.py").is_file():
            return Path(c)
    return None


def _method(path, cls, name):
    tree = ast.parse(path.read_text())
    c = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls)
    f = next(n for n in c.body if isinstance(n, ast.FunctionDef) and n.name == name)
    f.decorator_list = []
    return f


@pytest.fixture(scope="module")
def awx_code():
    src = _awx_source()
    if src is None:
        pytest.skip("AWX sources not found (../shared/upstream/awx or AWX_SOURCE)")
    consts = {}
    exec(compile(ast.Module(body=[s for s in ast.parse((src / "awx/main/constants.py").read_text()).body
                                  if isinstance(s, ast.Assign)
                                  and getattr(s.targets[0], "id", "") == "SURVEY_TYPE_MAPPING"],
                            type_ignores=[]), "constants.py", "exec"), consts)
    mixins = src / "awx/main/models/mixins.py"
    ns = {"copy": copy.copy, "deepcopy": copy.deepcopy, "_": lambda s: s, "is_encrypted": lambda v: False, "decrypt_value": None,
          "get_encryption_key": None, "encrypt_value": lambda v: v,
          "SURVEY_TYPE_MAPPING": consts["SURVEY_TYPE_MAPPING"],
          "status": SimpleNamespace(HTTP_400_BAD_REQUEST=400),
          "Response": lambda data, status=200: SimpleNamespace(data=data, status_code=status)}
    fns = [_method(mixins, "SurveyJobTemplateMixin", n)
           for n in ("_survey_element_validation", "_accept_or_ignore_variables", "pivot_spec")]
    fns.append(_method(src / "awx/api/views/__init__.py", "JobTemplateSurveySpec", "_validate_spec_data"))
    exec(compile(ast.Module(body=fns, type_ignores=[]), "awx", "exec"), ns)
    ns["models"] = SimpleNamespace(JobTemplate=SimpleNamespace(pivot_spec=lambda spec: ns["pivot_spec"](spec)))
    return ns


class Template:
    """A job or workflow template as aap/ describes it, with AWX's launch-time
    variable check bound to it (AWX's defaults for what aap/ leaves out)."""

    def __init__(self, d, awx, verbose_name):
        self.survey_enabled = d.get("survey_enabled", False)
        self.survey_spec = d.get("survey_spec") or {}
        self.ask_variables_on_launch = d.get("ask_variables_on_launch", False)
        ev = d.get("extra_vars") or {}
        self.extra_vars_dict = ev if isinstance(ev, dict) else yaml.safe_load(ev) or {}
        self._meta = SimpleNamespace(verbose_name=verbose_name)
        self._survey_element_validation = awx["_survey_element_validation"].__get__(self)
        self._accept = awx["_accept_or_ignore_variables"].__get__(self)

    def launch(self, extra_vars):
        """(accepted, rejected, errors) as the launch endpoint sees extra_vars."""
        return self._accept(dict(extra_vars))


def _wf(name="ocpv-dr One-Click Failover"):
    return next(w for w in aap()["controller_workflows"] if w["name"] == name)


def test_awx_accepts_what_the_rulebook_sends(awx_code):
    jts = {t["name"]: t for t in aap()["controller_templates"]}
    for rb, rule, kind, args in rulebook_launches():
        if kind != "run_job_template" or args["name"] not in jts:
            continue     # test_rulebook_launches_are_accepted reports it
        t = Template(jts[args["name"]], awx_code, "job template")
        sent = dict((args.get("job_args") or {}).get("extra_vars") or {},
                    ansible_eda={"ruleset": "r", "rule": rule, "events": {}})
        accepted, rejected, errors = t.launch(sent)
        assert not errors and not rejected, f"rulebooks/{rb} {rule!r} -> {args['name']!r}: {errors}"
        assert set(accepted) == set(sent)


def test_awx_refuses_ansible_eda_without_ask_variables(awx_code):
    """The check above can fail: AWX's own message for a template that does
    not ask for variables."""
    t = Template(dict(aap()["controller_templates"][0], ask_variables_on_launch=False), awx_code, "job template")
    _, rejected, errors = t.launch({"ansible_eda": {}, "resource_objects": []})
    assert "ansible_eda" in rejected
    assert "Variables ansible_eda, resource_objects are not allowed on launch" in errors["extra_vars"][0] \
        or "Variables resource_objects, ansible_eda are not allowed on launch" in errors["extra_vars"][0]


def test_awx_takes_the_survey_spec(awx_code):
    for w in aap()["controller_workflows"]:
        if w.get("survey_enabled"):
            r = awx_code["_validate_spec_data"](copy.deepcopy(w["survey_spec"]), {})
            assert r is None, f"workflow {w['name']!r}: AWX refuses the survey spec: {r.data}"
    bad = copy.deepcopy(_wf()["survey_spec"])
    bad["spec"][2]["default"] = "sideways"
    assert awx_code["_validate_spec_data"](bad, {}).data == {
        "error": "Default choice must be answered from the choices listed."}


def test_awx_launches_the_workflow_with_survey_answers(awx_code):
    """The documented launch (docs/aap.md, issue #19 test 4): survey answers
    only. AWX accepts them though the workflow does not ask for variables,
    and checks each against its question."""
    wf = Template(_wf(), awx_code, "workflow job template")
    answers = {"backup_name": "", "namespaces": ["vm-prod"], "failover_type": "disaster"}
    accepted, rejected, errors = wf.launch(answers)
    assert (accepted, rejected, errors) == (answers, {}, {})
    # an API launch must answer the required questions (their defaults are the UI's)
    _, _, errors = wf.launch({"namespaces": ["vm-prod"]})
    assert errors == {"variables_needed_to_start": ["'failover_type' value missing"]}
    accepted, _, errors = wf.launch({"namespaces": ["vm-prod"], "failover_type": "planned"})
    assert not errors and "backup_name" not in accepted      # optional: the playbook's default
    _, _, errors = wf.launch(dict(answers, failover_type="sideways"))
    assert "failover_type" in str(errors["variables_needed_to_start"])
    _, _, errors = wf.launch(dict(answers, namespaces=["kube-system"]))
    assert "namespaces" in str(errors["variables_needed_to_start"])
    # other knobs are the template's extra vars, not the workflow's (docs/aap.md)
    _, rejected, errors = wf.launch(dict(answers, accept_data_loss=True))
    assert "accept_data_loss" in rejected and "extra_vars" in errors
