#!/usr/bin/env bash
# Build the local control-plane binaries from Go modules into a per-version cache outside the repo:
#   $DRUID_CACHE/bin/k8s-v<KUBE>/{k8sbin,kube-apiserver,kube-controller-manager,kube-scheduler}
#   $DRUID_CACHE/bin/etcd-v<ETCD>/etcd
#   $DRUID_CACHE/bin/kwok-v<KWOK>/kwok
# A pinned version that is already built (its --version matches) is not rebuilt.
# DRUID_CACHE defaults to ~/.cache/druid. Set DRUID_TIME_BUILDS=1 to run each build under /usr/bin/time -v.
set -euo pipefail
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

build_k8s() {
  local out="$cache/bin/k8s-v$KUBE_VERSION" minor=${KUBE_VERSION#1.}
  minor=${minor%%.*}
  if "$out/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes v$KUBE_VERSION"; then
    log "kube-apiserver/controller-manager/scheduler v$KUBE_VERSION: cached in $out"; return
  fi
  log "building kube-apiserver, kube-controller-manager, kube-scheduler v$KUBE_VERSION (cold: ~15-25 min on 2 cores)"
  mkdir -p "$out"
  local ldf="-s -w" kv
  for kv in "gitVersion=v$KUBE_VERSION" "gitMajor=1" "gitMinor=$minor" "gitTreeState=clean" \
            "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
    ldf="$ldf -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
  done
  (cd "$here/k8sbin" && timed go build -ldflags "$ldf" -o "$out/k8sbin.tmp" .)
  mv "$out/k8sbin.tmp" "$out/k8sbin"
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do ln -sf k8sbin "$out/$c"; done
  log "$("$out/kube-apiserver" --version) built"
}

build_etcd() {
  local out="$cache/bin/etcd-v$ETCD_VERSION"
  if "$out/etcd" --version 2>/dev/null | grep -q "etcd Version: $ETCD_VERSION$"; then
    log "etcd v$ETCD_VERSION: cached in $out"; return
  fi
  log "building etcd v$ETCD_VERSION"
  mkdir -p "$out"
  (cd "$here/etcdbin" && timed go build -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_VERSION" \
     -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$out/etcd.tmp" "$out/etcd"
  log "etcd $("$out/etcd" --version | head -1) built"
}

build_kwok() {
  local out="$cache/bin/kwok-v$KWOK_VERSION"
  if "$out/kwok" --version 2>/dev/null | grep -q "$KWOK_VERSION"; then
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

want=${*:-etcd kwok k8s}
for w in $want; do "build_$w"; done
log "binaries ready under $cache/bin"
