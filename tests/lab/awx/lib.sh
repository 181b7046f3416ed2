# shellcheck shell=bash
# Shared paths and helpers for the lab's AWX component (tests/lab/awx/install,
# up, down). Sourced after tests/lab/lib.sh, never executed.
#
# Machine-wide cache (shared by every lab instance, rebuilt when its stamp
# changes): $AWX_CACHE = .cache/awx
#   venv/          Python 3.11 venv with AWX's requirements (from PyPI)
#   src/           a patched copy of upstream AWX 24.6.1 (never the shared original)
#   bin/receptor   receptor v1.4.4 built from the Go module proxy
#   collections/   awx.awx (from the `ansible` PyPI package) + infra.aap_configuration
#   ee/            the job image's root file system tarball (mmdebstrap)
#   db-<stamp>.tar the migrated + preloaded PostgreSQL data dir (snapshot)
# Per instance: $STATE/awx (PostgreSQL data, Redis, receptor socket, settings,
# admin password) and logs in $STATE/logs/awx-*.log.

AWX_DIR="$LAB_DIR/awx"
AWX_UPSTREAM="${AWX_UPSTREAM:-}"
if [[ -z "$AWX_UPSTREAM" ]]; then
    for c in "$REPO_ROOT/../shared/upstream" /work/shared/upstream; do
        if [[ -d "$c/awx" ]]; then AWX_UPSTREAM="$(cd "$c" && pwd)"; break; fi
    done
fi
AWX_VERSION=24.6.1
RECEPTOR_VERSION=v1.4.4
ANSIBLE_PKG_VERSION=10.7.0          # ships awx.awx 24.6.1
mkdir -p "$CACHE_DIR"
# physical path: the venv's scripts record it, and .cache may be a symlink into another checkout
AWX_CACHE="$(cd "$CACHE_DIR" && pwd -P)/awx"
AWX_VENV="$AWX_CACHE/venv"
AWX_SRC="$AWX_CACHE/src"
AWX_COLLECTIONS="$AWX_CACHE/collections"
AWX_EE_IMAGE="${AWX_EE_IMAGE:-localhost/ocpv-dr-lab-ee:latest}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
AWX_STATE="$STATE/awx"
AWX_PY="${AWX_PY:-}"

awx_python() {   # the Python 3.11 that AWX 24.6.1 supports (pyenv first)
    local c
    for c in "$AWX_PY" /root/.pyenv/versions/3.11.*/bin/python3 "$(command -v python3.11 2>/dev/null || true)"; do
        [[ -n "$c" && -x "$c" ]] && { echo "$c"; return 0; }
    done
    return 1
}

# Hash of everything the patched source copy is made from: upstream tree
# identity + our patches. A change to either rebuilds src/ and the DB snapshot.
awx_src_stamp() {
    ( cat "$AWX_UPSTREAM/awx/README.md" 2>/dev/null; ls -l --time-style=+ "$AWX_UPSTREAM/awx/awx/main/migrations" | sha256sum
      cat "$AWX_DIR"/patches/*.patch ) | sha256sum | cut -c1-16
}

# awx-manage for instance $STATE with its settings
awx_env() {
    export DJANGO_SETTINGS_MODULE=awx.settings.production
    export AWX_SETTINGS_FILE="$AWX_STATE/settings.py"
    export PYTHONPATH="$AWX_SRC"
    export PATH="$AWX_VENV/bin:$AWX_CACHE/bin:$PATH"
    export SUPERVISOR_CONFIG_PATH=/dev/null
    export HOME="$AWX_STATE/home"
    export XDG_RUNTIME_DIR="$AWX_STATE/run-user"
    export CONTAINERS_REGISTRIES_CONF="$AWX_STATE/containers/registries.conf"
    export CONTAINERS_POLICY_JSON="$AWX_STATE/containers/policy.json"
    export AWX_RECEPTOR_CONF="$AWX_STATE/receptor.conf"
    export AWX_LOGGING_MODE=stdout   # logs on stdout, into $STATE/logs (not /var/log/tower)
}
awx_manage() { "$AWX_VENV/bin/python" -c 'import awx; awx.manage()' "$@"; }
