"""Generate the three CustomResourceDefinitions from the API models.

Run ``python -m druid.api.crds`` to (re)write ``manifests/crds/``; ``--check`` only reports drift.

The schema of a resource is derived by walking its pydantic model: field types give the OpenAPI types
(``str``, ``bool``, ``int`` with a ``Format``, ``Literal`` -> ``enum``, ``list``, ``dict[str, X]``,
nested models), pydantic constraints give ``maxLength``/``minLength``/``pattern``/``minimum``/
``maxItems``/``minItems``, and the markers of ``druid.api.schema`` add CEL rules, list and map types,
defaults and embedded Kubernetes types (inlined from the Kubernetes OpenAPI document, see
``druid.api.coretypes``). Field descriptions and model docstrings become descriptions.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import types
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from druid.api import coretypes
from druid.api.constants import GROUP, VERSION
from druid.api.copybackupstask import COPY_BACKUPS_TASK_RESOURCE
from druid.api.etcd import ETCD_RESOURCE
from druid.api.opstask import OPS_TASK_RESOURCE
from druid.api.schema import (
    CEL,
    CoreType,
    Default,
    Format,
    ListType,
    NotRequiredInSchema,
    OpaqueObject,
    Resource,
)

RESOURCES: tuple[Resource, ...] = (ETCD_RESOURCE, COPY_BACKUPS_TASK_RESOURCE, OPS_TASK_RESOURCE)
CRD_DIR = Path(__file__).resolve().parents[2] / "manifests" / "crds"

# Metadata pydantic uses for validation only; it has no schema counterpart.
_VALIDATION_ONLY = ("AfterValidator", "BeforeValidator", "PlainValidator", "WrapValidator")


def file_name(resource: Resource) -> str:
    return f"{GROUP}_{resource.plural}.yaml"


class SchemaBuilder:
    """Turns models into structural OpenAPI v3 schemas."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions

    def model(self, cls: type[BaseModel]) -> dict[str, Any]:
        """The object schema of a model: its fields as properties, plus its ``object_schema`` facts."""
        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, info in cls.model_fields.items():
            wire = info.alias or name
            metadata = list(info.metadata)
            schema = self.annotation(info.annotation, metadata)
            if info.description:
                schema["description"] = info.description
            properties[wire] = schema
            if info.is_required() and not _has(metadata, NotRequiredInSchema, info.annotation):
                required.append(wire)
        out: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            out["required"] = sorted(required)
        doc = cls.__dict__.get("__doc__")
        if doc:
            out["description"] = inspect.cleandoc(doc)
        facts = getattr(cls, "object_schema", None)
        if facts is not None:
            if facts.rules:
                out["x-kubernetes-validations"] = [_cel(rule) for rule in facts.rules]
            if facts.map_type:
                out["x-kubernetes-map-type"] = facts.map_type
            if facts.min_properties is not None:
                out["minProperties"] = facts.min_properties
            if facts.max_properties is not None:
                out["maxProperties"] = facts.max_properties
        return out

    def annotation(self, annotation: Any, metadata: Sequence[Any] = ()) -> dict[str, Any]:
        """The schema of a type annotation with its collected ``Annotated`` metadata."""
        tp, meta = _unwrap(annotation, list(metadata))
        schema = self._base(tp, meta)
        for item in _flatten(meta):
            self._apply(schema, item)
        return schema

    def _base(self, tp: Any, meta: list[Any]) -> dict[str, Any]:
        for item in meta:
            if isinstance(item, CoreType):
                return coretypes.inline(self.definitions, item.definition)
            if isinstance(item, OpaqueObject):
                return {"type": "object"}
        origin = get_origin(tp)
        if origin is Literal:
            values = list(get_args(tp))
            if not all(isinstance(v, str) for v in values):
                raise TypeError(f"only string enums are supported: {tp}")
            return {"type": "string", "enum": values}
        if origin is list:
            (item_type,) = get_args(tp)
            return {"type": "array", "items": self.annotation(item_type)}
        if origin is dict:
            key_type, value_type = get_args(tp)
            if key_type is not str or value_type is Any:
                raise TypeError(f"maps need str keys and a typed value (or a CoreType marker): {tp}")
            return {"type": "object", "additionalProperties": self.annotation(value_type)}
        if tp is str:
            return {"type": "string"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            if not any(isinstance(item, Format) for item in meta):
                raise TypeError("integers need a Format marker (Int32 or Int64)")
            return {"type": "integer"}
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return self.model(tp)
        raise TypeError(f"no schema mapping for {tp!r}")

    @staticmethod
    def _apply(schema: dict[str, Any], item: Any) -> None:
        kind = schema.get("type")
        if isinstance(item, CEL):
            schema.setdefault("x-kubernetes-validations", []).append(_cel(item))
        elif isinstance(item, Format):
            schema["format"] = item.name
        elif isinstance(item, ListType):
            schema["x-kubernetes-list-type"] = item.kind
        elif isinstance(item, Default):
            schema["default"] = item.value
        elif isinstance(item, CoreType | OpaqueObject | NotRequiredInSchema):
            pass
        elif isinstance(item, at.MaxLen | at.MinLen):
            bound = "max" if isinstance(item, at.MaxLen) else "min"
            value = item.max_length if isinstance(item, at.MaxLen) else item.min_length
            suffix = {"string": "Length", "array": "Items", "object": "Properties"}.get(str(kind))
            if suffix is None:
                raise TypeError(f"length constraint on a {kind} schema")
            schema[bound + suffix] = value
        elif isinstance(item, at.Ge):
            schema["minimum"] = item.ge
        elif isinstance(item, at.Le):
            schema["maximum"] = item.le
        elif type(item).__name__ == "_PydanticGeneralMetadata":
            extra = dict(vars(item))
            if "pattern" in extra:
                schema["pattern"] = extra.pop("pattern")
            if extra:
                raise TypeError(f"unsupported pydantic constraints {extra}")
        elif type(item).__name__ in _VALIDATION_ONLY:
            pass
        else:
            raise TypeError(f"unsupported schema metadata {item!r}")


def _cel(rule: CEL) -> dict[str, str]:
    return {"message": rule.message, "rule": rule.rule}


def _unwrap(tp: Any, meta: list[Any]) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` (collecting its metadata, innermost first) and ``| None``."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            args = get_args(tp)
            tp, meta = args[0], [*args[1:], *meta]
        elif origin is Union or origin is types.UnionType:
            args = tuple(a for a in get_args(tp) if a is not type(None))
            if len(args) == 1:
                tp = args[0]
            elif any(isinstance(item, CoreType) for item in meta):
                return tp, meta  # int-or-string quantity
            else:
                raise TypeError(f"unions other than Optional need a CoreType marker: {tp}")
        else:
            return tp, meta


def _flatten(meta: Iterable[Any]) -> Iterable[Any]:
    for item in meta:
        if isinstance(item, FieldInfo):
            yield from _flatten(item.metadata)
        else:
            yield item


def _has(metadata: list[Any], marker: type, annotation: Any) -> bool:
    _, meta = _unwrap(annotation, list(metadata))
    return any(isinstance(item, marker) for item in meta)


def build_crd(resource: Resource, definitions: dict[str, Any]) -> dict[str, Any]:
    """The complete CustomResourceDefinition of one resource."""
    subresources: dict[str, Any] = {"status": {}}
    if resource.scale:
        subresources["scale"] = {
            "specReplicasPath": resource.scale.spec_replicas_path,
            "statusReplicasPath": resource.scale.status_replicas_path,
            "labelSelectorPath": resource.scale.label_selector_path,
        }
    columns = []
    for column in resource.columns:
        entry: dict[str, Any] = {"name": column.name, "type": column.type, "jsonPath": column.json_path}
        if column.priority:
            entry["priority"] = column.priority
        columns.append(entry)
    names: dict[str, Any] = {
        "kind": resource.kind,
        "listKind": f"{resource.kind}List",
        "plural": resource.plural,
        "singular": resource.singular,
    }
    if resource.short_names:
        names["shortNames"] = list(resource.short_names)
    version = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": SchemaBuilder(definitions).model(resource.model)},
        "subresources": subresources,
        "additionalPrinterColumns": columns,
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource.plural}.{GROUP}"},
        "spec": {"group": GROUP, "names": names, "scope": "Namespaced", "versions": [version]},
    }


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def render(crd: dict[str, Any]) -> str:
    """YAML text of a CRD, keys sorted, as committed under manifests/crds."""
    return "---\n" + yaml.dump(crd, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=100)


def render_all(definitions: dict[str, Any]) -> dict[str, str]:
    """File name -> YAML text for all three CRDs."""
    return {file_name(r): render(build_crd(r, definitions)) for r in RESOURCES}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m druid.api.crds", description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=CRD_DIR, help="where to write (default: %(default)s)")
    parser.add_argument("--openapi-dir", type=Path, help="Kubernetes api/openapi-spec/v3 directory")
    parser.add_argument("--check", action="store_true", help="only compare with the files, exit 1 on drift")
    args = parser.parse_args(argv)
    openapi_dir = args.openapi_dir or coretypes.find_openapi_dir()
    if openapi_dir is None:
        print("Kubernetes OpenAPI v3 documents not found; set DRUID_K8S_OPENAPI_DIR", file=sys.stderr)
        return 2
    files = render_all(coretypes.load_definitions(openapi_dir))
    stale = [name for name, text in files.items() if _read(args.output_dir / name) != text]
    if args.check:
        for name in stale:
            print(f"{args.output_dir / name} is out of date", file=sys.stderr)
        return 1 if stale else 0
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.output_dir / name).write_text(text)
        print(f"wrote {args.output_dir / name}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


if __name__ == "__main__":
    sys.exit(main())
