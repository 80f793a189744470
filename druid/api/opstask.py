"""The EtcdOpsTask kind: a one-off operation on an Etcd (upstream: an on-demand snapshot; druid adds more)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, model_validator

from druid.api import constants as c
from druid.api.common import DruidModel, Int32, LastError, LastOperation, ObjectMeta, Time, parse_time
from druid.api.defaults import (
    DEFAULT_DEFRAGMENTATION_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS_DELTA,
    DEFAULT_TIMEOUT_SECONDS_FULL,
    DEFAULT_TTL_SECONDS_AFTER_FINISHED,
)
from druid.api.schema import CEL, Default, ObjectSchema, OpaqueObject, PrinterColumn, Resource

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
