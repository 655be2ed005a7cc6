#!/usr/bin/env bash
# make lab-status: one line per lab component; exits non-zero when any is not healthy.
source "$(dirname "$0")/lib.sh"
set +e
bad=0
row() { printf '%-22s %-5s %s\n' "$1" "$2" "$3"; [[ $2 == ok ]] || bad=1; }

[[ -s $LAB_STATE/env ]] || { echo "lab is down (no $LAB_STATE/env)"; exit 1; }
set -a; source "$LAB_STATE/env"; set +a
PATH=$VENV_BIN:$PATH

if docker info >/dev/null 2>&1; then
  row docker ok "engine $(docker version -f '{{.Server.Version}}')"
else
  row docker DOWN "no engine answers"
fi
for name in ${LAB_HOST_NAMES//,/ }; do
  s=$(docker exec "$name" systemctl is-system-running 2>/dev/null)
  if [[ $s =~ ^(running|degraded)$ ]]; then
    row "$name" ok "systemd $s, $(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")"
  else
    row "$name" DOWN "${s:-not running}"
  fi
done
for svc in seaweedfs moto postgres consul haproxy; do
  if running "$svc"; then row "$svc" ok "pid $(cat "$(pidfile "$svc")")"; else row "$svc" DOWN "no live process"; fi
done
v=$(python "$LAB_DIR/probe_aws.py" versioning "$S3_URL" "$AWS_REGION" "$S3_ARTIFACT_BUCKET" 2>&1)
[[ $v == Enabled ]] && row "s3 bucket" ok "$S3_ARTIFACT_BUCKET versioning $v" || row "s3 bucket" DOWN "$v"
n=$(python "$LAB_DIR/probe_aws.py" instances "$MOTO_URL" "$AWS_REGION" 2>&1)
[[ $n == "$LAB_HOSTS" ]] && row "ec2 instances" ok "$n running, tagged env=lab" || row "ec2 instances" DOWN "$n (expected $LAB_HOSTS)"
leader=$(curl -sf "$CONSUL_HTTP_ADDR/v1/status/leader")
[[ $leader == *:* ]] && row "consul leader" ok "$leader" || row "consul leader" DOWN "none"
exit $bad
