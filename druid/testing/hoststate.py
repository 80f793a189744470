"""What a real node changes on the host, recorded before and put back after.

A kubelet node on this machine changes the host in known ways: kubelet sets a few kernel sysctls, kube-proxy
sets conntrack and ``route_localnet`` sysctls and installs iptables chains, the bridge plugin turns on
forwarding, containerd's CRI plugin creates network namespaces under ``/run/netns``, kubelet creates
``kubepods`` cgroups and a few directories. :class:`HostSnapshot` records the parts a node may touch;
:func:`restore` puts back what differs, and :func:`differences` says what still differs (the isolation test
asserts that it is empty after a session).

Pure comparisons (:func:`sysctl_changes`, :func:`new_entries`) sit behind a thin layer that reads ``/proc``,
runs ``nft`` and ``ip``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The sysctls a node is known to change (kubelet: kernel defaults; kube-proxy: conntrack and localnet;
# bridge plugin and we: forwarding and bridge netfilter). Restored one by one when they differ.
SYSCTLS = (
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxbytes",
    "kernel/keys/root_maxkeys",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv4/conf/all/route_localnet",
    "net/ipv4/conf/default/forwarding",
    "net/ipv6/conf/all/forwarding",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
    "net/netfilter/nf_conntrack_tcp_be_liberal",
)

# Host paths a node may create outside its own working directory.
PATHS = (
    "/run/netns",
    "/run/containerd",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/etc/cni",
    "/opt/cni",
    "/usr/libexec/kubernetes",
    "/etc/kubernetes",
)

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_NAMES = ("kubepods", "kubepods.slice")
PROC_SYS = Path("/proc/sys")


def read_sysctls(keys: Iterable[str] = SYSCTLS, root: Path = PROC_SYS) -> dict[str, str]:
    """Current values of ``keys`` that exist on this kernel (whitespace normalised)."""
    out: dict[str, str] = {}
    for key in keys:
        with contextlib.suppress(OSError):
            out[key] = " ".join((root / key).read_text().split())
    return out


def sysctl_changes(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str]:
    """The keys whose value differs now, mapped to the value they had before (keys that appeared are ignored)."""
    return {k: v for k, v in before.items() if k in after and after[k] != v}


def new_entries(before: Iterable[str], after: Iterable[str]) -> list[str]:
    """What ``after`` has that ``before`` had not, in a stable order."""
    seen = set(before)
    return sorted(x for x in after if x not in seen)


def nft_tables() -> list[str]:
    """``family name`` of every nftables table (iptables-nft keeps iptables rules in such tables)."""
    if shutil.which("nft") is None:
        return []
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False).stdout
    return sorted(line.removeprefix("table ").strip() for line in out.splitlines() if line.startswith("table "))


def nft_ruleset() -> str:
    """The whole nftables ruleset without counters (what the isolation test compares)."""
    if shutil.which("nft") is None:
        return ""
    res = subprocess.run(["nft", "-s", "list", "ruleset"], capture_output=True, text=True, check=False)
    return res.stdout


def links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False).stdout
    return sorted(line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines() if ":" in line)


def routes() -> list[str]:
    out = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True, check=False).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def cgroup_dirs() -> list[str]:
    """The node-owned cgroup directories that exist (one per hierarchy)."""
    found = []
    if CGROUP_ROOT.is_dir():
        for hierarchy in CGROUP_ROOT.iterdir():
            for name in CGROUP_NAMES:
                if (hierarchy / name).is_dir():
                    found.append(str(hierarchy / name))
    return sorted(found)


def existing_paths(paths: Iterable[str] = PATHS) -> list[str]:
    return sorted(p for p in paths if os.path.lexists(p))


def netns_entries() -> list[str]:
    d = Path("/run/netns")
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


@dataclass(frozen=True)
class HostSnapshot:
    sysctls: dict[str, str] = field(default_factory=dict)
    nft_tables: list[str] = field(default_factory=list)
    nft_ruleset: str = ""
    links: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)

    @classmethod
    def take(cls) -> HostSnapshot:
        return cls(
            sysctls=read_sysctls(),
            nft_tables=nft_tables(),
            nft_ruleset=nft_ruleset(),
            links=links(),
            routes=routes(),
            cgroups=cgroup_dirs(),
            paths=existing_paths(),
            netns=netns_entries(),
        )


def differences(before: HostSnapshot, after: HostSnapshot) -> list[str]:
    """Human-readable differences between two snapshots; empty when the host is as it was."""
    out: list[str] = []
    for key, old in sysctl_changes(before.sysctls, after.sysctls).items():
        out.append(f"sysctl {key}: {old} -> {after.sysctls[key]}")
    for what, old_list, new_list in (
        ("nft table", before.nft_tables, after.nft_tables),
        ("link", before.links, after.links),
        ("route", before.routes, after.routes),
        ("cgroup", before.cgroups, after.cgroups),
        ("path", before.paths, after.paths),
        ("netns", before.netns, after.netns),
    ):
        out += [f"{what} added: {x}" for x in new_entries(old_list, new_list)]
        out += [f"{what} removed: {x}" for x in new_entries(new_list, old_list)]
    if before.nft_ruleset != after.nft_ruleset and before.nft_tables == after.nft_tables:
        out.append("nftables ruleset changed")
    return out


def _remove_cgroup_tree(top: Path) -> None:
    """rmdir a cgroup directory tree deepest first, killing what still runs in it."""
    for _ in range(50):
        if not top.exists():
            return
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
            procs = Path(dirpath) / "cgroup.procs"
            with contextlib.suppress(OSError):
                for pid in procs.read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), 9)
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)
        if not top.exists():
            return
        time.sleep(0.1)


def kill_cgroup_processes(before: HostSnapshot) -> None:
    """SIGKILL every process in the node's cgroups (pods' containers) and remove those cgroups."""
    for d in new_entries(before.cgroups, cgroup_dirs()):
        _remove_cgroup_tree(Path(d))


def restore(before: HostSnapshot) -> list[str]:
    """Put back what a node changed since ``before``; returns what could not be put back."""
    kill_cgroup_processes(before)
    for name in new_entries(before.netns, netns_entries()):
        path = Path("/run/netns") / name
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
        with contextlib.suppress(OSError):
            path.unlink()
    for table in new_entries(before.nft_tables, nft_tables()):
        subprocess.run(["nft", "delete", "table", *table.split()], capture_output=True, check=False)
    for link in new_entries(before.links, links()):
        subprocess.run(["ip", "link", "delete", link], capture_output=True, check=False)
    for route in new_entries(before.routes, routes()):
        subprocess.run(["ip", "route", "del", *route.split()], capture_output=True, check=False)
    for key, value in sysctl_changes(before.sysctls, read_sysctls()).items():
        with contextlib.suppress(OSError):
            (PROC_SYS / key).write_text(value)
    for created in reversed(new_entries(before.paths, existing_paths())):
        subprocess.run(["umount", "-R", "-l", created], capture_output=True, check=False)
        if os.path.isdir(created) and not os.path.islink(created):
            shutil.rmtree(created, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(created)
    return differences(before, HostSnapshot.take())
