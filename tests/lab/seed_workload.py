#!/usr/bin/env python3
"""Seed the lab's primary cluster with a protected workload, the way a real
site looks after provisioning: NFS-backed PersistentVolumes (nfs-subdir,
nfs-csi and nfs-dynamic storage classes) with data files in the primary
export, PersistentVolumeClaims bound to them by the real
kube-controller-manager, and VolumeSnapshots with their contents.

What is not real here: there is no CSI snapshotter in the lab, so this script
plays its part for the VolumeSnapshot/VolumeSnapshotContent status (it writes
status.readyToUse / boundVolumeSnapshotContentName / snapshotHandle through the
status subresource, the fields external-snapshotter writes).  Volume data is
real files in the nfs-primary export root.

Usage: seed_workload.py [--namespace vm-prod] [--count 6] [--prefix demo]
                        [--files 5] [--classes a,b] [--wait [--wait-timeout S]]
Creates the namespace on the primary when it is missing.
Reads the lab from LAB_ENV (default tests/lab/.env).
"""
import argparse
import hashlib
import os
import pathlib
import sys
import time

from kubernetes import client, config

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))   # tests/: _lab.py
from _lab import WaitTimeout, read_lab_env, wait_until  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--namespace", default="vm-prod")
    ap.add_argument("--count", type=int, default=6)
    ap.add_argument("--prefix", default="demo")
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--snapshots", type=int, default=2)
    ap.add_argument("--classes", default="nfs-subdir,nfs-csi,nfs-dynamic",
                    help="storage classes, round robin (comma-separated); a class that is not one "
                         "of these three names gets an NFS PV, a CSI one when its name contains 'csi'")
    ap.add_argument("--wait", action="store_true", help="wait until every claim is Bound")
    ap.add_argument("--wait-timeout", type=float, default=None,
                    help="seconds --wait waits (default 60 + 0.5 per claim: the lab's "
                         "controller-manager binds a few claims a second)")
    a = ap.parse_args()
    env = read_lab_env()
    api = client.ApiClient(config.load_kube_config(config_file=env["PRIMARY_KUBECONFIG"]) or None)
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    export = pathlib.Path(env["NFS_PRIMARY_EXPORT"])
    server = env["NFS_PRIMARY_ADDR"]
    classes = [c for c in a.classes.split(",") if c]
    ns = a.namespace
    try:                                  # the namespace on the primary, if missing
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    except client.ApiException as e:
        if e.status != 409:
            raise
    for i in range(a.count):
        sc = classes[i % len(classes)]
        pvc_name = f"{a.prefix}-disk-{i}"
        pv_name = f"pv-{ns}-{pvc_name}"
        subdir = f"{ns}-{pvc_name}-{pv_name}"
        d = export / subdir
        d.mkdir(parents=True, exist_ok=True)
        for f in range(a.files):
            p = d / f"file-{f}.bin"
            if not p.exists():
                p.write_bytes(os.urandom(4096 * (f + 1)))
        spec = {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": sc,
            "claimRef": {"namespace": ns, "name": pvc_name},
        }
        if "csi" in sc:
            spec["csi"] = {
                "driver": "nfs.csi.k8s.io",
                "volumeHandle": f"{server}#{export}#{subdir}##",
                "volumeAttributes": {"server": server, "share": str(export), "subdir": subdir},
            }
        else:
            spec["nfs"] = {"server": server, "path": str(d)}
        pv = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": "lab-seed"}},
              "spec": spec}
        pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": pvc_name, "namespace": ns},
               "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": sc,
                        "volumeName": pv_name, "resources": {"requests": {"storage": "1Gi"}}}}
        for create in (lambda: core.create_persistent_volume(pv),
                       lambda: core.create_namespaced_persistent_volume_claim(ns, pvc)):
            try:
                create()
            except client.ApiException as e:
                if e.status != 409:
                    raise
    g, v = "snapshot.storage.k8s.io", "v1"
    for i in range(min(a.snapshots, a.count)):
        vs_name = f"{a.prefix}-disk-{i}-snap"
        vsc_name = f"snapcontent-{ns}-{vs_name}"
        handle = hashlib.sha1(vsc_name.encode()).hexdigest()
        vsc = {"apiVersion": f"{g}/{v}", "kind": "VolumeSnapshotContent",
               "metadata": {"name": vsc_name},
               "spec": {"deletionPolicy": "Delete", "driver": "nfs.csi.k8s.io",
                        "source": {"snapshotHandle": handle},
                        "volumeSnapshotRef": {"namespace": ns, "name": vs_name}}}
        vs = {"apiVersion": f"{g}/{v}", "kind": "VolumeSnapshot",
              "metadata": {"name": vs_name, "namespace": ns},
              "spec": {"source": {"volumeSnapshotContentName": vsc_name}}}
        for create in (lambda: custom.create_cluster_custom_object(g, v, "volumesnapshotcontents", vsc),
                       lambda: custom.create_namespaced_custom_object(g, v, ns, "volumesnapshots", vs)):
            try:
                create()
            except client.ApiException as e:
                if e.status != 409:
                    raise
        # the snapshotter's part: contents and snapshots become ready
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        custom.patch_cluster_custom_object_status(g, v, "volumesnapshotcontents", vsc_name, {
            "status": {"readyToUse": True, "snapshotHandle": handle, "restoreSize": 1073741824,
                       "creationTime": int(time.time() * 1e9)}})
        custom.patch_namespaced_custom_object_status(g, v, ns, "volumesnapshots", vs_name, {
            "status": {"readyToUse": True, "boundVolumeSnapshotContentName": vsc_name,
                       "creationTime": now, "restoreSize": "1Gi"}})
    if a.wait:
        limit = a.wait_timeout if a.wait_timeout is not None else 60 + 0.5 * a.count

        def bound():
            claims = core.list_namespaced_persistent_volume_claim(ns).items
            mine = [c for c in claims if c.metadata.name.startswith(a.prefix + "-")]
            return len(mine) >= a.count and all(c.status.phase == "Bound" for c in mine)
        try:
            wait_until(bound, timeout=limit, interval=0.5, what=f"{a.count} claims {a.prefix}-* in {ns} Bound")
        except WaitTimeout as e:
            sys.exit(f"{e} (is kube-controller-manager running?)")
    print(f"seeded {a.count} volumes and {min(a.snapshots, a.count)} snapshots in {ns}")


if __name__ == "__main__":
    main()
