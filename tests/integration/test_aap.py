"""The shipped AAP configuration (aap/) and jobs, run by a real AWX 24.6.1 (the
upstream of AAP's automation controller) in the lab.

Needs the lab instance's AWX: `LAB_AAP=1 tests/lab/up`, or `tests/lab/awx/up` for an
instance that is already up (see docs/lab.md, "AWX"). AWX_ENV names another
instance's AWX env file (tests/lab/.state-<name>/awx/env) to use with this lab. These tests are not part of
tests/run yet, and without AWX they FAIL (they do not skip): a missing AWX must never
look like a pass.

1. aap/configure.yml applies as shipped with infra.aap_configuration (from
   ../shared/upstream) and awx.awx (from the `ansible` PyPI package), and a second
   apply changes nothing but what AWX always reports changed (ALWAYS_CHANGED).
   Only the site values are passed: AWX URL and login, the git URL (a bare clone of
   this checkout's HEAD, which the job containers see), the clusters' URLs, tokens and
   CAs, and the execution environment image (the shipped one names an example
   registry). The EDA roles are left out: there is no EDA controller in the lab yet.
2. The periodic job template, launched through the API, runs in a job container
   with the credentials AWX injects and succeeds against the lab clusters; and a
   schedule set a minute ahead fires it (AWX's own scheduler, as the shipped hourly
   schedule would).
3. Mode one as the activation runs it: the real C forwarder posts (token + HMAC)
   to a real ansible-rulebook running the AAP rulebook rulebooks/ocp_dr_events.yml,
   whose run_job_template launches "EDA - Sync PV/PVC to DR" in AWX as a controller
   user of its own (EDA_CONTROLLER_* as the activation's AAP credential injects
   them); the claim arrives on DR with identical data.
4. Mode three as the workflow runs it: "ocpv-dr One-Click Failover" launched through
   the API with its survey answers (backup_name, namespaces, failover_type) fails a
   namespace of VMs over to DR (lab preparation of test_failover.py: KubeVirt
   stand-in, a real Velero Backup on the primary, Velero on DR); the job's report
   is in AWX's job events and the namespace's DR record says the failover completed
   (state in the cluster, not on the job's runner). A launch without a required
   answer is refused (400) and starts nothing.
"""

import json
import os
import secrets
import signal
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import yaml

from conftest import REPO, _free_port, seed_workload, tree_sums, wait_until
from _lab import forwarder_bin, read_env_file
from _webhook import wait_readyz, wait_webhook
import test_failover as failover_lab

# the failover's lab preparation (fixtures of test_failover.py, shared, not copied)
velero, kubevirt_sim, ns = failover_lab.velero, failover_lab.kubevirt_sim, failover_lab.ns

# the configuration under test: the shipped aap/ (AAP_DIR: a corrected copy, to try a fix;
# AAP_GIT_REPO: the checkout whose HEAD the AWX project clones, default this one)
AAP_DIR = Path(os.environ.get("AAP_DIR") or REPO / "aap")

# What a second apply of an unchanged configuration still changes, as AWX's activity
# stream records it (object type, name) -> changed fields, and as ansible reports it:
# - credentials with secret inputs: AWX returns secrets as $encrypted$, so awx.awx cannot
#   compare them and re-sends the inputs ("has encrypted data and may inaccurately report
#   task is changed"): an `update` of `inputs` each time;
# - inventory ocpv-dr: awx.awx sends host_filter "" for an inventory that has none (null),
#   AWX records null -> "" as an update (ansible reports it unchanged);
# - infra.aap_configuration's controller_inventory_source_update role launches an inventory
#   sync on every apply (an action, not configuration): reported changed.
ALWAYS_CHANGED_OBJECTS = {
    ("credential", "ocpv-dr Primary Cluster"): {"inputs"},
    ("credential", "ocpv-dr DR Cluster"): {"inputs"},
    ("credential", "ocpv-dr NFS hosts (ssh)"): {"inputs"},
    ("credential", "ocpv-dr OADP Backup Bucket"): {"inputs"},
    ("inventory", "ocpv-dr"): {"host_filter"},
}
ALWAYS_CHANGED_TASKS = {
    "infra.aap_configuration.controller_credentials : Managing Controller Credentials | Wait for finish the credential management",
    "infra.aap_configuration.controller_inventory_source_update : Controller inventory source update | Wait for finish of the inventory source update",
}


def rsync_key_path(lab):
    """The ssh key the lab's primary storage host uses to reach the DR one."""
    inv = yaml.safe_load(Path(lab["LAB_INVENTORY"]).read_text())["all"]["children"]
    return inv["primary_nfs_server"]["hosts"]["nfs-primary"]["dr_rsync_ssh_key"]


class AWX(dict):
    def __repr__(self):   # pytest prints fixtures on failure: never the password
        return f"AWX({self['url']})"


@pytest.fixture(scope="session")
def awx(lab):
    """The lab instance's AWX: dict with url, auth, collections, state dir."""
    envf = Path(os.environ.get("AWX_ENV") or Path(lab["LAB_STATE_DIR"]) / "awx" / "env")
    if not envf.is_file():
        pytest.fail(f"no AWX in lab instance {lab['LAB_NAME']} ({envf} missing): bring it up with "
                    f"`LAB_NAME={lab['LAB_NAME']} tests/lab/awx/up` (or LAB_AAP=1 tests/lab/up)",
                    pytrace=False)
    e = read_env_file(envf)
    auth = (e["AWX_USERNAME"], Path(e["AWX_PASSWORD_FILE"]).read_text().strip())
    try:
        r = requests.get(f"{e['AWX_URL']}/api/v2/ping/", timeout=10)
        r.raise_for_status()
    except requests.RequestException as ex:
        pytest.fail(f"AWX of lab instance {lab['LAB_NAME']} does not answer at {e['AWX_URL']}: {ex}; "
                    f"restart it with `LAB_NAME={lab['LAB_NAME']} tests/lab/awx/up`", pytrace=False)
    return AWX({"url": e["AWX_URL"], "auth": auth, "collections": e["AWX_COLLECTIONS"],
            "state": Path(e["AWX_STATE_DIR"]), "image": e["AWX_EE_IMAGE"],
            "git_dir": Path(e["AWX_GIT_DIR"])})


def api(awx, method, path, **kw):
    r = requests.request(method, f"{awx['url']}/api/v2/{path.lstrip('/')}", auth=awx["auth"], timeout=60, **kw)
    if r.status_code >= 400:
        raise AssertionError(f"AWX {method} {path}: HTTP {r.status_code}: {r.text[:2000]}")
    return r.json() if r.content else None


def by_name(awx, kind, name):
    res = api(awx, "GET", f"{kind}/", params={"name": name})["results"]
    assert len(res) == 1, f"AWX has {len(res)} {kind} named {name!r}"
    return res[0]


def sa_token(lab, cluster, ns, name, cluster_admin):
    """A ServiceAccount in namespace ns of cluster and a 1-hour token for it.
    Primary: read access to claims and snapshots in ns plus read access to the cluster-scoped objects the jobs
    follow (PVs, snapshot contents, storage classes), so a job that targets any other
    namespace (the shipped hourly schedule targets vm-prod, which other tests of the
    shared lab use) fails at its first read, before it writes anything on DR.
    DR: cluster-admin (the jobs create cluster-scoped PVs there)."""
    kc = lab[f"{cluster.upper()}_KUBECONFIG"]
    kubectl = [os.path.join(lab["LAB_BIN"], "kubectl"), "--kubeconfig", kc]

    def run(*args):
        subprocess.run(kubectl + list(args), check=True, capture_output=True)
    run("-n", ns, "create", "serviceaccount", name)
    if cluster_admin:
        run("create", "clusterrolebinding", f"{ns}-{name}", "--clusterrole=cluster-admin",
            f"--serviceaccount={ns}:{name}")
    else:
        run("-n", ns, "create", "role", name, "--verb=get,list,watch",
            "--resource=persistentvolumeclaims,volumesnapshots.snapshot.storage.k8s.io")
        run("-n", ns, "create", "rolebinding", name, f"--role={name}", f"--serviceaccount={ns}:{name}")
        run("create", "clusterrole", f"{ns}-{name}", "--verb=get,list,watch",
            "--resource=persistentvolumes,storageclasses,volumesnapshotcontents.snapshot.storage.k8s.io")
        run("create", "clusterrolebinding", f"{ns}-{name}", f"--clusterrole={ns}-{name}",
            f"--serviceaccount={ns}:{name}")
    return subprocess.run(kubectl + ["-n", ns, "create", "token", name, "--duration=1h"], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def site(lab, awx, tmp_path_factory):
    """The site values configure.yml needs (what a user puts in the vault file and -e)."""
    tmp = tmp_path_factory.mktemp("aap")
    # the git repository AWX clones: this checkout's HEAD as branch main, in the
    # directory the lab shows to job containers
    bare = awx["git_dir"] / f"ocpv-dr-{uuid.uuid4().hex[:8]}.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    # (AAP_GIT_REPO: another checkout's HEAD instead, to try a fix in a scratch commit)
    src = os.environ.get("AAP_GIT_REPO") or str(REPO)
    subprocess.run(["git", "-C", src, "push", "-q", str(bare), "HEAD:refs/heads/main"], check=True)
    ns = f"awx-{uuid.uuid4().hex[:8]}"
    kubectl = {c: [os.path.join(lab["LAB_BIN"], "kubectl"), "--kubeconfig", lab[f"{c.upper()}_KUBECONFIG"]]
               for c in ("primary", "dr")}
    for c in ("primary", "dr"):
        subprocess.run(kubectl[c] + ["create", "namespace", ns], check=True, capture_output=True)
    values = {
        "aap_hostname": awx["url"], "aap_username": awx["auth"][0], "aap_password": awx["auth"][1],
        "aap_validate_certs": False,
        "ocpv_dr_git_url": f"file://{bare}", "ocpv_dr_git_branch": "main",
        "ocpv_dr_primary_api_url": lab["PRIMARY_API_URL"], "ocpv_dr_dr_api_url": lab["DR_API_URL"],
        "vault_primary_api_token": sa_token(lab, "primary", ns, "ocpv-dr-awx", False),
        "vault_primary_ca_cert": Path(lab["PRIMARY_CA_FILE"]).read_text(),
        "vault_dr_api_token": sa_token(lab, "dr", ns, "ocpv-dr-awx", True),
        "vault_dr_ca_cert": Path(lab["DR_CA_FILE"]).read_text(),
        "vault_nfs_ssh_private_key": Path(lab["LAB_SSH_KEY"]).read_text(),
        "vault_webhook_token": secrets.token_hex(16), "vault_webhook_hmac_secret": secrets.token_hex(16),
        "vault_eda_controller_password": secrets.token_hex(16),
        # the failover's backup bucket: the lab's MinIO (its BSL's bucket and prefix)
        "ocpv_dr_oadp_s3_endpoint": lab["S3_ENDPOINT"], "ocpv_dr_oadp_s3_bucket": lab["S3_BUCKET"],
        "ocpv_dr_oadp_s3_prefix": lab["S3_PREFIX"], "ocpv_dr_oadp_s3_region": lab["S3_REGION"],
        "vault_oadp_cloud_credentials": Path(lab["S3_CREDENTIALS_FILE"]).read_text(),
        "vault_oadp_s3_ca_cert": Path(lab["S3_CA_FILE"]).read_text() if lab.get("S3_CA_FILE") else "",
        # the site's execution environment image: the lab's, built from execution-environment.yml
        "ocpv_dr_ee_image": awx["image"],
        # where the primary storage host keeps its key to the DR storage host
        "ocpv_dr_rsync_ssh_key_path": rsync_key_path(lab),
        # controller only: the lab has no EDA controller (yet)
        "aap_configuration_dispatcher_roles": "{{ controller_configuration_dispatcher_roles }}",
    }
    vf = tmp / "site.json"
    vf.write_text(json.dumps(values))
    vf.chmod(0o600)
    yield {"vars_file": vf, "ns": ns, "bare": bare}
    for c in ("primary", "dr"):
        # the volumes of the test's claims (cluster-scoped: the namespace does not take them)
        pvs = subprocess.run(kubectl[c] + ["get", "pv", "-o", "json"], capture_output=True, text=True)
        if pvs.returncode == 0:
            for pv in json.loads(pvs.stdout)["items"]:
                if (pv["spec"].get("claimRef") or {}).get("namespace") == ns:
                    subprocess.run(kubectl[c] + ["delete", "pv", pv["metadata"]["name"], "--wait=false"],
                                   capture_output=True)
        for kind in ("clusterrolebinding", "clusterrole"):
            subprocess.run(kubectl[c] + ["delete", kind, f"{ns}-ocpv-dr-awx", "--ignore-not-found"],
                           capture_output=True)
        subprocess.run(kubectl[c] + ["delete", "namespace", ns, "--wait=false"], capture_output=True)
    subprocess.run(["rm", "-rf", str(bare)])
    # the volumes' data (directories named <namespace>-<claim>-<pv> in the export roots)
    for root in (lab.get("NFS_PRIMARY_EXPORT"), lab.get("NFS_DR_EXPORT")):
        if root and os.path.isdir(root):
            for d in Path(root).glob(f"{ns}-*"):
                subprocess.run(["rm", "-rf", str(d)])


def configure(lab, awx, site):
    env = dict(os.environ)
    # from the repository root with its ansible.cfg, as aap/README.md says; the
    # collections that `ansible-galaxy collection install` would have put there come
    # from the lab's cache
    env.update(ANSIBLE_COLLECTIONS_PATH=f"{awx['collections']}:{REPO / 'collections'}",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    # ansible-core 2.16 (LAB_VENV_216, the AAP 2.5 baseline): infra.aap_configuration 3.0.0
    # passes `omit` through regex_replace, which ansible-core >= 2.19 turns into a string
    # ("argument 'variables' is of type str" from awx.awx.inventory)
    cmd = [os.path.join(lab["LAB_VENV_216"], "bin", "ansible-playbook"), str(AAP_DIR / "configure.yml"),
           "-e", f"@{site['vars_file']}"]
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    start = p.stdout.find("{")
    out = json.loads(p.stdout[start:]) if start >= 0 else None
    return p, out


def changed_items(out):
    """(task name, item label) of every changed result in an ansible.posix.json output."""
    changed = []
    for play in out["plays"]:
        for task in play["tasks"]:
            res = task["hosts"].get("localhost", {})
            items = res.get("results") or [res]
            for it in items:
                if isinstance(it, dict) and it.get("changed"):
                    label = it.get("_ansible_item_label") or it.get("item") or ""
                    changed.append((task["task"]["name"], json.dumps(label)[:200]))
    return changed


def failures(out):
    """(task name, [what each failed item says]) of every failed task."""
    def says(r):
        r = {k: v for k, v in r.items() if k not in ("invocation", "_ansible_no_log")}
        return json.dumps(r, default=str)[:1500]
    bad = []
    for play in out["plays"]:
        for task in play["tasks"]:
            res = task["hosts"].get("localhost", {})
            if res.get("failed") or res.get("unreachable"):
                items = [i for i in (res.get("results") or []) if isinstance(i, dict) and i.get("failed")]
                bad.append((task["task"]["name"], [says(i) for i in items] or [says(res)]))
    return bad


@pytest.fixture(scope="module")
def configured(lab, awx, site):
    p, out = configure(lab, awx, site)
    assert out is not None, f"configure.yml gave no JSON output (rc {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    assert p.returncode == 0, f"configure.yml failed against AWX: {failures(out)}\n{p.stderr[-2000:]}"
    return out


def activity_since(awx, last_id):
    """(operation, object type, name, changed fields) AWX recorded after entry last_id,
    without the module's own session tokens."""
    out = []
    page = f"activity_stream/?id__gt={last_id}&order_by=id&page_size=200"
    for a in api(awx, "GET", page)["results"]:
        if a["object1"] == "o_auth2_access_token":
            continue
        objs = a.get("summary_fields", {}).get(a["object1"]) or [{}]
        if a["operation"] == "create" and a["object1"] == "job" and objs[0].get("id") and \
                api(awx, "GET", f"jobs/{objs[0]['id']}/")["launch_type"] == "scheduled":
            continue    # a schedule firing meanwhile (the shipped hourly one at minute 0)
        out.append((a["operation"], a["object1"], objs[0].get("name"), set((a.get("changes") or {}).keys())))
    return out


def test_configure_applies_and_is_idempotent(lab, awx, site, configured):
    # what the first apply made, as AWX sees it
    jt = by_name(awx, "job_templates", "ocpv-dr - Periodic Sync")
    assert jt["playbook"] == "playbooks/scheduled/execute_periodic_sync.yml"
    sched = by_name(awx, "schedules", "ocpv-dr hourly periodic sync")
    assert sched["unified_job_template"] == jt["id"]
    assert "FREQ=HOURLY" in sched["rrule"] and "BYMINUTE=0" in sched["rrule"], sched["rrule"]
    # the site values reach AWX (aap/ named an example registry's image and a fixed
    # key path literally, whatever the site passed)
    ee = by_name(awx, "execution_environments", "ocpv-dr EE")
    assert ee["image"] == awx["image"], f"EE 'ocpv-dr EE' has image {ee['image']!r}, the site passed {awx['image']!r}"
    assert jt["execution_environment"] == ee["id"]
    rsync = by_name(awx, "credentials", "ocpv-dr NFS rsync key")
    assert rsync["inputs"]["ssh_key_path"] == rsync_key_path(lab), rsync["inputs"]
    last = api(awx, "GET", "activity_stream/?order_by=-id&page_size=1")["results"][0]["id"]

    p, out = configure(lab, awx, site)
    assert p.returncode == 0, f"second apply failed: {failures(out) if out else p.stdout[-3000:]}"
    tasks = sorted({t for t, _ in changed_items(out)} - ALWAYS_CHANGED_TASKS)
    assert not tasks, f"a second apply of aap/configure.yml reported changes in: {tasks}"
    unexpected = [(op, kind, name, sorted(fields)) for op, kind, name, fields in activity_since(awx, last)
                  if not (op == "update" and fields <= ALWAYS_CHANGED_OBJECTS.get((kind, name), set()))]
    assert not unexpected, f"a second apply of aap/configure.yml changed in AWX: {unexpected}"


def wait_job(awx, job_id, timeout=900):
    """The job once finished AND its events stored (the callback receiver lags:
    stdout read at the status change missed the play's last tasks)."""
    return wait_until(lambda: (lambda j: j if j["status"] in ("successful", "failed", "error", "canceled")
                               and j.get("event_processing_finished") else None)(api(awx, "GET", f"jobs/{job_id}/")),
                      timeout, 2, f"AWX job {job_id} to finish")


def point_hosts_at_lab(lab, awx):
    """The inventory source imports the repository's inventory/hosts.ini (example
    addresses): point its two hosts at the lab's storage hosts, as a site edits its
    hosts.ini (the ssh key comes from the Machine credential, not from here), and give
    localhost the lab inventory's opt-in to its plain-http MinIO."""
    inv = yaml.safe_load(Path(lab["LAB_INVENTORY"]).read_text())["all"]["children"]
    inventory = by_name(awx, "inventories", "ocpv-dr")
    for group in ("primary_nfs_server", "dr_nfs_server"):
        for host, hv in inv[group]["hosts"].items():
            res = api(awx, "GET", "hosts/", params={"name": host, "inventory": inventory["id"]})["results"]
            assert res, f"inventory ocpv-dr has no host {host} (inventory source not synced?)"
            keep = {k: v for k, v in hv.items() if k in ("ansible_host", "export_root",
                                                         "dr_rsync_known_hosts")}
            keep["ansible_python_interpreter"] = "/usr/bin/python3"
            api(awx, "PATCH", f"hosts/{res[0]['id']}/", json={"variables": json.dumps(keep)})
    # the lab's plain-http MinIO: the lab inventory opts in (all.vars, tests/lab/components.sh);
    # hosts.ini's group_vars/all.yml says false, so the same opt-in on the job's localhost
    all_vars = yaml.safe_load(Path(lab["LAB_INVENTORY"]).read_text())["all"].get("vars") or {}
    if all_vars.get("oadp_s3_allow_insecure_http"):
        host = api(awx, "GET", "hosts/", params={"name": "localhost", "inventory": inventory["id"]})["results"]
        assert host, "inventory ocpv-dr has no host localhost (inventory source not synced?)"
        hv = yaml.safe_load(host[0]["variables"] or "{}") or {}
        if hv.get("oadp_s3_allow_insecure_http") is not True:
            hv["oadp_s3_allow_insecure_http"] = True
            api(awx, "PATCH", f"hosts/{host[0]['id']}/", json={"variables": json.dumps(hv)})


def test_periodic_job_template_runs(lab, awx, site, configured, k8s_client):
    """Mode two as AAP runs it: two claims with data in a namespace of the test's own on
    the primary; the periodic template's job (its own container, credentials from AWX)
    syncs them to DR, and its report is in the job output."""
    from kubernetes import client
    ns = site["ns"]
    seed_workload(lab, ns, 2, prefix="awx", files=3)
    point_hosts_at_lab(lab, awx)
    jt = by_name(awx, "job_templates", "ocpv-dr - Periodic Sync")
    r = api(awx, "POST", f"job_templates/{jt['id']}/launch/", json={"extra_vars": {"target_namespaces": [ns]}})
    job = wait_job(awx, r["job"])
    stdout = requests.get(f"{awx['url']}/api/v2/jobs/{job['id']}/stdout/?format=txt", auth=awx["auth"], timeout=60).text
    assert job["status"] == "successful", f"job {job['id']} {job['status']}: {job.get('job_explanation')}\n{stdout[-6000:]}"
    assert job["execution_environment"], "the job ran without an execution environment"
    primary = {c.metadata.name for c in client.CoreV1Api(k8s_client("primary")).list_namespaced_persistent_volume_claim(ns).items}
    dr = {c.metadata.name for c in client.CoreV1Api(k8s_client("dr")).list_namespaced_persistent_volume_claim(ns).items}
    assert len(primary) == 2 and dr == primary, f"claims on primary {sorted(primary)}, on DR {sorted(dr)}"
    assert "Write the report" in stdout and "failed=0" in stdout, stdout[-4000:]


def test_schedule_fires_periodic_job(lab, awx, site, configured):
    """A schedule of the periodic template set a minute ahead (with the test's
    namespace as its extra data, which the template accepts on launch): AWX's
    scheduler, not the test, starts the job, and the job succeeds."""
    point_hosts_at_lab(lab, awx)
    jt = by_name(awx, "job_templates", "ocpv-dr - Periodic Sync")
    start = (datetime.now(timezone.utc) + timedelta(seconds=60)).strftime("%Y%m%dT%H%M%SZ")
    name = f"ocpv-dr test schedule {site['ns']}"
    sched = api(awx, "POST", f"job_templates/{jt['id']}/schedules/", json={
        "name": name, "rrule": f"DTSTART:{start} RRULE:FREQ=MINUTELY;INTERVAL=1;COUNT=1",
        "extra_data": {"target_namespaces": [site["ns"]]}})
    try:
        job_ref = wait_until(lambda: (api(awx, "GET", "jobs/", params={"schedule": sched["id"]})["results"] or [None])[0],
                             300, 5, f"AWX's scheduler to start schedule {name!r} (due {start})")
        assert job_ref["launch_type"] == "scheduled", job_ref["launch_type"]
        job = wait_job(awx, job_ref["id"])
        stdout = requests.get(f"{awx['url']}/api/v2/jobs/{job['id']}/stdout/?format=txt", auth=awx["auth"], timeout=60).text
        assert job["status"] == "successful", f"scheduled job {job['id']} {job['status']}: {job.get('job_explanation')}\n{stdout[-6000:]}"
        assert json.loads(job["extra_vars"]).get("target_namespaces") == [site["ns"]], job["extra_vars"]
        assert "Write the report" in stdout and "failed=0" in stdout, stdout[-4000:]
    finally:
        api(awx, "DELETE", f"schedules/{sched['id']}/")


def controller_user_for_eda(awx, ns):
    """The AWX user the activation's "ocpv-dr AAP controller" credential names: a
    member of organization Default with execute on the four event templates (what
    run_job_template needs; aap/ does not create it: a site does)."""
    password = secrets.token_hex(16)
    user = api(awx, "POST", "users/", json={"username": f"eda-{ns}", "password": password})
    org = by_name(awx, "organizations", "Default")
    api(awx, "POST", f"organizations/{org['id']}/users/", json={"id": user["id"]})
    for name in ("EDA - Sync PV/PVC to DR", "EDA - Delete PV/PVC from DR",
                 "EDA - Sync Snapshot to DR", "EDA - Delete Snapshot from DR"):
        jt = by_name(awx, "job_templates", name)
        role = jt["summary_fields"]["object_roles"]["execute_role"]["id"]
        api(awx, "POST", f"users/{user['id']}/roles/", json={"id": role})
    return user, password


def _stop(proc):
    if proc and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_rulebook_launches_event_job_template(lab, awx, site, configured, k8s_client, tmp_path):
    """Mode one as AAP runs it: forwarder -> ansible-rulebook (ocp_dr_events.yml,
    token + HMAC) -> run_job_template in AWX -> the job (its container, AWX's
    credentials) syncs a new claim to DR, data identical."""
    from kubernetes import client
    ns = site["ns"]
    point_hosts_at_lab(lab, awx)
    user, password = controller_user_for_eda(awx, ns)
    jt = by_name(awx, "job_templates", "EDA - Sync PV/PVC to DR")
    before = api(awx, "GET", "jobs/", params={"order_by": "-id", "page_size": 1})["results"]
    last_job = before[0]["id"] if before else 0
    token, hmac_secret = secrets.token_hex(16), secrets.token_hex(16)
    port, health = _free_port(), _free_port()
    # the activation's extra vars + the webhook credential's injected vars
    rb_vars = tmp_path / "vars.yml"
    rb_vars.write_text(yaml.safe_dump({"watched_namespaces": [ns], "webhook_port": port,
                                       "webhook_token": token, "webhook_hmac_secret": hmac_secret}))
    rb_vars.chmod(0o600)
    env = dict(os.environ, JAVA_HOME=lab.get("JAVA_HOME", ""), PYTHONUNBUFFERED="1",
               PATH=f"{lab['LAB_VENV']}/bin:{os.environ['PATH']}",
               EDA_CONTROLLER_URL=awx["url"], EDA_CONTROLLER_USERNAME=user["username"],
               EDA_CONTROLLER_PASSWORD=password, EDA_CONTROLLER_SSL_VERIFY="no")
    rb_log, fwd_log = tmp_path / "rulebook.log", tmp_path / "forwarder.log"
    # The shipped rulebook as is but for one name: the lab has no ansible.eda
    # collection (AAP's decision environment has it; no Galaxy here), and
    # ansible-rulebook 1.3.2 carries the same webhook source as eda.builtin.webhook
    # (same arguments: the CLI rulebooks use it). Rules and actions unchanged.
    shipped = (REPO / "rulebooks" / "ocp_dr_events.yml").read_text()
    assert shipped.count("- ansible.eda.webhook:") == 1, "the AAP rulebook's source changed: adapt this test"
    rulebook = tmp_path / "ocp_dr_events.yml"
    rulebook.write_text(shipped.replace("- ansible.eda.webhook:", "- eda.builtin.webhook:"))
    rb = fwd = None
    try:
        with open(rb_log, "a") as out:
            rb = subprocess.Popen([os.path.join(lab["LAB_VENV"], "bin", "ansible-rulebook"),
                                   "--rulebook", str(rulebook), "--vars", str(rb_vars),
                                   "--print-events"],
                                  cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_webhook(rb, port, rb_log)
        fenv = dict(os.environ, KUBECONFIG=lab["PRIMARY_KUBECONFIG"],
                    WEBHOOK_URL=f"http://127.0.0.1:{port}/endpoint",
                    WEBHOOK_ALLOW_INSECURE_HTTP="true",   # loopback; on OpenShift the Route is HTTPS
                    WEBHOOK_TOKEN=token, WEBHOOK_HMAC_SECRET=hmac_secret,
                    WATCH_NAMESPACES=ns, CLUSTER_NAME="primary", LISTEN_ADDRESS=f"127.0.0.1:{health}")
        with open(fwd_log, "a") as out:
            fwd = subprocess.Popen([forwarder_bin()], stdout=out, stderr=subprocess.STDOUT,
                                   env=fenv, start_new_session=True)
        wait_readyz(fwd, health, fwd_log, timeout=90)
        seed_workload(lab, ns, 1, prefix="eda", files=2)
        claim = next(c.metadata.name for c in client.CoreV1Api(k8s_client("primary"))
                     .list_namespaced_persistent_volume_claim(ns).items if c.metadata.name.startswith("eda"))

        def synced():
            jobs = api(awx, "GET", "jobs/", params={"job_template": jt["id"], "id__gt": last_job,
                                                    "order_by": "id"})["results"]
            done = [j for j in jobs if j["status"] in ("successful", "failed", "error", "canceled")]
            dr = {c.metadata.name for c in client.CoreV1Api(k8s_client("dr"))
                  .list_namespaced_persistent_volume_claim(ns).items}
            return (jobs, done) if claim in dr and done and len(done) == len(jobs) else None
        jobs, done = wait_until(synced, 600, 3, f"claim {claim} on DR through AWX jobs of {jt['name']!r}",
                                state=lambda: rb_log.read_text(errors="replace")[-3000:])
        bad = [j for j in done if j["status"] != "successful"]
        assert not bad, f"event jobs failed: {[(j['id'], j['status']) for j in bad]}"
        # launched by the rulebook as the activation's controller user, not by the test
        assert all(j["summary_fields"].get("created_by", {}).get("username") == user["username"] for j in jobs), \
            [(j["id"], j["launch_type"], j["summary_fields"].get("created_by")) for j in jobs]
        ev = json.loads(jobs[0]["extra_vars"])
        assert ev.get("event_scope_namespaces") == [ns] and ev.get("resource_object"), ev.keys()
        src = tree_sums(lab["NFS_PRIMARY_EXPORT"], f"{ns}-{claim}-*")
        dst = tree_sums(lab["NFS_DR_EXPORT"], f"{ns}-{claim}-*")
        assert src and src == dst, f"data of {claim}: primary {src}, DR {dst}"
    finally:
        _stop(fwd)
        _stop(rb)
        api(awx, "DELETE", f"users/{user['id']}/")
        logs = (rb_log.read_text(errors="replace") if rb_log.exists() else "") + \
            (fwd_log.read_text(errors="replace") if fwd_log.exists() else "")
        assert password not in logs and hmac_secret not in logs, "a secret reached a log"


def grant_failover_on_primary(lab, site, ns):
    """What the failover's primary account needs in the failed-over namespace beyond the
    site fixture's read access: stop the VMs (get/list/patch VirtualMachines, read their
    instances) and read what the final sync reads (claims, snapshots)."""
    kubectl = [os.path.join(lab["LAB_BIN"], "kubectl"), "--kubeconfig", lab["PRIMARY_KUBECONFIG"], "-n", ns]
    for args in (["create", "role", "ocpv-dr-failover", "--verb=get,list,watch,patch,update",
                  "--resource=virtualmachines.kubevirt.io,virtualmachineinstances.kubevirt.io,"
                  "persistentvolumeclaims,volumesnapshots.snapshot.storage.k8s.io"],
                 ["create", "rolebinding", "ocpv-dr-failover", "--role=ocpv-dr-failover",
                  f"--serviceaccount={site['ns']}:ocpv-dr-awx"]):
        subprocess.run(kubectl + args, check=True, capture_output=True)


def workflow_jobs_since(awx, wfjt_id, last_id):
    return api(awx, "GET", "workflow_jobs/", params={"workflow_job_template": wfjt_id, "id__gt": last_id})["results"]


def test_failover_workflow(lab, awx, site, configured, k8s_client, velero, kubevirt_sim, ns):
    """Mode three as AAP runs it: the workflow launched through the API with its survey
    answers only; its node's job (own container, AWX's credentials incl. the backup
    bucket) fails ns over to DR from a real Velero Backup."""
    failover_lab.make_workload(lab, k8s_client, ns, 2)
    kubevirt_sim("primary", [ns])
    kubevirt_sim("dr", [ns])
    wait_until(lambda: failover_lab.all_in(k8s_client, "primary", ns, "Running", 2), 60, 1, "VMs running on primary")
    backup = failover_lab.velero_backup(lab, k8s_client, ns)
    grant_failover_on_primary(lab, site, ns)
    point_hosts_at_lab(lab, awx)
    wf = by_name(awx, "workflow_job_templates", "ocpv-dr One-Click Failover")
    fo_jt = by_name(awx, "job_templates", "ocpv-dr - Failover")
    # the survey offers the site's protected namespaces (docs/aap.md: "edit the choices"):
    # ns among them, as a site's edited workflows.yml would send it
    shipped_survey = api(awx, "GET", f"workflow_job_templates/{wf['id']}/survey_spec/")
    survey = json.loads(json.dumps(shipped_survey))
    q = next(q for q in survey["spec"] if q["variable"] == "namespaces")
    choices = q["choices"].splitlines() if isinstance(q["choices"], str) else list(q["choices"])
    q["choices"] = choices + [ns]
    api(awx, "POST", f"workflow_job_templates/{wf['id']}/survey_spec/", json=survey)
    try:
        run_failover_workflow(lab, awx, k8s_client, ns, backup, wf, fo_jt)
    finally:
        api(awx, "POST", f"workflow_job_templates/{wf['id']}/survey_spec/", json=shipped_survey)


def run_failover_workflow(lab, awx, k8s_client, ns, backup, wf, fo_jt):
    from kubernetes import client
    last_wf = (api(awx, "GET", "workflow_jobs/", params={"order_by": "-id", "page_size": 1})["results"] or [{"id": 0}])[0]["id"]
    last_job = (api(awx, "GET", "jobs/", params={"order_by": "-id", "page_size": 1})["results"] or [{"id": 0}])[0]["id"]

    # a required answer missing: AWX refuses the launch and starts nothing
    r = requests.post(f"{awx['url']}/api/v2/workflow_job_templates/{wf['id']}/launch/", auth=awx["auth"], timeout=60,
                      json={"extra_vars": {"backup_name": backup, "namespaces": [ns]}})
    assert r.status_code == 400, f"launch without failover_type: HTTP {r.status_code}: {r.text[:1000]}"
    assert "'failover_type' value missing" in r.text, r.text[:1000]
    assert workflow_jobs_since(awx, wf["id"], last_wf) == [], "a refused launch started a workflow job"

    # the launch a user makes: survey answers only
    answers = {"backup_name": backup, "namespaces": [ns], "failover_type": "planned"}
    r = api(awx, "POST", f"workflow_job_templates/{wf['id']}/launch/", json={"extra_vars": answers})
    wj_id = r["workflow_job"]
    wj = wait_until(lambda: (lambda w: w if w["status"] in ("successful", "failed", "error", "canceled") else None)(
        api(awx, "GET", f"workflow_jobs/{wj_id}/")), 1200, 5, f"AWX workflow job {wj_id} to finish")
    nodes = api(awx, "GET", f"workflow_jobs/{wj_id}/workflow_nodes/")["results"]
    job_ids = [n["summary_fields"]["job"]["id"] for n in nodes if n.get("summary_fields", {}).get("job")]
    assert len(job_ids) == 1, f"workflow job {wj_id} ({wj['status']}) ran jobs {job_ids}: {nodes}"
    job = wait_job(awx, job_ids[0])
    stdout = requests.get(f"{awx['url']}/api/v2/jobs/{job['id']}/stdout/?format=txt", auth=awx["auth"], timeout=60).text
    assert job["status"] == "successful" and wj["status"] == "successful", \
        f"workflow job {wj_id} {wj['status']}, job {job['id']} {job['status']}: {job.get('job_explanation')}\n{stdout[-8000:]}"
    assert job["unified_job_template"] == fo_jt["id"] and job["execution_environment"], job
    assert {k: v for k, v in json.loads(job["extra_vars"]).items() if k in answers} == answers, job["extra_vars"]
    assert [j["id"] for j in api(awx, "GET", "jobs/", params={"id__gt": last_job, "unified_job_template": fo_jt["id"]})["results"]] \
        == [job["id"]], "the refused launch started a failover job"
    # the report, as AWX stored the job's output (its events)
    evs = api(awx, "GET", f"jobs/{job['id']}/job_events/", params={"task": "Build the report", "event": "runner_on_ok"})["results"]
    assert len(evs) == 1, f"{len(evs)} 'Build the report' events\n{stdout[-4000:]}"
    rep = evs[0]["event_data"]["res"]["ansible_facts"]["dr_report"]
    assert rep["ok"] is True and rep["kind"] == "failover" and rep["failover_type"] == "planned", rep
    assert rep["namespaces"] == [ns] and rep["backup"]["name"] == backup, rep
    assert int(rep["summary"]["vms_ready"]) == 2 and int(rep["summary"]["volumes_missing"]) == 0, rep["summary"]
    assert "failover OK" in stdout and "Write the report" in stdout, stdout[-4000:]
    # on DR: the VMs run, their claims are bound to the DR copies
    assert failover_lab.all_in(k8s_client, "dr", ns, "Running", 2), failover_lab.vm_states(k8s_client, "dr", ns)
    core_d = client.CoreV1Api(k8s_client("dr"))
    for i in range(2):
        pvc = wait_until(lambda: (lambda c: c if c.status.phase == "Bound" else None)(
            core_d.read_namespaced_persistent_volume_claim(f"w-disk-{i}", ns)), 60, 1, f"DR claim w-disk-{i} Bound")
        pv = core_d.read_persistent_volume(pvc.spec.volume_name)
        assert pv.spec.claim_ref.name == f"w-disk-{i}" and pv.spec.claim_ref.namespace == ns, pv.spec.claim_ref
        server = pv.spec.nfs.server if pv.spec.nfs else pv.spec.csi.volume_attributes["server"]
        assert server == lab["NFS_DR_ADDR"], pv.spec
    # the primary's VMs stopped
    assert failover_lab.all_in(k8s_client, "primary", ns, "Stopped", 2), failover_lab.vm_states(k8s_client, "primary", ns)
    # DR's record of the namespace: the state lives in the cluster, not in the job's container
    rec = core_d.read_namespaced_config_map(f"ns-{ns}", "ocpv-dr").data
    assert rec.get("action.kind") == "failover" and rec.get("action.phase") == "completed", rec
