"""test_monitoring.py - the alert rules of monitoring/ (issue #16): a static
check (no lab; `pytest tests/static`, which tests/run runs as `static-checks`
after tests/lab/install-deps has built the lab binaries).

- monitoring/prometheusrule.yaml is what monitoring/generate.py makes of
  monitoring/ocpv-dr.rules.yml (the CR cannot drift from the tested file);
- every alert has a severity, a summary, a description and a runbook_url
  whose anchor is a section of docs/runbooks.md;
- every alert has a promtool unit test that expects nothing before its
  `for:` has passed, the alert firing after it and nothing again later
  (the alert CLEARS when its input goes back to healthy);
- `promtool check rules` and `promtool test rules` pass, with the promtool
  built from the pinned Prometheus (tests/lab/go/prometheus, by
  tests/lab/build-bins into the lab bin dir).  A missing promtool FAILS
  these tests (never a skip): CI builds it before the static checks.
The mutation tests prove the checks catch a broken rule and a lost anchor.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MON = REPO / "monitoring"
RULES = MON / "ocpv-dr.rules.yml"
RULE_TESTS = MON / "tests" / "ocpv-dr.rules.test.yml"
RUNBOOKS = REPO / "docs" / "runbooks.md"
RUNBOOK_BASE = "https://example.invalid/ocpv-dr/blob/main/docs/runbooks.md#"


def lab_bin_dir():
    """Where tests/lab/build-bins puts the lab binaries (tests/lab/lib.sh:
    LAB_BIN, else $LAB_CACHE_DIR/lab/bin, else .cache/lab/bin)."""
    if os.environ.get("LAB_BIN"):
        return Path(os.environ["LAB_BIN"])
    cache = Path(os.environ.get("LAB_CACHE_DIR") or REPO / ".cache")
    return cache / "lab" / "bin"


def promtool():
    """PROMTOOL, else the lab's promtool; an assertion failure naming how to
    build it when there is none."""
    p = Path(os.environ.get("PROMTOOL") or lab_bin_dir() / "promtool")
    assert p.is_file() and os.access(p, os.X_OK), (
        f"promtool not found at {p}: build it with tests/lab/build-bins (Prometheus from "
        f"tests/lab/go/prometheus), or set PROMTOOL")
    return str(p)


def alerts(path=RULES):
    doc = yaml.safe_load(Path(path).read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def github_anchors(md_text):
    """The anchors GitHub makes of a Markdown file's headings (lowercase,
    punctuation but '-' and '_' dropped, spaces to '-')."""
    out = set()
    for line in md_text.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            text = re.sub(r"[`*]", "", m.group(1)).strip().lower()
            out.add(re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", text)))
    return out


def runbook_problems(rules_path=RULES, runbooks_path=RUNBOOKS):
    anchors = github_anchors(Path(runbooks_path).read_text())
    problems = []
    for r in alerts(rules_path):
        name = r["alert"]
        url = r.get("annotations", {}).get("runbook_url", "")
        if not url.startswith(RUNBOOK_BASE):
            problems.append(f"{name}: runbook_url {url!r} does not start with {RUNBOOK_BASE}")
            continue
        anchor = url[len(RUNBOOK_BASE):]
        if anchor != name.lower():
            problems.append(f"{name}: runbook anchor {anchor!r} is not the alert name in lowercase")
        if anchor not in anchors:
            problems.append(f"{name}: docs/runbooks.md has no section #{anchor}")
    return problems


def test_prometheusrule_is_generated_from_the_rule_file():
    p = subprocess.run([sys.executable, str(MON / "generate.py"), "--check"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    cr = yaml.safe_load((MON / "prometheusrule.yaml").read_text())
    assert cr["apiVersion"] == "monitoring.coreos.com/v1" and cr["kind"] == "PrometheusRule"
    assert cr["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_every_alert_is_documented_and_has_a_runbook():
    names = [r["alert"] for r in alerts()]
    assert len(names) == len(set(names)), names
    assert {"OcpvDrRpoAboveTarget", "OcpvDrRpoCritical", "OcpvDrNamespaceUnprotected",
            "OcpvDrVolumeSyncFailing", "OcpvDrFullSyncFailing", "OcpvDrBackupTooOld",
            "OcpvDrNamespaceFailedOver", "OcpvDrPrimaryUnreachable",
            "OcpvDrStatusRecordsUnreadable", "OcpvDrStatusExporterDown"} <= set(names)
    for r in alerts():
        assert r.get("labels", {}).get("severity") in ("warning", "critical"), r["alert"]
        for key in ("summary", "description", "runbook_url"):
            assert r.get("annotations", {}).get(key), f"{r['alert']}: no {key}"
        assert r.get("for"), f"{r['alert']}: no for: (one bad scrape would page)"
    assert runbook_problems() == []


def test_a_lost_runbook_section_is_caught(tmp_path):
    md = tmp_path / "runbooks.md"
    md.write_text(RUNBOOKS.read_text().replace("## OcpvDrBackupTooOld", "## Backups too old"))
    problems = runbook_problems(RULES, md)
    assert problems == ["OcpvDrBackupTooOld: docs/runbooks.md has no section #ocpvdrbackuptooold"]


def _minutes(d):
    m = re.fullmatch(r"(\d+)([smh])", str(d))
    assert m, f"duration {d!r}"
    return int(m.group(1)) * {"s": 1 / 60, "m": 1, "h": 60}[m.group(2)]


def test_every_alert_has_a_unit_test_that_fires_after_for_and_clears():
    """For each alert some unit-test case expects nothing at a time t0, the
    alert at a later t1 and nothing again at a later t2 (it clears).  That t0
    lies after the input went bad but before `for:` has passed is what the
    cases are written for (their comments say "pending"); promtool checks
    the values below."""
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == ["../ocpv-dr.rules.yml"]
    for r in alerts():
        ok = False
        for case in tests["tests"]:
            evals = sorted(((_minutes(e["eval_time"]), bool(e["exp_alerts"]))
                            for e in case.get("alert_rule_test", []) if e["alertname"] == r["alert"]))
            fired = [t for t, f in evals if f]
            if not fired:
                continue
            before = [t for t, f in evals if not f and t < fired[0]]
            after = [t for t, f in evals if not f and t > fired[-1]]
            ok = ok or (before and after)
        assert ok, f"{r['alert']}: no unit test expecting nothing, then the alert, then nothing again"


def test_promtool_check_rules():
    p = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in p.stdout + p.stderr


def test_promtool_unit_tests_pass():
    p = subprocess.run([promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout + p.stderr


@pytest.mark.parametrize("old,new", [
    # an alert that fires at once would page on one bad scrape
    ("        for: 15m\n        labels:\n          severity: warning\n        annotations:\n"
     "          summary: \"Syncing volume",
     "        for: 0m\n        labels:\n          severity: warning\n        annotations:\n"
     "          summary: \"Syncing volume"),
    # an RPO alert that also fired for failed-over namespaces
    ('state=~"FailingOver|FailedOver|FailingBack"', 'state=~"FailingOver|FailingBack"'),
])
def test_promtool_unit_tests_catch_a_broken_rule(tmp_path, old, new):
    (tmp_path / "tests").mkdir()
    text = RULES.read_text()
    assert text.count(old) >= 1, old
    (tmp_path / RULES.name).write_text(text.replace(old, new))
    shutil.copy(RULE_TESTS, tmp_path / "tests" / RULE_TESTS.name)
    p = subprocess.run([promtool(), "test", "rules", str(tmp_path / "tests" / RULE_TESTS.name)],
                       capture_output=True, text=True)
    assert p.returncode != 0, p.stdout + p.stderr
    assert "FAILED" in p.stdout + p.stderr


def test_dashboard_loads_and_every_panel_queries():
    """The Grafana dashboard (Grafana itself is AGPL and not used here): valid
    JSON, unique uid and panel ids, a datasource input, the namespace variable
    from the exporter's state metric, every target an expr over that variable
    or exporter-wide.  That every ocpv_dr_* name it uses is rendered by the
    exporter is tests/unit/test_exporter.c's (fixture) and
    tests/integration/test_monitoring.py's (real scrape)."""
    d = json.loads((MON / "ocpv-dr-dashboard.json").read_text())
    assert d["uid"] and d["title"]
    assert [i["name"] for i in d["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) and len(ids) >= 6
    var = {v["name"]: v for v in d["templating"]["list"]}["namespace"]
    assert var["query"]["query"] == "label_values(ocpv_dr_namespace_state, protected_namespace)"
    exprs = []
    for p in d["panels"]:
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        assert p["targets"], p["title"]
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"]), p["title"]
        for t in p["targets"]:
            assert t.get("expr"), f"{p['title']}: a target without expr"
            exprs.append(t["expr"])
            if "protected_namespace" not in t["expr"] and "ocpv_dr_namespace" in t["expr"]:
                pytest.fail(f"{p['title']}: {t['expr']} ignores $namespace")
    text = " ".join(exprs)
    for needed in ("ocpv_dr_namespace_state", "ocpv_dr_namespace_rpo_seconds",
                   "ocpv_dr_namespace_rpo_target_seconds", "ocpv_dr_namespace_backup_age_seconds",
                   "ocpv_dr_volume_last_sync_success", "ocpv_dr_primary_up"):
        assert needed in text, f"the dashboard does not show {needed}"


def _deploy_docs():
    docs = []
    for f in sorted((REPO / "exporter/deploy").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return docs


def test_exporter_deploy_is_read_only_and_agrees_with_the_rules():
    """exporter/deploy/: RBAC only get/list/watch on exactly the records the
    exporter reads; the Service's name is the job the ExporterDown alert
    matches; the ServiceMonitor selects that Service's port; the Deployment
    sets only variables exporter/config.c knows and listens on the port the
    Service targets."""
    docs = _deploy_docs()
    kinds = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    granted = set()
    for role in kinds["Role"] + kinds["ClusterRole"]:
        ns = role["metadata"].get("namespace", "*")
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, (role["metadata"], rule)
            for g in rule["apiGroups"]:
                for r in rule["resources"]:
                    granted.add((ns, g, r))
    assert granted == {("ocpv-dr", "", "configmaps"), ("openshift-adp", "velero.io", "backups"),
                       ("*", "", "persistentvolumes")}
    for b in kinds["RoleBinding"] + kinds["ClusterRoleBinding"]:
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "ocpv-dr-status-exporter",
                                  "namespace": "ocpv-dr"}]
    svc, = kinds["Service"]
    down = {r["alert"]: r for r in alerts()}["OcpvDrStatusExporterDown"]
    assert f'job="{svc["metadata"]["name"]}"' in down["expr"]
    sm, = kinds["ServiceMonitor"]
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert [e["port"] for e in sm["spec"]["endpoints"]] == [p["name"] for p in svc["spec"]["ports"]]
    dep, = kinds["Deployment"]
    spec = dep["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "ocpv-dr-status-exporter"
    c, = spec["containers"]
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports[svc["spec"]["ports"][0]["targetPort"]] == 9750
    known = set(re.findall(r'(?:getenv|env_or|env_long)\("([A-Z_]+)"',
                           (REPO / "exporter/config.c").read_text()))
    assert {"KUBECONFIG", "PRIMARY_KUBECONFIG", "CACHE_SECONDS", "LISTEN_ADDRESS"} <= known
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert set(env) <= known, set(env) - known
    assert env["LISTEN_ADDRESS"].endswith(":9750")
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert c[probe]["httpGet"]["path"] == path
