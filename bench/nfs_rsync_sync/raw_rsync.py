#!/usr/bin/env python3
"""raw_rsync.py - bench baselines with no module around them, run inside
nfs-primary's network namespace by bench/nfs_rsync_sync/run.  Both share one
ssh ControlMaster per 8 sessions, as the module does.

  mode "batch": the module's own command lines - the volumes split into
                `parallel` batches (at most 64 each), ONE rsync --relative per
                batch (SRC_BASE/./VOL/ ... host:DEST_BASE/), batches run in
                parallel -> the floor for the module's overhead.
  mode "loop":  one rsync per volume (SRC/ host:DEST/) from a pool of
                `parallel` threads -> what a per-volume design costs.

usage: raw_rsync.py JOBS.json  -> prints seconds."""
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

cfg = json.load(open(sys.argv[1]))
tmp = tempfile.mkdtemp(prefix="raw-rsync-")
par = cfg["parallel"]
nm = (par + 7) // 8
base = ["ssh", "-i", cfg["key"], "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + cfg["known_hosts"],
        "-o", "ConnectTimeout=10", "-o", "ClearAllForwardings=yes"]
opts = ["-a", "--numeric-ids", "--delete", "--partial"]
t0 = time.monotonic()
cps = []
for i in range(nm):
    cp = f"{tmp}/cm{i}"
    subprocess.run(base + ["-o", "ControlPath=" + cp, "-o", "ControlMaster=yes", "-o", "ControlPersist=120",
                           "-N", "-f", "--", "root@" + cfg["host"]], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cps.append(cp)


def e_opt(i):
    return " ".join(base + ["-o", "ControlPath=" + cps[i % nm], "-o", "ControlMaster=no"])


def one(i_item):
    i, item = i_item
    p = subprocess.run(["rsync", *opts, "--timeout=300", "--stats", "--out-format=@%i", "-e", e_opt(i),
                        "--", item["src"] + "/", f"root@{cfg['host']}:{item['dest']}/"], capture_output=True)
    return p.returncode


def batch(i_names):
    i, names = i_names
    p = subprocess.run(["rsync", *opts, "--relative", "--timeout=300", "--stats",
                        "--out-format=@%i %b %l %n", "-e", e_opt(i), "--",
                        *[f"{cfg['src_base']}/./{n}/" for n in names],
                        f"root@{cfg['host']}:{cfg['dest_base']}/"], capture_output=True)
    return p.returncode


items = cfg["items"]
with ThreadPoolExecutor(par) as ex:
    if cfg.get("mode") == "batch":
        size = min(64, max(1, -(-len(items) // par)))
        names = [os.path.basename(it["src"]) for it in items]
        batches = [names[k:k + size] for k in range(0, len(names), size)]
        rcs = list(ex.map(batch, enumerate(batches)))
    else:
        rcs = list(ex.map(one, enumerate(items)))
for cp in cps:
    subprocess.run(base + ["-o", "ControlPath=" + cp, "-O", "exit", "--", "root@" + cfg["host"]],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.rmdir(tmp) if not os.listdir(tmp) else None
if any(rcs):
    sys.exit(f"raw rsync failed: {rcs}")
print(f"{time.monotonic() - t0:.3f}")
