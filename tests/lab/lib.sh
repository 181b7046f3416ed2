# shellcheck shell=bash
# Shared helpers for the DR lab scripts (up, down, cluster, install-deps).
# Sourced, never executed. Defines paths, instance naming, port allocation,
# process start/stop by process group, health waits and certificate making.

set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LAB_DIR/../.." && pwd)"
CACHE_DIR="${LAB_CACHE_DIR:-$REPO_ROOT/.cache}"
LAB_BIN="${LAB_BIN:-$CACHE_DIR/lab/bin}"
LAB_VENV="${LAB_VENV:-$CACHE_DIR/venv}"
LAB_VENV_216="${LAB_VENV_216:-$CACHE_DIR/venv-2.16}"
CRD_DIR="${LAB_CRD_DIR:-}"
if [[ -z "$CRD_DIR" ]]; then
    for c in "$REPO_ROOT/../shared/crds" "/work/shared/crds"; do
        if [[ -d "$c" ]]; then CRD_DIR="$(cd "$c" && pwd)"; break; fi
    done
fi

LAB_NAME="${LAB_NAME:-default}"
if [[ ! "$LAB_NAME" =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]]; then
    echo "lab: LAB_NAME '$LAB_NAME' is invalid: use 1-31 chars of a-z, 0-9, '-' (starting with a letter or digit)" >&2
    exit 2
fi
STATE="$LAB_DIR/.state-$LAB_NAME"
CLUSTERS=(primary dr)
# Namespaces the examples use; created in both clusters.
LAB_NAMESPACES=(vm-prod vm-dev not-watched openshift-adp longhorn-system ocpv-dr)
# Namespaces the least-privilege credential may write in.
LAB_DR_NAMESPACES=(vm-prod vm-dev)

log()  { printf '[lab %s %s] %s\n' "$LAB_NAME" "$(date -u +%H:%M:%S)" "$*" >&2; }
die()  { printf '[lab %s] ERROR: %s\n' "$LAB_NAME" "$*" >&2; exit 1; }

need_bins() {
    local b
    for b in etcd kube-apiserver kube-controller-manager kubectl minio; do
        [[ -x "$LAB_BIN/$b" ]] || die "$LAB_BIN/$b is missing: run tests/lab/install-deps first"
    done
}

# ---------------------------------------------------------------- ports
# ports.env holds NAME=port lines; a port is allocated once per instance and
# reused by later runs (so kubeconfigs stay valid across cluster restarts).
port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

port_get() {   # port_get NAME -> prints the port, allocating a free one if needed
    local name="$1" f="$STATE/ports.env" p
    touch "$f"
    p="$(sed -n "s/^$name=//p" "$f")"
    if [[ -n "$p" ]]; then echo "$p"; return; fi
    # allocation is global across instances: one at a time
    exec 8> "$LAB_DIR/.state-alloc.lock"; flock -w 60 8 || die "cannot lock $LAB_DIR/.state-alloc.lock"
    # below the kernel's ephemeral range, so outgoing connections never take a lab port
    local lo=20000 hi=30000 eph
    eph="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
    if (( eph > 12000 )); then lo=10000 hi=$eph; fi
    local tries=0
    while :; do
        p=$(( lo + (RANDOM * 32768 + RANDOM) % (hi - lo) ))
        if ! port_in_use "$p" && ! grep -q "=$p\$" "$f" && ! grep -qs "=$p\$" "$LAB_DIR"/.state-*/ports.env; then
            break
        fi
        tries=$((tries + 1))
        (( tries < 200 )) || die "no free TCP port found"
    done
    echo "$name=$p" >> "$f"
    echo "$p"
}

# ---------------------------------------------------------------- processes
pidfile() { echo "$STATE/run/$1.pid"; }

# Every lab process carries LAB_INSTANCE=<state dir> in its environment: unique per
# instance and per checkout (two clones may both have an instance "default").
has_marker() {   # has_marker PID
    { tr '\0' '\n' < "/proc/$1/environ"; } 2>/dev/null | grep -qxF -- "LAB_INSTANCE=$STATE"
}

proc_alive() {   # proc_alive COMPONENT
    local f; f="$(pidfile "$1")"
    [[ -s "$f" ]] || return 1
    local pid; pid="$(cat "$f")"
    kill -0 "$pid" 2>/dev/null || return 1
    # guard against pid reuse: the process must still be a lab process of this instance
    grep -qa -- "$STATE/" "/proc/$pid/cmdline" 2>/dev/null || has_marker "$pid"
}

# proc_start COMPONENT CMD... : start in its own session/process group, log to
# $STATE/logs/COMPONENT.log, record the pid.
proc_start() {
    local comp="$1"; shift
    mkdir -p "$STATE/run" "$STATE/logs"
    local logf="$STATE/logs/$comp.log"
    printf '\n==== %s start %s: %s\n' "$comp" "$(date -u +%FT%TZ)" "$1" >> "$logf"
    # 8>&- 9>&-: the lab locks must not be inherited by the daemons
    LAB_INSTANCE="$STATE" setsid "$@" >> "$logf" 2>&1 < /dev/null 8>&- 9>&- &
    local pid=$!
    echo "$pid" > "$(pidfile "$comp")"
    # Until the forked shell has exec'd the command, /proc/PID is still this
    # script (no $STATE/ in its cmdline, no LAB_INSTANCE in its environ), and
    # proc_alive would call the component dead: wait for the exec (a loaded
    # CI machine once lost an apiserver start to this: "exited during
    # start-up" with an empty log).
    # Bounded by time, not by a count: on a machine busy compiling, 5 s (the
    # old 250 x 0.02 s) was not always enough (etcd "exited during start-up"
    # while it ran fine).
    local deadline=$(( $(date +%s) + 60 ))
    while (( $(date +%s) < deadline )); do
        kill -0 "$pid" 2>/dev/null || break
        { grep -qa -- "$STATE/" "/proc/$pid/cmdline" || has_marker "$pid"; } 2>/dev/null && break
        sleep 0.02
    done
}

# proc_stop COMPONENT [SIGNAL] : TERM (or SIGNAL) the process group, KILL after 10 s.
proc_stop() {
    local comp="$1" sig="${2:-TERM}" f pid i
    f="$(pidfile "$comp")"
    [[ -s "$f" ]] || return 0
    pid="$(cat "$f")"
    if proc_alive "$comp"; then
        kill -s "$sig" -- "-$pid" 2>/dev/null || kill -s "$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$comp did not stop on $sig; killing"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    rm -f "$f"
}

fail_with_log() {   # fail_with_log COMPONENT MESSAGE
    local logf="$STATE/logs/$1.log"
    echo "---- last 40 lines of $logf ----" >&2
    tail -n 40 "$logf" >&2 2>/dev/null || true
    echo "----" >&2
    die "$2"
}

# wait_for COMPONENT TIMEOUT_S CMD... : retry CMD until it succeeds; fail with the log tail.
wait_for() {
    local comp="$1" timeout="$2"; shift 2
    local deadline=$(( $(date +%s) + timeout ))
    while :; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        if ! proc_alive "$comp"; then fail_with_log "$comp" "$comp exited during start-up"; fi
        if (( $(date +%s) > deadline )); then fail_with_log "$comp" "$comp not ready after ${timeout}s"; fi
        sleep 0.3
    done
}

# ---------------------------------------------------------------- TLS
# Every cluster has its own CA (a credential for one cluster is worthless on the other).
mk_ca() {   # mk_ca DIR CN
    local d="$1" cn="$2"
    [[ -s "$d/ca.crt" && -s "$d/ca.key" ]] && return 0
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
        -keyout "$d/ca.key" -out "$d/ca.crt" -subj "/CN=$cn" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 600 "$d/ca.key"
}

# mk_cert CADIR NAME SUBJECT KIND(server|client) [SANS]
mk_cert() {
    local d="$1" name="$2" subj="$3" kind="$4" sans="${5:-}"
    [[ -s "$d/$name.crt" && -s "$d/$name.key" ]] && return 0
    local ext="$d/$name.ext"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        if [[ "$kind" == server ]]; then
            echo "extendedKeyUsage=serverAuth"
            echo "subjectAltName=$sans"
        else
            echo "extendedKeyUsage=clientAuth"
        fi
    } > "$ext"
    openssl req -newkey rsa:2048 -nodes -keyout "$d/$name.key" -out "$d/$name.csr" -subj "$subj" 2>/dev/null
    openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 3650 -sha256 -extfile "$ext" -out "$d/$name.crt" 2>/dev/null
    chmod 600 "$d/$name.key"
    rm -f "$d/$name.csr" "$ext"
}

# ---------------------------------------------------------------- network
# The instance's /24 inside 198.18.0.0/15 (RFC 2544 benchmark range), fixed at first up.
net_index() {
    local f="$STATE/net.env" n
    if [[ -s "$f" ]]; then sed -n 's/^NET_N=//p' "$f"; return; fi
    mkdir -p "$STATE"
    exec 8> "$LAB_DIR/.state-alloc.lock"; flock -w 60 8 || die "cannot lock $LAB_DIR/.state-alloc.lock"
    n=$(( $(printf '%s' "$LAB_NAME" | cksum | cut -d' ' -f1) % 200 + 20 ))
    local tries=0
    while ip -4 -o addr show | grep -q " 198\.18\.$n\." || grep -qs "^NET_N=$n\$" "$LAB_DIR"/.state-*/net.env; do
        n=$(( (n - 20 + 1) % 200 + 20 )); tries=$((tries + 1))
        (( tries < 200 )) || die "no free 198.18.N.0/24 subnet"
    done
    # netns names carry a tag of this checkout, so two clones' instances never share one
    printf 'NET_N=%s\nNS_TAG=%s\n' "$n" "$(printf '%s' "$LAB_DIR" | sha256sum | cut -c1-6)" > "$f"
    echo "$n"
}
