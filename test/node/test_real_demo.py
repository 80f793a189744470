"""README's main job on a real node: ``python -m druid.testing.demo`` (what hack/local-up.sh runs) shows a real
Ready Etcd with a key written and read back, stops on Ctrl-C, and leaves the host as it found it: iptables /
nftables, links, routes, network namespaces, cgroups, directories and the sysctls a node changes.

Runs after the end-to-end package has torn its own node down (one node at a time: they share the bridge).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from queue import Empty, Queue

import pytest

from druid.testing.binaries import Binaries
from druid.testing.hoststate import HostSnapshot, differences
from druid.testing.node import node_unsupported

pytestmark = pytest.mark.e2e


def _unavailable() -> str | None:
    reason = node_unsupported()
    if reason is None:
        try:
            Binaries.from_env().check(full=True, node=True)
        except FileNotFoundError as e:
            reason = str(e)
    return reason


def test_real_demo_ready_etcd_key_round_trip_then_ctrl_c_restores_the_host() -> None:
    reason = _unavailable()
    if reason is not None:
        pytest.skip(f"REAL NODE UNAVAILABLE: {reason}")
    before = HostSnapshot.take()
    proc = subprocess.Popen(
        [sys.executable, "-m", "druid.testing.demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        # A reader thread hands over whole lines, so a burst of lines is never stuck in a buffer.
        queue: Queue[str | None] = Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        reader = threading.Thread(target=lambda: [*map(queue.put, stdout), queue.put(None)], daemon=True)
        reader.start()
        deadline = time.monotonic() + 420
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = queue.get(timeout=left)
            except Empty:
                break
            if line is None:
                break
            lines.append(line.rstrip())
            if line.startswith("demo up; press Ctrl-C"):
                break
        out = "\n".join(lines)
        assert lines and lines[-1].startswith("demo up"), out
        assert "Etcd default/etcd-single is Ready: 1/1 members ready" in out
        assert "wrote /demo/hello=world and read back 'world'" in out
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=180)
        reader.join(10)
        while not queue.empty():
            rest = queue.get()
            if rest is not None:
                lines.append(rest.rstrip())
    finally:
        if proc.poll() is None:  # a failed assertion: still let the demo tear down and put the host back
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(180)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
    out = "\n".join(lines)
    assert proc.returncode == 0, out
    assert lines[-1] == "demo stopped; node and control plane torn down, host restored", out
    assert differences(before, HostSnapshot.take()) == []
    workdir = next(line.split("KUBECONFIG=", 1)[1] for line in lines if "KUBECONFIG=" in line).rsplit("/", 1)[0]
    leftovers = subprocess.run(["pgrep", "-af", workdir], capture_output=True, text=True, check=False).stdout
    assert leftovers.strip() == "", f"processes left behind: {leftovers}"
    assert not os.path.exists(workdir), "the demo left its working directory behind"
