"""A pydantic validation error as "path: problem" lines: the one formatter of druid's models' errors.

Used for an Etcd that does not parse (the Etcd controller's ``ERR_INVALID_SPEC``), an OperatorConfiguration
that does not parse, and ``druid render``'s input errors (which add the offending value and a spelling hint).

- :func:`field_path`: ``spec.etcd.clientUrlTls``; list indices in brackets (``exemptServiceAccounts[1]``);
  a key that is not an identifier JSON-quoted in brackets (``labels["app.kubernetes.io/name"]``); empty for
  the root.
- :func:`problem`: ``required`` for a missing field, ``unknown field`` for a forbidden extra one, else
  pydantic's message without its ``Value error, `` prefix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

ROOT = "<root>"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def field_path(path: Iterable[str | int]) -> str:
    """The dotted path of a field (see the module docstring); ``""`` for the root."""
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        elif _IDENT.match(elem):
            out += f".{elem}" if out else elem
        else:
            out += f"[{json.dumps(elem)}]"
    return out


def problem(error: Any) -> str:
    """What is wrong with the field of one pydantic error (an item of ``ValidationError.errors()``)."""
    if error["type"] == "missing":
        return "required"
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")


def lines(error: ValidationError) -> list[tuple[str, str]]:
    """(path or ``<root>``, problem) per error, in pydantic's order."""
    return [(field_path(e["loc"]) or ROOT, problem(e)) for e in error.errors(include_url=False)]
