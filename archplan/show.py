"""How values read in messages: as YAML would write them, bounded in length whatever their size."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from . import dims

_PLAIN_TEXT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
_YAML_WORDS = frozenset("true false yes no on off null y n".split())


def shown(value: Any, limit: int = 60) -> str:
    """A value as it reads in YAML, cut at about `limit` characters: 65/2, [1, 2], {a: 1}, 'text', true, null.

    Never a Python repr of a wrapper type (Fraction(65, 2), LList([...])); bounded in time and length
    whatever the value's size or nesting.
    """
    budget = [limit + 1]
    parts: list[str] = []
    _show(value, parts, budget, top=True)
    text = "".join(parts)
    return text if len(text) <= limit else text[: max(limit - 3, 1)] + "..."


def listed(names, limit: int = 10) -> str:
    """At most `limit` names, comma-separated, then how many more: 'a, b, c and 12 more'."""
    names = list(names)
    head = ", ".join(shown(n, 40) if not isinstance(n, str) else n[:60] for n in names[:limit])
    return f"{head} and {len(names) - limit} more" if len(names) > limit else head or "none"


def _show(value: Any, parts: list, budget: list, top: bool = False) -> None:
    if budget[0] <= 0:
        return
    if isinstance(value, (list, tuple)):
        _emit("[", parts, budget)
        for i, item in enumerate(value):
            if budget[0] <= 0:
                return
            if i:
                _emit(", ", parts, budget)
            _show(item, parts, budget)
        _emit("]", parts, budget)
    elif isinstance(value, dict):
        _emit("{", parts, budget)
        for i, (key, item) in enumerate(value.items()):
            if budget[0] <= 0:
                return
            _emit(", " if i else "", parts, budget)
            _show(key, parts, budget)
            _emit(": ", parts, budget)
            _show(item, parts, budget)
        _emit("}", parts, budget)
    else:
        _emit(_atom(value, budget[0], top), parts, budget)


def _emit(text: str, parts: list, budget: list) -> None:
    parts.append(text)
    budget[0] -= len(text)


def _atom(value: Any, room: int, top: bool) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _int_text(value)
    if isinstance(value, Fraction):
        return f"{_int_text(value.numerator)}/{_int_text(value.denominator)}"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        text = value[: room + 1]
        if not top and _PLAIN_TEXT.match(text) and text.lower() not in _YAML_WORDS:
            return text
        return repr(text) if len(value) <= room else repr(text)[:-1]
    if dims.is_expr(value):
        return dims.to_str(value)[: room + 1]
    return str(value)[: room + 1]


def _int_text(value: int) -> str:
    bits = abs(value).bit_length()
    if bits <= 200:
        return str(value)
    return f"{'-' if value < 0 else ''}<an integer of {int(bits * 0.30103) + 1} digits>"


def _kind(value: Any) -> str:
    """What a non-number is, for 'needs numbers' messages."""
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the text {shown(value)}"
    if isinstance(value, (list, tuple)):
        return f"the list {shown(value)}"
    if isinstance(value, dict):
        return f"the mapping {shown(value)}"
    return shown(value)
