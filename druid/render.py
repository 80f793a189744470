"""Offline rendering: every object druid would create for an Etcd, built by the controller's own builders.

``render_objects(raw)`` validates one Etcd (as parsed JSON/YAML) and returns the desired objects in
etcd-druid's sync order (``registry.desired_objects``): ServiceAccount, Role, RoleBinding, member Leases,
snapshot Leases, PDB, client Service, peer Service, ConfigMap, StatefulSet; only the last two while the
``disable-etcd-runtime-component-creation`` annotation is set. The StatefulSet's ``checksum/etcd-configmap``
is computed from the ConfigMap rendered alongside it. Objects are plain dicts as the builders return
them (compare them with live objects after dropping server-set fields).

Inputs the controller reads from the cluster are parameters here: the Etcd's ``metadata.uid`` (when
absent, ``PLACEHOLDER_UID`` goes into the ownerReferences) and, for the Local backup provider, the host
directory of the buckets (the store secret's ``hostPath`` key; default ``/etc/gardener/local-backupbuckets``).
Bad input raises ``RenderError`` whose ``problems`` each start with the field path.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterator
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from druid.api import constants as c
from druid.api import problems as field_problems
from druid.api.etcd import Etcd
from druid.components import registry, validation
from druid.components.base import BuildOptions
from druid.components.options import build_options
from druid.gocompat import goyaml
from druid.runtime import validation as rules
from druid.runtime.objects import Obj

PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"
"""ownerReference uid of rendered objects whose Etcd has no ``metadata.uid`` (clearly not a real object)."""


class RenderError(ValueError):
    """The input is not a valid Etcd; ``problems`` are ``"<field path>: <what is wrong>"`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def default_options() -> BuildOptions:
    """Operator defaults: image vector (with ``IMAGEVECTOR_OVERWRITE``), no feature gates, SA token automount."""
    return build_options()


def render_objects(
    etcd_raw: dict[str, Any],
    *,
    namespace: str | None = None,
    opts: BuildOptions | None = None,
    backup_host_path: str | None = None,
) -> list[Obj]:
    """Validate ``etcd_raw`` (an Etcd as JSON-like dict) and return its desired objects in sync order.

        ``namespace`` fills in a missing ``metadata.namespace`` (a different one is an error); ``opts``
        defaults to ``default_options()``; ``backup_host_path`` is the Local provider's bucket directory
        (None: ``/etc/gardener/local-backupbuckets``). Raises ``RenderError``, also for what the controller refuses
    before writing (``components.validation.spec_problems``: invalid labels, derived names, quota).
    """
    etcd = validate(etcd_raw, namespace=namespace)
    desired = registry.desired_objects(etcd, opts or default_options(), backup_host_path=backup_host_path)
    if problems := validation.spec_problems(etcd, desired):
        raise RenderError(problems)
    return [o for objects in desired.values() for o in objects]


def validate(etcd_raw: Any, *, namespace: str | None = None) -> Etcd:
    """The Etcd model of ``etcd_raw``, namespace and uid filled in; raises ``RenderError``."""
    problems = _check_header(etcd_raw, namespace)
    if not isinstance(etcd_raw, dict) or etcd_raw.get("kind") != c.KIND_ETCD:
        raise RenderError(problems)
    raw = copy.deepcopy(etcd_raw)
    meta = raw.get("metadata") or {}
    if isinstance(meta, dict):
        raw["metadata"] = {**meta, "namespace": meta.get("namespace") or namespace}
        raw["metadata"]["uid"] = meta.get("uid") or PLACEHOLDER_UID
    try:
        etcd = Etcd.model_validate(raw)
    except ValidationError as err:
        reported = {problem.split(":")[0] for problem in problems}
        problems += [p for p in validation_problems(err, raw) if p.split(":")[0] not in reported]
    if problems:
        raise RenderError(problems)
    return etcd


def _check_header(raw: Any, namespace: str | None) -> list[str]:
    if not isinstance(raw, dict):
        return [f"expected an Etcd object (a mapping), got {_type_name(raw)}"]
    problems = []
    kind, api_version = raw.get("kind"), raw.get("apiVersion")
    if not kind:
        return [f"kind: required field is missing (must be {c.KIND_ETCD})"]
    if kind != c.KIND_ETCD:
        return [f"kind: must be {c.KIND_ETCD}, got {_show(kind)}"]  # not an Etcd: the rest means nothing here
    if not api_version:
        problems.append(f"apiVersion: required field is missing (must be {c.API_VERSION})")
    elif api_version != c.API_VERSION:
        problems.append(f"apiVersion: must be {c.API_VERSION}, got {_show(api_version)}")
    meta = raw.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        return [*problems, f"metadata: expected a mapping, got {_type_name(meta)}"]
    name, ns = meta.get("name"), meta.get("namespace")
    if not name:
        problems.append("metadata.name: required field is missing")
    elif not isinstance(name, str) or rules.dns1123_subdomain_problem(name):
        problems.append(f"metadata.name: invalid value {_show(name)}: must be a lowercase RFC 1123 subdomain")
    if ns and (not isinstance(ns, str) or rules.dns1123_label_problem(ns)):
        problems.append(f"metadata.namespace: invalid value {_show(ns)}: must be a lowercase RFC 1123 label")
    elif ns and namespace and ns != namespace:
        problems.append(f"metadata.namespace: {_show(ns)} does not match the requested namespace {_show(namespace)}")
    elif not ns and not namespace:
        problems.append("metadata.namespace: required field is missing (set it, or pass --namespace)")
    elif not ns and namespace and rules.dns1123_label_problem(namespace):
        problems.append(f"namespace {_show(namespace)} is invalid: must be a lowercase RFC 1123 label")
    return problems


# pydantic errors -> "path: problem" --------------------------------------------------------------------


def validation_problems(err: ValidationError, raw: Any) -> list[str]:
    """One line per offending field: its path in the input (pydantic's union/validator tags dropped)."""
    merged: dict[str, tuple[Any, list[str]]] = {}
    for error in err.errors():
        loc = _input_path(raw, error["loc"], keep_last=error["type"] == "missing")
        _, details = merged.setdefault(field_problems.field_path(loc), (error.get("input"), []))
        if (detail := _detail(error, loc)) not in details:
            details.append(detail)
    lines = []
    for path, (value, details) in merged.items():
        special = [d for d in details if d.startswith(("required field", "unknown field"))]
        text = special[0] if special else f"invalid value {_show(value)}: {' or '.join(details)}"
        lines.append(f"{path}: {text}" if path else text)
    return lines


def _input_path(raw: Any, loc: tuple[Any, ...], *, keep_last: bool) -> list[str | int]:
    """The part of pydantic's ``loc`` that exists in the input (plus a missing field's own name)."""
    path: list[str | int] = []
    node = raw
    for i, elem in enumerate(loc):
        if isinstance(node, dict) and elem in node:
            path.append(elem)
            node = node[elem]
        elif isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node):
            path.append(elem)
            node = node[elem]
        elif keep_last and i == len(loc) - 1 and isinstance(elem, str):
            path.append(elem)
    return path


def _detail(error: Any, path: list[str | int]) -> str:
    kind, msg = error["type"], field_problems.problem(error)
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        hint = _suggest(path)
        return msg + (f' (did you mean "{hint}"?)' if hint else "")
    return msg[:1].lower() + msg[1:]


def _suggest(path: list[str | int]) -> str | None:
    """The closest field name at the unknown field's place in the Etcd model, for typos."""
    names = _field_names(Etcd, path[:-1])
    close = difflib.get_close_matches(str(path[-1]), names, n=1, cutoff=0.6) if names and path else []
    if not close:
        close = [n for n in names if n.lower() == str(path[-1]).lower()] if path else []
    return close[0] if close else None


def _field_names(model: Any, path: list[str | int]) -> list[str]:
    node: Any = model
    for elem in path:
        node = _child(node, elem)
        if node is None:
            return []
    model_type = next((t for t in _unwrap(node) if isinstance(t, type) and issubclass(t, BaseModel)), None)
    if model_type is None:
        return []
    return [field.alias or name for name, field in model_type.model_fields.items()]


def _child(annotation: Any, elem: str | int) -> Any:
    for t in _unwrap(annotation):
        if isinstance(elem, str) and isinstance(t, type) and issubclass(t, BaseModel):
            for name, field in t.model_fields.items():
                if elem in (name, field.alias):
                    return field.annotation
        origin = get_origin(t)
        if isinstance(elem, int) and origin in (list, tuple):
            return get_args(t)[0]
        if isinstance(elem, str) and origin is dict:
            return get_args(t)[1]
    return None


def _unwrap(annotation: Any) -> Iterator[Any]:
    """The member types of ``annotation`` (Optional/Union and Annotated taken apart)."""
    origin = get_origin(annotation)
    if origin is Union or type(annotation).__name__ == "UnionType":
        for arg in get_args(annotation):
            yield from _unwrap(arg)
    elif hasattr(annotation, "__metadata__"):
        yield from _unwrap(get_args(annotation)[0])
    else:
        yield annotation


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_name(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "nothing"}.get(type(value), type(value).__name__)


# documents in, YAML out ---------------------------------------------------------------------------------


def load_documents(text: str) -> list[Any]:
    """The documents of a JSON object or YAML stream (empty documents dropped; ``kind: List`` expanded).

    YAML is read like kubectl reads it (go-yaml typing of plain scalars). Raises ``RenderError``.
    """
    try:
        if text.lstrip().startswith("{"):
            docs: list[Any] = [json.loads(text)]
        else:
            docs = list(yaml.load_all(text, Loader=goyaml.Loader))
    except json.JSONDecodeError as err:
        raise RenderError([f"invalid JSON: {err}"]) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = ", ".join(part for part in (err.context, err.problem) if part)
        raise RenderError([f"invalid YAML{where}: {reason}"]) from None
    except (ValueError, yaml.YAMLError) as err:
        raise RenderError([f"invalid YAML: {err}".replace("\n", " ")]) from None
    out: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out += doc["items"]
        elif doc is not None:
            out.append(doc)
    return out


def to_yaml(objects: list[Obj]) -> str:
    """A YAML stream, one document per object, rendered like ``sigs.k8s.io/yaml`` (``kubectl -o yaml``)."""
    return "---\n".join(goyaml.marshal(o) for o in objects)
