"""The egress guard: a pod reaches what is on its own bridge (CoreDNS at the gateway) and nothing past it.

"Past it" is a host of the suite's own: a network namespace made here, behind a veth pair, with an HTTP
listener and a route back to the pods, so without the guard the pod's request would get through (the test can
fail). With the guard the listener sees nothing and the DRUID-EGRESS drop counter grows. No packet is sent to
any address outside this machine.
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from druid.runtime.client import Kube
from druid.runtime.objects import PODS
from druid.testing.controlplane import wait_until
from druid.testing.node import GATEWAY, GUARD_CHAIN, POD_CIDR
from druid.testing.process import Process
from druid.testing.realcluster import RealCluster
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e

NETNS, HOST_IF, NS_IF = "druid-outside", "druidout0", "druidout1"
HOST_ADDR, OUTSIDE_ADDR, PORT = "10.255.254.1", "10.255.254.2", 8080


def sh(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True)


def dropped() -> int:
    out = subprocess.run(
        ["iptables", "-w", "-L", GUARD_CHAIN, "-v", "-x", "-n"], capture_output=True, text=True, check=True
    ).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if " DROP " in f" {line} ")


@pytest.fixture
def outside_host(tmp_path: Path) -> Iterator[str]:
    """An HTTP server in a network namespace of our own, routed from the host and back to the pods."""
    sh("ip", "netns", "add", NETNS)
    listener = Process(
        "outside",
        ["ip", "netns", "exec", NETNS, "python3", "-m", "http.server", "--bind", OUTSIDE_ADDR, str(PORT)],
        tmp_path / "outside.log",
    )
    try:
        sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
        sh("ip", "link", "set", NS_IF, "netns", NETNS)
        sh("ip", "addr", "add", f"{HOST_ADDR}/30", "dev", HOST_IF)
        sh("ip", "link", "set", HOST_IF, "up")
        for cmd in (
            ("ip", "addr", "add", f"{OUTSIDE_ADDR}/30", "dev", NS_IF),
            ("ip", "link", "set", NS_IF, "up"),
            ("ip", "link", "set", "lo", "up"),
            ("ip", "route", "add", POD_CIDR, "via", HOST_ADDR),
        ):
            sh("ip", "netns", "exec", NETNS, *cmd)
        listener.start()

        def serving() -> bool:
            with urllib.request.urlopen(f"http://{OUTSIDE_ADDR}:{PORT}/", timeout=2) as resp:
                return bool(resp.status == 200)

        wait_until(serving, 20, "the outside host's listener (reached from the host)")
        yield str(tmp_path / "outside.log")
    finally:
        listener.stop()
        subprocess.run(["ip", "link", "delete", HOST_IF], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "delete", NETNS], capture_output=True, check=False)


async def run_probe(rkube: Kube, ns: str, image: str, name: str) -> str:
    """A pod that asks CoreDNS at the gateway and then the outside host; returns what it saw."""
    script = (
        f"(nslookup kubernetes.default.svc.cluster.local {GATEWAY} >/dev/null 2>&1 && echo dns=ok || echo dns=fail; "
        f"printf 'GET /{name} HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {OUTSIDE_ADDR} {PORT} | grep -q '^HTTP/1' "
        "&& echo outside=reached || echo outside=blocked) > /dev/termination-log"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "probe", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", script]}
            ],
        },
    }
    await rkube.create(PODS, pod)

    async def finished() -> str | None:
        got = await rkube.get(PODS, name, ns)
        for status in (got.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated")
            if terminated:
                return str(terminated.get("message") or "(no message)")
        return None

    try:
        return await eventually(finished, timeout=90, what=f"the probe pod {name} to finish", interval=0.5)
    finally:
        await rkube.delete(PODS, name, ns)


async def test_pod_reaches_its_bridge_but_nothing_past_it(
    real_cluster: RealCluster, rkube: Kube, ns: str, outside_host: str
) -> None:
    log = Path(outside_host)
    image = real_cluster.images["busybox"]
    # Control: with an exception for the outside host in the guard, the pod does reach it (route, listener
    # and probe work), so a blocked request below is the guard's doing.
    exception = (GUARD_CHAIN, "-d", OUTSIDE_ADDR, "-j", "RETURN")
    sh("iptables", "-w", "-I", *exception)
    try:
        seen = await run_probe(rkube, ns, image, "control")
    finally:
        sh("iptables", "-w", "-D", *exception)
    assert "dns=ok" in seen and "outside=reached" in seen, seen
    assert "GET /control" in log.read_text()

    drops_before = dropped()
    seen = await run_probe(rkube, ns, image, "guarded")
    assert "dns=ok" in seen, seen
    assert "outside=blocked" in seen, seen
    assert "GET /guarded" not in log.read_text(), "the outside host saw a request from the pod"
    assert dropped() > drops_before
