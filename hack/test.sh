#!/usr/bin/env bash
# Run the whole test suite: lint, type check, unit tests and tests against a real local control plane.
# Installs what it needs first: a virtualenv with druid's packages, and the Go-built control-plane
# binaries (skipped when the pinned versions are already in the cache). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$repo"
ensure_venv
hack/build-binaries.sh
echo "[test] ruff" >&2
"$venv/bin/ruff" check druid test hack
echo "[test] mypy" >&2
"$venv/bin/mypy"
echo "[test] pytest" >&2
# Control planes that were already running (someone's demo) are not ours to account for.
before=$(pgrep -f 'druid-cp-' | sort || true)
rc=0
"$venv/bin/pytest" "$@" || rc=$?
if [[ $rc -eq 5 ]]; then
  echo "[test] FAILED: pytest collected no tests" >&2
  exit 1
fi
# The suite starts its own control planes; none may outlive it.
leftovers=$(comm -13 <(echo "$before") <(pgrep -f 'druid-cp-' | sort || true) | grep . || true)
if [[ -n "$leftovers" ]]; then
  echo "[test] FAILED: control-plane processes left running:" >&2
  ps -o pid=,args= -p "$(echo "$leftovers" | paste -sd,)" >&2 || true
  exit 1
fi
exit $rc
