"""Would a server-side apply of ``desired`` change the live object? Decided from the cache, without a request.

A server-side apply by field manager ``M`` changes nothing exactly when

1. the set of fields ``M`` owns (its ``Apply`` entry in ``metadata.managedFields``) equals the set of
   fields in the applied configuration — otherwise fields would be taken over or removed — and
2. every value in the applied configuration already equals the live value.

:func:`difference` checks both by walking the desired object, ``M``'s ``fieldsV1`` and the live object
together, and names the first path that differs. The ``fieldsV1`` tree also says how each list is merged
(``k:{...}`` entries for keyed lists, ``v:...`` for sets, nothing for atomic lists) and which maps are atomic
(an owned map without ``f:`` children), so no schema is needed. Inside atomic values the live object may
carry server defaults, so there the desired value only has to be contained in the live one (a key removed
from an atomic map therefore goes unnoticed; druid's atomic maps — selectors — never shrink). Empty maps and
lists may be absent on either side.

Values the API server normalises (e.g. quantities: ``1000m`` is stored as ``1``) make the check report a
change that an apply would not make; after applying, callers keep the remaining differences with their live
values (:func:`artifacts`) and ignore exactly those for the same desired object (``sync.ApplyMemo``).

The informer caches keep the managedFields entries about the main resource for this (``keep_managed_fields``);
the subresources' entries are stripped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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


def difference(desired: Obj, live: Obj | None, manager: str, ignore: Mapping[str, Any] | None = None) -> str | None:
    """Why applying ``desired`` as ``manager`` would create or change ``live`` (a path), or None if it would not.

    ``ignore`` maps paths to the live value at which they count as equal (see :func:`artifacts`).
    """
    found = _first(desired, live, manager, ignore or {})
    return None if found is None else found[0]


def first_difference(
    desired: Obj, live: Obj | None, manager: str, ignore: Mapping[str, Any] | None = None
) -> tuple[str, Any] | None:
    """Like :func:`difference`, with the live value at that path (:data:`ABSENT` when there is none)."""
    return _first(desired, live, manager, ignore or {})


def needs_apply(desired: Obj, live: Obj | None, manager: str, ignore: Mapping[str, Any] | None = None) -> bool:
    return difference(desired, live, manager, ignore) is not None


def artifacts(desired: Obj, applied: Obj, manager: str, limit: int = 16) -> dict[str, Any]:
    """The differences an apply of ``desired`` left in its result ``applied``: values the API server normalises
    (``1000m`` is stored as ``1``) or defaults inside atomic values (``fieldRef.apiVersion``), by path, with the
    live value there. Ignoring them (``difference(..., ignore=...)``) while they keep exactly these live values
    makes the next check report no change; any other change is still reported."""
    out: dict[str, Any] = {}
    for _ in range(limit):
        found = _first(desired, applied, manager, out)
        if found is None or found[0].startswith("<"):
            break
        out[found[0]] = found[1]
    return out


def _first(desired: Obj, live: Obj | None, manager: str, ignore: Mapping[str, Any]) -> tuple[str, Any] | None:
    if live is None:
        return "<missing>", None
    fields = manager_fields(live, manager)
    if fields is None:
        return "<not applied by druid>", None
    body = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")}
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k not in IDENTITY_META}
    if meta:
        body["metadata"] = meta
    else:
        body.pop("metadata", None)
    walk = _Walk(ignore)
    path = walk.owned(body, fields, live, "")
    return None if path is None else (path, walk.value)


class _Absent:
    """The live value at a path that does not exist."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Absent)

    def __hash__(self) -> int:
        return 0


ABSENT = _Absent()


class _Walk:
    """One comparison; ``value`` is the live value at the path that differs."""

    def __init__(self, ignore: Mapping[str, Any]) -> None:
        self.ignore = ignore
        self.value: Any = ABSENT

    def mismatch(self, path: str, live: Any) -> str | None:
        """``path`` differs (live value ``live``) — unless it is a known artifact with that very value."""
        if path in self.ignore and _deep_equal(self.ignore[path], live):
            return None
        self.value = live
        return path

    def owned(self, desired: Any, fields: dict[str, Any] | None, live: Any, path: str) -> str | None:
        """First path where ``desired`` differs from ``live`` or the owned ``fields`` differ from ``desired``'s."""
        if fields is None:
            return self.mismatch(path or "<root>", live)
        if isinstance(desired, dict):
            if not isinstance(live, dict):
                return self.mismatch(path, live)
            named = _children(fields, "f:")
            if not named and desired:
                return self.contained(desired, live, path)  # an atomic map or struct
            for k in sorted(named.keys() - desired.keys()):
                found = self.mismatch(f"{path}.{k}", live.get(k, ABSENT))  # owned, no longer desired
                if found is not None:
                    return found
            for k, v in desired.items():
                where = f"{path}.{k}"
                if v in _EMPTY and live.get(k) in (None, *_EMPTY):
                    continue
                if k not in named or k not in live:
                    found = self.mismatch(where, live.get(k, ABSENT))
                else:
                    found = self.owned(v, named[k], live[k], where)
                if found is not None:
                    return found
            return None
        if isinstance(desired, list):
            if not isinstance(live, list):
                return self.mismatch(path, live)
            keyed = _children(fields, "k:")
            if keyed:
                return self.owned_keyed(desired, keyed, live, path)
            values = _children(fields, "v:")
            if values:
                want = {json.dumps(v, sort_keys=True) for v in desired}
                have = {json.dumps(json.loads(v), sort_keys=True) for v in values}
                same = want == have and all(v in live for v in desired)
                return None if same else self.mismatch(path, live)
            return self.contained(desired, live, path)  # an atomic list
        return None if _scalar_equal(desired, live) else self.mismatch(path, live)

    def owned_keyed(self, desired: list[Any], keyed: dict[str, Any], live: list[Any], path: str) -> str | None:
        keys = {k: json.loads(k) for k in keyed}
        if len(keys) != len(desired):
            return self.mismatch(f"{path}[{len(keys)} owned, {len(desired)} desired]", live)
        used: set[str] = set()
        for i, item in enumerate(desired):
            where = f"{path}[{i}]"
            match = None
            if isinstance(item, dict):
                match = next(
                    (
                        k
                        for k, key in keys.items()
                        if k not in used and all(f not in item or _scalar_equal(item[f], v) for f, v in key.items())
                    ),
                    None,
                )
            if match is None:
                return self.mismatch(where, ABSENT)
            used.add(match)
            key = keys[match]
            found = next(
                (x for x in live if isinstance(x, dict) and all(_scalar_equal(x.get(f), v) for f, v in key.items())),
                None,
            )
            diff = self.mismatch(where, ABSENT) if found is None else self.owned(item, keyed[match], found, where)
            if diff is not None:
                return diff
        return None

    def contained(self, desired: Any, live: Any, path: str) -> str | None:
        """``desired`` is contained in ``live``: an atomic value, where the server may have added defaults."""
        if isinstance(desired, dict):
            if not isinstance(live, dict):
                return self.mismatch(path, live)
            for k, v in desired.items():
                if k not in live:
                    if v in _EMPTY:
                        continue
                    return self.mismatch(f"{path}.{k}", ABSENT)
                found = self.contained(v, live[k], f"{path}.{k}")
                if found is not None:
                    return found
            return None
        if isinstance(desired, list):
            if not isinstance(live, list) or len(desired) != len(live):
                return self.mismatch(path, live)
            for i, (d, x) in enumerate(zip(desired, live, strict=True)):
                found = self.contained(d, x, f"{path}[{i}]")
                if found is not None:
                    return found
            return None
        return None if _scalar_equal(desired, live) else self.mismatch(path, live)


def _children(fields: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in fields.items() if k.startswith(prefix)}


def _deep_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    return _scalar_equal(a, b)


def _scalar_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return bool(type(a) is type(b) and a == b)
