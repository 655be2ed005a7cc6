#!/usr/bin/env bash
# make lab-up: bring the whole lab up (idempotent; a second run only checks).
source "$(dirname "$0")/lib.sh"
start=$SECONDS
cd "$LAB_DIR"

[[ -x $VENV_BIN/ansible ]] || die "no $VENV_BIN: run 'make setup' first"
export PATH=$VENV_BIN:$PATH

state_set LAB_HOSTS "$LAB_HOSTS"
state_set AWS_REGION "$AWS_REGION"
state_set AWS_ACCESS_KEY_ID goship-lab
state_secret AWS_SECRET_ACCESS_KEY >/dev/null

bash deps.sh
bash engine.sh
image=$(bash image.sh)
bash vendor.sh
bash hosts.sh "$image"
bash services.sh s3 moto postgres consul haproxy

set -a; source "$LAB_STATE/env"; set +a
s3_url=http://$LAB_GATEWAY:$S3_PORT moto_url=http://$LAB_GATEWAY:$MOTO_PORT
log "aws: seeding S3 buckets and registering EC2 instances"
python seed_s3.py "$s3_url" "$AWS_REGION" "$S3_ARTIFACT_BUCKET" "$S3_LEDGER_BUCKET" "$LAB_CACHE"/debs/*.deb >&2
hosts=()
for i in $(seq 1 "$LAB_HOSTS"); do hosts+=("$(host_name "$i")=$(host_addr "$i")"); done
python register_ec2.py "$moto_url" "$AWS_REGION" "$LAB_SUBNET_PREFIX" "$LAB_APP" "${hosts[@]}" >&2

# Everything tests and inventories need, in one place (lab/.state/env, mode 0600).
state_set LAB_GATEWAY "$LAB_GATEWAY"
state_set LAB_SUBNET "$LAB_SUBNET_PREFIX.0/24"
state_set LAB_HOST_ADDRESSES "$(for i in $(seq 1 "$LAB_HOSTS"); do host_addr "$i"; done | paste -sd,)"
state_set LAB_HOST_NAMES "$(for i in $(seq 1 "$LAB_HOSTS"); do host_name "$i"; done | paste -sd,)"
state_set LAB_HOST_IMAGE "$image"
state_set LAB_SSH_USER admin
state_set LAB_SSH_KEY "$LAB_STATE/ssh/id_ed25519"
state_set S3_URL "$s3_url"
state_set S3_ARTIFACT_BUCKET "$S3_ARTIFACT_BUCKET"
state_set S3_LEDGER_BUCKET "$S3_LEDGER_BUCKET"
state_set MOTO_URL "$moto_url"
state_set PG_HOST "$LAB_GATEWAY"
state_set PG_PORT "$PG_PORT"
state_set PG_DATABASE hello
state_set PG_USER hello_svc
state_set CONSUL_HTTP_ADDR "http://$LAB_GATEWAY:$CONSUL_HTTP_PORT"
state_set CONSUL_DATACENTER lab
state_set HAPROXY_URL "http://127.0.0.1:$HAPROXY_PORT"
state_set HAPROXY_STATS_URL "http://127.0.0.1:$HAPROXY_STATS_PORT/stats"
state_set HAPROXY_NORETRY_URL "http://127.0.0.1:$HAPROXY_NORETRY_PORT"
state_set HAPROXY_SOCKET "$LAB_STATE/haproxy.sock"
state_set HAPROXY_BACKEND "$LAB_APP"

log "lab is up in $((SECONDS - start))s ($LAB_HOSTS hosts); state in $LAB_STATE/env"
