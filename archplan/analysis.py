"""Walk the IR in topological order and apply each op's rules. Pure: Graph in, Analysis out."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from . import dims, limits
from .errors import Problem, RuleError
from .ir import Graph, Node
from .ops.base import format_shape
from .ops.fields import Field
from .lint import graph_warnings

DTYPE_BYTES = {
    "float32": 4, "float16": 2, "bfloat16": 2, "float64": 8,
    "int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1,
}  # fmt: skip
FLOAT = "float"  # a floating-point tensor: its bytes follow --dtype


def itemsize(dtype: str, float_dtype: str) -> int:
    return DTYPE_BYTES[float_dtype if dtype == FLOAT else dtype]


@dataclass
class LayerResult:
    node: Node
    output_shape: tuple
    params: Any
    buffers: Any
    macs: Any
    field: Field | None  # the input positions each output element depends on (ops/fields.py)
    border: list = field(default_factory=list)  # per spatial axis: input pixels no window reads
    dtype: str = FLOAT  # "float" (follows --dtype) or a torch dtype name (int64 token ids)
    value_range: Any = None  # integer outputs: values are in [0, value_range)

    @property
    def receptive_field(self) -> tuple | None:
        """AxisRF per spatial axis still in the output; None when global, unknown or there are none."""
        f = self.field
        if f is None or f.whole or f.lost or not f.spatial:
            return None
        return f.spatial

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def flops(self) -> Any:
        return 2 * self.macs

    @property
    def elements(self) -> Any:
        return dims.product(self.output_shape)


@dataclass
class Condition:
    """A requirement that depends on symbols: decided by the domain solver."""

    kind: str  # "positive" (x >= 1), "equal" (x == y), "integer" (x is an integer)
    value: Any
    other: Any
    node: Node | None
    text: Any  # the message, or a function that builds it (most conditions never need one)

    @property
    def message(self) -> str:
        return self.text() if callable(self.text) else self.text


@dataclass
class Analysis:
    graph: Graph
    layers: list
    inputs: dict
    outputs: dict
    totals: dict
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    constraints: list = field(default_factory=list)
    minimum_sizes: dict = field(default_factory=dict)
    domains: dict = field(default_factory=dict)  # symbol -> domain.Domain (valid values)
    dtype: str = "float32"
    _by_name: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    def layer(self, name: str) -> LayerResult:
        if len(self._by_name) != len(self.layers):
            self._by_name = {r.name: r for r in self.layers}
        return self._by_name[name]

    def shape_of(self, name: str) -> tuple:
        """The shape of a graph input or an analysed layer's output."""
        return self.inputs[name] if name in self.inputs else self.layer(name).output_shape


class _Recorder:
    """Implements ops.base.Needs."""

    def __init__(self, node: Node | None, conditions: list):
        self.node = node
        self.conditions = conditions

    def equal(self, a, b, message):
        decided = dims.equal(a, b)
        if decided is False:
            raise RuleError(f"{message}: {dims.to_str(a)} vs {dims.to_str(b)}")
        if decided is None:
            self.conditions.append(Condition("equal", a, b, self.node, message))

    def positive(self, x, message):
        """x >= 1; `message` may be a function that builds it (called only if it is needed)."""
        if isinstance(x, int):
            if x < 1:
                raise RuleError(message() if callable(message) else message)
            return
        decided = dims.is_positive(x)
        if decided is False:
            raise RuleError(message() if callable(message) else message)
        if decided is None:
            self.conditions.append(Condition("positive", x, None, self.node, message))

    def divisible(self, x, d, message):
        if isinstance(x, int):
            if x % d:
                raise RuleError(f"{message}: {x} % {d} = {x % d}")
            return
        self.conditions.append(Condition("integer", dims.truediv(x, d), None, self.node, message))


def input_rf(shape: tuple, dtype: str = FLOAT, positions: tuple | None = None) -> Field:
    return Field.of_input(shape, integer=dtype.startswith(("int", "uint")), positions=positions)


def analyze_graph(graph: Graph, dtype: str = "float32", problems: list | None = None) -> Analysis:
    conditions: list[Condition] = []
    errors = list(problems or [])
    shapes = dict(graph.inputs)
    rfs = {
        name: input_rf(shape, graph.input_dtypes.get(name, FLOAT), graph.input_positions.get(name))
        for name, shape in graph.inputs.items()
    }
    types = {name: (graph.input_dtypes.get(name, FLOAT), graph.input_ranges.get(name)) for name in graph.inputs}
    for name, shape in graph.inputs.items():
        recorder = _Recorder(None, conditions)
        for d in shape:
            if isinstance(d, int):
                continue
            if getattr(d, "is_integer", False) is not True:
                conditions.append(Condition("integer", d, None, None, f"input {name} {format_shape(shape)}"))
            recorder.positive(d, f"input {name} must have positive sizes, received {format_shape(shape)}")
    rows = []
    shared = {node.tied: None for node in graph.nodes.values() if node.tied}  # weight shapes of tie targets
    for node in graph.nodes.values():
        if any(s not in shapes for s in node.inputs):
            continue  # an upstream layer failed; its error is already reported
        try:
            ins, fields, in_types = ([m[s] for s in node.inputs] for m in (shapes, rfs, types))
            row = _analyze_node(node, ins, fields, conditions, in_types, shared)
        except RuleError as exc:
            errors.append(Problem(exc.message, layer=node.name, line=node.line, column=node.column, hint=exc.hint))
            continue
        shapes[node.name] = row.output_shape
        rfs[node.name] = row.field
        types[node.name] = (row.dtype, row.value_range)
        rows.append(row)
    result = Analysis(
        graph, rows, dict(graph.inputs), {n: shapes[n] for n in graph.outputs if n in shapes}, {}, errors, dtype=dtype
    )
    if (conditions or graph.symbols) and not result.errors:  # declared bounds are requirements too
        from .domain import solve

        solve(result, conditions)
    result.warnings.extend(graph_warnings(result))
    result.warnings = merge_repeats(sorted(result.warnings, key=_position))
    result.errors = merge_repeats(sorted(result.errors, key=_position))
    result.totals = totals(result)
    return result


def merge_repeats(problems: list) -> list:
    """One problem per YAML position and message: a mistake in a block used 12 times is reported once,
    naming the other uses, not 12 times."""
    groups: dict = {}
    for p in problems:
        key = (p.line, p.column, p.message, p.hint, p.severity)
        groups.setdefault(key, []).append(p)
    out = []
    for same in groups.values():
        first, others = same[0], list(dict.fromkeys(p.layer for p in same[1:] if p.layer != same[0].layer))
        if first.line is None or len(same) < 2:
            out.extend(same)
            continue
        if None in others or not others:  # the same message twice for one layer: once is enough
            out.append(first)
            continue
        named = ", ".join(others[:2]) + (", ..." if len(others) > 2 else "")
        out.append(replace(first, message=f"{first.message} (the same in {len(others)} more uses: {named})"))
    return out


def _position(problem: Problem) -> tuple:
    return (problem.line or 0, problem.column or 0)


def _analyze_node(
    node: Node, ins: list, in_rfs: list, conditions: list, types: list | None = None, shared: dict | None = None
) -> LayerResult:
    op, a = node.op, node.args
    recorder = _Recorder(node, conditions)
    types = types if types is not None else [(FLOAT, None)] * len(ins)
    for (dtype, _), name in zip(types, node.inputs):
        if dtype != FLOAT and dtype not in ("float16", "bfloat16", "float64") and not op.integer_inputs:
            raise RuleError(
                f"{op.name} expects floating-point inputs, received {name} of dtype {dtype}",
                hint="token ids go through an embedding first",
            )
    op.check_inputs(a, ins, recorder)
    out = tuple(dims.normalize(d) for d in op.output_shape(a, ins, recorder))
    _check_nesting(out)
    for i, d in enumerate(out):
        if not isinstance(d, int) or d < 1:  # the message is built only when it is needed
            recorder.positive(d, lambda d=d, i=i: _too_small(op, a, ins, d, i))
        if getattr(d, "is_integer", True) is not True:  # a size written H / 16: a whole number only for some H
            recorder.divisible(d, 1, f"output size {dims.to_str(d)} at dim {i} must be a whole number")
    rf = op.receptive_field(a, in_rfs, ins) if any(r is not None for r in in_rfs) else None
    if rf is not None and len(rf.axes) != len(out):  # a rule that does not follow this rank
        rf = rf.unknown(f"{op.name} changes the rank in a way its receptive-field rule does not follow", len(out))
    border = [dims.normalize(loss) for loss in op.border_loss(a, ins)]
    dtype, value_range = op.output_type(a, types, ins, recorder)
    params = op.param_count(a, ins)
    if shared is not None and node.name in shared:
        shared[node.name] = op.weight_shape(a, ins)
    if shared is not None and node.tied:
        params -= dims.product(_tied_weight(node, ins, shared, recorder))
    return LayerResult(
        node,
        out,
        dims.normalize(params),
        dims.normalize(op.buffer_count(a, ins)),
        dims.normalize(op.macs(a, ins, out)),
        rf,
        border,
        dtype,
        dims.normalize(value_range) if value_range is not None else None,
    )


def _check_nesting(shape: tuple) -> None:
    for i, d in enumerate(shape):
        if not isinstance(d, int) and dims.is_expr(d) and limits.nesting(d) > limits.MAX_NESTING:
            name = min(dims.symbol_names(d))
            raise RuleError(
                f"output size at dim {i} nests more than {limits.MAX_NESTING} integer divisions, Min or Max: "
                "too deep to analyse symbolically",
                hint=f"check concrete sizes with --set {name}=...",
            )


def _tied_weight(node: Node, ins: list, shared: dict, need) -> tuple:
    """The weight this layer shares (`weight: wte`): it must exist on both layers with the same shape."""
    own, theirs = node.op.weight_shape(node.args, ins), shared.get(node.tied)
    owner = node.tied.rsplit(".", 1)[-1]
    if own is None:
        raise RuleError(f"weight: {node.op.name} has no weight to share with {owner}")
    if theirs is None:
        raise RuleError(f"weight: {owner} has no weight to share")
    message = f"weight: {owner}'s weight is {format_shape(theirs)}, this layer's is {format_shape(own)}"
    if len(own) != len(theirs) or any(dims.equal(x, y) is False for x, y in zip(own, theirs)):
        raise RuleError(message, hint="a Linear(in, out) has the weight [out, in] of an Embedding(out, in)")
    for x, y in zip(own, theirs):
        if dims.equal(x, y) is None:
            need.equal(x, y, message)
    return own


def _too_small(op, a, ins: list, d, i: int) -> str:
    why = f"the input {format_shape(ins[0])} is too small for {op.describe(a)}" if ins else "sizes must be >= 1"
    return f"output size {dims.to_str(d)} at dim {i} is not positive: {why}"


def totals(result: Analysis) -> dict:
    """Sums over the layers; a symbolic sum is built once from all its terms (adding one term at a time
    re-simplifies the growing sum at every step: quadratic on deep nets)."""
    params, buffers, macs, elements, nbytes = [], [], [], [], []
    for row in result.layers:
        params.append(row.params)
        buffers.append(row.buffers)
        macs.append(row.macs)
        if row.node.inputs:  # a learned tensor (no input) is a weight, counted in params, not an activation
            elements.append(row.elements)
            nbytes.append(row.elements * itemsize(row.dtype, result.dtype))
    for name, shape in result.inputs.items():
        elements.append(dims.product(shape))
        nbytes.append(elements[-1] * itemsize(result.graph.input_dtypes.get(name, FLOAT), result.dtype))
    params, buffers, macs, elements, nbytes = (dims.total(t) for t in (params, buffers, macs, elements, nbytes))
    return {
        "params": params,
        "trainable_params": params,
        "buffers": buffers,
        "macs": macs,
        "flops": 2 * macs,
        "activation_elements": elements,
        "activation_bytes": nbytes,
    }
