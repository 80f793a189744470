"""Kubernetes' rules for object names, label keys and values and annotation keys (apimachinery validation).

Checked before an object is written, so a value the API server would refuse is caught while nothing is
written yet. Each ``*_problem`` function returns None for a valid value, else why it is not valid (worded like
the API server's messages). :func:`object_problems` checks one object as druid builds it: its name (by kind),
labels and annotation keys, and the names and labels of the objects it embeds (a pod template, a selector,
volume claim templates); each problem is ``(path in the object, message)``.

Name rules by kind (the API server's): Services need an RFC 1035 label (at most 63 characters, starting with
a letter); Roles and RoleBindings need only a path segment name (no ``/``, ``%``, not ``.`` or ``..``); every
other kind an RFC 1123 subdomain (at most 253 characters). A StatefulSet's name is also bounded by what its
controller derives from it: the pods' ``controller-revision-hash`` label is ``<name>-<hash of up to 10
characters>`` and must stay a valid label value, so at most 52 characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from druid.runtime.objects import Obj

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
STATEFULSET_NAME_MAX = 52  # 63 - len("-") - 10 (controller-revision-hash suffix)

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _too_long(value: str, limit: int) -> str | None:
    return f"must be no more than {limit} characters (has {len(value)})" if len(value) > limit else None


def dns1123_label_problem(value: str) -> str | None:
    if problem := _too_long(value, DNS1123_LABEL_MAX):
        return problem
    if not _DNS1123_LABEL.match(value):
        return "must be a lowercase RFC 1123 label (letters, digits and '-', alphanumeric at both ends)"
    return None


def dns1123_subdomain_problem(value: str) -> str | None:
    if problem := _too_long(value, DNS1123_SUBDOMAIN_MAX):
        return problem
    if not _DNS1123_SUBDOMAIN.match(value):
        return "must be a lowercase RFC 1123 subdomain (letters, digits, '-' and '.', alphanumeric at both ends)"
    return None


def dns1035_label_problem(value: str) -> str | None:
    if problem := _too_long(value, DNS1123_LABEL_MAX):
        return problem
    if not _DNS1035_LABEL.match(value):
        return "must be an RFC 1035 label (lowercase letters, digits and '-', starting with a letter)"
    return None


def path_segment_problem(value: str) -> str | None:
    if value in (".", ".."):
        return f"may not be {value!r}"
    if "/" in value or "%" in value:
        return "may not contain '/' or '%'"
    return None if value else "must not be empty"


def qualified_name_problem(key: str) -> str | None:
    """A label or annotation key: ``[prefix/]name``, the prefix an RFC 1123 subdomain, the name ≤ 63 characters."""
    prefix, sep, name = key.rpartition("/")
    if sep and not prefix:
        return "prefix part must be non-empty"
    if sep and (problem := dns1123_subdomain_problem(prefix)):
        return f"prefix part {problem}"
    if problem := _too_long(name, 63):
        return f"name part {problem}"
    if not _QUALIFIED_NAME.match(name):
        return "name part must consist of alphanumeric characters, '-', '_' or '.', starting and ending alphanumeric"
    return None


def label_value_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if problem := _too_long(value, LABEL_VALUE_MAX):
        return problem
    if not _LABEL_VALUE.match(value):
        return "must be empty or consist of alphanumeric characters, '-', '_' or '.', starting and ending alphanumeric"
    return None


def name_problem(kind: str, name: str) -> str | None:
    """Why ``name`` is not a valid name of a ``kind`` object (see the module docstring), None if it is."""
    if kind == "Service":
        return dns1035_label_problem(name)
    if kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
        return path_segment_problem(name)
    if kind == "StatefulSet" and (problem := _too_long(name, STATEFULSET_NAME_MAX)):
        return f"{problem}: the pods' controller-revision-hash label value <name>-<hash> must stay within 63"
    return dns1123_subdomain_problem(name)


def labels_problems(labels: Any, path: str) -> Iterator[tuple[str, str]]:
    if not isinstance(labels, Mapping):
        return
    for key, value in labels.items():
        if problem := qualified_name_problem(str(key)):
            yield f"{path}[{key}]", f"key {problem}"
        elif problem := label_value_problem(value):
            yield f"{path}[{key}]", f"value {value!r} {problem}"


def annotation_keys_problems(annotations: Any, path: str) -> Iterator[tuple[str, str]]:
    if not isinstance(annotations, Mapping):
        return
    for key in annotations:
        if problem := qualified_name_problem(str(key)):
            yield f"{path}[{key}]", f"key {problem}"


def _meta_problems(meta: Any, path: str, kind: str | None) -> Iterator[tuple[str, str]]:
    if not isinstance(meta, Mapping):
        return
    name = meta.get("name")
    if kind is not None and isinstance(name, str) and (problem := name_problem(kind, name)):
        yield f"{path}.name", f"{kind} name {name!r} {problem}"
    yield from labels_problems(meta.get("labels"), f"{path}.labels")
    yield from annotation_keys_problems(meta.get("annotations"), f"{path}.annotations")


def object_problems(obj: Obj) -> list[tuple[str, str]]:
    """What the API server would refuse in ``obj`` by the rules above: ``(path, message)`` pairs."""
    kind = str(obj.get("kind") or "")
    problems = list(_meta_problems(obj.get("metadata"), "metadata", kind))
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return problems
    selector = spec.get("selector")
    if isinstance(selector, Mapping):
        match = selector.get("matchLabels") if isinstance(selector.get("matchLabels"), Mapping) else selector
        path = "spec.selector.matchLabels" if match is not selector else "spec.selector"
        problems += labels_problems(match, path)
    template = spec.get("template")
    if isinstance(template, Mapping):
        problems += _meta_problems(template.get("metadata"), "spec.template.metadata", None)
    for i, claim in enumerate(spec.get("volumeClaimTemplates") or ()):
        if not isinstance(claim, Mapping):
            continue
        name = (claim.get("metadata") or {}).get("name")
        if isinstance(name, str) and (problem := dns1123_label_problem(name)):
            problems.append((f"spec.volumeClaimTemplates[{i}].metadata.name", f"volume name {name!r} {problem}"))
    return problems
