"""What an etcd-backup-restore snapshot store holds: parse its object names and build a catalogue.

etcd-backup-restore names every snapshot after what it holds, so a listing of the store is enough to know its
contents without reading a byte of them:

- layout ``v2`` (current): ``<prefix>/v2/<name>``; layout ``v1`` (old releases): ``<prefix>/v1/Backup-<unix>/<name>``.
  A chunked upload adds one more path element (the chunk) below ``<name>``; chunks are parts of a snapshot
  being uploaded, not snapshots, and are left out.
- ``<name>`` is ``<Kind>-<startRevision>-<lastRevision>-<createdUnix><compression><final>``: ``Kind`` is ``Full``
  or ``Incr`` (a delta), the revisions are decimal (zero-padded to 8 digits when written), the compression
  suffix is one of ``.gz``, ``.lz4``, ``.zlib`` or empty, and ``.final`` marks the last full snapshot taken
  before a member was stopped for good (hibernation, scale-down). ``startRevision`` may not exceed
  ``lastRevision``. A name that does not follow this is not a snapshot (backup-restore skips it too).

A restore takes the latest full snapshot and the deltas after it. :func:`catalogue` marks the rest:

- a delta is ``superseded`` when a later full snapshot covers its last revision (a restore never needs it);
- a full snapshot is ``compacted`` when it was built from the previous full snapshot plus deltas: its last
  revision equals that of a delta taken after the previous full snapshot and before it. That is what
  snapshot compaction writes; a scheduled full snapshot taken with no write since the last delta cannot be
  told from it by name, and is reported the same way (it is equivalent for a restore).

Pure: callers list the store (a directory, an object store) and pass names and sizes in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

FULL = "Full"
DELTA = "Incr"
FINAL_SUFFIX = ".final"
COMPRESSION_SUFFIXES = (".gz", ".lz4", ".zlib")

_NAME = re.compile(
    r"^(?P<kind>Full|Incr)-(?P<start>\d+)-(?P<last>\d+)-(?P<created>\d+)"
    r"(?P<compression>\.gz|\.lz4|\.zlib)?(?P<final>\.final)?$"
)


@dataclass(frozen=True)
class Snapshot:
    kind: str  # FULL or DELTA
    start_revision: int
    last_revision: int
    created: dt.datetime  # UTC, whole seconds (the name's resolution)
    compression: str  # "" or one of COMPRESSION_SUFFIXES
    final: bool
    key: str  # the object name below the store's prefix, e.g. "v2/Full-00000000-00000012-1764..."
    size: int | None = None  # bytes, when the listing says
    superseded: bool = False  # a delta a later full snapshot covers
    compacted: bool = False  # a full snapshot built from the previous full plus deltas


def _after_last(parts: list[str], marker: str) -> list[str] | None:
    """The path elements after the last ``marker`` (the layout version), None without one."""
    if marker not in parts:
        return None
    return parts[len(parts) - parts[::-1].index(marker) :]


def parse(key: str, size: int | None = None) -> Snapshot | None:
    """The snapshot the store object ``key`` (relative to the store's prefix) is, else None."""
    parts = key.strip("/").split("/")
    if (rest := _after_last(parts, "v2")) is not None:
        if len(rest) != 1:  # a chunk of a snapshot being uploaded, or something else
            return None
        name = rest[0]
    elif (rest := _after_last(parts, "v1")) is not None:
        if len(rest) != 2 or not rest[0].startswith("Backup-"):
            return None
        name = rest[1]
    else:
        return None
    m = _NAME.match(name)
    if m is None:
        return None
    start, last = int(m["start"]), int(m["last"])
    if start > last:
        return None
    return Snapshot(
        kind=m["kind"],
        start_revision=start,
        last_revision=last,
        created=dt.datetime.fromtimestamp(int(m["created"]), dt.UTC),
        compression=m["compression"] or "",
        final=m["final"] is not None,
        key=key.strip("/"),
        size=size,
    )


def _order(s: Snapshot) -> tuple[dt.datetime, int, int]:
    # Oldest first; at the same second a delta (smaller last revision first) before the full snapshot that
    # may cover it.
    return (s.created, s.last_revision, 0 if s.kind == DELTA else 1)


def catalogue(objects: Iterable[tuple[str, int | None]]) -> list[Snapshot]:
    """The snapshots among ``(key, size)`` store objects, oldest first, with superseded/compacted marked."""
    found = sorted((s for key, size in objects if (s := parse(key, size)) is not None), key=_order)
    out: list[Snapshot] = []
    fulls = [s for s in found if s.kind == FULL]
    deltas_since_full: list[Snapshot] = []
    for snap in found:
        if snap.kind == DELTA:
            covered = any(f.created >= snap.created and f.last_revision >= snap.last_revision for f in fulls)
            out.append(replace(snap, superseded=covered))
            deltas_since_full.append(snap)
            continue
        compacted = any(d.last_revision == snap.last_revision for d in deltas_since_full)
        out.append(replace(snap, compacted=compacted))
        deltas_since_full = []
    return out


def latest_restore_set(snapshots: list[Snapshot]) -> list[Snapshot]:
    """What a restore would use: the latest full snapshot and the deltas after it (by revision)."""
    fulls = [s for s in snapshots if s.kind == FULL]
    if not fulls:
        return [s for s in snapshots if s.kind == DELTA]
    base = max(fulls, key=lambda s: (s.last_revision, s.created))
    return [base] + [s for s in snapshots if s.kind == DELTA and s.start_revision > base.last_revision]
