"""The ``<task>-worker`` Job of an EtcdCopyBackupsTask (upstream ``createJobObject``), built without I/O.

One ``copy-backups`` container (backup-restore image) runs ``etcdbrctl copy`` with the target store flags
and the same flags prefixed ``--source-`` for the source store. Per provider the container gets the store's
credentials: a secret volume ``etcd-backup-secret`` / ``source-etcd-backup-secret`` mounted at
``/var/etcd-backup/`` / ``/var/source-etcd-backup/`` (GCS: ``/var/.gcp/`` / ``/var/.source-gcp/``) and the
provider's ``*_APPLICATION_CREDENTIALS`` variable (``SOURCE_``-prefixed for the source); a Local store is a
hostPath ``host-storage`` / ``source-host-storage`` at ``/home/nonroot/<container>``, and a Local *target*
adds the ``change-backup-bucket-permissions`` init container (alpine, as root) chowning both directories.
ECS stores get neither volume nor credentials variable (as upstream).
"""

from __future__ import annotations

from typing import Any

from druid.api import constants as c
from druid.api import names, store
from druid.api.copybackupstask import EtcdCopyBackupsTask
from druid.api.store import StoreSpec
from druid.components import statefulset_volumes as vol
from druid.config.images import Images
from druid.gocompat import duration
from druid.runtime.objects import Obj

SOURCE_PREFIX = "source-"
SOURCE_ENV_PREFIX = "SOURCE_"
CONTAINER = "copy-backups"
INIT_CONTAINER = "change-backup-bucket-permissions"
HOST_STORAGE = "host-storage"
NONROOT_HOME = "/home/nonroot"
NONROOT_ID = 65532
SNAPSTORE_TEMP_DIR = f"{NONROOT_HOME}/data/tmp"
STORAGE_CONTAINER_ENV = "STORAGE_CONTAINER"


class JobBuildError(ValueError):
    """The task's spec cannot be turned into a Job (unsupported provider, missing secretRef or container)."""


def store_provider(spec: StoreSpec) -> str:
    """backup-restore's provider name; ``""`` when the store names none (then no flags, env or volumes)."""
    if spec.provider is None:
        return ""
    try:
        return store.storage_provider(spec.provider)
    except ValueError as e:
        raise JobBuildError(str(e)) from None


def labels(task_name: str) -> dict[str, str]:
    """Labels of the Job (and, with ``spec.podLabels`` on top, of its pod)."""
    return {
        c.LABEL_COMPONENT: c.COMPONENT_COPY_BACKUPS_JOB,
        c.LABEL_PART_OF: task_name,
        c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE,
        c.LABEL_NAME: names.copy_backups_job_name(task_name),
    }


def secret_dir(provider: str, prefix: str = "") -> str:
    """Mount path of the credentials secret: ``/var/<prefix>etcd-backup/`` or, for GCS, ``/var/.<prefix>gcp/``."""
    base = vol.GCS_SECRET_DIR if provider == store.GCS else vol.BACKUP_SECRET_DIR
    head, _, tail = base.rstrip("/").rpartition("/")
    if tail.startswith("."):
        return f"{head}/.{prefix}{tail[1:]}/"
    return f"{head}/{prefix}{tail}/"


def _container(spec: StoreSpec, prefix: str) -> str:
    if not spec.container:
        raise JobBuildError(f"no container is configured for backup {prefix}store")
    return spec.container


def store_args(spec: StoreSpec, provider: str, prefix: str = "") -> list[str]:
    if not provider:
        return []
    flag = f"--{prefix}"
    args = [f"{flag}storage-provider={provider}"]
    if spec.prefix:
        args.append(f"{flag}store-prefix={spec.prefix}")
    if spec.container:
        args.append(f"{flag}store-container={spec.container}")
    if spec.endpoint_override:
        args.append(f"{flag}store-endpoint-override={spec.endpoint_override}")
    return args


def job_args(task: EtcdCopyBackupsTask, source_provider: str, target_provider: str) -> list[str]:
    spec = task.spec
    args = ["copy", f"--snapstore-temp-directory={SNAPSTORE_TEMP_DIR}"]
    args += store_args(spec.target_store, target_provider)
    args += store_args(spec.source_store, source_provider, SOURCE_PREFIX)
    if spec.max_backup_age is not None:
        args.append(f"--max-backup-age={spec.max_backup_age}")
    if spec.max_backups is not None:
        args.append(f"--max-backups-to-copy={spec.max_backups}")
    wait = spec.wait_for_final_snapshot
    if wait is not None:
        args.append(f"--wait-for-final-snapshot={'true' if wait.enabled else 'false'}")
        if wait.timeout is not None:
            args.append(f"--wait-for-final-snapshot-timeout={duration.normalize(wait.timeout)}")
    return args


def store_env(spec: StoreSpec, provider: str, prefix: str = "") -> list[dict[str, Any]]:
    env_prefix = SOURCE_ENV_PREFIX if prefix else ""
    env = [{"name": env_prefix + STORAGE_CONTAINER_ENV, "value": _container(spec, prefix)}]
    if provider in vol.CREDENTIALS_ENV:
        name, _ = vol.CREDENTIALS_ENV[provider]
        path = secret_dir(provider, prefix)
        value = f"{path}serviceaccount.json" if provider == store.GCS else path.rstrip("/")
        env.append({"name": env_prefix + name, "value": value})
    return env


def store_mounts(spec: StoreSpec, provider: str, prefix: str = "") -> list[dict[str, Any]]:
    if provider == store.LOCAL:
        return [vol.mount(prefix + HOST_STORAGE, f"{NONROOT_HOME}/{_container(spec, prefix)}")]
    if provider in vol.SECRET_MOUNT_PROVIDERS:
        return [vol.mount(prefix + vol.BACKUP_SECRET, secret_dir(provider, prefix))]
    return []


def store_volumes(spec: StoreSpec, provider: str, prefix: str = "", host_path: str | None = None) -> list[Obj]:
    """The store's volume; ``host_path``: the Local buckets directory (default /etc/gardener/local-backupbuckets)."""
    if provider == store.LOCAL:
        root = vol.LOCAL_DEFAULT_HOST_PATH if host_path is None else host_path
        path = f"{root}/{_container(spec, prefix)}"
        return [{"name": prefix + HOST_STORAGE, "hostPath": {"path": path, "type": "DirectoryOrCreate"}}]
    if provider in vol.SECRET_MOUNT_PROVIDERS:
        if spec.secret_ref is None:
            raise JobBuildError(f"no secretRef is configured for backup {prefix}store")
        secret = {"secretName": spec.secret_ref.name, "defaultMode": vol.SECRET_MODE}
        return [{"name": prefix + vol.BACKUP_SECRET, "secret": {k: v for k, v in secret.items() if v}}]
    return []


def init_container(task: EtcdCopyBackupsTask, image: str, mounts: list[dict[str, Any]]) -> dict[str, Any]:
    """Chown the target and source bucket directories to 65532 (only with a Local target)."""
    spec = task.spec
    stores = ((spec.target_store, ""), (spec.source_store, SOURCE_PREFIX))
    dirs = [f"{NONROOT_HOME}/{_container(s, p)}" for s, p in stores]
    return {
        "name": INIT_CONTAINER,
        "image": image,
        "command": ["chown", "-R", f"{NONROOT_ID}:{NONROOT_ID}", *dirs],
        "volumeMounts": mounts,
        "securityContext": {"allowPrivilegeEscalation": False, "runAsGroup": 0, "runAsNonRoot": False, "runAsUser": 0},
    }


def build_job(
    task: EtcdCopyBackupsTask,
    images: Images,
    *,
    source_host_path: str | None = None,
    target_host_path: str | None = None,
) -> Obj:
    """The worker Job; raises :class:`JobBuildError` for a spec upstream cannot build a Job from either."""
    spec, name = task.spec, task.metadata.name or ""
    target_provider = store_provider(spec.target_store)
    source_provider = store_provider(spec.source_store)
    env = store_env(spec.source_store, source_provider, SOURCE_PREFIX) + store_env(spec.target_store, target_provider)
    mounts = store_mounts(spec.source_store, source_provider, SOURCE_PREFIX) + store_mounts(
        spec.target_store, target_provider
    )
    volumes = store_volumes(spec.source_store, source_provider, SOURCE_PREFIX, source_host_path)
    volumes += store_volumes(spec.target_store, target_provider, "", target_host_path)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": images.etcd_backup_restore,
        "imagePullPolicy": "IfNotPresent",
        "args": job_args(task, source_provider, target_provider),
        "env": env,
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    if mounts:
        container["volumeMounts"] = mounts
    pod_spec: dict[str, Any] = {
        "restartPolicy": "OnFailure",
        "containers": [container],
        "shareProcessNamespace": True,
        "securityContext": {
            "runAsGroup": NONROOT_ID,
            "runAsNonRoot": True,
            "runAsUser": NONROOT_ID,
            "fsGroup": NONROOT_ID,
        },
    }
    if volumes:
        pod_spec["volumes"] = volumes
    if target_provider == store.LOCAL:
        pod_spec["initContainers"] = [init_container(task, images.alpine, mounts)]
    common = labels(name)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": names.copy_backups_job_name(name),
            "namespace": task.metadata.namespace,
            "labels": common,
            "ownerReferences": [names.owner_reference(name, task.metadata.uid or "", c.KIND_ETCD_COPY_BACKUPS_TASK)],
        },
        "spec": {
            "template": {
                "metadata": {"labels": {**common, **(spec.pod_labels or {})}},
                "spec": pod_spec,
            }
        },
    }
