"""The snapshot catalogue (druid/snapshots.py) and `druid backups` rendering (druid/cli/backups.py)."""

from __future__ import annotations

import base64
import datetime as dt
import random
from pathlib import Path

import pytest

from druid import snapshots
from druid.cli import backups
from druid.cli.ctlcommon import CtlError

T0 = 1_764_000_000


def name(kind: str, start: int, last: int, created: int, suffix: str = "") -> str:
    return f"v2/{kind}-{start:08d}-{last:08d}-{created}{suffix}"


def test_parse_follows_backup_restore_names() -> None:
    s = snapshots.parse("v2/Full-00000000-00000042-1764000000.gz.final", 10)
    assert s is not None
    assert (s.kind, s.start_revision, s.last_revision, s.compression, s.final, s.size) == (
        "Full", 0, 42, ".gz", True, 10
    )
    assert s.created == dt.datetime(2025, 11, 24, 16, 0, tzinfo=dt.UTC)
    delta = snapshots.parse("some/prefix/v2/Incr-00000043-00000050-1764000010")
    assert delta is not None and (delta.kind, delta.start_revision, delta.last_revision) == ("Incr", 43, 50)
    old = snapshots.parse("v1/Backup-1764000000/Full-00000000-00000007-1764000000")
    assert old is not None and old.last_revision == 7
    for not_a_snapshot in (
        "v2/Full-00000000-00000042-1764000000/0000000001",  # a chunk of an upload
        "v2/Full-00000010-00000009-1764000000",  # start after last
        "v2/Chunk-00000000-00000001-1764000000",
        "v2/Full-0-1",
        "v2/Full-00000000-00000001-1764000000.bz2",
        "v1/Full-00000000-00000001-1764000000",  # v1 needs its Backup-<ts> directory
        "Full-00000000-00000001-1764000000",  # no layout version
        "v2/notes.txt",
    ):
        assert snapshots.parse(not_a_snapshot) is None, not_a_snapshot


def test_catalogue_marks_superseded_deltas_and_compacted_fulls() -> None:
    objects = [
        (name("Full", 0, 10, T0), 100),
        (name("Incr", 11, 20, T0 + 10), 5),
        (name("Incr", 21, 30, T0 + 20), 5),
        (name("Full", 0, 30, T0 + 30), 120),  # built from the full + deltas up to 30: compaction's output
        (name("Incr", 31, 40, T0 + 40), 5),
        (name("Full", 0, 45, T0 + 50), 130),  # a scheduled full with writes since the last delta
        (name("Incr", 46, 50, T0 + 60), 5),
        ("v2/README", 1),
    ]
    random.Random(1).shuffle(objects)
    found = snapshots.catalogue(objects)
    assert [(s.kind, s.last_revision) for s in found] == [
        ("Full", 10), ("Incr", 20), ("Incr", 30), ("Full", 30), ("Incr", 40), ("Full", 45), ("Incr", 50)
    ]
    assert [s.superseded for s in found if s.kind == "Incr"] == [True, True, True, False]
    assert [s.compacted for s in found if s.kind == "Full"] == [False, True, False]
    used = snapshots.latest_restore_set(found)
    assert [(s.kind, s.last_revision) for s in used] == [("Full", 45), ("Incr", 50)]


def test_catalogue_properties_on_random_chains() -> None:
    """Whatever the chain: the restore set is the newest full and every delta after it; a delta is
    superseded exactly when a later full covers it; nothing a restore needs is marked superseded."""
    rng = random.Random(7)
    for _ in range(200):
        objects, rev, t = [], 0, T0
        for _ in range(rng.randint(1, 12)):
            t += rng.randint(1, 100)
            if rng.random() < 0.3:
                rev += rng.randint(0, 3)
                objects.append((name("Full", 0, rev, t), None))
            else:
                start, rev = rev + 1, rev + rng.randint(1, 9)
                objects.append((name("Incr", start, rev, t), None))
        found = snapshots.catalogue(objects)
        assert len(found) == len(objects)
        fulls = [s for s in found if s.kind == "Full"]
        used = snapshots.latest_restore_set(found)
        if fulls:
            assert used[0] == max(fulls, key=lambda s: (s.last_revision, s.created))
            assert all(not s.superseded for s in used[1:])
        for s in found:
            if s.kind == "Incr":
                covered = any(f.created >= s.created and f.last_revision >= s.last_revision for f in fulls)
                assert s.superseded == covered


def test_store_directory_for_local_and_bucket_dir(tmp_path: Path) -> None:
    etcd = {"spec": {"backup": {"store": {"provider": "Local", "container": "bkt", "prefix": "etcd-main"}}}}
    secret = {"data": {"hostPath": base64.b64encode(str(tmp_path).encode()).decode()}}
    assert backups.store_directory(etcd, secret, None) == tmp_path / "bkt" / "etcd-main"
    assert backups.store_directory(etcd, None, None) == Path("/etc/gardener/local-backupbuckets/bkt/etcd-main")
    assert backups.store_directory(etcd, None, "/mnt/b") == Path("/mnt/b/etcd-main")
    aws = {"spec": {"backup": {"store": {"provider": "aws", "container": "bkt", "prefix": "p"}}}}
    with pytest.raises(CtlError, match=r"provider is S3: .* --bucket-dir"):
        backups.store_directory(aws, None, None)
    assert backups.store_directory(aws, None, "/mnt/b") == Path("/mnt/b/p")
    with pytest.raises(CtlError, match="no backup store"):
        backups.store_directory({"spec": {}}, None, None)


def test_listing_and_rendering(tmp_path: Path) -> None:
    store = tmp_path / "etcd-main" / "v2"
    store.mkdir(parents=True)
    (store / "Full-00000000-00000010-1764000000.gz").write_bytes(b"x" * 2048)
    (store / "Incr-00000011-00000012-1764000100").write_bytes(b"y" * 10)
    (store / "Incr-00000013-00000012-1764000100").write_bytes(b"")  # not a snapshot: start after last
    found = snapshots.catalogue(backups.list_directory(tmp_path))
    assert [(s.kind, s.size) for s in found] == [("Full", 2048), ("Incr", 10)]
    now = dt.datetime.fromtimestamp(1764000160, dt.UTC)
    text = backups.render_text(found, now).splitlines()
    assert text[0].split() == ["KIND", "START", "LAST", "SIZE", "AGE", "NOTE", "NAME"]
    assert text[1].split()[:6] == ["*", "Full", "0", "10", "2.0KiB", "2m"]
    assert text[2].split()[:6] == ["*", "Incr", "11", "12", "10B", "60s"]
    as_json = backups.to_json(found)
    assert as_json[0]["createdOn"] == "2025-11-24T16:00:00Z" and as_json[0]["usedByRestore"] is True
    assert backups.render_text([], now) == "no snapshots"


def test_backups_and_drift_take_one_etcd(capsys: pytest.CaptureFixture[str]) -> None:
    from druid.cli.main import build_parser

    for verb in ("backups", "drift"):
        args = build_parser().parse_args([verb, "shoot--dev/etcd-main", "-o", "json"])
        assert (args.etcd, args.output) == ("shoot--dev/etcd-main", "json")
        # -n with a NAMESPACE/NAME reference is refused before any connection, with exit 2
        bad = build_parser().parse_args([verb, "a/b", "-n", "c"])
        assert bad.handler(bad) == 2
        assert "cannot use --namespace/-n with cross-namespace" in capsys.readouterr().err
