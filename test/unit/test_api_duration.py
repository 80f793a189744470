"""druid.gocompat.duration: Go time.ParseDuration and Duration.String()."""

from __future__ import annotations

import re

import pytest

from druid.gocompat.duration import (
    DURATION_OR_ZERO_PATTERN,
    DURATION_PATTERN,
    HOUR,
    MICROSECOND,
    MILLISECOND,
    MINUTE,
    SECOND,
    go_string,
    normalize,
    parse_duration,
    seconds,
)


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0", 0),
        ("5s", 5 * SECOND),
        ("30s", 30 * SECOND),
        ("1478s", 1478 * SECOND),
        ("-5s", -5 * SECOND),
        ("+5s", 5 * SECOND),
        ("1.5s", 1500 * MILLISECOND),
        (".5s", 500 * MILLISECOND),
        ("1.s", SECOND),
        ("1.004s", 1004 * MILLISECOND),
        ("100.00100s", 100 * SECOND + MILLISECOND),
        ("10ns", 10),
        ("11us", 11 * MICROSECOND),
        ("12µs", 12 * MICROSECOND),
        ("12μs", 12 * MICROSECOND),
        ("13ms", 13 * MILLISECOND),
        ("14s", 14 * SECOND),
        ("15m", 15 * MINUTE),
        ("16h", 16 * HOUR),
        ("3h30m", 3 * HOUR + 30 * MINUTE),
        ("10.5s4m", 4 * MINUTE + 10500 * MILLISECOND),
        ("-2m3.4s", -(2 * MINUTE + 3400 * MILLISECOND)),
        ("1h2m3s4ms5us6ns", HOUR + 2 * MINUTE + 3 * SECOND + 4 * MILLISECOND + 5 * MICROSECOND + 6),
        ("39h9m14.425s", 39 * HOUR + 9 * MINUTE + 14425 * MILLISECOND),
        ("52763797000ns", 52763797000),
        ("0.3333333333333333333h", 20 * MINUTE),
        ("9007199254740993ns", 9007199254740993),
        ("9223372036854775807ns", 2**63 - 1),
        ("-9223372036854775808ns", -(2**63)),
        ("0.100000000000000000000h", 6 * MINUTE),
    ],
)
def test_parse_like_go(text: str, nanos: int) -> None:
    assert parse_duration(text) == nanos


@pytest.mark.parametrize(
    "text", ["", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "1.5", "1s ", "9223372036854775808ns", "3000000h"]
)
def test_parse_errors_like_go(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1100, "1.1µs"),
        (2200 * MICROSECOND, "2.2ms"),
        (3300 * MILLISECOND, "3.3s"),
        (4 * MINUTE + 5 * SECOND, "4m5s"),
        (4 * MINUTE + 5001 * MILLISECOND, "4m5.001s"),
        (5 * HOUR + 6 * MINUTE + 7001 * MILLISECOND, "5h6m7.001s"),
        (8 * MINUTE + 1, "8m0.000000001s"),
        (2**63 - 1, "2562047h47m16.854775807s"),
        (-(2**63), "-2562047h47m16.854775808s"),
        (-MILLISECOND, "-1ms"),
        (15 * MINUTE, "15m0s"),
        (HOUR, "1h0m0s"),
    ],
)
def test_go_string(nanos: int, text: str) -> None:
    assert go_string(nanos) == text


def test_normalize_renders_spec_durations_like_etcd_druid() -> None:
    assert normalize("300s") == "5m0s"
    assert normalize("15m") == "15m0s"
    assert normalize("10s") == "10s"
    assert normalize("1.5h") == "1h30m0s"
    assert seconds("1m30s") == 90


@pytest.mark.parametrize("text", ["15m", "1h30m", "1.5s", "300ms", "10µs", "5ns"])
def test_pattern_values_parse(text: str) -> None:
    assert re.fullmatch(DURATION_PATTERN.strip("^$"), text)
    parse_duration(text)


def test_zero_pattern() -> None:
    assert re.fullmatch(DURATION_OR_ZERO_PATTERN, "0")
    assert not re.fullmatch(DURATION_PATTERN, "0")
