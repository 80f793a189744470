"""The components as the API server stored them (checklist C18–C27), with the controllers running in-process."""

from __future__ import annotations

from typing import Any

import yaml

from druid.api import constants as c
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import (
    CONFIGMAPS,
    LEASES,
    PDBS,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
    Obj,
    ResourceRef,
)
from druid.testing.etcds import (
    annotate_reconcile,
    etcd_manifest,
    get_etcd,
    wait_annotation_removed,
    wait_for_operation,
)
from druid.testing.operator import Operator
from druid.testing.wait import eventually


def managed(name: str, ns: str) -> list[tuple[ResourceRef, str, str]]:
    """(resource, object name, component label) of every runtime component of Etcd ``name``."""
    return [
        (SERVICEACCOUNTS, name, "etcd-service-account"),
        (ROLES, f"druid.gardener.cloud:etcd:{name}", "etcd-role"),
        (ROLEBINDINGS, f"druid.gardener.cloud:etcd:{name}", "etcd-role-binding"),
        *((LEASES, f"{name}-{i}", "etcd-member-lease") for i in range(3)),
        (PDBS, name, "etcd-pdb"),
        (SERVICES, f"{name}-client", "etcd-client-service"),
        (SERVICES, f"{name}-peer", "etcd-peer-service"),
    ]


async def reconcile(kube: Kube, ns: str, name: str, annotations: dict[str, Any], generation: int) -> Obj:
    """Annotate (plus the operation annotation) and wait for that reconcile to succeed."""
    await annotate_reconcile(kube, ns, name, annotations=annotations)
    await wait_annotation_removed(kube, ns, name)
    return await wait_for_operation(kube, ns, name, c.OPERATION_STATE_SUCCEEDED, generation=generation)


async def test_c18_to_c26_components_as_stored(operator: Operator, kube: Kube, namespace: str) -> None:
    ns, n = namespace, "comp"
    spec = {
        "etcd": {
            "clientService": {
                "labels": {"extra": "yes"},
                "annotations": {"a": "b"},
                "trafficDistribution": "PreferClose",
            }
        },
        "backup": {"store": {"provider": "Local", "container": "comp-bucket", "prefix": "comp"}},
    }
    annotations = {c.ANNOTATION_ALLOW_UNHEALTHY_POD_EVICTION: ""}
    await kube.create(ETCDS, etcd_manifest(n, ns, 3, annotations=annotations, **spec))
    etcd = await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=1)
    uid = etcd["metadata"]["uid"]

    # C26: labels and the controller owner reference on every managed object.
    objects = [
        *managed(n, ns),
        (LEASES, f"{n}-delta-snap", "etcd-snapshot-lease"),
        (LEASES, f"{n}-full-snap", "etcd-snapshot-lease"),
        (CONFIGMAPS, f"{n}-config", "etcd-configmap"),
        (STATEFULSETS, n, "etcd-statefulset"),
    ]
    stored: dict[str, Obj] = {}
    for res, name, component in objects:
        obj = await kube.get(res, name, ns)
        stored[f"{res.kind}/{name}"] = obj
        labels = obj["metadata"]["labels"]
        assert labels[c.LABEL_MANAGED_BY] == "etcd-druid" and labels[c.LABEL_PART_OF] == n, name
        assert labels[c.LABEL_COMPONENT] == component and labels[c.LABEL_NAME] == name.replace(":", "-"), name
        assert obj["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "druid.gardener.cloud/v1alpha1",
                "kind": "Etcd",
                "name": n,
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ], name

    assert stored[f"ServiceAccount/{n}"]["automountServiceAccountToken"] is True  # C18
    role = stored[f"Role/druid.gardener.cloud:etcd:{n}"]  # C19
    assert role["rules"] == [  # narrowed to its own Leases and StatefulSet (issue 13, finding 6)
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "patch", "update"],
            "resourceNames": [f"{n}-0", f"{n}-1", f"{n}-2", f"{n}-delta-snap", f"{n}-full-snap"],
        },
        {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["get"], "resourceNames": [n]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    ]
    binding = stored[f"RoleBinding/druid.gardener.cloud:etcd:{n}"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": n, "namespace": ns}]
    for i in range(3):  # C20: empty spec, filled by backup-restore
        assert stored[f"Lease/{n}-{i}"]["spec"] == {}
    assert stored[f"Lease/{n}-full-snap"]["spec"] == {}  # C21
    pdb = stored[f"PodDisruptionBudget/{n}"]["spec"]  # C22
    assert pdb["minAvailable"] == 2 and pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert pdb["selector"] == {"matchLabels": {c.LABEL_MANAGED_BY: "etcd-druid", c.LABEL_PART_OF: n}}
    client = stored[f"Service/{n}-client"]  # C23
    assert client["spec"]["type"] == "ClusterIP" and client["spec"]["sessionAffinity"] == "None"
    assert [(p["name"], p["port"], p["targetPort"]) for p in client["spec"]["ports"]] == [
        ("client", 2379, 2379),
        ("server", 2380, 2380),
        ("backuprestore", 8080, 8080),
    ]
    assert client["spec"]["selector"][c.LABEL_COMPONENT] == "etcd-statefulset"
    assert client["metadata"]["labels"]["extra"] == "yes" and client["metadata"]["annotations"] == {"a": "b"}
    assert client["spec"]["trafficDistribution"] == "PreferClose"
    peer = stored[f"Service/{n}-peer"]["spec"]  # C24
    assert peer["clusterIP"] == "None" and peer["publishNotReadyAddresses"] is True
    assert [(p["name"], p["port"]) for p in peer["ports"]] == [("peer", 2380)]
    config = yaml.safe_load(stored[f"ConfigMap/{n}-config"]["data"]["etcd.conf.yaml"])  # C25
    domain = f"{n}-peer.{ns}.svc"
    assert config["initial-cluster"] == ",".join(f"{n}-{i}=http://{n}-{i}.{domain}:2380" for i in range(3))
    assert config["listen-client-urls"] == "http://0.0.0.0:2379" and config["initial-cluster-state"] == "new"

    # Taking things away: no store (C21), no eviction annotation (C22), no client service settings (C23).
    remove = {"spec": {"backup": {"store": None}, "etcd": {"clientService": None}, "replicas": 5}}
    await kube.merge_patch(ETCDS, n, remove, ns)
    await reconcile(kube, ns, n, {c.ANNOTATION_ALLOW_UNHEALTHY_POD_EVICTION: None}, generation=2)
    for lease in (f"{n}-delta-snap", f"{n}-full-snap"):
        assert await kube.get_or_none(LEASES, lease, ns) is None, lease
    pdb = (await kube.get(PDBS, n, ns))["spec"]
    assert pdb["minAvailable"] == 3 and "unhealthyPodEvictionPolicy" not in pdb  # 5 replicas: 3
    client = await kube.get(SERVICES, f"{n}-client", ns)
    assert "extra" not in client["metadata"]["labels"] and not client["metadata"].get("annotations")
    assert "trafficDistribution" not in client["spec"]
    assert [f"{n}-{i}" for i in range(5)] == [
        name for name in sorted(x["metadata"]["name"] for x in (await kube.list(LEASES, ns))["items"])
    ]


async def test_c22_single_member_pdb(operator: Operator, kube: Kube, namespace: str) -> None:
    await kube.create(ETCDS, etcd_manifest("one", namespace, 1))
    await wait_for_operation(kube, namespace, "one", c.OPERATION_STATE_SUCCEEDED, generation=1)
    assert (await kube.get(PDBS, "one", namespace))["spec"]["minAvailable"] == 0


async def test_c27_runtime_component_creation_disabled(operator: Operator, kube: Kube, namespace: str) -> None:
    ns = namespace
    disabled = {c.ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION: ""}
    await kube.create(ETCDS, etcd_manifest("bare", ns, 3, annotations=disabled))
    etcd = await wait_for_operation(kube, ns, "bare", c.OPERATION_STATE_SUCCEEDED, generation=1)
    for res, name, _ in managed("bare", ns):
        assert await kube.get_or_none(res, name, ns) is None, f"{res.kind} {name}"
    assert await kube.get_or_none(CONFIGMAPS, "bare-config", ns) is not None
    sts = (await kube.get(STATEFULSETS, "bare", ns))["spec"]
    assert sts["replicas"] == 0 and not sts.get("serviceName")
    pod = sts["template"]["spec"]
    assert "serviceAccountName" not in pod
    args = next(x for x in pod["containers"] if x["name"] == "backup-restore")["args"]
    assert not [a for a in args if "lease" in a or a.startswith("--service-endpoints")], args
    assert set(etcd["status"]) == {"lastOperation", "observedGeneration"}, "status is not reconciled"

    # An Etcd created normally loses its runtime components once they are disabled.
    await kube.create(ETCDS, etcd_manifest("later", ns, 3))
    await wait_for_operation(kube, ns, "later", c.OPERATION_STATE_SUCCEEDED, generation=1)
    await reconcile(kube, ns, "later", disabled, generation=1)

    async def cleaned_up() -> bool:
        for res, name, _ in managed("later", ns):
            if await kube.get_or_none(res, name, ns) is not None:
                return False
        return True

    await eventually(cleaned_up, timeout=15, what="runtime components deleted")
    assert (await kube.get(STATEFULSETS, "later", ns))["spec"]["replicas"] == 0
    assert await kube.get_or_none(CONFIGMAPS, "later-config", ns) is not None
    status = (await get_etcd(kube, ns, "later"))["status"]
    assert status["lastOperation"]["state"] == c.OPERATION_STATE_SUCCEEDED
