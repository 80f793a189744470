"""druid's admission policy for Etcds (issue 13, finding 6): the decision and the ``etcds`` webhook's use of it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from druid.api import constants as c
from druid.api.admission import AdmissionPolicy, local_store_path, violations
from druid.config.operator import parse
from druid.webhook.etcdadmission import review_etcd

SAFE = AdmissionPolicy(
    allowed_image_prefixes=("registry.example/etcd/",),
    allow_run_as_root=False,
    allowed_local_store_host_path_prefixes=("/srv/backups",),
    allowed_priority_classes=("etcd-critical",),
)
RECONCILER = "system:serviceaccount:druid-system:etcd-druid"


def etcd(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": c.API_VERSION, "kind": "Etcd", "metadata": {"name": "e", "namespace": "n"}, "spec": spec}


def local(container: str) -> dict[str, Any]:
    return {"store": {"provider": "Local", "container": container, "prefix": "p"}}


def test_default_policy_allows_everything_etcd_druid_allows() -> None:
    hostile = etcd(
        runAsRoot=True,
        priorityClassName="system-node-critical",
        etcd={"image": "evil.example/etcd:latest"},
        backup={"image": "evil.example/br", **local("kubelet")},
    )
    assert violations(AdmissionPolicy(), hostile, host_path="/var/lib") == []


def test_each_field_is_checked_and_named() -> None:
    hostile = etcd(
        runAsRoot=True,
        priorityClassName="system-node-critical",
        etcd={"image": "evil.example/etcd:latest"},
        backup={"image": "registry.example/etcd/br:v1", **local("kubelet")},
    )
    assert violations(SAFE, hostile, host_path="/var/lib") == [
        "spec.etcd.image: image evil.example/etcd:latest is not allowed (allowed prefixes: registry.example/etcd/)",
        "spec.runAsRoot: running etcd as root is not allowed",
        "spec.priorityClassName: system-node-critical is not allowed (allowed: etcd-critical)",
        "spec.backup.store (secret hostPath): Local store directory /var/lib/kubelet is not allowed "
        "(allowed prefixes: /srv/backups)",
    ]
    fine = etcd(runAsRoot=False, priorityClassName="etcd-critical", etcd={"image": "registry.example/etcd/e:1"})
    assert violations(SAFE, fine) == []


@pytest.mark.parametrize(
    ("host_path", "container", "allowed"),
    [
        ("/srv/backups", "bucket", True),
        ("/srv/backups/", "bucket", True),
        ("/srv/backups/../../var/lib", "kubelet", False),  # normalised before comparing
        ("/srv/backups-other", "bucket", False),  # whole path components only
        ("/srv", "backups", True),
        (None, "bucket", False),  # the default directory is not under /srv/backups
    ],
)
def test_local_store_paths(host_path: str | None, container: str, allowed: bool) -> None:
    assert (violations(SAFE, etcd(backup=local(container)), host_path=host_path) == []) is allowed
    assert local_store_path(None, "b") == "/etc/gardener/local-backupbuckets/b"


def test_other_providers_are_not_host_paths() -> None:
    s3 = {"store": {"provider": "aws", "container": "kubelet", "prefix": "p"}}
    assert violations(SAFE, etcd(backup=s3), host_path="/var/lib") == []


def test_configuration_fields_and_defaults() -> None:
    cfg, _ = parse(
        {
            "apiVersion": "config.druid.gardener.cloud/v1alpha1",
            "kind": "OperatorConfiguration",
            "etcdAdmissionPolicy": {
                "allowedImagePrefixes": ["registry.example/etcd/"],
                "allowRunAsRoot": False,
                "allowedLocalStoreHostPathPrefixes": ["/srv/backups"],
                "allowedPriorityClasses": ["etcd-critical"],
            },
        }
    )
    assert cfg.admission_policy() == SAFE
    empty, _ = parse({"apiVersion": "config.druid.gardener.cloud/v1alpha1", "kind": "OperatorConfiguration"})
    assert empty.admission_policy() == AdmissionPolicy() and "etcdAdmissionPolicy" not in empty.to_dict()


def admission(operation: str, new: dict[str, Any], old: dict[str, Any] | None = None, user: str = "bob") -> Any:
    request = {
        "uid": "u",
        "kind": {"group": c.GROUP, "version": c.VERSION, "kind": "Etcd"},
        "operation": operation,
        "userInfo": {"username": user},
        "object": new,
        "oldObject": old,
    }
    return review_etcd(request, SAFE, RECONCILER)


def test_webhook_denies_with_every_reason() -> None:
    d = admission("CREATE", etcd(runAsRoot=True, priorityClassName="system-node-critical"))
    assert (d.allowed, d.code, d.reason) == (False, 403, "Forbidden")
    assert d.message == (
        "the Etcd asks for what druid's admission policy forbids: spec.runAsRoot: running etcd as root is not "
        "allowed; spec.priorityClassName: system-node-critical is not allowed (allowed: etcd-critical)"
    )
    assert admission("CREATE", etcd(runAsRoot=False)).allowed


def test_webhook_lets_metadata_changes_and_druid_through() -> None:
    old = etcd(runAsRoot=True)  # admitted under an older policy
    annotated = copy.deepcopy(old)
    annotated["metadata"]["annotations"] = {"gardener.cloud/operation": "reconcile"}
    assert admission("UPDATE", annotated, old).allowed
    changed = copy.deepcopy(old)
    changed["spec"]["replicas"] = 3
    assert not admission("UPDATE", changed, old).allowed
    assert admission("UPDATE", changed, old, user=RECONCILER).allowed
    assert admission("DELETE", old, old).allowed
