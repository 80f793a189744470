#!/usr/bin/env bash
# Install the Debian packages a real local node needs (containerd, runc, CNI plugins, busybox for the
# init-container image, iptables/nftables, socat), when they are missing and we are root. Idempotent:
# does nothing when everything is there. Without root it only says what is missing (the real-node tests
# and demo then say why they cannot run).
set -euo pipefail
pkgs=(containerd runc containernetworking-plugins busybox-static iptables nftables socat)
files=(/usr/bin/containerd /usr/sbin/runc /usr/lib/cni/bridge /bin/busybox /usr/sbin/iptables /usr/sbin/nft /usr/bin/socat)
missing=()
for i in "${!pkgs[@]}"; do
  [[ -e "${files[$i]}" ]] || missing+=("${pkgs[$i]}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "[install-node-deps] node packages present" >&2
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "[install-node-deps] cannot install ${missing[*]} (needs root and apt-get); the real node will be unavailable" >&2
  exit 0
fi
echo "[install-node-deps] installing ${missing[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
