"""What an Etcd may ask for: druid's admission policy (a druid extension; etcd-druid allows everything).

Whoever may edit ``etcds`` otherwise chooses the images druid runs, whether the pods run as root, their
PriorityClass and, for a Local backup store, a host directory mounted read-write into the pods. The policy
(OperatorConfiguration ``etcdAdmissionPolicy``) narrows each; a field left unset allows anything, so the
default policy keeps etcd-druid's behaviour.

:func:`violations` is the one decision, used twice: by the ``etcds`` validating webhook (denies the
CREATE/UPDATE with the reasons) and by the Etcd reconciler before it writes anything (lastOperation Error
``ERR_INVALID_SPEC`` with the same reasons), so the policy holds without the webhook; the compaction
controller applies it before creating a Job, the copy-backups controller applies :func:`store_violation` to
both stores of a task. The webhook reads
only the Etcd; the Local store's host directory from the store Secret's ``hostPath`` key is known to the
reconciler only (``host_path``). Paths are compared after normalisation (``..`` cannot climb out of an
allowed prefix) and by whole path components (``/srv/backups`` does not allow ``/srv/backups-other``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from druid.api import store as store_api
from druid.api.facts import at


@dataclass(frozen=True)
class AdmissionPolicy:
    """None: anything is allowed (etcd-druid's behaviour)."""

    allowed_image_prefixes: tuple[str, ...] | None = None
    allow_run_as_root: bool = True
    allowed_local_store_host_path_prefixes: tuple[str, ...] | None = None
    allowed_priority_classes: tuple[str, ...] | None = None

    @property
    def allows_everything(self) -> bool:
        return self == AdmissionPolicy()


def local_store_path(host_path: str | None, container: str | None) -> str:
    """The host directory a Local store mounts: ``<hostPath>/<container>``, normalised."""
    root = store_api.LOCAL_DEFAULT_HOST_PATH if host_path is None else host_path
    return posixpath.normpath(f"{root}/{container or ''}")


def _under(path: str, prefix: str) -> bool:
    prefix = posixpath.normpath(prefix)
    return prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def violations(policy: AdmissionPolicy, etcd: Mapping[str, Any], host_path: str | None = None) -> list[str]:
    """``<field>: <reason>`` for everything ``etcd`` asks for that ``policy`` forbids (empty: allowed).

    ``host_path``: the Local store Secret's ``hostPath`` when known (None: the default directory, or the
    webhook, which cannot read Secrets and then checks only what the Etcd itself names).
    """
    spec = at(etcd, "spec")
    out: list[str] = []
    if policy.allowed_image_prefixes is not None:
        for field, keys in (("spec.etcd.image", ("etcd", "image")), ("spec.backup.image", ("backup", "image"))):
            image = at(spec, *keys)
            if isinstance(image, str) and image and not image.startswith(policy.allowed_image_prefixes):
                allowed = ", ".join(policy.allowed_image_prefixes) or "none"
                out.append(f"{field}: image {image} is not allowed (allowed prefixes: {allowed})")
    if not policy.allow_run_as_root and at(spec, "runAsRoot") is True:
        out.append("spec.runAsRoot: running etcd as root is not allowed")
    priority = at(spec, "priorityClassName")
    if policy.allowed_priority_classes is not None and isinstance(priority, str) and priority:
        if priority not in policy.allowed_priority_classes:
            allowed = ", ".join(policy.allowed_priority_classes) or "none"
            out.append(f"spec.priorityClassName: {priority} is not allowed (allowed: {allowed})")
    if problem := store_violation(policy, "spec.backup.store", at(spec, "backup", "store"), host_path):
        out.append(problem)
    return out


def store_violation(policy: AdmissionPolicy, field: str, store: Any, host_path: str | None) -> str | None:
    """Why the Local store ``store`` (at ``field``) may not be mounted, or None (also for other providers).
    Used for an Etcd's backup store and for the source and target stores of an EtcdCopyBackupsTask."""
    prefixes = policy.allowed_local_store_host_path_prefixes
    if prefixes is None or not isinstance(store, Mapping) or not _is_local(store.get("provider")):
        return None
    container = store.get("container")
    path = local_store_path(host_path, container if isinstance(container, str) else None)
    if any(_under(path, prefix) for prefix in prefixes):
        return None
    source = f"{field}.container" if host_path is None else f"{field} (secret hostPath)"
    return f"{source}: Local store directory {path} is not allowed (allowed prefixes: {', '.join(prefixes) or 'none'})"


def _is_local(provider: Any) -> bool:
    try:
        return isinstance(provider, str) and store_api.storage_provider(provider) == store_api.LOCAL
    except ValueError:
        return False
