"""Regularizers that keep the shape: StochasticDepth (torchvision.ops.StochasticDepth, Huang et al. 2016).

In training it zeroes whole rows of the batch (mode row: one Bernoulli(1 - p) draw per sample, broadcast over
the other dims) or the whole batch (mode batch), and scales what survives by 1 / (1 - p) (p = 1 zeroes all);
in eval mode it is the identity. No parameters, 0 MACs, receptive field unchanged. torchvision is not a
dependency of the generated code: it defines the class from templates/helpers/stochastic_depth.py.j2.
"""

from __future__ import annotations

from .base import Memory, Module, Op, Saved, register
from .params import Choice, Float


@register
class StochasticDepth(Op):
    name = "StochasticDepth"
    family = "dropout"
    params = {
        "p": Float(minimum=0, maximum=1, doc="probability of zeroing a row (or the batch), e.g. p: 0.2"),
        "mode": Choice(choices=("row", "batch"), doc="row: per sample; batch: the whole batch at once"),
    }
    keeps_features = True
    helper_classes = ("StochasticDepth",)

    def describe(self, a):
        return f"stochastic depth {a.p:g} {a.mode}"

    def emit(self, a, ins):
        return Module("StochasticDepth", (("p", a.p), ("mode", a.mode)), 0, "stochastic_depth", "nn.Module")

    def memory(self, a, ins, out, mode):
        """Training with p > 0: x * noise saves the noise, [N, 1, ...] per row or [1, ...] for the batch, in the
        input's dtype. p = 0 and eval mode return the input itself."""
        if not mode.training or a.p == 0:
            return Memory(alias=0, grad_alias=(0,))
        x = ins[0]
        shape = (x[0], *(1 for _ in x[1:])) if a.mode == "row" else tuple(1 for _ in x)
        return Memory((Saved("new", shape),))
