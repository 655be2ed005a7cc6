#!/usr/bin/env bash
# make test: every suite in one run. The lab is started here and always stopped at the end,
# pass or fail. Ends with one summary line: "suites: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.venv/bin:$PATH GOTOOLCHAIN=local ANSIBLE_CONFIG=$PWD/ansible.cfg

passed=0; failed=0; failures=()
suite() {
  local name=$1 start=$SECONDS; shift
  echo "=== suite $name: $*"
  if "$@"; then
    passed=$((passed + 1)); echo "=== suite $name: ok ($((SECONDS - start))s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "=== suite $name: FAILED ($((SECONDS - start))s)"
  fi
}

# molecule (through ansible-compat) installs this collection into ~/.ansible/collections, where
# it shadows the checkout for ansible-lint and ansible-playbook in later runs: drop that copy
# before and after, so every suite sees the working tree.
stale_copy=${HOME:-/root}/.ansible/collections/ansible_collections/goship/deploy
rm -rf "$stale_copy"
trap 'rm -rf "$stale_copy"; bash lab/down.sh' EXIT

# System packages the suites use (Docker, PostgreSQL, HAProxy, lintian, ...), before any suite.
bash lab/deps.sh || { echo "suites: 0 passed, 1 failed"; exit 1; }

suite go bash -c 'cd examples/hello-svc && go vet ./... && go test -count=1 ./...'
suite unit python -m pytest tests/unit
suite lint ansible-lint --nocolor -q
suite sanity bash tests/sanity/run.sh
lab_start=$SECONDS
if bash lab/up.sh; then
  echo "=== lab up in $((SECONDS - lab_start))s"
  suite integration python -m pytest tests/integration
  suite molecule molecule test --all
else
  failed=$((failed + 1)); failures+=(lab-up)
fi

((failed == 0)) || echo "failed suites: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
((failed == 0))
