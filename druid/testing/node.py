"""A real kubelet node on the local control plane: containerd, kubelet, kube-proxy, CoreDNS, volumes.

Contract:
- :meth:`Node.prepare_network` runs before kube-apiserver starts: it records the host (:class:`HostSnapshot`),
  creates the pod bridge ``druid0`` with the gateway address the API server advertises, routes the service
  range onto the bridge, and installs the egress guard (a chain of ours that drops anything arriving from the
  bridge for another interface, and any packet from the bridge to a host address other than the gateway).
- :meth:`Node.start` runs once the control plane is up: a loopback forwarder lets pods reach kube-apiserver
  (which listens on 127.0.0.1) at the gateway address; containerd (runc, CNI bridge) with locally built images
  imported; kubelet and kube-proxy (from the same multi-call binary as the control plane); CoreDNS serving
  ``cluster.local`` at the gateway address, with no upstream (nothing consults the machine's resolver); and a
  hostPath provisioner whose directories uid 65532 can write, behind the default StorageClass.
- :meth:`Node.stop` (also on failure and Ctrl-C) stops all of it, kills what still runs in the pods' cgroups
  and containerd's shims, unmounts, and puts the host back as :class:`HostSnapshot` recorded it: iptables/nft
  tables, links, routes, network namespaces, cgroups, directories and sysctls.

Where the machine cannot run a node, :func:`node_unsupported` says why (not root, no overlayfs, no netfilter,
missing packages), so callers can skip loudly or fall back to the simulated (kwok) mode.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from druid.testing import hoststate
from druid.testing.binaries import Binaries
from druid.testing.controlplane import LOOPBACK, ControlPlane, ControlPlaneError, free_port, wait_until
from druid.testing.hoststate import HostSnapshot
from druid.testing.images import PAUSE, Image, import_images, write_archive
from druid.testing.images import default_cache_dir as images_cache_dir
from druid.testing.process import Process

NODE_NAME = "druid-node"
BRIDGE = "druid0"
POD_CIDR = "10.244.0.0/24"
GATEWAY = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DOMAIN = "cluster.local"
STORAGE_CLASS = "druid-local"
GUARD_CHAIN = "DRUID-EGRESS"
LOCK_PATH = "/run/druid-node.lock"
NODE_UID = 65532

# Debian packages the node needs (installed by hack/install-node-deps.sh) and one file each proves present.
NODE_PACKAGES = {
    "containerd": "/usr/bin/containerd",
    "runc": "/usr/sbin/runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "busybox-static": "/bin/busybox",
    "iptables": "/usr/sbin/iptables",
    "nftables": "/usr/sbin/nft",
    "socat": "/usr/bin/socat",
}


def node_unsupported() -> str | None:
    """Why this machine cannot run a real node, or None when it can."""
    if os.geteuid() != 0:
        return "a real node needs root (kubelet, containerd and the CNI bridge change the host)"
    filesystems = Path("/proc/filesystems").read_text()
    if "overlay" not in filesystems:
        return "the kernel has no overlayfs (containerd's snapshotter needs it)"
    if not Path("/proc/sys/net/netfilter").is_dir() and not Path("/proc/net/nf_conntrack").exists():
        return "the kernel has no netfilter/conntrack (kube-proxy needs it)"
    if not Path("/proc/sys/net/bridge").is_dir():
        return "the kernel has no bridge netfilter (net.bridge.bridge-nf-call-iptables is missing)"
    missing = [pkg for pkg, path in NODE_PACKAGES.items() if not Path(path).exists()]
    if missing:
        return "missing packages (run hack/install-node-deps.sh): " + ", ".join(missing)
    return None


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip() or res.stdout.strip()}")
    return res


def _write_sysctl(key: str, value: str) -> None:
    (hoststate.PROC_SYS / key).write_text(value)


def _yaml(obj: Any) -> str:
    return json.dumps(obj, indent=2)  # JSON is YAML; no dependency on a YAML writer here


@dataclass
class Node:
    binaries: Binaries
    workdir: Path
    name: str = NODE_NAME
    images: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    snapshot: HostSnapshot | None = None
    startup_seconds: float = 0.0
    _lock_file: IO[str] | None = None

    @property
    def containerd_socket(self) -> Path:
        return self.workdir / "containerd" / "containerd.sock"

    # ---------------------------------------------------------------- host network (before the API server)

    def _lock(self) -> None:
        """One real node per machine (they share the bridge, its addresses and the host's tables): hold an
        exclusive lock for the node's lifetime; the kernel drops it when the holder dies."""
        self._lock_file = open(LOCK_PATH, "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            holder = Path(LOCK_PATH).read_text().strip() or "unknown"
            raise ControlPlaneError(f"another real node runs on this machine (lock {LOCK_PATH}, {holder})") from None
        self._lock_file.truncate(0)
        self._lock_file.write(f"pid {os.getpid()}, {self.workdir}\n")
        self._lock_file.flush()

    def _unlock(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                os.unlink(LOCK_PATH)
            self._lock_file.close()
            self._lock_file = None

    def prepare_network(self) -> None:
        self._lock()
        self.snapshot = HostSnapshot.take()
        if BRIDGE in self.snapshot.links:  # left by a run that was killed: ours by name
            _run("ip", "link", "delete", BRIDGE, check=False)
            self.snapshot = HostSnapshot.take()
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        # Service addresses go to the bridge, never to the default route (kube-proxy DNATs them to pods).
        _run("ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE, "src", GATEWAY)
        _write_sysctl("net/ipv4/ip_forward", "1")
        _write_sysctl("net/bridge/bridge-nf-call-iptables", "1")
        self._install_guard()

    def _install_guard(self) -> None:
        """Pods talk to each other, to the gateway (API server forwarder, DNS) and nothing else."""
        # A run killed before its tear-down may have left the guard behind: ours by name, replace it.
        for stale in (
            ("-D", "FORWARD", "-j", GUARD_CHAIN),
            ("-D", "INPUT", "-i", BRIDGE, "!", "-d", GATEWAY, "-j", "DROP"),
            ("-F", GUARD_CHAIN),
            ("-X", GUARD_CHAIN),
        ):
            _run("iptables", "-w", *stale, check=False)
        rules = [
            ("-N", GUARD_CHAIN),
            ("-A", GUARD_CHAIN, "-i", BRIDGE, "-o", BRIDGE, "-j", "RETURN"),
            ("-A", GUARD_CHAIN, "-i", BRIDGE, "-j", "DROP"),
            ("-A", "FORWARD", "-j", GUARD_CHAIN),
            ("-A", "INPUT", "-i", BRIDGE, "!", "-d", GATEWAY, "-j", "DROP"),
        ]
        for rule in rules:
            _run("iptables", "-w", *rule)

    # ---------------------------------------------------------------- node processes

    def start(self, cp: ControlPlane, images: Mapping[str, Image]) -> None:
        """Bring the node up; ``images`` (keyed like :func:`druid.testing.images.node_images`, ``pause``
        included) are written as archives (cached) and imported into the node's containerd."""
        t0 = time.monotonic()
        d = self.workdir
        for sub in ("containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "volumes", "plugins"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "resolv.conf").write_text(f"# pods' upstream resolver: none\nsearch {CLUSTER_DOMAIN}\n")
        self._identities(cp)
        api_port = cp.server.rsplit(":", 1)[1]
        self._add(
            "apiserver-forwarder",
            [
                "socat",
                f"TCP-LISTEN:{api_port},bind={GATEWAY},fork,reuseaddr",
                f"TCP:{LOOPBACK}:{api_port}",
            ],
        )
        self.images = {name: image.ref for name, image in images.items()}
        archives = [write_archive(image, images_cache_dir()) for image in images.values()]
        self._containerd_config(self.images[PAUSE])
        self._add("containerd", ["containerd", "--config", str(d / "containerd" / "config.toml")])
        _wait(lambda: self._ctr("version").returncode == 0, 30, "containerd socket", self)
        import_images(archives, str(self.containerd_socket))
        self._kubelet_config(cp)
        self._add(
            "kubelet",
            [
                str(self.binaries.kubelet),
                f"--config={d / 'kubelet-config.yaml'}",
                f"--kubeconfig={d / 'kubeconfig-kubelet'}",
                f"--root-dir={d / 'kubelet'}",
                f"--cert-dir={d / 'kubelet' / 'pki'}",
                f"--hostname-override={self.name}",
                f"--node-ip={GATEWAY}",
                "--v=1",
            ],
        )
        self._kube_proxy_config()
        self._add("kube-proxy", [str(self.binaries.kube_proxy), f"--config={d / 'kube-proxy-config.yaml'}", "--v=1"])
        self._coredns_config(cp.kubeconfig)
        self._add("coredns", [str(self.binaries.coredns), "-conf", str(d / "Corefile")])
        self._add(
            "provisioner",
            [
                sys.executable,
                "-m",
                "druid.testing.provisioner",
                f"--kubeconfig={cp.kubeconfig}",
                f"--root={d / 'volumes'}",
                f"--storage-class={STORAGE_CLASS}",
                f"--node={self.name}",
            ],
        )
        self._bootstrap(cp)
        self.startup_seconds = time.monotonic() - t0

    def _add(self, name: str, argv: list[str]) -> None:
        proc = Process(name, argv, self.workdir / "logs" / f"{name}.log")
        self.processes[name] = proc
        proc.start()

    def _identities(self, cp: ControlPlane) -> None:
        ca = cp.ca
        kubelet = ca.issue("kubelet-client", f"system:node:{self.name}", orgs=("system:nodes",), client=True)
        self._kubelet_serving = ca.issue(
            "kubelet-serving", self.name, dns=(self.name, "localhost"), ips=(GATEWAY, "127.0.0.1"), server=True
        )
        proxy = ca.issue("kube-proxy", "system:kube-proxy", client=True)
        (self.workdir / "kubeconfig-kubelet").write_text(cp.kubeconfig_yaml(ca.pair.cert, kubelet.cert, kubelet.key))
        (self.workdir / "kubeconfig-proxy").write_text(cp.kubeconfig_yaml(ca.pair.cert, proxy.cert, proxy.key))
        self._ca_cert = ca.pair.cert

    def _containerd_config(self, pause: str) -> None:
        c = self.workdir / "containerd"
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        (c / "config.toml").write_text(
            f"""version = 2
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = "{self.containerd_socket}.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"
[{cri}]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{self.workdir / "cni" / "net.d"}"
"""
        )
        conflist = {
            "cniVersion": "1.0.0",
            "name": "druid",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.workdir / "cni" / "ipam"),
                    },
                }
            ],
        }
        (self.workdir / "cni" / "net.d" / "10-druid.conflist").write_text(json.dumps(conflist, indent=2))

    def _ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run("ctr", "--address", str(self.containerd_socket), "-n", "k8s.io", *args, check=False)

    def _kubelet_config(self, cp: ControlPlane) -> None:
        d = self.workdir
        cfg = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": GATEWAY,
            "port": free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self._ca_cert)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "tlsCertFile": str(self._kubelet_serving.cert),
            "tlsPrivateKeyFile": str(self._kubelet_serving.key),
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "clusterDNS": [GATEWAY],
            "clusterDomain": CLUSTER_DOMAIN,
            "resolvConf": str(d / "resolv.conf"),
            "podLogsDir": str(d / "pod-logs"),
            "volumePluginDir": str(d / "plugins"),
            "registerNode": True,
            "serializeImagePulls": False,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "nodeStatusReportFrequency": "10s",
            "nodeStatusUpdateFrequency": "5s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "10s",
            "makeIPTablesUtilChains": False,
            "maxPods": 110,
            "shutdownGracePeriod": "0s",
        }
        (d / "kubelet-config.yaml").write_text(_yaml(cfg))

    def _kube_proxy_config(self) -> None:
        d = self.workdir
        cfg = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(d / "kubeconfig-proxy")},
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            "hostnameOverride": self.name,
            "bindAddress": GATEWAY,
            "healthzBindAddress": f"127.0.0.1:{free_port()}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            "nodePortAddresses": [f"{GATEWAY}/32"],
            # 0 leaves the machine's conntrack settings alone.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            "iptables": {"localhostNodePorts": False, "syncPeriod": "30s", "minSyncPeriod": "0s"},
        }
        (d / "kube-proxy-config.yaml").write_text(_yaml(cfg))

    def _coredns_config(self, kubeconfig: Path) -> None:
        """CoreDNS answers ``cluster.local`` (and reverse zones) from the API server, with no upstream."""
        d = self.workdir
        self.dns_health_port = free_port()
        self.dns_ready_port = free_port()
        (d / "Corefile").write_text(
            f""".:53 {{
    bind {GATEWAY}
    errors
    health 127.0.0.1:{self.dns_health_port}
    ready 127.0.0.1:{self.dns_ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
}}
"""
        )

    def _bootstrap(self, cp: ControlPlane) -> None:
        from druid.testing.provisioner import storage_class

        cp.request(
            "POST", "/apis/storage.k8s.io/v1/storageclasses", storage_class(STORAGE_CLASS, default=True, node=self.name)
        )
        _wait(lambda: _node_ready(cp, self.name), 120, f"node {self.name} Ready (kubelet)", self)
        _wait(lambda: _http_ok(f"http://127.0.0.1:{self.dns_ready_port}/ready"), 60, "CoreDNS ready", self)

    # ---------------------------------------------------------------- teardown

    def stop(self) -> list[str]:
        """Stop everything and put the host back; returns what still differs from before (empty when clean)."""
        for name in ("provisioner", "coredns", "kube-proxy", "kubelet", "apiserver-forwarder"):
            if name in self.processes:
                with contextlib.suppress(Exception):
                    self.processes[name].stop()
        if self.snapshot is not None:
            hoststate.kill_cgroup_processes(self.snapshot)
        self._kill_shims()
        if "containerd" in self.processes:
            with contextlib.suppress(Exception):
                self.processes["containerd"].stop()
        self._kill_shims()
        _unmount_below(self.workdir)
        try:
            return [] if self.snapshot is None else hoststate.restore(self.snapshot)
        finally:
            self._unlock()

    def _kill_shims(self) -> None:
        """containerd's shims daemonise (they outlive containerd); kill the ones serving our containerd."""
        marker = str(self.containerd_socket)
        for pid in _pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and b"containerd-shim" in cmdline[0] and marker.encode() in b" ".join(cmdline):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values() if p.pid is not None]

    # ---------------------------------------------------------------- faults for tests

    def pod_containers(self, namespace: str, pod: str) -> list[str]:
        """IDs of the app containers (not the sandbox) of a pod, as containerd knows them."""
        filters = (
            f'labels."io.kubernetes.pod.namespace"=={namespace}',
            f'labels."io.kubernetes.pod.name"=={pod}',
            'labels."io.kubernetes.container.name"!=POD',
        )
        res = self._ctr("containers", "ls", "-q", ",".join(filters))
        if res.returncode != 0:
            raise RuntimeError(f"listing containers of {namespace}/{pod}: {res.stderr.strip()}")
        return res.stdout.split()

    def freeze(self, namespace: str, pod: str) -> list[str]:
        """Freeze every container of the pod (cgroup freezer): its processes stop as if the machine hung."""
        ids = self.pod_containers(namespace, pod)
        if not ids:
            raise RuntimeError(f"no containers for {namespace}/{pod}")
        for cid in ids:
            res = self._ctr("tasks", "pause", cid)
            if res.returncode != 0:
                raise RuntimeError(f"freezing {cid}: {res.stderr.strip()}")
        return ids

    def thaw(self, ids: list[str]) -> None:
        for cid in ids:
            res = self._ctr("tasks", "resume", cid)
            if res.returncode != 0:
                raise RuntimeError(f"thawing {cid}: {res.stderr.strip()}")


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _unmount_below(root: Path) -> None:
    """Lazily unmount every mount point under ``root``, deepest first."""
    prefix = str(root.resolve()) + "/"
    for _ in range(3):
        points = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
        if not points:
            return
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


def _node_ready(cp: ControlPlane, name: str) -> bool:
    node = cp.request("GET", f"/api/v1/nodes/{name}")
    conds = node.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def _wait(check: Any, timeout: float, what: str, node: Node | None = None) -> None:
    try:
        wait_until(check, timeout, what, interval=0.2)
    except ControlPlaneError as e:
        if node is None:
            raise
        dead = [p for p in node.processes.values() if not p.alive()]
        detail = "".join(f"\n--- {p.name} exited; last lines:\n{p.tail()}" for p in dead)
        raise ControlPlaneError(f"{e}{detail}") from None
