"""dr_event_scope (issue 9): what one event job replicates.

`dr_event_scope: object` replicates only the events' own claims; an event
window that carries only a PersistentVolume (the PVC's event fell into another
window, or the PV changed alone) finds its claim through spec.claimRef.  The
default `namespace` scope replicates every bound claim of the events'
namespaces that DR lacks - run last on the same event, it proves the first run
left the other claims out by choice, not because it could not see them.

Real parts: ansible-playbook running playbooks/event_driven/handle_pv_pvc_sync.yml
(as the rulebook does, with the event's object in resource_objects), the C
modules (k8s_dr_clean list/apply against both kube-apiservers, nfs_rsync_sync
over rsync+ssh between the lab's storage hosts), the controller-managers
binding the claims."""
import pathlib

from conftest import REPO, seed_workload, tree_sums, wait_until

SYNC = REPO / "playbooks/event_driven/handle_pv_pvc_sync.yml"


def _tree(root, ns, claim):
    """sha256 of every file of the claim's volume directory (paths relative to
    it: the directory names differ between primary and DR); None if absent."""
    dirs = sorted(pathlib.Path(root).glob(f"{ns}-{claim}-*"))
    assert len(dirs) <= 1, dirs
    return tree_sums(root, dirs[0].name, relative_to=dirs[0]) if dirs else None


def _dr_claims(k8s_client, ns):
    from kubernetes import client
    core = client.CoreV1Api(k8s_client("dr"))
    pvcs = {c.metadata.name: c.status.phase for c in core.list_namespaced_persistent_volume_claim(ns).items}
    pvs = sorted(p.spec.claim_ref.name for p in core.list_persistent_volume().items
                 if p.spec.claim_ref and p.spec.claim_ref.namespace == ns)
    return pvcs, pvs


def test_object_scope_pv_only_window(lab, twin_ns, k8s_client, ansible_playbook):
    from kubernetes import client
    ns = twin_ns
    seed_workload(lab, ns, 3, "a", files=2)      # a-disk-0 nfs-subdir, a-disk-1 nfs-csi, a-disk-2 nfs-subdir
    api = k8s_client("primary")
    pv_name = client.CoreV1Api(api).read_namespaced_persistent_volume_claim("a-disk-1", ns).spec.volume_name
    pv = api.sanitize_for_serialization(client.CoreV1Api(api).read_persistent_volume(pv_name))
    assert pv["spec"]["claimRef"]["name"] == "a-disk-1"
    base = {"watched_namespaces": [ns], "dr_rsync_ssh_key": lab["LAB_SSH_KEY"],
            "dr_rsync_known_hosts": lab["LAB_KNOWN_HOSTS"],
            # the window carried only the PV
            "resource_objects": [pv], "event_type": "MODIFIED"}
    assert _dr_claims(k8s_client, ns) == ({}, [])

    # a misspelt scope is refused before anything runs, naming the variable
    # (meta/argument_specs.yml: choices), instead of syncing in some scope
    r = ansible_playbook(SYNC, extra_vars={**base, "dr_event_scope": "objects"})
    assert r.rc != 0 and "dr_event_scope" in r.stdout and "namespace, object" in r.stdout, \
        (r.stdout[-3000:], r.stderr[-2000:])
    assert _dr_claims(k8s_client, ns) == ({}, [])
    assert all(_tree(lab["NFS_DR_EXPORT"], ns, c) is None for c in ("a-disk-0", "a-disk-1", "a-disk-2"))

    r = ansible_playbook(SYNC, extra_vars={**base, "dr_event_scope": "object"})
    assert r.rc == 0, (r.stdout[-3000:], r.stderr[-2000:])
    # only the PV's claim and its volume, Bound on DR (the DR binder binds it)
    wait_until(lambda: _dr_claims(k8s_client, ns) == ({"a-disk-1": "Bound"}, ["a-disk-1"]),
               timeout=120, interval=1, what="only a-disk-1 Bound on DR",
               state=lambda: _dr_claims(k8s_client, ns))
    want = _tree(lab["NFS_PRIMARY_EXPORT"], ns, "a-disk-1")
    assert want and _tree(lab["NFS_DR_EXPORT"], ns, "a-disk-1") == want
    for other in ("a-disk-0", "a-disk-2"):
        assert _tree(lab["NFS_DR_EXPORT"], ns, other) is None, f"{other}'s data was replicated"

    # the same event in the default scope: the rest of the namespace follows
    r = ansible_playbook(SYNC, extra_vars=base)
    assert r.rc == 0, (r.stdout[-3000:], r.stderr[-2000:])
    names = ["a-disk-0", "a-disk-1", "a-disk-2"]
    wait_until(lambda: _dr_claims(k8s_client, ns) == ({n: "Bound" for n in names}, names),
               timeout=120, interval=1, what="all three claims Bound on DR",
               state=lambda: _dr_claims(k8s_client, ns))
    for n in names:
        assert _tree(lab["NFS_DR_EXPORT"], ns, n) == _tree(lab["NFS_PRIMARY_EXPORT"], ns, n), n
