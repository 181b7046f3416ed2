"""test_aap_docs_commands.py - the commands docs/aap.md gives for deploying
the forwarder ("Deploy the forwarder (primary cluster)") run against the lab's
primary kube-apiserver as written, `oc` replaced by the lab's kubectl and
every write a server-side dry run (the real API server validates and admits
the objects; nothing is stored, nothing of other tests is touched).

Not run here: the Route commands (the lab's apiservers have no
route.openshift.io API), `podman build` and the `oc logs` / `oc exec` checks
(the lab runs no kubelet).

Run:  LAB_ENV=tests/lab/.state-<name>/env .cache/venv/bin/pytest tests/integration/test_aap_docs_commands.py
"""
import os
import re
import shlex
import subprocess
from pathlib import Path

from conftest import REPO


def doc_block(heading):
    """The first indented code block after `## heading` in docs/aap.md, as
    commands (continuation lines joined, comment lines dropped)."""
    text = (REPO / "docs/aap.md").read_text()
    m = re.search(r"^## %s\n(.*?)(?=^## )" % re.escape(heading), text, re.S | re.M)
    assert m, f"docs/aap.md has no section {heading!r}"
    block = re.search(r"((?:^    .*\n)+)", m.group(1), re.M)
    assert block, f"docs/aap.md section {heading!r} has no code block"
    cmds, cur = [], ""
    for line in block.group(1).splitlines():
        line = line[4:]
        if not cur and line.lstrip().startswith("#"):
            continue
        cur += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            cmds.append(cur.strip())
            cur = ""
    return cmds


def run_oc(lab, cmd, cwd):
    """An `oc` command of the doc, with the lab's kubectl, writes dry-run on
    the server."""
    argv = shlex.split(cmd)
    assert argv[0] == "oc", f"not an oc command: {cmd}"
    args = argv[1:]
    if args[0] in ("apply", "create"):
        args.insert(1, "--dry-run=server")
    return subprocess.run([str(Path(lab["LAB_BIN"]) / "kubectl"), "--kubeconfig", lab["PRIMARY_KUBECONFIG"],
                           *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_deploy_the_forwarder_commands_run(lab, tmp_path):
    cmds = doc_block("Deploy the forwarder (primary cluster)")
    assert any("deployment.yaml" in c for c in cmds), cmds
    # the files the doc's `oc create secret` reads, and the repository's paths
    os.symlink(REPO / "forwarder", tmp_path / "forwarder")
    for c in cmds:
        for path in re.findall(r"--from-file=[\w.-]+=(\S+)", c):
            (tmp_path / path).write_text("not-a-real-secret\n")
    ran = []
    for c in cmds:
        p = run_oc(lab, c, tmp_path)
        if c.startswith("oc create namespace") and "AlreadyExists" in p.stderr:
            continue            # the lab creates it (LAB_NAMESPACES)
        assert p.returncode == 0, f"docs/aap.md: `{c}` failed: {p.stderr}"
        ran.append(c)
    out = " ".join(ran)
    for f in ("serviceaccount", "clusterrole", "clusterrolebinding", "pvc", "deployment"):
        assert f"forwarder/deploy/{f}.yaml" in out
    assert "create secret generic" in out
