"""Shape-preserving ops without parameters: activations, dropout, softmax, identity."""

from __future__ import annotations

from .base import Op, register
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
