"""Take-over from Go etcd-druid and drift revert, against the real API server with druid's Etcd controller running.

The children are first written the way Go etcd-druid writes them: ``druid render``'s objects (the same builders),
created with Update requests (POST) under field manager ``etcd-druid``, the Etcd as controller owner, the Etcd's
finalizer and a Succeeded status in place. Then druid reconciles them.
"""

from __future__ import annotations

import asyncio
import copy
import sys
from typing import Any

from druid.api import constants as c
from druid.cli import drift
from druid.components import registry
from druid.components.options import build_options
from druid.controllers.etcd.operation import ETCDS
from druid.render import validate
from druid.runtime import patch
from druid.runtime.client import Kube
from druid.runtime.objects import EVENTS, SERVICES, STATEFULSETS, Obj, ResourceRef
from druid.testing.etcds import annotate_reconcile, etcd_manifest, get_etcd, wait_annotation_removed
from druid.testing.operator import Operator, fast_config
from druid.testing.wait import eventually

GO = "etcd-druid"
SPEC = {
    "labels": {"app": "{n}", "team": "storage"},
    "annotations": {"pod-note": "from-go"},
    "etcd": {"clientService": {"labels": {"svc-label": "x"}, "annotations": {"svc-note": "y"}}},
}


def _spec(name: str) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec["labels"]["app"] = name
    return spec


def desired(etcd: Obj) -> list[tuple[ResourceRef, Obj]]:
    model = validate(etcd)
    objects = registry.desired_objects(model, build_options(fast_config()))
    return [(registry.component(kind).resource, o) for kind, objs in objects.items() for o in objs]


async def go_creates(kube: Kube, etcd: Obj) -> list[tuple[ResourceRef, str]]:
    """What Go etcd-druid leaves behind: children created by Update requests, finalizer and Succeeded status."""
    made = []
    for res, obj in desired(etcd):
        meta = obj["metadata"]
        await kube.request("POST", res.path(meta["namespace"]), body=obj, query={"fieldManager": GO})
        made.append((res, meta["name"]))
    ns, name = etcd["metadata"]["namespace"], etcd["metadata"]["name"]
    await kube.merge_patch(ETCDS, name, {"metadata": {"finalizers": [c.FINALIZER_ETCD]}}, ns)
    status = {
        "observedGeneration": etcd["metadata"]["generation"],
        "lastOperation": {
            "type": c.OPERATION_TYPE_RECONCILE,
            "state": c.OPERATION_STATE_SUCCEEDED,
            "description": "Etcd cluster has been successfully reconciled",
            "runID": "go",
            "lastUpdateTime": "2026-01-01T00:00:00Z",
        },
    }
    await kube.merge_patch(ETCDS, name, {"status": status}, ns, subresource="status")
    return made


async def go_updates(kube: Kube, etcd: Obj) -> None:
    """Go etcd-druid's sync: read each child, set what it wants (labels, annotations, spec), write it back (PUT)."""
    for res, want in desired(etcd):
        meta = want["metadata"]
        live = await kube.get(res, meta["name"], meta["namespace"])
        for key in ("labels", "annotations", "ownerReferences"):
            if key in meta:
                live["metadata"][key] = meta[key]
            else:
                live["metadata"].pop(key, None)
        for key, value in want.items():
            if key not in ("apiVersion", "kind", "metadata", "status") and not (res.kind == "Lease" and key == "spec"):
                live[key] = value
        live["metadata"].pop("managedFields", None)
        path = res.path(meta["namespace"], meta["name"])
        await kube.request("PUT", path, body=live, query={"fieldManager": GO})


def child_writes(operator: Operator, made: list[tuple[ResourceRef, str]], namespace: str) -> dict[str, int]:
    """Writes the API server accepted (dry-runs excluded) from the operator to each child, by "Kind/name"."""
    out = {f"{res.kind}/{name}": 0 for res, name in made}
    for paths, step in ((operator.kube.written, 1), (operator.kube.refused, -1)):
        for _method, path in paths:
            for res, name in made:
                if path == res.path(namespace, name):
                    out[f"{res.kind}/{name}"] += step
    return out


async def druid_drift(kubeconfig: Any, *argv: str) -> tuple[int, str]:
    """``druid drift`` as a subprocess: exit code and stdout."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "druid.cli.main",
        "drift",
        *argv,
        "--kubeconfig",
        str(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None, err
    return proc.returncode, out.decode()


def managers(obj: Obj) -> list[tuple[str, str]]:
    return sorted((e["manager"], e["operation"]) for e in obj["metadata"]["managedFields"] if not e.get("subresource"))


def template(sts: Obj) -> dict[str, Any]:
    meta: dict[str, Any] = sts["spec"]["template"]["metadata"]
    return meta


async def reconciled(kube: Kube, operator: Operator, namespace: str, name: str, spec: dict[str, Any] | None) -> None:
    before = (await get_etcd(kube, namespace, name))["metadata"].get("generation")
    await annotate_reconcile(kube, namespace, name, spec)
    await wait_annotation_removed(kube, namespace, name)

    async def succeeded() -> bool:
        etcd = await get_etcd(kube, namespace, name)
        st = etcd.get("status") or {}
        return st.get("observedGeneration") == etcd["metadata"]["generation"] and (
            (st.get("lastOperation") or {}).get("state") == c.OPERATION_STATE_SUCCEEDED
        )

    await eventually(succeeded, timeout=30, what=f"spec reconcile of {name} (generation {before} →) succeeded")


async def test_takeover_from_go_moves_ownership_once_then_removals_remove(
    kube: Kube, namespace: str, control_plane: Any, crds: list[str]
) -> None:
    name = "to"
    etcd = await kube.create(ETCDS, etcd_manifest(name, namespace, **_spec(name)))
    made = await go_creates(kube, etcd)
    sts = await kube.get(STATEFULSETS, name, namespace)
    assert managers(sts) == [(GO, "Update")]
    report = await drift.collect(kube, namespace, name)
    assert len(report) == len(made) and all(o.take_over == [GO] and not o.foreign for o in report), report
    operator = await Operator.start(control_plane.kubeconfig, fast_config(), namespace=namespace)
    try:
        await operator.wait_reconciles(2, "status reconciles of the Go-made Etcd")
        assert set(child_writes(operator, made, namespace).values()) == {0}, "status reconciles touch no child"

        # A spec reconcile with nothing to change: at most the one managedFields migration per child, no apply.
        await reconciled(kube, operator, namespace, name, None)
        first = child_writes(operator, made, namespace)
        print("take-over writes per child:", first)
        assert all(n <= 1 for n in first.values()), first
        for res, child in made:
            obj = await kube.get(res, child, namespace)
            assert (GO, "Update") not in managers(obj), (child, managers(obj))
        sts = await kube.get(STATEFULSETS, name, namespace)
        assert managers(sts) == [(GO, "Apply")], managers(sts)

        report = await drift.collect(kube, namespace, name)
        assert all(o.in_sync for o in report), drift.render_text(report)

        # Steady state: another spec reconcile writes nothing to the children.
        await reconciled(kube, operator, namespace, name, None)
        assert child_writes(operator, made, namespace) == first

        # Removing pod labels/annotations and the client Service's labels/annotations removes them.
        await reconciled(
            kube,
            operator,
            namespace,
            name,
            {"labels": {"team": None}, "annotations": None, "etcd": {"clientService": None}},
        )
        sts = await kube.get(STATEFULSETS, name, namespace)
        assert "team" not in template(sts)["labels"]
        assert "pod-note" not in (template(sts).get("annotations") or {})
        svc = await kube.get(SERVICES, f"{name}-client", namespace)
        assert "svc-label" not in svc["metadata"]["labels"]
        assert "svc-note" not in (svc["metadata"].get("annotations") or {})
    finally:
        await operator.stop()

    # And back to Go: its Update requests write the whole object again and win.
    back = await kube.merge_patch(ETCDS, name, {"spec": {"labels": {"team": "go-again"}}}, namespace)
    await go_updates(kube, back)
    sts = await kube.get(STATEFULSETS, name, namespace)
    assert template(sts)["labels"]["team"] == "go-again"
    assert (GO, "Update") in managers(sts)

    # And to druid once more, with the label removed from the spec while no operator ran: druid takes the
    # StatefulSet over again, finds the label is content nobody wants (not a default) and removes it.
    await annotate_reconcile(kube, namespace, name, {"labels": {"team": None}})
    operator = await Operator.start(control_plane.kubeconfig, fast_config(), namespace=namespace)
    try:
        await wait_annotation_removed(kube, namespace, name)
        sts = await kube.get(STATEFULSETS, name, namespace)
        assert "team" not in template(sts)["labels"]
        assert managers(sts) == [(GO, "Apply")], managers(sts)
        writes = child_writes(operator, made, namespace)
        print("second take-over writes per child:", writes)
        assert writes[f"StatefulSet/{name}"] == 2  # the managedFields patch, then the apply that removes the label
        assert all(n <= 1 for k, n in writes.items() if k != f"StatefulSet/{name}"), writes
    finally:
        await operator.stop()


async def test_drift_is_reverted_reported_and_counted(
    kube: Kube, namespace: str, control_plane: Any, crds: list[str]
) -> None:
    operator = await Operator.start(control_plane.kubeconfig, fast_config(), namespace=namespace)
    try:
        name = "dr"
        await kube.create(ETCDS, etcd_manifest(name, namespace))
        await reconciled(kube, operator, namespace, name, None)
        sts = await kube.get(STATEFULSETS, name, namespace)
        index = [ct["name"] for ct in sts["spec"]["template"]["spec"]["containers"]].index("etcd")
        ops = [
            {"op": "add", "path": f"/spec/template/spec/containers/{index}/command", "value": ["cat", "/var/etcd"]},
            {"op": "add", "path": "/spec/template/metadata/annotations/intruder~1note", "value": "hi"},
            {"op": "replace", "path": f"/spec/template/spec/containers/{index}/imagePullPolicy", "value": "Always"},
            {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "evil", "image": "busybox"}},
        ]
        if "annotations" not in template(sts):
            ops[1] = {"op": "add", "path": "/spec/template/metadata/annotations", "value": {"intruder/note": "hi"}}
        made = len(operator.kube.written)
        await kube.request(
            "PATCH",
            STATEFULSETS.path(namespace, name),
            body=ops,
            content_type=patch.JSON_PATCH,
            query={"fieldManager": "intruder"},
        )
        text = drift.render_text(await drift.collect(kube, namespace, name))
        print(text)
        assert "differs at .spec.template.spec.containers[0].imagePullPolicy" in text or "imagePullPolicy" in text
        code, out = await druid_drift(control_plane.kubeconfig, f"{namespace}/{name}")
        assert code == drift.EXIT_DRIFT and out.strip() == text, (code, out)
        assert (
            'foreign spec.template.spec.containers[name=etcd].command = ["cat","/var/etcd"] (set by intruder)' in text
        )
        assert "foreign spec.template.metadata.annotations.intruder/note" in text and text.endswith("objects in sync")
        # Drift is looked for on spec reconciles only: status reconciles leave the StatefulSet alone.
        await operator.wait_reconciles(3, "status reconciles")
        assert not [w for w in operator.kube.written[made:] if "/statefulsets/" in w[1]]

        await reconciled(kube, operator, namespace, name, None)
        sts = await kube.get(STATEFULSETS, name, namespace)
        etcd_ct = sts["spec"]["template"]["spec"]["containers"][index]
        assert "command" not in etcd_ct and etcd_ct["imagePullPolicy"] == "IfNotPresent"
        assert "evil" not in [ct["name"] for ct in sts["spec"]["template"]["spec"]["containers"]]
        assert "intruder/note" not in (template(sts).get("annotations") or {})
        assert all(e["manager"] != "intruder" for e in sts["metadata"]["managedFields"])

        async def event() -> Obj | None:
            got = await kube.list(EVENTS, namespace, field_selector=f"involvedObject.name={name}")
            found = [e for e in got["items"] if e["reason"] == "DriftReverted" and "command" in e["message"]]
            return found[0] if found else None

        ev = await eventually(event, timeout=15, what="DriftReverted event")
        assert ev["type"] == "Warning"
        assert "spec.template.spec.containers[name=etcd].command (intruder)" in ev["message"], ev["message"]
        assert "spec.template.metadata.annotations.intruder/note (intruder)" in ev["message"], ev["message"]
        assert "spec.template.spec.containers[name=evil] (intruder)" in ev["message"], ev["message"]
        assert "containers[name=evil].image" not in ev["message"], "the container is named, not each of its fields"
        assert "spec.template.spec.containers[name=etcd].imagePullPolicy (intruder)" in ev["message"], ev["message"]
        assert operator._sample("druid_drift_fields_reverted_total", kind="StatefulSet") >= 4

        report = await drift.collect(kube, namespace, name)
        assert all(o.in_sync for o in report), drift.render_text(report)
        code, out = await druid_drift(control_plane.kubeconfig, name, "-n", namespace)
        assert code == drift.EXIT_IN_SYNC and out.strip().endswith("IN SYNC: 9/9 objects in sync"), (code, out)

        # No drift, no writes: another spec reconcile leaves the children alone.
        before = [w for w in operator.kube.written if "/statefulsets/" in w[1] or "/services/" in w[1]]
        await reconciled(kube, operator, namespace, name, None)
        after = [w for w in operator.kube.written if "/statefulsets/" in w[1] or "/services/" in w[1]]
        assert after == before
    finally:
        await operator.stop()
