"""Token inputs: `embedding` looks integer ids up in a learned table, `positions` numbers a dim's positions
(torch.arange over it) so that an embedding of them is a position table read up to the sequence length."""

from __future__ import annotations

from .. import dims
from ..errors import RuleError
from .base import Expression, Memory, Module, Op, Saved, format_shape, register
from .params import Dim, Float, Int


@register
class Embedding(Op):
    name = "Embedding"
    family = "linear"
    integer_inputs = True
    params = {
        "num_embeddings": Dim(doc="size of the table: the vocabulary, e.g. num_embeddings: 50257"),
        "embedding_dim": Dim(doc="width of each vector, e.g. embedding_dim: 768"),
        "padding_idx": Int(default=None, doc="an id whose vector stays zero and gets no gradient"),
        "std": Float(
            default=1.0,
            minimum=0,
            open_minimum=True,
            doc="vectors start from N(0, std**2); torch's default is 1, GPT-2 uses std: 0.02",
        ),
    }
    helper_classes = ("NormalEmbedding",)

    @classmethod
    def normalize(cls, values):
        index, size = values["padding_idx"], dims.as_int(values["num_embeddings"])
        if index is not None and size is not None and not -size <= index < size:
            raise RuleError(f"padding_idx must be in [{-size}, {size - 1}] for {size} embeddings, received {index}")
        return values

    def output_shape(self, a, ins, need):
        return (*ins[0], a.embedding_dim)

    def output_type(self, a, types, ins, need):
        dtype, value_range = types[0]
        if dtype not in ("int64", "int32"):
            raise RuleError(
                f"Embedding expects integer token ids (int64 or int32), received a {dtype} tensor",
                hint="declare the input with its dtype: {shape: [N, L], dtype: int64, range: 50257}",
            )
        if value_range is not None:
            too_many = dims.decide(value_range > a.num_embeddings)
            message = (
                f"token ids go up to {dims.to_str(value_range - 1)} (range {dims.to_str(value_range)}) but the "
                f"table has {dims.to_str(a.num_embeddings)} rows: larger ids fail at run time"
            )
            if too_many is None:
                need.positive(a.num_embeddings - value_range + 1, message)
            elif too_many:
                raise RuleError(message, hint="make num_embeddings at least the input's range")
        return ("float", None)

    def param_count(self, a, ins):
        return a.num_embeddings * a.embedding_dim

    def weight_shape(self, a, ins):
        return (a.num_embeddings, a.embedding_dim)

    def receptive_field(self, a, rfs, ins):  # each vector depends on its own id only
        return rfs[0].with_axes((*rfs[0].axes, None))

    def describe(self, a):
        return f"embedding {dims.to_str(a.num_embeddings)}x{dims.to_str(a.embedding_dim)}"

    def memory(self, a, ins, out, mode):
        """Saves its int64 indices (the input's storage); the backward makes the dense weight gradient. Autocast
        leaves it in fp32."""
        return Memory((Saved(0),), weights=((a.num_embeddings, a.embedding_dim),))

    def emit(self, a, ins):
        kwargs = [("num_embeddings", a.num_embeddings), ("embedding_dim", a.embedding_dim)]
        if a.padding_idx is not None:
            kwargs.append(("padding_idx", a.padding_idx))
        if a.std == 1.0:
            return Module("nn.Embedding", tuple(kwargs), 2)
        kwargs.append(("std", a.std))  # a subclass that draws its vectors with this std
        return Module("NormalEmbedding", tuple(kwargs), 2, "normal_embedding", "nn.Embedding")


@register
class Positions(Op):
    """torch.arange over one dim of its input: the positions 0 .. size - 1 as int64 ids (range: the size).
    Its values do not depend on the input's values, only on its size."""

    name = "Positions"
    aliases = ("Arange",)
    family = "reshape"
    integer_inputs = True
    params = {"dim": Int(default=1, doc="the dim whose positions are numbered (default 1: [N, L] -> L)")}

    def axis(self, a, shape) -> int:
        if not -len(shape) <= a.dim < len(shape):
            raise RuleError(
                f"dim {a.dim} is out of range for a {len(shape)}-D input {format_shape(shape)} "
                f"(expected {-len(shape)} to {len(shape) - 1})"
            )
        return a.dim % len(shape)

    def output_shape(self, a, ins, need):
        return (ins[0][self.axis(a, ins[0])],)

    def output_type(self, a, types, ins, need):
        return ("int64", ins[0][self.axis(a, ins[0])])

    def receptive_field(self, a, rfs, ins):
        return rfs[0].with_axes((rfs[0].axes[self.axis(a, ins[0])],))

    def describe(self, a):
        return f"positions of dim {a.dim}"

    def memory(self, a, ins, out, mode):
        """A new int64 tensor of the dim's size; nothing requires grad, nothing is saved."""
        return Memory()

    def emit(self, a, ins):
        return Expression("torch.arange({0}.shape[{dim}], device={0}.device)", (("dim", a.dim),))
