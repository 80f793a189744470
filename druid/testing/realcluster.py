"""A local cluster with a real node and ``druid run`` on it: what the demo and the end-to-end tier share.

:class:`RealCluster` starts a :class:`ControlPlane` in ``node`` mode with the locally built images imported
into the node's containerd (:mod:`druid.testing.images`), installs druid's CRDs, and runs unmodified
``druid run`` as a child process with an OperatorConfiguration file (:func:`operator_config`) and an
``IMAGEVECTOR_OVERWRITE`` file that points the etcd-wrapper, etcd-backup-restore and alpine entries at those
images. Nothing is pulled. ``stop()`` stops druid, then the node and the control plane (which put the host
back); ``host_differences`` then says what still differs from before (empty when clean).

druid runs with the node's CoreDNS as its resolver (:func:`cluster_dns`), as it would in a pod.

Local backup buckets live under the cluster's working directory: :meth:`RealCluster.bucket` makes a fresh one
and returns the Secret (``hostPath`` key) an Etcd's Local store refers to.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from druid.testing.binaries import Binaries
from druid.testing.controlplane import LOOPBACK, ControlPlane, free_port, wait_until
from druid.testing.images import NONROOT, NodeBinaries, image_vector_overwrite, node_images
from druid.testing.node import CLUSTER_DOMAIN, GATEWAY
from druid.testing.process import Process


def operator_config(
    *,
    status_sync_period: str = "2s",
    unknown_threshold: str = "15s",
    not_ready_threshold: str = "15s",
    events_threshold: int = 1_000_000,
    metrics_port: int = 0,
    feature_gates: dict[str, bool] | None = None,
) -> dict[str, Any]:
    """druid's configuration for a real cluster: every controller on, short status periods and thresholds
    (backup-restore renews member leases every 10 s, so the unknown threshold stays above that)."""
    out: dict[str, Any] = {
        "apiVersion": "config.druid.gardener.cloud/v1alpha1",
        "kind": "OperatorConfiguration",
        "leaderElection": {"enabled": False},
        "server": {"metrics": {"bindAddress": LOOPBACK, "port": metrics_port}},
        "controllers": {
            "etcd": {
                "concurrentSyncs": 3,
                "enableEtcdSpecAutoReconcile": True,
                "etcdStatusSyncPeriod": status_sync_period,
                "etcdMember": {"unknownThreshold": unknown_threshold, "notReadyThreshold": not_ready_threshold},
            },
            "compaction": {"enabled": True, "eventsThreshold": events_threshold, "activeDeadlineDuration": "3m"},
            "etcdCopyBackupsTask": {"enabled": True},
        },
        "logging": {"logLevel": "info", "logFormat": "json"},
    }
    if feature_gates:
        out["featureGates"] = dict(feature_gates)
    return out


def cluster_dns(resolv_conf: Path, argv: list[str]) -> list[str]:
    """``argv`` run in a private mount namespace whose ``/etc/resolv.conf`` names the node's CoreDNS: druid on
    the host dials ``<etcd>-client.<ns>.svc.cluster.local`` (backup-restore's HTTP API) as it would in a pod,
    and never asks the machine's resolver."""
    resolv_conf.write_text(f"nameserver {GATEWAY}\nsearch svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\noptions ndots:5\n")
    script = 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", str(resolv_conf), *argv]


def node_binaries(b: Binaries) -> NodeBinaries:
    return NodeBinaries(
        pause=b.pause, etcd_wrapper=b.etcd_wrapper, etcd=b.etcd_pod, etcdctl=b.etcdctl, etcdbrctl=b.etcdbrctl
    )


@dataclass
class RealCluster:
    config: dict[str, Any] = field(default_factory=operator_config)
    binaries: Binaries = field(default_factory=Binaries.from_env)

    cp: ControlPlane = field(init=False)
    druid: Process | None = field(init=False, default=None)
    probe_port: int = field(init=False, default=0)
    host_differences: list[str] = field(init=False, default_factory=list)
    timings: dict[str, float] = field(init=False, default_factory=dict)

    def start(self) -> RealCluster:
        from druid.testing.crds import install_crds_sync

        t0 = time.monotonic()
        images = node_images(node_binaries(self.binaries))
        keep = os.environ.get("DRUID_KEEP_WORKDIR") == "1"  # keep logs and data for a post-mortem
        self.cp = ControlPlane(mode="node", binaries=self.binaries, node_images=images, keep_dir=keep)
        try:
            self.cp.start()
            self.timings["cluster"] = time.monotonic() - t0
            install_crds_sync(self.cp)
            self.start_druid()
            self.timings["druid"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def workdir(self) -> Path:
        return self.cp.workdir

    @property
    def kubeconfig(self) -> Path:
        return self.cp.kubeconfig

    @property
    def images(self) -> dict[str, str]:
        node = self.cp.node
        return dict(node.images) if node is not None else {}

    def start_druid(self) -> None:
        """``druid run`` with the cluster's configuration and image vector, as a child process."""
        d = self.workdir
        (d / "druid-config.yaml").write_text(json.dumps(self.config, indent=2))
        (d / "imagevector-overwrite.yaml").write_text(image_vector_overwrite(self.images))
        self.probe_port = free_port()
        argv = [sys.executable, "-m", "druid.cli.main", "run", f"--config={d / 'druid-config.yaml'}"]
        argv += [f"--kubeconfig={self.kubeconfig}", f"--probe-bind-address={LOOPBACK}"]
        argv += [f"--probe-port={self.probe_port}"]
        env = {"IMAGEVECTOR_OVERWRITE": str(d / "imagevector-overwrite.yaml"), "KUBECONFIG": str(self.kubeconfig)}
        self.druid = Process("druid", cluster_dns(d / "druid-resolv.conf", argv), d / "logs" / "druid.log", env=env)
        self.druid.start()
        wait_until(self._druid_ready, 60, "druid /readyz")

    def restart_druid(self, config: dict[str, Any]) -> None:
        """Stop ``druid run`` and start it again with ``config`` (e.g. other feature gates)."""
        if self.druid is not None:
            self.druid.stop(timeout=30)
            self.druid = None
        self.config = config
        self.start_druid()

    def _druid_ready(self) -> bool:
        if self.druid is not None and not self.druid.alive():
            raise RuntimeError(f"druid exited:\n{self.druid.tail()}")
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.probe_port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)

    def stop(self) -> None:
        if self.druid is not None:
            self.druid.stop(timeout=30)
            self.druid = None
        cp = getattr(self, "cp", None)
        if cp is not None:
            cp.stop()
            self.host_differences = list(cp.host_differences)

    def __enter__(self) -> RealCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- backup buckets

    def bucket(self, namespace: str, name: str | None = None) -> tuple[str, dict[str, Any]]:
        """A fresh, empty Local bucket: ``(container, secret)``, the Secret (in ``namespace``) naming the host
        directory that holds the bucket (``<workdir>/buckets/<unique>/<container>``)."""
        container = name or f"bucket-{uuid.uuid4().hex[:8]}"
        root = self.workdir / "buckets" / uuid.uuid4().hex[:8]
        (root / container).mkdir(parents=True)
        for path in (root, root / container):
            os.chown(path, NONROOT, NONROOT)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{container}-store", "namespace": namespace},
            "data": {"hostPath": base64.b64encode(str(root).encode()).decode()},
        }
        return container, secret

    def bucket_path(self, secret: dict[str, Any], container: str) -> Path:
        return Path(base64.b64decode(secret["data"]["hostPath"]).decode()) / container

    def local_store(self, namespace: str, prefix: str) -> LocalStore:
        """A fresh Local bucket as an Etcd's ``backup.store`` (create ``secret`` before the Etcd)."""
        container, secret = self.bucket(namespace)
        spec = {
            "provider": "Local",
            "container": container,
            "prefix": prefix,
            "secretRef": {"name": secret["metadata"]["name"]},
        }
        return LocalStore(spec, secret, self.bucket_path(secret, container))


@dataclass(frozen=True)
class LocalStore:
    spec: dict[str, Any]  # the StoreSpec (wire form)
    secret: dict[str, Any]  # the Secret naming the host directory of the bucket
    path: Path  # the bucket on the host

    def snapshots(self, kind: str) -> list[Path]:
        """Snapshot files of ``kind`` ("Full" or "Incr") anywhere under the bucket."""
        return sorted(p for p in self.path.rglob(f"{kind}-*") if p.is_file())
