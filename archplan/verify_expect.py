"""What verify compares against, computed without torch: model.py's text and the analysis at the concrete
sizes verify runs (--set, then defaults, batch 1), as plain picklable numbers."""

from __future__ import annotations

from dataclasses import dataclass

from .codegen_errors import CodegenError


@dataclass(frozen=True)
class ExpectedLayer:
    name: str
    shape: tuple
    params: int
    buffers: int
    flops: int
    hooks_see_flops: bool  # False: a functional step or module whose arithmetic only FlopCounterMode sees


@dataclass(frozen=True)
class Expected:
    """What verify compares against, as plain numbers: model.py's text and the analysis at concrete sizes.
    Computed without torch (and picklable, so that the CLI can compute it while torch imports)."""

    net: str
    sizes: dict
    source: str  # model.py
    inputs: tuple  # (name, shape, dtype, high): high bounds integer ids
    layers: tuple  # ExpectedLayer
    params: int
    buffers: int
    flops: int
    outputs: tuple  # output shapes

    @property
    def needs_counter(self) -> bool:
        return any(layer.flops and not layer.hooks_see_flops for layer in self.layers)


def expect(net, values: dict | None = None) -> Expected:
    """Generate model.py and analyse the net at the concrete sizes verify runs (--set, defaults, batch 1)."""
    from . import dims
    from .codegen import generate_sources

    generated = generate_sources(net, values, model_only=True)
    analysis = generated.concrete
    _check_memory(analysis)
    graph, totals = analysis.graph, analysis.totals
    layers = tuple(
        ExpectedLayer(
            row.name,
            tuple(int(d) for d in row.output_shape),
            int(dims.normalize(row.params)),
            int(dims.normalize(row.buffers)),
            2 * int(dims.normalize(row.macs)),
            not _needs_counter(row, analysis),
        )
        for row in analysis.layers
    )
    inputs = tuple(
        (
            name,
            tuple(int(d) for d in shape),
            graph.input_dtypes.get(name, "float"),
            dims.as_int(graph.input_ranges.get(name)) or 2,  # the concrete net's range is a number
        )
        for name, shape in analysis.inputs.items()
    )
    return Expected(
        graph.name,
        {name: int(value) for name, value in generated.sizes.concrete.items()},
        generated.files["model.py"],
        inputs,
        layers,
        int(dims.normalize(totals["params"])),
        int(dims.normalize(totals["buffers"])),
        int(dims.normalize(totals["flops"])),
        tuple(tuple(int(d) for d in s) for s in analysis.outputs.values()),
    )


_HOOKED = ("nn.Conv", "nn.ConvTranspose", "nn.Linear")  # modules whose FLOPs verify._module_flops computes


def _needs_counter(row, analysis) -> bool:
    """A layer with MACs that hooks cannot count: a functional step in forward (matmul, attention) or a
    module that does its arithmetic through functional calls (nn.MultiheadAttention)."""
    from .ops.base import Module, Tensor

    if not row.macs:
        return False
    emitted = row.node.op.emit(row.node.args, [analysis.shape_of(s) for s in row.node.inputs])
    if isinstance(emitted, Module):
        return not (emitted.base or emitted.ctor).startswith(_HOOKED)
    return not isinstance(emitted, Tensor)


MAX_VERIFY_BYTES = 4 * 2**30  # weights and every activation at float32, held at once in the worst case


def _check_memory(analysis) -> None:
    """Refuse sizes whose tensors would not fit before torch tries to allocate them."""
    from . import dims

    totals = analysis.totals
    needed = 4 * (int(dims.normalize(totals["activation_elements"])) + int(dims.normalize(totals["params"])))
    needed += 4 * int(dims.normalize(totals["buffers"]))
    if needed > MAX_VERIFY_BYTES:
        raise CodegenError(
            f"verify runs the net once, and at these sizes its weights and activations take {needed / 2**30:,.1f} "
            f"GiB (more than {MAX_VERIFY_BYTES // 2**30} GiB): pass smaller sizes with --set"
        )
