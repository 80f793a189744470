"""Kubernetes resource quantities (``8Gi``, ``100Mi``, ``1.5G``, ``500m``, ``1e3``) as exact numbers.

Semantics follow ``k8s.io/apimachinery/pkg/api/resource``: the value is exact, except that non-zero
values are rounded away from zero to a multiple of 1n (10^-9), as ``ParseQuantity`` does. ``value`` and
``milli_value`` round away from zero like Go's ``Quantity.Value`` and ``Quantity.MilliValue``.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_UP, Decimal, InvalidOperation, localcontext

# The pattern Kubernetes puts into OpenAPI schemas for resource.Quantity.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

_NUMBER = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)", re.DOTALL)
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)")
_NANO = Decimal("1e-9")
_MAX_INT64 = Decimal(2**63 - 1)


def parse_quantity(quantity: str | int) -> Decimal:
    """Return the exact value of a quantity; raise ``ValueError`` if it is not a valid quantity."""
    if isinstance(quantity, bool):
        raise ValueError(f"invalid quantity {quantity!r}")
    if isinstance(quantity, int):
        return Decimal(quantity)
    if not isinstance(quantity, str):
        raise ValueError(f"invalid quantity {quantity!r}")
    match = _NUMBER.fullmatch(quantity)
    if not match:
        raise ValueError(f"invalid quantity {quantity!r}")
    sign, number, suffix = match.groups()
    with localcontext() as ctx:
        ctx.prec = 200
        try:
            value = Decimal(number)
            if suffix in _BINARY:
                value = value * (2 ** _BINARY[suffix])
            elif suffix in _DECIMAL:
                value = value.scaleb(_DECIMAL[suffix])
            elif exponent := _EXPONENT.fullmatch(suffix):
                value = value.scaleb(int(exponent.group(1)))
            else:
                raise ValueError(f"invalid quantity {quantity!r}: unknown suffix {suffix!r}")
            places = value.as_tuple().exponent
            if value and isinstance(places, int) and places < -9:
                value = value.quantize(_NANO, rounding=ROUND_UP)
            if suffix in _BINARY and value > _MAX_INT64:
                value = _MAX_INT64
        except InvalidOperation as err:
            raise ValueError(f"invalid quantity {quantity!r}") from err
    return -value if sign == "-" else value


def is_quantity(quantity: object) -> bool:
    """True if ``quantity`` is an int or a string Kubernetes accepts as a quantity."""
    if isinstance(quantity, bool) or not isinstance(quantity, int | str):
        return False
    try:
        parse_quantity(quantity)
    except ValueError:
        return False
    return True


def _round_away_from_zero(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING if value > 0 else ROUND_FLOOR))


def value(quantity: str | int) -> int:
    """The quantity as an integer, rounded away from zero (Go ``Quantity.Value``), e.g. bytes for ``8Gi``."""
    return _round_away_from_zero(parse_quantity(quantity))


def milli_value(quantity: str | int) -> int:
    """The quantity in thousandths, rounded away from zero (Go ``Quantity.MilliValue``), e.g. 500 for ``500m``."""
    return _round_away_from_zero(parse_quantity(quantity) * 1000)
