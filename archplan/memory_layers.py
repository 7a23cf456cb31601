"""The layers of archplan/memory.py's plan: each analysed layer with its tensors' sizes and dtypes, whether it
requires grad, what autocast does to it, and its op's Memory statement (ops/base.py) in training and eval mode.
Pure; no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import dims
from .analysis import DTYPE_BYTES, FLOAT
from .ops.base import Mode

AMP_DTYPES = {"off": None, "bf16": "bfloat16", "fp16": "float16"}
FLOATS = ("float64", "float32", "bfloat16", "float16")


@dataclass
class Layer:
    """One analysed layer as the walks see it."""

    index: int
    name: str
    inputs: tuple
    grads: tuple  # per input: requires grad
    requires_grad: bool
    in_bytes: tuple
    out_bytes: Any
    compute: str  # dtype of the op's arithmetic ("float" tensors it makes)
    casts: dict  # input index -> bytes of the copy autocast casts it to
    train: Any  # ops.base.Memory in training mode
    eval: Any  # ... in eval mode
    weights: tuple  # shapes of the parameter tensors
    weight_bytes: tuple  # fp32 bytes of each
    copies: tuple  # bytes of autocast's low-precision copy of each (empty without one)
    on_path: bool = True  # an output depends on it (else autograd never runs its backward)
    accumulated: tuple = ()  # indices of weights a later layer shares (`weight: wte`): its gradient came first

    def weight_index(self, shape: tuple) -> int:
        return self.weights.index(tuple(shape)) if tuple(shape) in self.weights else 0


def build_layers(result, options) -> list[Layer]:
    """options: memory.Options (amp, device)."""
    graph = result.graph
    low = AMP_DTYPES[options.amp]
    general = general_nodes(result)
    shared = {node.tied for node in graph.nodes.values() if node.tied}  # layers whose .weight a later one ties
    dtype_of = {name: dtype_name(graph.input_dtypes.get(name, FLOAT)) for name in graph.inputs}
    grad_of = {name: False for name in graph.inputs}
    layers = []
    for row in result.layers:
        node = row.node
        ins = [result.shape_of(s) for s in node.inputs]
        grads = tuple(grad_of[s] for s in node.inputs)
        weighted = dims.as_int(row.params) != 0  # symbolic counts are not 0
        requires = any(grads) or weighted
        out = row.output_shape
        modes = [Mode(training, grads, options.device, node.name in general) for training in (True, False)]
        train, eval_ = (node.op.memory(node.args, ins, out, mode) for mode in modes)
        in_dtypes = [dtype_of[s] for s in node.inputs]
        policy = train.autocast if low else "follow"
        compute = low if policy == "lower" else "float32" if policy == "float32" else _promoted(in_dtypes)
        dtype = compute if row.dtype == FLOAT else row.dtype
        numels = [dims.product(shape) for shape in ins]
        casts = {}
        if policy != "follow":
            casts = {j: numels[j] * itemsize(compute) for j, t in enumerate(in_dtypes) if t in FLOATS and t != compute}
        shapes = train.weights if train.weights is not None else ((row.params,),) if weighted else ()
        shapes = tuple(tuple(s) for s in shapes)
        numel = [dims.product(s) for s in shapes]
        layers.append(
            Layer(
                len(layers),
                node.name,
                tuple(node.inputs),
                grads,
                requires,
                tuple(n * itemsize(t) for n, t in zip(numels, in_dtypes)),
                dims.product(out) * itemsize(dtype),
                compute,
                casts,
                train,
                eval_,
                shapes,
                tuple(n * 4 for n in numel),
                tuple(n * itemsize(low) for n in numel) if policy == "lower" else (),
            )
        )
        if node.name in shared:
            tied = tuple(node.op.weight_shape(node.args, ins) or ())
            layers[-1].accumulated = tuple(i for i, shape in enumerate(shapes) if shape == tied)[:1]
        dtype_of[node.name], grad_of[node.name] = dtype, requires
    needed = set(result.outputs)
    for layer in reversed(layers):
        layer.on_path = layer.name in needed
        if layer.on_path:
            needed.update(layer.inputs)
    return layers


def general_nodes(result) -> set:
    """Layers whose generated code uses the op's emit_general emission: a layer of a block whose uses would
    emit different constructors (codegen_layers.op_layer makes the same choice)."""
    graph = result.graph
    if graph.root is None:
        return set()
    by_block: dict = {}

    def walk(instance) -> None:
        for entry in instance.entries.values():
            if entry.use is not None:
                for child in entry.use.instances:
                    by_block.setdefault(child.block, []).append(child)
                    walk(child)

    walk(graph.root)
    analysed = {row.name for row in result.layers}
    out = set()
    for instances in by_block.values():
        for local in {name for inst in instances for name in inst.entries}:
            entries = [inst.entries.get(local) for inst in instances]
            nodes = [graph.nodes[e.node] for e in entries if e and e.present and e.node in analysed]
            if len(nodes) < 2:
                continue
            shapes = [[result.shape_of(s) for s in n.inputs] for n in nodes]
            try:
                kinds = {_kind(n.op.emit(n.args, s)) for n, s in zip(nodes, shapes)}
                general = [n.op.emit_general(n.args, s) for n, s in zip(nodes, shapes)]
            except Exception:  # an emission that needs numbers: codegen reports it
                continue
            if len(kinds) > 1 and None not in general:
                out.update(n.name for n in nodes)
    return out


def _kind(emission) -> tuple:
    return (getattr(emission, "ctor", None), getattr(emission, "call", None), getattr(emission, "template", None))


def dtype_name(dtype: str) -> str:
    return "float32" if dtype == FLOAT else dtype


def itemsize(dtype: str) -> int:
    return DTYPE_BYTES[dtype]


def _promoted(dtypes: list) -> str:
    floats = [t for t in dtypes if t in FLOATS]
    return min(floats, key=FLOATS.index) if floats else "float32"
