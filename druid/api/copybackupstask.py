"""The EtcdCopyBackupsTask kind: copy backups from one object store to another with a Job."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from druid.api import constants as c
from druid.api.common import Condition, DruidModel, Int32, Int64, ObjectMeta
from druid.api.schema import NotRequiredInSchema, OpaqueObject, PrinterColumn, Resource
from druid.api.store import StoreSpec
from druid.gocompat.duration import DURATION_OR_ZERO_PATTERN


class WaitForFinalSnapshotSpec(DruidModel):
    """Wait for a final full snapshot in the source store before copying."""

    enabled: bool = Field(description="Wait for the final full snapshot.")
    timeout: Annotated[str, Field(pattern=DURATION_OR_ZERO_PATTERN)] | None = Field(
        default=None, description="How long to wait before copying anyway; unset or 0 waits forever."
    )


class EtcdCopyBackupsTaskSpec(DruidModel):
    """What to copy, from where, to where."""

    pod_labels: dict[str, str] | None = Field(default=None, description="Extra labels of the copy Job's pod.")
    source_store: StoreSpec = Field(description="Store to copy from.")
    target_store: StoreSpec = Field(description="Store to copy to.")
    max_backup_age: Annotated[Int32, Field(ge=0)] | None = Field(
        default=None, description="Only copy backups at most this many days old (default: all)."
    )
    max_backups: Annotated[Int32, Field(ge=0)] | None = Field(
        default=None, description="Only copy this many of the most recent backups."
    )
    wait_for_final_snapshot: WaitForFinalSnapshotSpec | None = Field(
        default=None, description="Wait for a final full snapshot first."
    )


class EtcdCopyBackupsTaskStatus(DruidModel):
    """Progress of the copy."""

    conditions: list[Condition] | None = Field(default=None, description="Succeeded or Failed, copied from the Job.")
    observed_generation: Int64 | None = Field(default=None, description="Last metadata.generation reconciled.")
    last_error: str | None = Field(default=None, description="Last error met.")


class EtcdCopyBackupsTask(DruidModel):
    """A one-off copy of etcd backups between object stores."""

    api_version: str = Field(default=c.API_VERSION, description="API version of this object.")
    kind: str = Field(default=c.KIND_ETCD_COPY_BACKUPS_TASK, description="Kind of this object.")
    metadata: Annotated[ObjectMeta, OpaqueObject()] = Field(default_factory=ObjectMeta)
    spec: Annotated[EtcdCopyBackupsTaskSpec, NotRequiredInSchema()] = Field(description="What to copy.")
    status: EtcdCopyBackupsTaskStatus | None = Field(default=None, description="Progress, written by druid.")

    @property
    def job_name(self) -> str:
        return f"{self.metadata.name}-worker"


COPY_BACKUPS_TASK_RESOURCE = Resource(
    model=EtcdCopyBackupsTask,
    plural="etcdcopybackupstasks",
    singular="etcdcopybackupstask",
    columns=(PrinterColumn("Age", "date", ".metadata.creationTimestamp"),),
)
