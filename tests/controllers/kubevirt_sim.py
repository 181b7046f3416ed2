#!/usr/bin/env python3
"""kubevirt_sim.py - TEST CONTROLLER playing KubeVirt's virt-controller in the lab.

KubeVirt cannot run in the lab: there are no nodes, no kubelet, no
virt-handler, no QEMU.  This small controller plays virt-controller's part
against the lab's REAL kube-apiserver, where the real kubevirt.io CRDs are
installed, and reports VirtualMachine status the way virt-controller does
(pkg/virt-controller/watch/vm.go, printableStatus values of
pkg/apis/core/v1 VirtualMachinePrintableStatus):

  VirtualMachine that should run (spec.runStrategy Always / RerunOnFailure /
  Once, or spec.running: true; Manual keeps what it has):
      a VirtualMachineInstance of the same name is created, owned by the VM
      (ownerReference controller=true), phase Scheduling -> Running after
      --boot-seconds; VM status: created=true, printableStatus Starting ->
      Running, ready=true and condition Ready=True once the VMI runs.
  VirtualMachine that should not run (runStrategy Halted, or running: false):
      printableStatus Stopping while its VMI exists (deleted by this
      controller, as virt-controller does after the guest shut down), then
      Stopped, created=false, ready=false, condition Ready=False.

What is REAL: the API server, CRDs, objects, the status subresource writes
(VMs) and object updates (the VMI CRD has no status subresource).  What is
SIMULATED: the guest itself (nothing boots), launcher pods, timing.

usage: kubevirt_sim.py --kubeconfig K [--namespace NS ...] [--boot-seconds 1]
                       [--interval 0.5]
Stops on SIGTERM/SIGINT, and when the process that started it is gone.
"""
import argparse
import datetime
import os
import signal
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException

G, V = "kubevirt.io", "v1"
RUNNING = {"Always", "RerunOnFailure", "Once"}
_stop = False


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def wants_running(vm, has_vmi):
    spec = vm.get("spec") or {}
    rs = spec.get("runStrategy")
    if rs:
        if rs == "Manual":
            return has_vmi
        return rs in RUNNING
    return bool(spec.get("running"))


def cond(status, ok, reason):
    return [{"type": "Ready", "status": "True" if ok else "False", "reason": reason,
             "lastProbeTime": None, "lastTransitionTime": now()}]


class Sim:
    def __init__(self, api, namespaces, boot):
        self.co = client.CustomObjectsApi(api)
        self.namespaces = namespaces
        self.boot = boot
        self.boot_started = {}   # (ns, name) -> monotonic time the VMI was created

    def list(self, plural):
        if not self.namespaces:
            return self.co.list_cluster_custom_object(G, V, plural)["items"]
        out = []
        for ns in self.namespaces:
            out += self.co.list_namespaced_custom_object(G, V, ns, plural)["items"]
        return out

    def set_status(self, vm, status):
        old = vm.get("status") or {}
        keep = {k: v for k, v in old.items() if k not in status}
        new = dict(keep, **status)
        if ({k: v for k, v in old.items() if k != "conditions"} == {k: v for k, v in new.items() if k != "conditions"}
                and [c.get("status") for c in old.get("conditions", [])] == [c.get("status") for c in new.get("conditions", [])]):
            return
        md = vm["metadata"]
        self.co.patch_namespaced_custom_object_status(
            G, V, md["namespace"], "virtualmachines", md["name"], {"status": new})
        print(f"{now()} vm {md['namespace']}/{md['name']}: {new.get('printableStatus')}", flush=True)

    def step(self):
        vmis = {(i["metadata"]["namespace"], i["metadata"]["name"]): i for i in self.list("virtualmachineinstances")}
        for vm in self.list("virtualmachines"):
            md = vm["metadata"]
            key = (md["namespace"], md["name"])
            vmi = vmis.get(key)
            try:
                if md.get("deletionTimestamp"):
                    continue
                if wants_running(vm, vmi is not None):
                    self.run(vm, vmi, key)
                else:
                    self.halt(vm, vmi, key)
            except ApiException as e:
                if e.status not in (404, 409):
                    print(f"{now()} vm {key}: {e.status} {e.reason}", file=sys.stderr, flush=True)

    def run(self, vm, vmi, key):
        ns, name = key
        if vmi is None:
            body = {"apiVersion": f"{G}/{V}", "kind": "VirtualMachineInstance",
                    "metadata": {"name": name, "namespace": ns,
                                 "labels": {"kubevirt.io/vm": name},
                                 "ownerReferences": [{"apiVersion": f"{G}/{V}", "kind": "VirtualMachine",
                                                      "name": name, "uid": vm["metadata"]["uid"],
                                                      "controller": True, "blockOwnerDeletion": True}]},
                    "spec": ((vm.get("spec") or {}).get("template") or {}).get("spec") or {"domain": {"devices": {}}},
                    "status": {"phase": "Scheduling"}}
            self.co.create_namespaced_custom_object(G, V, ns, "virtualmachineinstances", body)
            self.boot_started[key] = time.monotonic()
            self.set_status(vm, {"created": True, "ready": False, "printableStatus": "Starting",
                                 "conditions": cond(vm, False, "GuestNotRunning")})
            return
        phase = (vmi.get("status") or {}).get("phase")
        if phase != "Running":
            t0 = self.boot_started.setdefault(key, time.monotonic())
            if time.monotonic() - t0 < self.boot:
                self.set_status(vm, {"created": True, "ready": False, "printableStatus": "Starting",
                                     "conditions": cond(vm, False, "GuestNotRunning")})
                return
            vmi["status"] = dict(vmi.get("status") or {}, phase="Running",
                                 conditions=[{"type": "Ready", "status": "True"}])
            self.co.replace_namespaced_custom_object(G, V, ns, "virtualmachineinstances", name, vmi)
        self.boot_started.pop(key, None)
        self.set_status(vm, {"created": True, "ready": True, "printableStatus": "Running",
                             "conditions": cond(vm, True, "")})

    def halt(self, vm, vmi, key):
        ns, name = key
        if vmi is not None:
            self.set_status(vm, {"created": True, "ready": False, "printableStatus": "Stopping",
                                 "conditions": cond(vm, False, "GuestNotRunning")})
            self.co.delete_namespaced_custom_object(G, V, ns, "virtualmachineinstances", name)
            return
        self.set_status(vm, {"created": False, "ready": False, "printableStatus": "Stopped",
                             "conditions": cond(vm, False, "VMINotExists")})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--namespace", action="append", default=[])
    ap.add_argument("--boot-seconds", type=float, default=1.0)
    ap.add_argument("--interval", type=float, default=0.5)
    a = ap.parse_args()

    def stop(*_):
        global _stop
        _stop = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    api = config.new_client_from_config(config_file=a.kubeconfig)
    sim = Sim(api, a.namespace, a.boot_seconds)
    parent = os.getppid()
    print(f"{now()} kubevirt_sim up ({a.kubeconfig})", flush=True)
    while not _stop:
        if os.getppid() != parent:   # whoever started us is gone (a killed pytest): do not linger
            print(f"{now()} parent process gone; stopping", flush=True)
            break
        try:
            sim.step()
        except Exception as e:  # noqa: BLE001 - API server down (disaster tests): keep trying
            print(f"{now()} step failed: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr, flush=True)
            time.sleep(1)
        time.sleep(a.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
