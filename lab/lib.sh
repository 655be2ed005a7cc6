# shellcheck shell=bash
# Shared by the lab scripts: paths, settings, logging and pid bookkeeping.
# Everything the lab creates lives under $LAB_STATE (per checkout) or $LAB_CACHE
# (per machine: the Docker data root, the host image and downloaded packages,
# kept so a second `make lab-up` does not rebuild them).
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$LAB_DIR")
LAB_STATE=$LAB_DIR/.state            # fixed: inventories/lab reads lab/.state/env
LAB_CACHE=${LAB_CACHE:-/var/cache/goship-lab}
VENV_BIN=${VENV_BIN:-$REPO_DIR/.venv/bin}

LAB_HOSTS=${LAB_HOSTS:-3}
LAB_NAME=goship-lab                  # docker network and container name prefix
LAB_SUBNET_PREFIX=172.29.77          # the lab's own bridge; hosts are .11 .. .(10+LAB_HOSTS)
LAB_GATEWAY=$LAB_SUBNET_PREFIX.1     # the machine's address on that bridge: lab services bind here
LAB_BRIDGE=goship0
LAB_APP=hello-svc
LAB_APP_PORT=8080

# Ports of the services the lab runs on the machine (bound to loopback and the bridge gateway).
S3_PORT=8333
MOTO_PORT=5055
PG_PORT=5433
CONSUL_HTTP_PORT=8500
HAPROXY_PORT=18080
HAPROXY_STATS_PORT=18081
HAPROXY_NORETRY_PORT=18082   # the same servers, no retry or redispatch (bench/availability)

AWS_REGION=us-east-1
S3_ARTIFACT_BUCKET=goship-artifacts
S3_LEDGER_BUCKET=goship-ledger

mkdir -p "$LAB_STATE/pids" "$LAB_STATE/logs"

log() { printf '%s lab: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# pid bookkeeping: every process the lab starts is recorded so lab-down stops exactly those.
pidfile() { echo "$LAB_STATE/pids/$1.pid"; }
running() {
  local f; f=$(pidfile "$1")
  [[ -s $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}
stop_pid() {  # name [timeout_s]: TERM, wait, then KILL
  local name=$1 timeout=${2:-20} f pid
  f=$(pidfile "$name")
  [[ -s $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((timeout * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in ${timeout}s: killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

# wait_for DESCRIPTION TIMEOUT_S CMD...: poll CMD every 0.2 s, bounded.
wait_for() {
  local what=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
    sleep 0.2
  done
}

host_name() { printf '%s-app-%02d\n' "$LAB_NAME" "$1"; }
host_addr() { echo "$LAB_SUBNET_PREFIX.$((10 + $1))"; }

# The state file: KEY=VALUE lines, sourceable by shells and readable by Ansible's ini lookup.
# Unquoted values only; none contain spaces.
state_set() {
  local key=$1 value=$2 f=$LAB_STATE/env
  touch "$f"; chmod 600 "$f"
  if grep -q "^$key=" "$f"; then
    sed -i "s|^$key=.*|$key=$value|" "$f"
  else
    echo "$key=$value" >>"$f"
  fi
}
state_get() { sed -n "s/^$1=//p" "$LAB_STATE/env" 2>/dev/null | tail -n1; }

# A secret made once per lab and kept in the 0600 state file.
state_secret() {
  local key=$1 v
  v=$(state_get "$key")
  if [[ -z $v ]]; then
    v=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
    state_set "$key" "$v"
  fi
  echo "$v"
}
