"""issue 13, finding 6 against the REAL API server: a tenant who may only edit ``etcds`` (and create Secrets)
in one namespace cannot get root pods, foreign images, a node-critical PriorityClass or a host directory of
their choosing, and an Etcd's pods cannot touch other StatefulSets or Leases.

druid's Etcd controller runs in-process with the admission policy the manifests ship
(``manifests/configmap.yaml``); its webhook (both paths) is served with the generated
ValidatingWebhookConfiguration, scoped to the test's namespace. ``bob`` is a client-certificate user bound
to a Role allowing only ``etcds`` (all verbs) and ``secrets`` create/get.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from druid.api import constants as c
from druid.api.resources import ETCDS
from druid.config.operator import OperatorConfiguration
from druid.runtime.client import ApiError, Kube
from druid.runtime.health import bound_port, serve
from druid.runtime.objects import LEASES, ROLEBINDINGS, ROLES, SECRETS, STATEFULSETS, Obj
from druid.testing.controlplane import ControlPlane
from druid.testing.etcds import etcd_manifest, get_etcd
from druid.testing.operator import Operator
from druid.testing.wait import eventually
from druid.webhook.configuration import VALIDATING_WEBHOOK_CONFIGURATIONS, validating_webhook_configuration, webhook_url
from druid.webhook.lookups import CacheLookups
from druid.webhook.protection import Policy
from druid.webhook.server import server_ssl_context, webhook_app

pytestmark = pytest.mark.controlplane

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
ETCDS_WEBHOOK = "etcds.webhooks.druid.gardener.cloud"
RECONCILER = "system:serviceaccount:druid-system:etcd-druid"


def shipped_policy() -> dict[str, Any]:
    cm = yaml.safe_load((MANIFESTS / "configmap.yaml").read_text())
    policy: dict[str, Any] = yaml.safe_load(cm["data"]["config.yaml"])["etcdAdmissionPolicy"]
    return policy


def config() -> OperatorConfiguration:
    return OperatorConfiguration.model_validate(
        {
            "controllers": {
                "etcd": {
                    "etcdStatusSyncPeriod": "1s",
                    "etcdMember": {"unknownThreshold": "2s", "notReadyThreshold": "3s"},
                }
            },
            "etcdAdmissionPolicy": shipped_policy(),
        }
    )


@dataclass
class Env:
    namespace: str
    admin: Kube
    bob: Kube
    operator: Operator
    vwc: str


async def grant_bob(admin: Kube, ns: str) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "bob", "namespace": ns},
        "rules": [
            {"apiGroups": [c.GROUP], "resources": ["etcds"], "verbs": ["*"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get"]},
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "bob", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bob"},
        "subjects": [{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}],
    }
    await admin.create(ROLES, role)
    await admin.create(ROLEBINDINGS, binding)


@pytest.fixture
async def env(control_plane: ControlPlane, crds: list[str], namespace: str) -> AsyncIterator[Env]:
    cfg = config()
    admin = await Kube.connect(str(control_plane.kubeconfig))
    bob = await Kube.connect(str(control_plane.user_kubeconfig("bob")))
    await grant_bob(admin, namespace)
    operator = await Operator.start(control_plane.kubeconfig, cfg, namespace=namespace)
    cert_dir, ca = control_plane.serving_cert_dir("admission")
    app = webhook_app(Policy(RECONCILER), CacheLookups.of(operator.informers, namespace), cfg.admission_policy())
    runner = await serve(app, "127.0.0.1", 0, ssl_context=server_ssl_context(cert_dir))
    vwc = validating_webhook_configuration(
        ca,
        url=webhook_url("127.0.0.1", bound_port(runner)),
        name=f"etcd-druid-admission-{namespace}",
        namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}},
    )
    await admin.create(VALIDATING_WEBHOOK_CONFIGURATIONS, vwc)
    environment = Env(namespace, admin, bob, operator, vwc["metadata"]["name"])

    async def active() -> bool:
        try:
            await bob.create(ETCDS, etcd_manifest("probe", namespace, runAsRoot=True), dry_run=True)
        except ApiError as e:
            return e.status == 403 and ETCDS_WEBHOOK in e.message
        return False

    await eventually(active, timeout=30, what="the API server calling the etcds webhook")
    try:
        yield environment
    finally:
        await admin.delete(VALIDATING_WEBHOOK_CONFIGURATIONS, environment.vwc)
        await runner.cleanup()
        await operator.stop()
        await bob.close()
        await admin.close()


async def denied(call: Any) -> str:
    with pytest.raises(ApiError) as info:
        await call
    assert info.value.status == 403, info.value
    assert f'admission webhook "{ETCDS_WEBHOOK}" denied the request' in info.value.message, info.value
    return info.value.message


async def test_finding6_tenant_cannot_ask_for_privilege(env: Env) -> None:
    ns, bob = env.namespace, env.bob
    message = await denied(bob.create(ETCDS, etcd_manifest("root", ns, runAsRoot=True)))
    assert "spec.runAsRoot: running etcd as root is not allowed" in message
    message = await denied(bob.create(ETCDS, etcd_manifest("img", ns, etcd={"image": "evil.example/etcd:1"})))
    assert "spec.etcd.image: image evil.example/etcd:1 is not allowed" in message
    message = await denied(bob.create(ETCDS, etcd_manifest("bkp", ns, backup={"image": "evil.example/br:1"})))
    assert "spec.backup.image" in message
    message = await denied(bob.create(ETCDS, etcd_manifest("prio", ns, priorityClassName="system-node-critical")))
    assert "spec.priorityClassName: system-node-critical is not allowed" in message
    for name in ("root", "img", "bkp", "prio"):
        assert await env.admin.get_or_none(ETCDS, name, ns) is None

    # A compliant Etcd is admitted; changing its spec into a privileged one is refused too.
    await bob.create(ETCDS, etcd_manifest("fine", ns))
    await denied(bob.merge_patch(ETCDS, "fine", {"spec": {"runAsRoot": True}}, ns))


async def test_finding6_host_path_from_a_secret_is_refused_at_reconcile(env: Env) -> None:
    """The webhook cannot see the store Secret's hostPath; the reconciler refuses it before writing anything."""
    ns, bob = env.namespace, env.bob
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "kubelet-store", "namespace": ns},
        "data": {"hostPath": base64.b64encode(b"/var/lib").decode()},
    }
    await bob.create(SECRETS, secret)
    store = {"provider": "Local", "container": "kubelet", "prefix": "p", "secretRef": {"name": "kubelet-store"}}
    await bob.create(ETCDS, etcd_manifest("steal", ns, backup={"store": store}))
    await assert_refused_at_reconcile(env, "steal", "Local store directory /var/lib/kubelet is not allowed")


async def test_finding6_policy_holds_without_the_webhook(env: Env) -> None:
    ns = env.namespace
    await env.admin.delete(VALIDATING_WEBHOOK_CONFIGURATIONS, env.vwc)

    async def unregistered() -> bool:
        try:
            await env.admin.create(ETCDS, etcd_manifest("root", ns, runAsRoot=True))
        except ApiError:
            return False
        return True

    await eventually(unregistered, timeout=30, what="the etcds webhook no longer called")
    await assert_refused_at_reconcile(env, "root", "spec.runAsRoot: running etcd as root is not allowed")
    await env.admin.create(VALIDATING_WEBHOOK_CONFIGURATIONS, {**_vwc_placeholder(env)})


def _vwc_placeholder(env: Env) -> Obj:
    """An empty configuration under the fixture's name, so its cleanup finds something to delete."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": env.vwc},
        "webhooks": [],
    }


async def assert_refused_at_reconcile(env: Env, name: str, reason: str) -> None:
    ns = env.namespace

    async def refused() -> Obj | None:
        etcd = await get_etcd(env.admin, ns, name)
        errors = (etcd.get("status") or {}).get("lastErrors") or []
        return etcd if any(e.get("code") == "ERR_INVALID_SPEC" for e in errors) else None

    etcd = await eventually(refused, timeout=30, what=f"Etcd {name} refused by the reconciler")
    [error] = etcd["status"]["lastErrors"]
    assert reason in error["description"], error
    assert etcd["status"]["lastOperation"]["state"] == c.OPERATION_STATE_ERROR
    await env.operator.wait_reconciles(2, "more reconciles of the refused Etcd")
    assert await env.admin.get_or_none(STATEFULSETS, name, ns) is None, "nothing was written"
    assert await env.admin.get_or_none(ROLES, f"druid.gardener.cloud:etcd:{name}", ns) is None
    assert c.FINALIZER_ETCD not in ((await get_etcd(env.admin, ns, name))["metadata"].get("finalizers") or ())


async def test_finding6_etcd_pods_reach_only_their_own_statefulset_and_leases(
    env: Env, control_plane: ControlPlane
) -> None:
    ns = env.namespace
    store = {"provider": "Local", "container": "bucket", "prefix": "mine"}  # default directory: allowed
    await env.bob.create(ETCDS, etcd_manifest("mine", ns, backup={"store": store}))

    async def role_ready() -> bool:
        role = await env.admin.get_or_none(ROLES, "druid.gardener.cloud:etcd:mine", ns)
        sts = await env.admin.get_or_none(STATEFULSETS, "mine", ns)
        lease = await env.admin.get_or_none(LEASES, "mine-full-snap", ns)
        return role is not None and sts is not None and lease is not None

    await eventually(role_ready, timeout=60, what="Etcd mine's Role and StatefulSet")
    victim = await env.admin.get(STATEFULSETS, "mine", ns)
    victim["metadata"] = {"name": "victim", "namespace": ns, "labels": {"app": "victim"}}
    victim["spec"]["selector"] = {"matchLabels": {"app": "victim"}}
    victim["spec"]["template"]["metadata"]["labels"] = {"app": "victim"}
    victim["spec"]["replicas"] = 0
    victim["spec"].pop("serviceName", None)
    victim.pop("status", None)
    await env.admin.create(STATEFULSETS, victim)
    other_lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "other", "namespace": ns},
    }
    await env.admin.create(LEASES, other_lease)

    pod_identity = await Kube.connect(str(control_plane.kubeconfig))
    pod_identity.api.set_default_header("Impersonate-User", f"system:serviceaccount:{ns}:mine")
    try:
        # What the backup-restore sidecar does: GET its StatefulSet, GET/PATCH its member and snapshot Leases.
        assert (await pod_identity.get(STATEFULSETS, "mine", ns))["metadata"]["name"] == "mine"
        for lease in ("mine-0", "mine-full-snap", "mine-delta-snap"):
            await pod_identity.get(LEASES, lease, ns)
            await pod_identity.merge_patch(LEASES, lease, {"spec": {"holderIdentity": "member"}}, ns)
        # What etcd-druid's Role also allowed: patching any StatefulSet, any Lease, listing them.
        for call in (
            pod_identity.merge_patch(STATEFULSETS, "victim", {"spec": {"replicas": 1}}, ns),
            pod_identity.merge_patch(STATEFULSETS, "mine", {"spec": {"replicas": 5}}, ns),
            pod_identity.get(STATEFULSETS, "victim", ns),
            pod_identity.merge_patch(LEASES, "other", {"spec": {"holderIdentity": "x"}}, ns),
            pod_identity.list(STATEFULSETS, ns),
            pod_identity.list(LEASES, ns),
        ):
            with pytest.raises(ApiError) as info:
                await call
            assert info.value.status == 403 and "forbidden" in info.value.message.lower(), info.value
    finally:
        await pod_identity.close()
    assert (await env.admin.get(STATEFULSETS, "victim", ns))["spec"]["replicas"] == 0
