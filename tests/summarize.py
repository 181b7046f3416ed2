#!/usr/bin/env python3
"""Summarize every suite tests/run ran into one closing line.

Reads, from the results directory given as argv[1]:
  *-testlog.json   meson test logs (one JSON object per line); cmocka output in
                   each test's stdout is counted per test case
  pytest.xml       JUnit XML from pytest
  checks.tsv       "<name>\t<passed|failed>" per whole-command check (fuzz, sanity)
  build-failures   one line per build/setup step that failed (counted as failures)
Prints a per-suite table and then "N passed, N failed, N skipped".
Exit status 1 when anything failed or nothing ran.
"""
import json
import pathlib
import re
import sys
import xml.etree.ElementTree as ET

results = pathlib.Path(sys.argv[1])
total = {"passed": 0, "failed": 0, "skipped": 0}
rows = []
failures = []

OK = re.compile(r"^\[\s+OK\s+\] (\S+)", re.M)
FAILED = re.compile(r"^\[\s+FAILED\s+\] (?!\d+ test)(\S+)", re.M)
SKIPPED = re.compile(r"^\[\s+SKIPPED\s+\] (?!\d+ test)(\S+)", re.M)


def add(suite, p, f, s):
    total["passed"] += p
    total["failed"] += f
    total["skipped"] += s
    rows.append((suite, p, f, s))


for log in sorted(results.glob("*-testlog.json")):
    suite = log.name.replace("-testlog.json", "")
    p = f = s = 0
    for line in log.read_text().splitlines():
        if not line.strip():
            continue
        t = json.loads(line)
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        tp, tf, ts = len(OK.findall(out)), FAILED.findall(out), len(SKIPPED.findall(out))
        ok = t.get("result") in ("OK", "EXPECTEDFAIL")
        if t.get("result") == "SKIP":
            s += 1
            continue
        p += tp
        s += ts
        f += len(tf)
        failures += [f"{suite}:{t['name']}:{n}" for n in tf]
        if not ok and not tf:      # crashed, leaked, timed out, or failed without cmocka output
            f += 1
            failures.append(f"{suite}:{t['name']} ({t.get('result')})")
        elif ok and tp == 0:       # a non-cmocka test program that passed
            p += 1
    add(suite, p, f, s)

xml = results / "pytest.xml"
if xml.exists():
    p = f = s = 0
    for tc in ET.parse(xml).getroot().iter("testcase"):
        name = f"{tc.get('classname')}::{tc.get('name')}"
        if tc.find("failure") is not None or tc.find("error") is not None:
            f += 1
            failures.append("pytest:" + name)
        elif tc.find("skipped") is not None:
            s += 1
        else:
            p += 1
    add("pytest (integration)", p, f, s)

checks = results / "checks.tsv"
if checks.exists():
    p = f = 0
    for line in checks.read_text().splitlines():
        name, _, outcome = line.partition("\t")
        if outcome == "passed":
            p += 1
        else:
            f += 1
            failures.append("check: " + name)
    add("whole-command checks", p, f, 0)

bf = results / "build-failures"
if bf.exists():
    lines = [l for l in bf.read_text().splitlines() if l.strip()]
    for l in lines:
        failures.append("build: " + l)
    add("build steps", 0, len(lines), 0)

print(f"{'suite':32} {'passed':>7} {'failed':>7} {'skipped':>8}")
for suite, p, f, s in rows:
    print(f"{suite:32} {p:7} {f:7} {s:8}")
if failures:
    print("\nfailed:")
    for x in failures:
        print("  " + x)
print()
line = f"{total['passed']} passed, {total['failed']} failed"
if total["skipped"]:
    line += f", {total['skipped']} skipped"
print(line)
sys.exit(1 if total["failed"] or total["passed"] == 0 else 0)
