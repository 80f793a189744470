"""Go's ``fmt`` verbs where druid reproduces the printed text (error messages shown to users)."""

from __future__ import annotations

from collections.abc import Mapping


def format_map(values: Mapping[str, str]) -> str:
    """A ``map[string]string`` printed with Go's ``%v``: ``map[k1:v1 k2:v2]``, keys sorted (fmt sorts map keys)."""
    return "map[" + " ".join(f"{k}:{values[k]}" for k in sorted(values)) + "]"
