#!/usr/bin/env python3
"""seed_forwarder.py - a faithful Python implementation of the seed's
k8s_event_forwarder.py (spec section 4.1), the baseline of bench/forwarder/run.

As the spec describes it: the `kubernetes` Python client's watch on the four
kinds (PV, PVC for all namespaces, VolumeSnapshot and VolumeSnapshotContent
through the custom-objects API), one thread each; namespaced kinds are
checked against WATCH_NAMESPACES (comma list, empty = all); every ADDED /
MODIFIED / DELETED event is wrapped into one JSON payload (type, kind,
namespace, name, resource) and POSTed with `requests` to WEBHOOK_URL with
`Authorization: Bearer WEBHOOK_TOKEN`.  In-cluster config, or a kubeconfig
(KUBECONFIG) outside a cluster.  No state, no retries beyond the loop: it is
the seed, not the product."""
import os
import threading

import requests
from kubernetes import client, config, watch

WEBHOOK_URL = os.environ["WEBHOOK_URL"]
WEBHOOK_TOKEN = os.environ.get("WEBHOOK_TOKEN", "")
WATCH_NAMESPACES = [n.strip() for n in os.environ.get("WATCH_NAMESPACES", "").split(",") if n.strip()]


def load_config():
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


def send(event_type, kind, namespace, name, resource):
    payload = {"type": event_type, "kind": kind, "namespace": namespace, "name": name,
               "resource": resource}
    headers = {"Content-Type": "application/json"}
    if WEBHOOK_TOKEN:
        headers["Authorization"] = f"Bearer {WEBHOOK_TOKEN}"
    try:
        requests.post(WEBHOOK_URL, json=payload, headers=headers, timeout=10)
    except requests.RequestException as e:
        print(f"failed to send {kind} {namespace}/{name}: {e}", flush=True)


def watch_loop(kind, list_func, namespaced, serialize, **kwargs):
    while True:
        w = watch.Watch()
        try:
            for ev in w.stream(list_func, **kwargs):
                obj = serialize(ev["object"])
                md = obj.get("metadata", {})
                ns = md.get("namespace")
                if namespaced and WATCH_NAMESPACES and ns not in WATCH_NAMESPACES:
                    continue
                send(ev["type"], kind, ns, md.get("name"), obj)
        except Exception as e:  # the seed restarts the watch on any error
            print(f"watch {kind} failed: {e}; restarting", flush=True)


def main():
    load_config()
    core = client.CoreV1Api()
    custom = client.CustomObjectsApi()
    api = client.ApiClient()
    typed = api.sanitize_for_serialization

    def plain(o):
        return o
    threads = [
        threading.Thread(target=watch_loop, daemon=True,
                         args=("PersistentVolume", core.list_persistent_volume, False, typed)),
        threading.Thread(target=watch_loop, daemon=True,
                         args=("PersistentVolumeClaim",
                               core.list_persistent_volume_claim_for_all_namespaces, True, typed)),
        threading.Thread(target=watch_loop, daemon=True,
                         args=("VolumeSnapshot", custom.list_cluster_custom_object, True, plain),
                         kwargs={"group": "snapshot.storage.k8s.io", "version": "v1",
                                 "plural": "volumesnapshots"}),
        threading.Thread(target=watch_loop, daemon=True,
                         args=("VolumeSnapshotContent", custom.list_cluster_custom_object, False,
                               plain),
                         kwargs={"group": "snapshot.storage.k8s.io", "version": "v1",
                                 "plural": "volumesnapshotcontents"}),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
