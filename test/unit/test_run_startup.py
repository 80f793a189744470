"""`druid run` start-up failures: each exits 2 with one line naming the flag, field or file, never a traceback.

These fail before druid connects to any cluster, so no control plane is needed: the command runs as a
subprocess with an environment that names no cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from druid.config import loader
from druid.config.operator import API_VERSION
from druid.config.validation import MAX_CONCURRENT_SYNCS

RUN = [sys.executable, "-m", "druid.cli.main", "run", "--probe-bind-address", "127.0.0.1"]
HEADER = f"apiVersion: {API_VERSION}\nkind: OperatorConfiguration\n"


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Exit code and the stderr lines that are not JSON log records."""
    base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "POD_NAMESPACE")}
    base["HOME"] = str(tmp_path)  # no ~/.kube/config of the machine's
    done = subprocess.run(
        [*RUN, *args], capture_output=True, text=True, timeout=60, env={**base, **(env or {})}, cwd=tmp_path
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, [x for x in done.stderr.splitlines() if not x.startswith("{")]


def config(tmp_path: Path, text: str | bytes, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else (HEADER + text).encode())
    return str(path)


def test_probe_port_beyond_tcp_range(tmp_path: Path) -> None:
    assert run(tmp_path, "--probe-port", "70000") == (2, ["druid run: --probe-port 70000: must be between 0 and 65535"])


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "server:\n  metrics:\n    port: 70000\n",
            "druid run: invalid configuration: server.metrics.port: must be between 0 and 65535",
        ),
        (
            "server:\n  webhooks:\n    port: -1\n",
            "druid run: invalid configuration: server.webhooks.port: must be between 0 and 65535",
        ),
        (
            "controllers:\n  etcd:\n    concurrentSyncs: 100000000\n",
            "druid run: invalid configuration: controllers.etcd.concurrentSyncs: "
            f"must be at most {MAX_CONCURRENT_SYNCS}",
        ),
    ],
)
def test_bounds_in_the_configuration(tmp_path: Path, text: str, line: str) -> None:
    assert run(tmp_path, "--config", config(tmp_path, text)) == (2, [line])


def test_configuration_file_not_utf8(tmp_path: Path) -> None:
    path = config(tmp_path, b"\xff\xfe")
    assert run(tmp_path, "--config", path) == (
        2,
        [f"druid run: invalid configuration: <file>: {path} is not UTF-8 text (byte 0)"],
    )


def test_configuration_file_too_large_is_refused_unparsed(tmp_path: Path) -> None:
    path = config(tmp_path, b"#" * (loader.MAX_FILE_BYTES + 1))
    assert run(tmp_path, "--config", path) == (
        2,
        [f"druid run: invalid configuration: <file>: {path} is larger than {loader.MAX_FILE_BYTES} bytes"],
    )


def test_missing_kubeconfig(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    rc, lines = run(tmp_path, "--kubeconfig", missing)
    assert (rc, lines) == (2, [f"druid run: cannot load kubeconfig {missing}: no such file"])
    assert run(tmp_path, env={"KUBECONFIG": missing}) == (rc, lines)


def test_garbage_kubeconfig(tmp_path: Path) -> None:
    path = config(tmp_path, b"garbage: [\n", name="kubeconfig")
    rc, [line] = run(tmp_path, "--kubeconfig", path)
    assert rc == 2 and line.startswith(f"druid run: cannot load kubeconfig {path}: "), line


def test_leader_election_without_a_namespace(tmp_path: Path) -> None:
    path = config(tmp_path, "leaderElection:\n  enabled: true\n")
    assert run(tmp_path, "--config", path) == (
        2,
        ["druid run: leader election needs a namespace: pass --leader-election-namespace or set POD_NAMESPACE"],
    )
