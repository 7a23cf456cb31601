"""Learned tensors: `parameter` is a tensor with no input, trained like a weight (ConvNeXt's layer scale, ViT's
class token and position table). Its elements are trainable parameters; its state_dict key is the layer's name.
"""

from __future__ import annotations

from .. import dims
from ..errors import RuleError
from .base import Memory, Op, Tensor, format_shape, register
from .params import Choice, Float, Sizes

_INITS = {  # init -> the torch expression that creates the tensor (shape and the arguments it names)
    "zeros": "torch.zeros({shape})",
    "ones": "torch.ones({shape})",
    "constant": "torch.full({shape}, {value})",
    "normal": "torch.randn({shape}) * {std}",
    "trunc_normal": "nn.init.trunc_normal_(torch.empty({shape}), std={std})",
}


@register
class Parameter(Op):
    name = "Parameter"
    family = "other"
    arity = (0, 0)
    params = {
        "shape": Sizes(doc="the tensor's shape, e.g. shape: [1, 1, 768] (sizes may be expressions)"),
        "init": Choice(default="zeros", choices=tuple(_INITS)),
        "std": Float(default=0.02, minimum=0, open_minimum=True, doc="normal and trunc_normal"),
        "value": Float(default=0.0, doc="constant"),
    }

    @classmethod
    def normalize(cls, values: dict) -> dict:
        if None in values["shape"]:
            raise RuleError("shape: every entry must be a size")
        return values

    def output_shape(self, a, ins, need):
        return tuple(a.shape)

    def param_count(self, a, ins):
        return dims.product(a.shape)

    def describe(self, a):
        return f"parameter {format_shape(a.shape)}"

    def emit(self, a, ins):
        template = _INITS[a.init]
        shape = tuple(a.shape)
        kwargs = [("shape", shape)]
        kwargs += [(k, a[k]) for k in ("value", "std") if "{" + k + "}" in template]
        return Tensor(template, tuple(kwargs))

    def memory(self, a, ins, out, mode):
        """A learned tensor: its storage is a weight (counted with the weights), it saves nothing."""
        return Memory()
