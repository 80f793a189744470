"""Where the control-plane binaries built by ``hack/build-binaries.sh`` live."""

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

    @classmethod
    def from_env(cls) -> Binaries:
        v = pinned_versions()
        bin_dir = cache_dir() / "bin"
        k8s = bin_dir / f"k8s-v{v['KUBE_VERSION']}"
        kwok = bin_dir / f"kwok-v{v['KWOK_VERSION']}"
        return cls(
            etcd=bin_dir / f"etcd-v{v['ETCD_VERSION']}" / "etcd",
            kube_apiserver=k8s / "kube-apiserver",
            kube_controller_manager=k8s / "kube-controller-manager",
            kube_scheduler=k8s / "kube-scheduler",
            kwok=kwok / "kwok",
            kwok_stages=kwok / "stage",
        )

    def check(self, full: bool) -> None:
        need = [self.etcd, self.kube_apiserver]
        if full:
            need += [self.kube_controller_manager, self.kube_scheduler, self.kwok, self.kwok_stages]
        missing = [str(p) for p in need if not p.exists()]
        if missing:
            raise FileNotFoundError(
                "control-plane binaries missing (run hack/build-binaries.sh): " + ", ".join(missing)
            )
