"""The image vector: which container images druid deploys, with the ``IMAGEVECTOR_OVERWRITE`` override.

The packaged default is ``druid/data/images.yaml`` (upstream's ``internal/images/images.yaml``). If the
environment variable ``IMAGEVECTOR_OVERWRITE`` names a file in the same format, its entries are merged
into the defaults the way etcd-druid (gardener's ``imagevector.Merge``) does it: an entry with the same
name (and runtimeVersion, targetVersion, architectures) replaces the default's fields it sets and keeps
the rest (a new ``repository`` without ``tag`` keeps the default tag; a ``ref`` drops repository and tag);
other entries are appended. Each file is validated first: every entry needs a ``name`` and either a
``ref`` or a ``repository``, never ``ref`` together with ``repository``/``tag``, no empty strings.

Which images the builders get:

- ``load_images(env, upgrade_etcd_version)`` picks ``etcd-wrapper``/``etcd-backup-restore`` (or, with the
  ``UpgradeEtcdVersion`` feature gate, ``etcd-wrapper-next``/``etcd-backup-restore-next``) and ``alpine``;
  the operator loads them once at startup.
- ``spec.etcd.image`` / ``spec.backup.image`` win over the vector when set (``etcd_image`` and
  ``backup_restore_image`` below); alpine always comes from the vector.

This module knows the configuration side only: it imports nothing from ``druid.components``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from importlib import resources
from typing import Any

import yaml

from druid.api.etcd import Etcd
from druid.gocompat import goyaml, strconv

OVERRIDE_ENV = "IMAGEVECTOR_OVERWRITE"


@dataclasses.dataclass(frozen=True)
class Images:
    """Container images the builders use (from the image vector, before spec overrides)."""

    etcd_wrapper: str
    etcd_backup_restore: str
    alpine: str


ETCD_WRAPPER = "etcd-wrapper"
ETCD_BACKUP_RESTORE = "etcd-backup-restore"
ETCD_WRAPPER_NEXT = "etcd-wrapper-next"
ETCD_BACKUP_RESTORE_NEXT = "etcd-backup-restore-next"
ALPINE = "alpine"

_DEFAULT_ARCHITECTURE = "amd64"
_ALL_ARCHITECTURES = ("amd64", "arm64")
_STRING_FIELDS = ("name", "runtimeVersion", "targetVersion", "ref", "repository", "tag", "version")


class ImageVectorError(ValueError):
    """An image vector file is unreadable or invalid, or it lacks a required image."""


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """One entry of an image vector."""

    name: str
    repository: str | None = None
    tag: str | None = None
    ref: str | None = None
    version: str | None = None
    runtime_version: str | None = None
    target_version: str | None = None
    architectures: tuple[str, ...] | None = None

    def key(self) -> tuple[str, str, str, tuple[str, ...] | None]:
        return (self.name, self.runtime_version or "", self.target_version or "", self.architectures)

    def image(self) -> str:
        """The pullable reference: ``ref``, or ``repository:tag`` (``repository@sha256:...`` for digests)."""
        if self.ref is not None:
            return self.ref
        if self.repository is None:
            return ""
        if self.tag is None:
            return self.repository
        return f"{self.repository}{'@' if self.tag.startswith('sha256:') else ':'}{self.tag}"


ImageVector = list[ImageSource]


def _string(value: Any, where: str) -> str | None:
    """A string field as Go's JSON decoding (after sigs.k8s.io/yaml's number coercion) sees it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return strconv.format_float32(value)
    raise ImageVectorError(f"{where}: expected a string, got {type(value).__name__}")


def _field(entry: Mapping[str, Any], name: str) -> Any:
    """Go's JSON field matching: the exact key, else any case-insensitive match."""
    if name in entry:
        return entry[name]
    for key, value in entry.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    return None


def _source(entry: Any, where: str) -> ImageSource:
    if not isinstance(entry, Mapping):
        raise ImageVectorError(f"{where}: expected a mapping, got {type(entry).__name__}")
    fields = {name: _string(_field(entry, name), f"{where}.{name}") for name in _STRING_FIELDS}
    archs = _field(entry, "architectures")
    if archs is not None and not isinstance(archs, list):
        raise ImageVectorError(f"{where}.architectures: expected a list, got {type(archs).__name__}")
    architectures = None
    if archs is not None:
        architectures = tuple(_string(a, f"{where}.architectures[{i}]") or "" for i, a in enumerate(archs))
    return ImageSource(
        name=fields["name"] or "",
        repository=fields["repository"],
        tag=fields["tag"],
        ref=fields["ref"],
        version=fields["version"],
        runtime_version=fields["runtimeVersion"],
        target_version=fields["targetVersion"],
        architectures=architectures,
    )


def _problems(source: ImageSource, where: str) -> list[str]:
    out = []
    if not source.name:
        out.append(f"{where}.name: Required value: image name is required")
    if source.ref is None and source.repository is None:
        out.append(f"{where}.ref/repository: Required value: either image ref or repository+tag is required")
    if source.ref is not None:
        if source.ref == "":
            out.append(f'{where}.ref: Invalid value: "": ref must not be empty if specified')
        if source.repository is not None:
            out.append(f"{where}.repository: Forbidden: cannot specify repository when ref is set")
        if source.tag is not None:
            out.append(f"{where}.tag: Forbidden: cannot specify tag when ref is set")
    else:
        if source.repository == "":
            out.append(f'{where}.repository: Invalid value: "": repository must not be empty if specified')
        if source.tag == "":
            out.append(f'{where}.tag: Invalid value: "": image tag must not be empty if specified')
    return out


def read_image_vector(text: str, origin: str = "image vector") -> ImageVector:
    """Parse and validate an image vector document (``images: [...]``)."""
    try:
        doc = yaml.load(text, Loader=goyaml.Loader)
    except yaml.YAMLError as err:
        raise ImageVectorError(f"{origin}: not valid YAML: {err}") from err
    if doc is None:
        return []
    if not isinstance(doc, Mapping):
        raise ImageVectorError(f"{origin}: expected a mapping with an 'images' list, got {type(doc).__name__}")
    entries = _field(doc, "images")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ImageVectorError(f"{origin}: images: expected a list, got {type(entries).__name__}")
    vector = [_source(entry, f"{origin}: images[{i}]") for i, entry in enumerate(entries)]
    problems = [p for i, source in enumerate(vector) for p in _problems(source, f"images[{i}]")]
    if problems:
        raise ImageVectorError(f"{origin}: invalid image vector: " + "; ".join(problems))
    return vector


def _merge_source(old: ImageSource, new: ImageSource) -> ImageSource:
    repository = new.repository if new.repository is not None else old.repository
    tag = new.tag if new.tag is not None else old.tag
    version = new.version if new.version is not None else old.version
    if version is None and tag is not None:
        version = old.tag
    ref = new.ref if new.ref is not None or new.repository is not None else old.ref
    if ref is not None:
        repository = tag = None
    return ImageSource(
        name=new.name,
        repository=repository,
        tag=tag,
        ref=ref,
        version=version,
        runtime_version=new.runtime_version if new.runtime_version is not None else old.runtime_version,
        target_version=new.target_version if new.target_version is not None else old.target_version,
        architectures=new.architectures if new.architectures is not None else old.architectures,
    )


def merge(*vectors: ImageVector) -> ImageVector:
    """Later vectors override earlier entries with the same name/versions/architectures; others are appended."""
    out: ImageVector = []
    index: dict[tuple[str, str, str, tuple[str, ...] | None], int] = {}
    for vector in vectors:
        for source in vector:
            key = source.key()
            if key in index:
                out[index[key]] = _merge_source(out[index[key]], source)
            else:
                index[key] = len(out)
                out.append(source)
    return out


def default_image_vector() -> ImageVector:
    text = resources.files("druid").joinpath("data/images.yaml").read_text(encoding="utf-8")
    return read_image_vector(text, "druid/data/images.yaml")


def image_vector(env: Mapping[str, str] | None = None) -> ImageVector:
    """The default vector merged with the file named by ``IMAGEVECTOR_OVERWRITE`` (if set and non-empty)."""
    env = os.environ if env is None else env
    vector = default_image_vector()
    path = env.get(OVERRIDE_ENV, "")
    if not path:
        return vector
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as err:
        raise ImageVectorError(f"{OVERRIDE_ENV}={path}: cannot read image vector overwrite: {err}") from err
    return merge(vector, read_image_vector(text, f"{OVERRIDE_ENV}={path}"))


def _arch_score(source: ImageSource) -> int:
    archs = source.architectures if source.architectures is not None else _ALL_ARCHITECTURES
    if _DEFAULT_ARCHITECTURE not in archs:
        return -1
    return 2 if len(archs) == 1 else 1


def find_image(vector: ImageVector, name: str) -> str:
    """The image named ``name`` for amd64 (an entry only for amd64 beats a multi-arch one; first wins ties)."""
    best: ImageSource | None = None
    best_score = -1
    for source in vector:
        score = _arch_score(source) if source.name == name else -1
        if score >= 0 and (best is None or score > best_score):
            best, best_score = source, score
    if best is None:
        raise ImageVectorError(f"could not find image {name!r} in the image vector")
    return best.image()


def images_for(vector: ImageVector, upgrade_etcd_version: bool = False) -> Images:
    """The builders' images: the ``-next`` etcd-wrapper and backup-restore with ``UpgradeEtcdVersion``."""
    wrapper, backup_restore = (
        (ETCD_WRAPPER_NEXT, ETCD_BACKUP_RESTORE_NEXT) if upgrade_etcd_version else (ETCD_WRAPPER, ETCD_BACKUP_RESTORE)
    )
    return Images(
        etcd_wrapper=find_image(vector, wrapper),
        etcd_backup_restore=find_image(vector, backup_restore),
        alpine=find_image(vector, ALPINE),
    )


def load_images(env: Mapping[str, str] | None = None, upgrade_etcd_version: bool = False) -> Images:
    """Images from the default vector and ``IMAGEVECTOR_OVERWRITE``; raises ``ImageVectorError``."""
    return images_for(image_vector(env), upgrade_etcd_version)


def etcd_image(etcd: Etcd, images: Images) -> str:
    """``spec.etcd.image`` if set (even empty, as upstream), else the vector's etcd-wrapper image."""
    image = etcd.spec.etcd.image
    return images.etcd_wrapper if image is None else image


def backup_restore_image(etcd: Etcd, images: Images) -> str:
    """``spec.backup.image`` if set, else the vector's backup-restore image (also used by compaction jobs)."""
    image = etcd.spec.backup.image
    return images.etcd_backup_restore if image is None else image
