"""The EtcdOpsTask kind: a one-off operation on an Etcd (upstream: an on-demand snapshot; druid adds its own
configs: ``quorumLossRecovery``, ``verifiedRestore``, ``defragmentation``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, model_validator

from druid.api import constants as c
from druid.api.common import DruidModel, Duration, Int32, Int64, LastError, LastOperation, ObjectMeta, Time, parse_time
from druid.api.defaults import (
    DEFAULT_DEFRAGMENTATION_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS_DELTA,
    DEFAULT_TIMEOUT_SECONDS_FULL,
    DEFAULT_TTL_SECONDS_AFTER_FINISHED,
)
from druid.api.schema import CEL, Default, ObjectSchema, OpaqueObject, PrinterColumn, Resource
from druid.gocompat import duration

TaskState = Literal["Pending", "InProgress", "Succeeded", "Failed", "Rejected"]
StepState = Literal["InProgress", "Succeeded", "Failed", "Skipped"]


class OnDemandSnapshotConfig(DruidModel):
    """Take a full or delta snapshot now."""

    object_schema = ObjectSchema(
        rules=(
            CEL(
                "self.type == 'delta' ? !has(self.isFinal) || self.isFinal == false : true",
                "isFinal must be false (or omitted) when type is 'delta'",
            ),
        )
    )

    type: Literal["full", "delta"] = Field(description="full or delta.")
    is_final: bool | None = Field(default=None, description="Mark the full snapshot as the final one.")
    timeout_seconds_delta: Annotated[Int32, Field(ge=10), Default(DEFAULT_TIMEOUT_SECONDS_DELTA)] | None = Field(
        default=None, description="Timeout of a delta snapshot in seconds (default 60)."
    )
    timeout_seconds_full: Annotated[Int32, Field(ge=120), Default(DEFAULT_TIMEOUT_SECONDS_FULL)] | None = Field(
        default=None, description="Timeout of a full snapshot in seconds (default 900)."
    )

    @property
    def timeout_seconds(self) -> int:
        """The timeout that applies to this snapshot type, defaulted."""
        if self.type == c.SNAPSHOT_FULL:
            return self.timeout_seconds_full or DEFAULT_TIMEOUT_SECONDS_FULL
        return self.timeout_seconds_delta or DEFAULT_TIMEOUT_SECONDS_DELTA


DEFAULT_MIN_QUORUM_LOSS_DURATION = "10m"


class QuorumLossRecoveryConfig(DruidModel):
    """Rebuild an Etcd that lost quorum for good from its backup store (druid extension; see
    docs/quorum-loss-recovery.md)."""

    min_quorum_loss_duration: Annotated[Duration, Default(DEFAULT_MIN_QUORUM_LOSS_DURATION)] | None = Field(
        default=None, description="How long the Etcd must have been without quorum before recovering (default 10m)."
    )
    force: bool | None = Field(
        default=None, description="Skip the minQuorumLossDuration check (quorum must still be lost)."
    )

    @property
    def min_loss_seconds(self) -> float:
        return duration.seconds(self.min_quorum_loss_duration or DEFAULT_MIN_QUORUM_LOSS_DURATION)


class VerifiedRestoreConfig(DruidModel):
    """Restore the Etcd's latest full and delta snapshots into a scratch Job, start etcd on the result and check
    it (druid extension). The live members, their volumes and the store's content are never touched."""

    timeout_seconds: Annotated[Int32, Field(ge=30)] | None = Field(
        default=None, description="Give up (task Failed) after this many seconds (default 600)."
    )
    etcd_image: str | None = Field(
        default=None,
        description="Image with a plain etcd binary on PATH to serve the restored data (default: the Etcd's "
        "etcd image; upstream's etcd-wrapper image embeds etcd and has none, so set one then).",
    )


class DefragmentationConfig(DruidModel):
    """Defragment the members one at a time, leader last after a leadership move (druid extension)."""

    fragmentation_threshold_percent: Annotated[Int32, Field(ge=0, le=99)] | None = Field(
        default=None,
        description="Skip a member whose free share of its database file, (dbSize - dbSizeInUse) / dbSize in "
        "percent, is below this (default: defragment every member).",
    )
    timeout_seconds_per_member: (
        Annotated[Int32, Field(ge=10), Default(DEFAULT_DEFRAGMENTATION_TIMEOUT_SECONDS)] | None
    ) = Field(default=None, description="How long one member's defragmentation may take, in seconds (default 300).")

    @property
    def timeout_seconds(self) -> int:
        return self.timeout_seconds_per_member or DEFAULT_DEFRAGMENTATION_TIMEOUT_SECONDS


class EtcdOpsTaskConfig(DruidModel):
    """The operation to perform; exactly one member is set."""

    object_schema = ObjectSchema(min_properties=1, max_properties=1)

    on_demand_snapshot: OnDemandSnapshotConfig | None = Field(default=None, description="Take a snapshot.")
    quorum_loss_recovery: QuorumLossRecoveryConfig | None = Field(
        default=None, description="Recover from permanent quorum loss by restoring from the backup store (druid)."
    )
    verified_restore: VerifiedRestoreConfig | None = Field(
        default=None, description="Prove the latest snapshots restore (druid extension)."
    )
    defragmentation: DefragmentationConfig | None = Field(
        default=None, description="Defragment every member, followers first, the leader last after a move."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> EtcdOpsTaskConfig:
        if sum(value is not None for value in self.__dict__.values()) != 1:
            raise ValueError("exactly one operation must be configured")
        return self


class EtcdOpsTaskSpec(DruidModel):
    """What to do, and to which Etcd."""

    config: Annotated[EtcdOpsTaskConfig, CEL("self == oldSelf", "config is immutable")] = Field(
        description="The operation. Immutable."
    )
    ttl_seconds_after_finished: (
        Annotated[
            Int32,
            Field(ge=1),
            Default(DEFAULT_TTL_SECONDS_AFTER_FINISHED),
            CEL("self == oldSelf", "ttlSecondsAfterFinished is immutable"),
        ]
        | None
    ) = Field(default=None, description="Seconds after completion until the task is deleted (default 3600). Immutable.")
    etcd_name: Annotated[str, CEL("self == oldSelf", "etcdName is immutable")] | None = Field(
        default=None, description="Name of the Etcd, in the task's namespace, to operate on. Immutable."
    )


class TaskStep(DruidModel):
    """One step of a multi-step task (druid extension; upstream tasks have a single step and leave it unset)."""

    name: str = Field(description="The step, e.g. ScaleToZero or Defragment/etcd-main-1.")
    state: StepState = Field(description="InProgress, Succeeded, Failed or Skipped.")
    started_at: Time | None = Field(default=None, description="When the step started.")
    finished_at: Time | None = Field(default=None, description="When the step succeeded, failed or was skipped.")
    message: str | None = Field(default=None, description="What happened, or why the step waits or failed.")
    details: dict[str, str] | None = Field(default=None, description="Figures of the step (e.g. database sizes).")


class DataLossWindow(DruidModel):
    """Writes made in this window are not in the backup store and are lost by the restore."""

    start: Time | None = Field(default=None, description="The last delta snapshot (renewTime of its Lease).")
    end: Time | None = Field(default=None, description="When quorum was lost (Ready condition went False).")


class QuorumLossRecoveryStatus(DruidModel):
    """Evidence of a quorum-loss recovery (druid extension)."""

    original_replicas: Int32 | None = Field(default=None, description="spec.replicas at admission.")
    data_loss_window: DataLossWindow | None = Field(default=None, description="Writes in this window are lost.")
    restored_revision: Int64 | None = Field(default=None, description="etcd revision of the restored member.")
    cluster_id: str | None = Field(
        default=None, alias="clusterID", description="Cluster ID of the restored cluster (hex)."
    )
    restored_member_id: str | None = Field(
        default=None, alias="restoredMemberID", description="Member ID of the restored member (hex)."
    )


class VerifiedRestoreStatus(DruidModel):
    """What a verified restore found (druid extension)."""

    full_snapshot: str | None = Field(default=None, description="The full snapshot restored (store object name).")
    delta_snapshots: Int32 | None = Field(default=None, description="Number of delta snapshots applied after it.")
    latest_snapshot: str | None = Field(default=None, description="The newest snapshot of the restore set.")
    latest_snapshot_time: Time | None = Field(default=None, description="When the newest snapshot was taken.")
    snapshot_revision: Int64 | None = Field(default=None, description="Last revision of the newest snapshot restored.")
    lease_revision: Int64 | None = Field(
        default=None, description="Highest revision the full/delta snapshot Leases reported before the restore."
    )
    restored_revision: Int64 | None = Field(default=None, description="Revision of the restored etcd.")
    key_count: Int64 | None = Field(default=None, description="Keys in the restored etcd.")
    restore_duration: Duration | None = Field(
        default=None, description="Time from the scratch Job's creation until the restored etcd answered."
    )
    recovery_point_gap: Duration | None = Field(
        default=None,
        description="Time between the newest snapshot restored and the verification (data lost "
        "had the cluster been restored then).",
    )
    job_name: str | None = Field(default=None, description="The scratch Job (deleted when the task ends).")
    verified_at: Time | None = Field(default=None, description="When the restored etcd was checked.")
    reason: str | None = Field(default=None, description="Why the verification failed (empty on success).")


class DefragmentationStatus(DruidModel):
    """What a Defragmentation task did so far (druid extension); per-member sizes are in ``steps``."""

    leader_before: str | None = Field(default=None, description="The member that led when the task began.")
    leader_moved_to: str | None = Field(
        default=None, description="The defragmented follower leadership was moved to before the former leader."
    )
    defragmented: list[str] | None = Field(default=None, description="Members defragmented, in order.")
    skipped: list[str] | None = Field(default=None, description="Members below the fragmentation threshold.")


class EtcdOpsTaskStatus(DruidModel):
    """Progress of the task."""

    state: TaskState | None = Field(default=None, description="Pending, InProgress, Succeeded, Failed or Rejected.")
    last_transition_time: Time | None = Field(default=None, description="When state last changed.")
    started_at: Time | None = Field(default=None, description="When the task went InProgress.")
    last_errors: Annotated[list[LastError], Field(max_length=10)] | None = Field(
        default=None, description="Most recent errors (at most 10)."
    )
    last_operation: LastOperation | None = Field(default=None, description="Current phase and its state.")
    steps: Annotated[list[TaskStep], Field(max_length=64)] | None = Field(
        default=None, description="Steps of a multi-step task in the order they ran (druid extension)."
    )
    quorum_loss_recovery: QuorumLossRecoveryStatus | None = Field(
        default=None, description="Evidence of a quorumLossRecovery task (druid extension)."
    )
    verified_restore: VerifiedRestoreStatus | None = Field(
        default=None, description="Result of a verifiedRestore task (druid extension)."
    )
    defragmentation: DefragmentationStatus | None = Field(
        default=None, description="Progress of a Defragmentation task (druid extension)."
    )


class EtcdOpsTask(DruidModel):
    """A one-off operation on an Etcd."""

    api_version: str = Field(default=c.API_VERSION, description="API version of this object.")
    kind: str = Field(default=c.KIND_ETCD_OPS_TASK, description="Kind of this object.")
    metadata: Annotated[ObjectMeta, OpaqueObject()] = Field(default_factory=ObjectMeta)
    spec: EtcdOpsTaskSpec = Field(description="What to do.")
    status: EtcdOpsTaskStatus | None = Field(default=None, description="Progress, written by druid.")

    @property
    def ttl_seconds_after_finished(self) -> int:
        return self.spec.ttl_seconds_after_finished or DEFAULT_TTL_SECONDS_AFTER_FINISHED

    @property
    def completed(self) -> bool:
        """state is Succeeded, Failed or Rejected."""
        return self.status is not None and self.status.state in c.TASK_COMPLETED_STATES

    def time_to_expiry(self, now: datetime) -> timedelta:
        """Time left until lastTransitionTime + TTL; zero once expired or if no transition was recorded."""
        if self.status is None or self.status.last_transition_time is None:
            return timedelta(0)
        expiry = parse_time(self.status.last_transition_time) + timedelta(seconds=self.ttl_seconds_after_finished)
        return max(expiry - now, timedelta(0))


OPS_TASK_RESOURCE = Resource(
    model=EtcdOpsTask,
    plural="etcdopstasks",
    singular="etcdopstask",
    short_names=("eot",),
    columns=(
        PrinterColumn("State", "string", ".status.state"),
        PrinterColumn("Etcd", "string", ".spec.etcdName"),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
        PrinterColumn("Phase", "string", ".status.lastOperation.type", priority=1),
        PrinterColumn("TTL", "integer", ".spec.ttlSecondsAfterFinished", priority=1),
    ),
)
