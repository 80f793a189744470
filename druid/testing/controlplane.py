"""A real, local Kubernetes control plane on 127.0.0.1 for tests and demos.

Three modes:
- ``apiserver``: etcd + kube-apiserver. Enough for CRDs, server-side apply, watches, leases.
- ``full``: adds kube-controller-manager, kube-scheduler and kwok with one fake node and a default
  StorageClass whose PVCs kwok binds, so StatefulSet pods get Bound PVCs and become Running/Ready
  (simulated: no container runs).
- ``node``: kube-controller-manager, kube-scheduler and a real node instead of kwok (containerd, kubelet,
  kube-proxy, CoreDNS, a hostPath provisioner; see :mod:`druid.testing.node`): pods really run. Needs root;
  the API server then advertises the pod bridge's gateway address, where a forwarder lets pods reach it.

Binaries come from the per-version cache filled by ``hack/build-binaries.sh``. Everything binds to
127.0.0.1 on free ports; certificates, kubeconfig, data and logs live in one temporary directory that
``stop()`` removes. Child processes are started with a parent-death signal so they never outlive us.

Command line: ``python -m druid.testing.controlplane [--mode full|apiserver]`` runs until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from druid.testing.binaries import Binaries
from druid.testing.images import Image
from druid.testing.pki import CertificateAuthority, write_rsa_key
from druid.testing.process import Process

if TYPE_CHECKING:
    from druid.testing.node import Node

Mode = Literal["apiserver", "full", "node"]

NODE_NAME = "kwok-node-0"
STORAGE_CLASS = "kwok-volume"
LOOPBACK = "127.0.0.1"

# kwok stages fed to the kwok controller (v0.8 has no built-in stages): node lifecycle, pod lifecycle
# (ready, job completion, deletion without a kubelet) and the volume provisioner.
_KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
    "volume/fast/pvc-provision.yaml",
    "volume/fast/pv-bind.yaml",
    "volume/fast/pvc-delete.yaml",
    "volume/fast/pv-delete.yaml",
)


class ControlPlaneError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``check`` until it returns True; raise with ``what`` when ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as e:  # a failing probe is just "not yet"
            last = e
        time.sleep(interval)
    raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}" + (f": {last}" if last else ""))


@dataclass
class ControlPlane:
    mode: Mode = "full"
    binaries: Binaries = field(default_factory=Binaries.from_env)
    extra_args: dict[str, list[str]] = field(default_factory=dict)
    keep_dir: bool = False
    # node mode: the images the node's containerd gets (druid.testing.images.node_images)
    node_images: Mapping[str, Image] = field(default_factory=dict)

    workdir: Path = field(init=False)
    kubeconfig: Path = field(init=False)
    server: str = field(init=False)
    etcd_url: str = field(init=False)
    processes: dict[str, Process] = field(init=False, default_factory=dict)
    startup_seconds: dict[str, float] = field(init=False, default_factory=dict)
    _ssl: ssl.SSLContext = field(init=False)
    node: Node | None = field(init=False, default=None)  # the real node, in node mode
    host_differences: list[str] = field(init=False, default_factory=list)  # after stop(): what the node left

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> ControlPlane:
        self.binaries.check(full=self.mode != "apiserver", node=self.mode == "node")
        self.workdir = Path(tempfile.mkdtemp(prefix="druid-cp-"))
        try:
            t0 = time.monotonic()
            if self.mode == "node":
                from druid.testing.node import Node

                self.node = Node(self.binaries, self.workdir / "node")
                self.node.prepare_network()
            self._prepare()
            self._start("etcd")
            wait_until(self._etcd_healthy, 30, "etcd /health")
            self._start("kube-apiserver")
            wait_until(lambda: self._get("/readyz") == 200, 60, "kube-apiserver /readyz")
            self.startup_seconds["apiserver"] = time.monotonic() - t0
            if self.mode == "full":
                for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
                    self._start(name)
                self._bootstrap_cluster()
                self.startup_seconds["full"] = time.monotonic() - t0
            elif self.node is not None:
                for name in ("kube-controller-manager", "kube-scheduler"):
                    self._start(name)
                self.node.start(self, self.node_images)
                self._wait_default_service_account()
                self.startup_seconds["node"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.node is not None:
            self.host_differences = self.node.stop()
            self.node = None  # the host is put back once
        for name in reversed(list(self.processes)):
            self.processes[name].stop()
        if not self.keep_dir and getattr(self, "workdir", None) is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop_component(self, name: str) -> None:
        self.processes[name].stop()

    def start_component(self, name: str) -> None:
        self.processes[name].start()
        if name == "kube-apiserver":
            wait_until(lambda: self._get("/readyz") == 200, 60, "kube-apiserver /readyz")

    def restart_component(self, name: str) -> None:
        self.stop_component(name)
        self.start_component(name)

    def pids(self) -> list[int]:
        own = [p.pid for p in self.processes.values() if p.pid is not None]
        return own + (self.node.pids() if self.node is not None else [])

    @property
    def ca(self) -> CertificateAuthority:
        return self._ca

    def env(self) -> dict[str, str]:
        """Environment for a child process (e.g. druid) that should talk to this control plane."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    # ---------------------------------------------------------------- setup

    def _prepare(self) -> None:
        d = self.workdir
        pki = d / "pki"
        ca = CertificateAuthority(pki)
        self._ca = ca
        self._serving = ca.issue(
            "apiserver",
            "kube-apiserver",
            dns=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
            ips=(LOOPBACK, "10.96.0.1", *self._node_addresses()),
            server=True,
        )
        self._admin = ca.issue("admin", "admin", orgs=("system:masters",), client=True)
        self._sa_key = write_rsa_key(pki / "sa.key")

        etcd_client, etcd_peer = free_port(), free_port()
        self.etcd_url = f"http://{LOOPBACK}:{etcd_client}"
        api_port = free_port()
        self.server = f"https://{LOOPBACK}:{api_port}"
        self.kubeconfig = d / "kubeconfig"
        self.kubeconfig.write_text(self.kubeconfig_yaml(ca.pair.cert, self._admin.cert, self._admin.key))

        self._ssl = ssl.create_default_context(cafile=str(ca.pair.cert))
        self._ssl.load_cert_chain(str(self._admin.cert), str(self._admin.key))

        peer = f"http://{LOOPBACK}:{etcd_peer}"
        argv: dict[str, list[str]] = {
            "etcd": [
                str(self.binaries.etcd),
                "--name=druid-test",
                f"--data-dir={d / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=druid-test={peer}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=8589934592",
                "--log-level=warn",
            ],
            "kube-apiserver": [
                str(self.binaries.kube_apiserver),
                f"--etcd-servers={self.etcd_url}",
                f"--bind-address={LOOPBACK}",
                f"--advertise-address={self._advertise_address()}",
                f"--secure-port={api_port}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={self._serving.cert}",
                f"--tls-private-key-file={self._serving.key}",
                f"--client-ca-file={ca.pair.cert}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self._sa_key}",
                f"--service-account-signing-key-file={self._sa_key}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                # No request throttling: the tests and benchmarks measure druid, not API priority and fairness.
                "--enable-priority-and-fairness=false",
                "--max-requests-inflight=0",
                "--max-mutating-requests-inflight=0",
                "--profiling=false",
                "--v=0",
            ],
        }
        if self.mode == "node":
            argv["kube-apiserver"] += [
                # Never resolve node names through the machine's resolver.
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-client-certificate={self._admin.cert}",
                f"--kubelet-client-key={self._admin.key}",
                f"--kubelet-certificate-authority={ca.pair.cert}",
            ]
        if self.mode == "apiserver":
            # No kube-controller-manager, so no "default" ServiceAccount would ever appear.
            argv["kube-apiserver"].append("--disable-admission-plugins=ServiceAccount")
        else:
            kc = str(self.kubeconfig)
            common = [
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                f"--bind-address={LOOPBACK}",
                "--leader-elect=false",
                "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
                "--v=0",
            ]
            argv["kube-controller-manager"] = [
                str(self.binaries.kube_controller_manager),
                *common,
                f"--secure-port={free_port()}",
                f"--root-ca-file={ca.pair.cert}",
                f"--service-account-private-key-file={self._sa_key}",
                "--use-service-account-credentials=false",
                # Its default (/usr/libexec/kubernetes/...) would be created on the host.
                f"--flex-volume-plugin-dir={d / 'flexvolume'}",
            ]
            argv["kube-scheduler"] = [str(self.binaries.kube_scheduler), *common, f"--secure-port={free_port()}"]
            if self.mode == "full":
                stages = d / "kwok-stages.yaml"
                stages.write_text(
                    "\n---\n".join((self.binaries.kwok_stages / s).read_text().strip() + "\n" for s in _KWOK_STAGES)
                )
                argv["kwok"] = [
                    str(self.binaries.kwok),
                    f"--kubeconfig={kc}",
                    f"--config={stages}",
                    "--manage-all-nodes=false",
                    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                    "--cidr=10.244.0.0/16",
                    "--node-ip=10.0.0.1",
                    "--node-lease-duration-seconds=40",
                ]
        for name, args in argv.items():
            self.processes[name] = Process(name, [*args, *self.extra_args.get(name, [])], d / "logs" / f"{name}.log")

    def _start(self, name: str) -> None:
        self.processes[name].start()

    def _node_addresses(self) -> tuple[str, ...]:
        from druid.testing.node import GATEWAY

        return (GATEWAY,) if self.mode == "node" else ()

    def _advertise_address(self) -> str:
        return (self._node_addresses() or (LOOPBACK,))[0]

    def _wait_default_service_account(self) -> None:
        wait_until(
            lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default") == 200,
            60,
            "the default ServiceAccount (kube-controller-manager)",
        )

    def _bootstrap_cluster(self) -> None:
        """Create the fake node and the default StorageClass, then wait until pods can run."""
        storage_class = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kwok.x-k8s.io/volume",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }
        self.request("POST", "/apis/storage.k8s.io/v1/storageclasses", storage_class)
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": NODE_NAME,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
            # Room for the benchmarks' thousands of fake etcd pods.
            "status": {
                "allocatable": {"cpu": "10000", "memory": "100Ti", "pods": "100000"},
                "capacity": {"cpu": "10000", "memory": "100Ti", "pods": "100000"},
            },
        }
        self.request("POST", "/api/v1/nodes", node)
        wait_until(self._node_ready, 60, f"node {NODE_NAME} Ready (kwok)")
        self._wait_default_service_account()

    # ---------------------------------------------------------------- HTTP helpers (admin identity)

    def request(self, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, context=self._ssl, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")

    def _get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.server + path, context=self._ssl, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    def _etcd_healthy(self) -> bool:
        with urllib.request.urlopen(self.etcd_url + "/health", timeout=5) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")

    def _node_ready(self) -> bool:
        node = self.request("GET", f"/api/v1/nodes/{NODE_NAME}")
        conds = node.get("status", {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    def kubeconfig_yaml(self, ca: Path, cert: Path, key: Path, user: str = "admin") -> str:
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": {"server": self.server, "certificate-authority": str(ca)}}],
                "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
                "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
                "current-context": "local",
            },
            indent=2,
        )

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for another identity (client certificate CN=user, O=groups)."""
        pair = self._ca.issue(f"user-{user.replace(':', '_')}", user, orgs=groups, client=True)
        path = self.workdir / f"kubeconfig-{user.replace(':', '_')}"
        path.write_text(self.kubeconfig_yaml(self._ca.pair.cert, pair.cert, pair.key, user=user))
        return path

    def serving_cert_dir(self, name: str = "webhook") -> tuple[Path, bytes]:
        """A directory holding ``tls.crt``/``tls.key`` for a server on 127.0.0.1 (and ``localhost``),
        signed by this plane's CA, and that CA's PEM (the ``caBundle`` the API server should trust)."""
        pair = self._ca.issue(f"serving-{name}", name, dns=("localhost",), ips=(LOOPBACK,), server=True)
        directory = self.workdir / f"{name}-tls"
        directory.mkdir(exist_ok=True)
        shutil.copyfile(pair.cert, directory / "tls.crt")
        shutil.copyfile(pair.key, directory / "tls.key")
        return directory, self._ca.pair.cert.read_bytes()


@contextlib.contextmanager
def running(mode: Mode = "full", **kw: Any) -> Iterator[ControlPlane]:
    cp = ControlPlane(mode=mode, **kw)
    with cp:
        yield cp


def main(argv: list[str] | None = None) -> int:
    """Run a control plane in the foreground until SIGINT/SIGTERM, then tear it down."""
    import argparse
    import signal
    import sys

    p = argparse.ArgumentParser(prog="python -m druid.testing.controlplane", description=main.__doc__)
    p.add_argument("--mode", choices=["full", "apiserver"], default="full")
    p.add_argument("--kubeconfig-out", help="also copy the admin kubeconfig to this path")
    args = p.parse_args(argv)

    stop = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop
        if stop:
            return
        stop = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cp = ControlPlane(mode=args.mode)
    try:
        cp.start()
        if args.kubeconfig_out:
            shutil.copyfile(cp.kubeconfig, args.kubeconfig_out)
        timings = ", ".join(f"{k} ready in {v:.1f}s" for k, v in cp.startup_seconds.items())
        print(f"control plane up ({args.mode}): {timings}", flush=True)
        print(f"KUBECONFIG={cp.kubeconfig}", flush=True)
        print(f"workdir={cp.workdir}", flush=True)
        while True:
            for proc in cp.processes.values():
                if not proc.alive():
                    print(f"{proc.name} exited; last log lines:\n{proc.tail()}", file=sys.stderr, flush=True)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cp.stop()
        print("control plane stopped", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
