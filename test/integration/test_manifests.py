"""The deployment manifests (``manifests/``) against real API servers.

``test_manifests_apply_with_server_side_dry_run``: the rendered kustomize tree (``hack/gen-manifests.py``'s
``build``, a ``kustomize build`` stand-in for the tree's resources + namespace subset) is accepted by the
shared control plane: CRDs and the Namespace applied for real, everything else with server-side apply and
``dryRun=All``; the optional ``monitoring/`` and ``cert-manager/`` kustomizations are applied the same way
when their CRDs exist, else only rendered.

``test_rbac_matches_calls_druid_makes``: the ClusterRole is derived from what druid does. A dedicated control
plane with the API server's audit log on (Metadata level, druid's user only) and the
OwnerReferencesPermissionEnforcement admission plugin (as hardened clusters run it) runs ``druid run`` as
``system:serviceaccount:druid-system:etcd-druid`` (client certificate), bound only to the manifests' RBAC,
with every controller and the component-protection webhook on. A scenario drives its code paths; then the
audit log must show no request the rules do not allow, and every rule must be used, or needed to grant the
Role druid creates for each Etcd (RBAC escalation prevention), or be on a short allow-list saying why.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from druid.api import constants as c
from druid.api import names
from druid.api.resources import ETCD_COPY_BACKUPS_TASKS as COPY_TASKS
from druid.api.resources import ETCD_OPS_TASKS as OPS_TASKS
from druid.api.resources import ETCDS
from druid.components import role as role_component
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import (
    CONFIGMAPS,
    EVENTS,
    JOBS,
    LEASES,
    NAMESPACES,
    PVCS,
    SECRETS,
    STATEFULSETS,
    Obj,
    ResourceRef,
)
from druid.testing.binaries import REPO
from druid.testing.controlplane import ControlPlane, free_port
from druid.testing.process import Process
from druid.testing.samples import tls_secrets
from druid.testing.sidecar import LeaseRenewer
from druid.testing.wait import Timeout, eventually
from druid.webhook.configuration import VALIDATING_WEBHOOK_CONFIGURATIONS, validating_webhook_configuration, webhook_url
from druid.webhook.protection import DEFAULT_POD_LIFECYCLE_USERS

pytestmark = pytest.mark.controlplane

DRUID_NAMESPACE, DRUID_SA = "druid-system", "etcd-druid"
DRUID_USER = f"system:serviceaccount:{DRUID_NAMESPACE}:{DRUID_SA}"
FIELD_MANAGER = "druid-manifests-test"

CRDS = ResourceRef("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False)
DRY_RUN = {"dryRun": "All"}
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")

# Granted (apiGroup, resource[/subresource], verb) that no request in the audit log shows, and why each is needed.
# Keep this minimal: a rule that is neither used, nor needed for the per-Etcd Role, nor listed here fails the test.
ALLOW_LIST: dict[tuple[str, str, str], str] = {
    # OwnerReferencesPermissionEnforcement (enabled in this test's API server): setting an ownerReference with
    # blockOwnerDeletion=true needs `update` on the owner's finalizers subresource. druid sets such references
    # to the Etcd on every component, compaction Job and pre-sync EtcdOpsTask, and to the EtcdCopyBackupsTask on
    # its Job. These are authorization checks inside another request, never requests of their own; drop one
    # and that create fails with Forbidden in this very scenario.
    (c.GROUP, "etcds/finalizers", "update"): "blockOwnerDeletion on objects owned by an Etcd",
    (c.GROUP, "etcdcopybackupstasks/finalizers", "update"): "blockOwnerDeletion on the copy Job",
    # With the OrderedMemberUpdate feature gate druid replaces out-of-date members by deleting their pods; this
    # scenario runs on kwok with the gate off (druid reaches members at their pod IPs), so it never deletes one.
    # test/e2e/test_ordered_update.py exercises the deletions on real pods.
    ("", "pods", "delete"): "ordered member updates (OrderedMemberUpdate gate) delete out-of-date pods",
}


# ------------------------------------------------------------------------------------------------ helpers


@functools.cache
def hack_module(script: str) -> ModuleType:
    """A script under hack/ (not a package) as a module."""
    name = script.removesuffix(".py").replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, REPO / "hack" / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


def build(directory: str = "") -> list[Obj]:
    objects: list[Obj] = hack_module("gen-manifests.py").build(REPO / "manifests" / directory)
    return objects


async def resource_of(kube: Kube, obj: Obj) -> ResourceRef:
    """The REST resource of ``obj``'s kind, by discovery."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    group, _, version = api_version.rpartition("/")
    found = await kube.request("GET", f"/apis/{api_version}" if group else f"/api/{version}")
    for r in found["resources"]:
        if r["kind"] == kind and "/" not in r["name"]:
            return ResourceRef(group, version, r["name"], kind, bool(r["namespaced"]))
    raise LookupError(f"no resource for {api_version} {kind}")


async def crd_established(kube: Kube, name: str) -> bool:
    crd = await kube.get_or_none(CRDS, name)
    conds = ((crd or {}).get("status") or {}).get("conditions") or []
    return any(x["type"] == "Established" and x["status"] == "True" for x in conds)


async def apply_for_real(kube: Kube, objects: list[Obj]) -> None:
    for obj in objects:
        await kube.apply(await resource_of(kube, obj), obj, field_manager=FIELD_MANAGER)
    crds = [o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"]

    async def established() -> bool:
        return all([await crd_established(kube, name) for name in crds])

    await eventually(established, timeout=30, what=f"CRDs established: {crds}")


# ------------------------------------------------------------------------------------- dry-run of the tree


@pytest.fixture
async def admin(control_plane: ControlPlane) -> AsyncIterator[Kube]:
    async with await Kube.connect(str(control_plane.kubeconfig), timeout=15) as kube:
        yield kube


async def test_manifests_apply_with_server_side_dry_run(admin: Kube) -> None:
    objects = build()
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment"} <= kinds
    assert {"Service", "PodDisruptionBudget", "ValidatingWebhookConfiguration", "CustomResourceDefinition"} <= kinds
    # CRDs for real (custom resources cannot be dry-run against CRDs that do not exist), and the Namespace (a
    # dry-run Namespace does not exist for the dry-run of the objects in it).
    first = [o for o in objects if o["kind"] in ("CustomResourceDefinition", "Namespace")]
    created_namespace = await admin.get_or_none(NAMESPACES, DRUID_NAMESPACE) is None
    await apply_for_real(admin, first)
    try:
        rejected: list[str] = []
        for obj in [o for o in objects if o not in first]:
            try:
                await admin.apply(await resource_of(admin, obj), obj, field_manager=FIELD_MANAGER, dry_run=True)
            except ApiError as e:
                rejected.append(f"{obj['kind']} {obj['metadata']['name']}: {e}")
        # The optional kustomizations need CRDs this cluster may lack (Prometheus Operator, cert-manager).
        for component in ("monitoring", "cert-manager"):
            extra = build(component)
            assert extra, f"manifests/{component} renders nothing"
            crd_names = {f"{o['kind'].lower()}s.{o['apiVersion'].split('/')[0]}" for o in extra}
            if all([await crd_established(admin, n) for n in crd_names]):
                for obj in extra:
                    try:
                        await admin.apply(await resource_of(admin, obj), obj, field_manager=FIELD_MANAGER, dry_run=True)
                    except ApiError as e:
                        rejected.append(f"{component}: {obj['kind']} {obj['metadata']['name']}: {e}")
            else:  # no such CRDs here: the kustomization must at least render well-formed objects
                for obj in extra:
                    assert obj["metadata"]["namespace"] == DRUID_NAMESPACE and obj["apiVersion"].count("/") == 1
        assert not rejected, "\n".join(rejected)
    finally:
        if created_namespace:
            await admin.delete(NAMESPACES, DRUID_NAMESPACE)


# ------------------------------------------------------------------------------------------ RBAC vs audit

AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "users": [DRUID_USER]}, {"level": "None"}],
}


@dataclass(frozen=True)
class Request:
    group: str
    resource: str  # with "/subresource"
    verb: str
    namespace: str
    name: str
    code: int


def audit_requests(path: Path) -> list[Request]:
    """druid's resource requests from the audit log (one per audit ID, its final stage)."""
    final: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event.get("user", {}).get("username") != DRUID_USER or "objectRef" not in event:
            continue
        final[event["auditID"]] = event
    out = []
    for event in final.values():
        ref = event["objectRef"]
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        out.append(
            Request(
                ref.get("apiGroup", ""),
                resource,
                event["verb"],
                ref.get("namespace", ""),
                ref.get("name", ""),
                int((event.get("responseStatus") or {}).get("code") or 0),
            )
        )
    return out


def allows(rules: list[Obj], group: str, resource: str, verb: str, name: str = "") -> bool:
    """RBAC's rule matching (no wildcards are used in druid's manifests, but honour them)."""
    for rule in rules:
        if not ({group, "*"} & set(rule.get("apiGroups") or ())):
            continue
        if not ({resource, "*"} & set(rule.get("resources") or ())):
            continue
        if not ({verb, "*"} & set(rule.get("verbs") or ())):
            continue
        if rule.get("resourceNames") and name not in rule["resourceNames"]:
            continue
        return True
    return False


def granted(rules: list[Obj]) -> set[tuple[str, str, str]]:
    out = set()
    for rule in rules:
        for group in rule.get("apiGroups") or ():
            for resource in rule.get("resources") or ():
                for verb in rule.get("verbs") or ():
                    out.add((group, resource, verb))
    return out


def role_rules(objects: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(ClusterRole rules bound to druid, Role rules bound to druid in its namespace)."""
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in ("ClusterRole", "Role")}
    cluster: list[Obj] = []
    local: list[Obj] = []
    for binding in (o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        subjects = binding.get("subjects") or []
        if not any(
            s["kind"] == "ServiceAccount" and (s["name"], s.get("namespace")) == (DRUID_SA, DRUID_NAMESPACE)
            for s in subjects
        ):
            continue
        ref = binding["roleRef"]
        rules = roles[(ref["kind"], ref["name"])].get("rules") or []
        (cluster if binding["kind"] == "ClusterRoleBinding" else local).extend(rules)
    return cluster, local


@dataclass
class Scenario:
    cp: ControlPlane
    admin: Kube
    ns: str
    druid: Process

    def denials(self) -> list[str]:
        text = self.druid.log.read_text(errors="replace") if self.druid.log.exists() else ""
        return [line for line in text.splitlines() if "Forbidden" in line or "forbidden" in line]

    async def wait(self, probe: Any, what: str, timeout: float = 45) -> Any:
        """``eventually(probe)``, failing at once when druid exits or is denied something."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            if not self.druid.alive():
                raise AssertionError(f"druid exited:\n{self.druid.tail(60)}")
            if denied := self.denials():
                raise RBACDenied("druid was denied:\n" + "\n".join(denied[:5]))
            try:
                value = await probe()
                if value:
                    return value
                last = value
            except RBACDenied:
                raise
            except Exception as e:
                last = e
            if time.monotonic() >= deadline:
                raise Timeout(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
            await asyncio.sleep(0.2)

    async def etcd(self, name: str) -> Obj | None:
        return await self.admin.get_or_none(ETCDS, name, self.ns)

    async def reconciled(self, name: str, generation: int, replicas: int) -> Obj:
        """The spec at ``generation`` is reconciled (observedGeneration, no operation annotation left) and all
        ``replicas`` members are ready (not lastOperation: a spec reconcile racing its own status write can
        leave a stale Requeue there)."""

        async def probe() -> Obj | None:
            etcd = await self.etcd(name) or {}
            status = etcd.get("status") or {}
            if "forbidden" in json.dumps(status.get("lastErrors") or []).lower():
                raise RBACDenied(f"Etcd {name}: {status['lastErrors']}")
            if status.get("observedGeneration") != generation:
                return None
            if c.ANNOTATION_OPERATION in (etcd["metadata"].get("annotations") or {}):
                return None
            conds = {x["type"]: x["status"] for x in status.get("conditions") or []}
            return etcd if conds.get("Ready") == "True" and status.get("readyReplicas") == replicas else None

        etcd: Obj = await self.wait(probe, f"Etcd {name} reconciled at generation {generation}, {replicas} ready")
        return etcd

    async def gone(self, res: ResourceRef, name: str, timeout: float = 45) -> None:
        async def probe() -> bool:
            return await self.admin.get_or_none(res, name, self.ns) is None

        await self.wait(probe, f"{res.plural} {self.ns}/{name} deleted", timeout)


class RBACDenied(Exception):
    pass


@pytest.fixture
def audited_plane() -> Iterator[tuple[ControlPlane, Path]]:
    with tempfile.TemporaryDirectory(prefix="druid-audit-") as d:
        directory = Path(d)
        policy = directory / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        log = directory / "audit.log"
        args = {
            "kube-apiserver": [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            ]
        }
        with ControlPlane(mode="full", extra_args=args) as cp:
            yield cp, log


def druid_config(path: Path, cert_dir: Path, webhook_port: int) -> Path:
    """The manifests' OperatorConfiguration with the test's addresses and short periods."""
    cm = next(o for o in build() if o["kind"] == "ConfigMap")
    config = yaml.safe_load(cm["data"]["config.yaml"])
    config["server"] = {
        "webhooks": {"bindAddress": "127.0.0.1", "port": webhook_port, "serverCertDir": str(cert_dir)},
        "metrics": {"bindAddress": "127.0.0.1", "port": 0},
    }
    controllers = config["controllers"]
    controllers["etcd"].update(
        etcdStatusSyncPeriod="2s", etcdMember={"unknownThreshold": "3s", "notReadyThreshold": "5s"}
    )
    controllers["compaction"].update(eventsThreshold=10, triggerFullSnapshotThreshold=1_000_000)
    controllers["etcdOpsTask"]["requeueInterval"] = "1s"
    config["leaderElection"].update(leaseDuration="15s", renewDeadline="10s", retryPeriod="1s")
    # The scenario's Local buckets live under /var/tmp (the shipped policy allows only the default directory).
    config["etcdAdmissionPolicy"]["allowedLocalStoreHostPathPrefixes"].append("/var/tmp/druid-buckets")
    # This control plane's controller manager and kwok (the "kubelet") authenticate as the admin user.
    protection = config["webhooks"]["etcdComponentProtection"]
    protection["podLifecycleUsers"] = [*DEFAULT_POD_LIFECYCLE_USERS, "admin"]
    path.write_text(yaml.safe_dump(config))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_rbac_matches_calls_druid_makes(audited_plane: tuple[ControlPlane, Path], tmp_path: Path) -> None:
    cp, audit_log = audited_plane
    objects = build()
    cluster_rules, local_rules = role_rules(objects)
    assert cluster_rules, "no ClusterRole is bound to druid's ServiceAccount"
    async with await Kube.connect(str(cp.kubeconfig), timeout=15) as admin:
        # The manifests' CRDs, Namespace, ServiceAccount and RBAC, nothing else.
        wanted = ("CustomResourceDefinition", "Namespace", "ServiceAccount", *RBAC_KINDS)
        await apply_for_real(admin, [o for o in objects if o["kind"] in wanted])
        ns = "rbac-e2e"
        await admin.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

        cert_dir, ca_pem = cp.serving_cert_dir("druid-webhook")
        webhook_port = free_port()
        kubeconfig = cp.user_kubeconfig(
            DRUID_USER, ("system:serviceaccounts", f"system:serviceaccounts:{DRUID_NAMESPACE}")
        )
        argv = [
            sys.executable, "-m", "druid.cli.main", "run",
            "--config", str(druid_config(tmp_path / "config.yaml", cert_dir, webhook_port)),
            "--kubeconfig", str(kubeconfig),
            "--probe-bind-address", "127.0.0.1", "--probe-port", "0",
            "--leader-election-namespace", DRUID_NAMESPACE,
        ]  # fmt: skip
        druid = Process("druid", argv, tmp_path / "druid.log")
        druid.start()
        s = Scenario(cp, admin, ns, druid)
        renewers: list[LeaseRenewer] = []
        vwc_name = "etcd-druid-rbac-test"
        try:
            await run_scenario(s, ca_pem, webhook_port, vwc_name, renewers)
        finally:
            for renewer in renewers:
                await renewer.stop()
                await renewer.kube.close()
            await admin.delete(VALIDATING_WEBHOOK_CONFIGURATIONS, vwc_name)
            druid.stop(timeout=40)
        log = druid.log.read_text(errors="replace")
        assert "Forbidden" not in log and '"403' not in log, "druid was denied something:\n" + "\n".join(
            line for line in log.splitlines() if "Forbidden" in line or "403" in line
        )

    requests = audit_requests(audit_log)
    assert requests, "the audit log has no request by druid"
    denied = sorted({(r.group, r.resource, r.verb, r.code) for r in requests if r.code in (401, 403)})
    assert not denied, f"requests druid was denied: {denied}"
    used: set[tuple[str, str, str]] = set()
    for r in requests:
        used.add((r.group, r.resource, r.verb))
        if r.verb == "patch" and r.code == 201:  # a server-side apply that created the object: authorized as create
            used.add((r.group, r.resource, "create"))
    not_allowed = sorted(
        (r.group, r.resource, r.verb, r.namespace)
        for r in requests
        if not allows(cluster_rules, r.group, r.resource, r.verb, r.name)
        and not (r.namespace == DRUID_NAMESPACE and allows(local_rules, r.group, r.resource, r.verb, r.name))
    )
    assert not not_allowed, f"druid used verbs the manifests do not grant: {sorted(set(not_allowed))}"
    # druid creates a Role per Etcd; RBAC lets it grant only what it holds itself.
    escalation = granted(role_component.rules())
    unused = sorted(granted(cluster_rules + local_rules) - used - escalation - set(ALLOW_LIST))
    assert not unused, f"granted but never used by druid (drop them, or allow-list them with a reason): {unused}"
    stale = sorted(k for k in ALLOW_LIST if k in used or k in escalation)
    assert not stale, f"allow-list entries the scenario now uses: drop them from ALLOW_LIST: {stale}"


async def run_scenario(
    s: Scenario, ca_pem: bytes, webhook_port: int, vwc_name: str, renewers: list[LeaseRenewer]
) -> None:
    admin, ns = s.admin, s.ns

    async def leader() -> bool:
        lease = await admin.get_or_none(LEASES, "druid-leader-election", DRUID_NAMESPACE)
        return bool(lease and (lease.get("spec") or {}).get("holderIdentity"))

    await s.wait(leader, "druid to lead (Lease druid-system/druid-leader-election)", timeout=60)
    # The webhook, scoped to the scenario's namespace; every object druid writes there passes through it.
    vwc = validating_webhook_configuration(
        ca_pem,
        url=webhook_url("127.0.0.1", webhook_port),
        name=vwc_name,
        namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": ns}},
    )
    await admin.create(VALIDATING_WEBHOOK_CONFIGURATIONS, vwc)

    # Secrets: TLS for the main Etcd, a Local store secret, copy-task store secrets.
    for secret in tls_secrets("main", ns):
        await admin.create(SECRETS, secret)
    for name in ("main-store", "copy-src", "copy-dst"):
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}}
        await admin.create(SECRETS, {**body, "data": {"hostPath": b64("/var/tmp/druid-buckets")}})

    # An Etcd with TLS everywhere and a Local backup store; the members' "backup-restore" renews its leases
    # with the Etcd's own ServiceAccount identity (allowed by the Role and RoleBinding druid creates).
    tls = {
        "tlsCASecretRef": {"name": "main-ca", "dataKey": "ca.crt"},
        "serverTLSSecretRef": {"name": "main-server"},
        "clientTLSSecretRef": {"name": "main-client"},
    }
    peer = {
        "tlsCASecretRef": {"name": "main-peer-ca", "dataKey": "ca.crt"},
        "serverTLSSecretRef": {"name": "main-peer-server"},
    }
    store = {"provider": "Local", "container": "bucket", "prefix": "main", "secretRef": {"name": "main-store"}}
    main = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD,
        "metadata": {"name": "main", "namespace": ns},
        "spec": {
            "replicas": 1,
            "labels": {"app": "main"},
            "etcd": {"clientUrlTls": tls, "peerUrlTls": peer},
            "backup": {"store": store},
            "storageCapacity": "1Gi",
        },
    }
    await admin.create(ETCDS, main)
    # An Etcd whose volume claims never bind (no such StorageClass): druid looks up the claims' warning events.
    pending = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD,
        "metadata": {"name": "pending", "namespace": ns},
        "spec": {"replicas": 1, "labels": {"app": "pending"}, "etcd": {}, "backup": {}, "storageClass": "missing"},
    }
    await admin.create(ETCDS, pending)
    member = await Kube.connect(
        str(s.cp.user_kubeconfig(f"system:serviceaccount:{ns}:{names.service_account_name('main')}"))
    )
    renewer = LeaseRenewer(member, "main", ns, replicas=1, interval=0.5, tls_enabled=True, snapshot_revisions=(1, 1))
    renewers.append(renewer)
    renewer.start()
    await s.reconciled("main", 1, replicas=1)

    # Scale out (spec changes wait for the reconcile annotation).
    await admin.merge_patch(
        ETCDS, "main", {"metadata": {"annotations": {c.ANNOTATION_OPERATION: "reconcile"}}, "spec": {"replicas": 3}}, ns
    )
    renewer.replicas = 3
    await s.reconciled("main", 2, replicas=3)

    # Webhook look-ups: a scale of the StatefulSet and a PVC deletion by someone else (dry-run; both refused).
    sts_scale = {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": "main", "namespace": ns},
        "spec": {"replicas": 3},
    }
    for call, webhook in (
        (admin.request("PUT", STATEFULSETS.path(ns, "main", "scale"), body=sts_scale, query=DRY_RUN), "stsscale."),
        (admin.request("DELETE", PVCS.path(ns, "main-main-0"), query=DRY_RUN), "pvc.etcdcomponents."),
    ):
        with pytest.raises(ApiError) as refused:
            await call
        assert f'admission webhook "{webhook}' in refused.value.message, refused.value.message

    # Compaction: the delta revision runs past eventsThreshold (10); the Job completes (kwok) and is removed.
    renewer.snapshot_revisions = (1, 50)

    async def compacted() -> bool:
        etcd = await s.etcd("main") or {}
        conds = {x["type"]: x for x in (etcd.get("status") or {}).get("conditions") or []}
        cond = conds.get("LastSnapshotCompactionSucceeded") or {}
        return cond.get("status") == "True" and await admin.get_or_none(JOBS, "main-compactor", ns) is None

    await s.wait(compacted, "compaction job run, condition LastSnapshotCompactionSucceeded True, job removed", 60)

    # Suspended spec reconciliation: a Warning event on every reconcile (created, then aggregated by patch).
    await admin.merge_patch(
        ETCDS, "main", {"metadata": {"annotations": {c.ANNOTATION_SUSPEND_SPEC_RECONCILE: "true"}}}, ns
    )

    async def aggregated_event() -> bool:
        events = await admin.list(EVENTS, ns, field_selector="reason=SpecReconciliationSkipped")
        return any((e.get("count") or 0) >= 2 for e in events.get("items") or [])

    await s.wait(aggregated_event, "an aggregated SpecReconciliationSkipped event")
    await admin.merge_patch(
        ETCDS, "main", {"metadata": {"annotations": {c.ANNOTATION_SUSPEND_SPEC_RECONCILE: None}}}, ns
    )

    # An EtcdOpsTask that fails (no such Etcd) and is deleted by druid after its TTL.
    task = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD_OPS_TASK,
        "metadata": {"name": "snapshot-ghost", "namespace": ns},
        "spec": {"etcdName": "ghost", "ttlSecondsAfterFinished": 1, "config": {"onDemandSnapshot": {"type": "full"}}},
    }
    await admin.create(OPS_TASKS, task)
    await s.gone(OPS_TASKS, "snapshot-ghost")

    # An EtcdCopyBackupsTask: a Job that kwok completes; deleting the task removes the Job and the finalizer.
    copy_task = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD_COPY_BACKUPS_TASK,
        "metadata": {"name": "copy", "namespace": ns},
        "spec": {
            "sourceStore": {"provider": "Local", "container": "src", "prefix": "a", "secretRef": {"name": "copy-src"}},
            "targetStore": {"provider": "Local", "container": "dst", "prefix": "b", "secretRef": {"name": "copy-dst"}},
        },
    }
    await admin.create(COPY_TASKS, copy_task)

    async def copied() -> bool:
        got = await admin.get_or_none(COPY_TASKS, "copy", ns) or {}
        conds = {x["type"]: x["status"] for x in (got.get("status") or {}).get("conditions") or []}
        return conds.get("Succeeded") == "True"

    await s.wait(copied, "EtcdCopyBackupsTask copy Succeeded", 60)
    await admin.delete(COPY_TASKS, "copy", ns)
    await s.gone(COPY_TASKS, "copy")

    # Hibernation with a backup store: druid asks for a pre-sync full snapshot (an EtcdOpsTask) first.
    await admin.merge_patch(
        ETCDS, "main", {"metadata": {"annotations": {c.ANNOTATION_OPERATION: "reconcile"}}, "spec": {"replicas": 0}}, ns
    )

    async def presync_task() -> bool:
        return await admin.get_or_none(OPS_TASKS, "presync-snapshot-hibernation-0", ns) is not None

    await s.wait(presync_task, "the pre-sync snapshot EtcdOpsTask")

    # Delete everything; druid removes its objects and finalizers (Etcds, Secrets, tasks). The member identity
    # loses its Role with the Etcd: stop renewing first.
    await renewer.stop()
    for name in ("main", "pending"):
        await admin.delete(ETCDS, name, ns)
    for name in ("main", "pending"):
        await s.gone(ETCDS, name, 60)

    async def secrets_released() -> bool:
        items = (await admin.list(SECRETS, ns)).get("items") or []
        return not any(c.FINALIZER_ETCD in (x["metadata"].get("finalizers") or []) for x in items)

    await s.wait(secrets_released, "Secret finalizers removed")

    async def quiet() -> bool:
        tasks = (await admin.list(OPS_TASKS, ns)).get("items") or []
        cms = (await admin.list(CONFIGMAPS, ns, label_selector=f"{c.LABEL_MANAGED_BY}={c.LABEL_MANAGED_BY_VALUE}")).get(
            "items"
        ) or []
        return not tasks and not cms

    await s.wait(quiet, "no EtcdOpsTask and no druid-managed ConfigMap left")
