"""Container images for the local node, written in pure Python: OCI image-layout archives, nothing pulled.

Contract:

* An :class:`Image` is declarative: a fully qualified, tagged reference, layer entries (:class:`File` copied
  from the host, :class:`Inline` bytes, :class:`Dir`, :class:`Symlink`) and the config fields containerd
  honours (``User``, ``Entrypoint``, ``Cmd``, ``Env``, ``WorkingDir``). Every image also gets
  :func:`base_entries`: ``/etc/passwd`` and ``/etc/group`` with ``root`` and ``nonroot`` (65532:65532, home
  ``/home/nonroot`` owned by it, 0755), ``/root`` and ``/tmp`` (1777). An image entry with the same path
  replaces a base entry; parent directories nobody listed are added as ``root:root 0755``.
* :func:`write_archive` writes one single-layer image as an OCI image layout in a tar (``oci-layout``,
  ``index.json``, ``blobs/sha256/...``), linux/amd64. The layer is deterministic (entries sorted by path,
  mtime 0, no user/group names), so the same inputs give the same digests; the archive lands in a cache
  directory under a name keyed by :func:`image_key` (a digest of the description and of every host file's
  content) and is not written again while it is there.
* Naming: containerd 1.6's importer (``import.go``, ``imageName``) names an image from the index entry's
  ``io.containerd.image.name`` annotation verbatim, without ``--base-name`` and without normalizing it, and
  only falls back to ``org.opencontainers.image.ref.name`` (prefixed with ``--base-name``, or with
  ``import-<date>`` when none is given) when that annotation is absent. So the index carries both: the full
  reference in ``io.containerd.image.name`` and the tag in ``org.opencontainers.image.ref.name`` (what
  ``ctr images export`` writes), and a plain ``ctr images import <archive>`` yields exactly the reference.
  Because containerd keeps it verbatim while the kubelet normalizes pod image names (``busybox`` becomes
  ``docker.io/library/busybox:latest``), references must already be normalized: a registry host with a dot
  or port (or ``localhost``), lowercase path, and a tag (:func:`check_reference`).
* :func:`import_images` runs ``ctr --address <sock> --namespace k8s.io images import <archive>`` per archive
  and checks with ``ctr images ls -q`` that every reference arrived.
* :func:`node_images` describes the four images the real node needs from host binaries (paths are
  arguments; this module does not know where binaries are built), and :func:`image_vector_overwrite` writes
  the ``IMAGEVECTOR_OVERWRITE`` file that points druid's image vector at them.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import struct
import subprocess
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol

FORMAT_VERSION = 1
"""Bump when the archive layout changes, so cached archives of an older layout are not reused."""

NONROOT = 65532
NONROOT_HOME = "/home/nonroot"
PAUSE_USER = 65535
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ARCHITECTURE, OS = "amd64", "linux"

ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'

K8S_NAMESPACE = "k8s.io"

DEFAULT_REGISTRY = "druid.local"
PAUSE, ETCD_WRAPPER, ETCD_BACKUP_RESTORE, BUSYBOX = "pause", "etcd-wrapper", "etcd-backup-restore", "busybox"

VECTOR_SOURCES: Mapping[str, str] = {
    "etcd-wrapper": ETCD_WRAPPER,
    "etcd-wrapper-next": ETCD_WRAPPER,
    "etcd-backup-restore": ETCD_BACKUP_RESTORE,
    "etcd-backup-restore-next": ETCD_BACKUP_RESTORE,
    "alpine": BUSYBOX,
}
"""Image-vector entry → the :func:`node_images` key of the local image that stands in for it."""

BUSYBOX_APPLETS = (
    "[", "ash", "basename", "cat", "chgrp", "chmod", "chown", "cp", "cut", "date", "df", "dirname", "du", "echo",
    "env", "false", "find", "grep", "gunzip", "gzip", "head", "hostname", "id", "kill", "less", "ln", "ls",
    "mkdir", "mktemp", "mount", "mv", "nc", "nslookup", "printf", "ps", "pwd", "readlink", "realpath", "rm",
    "rmdir", "sed", "sh", "sleep", "sort", "stat", "sync", "tail", "tar", "tee", "test", "timeout", "touch",
    "tr", "true", "umount", "uname", "uniq", "vi", "wc", "wget", "which", "whoami", "xargs",
)  # fmt: skip
"""Symlinks to ``busybox`` in ``/bin``: everything init containers (``chown -R``) and debugging need."""

Compression = Literal["none", "gzip"]


class ImageError(ValueError):
    """An image description is invalid (bad reference, path or binary)."""


class ImageImportError(RuntimeError):
    """``ctr images import`` failed or did not produce the expected references."""


# ---------------------------------------------------------------- description


@dataclass(frozen=True)
class File:
    """A regular file copied from ``source`` on the host."""

    path: str
    source: Path
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Inline:
    """A small regular file with the given content."""

    path: str
    data: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Dir:
    path: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str
    uid: int = 0
    gid: int = 0


Entry = File | Inline | Dir | Symlink


@dataclass(frozen=True)
class Image:
    """One single-layer linux/amd64 image; ``user`` is ``uid[:gid]`` (numeric, so no passwd lookup is needed)."""

    ref: str
    entries: tuple[Entry, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = "0:0"
    env: tuple[str, ...] = (f"PATH={PATH}",)
    working_dir: str = "/"
    labels: tuple[tuple[str, str], ...] = ()
    compression: Compression = "none"


# ---------------------------------------------------------------- references


_DOMAIN = r"(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+|[a-zA-Z0-9.-]+:[0-9]+)"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_REFERENCE = re.compile(rf"^(?P<repository>{_DOMAIN}(?:/{_COMPONENT})+):(?P<tag>{_TAG})$")


def check_reference(ref: str) -> tuple[str, str]:
    """``(repository, tag)`` of a normalized, tagged reference such as ``druid.local/etcd-wrapper:v0.1.0``."""
    m = _REFERENCE.match(ref)
    if m is None:
        raise ImageError(
            f"image reference {ref!r} is not normalized: need <registry host with a dot or port>/<path>:<tag> "
            "(containerd keeps imported names verbatim, the kubelet normalizes pod image names)"
        )
    return m["repository"], m["tag"]


# ---------------------------------------------------------------- layer entries


def clean_path(path: str) -> str:
    """The in-layer path: relative, normalized, without ``..``; raises for the root or an escaping path."""
    norm = posixpath.normpath("/" + path).lstrip("/")
    if not norm or ".." in path.split("/"):
        raise ImageError(f"invalid path in image: {path!r}")
    return norm


def passwd() -> bytes:
    return (
        "root:x:0:0:root:/root:/sbin/nologin\n"
        f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:{NONROOT_HOME}:/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    ).encode()


def group() -> bytes:
    return f"root:x:0:\nnonroot:x:{NONROOT}:\nnobody:x:65534:\n".encode()


def base_entries() -> tuple[Entry, ...]:
    """What every image has: users and groups, the homes of root and nonroot, a world-writable ``/tmp``."""
    return (
        Dir("etc"),
        Inline("etc/passwd", passwd()),
        Inline("etc/group", group()),
        Dir("home"),
        Dir(NONROOT_HOME, 0o755, NONROOT, NONROOT),
        Dir("root", 0o700),
        Dir("tmp", 0o1777),
    )


def _sort_key(path: str) -> list[str]:
    return path.split("/")


def layer_entries(image: Image) -> list[Entry]:
    """Base and image entries merged by path (later wins), parents added, sorted so parents come first."""
    by_path: dict[str, Entry] = {}
    for entry in (*base_entries(), *image.entries):
        by_path[clean_path(entry.path)] = entry
    for path in list(by_path):
        parent = posixpath.dirname(path)
        while parent and parent not in by_path:
            by_path[parent] = Dir(parent)
            parent = posixpath.dirname(parent)
    return [by_path[p] for p in sorted(by_path, key=_sort_key)]


def _tarinfo(entry: Entry, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(clean_path(entry.path))
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, entry.uid, entry.gid, "", ""
    if isinstance(entry, Dir):
        info.type, info.mode = tarfile.DIRTYPE, entry.mode
    elif isinstance(entry, Symlink):
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.target
    else:
        info.type, info.mode, info.size = tarfile.REGTYPE, entry.mode, size
    return info


class _Sink(Protocol):
    def write(self, data: Any, /) -> int: ...


class _HashingWriter(io.RawIOBase):
    """Passes writes on to ``out`` while hashing and counting them (``tell`` for tarfile)."""

    def __init__(self, out: _Sink) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._out.write(view)
        self.sha256.update(view)
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


def write_layer(entries: Iterable[Entry], out: IO[bytes], compression: Compression = "none") -> tuple[str, str, int]:
    """Write the layer tar to ``out``; returns ``(diff_id, blob digest, blob size)``."""
    blob = _HashingWriter(out)
    with contextlib.ExitStack() as stack:
        sink: _Sink = blob
        if compression == "gzip":
            sink = stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=blob, mtime=0))
        diff = _HashingWriter(sink)
        with tarfile.open(fileobj=diff, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for entry in entries:
                if isinstance(entry, File):
                    with entry.source.open("rb") as src:
                        tar.addfile(_tarinfo(entry, os.fstat(src.fileno()).st_size), src)
                elif isinstance(entry, Inline):
                    tar.addfile(_tarinfo(entry, len(entry.data)), io.BytesIO(entry.data))
                else:
                    tar.addfile(_tarinfo(entry))
    return diff.digest(), blob.digest(), blob.size


# ---------------------------------------------------------------- config, manifest, index


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(image: Image, diff_id: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {"User": image.user, "Env": list(image.env), "WorkingDir": image.working_dir}
    if image.entrypoint:
        cfg["Entrypoint"] = list(image.entrypoint)
    if image.cmd:
        cfg["Cmd"] = list(image.cmd)
    if image.labels:
        cfg["Labels"] = dict(image.labels)
    return {
        "architecture": ARCHITECTURE,
        "os": OS,
        "created": "1970-01-01T00:00:00Z",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "druid.testing.images"}],
    }


def descriptor(media_type: str, data_digest: str, size: int, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": data_digest, "size": size, **extra}


def manifest(config: bytes, layer: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": descriptor(MEDIA_CONFIG, sha256_digest(config), len(config)),
        "layers": [layer],
    }


def index(ref: str, manifest_bytes: bytes) -> dict[str, Any]:
    _, tag = check_reference(ref)
    entry = descriptor(
        MEDIA_MANIFEST,
        sha256_digest(manifest_bytes),
        len(manifest_bytes),
        annotations={ANNOTATION_IMAGE_NAME: ref, ANNOTATION_REF_NAME: tag},
        platform={"architecture": ARCHITECTURE, "os": OS},
    )
    return {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [entry]}


# ---------------------------------------------------------------- archives


def file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def _entry_key(entry: Entry) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": type(entry).__name__, "path": clean_path(entry.path)}
    doc.update(uid=entry.uid, gid=entry.gid)
    if isinstance(entry, File):
        doc.update(mode=entry.mode, content=file_digest(entry.source))
    elif isinstance(entry, Inline):
        doc.update(mode=entry.mode, content=sha256_digest(entry.data))
    elif isinstance(entry, Dir):
        doc.update(mode=entry.mode)
    else:
        doc.update(target=entry.target)
    return doc


def image_key(image: Image) -> str:
    """Hex digest of everything the archive depends on (file contents included), for the cache name."""
    doc = {
        "format": FORMAT_VERSION,
        "ref": image.ref,
        "config": image_config(image, ""),
        "compression": image.compression,
        "entries": [_entry_key(e) for e in layer_entries(image)],
    }
    return hashlib.sha256(canonical_json(doc)).hexdigest()


def archive_name(image: Image) -> str:
    repository, tag = check_reference(image.ref)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{repository.rsplit('/', 1)[-1]}-{tag}")
    return f"{slug}-{image_key(image)[:32]}.oci.tar"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)


def write_archive(image: Image, cache_dir: Path) -> Path:
    """The image's OCI archive in ``cache_dir`` (written atomically unless an archive with its key exists)."""
    check_reference(image.ref)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / archive_name(image)
    if target.is_file():
        return target
    entries = layer_entries(image)
    layer_tmp = cache_dir / f".{target.name}.{os.getpid()}.layer"
    archive_tmp = cache_dir / f".{target.name}.{os.getpid()}.tmp"
    try:
        with layer_tmp.open("wb") as out:
            diff_id, layer_digest, layer_size = write_layer(entries, out, image.compression)
        media = MEDIA_LAYER_GZIP if image.compression == "gzip" else MEDIA_LAYER
        config = canonical_json(image_config(image, diff_id))
        manifest_bytes = canonical_json(manifest(config, descriptor(media, layer_digest, layer_size)))
        index_bytes = canonical_json(index(image.ref, manifest_bytes))
        blobs = sorted(
            [(sha256_digest(config), config), (sha256_digest(manifest_bytes), manifest_bytes)]
        )  # small blobs; the layer is streamed from its file
        with tarfile.open(archive_tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            _add_bytes(tar, "oci-layout", OCI_LAYOUT)
            _add_bytes(tar, "index.json", index_bytes)
            _add_dir(tar, "blobs")
            _add_dir(tar, "blobs/sha256")
            for blob_digest, data in blobs:
                _add_bytes(tar, f"blobs/sha256/{blob_digest.removeprefix('sha256:')}", data)
            info = tarfile.TarInfo(f"blobs/sha256/{layer_digest.removeprefix('sha256:')}")
            info.size, info.mode, info.mtime = layer_size, 0o644, 0
            with layer_tmp.open("rb") as layer:
                tar.addfile(info, layer)
        os.replace(archive_tmp, target)
    finally:
        layer_tmp.unlink(missing_ok=True)
        archive_tmp.unlink(missing_ok=True)
    return target


def read_member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        member = tar.extractfile(name)
        if member is None:
            raise ImageError(f"{archive}: {name} is not a regular file")
        return member.read()


def archive_refs(archive: Path) -> list[str]:
    """The ``io.containerd.image.name`` of every manifest in the archive's ``index.json``."""
    doc = json.loads(read_member(archive, "index.json"))
    return [m.get("annotations", {}).get(ANNOTATION_IMAGE_NAME, "") for m in doc.get("manifests", [])]


def default_cache_dir() -> Path:
    """``$DRUID_CACHE/images`` (default ``~/.cache/druid/images``), next to the binaries' cache."""
    return Path(os.environ.get("DRUID_CACHE") or Path.home() / ".cache" / "druid") / "images"


# ---------------------------------------------------------------- containerd


def ctr_argv(ctr: str, address: str, namespace: str, *args: str) -> list[str]:
    return [ctr, "--address", address, "--namespace", namespace, *args]


def _run(argv: list[str], timeout: float) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ImageImportError(f"{' '.join(argv)}: {e}") from e
    if done.returncode != 0:
        raise ImageImportError(f"{' '.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def import_images(
    archives: Sequence[Path],
    ctr_address: str,
    *,
    namespace: str = K8S_NAMESPACE,
    ctr: str = "ctr",
    snapshotter: str | None = None,
    timeout: float = 300,
) -> list[str]:
    """Import (and unpack) each archive into containerd; returns the references, checked to be listed.

    No ``--base-name``/``--index-name``: the archives name their image with ``io.containerd.image.name``,
    which containerd uses verbatim. No ``--all-platforms``: the images are single-platform linux/amd64,
    which the default platform matcher of an amd64 host accepts.
    """
    refs: list[str] = []
    for archive in archives:
        extra = ["--snapshotter", snapshotter] if snapshotter else []
        _run(ctr_argv(ctr, ctr_address, namespace, "images", "import", *extra, str(archive)), timeout)
        refs += archive_refs(archive)
    listed = set(_run(ctr_argv(ctr, ctr_address, namespace, "images", "ls", "-q"), timeout).split())
    missing = [r for r in refs if r not in listed]
    if missing:
        raise ImageImportError(f"imported, but containerd does not list {missing} (it lists {sorted(listed)})")
    return refs


# ---------------------------------------------------------------- the real node's images


def is_static_elf(path: Path) -> bool:
    """True for a 64-bit little-endian ELF without a ``PT_INTERP`` program header (no dynamic loader)."""
    with path.open("rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return False
        (phoff,) = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


def binary(path: str, source: Path, mode: int = 0o755) -> File:
    """A root-owned executable; the images have no libc, so it must be statically linked."""
    if not source.is_file():
        raise ImageError(f"{source}: no such file (for {path} in an image)")
    if not is_static_elf(source):
        raise ImageError(f"{source} is not a statically linked x86-64 ELF executable; the images have no libc")
    return File(path, source, mode)


def nonroot_env() -> tuple[str, ...]:
    return (f"PATH={PATH}", f"HOME={NONROOT_HOME}")


def pause_image(pause: Path, ref: str = f"{DEFAULT_REGISTRY}/pause:3.10") -> Image:
    """``/pause`` as entrypoint, as ``65535:65535`` like upstream's pause image: the sandbox needs no rights."""
    return Image(ref, (binary("pause", pause),), entrypoint=("/pause",), user=f"{PAUSE_USER}:{PAUSE_USER}")


def etcd_wrapper_image(
    wrapper: Path, etcd: Path, etcdctl: Path, ref: str = f"{DEFAULT_REGISTRY}/etcd-wrapper:v0.1.0"
) -> Image:
    """Entrypoint ``/etcd-wrapper`` (pods pass ``start-etcd`` and its flags as args), etcd and etcdctl in
    ``/usr/local/bin``; runs as nonroot with ``HOME`` (the wrapper writes ``$HOME/etcd.conf.yaml``)."""
    return Image(
        ref,
        (
            binary("etcd-wrapper", wrapper),
            binary("usr/local/bin/etcd", etcd),
            binary("usr/local/bin/etcdctl", etcdctl),
        ),
        entrypoint=("/etcd-wrapper",),
        user=f"{NONROOT}:{NONROOT}",
        env=nonroot_env(),
        working_dir=NONROOT_HOME,
    )


def etcd_backup_restore_image(etcdbrctl: Path, ref: str = f"{DEFAULT_REGISTRY}/etcdbrctl:v0.1.0") -> Image:
    """Entrypoint ``/etcdbrctl`` as upstream's image (pods and jobs pass ``server``/``compact``/``copy`` as
    args only), also on ``PATH`` as ``/usr/local/bin/etcdbrctl``; nonroot with ``HOME``."""
    return Image(
        ref,
        (binary("etcdbrctl", etcdbrctl), Symlink("usr/local/bin/etcdbrctl", "/etcdbrctl")),
        entrypoint=("/etcdbrctl",),
        user=f"{NONROOT}:{NONROOT}",
        env=nonroot_env(),
        working_dir=NONROOT_HOME,
    )


def busybox_image(busybox: Path = Path("/bin/busybox"), ref: str = f"{DEFAULT_REGISTRY}/busybox:1.35.0") -> Image:
    """Debian's static busybox with ``/bin`` applet links, as root: stands in for the ``alpine`` init
    containers, which run ``chown -R 65532:65532 <dirs>`` (a command resolved on ``PATH``)."""
    links = tuple(Symlink(f"bin/{applet}", "busybox") for applet in BUSYBOX_APPLETS)
    return Image(ref, (binary("bin/busybox", busybox), *links), cmd=("/bin/sh",))


@dataclass(frozen=True)
class NodeBinaries:
    """Host paths of the binaries the node's images are made of."""

    pause: Path
    etcd_wrapper: Path
    etcd: Path
    etcdctl: Path
    etcdbrctl: Path
    busybox: Path = field(default=Path("/bin/busybox"))


def node_images(bins: NodeBinaries, registry: str = DEFAULT_REGISTRY, tag: str = "v0.1.0") -> dict[str, Image]:
    """The real node's images keyed ``pause``, ``etcd-wrapper``, ``etcd-backup-restore``, ``busybox``."""
    return {
        PAUSE: pause_image(bins.pause, f"{registry}/pause:{tag}"),
        ETCD_WRAPPER: etcd_wrapper_image(bins.etcd_wrapper, bins.etcd, bins.etcdctl, f"{registry}/etcd-wrapper:{tag}"),
        ETCD_BACKUP_RESTORE: etcd_backup_restore_image(bins.etcdbrctl, f"{registry}/etcdbrctl:{tag}"),
        BUSYBOX: busybox_image(bins.busybox, f"{registry}/busybox:{tag}"),
    }


def image_vector_overwrite(refs: Mapping[str, str]) -> str:
    """``IMAGEVECTOR_OVERWRITE`` content pointing ``etcd-wrapper(-next)``, ``etcd-backup-restore(-next)`` and
    ``alpine`` at local images. ``refs`` is keyed like :func:`node_images` (other keys, e.g. ``pause``, are
    ignored); each entry gets ``repository`` and ``tag``, which replace the default entry's."""
    missing = sorted({source for source in VECTOR_SOURCES.values() if source not in refs})
    if missing:
        raise ImageError(f"image_vector_overwrite: no reference for {missing}")
    lines = ["# Generated by druid.testing.images: the local node's images (imported, never pulled).", "images:"]
    for name, source in VECTOR_SOURCES.items():
        repository, tag = check_reference(refs[source])
        # Always double-quoted (JSON strings are YAML): a tag like 1e3 or 3.10 must stay a string.
        lines += [f"- name: {json.dumps(name)}", f"  repository: {json.dumps(repository)}", f"  tag: {json.dumps(tag)}"]
    return "\n".join(lines) + "\n"
