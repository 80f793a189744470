"""OpenAPI facts about the API types that pydantic itself does not carry.

The models in this package are the single source of truth for the CustomResourceDefinitions. Plain
pydantic constraints (``max_length``, ``pattern``, ``ge`` ...) are read from the field info directly;
everything else is attached with ``typing.Annotated`` markers defined here, or (for facts about a whole
object type) with the ``object_schema`` class variable of a model. ``druid.api.crds`` turns both into
the structural schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel


@dataclass(frozen=True)
class CEL:
    """One ``x-kubernetes-validations`` entry."""

    rule: str
    message: str


@dataclass(frozen=True)
class Format:
    """OpenAPI ``format`` of a scalar, e.g. ``int32``, ``int64`` or ``date-time``."""

    name: str


@dataclass(frozen=True)
class ListType:
    """``x-kubernetes-list-type`` of an array."""

    kind: Literal["atomic", "set"]


@dataclass(frozen=True)
class Default:
    """A ``default`` the API server applies. The Python model keeps ``None`` so that dumps stay faithful."""

    value: Any


@dataclass(frozen=True)
class CoreType:
    """The value is a Kubernetes type; its schema is inlined from the Kubernetes OpenAPI document."""

    definition: str


@dataclass(frozen=True)
class OpaqueObject:
    """The schema is just ``type: object`` (used for ``metadata``, which the API server validates itself)."""


@dataclass(frozen=True)
class NotRequiredInSchema:
    """The Python model needs the field, but the CRD schema does not list it as required (upstream parity)."""


@dataclass(frozen=True)
class ObjectSchema:
    """Facts about an object type as a whole."""

    rules: tuple[CEL, ...] = ()
    map_type: Literal["atomic"] | None = None
    min_properties: int | None = None
    max_properties: int | None = None


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry."""

    name: str
    type: Literal["string", "integer", "date", "boolean", "number"]
    json_path: str
    priority: int = 0


@dataclass(frozen=True)
class ScaleSubresource:
    """The ``scale`` subresource paths."""

    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str


@dataclass(frozen=True)
class Resource:
    """Everything besides the schema that makes up one CustomResourceDefinition."""

    model: type[BaseModel]
    plural: str
    singular: str
    columns: tuple[PrinterColumn, ...]
    short_names: tuple[str, ...] = ()
    scale: ScaleSubresource | None = None

    @property
    def kind(self) -> str:
        return self.model.__name__
