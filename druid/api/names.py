"""Names, labels and owner references of the objects druid manages for an Etcd named ``name``."""

from __future__ import annotations

from typing import Any

from druid.api import constants as c


def peer_service_name(name: str) -> str:
    return f"{name}-peer"


def client_service_name(name: str) -> str:
    return f"{name}-client"


def service_account_name(name: str) -> str:
    return name


def config_map_name(name: str) -> str:
    return f"{name}-config"


def compaction_job_name(name: str) -> str:
    return f"{name}-compactor"


def statefulset_name(name: str) -> str:
    return name


def pod_disruption_budget_name(name: str) -> str:
    return name


def role_name(name: str) -> str:
    return f"{c.GROUP}:etcd:{name}"


def role_binding_name(name: str) -> str:
    return f"{c.GROUP}:etcd:{name}"


def delta_snapshot_lease_name(name: str) -> str:
    return f"{name}-delta-snap"


def full_snapshot_lease_name(name: str) -> str:
    return f"{name}-full-snap"


def pod_name(name: str, ordinal: int) -> str:
    return f"{name}-{ordinal}"


def pod_names(name: str, replicas: int) -> list[str]:
    return [pod_name(name, i) for i in range(replicas)]


def volume_claim_template(configured: str | None, etcd_name: str) -> str:
    """The data volume's claim template name: ``spec.volumeClaimTemplate`` when set, else the Etcd's name."""
    return configured or etcd_name


def claim_name_prefix(volume_claim_template: str, statefulset: str) -> str:
    """The StatefulSet controller names a member's claim ``<template>-<statefulset>-<ordinal>``."""
    return f"{volume_claim_template}-{statefulset}"


def claim_name(volume_claim_template: str, statefulset: str, ordinal: int) -> str:
    return f"{claim_name_prefix(volume_claim_template, statefulset)}-{ordinal}"


def member_name(member_name_prefix: str | None, pod: str) -> str:
    """``<prefix>-<pod>`` when a non-empty prefix is set, else the pod name."""
    return f"{member_name_prefix}-{pod}" if member_name_prefix else pod


def member_lease_names(name: str, replicas: int, member_name_prefix: str | None = None) -> list[str]:
    """One lease per member, named like the member."""
    return [member_name(member_name_prefix, pod) for pod in pod_names(name, replicas)]


def copy_backups_job_name(task_name: str) -> str:
    return f"{task_name}-worker"


def default_labels(name: str) -> dict[str, str]:
    """managed-by and part-of: the selector of the StatefulSet and PDB, and ``status.selector``."""
    return {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE, c.LABEL_PART_OF: name}


def selector_string(labels: dict[str, str]) -> str:
    """A label selector string like ``metav1.FormatLabelSelector`` for plain matchLabels (sorted by key)."""
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def owner_reference(name: str, uid: str, kind: str = c.KIND_ETCD) -> dict[str, Any]:
    """Controller owner reference to a druid resource, as set on every managed object."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
