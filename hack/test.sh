#!/usr/bin/env bash
# Run the whole test suite: lint, type check, unit tests and tests against a real local control plane.
# Installs what it needs first: a virtualenv with druid's packages, and the Go-built control-plane
# binaries (skipped when the pinned versions are already in the cache). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$repo"
ensure_venv
hack/install-node-deps.sh
hack/build-binaries.sh
echo "[test] go vet + go test: etcd-wrapper stand-in" >&2
(cd hack/etcd-wrapper && GOFLAGS=-mod=readonly go vet ./... && GOFLAGS=-mod=readonly go test -count=1 ./... >&2)
echo "[test] ruff" >&2
"$venv/bin/ruff" check druid test hack
echo "[test] mypy" >&2
"$venv/bin/mypy"
echo "[test] pytest" >&2
# Every process the suite starts inherits this marker, so only the suite's own processes are accounted for
# (someone else's demo or control plane on the same machine is not ours).
export DRUID_TEST_RUN="$$-$RANDOM$RANDOM"
# (The look-up runs without the marker, so it never finds itself.)
ours() {
  env -u DRUID_TEST_RUN marker="DRUID_TEST_RUN=$DRUID_TEST_RUN" sh -c \
    'grep -lsaxzF "$marker" /proc/[0-9]*/environ | cut -d/ -f3 | paste -sd, -' || true
}
rc=0
"$venv/bin/pytest" "$@" || rc=$?
if [[ $rc -eq 5 ]]; then
  echo "[test] FAILED: pytest collected no tests" >&2
  exit 1
fi
# The suite starts its own control planes, nodes and druids; none may outlive it.
leftovers=$(ours)
if [[ -n "$leftovers" ]]; then
  echo "[test] FAILED: processes the suite started are still running:" >&2
  ps -o pid=,args= -p "$leftovers" >&2 || true
  exit 1
fi
exit $rc
