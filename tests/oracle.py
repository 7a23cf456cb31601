"""PyTorch as the oracle: build what an op emits, run it, and count what torch counts."""

from __future__ import annotations

import archplan
from archplan.ops.base import Expression, Module

torch = None


def _torch():
    global torch
    if torch is None:
        import torch as _t

        torch = _t
    return torch


def net_text(layers: list[str], shapes: dict, symbols: str = "") -> str:
    inputs = "\n".join(f"  {name}: {list(shape)}" for name, shape in shapes.items())
    body = "\n".join(f"  - {layer}" for layer in layers)
    return f"archplan: 1\nname: t\n{symbols}inputs:\n{inputs}\nlayers:\n{body}\n"


def analyze(layers, shapes, values=None, symbols: str = ""):
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(shapes, dict):
        shapes = {"x": shapes}
    return archplan.loads(net_text(layers, shapes, symbols)).analyze(values or {})


def build(row, in_shapes):
    """The torch module (or callable) that the op emits for this layer."""
    t = _torch()
    emission = row.node.op.emit(row.node.args, in_shapes)
    if isinstance(emission, Module):
        assert emission.ctor.startswith("nn."), emission.ctor
        return getattr(t.nn, emission.ctor[3:])(**dict(emission.kwargs))
    assert isinstance(emission, Expression)
    template = emission.template

    def run(*xs):
        code = template.replace("{all}", ", ".join(f"xs[{i}]" for i in range(len(xs))))
        code = code.format(*(f"xs[{i}]" for i in range(len(xs))), **{k: repr(v) for k, v in emission.kwargs})
        return eval(code, {"torch": t, "xs": xs})  # test-only: the template comes from our own op class

    return run


def measure(fn, inputs):
    """(output shape, trainable params, buffers, MACs as flop_counter counts them / 2)."""
    t = _torch()
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in fn.parameters()) if isinstance(fn, t.nn.Module) else 0
    buffers = sum(b.numel() for b in fn.buffers()) if isinstance(fn, t.nn.Module) else 0
    if isinstance(fn, t.nn.Module):
        fn.eval()
    with t.no_grad(), FlopCounterMode(display=False) as counter:
        out = fn(*inputs)
    return tuple(out.shape), params, buffers, counter.get_total_flops() // 2


def check_against_torch(layer: str, shapes):
    """Analyse one layer and run what it emits; returns (analysis, torch result or exception)."""
    t = _torch()
    if not isinstance(shapes, dict):
        shapes = {"x": shapes}
    result = analyze(layer, shapes)
    inputs = [t.randn(*s) for s in shapes.values()]
    if not result.ok:
        return result, None
    row = result.layers[-1]
    fn = build(row, list(shapes.values()))
    return result, measure(fn, inputs)
