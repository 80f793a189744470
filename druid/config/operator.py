"""``OperatorConfiguration`` (config.druid.gardener.cloud/v1alpha1): models, defaults, loading.

Mirrors etcd-druid's ``api/config/v1alpha1`` (types.go, defaults.go). Models use camelCase aliases on
the wire, snake_case in Python, and reject unknown keys (upstream's decoder silently drops them).

**Durations** are Go duration strings on the wire (``15s``, ``5m``, ``1h30m``) and ``float`` seconds
on the model: a field validator converts on input, ``model_dump(mode="json")`` renders Go's
``Duration.String()`` (``5m0s``). Numbers are accepted as seconds only from Python code; in a file
they are an error, as in Go.

**Defaults** are applied by the models themselves, the way upstream's ``SetDefaults_*`` do: a field
that is zero/empty gets its default (so ``burst: 0`` becomes 150, ``etcdStatusSyncPeriod: 0s`` 15s);
fields that are pointers upstream (``concurrentSyncs``, ``etcdOpsTask.requeueInterval``) are defaulted
only when absent, so an explicit 0 stays and fails validation. Leader-election defaults apply only when
enabled; compaction and copy-backups-task defaults only when that controller is enabled.
Druid deviation: an explicit ``port: 0`` (or ``--metrics-port 0``) means "any free port" instead of
upstream's 8080; an absent port is still 8080 / 9443.

**Key drift**: the type's keys are the canonical ones — ``logging``,
``clientConnection.acceptContentTypes``, and ``server.webhooks.{bindAddress,port,serverCertDir}``
inlined. The drifted keys written by the upstream chart/testdata are also accepted and mapped onto
them with a deprecation note (see :func:`read`): ``logConfiguration`` → ``logging``,
``acceptContentType`` → ``acceptContentTypes``, ``server.webhooks.server.{bindAddress,port}`` and
``server.webhooks.tlsConfig.serverCertDir`` → inlined. (Upstream silently ignores them, so e.g. a
chart's ``logConfiguration.logLevel: debug`` has no effect there; druid honours it.) A canonical key
wins over its drifted twin.

The package has no import cycle; each module imports only those before it: ``errors`` and ``features``
(leaves), ``operator`` (models, defaults, :func:`parse`), ``servers``, ``validation`` (:func:`validate`),
``flags`` (the deprecated CLI flags), ``loader`` (:func:`read` / :func:`load` of a file), ``images`` (the
image vector).
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core.core_schema import ValidatorFunctionWrapHandler

from druid.api import problems
from druid.api.admission import AdmissionPolicy
from druid.config.errors import ConfigError, FieldError
from druid.gocompat import duration as godur

API_VERSION: Final = "config.druid.gardener.cloud/v1alpha1"
KIND: Final = "OperatorConfiguration"

# Defaults (defaults.go) ------------------------------------------------------------------------------
DEFAULT_QPS = 100.0
DEFAULT_BURST = 150
DEFAULT_LEADER_ELECTION_RESOURCE_LOCK = "leases"
DEFAULT_LEADER_ELECTION_RESOURCE_NAME = "druid-leader-election"
DEFAULT_LEADER_ELECTION_LEASE_DURATION = 15.0
DEFAULT_LEADER_ELECTION_RENEW_DEADLINE = 10.0
DEFAULT_LEADER_ELECTION_RETRY_PERIOD = 2.0
DEFAULT_WEBHOOKS_SERVER_PORT = 9443
DEFAULT_WEBHOOKS_SERVER_CERT_DIR = "/etc/webhook-server-tls"
DEFAULT_METRICS_SERVER_PORT = 8080
DEFAULT_ETCD_CONCURRENT_SYNCS = 3
DEFAULT_ETCD_STATUS_SYNC_PERIOD = 15.0
DEFAULT_ETCD_MEMBER_NOT_READY_THRESHOLD = 300.0
DEFAULT_ETCD_MEMBER_UNKNOWN_THRESHOLD = 60.0
DEFAULT_COMPACTION_CONCURRENT_SYNCS = 3
DEFAULT_COMPACTION_EVENTS_THRESHOLD = 1_000_000
DEFAULT_COMPACTION_TRIGGER_FULL_SNAPSHOT_THRESHOLD = 3_000_000
DEFAULT_COMPACTION_ACTIVE_DEADLINE_DURATION = 3 * 3600.0
DEFAULT_ETCD_COPY_BACKUPS_TASK_CONCURRENT_SYNCS = 3
DEFAULT_SECRET_CONCURRENT_SYNCS = 10
DEFAULT_ETCD_OPS_TASK_CONCURRENT_SYNCS = 3
DEFAULT_ETCD_OPS_TASK_REQUEUE_INTERVAL = 15.0
DEFAULT_LOG_LEVEL = "info"
DEFAULT_LOG_FORMAT = "json"
LOG_LEVELS = ("debug", "info", "error")
LOG_FORMATS = ("json", "text")


# Durations -------------------------------------------------------------------------------------------


def _duration_in(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> float:
    if isinstance(value, str):
        try:
            return godur.parse_duration(value) / godur.SECOND
        except ValueError as e:
            raise ValueError(f"{e} (want a Go duration such as 15s, 5m, 1h30m)") from None
    wire = bool(info.context and info.context.get("wire"))
    if wire or isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a duration string such as 15s, 5m, 1h30m")
    return float(value)


def _duration_out(seconds: float) -> str:
    return godur.format_seconds(seconds)


Duration = Annotated[float, WrapValidator(_duration_in), PlainSerializer(_duration_out, when_used="json")]
"""Seconds on the model, a Go duration string on the wire."""


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
        strict=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        # Go's decoder leaves a field at its zero value for ``key: null``; treat it as absent.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


# Models (types.go) -----------------------------------------------------------------------------------


class ClientConnectionConfiguration(_Model):
    qps: float = DEFAULT_QPS  # per resource kind, as etcd-druid's client applies it; < 0 disables client-side limiting
    burst: int = DEFAULT_BURST
    content_type: str = ""  # accepted, not applied: druid always speaks JSON
    accept_content_types: str = ""  # accepted, not applied

    @model_validator(mode="after")
    def _defaults(self) -> Self:
        if self.qps == 0:
            self.qps = DEFAULT_QPS
        if self.burst == 0:
            self.burst = DEFAULT_BURST
        return self


class LeaderElectionConfiguration(_Model):
    enabled: bool = False
    lease_duration: Duration = 0.0
    renew_deadline: Duration = 0.0
    retry_period: Duration = 0.0
    resource_lock: str = ""
    resource_name: str = ""

    @model_validator(mode="after")
    def _defaults(self) -> Self:
        if not self.enabled:
            return self
        self.resource_lock = self.resource_lock or DEFAULT_LEADER_ELECTION_RESOURCE_LOCK
        self.resource_name = self.resource_name or DEFAULT_LEADER_ELECTION_RESOURCE_NAME
        self.lease_duration = self.lease_duration or DEFAULT_LEADER_ELECTION_LEASE_DURATION
        self.renew_deadline = self.renew_deadline or DEFAULT_LEADER_ELECTION_RENEW_DEADLINE
        self.retry_period = self.retry_period or DEFAULT_LEADER_ELECTION_RETRY_PERIOD
        return self


class Server(_Model):
    bind_address: str = ""
    port: int | None = None  # absent: the server's default port; 0: any free port (druid extension)


class TLSServer(Server):
    server_cert_dir: str = ""  # holds tls.crt and tls.key
    # druid extension: when set, only clients presenting a certificate signed by this CA (PEM file) are
    # answered — the API server, given a webhook client certificate through its AdmissionConfiguration.
    client_ca_file: str | None = Field(default=None, alias="clientCAFile")


class ServerConfiguration(_Model):
    webhooks: TLSServer = Field(default_factory=TLSServer)
    metrics: Server = Field(default_factory=Server)

    @model_validator(mode="after")
    def _defaults(self) -> Self:
        if self.webhooks.port is None:
            self.webhooks.port = DEFAULT_WEBHOOKS_SERVER_PORT
        self.webhooks.server_cert_dir = self.webhooks.server_cert_dir or DEFAULT_WEBHOOKS_SERVER_CERT_DIR
        if self.metrics.port is None:
            self.metrics.port = DEFAULT_METRICS_SERVER_PORT
        return self


DEFAULT_TAKE_OVER_FIELD_MANAGERS: tuple[str, ...] = ("etcd-druid",)


class EtcdMemberConfiguration(_Model):
    not_ready_threshold: Duration = DEFAULT_ETCD_MEMBER_NOT_READY_THRESHOLD
    unknown_threshold: Duration = DEFAULT_ETCD_MEMBER_UNKNOWN_THRESHOLD

    @model_validator(mode="after")
    def _defaults(self) -> Self:
        self.not_ready_threshold = self.not_ready_threshold or DEFAULT_ETCD_MEMBER_NOT_READY_THRESHOLD
        self.unknown_threshold = self.unknown_threshold or DEFAULT_ETCD_MEMBER_UNKNOWN_THRESHOLD
        return self


class EtcdControllerConfiguration(_Model):
    concurrent_syncs: int = DEFAULT_ETCD_CONCURRENT_SYNCS
    enable_etcd_spec_auto_reconcile: bool = False
    disable_etcd_service_account_automount: bool = False
    etcd_status_sync_period: Duration = DEFAULT_ETCD_STATUS_SYNC_PERIOD
    etcd_member: EtcdMemberConfiguration = Field(default_factory=EtcdMemberConfiguration)
    take_over_field_managers: list[str] | None = None
    """druid extension: field managers whose Update-operation ownership of a managed object druid moves to its own
    apply manager (absent: ``etcd-druid``, the manager Go etcd-druid writes with; ``[]``: none); see
    docs/takeover-and-drift.md. Left out of the wire form while absent, so the file stays etcd-druid's."""

    @property
    def take_over(self) -> tuple[str, ...]:
        managers = self.take_over_field_managers
        return DEFAULT_TAKE_OVER_FIELD_MANAGERS if managers is None else tuple(managers)

    @model_validator(mode="after")
    def _defaults(self) -> Self:
        self.etcd_status_sync_period = self.etcd_status_sync_period or DEFAULT_ETCD_STATUS_SYNC_PERIOD
        return self


class CompactionControllerConfiguration(_Model):
    enabled: bool = False
    concurrent_syncs: int | None = None
    events_threshold: int = 0
    trigger_full_snapshot_threshold: int = 0
    active_deadline_duration: Duration = 0.0
    metrics_scrape_wait_duration: Duration = 0.0

    @model_validator(mode="after")
    def _defaults(self) -> Self:
        if not self.enabled:
            return self
        if self.concurrent_syncs is None:
            self.concurrent_syncs = DEFAULT_COMPACTION_CONCURRENT_SYNCS
        self.events_threshold = self.events_threshold or DEFAULT_COMPACTION_EVENTS_THRESHOLD
        self.trigger_full_snapshot_threshold = (
            self.trigger_full_snapshot_threshold or DEFAULT_COMPACTION_TRIGGER_FULL_SNAPSHOT_THRESHOLD
        )
        self.active_deadline_duration = self.active_deadline_duration or DEFAULT_COMPACTION_ACTIVE_DEADLINE_DURATION
        return self


class EtcdCopyBackupsTaskControllerConfiguration(_Model):
    enabled: bool = False
    concurrent_syncs: int | None = None

    @model_validator(mode="after")
    def _defaults(self) -> Self:
        if self.enabled and self.concurrent_syncs is None:
            self.concurrent_syncs = DEFAULT_ETCD_COPY_BACKUPS_TASK_CONCURRENT_SYNCS
        return self


class SecretControllerConfiguration(_Model):
    concurrent_syncs: int = DEFAULT_SECRET_CONCURRENT_SYNCS


class EtcdOpsTaskControllerConfiguration(_Model):
    concurrent_syncs: int = DEFAULT_ETCD_OPS_TASK_CONCURRENT_SYNCS
    requeue_interval: Duration = DEFAULT_ETCD_OPS_TASK_REQUEUE_INTERVAL


class ControllerConfiguration(_Model):
    disable_lease_cache: bool = False
    etcd: EtcdControllerConfiguration = Field(default_factory=EtcdControllerConfiguration)
    compaction: CompactionControllerConfiguration = Field(default_factory=CompactionControllerConfiguration)
    etcd_copy_backups_task: EtcdCopyBackupsTaskControllerConfiguration = Field(
        default_factory=EtcdCopyBackupsTaskControllerConfiguration
    )
    secret: SecretControllerConfiguration = Field(default_factory=SecretControllerConfiguration)
    etcd_ops_task: EtcdOpsTaskControllerConfiguration = Field(default_factory=EtcdOpsTaskControllerConfiguration)


class ServiceAccountInfo(_Model):
    name: str = ""
    namespace: str = ""


class EtcdComponentProtectionWebhookConfiguration(_Model):
    enabled: bool = False
    reconciler_service_account_fqdn: str | None = Field(default=None, alias="reconcilerServiceAccountFQDN")
    service_account_info: ServiceAccountInfo | None = None
    exempt_service_accounts: list[str] = Field(default_factory=list)
    # druid extension: the users (besides kubelets, group system:nodes) that may update and delete the
    # pods of a protected Etcd — Kubernetes' own controllers and scheduler. Absent: the standard ones
    # (druid.webhook.protection.DEFAULT_POD_LIFECYCLE_USERS).
    pod_lifecycle_users: list[str] | None = None

    @property
    def reconciler_service_account(self) -> str:
        """druid's own user name: ``system:serviceaccount:<ns>:<name>`` (or the deprecated FQDN)."""
        if self.service_account_info is not None:
            info = self.service_account_info
            return f"system:serviceaccount:{info.namespace}:{info.name}"
        return self.reconciler_service_account_fqdn or ""


class WebhookConfiguration(_Model):
    etcd_component_protection: EtcdComponentProtectionWebhookConfiguration = Field(
        default_factory=EtcdComponentProtectionWebhookConfiguration
    )


class EtcdAdmissionPolicyConfiguration(_Model):
    """druid extension: what an Etcd may ask for (``druid.api.admission``), enforced by the ``etcds``
    validating webhook and again by the Etcd reconciler. Unset fields allow anything (etcd-druid's behaviour).

    - ``allowedImagePrefixes``: ``spec.etcd.image`` / ``spec.backup.image`` must start with one of them;
    - ``allowRunAsRoot``: whether ``spec.runAsRoot: true`` is allowed (default true);
    - ``allowedLocalStoreHostPathPrefixes``: a Local store's host directory (the store Secret's ``hostPath``,
      default /etc/gardener/local-backupbuckets, joined with ``spec.backup.store.container``) must lie under one;
    - ``allowedPriorityClasses``: ``spec.priorityClassName`` must be one of them.
    """

    allowed_image_prefixes: list[str] | None = None
    allow_run_as_root: bool = True
    allowed_local_store_host_path_prefixes: list[str] | None = None
    allowed_priority_classes: list[str] | None = None

    def policy(self) -> AdmissionPolicy:
        def opt(values: list[str] | None) -> tuple[str, ...] | None:
            return None if values is None else tuple(values)

        return AdmissionPolicy(
            allowed_image_prefixes=opt(self.allowed_image_prefixes),
            allow_run_as_root=self.allow_run_as_root,
            allowed_local_store_host_path_prefixes=opt(self.allowed_local_store_host_path_prefixes),
            allowed_priority_classes=opt(self.allowed_priority_classes),
        )


class LogConfiguration(_Model):
    log_level: str = DEFAULT_LOG_LEVEL  # debug | info | error
    log_format: str = DEFAULT_LOG_FORMAT  # json | text

    @model_validator(mode="after")
    def _defaults(self) -> Self:
        self.log_level = self.log_level or DEFAULT_LOG_LEVEL
        self.log_format = self.log_format or DEFAULT_LOG_FORMAT
        return self


class OperatorConfiguration(_Model):
    api_version: Literal["config.druid.gardener.cloud/v1alpha1"] = API_VERSION
    kind: Literal["OperatorConfiguration"] = KIND
    client_connection: ClientConnectionConfiguration = Field(default_factory=ClientConnectionConfiguration)
    leader_election: LeaderElectionConfiguration = Field(default_factory=LeaderElectionConfiguration)
    server: ServerConfiguration = Field(default_factory=ServerConfiguration)
    controllers: ControllerConfiguration = Field(default_factory=ControllerConfiguration)
    webhooks: WebhookConfiguration = Field(default_factory=WebhookConfiguration)
    feature_gates: dict[str, bool] = Field(default_factory=dict)
    logging: LogConfiguration = Field(default_factory=LogConfiguration)
    etcd_admission_policy: EtcdAdmissionPolicyConfiguration | None = None  # druid extension; absent: allow all

    def admission_policy(self) -> AdmissionPolicy:
        """``etcdAdmissionPolicy`` (absent: everything allowed, as etcd-druid)."""
        cfg = self.etcd_admission_policy
        return AdmissionPolicy() if cfg is None else cfg.policy()

    def to_dict(self) -> dict[str, Any]:
        """The wire form (camelCase keys, Go duration strings), loadable again with :func:`parse`."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# Errors ----------------------------------------------------------------------------------------------


# Loading ---------------------------------------------------------------------------------------------


def default_configuration() -> OperatorConfiguration:
    """The configuration of an empty config file (every upstream default applied)."""
    return OperatorConfiguration()


def _move(parent: dict[str, Any], old: str, new: str, where: str, notes: list[str]) -> None:
    if old not in parent:
        return
    value = parent.pop(old)
    if new in parent:
        notes.append(f"{where}{old} is ignored: {where}{new} is set (deprecated key)")
    else:
        parent[new] = value
        notes.append(f"{where}{old} is deprecated; use {where}{new}")


def _undrift(data: dict[str, Any]) -> list[str]:
    """Map the upstream chart's / testdata's drifted keys onto the type's keys, in place."""
    notes: list[str] = []
    _move(data, "logConfiguration", "logging", "", notes)
    cc = data.get("clientConnection")
    if isinstance(cc, dict):
        _move(cc, "acceptContentType", "acceptContentTypes", "clientConnection.", notes)
    server = data.get("server")
    webhooks = server.get("webhooks") if isinstance(server, dict) else None
    if isinstance(webhooks, dict):
        for nested, keys in (("server", {"bindAddress", "port"}), ("tlsConfig", {"serverCertDir"})):
            inner = webhooks.get(nested)
            if not isinstance(inner, dict) or not set(inner) <= keys:
                continue  # not the drifted shape: leave it for the model to reject
            del webhooks[nested]
            for key, value in inner.items():
                old = f"server.webhooks.{nested}.{key}"
                if key in webhooks:
                    notes.append(f"{old} is ignored: server.webhooks.{key} is set (deprecated key)")
                else:
                    webhooks[key] = value
                    notes.append(f"{old} is deprecated; use server.webhooks.{key}")
    return notes


def parse(data: Any) -> tuple[OperatorConfiguration, list[str]]:
    """Decode a config document (already YAML/JSON-decoded) and apply defaults; no validation.

    Returns the configuration and deprecation notes for drifted keys. Raises :class:`ConfigError`.
    """
    if not isinstance(data, dict):
        raise ConfigError([FieldError("<root>", "must be a mapping (an OperatorConfiguration object)")])
    data = copy.deepcopy(data)
    missing = [FieldError(k, "required") for k in ("apiVersion", "kind") if not data.get(k)]
    if missing:
        raise ConfigError(missing)
    notes = _undrift(data)
    try:
        cfg = OperatorConfiguration.model_validate(data, context={"wire": True})
    except ValidationError as e:
        raise ConfigError([FieldError(path, message) for path, message in problems.lines(e)]) from None
    return cfg, notes
