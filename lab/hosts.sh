#!/usr/bin/env bash
# The app hosts: LAB_HOSTS systemd containers on the lab's bridge with fixed addresses,
# reachable over SSH as `admin` (passwordless sudo) with the lab's own key.
source "$(dirname "$0")/lib.sh"

image=${1:?usage: hosts.sh IMAGE}
((LAB_HOSTS >= 1 && LAB_HOSTS <= 12)) || die "LAB_HOSTS must be between 1 and 12 (got $LAB_HOSTS)"

if ! docker network inspect "$LAB_NAME" >/dev/null 2>&1; then
  log "network: creating $LAB_NAME ($LAB_SUBNET_PREFIX.0/24, bridge $LAB_BRIDGE)"
  docker network create --driver bridge --subnet "$LAB_SUBNET_PREFIX.0/24" --gateway "$LAB_GATEWAY" \
    -o com.docker.network.bridge.name="$LAB_BRIDGE" --label goship-lab=1 "$LAB_NAME" >/dev/null
fi

key=$LAB_STATE/ssh/id_ed25519
if [[ ! -f $key ]]; then
  mkdir -p "$LAB_STATE/ssh"; chmod 700 "$LAB_STATE/ssh"
  ssh-keygen -q -t ed25519 -N '' -C goship-lab -f "$key"
fi
cp "$key.pub" "$LAB_STATE/ssh/authorized_keys"; chmod 644 "$LAB_STATE/ssh/authorized_keys"

# Hosts beyond LAB_HOSTS (from an earlier, bigger lab) are removed.
for c in $(docker ps -a --filter label=goship-lab-host --format '{{.Names}}'); do
  n=${c##*-}; n=$((10#$n))
  if ((n > LAB_HOSTS)); then log "host: removing $c"; docker rm -f "$c" >/dev/null; fi
done

for i in $(seq 1 "$LAB_HOSTS"); do
  name=$(host_name "$i"); addr=$(host_addr "$i")
  if [[ $(docker inspect -f '{{.State.Running}} {{.Config.Image}}' "$name" 2>/dev/null) == "true $image" ]]; then
    continue
  fi
  docker rm -f "$name" >/dev/null 2>&1 || true
  log "host: starting $name at $addr"
  # systemd as PID 1 without --privileged: the flags proved on this machine kind (see DESIGN.md).
  docker run -d --name "$name" --hostname "$name" --label goship-lab-host=1 \
    --network "$LAB_NAME" --ip "$addr" \
    --cap-add SYS_ADMIN --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 --ulimit nofile=20000:20000 \
    -v "$LAB_STATE/ssh/authorized_keys:/home/admin/.ssh/authorized_keys:ro" \
    "$image" /sbin/init >/dev/null
done

# is-system-running exits non-zero for "degraded", which still is a booted host.
host_booted() { [[ $(docker exec "$1" systemctl is-system-running --wait 2>/dev/null) =~ ^(running|degraded)$ ]]; }

for i in $(seq 1 "$LAB_HOSTS"); do
  name=$(host_name "$i")
  wait_for "$name to boot" 90 host_booted "$name"
  wait_for "sshd on $name" 30 ssh -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o ConnectTimeout=2 -o LogLevel=ERROR "admin@$(host_addr "$i")" true
done
log "hosts: $LAB_HOSTS running"
