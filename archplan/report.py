"""Formatting only: an Analysis as a table, JSON (a stable contract) or Markdown."""

from __future__ import annotations

import json
import re

from .analysis import FLOAT, itemsize
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
    return dims.parsable(value)


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


def amount(value) -> str:
    """A count in short form: 4.09G, or 118.01M·N / 640·N when it is a number times symbols (one style for all)."""
    number = dims.as_int(value)
    if number is not None:
        return short(number)
    term = dims.monomial(value)
    if term is not None and term[0] not in (1, -1):
        return f"{short(term[0])}·{term[1]}"
    return dims.to_str(value)


def _is_monomial(value) -> bool:
    return dims.as_int(value) is not None or dims.monomial(value) is not None


def shape_text(shape) -> str:
    return "[" + ", ".join(dims.to_str(d) for d in shape) + "]"


def _sizes_text(axes) -> str:
    sizes = [dims.to_str(a.size) for a in axes]
    return "x".join(sizes) if len(set(sizes)) > 1 else sizes[0]


def rf_text(field) -> str:
    """3x3, 'global' (every input position), '16 tokens' (flattened positions), '?' (not followed), '-'."""
    if field is None or not (field.whole or field.lost or field.spatial or field.tokens):
        return "-"
    if field.whole:
        return "global"
    if field.lost:
        return "?"
    if field.spatial:
        return _sizes_text(field.spatial)
    return f"{_sizes_text(field.tokens.axes)} tokens"


def _rf_json(field):
    """JSON of a layer's receptive field: per spatial axis size/stride/padding; a global field is the input's
    size with "global": true; flattened positions (tokens) carry "tokens": true; not followed: None."""
    if field is None or field.lost:
        return None
    if field.whole:
        return {"size": [figure(d) for d in field.extent], "global": True}
    axes = field.spatial or (field.tokens.axes if field.tokens else ())
    if not axes:
        return None
    out = {
        "size": [figure(a.size) for a in axes],
        "stride": [figure(a.stride) for a in axes],
        "padding": [figure(a.padding) for a in axes],
        "global": False,
    }
    return out if field.spatial else {**out, "tokens": True}


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
                "activation_bytes": figure(row.elements * itemsize(row.dtype, result.dtype)),
                **({"dtype": row.dtype} if row.dtype != FLOAT else {}),
                "receptive_field": _rf_json(row.field),
                **({"receptive_field_unknown": row.field.lost} if row.field is not None and row.field.lost else {}),
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


def _activation_bytes(result) -> str:
    elements, nbytes = result.totals["activation_elements"], result.totals["activation_bytes"]
    each = itemsize(FLOAT, result.dtype)
    if _is_monomial(elements) or dims.equal(nbytes, each * elements) is not True:  # mixed dtypes: the sum
        return f"{_bytes(nbytes)} at {result.dtype}"
    return f"{each} bytes each at {result.dtype}"


def rows(result) -> list[tuple]:
    out = []
    for row in result.layers:
        node = row.node
        depth = len([s for s in node.scopes if s.index is not None or s.repeat is None])
        out.append(
            (
                "  " * depth + node.name,
                node.op.describe(node.args) + (f", weight of {node.tied}" if node.tied else ""),
                shape_text(row.output_shape),
                human(row.params),
                human(row.macs),
                rf_text(row.field),
            )
        )
    return out


def summary_lines(result) -> list[str]:
    t = result.totals
    missing = [name for name in result.graph.outputs if name not in result.outputs]
    outputs = [f"{k} {shape_text(v)}" for k, v in result.outputs.items()]
    outputs += [f"{name} (not analysed: an error upstream)" for name in missing]
    macs, flops = t["macs"], t["flops"]
    if _is_monomial(macs):  # 2,293,000 or 2293000*N: exact, then short
        costs = f"MACs: {human(macs)} ({amount(macs)}); FLOPs: {human(flops)} ({amount(flops)})"
    else:  # a longer formula is written once: FLOPs are twice it
        costs = f"MACs: {human(macs)}; FLOPs: 2 x MACs"
    return [
        "Inputs: " + ", ".join(f"{k} {shape_text(v)}" for k, v in result.inputs.items()),
        "Outputs: " + (", ".join(outputs) or "none"),
        f"Total params: {human(t['params'])} (trainable {human(t['trainable_params'])}); "
        f"buffers: {human(t['buffers'])}",
        costs,
        f"Activations: {human(t['activation_elements'])} elements, " + _activation_bytes(result),
    ]


def _bytes(value) -> str:
    number = dims.as_int(value)
    if number is None:
        term = dims.monomial(value)
        if term is not None and term[0] > 1:  # 98696*N bytes -> 96.38 KiB·N
            return f"{_bytes(term[0])}·{term[1]}"
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


def _parsed(result) -> bool:
    """False when the file never became a graph (YAML or structure errors): then only the problems are shown."""
    return bool(result.layers) or not result.errors


def _status(result) -> str:
    return f"{'OK' if result.ok else f'{len(result.errors)} error(s)'}, {len(result.warnings)} warning(s)"


def table(result, path: str = "") -> str:
    if not _parsed(result):
        return "\n".join([*problem_lines(result, path), _status(result)]) + "\n"
    body = rows(result)
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(COLUMNS)]
    aligns = ("<", "<", "<", ">", ">", ">")

    def fmt(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths)).rstrip()

    rule = "-" * len(fmt(COLUMNS))
    lines = [f"{result.graph.name or path}", rule, fmt(COLUMNS), rule]
    lines += [fmt(r) for r in body]
    lines += [rule] + summary_lines(result) + problem_lines(result, path)
    lines.append(_status(result))
    return "\n".join(lines) + "\n"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_<>|])")


def md(text: str) -> str:
    """Text shown literally by Markdown renderers: emphasis, code, links, tables and HTML characters escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def markdown(result, path: str = "") -> str:
    if not _parsed(result):
        return "\n".join([*(f"- {md(line)}" for line in problem_lines(result, path)), "", md(_status(result))]) + "\n"
    lines = [
        f"## {md(result.graph.name or path)}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(("---", "---", "---", "---:", "---:", "---:")) + "|",
    ]
    for r in rows(result):
        cells = [r[0].strip()] + list(r[1:])
        lines.append("| " + " | ".join(md(c) for c in cells) + " |")
    lines.append("")
    lines += [f"- {md(line)}" for line in summary_lines(result)]
    extra = problem_lines(result, path)
    if extra:
        lines.append("")
        lines += [f"- {md(line)}" for line in extra]
    lines += ["", md(_status(result))]
    return "\n".join(lines) + "\n"


def render(result, fmt: str, path: str = "") -> str:
    if fmt == "json":
        return json.dumps(to_json(result), indent=2) + "\n"
    if fmt == "markdown":
        return markdown(result, path)
    return table(result, path)
