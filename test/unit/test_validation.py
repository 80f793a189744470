"""Checks before anything is written (issue 13, findings 4 and 7): Kubernetes' name and label rules
(``runtime.validation``), the Etcd checks built on them (``components.validation``) and ``druid render``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from druid.api import constants as c
from druid.api.etcd import Etcd
from druid.components import registry, validation
from druid.components.base import BuildOptions
from druid.config.images import Images
from druid.render import RenderError, render_objects
from druid.runtime import validation as rules
from druid.runtime.store import Store

OPTS = BuildOptions(images=Images(etcd_wrapper="wrapper:1", etcd_backup_restore="br:1", alpine="alpine:1"))


def raw_etcd(name: str = "etcd-main", created: str = "2026-01-01T00:00:00Z", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"replicas": 3, "labels": {"role": "main"}, "etcd": {}, "backup": {}}
    body.update(copy.deepcopy(spec))
    meta = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "creationTimestamp": created}
    return {"apiVersion": c.API_VERSION, "kind": c.KIND_ETCD, "metadata": meta, "spec": body}


def problems(raw: dict[str, Any]) -> list[str]:
    etcd = Etcd.model_validate(raw)
    return validation.spec_problems(etcd, registry.desired_objects(etcd, OPTS))


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (rules.dns1123_label_problem, "a" * 63, True),
        (rules.dns1123_label_problem, "a" * 64, False),
        (rules.dns1123_label_problem, "A", False),
        (rules.dns1123_subdomain_problem, "a.b-c", True),
        (rules.dns1123_subdomain_problem, "a" * 254, False),
        (rules.dns1035_label_problem, "1abc", False),
        (rules.dns1035_label_problem, "abc-1", True),
        (rules.path_segment_problem, "druid.gardener.cloud:etcd:x", True),
        (rules.path_segment_problem, "a/b", False),
        (rules.path_segment_problem, "..", False),
        (rules.qualified_name_problem, "app.kubernetes.io/name", True),
        (rules.qualified_name_problem, "bad label!", False),
        (rules.qualified_name_problem, "/x", False),
        (rules.qualified_name_problem, "x" * 64, False),
        (rules.label_value_problem, "", True),
        (rules.label_value_problem, "v" * 63, True),
        (rules.label_value_problem, "v" * 64, False),
        (rules.label_value_problem, "-x", False),
    ],
)
def test_kubernetes_rules(check: Any, value: str, ok: bool) -> None:
    assert (check(value) is None) is ok


def test_names_by_kind() -> None:
    assert rules.name_problem("Service", "1-client") is not None  # RFC 1035: starts with a letter
    assert rules.name_problem("ConfigMap", "1-config") is None
    assert rules.name_problem("Role", "druid.gardener.cloud:etcd:x") is None
    assert rules.name_problem("StatefulSet", "s" * 52) is None
    assert "controller-revision-hash" in (rules.name_problem("StatefulSet", "s" * 53) or "")


def test_a_valid_etcd_has_no_problems() -> None:
    assert problems(raw_etcd()) == []
    assert problems(raw_etcd("n" * 37)) == []  # the longest name whose Role name label fits 63 characters


def test_long_name_is_reported_against_metadata_name() -> None:
    found = problems(raw_etcd("n" * 38))
    assert found and all(p.startswith("metadata.name: ") for p in found)
    assert any(f"Role druid.gardener.cloud:etcd:{'n' * 38}: metadata.labels[{c.LABEL_NAME}]" in p for p in found)


def test_member_lease_names_report_the_prefix_too() -> None:
    found = problems(raw_etcd("e", memberNamePrefix="p" * 60))
    assert found and found[0].startswith("metadata.name, spec.memberNamePrefix: Lease ")


def test_values_copied_from_the_spec_are_reported_once_against_their_field() -> None:
    found = problems(
        raw_etcd(
            labels={"role": "v" * 64},
            annotations={"bad key!": "x"},
            etcd={"clientService": {"labels": {"bad label!": "x"}, "annotations": {"ok": "x", "/": "y"}}},
        )
    )
    assert [p.split(":")[0] for p in found] == [
        "spec.labels[role]",
        "spec.annotations[bad key!]",
        "spec.etcd.clientService.labels[bad label!]",
        "spec.etcd.clientService.annotations[/]",
    ]


@pytest.mark.parametrize(
    ("quota", "ok"),
    [("8Gi", True), ("200Ti", True), ("1", True), ("0", False), ("-1Gi", False), ("1Ei", False), ("256Ti", False)],
)
def test_quota_positive_and_within_what_etcd_can_map(quota: str, ok: bool) -> None:
    found = problems(raw_etcd(etcd={"quota": quota}))
    assert (found == []) is ok, found
    if not ok:
        assert found[0].startswith("spec.etcd.quota: ")


def test_quota_limit_is_what_bbolt_can_map() -> None:
    # etcd maps quota + quota/10 bytes; bbolt's largest map on 64-bit platforms is 0xFFFFFFFFFFFF bytes
    q = validation.MAX_QUOTA_BYTES
    assert q + q // 10 <= 0xFFFFFFFFFFFF < (q + 1) + (q + 1) // 10 + 1


def claims(raw: dict[str, Any], etcds: list[dict[str, Any]], pvcs: list[dict[str, Any]] | None = None) -> list[str]:
    return validation.claim_problems(Etcd.model_validate(raw), raw, etcds, pvcs or [])


def test_claims_of_an_older_etcd_are_refused_to_the_newer_one_only() -> None:
    older = raw_etcd("a-b", "2026-01-01T00:00:00Z")
    newer = raw_etcd("b-a-b", "2026-01-02T00:00:00Z", volumeClaimTemplate="a")
    assert claims(older, [older, newer]) == []
    [problem] = claims(newer, [older, newer])
    assert problem.startswith("spec.volumeClaimTemplate: the claims a-b-a-b-<ordinal> of this Etcd would be those")
    same_time = raw_etcd("b-a-b", "2026-01-01T00:00:00Z", volumeClaimTemplate="a")
    assert claims(older, [older, same_time]) == [] and claims(same_time, [older, same_time]) != []  # then by name
    assert claims(raw_etcd("c", volumeClaimTemplate="a"), [older]) == []


def test_the_claim_prefix_index_finds_every_etcd_the_walk_would_refuse() -> None:
    """The controller looks only at the Etcds indexed under this Etcd's claim name prefix: the same answer as
    walking the namespace, for Etcds whose names and templates make prefixes collide or not."""
    store = Store({validation.CLAIM_PREFIX_INDEX: validation.claim_prefix_index})
    etcds = [
        raw_etcd("a-b", "2026-01-01T00:00:00Z"),
        raw_etcd("b-a-b", "2026-01-02T00:00:00Z", volumeClaimTemplate="a"),
        raw_etcd("b", "2026-01-03T00:00:00Z", volumeClaimTemplate="a-b-a"),
        raw_etcd("c", "2026-01-01T00:00:00Z"),
        raw_etcd("d", "2026-01-04T00:00:00Z", volumeClaimTemplate="c"),
    ]
    for e in etcds:
        store.put(e)
    for e in etcds:
        indexed = store.by_index(validation.CLAIM_PREFIX_INDEX, validation.claim_prefix_index(e)[0])
        assert claims(e, indexed) == claims(e, etcds)
    assert claims(etcds[1], etcds) != [] and claims(etcds[2], etcds) != []  # the index is not trivially empty


def test_claims_labelled_as_another_etcds_are_refused() -> None:
    def pvc(name: str, part_of: str) -> dict[str, Any]:
        labels = {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE, c.LABEL_PART_OF: part_of}
        return {"metadata": {"name": name, "namespace": "ns", "labels": labels}}

    etcd = raw_etcd("c", volumeClaimTemplate="x")
    assert claims(etcd, [], [pvc("x-c-0", "c"), pvc("x-c-7", "other")]) == []  # its own; beyond its replicas
    [problem] = claims(etcd, [], [pvc("x-c-2", "other")])
    assert "PersistentVolumeClaim x-c-2 belongs to Etcd other" in problem


def test_render_refuses_what_the_controller_refuses() -> None:
    with pytest.raises(RenderError) as err:
        render_objects(raw_etcd(etcd={"quota": "-1Gi"}))
    assert err.value.problems == ["spec.etcd.quota: must be positive (is -1Gi)"]
