#!/usr/bin/env bash
# make demo: the whole story on this machine, from a fresh clone. Starts the lab (3 systemd hosts
# found through the EC2 API, S3, PostgreSQL, Consul, HAProxy), builds hello-svc 1.0.0 and 1.214
# into S3, deploys 1.0.0, then rolls 1.214 out one host at a time while wrk sends steady traffic
# through HAProxy, and prints the deploy report, the load result and where the HTML report is.
# A second run reuses the lab and the builds. Tear down with `make lab-down`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.venv/bin:$PATH GOTOOLCHAIN=local ANSIBLE_CONFIG=$PWD/ansible.cfg
# The demo shows the rollout, not the toolchain's deprecation notices.
export PYTHONWARNINGS=ignore ANSIBLE_DEPRECATION_WARNINGS=false
start=$SECONDS
say() { printf '\n=== demo: %s\n' "$*"; }

say "starting the lab (reused when it is up)"
bash lab/up.sh
set -a; source lab/.state/env; set +a

for version in 1.0.0 1.214; do
  deb=build/$version/hello-svc_${version}_amd64.deb
  if [[ -f $deb ]]; then
    say "hello-svc $version: built already ($deb); making sure S3 has it"
  else
    say "building hello-svc $version (go test, static binary, reproducible .deb)"
  fi
  ansible-playbook playbooks/build.yml -e version=$version -e goship_build_upload=true \
    -e go_build_run_tests=$([[ $version == 1.0.0 ]] && echo true || echo false) >/dev/null
done

say "deploying hello-svc 1.0.0 to every host"
ansible-playbook playbooks/deploy.yml -e version=1.0.0 | sed -n '/DEPLOY REPORT/,$p'

say "rolling out 1.214, one host at a time, under steady load through HAProxy ($HAPROXY_URL)"
script=$(mktemp); trap 'rm -f "$script"' EXIT
printf 'function delay()\n  return 2\nend\n' >"$script"   # each connection: a request every 2 ms at most
load=$(mktemp)
wrk -t1 -c8 -d600s --timeout 10s -s "$script" "$HAPROXY_URL/work?ms=5" >"$load" 2>&1 &
wrk_pid=$!
sleep 2
rc=0
ansible-playbook playbooks/deploy.yml -e version=1.214 | sed -n '/DEPLOY REPORT/,$p' || rc=$?
sleep 1
kill -INT "$wrk_pid"; wait "$wrk_pid" || true
requests=$(grep -oE '^ *[0-9]+ requests in' "$load" | grep -oE '[0-9]+' | head -1)
non2xx=$(grep -oE 'Non-2xx or 3xx responses: [0-9]+' "$load" | grep -oE '[0-9]+$' || echo 0)
errors=0
for n in $(grep -oE 'Socket errors: connect [0-9]+, read [0-9]+, write [0-9]+, timeout [0-9]+' "$load" | grep -oE '[0-9]+'); do
  errors=$((errors + n))
done
rm -f "$load"

say "load during the rollout: ${requests:-0} requests sent, $((non2xx + ${errors:-0})) failed"
say "every host now reports (GET /status):"
for addr in ${LAB_HOST_ADDRESSES//,/ }; do
  printf '  %s  %s\n' "$addr" "$(curl -s --max-time 5 "http://$addr:8080/status")"
done
say "done in $((SECONDS - start)) s; HTML report: $(ls -t reports/*.html 2>/dev/null | head -1 | sed "s#^#$PWD/#")"
say "tear the lab down with: make lab-down"
exit $rc
