"""``druid backups ETCD``: the snapshots in an Etcd's backup store, as a table or JSON (read-only).

Read from the store itself, not through the backup-restore sidecar: the sidecar's ``/snapshot/latest`` answers
only with the latest full snapshot and the deltas after it, without sizes, and only while a member is up —
while the question "what could I restore?" matters most when the cluster is down. The store is listed where
druid can reach it without cloud credentials or SDKs: a **Local** store, whose bucket is a directory on the
node (``<hostPath>/<container>/<prefix>``, ``hostPath`` from the store Secret, default
``/etc/gardener/local-backupbuckets``), or any directory given with ``--bucket-dir`` (a bucket synced or
mounted locally). Other providers are refused with a clear message (exit 2).

Columns: kind (Full/Incr), start and last revision, size, age, whether superseded (a delta a later full
snapshot covers) or compacted (a full snapshot built from the previous full plus deltas), and the name; the
snapshots a restore would use now are marked ``*``. Exit 0 with snapshots, 1 when the store holds none, 2 when
it cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from druid import snapshots
from druid.api import facts, store
from druid.api.resources import ETCDS
from druid.cli.ctlcommon import CtlError, add_one_etcd_arguments, connect, format_table, one_etcd_ref
from druid.components.statefulset_volumes import local_host_path
from druid.runtime.client import ApiError
from druid.runtime.objects import SECRETS, Obj

EXIT_FOUND, EXIT_EMPTY, EXIT_UNKNOWN = 0, 1, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_one_etcd_arguments(p)
    p.add_argument(
        "--bucket-dir",
        metavar="DIR",
        help="list this directory as the Etcd's store (its <prefix> below it) instead of the Local bucket",
    )


def list_directory(root: Path) -> list[tuple[str, int | None]]:
    """Every file below ``root`` as (path relative to ``root``, size)."""
    out: list[tuple[str, int | None]] = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            try:
                size: int | None = path.stat().st_size
            except OSError:
                size = None
            out.append((path.relative_to(root).as_posix(), size))
    return out


def store_directory(etcd: Obj, secret: Obj | None, bucket_dir: str | None) -> Path:
    """Where the Etcd's snapshots are on this machine: ``<bucket>/<prefix>``."""
    backup = facts.at(etcd, "spec", "backup", "store") or {}
    if not backup:
        raise CtlError("the Etcd has no backup store (spec.backup.store)")
    prefix = str(backup.get("prefix") or "")
    if bucket_dir is not None:
        return Path(bucket_dir) / prefix
    try:
        provider = store.storage_provider(backup.get("provider"))
    except ValueError as e:
        raise CtlError(str(e)) from None
    if provider != store.LOCAL:
        raise CtlError(
            f"the store's provider is {provider}: druid backups reads Local stores directly; for other providers "
            "sync or mount the bucket and pass --bucket-dir"
        )
    container = backup.get("container")
    if not container:
        raise CtlError("the Local store has no container (spec.backup.store.container)")
    return Path(local_host_path(secret)) / str(container) / prefix


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    if n < 1024:
        return f"{n}B"
    value = float(n)
    for unit in ("KiB", "MiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f}{unit}"
    return f"{value / 1024:.1f}GiB"


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def render_text(found: list[snapshots.Snapshot], now: dt.datetime) -> str:
    if not found:
        return "no snapshots"
    used = {s.key for s in snapshots.latest_restore_set(found)}
    rows = [["", "KIND", "START", "LAST", "SIZE", "AGE", "NOTE", "NAME"]]
    for s in found:
        note = "superseded" if s.superseded else "compacted" if s.compacted else ""
        note = ",".join(n for n in (note, "final" if s.final else "") if n)
        rows.append(
            [
                "*" if s.key in used else "",
                s.kind,
                str(s.start_revision),
                str(s.last_revision),
                _size(s.size),
                _age((now - s.created).total_seconds()),
                note,
                s.key,
            ]
        )
    return "\n".join(format_table(rows))


def to_json(found: list[snapshots.Snapshot]) -> list[dict[str, Any]]:
    used = {s.key for s in snapshots.latest_restore_set(found)}
    return [
        {
            "kind": s.kind,
            "startRevision": s.start_revision,
            "lastRevision": s.last_revision,
            "createdOn": s.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "compression": s.compression,
            "final": s.final,
            "size": s.size,
            "superseded": s.superseded,
            "compacted": s.compacted,
            "usedByRestore": s.key in used,
            "name": s.key,
        }
        for s in found
    ]


async def _read(args: argparse.Namespace, namespace: str, name: str) -> tuple[Obj, Obj | None]:
    kube = await connect(args)
    async with kube:
        try:
            etcd = await kube.get_or_none(ETCDS, name, namespace)
            if etcd is None:
                raise CtlError(f"etcd {name!r} not found in namespace {namespace!r}")
            ref = facts.at(etcd, "spec", "backup", "store", "secretRef", "name")
            secret = await kube.get_or_none(SECRETS, ref, namespace) if ref and args.bucket_dir is None else None
        except ApiError as e:
            raise CtlError(f"cannot read etcd {namespace}/{name}: {e.message}") from e
    return etcd, secret


def main(args: argparse.Namespace) -> int:
    try:
        ref = one_etcd_ref(args)
        etcd, secret = asyncio.run(_read(args, ref.namespace, ref.name))
        directory = store_directory(etcd, secret, args.bucket_dir)
        if not directory.is_dir():
            raise CtlError(f"the store directory {directory} does not exist on this machine")
        found = snapshots.catalogue(list_directory(directory))
    except CtlError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_UNKNOWN
    now = dt.datetime.now(dt.UTC)
    print(json.dumps(to_json(found), indent=2) if args.output == "json" else render_text(found, now))
    return EXIT_FOUND if found else EXIT_EMPTY
