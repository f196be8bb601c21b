"""Value checks for params.yaml entries: each takes (dotted key, value) and returns the value or raises a
`ConfigError` of one line that names the key, the value and what is allowed.

Booleans are not integers here and integers are not booleans (`epochs: true` and `amp: 1` both fail), and
YAML's reading of `1e-3` as text (YAML 1.1 wants a dot: `1.0e-3`) gets its own hint.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[str, Any], Any]

_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(ValueError):
    """params.yaml or a notebook parameter is wrong; the message names the key."""


def fail(key: str, value: Any, allowed: str) -> None:
    hint = ""
    if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        mantissa, _, exponent = value.strip().lower().partition("e")
        fixed = (mantissa if "." in mantissa else f"{mantissa}.0") + (f"e{exponent}" if exponent else "")
        hint = f" (YAML reads {value} as text: write {fixed})"
    raise ConfigError(f"{key} must be {allowed}, got {value!r}{hint}")


def _bound_text(minimum, maximum, above, below) -> str:
    parts = [f">= {minimum}" if minimum is not None else "", f"> {above}" if above is not None else "",
             f"<= {maximum}" if maximum is not None else "", f"< {below}" if below is not None else ""]
    return " and ".join(p for p in parts if p)


def _in_bounds(value, minimum, maximum, above, below) -> bool:
    return ((minimum is None or value >= minimum) and (maximum is None or value <= maximum)
            and (above is None or value > above) and (below is None or value < below))


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    """A whole number (not a bool, not 2.0), optionally bounded."""
    def check(key, value):
        if isinstance(value, bool) or not isinstance(value, int):
            fail(key, value, "an integer" + (f" {_bound_text(minimum, maximum, None, None)}" if minimum is not None
                                             or maximum is not None else ""))
        if not _in_bounds(value, minimum, maximum, None, None):
            fail(key, value, _bound_text(minimum, maximum, None, None))
        return value
    return check


def number(minimum: float | None = None, maximum: float | None = None, above: float | None = None,
           below: float | None = None) -> Check:
    """A finite int or float (kept as written), optionally bounded."""
    bounds = _bound_text(minimum, maximum, above, below)

    def check(key, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail(key, value, "a finite number" + (f" {bounds}" if bounds else ""))
        if not _in_bounds(value, minimum, maximum, above, below):
            fail(key, value, bounds)
        return value
    return check


def boolean() -> Check:
    def check(key, value):
        if not isinstance(value, bool):
            fail(key, value, "true or false")
        return value
    return check


def text() -> Check:
    """A non-empty string."""
    def check(key, value):
        if not isinstance(value, str) or not value:
            fail(key, value, "a non-empty string")
        return value
    return check


def choice(*options, name: str | None = None) -> Check:
    """One of the given values (strings or ints; a bool never equals an int here)."""
    def check(key, value):
        if isinstance(value, bool) or value not in options or type(value) not in {type(o) for o in options}:
            raise ConfigError(f"{key} {value!r} is not one of {', '.join(map(str, options))}")
        return value
    return check


def optional(inner: Check) -> Check:
    """`null` (None) or what `inner` accepts."""
    def check(key, value):
        return None if value is None else inner(key, value)
    return check


def list_of(item: Check, what: str, convert: Callable[[Any], Any] = lambda v: v) -> Check:
    """A non-empty YAML list of distinct items -> a tuple; `what` describes one item ('integers >= 0')."""
    def check(key, value):
        allowed = f"a non-empty list of distinct {what}"
        if not isinstance(value, list) or not value:
            fail(key, value, allowed)
        items = []
        for v in value:
            try:
                items.append(convert(item(key, v)))
            except (ConfigError, ValueError):
                fail(key, value, allowed)
        if len(set(items)) != len(items):
            fail(key, value, allowed)
        return tuple(items)
    return check


def mapping_of(inner: Check, what: str) -> Check:
    """A mapping of names (corpus settings, presets) to values `inner` accepts -> a dict."""
    def check(key, value):
        if not isinstance(value, Mapping) or not value:
            fail(key, value, f"a mapping of {what}")
        return {str(k): inner(f"{key}.{k}", v) for k, v in value.items()}
    return check


def one_or_per_corpus(inner: Check, what: str) -> Check:
    """One value for every corpus setting, or a mapping of corpus setting -> value."""
    def check(key, value):
        if isinstance(value, Mapping):
            return mapping_of(inner, what)(key, value)
        try:
            return inner(key, value)
        except ConfigError:
            fail(key, value, f"{what}, or one of them per corpus setting")
    return check
