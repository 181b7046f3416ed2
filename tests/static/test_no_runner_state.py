"""test_no_runner_state.py - no playbook or role keeps state between jobs on
the disk of the machine that runs them (issue #16, "State that outlives a job").

In AAP every job starts in a fresh execution-environment container: a file a
job writes on the runner is gone for the next one, so a role that reads
cross-job state from there (the failover's RPO from old periodic reports via
fileglob, event jobs' read-marks in dr_event_state_dir) silently loses it.
State that must outlive a job lives on the DR cluster (ocpv.dr.dr_state,
docs/status.md).  A static check, no lab, no build (`pytest tests/static`):

- every Jinja lookup of local files (file, fileglob, first_found, lines,
  template, csvfile, ini, pipe; lookup(), query(), q(), with_<lookup>) in
  roles/, playbooks/, group_vars/ fails;
- every task that reads a local path (slurp, fetch, find, stat,
  include_vars, assemble) or writes one (copy, template, lineinfile,
  blockinfile, fetch) fails unless it is in ALLOWED, with its reason;
- dr_event_state_dir / OCPV_DR_EVENT_STATE_DIR (the event jobs' old marks
  directory) may appear nowhere in them.

The mutation tests below prove it catches each kind (the two real cases it
was written against are kept as fixtures: the failover_verify fileglob of
periodic-*.json and event_pv_pvc_sync's covered.yml).
"""
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

# (file relative to the repo, task name) -> why this local read/write is no cross-job state
ALLOWED = {
    ("roles/dr_report/tasks/main.yml", "Write the JSON report"):
        "the job's report: an artifact it leaves (AAP: also its output); no role reads it back",
    ("roles/dr_report/tasks/main.yml", "Write the Markdown report"): "the job's report (see above)",
    ("roles/longhorn_dr_exercise/tasks/phase_write_sentinel.yml", "Write the sentinel into the volume (directory mode)"):
        "writes test data INTO the exercised volume (volume data, not state)",
    ("roles/longhorn_dr_exercise/tasks/phase_write_sentinel.yml",
     "Keep the checksum and the exercise state locally (survive the destroy)"):
        "within-run state of the exercise: the cluster it could live on is destroyed in between (#18 revisits)",
    ("roles/longhorn_dr_exercise/tasks/phase_backup.yml", "Record the backup locally"):
        "within-run state of the exercise (see above)",
    ("roles/longhorn_dr_exercise/tasks/phase_verify.yml", "Read the local checksum"):
        "within-run state of the exercise, written earlier in the same run",
    ("roles/longhorn_dr_exercise/tasks/phase_verify.yml", "Read the local state"):
        "within-run state of the exercise, written earlier in the same run",
    ("roles/longhorn_dr_exercise/tasks/read_sentinel.yml", "Read the sentinel files (directory mode)"):
        "reads the exercised volume's data, not state",
    ("roles/longhorn_dr_exercise/tasks/phase_rebuild.yml", "Store the new kubeconfig"):
        "within-run: the rebuilt cluster's kubeconfig for the following phases of the same run",
    ("roles/longhorn_dr_exercise/tasks/report.yml", "Write the JSON report"):
        "the exercise's report: an artifact it leaves; nothing reads it back",
}

READ_MODULES = {"slurp", "fetch", "find", "stat", "include_vars", "assemble"}
WRITE_MODULES = {"copy", "template", "lineinfile", "blockinfile", "fetch"}
FILE_LOOKUPS = "file|fileglob|first_found|lines|template|csvfile|ini|pipe"
LOOKUP_RE = re.compile(
    r"""\b(?:lookup|query|q)\(\s*['"](?:ansible\.builtin\.|ansible\.legacy\.)?(%s)['"]""" % FILE_LOOKUPS)
WITH_RE = re.compile(r"^\s*-?\s*with_(%s)\s*:" % FILE_LOOKUPS, re.M)
GONE_NAMES = re.compile(r"dr_event_state_dir|OCPV_DR_EVENT_STATE_DIR")

TASK_KEYS_NOT_MODULES = {
    "name", "when", "register", "loop", "loop_control", "vars", "tags", "delegate_to", "become", "become_user",
    "environment", "ignore_errors", "failed_when", "changed_when", "check_mode", "no_log", "until", "retries",
    "delay", "run_once", "notify", "listen", "args", "diff", "delegate_facts", "any_errors_fatal", "throttle",
    "timeout", "collections", "module_defaults", "connection", "block", "rescue", "always", "local_action",
    "ignore_unreachable", "async", "poll", "debugger",
}


def _module(task):
    for k in task:
        if k in TASK_KEYS_NOT_MODULES or k.startswith("with_"):
            continue
        return re.sub(r"^(ansible\.builtin\.|ansible\.legacy\.)", "", k)
    return None


def _tasks(node):
    """Every task of a task list, blocks flattened."""
    for t in node or []:
        if not isinstance(t, dict):
            continue
        if any(k in t for k in ("block", "rescue", "always")):
            for k in ("block", "rescue", "always"):
                yield from _tasks(t.get(k))
        else:
            yield t


def _file_tasks(path, doc):
    if "/tasks/" in str(path) or "/handlers/" in str(path):
        yield from _tasks(doc)
        return
    for play in doc or []:       # a playbook: its plays' task lists
        if isinstance(play, dict):
            for k in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                yield from _tasks(play.get(k))


def _strip_comments(text):
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def check(files):
    """files: {relative path: text}.  Returns every finding, one line each."""
    out = []
    for rel, text in sorted(files.items()):
        code = _strip_comments(text)
        for m in LOOKUP_RE.finditer(code):
            out.append(f"{rel}: lookup of local files ({m.group(1)}): {m.group(0)}")
        for m in WITH_RE.finditer(code):
            out.append(f"{rel}: loop over local files (with_{m.group(1)})")
        for m in GONE_NAMES.finditer(code):
            out.append(f"{rel}: {m.group(0)} (job state on the runner's disk; DR's record replaces it)")
        if not rel.endswith((".yml", ".yaml")) or rel.startswith("group_vars/") or "/defaults/" in rel \
                or "/meta/" in rel or "/vars/" in rel:
            continue
        doc = yaml.safe_load(text)
        for task in _file_tasks(rel, doc):
            mod = _module(task)
            if mod not in READ_MODULES | WRITE_MODULES:
                continue
            name = task.get("name", "?")
            if (rel, name) in ALLOWED:
                continue
            what = "reads" if mod in READ_MODULES else "writes"
            out.append(f"{rel}: task {name!r} ({mod}) {what} a local file: state kept on the runner's disk "
                       f"is gone in the next job (AAP); keep it on DR (ocpv.dr.dr_state) or allow-list it with a reason")
    return out


def repo_files():
    files = {}
    for top in ("roles", "playbooks", "group_vars"):
        for p in sorted((REPO / top).rglob("*")):
            if p.is_file() and p.suffix in (".yml", ".yaml", ".j2"):
                files[str(p.relative_to(REPO))] = p.read_text()
    return files


def test_no_playbook_or_role_keeps_state_on_the_runner():
    findings = check(repo_files())
    assert not findings, "\n".join(findings)


def test_every_allowed_task_exists():
    """An allow-list entry whose task was renamed or removed would hide the next one."""
    files = repo_files()
    names = {(rel, t.get("name")) for rel, text in files.items()
             if rel.endswith(".yml") and ("/tasks/" in rel or rel.startswith("playbooks/"))
             for t in _file_tasks(rel, yaml.safe_load(text))}
    assert not sorted(set(ALLOWED) - names), sorted(set(ALLOWED) - names)


# ------------------------------------------------------------------ the check catches each kind

FAILOVER_VERIFY_FILEGLOB = """
- name: Last data sync of each volume
  ansible.builtin.set_fact:
    _last_sync: >-
      {% for path in _reports[-24:] %}{% set r = lookup('ansible.builtin.file', path) | from_json %}{% endfor %}
  vars:
    _reports: "{{ query('ansible.builtin.fileglob', dr_report_dir ~ '/periodic-*.json') | sort }}"
"""

EVENT_COVERED = """
- name: Note when this job reads the primary
  ansible.builtin.set_fact:
    event_covered: "{{ _marks | length > 0 }}"
  vars:
    _marks: "{{ query('ansible.builtin.file', *_paths, errors='ignore') | select | list }}"
- name: Note, per namespace, when this job read the primary
  ansible.builtin.copy:
    dest: "{{ dr_event_state_dir }}/pv_pvc_sync-{{ item }}.read"
    content: "{{ event_read_at }}"
    mode: "0600"
  loop: "{{ event_namespaces }}"
"""


@pytest.mark.parametrize("text, want", [
    (FAILOVER_VERIFY_FILEGLOB, ["lookup of local files (file)", "lookup of local files (fileglob)"]),
    (EVENT_COVERED, ["lookup of local files (file)", "dr_event_state_dir", "writes a local file"]),
    ("- name: x\n  ansible.builtin.slurp:\n    src: /var/tmp/state\n", ["reads a local file"]),
    ("- name: x\n  block:\n    - name: y\n      stat:\n        path: /tmp/s\n", ["reads a local file"]),
    ("- name: x\n  ansible.builtin.debug:\n    msg: \"{{ item }}\"\n  with_fileglob: ['/tmp/*.json']\n",
     ["loop over local files"]),
    ("- name: x\n  ansible.builtin.debug:\n    msg: \"{{ q('first_found', ['a']) }}\"\n", ["first_found"]),
    ("- name: x\n  ansible.builtin.template:\n    src: a.j2\n    dest: /tmp/a\n", ["writes a local file"]),
])
def test_check_catches(text, want):
    found = "\n".join(check({"roles/x/tasks/main.yml": text}))
    for w in want:
        assert w in found, (w, found)


def test_check_catches_in_playbooks_and_lets_other_lookups_pass():
    pb = ("- hosts: localhost\n  tasks:\n    - name: r\n      ansible.builtin.slurp:\n        src: /tmp/x\n")
    assert check({"playbooks/p.yml": pb})
    fine = "- name: x\n  ansible.builtin.debug:\n    msg: \"{{ lookup('ansible.builtin.env', 'HOME') }}\"\n"
    assert check({"roles/x/tasks/main.yml": fine}) == []
    # an allow-listed task passes only under its own file and name
    ok = "- name: Write the JSON report\n  ansible.builtin.copy:\n    dest: /tmp/r\n    content: x\n"
    assert check({"roles/dr_report/tasks/main.yml": ok}) == []
    assert check({"roles/other/tasks/main.yml": ok})
