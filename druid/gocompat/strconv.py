"""Go's ``strconv`` conversions whose exact accept/reject set or output text druid reproduces."""

from __future__ import annotations

import math
import re
import struct
from typing import Any

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_INT = re.compile(r"^[+-]?[0-9]+$")
_INT64_RANGE = (-(2**63), 2**63 - 1)


def parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``: exactly 1 t T TRUE true True / 0 f F FALSE false False; else ``ValueError``."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"invalid boolean {text!r}")


def _single(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


def format_float32(value: float) -> str:
    """Go's ``strconv.FormatFloat(value, 'g', -1, 32)``: the shortest digits that read back as the same float32.

    As Go does for the shortest 'g' form, the exponent form (``1e+06``, ``1.5e-05``) is used when the decimal
    exponent is below -4 or at least 6; ``NaN``, ``+Inf``, ``-Inf`` as Go spells them.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    single = _single(value)
    for digits in range(1, 10):
        text = f"{single:.{digits - 1}e}"
        if _single(float(text)) == single:
            break
    mantissa, exponent = text.split("e")
    sign, mantissa = ("-", mantissa[1:]) if mantissa.startswith("-") else ("", mantissa)
    figures, exp = mantissa.replace(".", "").rstrip("0") or "0", int(exponent)
    if exp < -4 or exp >= 6:
        tail = f".{figures[1:]}" if len(figures) > 1 else ""
        return f"{sign}{figures[0]}{tail}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{figures}"
    whole, frac = figures[: exp + 1].ljust(exp + 1, "0"), figures[exp + 1 :]
    return f"{sign}{whole}{'.' + frac if frac else ''}"


def parse_int64(value: Any) -> int | None:
    """Go's ``strconv.ParseInt(value, 10, 64)``: optional sign, decimal digits, in int64 range; None when
    ``value`` is not a string or Go would return an error."""
    if not isinstance(value, str) or not _INT.match(value):
        return None
    number = int(value)
    return number if _INT64_RANGE[0] <= number <= _INT64_RANGE[1] else None
