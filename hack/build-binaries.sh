#!/usr/bin/env bash
# Build the local control-plane binaries from Go modules into a per-version cache outside the repo:
#   $DRUID_CACHE/bin/k8s-v<KUBE>/{k8sbin,kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy}
#   $DRUID_CACHE/bin/etcd-v<ETCD>/etcd
#   $DRUID_CACHE/bin/kwok-v<KWOK>/kwok
# and the pieces of the real etcd pods on a local node:
#   $DRUID_CACHE/bin/etcd-v<ETCD_POD>/{etcd,etcdctl}      etcd for the pods (+ an etcdctl to read and write keys)
#   $DRUID_CACHE/bin/etcdbrctl-v<ETCDBR>/etcdbrctl       etcd-backup-restore
#   $DRUID_CACHE/bin/coredns-v<COREDNS>/coredns          cluster DNS with only the plugins the node needs
#   $DRUID_CACHE/bin/pause-v<PAUSE>/pause                pod sandbox process (hack/pause)
#   $DRUID_CACHE/bin/etcd-wrapper-v<WRAPPER>/etcd-wrapper  stand-in for gardener/etcd-wrapper (hack/etcd-wrapper)
# Usage: build-binaries.sh [k8s|etcd|kwok|etcdpod|etcdbrctl|coredns|pause|etcd-wrapper ...] (no arguments: all).
# A pinned version that is already built (its --version matches) is not rebuilt.
# DRUID_CACHE defaults to ~/.cache/druid. Set DRUID_TIME_BUILDS=1 to run each build under /usr/bin/time -v.
set -euo pipefail
# "Cached?" checks read a binary's whole --version output before grep looks at it (a here-string, no pipe):
# with pipefail, `cmd | grep -q` fails when grep stops early and cmd then dies of SIGPIPE, which rebuilt
# etcdbrctl (it prints several lines) at random.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${DRUID_CACHE:-$HOME/.cache/druid}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly -buildvcs=false"
log() { printf '[build-binaries %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
timed() {
  if [[ "${DRUID_TIME_BUILDS:-}" == 1 && -x /usr/bin/time ]]; then
    /usr/bin/time -v "$@" 2> >(grep -E 'Elapsed|Maximum resident' >&2)
  else
    "$@"
  fi
}

# go_build MODULE_DIR OUTPUT LDFLAGS [PACKAGE]: build PACKAGE (default: the module's main) of the wrapper module
# hack/MODULE_DIR into OUTPUT, atomically (a half-written binary never counts as cached).
go_build() {
  local dir=$1 output=$2 ldflags=$3 pkg=${4:-.}
  mkdir -p "$(dirname "$output")"
  (cd "$here/$dir" && timed go build -ldflags "$ldflags" -o "$output.tmp" "$pkg")
  mv "$output.tmp" "$output"
}

build_k8s() {
  local out="$cache/bin/k8s-v$KUBE_VERSION" minor=${KUBE_VERSION#1.}
  minor=${minor%%.*}
  if grep -qx "Kubernetes v$KUBE_VERSION" <<<"$("$out/kube-apiserver" --version 2>/dev/null)" &&
     grep -qx "Kubernetes v$KUBE_VERSION" <<<"$("$out/kubelet" --version 2>/dev/null)"; then
    log "kube-apiserver/controller-manager/scheduler/kubelet/kube-proxy v$KUBE_VERSION: cached in $out"; return
  fi
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy v$KUBE_VERSION (cold: ~4-5 min on 2 cores)"
  mkdir -p "$out"
  local ldf="-s -w" kv
  for kv in "gitVersion=v$KUBE_VERSION" "gitMajor=1" "gitMinor=$minor" "gitTreeState=clean" \
            "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
    ldf="$ldf -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
  done
  go_build k8sbin "$out/k8sbin" "$ldf"
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do ln -sf k8sbin "$out/$c"; done
  log "$("$out/kube-apiserver" --version) built"
}

build_etcd() {
  local out="$cache/bin/etcd-v$ETCD_VERSION"
  if grep -q "etcd Version: $ETCD_VERSION$" <<<"$("$out/etcd" --version 2>/dev/null)"; then
    log "etcd v$ETCD_VERSION: cached in $out"; return
  fi
  log "building etcd v$ETCD_VERSION"
  go_build etcdbin "$out/etcd" "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_VERSION" go.etcd.io/etcd/server/v3
  log "etcd $("$out/etcd" --version | head -1) built"
}

build_kwok() {
  local out="$cache/bin/kwok-v$KWOK_VERSION"
  if grep -q "$KWOK_VERSION" <<<"$("$out/kwok" --version 2>/dev/null)"; then
    log "kwok v$KWOK_VERSION: cached in $out"; return
  fi
  log "building kwok v$KWOK_VERSION"
  mkdir -p "$out"
  GOBIN="$out" GOFLAGS="-trimpath -buildvcs=false" timed go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  # The kwok module also carries the stage definitions we feed kwok; keep a copy beside the binary.
  local dir
  dir=$(cd "$here/etcdbin" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf "$out/stage"; cp -r "$dir/kustomize/stage" "$out/stage"; chmod -R u+w "$out/stage"
  log "kwok $("$out/kwok" --version 2>&1 | head -1) built"
}

# A hash of a module's sources: the in-repo programs report "<pinned version>+<hash>", so editing them rebuilds them.
src_hash() {
  (cd "$1" && find . -type f \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum \) -print0 \
     | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
}

# etcd for the etcd pods: the version etcd-backup-restore links. etcdctl comes from its own module
# (hack/etcdctlbin): its go.mod would otherwise raise the server's etcd dependencies to its version.
build_etcdpod() {
  local out="$cache/bin/etcd-v$ETCD_POD_VERSION"
  if grep -q "etcd Version: $ETCD_POD_VERSION$" <<<"$("$out/etcd" --version 2>/dev/null)"; then
    log "etcd v$ETCD_POD_VERSION (pods): cached in $out"
  else
    log "building etcd v$ETCD_POD_VERSION for the etcd pods (cold: ~1 min on 2 cores)"
    go_build etcdpodbin "$out/etcd" "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_POD_VERSION" go.etcd.io/etcd/server/v3
    log "etcd $("$out/etcd" --version | head -1) built"
  fi
  if grep -q "etcdctl version: $ETCDCTL_VERSION$" <<<"$("$out/etcdctl" version 2>/dev/null)"; then
    log "etcdctl v$ETCDCTL_VERSION: cached in $out"
  else
    log "building etcdctl v$ETCDCTL_VERSION (cold: ~25 s after etcd, ~1 min alone)"
    go_build etcdctlbin "$out/etcdctl" "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCDCTL_VERSION" go.etcd.io/etcd/etcdctl/v3
    log "$("$out/etcdctl" version | head -1) built"
  fi
}

# etcd-backup-restore's go.mod has a replace (otelgrpc), which `go install` refuses: build it from the
# wrapper module hack/etcdbrbin, which repeats that replace. The checksum database doesn't know gardener modules.
build_etcdbrctl() {
  local out="$cache/bin/etcdbrctl-v$ETCDBR_VERSION" pkg=github.com/gardener/etcd-backup-restore
  # It logs the version through logrus: msg="etcd-backup-restore Version: v…" (plain "… v…" on a terminal).
  if grep -qE "etcd-backup-restore Version: v${ETCDBR_VERSION//./\\.}(\"|$)" <<<"$("$out/etcdbrctl" --version 2>&1)"; then
    log "etcdbrctl v$ETCDBR_VERSION: cached in $out"; return
  fi
  log "building etcdbrctl (etcd-backup-restore) v$ETCDBR_VERSION (cold: ~3 min on 2 cores, ~1 GB RSS)"
  GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/gardener/*" go_build etcdbrbin "$out/etcdbrctl" \
    "-s -w -X $pkg/pkg/version.Version=v$ETCDBR_VERSION -X $pkg/pkg/version.GitSHA=v$ETCDBR_VERSION" "$pkg"
  log "etcdbrctl v$ETCDBR_VERSION built"
}

# CoreDNS with the plugins the local node's Corefile uses (hack/corednsbin/main.go). Its "commit" is the
# pinned version plus a hash of hack/corednsbin, so changing the plugin list rebuilds it.
build_coredns() {
  local out="$cache/bin/coredns-v$COREDNS_VERSION" commit
  commit="v$COREDNS_VERSION+$(src_hash "$here/corednsbin")"
  if grep -qx "CoreDNS-$COREDNS_VERSION" <<<"$("$out/coredns" -version 2>/dev/null)" &&
     grep -q ", $commit$" <<<"$("$out/coredns" -version 2>/dev/null)"; then
    log "coredns v$COREDNS_VERSION ($commit): cached in $out"; return
  fi
  log "building coredns v$COREDNS_VERSION (cold: ~2 min on 2 cores)"
  go_build corednsbin "$out/coredns" "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$commit"
  log "$("$out/coredns" -version | head -1) ($commit) built"
}

build_pause() {
  local out="$cache/bin/pause-v$PAUSE_VERSION" ver
  ver="$PAUSE_VERSION+$(src_hash "$here/pause")"
  if grep -qxF "pause $ver" <<<"$("$out/pause" --version 2>/dev/null)"; then
    log "pause $ver: cached in $out"; return
  fi
  log "building pause $ver (cold: ~10 s)"
  go_build pause "$out/pause" "-s -w -X main.version=$ver"
  log "$("$out/pause" --version) built"
}

build_etcd_wrapper() {
  local out="$cache/bin/etcd-wrapper-v$ETCD_WRAPPER_VERSION" ver
  ver="$ETCD_WRAPPER_VERSION+$(src_hash "$here/etcd-wrapper")"
  if grep -qxF "etcd-wrapper $ver" <<<"$("$out/etcd-wrapper" --version 2>/dev/null)"; then
    log "etcd-wrapper $ver: cached in $out"; return
  fi
  log "building etcd-wrapper $ver (standard library only; cold: ~20 s)"
  go_build etcd-wrapper "$out/etcd-wrapper" "-s -w -X main.version=$ver"
  log "$("$out/etcd-wrapper" --version) built"
}

want=${*:-etcd kwok k8s etcdpod etcdbrctl coredns pause etcd-wrapper}
for w in $want; do
  if ! declare -F "build_${w//-/_}" >/dev/null; then
    log "unknown component '$w' (known: k8s etcd kwok etcdpod etcdbrctl coredns pause etcd-wrapper)"; exit 2
  fi
done
for w in $want; do "build_${w//-/_}"; done
log "binaries ready under $cache/bin"
