"""Facts about an Etcd, read from its raw object: the one home of each, used by every part of druid.

The predicate, the reconciler, the webhook, the secret controller and ``druid status`` all ask these
questions, often of objects that do not parse as an :class:`~druid.api.etcd.Etcd` (a watch event, an
admission request's parent Etcd, a broken spec), so every function here takes the raw dict and tolerates
missing or mistyped fields:

- **reconcile requested**: the druid operation annotation or the gardener one has the value ``reconcile``
  (:func:`reconcile_annotation_keys`, :func:`reconcile_requested`).
- **operation in progress**: ``status.lastOperation`` has the type asked for and the state Processing,
  Error or Requeue (:func:`operation_in_progress` and the two named forms). An Error or a Requeue counts: the
  operation is not finished until it succeeds.
- **never reconciled**: neither ``status.lastOperation`` nor ``status.observedGeneration`` is set.
- **referenced Secrets**: the CA, server and client Secrets of ``spec.etcd.clientUrlTls`` and
  ``spec.backup.tls``, the CA and server Secrets of ``spec.etcd.peerUrlTls``, and
  ``spec.backup.store.secretRef``; all in the Etcd's namespace (a reference's own namespace is ignored, as
  etcd-druid does), in that order, without duplicates (:func:`secret_references`, :func:`referenced_secrets`).
- **runtime components enabled**, **spec reconcile suspended**, **components protected**: whether the
  annotation disabling runtime component creation, suspending spec reconciliation, or disabling the
  component-protection webhook is present (whatever its value).
- **controlled by**: an object's controller owner reference has the owner's UID (``metav1.IsControlledBy``);
  :func:`controller_of` describes an object's controller (or its absence) for messages.
- **legacy owned**: an object without a controller that carries the owner annotations very old etcd-druid
  releases (2020) put on the StatefulSet instead of an owner reference (``gardener.cloud/owned-by:
  <namespace>/<name>``, ``gardener.cloud/owner-type: etcd``) belongs to that Etcd.
- **claim name prefix**: the members' PersistentVolumeClaims are ``<prefix>-<ordinal>``, the prefix being
  ``<volumeClaimTemplate or name>-<name>`` (:func:`claim_name_prefix`).
- **member thresholds**: how long a member Lease may go unrenewed before the member is Unknown, and then
  NotReady (:class:`MemberThresholds`; ``controllers.etcd.etcdMember`` of the operator configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from druid.api import constants as c
from druid.api import names

IN_PROGRESS_STATES = (c.OPERATION_STATE_PROCESSING, c.OPERATION_STATE_ERROR, c.OPERATION_STATE_REQUEUE)
"""lastOperation states of an operation that has not finished."""

_OPERATION_ANNOTATIONS = (c.ANNOTATION_OPERATION, c.ANNOTATION_GARDENER_OPERATION)

_CLIENT = "clientTLSSecretRef"
_TLS_REFS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "spec.etcd.clientUrlTls",
        ("etcd", "clientUrlTls"),
        ("tlsCASecretRef", "serverTLSSecretRef", "clientTLSSecretRef"),
    ),
    ("spec.etcd.peerUrlTls", ("etcd", "peerUrlTls"), ("tlsCASecretRef", "serverTLSSecretRef")),
    ("spec.backup.tls", ("backup", "tls"), ("tlsCASecretRef", "serverTLSSecretRef", "clientTLSSecretRef")),
)
_STORE_SECRET = "spec.backup.store.secretRef"


@dataclass(frozen=True)
class MemberThresholds:
    """Seconds a member Lease may go unrenewed: past ``unknown`` the member is Unknown, past ``unknown +
    not_ready`` NotReady (``controllers.etcd.etcdMember.unknownThreshold`` / ``notReadyThreshold``)."""

    unknown: float = 60.0
    not_ready: float = 300.0


def at(obj: Any, *path: str) -> Any:
    """The value at ``path`` in nested mappings, None where one is missing or not a mapping."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``metadata.annotations`` (empty when absent or not a mapping)."""
    return _mapping(at(obj, "metadata", "annotations"))


def reconcile_annotation_keys(obj: Mapping[str, Any]) -> list[str]:
    """The operation annotations (druid's, then gardener's) whose value is ``reconcile``."""
    notes = annotations_of(obj)
    return [key for key in _OPERATION_ANNOTATIONS if notes.get(key) == c.OPERATION_RECONCILE]


def reconcile_requested(obj: Mapping[str, Any]) -> bool:
    """A user asked for a reconcile through an operation annotation."""
    return bool(reconcile_annotation_keys(obj))


def last_operation(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``status.lastOperation`` (empty when absent)."""
    return _mapping(at(obj, "status", "lastOperation"))


def operation_in_progress(obj: Mapping[str, Any], op_type: str) -> bool:
    """``status.lastOperation`` is of ``op_type`` and not finished (Processing, Error or Requeue)."""
    op = last_operation(obj)
    return op.get("type") == op_type and op.get("state") in IN_PROGRESS_STATES


def reconciliation_in_progress(obj: Mapping[str, Any]) -> bool:
    return operation_in_progress(obj, c.OPERATION_TYPE_RECONCILE)


def deletion_in_progress(obj: Mapping[str, Any]) -> bool:
    return operation_in_progress(obj, c.OPERATION_TYPE_DELETE)


def last_reconcile_succeeded(obj: Mapping[str, Any]) -> bool:
    op = last_operation(obj)
    return op.get("type") == c.OPERATION_TYPE_RECONCILE and op.get("state") == c.OPERATION_STATE_SUCCEEDED


def never_reconciled(obj: Mapping[str, Any]) -> bool:
    """Neither ``status.lastOperation`` nor ``status.observedGeneration`` is set."""
    status = _mapping(obj.get("status"))
    return status.get("lastOperation") is None and status.get("observedGeneration") is None


def runtime_components_enabled(obj: Mapping[str, Any]) -> bool:
    """The annotation disabling runtime component creation is absent."""
    return c.ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION not in annotations_of(obj)


def spec_reconcile_suspended(obj: Mapping[str, Any]) -> bool:
    """The annotation suspending spec reconciliation is present (whatever its value)."""
    return c.ANNOTATION_SUSPEND_SPEC_RECONCILE in annotations_of(obj)


def components_protected(obj: Mapping[str, Any]) -> bool:
    """The annotation disabling the component-protection webhook is absent."""
    return c.ANNOTATION_DISABLE_COMPONENT_PROTECTION not in annotations_of(obj)


def secret_references(etcd: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(Secret name, the spec field referencing it) for every referenced Secret, in spec order."""
    spec = etcd.get("spec")
    refs: list[tuple[str, str]] = []
    for where, path, keys in _TLS_REFS:
        tls = at(spec, *path)
        refs += [(name, where) for key in keys if isinstance(name := at(tls, key, "name"), str) and name]
    store_secret = at(spec, "backup", "store", "secretRef", "name")
    if isinstance(store_secret, str) and store_secret:
        refs.append((store_secret, _STORE_SECRET))
    return list(dict.fromkeys(refs))


def referenced_secrets(etcd: Mapping[str, Any]) -> list[str]:
    """Names of the Secrets ``etcd`` references (its namespace), in spec order, without duplicates."""
    return list(dict.fromkeys(name for name, _ in secret_references(etcd)))


def uid(obj: Mapping[str, Any]) -> str | None:
    value = at(obj, "metadata", "uid")
    return value if isinstance(value, str) else None


def controlled_by(obj: Mapping[str, Any] | None, owner_uid: str | None) -> bool:
    """``metav1.IsControlledBy``: ``obj``'s controller owner reference (the first one) has ``owner_uid``."""
    ref = controller_reference(obj) if owner_uid else None
    return ref is not None and ref.get("uid") == owner_uid


def controller_reference(obj: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``metav1.GetControllerOf``: the first owner reference marked ``controller``, else None."""
    for ref in at(obj, "metadata", "ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller"):
            return ref
    return None


def controller_of(obj: Mapping[str, Any] | None) -> str:
    """``<kind> <name> (uid <uid>)`` of ``obj``'s controller owner reference, or ``no controller``."""
    ref = controller_reference(obj)
    if ref is None:
        return "no controller"
    return f"controller {ref.get('kind') or '?'} {ref.get('name') or '?'} (uid {ref.get('uid') or '?'})"


def legacy_owned_by(obj: Mapping[str, Any] | None, namespace: str, name: str) -> bool:
    """``obj`` has no controller and the owner annotations of old etcd-druid releases name Etcd ``namespace/name``."""
    if obj is None or controller_reference(obj) is not None:
        return False
    notes = annotations_of(obj)
    return (
        notes.get(c.ANNOTATION_LEGACY_OWNED_BY) == f"{namespace}/{name}"
        and notes.get(c.ANNOTATION_LEGACY_OWNER_TYPE) == c.LEGACY_OWNER_TYPE_ETCD
    )


def volume_claim_template_name(etcd: Mapping[str, Any]) -> str:
    """The name of the data volume's claim template: ``spec.volumeClaimTemplate``, else the Etcd's name."""
    template = at(etcd, "spec", "volumeClaimTemplate")
    if isinstance(template, str) and template:
        return template
    name = at(etcd, "metadata", "name")
    return name if isinstance(name, str) else ""


def claim_name_prefix(etcd: Mapping[str, Any]) -> str:
    """``<volumeClaimTemplate or name>-<name>``: the members' claims are this plus ``-<ordinal>``."""
    name = at(etcd, "metadata", "name")
    return names.claim_name_prefix(volume_claim_template_name(etcd), name if isinstance(name, str) else "")
