"""Byte-compatible stand-ins for the Go serializers etcd-druid's output depends on.

- ``marshal``: ``sigs.k8s.io/yaml.Marshal`` of a JSON-like value (JSON first, then go-yaml v2): map keys in
  go-yaml's "natural" order (digit runs compare as numbers, letters after other characters), strings that
  go-yaml would read back as something else double-quoted, 80-column folding, indentless sequences.
- ``json_marshal``: ``encoding/json.Marshal``: sorted map keys, no spaces, ``<``, ``>``, ``&``, U+2028 and
  U+2029 escaped as ``\\u003c`` etc.
- ``Loader``: a PyYAML loader that types plain scalars the way go-yaml v2 does (``y``/``on``/``no`` are
  booleans, ``1e3`` and ``0o17`` are numbers). Timestamps stay strings.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import yaml

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
TIMESTAMP = "tag:yaml.org,2002:timestamp"

_TRUE = ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")
_FALSE = ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
_NAN = (".nan", ".NaN", ".NAN")
_INF = (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF")
_WORDS: dict[str, str] = {
    **dict.fromkeys(_TRUE + _FALSE, BOOL),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), NULL),
    **dict.fromkeys(_NAN + _INF, FLOAT),
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_BASE60_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,]\d+)?(?:Z|[+-]\d{2}:\d{2})"
    r"| (\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,]\d+)?)?"
)
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _parse_uint(text: str, base: int = 0) -> int | None:
    """``strconv.ParseUint(text, base, 64)`` without the range check (base 0: Go prefixes); None if invalid."""
    if base == 0:
        base = 10
        if text[:1] == "0":
            prefix = text[1:2].lower()
            if len(text) >= 3 and prefix in ("b", "o", "x"):
                base, text = {"b": 2, "o": 8, "x": 16}[prefix], text[2:]
            else:
                base, text = 8, text[1:]
                if not text:
                    return 0
    if not text or any(ch not in _DIGITS[base] for ch in text):
        return None
    return int(text, base)


def _is_go_int(text: str, base: int = 0) -> bool:
    """``strconv.ParseInt(text, base, 64)`` or ``strconv.ParseUint(text, base, 64)`` succeeds."""
    if text[:1] in ("+", "-"):
        value = _parse_uint(text[1:], base)
        return value is not None and value <= (2**63 if text[0] == "-" else 2**63 - 1)
    value = _parse_uint(text, base)
    return value is not None and value < 2**64


def _is_finite_float(text: str) -> bool:
    return float(text) not in (float("inf"), float("-inf"))


def _is_timestamp(text: str) -> bool:
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        return False
    month, day = int(match.group(2)), int(match.group(3))
    if not 1 <= month <= 12 or not 1 <= day <= _DAYS[month - 1]:
        return False
    if month == 2 and day == 29:
        year = int(match.group(1))
        if not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
            return False
    clock = [int(g) for g in match.groups()[3:] if g is not None]
    return not clock or (clock[0] <= 23 and clock[1] <= 59 and clock[2] <= 59)


def resolve(text: str) -> str:
    """The tag go-yaml v2 gives ``text`` as a plain (unquoted) scalar."""
    hint = text[:1]
    if text in _WORDS:
        return _WORDS[text]
    if hint == ".":
        return FLOAT if _DOT_FLOAT.fullmatch(text) and _is_finite_float(text) else STR
    if hint in ("+", "-") or (hint.isascii() and hint.isdigit()):
        if _is_timestamp(text):
            return TIMESTAMP
        plain = text.replace("_", "")
        if _is_go_int(plain):
            return INT
        if _YAML_FLOAT.fullmatch(plain) and _is_finite_float(plain):
            return FLOAT
        if plain.startswith("0b") and _is_go_int(plain[2:], 2):  # go-yaml's fallback, e.g. 0b+1
            return INT
        if plain.startswith("-0b") and _is_go_int("-" + plain[3:], 2):
            return INT
    return STR


def needs_quotes(text: str) -> bool:
    """go-yaml would double-quote this string: plain, it would read back as another type."""
    return resolve(text) != STR or bool(_BASE60_FLOAT.fullmatch(text))


def _int64(value: int) -> int:
    return (value + 2**63) % 2**64 - 2**63


def key_less(a: str, b: str) -> bool:
    """go-yaml v2's ``keyList.Less`` for two string keys."""
    for i in range(min(len(a), len(b))):
        if a[i] == b[i]:
            continue
        a_letter, b_letter = a[i].isalpha(), b[i].isalpha()
        if a_letter and b_letter:
            return a[i] < b[i]
        if a_letter or b_letter:
            return b_letter
        an = bn = 0
        if a[i] == "0" or b[i] == "0":
            j = i - 1
            while j >= 0 and a[j].isdecimal():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and a[ai].isdecimal():
            an = _int64(an * 10 + ord(a[ai]) - 48)
            ai += 1
        bi = i
        while bi < len(b) and b[bi].isdecimal():
            bn = _int64(bn * 10 + ord(b[bi]) - 48)
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return a[i] < b[i]
    return len(a) < len(b)


def _compare(a: str, b: str) -> int:
    return -1 if key_less(a, b) else (1 if key_less(b, a) else 0)


_key = functools.cmp_to_key(_compare)


def sort_keys(value: Any) -> Any:
    """Copy of ``value`` with every mapping's keys in go-yaml's order."""
    if isinstance(value, dict):
        return {k: sort_keys(value[k]) for k in sorted(value, key=_key)}
    if isinstance(value, list):
        return [sort_keys(item) for item in value]
    return value


def _represent_str(dumper: Any, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else ('"' if needs_quotes(data) else None)
    return dumper.represent_scalar(STR, data, style=style)


def _dumper(base: type) -> type:
    """A PyYAML dumper on ``base`` that decides implicit tags and string styles as go-yaml does."""

    class Dumper(base):
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is yaml.ScalarNode and implicit[0]:
                return resolve(value)
            return super().resolve(kind, value, implicit)

    Dumper.add_representer(str, _represent_str)
    return Dumper


PURE_DUMPER = _dumper(yaml.SafeDumper)
DUMPER = _dumper(yaml.CSafeDumper) if hasattr(yaml, "CSafeDumper") else PURE_DUMPER
"""libyaml's emitter when PyYAML has it (go-yaml v2 is itself a port of libyaml; ~3x faster than PyYAML's
pure-Python emitter, which writes the same text), else the pure-Python one."""


def marshal(value: Any, dumper: type = DUMPER) -> str:
    """What ``sigs.k8s.io/yaml.Marshal`` renders for a JSON-like value (strings, ints, bools, maps, lists)."""
    return yaml.dump(
        sort_keys(value), Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=80
    )


_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML = re.compile("[<>&\u2028\u2029]")


def json_marshal(value: Any) -> str:
    """``encoding/json.Marshal`` of a JSON-like value (maps with string keys)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return _HTML.sub(lambda m: _HTML_ESCAPES[m.group(0)], text)


class Loader(yaml.SafeLoader):
    """Reads YAML like go-yaml v2 types plain scalars (YAML 1.1 booleans incl. y/n, Go number syntax)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            tag = resolve(value)
            return STR if tag == TIMESTAMP else tag
        return super().resolve(kind, value, implicit)


def _construct_bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    return str(loader.construct_scalar(node)) in _TRUE  # type: ignore[arg-type]


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    sign, body = (-1, text[1:]) if text[:1] == "-" else (1, text.removeprefix("+"))
    value = _parse_uint(body)
    if value is None and body.startswith("0b"):  # go-yaml's own "0b" fallback, e.g. 0b+1
        value = _parse_uint(body[2:].removeprefix("+"), 2)
    if value is None:
        raise yaml.constructor.ConstructorError(None, None, f"invalid integer {text!r}", node.start_mark)
    return sign * value


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text in _NAN:
        return float("nan")
    if text in _INF:
        return float("-inf") if text.startswith("-") else float("inf")
    return float(text.replace("_", ""))


Loader.add_constructor(BOOL, _construct_bool)
Loader.add_constructor(INT, _construct_int)
Loader.add_constructor(FLOAT, _construct_float)
