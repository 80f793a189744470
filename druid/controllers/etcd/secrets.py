"""The Secrets an Etcd references, and the index that finds the Etcds referencing a Secret.

Referenced (upstream secret controller ``isFinalizerNeeded`` / ``mapEtcdToSecret``): ``spec.etcd.clientUrlTls``
CA, server and client secrets; ``spec.etcd.peerUrlTls`` CA and server secrets; ``spec.backup.tls`` CA,
server and client secrets; ``spec.backup.store.secretRef``. All in the Etcd's namespace (a reference's own
``namespace`` is ignored, as upstream does). Works on the raw object, so it also works for Etcds whose spec
does not parse.
"""

from __future__ import annotations

from typing import Any

from druid.runtime.objects import Obj, ObjectKey

SECRET_REFS_INDEX = "secret-refs"
"""Index on the Etcd informer: ``<namespace>/<secret name>`` of every referenced Secret."""

_TLS_REFS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("etcd", "clientUrlTls"), ("tlsCASecretRef", "serverTLSSecretRef", "clientTLSSecretRef")),
    (("etcd", "peerUrlTls"), ("tlsCASecretRef", "serverTLSSecretRef")),
    (("backup", "tls"), ("tlsCASecretRef", "serverTLSSecretRef", "clientTLSSecretRef")),
)


def _at(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def referenced_secrets(etcd: Obj) -> list[str]:
    """Names of the Secrets ``etcd`` references, in spec order, without duplicates."""
    spec = etcd.get("spec") or {}
    out: list[str] = []
    for where, refs in _TLS_REFS:
        tls = _at(spec, *where)
        if not isinstance(tls, dict):
            continue
        out += [name for ref in refs if isinstance(name := _at(tls, ref, "name"), str) and name]
    store_secret = _at(spec, "backup", "store", "secretRef", "name")
    if isinstance(store_secret, str) and store_secret:
        out.append(store_secret)
    return list(dict.fromkeys(out))


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
