"""Go's ``fmt`` verbs where druid reproduces the printed text (error messages shown to users)."""

from __future__ import annotations

from collections.abc import Mapping

from druid.runtime.client import ApiError


def format_map(values: Mapping[str, str]) -> str:
    """A ``map[string]string`` printed with Go's ``%v``: ``map[k1:v1 k2:v2]``, keys sorted (fmt sorts map keys)."""
    return "map[" + " ".join(f"{k}:{values[k]}" for k in sorted(values)) + "]"


def error_text(err: BaseException) -> str:
    """An error as Go prints it with ``%v`` / ``err.Error()``. For an API server answer that is client-go's
    ``StatusError.Error()``: the Status message alone (``statefulsets.apps "x" not found``), without the HTTP
    status and reason :class:`ApiError` puts in front; a transport failure is its cause's text."""
    return err.message if isinstance(err, ApiError) else str(err)
