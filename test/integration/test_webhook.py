"""The etcd-components webhook behind the REAL kube-apiserver (K62–K64).

The webhook is served on 127.0.0.1 over HTTPS with a certificate from the control plane's CA and
registered with a URL-based ValidatingWebhookConfiguration scoped to the test's namespace. The
objects the Etcd controller would create are built with druid's own builders (``druid.render``) and
created by the admin, so no controller runs here. Requests come from distinct identities: ``alice``
(client certificate, a non-druid user) and service accounts impersonated by the admin (druid's
reconciler, an exempt one, the Etcd's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry

from druid.api import constants as c
from druid.api.common import now
from druid.api.names import owner_reference
from druid.api.resources import ETCDS
from druid.render import render_objects
from druid.runtime.client import ApiError, Kube
from druid.runtime.health import bound_port, serve
from druid.runtime.informer import InformerFactory
from druid.runtime.manager import Manager, ManagerOptions
from druid.runtime.objects import (
    CONFIGMAPS,
    LEASES,
    NAMESPACES,
    PDBS,
    PODS,
    PVCS,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
    Obj,
    ResourceRef,
)
from druid.testing.controlplane import ControlPlane
from druid.testing.crds import install_crds
from druid.testing.operator import webhook_config
from druid.testing.pki import CertificateAuthority, KeyPair
from druid.testing.wait import eventually
from druid.webhook.configuration import VALIDATING_WEBHOOK_CONFIGURATIONS, validating_webhook_configuration, webhook_url
from druid.webhook.lookups import CacheLookups
from druid.webhook.protection import Policy
from druid.webhook.server import add_webhook, server_ssl_context, webhook_app

pytestmark = pytest.mark.controlplane

ETCD = "etcd-test"
ALICE = "alice"
KIND_RESOURCES: dict[str, ResourceRef] = {
    "ServiceAccount": SERVICEACCOUNTS,
    "Role": ROLES,
    "RoleBinding": ROLEBINDINGS,
    "Lease": LEASES,
    "PodDisruptionBudget": PDBS,
    "Service": SERVICES,
    "ConfigMap": CONFIGMAPS,
    "StatefulSet": STATEFULSETS,
}
DISABLE = c.ANNOTATION_DISABLE_COMPONENT_PROTECTION
PVC_WEBHOOK = "pvc.etcdcomponents.webhooks.druid.gardener.cloud"


def sa(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def changes_denied(user: str) -> str:
    return (
        f"changes from service account {user} are disallowed at the moment. Please consider disabling component "
        f"protection by setting annotation `{DISABLE}` on the parent Etcd resource"
    )


DELETION_DENIED = f"no external intervention allowed during ongoing deletion of Etcd {ETCD} by etcd-druid"


@dataclass
class Env:
    namespace: str
    admin: Kube
    alice: Kube
    reconciler: Kube
    exempt: Kube
    members: Kube  # the Etcd's own ServiceAccount
    etcd: Obj
    objects: dict[str, Obj] = field(default_factory=dict)  # kind -> the object druid would create
    scaled: list[str] = field(default_factory=list)  # StatefulSets the webhook looked up for a scale

    def name(self, kind: str) -> str:
        return str(self.objects[kind]["metadata"]["name"])

    @property
    def users(self) -> dict[str, str]:
        ns = self.namespace
        return {"reconciler": sa(ns, "etcd-druid"), "exempt": sa(ns, "exempt"), "members": sa(ns, ETCD)}


# ----------------------------------------------------------------------------------------------- helpers


async def impersonating(kubeconfig: str, user: str) -> Kube:
    kube = await Kube.connect(kubeconfig)
    kube.api.set_default_header("Impersonate-User", user)
    return kube


async def touch(kube: Kube, res: ResourceRef, name: str, namespace: str, value: str = "x") -> Obj:
    """An UPDATE (merge patch of an annotation)."""
    return await kube.merge_patch(res, name, {"metadata": {"annotations": {"test/touched": value}}}, namespace)


async def refused(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        await call
    return info.value


def webhook_message(message: str, webhook: str = "etcdcomponents.webhooks.druid.gardener.cloud") -> str:
    return f'admission webhook "{webhook}" denied the request: {message}'


async def assert_denied(call: Any, message: str, webhook: str = "etcdcomponents.webhooks.druid.gardener.cloud") -> None:
    err = await refused(call)
    assert (err.status, err.message) == (403, webhook_message(message, webhook)), err


async def set_operation(env: Env, op_type: str, state: str) -> None:
    last = {"type": op_type, "state": state, "description": "test", "runID": "test", "lastUpdateTime": now()}
    await env.admin.merge_patch(ETCDS, ETCD, {"status": {"lastOperation": last}}, env.namespace, subresource="status")


async def annotate_etcd(env: Env, key: str, value: str | None = "") -> None:
    await env.admin.merge_patch(ETCDS, ETCD, {"metadata": {"annotations": {key: value}}}, env.namespace)


async def patch_warnings(kube: Kube, res: ResourceRef, name: str, namespace: str) -> list[str]:
    """Merge-patch an annotation and return the API server's ``Warning`` headers."""
    body = {"metadata": {"annotations": {"test/touched": "warn"}}}
    resp = await kube.api.call_api(
        res.path(namespace, name),
        "PATCH",
        header_params={"Content-Type": "application/merge-patch+json", "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
        _preload_content=False,
    )
    try:
        assert resp.status == 200, await resp.text()
        return list(resp.headers.getall("Warning", []))
    finally:
        resp.release()


def etcd_manifest(namespace: str) -> Obj:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD,
        "metadata": {"name": ETCD, "namespace": namespace},
        "spec": {"replicas": 1, "labels": {"app": ETCD}, "etcd": {}, "backup": {}, "storageCapacity": "1Gi"},
    }


async def create_managed_objects(env: Env) -> None:
    """What the Etcd controller would create (StatefulSet at 0 replicas: no pods needed), plus a PVC."""
    for obj in render_objects(env.etcd):
        if obj["kind"] == "StatefulSet":
            obj["spec"]["replicas"] = 0
        env.objects.setdefault(obj["kind"], obj)
        await env.admin.create(KIND_RESOURCES[obj["kind"]], obj)
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": f"{ETCD}-{ETCD}-0", "namespace": env.namespace, "labels": env_labels()},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    env.objects["PersistentVolumeClaim"] = await env.admin.create(PVCS, pvc)


def env_labels(part_of: str = ETCD) -> dict[str, str]:
    return {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE, c.LABEL_PART_OF: part_of}


async def grant(env: Env) -> None:
    """RBAC for the test identities: change every kind the webhook guards (and escalate/bind for RBAC objects)."""
    ns = env.namespace
    resources = [
        "serviceaccounts",
        "services",
        "configmaps",
        "persistentvolumeclaims",
        "roles",
        "rolebindings",
        "statefulsets",
        "statefulsets/scale",
        "poddisruptionbudgets",
        "leases",
        "pods",
        "pods/ephemeralcontainers",
    ]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "webhook-test", "namespace": ns},
        "rules": [
            {
                "apiGroups": ["", "apps", "rbac.authorization.k8s.io", "policy", "coordination.k8s.io"],
                "resources": resources,
                "verbs": ["get", "list", "create", "update", "patch", "delete", "escalate", "bind"],
            }
        ],
    }
    subjects: list[Obj] = [{"kind": "User", "name": ALICE, "apiGroup": "rbac.authorization.k8s.io"}]
    subjects += [{"kind": "ServiceAccount", "name": n, "namespace": ns} for n in ("etcd-druid", "exempt", ETCD)]
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "webhook-test", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "webhook-test"},
        "subjects": subjects,
    }
    await env.admin.create(ROLES, role)
    await env.admin.create(ROLEBINDINGS, binding)


async def register(env: Env, port: int, ca: bytes) -> str:
    """A URL-based ValidatingWebhookConfiguration for this namespace only; waits until the API server uses it."""
    ns = env.namespace
    selector = {"matchLabels": {"kubernetes.io/metadata.name": ns}}
    cfg = validating_webhook_configuration(
        ca, url=webhook_url("127.0.0.1", port), name=f"etcd-druid-test-{ns}", namespace_selector=selector
    )
    await env.admin.create(VALIDATING_WEBHOOK_CONFIGURATIONS, cfg)

    async def active() -> bool:
        try:
            await touch(env.alice, CONFIGMAPS, env.name("ConfigMap"), ns, "probe")
        except ApiError as e:
            return e.status == 403 and "denied the request" in e.message
        return False

    await eventually(active, timeout=30, what="the API server calling the webhook (and alice's RBAC)")
    return str(cfg["metadata"]["name"])


async def cleanup(env: Env, vwc: str | None) -> None:
    if vwc is not None:
        await env.admin.delete(VALIDATING_WEBHOOK_CONFIGURATIONS, vwc)
    with contextlib.suppress(ApiError):  # let the Etcd (and, by GC, its objects) go with the namespace
        await env.admin.merge_patch(ETCDS, ETCD, {"metadata": {"finalizers": None}}, env.namespace)
    for kube in (env.alice, env.reconciler, env.exempt, env.members, env.admin):
        await kube.close()


async def make_env(control_plane: ControlPlane, namespace: str) -> Env:
    kubeconfig = str(control_plane.kubeconfig)
    admin = await Kube.connect(kubeconfig)
    env = Env(
        namespace,
        admin,
        await Kube.connect(str(control_plane.user_kubeconfig(ALICE))),
        await impersonating(kubeconfig, sa(namespace, "etcd-druid")),
        await impersonating(kubeconfig, sa(namespace, "exempt")),
        await impersonating(kubeconfig, sa(namespace, ETCD)),
        await admin.create(ETCDS, etcd_manifest(namespace)),
    )
    await create_managed_objects(env)
    await grant(env)
    return env


class RecordingLookups(CacheLookups):
    """druid's caches (an informer factory of the test's own), recording the StatefulSets looked up."""

    def __init__(self, env: Env, informers: InformerFactory) -> None:
        source = CacheLookups.of(informers, env.namespace)
        super().__init__(source.etcds, source.statefulsets)
        self.env = env

    def statefulset(self, namespace: str, name: str) -> Obj | None:
        self.env.scaled.append(name)
        return super().statefulset(namespace, name)


def foreign_statefulset(env: Env, name: str, namespace: str) -> Obj:
    """Another application's StatefulSet (druid's as a template, relabelled ``app=<name>``, no druid labels)."""
    sts = json.loads(json.dumps(env.objects["StatefulSet"]))
    sts["metadata"] = {"name": name, "namespace": namespace, "labels": {"app": name}}
    sts["spec"]["selector"] = {"matchLabels": {"app": name}}
    sts["spec"]["template"]["metadata"]["labels"] = {"app": name}
    sts["spec"].pop("serviceName", None)
    sts.pop("status", None)
    return sts


def policy(env: Env) -> Policy:
    return Policy(env.users["reconciler"], (env.users["exempt"],))


@pytest.fixture
async def env(control_plane: ControlPlane, crds: list[str], namespace: str) -> AsyncIterator[Env]:
    """The webhook served directly (reading Etcds from the API server) and registered for ``namespace``."""
    environment = await make_env(control_plane, namespace)
    cert_dir, ca = control_plane.serving_cert_dir("webhook")
    informers = InformerFactory(environment.admin)
    lookups = RecordingLookups(environment, informers)
    informers.start_all()
    assert await informers.wait_for_cache_sync(30)
    app = webhook_app(policy(environment), lookups)
    runner = await serve(app, "127.0.0.1", 0, ssl_context=server_ssl_context(cert_dir))
    vwc: str | None = None
    try:
        vwc = await register(environment, bound_port(runner), ca)
        yield environment
    finally:
        await informers.stop_all()
        await cleanup(environment, vwc)
        await runner.cleanup()


# ----------------------------------------------------------------------------------------------- K62


async def test_k62_non_druid_user_cannot_update_or_delete_managed_objects(env: Env) -> None:
    ns, denied = env.namespace, changes_denied(ALICE)
    for kind, res in KIND_RESOURCES.items():
        await assert_denied(touch(env.alice, res, env.name(kind), ns), denied)
        await assert_denied(env.alice.delete(res, env.name(kind), ns), denied)
    await assert_denied(env.alice.delete(PVCS, env.name("PersistentVolumeClaim"), ns), denied, PVC_WEBHOOK)
    scale = {"spec": {"replicas": 1}}
    await assert_denied(
        env.alice.merge_patch(STATEFULSETS, ETCD, scale, ns, subresource="scale"),
        denied,
        "stsscale.etcdcomponents.webhooks.druid.gardener.cloud",
    )
    assert ETCD in env.scaled
    for kind, res in KIND_RESOURCES.items():  # nothing changed
        live = await env.admin.get(res, env.name(kind), ns)
        assert "test/touched" not in (live["metadata"].get("annotations") or {}), kind
        assert live["metadata"].get("deletionTimestamp") is None
    assert (await env.admin.get(STATEFULSETS, ETCD, ns))["spec"]["replicas"] == 0


# ----------------------------------------------------------------------------------------------- K63


async def test_k63_druid_reconciler_may_change_managed_objects(env: Env) -> None:
    ns = env.namespace
    await set_operation(env, c.OPERATION_TYPE_RECONCILE, c.OPERATION_STATE_PROCESSING)
    for kind, res in KIND_RESOURCES.items():
        await touch(env.reconciler, res, env.name(kind), ns)
    await env.reconciler.merge_patch(STATEFULSETS, ETCD, {"spec": {"replicas": 1}}, ns, subresource="scale")
    assert (await env.admin.get(STATEFULSETS, ETCD, ns))["spec"]["replicas"] == 1
    assert await env.reconciler.delete(CONFIGMAPS, env.name("ConfigMap"), ns)
    assert await env.reconciler.delete(PVCS, env.name("PersistentVolumeClaim"), ns)


async def test_k63_etcd_members_may_update_their_leases_only(env: Env) -> None:
    ns = env.namespace
    await set_operation(env, c.OPERATION_TYPE_RECONCILE, c.OPERATION_STATE_PROCESSING)
    lease = await env.members.merge_patch(LEASES, env.name("Lease"), {"spec": {"holderIdentity": "abc:Leader"}}, ns)
    assert lease["spec"]["holderIdentity"] == "abc:Leader"
    await assert_denied(touch(env.members, CONFIGMAPS, env.name("ConfigMap"), ns), changes_denied(env.users["members"]))


async def test_k63_exempt_service_account_while_not_reconciling_or_for_objects_being_deleted(env: Env) -> None:
    ns, exempt = env.namespace, env.users["exempt"]
    await touch(env.exempt, STATEFULSETS, ETCD, ns)  # no lastOperation yet
    await set_operation(env, c.OPERATION_TYPE_RECONCILE, c.OPERATION_STATE_SUCCEEDED)
    await touch(env.exempt, SERVICES, env.name("Service"), ns)
    await set_operation(env, c.OPERATION_TYPE_RECONCILE, c.OPERATION_STATE_PROCESSING)
    await assert_denied(touch(env.exempt, STATEFULSETS, ETCD, ns), changes_denied(exempt))
    # An object already being deleted (held by a finalizer) may be finished off by the exempt account.
    held = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "held",
            "namespace": ns,
            "labels": env_labels(),
            "finalizers": ["test/hold"],
            "ownerReferences": [owner_reference(ETCD, env.etcd["metadata"]["uid"])],  # protected: the Etcd's
        },
    }
    await env.admin.create(CONFIGMAPS, held)
    await assert_denied(env.exempt.delete(CONFIGMAPS, "held", ns), changes_denied(exempt))
    assert await env.reconciler.delete(CONFIGMAPS, "held", ns)
    await env.exempt.merge_patch(CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, ns)
    assert await env.admin.get_or_none(CONFIGMAPS, "held", ns) is None


async def test_k63_disable_protection_annotation_allows_everyone(env: Env) -> None:
    ns = env.namespace
    await annotate_etcd(env, DISABLE)
    await touch(env.alice, STATEFULSETS, ETCD, ns)
    await env.alice.merge_patch(STATEFULSETS, ETCD, {"spec": {"replicas": 0}}, ns, subresource="scale")
    assert await env.alice.delete(ROLES, env.name("Role"), ns)
    await annotate_etcd(env, DISABLE, None)
    await assert_denied(touch(env.alice, STATEFULSETS, ETCD, ns), changes_denied(ALICE))


async def test_k63_runtime_kinds_are_free_while_runtime_component_creation_is_disabled(env: Env) -> None:
    ns = env.namespace
    await annotate_etcd(env, c.ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION)
    for kind in ("ServiceAccount", "Role", "RoleBinding", "Lease", "PodDisruptionBudget", "Service"):
        await touch(env.alice, KIND_RESOURCES[kind], env.name(kind), ns)
    assert await env.alice.delete(SERVICEACCOUNTS, env.name("ServiceAccount"), ns)
    for kind in ("ConfigMap", "StatefulSet"):
        await assert_denied(touch(env.alice, KIND_RESOURCES[kind], env.name(kind), ns), changes_denied(ALICE))


async def test_k63_create_unmanaged_and_orphaned_objects_are_allowed(env: Env) -> None:
    ns = env.namespace

    def configmap(name: str, labels: dict[str, str]) -> Obj:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels}}

    await env.alice.create(CONFIGMAPS, configmap("created-by-alice", env_labels()))  # CREATE
    await env.alice.create(CONFIGMAPS, configmap("unmanaged", {"app": "mine"}))
    await touch(env.alice, CONFIGMAPS, "unmanaged", ns)
    assert await env.alice.delete(CONFIGMAPS, "unmanaged", ns)
    await env.admin.create(CONFIGMAPS, configmap("orphan", env_labels("ghost")))
    warnings = await patch_warnings(env.alice, CONFIGMAPS, "orphan", ns)
    assert warnings == [f'299 - "parent Etcd ghost not found for resource: {ns}/orphan"']
    no_part_of = configmap("no-part-of", {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE})
    await env.admin.create(CONFIGMAPS, no_part_of)
    warnings = await patch_warnings(env.alice, CONFIGMAPS, "no-part-of", ns)
    assert warnings == [
        f'299 - "cannot determine parent etcd resource, label {c.LABEL_PART_OF} not found on resource: {ns}/no-part-of"'
    ]
    # statefulsets/scale has no objectSelector: an unmanaged StatefulSet reaches the webhook and is allowed.
    await env.admin.create(STATEFULSETS, foreign_statefulset(env, "web", ns))
    await env.alice.merge_patch(STATEFULSETS, "web", {"spec": {"replicas": 1}}, ns, subresource="scale")
    assert "web" in env.scaled


# ----------------------------------------------------------------------------------------------- K64


async def test_k64_during_etcd_deletion_only_druid_and_exempt_accounts_delete(env: Env) -> None:
    ns = env.namespace
    await env.admin.merge_patch(ETCDS, ETCD, {"metadata": {"finalizers": [c.FINALIZER_ETCD]}}, ns)
    await env.admin.delete(ETCDS, ETCD, ns)
    await set_operation(env, c.OPERATION_TYPE_DELETE, c.OPERATION_STATE_PROCESSING)
    assert (await env.admin.get(ETCDS, ETCD, ns))["metadata"].get("deletionTimestamp")

    await assert_denied(env.alice.delete(CONFIGMAPS, env.name("ConfigMap"), ns), DELETION_DENIED)
    await assert_denied(env.alice.delete(PVCS, env.name("PersistentVolumeClaim"), ns), DELETION_DENIED, PVC_WEBHOOK)
    await assert_denied(env.members.delete(LEASES, env.name("Lease"), ns), DELETION_DENIED)
    # UPDATEs keep the usual rules: alice still refused, members still renew their lease.
    await assert_denied(touch(env.alice, CONFIGMAPS, env.name("ConfigMap"), ns), changes_denied(ALICE))
    await touch(env.members, LEASES, env.name("Lease"), ns)

    assert await env.exempt.delete(SERVICES, env.name("Service"), ns)
    assert await env.exempt.delete(PDBS, env.name("PodDisruptionBudget"), ns)
    assert await env.reconciler.delete(STATEFULSETS, ETCD, ns)
    assert await env.reconciler.delete(LEASES, env.name("Lease"), ns)
    assert await env.reconciler.delete(PVCS, env.name("PersistentVolumeClaim"), ns)

    await set_operation(env, c.OPERATION_TYPE_DELETE, c.OPERATION_STATE_ERROR)
    await assert_denied(env.alice.delete(ROLES, env.name("Role"), ns), DELETION_DENIED)
    assert await env.exempt.delete(ROLES, env.name("Role"), ns)


# ----------------------------------------------------------------------------- through the manager


async def test_k63_add_webhook_serves_through_the_manager_with_the_informer_cache(
    control_plane: ControlPlane, crds: list[str], namespace: str
) -> None:
    """``add_webhook`` on a Manager: HTTPS from serverCertDir on the configured address; Etcds from the cache."""
    environment = await make_env(control_plane, namespace)
    cert_dir, ca = control_plane.serving_cert_dir("webhook")
    cfg = webhook_config(cert_dir, namespace, environment.users["exempt"])
    manager = Manager(await Kube.connect(str(control_plane.kubeconfig)), ManagerOptions(metrics_port=0, probe_port=0))
    app = add_webhook(manager, cfg, namespace)
    assert isinstance(app, web.Application)
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    vwc: str | None = None
    try:
        await eventually(lambda: _ready(manager), timeout=30, what="manager servers and caches")
        vwc = await register(environment, manager.server_ports[0], ca)
        await assert_denied(
            touch(environment.alice, CONFIGMAPS, environment.name("ConfigMap"), namespace), changes_denied(ALICE)
        )
        await touch(environment.reconciler, CONFIGMAPS, environment.name("ConfigMap"), namespace)
        await annotate_etcd(environment, DISABLE)

        async def allowed_once_cached() -> bool:
            try:
                await touch(environment.alice, CONFIGMAPS, environment.name("ConfigMap"), namespace, "after")
            except ApiError:
                return False
            return True

        await eventually(allowed_once_cached, timeout=30, what="the disable annotation seen through the Etcd cache")
    finally:
        await cleanup(environment, vwc)
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0


async def _ready(manager: Manager) -> bool:
    return bool(manager.server_ports) and manager.informers.all_synced() and len(manager.informers) > 0


# ------------------------------------------------------------------ issue 13, finding 1: relabel-and-delete


def managed_pod(env: Env) -> Obj:
    sts = env.objects["StatefulSet"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{ETCD}-0",
            "namespace": env.namespace,
            "labels": env_labels(),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": ETCD,
                    "uid": sts["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [{"name": "etcd", "image": "registry.invalid/etcd:none"}]},
    }


async def test_finding1_relabelling_cannot_take_an_etcd_out_of_protection(env: Env) -> None:
    """The break-test's chain: relabel the StatefulSet (and change its template), delete the claim, delete
    the StatefulSet — each step refused; the pod, its labels and its ephemeral containers likewise."""
    ns, denied = env.namespace, changes_denied(ALICE)
    env.objects["StatefulSet"] = await env.admin.get(STATEFULSETS, ETCD, ns)
    hijack = [
        {"op": "remove", "path": "/metadata/labels/" + c.LABEL_MANAGED_BY.replace("/", "~1")},
        {"op": "add", "path": "/spec/template/spec/containers/0/command", "value": ["cat", "/var/etcd/data"]},
    ]
    await assert_denied(env.alice.json_patch(STATEFULSETS, ETCD, hijack, ns), denied)
    relabel_only = {"metadata": {"labels": {c.LABEL_PART_OF: "nonexistent"}}}
    await assert_denied(env.alice.merge_patch(STATEFULSETS, ETCD, relabel_only, ns), denied)
    live = await env.admin.get(STATEFULSETS, ETCD, ns)
    assert live["metadata"]["labels"][c.LABEL_PART_OF] == ETCD

    # The claim's labels are no longer what protects it: relabelled (claims' UPDATEs are not guarded), still refused.
    claim = env.name("PersistentVolumeClaim")
    await env.admin.merge_patch(PVCS, claim, {"metadata": {"labels": None}}, ns)
    await assert_denied(env.alice.delete(PVCS, claim, ns), denied, PVC_WEBHOOK)
    await assert_denied(env.alice.delete(STATEFULSETS, ETCD, ns), denied)

    # Pods of the Etcd: delete, relabel out of the selector, ephemeral containers.
    pod = await env.admin.create(PODS, managed_pod(env))
    name = pod["metadata"]["name"]
    await assert_denied(env.alice.delete(PODS, name, ns), denied)
    await assert_denied(env.alice.merge_patch(PODS, name, {"metadata": {"labels": None}}, ns), denied)
    debug = {"spec": {"ephemeralContainers": [{"name": "debug", "image": "busybox", "targetContainerName": "etcd"}]}}
    await assert_denied(env.alice.merge_patch(PODS, name, debug, ns, subresource="ephemeralcontainers"), denied)
    live_pod = await env.admin.get(PODS, name, ns)
    assert live_pod["metadata"]["labels"] == env_labels() and not live_pod["spec"].get("ephemeralContainers")

    # Even with the StatefulSet gone (druid's own deletion), the Etcd of that name still owns the claim.
    assert await env.reconciler.delete(STATEFULSETS, ETCD, ns)
    await eventually(lambda: _gone(env.admin, STATEFULSETS, ETCD, ns), timeout=30, what="the StatefulSet deleted")
    await assert_denied(env.alice.delete(PVCS, claim, ns), denied, PVC_WEBHOOK)
    assert await env.admin.get_or_none(PVCS, claim, ns) is not None
    # With protection switched off on purpose the claim may go.
    await annotate_etcd(env, DISABLE)

    async def deleted_once_allowed() -> bool:
        try:
            return bool(await env.alice.delete(PVCS, claim, ns))
        except ApiError:
            return False

    await eventually(deleted_once_allowed, timeout=30, what="the claim deletable with protection disabled")


async def _gone(kube: Kube, res: ResourceRef, name: str, ns: str) -> bool:
    return await kube.get_or_none(res, name, ns) is None


# ------------------------------------------------------------- issue 13, finding 8: cache-only, no oracle


def crafted_scale(namespace: str, name: str, user: str = "mallory") -> Obj:
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": name, "namespace": namespace}}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "11111111-2222-3333-4444-555555555555",
            "kind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "resource": {"group": "apps", "version": "v1", "resource": "statefulsets"},
            "subResource": "scale",
            "name": name,
            "namespace": namespace,
            "operation": "UPDATE",
            "userInfo": {"username": user},
            "object": scale,
            "oldObject": scale,
        },
    }


async def test_finding8_reviews_are_answered_from_the_cache_and_reveal_nothing(
    control_plane: ControlPlane, crds: list[str], namespace: str
) -> None:
    """druid's webhook as ``druid run`` serves it (through the manager, cluster-wide caches): crafted reviews
    about another namespace's StatefulSets get one answer whether they exist or not, a review whose object
    does not match the request is refused without names, and no review costs an API request."""
    registry = CollectorRegistry()
    environment = await make_env(control_plane, namespace)
    other = f"{namespace}-other"
    await environment.admin.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    await environment.admin.create(STATEFULSETS, foreign_statefulset(environment, "web", other))
    cert_dir, ca = control_plane.serving_cert_dir("webhook")
    cfg = webhook_config(cert_dir, namespace)
    kube = await Kube.connect(str(control_plane.kubeconfig), registry=registry)
    manager = Manager(kube, ManagerOptions(metrics_port=0, probe_port=0), registry=registry)
    assert add_webhook(manager, cfg) is not None
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    context = ssl.create_default_context(cadata=ca.decode())
    try:
        await eventually(lambda: _ready(manager), timeout=60, what="manager servers and caches")
        url = webhook_url("127.0.0.1", manager.server_ports[0])

        async def ask(body: Obj) -> Obj:
            async with (
                aiohttp.ClientSession() as session,
                session.post(url, json=body, ssl=context) as resp,
            ):
                assert resp.status == 200
                answer: Obj = (await resp.json())["response"]
                return answer

        last = [-1.0]

        async def settled() -> bool:  # the informers' lists done and their watches open: no request in 1 s
            now = _requests(registry)
            same, last[0] = now == last[0], now
            return same

        await eventually(settled, timeout=30, what="druid's informers settled", interval=1.0)
        before = _requests(registry)
        existing = await ask(crafted_scale(other, "web"))
        missing = await ask(crafted_scale(other, "ghost"))
        assert existing["allowed"] and missing["allowed"]
        assert existing["status"]["message"] == f"resource: {other}/web is not managed by druid, skipping validations"
        assert missing["status"]["message"].replace("ghost", "web") == existing["status"]["message"]
        assert "warnings" not in existing and "warnings" not in missing
        protected = await ask(crafted_scale(namespace, ETCD))
        assert not protected["allowed"] and protected["status"]["code"] == 403
        mismatched = crafted_scale(namespace, ETCD)
        mismatched["request"]["namespace"] = other
        odd = await ask(mismatched)
        assert (odd["allowed"], odd["status"]["code"]) == (False, 400)
        assert namespace not in odd["status"]["message"] and ETCD not in odd["status"]["message"]
        for i in range(50):
            await ask(crafted_scale(other, f"probe-{i}"))
        assert _requests(registry) == before, "a review cost an API request"
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0
        await environment.admin.delete(NAMESPACES, other)
        await cleanup(environment, None)


def _requests(registry: CollectorRegistry) -> float:
    """``rest_client_requests_total`` over every code, method and host."""
    return sum(
        sample.value
        for metric in registry.collect()
        if metric.name == "rest_client_requests"
        for sample in metric.samples
        if sample.name == "rest_client_requests_total"
    )


# ------------------------------------------- issue 13, finding 8: only the API server is answered (client CA)


def admission_configuration(directory: Path, client: KeyPair) -> Path:
    """The API server's AdmissionConfiguration: present ``client`` to every webhook."""
    kubeconfig = directory / "webhook-clients.yaml"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "users": [
                    {"name": "*", "user": {"client-certificate": str(client.cert), "client-key": str(client.key)}}
                ],
            }
        )
    )
    path = directory / "admission.yaml"
    webhook = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": str(kubeconfig),
    }
    config = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [{"name": "ValidatingAdmissionWebhook", "configuration": webhook}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def test_finding8_with_a_client_ca_only_the_api_server_gets_answers(tmp_path: Path) -> None:
    """``server.webhooks.clientCAFile``: the API server (given a client certificate by its AdmissionConfiguration)
    is answered and protection works; a caller without a certificate, or with one from another CA, does not
    get past the TLS handshake, so a crafted review learns nothing at all."""
    clients = CertificateAuthority(tmp_path / "clients")
    apiserver_client = clients.issue("apiserver", "kube-apiserver-webhook-client", client=True)
    stranger = CertificateAuthority(tmp_path / "stranger").issue("mallory", "mallory", client=True)
    args = {
        "kube-apiserver": [f"--admission-control-config-file={admission_configuration(tmp_path, apiserver_client)}"]
    }
    with ControlPlane(mode="apiserver", extra_args=args) as cp:
        async with await Kube.connect(str(cp.kubeconfig)) as admin:
            await install_crds(admin.api)
            ns = "client-ca"
            await admin.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            etcd = await admin.create(ETCDS, etcd_manifest(ns))
            owner = [owner_reference(ETCD, etcd["metadata"]["uid"])]  # protected: the Etcd controls it
            managed = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cm", "namespace": ns, "labels": env_labels(), "ownerReferences": owner},
            }
            await admin.create(CONFIGMAPS, managed)
            informers = InformerFactory(admin)
            lookups = CacheLookups.of(informers, ns)
            informers.start_all()
            assert await informers.wait_for_cache_sync(30)
            cert_dir, ca = cp.serving_cert_dir("webhook")
            context = server_ssl_context(cert_dir, clients.pair.cert)
            runner = await serve(
                webhook_app(Policy(sa(ns, "etcd-druid")), lookups), "127.0.0.1", 0, ssl_context=context
            )
            try:
                url = webhook_url("127.0.0.1", bound_port(runner))
                vwc = validating_webhook_configuration(
                    ca,
                    url=url,
                    name="client-ca",
                    namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": ns}},
                )
                await admin.create(VALIDATING_WEBHOOK_CONFIGURATIONS, vwc)

                async def refused_by_webhook() -> bool:
                    try:
                        await touch(admin, CONFIGMAPS, "cm", ns)
                    except ApiError as e:
                        return e.status == 403 and "denied the request" in e.message
                    return False

                await eventually(refused_by_webhook, timeout=30, what="the API server answered by the webhook")

                review = crafted_scale(ns, ETCD)
                for client in (None, stranger):
                    ssl_ctx = ssl.create_default_context(cadata=ca.decode())
                    if client is not None:
                        ssl_ctx.load_cert_chain(str(client.cert), str(client.key))
                    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
                        async with (
                            aiohttp.ClientSession() as session,
                            session.post(url, json=review, ssl=ssl_ctx) as resp,
                        ):
                            await resp.read()
                trusted = ssl.create_default_context(cadata=ca.decode())
                trusted.load_cert_chain(str(apiserver_client.cert), str(apiserver_client.key))
                async with aiohttp.ClientSession() as session, session.post(url, json=review, ssl=trusted) as resp:
                    assert resp.status == 200 and (await resp.json())["response"]["uid"] == review["request"]["uid"]
            finally:
                await runner.cleanup()
                await informers.stop_all()
