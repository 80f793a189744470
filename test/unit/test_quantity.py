"""druid.gocompat.quantity: Kubernetes quantities parsed like k8s.io/apimachinery's resource.ParseQuantity."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from druid.gocompat.quantity import QUANTITY_PATTERN, is_quantity, milli_value, parse_quantity, value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8Gi", 8589934592),
        ("100Mi", 104857600),
        ("16Gi", 17179869184),
        ("1Ki", 1024),
        ("1.5Gi", 1610612736),
        ("1Ei", 2**60),
        ("1.5G", 1500000000),
        ("1k", 1000),
        ("3M", 3000000),
        ("2T", 2 * 10**12),
        ("1P", 10**15),
        ("1E", 10**18),
        ("500m", Decimal("0.5")),
        ("250u", Decimal("0.00025")),
        ("7n", Decimal("7e-9")),
        ("1e3", 1000),
        ("1E3", 1000),
        ("1e+3", 1000),
        ("1e-3", Decimal("0.001")),
        ("0", 0),
        ("0.0", 0),
        ("00012", 12),
        (".5", Decimal("0.5")),
        ("5.", 5),
        ("+5", 5),
        ("-1Gi", -1073741824),
        ("1.G", 10**9),
        (1024, 1024),
        (0, 0),
    ],
)
def test_parse(text: str | int, expected: int | Decimal) -> None:
    assert parse_quantity(text) == expected


def test_sub_nano_values_round_up_to_one_nano() -> None:
    assert parse_quantity("0.1n") == Decimal("1e-9")
    assert parse_quantity("1.0000000001") == Decimal("1.000000001")
    assert parse_quantity("-0.1n") == Decimal("-1e-9")


def test_binary_values_are_capped_at_int64_max() -> None:
    assert parse_quantity("8Ei") == 2**63 - 1
    assert parse_quantity("-8Ei") == -(2**63 - 1)


@pytest.mark.parametrize(
    ("text", "expected_value", "expected_milli"),
    [
        ("8Gi", 8589934592, 8589934592000),
        ("500m", 1, 500),
        ("1500m", 2, 1500),
        ("2", 2, 2000),
        ("-500m", -1, -500),
        ("1n", 1, 1),
        ("1.0001Ki", 1025, 1024103),
        ("0", 0, 0),
    ],
)
def test_value_and_milli_value_round_away_from_zero(text: str, expected_value: int, expected_milli: int) -> None:
    assert value(text) == expected_value
    assert milli_value(text) == expected_milli


INVALID = ["", "Gi", "1GB", "1K", "1.5.5", "1e", "1e1.5", " 1", "1 ", "--1", "1mi", "1Gi ", "one", "1_000", "0x10"]


@pytest.mark.parametrize("text", INVALID)
def test_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)
    assert not is_quantity(text)


@pytest.mark.parametrize("thing", [True, 1.5, None, [1]])
def test_non_quantity_types(thing: object) -> None:
    assert not is_quantity(thing)
    with pytest.raises(ValueError):
        parse_quantity(thing)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["8Gi", "1.5G", "500m", "1e3", ".5", "5.", "-1", "+1Ki", "1e-3", *INVALID])
def test_parser_agrees_with_the_schema_pattern(text: str) -> None:
    # The CRD pattern also lets a fractional exponent through ("1e1.5"); Go's parser refuses it, and so do we.
    pattern_ok = re.fullmatch(QUANTITY_PATTERN.removeprefix("^").removesuffix("$"), text) is not None
    assert is_quantity(text) == (pattern_ok and text != "1e1.5")
