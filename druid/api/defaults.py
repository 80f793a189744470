"""Operator-side defaults of Etcd fields, defined once.

The Etcd CRD has no ``default:`` values: etcd-druid fills in unset fields when it builds components.
The constants below are those values, and the accessors return a field's effective value the way the
component builders need it. Durations taken from a spec are rendered like Go's ``Duration.String()``
(``300s`` -> ``5m0s``); built-in duration defaults are the literal strings etcd-druid uses.

EtcdOpsTask is different: its defaults are in the CRD (the API server applies them); the constants are
here too so that code never has to guess.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from druid.api import names
from druid.gocompat import duration, quantity

if TYPE_CHECKING:
    from druid.api.etcd import BackupSpec, Etcd, EtcdConfig, EtcdSpec, TLSConfig

# Etcd spec ---------------------------------------------------------------------------------------------
DEFAULT_STORAGE_CAPACITY = "16Gi"
DEFAULT_AUTO_COMPACTION_MODE = "periodic"
DEFAULT_AUTO_COMPACTION_RETENTION = "30m"
NON_ROOT_USER = 65532  # uid, gid and fsGroup of the etcd pods unless spec.runAsRoot

# Etcd spec.etcd
DEFAULT_QUOTA = "8Gi"
DEFAULT_QUOTA_BYTES = 8 * 1024**3
DEFAULT_SNAPSHOT_COUNT = 10000
DEFAULT_ENABLE_GRPC_GATEWAY = False
DEFAULT_SERVER_PORT = 2380
DEFAULT_CLIENT_PORT = 2379
DEFAULT_WRAPPER_PORT = 9095
DEFAULT_METRICS = "basic"
DEFAULT_ETCD_DEFRAG_TIMEOUT = "15m"
DEFAULT_HEARTBEAT_DURATION = "10s"
DEFAULT_BACKEND_BBOLT_FREELIST_TYPE = "array"
DEFAULT_RESOURCES: dict[str, Any] = {"requests": {"cpu": "50m", "memory": "128Mi"}}  # etcd and backup-restore
# Key of the CA bundle in a TLS CA secret: for mounts in the StatefulSet / etcd config ...
DEFAULT_CA_DATA_KEY = "ca.crt"
# ... and for druid's own HTTP clients of backup-restore (compaction full snapshot, EtcdOpsTask).
DEFAULT_CA_BUNDLE_DATA_KEY = "bundle.crt"

# Etcd spec.backup
DEFAULT_BACKUP_PORT = 8080
DEFAULT_GARBAGE_COLLECTION_POLICY = "LimitBased"
DEFAULT_MAX_BACKUPS_LIMIT_BASED_GC = 7
DEFAULT_DELTA_SNAPSHOT_MEMORY_LIMIT = "100Mi"
DEFAULT_DELTA_SNAPSHOT_MEMORY_LIMIT_BYTES = 100 * 1024**2
DEFAULT_COMPRESSION_ENABLED = True
DEFAULT_COMPRESSION_POLICY = "gzip"
DEFAULT_ETCD_SNAPSHOT_TIMEOUT = "15m"
DEFAULT_ETCD_CONNECTION_TIMEOUT = "5m"  # backup-restore --etcd-connection-timeout, not configurable
DEFAULT_COMPACTION_JOB_CPU_REQUEST = "600m"
DEFAULT_COMPACTION_JOB_MEMORY_REQUEST = "3Gi"
DEFAULT_FULL_SNAPSHOT_REQUEST_TIMEOUT_SECONDS = 900  # compaction's HTTP call when etcdSnapshotTimeout unset

# EtcdOpsTask (also CRD defaults)
DEFAULT_TTL_SECONDS_AFTER_FINISHED = 3600
DEFAULT_TIMEOUT_SECONDS_FULL = 900
DEFAULT_DEFRAGMENTATION_TIMEOUT_SECONDS = 300  # druid's Defragmentation task, per member
DEFAULT_TIMEOUT_SECONDS_DELTA = 60


def _go_duration(value: str | None, default: str) -> str:
    return default if value is None else duration.normalize(value)


# spec --------------------------------------------------------------------------------------------------


def storage_capacity(spec: EtcdSpec) -> int | str:
    """The data volume size as a quantity (as written in the spec, or ``16Gi``)."""
    return DEFAULT_STORAGE_CAPACITY if spec.storage_capacity is None else spec.storage_capacity


def volume_claim_template_name(etcd: Etcd) -> str:
    """``spec.volumeClaimTemplate``, or the Etcd name."""
    return names.volume_claim_template(etcd.spec.volume_claim_template, etcd.name)


def auto_compaction_mode(spec: EtcdSpec) -> str:
    mode = spec.shared_config.auto_compaction_mode if spec.shared_config else None
    return mode or DEFAULT_AUTO_COMPACTION_MODE


def auto_compaction_retention(spec: EtcdSpec) -> str:
    retention = spec.shared_config.auto_compaction_retention if spec.shared_config else None
    return DEFAULT_AUTO_COMPACTION_RETENTION if retention is None else retention


# spec.etcd -------------------------------------------------------------------------------------------


def quota_bytes(config: EtcdConfig) -> int:
    """``quota`` in bytes (``quota-backend-bytes``, ``--embedded-etcd-quota-bytes``), default 8Gi."""
    return DEFAULT_QUOTA_BYTES if config.quota is None else quantity.value(config.quota)


def snapshot_count(config: EtcdConfig) -> int:
    return DEFAULT_SNAPSHOT_COUNT if config.snapshot_count is None else config.snapshot_count


def enable_grpc_gateway(config: EtcdConfig) -> bool:
    return DEFAULT_ENABLE_GRPC_GATEWAY if config.enable_grpc_gateway is None else config.enable_grpc_gateway


def server_port(config: EtcdConfig) -> int:
    """Peer port."""
    return DEFAULT_SERVER_PORT if config.server_port is None else config.server_port


def client_port(config: EtcdConfig) -> int:
    return DEFAULT_CLIENT_PORT if config.client_port is None else config.client_port


def wrapper_port(config: EtcdConfig) -> int:
    return DEFAULT_WRAPPER_PORT if config.wrapper_port is None else config.wrapper_port


def metrics(config: EtcdConfig) -> str:
    return config.metrics or DEFAULT_METRICS


def etcd_defrag_timeout(config: EtcdConfig) -> str:
    """Value of ``--etcd-defrag-timeout``."""
    return _go_duration(config.etcd_defrag_timeout, DEFAULT_ETCD_DEFRAG_TIMEOUT)


def heartbeat_duration(config: EtcdConfig) -> str:
    """Value of ``--k8s-heartbeat-duration``."""
    return _go_duration(config.heartbeat_duration, DEFAULT_HEARTBEAT_DURATION)


def backend_bbolt_freelist_type(config: EtcdConfig) -> str:
    return config.backend_bbolt_freelist_type or DEFAULT_BACKEND_BBOLT_FREELIST_TYPE


def etcd_resources(config: EtcdConfig) -> dict[str, Any]:
    """Resources of the etcd container: the spec's as given (even if empty), else 50m / 128Mi requests."""
    return copy.deepcopy(DEFAULT_RESOURCES if config.resources is None else config.resources)


def ca_data_key(tls: TLSConfig, default: str = DEFAULT_CA_DATA_KEY) -> str:
    """Key of the CA bundle in ``tlsCASecretRef``; pass ``DEFAULT_CA_BUNDLE_DATA_KEY`` for HTTP clients."""
    return tls.tls_ca_secret_ref.data_key or default


# spec.backup -----------------------------------------------------------------------------------------


def backup_port(backup: BackupSpec) -> int:
    return DEFAULT_BACKUP_PORT if backup.port is None else backup.port


def backup_resources(backup: BackupSpec) -> dict[str, Any]:
    """Resources of the backup-restore container: the spec's as given, else 50m / 128Mi requests."""
    return copy.deepcopy(DEFAULT_RESOURCES if backup.resources is None else backup.resources)


def garbage_collection_policy(backup: BackupSpec) -> str:
    return backup.garbage_collection_policy or DEFAULT_GARBAGE_COLLECTION_POLICY


def max_backups_limit_based_gc(backup: BackupSpec) -> int:
    """``--max-backups`` (only rendered with the LimitBased policy)."""
    value = backup.max_backups_limit_based_gc
    return DEFAULT_MAX_BACKUPS_LIMIT_BASED_GC if value is None else value


def delta_snapshot_memory_limit_bytes(backup: BackupSpec) -> int:
    limit = backup.delta_snapshot_memory_limit
    return DEFAULT_DELTA_SNAPSHOT_MEMORY_LIMIT_BYTES if limit is None else quantity.value(limit)


def compression_enabled(backup: BackupSpec) -> bool:
    enabled = backup.compression.enabled if backup.compression else None
    return DEFAULT_COMPRESSION_ENABLED if enabled is None else enabled


def compression_policy(backup: BackupSpec) -> str:
    policy = backup.compression.policy if backup.compression else None
    return policy or DEFAULT_COMPRESSION_POLICY


def etcd_snapshot_timeout(backup: BackupSpec) -> str:
    """Value of ``--etcd-snapshot-timeout``."""
    return _go_duration(backup.etcd_snapshot_timeout, DEFAULT_ETCD_SNAPSHOT_TIMEOUT)


def full_snapshot_request_timeout_seconds(backup: BackupSpec) -> float:
    """Timeout of druid's HTTP request for a full snapshot (compaction controller)."""
    if backup.etcd_snapshot_timeout is None:
        return DEFAULT_FULL_SNAPSHOT_REQUEST_TIMEOUT_SECONDS
    return duration.seconds(backup.etcd_snapshot_timeout)


def compaction_job_requests(backup: BackupSpec) -> dict[str, int | str]:
    """Requests of the compaction job: ``snapshotCompaction.resources.requests``; unset or zero -> 600m / 3Gi."""
    requests: dict[str, Any] = {}
    if backup.snapshot_compaction and backup.snapshot_compaction.resources:
        requests = backup.snapshot_compaction.resources.get("requests") or {}

    def pick(name: str, default: str) -> int | str:
        value = requests.get(name)
        return default if value is None or quantity.parse_quantity(value) == 0 else value

    return {
        "cpu": pick("cpu", DEFAULT_COMPACTION_JOB_CPU_REQUEST),
        "memory": pick("memory", DEFAULT_COMPACTION_JOB_MEMORY_REQUEST),
    }
