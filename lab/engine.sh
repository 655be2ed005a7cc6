#!/usr/bin/env bash
# Docker engine: reuse one that answers; otherwise start dockerd (docker.io, from deps.sh)
# with the lab's own data root, recording its pid for lab-down.
source "$(dirname "$0")/lib.sh"

if docker info >/dev/null 2>&1; then
  log "docker engine: reusing the running one"
  exit 0
fi
mkdir -p "$LAB_CACHE/docker"
log "docker engine: starting dockerd (data root $LAB_CACHE/docker)"
# setsid: dockerd outlives this script and is stopped by lab-down through its pid file.
# No iptables/ip-forward changes: the lab's traffic stays on its bridges (host <-> containers),
# hosts get no route out, and lab-down leaves the machine's firewall as it found it.
setsid dockerd --data-root "$LAB_CACHE/docker" --pidfile "$LAB_STATE/pids/dockerd.real.pid" \
  --iptables=false --ip-forward=false \
  >"$LAB_STATE/logs/dockerd.log" 2>&1 </dev/null &
echo $! >"$(pidfile dockerd)"
wait_for "dockerd" 60 docker info
log "docker engine: ready"
