#!/usr/bin/env bash
# make test: every suite in one run. The lab is started here and always stopped at the end,
# pass or fail. Ends with one summary line: "suites: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.venv/bin:$PATH GOTOOLCHAIN=local ANSIBLE_CONFIG=$PWD/ansible.cfg

passed=0; failed=0; failures=(); timings=()
logs=$PWD/build/test-logs
mkdir -p "$logs"
declare -A bg_pid=() bg_start=()

suite() {
  local name=$1 start=$SECONDS; shift
  echo "=== suite $name: $*"
  if "$@"; then
    passed=$((passed + 1)); echo "=== suite $name: ok ($((SECONDS - start))s)"
    timings+=("$(printf '%-20s %6ss  ok' "$name" $((SECONDS - start)))")
  else
    failed=$((failed + 1)); failures+=("$name"); echo "=== suite $name: FAILED ($((SECONDS - start))s)"
    timings+=("$(printf '%-20s %6ss  FAILED' "$name" $((SECONDS - start)))")
  fi
}

# Suites that wait on I/O more than they use the CPU run side by side: suite_bg starts one with
# its output in build/test-logs/<name>.log, suite_wait prints that log and counts the result.
suite_bg() {
  local name=$1; shift
  echo "=== suite $name (in the background): $*"
  bg_start[$name]=$SECONDS
  "$@" >"$logs/$name.log" 2>&1 &
  bg_pid[$name]=$!
}
suite_wait() {
  local name=$1 rc=0
  wait "${bg_pid[$name]}" || rc=$?
  echo "=== suite $name: output"
  cat "$logs/$name.log"
  local took=$((SECONDS - ${bg_start[$name]}))
  if ((rc == 0)); then
    passed=$((passed + 1)); echo "=== suite $name: ok (${took}s)"
    timings+=("$(printf '%-20s %6ss  ok (beside others)' "$name" "$took")")
  else
    failed=$((failed + 1)); failures+=("$name"); echo "=== suite $name: FAILED (${took}s)"
    timings+=("$(printf '%-20s %6ss  FAILED (beside others)' "$name" "$took")")
  fi
  return "$rc"
}

# molecule (through ansible-compat) installs this collection into ~/.ansible/collections, where
# it shadows the checkout for ansible-lint and ansible-playbook in later runs: drop that copy
# before and after, so every suite sees the working tree.
stale_copy=${HOME:-/root}/.ansible/collections/ansible_collections/goship/deploy
rm -rf "$stale_copy"
trap 'rm -rf "$stale_copy"; bash lab/down.sh' EXIT

# System packages the suites use (Docker, PostgreSQL, HAProxy, lintian, ...), before any suite.
bash lab/deps.sh || { echo "suites: 0 passed, 1 failed"; exit 1; }

# The lab comes up while the short static suites run; integration and molecule need it.
suite_bg lab bash lab/up.sh
suite go bash -c 'for d in examples/hello-svc examples/quote-api; do (cd $d && go vet ./... && go test -count=1 ./...) || exit 1; done'
suite lint ansible-lint --nocolor -q
suite sanity bash tests/sanity/run.sh
if suite_wait lab; then
  # Two lanes: the integration tests beside the scenarios that need no lab services; then the
  # two scenarios on the lab's network side by side and the fault suite, with the unit suite
  # (which needs no lab and keeps the CPU busy while those wait on their hosts).
  suite_bg molecule-host molecule test -s default -s systemd_unit
  suite integration python -m pytest tests/integration
  suite_wait molecule-host
  suite_bg unit python -m pytest tests/unit
  suite_bg molecule-consul molecule test -s consul_agent
  suite molecule-go-service molecule test -s go_service
  # The fault suite uses the app hosts integration used, and adds migrations the go_service
  # scenario must not see: after both, beside the tail of the unit suite.
  suite faults python -m pytest tests/faults
  suite_wait molecule-consul
  suite_wait unit
else
  suite unit python -m pytest tests/unit
fi

echo "=== per-suite times (wall; suites marked 'beside others' ran in parallel with the next ones)"
printf '%s\n' "${timings[@]}"
echo "total: ${SECONDS}s"
((failed == 0)) || echo "failed suites: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
((failed == 0))
