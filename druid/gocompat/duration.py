"""Go durations (``metav1.Duration``): parse like ``time.ParseDuration`` and render like ``Duration.String()``.

etcd-druid renders durations taken from an Etcd spec with ``Duration.String()``, so ``300s`` in the spec
becomes ``--delta-snapshot-period=5m0s`` on the command line; ``go_string`` reproduces that.
"""

from __future__ import annotations

# Pattern the CRDs use for duration fields.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
# Same, but also allowing a bare ``0`` (EtcdCopyBackupsTask waitForFinalSnapshot.timeout).
DURATION_OR_ZERO_PATTERN = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$"

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # micro sign
    "\u03bcs": MICROSECOND,  # Greek small letter mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_LIMIT = 1 << 63


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _leading_int(s: str, i: int, text: str) -> tuple[int, int]:
    x = 0
    while i < len(s) and _is_digit(s[i]):
        if x > _LIMIT // 10:
            raise ValueError(f"invalid duration {text!r}")
        x = x * 10 + int(s[i])
        if x > _LIMIT:
            raise ValueError(f"invalid duration {text!r}")
        i += 1
    return x, i


def _leading_fraction(s: str, i: int) -> tuple[int, float, int]:
    x, scale, overflow = 0, 1.0, False
    while i < len(s) and _is_digit(s[i]):
        if not overflow:
            y = x * 10 + int(s[i])
            if x > (_LIMIT - 1) // 10 or y > _LIMIT:
                overflow = True  # further digits are below nanosecond precision; Go ignores them
            else:
                x, scale = y, scale * 10
        i += 1
    return x, scale, i


def parse_duration(text: str) -> int:
    """Parse a Go duration string into integer nanoseconds; raise ``ValueError`` where Go fails."""
    s, neg = text, False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total, i = 0, 0
    while i < len(s):
        if not (s[i] == "." or _is_digit(s[i])):
            raise ValueError(f"invalid duration {text!r}")
        start = i
        whole, i = _leading_int(s, i, text)
        has_whole = i > start
        fraction, scale, has_fraction = 0, 1.0, False
        if i < len(s) and s[i] == ".":
            start = i + 1
            fraction, scale, i = _leading_fraction(s, start)
            has_fraction = i > start
        if not (has_whole or has_fraction):
            raise ValueError(f"invalid duration {text!r}")
        start = i
        while i < len(s) and s[i] != "." and not _is_digit(s[i]):
            i += 1
        unit_name = s[start:i]
        if not unit_name:
            raise ValueError(f"missing unit in duration {text!r}")
        if unit_name not in _UNITS:
            raise ValueError(f"unknown unit {unit_name!r} in duration {text!r}")
        unit = _UNITS[unit_name]
        if whole > _LIMIT // unit:
            raise ValueError(f"invalid duration {text!r}")
        value = whole * unit
        if fraction > 0:
            value += int(float(fraction) * (float(unit) / scale))
            if value > _LIMIT:
                raise ValueError(f"invalid duration {text!r}")
        total += value
        if total > _LIMIT:
            raise ValueError(f"invalid duration {text!r}")
    if neg:
        return -total
    if total > _LIMIT - 1:
        raise ValueError(f"invalid duration {text!r}")
    return total


def _fraction(value: int, precision: int) -> tuple[str, int]:
    digits = f"{value % 10**precision:0{precision}d}".rstrip("0")
    return ("." + digits if digits else ""), value // 10**precision


def go_string(nanoseconds: int) -> str:
    """Render nanoseconds like Go's ``time.Duration.String()``: ``1h30m0s``, ``5m0s``, ``1.5s``, ``100ms``, ``0s``."""
    u = abs(nanoseconds)
    sign = "-" if nanoseconds < 0 else ""
    if u == 0:
        return "0s"
    if u < SECOND:
        if u < MICROSECOND:
            return f"{sign}{u}ns"
        if u < MILLISECOND:
            frac, whole = _fraction(u, 3)
            return f"{sign}{whole}{frac}\u00b5s"
        frac, whole = _fraction(u, 6)
        return f"{sign}{whole}{frac}ms"
    frac, secs = _fraction(u, 9)
    out = f"{secs % 60}{frac}s"
    minutes = secs // 60
    if minutes:
        out = f"{minutes % 60}m{out}"
        hours = minutes // 60
        if hours:
            out = f"{hours}h{out}"
    return sign + out


def normalize(text: str) -> str:
    """``go_string(parse_duration(text))``: how etcd-druid renders a duration taken from a spec."""
    return go_string(parse_duration(text))


def seconds(text: str) -> float:
    """The duration in (fractional) seconds."""
    return parse_duration(text) / SECOND


def format_seconds(value: float) -> str:
    """Seconds rendered like Go's ``time.Duration.String()`` (rounded to whole nanoseconds): 90 -> ``1m30s``."""
    return go_string(round(value * SECOND))


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration`` (kubectl's AGE): ``45s``, ``2m13s``, ``9m``, ``3h20m``,
    ``2d5h``, ``1y30d``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    mins = s // 60
    if mins < 10:
        return f"{mins}m" + (f"{s % 60}s" if s % 60 else "")
    if mins < 180:
        return f"{mins}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" + (f"{mins % 60}m" if mins % 60 else "")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" + (f"{hours % 24}h" if hours % 24 else "")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" + (f"{days}d" if days else "")
    return f"{hours // 24 // 365}y"
