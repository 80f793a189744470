"""Images written by ``druid.testing.images`` in a real, throw-away containerd (the node's 1.6 from Debian).

containerd runs as root with its root, state, sockets and opt directory under ``tmp_path`` and without the CRI
plugin. The test imports archives with :func:`druid.testing.images.import_images`, checks that ``ctr images ls``
lists the exact references, looks at the unpacked content through ``ctr images mount`` and runs containers
with ``ctr run`` (runc) to see the user, home and ``/tmp`` a process gets. Afterwards no containerd, shim or
mount is left, and the cgroup and ``/run/containerd`` directories this test caused are removed again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from druid.testing import images as im
from druid.testing.controlplane import wait_until
from druid.testing.process import Process

BUSYBOX = Path("/bin/busybox")
RUNC = Path("/usr/sbin/runc")
RUN_CONTAINERD = Path("/run/containerd")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (containerd, overlay mounts, runc)"
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package containerd)"
    if not RUNC.is_file():
        return f"{RUNC} is missing (Debian package runc)"
    if not (BUSYBOX.is_file() and im.is_static_elf(BUSYBOX)):
        return "needs Debian's static /bin/busybox (package busybox-static)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


@dataclass
class Containerd:
    dir: Path
    address: str
    process: Process
    cgroups: list[str] = field(default_factory=list)

    def ctr(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = im.ctr_argv("ctr", self.address, im.K8S_NAMESPACE, *args)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr}{done.stdout}")
        return done


def config_toml(d: Path, address: str) -> str:
    return f"""version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{address}"

[ttrpc]
  address = "{address}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"""


def _mounts_under(d: Path) -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if point == str(d) or point.startswith(f"{d}/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)  # deepest first


def _shims_of(address: str) -> list[int]:
    """PIDs of containerd-shim processes serving this containerd (``-address <socket>`` on their command line)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
            pids.append(int(entry.name))
    return pids


def _shim_socket(address: str, container_id: str) -> Path:
    """Where containerd 1.6 puts a shim's socket: ``/run/containerd/s/<sha256(<address>/<namespace>/<id>)>``."""
    return RUN_CONTAINERD / "s" / hashlib.sha256(f"{address}/{im.K8S_NAMESPACE}/{container_id}".encode()).hexdigest()


def _cgroup_pids(path: str) -> list[int]:
    procs = CGROUP_ROOT / "pids" / path.lstrip("/") / "cgroup.procs"
    with contextlib.suppress(OSError):
        return [int(p) for p in procs.read_text().split()]
    return []


def _cgroup_empty(path: str) -> bool:
    return not _cgroup_pids(path)


def _remove_cgroup(path: str) -> None:
    for controller in CGROUP_ROOT.iterdir():
        with contextlib.suppress(OSError):
            (controller / path.lstrip("/")).rmdir()


def _created_run_dirs() -> list[Path]:
    """Directories under /run/containerd that containerd, its shims and ctr create on demand."""
    run = RUN_CONTAINERD
    return [run / "runc" / im.K8S_NAMESPACE, run / "runc", run / "fifo", run / "s", run]  # children first


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Containerd]:
    d = tmp_path / "containerd"
    d.mkdir()
    address = str(d / "containerd.sock")
    (d / "config.toml").write_text(config_toml(d, address))
    existed = {p for p in _created_run_dirs() if p.exists()}
    proc = Process("containerd", ["containerd", "--config", str(d / "config.toml")], d / "containerd.log")
    ctd = Containerd(d, address, proc)
    proc.start()
    try:
        wait_until(lambda: ctd.ctr("version", timeout=5, check=False).returncode == 0, 30, "containerd to serve")
        yield ctd
    finally:
        ids = ctd.ctr("containers", "ls", "-q", check=False).stdout.split() if proc.alive() else []
        for cid in ids:  # only left when a test failed half-way
            ctd.ctr("tasks", "rm", "-f", cid, check=False)
            ctd.ctr("containers", "rm", cid, check=False)
        proc.stop()
        for pid in _shims_of(address) + [p for cg in ctd.cgroups for p in _cgroup_pids(cg)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for cid in ids:
            _shim_socket(address, cid).unlink(missing_ok=True)
        for cgroup in ctd.cgroups:
            wait_until(functools.partial(_cgroup_empty, cgroup), 10, f"processes in cgroup {cgroup} to exit")
            _remove_cgroup(cgroup)
        for point in _mounts_under(d):
            subprocess.run(["umount", "-l", point], check=False)
        for path in _created_run_dirs():
            if path not in existed:
                with contextlib.suppress(OSError):
                    path.rmdir()  # only when empty: never another containerd's files
        leftovers = _mounts_under(d)
        assert not leftovers, f"mounts left behind: {leftovers}"
        assert not _shims_of(address), "containerd shims left behind"


def run(ctd: Containerd, ref: str, script: str) -> str:
    """``ctr run --rm`` of ``/bin/sh -c script`` with runc state, FIFOs and the cgroup all of our own."""
    cid = f"druid-images-{uuid.uuid4().hex[:8]}"
    cgroup = f"/{cid}"
    ctd.cgroups.append(cgroup)
    try:
        return ctd.ctr(
            "run",
            "--rm",
            "--snapshotter",
            "overlayfs",
            "--runc-binary",
            str(RUNC),
            "--runc-root",
            str(ctd.dir / "runc"),
            "--fifo-dir",
            str(ctd.dir / "fifo"),
            "--cgroup",
            cgroup,
            ref,
            cid,
            "/bin/sh",
            "-c",
            script,
            timeout=120,
        ).stdout
    finally:
        ctd.ctr("tasks", "rm", "-f", cid, check=False)
        ctd.ctr("containers", "rm", cid, check=False)


def tiny_nonroot_image(ref: str) -> im.Image:
    """Busybox with a few applets, run as nonroot with HOME: what the etcd images look like to a process."""
    links = tuple(im.Symlink(f"bin/{a}", "busybox") for a in ("sh", "id", "ls", "touch", "cat", "stat"))
    return im.Image(
        ref,
        (im.binary("bin/busybox", BUSYBOX), *links),
        user=f"{im.NONROOT}:{im.NONROOT}",
        env=im.nonroot_env(),
        working_dir=im.NONROOT_HOME,
    )


def test_import_and_run(containerd: Containerd, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    nonroot = tiny_nonroot_image(f"druid.local/test-nonroot:{tag}")
    busybox = im.busybox_image(BUSYBOX, f"druid.local/test-busybox:{tag}")
    archives = [im.write_archive(image, tmp_path / "cache") for image in (nonroot, busybox)]

    refs = im.import_images(archives, containerd.address)

    assert refs == [nonroot.ref, busybox.ref]
    listed = containerd.ctr("images", "ls", "-q").stdout.split()
    assert nonroot.ref in listed and busybox.ref in listed
    assert not [r for r in listed if r.startswith("import-")]  # no --base-name fallback names

    # The unpacked content (snapshot), owners and modes as written.
    target = tmp_path / "mnt"
    target.mkdir()
    containerd.ctr("images", "mount", "--snapshotter", "overlayfs", nonroot.ref, str(target))
    try:
        home, tmp = (target / "home" / "nonroot").stat(), (target / "tmp").stat()
        assert (home.st_uid, home.st_gid, home.st_mode & 0o7777) == (65532, 65532, 0o755)
        assert tmp.st_mode & 0o7777 == 0o1777
        assert (target / "bin" / "sh").readlink() == Path("busybox")
        assert "nonroot:x:65532:65532:" in (target / "etc" / "passwd").read_text()
    finally:
        containerd.ctr("images", "unmount", "--rm", str(target), check=False)
    assert not _mounts_under(target)

    # A process in the nonroot image: uid/gid 65532, HOME writable.
    out = run(containerd, nonroot.ref, 'id -u; id -g; echo "$HOME"; ls -ld /home/nonroot; touch "$HOME/x" && echo ok')
    uid, gid, home_env, listing, ok = out.strip().splitlines()
    assert (uid, gid, home_env, ok) == ("65532", "65532", "/home/nonroot", "ok")
    assert listing.startswith("drwxr-xr-x") and " nonroot " in listing

    # The alpine stand-in: root, and the init containers' `chown -R` on PATH.
    out = run(
        containerd, busybox.ref, "id -u; mkdir -p /tmp/d/e && chown -R 65532:65532 /tmp/d && stat -c %u:%g /tmp/d/e"
    )
    assert out.split() == ["0", "65532:65532"]
