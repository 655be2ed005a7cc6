#!/usr/bin/env bash
# The lab's shared services, run on this machine and bound to loopback and the bridge
# gateway so the hosts reach them: SeaweedFS (S3), moto (EC2 + CodeDeploy APIs),
# PostgreSQL, a Consul server and HAProxy in front of the app hosts.
# Each start is skipped when its recorded process is still alive.
source "$(dirname "$0")/lib.sh"

# start_bg NAME CMD...: start CMD detached, log to logs/NAME.log, record its pid.
start_bg() {
  local name=$1; shift
  setsid "$@" >"$LAB_STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

AWS_ACCESS_KEY_ID=$(state_get AWS_ACCESS_KEY_ID)
AWS_SECRET_ACCESS_KEY=$(state_secret AWS_SECRET_ACCESS_KEY)
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

start_s3() {
  if ! running seaweedfs; then
    log "s3: starting SeaweedFS on $LAB_GATEWAY:$S3_PORT"
    mkdir -p "$LAB_STATE/seaweedfs"
    # Every port is set: `weed mini` otherwise opens several well-known ones.
    # Its admin gRPC port is admin.port + 10000 (27646), which its worker dials.
    start_bg seaweedfs "$VENV_BIN/weed" mini -dir="$LAB_STATE/seaweedfs" \
      -ip="$LAB_GATEWAY" -ip.bind="$LAB_GATEWAY" \
      -master.port=17333 -master.port.grpc=17334 -volume.port=17380 -volume.port.grpc=17381 \
      -filer.port=17388 -filer.port.grpc=17389 -s3.port="$S3_PORT" -s3.port.grpc=17390 \
      -s3.port.iceberg=0 -s3.port.lance=0 -admin.port=17646 -webdav=false
  fi
  wait_for "SeaweedFS S3" 60 curl -sf -o /dev/null "http://$LAB_GATEWAY:$S3_PORT/healthz"
}

start_moto() {
  if ! running moto; then
    log "moto: starting the EC2/CodeDeploy API on $LAB_GATEWAY:$MOTO_PORT"
    start_bg moto "$VENV_BIN/moto_server" -H "$LAB_GATEWAY" -p "$MOTO_PORT"
  fi
  wait_for "moto" 60 curl -sf -o /dev/null "http://$LAB_GATEWAY:$MOTO_PORT/moto-api/"
}

start_postgres() {
  local bin data=$LAB_STATE/postgres sock=$LAB_STATE/pgsock pw
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [[ -n $bin ]] || die "no PostgreSQL server: run lab/deps.sh"
  pw=$(state_secret PG_PASSWORD)
  if [[ ! -f $data/PG_VERSION ]]; then
    log "postgres: initdb"
    mkdir -p "$data" "$sock"; chown postgres:postgres "$data" "$sock"; chmod 700 "$data"
    runuser -u postgres -- "$bin/initdb" -D "$data" --auth-local=peer --auth-host=scram-sha-256 \
      -U postgres >"$LAB_STATE/logs/initdb.log" 2>&1 || die "initdb failed: see $LAB_STATE/logs/initdb.log"
    echo "host all all $LAB_SUBNET_PREFIX.0/24 scram-sha-256" >>"$data/pg_hba.conf"
  fi
  if ! running postgres; then
    touch "$LAB_STATE/logs/postgres.log"; chown postgres "$LAB_STATE/logs/postgres.log"
    log "postgres: starting on 127.0.0.1,$LAB_GATEWAY:$PG_PORT"
    runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$LAB_STATE/logs/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -k $sock -c listen_addresses=127.0.0.1,$LAB_GATEWAY" start >/dev/null \
      || die "PostgreSQL did not start: see $LAB_STATE/logs/postgres.log"
    head -n1 "$data/postmaster.pid" >"$(pidfile postgres)"
  fi
  # The service's database and its owner role (the migrations run as that role).
  local psql=(runuser -u postgres -- psql -h "$sock" -p "$PG_PORT" -v ON_ERROR_STOP=1 -qAt)
  if [[ -z $("${psql[@]}" -c "select 1 from pg_roles where rolname='hello_svc'") ]]; then
    "${psql[@]}" -c "create role hello_svc login password '$pw'"
  fi
  if [[ -z $("${psql[@]}" -c "select 1 from pg_database where datname='hello'") ]]; then
    "${psql[@]}" -c "create database hello owner hello_svc"
  fi
}

start_consul() {
  local bin=$LAB_CACHE/consul-root/usr/bin/consul
  if ! running consul; then
    log "consul: starting the server agent on $LAB_GATEWAY"
    mkdir -p "$LAB_STATE/consul"
    start_bg consul "$bin" agent -server -bootstrap-expect=1 -node=lab-consul-server \
      -datacenter=lab -data-dir="$LAB_STATE/consul" -bind="$LAB_GATEWAY" -advertise="$LAB_GATEWAY" \
      -client="127.0.0.1 $LAB_GATEWAY" -hcl='ports { dns = -1 }' -log-level=warn
  fi
  # A leader is elected once the single server bootstraps itself.
  wait_for "a Consul leader" 60 bash -c "curl -sf http://127.0.0.1:$CONSUL_HTTP_PORT/v1/status/leader | grep -q :"
}

start_haproxy() {
  local cfg=$LAB_STATE/haproxy.cfg i
  {
    cat <<EOF
# Written by lab/services.sh. Backends are the lab hosts; drain one with
#   echo "disable server $LAB_APP/app-01" | socat stdio $LAB_STATE/haproxy.sock
global
    stats socket $LAB_STATE/haproxy.sock mode 600 level admin
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout queue 10s
    retries 2
    option redispatch
frontend app
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend $LAB_APP
# The same servers without retries or redispatch, as many load balancers run: a request that
# reaches a host while it restarts is lost, not hidden (bench/availability measures through it).
frontend app_noretry
    bind 127.0.0.1:$HAPROXY_NORETRY_PORT
    default_backend ${LAB_APP}_noretry
frontend stats
    bind 127.0.0.1:$HAPROXY_STATS_PORT
    stats enable
    stats uri /stats
backend $LAB_APP
    balance roundrobin
    option httpchk GET /healthz
    default-server inter 1s fall 2 rise 2 maxconn 64
EOF
    for i in $(seq 1 "$LAB_HOSTS"); do
      printf '    server app-%02d %s:%s check\n' "$i" "$(host_addr "$i")" "$LAB_APP_PORT"
    done
    # Each server tracks its twin above: drained (maintenance) and health follow it.
    printf 'backend %s_noretry\n    balance roundrobin\n    retries 0\n    no option redispatch\n' "$LAB_APP"
    printf '    default-server maxconn 64\n'
    for i in $(seq 1 "$LAB_HOSTS"); do
      printf '    server app-%02d %s:%s track %s/app-%02d\n' "$i" "$(host_addr "$i")" "$LAB_APP_PORT" "$LAB_APP" "$i"
    done
  } >"$cfg.new"
  haproxy -c -q -f "$cfg.new" || die "generated HAProxy config is invalid: $cfg.new"
  if running haproxy && cmp -s "$cfg" "$cfg.new"; then
    rm -f "$cfg.new"
  elif running haproxy; then
    log "haproxy: reloading with $LAB_HOSTS backends"
    mv "$cfg.new" "$cfg"
    local old; old=$(cat "$(pidfile haproxy)")
    haproxy -f "$cfg" -D -p "$(pidfile haproxy)" -sf "$old"
  else
    log "haproxy: starting on 127.0.0.1:$HAPROXY_PORT with $LAB_HOSTS backends"
    mv "$cfg.new" "$cfg"
    haproxy -f "$cfg" -D -p "$(pidfile haproxy)"
  fi
  wait_for "haproxy" 20 port_open 127.0.0.1 "$HAPROXY_PORT"
}

for svc in "$@"; do "start_$svc"; done
