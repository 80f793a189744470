"""Command-line arguments of the etcd-wrapper and backup-restore containers, in upstream's order.

Built-in defaults are the literal strings etcd-druid uses (``15m``, ``30m``, ``10s``, ``5m``); durations
taken from the spec are rendered like Go's ``Duration.String()`` (``300s`` -> ``5m0s``).
"""

from __future__ import annotations

from druid.api import constants as c
from druid.api import defaults, names
from druid.api.etcd import Etcd
from druid.components import statefulset_volumes as vol
from druid.gocompat import duration

CLIENT_TLS_CERT = f"{vol.ETCD_CLIENT_TLS_DIR}/tls.crt"
CLIENT_TLS_KEY = f"{vol.ETCD_CLIENT_TLS_DIR}/tls.key"


def etcd_args(etcd: Etcd) -> list[str]:
    """``start-etcd`` and the flags of etcd-wrapper."""
    spec, name = etcd.spec, etcd.name
    args = [
        "start-etcd",
        f"--backup-restore-host-port={name}-local:{defaults.backup_port(spec.backup)}",
        f"--etcd-server-name={name}-local",
    ]
    if spec.backup.tls is None:
        args.append("--backup-restore-tls-enabled=false")
    else:
        args += [
            "--backup-restore-tls-enabled=true",
            f"--backup-restore-ca-cert-bundle-path={vol.BACKUP_RESTORE_CA_DIR}/{defaults.ca_data_key(spec.backup.tls)}",
        ]
    if spec.etcd.client_url_tls is not None:
        args += [f"--etcd-client-cert-path={CLIENT_TLS_CERT}", f"--etcd-client-key-path={CLIENT_TLS_KEY}"]
    if client_port := defaults.client_port(spec.etcd):
        args.append(f"--etcd-client-port={client_port}")
    if wrapper_port := defaults.wrapper_port(spec.etcd):
        args.append(f"--etcd-wrapper-port={wrapper_port}")
    return args


def _store_args(etcd: Etcd, provider: str) -> list[str]:
    backup, name = etcd.spec.backup, etcd.name
    backup_store = backup.store
    assert backup_store is not None
    args = []
    if etcd.runtime_component_creation_enabled:
        args += [
            "--enable-snapshot-lease-renewal=true",
            f"--full-snapshot-lease-name={names.full_snapshot_lease_name(name)}",
            f"--delta-snapshot-lease-name={names.delta_snapshot_lease_name(name)}",
        ]
    args += [f"--storage-provider={provider}", f"--store-prefix={backup_store.prefix}"]
    if backup_store.endpoint_override is not None:
        args.append(f"--store-endpoint-override={backup_store.endpoint_override}")
    if backup.full_snapshot_schedule is not None:
        args.append(f"--schedule={backup.full_snapshot_schedule}")
    if backup.delta_snapshot_period is not None:
        args.append(f"--delta-snapshot-period={duration.normalize(backup.delta_snapshot_period)}")
    if backup.delta_snapshot_retention_period is not None:
        retention = duration.normalize(backup.delta_snapshot_retention_period)
        args.append(f"--delta-snapshot-retention-period={retention}")
    args.append(f"--delta-snapshot-memory-limit={defaults.delta_snapshot_memory_limit_bytes(backup)}")
    policy = defaults.garbage_collection_policy(backup)
    args.append(f"--garbage-collection-policy={policy}")
    if policy == c.GC_POLICY_LIMIT_BASED:
        args.append(f"--max-backups={defaults.max_backups_limit_based_gc(backup)}")
    if backup.garbage_collection_period is not None:
        args.append(f"--garbage-collection-period={duration.normalize(backup.garbage_collection_period)}")
    args += [
        f"--compress-snapshots={'true' if defaults.compression_enabled(backup) else 'false'}",
        f"--compression-policy={defaults.compression_policy(backup)}",
        f"--etcd-snapshot-timeout={defaults.etcd_snapshot_timeout(backup)}",
    ]
    return args


def service_endpoints(etcd: Etcd, scheme: str) -> str:
    """The client Service URL, then ``bootstrapWithExistingCluster.clientEndpoints``, comma-separated."""
    endpoints = [f"{scheme}://{names.client_service_name(etcd.name)}:{defaults.client_port(etcd.spec.etcd)}"]
    bootstrap = etcd.spec.etcd.bootstrap_with_existing_cluster
    if bootstrap is not None:
        endpoints += bootstrap.client_endpoints
    return ",".join(endpoints)


def backup_restore_args(etcd: Etcd, provider: str | None) -> list[str]:
    """``server`` and the flags of etcd-backup-restore; ``provider`` as from ``statefulset_volumes.provider``."""
    spec, name = etcd.spec, etcd.name
    runtime = etcd.runtime_component_creation_enabled
    args = ["server", f"--server-port={defaults.backup_port(spec.backup)}"]
    if provider is not None:
        args += _store_args(etcd, provider)
    if spec.etcd.defragmentation_schedule is not None:
        args.append(f"--defragmentation-schedule={spec.etcd.defragmentation_schedule}")
    args += [
        f"--etcd-defrag-timeout={defaults.etcd_defrag_timeout(spec.etcd)}",
        f"--auto-compaction-mode={defaults.auto_compaction_mode(spec)}",
        f"--auto-compaction-retention={defaults.auto_compaction_retention(spec)}",
    ]
    client_port = defaults.client_port(spec.etcd)
    client_tls = spec.etcd.client_url_tls
    if client_tls is not None:
        args += [
            f"--cacert={vol.ETCD_CA_DIR}/{defaults.ca_data_key(client_tls)}",
            f"--cert={CLIENT_TLS_CERT}",
            f"--key={CLIENT_TLS_KEY}",
            "--insecure-transport=false",
            "--insecure-skip-tls-verify=false",
            f"--endpoints=https://{name}-local:{client_port}",
        ]
    else:
        args += [
            "--insecure-transport=true",
            "--insecure-skip-tls-verify=true",
            f"--endpoints=http://{name}-local:{client_port}",
        ]
    if runtime:
        args.append(f"--service-endpoints={service_endpoints(etcd, 'https' if client_tls else 'http')}")
    if spec.backup.tls is not None:
        args += [
            f"--server-cert={vol.BACKUP_RESTORE_SERVER_TLS_DIR}/tls.crt",
            f"--server-key={vol.BACKUP_RESTORE_SERVER_TLS_DIR}/tls.key",
        ]
    args += [
        f"--data-dir={vol.DATA_DIR}/new.etcd",
        f"--restoration-temp-snapshots-dir={vol.DATA_DIR}/restoration.temp",
        f"--snapstore-temp-directory={vol.DATA_DIR}/temp",
        f"--etcd-connection-timeout={defaults.DEFAULT_ETCD_CONNECTION_TIMEOUT}",
        "--use-etcd-wrapper=true",
    ]
    if runtime:
        args += [
            "--enable-member-lease-renewal=true",
            f"--k8s-heartbeat-duration={defaults.heartbeat_duration(spec.etcd)}",
        ]
    args.append(f"--embedded-etcd-quota-bytes={defaults.quota_bytes(spec.etcd)}")
    if spec.backup.enable_profiling:
        args.append("--enable-profiling=true")
    election = spec.backup.leader_election
    if election is not None:
        if election.etcd_connection_timeout is not None:
            timeout = duration.normalize(election.etcd_connection_timeout)
            args.append(f"--etcd-connection-timeout-leader-election={timeout}")
        if election.reelection_period is not None:
            args.append(f"--reelection-period={duration.normalize(election.reelection_period)}")
    return args
