"""Formatting only: an Analysis as a table, JSON (a stable contract) or Markdown."""

from __future__ import annotations

import json
from fractions import Fraction

from . import dims

COLUMNS = ("Layer", "Op", "Output shape", "Params", "MACs", "RF")


def figure(value) -> int | str:
    """JSON form of a figure: an int when concrete, else a string sympy.sympify parses."""
    number = dims.as_int(value)
    if number is not None:
        return number
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    from .symbols import to_parsable

    return to_parsable(value)


def human(value) -> str:
    number = dims.as_int(value)
    if number is not None:
        return f"{number:,}"
    return dims.to_str(value)


def short(value) -> str:
    """4,089,184,256 -> 4.09G (for the totals line)."""
    number = dims.as_int(value)
    if number is None:
        return dims.to_str(value)
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(number) >= scale:
            return f"{number / scale:.2f}{unit}"
    return str(number)


def shape_text(shape) -> str:
    return "[" + ", ".join(dims.to_str(d) for d in shape) + "]"


def rf_text(rf) -> str:
    if rf is None:
        return "-"
    sizes = [dims.to_str(a.size) for a in rf]
    return "x".join(sizes) if len(set(sizes)) > 1 else sizes[0]


def _rf_json(rf):
    if rf is None:
        return None
    return {
        "size": [figure(a.size) for a in rf],
        "stride": [figure(a.stride) for a in rf],
        "padding": [figure(a.padding) for a in rf],
    }


def to_json(result) -> dict:
    graph = result.graph
    return {
        "name": graph.name,
        "ok": result.ok,
        "inputs": {k: [figure(d) for d in v] for k, v in result.inputs.items()},
        "outputs": {k: [figure(d) for d in v] for k, v in result.outputs.items()},
        "totals": {
            k: figure(result.totals[k])
            for k in ("params", "trainable_params", "buffers", "macs", "flops", "activation_bytes")
        },
        "layers": [
            {
                "name": row.name,
                "op": row.node.op.name,
                "inputs": list(row.node.inputs),
                "output_shape": [figure(d) for d in row.output_shape],
                "params": figure(row.params),
                "buffers": figure(row.buffers),
                "macs": figure(row.macs),
                "flops": figure(row.flops),
                "activation_bytes": figure(row.elements * _dtype_bytes(result)),
                "receptive_field": _rf_json(row.receptive_field),
                "line": row.node.line,
            }
            for row in result.layers
        ],
        "constraints": list(result.constraints),
        "minimum_sizes": dict(result.minimum_sizes),
        "dtype": result.dtype,
        "errors": [p.to_json() for p in result.errors],
        "warnings": [p.to_json() for p in result.warnings],
    }


def _dtype_bytes(result) -> int:
    from .analysis import DTYPE_BYTES

    return DTYPE_BYTES[result.dtype]


def rows(result) -> list[tuple]:
    out = []
    for row in result.layers:
        node = row.node
        depth = len([s for s in node.scopes if s.index is not None or s.repeat is None])
        out.append(
            (
                "  " * depth + node.name,
                node.op.describe(node.args),
                shape_text(row.output_shape),
                human(row.params),
                human(row.macs),
                rf_text(row.receptive_field),
            )
        )
    return out


def summary_lines(result) -> list[str]:
    t = result.totals
    lines = [
        "Inputs: " + ", ".join(f"{k} {shape_text(v)}" for k, v in result.inputs.items()),
        "Outputs: " + ", ".join(f"{k} {shape_text(v)}" for k, v in result.outputs.items()),
        f"Total params: {human(t['params'])} (trainable {human(t['trainable_params'])}); "
        f"buffers: {human(t['buffers'])}",
        f"MACs: {human(t['macs'])}"
        + (f" ({short(t['macs'])})" if dims.as_int(t["macs"]) else "")
        + f"; FLOPs: {short(t['flops'])}",
        f"Activations: {human(t['activation_elements'])} elements, {_bytes(t['activation_bytes'])} at {result.dtype}",
    ]
    return lines


def _bytes(value) -> str:
    number = dims.as_int(value)
    if number is None:
        return dims.to_str(value) + " bytes"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if number >= scale:
            return f"{number / scale:.2f} {unit}"
    return f"{number} bytes"


def problem_lines(result, path: str) -> list[str]:
    lines = []
    if result.constraints:
        lines.append("Valid when: " + " and ".join(result.constraints))
    lines += [p.format(path) for p in result.warnings]
    lines += [p.format(path) for p in result.errors]
    return lines


def table(result, path: str = "") -> str:
    body = rows(result)
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(COLUMNS)]
    aligns = ("<", "<", "<", ">", ">", ">")

    def fmt(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths)).rstrip()

    rule = "-" * len(fmt(COLUMNS))
    lines = [f"{result.graph.name or path}", rule, fmt(COLUMNS), rule]
    lines += [fmt(r) for r in body]
    lines += [rule] + summary_lines(result) + problem_lines(result, path)
    status = "OK" if result.ok else f"{len(result.errors)} error(s)"
    lines.append(f"{status}, {len(result.warnings)} warning(s)")
    return "\n".join(lines) + "\n"


def markdown(result, path: str = "") -> str:
    lines = [
        f"## {result.graph.name or path}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(("---", "---", "---", "---:", "---:", "---:")) + "|",
    ]
    for r in rows(result):
        cells = [r[0].strip()] + list(r[1:])
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    lines += [f"- {line}" for line in summary_lines(result)]
    extra = problem_lines(result, path)
    if extra:
        lines.append("")
        lines += [f"- {line}" for line in extra]
    return "\n".join(lines) + "\n"


def render(result, fmt: str, path: str = "") -> str:
    if fmt == "json":
        return json.dumps(to_json(result), indent=2) + "\n"
    if fmt == "markdown":
        return markdown(result, path)
    return table(result, path)
