"""Adding and removing one finalizer, safe against concurrent writers.

The patch carries the whole new ``finalizers`` list *and* the resourceVersion the list was computed from,
so the API server rejects it (409 Conflict) when anybody changed the object in between; the reconcile then
fails and runs again from a fresh copy. Nothing is written when the finalizer is already as wanted.
"""

from __future__ import annotations

from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import Obj, ResourceRef


def has_finalizer(obj: Obj, finalizer: str) -> bool:
    return finalizer in ((obj.get("metadata") or {}).get("finalizers") or ())


def finalizers_patch(obj: Obj, finalizer: str, *, present: bool) -> Obj | None:
    """The merge-patch body that adds (``present``) or removes ``finalizer``; None when nothing is to change."""
    meta = obj["metadata"]
    finalizers = list(meta.get("finalizers") or ())
    if (finalizer in finalizers) == present:
        return None
    finalizers = [*finalizers, finalizer] if present else [f for f in finalizers if f != finalizer]
    return {"metadata": {"finalizers": finalizers or None, "resourceVersion": meta["resourceVersion"]}}


async def ensure_finalizer(kube: Kube, resource: ResourceRef, obj: Obj, finalizer: str) -> Obj:
    """``obj`` with ``finalizer`` added: the object the API server returned, or ``obj`` when it had it already."""
    body = finalizers_patch(obj, finalizer, present=True)
    if body is None:
        return obj
    meta = obj["metadata"]
    return await kube.merge_patch(resource, meta["name"], body, meta.get("namespace"))


async def remove_finalizer(kube: Kube, resource: ResourceRef, obj: Obj, finalizer: str) -> Obj | None:
    """``obj`` without ``finalizer``; None when the object is gone (removing the last finalizer of an object
    being deleted usually deletes it; a 404 counts as done)."""
    body = finalizers_patch(obj, finalizer, present=False)
    if body is None:
        return obj
    meta = obj["metadata"]
    try:
        return await kube.merge_patch(resource, meta["name"], body, meta.get("namespace"))
    except ApiError as e:
        if e.not_found:
            return None
        raise
