#!/usr/bin/env python3
"""longhorn_sim.py - TEST CONTROLLER playing Longhorn's manager in the lab.

Longhorn's manager (and its engine, replicas, CSI driver) cannot run in the
lab: there is no kubelet, no iSCSI, no block devices.  This small controller
plays its part against the lab's REAL kube-apiserver, where the real Longhorn
v1beta2 CRDs are installed, and writes status the way longhorn-manager does
(field names and state transitions follow controller/volume_controller.go,
backup_controller.go, backup_volume_controller.go, backup_target_controller.go):

  BackupTarget  "default": status.available=true, lastSyncedAt.
  Snapshot      spec.volume -> status.readyToUse, creationTime, size, ...
  Backup        spec.snapshotName -> status.state "" -> InProgress -> Completed
                (or Error with status.error), url "<target>?backup=<b>&volume=<v>",
                volumeName, volumeSize, size, snapshotName, snapshotCreatedAt,
                backupCreatedAt, backupTargetName, labels; metadata labels
                longhorn.io/backup-volume, longhorn.io/backup-target.
  BackupVolume  created by backup-target sync for each volume in the backup
                store; named after the volume (--naming legacy, Longhorn < 1.8)
                or "bv-<random>" with spec.volumeName/backupTargetName and the
                longhorn.io/backup-volume / backup-target labels (--naming v18,
                Longhorn >= 1.8); status.lastBackupName, lastBackupAt, size,
                createdAt, labels, lastModificationTime, lastSyncedAt.  Backup CRs
                missing in the cluster are pulled from the store (state Completed,
                or Error when the backup config cannot be inspected); Backup CRs
                whose config is gone from the store are deleted.
  Volume        status.state "" -> creating -> detached; with spec.fromBackup:
                restoreRequired=restoreInitiated=true, isStandby=spec.Standby,
                auto-attach (attaching -> attached, robustness healthy, Restore
                condition True/RestoreInProgress), restore for size/rate seconds,
                then restoreRequired=false, detaching -> detached (robustness
                unknown, Restore condition False).  A backup whose data is missing
                ends faulted with Restore condition False/RestoreFailure.

What is REAL: the API server, CRDs, objects, status subresource writes, and
the DATA: every Volume has a real directory (--data/volumes/<volume uid>/,
keyed by UID so a rebuilt cluster's volume starts empty); a Snapshot copies
it, a Backup copies the snapshot into the backup store directory (--store,
outside the cluster like S3, laid out like Longhorn's backupstore with
volume.cfg / backups/backup_<name>.cfg), and a restore copies the backup's
data into the new Volume's directory.  What is SIMULATED: block devices,
replicas/engines (not created), the transport to S3 (a directory), timing.

usage: longhorn_sim.py --kubeconfig K --store DIR --data DIR [--naming v18|legacy]
       longhorn_sim.py volume-path --kubeconfig K --data DIR --volume NAME
"""
import argparse
import datetime
import json
import os
import random
import shutil
import signal
import string
import sys
import time
import urllib.parse

from kubernetes import client, config
from kubernetes.client.rest import ApiException

G, V = "longhorn.io", "v1beta2"
NODE = "lab-sim-node"
ENGINE_IMAGE = "longhornio/longhorn-engine:v1.12.1"


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(msg):
    print(f"[longhorn-sim {now()}] {msg}", flush=True)


def rand_id(n):
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def copytree(src, dst):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


def dir_size(d):
    total = 0
    for root, _, files in os.walk(d):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


class Sim:
    def __init__(self, a):
        self.a = a
        self.ns = a.namespace
        self.api = None
        self.restore_started = {}   # volume uid -> monotonic start of the restore
        self.backup_store = os.path.join(a.store, "backupstore", "volumes")
        os.makedirs(self.backup_store, exist_ok=True)
        os.makedirs(os.path.join(a.data, "volumes"), exist_ok=True)
        os.makedirs(os.path.join(a.data, "snapshots"), exist_ok=True)

    # ---- API helpers ---------------------------------------------------------
    def connect(self):
        cfg = client.Configuration()
        config.load_kube_config(config_file=self.a.kubeconfig, client_configuration=cfg)
        cfg.retries = 0
        self.api = client.CustomObjectsApi(client.ApiClient(cfg))

    def list(self, plural):
        return self.api.list_namespaced_custom_object(G, V, self.ns, plural)["items"]

    def status(self, plural, obj, st):
        body = {"status": st}
        self.api.patch_namespaced_custom_object_status(G, V, self.ns, plural, obj["metadata"]["name"], body)

    def labels(self, plural, obj, labels):
        self.api.patch_namespaced_custom_object(G, V, self.ns, plural, obj["metadata"]["name"],
                                                {"metadata": {"labels": labels}})

    def create(self, plural, body):
        try:
            return self.api.create_namespaced_custom_object(G, V, self.ns, plural, body)
        except ApiException as e:
            if e.status != 409:
                raise
            return None

    # ---- backup store --------------------------------------------------------
    def vol_dir(self, vol):
        return os.path.join(self.backup_store, vol)

    def read_json(self, path):
        with open(path) as f:
            return json.load(f)

    def write_json(self, path, obj):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)
        os.replace(tmp, path)

    def target_url(self):
        return self.a.target_url

    def backup_url(self, bname, vol):
        return f"{self.target_url()}?backup={bname}&volume={vol}"

    # ---- reconcilers ---------------------------------------------------------
    def reconcile_target(self):
        name = self.a.target_name
        bts = {b["metadata"]["name"]: b for b in self.list("backuptargets")}
        if name not in bts:
            self.create("backuptargets", {"apiVersion": f"{G}/{V}", "kind": "BackupTarget",
                                          "metadata": {"name": name},
                                          "spec": {"backupTargetURL": self.target_url(),
                                                   "credentialSecret": "", "pollInterval": "5m0s"}})
            bts = {b["metadata"]["name"]: b for b in self.list("backuptargets")}
        bt = bts.get(name)
        if bt and not (bt.get("status") or {}).get("available"):
            self.status("backuptargets", bt, {"available": True, "ownerID": NODE, "lastSyncedAt": now(),
                                              "conditions": [{"type": "Unavailable", "status": "False",
                                                              "reason": "", "message": "",
                                                              "lastProbeTime": "", "lastTransitionTime": now()}]})

    def volume_data(self, uid):
        return os.path.join(self.a.data, "volumes", uid)

    def reconcile_volumes(self, backups):
        for v in self.list("volumes"):
            try:
                self.reconcile_volume(v, backups)
            except ApiException as e:
                if e.status not in (404, 409):
                    raise

    def reconcile_volume(self, v, backups):
        st = v.get("status") or {}
        spec = v.get("spec") or {}
        uid = v["metadata"]["uid"]
        name = v["metadata"]["name"]
        state = st.get("state", "")
        fb = spec.get("fromBackup") or ""
        if state == "":
            self.status("volumes", v, {
                "state": "creating", "robustness": "unknown", "ownerID": NODE, "currentImage": ENGINE_IMAGE,
                "currentNodeID": "", "restoreRequired": False, "restoreInitiated": False,
                "isStandby": False, "frontendDisabled": False, "expansionRequired": False,
                "actualSize": 0, "lastBackup": "", "lastBackupAt": "", "shareState": "", "shareEndpoint": "",
                "cloneStatus": {"snapshot": "", "sourceVolume": "", "state": "", "attemptCount": 0,
                                "nextAllowedAttemptAt": ""},
                "kubernetesStatus": {"namespace": "", "pvName": "", "pvStatus": "", "pvcName": "",
                                     "lastPVCRefAt": "", "lastPodRefAt": "", "workloadsStatus": None},
                "conditions": [{"type": "Scheduled", "status": "True", "reason": "", "message": "",
                                "lastProbeTime": "", "lastTransitionTime": now()}]})
            return
        if state == "creating":
            if not fb:
                os.makedirs(self.volume_data(uid), exist_ok=True)
                self.status("volumes", v, {"state": "detached"})
                log(f"volume {name}: creating -> detached")
                return
            # checkAndInitVolumeRestore: the Backup CR named in the URL must exist
            q = urllib.parse.parse_qs(urllib.parse.urlparse(fb).query)
            bname = (q.get("backup") or [""])[0]
            b = backups.get(bname)
            if not b:
                return   # Longhorn logs "cannot inspect the backup config" and retries
            self.status("volumes", v, {
                "state": "detached", "restoreRequired": True, "restoreInitiated": True,
                "isStandby": bool(spec.get("Standby")),
                "actualSize": int((b.get("status") or {}).get("size") or 0)})
            log(f"volume {name}: restore from {bname} initiated")
            return
        if not st.get("restoreRequired"):
            return   # stable
        if st.get("robustness") == "faulted":
            if state == "detaching":
                self.status("volumes", v, {"state": "detached"})
            return   # a failed restore stays faulted
        # restoring volume: auto-attach, restore, auto-detach
        if state == "detached":
            self.status("volumes", v, {"state": "attaching", "currentNodeID": NODE, "frontendDisabled": True})
            return
        if state == "attaching":
            self.restore_started[uid] = time.monotonic()
            self.status("volumes", v, {"state": "attached", "robustness": "healthy", "conditions": [
                {"type": "Scheduled", "status": "True", "reason": "", "message": "",
                 "lastProbeTime": "", "lastTransitionTime": now()},
                {"type": "Restore", "status": "True", "reason": "RestoreInProgress", "message": "",
                 "lastProbeTime": "", "lastTransitionTime": now()}]})
            return
        if state == "attached":
            start = self.restore_started.setdefault(uid, time.monotonic())
            size = int(spec.get("size") or 0)
            need = size / (self.a.restore_rate_mib * 1024 * 1024)
            if time.monotonic() - start < need:
                return
            q = urllib.parse.parse_qs(urllib.parse.urlparse(fb).query)
            bname, bvol = (q.get("backup") or [""])[0], (q.get("volume") or [""])[0]
            src = os.path.join(self.vol_dir(bvol), "data", bname)
            if not os.path.isdir(src):
                self.status("volumes", v, {"state": "detaching", "robustness": "faulted", "currentNodeID": "",
                                           "conditions": [
                    {"type": "Scheduled", "status": "True", "reason": "", "message": "",
                     "lastProbeTime": "", "lastTransitionTime": now()},
                    {"type": "Restore", "status": "False", "reason": "RestoreFailure",
                     "message": "All replica restore failed and the volume became Faulted",
                     "lastProbeTime": "", "lastTransitionTime": now()}]})
                log(f"volume {name}: restore from {bname} FAILED (no data in the backup store)")
                return
            copytree(src, self.volume_data(uid))
            self.status("volumes", v, {"state": "detaching", "restoreRequired": False, "isStandby": False,
                                       "currentNodeID": "", "robustness": "unknown", "conditions": [
                {"type": "Scheduled", "status": "True", "reason": "", "message": "",
                 "lastProbeTime": "", "lastTransitionTime": now()},
                {"type": "Restore", "status": "False", "reason": "", "message": "",
                 "lastProbeTime": "", "lastTransitionTime": now()}]})
            log(f"volume {name}: restored from {bname}")
            return
        if state == "detaching":
            self.status("volumes", v, {"state": "detached"})

    def post_restore_detach(self):
        for v in self.list("volumes"):
            st = v.get("status") or {}
            if st.get("state") == "detaching" and not st.get("restoreRequired"):
                self.status("volumes", v, {"state": "detached"})
            elif st.get("state") == "detaching" and st.get("robustness") == "faulted":
                self.status("volumes", v, {"state": "detached"})

    def reconcile_snapshots(self, vols):
        for s in self.list("snapshots"):
            st = s.get("status") or {}
            if st.get("readyToUse") or st.get("error"):
                continue
            vname = (s.get("spec") or {}).get("volume", "")
            v = vols.get(vname)
            if not v:
                self.status("snapshots", s, {"readyToUse": False, "error": f"volume {vname} not found"})
                continue
            src = self.volume_data(v["metadata"]["uid"])
            dst = os.path.join(self.a.data, "snapshots", v["metadata"]["uid"], s["metadata"]["name"])
            os.makedirs(src, exist_ok=True)
            copytree(src, dst)
            self.status("snapshots", s, {
                "readyToUse": True, "creationTime": now(), "ownerID": NODE, "parent": "volume-head",
                "children": {}, "labels": (s.get("spec") or {}).get("labels") or {}, "markRemoved": False,
                "restoreSize": int((v.get("spec") or {}).get("size") or 0), "size": dir_size(dst),
                "userCreated": True, "checksum": "", "error": ""})
            log(f"snapshot {s['metadata']['name']} of {vname} ready")

    def reconcile_backups(self, vols, snaps):
        for b in self.list("backups"):
            st = b.get("status") or {}
            spec = b.get("spec") or {}
            if not spec.get("snapshotName") or st.get("state") in ("Completed", "Error"):
                continue
            name = b["metadata"]["name"]
            snap = snaps.get(spec["snapshotName"])
            vname = ((snap or {}).get("spec") or {}).get("volume", "")
            v = vols.get(vname)
            if not snap or not v or not (snap.get("status") or {}).get("readyToUse"):
                if st.get("state") != "Error":
                    self.status("backups", b, {"state": "Error", "error":
                                f"failed to get snapshot {spec['snapshotName']}: not found or not ready"})
                continue
            if st.get("state") != "InProgress":
                self.labels("backups", b, {"longhorn.io/backup-volume": vname,
                                           "longhorn.io/backup-target": self.a.target_name})
                self.status("backups", b, {"state": "InProgress", "progress": 0, "ownerID": NODE,
                                           "backupTargetName": self.a.target_name,
                                           "snapshotName": spec["snapshotName"], "volumeName": vname})
                continue
            # upload: copy the snapshot into the backup store and write the configs
            src = os.path.join(self.a.data, "snapshots", v["metadata"]["uid"], spec["snapshotName"])
            vdir = self.vol_dir(vname)
            os.makedirs(os.path.join(vdir, "backups"), exist_ok=True)
            copytree(src, os.path.join(vdir, "data", name))
            created = now()
            size = str(dir_size(src))
            labels = dict(spec.get("labels") or {})
            labels["longhorn.io/volume-access-mode"] = (v.get("spec") or {}).get("accessMode") or "rwo"
            vsize = str((v.get("spec") or {}).get("size") or "0")
            self.write_json(os.path.join(vdir, "backups", f"backup_{name}.cfg"), {
                "Name": name, "VolumeName": vname, "VolumeSize": vsize, "SnapshotName": spec["snapshotName"],
                "SnapshotCreatedAt": (snap.get("status") or {}).get("creationTime", created),
                "CreatedTime": created, "Size": size, "Labels": labels, "CompressionMethod": "lz4",
                "VolumeCreated": v["metadata"].get("creationTimestamp", created)})
            cfgp = os.path.join(vdir, "volume.cfg")
            vcfg = self.read_json(cfgp) if os.path.exists(cfgp) else {"Name": vname, "CreatedTime": created}
            vcfg.update({"Size": vsize, "Labels": labels, "LastBackupName": name, "LastBackupAt": created,
                         "DataStored": size})
            self.write_json(cfgp, vcfg)
            self.status("backups", b, self.backup_status(name, vname, self.read_json(
                os.path.join(vdir, "backups", f"backup_{name}.cfg"))))
            log(f"backup {name} of {vname} Completed")

    def backup_status(self, name, vname, cfg):
        return {"state": "Completed", "progress": 100, "error": "", "url": self.backup_url(name, vname),
                "volumeName": vname, "volumeSize": cfg.get("VolumeSize", "0"), "size": cfg.get("Size", "0"),
                "snapshotName": cfg.get("SnapshotName", ""), "snapshotCreatedAt": cfg.get("SnapshotCreatedAt", ""),
                "backupCreatedAt": cfg.get("CreatedTime", ""), "backupTargetName": self.a.target_name,
                "labels": cfg.get("Labels") or {}, "lastSyncedAt": now(), "compressionMethod":
                cfg.get("CompressionMethod", "lz4"), "newlyUploadDataSize": cfg.get("Size", "0"),
                "reUploadedDataSize": "0", "ownerID": NODE, "volumeCreated": cfg.get("VolumeCreated", ""),
                "messages": None}

    def sync_backup_target(self, backups):
        """backup_target_controller + backup_volume_controller: pull the store into the cluster."""
        bvs = self.list("backupvolumes")
        by_vol = {}
        for bv in bvs:
            vn = ((bv.get("spec") or {}).get("volumeName")
                  or ((bv["metadata"].get("labels") or {}).get("longhorn.io/backup-volume"))
                  or bv["metadata"]["name"])
            by_vol[vn] = bv
        for vname in sorted(os.listdir(self.backup_store)):
            cfgp = os.path.join(self.vol_dir(vname), "volume.cfg")
            if not os.path.exists(cfgp):
                continue
            bv = by_vol.get(vname)
            if bv is None:
                if self.a.naming == "legacy":
                    body = {"apiVersion": f"{G}/{V}", "kind": "BackupVolume", "metadata": {"name": vname},
                            "spec": {"syncRequestedAt": now()}}
                else:
                    body = {"apiVersion": f"{G}/{V}", "kind": "BackupVolume",
                            "metadata": {"name": "bv-" + rand_id(16), "labels": {
                                "longhorn.io/backup-target": self.a.target_name,
                                "longhorn.io/backup-volume": vname}},
                            "spec": {"backupTargetName": self.a.target_name, "volumeName": vname,
                                     "syncRequestedAt": now()}}
                bv = self.create("backupvolumes", body)
                if bv is None:
                    continue
                log(f"backup volume {bv['metadata']['name']} for {vname} pulled from the backup target")
            # pull Backup CRs that are in the store but not in the cluster; delete vanished ones
            bdir = os.path.join(self.vol_dir(vname), "backups")
            names = {f[len("backup_"):-len(".cfg")] for f in os.listdir(bdir)
                     if f.startswith("backup_") and f.endswith(".cfg")} if os.path.isdir(bdir) else set()
            for bname in sorted(names - set(backups)):
                self.pull_backup(vname, bname)
            for bname, b in backups.items():
                st = b.get("status") or {}
                if st.get("volumeName") == vname and bname not in names and \
                        (not (b.get("spec") or {}).get("snapshotName") or st.get("state") == "Completed"):
                    try:
                        self.api.delete_namespaced_custom_object(G, V, self.ns, "backups", bname)
                        log(f"backup {bname} is gone from the backup store: deleted its CR")
                    except ApiException as e:
                        if e.status != 404:
                            raise
            # BackupVolume status, only when volume.cfg changed (lastModificationTime)
            mtime = datetime.datetime.fromtimestamp(os.path.getmtime(cfgp), datetime.timezone.utc)
            mt = mtime.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if (bv.get("status") or {}).get("lastModificationTime") == mt:
                continue
            vcfg = self.read_json(cfgp)
            self.status("backupvolumes", bv, {
                "ownerID": NODE, "lastModificationTime": mt, "size": vcfg.get("Size", "0"),
                "labels": vcfg.get("Labels") or {}, "createdAt": vcfg.get("CreatedTime", ""),
                "lastBackupName": vcfg.get("LastBackupName", ""), "lastBackupAt": vcfg.get("LastBackupAt", ""),
                "dataStored": vcfg.get("DataStored", "0"), "messages": None, "backingImageName": "",
                "backingImageChecksum": "", "storageClassName": "longhorn", "lastSyncedAt": now()})

    def pull_backup(self, vname, bname):
        body = {"apiVersion": f"{G}/{V}", "kind": "Backup",
                "metadata": {"name": bname, "labels": {"backup-volume": vname,
                                                       "longhorn.io/backup-volume": vname,
                                                       "longhorn.io/backup-target": self.a.target_name}},
                "spec": {"labels": {}, "snapshotName": ""}}
        b = self.create("backups", body)
        if b is None:
            return
        try:
            cfg = self.read_json(os.path.join(self.vol_dir(vname), "backups", f"backup_{bname}.cfg"))
            self.status("backups", b, self.backup_status(bname, vname, cfg))
            log(f"backup {bname} of {vname} pulled from the backup target")
        except (OSError, ValueError) as e:
            self.status("backups", b, {"state": "Error", "volumeName": vname, "lastSyncedAt": now(),
                                       "backupTargetName": self.a.target_name,
                                       "error": f"failed to inspect the backup config: {e.__class__.__name__}",
                                       "messages": {"error": "cannot inspect backup config"}})
            log(f"backup {bname} of {vname} pulled with state Error (unreadable config)")

    def tick(self):
        self.reconcile_target()
        backups = {b["metadata"]["name"]: b for b in self.list("backups")}
        self.sync_backup_target(backups)
        backups = {b["metadata"]["name"]: b for b in self.list("backups")}
        vols = {v["metadata"]["name"]: v for v in self.list("volumes")}
        snaps = {s["metadata"]["name"]: s for s in self.list("snapshots")}
        self.reconcile_snapshots(vols)
        snaps = {s["metadata"]["name"]: s for s in self.list("snapshots")}
        self.reconcile_backups(vols, snaps)
        self.reconcile_volumes(backups)
        self.post_restore_detach()

    def run(self):
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        signal.signal(signal.SIGINT, lambda *_: stop.append(1))
        down_since = None
        parent = os.getppid()
        log(f"starting: namespace {self.ns}, naming {self.a.naming}, store {self.a.store}")
        while not stop:
            if os.getppid() != parent:   # whoever started us is gone (a killed pytest): do not linger
                log("parent process gone; stopping")
                break
            try:
                if self.api is None:
                    self.connect()
                self.tick()
                if down_since is not None:
                    log(f"API server reachable again after {time.monotonic() - down_since:.1f}s")
                    down_since = None
            except ApiException as e:
                if e.status in (404, 403, 409, 422):
                    # namespace/CRDs not there yet (rebuilding cluster) or a conflict: retry
                    if down_since is None:
                        log(f"API error {e.status} {e.reason}; retrying")
                        down_since = time.monotonic()
                else:
                    log(f"API error {e.status} {e.reason}; reconnecting")
                    self.api = None
                    down_since = down_since or time.monotonic()
            except Exception as e:   # connection refused while the cluster is destroyed
                if down_since is None:
                    log(f"API server unreachable ({e.__class__.__name__}); retrying")
                    down_since = time.monotonic()
                self.api = None
            time.sleep(self.a.interval)
        log("stopped")


def volume_path(a):
    """Prints the data directory of the CURRENT Volume named --volume (by UID)."""
    config.load_kube_config(config_file=a.kubeconfig)
    api = client.CustomObjectsApi()
    v = api.get_namespaced_custom_object(G, V, a.namespace, "volumes", a.volume)
    print(os.path.join(a.data, "volumes", v["metadata"]["uid"]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", nargs="?", default="run", choices=["run", "volume-path"])
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--namespace", default="longhorn-system")
    p.add_argument("--store", help="backup store directory (the 'S3 bucket')")
    p.add_argument("--data", required=True, help="volume/snapshot data directory")
    p.add_argument("--naming", choices=["v18", "legacy"], default="v18")
    p.add_argument("--target-name", default="default")
    p.add_argument("--target-url", default="s3://longhorn-backups@us-east-1/")
    p.add_argument("--restore-rate-mib", type=float, default=4096.0,
                   help="simulated restore speed: a volume of N MiB takes N/rate seconds")
    p.add_argument("--interval", type=float, default=0.3)
    p.add_argument("--volume")
    a = p.parse_args()
    if a.command == "volume-path":
        volume_path(a)
        return
    if not a.store:
        p.error("--store is required")
    Sim(a).run()


if __name__ == "__main__":
    sys.exit(main())
