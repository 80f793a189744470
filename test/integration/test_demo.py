"""README's main job (hack/local-up.sh → python -m druid.testing.demo) works and cleans up after itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_brings_up_the_plane_runs_druid_applies_the_sample_and_tears_down(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "druid.testing.demo",
            "--simulated",
            "--exit-after",
            "3",
            "--kubeconfig-out",
            str(tmp_path / "kc"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("control plane ready in") for line in lines), out.stdout
    assert any(line.startswith("installed CRDs: etcdcopybackupstasks.druid.gardener.cloud") for line in lines)
    assert "applied sample Etcd default/etcd-single from" in out.stdout
    assert any(line.startswith("druid ready: http://127.0.0.1:") for line in lines), out.stdout
    assert "Etcd default/etcd-single is Ready: 1/1 members ready" in out.stdout
    assert lines[-1] == "demo stopped; control plane torn down"
    workdir = next(line.split("KUBECONFIG=", 1)[1] for line in lines if "KUBECONFIG=" in line)
    assert not Path(workdir).parent.exists(), "the demo left its control-plane directory behind"
