"""``ValidateOperatorConfiguration`` (etcd-druid api/config/v1alpha1/validation/validation.go).

Every upstream rule, with upstream's messages; the error path uses the type's keys (upstream names the
logging section ``log`` in its paths; druid says ``logging``). Feature-gate errors (upstream reports
them while completing the options) are included. Druid additions, each an error upstream too but
found later: ``leaderElection.resourceLock`` must be ``leases`` (the only lock client-go still has) and
``server.metrics.bindAddress`` with a ``:`` must be ``host:port``. Druid bounds, which upstream lacks and
which no working configuration reaches: server ports are TCP ports (0–65535; a larger number used to be
wrapped around or crash at start-up) and ``concurrentSyncs`` is at most :data:`MAX_CONCURRENT_SYNCS`
(each sync is a worker task started at once; a huge number wedged druid before it served anything).
"""

from __future__ import annotations

from druid.config import features
from druid.config.errors import FieldError
from druid.config.operator import (
    LOG_FORMATS,
    LOG_LEVELS,
    CompactionControllerConfiguration,
    EtcdComponentProtectionWebhookConfiguration,
    LeaderElectionConfiguration,
    OperatorConfiguration,
)
from druid.config.servers import metrics_listen

GT0 = "must be greater than 0"
MAX_CONCURRENT_SYNCS = 1024
MAX_PORT = 65535
ONLY_ONE = "only one of reconcilerServiceAccountFQDN or serviceAccountInfo can be set but not both."


def _supported(value: str, allowed: tuple[str, ...]) -> str:
    return f'Unsupported value: "{value}": supported values: ' + ", ".join(f'"{a}"' for a in allowed)


def _leader_election(le: LeaderElectionConfiguration) -> list[FieldError]:
    if not le.enabled:
        return []
    p = "leaderElection."
    errs = [FieldError(p + k, GT0) for k, v in _durations(le) if v <= 0]
    if le.lease_duration <= le.renew_deadline:
        errs.append(FieldError(p + "leaseDuration", "LeaseDuration must be greater than RenewDeadline"))
    if not le.resource_lock:
        errs.append(FieldError(p + "resourceLock", "resourceLock is required"))
    elif le.resource_lock != "leases":
        errs.append(FieldError(p + "resourceLock", _supported(le.resource_lock, ("leases",))))
    if not le.resource_name:
        errs.append(FieldError(p + "resourceName", "resourceName is required"))
    return errs


def _durations(le: LeaderElectionConfiguration) -> list[tuple[str, float]]:
    return [
        ("leaseDuration", le.lease_duration),
        ("renewDeadline", le.renew_deadline),
        ("retryPeriod", le.retry_period),
    ]


def _syncs(path: str, value: int | None) -> list[FieldError]:
    if value is None or value <= 0:
        return [FieldError(path, GT0)]
    if value > MAX_CONCURRENT_SYNCS:
        return [FieldError(path, f"must be at most {MAX_CONCURRENT_SYNCS}")]
    return []


def port_problem(port: int) -> str | None:
    """Why ``port`` is no TCP port to listen on (0 = any free port), or None."""
    return None if 0 <= port <= MAX_PORT else f"must be between 0 and {MAX_PORT}"


def _ports(cfg: OperatorConfiguration) -> list[FieldError]:
    errs = []
    for path, port in (
        ("server.metrics.port", cfg.server.metrics.port),
        ("server.webhooks.port", cfg.server.webhooks.port),
    ):
        if port is not None and (problem := port_problem(port)):
            errs.append(FieldError(path, problem))
    return errs


def _compaction(c: CompactionControllerConfiguration) -> list[FieldError]:
    if not c.enabled:
        return []
    p = "controllers.compaction."
    errs = _syncs(p + "concurrentSyncs", c.concurrent_syncs)
    if c.active_deadline_duration <= 0:
        errs.append(FieldError(p + "activeDeadlineDuration", GT0))
    if c.metrics_scrape_wait_duration < 0:
        errs.append(FieldError(p + "metricsScrapeWaitDuration", "must be greater than or equal to 0"))
    if c.events_threshold <= 0:
        errs.append(FieldError(p + "eventsThreshold", GT0))
    if c.trigger_full_snapshot_threshold <= 0:
        errs.append(FieldError(p + "triggerFullSnapshotThreshold", GT0))
    return errs


def _controllers(cfg: OperatorConfiguration) -> list[FieldError]:
    c = cfg.controllers
    errs = _syncs("controllers.etcd.concurrentSyncs", c.etcd.concurrent_syncs)
    for path, value in (
        ("controllers.etcd.etcdStatusSyncPeriod", c.etcd.etcd_status_sync_period),
        ("controllers.etcd.etcdMember.notReadyThreshold", c.etcd.etcd_member.not_ready_threshold),
        ("controllers.etcd.etcdMember.unknownThreshold", c.etcd.etcd_member.unknown_threshold),
    ):
        if value <= 0:
            errs.append(FieldError(path, GT0))
    errs += _syncs("controllers.secret.concurrentSyncs", c.secret.concurrent_syncs)
    errs += _compaction(c.compaction)
    if c.etcd_copy_backups_task.enabled:
        errs += _syncs("controllers.etcdCopyBackupsTask.concurrentSyncs", c.etcd_copy_backups_task.concurrent_syncs)
    errs += _syncs("controllers.etcdOpsTask.concurrentSyncs", c.etcd_ops_task.concurrent_syncs)
    if c.etcd_ops_task.requeue_interval <= 0:
        errs.append(FieldError("controllers.etcdOpsTask.requeueInterval", GT0))
    return errs


def _webhook(w: EtcdComponentProtectionWebhookConfiguration) -> list[FieldError]:
    if not w.enabled:
        return []
    p = "webhooks.etcdComponentProtection"
    errs = []
    fqdn, info = w.reconciler_service_account_fqdn, w.service_account_info
    if fqdn is None and info is None:
        errs.append(FieldError(p, "either reconcilerServiceAccountFQDN or serviceAccountInfo must be set"))
    if fqdn is not None and info is not None:
        errs.append(FieldError(p, ONLY_ONE))
    if info is not None:
        if not info.name.strip():
            errs.append(FieldError(p + ".serviceAccountInfo.name", "name is required"))
        if not info.namespace.strip():
            errs.append(FieldError(p + ".serviceAccountInfo.namespace", "namespace is required"))
    elif fqdn is not None and not fqdn.strip():
        errs.append(FieldError(p + ".reconcilerServiceAccountFQDN", "must not be empty"))
    return errs


def _metrics_address(cfg: OperatorConfiguration) -> list[FieldError]:
    if ":" not in cfg.server.metrics.bind_address:
        return []
    try:
        metrics_listen(cfg)
    except ValueError as e:
        return [FieldError("server.metrics.bindAddress", str(e))]
    return []


def validate(cfg: OperatorConfiguration) -> list[FieldError]:
    """Every rule of upstream's ``ValidateOperatorConfiguration`` plus feature gates.

    All errors, in upstream's order (client, leader election, controllers, logging, webhooks), then gates.
    """
    errs: list[FieldError] = []
    if cfg.client_connection.burst < 0:
        errs.append(FieldError("clientConnection.burst", "must be non-negative"))
    errs += _leader_election(cfg.leader_election)
    errs += _controllers(cfg)
    if cfg.logging.log_level not in LOG_LEVELS:
        errs.append(FieldError("logging.logLevel", _supported(cfg.logging.log_level, LOG_LEVELS)))
    if cfg.logging.log_format not in LOG_FORMATS:
        errs.append(FieldError("logging.logFormat", _supported(cfg.logging.log_format, LOG_FORMATS)))
    errs += _webhook(cfg.webhooks.etcd_component_protection)
    errs += _metrics_address(cfg)
    errs += _ports(cfg)
    errs += [FieldError(f"featureGates.{name}", msg) for name, msg in features.gate_errors(cfg.feature_gates).items()]
    return errs
