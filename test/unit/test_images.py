"""OCI image archives written by ``druid.testing.images``: determinism, layer content, config, digests, naming,
the real node's image definitions and the image-vector overwrite read back by druid's own reader."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from druid.config import images as vector
from druid.testing import images as im

BUSYBOX = Path("/bin/busybox")
needs_busybox = pytest.mark.skipif(
    not (BUSYBOX.is_file() and im.is_static_elf(BUSYBOX)), reason="needs Debian's static /bin/busybox (busybox-static)"
)


def members(archive: Path) -> dict[str, bytes]:
    """Every regular file of a tar by name."""
    out = {}
    with tarfile.open(archive) as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isfile() else None
            if f is not None:
                out[m.name] = f.read()
    return out


def blob(files: dict[str, bytes], digest: str) -> bytes:
    return files["blobs/sha256/" + digest.removeprefix("sha256:")]


def parts(archive: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], bytes]:
    """index, manifest, config and the layer blob of a single-image archive."""
    files = members(archive)
    index = json.loads(files["index.json"])
    manifest = json.loads(blob(files, index["manifests"][0]["digest"]))
    config = json.loads(blob(files, manifest["config"]["digest"]))
    return index, manifest, config, blob(files, manifest["layers"][0]["digest"])


def layer_members(layer: bytes) -> dict[str, tarfile.TarInfo]:
    if layer[:2] == b"\x1f\x8b":
        layer = gzip.decompress(layer)
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return {m.name: m for m in tar.getmembers()}


def sample(tmp_path: Path, content: bytes = b"#!/bin/sh\necho hi\n", **kw: Any) -> im.Image:
    src = tmp_path / "tool"
    src.write_bytes(content)
    return im.Image(
        "druid.local/sample:v1",
        (
            im.File("/opt/tools/tool", src, 0o750, 65532, 65532),
            im.Inline("etc/motd", b"hello\n", 0o600),
            im.Dir("/var/lib/data", 0o700, 65532, 65532),
            im.Symlink("usr/bin/tool", "/opt/tools/tool"),
        ),
        entrypoint=("/opt/tools/tool",),
        cmd=("--flag",),
        user="65532:65532",
        env=im.nonroot_env(),
        working_dir="/home/nonroot",
        **kw,
    )


# ---------------------------------------------------------------- archives


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_archive_is_deterministic_and_cached(tmp_path: Path, compression: im.Compression) -> None:
    image = sample(tmp_path, compression=compression)
    first = im.write_archive(image, tmp_path / "a")
    second = im.write_archive(image, tmp_path / "b")
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()
    stat = first.stat()
    assert im.write_archive(image, tmp_path / "a") == first  # a cache hit: not written again
    assert (first.stat().st_ino, first.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [first.name]  # no temporary files left


def test_cache_key_follows_file_content_and_config(tmp_path: Path) -> None:
    base = im.archive_name(sample(tmp_path))
    assert im.archive_name(sample(tmp_path)) == base
    assert im.archive_name(sample(tmp_path, b"other")) != base
    assert im.archive_name(sample(tmp_path, compression="gzip")) != base
    assert im.archive_name(dataclasses.replace(sample(tmp_path), user="0:0")) != base
    assert im.archive_name(dataclasses.replace(sample(tmp_path), ref="druid.local/sample:v2")) != base
    assert base.startswith("sample-v1-") and base.endswith(".oci.tar")


def test_layer_entries_owners_modes_and_order(tmp_path: Path) -> None:
    _, _, _, layer = parts(im.write_archive(sample(tmp_path), tmp_path / "cache"))
    entries = layer_members(layer)
    names = list(entries)

    def check(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
        m = entries[name]
        assert (m.type, m.mode, m.uid, m.gid, m.mtime, m.uname, m.gname) == (kind, mode, uid, gid, 0, "", ""), name
        return m

    tool = check("opt/tools/tool", tarfile.REGTYPE, 0o750, 65532, 65532)
    assert tool.size == len(b"#!/bin/sh\necho hi\n")
    check("opt", tarfile.DIRTYPE, 0o755)  # parents nobody listed
    check("opt/tools", tarfile.DIRTYPE, 0o755)
    check("etc/motd", tarfile.REGTYPE, 0o600)
    check("var/lib/data", tarfile.DIRTYPE, 0o700, 65532, 65532)
    assert check("usr/bin/tool", tarfile.SYMTYPE, 0o777).linkname == "/opt/tools/tool"
    # The base every image has.
    check("etc/passwd", tarfile.REGTYPE, 0o644)
    check("etc/group", tarfile.REGTYPE, 0o644)
    check("home/nonroot", tarfile.DIRTYPE, 0o755, 65532, 65532)
    check("root", tarfile.DIRTYPE, 0o700)
    check("tmp", tarfile.DIRTYPE, 0o1777)
    # Parents come before children; no absolute or duplicate names.
    for i, name in enumerate(names):
        assert not name.startswith("/")
        parent = os.path.dirname(name)
        assert not parent or names.index(parent) < i
    assert len(set(names)) == len(names)
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        passwd = tar.extractfile("etc/passwd")
        group = tar.extractfile("etc/group")
        assert passwd is not None and group is not None
        assert "nonroot:x:65532:65532:nonroot:/home/nonroot:" in passwd.read().decode()
        assert "nonroot:x:65532:" in group.read().decode()


def test_image_entries_replace_base_entries(tmp_path: Path) -> None:
    image = im.Image("druid.local/x:1", (im.Inline("/etc/passwd", b"me:x:1:1::/:/bin/sh\n"), im.Dir("tmp", 0o700)))
    entries = {im.clean_path(e.path): e for e in im.layer_entries(image)}
    assert entries["etc/passwd"] == im.Inline("/etc/passwd", b"me:x:1:1::/:/bin/sh\n")
    assert entries["tmp"] == im.Dir("tmp", 0o700)
    assert [im.clean_path(e.path) for e in im.layer_entries(image)].count("etc/passwd") == 1


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_config_manifest_and_index(tmp_path: Path, compression: im.Compression) -> None:
    image = sample(tmp_path, compression=compression)
    index, manifest, config, layer = parts(im.write_archive(image, tmp_path / "cache"))
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["config"] == {
        "User": "65532:65532",
        "Entrypoint": ["/opt/tools/tool"],
        "Cmd": ["--flag"],
        "Env": [f"PATH={im.PATH}", "HOME=/home/nonroot"],
        "WorkingDir": "/home/nonroot",
    }
    uncompressed = gzip.decompress(layer) if compression == "gzip" else layer
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(uncompressed).hexdigest()]}
    assert manifest["mediaType"] == im.MEDIA_MANIFEST and manifest["schemaVersion"] == 2
    assert manifest["config"]["mediaType"] == im.MEDIA_CONFIG
    assert manifest["layers"][0]["mediaType"] == (im.MEDIA_LAYER_GZIP if compression == "gzip" else im.MEDIA_LAYER)
    (entry,) = index["manifests"]
    assert index["mediaType"] == im.MEDIA_INDEX and index["schemaVersion"] == 2
    assert entry["annotations"] == {
        "io.containerd.image.name": "druid.local/sample:v1",
        "org.opencontainers.image.ref.name": "v1",
    }
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}


def test_every_descriptor_matches_its_blob(tmp_path: Path) -> None:
    archive = im.write_archive(sample(tmp_path, compression="gzip"), tmp_path / "cache")
    files = members(archive)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in files.items():  # every blob is stored under its own digest
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.removeprefix("blobs/sha256/")
    index = json.loads(files["index.json"])
    manifest_desc = index["manifests"][0]
    manifest = json.loads(blob(files, manifest_desc["digest"]))
    for desc in (manifest_desc, manifest["config"], *manifest["layers"]):
        data = blob(files, desc["digest"])
        assert desc["size"] == len(data)
        assert desc["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert len([n for n in files if n.startswith("blobs/")]) == 3
    assert im.archive_refs(archive) == ["druid.local/sample:v1"]


# ---------------------------------------------------------------- references and paths


@pytest.mark.parametrize(
    "ref", ["druid.local/etcd-wrapper:v0.1.0", "localhost/a/b:1", "registry:5000/x:latest", "a.b/c_d.e-f:T_1.2"]
)
def test_normalized_references(ref: str) -> None:
    repository, tag = im.check_reference(ref)
    assert f"{repository}:{tag}" == ref


@pytest.mark.parametrize(
    "ref", ["busybox", "busybox:1", "library/busybox:1", "druid.local/x", "druid.local/X:1", "druid.local/x@sha256:ab"]
)
def test_references_that_containerd_and_the_kubelet_would_name_differently(ref: str) -> None:
    with pytest.raises(im.ImageError, match="not normalized"):
        im.check_reference(ref)


@pytest.mark.parametrize("path", ["/", "", ".", "a/../../b", "../etc"])
def test_invalid_paths(path: str) -> None:
    with pytest.raises(im.ImageError):
        im.clean_path(path)


def test_write_archive_rejects_unnormalized_reference(tmp_path: Path) -> None:
    with pytest.raises(im.ImageError):
        im.write_archive(im.Image("busybox:latest"), tmp_path)
    assert not (tmp_path / "busybox").exists()


# ---------------------------------------------------------------- the real node's images


def stand_ins() -> im.NodeBinaries:
    # Any static ELF will do for the description; busybox is one.
    return im.NodeBinaries(
        pause=BUSYBOX, etcd_wrapper=BUSYBOX, etcd=BUSYBOX, etcdctl=BUSYBOX, etcdbrctl=BUSYBOX, busybox=BUSYBOX
    )


@needs_busybox
def test_node_images(tmp_path: Path) -> None:
    node = im.node_images(stand_ins(), tag="t1")
    assert {k: v.ref for k, v in node.items()} == {
        "pause": "druid.local/pause:t1",
        "etcd-wrapper": "druid.local/etcd-wrapper:t1",
        "etcd-backup-restore": "druid.local/etcdbrctl:t1",
        "busybox": "druid.local/busybox:t1",
    }
    wanted: dict[str, tuple[dict[str, Any], dict[str, tuple[bytes, int, int, int]]]] = {
        "pause": ({"User": "65535:65535", "Entrypoint": ["/pause"]}, {"pause": (tarfile.REGTYPE, 0o755, 0, 0)}),
        "etcd-wrapper": (
            {"User": "65532:65532", "Entrypoint": ["/etcd-wrapper"], "WorkingDir": "/home/nonroot"},
            {
                "etcd-wrapper": (tarfile.REGTYPE, 0o755, 0, 0),
                "usr/local/bin/etcd": (tarfile.REGTYPE, 0o755, 0, 0),
                "usr/local/bin/etcdctl": (tarfile.REGTYPE, 0o755, 0, 0),
            },
        ),
        "etcd-backup-restore": (
            {"User": "65532:65532", "Entrypoint": ["/etcdbrctl"], "WorkingDir": "/home/nonroot"},
            {"etcdbrctl": (tarfile.REGTYPE, 0o755, 0, 0), "usr/local/bin/etcdbrctl": (tarfile.SYMTYPE, 0o777, 0, 0)},
        ),
        "busybox": (
            {"User": "0:0", "Cmd": ["/bin/sh"]},
            {"bin/busybox": (tarfile.REGTYPE, 0o755, 0, 0), "bin/chown": (tarfile.SYMTYPE, 0o777, 0, 0)},
        ),
    }
    for key, (config_fields, files) in wanted.items():
        _, _, config, layer = parts(im.write_archive(node[key], tmp_path))
        assert {k: config["config"][k] for k in config_fields} == config_fields, key
        env = dict(e.split("=", 1) for e in config["config"]["Env"])
        assert env["PATH"] == im.PATH
        if config_fields["User"] == "65532:65532":
            assert env["HOME"] == "/home/nonroot"
        entries = layer_members(layer)
        for name, (kind, mode, uid, gid) in files.items():
            m = entries[name]
            assert (m.type, m.mode, m.uid, m.gid) == (kind, mode, uid, gid), (key, name)
        assert entries["home/nonroot"].uid == 65532 and entries["tmp"].mode == 0o1777
    # etcdbrctl resolves on PATH (jobs and pods pass only args, the entrypoint is /etcdbrctl).
    _, _, _, layer = parts(im.write_archive(node["etcd-backup-restore"], tmp_path))
    assert layer_members(layer)["usr/local/bin/etcdbrctl"].linkname == "/etcdbrctl"


@needs_busybox
def test_busybox_has_every_applet_the_init_containers_need() -> None:
    listed = set(subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split())
    assert set(im.BUSYBOX_APPLETS) <= listed
    # The alpine init containers of the StatefulSet and the copy-backups Job run `chown -R ...`.
    assert "chown" in im.BUSYBOX_APPLETS and "sh" in im.BUSYBOX_APPLETS
    links = [e for e in im.busybox_image(BUSYBOX).entries if isinstance(e, im.Symlink)]
    assert {e.path.removeprefix("bin/") for e in links} == set(im.BUSYBOX_APPLETS)
    assert all(e.target == "busybox" for e in links)


def test_binaries_must_be_static(tmp_path: Path) -> None:
    with pytest.raises(im.ImageError, match="no such file"):
        im.pause_image(tmp_path / "missing")
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(im.ImageError, match="statically linked"):
        im.pause_image(script)
    dynamic = Path(shutil.which("ls") or "/bin/ls")
    if dynamic.is_file() and not im.is_static_elf(dynamic):
        with pytest.raises(im.ImageError, match="statically linked"):
            im.pause_image(dynamic)


# ---------------------------------------------------------------- image vector


def test_image_vector_overwrite_read_by_druid(tmp_path: Path) -> None:
    refs = {
        "pause": "druid.local/pause:3.10",
        "etcd-wrapper": "druid.local/etcd-wrapper:v0.1.0",
        "etcd-backup-restore": "druid.local/etcdbrctl:v0.1.0",
        "busybox": "druid.local/busybox:1.35.0",
    }
    text = im.image_vector_overwrite(refs)
    parsed = {s.name: s for s in vector.read_image_vector(text, "overwrite")}
    assert set(parsed) == set(im.VECTOR_SOURCES)
    assert parsed["alpine"].repository == "druid.local/busybox" and parsed["alpine"].tag == "1.35.0"
    path = tmp_path / "images.yaml"
    path.write_text(text)
    env = {vector.OVERRIDE_ENV: str(path)}
    expected = vector.Images(
        etcd_wrapper=refs["etcd-wrapper"], etcd_backup_restore=refs["etcd-backup-restore"], alpine=refs["busybox"]
    )
    assert vector.load_images(env) == expected
    assert vector.load_images(env, upgrade_etcd_version=True) == expected


def test_image_vector_overwrite_quotes_numeric_tags() -> None:
    refs = {
        "etcd-wrapper": "druid.local/w:3.10",
        "etcd-backup-restore": "druid.local/b:1",
        "busybox": "druid.local/x:1e3",
    }
    images = vector.images_for(
        vector.merge(vector.default_image_vector(), vector.read_image_vector(im.image_vector_overwrite(refs)))
    )
    assert (images.etcd_wrapper, images.etcd_backup_restore, images.alpine) == (
        "druid.local/w:3.10",
        "druid.local/b:1",
        "druid.local/x:1e3",
    )


def test_image_vector_overwrite_needs_every_image() -> None:
    with pytest.raises(im.ImageError, match="busybox"):
        im.image_vector_overwrite({"etcd-wrapper": "druid.local/w:1", "etcd-backup-restore": "druid.local/b:1"})


# ---------------------------------------------------------------- import (with a fake ctr)


def fake_ctr(tmp_path: Path, listed: str) -> tuple[Path, Path]:
    calls = tmp_path / "calls"
    ctr = tmp_path / "ctr"
    script = f'echo "$@" >> {calls}\ncase "$*" in *"images ls -q"*) printf "{listed}";; *) echo unpacking;; esac\n'
    ctr.write_text("#!/bin/sh\n" + script)
    ctr.chmod(0o755)
    return ctr, calls


def test_import_images_argv_and_check(tmp_path: Path) -> None:
    archive = im.write_archive(im.Image("druid.local/a:1"), tmp_path / "cache")
    ctr, calls = fake_ctr(tmp_path, "druid.local/a:1\\nother.local/b:2\\n")
    assert im.import_images([archive], "/run/x.sock", ctr=str(ctr)) == ["druid.local/a:1"]
    assert calls.read_text().splitlines() == [
        f"--address /run/x.sock --namespace k8s.io images import {archive}",
        "--address /run/x.sock --namespace k8s.io images ls -q",
    ]
    (tmp_path / "other").mkdir()
    ctr, _ = fake_ctr(tmp_path / "other", "other.local/b:2\\n")
    with pytest.raises(im.ImageImportError, match="does not list"):
        im.import_images([archive], "/run/x.sock", ctr=str(ctr))


def test_import_images_reports_ctr_failure(tmp_path: Path) -> None:
    archive = im.write_archive(im.Image("druid.local/a:1"), tmp_path / "cache")
    ctr = tmp_path / "ctr"
    ctr.write_text("#!/bin/sh\necho 'ctr: failed to dial' >&2\nexit 1\n")
    ctr.chmod(0o755)
    with pytest.raises(im.ImageImportError, match="failed to dial"):
        im.import_images([archive], "/run/x.sock", ctr=str(ctr))
