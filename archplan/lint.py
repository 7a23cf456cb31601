"""Warnings about nets that work but probably not as intended."""

from __future__ import annotations

from . import dims
from .errors import Problem
from .ops.base import format_shape

_AXES = {1: ("",), 2: ("rows", "columns"), 3: ("slices", "rows", "columns")}


def _warn(row, message: str, hint: str | None = None) -> Problem:
    node = row.node
    return Problem(message, layer=node.name, line=node.line, column=node.column, severity="warning", hint=hint)


def graph_warnings(result) -> list[Problem]:
    """Warnings about single layers always; whole-graph judgements (coverage, dead layers, unread inputs)
    only when every layer was analysed: a failed layer would make them follow-on noise."""
    out = border_warnings(result) + resolution_warnings(result) + alignment_warnings(result)
    if not result.errors:
        out += coverage_warnings(result) + dead_layer_warnings(result) + unread_input_warnings(result)
    return out + position_warnings(result)


def border_warnings(result) -> list[Problem]:
    out = []
    for row in result.layers:
        losses = [loss if isinstance(loss, int) else 0 for loss in row.border]
        if not any(losses):
            continue
        names = _AXES.get(len(losses), ("",) * len(losses))
        parts = [f"{loss} {name}".strip() for loss, name in zip(losses, names) if loss]
        size = "x".join(dims.to_str(d) for d in _input_shape(result, row)[2:])
        out.append(
            _warn(
                row,
                f"{row.node.op.describe(row.node.args)} does not tile its {size} input: the last "
                f"{' and '.join(parts)} are never read",
                "pad the input or pick a size the windows divide, e.g. with ceil_mode or padding",
            )
        )
    return out


def _input_shape(result, row) -> tuple:
    return result.shape_of(row.node.inputs[0]) if row.node.inputs else ()


def resolution_warnings(result) -> list[Problem]:
    """Layers fed by a flattened spatial map whose parameters scale with it: they depend on the input size."""
    mixed: dict[str, tuple] = {}
    fields = {r.name: r.field for r in result.layers}
    out = []
    for row in result.layers:
        node = row.node
        carried = next((mixed[s] for s in node.inputs if s in mixed), None)
        flattened = node.op.flattened_spatial(node.args, _input_shape(result, row))
        if flattened and _holds_positions(fields.get(node.inputs[0], False)):
            mixed[node.name] = flattened
        elif carried is not None and node.op.keeps_features:
            mixed[node.name] = carried
        elif carried is not None and node.op.weighs_features:
            grid = "x".join(
                dims.to_str(d) if dims.as_int(d) is not None or dims.to_str(d).isidentifier() else f"({dims.to_str(d)})"
                for d in carried
            )
            count = f"{row.params:,}" if isinstance(row.params, int) else dims.to_str(row.params)
            out.append(
                _warn(
                    row,
                    f"its {count} parameters depend on the input resolution "
                    f"(in_features includes a flattened {grid} spatial map)",
                    "put a global pooling layer (adaptiveavgpool2d, output_size: 1) before flatten to make "
                    "the net resolution independent",
                )
            )
    return out


def _holds_positions(field) -> bool:
    """Whether the dims a flatten merges can be positions: not after a Linear mixed them all away
    (attention heads split from features are no spatial map). False (a graph input): by its rank."""
    if field is False or field is None or field.lost:
        return True
    return any(axis is not None for axis in field.axes[2:])


def alignment_warnings(result) -> list[Problem]:
    by_name = {r.name: r for r in result.layers}
    out = []
    for row in result.layers:
        if row.node.op.family != "merge" or len(row.node.inputs) < 2:
            continue
        fields = [(s, by_name[s].receptive_field if s in by_name else None) for s in row.node.inputs]
        if any(f is None for _, f in fields):
            continue
        for axis in range(len(fields[0][1])):
            strides = {dims.to_str(f[axis].stride) for _, f in fields}
            centers = [f[axis].center for _, f in fields]
            concrete = all(dims.is_concrete(c) for c in centers)
            spread = max(centers) - min(centers) if concrete else 0
            if spread >= 1 and _shared_edge([f[axis] for _, f in fields]):
                spread = 0  # causal paths (WaveNet's residual): each ends at the same input sample
            if len(strides) > 1 or spread >= 1:
                detail = ", ".join(
                    f"{s}: stride {dims.to_str(f[axis].stride)}, offset {dims.to_str(f[axis].center)}"
                    for s, f in fields
                )
                out.append(
                    _warn(
                        row,
                        f"its input paths are not aligned along spatial axis {axis} ({detail})",
                        "check paddings and strides of the branches",
                    )
                )
                break
    return out


def _shared_edge(axes: list) -> bool:
    """Whether the fields all start, or all end, at the same input position (a causal or anti-causal
    alignment, intended, unlike a crop that shifts one path)."""
    firsts = {-a.padding for a in axes}
    lasts = {a.size - 1 - a.padding for a in axes}
    if not all(dims.is_concrete(v) for v in (*firsts, *lasts)):
        return False
    return len(firsts) == 1 or len(lasts) == 1


def coverage_warnings(result) -> list[Problem]:
    """An output whose elements each see only part of the input (a segmentation head with a small field).
    Outputs that depend on every input position (after global pooling, a Linear over flattened positions,
    a squeeze-and-excitation gate, attention) are global and fine."""
    out = []
    for row in result.layers:
        field = row.field
        if row.name not in result.graph.outputs or field is None or field.whole or field.lost:
            continue
        axes = field.spatial or (field.tokens.axes if field.tokens else ())
        extent = [_concrete(d, result) for d in field.extent]
        sizes = [dims.as_int(a.size) for a in axes]
        if len(sizes) != len(extent) or None in sizes or None in extent or all(f >= s for f, s in zip(sizes, extent)):
            continue
        seen, whole = "x".join(map(str, sizes)), "x".join(map(str, extent))
        out.append(
            _warn(
                row,
                f"each output element sees a {seen} window of the {whole} input: no output sees the whole input",
                "add layers, larger strides or dilation, or a global branch, if global context matters",
            )
        )
    return out


def _concrete(d, result):
    number = dims.as_int(d)
    if number is not None:
        return number
    defaults = {name: info.default for name, info in result.graph.symbols.items() if info.default is not None}
    return dims.as_int(dims.at(d, defaults)) if defaults else None


def dead_layer_warnings(result) -> list[Problem]:
    graph = result.graph
    alive, stack = set(), list(graph.outputs)
    while stack:
        name = stack.pop()
        if name in alive or name not in graph.nodes:
            continue
        alive.add(name)
        stack.extend(graph.nodes[name].inputs)
    return [
        _warn(row, "does not contribute to any output", "remove it or list it in outputs")
        for row in result.layers
        if row.name not in alive
    ]


def position_warnings(result) -> list[Problem]:
    """A float input of rank 3 or more taken as [N, C, *positions] (the default) that a layer reads with its
    last dim as features ([N, L, E] into a Linear): its receptive fields would follow the wrong dim."""
    graph, out = result.graph, []
    undeclared = [
        (name, shape)
        for name, shape in graph.inputs.items()
        if len(shape) >= 3
        and name not in graph.input_positions
        and not graph.input_dtypes.get(name, "float").startswith(("int", "uint", "bool"))
    ]
    users = graph.consumers() if undeclared else {}
    for name, shape in undeclared:
        readers = [graph.nodes[n] for n in users[name] if graph.nodes[n].op.features_last]
        if readers:
            node, shown = readers[0], format_shape(shape)
            out.append(
                Problem(
                    f"input {name} {shown} is read as [N, C, *positions] (dim 1 channels) for receptive "
                    f"fields, but {node.name} ({node.op.describe(node.args)}) reads its last dim as features",
                    line=graph.input_lines.get(name),
                    severity="warning",
                    hint=f"if dim 1 is the sequence, declare it: {name}: {{shape: {shown}, positions: [1]}}",
                )
            )
    return out


def unread_input_warnings(result) -> list[Problem]:
    read = {source for node in result.graph.nodes.values() for source in node.inputs} | set(result.graph.outputs)
    lines = result.graph.input_lines
    return [
        Problem(
            f"input {name} is never read by any layer",
            line=lines.get(name),
            severity="warning",
            hint="remove it, or read it with `in:`",
        )
        for name in result.graph.inputs
        if name not in read
    ]
