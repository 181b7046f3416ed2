"""test_shipped_defaults.py - the shipped mode-one pieces agree with each
other (issue #15, "shipped defaults that do not work together").  A static
check: reads files, needs no lab, no build (run it with any Python that has
PyYAML and pytest: `pytest tests/static`).

The chain it checks, end to end:

  forwarder/deploy/deployment.yaml  WEBHOOK_URL, WEBHOOK_TOKEN_FILE,
      WEBHOOK_HMAC_SECRET_FILE, WEBHOOK_HMAC_ALGO/HEADER/FORMAT (or the
      forwarder's defaults, read from forwarder/config.c's option table)
  forwarder/deploy/secret.yaml      the keys those files are mounted from
  aap/eda-route.yaml                the HTTPS Route (host, path) to the
      activation's Service and port
  aap/eda.yml                       the activation: rulebook, k8s_service_name,
      webhook_port, watched_namespaces, credentials
  aap/credentials.yml               the EDA credential injecting webhook_token
      and webhook_hmac_secret
  rulebooks/<activation rulebook>   the ansible.eda.webhook source: port, token,
      hmac_secret, hmac_algo, hmac_header, hmac_format

It fails when service name, port, path, token or HMAC settings disagree,
when the forwarder would post over plain http or without verifying TLS, or
when the rulebook does not require token and HMAC.  `check()` returns every
disagreement; the mutation tests below prove it catches each kind - among
them the pieces as shipped before this check (http:// to
ocp-dr-events.aap-eda.svc, HMAC secret commented out).
"""
import copy
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


class _AnsibleLoader(yaml.SafeLoader):
    """YAML as Ansible reads the aap/ variable files: `!unsafe` marks a string
    Ansible must not template (the credential types' injectors)."""


_AnsibleLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _yaml(text):
    return yaml.load(text, Loader=_AnsibleLoader)


def load():
    """Everything check() reads, parsed, in one dict (mutable copies)."""
    deploy = {}
    for f in sorted((REPO / "forwarder/deploy").glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc:
                deploy[doc["kind"]] = doc
    eda = yaml.safe_load((REPO / "aap/eda.yml").read_text())
    activation = next(a for a in eda["eda_rulebook_activations"] if a["name"] == "ocpv-dr events")
    rulebook = REPO / "rulebooks" / activation["rulebook"]
    return {
        "deploy": deploy,
        "deployment": deploy["Deployment"],
        "secret": deploy["Secret"],
        "route": yaml.safe_load((REPO / "aap/eda-route.yaml").read_text())
        if (REPO / "aap/eda-route.yaml").is_file() else None,
        "activation": activation,
        "credentials": _yaml((REPO / "aap/credentials.yml").read_text()),
        "rulebook": yaml.safe_load(rulebook.read_text()) if rulebook.is_file() else None,
        "rulebook_name": activation["rulebook"],
        "config_c": (REPO / "forwarder/config.c").read_text(),
    }


def forwarder_default(config_c, env):
    """The default of a forwarder variable from config.c's option table."""
    m = re.search(r'\{\s*"[a-z-]+",\s*"%s",\s*T_\w+,\s*O\(\w+\),\s*("([^"]*)"|NULL)' % env, config_c)
    assert m, f"forwarder/config.c has no option row for {env}"
    return m.group(2)


def render(value, variables):
    """A rulebook value `{{ name }}` resolved from variables (None: unset)."""
    m = re.fullmatch(r"\s*\{\{\s*(\w+)\s*\}\}\s*", str(value))
    return variables.get(m.group(1)) if m else value


def check(s):
    bad = []
    dep = s["deployment"]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}

    # --- the activation and its rulebook
    act = s["activation"]
    xv = act.get("extra_vars", {})
    svc, port = act.get("k8s_service_name"), xv.get("webhook_port")
    if not svc:
        bad.append("aap/eda.yml: the activation has no k8s_service_name (no Service to post to)")
    elif not re.fullmatch(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", svc):
        # eda-server refuses it (aap_eda/core/utils/k8s_service_name.py is_rfc_1035_compliant)
        bad.append(f"aap/eda.yml: k8s_service_name {svc!r} is not an RFC 1035 label")
    if not s["rulebook"]:
        bad.append(f"aap/eda.yml: rulebook {s['rulebook_name']} does not exist in rulebooks/")
        return bad
    srcs = [src for rs in s["rulebook"] for src in rs.get("sources", [])
            if "ansible.eda.webhook" in src]
    if len(srcs) != 1:
        bad.append(f"rulebooks/{s['rulebook_name']}: want one ansible.eda.webhook source, found {len(srcs)}")
        return bad
    src = srcs[0]["ansible.eda.webhook"]
    # the credential's injected variables count as set (their values are secret)
    injected = set()
    creds = {cr["name"]: cr for cr in s["credentials"].get("eda_credentials", [])}
    types = {t["name"]: t for t in s["credentials"].get("eda_credential_types", [])}
    for name in act.get("eda_credentials", []):     # the field infra.aap_configuration passes on
        cr = creds.get(name)
        if cr and cr["credential_type"] in types:
            injected |= set(types[cr["credential_type"]].get("injectors", {}).get("extra_vars", {}))
    variables = dict(xv, **{k: f"<{k} from the credential>" for k in injected})
    if str(render(src.get("port"), variables)) != str(port):
        bad.append(f"rulebooks/{s['rulebook_name']}: webhook port {src.get('port')!r} is not the "
                   f"activation's webhook_port {port!r}")
    for arg, var in (("token", "webhook_token"), ("hmac_secret", "webhook_hmac_secret")):
        if arg not in src:
            bad.append(f"rulebooks/{s['rulebook_name']}: the webhook source does not require {arg} "
                       "(ship the token + HMAC rulebook)")
        elif render(src[arg], variables) is None:
            bad.append(f"rulebooks/{s['rulebook_name']}: {arg} comes from {src[arg]!r}, which no "
                       f"credential of the activation injects (want {var})")

    # --- the forwarder's URL: HTTPS, to the activation's Service (directly or via the Route)
    url = env.get("WEBHOOK_URL") or ""
    u = urlsplit(url)
    if u.scheme != "https":
        bad.append(f"deployment.yaml: WEBHOOK_URL {url!r} is not https://")
    if env.get("WEBHOOK_ALLOW_INSECURE_HTTP", "false").lower() in ("1", "true", "yes", "on"):
        bad.append("deployment.yaml: WEBHOOK_ALLOW_INSECURE_HTTP is set")
    if env.get("WEBHOOK_VERIFY_TLS", "true").lower() in ("0", "false", "no", "off"):
        bad.append("deployment.yaml: WEBHOOK_VERIFY_TLS is off")
    if not u.path or u.path == "/":
        bad.append(f"deployment.yaml: WEBHOOK_URL {url!r} has no path (the docs and rulebooks use /endpoint)")
    route = s["route"]
    host = u.hostname or ""
    if route and route["metadata"].get("namespace"):
        # docs/aap.md: `oc apply -n <AAP namespace> -f aap/eda-route.yaml`; a fixed
        # namespace makes that fail for every other namespace ("the namespace from
        # the provided object ... does not match"), and the Route must be where the
        # activation's Service is
        bad.append(f"aap/eda-route.yaml: metadata.namespace {route['metadata']['namespace']!r} is fixed; "
                   "the Route belongs in the AAP namespace given with -n")
    if route and host == route["spec"].get("host"):
        rs = route["spec"]
        if rs["to"].get("kind") != "Service" or rs["to"].get("name") != svc:
            bad.append(f"aap/eda-route.yaml: routes to {rs['to'].get('kind')} {rs['to'].get('name')!r}, "
                       f"the activation's Service is {svc!r}")
        if str(rs.get("port", {}).get("targetPort")) not in (str(port), f"{svc}-{port}"):
            bad.append(f"aap/eda-route.yaml: targetPort {rs.get('port', {}).get('targetPort')!r} is not "
                       f"the activation's webhook_port {port!r}")
        tls = rs.get("tls") or {}
        if tls.get("termination") not in ("edge", "reencrypt"):
            bad.append("aap/eda-route.yaml: no TLS termination (edge or reencrypt)")
        if tls.get("insecureEdgeTerminationPolicy") != "None":
            bad.append("aap/eda-route.yaml: insecureEdgeTerminationPolicy must be None (no plain http)")
        if u.port not in (None, 443):
            bad.append(f"deployment.yaml: WEBHOOK_URL port {u.port} is not the router's 443")
        if rs.get("path") and not u.path.startswith(rs["path"]):
            bad.append(f"deployment.yaml: WEBHOOK_URL path {u.path!r} is outside the Route's path {rs['path']!r}")
    else:
        # straight to the Service: <svc>.<namespace>.svc[.cluster.local]:<port>,
        # which needs TLS in the webhook source itself (certfile/keyfile)
        parts = host.split(".")
        if not (len(parts) >= 3 and parts[2] == "svc"):
            bad.append(f"deployment.yaml: WEBHOOK_URL host {host!r} is neither the Route's host "
                       f"{route['spec'].get('host') if route else None!r} (aap/eda-route.yaml) nor "
                       f"the activation's Service ({svc}.<namespace>.svc)")
        else:
            if parts[0] != svc:
                bad.append(f"deployment.yaml: WEBHOOK_URL service {parts[0]!r} is not the "
                           f"activation's k8s_service_name {svc!r}")
            if str(u.port) != str(port):
                bad.append(f"deployment.yaml: WEBHOOK_URL port {u.port} is not the activation's "
                           f"webhook_port {port!r}")
            if "certfile" not in src:
                bad.append(f"rulebooks/{s['rulebook_name']}: posting straight to the Service needs "
                           "TLS in the webhook source (certfile/keyfile); or use the Route")

    # --- token and HMAC secret: from files mounted from the Secret's keys
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"].get("volumes", [])}
    sec = s["secret"]
    keys = set(sec.get("stringData", {})) | set(sec.get("data", {}))
    for var, what in (("WEBHOOK_TOKEN_FILE", "the bearer token"),
                      ("WEBHOOK_HMAC_SECRET_FILE", "the HMAC secret")):
        path = env.get(var)
        if not path:
            bad.append(f"deployment.yaml: {var} is not set: {what} the rulebook requires is not sent")
            continue
        found = False
        for vname, mp in mounts.items():
            v = vols.get(vname, {})
            if "secret" in v and path.startswith(mp.rstrip("/") + "/"):
                found = True
                if v["secret"].get("secretName") != sec["metadata"]["name"]:
                    bad.append(f"deployment.yaml: {var} is mounted from Secret "
                               f"{v['secret'].get('secretName')!r}, secret.yaml is "
                               f"{sec['metadata']['name']!r}")
                key = path[len(mp.rstrip("/")) + 1:]
                items = {i["path"]: i["key"] for i in v["secret"].get("items", [])}
                key = items.get(key, key) if items else key
                if key not in keys:
                    bad.append(f"deployment.yaml: {var} reads key {key!r}, secret.yaml has {sorted(keys)}")
        if not found:
            bad.append(f"deployment.yaml: {var}={path} is not under a mounted Secret volume")
    for env_name in ("WEBHOOK_TOKEN", "WEBHOOK_HMAC_SECRET"):
        if env.get(env_name):
            bad.append(f"deployment.yaml: {env_name} is a literal in the manifest; use the Secret")

    # --- HMAC parameters as the webhook source checks them
    defaults = {"hmac_algo": "sha256", "hmac_header": "x-hub-signature-256", "hmac_format": "hex"}
    for arg, var in (("hmac_algo", "WEBHOOK_HMAC_ALGO"), ("hmac_header", "WEBHOOK_HMAC_HEADER"),
                     ("hmac_format", "WEBHOOK_HMAC_FORMAT")):
        fwd = env.get(var) or forwarder_default(s["config_c"], var)
        want = str(render(src.get(arg, defaults[arg]), variables))
        if fwd.lower() != want.lower():
            bad.append(f"deployment.yaml: {var}={fwd!r}, the rulebook's {arg} is {want!r}")

    # --- the forwarder's objects refer to each other (namespace, account, claim)
    d = s["deploy"]
    ns = dep["metadata"].get("namespace")
    pod = dep["spec"]["template"]["spec"]
    for kind in ("Secret", "ServiceAccount", "PersistentVolumeClaim"):
        if kind in d and d[kind]["metadata"].get("namespace") != ns:
            bad.append(f"forwarder/deploy: {kind} {d[kind]['metadata']['name']} is in namespace "
                       f"{d[kind]['metadata'].get('namespace')!r}, the Deployment in {ns!r}")
    sa = pod.get("serviceAccountName")
    if "ServiceAccount" in d and sa != d["ServiceAccount"]["metadata"]["name"]:
        bad.append(f"deployment.yaml: serviceAccountName {sa!r} is not serviceaccount.yaml's "
                   f"{d['ServiceAccount']['metadata']['name']!r}")
    crb = d.get("ClusterRoleBinding")
    if crb:
        if not any(sub.get("kind") == "ServiceAccount" and sub.get("name") == sa
                   and sub.get("namespace") == ns for sub in crb.get("subjects", [])):
            bad.append(f"clusterrolebinding.yaml: does not bind ServiceAccount {ns}/{sa}")
        if "ClusterRole" in d and crb["roleRef"].get("name") != d["ClusterRole"]["metadata"]["name"]:
            bad.append(f"clusterrolebinding.yaml: roleRef {crb['roleRef'].get('name')!r} is not "
                       f"clusterrole.yaml's {d['ClusterRole']['metadata']['name']!r}")
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", [])
              if "persistentVolumeClaim" in v}
    if "PersistentVolumeClaim" in d and claims != {d["PersistentVolumeClaim"]["metadata"]["name"]}:
        bad.append(f"deployment.yaml: claims {sorted(claims)}, pvc.yaml is "
                   f"{d['PersistentVolumeClaim']['metadata']['name']!r}")

    # --- what is watched covers what the rules act on
    ns = {n.strip() for n in (env.get("WATCH_NAMESPACES") or "").split(",") if n.strip()}
    watched = xv.get("watched_namespaces") or []
    if ns and not set(watched) <= ns:
        bad.append(f"deployment.yaml: WATCH_NAMESPACES {sorted(ns)} lacks the activation's "
                   f"watched_namespaces {sorted(set(watched) - ns)}")
    return bad


def test_shipped_defaults_agree():
    bad = check(load())
    assert not bad, "the shipped mode-one pieces disagree:\n  " + "\n  ".join(bad)


def _env(s, name, value=None, drop=False):
    env = s["deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
    env[:] = [e for e in env if e["name"] != name]
    if not drop:
        env.append({"name": name, "value": value})


def _as_shipped_before(s):
    """forwarder/deploy/deployment.yaml as it was shipped before this check."""
    _env(s, "WEBHOOK_URL", "http://ocp-dr-events.aap-eda.svc:5000/endpoint")
    _env(s, "WEBHOOK_HMAC_SECRET_FILE", drop=True)
    s["route"] = None


def _rulebook_source(s):
    return next(src for rs in s["rulebook"] for src in rs["sources"]
                if "ansible.eda.webhook" in src)["ansible.eda.webhook"]


MUTATIONS = {
    "as shipped before": (_as_shipped_before, ["is not https://", "'ocp-dr-events' is not the "
                                               "activation's k8s_service_name 'ocpv-dr-events'",
                                               "WEBHOOK_HMAC_SECRET_FILE is not set"]),
    "service name": (lambda s: s["activation"].update(k8s_service_name="ocp-dr-events"),
                     ["routes to Service 'ocpv-dr-events', the activation's Service is 'ocp-dr-events'"]),
    "port": (lambda s: s["activation"]["extra_vars"].update(webhook_port=5001),
             ["targetPort 5000 is not the activation's webhook_port 5001"]),
    "route host": (lambda s: s["route"]["spec"].update(host="other.apps.example.com"),
                   ["is neither the Route's host 'other.apps.example.com'"]),
    "path": (lambda s: s["route"]["spec"].update(path="/hooks"),
             ["path '/endpoint' is outside the Route's path '/hooks'"]),
    "plain http": (lambda s: _env(s, "WEBHOOK_URL", "http://ocpv-dr-events.apps.aap.example.com/endpoint"),
                   ["is not https://"]),
    "insecure flag": (lambda s: _env(s, "WEBHOOK_ALLOW_INSECURE_HTTP", "true"),
                      ["WEBHOOK_ALLOW_INSECURE_HTTP is set"]),
    "tls off": (lambda s: _env(s, "WEBHOOK_VERIFY_TLS", "false"), ["WEBHOOK_VERIFY_TLS is off"]),
    "no token": (lambda s: _env(s, "WEBHOOK_TOKEN_FILE", drop=True),
                 ["WEBHOOK_TOKEN_FILE is not set"]),
    "token key": (lambda s: _env(s, "WEBHOOK_TOKEN_FILE", "/var/run/secrets/ocpv-dr/webhook/tok"),
                  ["WEBHOOK_TOKEN_FILE reads key 'tok'"]),
    "hmac algo": (lambda s: _env(s, "WEBHOOK_HMAC_ALGO", "sha512"),
                  ["WEBHOOK_HMAC_ALGO='sha512', the rulebook's hmac_algo is 'sha256'"]),
    "hmac header default": (lambda s: (_env(s, "WEBHOOK_HMAC_HEADER", drop=True),
                                       _rulebook_source(s).update(hmac_header="x-signature")),
                            ["WEBHOOK_HMAC_HEADER='x-hub-signature-256', the rulebook's hmac_header "
                             "is 'x-signature'"]),
    "token-only rulebook": (lambda s: _rulebook_source(s).pop("hmac_secret"),
                            ["does not require hmac_secret"]),
    "credential": (lambda s: s["activation"].update(eda_credentials=["ocpv-dr AAP controller"]),
                   ["token comes from '{{ webhook_token }}', which no credential"]),
    "namespaces": (lambda s: _env(s, "WATCH_NAMESPACES", "vm-dev"),
                   ["lacks the activation's watched_namespaces ['vm-prod']"]),
    "service name not RFC 1035": (lambda s: s["activation"].update(k8s_service_name="ocpv_dr_events"),
                                  ["k8s_service_name 'ocpv_dr_events' is not an RFC 1035 label"]),
    # aap/eda-route.yaml as shipped before this check
    "route namespace fixed": (lambda s: s["route"]["metadata"].update(namespace="aap"),
                              ["metadata.namespace 'aap' is fixed"]),
    "secret namespace": (lambda s: s["deploy"]["Secret"]["metadata"].update(namespace="aap"),
                         ["Secret ocpv-dr-forwarder-webhook is in namespace 'aap', the Deployment in 'ocpv-dr'"]),
    "service account": (lambda s: s["deployment"]["spec"]["template"]["spec"].update(serviceAccountName="default"),
                        ["serviceAccountName 'default' is not serviceaccount.yaml's",
                         "does not bind ServiceAccount ocpv-dr/default"]),
    "role ref": (lambda s: s["deploy"]["ClusterRoleBinding"]["roleRef"].update(name="view"),
                 ["roleRef 'view' is not clusterrole.yaml's"]),
    "state claim": (lambda s: s["deploy"]["PersistentVolumeClaim"]["metadata"].update(name="state"),
                    ["claims ['ocpv-dr-forwarder-state'], pvc.yaml is 'state'"]),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_check_catches(name):
    """The check is not a tautology: each kind of disagreement, made in a
    copy of the shipped files, is reported."""
    mutate, wants = MUTATIONS[name]
    s = copy.deepcopy(load())
    mutate(s)
    bad = check(s)
    for want in wants:
        assert any(want in b for b in bad), f"{name}: no disagreement containing {want!r} in {bad}"
