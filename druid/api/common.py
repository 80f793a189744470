"""Base model, scalar aliases and types shared by the three druid.gardener.cloud/v1alpha1 kinds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from druid.api.schema import CoreType, Format, ObjectSchema
from druid.gocompat import quantity
from druid.gocompat.duration import DURATION_PATTERN


class WireModel(BaseModel):
    """Base of every API model: camelCase wire names, strict types, Go-like regular expressions.

    ``None`` means "absent on the wire"; dump with ``to_dict()`` (or
    ``model_dump(by_alias=True, exclude_none=True)``) to get the object as the API server stores it.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        strict=True,
        regex_engine="python-re",
    )

    # OpenAPI facts about this object type as a whole (CEL rules, map type, property counts).
    object_schema: ClassVar[ObjectSchema] = ObjectSchema()

    def to_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, absent fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True)


class DruidModel(WireModel):
    """A druid-owned type: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


def _check_quantity(value: int | str) -> int | str:
    if not quantity.is_quantity(value):
        raise ValueError(f"{value!r} is not a valid Kubernetes quantity")
    return value


# Scalars ---------------------------------------------------------------------------------------------

Int32 = Annotated[int, Format("int32")]
Int64 = Annotated[int, Format("int64")]
# metav1.Time on the wire: RFC 3339, e.g. "2024-05-01T10:00:00Z". Use parse_time/format_time to convert.
Time = Annotated[str, Format("date-time")]
# metav1.Duration on the wire, e.g. "15m", "1h30m". See druid.gocompat.duration.
Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]
# resource.Quantity on the wire: an integer or a string like "8Gi". See druid.gocompat.quantity.
Quantity = Annotated[
    int | str, CoreType("io.k8s.apimachinery.pkg.api.resource.Quantity"), AfterValidator(_check_quantity)
]
# Five-field cron schedule, as validated by the CRD.
CRON_PATTERN = (
    r"^(\*|[1-5]?[0-9]|[1-5]?[0-9]-[1-5]?[0-9]|(?:[1-9]|[1-4][0-9]|5[0-9])\/(?:[1-9]|[1-4][0-9]|5[0-9]|60)"
    r"|\*\/(?:[1-9]|[1-4][0-9]|5[0-9]|60))"
    r"\s+(\*|[0-9]|1[0-9]|2[0-3]|[0-9]-(?:[0-9]|1[0-9]|2[0-3])|1[0-9]-(?:1[0-9]|2[0-3])|2[0-3]-2[0-3]"
    r"|(?:[1-9]|1[0-9]|2[0-3])\/(?:[1-9]|1[0-9]|2[0-4])|\*\/(?:[1-9]|1[0-9]|2[0-4]))"
    r"\s+(\*|[1-9]|[12][0-9]|3[01]|[1-9]-(?:[1-9]|[12][0-9]|3[01])|[12][0-9]-(?:[12][0-9]|3[01])|3[01]-3[01]"
    r"|(?:[1-9]|[12][0-9]|30)\/(?:[1-9]|[12][0-9]|3[01])|\*\/(?:[1-9]|[12][0-9]|3[01]))"
    r"\s+(\*|[1-9]|1[0-2]|[1-9]-(?:[1-9]|1[0-2])|1[0-2]-1[0-2]|(?:[1-9]|1[0-2])\/(?:[1-9]|1[0-2])"
    r"|\*\/(?:[1-9]|1[0-2]))"
    r"\s+(\*|[1-7]|[1-6]-[1-7]|[1-6]\/[1-7]|\*\/[1-7])$"
)
CronSchedule = Annotated[str, Field(pattern=CRON_PATTERN)]

# Embedded Kubernetes types, kept as plain dicts; the CRD inlines their schemas --------------------------

Affinity = Annotated[dict[str, Any], CoreType("io.k8s.api.core.v1.Affinity")]
TopologySpreadConstraint = Annotated[dict[str, Any], CoreType("io.k8s.api.core.v1.TopologySpreadConstraint")]
ResourceRequirements = Annotated[dict[str, Any], CoreType("io.k8s.api.core.v1.ResourceRequirements")]
LabelSelector = Annotated[dict[str, Any], CoreType("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")]


def format_time(moment: datetime) -> str:
    """Render a datetime the way metav1.Time is serialized (UTC, second precision, ``Z``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware datetime."""
    return datetime.fromisoformat(text)


def now() -> str:
    """The current time as a metav1.Time string."""
    return format_time(datetime.now(UTC))


# Shared object types -------------------------------------------------------------------------------------


class ObjectMeta(WireModel):
    """Standard Kubernetes object metadata. Fields not listed here are kept as they are."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    owner_references: list[dict[str, Any]] | None = None
    managed_fields: list[dict[str, Any]] | None = None


class SecretReference(DruidModel):
    """Points at a Secret by name (and namespace, which druid ignores: secrets live next to the resource)."""

    object_schema = ObjectSchema(map_type="atomic")

    name: str | None = Field(default=None, description="Name of the Secret.")
    namespace: str | None = Field(default=None, description="Namespace of the Secret (ignored by druid).")


class Condition(DruidModel):
    """One observation about the state of a resource."""

    type: str = Field(description="Kind of condition, e.g. Ready or BackupReady.")
    status: str = Field(description="True, False or Unknown.")
    last_transition_time: Time = Field(description="When status last changed.")
    last_update_time: Time = Field(description="When the condition was last written.")
    reason: str = Field(description="Short machine-readable cause of the last transition.")
    message: str = Field(description="Human-readable details about the last transition.")


class LastOperation(DruidModel):
    """What druid last did to the resource, and how it went."""

    type: str = Field(description="Operation kind, e.g. Reconcile or Delete.")
    state: str = Field(description="Operation state, e.g. Processing or Succeeded.")
    description: str = Field(description="Human-readable summary of the operation.")
    run_id: str = Field(alias="runID", description="ID of the reconcile run, also found in druid's logs.")
    last_update_time: Time = Field(description="When this record was last written.")


class LastError(DruidModel):
    """An error met during the last operation."""

    code: str = Field(description="Stable identifier of the error kind.")
    description: str = Field(description="Human-readable description of the error.")
    observed_at: Time = Field(description="When the error happened.")
