"""The Etcd kind: desired etcd cluster (spec) and what druid observed (status)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from druid.api import constants as c
from druid.api import facts
from druid.api.common import (
    Affinity,
    Condition,
    CronSchedule,
    DruidModel,
    Duration,
    Int32,
    Int64,
    LabelSelector,
    LastError,
    LastOperation,
    ObjectMeta,
    Quantity,
    ResourceRequirements,
    SecretReference,
    Time,
    TopologySpreadConstraint,
)
from druid.api.schema import (
    CEL,
    ListType,
    NotRequiredInSchema,
    ObjectSchema,
    OpaqueObject,
    PrinterColumn,
    Resource,
    ScaleSubresource,
)
from druid.api.store import StoreSpec

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MEMBER_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?-[0-9]+$"
_URL_RULE = "(self.startsWith('http://') || self.startsWith('https://')) && isURL(self)"

PeerURL = Annotated[
    str,
    Field(max_length=2048),
    CEL(_URL_RULE, "must be a valid http:// or https:// URL (e.g., https://10.0.0.1:2380)"),
]
ClientEndpoint = Annotated[
    str,
    Field(max_length=2048),
    CEL(_URL_RULE, "must be a valid http:// or https:// URL (e.g., https://etcd-source-client.source-ns.svc:2379)"),
]

MetricsLevel = Literal["basic", "extensive"]
GarbageCollectionPolicy = Literal["Exponential", "LimitBased"]
CompressionPolicy = Literal["gzip", "lzw", "zlib"]
CompactionMode = Literal["periodic", "revision"]
BboltFreelistType = Literal["array", "map"]
TrafficDistribution = Literal["PreferSameZone", "PreferSameNode", "PreferClose"]


# spec.etcd -------------------------------------------------------------------------------------------


class TLSSecretReference(SecretReference):
    """A Secret holding a CA bundle, and the key inside it."""

    data_key: str | None = Field(default=None, description="Key of the CA bundle in the Secret's data.")


class TLSConfig(DruidModel):
    """Secrets for serving and, optionally, presenting TLS certificates."""

    tls_ca_secret_ref: TLSSecretReference = Field(alias="tlsCASecretRef", description="CA bundle.")
    server_tls_secret_ref: SecretReference = Field(
        alias="serverTLSSecretRef", description="Server certificate and key."
    )
    client_tls_secret_ref: SecretReference | None = Field(
        default=None, alias="clientTLSSecretRef", description="Client certificate and key."
    )


class PeerTLSConfig(TLSConfig):
    """TLS for traffic between etcd members."""

    skip_client_san_verification: bool | None = Field(
        default=None,
        alias="skipClientSANVerification",
        description="Accept any peer client certificate signed by the peer CA, whatever its SANs.",
    )


class ClientService(DruidModel):
    """Extra settings for the client Service."""

    annotations: dict[str, str] | None = Field(default=None, description="Annotations for the client Service.")
    labels: dict[str, str] | None = Field(default=None, description="Extra labels for the client Service.")
    traffic_distribution: TrafficDistribution | None = Field(
        default=None, description="spec.trafficDistribution of the client Service."
    )


class MemberPeerURLs(DruidModel):
    """Extra peer URLs a member advertises."""

    member_name: Annotated[str, Field(max_length=253, pattern=MEMBER_NAME_PATTERN)] = Field(
        description="Member name, `[<memberNamePrefix>-]<etcd name>-<index>`."
    )
    urls: Annotated[list[PeerURL], Field(min_length=1, max_length=5), ListType("set")] = Field(
        description="URLs appended to the member's advertised peer URLs (at most 5)."
    )


class BootstrapExistingMember(DruidModel):
    """A member of the cluster to join."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_LABEL_PATTERN)] = Field(
        description="Member name in the existing cluster."
    )
    peer_urls: Annotated[list[PeerURL], Field(min_length=1, max_length=5), ListType("set")] = Field(
        description="Peer URLs of the member (at most 5)."
    )


class BootstrapWithExistingCluster(DruidModel):
    """Join an existing etcd cluster instead of starting a new one. Can only be set on creation."""

    members: Annotated[list[BootstrapExistingMember], Field(min_length=1, max_length=10), ListType("atomic")] = Field(
        description="Members of the existing cluster (at most 10)."
    )
    client_endpoints: Annotated[list[ClientEndpoint], Field(min_length=1, max_length=10), ListType("set")] = Field(
        description="Client endpoints of the existing cluster (at most 10)."
    )


class EtcdConfig(DruidModel):
    """Settings of the etcd process and its container."""

    object_schema = ObjectSchema(
        rules=(
            CEL(
                "!has(self.additionalAdvertisePeerURLs) || !has(self.peerUrlTls) || "
                "self.additionalAdvertisePeerURLs.all(m, m.urls.all(u, u.startsWith('https://')))",
                "when peerUrlTls is enabled, all additional advertise peer URLs must use https://",
            ),
            CEL(
                "!has(self.additionalAdvertisePeerURLs) || has(self.peerUrlTls) || "
                "self.additionalAdvertisePeerURLs.all(m, m.urls.all(u, u.startsWith('http://')))",
                "when peerUrlTls is not enabled, all additional advertise peer URLs must use http://",
            ),
            CEL(
                "!has(self.bootstrapWithExistingCluster) || !has(self.peerUrlTls) || "
                "self.bootstrapWithExistingCluster.members.all(m, m.peerUrls.all(u, u.startsWith('https://')))",
                "when peerUrlTls is enabled, all bootstrapWithExistingCluster member peer URLs must use https://",
            ),
            CEL(
                "!has(self.bootstrapWithExistingCluster) || has(self.peerUrlTls) || "
                "self.bootstrapWithExistingCluster.members.all(m, m.peerUrls.all(u, u.startsWith('http://')))",
                "when peerUrlTls is not enabled, all bootstrapWithExistingCluster member peer URLs must use http://",
            ),
            CEL(
                "!has(self.bootstrapWithExistingCluster) || !has(self.clientUrlTls) || "
                "self.bootstrapWithExistingCluster.clientEndpoints.all(u, u.startsWith('https://'))",
                "when clientUrlTls is enabled, all bootstrapWithExistingCluster clientEndpoints must use https://",
            ),
            CEL(
                "!has(self.bootstrapWithExistingCluster) || has(self.clientUrlTls) || "
                "self.bootstrapWithExistingCluster.clientEndpoints.all(u, u.startsWith('http://'))",
                "when clientUrlTls is not enabled, all bootstrapWithExistingCluster clientEndpoints must use http://",
            ),
            CEL(
                "!has(self.bootstrapWithExistingCluster) || has(oldSelf.bootstrapWithExistingCluster)",
                "etcd.spec.etcd.bootstrapWithExistingCluster cannot be added after the Etcd resource has been created",
            ),
        )
    )

    quota: Quantity | None = Field(default=None, description="Backend database quota (default 8Gi).")
    snapshot_count: Int64 | None = Field(
        default=None, description="Applied Raft entries kept in memory before a snapshot (default 10000)."
    )
    enable_grpc_gateway: bool | None = Field(
        default=None, alias="enableGRPCGateway", description="Serve etcd's gRPC gateway (default false)."
    )
    defragmentation_schedule: CronSchedule | None = Field(
        default=None, description="Cron schedule for defragmentation."
    )
    server_port: Int32 | None = Field(default=None, description="Peer port (default 2380).")
    client_port: Int32 | None = Field(default=None, description="Client port (default 2379).")
    wrapper_port: Int32 | None = Field(default=None, description="etcd-wrapper HTTP port (default 9095).")
    image: str | None = Field(default=None, description="etcd (wrapper) image, overriding the built-in one.")
    auth_secret_ref: SecretReference | None = Field(default=None, description="Unused; kept for compatibility.")
    metrics: MetricsLevel | None = Field(default=None, description="Metrics detail: basic (default) or extensive.")
    resources: ResourceRequirements | None = Field(
        default=None, description="Resources of the etcd container (default requests 50m CPU, 128Mi memory)."
    )
    client_url_tls: TLSConfig | None = Field(default=None, description="TLS for client traffic.")
    additional_advertise_peer_urls: Annotated[list[MemberPeerURLs], Field(max_length=10)] | None = Field(
        default=None,
        alias="additionalAdvertisePeerURLs",
        description="Extra peer URLs per member (at most 10 entries). Changing them restarts the members.",
    )
    peer_url_tls: PeerTLSConfig | None = Field(default=None, description="TLS for traffic between members.")
    etcd_defrag_timeout: Duration | None = Field(
        default=None, description="Timeout of a defragmentation (default 15m)."
    )
    heartbeat_duration: Duration | None = Field(
        default=None, description="Interval of member lease renewals (default 10s)."
    )
    client_service: ClientService | None = Field(default=None, description="Client Service settings.")
    backend_bbolt_freelist_type: BboltFreelistType | None = Field(
        default=None, description="bbolt freelist type: array (default) or map."
    )
    bootstrap_with_existing_cluster: BootstrapWithExistingCluster | None = Field(
        default=None, description="Join an existing cluster. Only allowed when the Etcd is created."
    )


# spec.backup -----------------------------------------------------------------------------------------


class SnapshotCompactionSpec(DruidModel):
    """Per-Etcd settings of the snapshot compaction job."""

    resources: ResourceRequirements | None = Field(default=None, description="Resources of the compaction job.")
    events_threshold: Int64 | None = Field(
        default=None, description="Delta events after which a compaction job is started."
    )
    trigger_full_snapshot_threshold: Int64 | None = Field(
        default=None, description="Delta events after which a full snapshot is taken instead of a compaction."
    )


class CompressionSpec(DruidModel):
    """Compression of snapshots."""

    enabled: bool | None = Field(default=None, description="Compress snapshots (default true).")
    policy: CompressionPolicy | None = Field(default=None, description="Algorithm: gzip (default), lzw or zlib.")


class LeaderElectionSpec(DruidModel):
    """Leader election of backup-restore."""

    reelection_period: Duration | None = Field(default=None, description="How often the leader is re-checked.")
    etcd_connection_timeout: Duration | None = Field(
        default=None, description="etcd connection timeout during leader election."
    )


class BackupSpec(DruidModel):
    """Settings of the backup-restore sidecar: snapshots, garbage collection, object store."""

    object_schema = ObjectSchema(
        rules=(
            CEL(
                "!(has(self.deltaSnapshotPeriod) && has(self.garbageCollectionPeriod)) || "
                "duration(self.deltaSnapshotPeriod).getSeconds() < duration(self.garbageCollectionPeriod).getSeconds()",
                "etcd.spec.backup.garbageCollectionPeriod must be greater than etcd.spec.backup.deltaSnapshotPeriod",
            ),
        )
    )

    port: Int32 | None = Field(default=None, description="backup-restore server port (default 8080).")
    tls: TLSConfig | None = Field(default=None, description="TLS of the backup-restore server.")
    image: str | None = Field(default=None, description="backup-restore image, overriding the built-in one.")
    store: StoreSpec | None = Field(default=None, description="Object store for backups; without it backups are off.")
    resources: ResourceRequirements | None = Field(
        default=None, description="Resources of the backup-restore container (default requests 50m CPU, 128Mi memory)."
    )
    snapshot_compaction: SnapshotCompactionSpec | None = Field(
        default=None, description="Snapshot compaction settings."
    )
    full_snapshot_schedule: CronSchedule | None = Field(default=None, description="Cron schedule for full snapshots.")
    garbage_collection_policy: GarbageCollectionPolicy | None = Field(
        default=None, description="Exponential or LimitBased (default)."
    )
    max_backups_limit_based_gc: Int32 | None = Field(
        default=None, alias="maxBackupsLimitBasedGC", description="Full snapshots kept with LimitBased (default 7)."
    )
    garbage_collection_period: Duration | None = Field(default=None, description="Interval of garbage collection.")
    delta_snapshot_period: Duration | None = Field(default=None, description="Interval of delta snapshots.")
    delta_snapshot_memory_limit: Quantity | None = Field(
        default=None, description="Memory of pending events that forces a delta snapshot (default 100Mi)."
    )
    delta_snapshot_retention_period: Duration | None = Field(
        default=None, description="How long delta snapshots older than the latest full snapshot are kept."
    )
    compression: CompressionSpec | None = Field(default=None, description="Snapshot compression.")
    enable_profiling: bool | None = Field(default=None, description="Serve backup-restore's profiling endpoints.")
    etcd_snapshot_timeout: Duration | None = Field(
        default=None, description="Timeout of a full snapshot (default 15m)."
    )
    leader_election: LeaderElectionSpec | None = Field(default=None, description="Leader election settings.")


# spec ------------------------------------------------------------------------------------------------


class SharedConfig(DruidModel):
    """Settings used by both etcd and backup-restore's embedded etcd."""

    auto_compaction_mode: CompactionMode | None = Field(default=None, description="periodic (default) or revision.")
    auto_compaction_retention: str | None = Field(default=None, description="Compaction retention (default 30m).")


class SchedulingConstraints(DruidModel):
    """Scheduling rules copied to the etcd pods."""

    affinity: Affinity | None = Field(default=None, description="Pod affinity and anti-affinity.")
    topology_spread_constraints: list[TopologySpreadConstraint] | None = Field(
        default=None, description="How pods spread across topology domains."
    )


class EtcdSpec(DruidModel):
    """Desired etcd cluster."""

    object_schema = ObjectSchema(
        rules=(
            CEL(
                "has(oldSelf.storageClass) ==  has(self.storageClass)",
                "etcd.spec.storageClass is an immutable field.",
            ),
            CEL(
                "has(oldSelf.volumeClaimTemplate) == has(self.volumeClaimTemplate)",
                "etcd.spec.volumeClaimTemplate is an immutable field.",
            ),
            CEL(
                "has(oldSelf.memberNamePrefix) == has(self.memberNamePrefix)",
                "etcd.spec.memberNamePrefix is an immutable field.",
            ),
        )
    )

    member_name_prefix: (
        Annotated[
            str,
            Field(max_length=63, pattern=DNS_LABEL_PATTERN),
            CEL("self == oldSelf", "etcd.spec.memberNamePrefix is an immutable field"),
        ]
        | None
    ) = Field(default=None, description="Prefix of the member names: `<prefix>-<pod name>`. Immutable.")
    selector: LabelSelector | None = Field(default=None, description="Deprecated and unused.")
    labels: dict[str, str] = Field(description="Labels of the etcd pods.")
    annotations: dict[str, str] | None = Field(default=None, description="Annotations of the etcd pods.")
    etcd: EtcdConfig = Field(description="etcd settings.")
    backup: BackupSpec = Field(description="Backup settings.")
    shared_config: SharedConfig | None = Field(default=None, description="Settings shared by etcd and backup-restore.")
    scheduling_constraints: SchedulingConstraints | None = Field(
        default=None, description="Scheduling rules of the etcd pods."
    )
    replicas: Annotated[
        Int32,
        CEL(
            "self==0 ? true : self < oldSelf ? false : true", "Replicas can either be increased or be downscaled to 0."
        ),
    ] = Field(description="Cluster size. Can grow, or go to 0 to hibernate, but never shrink otherwise.")
    priority_class_name: str | None = Field(default=None, description="PriorityClass of the etcd pods.")
    storage_class: Annotated[str, CEL("self == oldSelf", "etcd.spec.storageClass is an immutable field")] | None = (
        Field(default=None, description="StorageClass of the data volumes. Immutable.")
    )
    storage_capacity: Quantity | None = Field(default=None, description="Size of each data volume (default 16Gi).")
    volume_claim_template: (
        Annotated[str, CEL("self == oldSelf", "etcd.spec.VolumeClaimTemplate is an immutable field")] | None
    ) = Field(default=None, description="Name of the volume claim template (default: the Etcd name). Immutable.")
    run_as_root: bool | None = Field(default=None, description="Run the pods as root instead of uid/gid 65532.")


# status ----------------------------------------------------------------------------------------------


class CrossVersionObjectReference(DruidModel):
    """Identifies an object of any kind and version."""

    kind: str = Field(description="Kind of the object.")
    name: str = Field(description="Name of the object.")
    api_version: str | None = Field(default=None, description="API version of the object.")


class EtcdMemberStatus(DruidModel):
    """Health of one etcd member, derived from its member lease."""

    name: str = Field(description="Member name, equal to its lease name.")
    id: str | None = Field(default=None, description="etcd member ID.")
    role: str | None = Field(default=None, description="Leader or Member.")
    status: str = Field(description="Ready, NotReady or Unknown.")
    reason: str = Field(description="Why the member has this status.")
    last_transition_time: Time = Field(description="When status last changed.")


class BootstrapJoinedMember(DruidModel):
    """A member of the existing cluster at the time the Etcd joined it."""

    name: str = Field(description="Member name.")
    peer_urls: Annotated[list[str], ListType("atomic")] = Field(description="Peer URLs of the member.")


class BootstrapWithExistingClusterStatus(DruidModel):
    """Record of the join to an existing cluster, written once."""

    joined_at: Time = Field(description="When the join was recorded.")
    members: Annotated[list[BootstrapJoinedMember], ListType("atomic")] = Field(
        description="Members of the existing cluster at that time."
    )


class EtcdStatus(DruidModel):
    """Observed state of the etcd cluster."""

    observed_generation: Int64 | None = Field(default=None, description="Last metadata.generation fully reconciled.")
    etcd: CrossVersionObjectReference | None = Field(default=None, description="The StatefulSet running etcd.")
    conditions: list[Condition] | None = Field(default=None, description="Latest observations.")
    last_errors: list[LastError] | None = Field(default=None, description="Errors of the last operation.")
    last_operation: LastOperation | None = Field(default=None, description="Last operation druid performed.")
    current_replicas: Int32 | None = Field(default=None, description="StatefulSet's current replicas.")
    replicas: Int32 | None = Field(default=None, description="Replicas, as seen by the scale subresource.")
    ready_replicas: Int32 | None = Field(default=None, description="StatefulSet's ready replicas.")
    ready: bool | None = Field(default=None, description="True when all replicas are ready.")
    label_selector: LabelSelector | None = Field(default=None, description="Deprecated and unused.")
    members: list[EtcdMemberStatus] | None = Field(default=None, description="Health of each member.")
    peer_url_tls_enabled: bool | None = Field(
        default=None, alias="peerUrlTLSEnabled", description="Unused; kept for compatibility."
    )
    selector: str | None = Field(default=None, description="Label selector of the pods, for the scale subresource.")
    bootstrap_with_existing_cluster: BootstrapWithExistingClusterStatus | None = Field(
        default=None, description="Record of the join to an existing cluster."
    )


# the resource ----------------------------------------------------------------------------------------


def _member_prefix(field: str) -> str:
    """CEL: does ``field`` start with the name prefix of this Etcd's own members?"""
    return (
        f"has(self.spec.memberNamePrefix) ? {field}.startsWith(self.spec.memberNamePrefix + '-' + "
        f"self.metadata.name + '-') : {field}.startsWith(self.metadata.name + '-')"
    )


_BOOTSTRAP_IN_PROGRESS = (
    "!has(self.spec.etcd.bootstrapWithExistingCluster) || !has(oldSelf.spec.etcd.bootstrapWithExistingCluster) "
    "|| !has(self.status) || !has(self.status.conditions) || !self.status.conditions.exists(c, "
    "c.type == 'BootstrappedWithExistingCluster' && c.status == 'False') || "
)


class Etcd(DruidModel):
    """An etcd cluster managed by druid."""

    object_schema = ObjectSchema(
        rules=(
            CEL(
                "!has(self.spec.etcd.additionalAdvertisePeerURLs) || self.spec.etcd.additionalAdvertisePeerURLs"
                ".all(m, " + _member_prefix("m.memberName") + ")",
                "additionalAdvertisePeerURLs member names must start with the Etcd resource name followed by a dash",
            ),
            CEL(
                "!has(self.spec.etcd.additionalAdvertisePeerURLs) || self.spec.etcd.additionalAdvertisePeerURLs"
                ".all(m, int(m.memberName.substring(m.memberName.lastIndexOf('-')+1)) < self.spec.replicas)",
                "additionalAdvertisePeerURLs member name index must be less than replicas",
            ),
            CEL(
                _BOOTSTRAP_IN_PROGRESS + "self.spec.etcd.bootstrapWithExistingCluster.members == "
                "oldSelf.spec.etcd.bootstrapWithExistingCluster.members",
                "etcd.spec.etcd.bootstrapWithExistingCluster.members cannot be modified while the bootstrap is "
                "in progress",
            ),
            CEL(
                _BOOTSTRAP_IN_PROGRESS + "self.spec.etcd.bootstrapWithExistingCluster.clientEndpoints == "
                "oldSelf.spec.etcd.bootstrapWithExistingCluster.clientEndpoints",
                "etcd.spec.etcd.bootstrapWithExistingCluster.clientEndpoints cannot be modified while the "
                "bootstrap is in progress",
            ),
            CEL(
                "!has(self.spec.etcd.bootstrapWithExistingCluster) || self.spec.etcd.bootstrapWithExistingCluster"
                ".members.all(m1, self.spec.etcd.bootstrapWithExistingCluster.members.filter(m2, m1.name == m2.name)"
                ".size() == 1)",
                "bootstrapWithExistingCluster.members[*].name must be unique",
            ),
            CEL(
                "!has(self.spec.etcd.bootstrapWithExistingCluster) || self.spec.etcd.bootstrapWithExistingCluster"
                ".members.all(m, has(self.spec.memberNamePrefix) ? !m.name.startsWith(self.spec.memberNamePrefix "
                "+ '-' + self.metadata.name + '-') : !m.name.startsWith(self.metadata.name + '-'))",
                "bootstrapWithExistingCluster.members[*].name must not collide with a target member (must not "
                "start with the target Etcd's member-name prefix)",
            ),
        )
    )

    api_version: str = Field(default=c.API_VERSION, description="API version of this object.")
    kind: str = Field(default=c.KIND_ETCD, description="Kind of this object.")
    metadata: Annotated[ObjectMeta, OpaqueObject()] = Field(default_factory=ObjectMeta)
    spec: Annotated[EtcdSpec, NotRequiredInSchema()] = Field(description="Desired etcd cluster.")
    status: EtcdStatus | None = Field(default=None, description="Observed state, written by druid.")

    # helpers -----------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or ""

    def _annotations(self) -> dict[str, str]:
        return self.metadata.annotations or {}

    @property
    def backup_store_enabled(self) -> bool:
        """Backups are on when ``spec.backup.store`` is set."""
        return self.spec.backup.store is not None

    @property
    def ready(self) -> bool:
        """The Ready condition is True."""
        return self.condition_status(c.CONDITION_READY) == c.CONDITION_TRUE

    def condition(self, condition_type: str) -> Condition | None:
        for cond in (self.status.conditions if self.status else None) or ():
            if cond.type == condition_type:
                return cond
        return None

    def condition_status(self, condition_type: str) -> str | None:
        cond = self.condition(condition_type)
        return cond.status if cond else None

    @property
    def runtime_component_creation_enabled(self) -> bool:
        """:func:`druid.api.facts.runtime_components_enabled` of this Etcd."""
        return facts.runtime_components_enabled({"metadata": {"annotations": self._annotations()}})


ETCD_RESOURCE = Resource(
    model=Etcd,
    plural="etcds",
    singular="etcd",
    columns=(
        PrinterColumn("Ready", "string", ".status.ready"),
        PrinterColumn("Quorate", "string", '.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn("All Members Ready", "string", '.status.conditions[?(@.type=="AllMembersReady")].status'),
        PrinterColumn("Backup Ready", "string", '.status.conditions[?(@.type=="BackupReady")].status'),
        PrinterColumn("Cluster ID Mismatch", "string", '.status.conditions[?(@.type=="ClusterIDMismatch")].status'),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
        PrinterColumn("Cluster Size", "integer", ".spec.replicas", priority=1),
        PrinterColumn("Current Replicas", "integer", ".status.currentReplicas", priority=1),
        PrinterColumn("Ready Replicas", "integer", ".status.readyReplicas", priority=1),
    ),
    scale=ScaleSubresource(".spec.replicas", ".status.replicas", ".status.selector"),
)
