"""Nobody's objects are taken over, nothing is half-applied (issue 13, findings 3, 4, 5 and 7), against the real
API server with druid's controllers running in-process:

- 3: objects named like an Etcd's objects but not controlled by it are never changed or deleted, and reported;
- 4: an Etcd whose volume claims would be another Etcd's is refused before anything is written;
- 5: (in ``test_etcd_auto_reconcile.py``, where every periodic reconcile syncs the spec);
- 7: invalid derived names, invalid label values and quotas are refused before anything is written, and
  lastOperation names the step.
"""

from __future__ import annotations

from typing import Any

from druid.api import constants as c
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import (
    CONFIGMAPS,
    LEASES,
    PDBS,
    PVCS,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
    Obj,
    ResourceRef,
)
from druid.testing.etcds import annotate_reconcile, etcd_manifest, get_etcd, last_operation, wait_for_operation
from druid.testing.operator import Operator
from druid.testing.wait import eventually

NOTHING_WRITTEN = "Checking the spec (nothing was written) failed. Operation will be retried."


def _victims(namespace: str) -> list[tuple[ResourceRef, Obj]]:
    meta = {"namespace": namespace, "labels": {"app": "victim-app"}}
    return [
        (SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "victim", **meta}}),
        (
            SERVICES,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "victim-client", **meta},
                "spec": {"selector": {"app": "victim-app"}, "ports": [{"name": "http", "port": 80}]},
            },
        ),
        (
            CONFIGMAPS,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "victim-config", **meta},
                "data": {"app.conf": "owned by the victim app"},
            },
        ),
    ]


def _comparable(obj: Obj) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "uid": meta["uid"],
        "resourceVersion": meta["resourceVersion"],
        "labels": meta.get("labels"),
        "ownerReferences": meta.get("ownerReferences"),
        "spec": obj.get("spec"),
        "data": obj.get("data"),
    }


async def _error(kube: Kube, namespace: str, name: str, code: str) -> Obj:
    async def reported() -> Obj | None:
        etcd = await get_etcd(kube, namespace, name)
        errors = (etcd.get("status") or {}).get("lastErrors") or ()
        return etcd if [e["code"] for e in errors] == [code] else None

    found: Obj | None = await eventually(reported, timeout=30, what=f"lastErrors {code} on {name}")
    assert found is not None
    return found


async def test_finding3_never_adopts_and_never_deletes_what_is_not_its_own(
    operator: Operator, kube: Kube, namespace: str
) -> None:
    victims = _victims(namespace)
    for res, body in victims:
        await kube.create(res, body)
    # a second ConfigMap of the victim app that another object controls
    owner = await kube.create(
        CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": namespace}}
    )
    owned_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "app", "uid": owner["metadata"]["uid"]}
    before = {
        (res.kind, body["metadata"]["name"]): _comparable(await kube.get(res, body["metadata"]["name"], namespace))
        for res, body in victims
    }

    await kube.create(ETCDS, etcd_manifest("victim", namespace))
    etcd = await _error(kube, namespace, "victim", "ERR_SYNC_SERVICE_ACCOUNT")
    op = last_operation(etcd)
    assert (op["state"], op["description"]) == (
        "Error",
        "Sync of component ServiceAccount failed. Operation will be retried.",
    )
    description = etcd["status"]["lastErrors"][0]["description"]
    assert (
        f"ServiceAccount {namespace}/victim exists and is not controlled by etcd {namespace}/victim (no controller)"
        in description
    )

    # The real owner removes its ServiceAccount: druid creates its own and stops at the next foreign object.
    await kube.delete(SERVICEACCOUNTS, "victim", namespace)
    etcd = await _error(kube, namespace, "victim", "ERR_SYNC_CLIENT_SERVICE")
    assert (
        f"Service {namespace}/victim-client exists and is not controlled by etcd {namespace}/victim (no controller)"
        in (etcd["status"]["lastErrors"][0]["description"])
    )
    sa = await kube.get(SERVICEACCOUNTS, "victim", namespace)
    assert sa["metadata"]["ownerReferences"][0]["uid"] == etcd["metadata"]["uid"]

    # ... and past the Service, a ConfigMap with another controller is reported with that controller.
    await kube.delete(SERVICES, "victim-client", namespace)
    await kube.merge_patch(
        CONFIGMAPS, "victim-config", {"metadata": {"ownerReferences": [{**owned_ref, "controller": True}]}}, namespace
    )
    before[("ConfigMap", "victim-config")] = _comparable(await kube.get(CONFIGMAPS, "victim-config", namespace))
    etcd = await _error(kube, namespace, "victim", "ERR_SYNC_CONFIGMAP")
    assert (
        f"ConfigMap {namespace}/victim-config exists and is not controlled by etcd {namespace}/victim "
        f"(controller ConfigMap app (uid {owner['metadata']['uid']}))"
    ) in etcd["status"]["lastErrors"][0]["description"]
    await operator.wait_reconciles(3, "retries while the ConfigMap is someone else's")
    assert await kube.get_or_none(STATEFULSETS, "victim", namespace) is None, "later components wait"
    config = await kube.get(CONFIGMAPS, "victim-config", namespace)
    assert _comparable(config) == before[("ConfigMap", "victim-config")], "not a single write to the foreign ConfigMap"
    assert c.LABEL_MANAGED_BY not in config["metadata"]["labels"], "never labelled as druid's, so never protected"

    # Deleting the Etcd deletes what it controls and nothing else.
    await kube.delete(ETCDS, "victim", namespace)

    async def gone() -> bool:
        return await kube.get_or_none(ETCDS, "victim", namespace) is None

    await eventually(gone, timeout=30, what="Etcd victim deleted (finalizer removed)")
    assert await kube.get_or_none(SERVICEACCOUNTS, "victim", namespace) is None, "its own ServiceAccount is deleted"
    assert _comparable(await kube.get(CONFIGMAPS, "victim-config", namespace)) == before[("ConfigMap", "victim-config")]
    assert await kube.get_or_none(CONFIGMAPS, "app", namespace) is not None


async def test_finding3_takes_over_its_own_objects_from_etcd_druid(
    operator: Operator, kube: Kube, namespace: str
) -> None:
    """Compatibility: objects Go etcd-druid created carry the Etcd (same UID) as controller, and very old
    releases' owner annotations name it; both are this Etcd's and are synced, even without druid's labels."""
    etcd = await kube.create(
        ETCDS, etcd_manifest("old", namespace, annotations={c.ANNOTATION_SUSPEND_SPEC_RECONCILE: ""})
    )
    uid = etcd["metadata"]["uid"]
    ref = {"apiVersion": c.API_VERSION, "kind": c.KIND_ETCD, "name": "old", "uid": uid, "controller": True}
    await kube.create(
        SERVICEACCOUNTS,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "old", "namespace": namespace, "ownerReferences": [ref]},
        },
    )
    legacy = {c.ANNOTATION_LEGACY_OWNED_BY: f"{namespace}/old", c.ANNOTATION_LEGACY_OWNER_TYPE: "etcd"}
    await kube.create(
        CONFIGMAPS,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "old-config", "namespace": namespace, "annotations": legacy},
        },
    )
    await kube.merge_patch(
        ETCDS, "old", {"metadata": {"annotations": {c.ANNOTATION_SUSPEND_SPEC_RECONCILE: None}}}, namespace
    )
    await wait_for_operation(kube, namespace, "old", c.OPERATION_STATE_SUCCEEDED, generation=1)
    for res, name in ((SERVICEACCOUNTS, "old"), (CONFIGMAPS, "old-config")):
        got = await kube.get(res, name, namespace)
        assert got["metadata"]["labels"][c.LABEL_PART_OF] == "old"
        assert [r["uid"] for r in got["metadata"]["ownerReferences"] if r.get("controller")] == [uid]


async def test_finding4_volume_claims_of_another_etcd_are_refused(
    operator: Operator, kube: Kube, namespace: str
) -> None:
    await kube.create(ETCDS, etcd_manifest("a-b", namespace))
    await wait_for_operation(kube, namespace, "a-b", c.OPERATION_STATE_SUCCEEDED, generation=1)
    sts = await kube.get(STATEFULSETS, "a-b", namespace)
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "a-b"  # claims a-b-a-b-<i>

    # Etcd b-a-b with template "a" would run on a-b-a-b-0 too.
    await kube.create(ETCDS, etcd_manifest("b-a-b", namespace, volumeClaimTemplate="a"))
    etcd = await _error(kube, namespace, "b-a-b", "ERR_INVALID_SPEC")
    assert last_operation(etcd)["description"] == NOTHING_WRITTEN
    text = etcd["status"]["lastErrors"][0]["description"]
    assert "spec.volumeClaimTemplate: the claims a-b-a-b-<ordinal> of this Etcd would be those of Etcd a-b" in text
    # A claim labelled as another Etcd's (here made by hand: kwok runs no StatefulSet controller) is refused too.
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "x-c-0",
            "namespace": namespace,
            "labels": {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE, c.LABEL_PART_OF: "a-b"},
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    await kube.create(PVCS, claim)
    await kube.create(ETCDS, etcd_manifest("c", namespace, volumeClaimTemplate="x"))
    etcd = await _error(kube, namespace, "c", "ERR_INVALID_SPEC")
    assert "PersistentVolumeClaim x-c-0 belongs to Etcd a-b" in etcd["status"]["lastErrors"][0]["description"]

    await operator.wait_reconciles(3, "retries of the refused Etcds")
    for name in ("b-a-b", "c"):
        assert c.FINALIZER_ETCD not in ((await get_etcd(kube, namespace, name))["metadata"].get("finalizers") or ())
        for res in (SERVICEACCOUNTS, STATEFULSETS, PDBS):
            assert await kube.get_or_none(res, name, namespace) is None, f"nothing written for {name}"
    after = await kube.get(STATEFULSETS, "a-b", namespace)  # (its status moves: kwok runs its pod)
    assert after["metadata"]["generation"] == sts["metadata"]["generation"], "Etcd a-b's StatefulSet unchanged"
    assert after["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "a-b"
    assert last_operation(await get_etcd(kube, namespace, "a-b"))["state"] == c.OPERATION_STATE_SUCCEEDED


async def test_finding7_invalid_names_labels_and_quota_are_refused_before_any_write(
    operator: Operator, kube: Kube, namespace: str
) -> None:
    long_name = "n" * 40  # the Role's app.kubernetes.io/name label druid.gardener.cloud-etcd-<name> is 66 characters
    cases = {
        long_name: ({}, f"metadata.name: Role druid.gardener.cloud:etcd:{long_name}: metadata.labels[{c.LABEL_NAME}]"),
        "neg": ({"etcd": {"quota": "-1Gi"}}, "spec.etcd.quota: must be positive (is -1Gi)"),
        "huge": ({"etcd": {"quota": "1Ei"}}, "spec.etcd.quota: must be at most"),
        "badlabel": (
            {"etcd": {"clientService": {"labels": {"bad label!": "x"}}}},
            "spec.etcd.clientService.labels[bad label!]: key name part must consist of",
        ),
        "badvalue": ({"labels": {"app": "v" * 64}}, "spec.labels[app]: value"),
    }
    for name, (spec, _) in cases.items():
        await kube.create(ETCDS, etcd_manifest(name, namespace, **spec))
    for name, (_, expected) in cases.items():
        etcd = await _error(kube, namespace, name, "ERR_INVALID_SPEC")
        assert last_operation(etcd)["description"] == NOTHING_WRITTEN
        text = etcd["status"]["lastErrors"][0]["description"]
        assert text.startswith("[Operation: Sync, Code: ERR_INVALID_SPEC] message: Invalid spec, nothing was written: ")
        assert expected in text, text
    await operator.wait_reconciles(3, "retries of the invalid Etcds")
    assert operator.writes(namespace) == sum(
        1 for _, path in operator.kube.written if "/etcds/" in path and f"/namespaces/{namespace}/" in path
    )
    for name in cases:
        etcd = await get_etcd(kube, namespace, name)
        assert c.FINALIZER_ETCD not in (etcd["metadata"].get("finalizers") or ()), "no finalizer"
        for res, obj_name in (
            (SERVICEACCOUNTS, name),
            (ROLES, f"druid.gardener.cloud:etcd:{name}"),
            (ROLEBINDINGS, f"druid.gardener.cloud:etcd:{name}"),
            (LEASES, f"{name}-0"),
            (CONFIGMAPS, f"{name}-config"),
        ):
            assert await kube.get_or_none(res, obj_name, namespace) is None, (
                f"{res.kind} {obj_name}: nothing half-applied"
            )

    # Fixed, the same Etcd reconciles.
    await annotate_reconcile(kube, namespace, "neg", {"etcd": {"quota": "2Gi"}})
    await wait_for_operation(kube, namespace, "neg", c.OPERATION_STATE_SUCCEEDED, generation=2)
