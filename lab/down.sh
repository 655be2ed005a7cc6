#!/usr/bin/env bash
# make lab-down: stop every process the lab started (by recorded pid), remove its containers
# and network, and drop its state. Safe to run twice. The per-machine cache stays.
source "$(dirname "$0")/lib.sh"

if docker info >/dev/null 2>&1; then
  containers=$(docker ps -aq --filter label=goship-lab-host)
  [[ -z $containers ]] || { log "removing lab hosts"; docker rm -f $containers >/dev/null; }
  if docker network inspect "$LAB_NAME" >/dev/null 2>&1; then
    log "removing network $LAB_NAME"; docker network rm "$LAB_NAME" >/dev/null
  fi
fi

if running postgres; then
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  log "stopping postgres"
  runuser -u postgres -- "$bin/pg_ctl" -D "$LAB_STATE/postgres" -m fast -w -t 30 stop >/dev/null || true
fi
for name in haproxy consul moto seaweedfs postgres; do stop_pid "$name" 30; done
# dockerd only if the lab started it; containers of other users of a reused engine are not ours.
if running dockerd; then
  stop_pid dockerd 60
  # The default bridge that dockerd made goes with it.
  ! ip link show docker0 >/dev/null 2>&1 || ip link delete docker0
fi

# Everything else under .state goes too (keys, data, the env file); logs are kept for a post-mortem.
find "$LAB_STATE" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
log "lab is down"
