#!/usr/bin/env bash
# The main job on a fresh machine: install the node's Debian packages and build the binaries (both cached),
# bring up a local Kubernetes control plane on 127.0.0.1 with a real node (containerd, kubelet, kube-proxy,
# CoreDNS), install druid's CRDs, run druid and apply a sample Etcd: real etcd pods with the real
# backup-restore sidecar. Runs until Ctrl-C, then tears everything down and puts the host back. Arguments go
# to `python -m druid.testing.demo` (e.g. --sample manifests/samples/etcd-3-tls.yaml, --kubeconfig-out F,
# --simulated for kwok pods where the machine cannot run a node).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$repo"
ensure_venv
hack/install-node-deps.sh
hack/build-binaries.sh
exec "$venv/bin/python" -m druid.testing.demo "$@"
