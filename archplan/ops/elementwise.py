"""Shape-preserving ops without parameters: activations, dropout, softmax, identity."""

from __future__ import annotations

from .base import Memory, Op, Saved, register
from .params import Bool, Choice, Float, Int


def _elementwise(name: str, family: str, params: dict, label: str, aliases: tuple = (), always: tuple = ()) -> type:
    cls = type(
        name,
        (Op,),
        {
            "name": name,
            "family": family,
            "params": params,
            "aliases": aliases,
            "always_emit": always,
            "keeps_features": True,
            "describe": lambda self, a: label,
        },
    )
    return register(cls)


_INPLACE = {"inplace": Bool(default=False)}

ReLU = _elementwise("ReLU", "activation", dict(_INPLACE), "relu")
ReLU6 = _elementwise("ReLU6", "activation", dict(_INPLACE), "relu6")
LeakyReLU = _elementwise("LeakyReLU", "activation", {"negative_slope": Float(default=0.01), **_INPLACE}, "leaky relu")
ELU = _elementwise("ELU", "activation", {"alpha": Float(default=1.0), **_INPLACE}, "elu")
GELU = _elementwise("GELU", "activation", {"approximate": Choice(default="none", choices=("none", "tanh"))}, "gelu")
SiLU = _elementwise("SiLU", "activation", dict(_INPLACE), "silu", ("Swish",))
Mish = _elementwise("Mish", "activation", dict(_INPLACE), "mish")
Sigmoid = _elementwise("Sigmoid", "activation", {}, "sigmoid")
Tanh = _elementwise("Tanh", "activation", {}, "tanh")
Hardswish = _elementwise("Hardswish", "activation", dict(_INPLACE), "hardswish")
Hardsigmoid = _elementwise("Hardsigmoid", "activation", dict(_INPLACE), "hardsigmoid")
Softmax = _elementwise("Softmax", "activation", {"dim": Int(default=1)}, "softmax", always=("dim",))
LogSoftmax = _elementwise("LogSoftmax", "activation", {"dim": Int(default=1)}, "log softmax", always=("dim",))
Identity = _elementwise("Identity", "other", {}, "identity")

_P = {"p": Float(default=0.5, minimum=0, maximum=1), **_INPLACE}
Dropout = _elementwise("Dropout", "dropout", dict(_P), "dropout")
Dropout1d = _elementwise("Dropout1d", "dropout", dict(_P), "dropout1d")
Dropout2d = _elementwise("Dropout2d", "dropout", dict(_P), "dropout2d")
Dropout3d = _elementwise("Dropout3d", "dropout", dict(_P), "dropout3d")
AlphaDropout = _elementwise("AlphaDropout", "dropout", dict(_P), "alpha dropout")


# -- what autograd saves (Op.memory; tests/memory_oracle.py measures it) ------------------------------------------
def _keeps_result(self, a, ins, out, mode):
    """Saves its output; in place (ReLU, LeakyReLU, ELU) the output is the overwritten input storage."""
    return Memory((Saved("output"),), alias=0 if a.get("inplace") else None)


def _keeps_input(self, a, ins, out, mode):
    """Saves its input; in place (ReLU6, SiLU, Mish, Hardswish, Hardsigmoid) autograd first clones it."""
    if a.get("inplace"):
        return Memory((Saved("new", tuple(ins[0])),), alias=0)
    return Memory((Saved(0),))


def _keeps_result_in_fp32_on_cuda(self, a, ins, out, mode):
    """Softmax and LogSoftmax save their output; CUDA's autocast runs them in fp32."""
    return Memory((Saved("output"),), autocast="float32" if mode.device == "cuda" else "follow")


def _leaky(self, a, ins, out, mode):
    """LeakyReLU and ELU save their input, or in place their result (the overwritten input storage)."""
    return _keeps_result(self, a, ins, out, mode) if a.inplace else _keeps_input(self, a, ins, out, mode)


def _identity(self, a, ins, out, mode):
    return Memory(alias=0, grad_alias=(0,))


def _dropout(self, a, ins, out, mode):
    """Training: input * noise saves the noise (the input's dtype): of the input's shape, or [N, C, 1, ...] for
    the channel-wise variants; CUDA's fused kernel (Dropout, 0 < p < 1) keeps a bool mask instead. p = 0 and eval
    mode return the input itself."""
    if not mode.training or a.p == 0:
        return Memory(alias=0, grad_alias=(0,))
    x = ins[0]
    if self.name in ("Dropout1d", "Dropout2d", "Dropout3d"):
        noise = Saved("new", (*x[:2], *(1 for _ in x[2:])))
    elif a.p == 1:
        noise = Saved("new", ())  # input * 0
    elif self.name == "Dropout" and mode.device == "cuda":
        noise = Saved("new", tuple(x), "bool")
    else:
        noise = Saved("new", tuple(x))
    return Memory((noise,), alias=0 if a.inplace else None)


for _op, _rule in (
    (ReLU, _keeps_result),
    (ReLU6, _keeps_input),
    (LeakyReLU, _leaky),
    (ELU, _leaky),
    (GELU, _keeps_input),
    (SiLU, _keeps_input),
    (Mish, _keeps_input),
    (Sigmoid, _keeps_result),
    (Tanh, _keeps_result),
    (Hardswish, _keeps_input),
    (Hardsigmoid, _keeps_input),
    (Softmax, _keeps_result_in_fp32_on_cuda),
    (LogSoftmax, _keeps_result_in_fp32_on_cuda),
    (Identity, _identity),
    (Dropout, _dropout),
    (Dropout1d, _dropout),
    (Dropout2d, _dropout),
    (Dropout3d, _dropout),
    (AlphaDropout, _dropout),
):
    _op.memory = _rule
