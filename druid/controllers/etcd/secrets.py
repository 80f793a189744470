"""The index on the Etcd informer that finds the Etcds referencing a Secret.

Which Secrets an Etcd references is :func:`druid.api.facts.referenced_secrets` (upstream secret controller
``isFinalizerNeeded`` / ``mapEtcdToSecret``).
"""

from __future__ import annotations

from typing import Any

from druid.api.facts import referenced_secrets
from druid.runtime.objects import Obj, ObjectKey

SECRET_REFS_INDEX = "secret-refs"
"""Index on the Etcd informer: ``<namespace>/<secret name>`` of every referenced Secret."""


def secret_refs_index(etcd: Obj) -> list[str]:
    namespace = (etcd.get("metadata") or {}).get("namespace") or ""
    return [f"{namespace}/{name}" for name in referenced_secrets(etcd)]


def etcds_referencing(store: Any, namespace: str, name: str) -> list[ObjectKey]:
    """Keys of the cached Etcds that reference Secret ``namespace/name``."""
    return sorted(store.index_keys(SECRET_REFS_INDEX, f"{namespace}/{name}"))


def ensure_index(informer: Any) -> None:
    """Add the secret-refs index to the Etcd informer (once; both controllers share the informer)."""
    try:
        informer.add_indexer(SECRET_REFS_INDEX, secret_refs_index)
    except ValueError:
        pass  # already there
