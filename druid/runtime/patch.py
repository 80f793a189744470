"""Patches: keyword arguments for kubernetes-asyncio patch calls, and JSON merge patch (RFC 7386) itself.

Keyword arguments: kubernetes-asyncio patch calls always name the content type.

kubernetes-asyncio picks a patch content type from the body and the endpoint (a dict on a custom
resource goes out as a JSON patch and is rejected), so druid never lets it choose. The package's type
stubs omit ``_content_type``; these helpers return plain keyword dicts to splat into the call.
"""

from __future__ import annotations

import copy
from typing import Any

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def apply(field_manager: str, force: bool = True) -> dict[str, Any]:
    """Server-side apply: the body is the partial intent object owned by ``field_manager``."""
    return {"_content_type": APPLY, "field_manager": field_manager, "force": force}


def merge() -> dict[str, Any]:
    """JSON merge patch (RFC 7386): lists are replaced whole; put resourceVersion in the body to lock."""
    return {"_content_type": MERGE}


def json_patch() -> dict[str, Any]:
    """JSON patch (RFC 6902): the body is a list of operations; use ``test`` ops as preconditions."""
    return {"_content_type": JSON_PATCH}


def merge_patch_diff(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch turning ``old`` into ``new`` (objects recursively, anything else replaced)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return copy.deepcopy(new)
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    patch.update({k: merge_patch_diff(old.get(k), v) for k, v in new.items() if k not in old or old[k] != v})
    return patch


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: ``patch`` applied to ``target`` (neither is modified)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value)
    return out
