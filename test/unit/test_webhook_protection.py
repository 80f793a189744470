"""The etcd-components protection webhook: decision table (K62–K64), AdmissionReview server over HTTPS,
manager registration and the ValidatingWebhookConfiguration builder."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from druid.api import constants as c
from druid.config.operator import parse
from druid.runtime.client import Kube
from druid.runtime.health import bound_port, serve
from druid.runtime.manager import Manager
from druid.runtime.objects import Obj
from druid.testing.operator import webhook_config
from druid.webhook import configuration as vwc
from druid.webhook.lookups import CacheLookups
from druid.webhook.protection import (
    DEFAULT_POD_LIFECYCLE_USERS,
    MALFORMED,
    Decision,
    Policy,
    review,
)
from druid.webhook.server import add_webhook, server_ssl_context, webhook_app

NS = "shoot--dev"
ETCD = "etcd-main"
RECONCILER = "system:serviceaccount:druid-system:etcd-druid"
EXEMPT = "system:serviceaccount:kube-system:generic-garbage-collector"
ETCD_SA = f"system:serviceaccount:{NS}:{ETCD}"
USER = "alice"
POLICY = Policy(RECONCILER, (EXEMPT,))
MANAGED = {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE, c.LABEL_PART_OF: ETCD}
DISABLE = c.ANNOTATION_DISABLE_COMPONENT_PROTECTION
ETCD_UID = "etcd-uid-1"
CONTROLLED = [{"apiVersion": c.API_VERSION, "kind": c.KIND_ETCD, "name": ETCD, "uid": ETCD_UID, "controller": True}]

# group, version, kind, resource of every kind the webhook decodes itself
KINDS: dict[str, tuple[str, str, str, str]] = {
    "ServiceAccount": ("", "v1", "ServiceAccount", "serviceaccounts"),
    "Service": ("", "v1", "Service", "services"),
    "ConfigMap": ("", "v1", "ConfigMap", "configmaps"),
    "Role": ("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    "StatefulSet": ("apps", "v1", "StatefulSet", "statefulsets"),
    "PodDisruptionBudget": ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    "Lease": ("coordination.k8s.io", "v1", "Lease", "leases"),
    "Pod": ("", "v1", "Pod", "pods"),  # druid extension
}
RUNTIME = ["ServiceAccount", "Role", "RoleBinding", "Lease", "PodDisruptionBudget", "Service"]
PVC = ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
JOB = ("batch", "v1", "Job", "jobs")


def denied_changes(user: str) -> str:
    return (
        f"changes from service account {user} are disallowed at the moment. Please consider disabling component "
        f"protection by setting annotation `{DISABLE}` on the parent Etcd resource"
    )


DELETION_DENIED = f"no external intervention allowed during ongoing deletion of Etcd {ETCD} by etcd-druid"


def etcd(annotations: Mapping[str, str] | None = None, op: tuple[str, str] | None = None) -> Obj:
    obj: Obj = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD,
        "metadata": {"name": ETCD, "namespace": NS, "uid": ETCD_UID},
    }
    if annotations:
        obj["metadata"]["annotations"] = dict(annotations)
    if op:
        obj["status"] = {"lastOperation": {"type": op[0], "state": op[1], "description": "", "runID": "r"}}
    return obj


def meta(
    name: str = "obj", labels: Mapping[str, str] | None = MANAGED, deleting: bool = False, owned: bool = True
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "namespace": NS}
    if owned:
        out["ownerReferences"] = CONTROLLED
    if labels is not None:
        out["labels"] = dict(labels)
    if deleting:
        out["deletionTimestamp"] = "2024-05-01T10:00:00Z"
    return out


def request(
    kind: tuple[str, str, str, str] | str,
    operation: str = "UPDATE",
    user: str = USER,
    metadata: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    group, version, kind_name, resource = KINDS[kind] if isinstance(kind, str) else kind
    m = dict(metadata if metadata is not None else meta())
    obj = {"apiVersion": f"{group}/{version}" if group else version, "kind": kind_name, "metadata": m}
    req: dict[str, Any] = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": group, "version": version, "kind": kind_name},
        "resource": {"group": group, "version": version, "resource": resource},
        "name": m.get("name"),
        "namespace": NS,
        "operation": operation,
        "userInfo": {"username": user, "groups": ["system:authenticated"]},
        "object": None if operation == "DELETE" else obj,
        "oldObject": None if operation == "CREATE" else obj,
    }
    req.update(extra)
    return req


def scale_request(sts: str = ETCD, user: str = USER, resource: str = "statefulsets", group: str = "apps") -> dict:
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": sts, "namespace": NS}}
    return request(
        ("autoscaling", "v1", "Scale", resource),
        user=user,
        metadata=scale["metadata"],
        resource={"group": group, "version": "v1", "resource": resource},
        subResource="scale",
    )


class FakeLookups:
    def __init__(self, *etcds: Obj, statefulsets: tuple[Obj, ...] = (), synced: bool = True) -> None:
        self.etcds = {(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in etcds}
        self.sts = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in statefulsets}
        self.is_synced = synced
        self.calls: list[str] = []

    def synced(self) -> bool:
        return self.is_synced

    def etcd(self, namespace: str, name: str) -> Obj | None:
        self.calls.append(f"etcd {namespace}/{name}")
        return self.etcds.get((namespace, name))

    def statefulset(self, namespace: str, name: str) -> Obj | None:
        self.calls.append(f"sts {namespace}/{name}")
        return self.sts.get((namespace, name))


def sts(
    name: str = ETCD, labels: Mapping[str, str] = MANAGED, template: str | None = None, owner: str | None = ETCD
) -> Obj:
    """A StatefulSet as druid's cache holds it (claim template ``template``, default its name), controlled by
    the Etcd ``owner`` (the test Etcd's UID) unless ``owner`` is None."""
    metadata: dict[str, Any] = {"name": name, "namespace": NS, "labels": dict(labels)}
    if owner is not None:
        metadata["ownerReferences"] = [{**CONTROLLED[0], "name": owner}]
    claim = {"metadata": {"name": template or name}}
    return {"kind": "StatefulSet", "metadata": metadata, "spec": {"volumeClaimTemplates": [claim]}}


def decide(req: dict[str, Any], *etcds: Obj, policy: Policy = POLICY, **kw: Any) -> Decision:
    return review(req, policy, FakeLookups(*etcds, **kw))


def allowed(d: Decision, message: str | None = None) -> bool:
    assert d.allowed and d.code == 200, d
    assert message is None or d.message == message, d.message
    return True


def denied(d: Decision, message: str) -> bool:
    assert not d.allowed and d.code == 403 and d.reason == "Forbidden", d
    assert d.message == message
    return True


# ---------------------------------------------------------------------------------------------------- K62


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("operation", ["UPDATE", "DELETE"])
async def test_k62_non_druid_user_cannot_change_managed_objects(kind: str, operation: str) -> None:
    assert denied(decide(request(kind, operation), etcd()), denied_changes(USER))


async def test_k62_statefulset_scale_is_judged_by_the_statefulset() -> None:
    lookups = FakeLookups(etcd(), statefulsets=(sts(),))
    assert denied(review(scale_request(), POLICY, lookups), denied_changes(USER))
    assert lookups.calls == [f"sts {NS}/{ETCD}", f"etcd {NS}/{ETCD}"]


CLAIM = f"{ETCD}-{ETCD}-0"


@pytest.mark.parametrize("labels", [MANAGED, None, {"app": "relabelled"}, {**MANAGED, c.LABEL_PART_OF: "ghost"}])
async def test_k62_pvc_delete_is_judged_by_the_claim_name_not_its_labels(labels: Any) -> None:
    pvc = request(PVC, "DELETE", metadata=meta(CLAIM, labels))
    other = sts("unrelated", {"app": "x"}, owner=None)
    assert denied(decide(pvc, etcd(), statefulsets=(sts(), other)), denied_changes(USER))
    # The StatefulSet gone (or relabelled out of druid's cache): the Etcd of that name still owns the claim.
    assert denied(decide(pvc, etcd()), denied_changes(USER))


async def test_k62_pvc_owner_is_the_statefulset_controller_and_its_claim_template() -> None:
    etcd_b = etcd()
    etcd_b["metadata"]["name"] = "b"
    owned = sts("b-a-b", {"app": "relabelled"}, template="a", owner="b")  # controller reference decides
    pvc = request(PVC, "DELETE", metadata=meta("a-b-a-b-0", None))
    lookups = FakeLookups(etcd_b, statefulsets=(owned,))
    d = review(pvc, POLICY, lookups)
    assert denied(d, denied_changes(USER).replace(ETCD, "b"))
    other_template = request(PVC, "DELETE", metadata=meta("x-b-a-b-0", None))
    assert allowed(decide(other_template, etcd_b, statefulsets=(owned,)))
    no_ordinal = request(PVC, "DELETE", metadata=meta(f"{ETCD}-{ETCD}", None))
    assert allowed(decide(no_ordinal, etcd(), statefulsets=(sts(),)))


async def test_k62_pvc_of_an_etcd_with_another_claim_template() -> None:
    owner = etcd()
    owner["spec"] = {"volumeClaimTemplate": "data"}
    assert denied(decide(request(PVC, "DELETE", metadata=meta(f"data-{ETCD}-2", None)), owner), denied_changes(USER))
    assert allowed(decide(request(PVC, "DELETE", metadata=meta(CLAIM, None)), owner))


@pytest.mark.parametrize("state", ["Processing", "Error", "Requeue"])
async def test_k62_exempt_service_account_is_denied_while_the_etcd_is_reconciled(state: str) -> None:
    d = decide(request("StatefulSet", user=EXEMPT), etcd(op=("Reconcile", state)))
    assert denied(d, denied_changes(EXEMPT))


@pytest.mark.parametrize("kind", ["ConfigMap", "StatefulSet", "ServiceAccount"])
async def test_k62_etcd_service_account_may_only_change_leases(kind: str) -> None:
    assert denied(decide(request(kind, user=ETCD_SA), etcd()), denied_changes(ETCD_SA))


async def test_k62_lease_rule_needs_the_etcd_service_account_of_the_etcd_namespace() -> None:
    other = f"system:serviceaccount:other:{ETCD}"
    assert denied(decide(request("Lease", user=other), etcd()), denied_changes(other))


@pytest.mark.parametrize("kind", ["ConfigMap", "StatefulSet"])
async def test_k62_configmap_and_statefulset_stay_protected_without_runtime_components(kind: str) -> None:
    owner = etcd({c.ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION: ""})
    assert denied(decide(request(kind), owner), denied_changes(USER))


async def test_objects_not_controlled_by_the_etcd_are_not_protected() -> None:
    """druid never adopts: an object that only carries druid's labels stays its owner's to change (issue 13,
    finding 3); removing the controller reference in the same UPDATE does not unprotect one that is the Etcd's."""
    other = [{**CONTROLLED[0], "uid": "someone-else"}]
    for owners in ([], other):
        m = {**meta("victim-config"), "ownerReferences": owners}
        for operation in ("UPDATE", "DELETE"):
            d = decide(request("ConfigMap", operation, metadata=m), etcd())
            assert allowed(d, f"resource: {NS}/victim-config is not controlled by Etcd {ETCD}, skipping validations")
    req = request("ConfigMap", metadata={**meta("cm"), "ownerReferences": []})
    req["oldObject"] = {"metadata": meta("cm")}
    assert denied(decide(req, etcd()), denied_changes(USER))


async def test_k62_update_is_judged_on_the_new_object() -> None:
    req = request("ConfigMap")
    req["oldObject"] = {"metadata": meta(labels={})}  # labels added by the update: protected now
    assert denied(decide(req, etcd()), denied_changes(USER))


@pytest.mark.parametrize(
    "new_labels",
    [{}, {c.LABEL_MANAGED_BY: "not-druid", c.LABEL_PART_OF: ETCD}, {**MANAGED, c.LABEL_PART_OF: "nonexistent"}],
)
@pytest.mark.parametrize("kind", ["StatefulSet", "ConfigMap", "Pod"])
async def test_k62_update_is_judged_on_the_old_object_too(kind: str, new_labels: dict[str, str]) -> None:
    """Relabelling a managed object out of protection is itself a protected change."""
    req = request(kind)
    req["object"] = {"metadata": meta(labels=new_labels)}
    assert denied(decide(req, etcd()), denied_changes(USER))
    reconciler = request(kind, user=RECONCILER)
    reconciler["object"] = {"metadata": meta(labels=new_labels)}
    assert allowed(decide(reconciler, etcd()))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.update(namespace="elsewhere"),
        lambda r: r.update(name="other"),
        lambda r: r["oldObject"]["metadata"].update(namespace="elsewhere"),
    ],
)
async def test_k62_reviews_whose_objects_do_not_match_the_request_are_refused_without_names(mutate: Any) -> None:
    req = request("ConfigMap")
    req["oldObject"] = json.loads(json.dumps(req["oldObject"]))
    mutate(req)
    d = decide(req, etcd())
    assert (d.allowed, d.code) == (False, 400)
    assert d.message == f"[Operation: doDecodeRequestObjects, Code: ERR_DECODE_REQUEST_OBJECT] {MALFORMED}"
    assert ETCD not in d.message and NS not in d.message


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(object=None), "there is no content to decode"),
        (lambda r: r.update(oldObject=None), "there is no content to decode"),
        (lambda r: r.update(object=[1]), "json: cannot unmarshal array into Go value of type map[string]interface {}"),
    ],
)
async def test_k62_undecodable_objects_are_a_bad_request(mutate: Any, message: str) -> None:
    req = request("ConfigMap")
    mutate(req)
    d = decide(req, etcd())
    assert (d.allowed, d.code) == (False, 400)
    assert d.message == f"[Operation: decodeObjectAsUnstructured, Code: ERR_DECODE_REQUEST_OBJECT] {message}"


async def test_k62_unknown_operation_is_a_bad_request() -> None:
    d = decide(request("ConfigMap", "PATCH"), etcd())
    assert d == Decision.errored(
        400, "[Operation: doDecodeRequestObjects, Code: ERR_DECODE_REQUEST_OBJECT] unsupported operation"
    )


async def test_k62_unsynced_caches_fail_closed_without_reading_anything() -> None:
    lookups = FakeLookups(etcd(), synced=False)
    d = review(request("ConfigMap"), POLICY, lookups)
    assert d == Decision.errored(
        500, "[Operation: review, Code: ERR_CACHE_NOT_SYNCED] druid's caches have not synced yet"
    )
    assert lookups.calls == []
    assert allowed(review(request(JOB), POLICY, lookups))  # kinds it does not judge need no cache


@pytest.mark.parametrize(
    "req",
    [
        scale_request("gone"),
        scale_request("web"),
        request(PVC, "DELETE", metadata=meta("gone-gone-0", MANAGED)),
        request(PVC, "DELETE", metadata=meta("web-web-0", MANAGED)),
    ],
)
async def test_k62_objects_that_do_not_exist_and_unmanaged_ones_get_the_same_answer(req: dict[str, Any]) -> None:
    """A crafted review learns nothing about objects it did not carry: missing or someone else's, same answer."""
    d = decide(req, etcd(), statefulsets=(sts("web", {"app": "web"}, owner=None),))
    assert allowed(d, f"resource: {NS}/{req['name']} is not managed by druid, skipping validations")
    assert d.warnings == ()


def pod_request(operation: str = "DELETE", user: str = USER, deleting: bool = False, **extra: Any) -> dict[str, Any]:
    metadata = meta(f"{ETCD}-0", deleting=deleting)
    metadata["ownerReferences"] = [{"kind": "StatefulSet", "name": ETCD, "controller": True, "uid": "s"}]
    return request(("", "v1", "Pod", "pods"), operation, user, metadata=metadata, **extra)


@pytest.mark.parametrize("operation", ["UPDATE", "DELETE"])
async def test_k62_pods_of_an_etcd_are_protected(operation: str) -> None:
    assert denied(decide(pod_request(operation), etcd()), denied_changes(USER))
    ephemeral = pod_request("UPDATE", subResource="ephemeralcontainers")
    assert denied(decide(ephemeral, etcd()), denied_changes(USER))
    assert allowed(decide(pod_request(operation, RECONCILER), etcd()))


async def test_k62_pod_relabelled_and_disowned_is_still_protected_by_its_statefulset() -> None:
    req = pod_request("UPDATE")
    req["object"] = {"metadata": meta(f"{ETCD}-0", labels={})}
    req["oldObject"]["metadata"]["labels"] = {}  # labels gone already: the controlling StatefulSet decides
    assert denied(decide(req, etcd(), statefulsets=(sts(),)), denied_changes(USER))
    assert allowed(decide(req, etcd()))  # an unmanaged StatefulSet (not in druid's cache) protects nothing


@pytest.mark.parametrize("user", [*DEFAULT_POD_LIFECYCLE_USERS, "system:node:worker-1"])
async def test_k63_kubernetes_pod_lifecycle_may_update_and_delete_pods(user: str) -> None:
    groups = {"userInfo": {"username": user, "groups": ["system:nodes"] if user.startswith("system:node:") else []}}
    for operation in ("UPDATE", "DELETE"):
        assert allowed(decide(pod_request(operation, **groups), etcd(op=("Delete", "Processing"))))
    ephemeral = pod_request("UPDATE", subResource="ephemeralcontainers", **groups)
    no_exempt = Policy(RECONCILER)  # (the garbage collector is EXEMPT in POLICY)
    assert denied(decide(ephemeral, etcd(), policy=no_exempt), denied_changes(user))
    assert denied(decide(request("ConfigMap", user=user), etcd(), policy=no_exempt), denied_changes(user))


async def test_k63_node_name_without_the_nodes_group_is_not_a_kubelet() -> None:
    assert denied(decide(pod_request(user="system:node:worker-1"), etcd()), denied_changes("system:node:worker-1"))


async def test_k63_deleting_a_terminating_pod_is_allowed() -> None:
    assert allowed(decide(pod_request("DELETE", deleting=True), etcd()))
    assert denied(decide(pod_request("UPDATE", deleting=True), etcd()), denied_changes(USER))


# ---------------------------------------------------------------------------------------------------- K63


@pytest.mark.parametrize("operation", ["CREATE", "CONNECT"])
async def test_k63_create_and_connect_are_allowed(operation: str) -> None:
    lookups = FakeLookups()
    d = review(request("StatefulSet", operation), POLICY, lookups)
    assert allowed(d, f"operation {operation} is allowed")
    assert lookups.calls == []


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("operation", ["UPDATE", "DELETE"])
async def test_k63_reconciler_may_change_everything(kind: str, operation: str) -> None:
    d = decide(request(kind, operation, RECONCILER), etcd(op=("Reconcile", "Processing")))
    assert allowed(d, "update of managed resources by etcd-druid is allowed")


async def test_k63_reconciler_from_the_deprecated_fqdn() -> None:
    cfg, _ = parse(
        {
            "apiVersion": "config.druid.gardener.cloud/v1alpha1",
            "kind": "OperatorConfiguration",
            "webhooks": {"etcdComponentProtection": {"enabled": True, "reconcilerServiceAccountFQDN": "druid-user"}},
        }
    )
    policy = Policy.from_config(cfg.webhooks.etcd_component_protection)
    assert policy == Policy("druid-user", ())
    assert allowed(decide(request("ConfigMap", user="druid-user"), etcd(), policy=policy))


@pytest.mark.parametrize("operation", ["UPDATE", "DELETE"])
@pytest.mark.parametrize("user", [ETCD_SA, f" {ETCD_SA} "])
async def test_k63_etcd_members_may_change_their_leases(operation: str, user: str) -> None:
    d = decide(request("Lease", operation, user), etcd(op=("Reconcile", "Processing")))
    assert allowed(d, "lease resource can be freely updated by etcd members")


@pytest.mark.parametrize("op", [None, ("Reconcile", "Succeeded"), ("Delete", "Processing")])
@pytest.mark.parametrize("operation", ["UPDATE", "DELETE"])
async def test_k63_exempt_service_account_is_allowed_while_not_reconciling(op: Any, operation: str) -> None:
    d = decide(request("StatefulSet", operation, EXEMPT), etcd(op=op))
    expected = f"operations on resources by exempt service account {EXEMPT} are allowed"
    if operation == "DELETE" and op == ("Delete", "Processing"):
        expected = f"deletion of resource by exempt SA {EXEMPT} is allowed during deletion of Etcd {ETCD}"
    assert allowed(d, expected)


async def test_k63_exempt_service_account_may_finish_deleting_objects_during_reconciliation() -> None:
    req = request("StatefulSet", "UPDATE", EXEMPT, meta(ETCD, deleting=True))
    assert allowed(
        decide(req, etcd(op=("Reconcile", "Processing"))),
        f"deletion of resource by exempt service account {EXEMPT} is allowed during ongoing reconciliation of "
        f"Etcd {ETCD}, since deletion timestamp is set on the resource",
    )


@pytest.mark.parametrize("operation", ["UPDATE", "DELETE"])
async def test_k63_disable_protection_annotation_allows_everyone(operation: str) -> None:
    owner = etcd({DISABLE: ""}, op=("Delete", "Processing"))
    d = decide(request("StatefulSet", operation), owner)
    assert allowed(d, f"changes allowed, since Etcd {ETCD} has annotation {DISABLE}")


@pytest.mark.parametrize("kind", RUNTIME)
async def test_k63_runtime_kinds_are_free_while_runtime_creation_is_disabled(kind: str) -> None:
    owner = etcd({c.ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION: "true"})
    d = decide(request(kind, "DELETE", metadata=meta("x")), owner)
    assert allowed(d, f"Etcd {ETCD} has runtime component creation disabled, skipping validations for resource {NS}/x")


@pytest.mark.parametrize("labels", [None, {}, {c.LABEL_MANAGED_BY: "someone-else", c.LABEL_PART_OF: ETCD}])
async def test_k63_unmanaged_objects_are_allowed(labels: Any) -> None:
    lookups = FakeLookups(etcd())
    d = review(request("ConfigMap", metadata=meta("cm", labels)), POLICY, lookups)
    assert allowed(d, f"resource: {NS}/cm is not managed by druid, skipping validations")
    assert lookups.calls == []


async def test_k63_objects_without_part_of_are_allowed_with_a_warning() -> None:
    labels = {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE}
    d = decide(request("ConfigMap", metadata=meta("cm", labels)), etcd())
    assert allowed(d, f"resource: {NS}/cm  is not part of any Etcd, skipping validations")
    assert d.warnings == (
        f"cannot determine parent etcd resource, label app.kubernetes.io/part-of not found on resource: {NS}/cm",
    )


async def test_k63_orphans_are_allowed_with_a_warning() -> None:
    d = decide(request("ConfigMap", metadata=meta("cm", {**MANAGED, c.LABEL_PART_OF: "ghost"})), etcd())
    assert allowed(d, f"resource: {NS}/cm  is not part of any Etcd, skipping validations")
    assert d.warnings == (f"parent Etcd ghost not found for resource: {NS}/cm",)


@pytest.mark.parametrize(
    ("req", "text"),
    [
        (request(JOB), "Job.batch"),
        (scale_request(resource="deployments"), "Scale.autoscaling"),
    ],
)
async def test_k63_other_kinds_are_not_judged(req: dict[str, Any], text: str) -> None:
    assert allowed(decide(req, etcd()), f"resource: {text} is not supported by EtcdComponents webhook")


async def test_k63_pvc_without_a_matching_statefulset_is_allowed() -> None:
    pvc = request(PVC, "DELETE", metadata=meta("data-0", MANAGED))
    d = decide(pvc, etcd(), statefulsets=(sts("other", {"app": "x"}, owner=None),))
    assert allowed(d, f"resource: {NS}/data-0 is not managed by druid, skipping validations")


async def test_k63_scale_of_an_unmanaged_statefulset_is_allowed() -> None:
    d = decide(scale_request("web"), etcd(), statefulsets=(sts("web", {"app": "web"}, owner=None),))
    assert allowed(d, f"resource: {NS}/web is not managed by druid, skipping validations")


# ---------------------------------------------------------------------------------------------------- K64


@pytest.mark.parametrize("state", ["Processing", "Error", "Requeue"])
@pytest.mark.parametrize("kind", [k for k in KINDS if k != "Pod"])  # the garbage collector deletes pods anyway
async def test_k64_only_druid_and_exempt_accounts_delete_during_etcd_deletion(kind: str, state: str) -> None:
    owner = etcd(op=("Delete", state))
    assert denied(decide(request(kind, "DELETE"), owner), DELETION_DENIED)
    assert allowed(
        decide(request(kind, "DELETE", RECONCILER), owner),
        f"deletion of resource by etcd-druid is allowed during deletion of Etcd {ETCD}",
    )
    assert allowed(
        decide(request(kind, "DELETE", EXEMPT), owner),
        f"deletion of resource by exempt SA {EXEMPT} is allowed during deletion of Etcd {ETCD}",
    )


async def test_k64_etcd_members_cannot_delete_leases_during_etcd_deletion() -> None:
    assert denied(decide(request("Lease", "DELETE", ETCD_SA), etcd(op=("Delete", "Processing"))), DELETION_DENIED)


async def test_k64_pvc_and_scale_during_deletion() -> None:
    owner = etcd(op=("Delete", "Processing"))
    pvc = request(PVC, "DELETE", metadata=meta(CLAIM, MANAGED))
    assert denied(decide(pvc, owner, statefulsets=(sts(),)), DELETION_DENIED)
    assert denied(decide(scale_request(), owner, statefulsets=(sts(),)), denied_changes(USER))


async def test_k64_updates_during_deletion_follow_the_update_rules() -> None:
    owner = etcd(op=("Delete", "Processing"))
    assert denied(decide(request("ConfigMap"), owner), denied_changes(USER))
    assert allowed(decide(request("ConfigMap", user=EXEMPT), owner))


async def test_k64_finished_deletion_state_is_not_in_progress() -> None:
    owner = etcd(op=("Delete", "Succeeded"))
    assert denied(decide(request("ConfigMap", "DELETE"), owner), denied_changes(USER))


# ------------------------------------------------------------------------------- wire format and server


def test_k62_decisions_render_like_controller_runtime() -> None:
    assert Decision.deny("no").response("u") == {
        "uid": "u",
        "allowed": False,
        "status": {"metadata": {}, "code": 403, "message": "no", "reason": "Forbidden"},
    }
    assert Decision.allow("ok", ("w",)).response("u") == {
        "uid": "u",
        "allowed": True,
        "status": {"metadata": {}, "code": 200, "message": "ok"},
        "warnings": ["w"],
    }
    assert Decision.errored(400, "bad").response("u")["status"] == {"metadata": {}, "code": 400, "message": "bad"}


@pytest.fixture
async def webhook(pki: tuple[Path, Path]) -> AsyncIterator[tuple[str, ssl.SSLContext, FakeLookups]]:
    lookups = FakeLookups(etcd())
    runner = await serve(webhook_app(POLICY, lookups), "127.0.0.1", 0, ssl_context=server_ssl_context(pki[0]))
    try:
        yield f"https://127.0.0.1:{bound_port(runner)}", ssl.create_default_context(cafile=str(pki[1])), lookups
    finally:
        await runner.cleanup()


async def post(base: tuple[str, ssl.SSLContext, Any], body: Any, content_type: str = "application/json") -> Any:
    url, context, _ = base
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as s,
        s.post(url + "/webhooks/etcdcomponents", data=data, headers={"Content-Type": content_type}, ssl=context) as r,
    ):
        assert r.status == 200
        return await r.json()


@pytest.mark.parametrize("version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
async def test_k62_server_answers_an_admission_review_over_https(webhook: Any, version: str) -> None:
    req = request("ConfigMap")
    answer = await post(webhook, {"apiVersion": version, "kind": "AdmissionReview", "request": req})
    assert answer == {
        "apiVersion": version,
        "kind": "AdmissionReview",
        "response": {
            "uid": req["uid"],
            "allowed": False,
            "status": {"metadata": {}, "code": 403, "reason": "Forbidden", "message": denied_changes(USER)},
        },
    }


async def test_k63_server_passes_warnings(webhook: Any) -> None:
    req = request("ConfigMap", metadata=meta("cm", {**MANAGED, c.LABEL_PART_OF: "ghost"}))
    answer = await post(webhook, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
    assert answer["response"]["allowed"] is True
    assert answer["response"]["warnings"] == [f"parent Etcd ghost not found for resource: {NS}/cm"]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", "application/json", "request body is empty"),
        (b"{}", "text/plain", "contentType=text/plain, expected application/json"),
        (b"{not json", "application/json", "couldn't decode the AdmissionReview"),
        ({"apiVersion": "v1", "kind": "Pod"}, "application/json", "expected an AdmissionReview"),
    ],
)
async def test_k62_server_rejects_malformed_reviews(webhook: Any, body: Any, content_type: str, message: str) -> None:
    answer = await post(webhook, body, content_type)
    assert "apiVersion" not in answer
    response = answer["response"]
    assert (response["allowed"], response["status"]["code"]) == (False, 400)
    assert message in response["status"]["message"]


async def test_k62_server_refuses_oversized_reviews(webhook: Any) -> None:
    response = (await post(webhook, b" " * (7 * 1024 * 1024 + 1)))["response"]
    assert (response["allowed"], response["status"]["code"]) == (False, 413)
    assert response["status"]["message"] == "request entity is too large; limit is 7340032 bytes"


async def test_k62_server_recovers_from_handler_failures(webhook: Any) -> None:
    req = request("ConfigMap")
    req["userInfo"] = ["not", "an", "object"]  # AttributeError inside the decision
    answer = await post(webhook, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
    response = answer["response"]
    assert response["uid"] == req["uid"] and response["allowed"] is False
    assert response["status"]["code"] == 500
    assert response["status"]["message"].endswith(" [recovered]")


# ---------------------------------------------------------------------------------------- registration


def operator_config(cert_dir: Path, enabled: bool = True) -> Any:
    return webhook_config(cert_dir, "druid-system", EXEMPT, enabled=enabled)


def offline_manager() -> Manager:
    return Manager(Kube(client.ApiClient(configuration=client.Configuration(host="https://127.0.0.1:1"))))


async def test_k63_add_webhook_registers_an_https_server_only_when_enabled(pki: tuple[Path, Path]) -> None:
    manager = offline_manager()
    try:
        assert add_webhook(manager, operator_config(pki[0], enabled=False)) is None
        assert manager._extra_servers == []
        app = add_webhook(manager, operator_config(pki[0]))
        assert app is not None
        [(registered, address, port, context)] = manager._extra_servers
        assert (registered, address, port) == (app, "127.0.0.1", 0)
        assert isinstance(context, ssl.SSLContext)
    finally:
        await manager.kube.close()


def test_missing_client_ca_is_named(pki: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        server_ssl_context(pki[0], tmp_path / "no-ca.crt")
    assert info.value.filename == str(tmp_path / "no-ca.crt")
    assert server_ssl_context(pki[0], pki[1]).verify_mode == ssl.CERT_REQUIRED
    assert server_ssl_context(pki[0]).verify_mode == ssl.CERT_NONE


async def test_k63_add_webhook_fails_without_certificates(tmp_path: Path) -> None:
    manager = offline_manager()
    try:
        with pytest.raises(OSError):
            add_webhook(manager, operator_config(tmp_path))
    finally:
        await manager.kube.close()


async def test_k63_lookups_answer_from_the_informer_stores(pki: tuple[Path, Path]) -> None:
    manager = offline_manager()
    try:
        lookups = CacheLookups.of(manager.informers, NS)
        assert not lookups.synced()
        lookups.etcds.store.put(etcd({DISABLE: ""}))
        lookups.statefulsets.store.put(sts())
        assert lookups.etcd(NS, ETCD) is not None and lookups.etcd(NS, "missing") is None
        assert lookups.statefulset(NS, ETCD) is not None and lookups.statefulset("other", ETCD) is None
        # the same informers the Etcd controller uses: druid's filtered StatefulSet cache
        assert lookups.statefulsets.label_selector == "app.kubernetes.io/managed-by=etcd-druid"
    finally:
        await manager.kube.close()


# ---------------------------------------------------------------------------------------- configuration


def test_k62_validating_webhook_configuration_matches_the_chart() -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
    cfg = vwc.validating_webhook_configuration(pem, service=vwc.ServiceReference("garden"))
    assert cfg["metadata"] == {"name": "etcd-druid", "labels": {"app.kubernetes.io/name": "etcd-druid"}}
    components, scale, pvcs, etcds = cfg["webhooks"]
    assert etcds["name"] == "etcds.webhooks.druid.gardener.cloud"
    assert etcds["clientConfig"]["service"]["path"] == "/webhooks/etcds"
    assert [(r["apiGroups"], r["apiVersions"], r["resources"], r["operations"]) for r in etcds["rules"]] == [
        (["druid.gardener.cloud"], ["v1alpha1"], ["etcds"], ["CREATE", "UPDATE"])
    ]
    assert (etcds["failurePolicy"], etcds["sideEffects"]) == ("Fail", "None") and "objectSelector" not in etcds
    assert components["name"] == "etcdcomponents.webhooks.druid.gardener.cloud"
    assert scale["name"] == "stsscale.etcdcomponents.webhooks.druid.gardener.cloud"
    assert pvcs["name"] == "pvc.etcdcomponents.webhooks.druid.gardener.cloud"
    for hook in (components, scale, pvcs):
        assert hook["clientConfig"] == {
            "caBundle": base64.b64encode(pem).decode(),
            "service": {"name": "etcd-druid", "namespace": "garden", "path": "/webhooks/etcdcomponents", "port": 9443},
        }
        assert (hook["failurePolicy"], hook["matchPolicy"], hook["sideEffects"], hook["timeoutSeconds"]) == (
            "Fail",
            "Exact",
            "None",
            10,
        )
        assert hook["admissionReviewVersions"] == ["v1beta1", "v1"]
        assert hook["namespaceSelector"] == {}
    assert components["objectSelector"] == {"matchLabels": {"app.kubernetes.io/managed-by": "etcd-druid"}}
    assert "objectSelector" not in scale and "objectSelector" not in pvcs  # claims are judged by name
    by_resource = {r: rule["operations"] for rule in components["rules"] for r in rule["resources"]}
    update_delete = ["serviceaccounts", "services", "configmaps", "roles", "rolebindings", "statefulsets"]
    update_delete += ["poddisruptionbudgets", "jobs", "leases"]
    assert by_resource == {
        **{resource: ["UPDATE", "DELETE"] for resource in update_delete},
        "pods": ["UPDATE", "DELETE"],
        "pods/ephemeralcontainers": ["UPDATE"],
    }
    assert [(r["resources"], r["operations"]) for r in pvcs["rules"]] == [(["persistentvolumeclaims"], ["DELETE"])]
    assert scale["rules"] == [
        {
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "operations": ["UPDATE", "DELETE"],
            "resources": ["statefulsets/scale"],
            "scope": "*",
        }
    ]


def test_k62_validating_webhook_configuration_with_a_url() -> None:
    url = vwc.webhook_url("127.0.0.1", 9443)
    selector = {"matchLabels": {"kubernetes.io/metadata.name": "t"}}
    cfg = vwc.validating_webhook_configuration("PEM", url=url, name="t", namespace_selector=selector)
    assert cfg["metadata"]["name"] == "t"
    for hook in cfg["webhooks"]:
        hook_url = (
            url if hook["name"] != "etcds.webhooks.druid.gardener.cloud" else "https://127.0.0.1:9443/webhooks/etcds"
        )
        assert hook["clientConfig"] == {"caBundle": base64.b64encode(b"PEM").decode(), "url": hook_url}
        assert hook["namespaceSelector"] == selector
    assert url == "https://127.0.0.1:9443/webhooks/etcdcomponents"
    with pytest.raises(ValueError):
        vwc.client_config("PEM")
