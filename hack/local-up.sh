#!/usr/bin/env bash
# The main job on a fresh machine: build the control-plane binaries (cached), bring up a local
# Kubernetes control plane on 127.0.0.1, install druid's CRDs, run druid and apply a sample Etcd.
# Runs until Ctrl-C, then tears everything down. Arguments go to `python -m druid.testing.demo`
# (e.g. --sample manifests/samples/etcd-single.yaml, --kubeconfig-out /tmp/kubeconfig).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$repo"
ensure_venv
hack/build-binaries.sh
exec "$venv/bin/python" -m druid.testing.demo "$@"
