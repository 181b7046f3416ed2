#!/usr/bin/env python3
"""raw_rsync.py - bench baseline for "rsync's own work": runs the very same
rsync command lines the module runs (same options, same parallelism, one
shared ssh ControlMaster per 8 sessions) from a plain thread pool, with no
module around them.  Run inside nfs-primary's network namespace by
bench/nfs_rsync_sync/run.  usage: raw_rsync.py JOBS.json  -> prints seconds."""
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
t0 = time.monotonic()
cps = []
for i in range(nm):
    cp = f"{tmp}/cm{i}"
    subprocess.run(base + ["-o", "ControlPath=" + cp, "-o", "ControlMaster=yes", "-o", "ControlPersist=120",
                           "-N", "-f", "--", "root@" + cfg["host"]], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cps.append(cp)


def one(i_item):
    i, item = i_item
    e = " ".join(base + ["-o", "ControlPath=" + cps[i % nm], "-o", "ControlMaster=no"])
    p = subprocess.run(["rsync", "-a", "--numeric-ids", "--delete", "--partial", "--timeout=300", "--stats",
                        "--out-format=@%i", "-e", e, "--", item["src"] + "/",
                        f"root@{cfg['host']}:{item['dest']}/"], capture_output=True)
    return p.returncode


with ThreadPoolExecutor(par) as ex:
    rcs = list(ex.map(one, enumerate(cfg["items"])))
for cp in cps:
    subprocess.run(base + ["-o", "ControlPath=" + cp, "-O", "exit", "--", "root@" + cfg["host"]],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.rmdir(tmp) if not os.listdir(tmp) else None
if any(rcs):
    sys.exit(f"raw rsync failed: {rcs}")
print(f"{time.monotonic() - t0:.3f}")
