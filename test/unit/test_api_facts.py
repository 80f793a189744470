"""druid.api.facts: each Etcd fact from raw objects, including ones that do not parse."""

from __future__ import annotations

from typing import Any

import pytest

from druid.api import constants as c
from druid.api import facts

IN_PROGRESS = (c.OPERATION_STATE_PROCESSING, c.OPERATION_STATE_ERROR, c.OPERATION_STATE_REQUEUE)
ALL_STATES = (*IN_PROGRESS, c.OPERATION_STATE_SUCCEEDED)


def etcd(annotations: dict[str, str] | None = None, op: dict[str, str] | None = None, **status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "e", "namespace": "ns", "uid": "u-1"}}
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    if op is not None:
        status["lastOperation"] = op
    if status:
        obj["status"] = status
    return obj


@pytest.mark.parametrize("key", [c.ANNOTATION_OPERATION, c.ANNOTATION_GARDENER_OPERATION])
def test_reconcile_requested_by_either_annotation(key: str) -> None:
    assert facts.reconcile_requested(etcd({key: c.OPERATION_RECONCILE}))
    assert facts.reconcile_annotation_keys(etcd({key: c.OPERATION_RECONCILE})) == [key]
    assert not facts.reconcile_requested(etcd({key: "ignore"}))


def test_reconcile_requested_lists_both_keys_druid_first() -> None:
    both = {c.ANNOTATION_GARDENER_OPERATION: "reconcile", c.ANNOTATION_OPERATION: "reconcile"}
    assert facts.reconcile_annotation_keys(etcd(both)) == [c.ANNOTATION_OPERATION, c.ANNOTATION_GARDENER_OPERATION]


@pytest.mark.parametrize("broken", [{}, {"metadata": None}, {"metadata": {"annotations": ["x"]}}])
def test_facts_tolerate_missing_or_mistyped_fields(broken: dict[str, Any]) -> None:
    assert not facts.reconcile_requested(broken)
    assert not facts.reconciliation_in_progress(broken) and not facts.deletion_in_progress(broken)
    assert facts.never_reconciled(broken)
    assert facts.runtime_components_enabled(broken)
    assert facts.referenced_secrets(broken) == []


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("op_type", [c.OPERATION_TYPE_RECONCILE, c.OPERATION_TYPE_DELETE])
def test_operation_in_progress_until_it_succeeds(op_type: str, state: str) -> None:
    obj = etcd(op={"type": op_type, "state": state})
    unfinished = state in IN_PROGRESS
    assert facts.reconciliation_in_progress(obj) == (unfinished and op_type == c.OPERATION_TYPE_RECONCILE)
    assert facts.deletion_in_progress(obj) == (unfinished and op_type == c.OPERATION_TYPE_DELETE)
    assert facts.last_reconcile_succeeded(obj) == (not unfinished and op_type == c.OPERATION_TYPE_RECONCILE)


def test_never_reconciled() -> None:
    assert facts.never_reconciled(etcd())
    assert not facts.never_reconciled(etcd(observedGeneration=1))
    assert not facts.never_reconciled(etcd(op={"type": "Reconcile", "state": "Processing"}))


def test_runtime_components_enabled() -> None:
    assert facts.runtime_components_enabled(etcd({}))
    assert not facts.runtime_components_enabled(etcd({c.ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION: ""}))


def test_secret_references_in_spec_order_with_their_fields() -> None:
    spec = {
        "etcd": {
            "clientUrlTls": {
                "tlsCASecretRef": {"name": "ca"},
                "serverTLSSecretRef": {"name": "srv"},
                "clientTLSSecretRef": {"name": "ca"},
            },
            "peerUrlTls": {"tlsCASecretRef": {"name": "ca", "namespace": "elsewhere"}, "serverTLSSecretRef": {}},
        },
        "backup": {"tls": "not a mapping", "store": {"secretRef": {"name": "store"}}},
    }
    obj = {"metadata": {}, "spec": spec}
    assert facts.secret_references(obj) == [
        ("ca", "spec.etcd.clientUrlTls"),
        ("srv", "spec.etcd.clientUrlTls"),
        ("ca", "spec.etcd.peerUrlTls"),
        ("store", "spec.backup.store.secretRef"),
    ]
    assert facts.referenced_secrets(obj) == ["ca", "srv", "store"]


def test_controlled_by_reads_the_first_controller_reference() -> None:
    def owned(*refs: dict[str, Any]) -> dict[str, Any]:
        return {"metadata": {"ownerReferences": list(refs)}}

    assert facts.controlled_by(owned({"uid": "u-1", "controller": True}), "u-1")
    assert not facts.controlled_by(owned({"uid": "u-1"}), "u-1")  # an owner, not the controller
    assert not facts.controlled_by(owned({"uid": "u-2", "controller": True}, {"uid": "u-1", "controller": True}), "u-1")
    assert not facts.controlled_by(None, "u-1")
    assert not facts.controlled_by(owned({"controller": True}), None)
    assert facts.uid(etcd()) == "u-1" and facts.uid({}) is None


def test_controller_of_and_legacy_ownership() -> None:
    ref = {"kind": "ConfigMap", "name": "app", "uid": "u-9", "controller": True}
    assert facts.controller_of({"metadata": {"ownerReferences": [ref]}}) == "controller ConfigMap app (uid u-9)"
    assert facts.controller_of({"metadata": {"ownerReferences": [{**ref, "controller": False}]}}) == "no controller"
    assert facts.controller_of({}) == "no controller"
    legacy = {c.ANNOTATION_LEGACY_OWNED_BY: "ns/etcd-main", c.ANNOTATION_LEGACY_OWNER_TYPE: "etcd"}
    assert facts.legacy_owned_by({"metadata": {"annotations": legacy}}, "ns", "etcd-main")
    assert not facts.legacy_owned_by({"metadata": {"annotations": legacy}}, "ns", "other")
    assert not facts.legacy_owned_by(
        {"metadata": {"annotations": {**legacy, c.ANNOTATION_LEGACY_OWNER_TYPE: "x"}}}, "ns", "etcd-main"
    )
    # a controller reference decides, whatever the annotations say
    assert not facts.legacy_owned_by({"metadata": {"annotations": legacy, "ownerReferences": [ref]}}, "ns", "etcd-main")


def test_claim_name_prefix() -> None:
    assert facts.claim_name_prefix({"metadata": {"name": "a-b"}, "spec": {}}) == "a-b-a-b"
    assert facts.claim_name_prefix({"metadata": {"name": "b-a-b"}, "spec": {"volumeClaimTemplate": "a"}}) == "a-b-a-b"


def test_member_thresholds_default_to_the_operator_defaults() -> None:
    assert facts.MemberThresholds() == facts.MemberThresholds(unknown=60.0, not_ready=300.0)


@pytest.mark.parametrize(
    ("annotation", "fact", "when_present"),
    [
        (c.ANNOTATION_SUSPEND_SPEC_RECONCILE, facts.spec_reconcile_suspended, True),
        (c.ANNOTATION_DISABLE_COMPONENT_PROTECTION, facts.components_protected, False),
        (c.ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION, facts.runtime_components_enabled, False),
    ],
)
def test_annotation_facts_count_presence_whatever_the_value(annotation: str, fact: Any, when_present: bool) -> None:
    for value in ("", "true", "false"):
        assert fact(etcd({annotation: value})) is when_present
    assert fact(etcd({})) is not when_present
