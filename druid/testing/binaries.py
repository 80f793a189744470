"""Where the binaries built by ``hack/build-binaries.sh`` live: the local control plane's, and those a real
node and its etcd pods need (kubelet, kube-proxy, CoreDNS, pause, etcd-wrapper, etcd, etcdctl, etcdbrctl)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO / "hack" / "versions.env"


def pinned_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def cache_dir() -> Path:
    return Path(os.environ.get("DRUID_CACHE") or Path.home() / ".cache" / "druid")


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path
    kwok_stages: Path
    # A real node (kubelet, kube-proxy, cluster DNS) and the etcd pods' images.
    kubelet: Path
    kube_proxy: Path
    coredns: Path
    pause: Path
    etcd_wrapper: Path
    etcd_pod: Path  # etcd for the pods: the version etcd-backup-restore links (ETCD_POD_VERSION)
    etcdctl: Path  # beside etcd_pod
    etcdbrctl: Path

    @classmethod
    def from_env(cls) -> Binaries:
        v = pinned_versions()
        bin_dir = cache_dir() / "bin"
        k8s = bin_dir / f"k8s-v{v['KUBE_VERSION']}"
        kwok = bin_dir / f"kwok-v{v['KWOK_VERSION']}"
        etcd_pod = bin_dir / f"etcd-v{v['ETCD_POD_VERSION']}"
        return cls(
            etcd=bin_dir / f"etcd-v{v['ETCD_VERSION']}" / "etcd",
            kube_apiserver=k8s / "kube-apiserver",
            kube_controller_manager=k8s / "kube-controller-manager",
            kube_scheduler=k8s / "kube-scheduler",
            kwok=kwok / "kwok",
            kwok_stages=kwok / "stage",
            kubelet=k8s / "kubelet",
            kube_proxy=k8s / "kube-proxy",
            coredns=bin_dir / f"coredns-v{v['COREDNS_VERSION']}" / "coredns",
            pause=bin_dir / f"pause-v{v['PAUSE_VERSION']}" / "pause",
            etcd_wrapper=bin_dir / f"etcd-wrapper-v{v['ETCD_WRAPPER_VERSION']}" / "etcd-wrapper",
            etcd_pod=etcd_pod / "etcd",
            etcdctl=etcd_pod / "etcdctl",
            etcdbrctl=bin_dir / f"etcdbrctl-v{v['ETCDBR_VERSION']}" / "etcdbrctl",
        )

    @property
    def node_binaries(self) -> dict[str, Path]:
        """What a real node with etcd pods needs beyond the control plane, by field name."""
        return {
            "kubelet": self.kubelet,
            "kube_proxy": self.kube_proxy,
            "coredns": self.coredns,
            "pause": self.pause,
            "etcd_wrapper": self.etcd_wrapper,
            "etcd_pod": self.etcd_pod,
            "etcdctl": self.etcdctl,
            "etcdbrctl": self.etcdbrctl,
        }

    def missing_node(self) -> list[str]:
        """``name (path)`` of each node binary that is not built."""
        return [f"{name} ({path})" for name, path in self.node_binaries.items() if not path.exists()]

    def check(self, full: bool, node: bool = False) -> None:
        """Raise FileNotFoundError naming what is missing: etcd and kube-apiserver always, the rest of the
        control plane when ``full``, the node's binaries when ``node``."""
        need = [self.etcd, self.kube_apiserver]
        if full:
            need += [self.kube_controller_manager, self.kube_scheduler, self.kwok, self.kwok_stages]
        missing = [str(p) for p in need if not p.exists()]
        if missing:
            raise FileNotFoundError(
                "control-plane binaries missing (run hack/build-binaries.sh): " + ", ".join(missing)
            )
        if node:
            self.check_node()

    def check_node(self) -> None:
        """Raise FileNotFoundError naming the node binaries that are not built."""
        if missing := self.missing_node():
            raise FileNotFoundError(
                "node binaries missing (run hack/build-binaries.sh, or e.g. "
                "hack/build-binaries.sh etcdpod etcdbrctl coredns pause etcd-wrapper): " + ", ".join(missing)
            )
