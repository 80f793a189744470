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

# --- etcd for the etcd pods (the version etcd-backup-restore links) ---
cd "$here/etcdpodbin"
rm -f go.mod go.sum
go mod init druid.local/etcdpodbin >/dev/null 2>&1
go get -tool "go.etcd.io/etcd/server/v3@v$ETCD_POD_VERSION"
go mod tidy
echo "etcdpodbin: go.mod written for etcd v$ETCD_POD_VERSION"

# --- etcdctl (its own module: it would raise the pods' etcd server dependencies to its version) ---
cd "$here/etcdctlbin"
rm -f go.mod go.sum
go mod init druid.local/etcdctlbin >/dev/null 2>&1
go get -tool "go.etcd.io/etcd/etcdctl/v3@v$ETCDCTL_VERSION"
# -e: tidy also walks the tests of old dependencies, which reach an ambiguous import
# (cloud.google.com/go/compute/metadata in two modules); the build graph itself is complete.
go mod tidy -e 2>/dev/null
GOFLAGS=-mod=readonly go list -deps go.etcd.io/etcd/etcdctl/v3 >/dev/null
echo "etcdctlbin: go.mod written for etcdctl v$ETCDCTL_VERSION"

# --- etcd-backup-restore: repeat the module's own (non-local) replace directives ---
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/gardener/*"
cd "$here/etcdbrbin"
rm -f go.mod go.sum
go mod init druid.local/etcdbrbin >/dev/null 2>&1
brgomod=$(go mod download -json "github.com/gardener/etcd-backup-restore@v$ETCDBR_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
go mod edit -json "$brgomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    old, new = r["Old"], r["New"]
    if new.get("Version"):  # module replacements only, not local directories
        print(old["Path"] + ("@" + old["Version"] if old.get("Version") else "") + "=" + new["Path"] + "@" + new["Version"])
' | while read -r rep; do go mod edit -replace="$rep"; done
go get -tool "github.com/gardener/etcd-backup-restore@v$ETCDBR_VERSION"
go mod tidy
echo "etcdbrbin: go.mod written for etcd-backup-restore v$ETCDBR_VERSION ($(grep -c '=>' go.mod) replace)"

# --- CoreDNS with the plugins of hack/corednsbin/main.go ---
cd "$here/corednsbin"
rm -f go.mod go.sum
go mod init druid.local/corednsbin >/dev/null 2>&1
go get "github.com/coredns/coredns@v$COREDNS_VERSION"
go mod tidy
echo "corednsbin: go.mod written for CoreDNS v$COREDNS_VERSION"
