"""A readable list of the registered ops and their arguments (for `archplan ops`)."""

from __future__ import annotations

from .ops import all_ops
from .ops.base import normalize_name
from .ops.params import MISSING


def _default(param) -> str:
    if param.default is MISSING:
        return "required"
    value = param.default
    if isinstance(value, tuple) and len(set(value)) == 1:
        value = value[0]
    return f"default {value!r}" if value is not None else "optional"


def describe(name: str | None = None) -> tuple[str, bool]:
    """Text for one op (or all of them); False when the name is unknown."""
    ops = all_ops()
    if name is not None:
        wanted = [
            cls
            for cls in ops.values()
            if normalize_name(name) in {normalize_name(cls.name), *(normalize_name(a) for a in cls.aliases)}
        ]
        if not wanted:
            from .ops import closest

            close = closest(name)
            return f"unknown op {name!r}" + (f"; did you mean {close!r}?" if close else "") + "\n", False
        cls = wanted[0]
        lines = [f"{cls.name} ({cls.family})" + (f", also: {', '.join(cls.aliases)}" if cls.aliases else "")]
        for key, param in cls.params.items():
            doc = f": {param.doc}" if param.doc else ""
            lines.append(f"  {key:22s} {type(param).__name__.lower():8s} {_default(param)}{doc}")
        for key, source in cls.inferred.items():
            lines.append(f"  {key:22s} {'inferred':8s} from {source}; checked when given")
        return "\n".join(lines) + "\n", True
    by_family: dict[str, list[str]] = {}
    for cls in sorted(ops.values(), key=lambda c: c.name):
        by_family.setdefault(cls.family, []).append(cls.name)
    lines = [f"{family:10s} {', '.join(names)}" for family, names in sorted(by_family.items())]
    return "\n".join(lines) + "\n\narchplan ops NAME shows an op's arguments.\n", True
