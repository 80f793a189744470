#!/usr/bin/env bash
# Regenerate the wrapper Go modules under hack/ for the versions pinned in hack/versions.env.
# Run this only when changing a pinned version; commit the resulting go.mod and go.sum files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

# --- kube-apiserver / kube-controller-manager / kube-scheduler (multi-call binary) ---
cd "$here/k8sbin"
rm -f go.mod go.sum
go mod init druid.local/k8sbin >/dev/null 2>&1
kgomod=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
# The staging modules are exactly k8s.io/kubernetes' replace entries that point into ./staging/.
go mod edit -json "$kgomod" | python3 -c '
import json, sys
mod = json.load(sys.stdin)
print(mod["Go"])
for g in mod.get("GoDebug") or []:
    print("godebug", g["Key"], g["Value"])
for r in mod.get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print("staging", r["Old"]["Path"])
' > /tmp/k8sbin-gomod.$$
read -r gover < /tmp/k8sbin-gomod.$$
go mod edit -go="$gover" -require="k8s.io/kubernetes@v$KUBE_VERSION"
while read -r kind a b; do
  case "$kind" in
    godebug) go mod edit -godebug="$a=$b" ;;
    staging) go mod edit -replace="$a=$a@v0.${KUBE_VERSION#1.}" ;;
  esac
done < <(tail -n +2 /tmp/k8sbin-gomod.$$)
rm -f /tmp/k8sbin-gomod.$$
go mod tidy
echo "k8sbin: go.mod written for Kubernetes v$KUBE_VERSION ($(grep -c '=> k8s.io' go.mod) staging replaces)"

# --- etcd ---
cd "$here/etcdbin"
rm -f go.mod go.sum
go mod init druid.local/etcdbin >/dev/null 2>&1
go get -tool "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
go mod tidy
echo "etcdbin: go.mod written for etcd v$ETCD_VERSION"
