#!/usr/bin/env python3
"""bench.py - throughput of ocpv.dr.oadp_parse on a large Velero backup,
next to its baselines, in one run (see ./run).

Backup: 50,000 objects (VMs with DataVolume, PVC, PV, VolumeSnapshot,
VolumeSnapshotContent, plus pods / configmaps / secrets), ~100 MB gzipped,
written by tests/fixtures/velero/gen_backup.py (format 1.1.0: every item
twice).  Measured, each as compressed MB per second of wall time and the peak
RSS of the process tree that did the work:

  gzip -dc > /dev/null               the physical floor (decompression only)
  module, local src                  oadp_parse on the file
  module, local src, 1 namespace     same, filter selects ~1/5: memory follows
  seed approach, local               tar xzf to disk + Python json.load of each file
  module, S3 (MinIO)                 download + gunzip + tar + JSON, streamed
  seed approach, S3                  boto3 download_file + tar xzf + Python json.load

S3 rows need the lab (LAB_ENV, default tests/lab/.env) and boto3: without
them the bench fails; BENCH_LOCAL_ONLY=1 runs the local rows alone.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/fixtures/velero"))
import gen_backup  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from _lab import read_lab_env, s3_credentials  # noqa: E402

WORK = Path(os.environ.get("BENCH_DIR", REPO / "build-bench-oadp"))
BIN = Path(os.environ.get("OADP_PARSE_BIN", REPO / "build-oadp/modules/oadp_parse"))
NAMESPACES = [f"vm-ns{i}" for i in range(5)]
VMS_PER_NS = 1000          # 6 objects each -> 30,000
FILLER_PER_NS = 4000       # -> 20,000 (+5 namespaces)
PAD = int(os.environ.get("BENCH_PAD", "5600"))
NAME = "bench-50k"


def run_measured(argv, stdout=subprocess.DEVNULL, cwd=None, env=None):
    """Runs argv under GNU time; returns (wall seconds, CPU seconds, peak RSS MiB).
    (/usr/bin/time forks from a small process, so the RSS is the command's own.)"""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", tf.name, *argv], stdout=stdout,
                           stderr=subprocess.PIPE, cwd=cwd, env=env)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"{argv[0]} failed: {p.stderr.decode(errors='replace')[-2000:]}")
        u, s_, m = tf.read().split()[-3:]
    return dt, float(u) + float(s_), int(m) / 1024.0


def add(a, b):
    return a[0] + b[0], a[1] + b[1], max(a[2], b[2])


def ensure_backup():
    tar = WORK / "bucket" / "velero" / "backups" / NAME / f"{NAME}.tar.gz"
    if tar.is_file():
        return tar
    print(f"generating {NAME} (50,000 objects) ...", file=sys.stderr)
    gen_backup.write_backup(str(WORK / "bucket"), NAME, prefix="velero", namespaces=NAMESPACES,
                            vms_per_ns=VMS_PER_NS, filler_per_ns=FILLER_PER_NS, pad=PAD, seed=50000)
    return tar


SEED_READER = r"""
import json, os, sys
root = sys.argv[1]
want = {"persistentvolumes": "pv", "persistentvolumeclaims": "pvc",
        "volumesnapshots.snapshot.storage.k8s.io": "vs",
        "volumesnapshotcontents.snapshot.storage.k8s.io": "vsc"}
lists = {v: [] for v in want.values()}
n = 0
for d, _, files in os.walk(os.path.join(root, "resources")):
    for f in files:
        if f.endswith(".json"):
            with open(os.path.join(d, f)) as fh:
                obj = json.load(fh)
            n += 1
            gr = os.path.relpath(d, os.path.join(root, "resources")).split(os.sep)[0]
            if gr in want and "-preferredversion" not in d:
                lists[want[gr]].append(obj)
print(json.dumps({k: len(v) for k, v in lists.items()}), n)
"""


def seed_local(tar, scratch):
    """tar xzf to disk, then read every JSON with Python (the seed role)."""
    out = scratch / "x"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    m1 = run_measured(["tar", "xzf", str(tar), "-C", str(out)])
    reader = scratch / "seed_reader.py"
    reader.write_text(SEED_READER)
    m2 = run_measured([sys.executable, str(reader), str(out)])
    shutil.rmtree(out, ignore_errors=True)
    return add(m1, m2)


def module_args(scratch, args):
    p = scratch / f"args-{abs(hash(json.dumps(args, sort_keys=True)))}.json"
    p.write_text(json.dumps(args))
    return p


def s3_rows(tar, scratch):
    """The two S3 rows, against the lab's MinIO: a missing lab or boto3 is an
    error (BENCH_LOCAL_ONLY=1 leaves these rows out, visibly), never a table
    that silently lacks them."""
    lab = read_lab_env()
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise SystemExit("bench: the S3 rows need boto3 (LAB_VENV or .cache/venv; or BENCH_LOCAL_ONLY=1)")
    ak, sk = s3_credentials(lab)
    prefix = "oadp-bench"
    s3 = boto3.client("s3", endpoint_url=lab["S3_ENDPOINT"], aws_access_key_id=ak,
                      aws_secret_access_key=sk, region_name=lab.get("S3_REGION", "us-east-1"),
                      verify=lab.get("S3_CA_FILE") or None,
                      config=Config(s3={"addressing_style": "path"}))
    for f in tar.parent.iterdir():
        s3.upload_file(str(f), lab["S3_BUCKET"], f"{prefix}/backups/{NAME}/{f.name}")
    s3args = {"endpoint": lab["S3_ENDPOINT"], "bucket": lab["S3_BUCKET"], "prefix": prefix,
              "region": lab.get("S3_REGION", "us-east-1"),
              "credentials_file": lab["S3_CREDENTIALS_FILE"],
              # a lab MinIO without TLS: opted in explicitly
              "allow_insecure_http": lab["S3_ENDPOINT"].startswith("http://")}
    rows = [("module, S3 (MinIO), streamed",
             *run_measured([str(BIN), str(module_args(scratch, {"s3": s3args, "backup_name": NAME}))]))]
    dl = scratch / "dl.tar.gz"
    code = ("import boto3, sys\nfrom botocore.config import Config\n"
            "s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',"
            " config=Config(s3={'addressing_style': 'path'}))\n"
            "s3.download_file(sys.argv[2], sys.argv[3], sys.argv[4])\n")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ak, AWS_SECRET_ACCESS_KEY=sk)
    m1 = run_measured([sys.executable, "-c", code, lab["S3_ENDPOINT"], lab["S3_BUCKET"],
                       f"{prefix}/backups/{NAME}/{NAME}.tar.gz", str(dl)], env=env)
    rows.append(("seed: boto3 download + tar xzf + Python", *add(m1, seed_local(dl, scratch))))
    return rows


def main():
    if not BIN.is_file():
        raise SystemExit(f"module binary {BIN} missing: meson compile -C build-oadp (or set OADP_PARSE_BIN)")
    WORK.mkdir(parents=True, exist_ok=True)
    tar = ensure_backup()
    mb = tar.stat().st_size / 1e6
    scratch = Path(tempfile.mkdtemp(prefix="oadp-bench-", dir=WORK))
    rows = []
    try:
        # warm the page cache so every row reads from memory
        subprocess.run(["cat", str(tar)], stdout=subprocess.DEVNULL, check=True)
        rows.append(("gzip -dc > /dev/null (floor)", *run_measured(["gzip", "-dc", str(tar)])))
        rows.append(("module, local src, all namespaces",
                     *run_measured([str(BIN), str(module_args(scratch, {"src": str(tar)}))])))
        rows.append(("module, local src, 1 of 5 namespaces",
                     *run_measured([str(BIN), str(module_args(scratch, {"src": str(tar),
                                                                         "namespaces": [NAMESPACES[0]]}))])))
        rows.append(("seed: tar xzf to disk + Python json", *seed_local(tar, scratch)))

        if os.environ.get("BENCH_LOCAL_ONLY") == "1":
            print("(BENCH_LOCAL_ONLY=1: no S3 rows)", file=sys.stderr)
        else:
            rows += s3_rows(tar, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"\noadp_parse benchmark: {NAME}, 50,005 objects, {mb:.1f} MB compressed; "
          f"{os.cpu_count()} CPUs, load average {load:.1f} (shared machine: wall figures vary, CPU ones less)")
    print(f"{'what':<40} {'wall s':>7} {'MB/s':>7} {'vs gzip':>7} {'CPU s':>7} {'MB/CPUs':>8} "
          f"{'vs gzip':>7} {'peak RSS MiB':>12}")
    g = rows[0]
    for name, t, c, r in rows:
        print(f"{name:<40} {t:7.2f} {mb / t:7.1f} {g[1] / t:7.2f} {c:7.2f} {mb / c:8.1f} {g[2] / c:7.2f} {r:12.1f}")
    mod = next(row for row in rows if row[0].startswith("module, local src, all"))
    seed = next(row for row in rows if row[0].startswith("seed: tar"))
    print(f"\nmodule/gzip throughput (all selected): wall {g[1] / mod[1]:.0%}, CPU {g[2] / mod[2]:.0%} "
          f"(aim >= 70%); module vs seed approach (local): {seed[1] / mod[1]:.1f}x faster")


if __name__ == "__main__":
    main()
