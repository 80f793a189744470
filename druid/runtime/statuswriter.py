"""Writing ``/status`` when several controllers share an object: resourceVersion-guarded, retried on conflict.

:func:`update_status` computes the desired status from the object it knows (``mutate(obj)``), sends the
difference as a JSON merge patch that carries the object's resourceVersion, and on 409 Conflict reads the
live object and computes again from that, up to ``retries`` attempts. A write therefore never rests on a
stale copy: what another writer put there in between is seen by ``mutate`` and kept.

Conditions are a list that merge patch replaces whole, so each writer owns some condition *types* and
merges only those into the live list (:func:`merge_conditions`): the conditions of other writers are kept
verbatim, whatever the writer's cache showed.

A status equal to the current one is not written (zero writes in a steady state).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import Obj, ResourceRef
from druid.runtime.patch import merge_patch_diff

CONFLICT_RETRIES = 5

Status = dict[str, Any]
Mutate = Callable[[Obj], Status]
"""Given the current object (a copy it may change), the complete desired ``status``."""


def merge_conditions(
    live: Iterable[Mapping[str, Any]] | None,
    owned: Collection[str],
    mine: Iterable[Mapping[str, Any]],
    *,
    sort: bool = False,
) -> list[dict[str, Any]]:
    """The live conditions with every ``owned`` type replaced by ``mine`` (an owned type missing from ``mine``
    is removed); other types are kept as they are. Order: live order, new types appended (``sort``: by type)."""
    mine_by_type = {str(x.get("type")): dict(x) for x in mine if x.get("type") in owned}
    out: list[dict[str, Any]] = []
    for cond in live or ():
        ctype = str(cond.get("type"))
        if ctype not in owned:
            out.append(dict(cond))
        elif ctype in mine_by_type:
            out.append(mine_by_type.pop(ctype))
    out += mine_by_type.values()
    if sort:
        out.sort(key=lambda x: str(x.get("type")))
    return out


async def update_status(
    kube: Kube,
    resource: ResourceRef,
    obj: Obj,
    mutate: Mutate,
    *,
    retries: int = CONFLICT_RETRIES,
    superseded: list[str] | None = None,
) -> Obj:
    """Write ``mutate(obj)`` as the status of ``obj`` (see the module docstring); returns the object as written,
    or ``obj`` when nothing changed. ``retries=1`` turns a conflict into an error for the caller.

    ``superseded`` (optional) collects the resourceVersions a successful write replaced: the one it started
    from and every one read after a conflict (for read-your-writes, see ``expectations``)."""
    meta = obj["metadata"]
    name, namespace = meta["name"], meta.get("namespace")
    current = obj
    seen: list[str] = []
    for attempt in range(retries):
        desired = mutate(copy.deepcopy(current))
        old = current.get("status") or {}
        patch = merge_patch_diff(old, desired)
        if not patch:
            return current
        body = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}, "status": patch}
        try:
            written = await kube.merge_patch(resource, name, body, namespace, subresource="status")
        except ApiError as e:
            if not e.conflict or attempt == retries - 1:
                raise
            seen.append(current["metadata"]["resourceVersion"])
            current = await kube.get(resource, name, namespace)
            continue
        if superseded is not None:
            superseded += [*seen, current["metadata"]["resourceVersion"]]
        return written
    raise AssertionError("unreachable")
