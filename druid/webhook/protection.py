"""The etcd-component protection decision (upstream ``internal/webhook/etcdcomponentprotection/handler.go``).

:func:`review` takes one ``AdmissionRequest`` (the ``request`` of an ``admission.k8s.io/v1``
AdmissionReview, as parsed JSON) and returns a :class:`Decision`. Its only I/O goes through
:class:`Lookups` (the parent Etcd; StatefulSet metadata for ``statefulsets/scale`` and PVC deletes), so
the decision table is testable without a cluster. Order, messages and codes follow upstream:

1. CREATE / CONNECT ⇒ allowed.
2. Object metadata: ServiceAccount, Service, ConfigMap, Role, RoleBinding, StatefulSet,
   PodDisruptionBudget, Lease from the request (``oldObject`` for DELETE); ``Scale`` of a StatefulSet
   ⇒ the StatefulSet's metadata; PVC ⇒ the one StatefulSet whose labels contain all the PVC's labels
   (none ⇒ allowed, more ⇒ ``ERR_TOO_MANY_MATCHING_STATEFULSETS``); other kinds ⇒ allowed. Decode
   errors answer 400, other errors 500.
3. Not ``app.kubernetes.io/managed-by=etcd-druid`` ⇒ allowed.
4. No ``app.kubernetes.io/part-of`` label or no such Etcd ⇒ allowed with a warning. Not controlled by that
   Etcd (controller owner reference with its UID; for an UPDATE neither before nor after) ⇒ allowed: druid
   never adopts, so an object of someone else that merely carries druid's labels is its owner's to change
   (druid deviation; upstream protects by labels alone).
5. Etcd annotated ``disable-etcd-component-protection`` ⇒ allowed.
6. Runtime kinds (SA, Role, RoleBinding, Lease, PDB, Service) of an Etcd annotated
   ``disable-etcd-runtime-component-creation`` ⇒ allowed.
7. DELETE while the Etcd's deletion is in progress: only the reconciler and exempt service accounts.
8. Otherwise: the reconciler; Lease changes by the Etcd's own service account; exempt service accounts
   unless the Etcd is being reconciled (then only if the object already has a deletionTimestamp).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from druid.api import constants as c
from druid.api import facts
from druid.components import registry
from druid.config.operator import EtcdComponentProtectionWebhookConfiguration
from druid.gocompat import fmt
from druid.runtime.objects import Obj

GroupKind = tuple[str, str]
"""(API group, kind); the core group is ``""``."""

SERVICE_ACCOUNT: GroupKind = ("", "ServiceAccount")
SERVICE: GroupKind = ("", "Service")
CONFIG_MAP: GroupKind = ("", "ConfigMap")
PVC: GroupKind = ("", "PersistentVolumeClaim")
ROLE: GroupKind = ("rbac.authorization.k8s.io", "Role")
ROLE_BINDING: GroupKind = ("rbac.authorization.k8s.io", "RoleBinding")
STATEFUL_SET: GroupKind = ("apps", "StatefulSet")
PDB: GroupKind = ("policy", "PodDisruptionBudget")
LEASE: GroupKind = ("coordination.k8s.io", "Lease")
SCALE: GroupKind = ("autoscaling", "Scale")

DECODED_KINDS = frozenset((res.group, res.kind) for res in registry.managed_resources())
RUNTIME_KINDS = frozenset((res.group, res.kind) for res in registry.runtime_resources())

ERR_DECODE_REQUEST_OBJECT = "ERR_DECODE_REQUEST_OBJECT"
ERR_GET_STATEFULSET = "ERR_GET_SCALE_SUBRESOURCE_PARENT"
ERR_TOO_MANY_MATCHING_STATEFULSETS = "ERR_TOO_MANY_MATCHING_STATEFULSETS"


class WebhookError(Exception):
    """A DruidError: renders as ``[Operation: <op>, Code: <code>] <cause or message>``."""

    def __init__(self, code: str, operation: str, message: str, cause: BaseException | None = None) -> None:
        self.code, self.operation, self.message, self.cause = code, operation, message, cause
        super().__init__(f"[Operation: {operation}, Code: {code}] {cause_text(cause) if cause else message}")

    @property
    def http_status(self) -> int:
        """400 for request objects that cannot be decoded, 500 otherwise (upstream DetermineStatusCode)."""
        return 400 if self.code == ERR_DECODE_REQUEST_OBJECT else 500


def cause_text(error: BaseException) -> str:
    """The API server's message of an ``ApiError`` (like client-go's error string), else ``str(error)``."""
    message = getattr(error, "message", None)
    return message if isinstance(message, str) and message else str(error)


@dataclass(frozen=True)
class Decision:
    """An AdmissionResponse without uid: controller-runtime's Allowed / Denied / Errored."""

    allowed: bool
    code: int
    message: str
    reason: str = ""
    warnings: tuple[str, ...] = ()

    @classmethod
    def allow(cls, message: str, warnings: tuple[str, ...] = ()) -> Decision:
        return cls(True, 200, message, warnings=warnings)

    @classmethod
    def deny(cls, message: str) -> Decision:
        return cls(False, 403, message, reason="Forbidden")

    @classmethod
    def errored(cls, code: int, message: str) -> Decision:
        return cls(False, code, message)

    def response(self, uid: str) -> dict[str, Any]:
        """The ``response`` of an AdmissionReview (metav1.Status as Go encodes it)."""
        status: dict[str, Any] = {"metadata": {}, "code": self.code}
        if self.message:
            status["message"] = self.message
        if self.reason:
            status["reason"] = self.reason
        out: dict[str, Any] = {"uid": uid, "allowed": self.allowed, "status": status}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


@dataclass(frozen=True)
class Policy:
    """Who may change protected objects: druid's own user and the exempt service accounts (full user names)."""

    reconciler: str
    exempt: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg: EtcdComponentProtectionWebhookConfiguration) -> Policy:
        return cls(cfg.reconciler_service_account, tuple(cfg.exempt_service_accounts))


class Lookups(Protocol):
    """Reads the decision needs; errors propagate (a missing Etcd is ``None``, not an error)."""

    async def etcd(self, namespace: str, name: str) -> Obj | None: ...

    async def statefulset(self, namespace: str, name: str) -> Obj: ...

    async def statefulsets(self, namespace: str, labels: Mapping[str, str]) -> list[Obj]: ...


# ---------------------------------------------------------------------------------------- helpers


def group_kind(request: Mapping[str, Any]) -> GroupKind:
    kind = request.get("kind")
    if not isinstance(kind, dict):
        return "", ""
    return str(kind.get("group") or ""), str(kind.get("kind") or "")


def gk_string(gk: GroupKind) -> str:
    """``Kind.group`` (just ``Kind`` for the core group), as Go prints a schema.GroupKind."""
    return f"{gk[1]}.{gk[0]}" if gk[0] else gk[1]


def object_key(meta: Mapping[str, Any]) -> str:
    """``namespace/name`` as Go prints a types.NamespacedName."""
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def labels_of(meta: Mapping[str, Any]) -> dict[str, str]:
    labels = meta.get("labels")
    return dict(labels) if isinstance(labels, dict) else {}


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


# ---------------------------------------------------------------------------------------- decoding


def _decode(gk: GroupKind, raw: Any) -> dict[str, Any]:
    """The metadata of an embedded object (controller-runtime decodes it as unstructured)."""
    if raw is None:
        cause: BaseException = ValueError("there is no content to decode")
    elif not isinstance(raw, dict):
        go_type = {list: "array", str: "string", bool: "bool"}.get(type(raw), "number")
        cause = ValueError(f"json: cannot unmarshal {go_type} into Go value of type map[string]interface {{}}")
    else:
        meta = raw.get("metadata")
        return dict(meta) if isinstance(meta, dict) else {}
    raise WebhookError(
        ERR_DECODE_REQUEST_OBJECT, "decodeObjectAsUnstructured", f"failed to decode object: {gk_string(gk)}", cause
    )


def decode_metadata(request: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata of the object a request is about: ``oldObject`` for DELETE, ``object`` otherwise."""
    gk, operation = group_kind(request), request.get("operation")
    if operation == "CREATE":
        return _decode(gk, request.get("object"))
    if operation == "DELETE":
        return _decode(gk, request.get("oldObject"))
    if operation == "UPDATE":
        new = _decode(gk, request.get("object"))
        _decode(gk, request.get("oldObject"))
        return new
    raise WebhookError(ERR_DECODE_REQUEST_OBJECT, "doDecodeRequestObjects", "unsupported operation")


async def _scaled_statefulset(request: Mapping[str, Any], lookups: Lookups) -> dict[str, Any] | None:
    resource = request.get("resource") or {}
    if (resource.get("group"), resource.get("resource")) != ("apps", "statefulsets"):
        return None
    namespace, name = str(request.get("namespace") or ""), str(request.get("name") or "")
    try:
        sts = await lookups.statefulset(namespace, name)
    except Exception as e:
        raise WebhookError(
            ERR_GET_STATEFULSET,
            "GetStatefulSetPartialObjectMetaFromScaleSubResource",
            f"failed to fetch StatefulSet for scale subresource: {namespace}/{name}",
            e,
        ) from e
    return dict(sts.get("metadata") or {})


async def _claiming_statefulset(request: Mapping[str, Any], lookups: Lookups) -> dict[str, Any] | None:
    labels = labels_of(decode_metadata(request))
    namespace = str(request.get("namespace") or "")
    operation = "GetStatefulSetPartialObjMetaFromPVC"
    if not labels:
        message = f"resource {namespace}/{request.get('name') or ''} does not have any labels"
        raise WebhookError(ERR_GET_STATEFULSET, operation, message)
    try:
        found = await lookups.statefulsets(namespace, labels)
    except Exception as e:
        raise WebhookError(
            ERR_GET_STATEFULSET, operation, f"failed to fetch StatefulSet for labels: {fmt.format_map(labels)}", e
        ) from e
    if len(found) > 1:
        message = f"found more than one StatefulSet for labels: {fmt.format_map(labels)}"
        raise WebhookError(ERR_TOO_MANY_MATCHING_STATEFULSETS, "FetchStatefulSetByLabels", message)
    return dict(found[0].get("metadata") or {}) if found else None


async def subject_metadata(request: Mapping[str, Any], lookups: Lookups) -> dict[str, Any] | None:
    """Metadata of the object whose protection decides the request; None for kinds the webhook ignores."""
    gk = group_kind(request)
    if gk in DECODED_KINDS:
        return decode_metadata(request)
    if gk == SCALE:
        return await _scaled_statefulset(request, lookups)
    if gk == PVC:
        return await _claiming_statefulset(request, lookups)
    return None


# ---------------------------------------------------------------------------------------- decision


async def review(request: Mapping[str, Any], policy: Policy, lookups: Lookups) -> Decision:
    """Decide one AdmissionRequest (see the module docstring for the order)."""
    operation = str(request.get("operation") or "")
    if operation in ("CREATE", "CONNECT"):
        return Decision.allow(f"operation {operation} is allowed")
    gk = group_kind(request)
    try:
        meta = await subject_metadata(request, lookups)
    except WebhookError as e:
        return Decision.errored(e.http_status, str(e))
    if meta is None:
        return Decision.allow(f"resource: {gk_string(gk)} is not supported by EtcdComponents webhook")
    labels, key = labels_of(meta), object_key(meta)
    if labels.get(c.LABEL_MANAGED_BY) != c.LABEL_MANAGED_BY_VALUE:
        return Decision.allow(f"resource: {key} is not managed by druid, skipping validations")

    etcd_name = labels.get(c.LABEL_PART_OF)
    if etcd_name is None:
        warning = f"cannot determine parent etcd resource, label {c.LABEL_PART_OF} not found on resource: {key}"
        return Decision.allow(f"resource: {key}  is not part of any Etcd, skipping validations", (warning,))
    try:
        etcd = await lookups.etcd(str(meta.get("namespace") or ""), etcd_name)
    except Exception as e:
        return Decision.errored(500, cause_text(e))
    if etcd is None:
        warning = f"parent Etcd {etcd_name} not found for resource: {key}"
        return Decision.allow(f"resource: {key}  is not part of any Etcd, skipping validations", (warning,))

    name = str((etcd.get("metadata") or {}).get("name") or etcd_name)
    if not _controlled_by(request, gk, meta, etcd):
        return Decision.allow(f"resource: {key} is not controlled by Etcd {name}, skipping validations")
    if not facts.components_protected(etcd):
        return Decision.allow(
            f"changes allowed, since Etcd {name} has annotation {c.ANNOTATION_DISABLE_COMPONENT_PROTECTION}"
        )
    if gk in RUNTIME_KINDS and not facts.runtime_components_enabled(etcd):
        return Decision.allow(
            f"Etcd {name} has runtime component creation disabled, skipping validations for resource {key}"
        )
    user = str((request.get("userInfo") or {}).get("username") or "")
    if operation == "DELETE" and facts.deletion_in_progress(etcd):
        return _during_deletion(user, name, policy)
    return _outside_deletion(user, gk, etcd, meta, policy)


def _controlled_by(request: Mapping[str, Any], gk: GroupKind, meta: Mapping[str, Any], etcd: Obj) -> bool:
    """The object has the Etcd as controller; for an UPDATE it is enough that the object had it before."""
    owner = facts.uid(etcd)
    if facts.controlled_by({"metadata": meta}, owner):
        return True
    old = request.get("oldObject")
    updated = request.get("operation") == "UPDATE" and gk in DECODED_KINDS
    return updated and isinstance(old, dict) and facts.controlled_by(old, owner)


def _during_deletion(user: str, etcd_name: str, policy: Policy) -> Decision:
    if user == policy.reconciler:
        return Decision.allow(f"deletion of resource by etcd-druid is allowed during deletion of Etcd {etcd_name}")
    if user in policy.exempt:
        return Decision.allow(
            f"deletion of resource by exempt SA {user} is allowed during deletion of Etcd {etcd_name}"
        )
    return Decision.deny(f"no external intervention allowed during ongoing deletion of Etcd {etcd_name} by etcd-druid")


def _outside_deletion(user: str, gk: GroupKind, etcd: Obj, meta: Mapping[str, Any], policy: Policy) -> Decision:
    if user == policy.reconciler:
        return Decision.allow("update of managed resources by etcd-druid is allowed")
    etcd_meta = etcd.get("metadata") or {}
    etcd_name = str(etcd_meta.get("name") or "")
    # Member and snapshot leases are renewed by the etcd pods, which run as the Etcd's own ServiceAccount.
    if gk == LEASE and user.strip() == service_account_user(str(etcd_meta.get("namespace") or ""), etcd_name):
        return Decision.allow("lease resource can be freely updated by etcd members")
    if user in policy.exempt:
        if not facts.reconciliation_in_progress(etcd):
            return Decision.allow(f"operations on resources by exempt service account {user} are allowed")
        if meta.get("deletionTimestamp") is not None:
            return Decision.allow(
                f"deletion of resource by exempt service account {user} is allowed during ongoing reconciliation "
                f"of Etcd {etcd_name}, since deletion timestamp is set on the resource"
            )
    return Decision.deny(
        f"changes from service account {user} are disallowed at the moment. Please consider disabling component "
        f"protection by setting annotation `{c.ANNOTATION_DISABLE_COMPONENT_PROTECTION}` on the parent Etcd resource"
    )
