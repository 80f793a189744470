"""The etcd-component protection decision (upstream ``internal/webhook/etcdcomponentprotection/handler.go``),
hardened so that a protected object cannot be relabelled, re-owned or deleted out of its protection.

:func:`review` takes one ``AdmissionRequest`` (the ``request`` of an ``admission.k8s.io/v1``
AdmissionReview, as parsed JSON) and returns a :class:`Decision`. It does no I/O: everything it needs
beyond the request comes from :class:`Lookups`, which answer from druid's informer caches (the Etcds; the
StatefulSets druid manages). A review therefore never costs an API call, and while those caches have not
synced every review that needs them is answered with an error (the webhook fails closed).

1. CREATE / CONNECT ⇒ allowed.
2. The *subjects* of the request — the objects whose protection decides it:

   - ServiceAccount, Service, ConfigMap, Role, RoleBinding, StatefulSet, PodDisruptionBudget, Lease and
     Pod (druid extension; also its ``ephemeralcontainers`` subresource): DELETE ⇒ ``oldObject``; UPDATE ⇒
     ``object`` **and** ``oldObject`` (druid deviation: upstream judges only the new object, so one
     update removing ``managed-by`` or changing ``part-of`` took an object out of protection). A Pod's
     controlling StatefulSet, when druid manages it, is a subject too.
   - ``Scale`` of a StatefulSet ⇒ that StatefulSet as druid's cache has it.
   - PVC DELETE ⇒ the claim's owner found *by name* (druid deviation: upstream lists StatefulSets by the
     PVC's labels, which whoever deletes the claim may have changed): a claim ``<template>-<sts>-<ordinal>``
     belongs to the managed StatefulSet ``<sts>`` that has a claim template ``<template>``, or, when
     druid's cache has no such StatefulSet (deleted, not created yet), to the Etcd ``<sts>`` whose
     volume claim template is ``<template>``.
   - Other kinds ⇒ allowed. Decode errors answer 400; a review whose objects do not match the request's
     namespace and name is answered 400 without naming anything.

   Every subject is judged by steps 3–8; the strictest answer wins (an error, else a denial, else the
   first subject's allowance). A request without subjects (an unmanaged StatefulSet, a claim nobody
   owns, a StatefulSet that does not exist) gets the same allowance in every case, so a crafted review
   learns nothing about objects it did not carry.
3. Not ``app.kubernetes.io/managed-by=etcd-druid`` ⇒ allowed.
4. No ``app.kubernetes.io/part-of`` label or no such Etcd ⇒ allowed with a warning. Not controlled by that
   Etcd (controller owner reference with its UID; for an UPDATE neither before nor after) ⇒ allowed: druid
   never adopts, so an object of someone else that merely carries druid's labels is its owner's to change
   (druid deviation; upstream protects by labels alone).
5. Etcd annotated ``disable-etcd-component-protection`` ⇒ allowed.
6. Runtime kinds (SA, Role, RoleBinding, Lease, PDB, Service) of an Etcd annotated
   ``disable-etcd-runtime-component-creation`` ⇒ allowed.
7. Pods (not their ephemeral containers) may also be updated and deleted by Kubernetes itself — kubelets
   (group ``system:nodes``) and :attr:`Policy.pod_lifecycle` (the controller manager's controllers, the
   scheduler) — and a DELETE of a pod that is already terminating is allowed (the kubelet finishes every
   pod deletion with one). Pod evictions are CREATEs of ``pods/eviction`` and stay allowed.
8. DELETE while the Etcd's deletion is in progress: only the reconciler and exempt service accounts.
9. Otherwise: the reconciler; Lease changes by the Etcd's own service account; exempt service accounts
   unless the Etcd is being reconciled (then only if the object already has a deletionTimestamp).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from druid.api import constants as c
from druid.api import facts
from druid.components import registry
from druid.config.operator import EtcdComponentProtectionWebhookConfiguration
from druid.runtime.objects import Obj

GroupKind = tuple[str, str]
"""(API group, kind); the core group is ``""``."""

SERVICE_ACCOUNT: GroupKind = ("", "ServiceAccount")
SERVICE: GroupKind = ("", "Service")
CONFIG_MAP: GroupKind = ("", "ConfigMap")
PVC: GroupKind = ("", "PersistentVolumeClaim")
POD: GroupKind = ("", "Pod")
ROLE: GroupKind = ("rbac.authorization.k8s.io", "Role")
ROLE_BINDING: GroupKind = ("rbac.authorization.k8s.io", "RoleBinding")
STATEFUL_SET: GroupKind = ("apps", "StatefulSet")
PDB: GroupKind = ("policy", "PodDisruptionBudget")
LEASE: GroupKind = ("coordination.k8s.io", "Lease")
SCALE: GroupKind = ("autoscaling", "Scale")

DECODED_KINDS = frozenset({*((res.group, res.kind) for res in registry.managed_resources()), POD})
RUNTIME_KINDS = frozenset((res.group, res.kind) for res in registry.runtime_resources())
NODES_GROUP = "system:nodes"

# Who in a standard cluster updates and deletes an Etcd's pods (StatefulSet members, compaction Job pods):
# kube-controller-manager (its own user, or one service account per controller with
# --use-service-account-credentials: the StatefulSet and Job controllers, the garbage collectors, node
# lifecycle and taint eviction) and the scheduler (preemption). Kubelets are recognised by the group
# system:nodes.
DEFAULT_POD_LIFECYCLE_USERS: tuple[str, ...] = (
    "system:kube-controller-manager",
    "system:kube-scheduler",
    *(
        f"system:serviceaccount:kube-system:{name}"
        for name in (
            "statefulset-controller",
            "job-controller",
            "generic-garbage-collector",
            "pod-garbage-collector",
            "node-controller",
            "taint-eviction-controller",
        )
    ),
)

ERR_DECODE_REQUEST_OBJECT = "ERR_DECODE_REQUEST_OBJECT"
ERR_CACHE_NOT_SYNCED = "ERR_CACHE_NOT_SYNCED"
MALFORMED = "the AdmissionRequest does not match the objects it carries"
_ORDINAL = re.compile(r"^(?P<stem>.+)-(?:0|[1-9][0-9]*)$")


class WebhookError(Exception):
    """A DruidError: renders as ``[Operation: <op>, Code: <code>] <cause or message>``."""

    def __init__(self, code: str, operation: str, message: str, cause: BaseException | None = None) -> None:
        self.code, self.operation, self.message, self.cause = code, operation, message, cause
        super().__init__(f"[Operation: {operation}, Code: {code}] {cause if cause else message}")

    @property
    def http_status(self) -> int:
        """400 for request objects that cannot be decoded, 500 otherwise (upstream DetermineStatusCode)."""
        return 400 if self.code == ERR_DECODE_REQUEST_OBJECT else 500


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
    """Who may change protected objects: druid's own user, the exempt service accounts and, for pods, the
    users of Kubernetes' pod lifecycle (full user names)."""

    reconciler: str
    exempt: tuple[str, ...] = ()
    pod_lifecycle: tuple[str, ...] = field(default=DEFAULT_POD_LIFECYCLE_USERS)

    @classmethod
    def from_config(cls, cfg: EtcdComponentProtectionWebhookConfiguration) -> Policy:
        lifecycle = cfg.pod_lifecycle_users
        return cls(
            cfg.reconciler_service_account,
            tuple(cfg.exempt_service_accounts),
            DEFAULT_POD_LIFECYCLE_USERS if lifecycle is None else tuple(lifecycle),
        )


class Lookups(Protocol):
    """Reads from druid's caches (never the API server); a missing object is ``None``."""

    def synced(self) -> bool: ...

    def etcd(self, namespace: str, name: str) -> Obj | None: ...

    def statefulset(self, namespace: str, name: str) -> Obj | None:
        """A StatefulSet druid manages (its cache holds only those)."""
        ...


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


def _request_key(request: Mapping[str, Any]) -> tuple[str, str]:
    return str(request.get("namespace") or ""), str(request.get("name") or "")


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


def decode_metadata(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Metadata of the objects a request carries: ``oldObject`` for DELETE, ``object`` and ``oldObject``
    for UPDATE (in that order); each must be in the request's namespace and, when named, have its name."""
    gk, operation = group_kind(request), request.get("operation")
    if operation == "CREATE":
        metas = [_decode(gk, request.get("object"))]
    elif operation == "DELETE":
        metas = [_decode(gk, request.get("oldObject"))]
    elif operation == "UPDATE":
        metas = [_decode(gk, request.get("object")), _decode(gk, request.get("oldObject"))]
    else:
        raise WebhookError(ERR_DECODE_REQUEST_OBJECT, "doDecodeRequestObjects", "unsupported operation")
    namespace, name = _request_key(request)
    for meta in metas:
        if (meta.get("namespace") or "") != namespace or (name and (meta.get("name") or "") != name):
            raise WebhookError(ERR_DECODE_REQUEST_OBJECT, "doDecodeRequestObjects", MALFORMED)
    return metas


def owned_metadata(owner: Obj) -> dict[str, Any] | None:
    """What protects the dependents of a managed object (a StatefulSet's pods and claims): its namespace and
    name with the labels of its Etcd — the Etcd its controller reference names, else its ``part-of`` label.
    None when ``owner`` is not managed by druid."""
    meta = owner.get("metadata") or {}
    labels = labels_of(meta)
    ref = facts.controller_reference(owner)
    if ref is not None and ref.get("kind") == c.KIND_ETCD and ref.get("name"):
        etcd_name: str | None = str(ref["name"])
    elif labels.get(c.LABEL_MANAGED_BY) == c.LABEL_MANAGED_BY_VALUE:
        etcd_name = labels.get(c.LABEL_PART_OF)
    else:
        return None
    out_labels = {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE}
    if etcd_name is not None:
        out_labels[c.LABEL_PART_OF] = etcd_name
    out = {"namespace": meta.get("namespace"), "name": meta.get("name"), "labels": out_labels}
    if ref is not None:  # the dependents are as controlled as their owner (step 4)
        out["ownerReferences"] = [ref]
    return out


def claim_owner(namespace: str, claim: str, lookups: Lookups) -> dict[str, Any] | None:
    """The protection of PVC ``claim``, found by name: ``<template>-<statefulset>-<ordinal>``.

    Every split of the name is tried: the managed StatefulSet ``<statefulset>`` with a claim template
    ``<template>`` (its controller Etcd protects the claim), else the Etcd ``<statefulset>`` whose volume
    claim template is ``<template>`` (its StatefulSet is gone or not cached yet).
    """
    match = _ORDINAL.match(claim)
    if match is None:
        return None
    stem = match["stem"]
    for i, char in enumerate(stem):
        if char != "-" or i == 0 or i == len(stem) - 1:
            continue
        template, owner = stem[:i], stem[i + 1 :]
        sts = lookups.statefulset(namespace, owner)
        if sts is not None and template in _claim_templates(sts) and (found := owned_metadata(sts)) is not None:
            return {**found, "name": claim}
        etcd = lookups.etcd(namespace, owner)
        if etcd is not None and facts.volume_claim_template_name(etcd) == template:
            labels = {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE, c.LABEL_PART_OF: owner}
            ref = {"kind": c.KIND_ETCD, "name": owner, "uid": facts.uid(etcd), "controller": True}
            return {"namespace": namespace, "name": claim, "labels": labels, "ownerReferences": [ref]}
    return None


def _claim_templates(sts: Obj) -> set[str]:
    templates = (sts.get("spec") or {}).get("volumeClaimTemplates") or ()
    return {str((t.get("metadata") or {}).get("name") or "") for t in templates if isinstance(t, dict)}


def _pod_controllers(namespace: str, metas: list[dict[str, Any]], lookups: Lookups) -> list[dict[str, Any]]:
    """The managed StatefulSets controlling the pod (before or after the update)."""
    out = []
    for meta in metas:
        ref = facts.controller_reference({"metadata": meta})
        if ref is None or ref.get("kind") != "StatefulSet" or not ref.get("name"):
            continue
        sts = lookups.statefulset(namespace, str(ref["name"]))
        if sts is not None and (owned := owned_metadata(sts)) is not None:
            out.append(owned)
    return out


def subjects(request: Mapping[str, Any], lookups: Lookups) -> list[dict[str, Any]] | None:
    """Metadata of the objects whose protection decides the request (see the module docstring); None for
    kinds the webhook does not judge."""
    gk = group_kind(request)
    namespace, name = _request_key(request)
    if gk in DECODED_KINDS:
        metas = decode_metadata(request)
        return metas + _pod_controllers(namespace, metas, lookups) if gk == POD else metas
    if gk == SCALE:
        resource = request.get("resource") or {}
        if (resource.get("group"), resource.get("resource")) != ("apps", "statefulsets"):
            return None
        decode_metadata(request)
        sts = lookups.statefulset(namespace, name)
        owned = owned_metadata(sts) if sts is not None else None
        return [owned] if owned is not None else []
    if gk == PVC:
        decode_metadata(request)
        owner = claim_owner(namespace, name, lookups)
        return [owner] if owner is not None else []
    return None


# ---------------------------------------------------------------------------------------- decision


def review(request: Mapping[str, Any], policy: Policy, lookups: Lookups) -> Decision:
    """Decide one AdmissionRequest (see the module docstring for the order)."""
    operation = str(request.get("operation") or "")
    if operation in ("CREATE", "CONNECT"):
        return Decision.allow(f"operation {operation} is allowed")
    gk = group_kind(request)
    if gk not in DECODED_KINDS and gk not in (SCALE, PVC):
        return Decision.allow(f"resource: {gk_string(gk)} is not supported by EtcdComponents webhook")
    if not lookups.synced():
        error = WebhookError(ERR_CACHE_NOT_SYNCED, "review", "druid's caches have not synced yet")
        return Decision.errored(error.http_status, str(error))
    try:
        metas = subjects(request, lookups)
    except WebhookError as e:
        return Decision.errored(e.http_status, str(e))
    if metas is None:
        return Decision.allow(f"resource: {gk_string(gk)} is not supported by EtcdComponents webhook")
    if not metas:
        namespace, name = _request_key(request)
        return Decision.allow(f"resource: {namespace}/{name} is not managed by druid, skipping validations")
    decisions = [_judge(request, gk, meta, policy, lookups) for meta in metas]
    for decision in decisions:
        if not decision.allowed and decision.code != 403:
            return decision
    for decision in decisions:
        if not decision.allowed:
            return decision
    warnings = tuple(dict.fromkeys(w for d in decisions for w in d.warnings))
    return Decision.allow(decisions[0].message, warnings)


def _judge(
    request: Mapping[str, Any], gk: GroupKind, meta: Mapping[str, Any], policy: Policy, lookups: Lookups
) -> Decision:
    """Steps 3–9 for one subject."""
    labels, key = labels_of(meta), object_key(meta)
    if labels.get(c.LABEL_MANAGED_BY) != c.LABEL_MANAGED_BY_VALUE:
        return Decision.allow(f"resource: {key} is not managed by druid, skipping validations")
    etcd_name = labels.get(c.LABEL_PART_OF)
    if etcd_name is None:
        warning = f"cannot determine parent etcd resource, label {c.LABEL_PART_OF} not found on resource: {key}"
        return Decision.allow(f"resource: {key}  is not part of any Etcd, skipping validations", (warning,))
    etcd = lookups.etcd(str(meta.get("namespace") or ""), etcd_name)
    if etcd is None:
        warning = f"parent Etcd {etcd_name} not found for resource: {key}"
        return Decision.allow(f"resource: {key}  is not part of any Etcd, skipping validations", (warning,))

    name = str((etcd.get("metadata") or {}).get("name") or etcd_name)
    if not _controlled_by(gk, meta, etcd):
        return Decision.allow(f"resource: {key} is not controlled by Etcd {name}, skipping validations")
    if not facts.components_protected(etcd):
        return Decision.allow(
            f"changes allowed, since Etcd {name} has annotation {c.ANNOTATION_DISABLE_COMPONENT_PROTECTION}"
        )
    if gk in RUNTIME_KINDS and not facts.runtime_components_enabled(etcd):
        return Decision.allow(
            f"Etcd {name} has runtime component creation disabled, skipping validations for resource {key}"
        )
    operation = str(request.get("operation") or "")
    user_info = request.get("userInfo") or {}
    user = str(user_info.get("username") or "")
    if gk == POD and (lifecycle := _pod_lifecycle(request, user_info, policy)) is not None:
        return lifecycle
    if operation == "DELETE" and facts.deletion_in_progress(etcd):
        return _during_deletion(user, name, policy)
    return _outside_deletion(user, gk, etcd, meta, policy)


def _controlled_by(gk: GroupKind, meta: Mapping[str, Any], etcd: Obj) -> bool:
    """The subject has the Etcd as controller; a pod, the Etcd's StatefulSet (named after the Etcd). An UPDATE's
    old and new objects are separate subjects and the strictest answer wins, so an update that drops the owner
    reference is still judged as the object was."""
    if facts.controlled_by({"metadata": meta}, facts.uid(etcd)):
        return True
    ref = facts.controller_reference({"metadata": meta}) if gk == POD else None
    name = (etcd.get("metadata") or {}).get("name")
    return ref is not None and ref.get("kind") == "StatefulSet" and bool(name) and ref.get("name") == name


def _pod_lifecycle(request: Mapping[str, Any], user_info: Mapping[str, Any], policy: Policy) -> Decision | None:
    """Step 7: Kubernetes' own pod lifecycle (never ephemeral containers); None when it does not apply."""
    if request.get("subResource"):
        return None
    user, groups = str(user_info.get("username") or ""), user_info.get("groups") or ()
    if user in policy.pod_lifecycle or (NODES_GROUP in groups and user.startswith("system:node:")):
        return Decision.allow(f"pod lifecycle operations by {user} are allowed")
    old = request.get("oldObject")
    if request.get("operation") == "DELETE" and isinstance(old, dict):
        if (old.get("metadata") or {}).get("deletionTimestamp") is not None:
            return Decision.allow("deletion of a pod that is already terminating is allowed")
    return None


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
