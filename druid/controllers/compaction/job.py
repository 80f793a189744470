"""The snapshot compaction Job ``<etcd>-compactor`` (upstream ``createCompactionJob``), built without I/O.

``build(etcd, opts, config, host_path=...)`` returns the Job exactly as upstream creates it: labels (default +
name/component + the three ``networking.gardener.cloud/to-*`` labels, on the pod template too), the Etcd as
controller owner, ``activeDeadlineSeconds`` on Job and pod, ``completions: 1``, ``backoffLimit: 0``, pod
annotations = ``spec.annotations`` minus ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"``, one
container ``compact-backup`` (backup-restore image, requests only), ``compact`` args, backup-restore env and
the provider's volume. The host directory of a Local store comes from the store secret, which the caller reads
(``statefulset_volumes.local_host_path``). Spec problems raise :class:`JobSpecError`.
"""

from __future__ import annotations

from typing import Any

from druid.api import constants as c
from druid.api import defaults, names, store
from druid.api.etcd import Etcd
from druid.components import statefulset_volumes as vol
from druid.components.base import BuildOptions, metadata
from druid.config import images
from druid.config.operator import CompactionControllerConfiguration
from druid.gocompat import duration
from druid.runtime.objects import JOBS, Obj

CONTAINER_NAME = "compact-backup"
WORKSPACE_VOLUME = "etcd-workspace-dir"
HOST_STORAGE_VOLUME = "host-storage"
TERMINATION_GRACE_PERIOD_SECONDS = 60
NETWORK_LABELS = {
    "networking.gardener.cloud/to-dns": "allowed",
    "networking.gardener.cloud/to-private-networks": "allowed",
    "networking.gardener.cloud/to-public-networks": "allowed",
}


class JobSpecError(ValueError):
    """The Etcd's backup settings do not allow a compaction job (unknown provider, missing secretRef)."""


def job_name(etcd: Etcd) -> str:
    return names.compaction_job_name(etcd.name)


def labels(etcd: Etcd) -> dict[str, str]:
    """Job and pod template labels."""
    return {**metadata(etcd, job_name(etcd), c.COMPONENT_COMPACTION_JOB)["labels"], **NETWORK_LABELS}


def pod_annotations(etcd: Etcd) -> dict[str, str]:
    """``spec.annotations`` without ``safe-to-evict: "false"`` (the compaction pod may be evicted)."""
    return {
        k: v for k, v in (etcd.spec.annotations or {}).items() if not (k == c.ANNOTATION_SAFE_TO_EVICT and v == "false")
    }


def provider(etcd: Etcd) -> str:
    """backup-restore's provider name; raises :class:`JobSpecError` without a store or for an unknown one."""
    backup_store = etcd.spec.backup.store
    if backup_store is None:
        raise JobSpecError("no backup store configured")
    try:
        return store.storage_provider(backup_store.provider)
    except ValueError as e:
        raise JobSpecError(f"storage provider is not recognized: {e}") from None


def args(etcd: Etcd, metrics_scrape_wait_duration: float) -> list[str]:
    """``compact`` and its flags, in upstream's order."""
    spec, name = etcd.spec, etcd.name
    out: list[str] = [
        "compact",
        "--data-dir=/var/etcd/data/compaction.etcd",
        "--restoration-temp-snapshots-dir=/var/etcd/data/compaction.restoration.temp",
        "--snapstore-temp-directory=/var/etcd/data/tmp",
        f"--metrics-scrape-wait-duration={duration.format_seconds(metrics_scrape_wait_duration)}",
        "--enable-snapshot-lease-renewal=true",
        f"--full-snapshot-lease-name={names.full_snapshot_lease_name(name)}",
        f"--delta-snapshot-lease-name={names.delta_snapshot_lease_name(name)}",
        f"--embedded-etcd-quota-bytes={defaults.quota_bytes(spec.etcd)}",
    ]
    if spec.etcd.etcd_defrag_timeout is not None:
        out.append(f"--etcd-defrag-timeout={duration.normalize(spec.etcd.etcd_defrag_timeout)}")
    if spec.backup.etcd_snapshot_timeout is not None:
        out.append(f"--etcd-snapshot-timeout={duration.normalize(spec.backup.etcd_snapshot_timeout)}")
    return out + store_args(etcd)


def store_args(etcd: Etcd) -> list[str]:
    """The snapstore flags of an ``etcdbrctl`` command that reads the Etcd's store (none without a store)."""
    out: list[str] = []
    backup_store = etcd.spec.backup.store
    if backup_store is not None:
        try:
            out.append(f"--storage-provider={store.storage_provider(backup_store.provider)}")
        except ValueError:
            pass  # upstream leaves the flag out; the volume mounts reject the provider anyway
        if backup_store.prefix:
            out.append(f"--store-prefix={backup_store.prefix}")
        if backup_store.container is not None:
            out.append(f"--store-container={backup_store.container}")
        if backup_store.endpoint_override is not None:
            out.append(f"--store-endpoint-override={backup_store.endpoint_override}")
    return out


def volume_mounts(etcd: Etcd) -> list[dict[str, Any]]:
    kind = provider(etcd)
    out = [vol.mount(WORKSPACE_VOLUME, vol.DATA_DIR)]
    if kind == store.LOCAL:
        out.append(vol.mount(HOST_STORAGE_VOLUME, vol.local_store_mount_path(etcd)))
    elif kind in vol.SECRET_MOUNT_PROVIDERS:
        out.append(vol.mount(vol.BACKUP_SECRET, vol.GCS_SECRET_DIR if kind == store.GCS else vol.BACKUP_SECRET_DIR))
    return out


def env(etcd: Etcd) -> list[dict[str, Any]]:
    """The backup-restore container's env: pod name/namespace, STORAGE_CONTAINER, provider credentials."""
    try:
        return vol.backup_restore_env(etcd)
    except ValueError as e:
        raise JobSpecError(str(e)) from None


def volumes(etcd: Etcd, host_path: str | None) -> list[dict[str, Any]]:
    """The workspace emptyDir and the store: hostPath ``<hostPath>/<container>`` or the credentials secret.

    Unlike the StatefulSet's, the secret volume has no ``defaultMode`` (upstream sets none).
    """
    kind, backup_store = provider(etcd), etcd.spec.backup.store
    assert backup_store is not None
    out: list[dict[str, Any]] = [{"name": WORKSPACE_VOLUME, "emptyDir": {}}]
    if kind == store.LOCAL:
        root = vol.LOCAL_DEFAULT_HOST_PATH if host_path is None else host_path
        path = f"{root}/{backup_store.container or ''}"
        out.append({"name": HOST_STORAGE_VOLUME, "hostPath": {"path": path, "type": "DirectoryOrCreate"}})
    elif kind in vol.SECRET_MOUNT_PROVIDERS:
        if backup_store.secret_ref is None:
            raise JobSpecError(f"could not configure secretRef for backup store {kind}")
        secret: dict[str, Any] = {"secretName": backup_store.secret_ref.name} if backup_store.secret_ref.name else {}
        out.append({"name": vol.BACKUP_SECRET, "secret": secret})
    return out


def build(
    etcd: Etcd,
    opts: BuildOptions,
    config: CompactionControllerConfiguration,
    *,
    host_path: str | None = None,
) -> Obj:
    """The Job to create. ``host_path``: the Local store's host directory (None ⇒ the default)."""
    deadline = int(config.active_deadline_duration)
    job_labels = labels(etcd)
    meta = metadata(etcd, job_name(etcd), c.COMPONENT_COMPACTION_JOB)
    meta["labels"] = job_labels
    template_meta: dict[str, Any] = {"labels": dict(job_labels)}
    if annotations := pod_annotations(etcd):
        template_meta["annotations"] = annotations
    container = {
        "name": CONTAINER_NAME,
        "image": images.backup_restore_image(etcd, opts.images),
        "imagePullPolicy": "IfNotPresent",
        "args": args(etcd, config.metrics_scrape_wait_duration),
        "resources": {"requests": defaults.compaction_job_requests(etcd.spec.backup)},
        "securityContext": {"allowPrivilegeEscalation": False},
        "volumeMounts": volume_mounts(etcd),
        "env": env(etcd),
    }
    pod_spec = {
        "activeDeadlineSeconds": deadline,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_PERIOD_SECONDS,
        "serviceAccountName": names.service_account_name(etcd.name),
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes(etcd, host_path),
    }
    return {
        "apiVersion": JOBS.api_version,
        "kind": JOBS.kind,
        "metadata": meta,
        "spec": {
            "activeDeadlineSeconds": deadline,
            "completions": 1,
            "backoffLimit": 0,
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }
