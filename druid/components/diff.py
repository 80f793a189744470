"""Would a server-side apply of ``desired`` change the live object? Decided from the cache, without a request.

A server-side apply by field manager ``M`` changes nothing exactly when

1. the set of fields ``M`` owns (its ``Apply`` entry in ``metadata.managedFields``) equals the set of
   fields in the applied configuration — otherwise fields would be taken over or removed — and
2. every value in the applied configuration already equals the live value.

:func:`difference` checks both by walking the desired object, ``M``'s ``fieldsV1`` and the live object
together, and names the first path that differs. The ``fieldsV1`` tree also says how each list is merged
(``k:{...}`` entries for keyed lists, ``v:...`` for sets, nothing for atomic lists) and which maps are atomic
(an owned map without ``f:`` children), so no schema is needed. Inside atomic values the live object may
carry server defaults, so there the desired value only has to be contained in the live one; maps of strings
(selectors) must match exactly. Empty maps and lists may be absent on either side.

Values the API server normalises (e.g. quantities: ``1000m`` is stored as ``1``) make the check report a
change that an apply would not make; callers remember the resourceVersion an apply produced for a given
desired object and skip the next check while nothing moved (``sync.ApplyMemo``).

The informer caches keep the ``Apply`` entry of druid's field manager for this (``keep_managed_fields``);
every other managedFields entry is stripped.
"""

from __future__ import annotations

import json
from typing import Any

from druid.runtime.objects import Obj

IDENTITY_META = ("name", "namespace")
_EMPTY: tuple[Any, ...] = ({}, [])


def manager_fields(live: Obj, manager: str) -> dict[str, Any] | None:
    """The ``fieldsV1`` of ``manager``'s Apply entry on the main resource (None if it owns nothing)."""
    for entry in live.get("metadata", {}).get("managedFields") or ():
        if entry.get("manager") == manager and entry.get("operation") == "Apply" and not entry.get("subresource"):
            fields = entry.get("fieldsV1")
            return fields if isinstance(fields, dict) else {}
    return None


def difference(desired: Obj, live: Obj | None, manager: str) -> str | None:
    """Why applying ``desired`` as ``manager`` would create or change ``live`` (a path), or None if it would not."""
    if live is None:
        return "<missing>"
    fields = manager_fields(live, manager)
    if fields is None:
        return "<not applied by druid>"
    body = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")}
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k not in IDENTITY_META}
    if meta:
        body["metadata"] = meta
    else:
        body.pop("metadata", None)
    return _owned(body, fields, live, "")


def needs_apply(desired: Obj, live: Obj | None, manager: str) -> bool:
    return difference(desired, live, manager) is not None


def _children(fields: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in fields.items() if k.startswith(prefix)}


def _owned(desired: Any, fields: dict[str, Any] | None, live: Any, path: str) -> str | None:
    """First path where ``desired`` differs from ``live`` or the owned ``fields`` differ from ``desired``'s."""
    if fields is None:
        return path or "<root>"
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return path
        named = _children(fields, "f:")
        if not named and desired:
            return _contained(desired, live, path)  # an atomic map or struct
        for k in named.keys() - desired.keys():
            return f"{path}.{k}"  # owned, no longer desired: would be removed
        for k, v in desired.items():
            where = f"{path}.{k}"
            if k not in named:
                if v in _EMPTY and live.get(k) in (None, *_EMPTY):
                    continue
                return where
            if v in _EMPTY and live.get(k) in (None, *_EMPTY):
                continue
            if k not in live:
                return where
            found = _owned(v, named[k], live[k], where)
            if found is not None:
                return found
        return None
    if isinstance(desired, list):
        if not isinstance(live, list):
            return path
        keyed = _children(fields, "k:")
        if keyed:
            return _owned_keyed(desired, keyed, live, path)
        values = _children(fields, "v:")
        if values:
            want = {json.dumps(v, sort_keys=True) for v in desired}
            have = {json.dumps(json.loads(v), sort_keys=True) for v in values}
            return None if want == have and all(v in live for v in desired) else path
        return _contained(desired, live, path)  # an atomic list
    return None if _scalar_equal(desired, live) else path


def _owned_keyed(desired: list[Any], keyed: dict[str, Any], live: list[Any], path: str) -> str | None:
    keys = {k: json.loads(k) for k in keyed}
    if len(keys) != len(desired):
        return f"{path}[{len(keys)} owned, {len(desired)} desired]"
    used: set[str] = set()
    for i, item in enumerate(desired):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            return where
        match = next(
            (
                k
                for k, key in keys.items()
                if k not in used and all(f not in item or _scalar_equal(item[f], v) for f, v in key.items())
            ),
            None,
        )
        if match is None:
            return where
        used.add(match)
        key = keys[match]
        found = next(
            (x for x in live if isinstance(x, dict) and all(_scalar_equal(x.get(f), v) for f, v in key.items())), None
        )
        if found is None:
            return where
        diff = _owned(item, keyed[match], found, where)
        if diff is not None:
            return diff
    return None


def _contained(desired: Any, live: Any, path: str) -> str | None:
    """``desired`` is contained in ``live`` (server defaults allowed); string maps must match exactly."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return path
        string_map = desired and all(isinstance(v, str) for v in desired.values())
        if string_map and set(live) != set(desired):
            return path
        for k, v in desired.items():
            if k not in live:
                if v in _EMPTY:
                    continue
                return f"{path}.{k}"
            found = _contained(v, live[k], f"{path}.{k}")
            if found is not None:
                return found
        return None
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return path
        for i, (d, x) in enumerate(zip(desired, live, strict=True)):
            found = _contained(d, x, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    return None if _scalar_equal(desired, live) else path


def _scalar_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return bool(type(a) is type(b) and a == b)
