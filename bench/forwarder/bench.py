#!/usr/bin/env python3
"""bench.py - forwarder benchmark (run through bench/forwarder/run): the C
ocpv-dr-forwarder against the Python seed forwarder (seed_forwarder.py), in
the same run, against the lab's real kube-apiserver, with N watched
VolumeSnapshots (default 10k and 50k; a CRD no lab controller touches, so
the API server is not busy with anything else).

Per implementation and N it prints:
  initial sync  - time from process start until the sink received the N
                  ADDED events, and events/s = N / that time;
  latency       - p50/p99 from just before an API write (a label patch, paced
                  at 20/s over distinct objects) to its receipt by the sink;
  RSS           - VmRSS after the sync and the latency phase, VmHWM (peak),
                  and USS (private pages, without shared library text);
  CPU           - user+sys seconds the forwarder spent on the sync, and the
                  sink's CPU share during it (the receiver must not be the
                  bottleneck: one core = 100%);
  API CPU       - user+sys seconds the primary kube-apiserver and its etcd
                  spent during the sync: the part of the work that is the
                  same for both implementations (it bounds the ratio);
  load          - /proc/loadavg (1 min) at the start and end of the run: the
                  machine is shared.
then all side by side with the ratios (each C variant vs Python).
--forwarder may be given several times as LABEL=PATH (e.g. the committed
binary next to a new one); a bare PATH is labelled "C"."""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from _lab import forwarder_bin, free_port, read_lab_env  # noqa: E402
HERE = Path(__file__).resolve().parent
G, V, P = "snapshot.storage.k8s.io", "v1", "volumesnapshots"


def cpu_s(pid):
    """user+sys CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load1():
    return float(Path("/proc/loadavg").read_text().split()[0])


def vs(name, ns, step="0"):
    return {"apiVersion": f"{G}/{V}", "kind": "VolumeSnapshot",
            "metadata": {"name": name, "namespace": ns, "labels": {"step": step, "bench": "fwd"}},
            "spec": {"volumeSnapshotClassName": "csi-snap",
                     "source": {"persistentVolumeClaimName": f"pvc-{name}"}}}


def ensure_objects(api, ns, n, have):
    existing = set()
    cont = None
    while True:   # a reused namespace (--namespace) may hold some already
        page = api.list_namespaced_custom_object(G, V, ns, P, limit=5000, _continue=cont)
        existing.update(i["metadata"]["name"] for i in page["items"])
        cont = page["metadata"].get("continue")
        if not cont:
            break
    todo = [f"vs-{i:06d}" for i in range(n) if f"vs-{i:06d}" not in existing]
    if not todo:
        return
    t0 = time.time()

    def create(name):
        for attempt in range(5):
            try:
                api.create_namespaced_custom_object(G, V, ns, P, vs(name, ns))
                return
            except client.ApiException as e:
                if e.status == 409:
                    return
                time.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"cannot create {name}")
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(create, todo))
    print(f"# created {len(todo)} VolumeSnapshots in {time.time() - t0:.1f}s", flush=True)


def rss(pid):
    """VmRSS, VmHWM (peak) and USS (private pages: what the process costs
    beyond shared library text), in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            k, v = line.split(":")
            out[k] = int(v.split()[0]) / 1024.0
    uss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            uss += int(line.split()[1])
    out["USS"] = uss / 1024.0
    return out


class Sink:
    def __init__(self, exe, workdir):
        self.out = Path(workdir) / f"sink-{uuid.uuid4().hex[:6]}.log"
        self.f = open(self.out, "w")
        self.proc = subprocess.Popen([exe, "0"], stdout=self.f, stderr=subprocess.PIPE, text=True)
        self.port = int(self.proc.stderr.readline())
        self.pos = 0
        self.lines = []

    def read(self):
        with open(self.out) as f:
            f.seek(self.pos)
            data = f.read()
        cut = data.rfind("\n") + 1
        self.pos += cut
        for line in data[:cut].splitlines():
            t, typ, name, step = line.split(" ")
            self.lines.append((float(t), typ, name, step))
        return self.lines

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        self.f.close()


def run_one(impl, exe, args, lab, api, ns, n, sink_exe, workdir):
    sink = Sink(sink_exe, workdir)
    env = dict(os.environ, KUBECONFIG=lab["PRIMARY_KUBECONFIG"],
               WEBHOOK_URL=f"http://127.0.0.1:{sink.port}/endpoint", WEBHOOK_TOKEN="bench-token",
               WATCH_NAMESPACES=ns)
    if impl != "Python":
        # the sink is plain http on loopback: the forwarder needs the explicit permission
        env.update(LISTEN_ADDRESS=f"127.0.0.1:{free_port()}", LOG_LEVEL="warn",
                   CLUSTER_NAME="bench", WEBHOOK_ALLOW_INSECURE_HTTP="true")
        cmd = [exe]
    else:
        cmd = [str(Path(lab["LAB_VENV"]) / "bin/python"), str(HERE / "seed_forwarder.py")]
    log = open(Path(workdir) / f"{impl}-{n}.log", "w")
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    res = {"impl": impl, "n": n, "load0": load1()}
    sink_cpu0 = cpu_s(sink.proc.pid)
    api_pids = [int((Path(lab["LAB_STATE_DIR"]) / "run" / f).read_text().split()[0])
                for f in ("apiserver-primary.pid", "etcd-primary.pid")]
    api_cpu0 = sum(cpu_s(p) for p in api_pids)
    try:
        deadline = t0 + args.timeout
        while True:
            lines = sink.read()
            added = sum(1 for l in lines if l[1] == "ADDED")
            if added >= n:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"{impl} forwarder exited: see {log.name}")
            if time.time() > deadline:
                raise RuntimeError(f"{impl}: only {added}/{n} events after {args.timeout}s")
            time.sleep(0.2)
        last = max(l[0] for l in lines if l[1] == "ADDED")
        res["cpu_s"] = cpu_s(proc.pid)
        res["api_cpu_s"] = sum(cpu_s(p) for p in api_pids) - api_cpu0
        res["sink_pct"] = 100 * (cpu_s(sink.proc.pid) - sink_cpu0) / max(time.time() - t0, 1e-3)
        res["sync_s"] = last - t0
        res["eps"] = n / res["sync_s"]
        time.sleep(1)
        r = rss(proc.pid)
        res["rss_sync"] = r["VmRSS"]
        # latency: paced label patches on distinct objects
        k = min(args.latency_writes, n)
        run_id = uuid.uuid4().hex[:6]
        sent = {}
        for i in range(k):
            name = f"vs-{i:06d}"
            step = f"{impl}-{n}-{i}-{run_id}"   # unique: a reused namespace keeps old labels
            sent[(name, step)] = time.time()
            api.patch_namespaced_custom_object(G, V, ns, P, name,
                                               {"metadata": {"labels": {"step": step}}})
            time.sleep(1.0 / args.rate)
        deadline = time.time() + 120
        got = {}
        while len(got) < k and time.time() < deadline:
            for t, typ, name, step in sink.read():
                if (name, step) in sent and (name, step) not in got:
                    got[(name, step)] = t - sent[(name, step)]
            time.sleep(0.1)
        lat = sorted(got.values())
        if len(lat) < k:
            raise RuntimeError(f"{impl}: {len(lat)}/{k} latency events received")
        res["p50_ms"] = 1000 * statistics.median(lat)
        res["p99_ms"] = 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        r = rss(proc.pid)
        res["rss"] = r["VmRSS"]
        res["hwm"] = r["VmHWM"]
        res["uss"] = r["USS"]
        res["load1"] = load1()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        sink.stop()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,50000")
    ap.add_argument("--forwarder", action="append",
                    help="C forwarder binary, or LABEL=PATH; repeatable (default: FORWARDER_BIN or the "
                         "first build dir's, tests/_lab.py)")
    ap.add_argument("--impls", default="",
                    help="comma list of labels to run (default: every --forwarder, then Python)")
    ap.add_argument("--sink", required=True)
    ap.add_argument("--latency-writes", type=int, default=200)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--keep", action="store_true", help="keep the bench namespace")
    ap.add_argument("--namespace", help="reuse this namespace (kept afterwards)")
    args = ap.parse_args()
    args.forwarder = args.forwarder or [forwarder_bin()]
    lab = read_lab_env()
    config.load_kube_config(lab["PRIMARY_KUBECONFIG"])
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = 32
    api = client.CustomObjectsApi(client.ApiClient(cfg))
    core = client.CoreV1Api(client.ApiClient(cfg))
    ns = args.namespace or f"fwdbench-{uuid.uuid4().hex[:6]}"
    if args.namespace:
        args.keep = True
        try:
            core.create_namespace({"metadata": {"name": ns}})
        except client.ApiException as e:
            if e.status != 409:
                raise
    else:
        core.create_namespace({"metadata": {"name": ns}})
    workdir = tempfile.mkdtemp(prefix="fwdbench-")
    exes = {}
    for f in args.forwarder:
        label, _, path = f.rpartition("=")
        exes[label or "C"] = path
    impls = [i for i in args.impls.split(",") if i] or [*exes, "Python"]
    results = []
    have = 0
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            ensure_objects(api, ns, n, have)
            have = n
            # the seed watches cluster-wide and filters by namespace itself:
            # any other VolumeSnapshot in the cluster is work for it alone
            page = api.list_cluster_custom_object(G, V, P, limit=1)
            total = len(page["items"]) + (page["metadata"].get("remainingItemCount") or 0)
            if total != n:
                print(f"# WARNING: the cluster holds {total} VolumeSnapshots, not {n}: "
                      f"the seed also receives the {total - n} others (delete other bench "
                      f"namespaces for a clean comparison)", flush=True)
            for impl in impls:
                r = run_one(impl, exes.get(impl), args, lab, api, ns, n, args.sink, workdir)
                print("# " + json.dumps({k: round(v, 2) if isinstance(v, float) else v
                                         for k, v in r.items()}), flush=True)
                results.append(r)
    finally:
        if not args.keep:
            core.delete_namespace(ns)
    print(f"\nforwarder benchmark: {platform()}; logs in {workdir}")
    hdr = (f"{'objects':>8} {'impl':>8} {'sync s':>8} {'events/s':>9} {'CPU s':>7} {'API CPU':>8} {'sink%':>6} "
           f"{'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>7} {'peak MB':>8} {'USS MB':>7} {'load':>11}")
    print(hdr)
    for r in results:
        print(f"{r['n']:>8} {r['impl']:>8} {r['sync_s']:>8.2f} {r['eps']:>9.0f} {r['cpu_s']:>7.2f} {r['api_cpu_s']:>8.2f} "
              f"{r['sink_pct']:>6.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['rss']:>7.1f} "
              f"{r['hwm']:>8.1f} {r['uss']:>7.1f} {r['load0']:>5.1f}-{r['load1']:<5.1f}")
    print("\nratios vs the Python seed: throughput x (aim >= 20), CPU per event 1/x, "
          "latency and memory as fractions (aim <= 0.1)")
    for n in sorted({r["n"] for r in results}):
        p = next((r for r in results if r["n"] == n and r["impl"] == "Python"), None)
        for c in (r for r in results if r["n"] == n and r["impl"] != "Python"):
            if not p:
                break
            print(f"{n:>8} {c['impl']:>8}: events/s x{c['eps'] / p['eps']:.1f}   "
                  f"CPU/event 1/{p['cpu_s'] / max(c['cpu_s'], 1e-3):.1f}   "
                  f"p50 {c['p50_ms'] / p['p50_ms']:.2f}   p99 {c['p99_ms'] / p['p99_ms']:.2f}   "
                  f"RSS {c['rss'] / p['rss']:.3f} (1/{p['rss'] / c['rss']:.1f})   "
                  f"peak {c['hwm'] / p['hwm']:.3f} (1/{p['hwm'] / c['hwm']:.1f})   "
                  f"USS {c['uss'] / p['uss']:.3f} (1/{p['uss'] / c['uss']:.1f})")


def platform():
    cpus = os.cpu_count()
    return f"{cpus} CPUs, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"


if __name__ == "__main__":
    main()
