"""druid.gocompat: strconv.ParseBool, FormatFloat(.., 'g', -1, 32), fmt %v of a map, Duration.String of seconds."""

from __future__ import annotations

import pytest

from druid.gocompat import duration, fmt, strconv


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_parse_bool_true(text: str) -> None:
    assert strconv.parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_parse_bool_false(text: str) -> None:
    assert strconv.parse_bool(text) is False


@pytest.mark.parametrize("text", ["", "yes", "on", "tRUE", " true", "2"])
def test_parse_bool_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        strconv.parse_bool(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.7, "3.7"),
        (0.1, "0.1"),
        (1.0, "1"),
        (100000.0, "100000"),
        (1000000.0, "1e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (16777217.0, "1.6777216e+07"),  # not representable in float32
        (float("nan"), "NaN"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
    ],
)
def test_format_float32_matches_go(value: float, text: str) -> None:
    assert strconv.format_float32(value) == text


def test_format_map_sorts_keys_like_go() -> None:
    assert fmt.format_map({"b": "2", "a": "1"}) == "map[a:1 b:2]"
    assert fmt.format_map({}) == "map[]"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (90, "1m30s"), (0.5, "500ms"), (3600, "1h0m0s")])
def test_format_seconds(seconds: float, text: str) -> None:
    assert duration.format_seconds(seconds) == text
