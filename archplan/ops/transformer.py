"""nn.TransformerEncoderLayer and nn.TransformerDecoderLayer as single ops (batch_first by default).

Their counts are those of the layers they contain (ops/attention.py states the attention convention):
self-attention 4*E*E + 4*E params (with bias), the feed-forward E*F + F + F*E + E, and two LayerNorms 2*E
each (three for the decoder, which adds a cross-attention over the memory). Dropout applies in training.
"""

from __future__ import annotations

from .. import dims
from ..errors import RuleError
from .attention import attends, batch_size, global_field, sequence_dim
from .base import Module, Op, format_shape, register
from .params import Bool, Choice, Dim, Float, Int


class _TransformerLayer(Op):
    family = "attention"
    ranks = (2, 3)
    inferred = {"d_model": "the input's last dimension"}
    params = {
        "nhead": Int(minimum=1, doc="number of attention heads; d_model must be divisible by it"),
        "dim_feedforward": Dim(default=2048, doc="width of the feed-forward layer"),
        "dropout": Float(default=0.1, minimum=0, maximum=1),
        "activation": Choice(default="relu", choices=("relu", "gelu")),
        "layer_norm_eps": Float(default=1e-5, minimum=0, open_minimum=True),
        "norm_first": Bool(default=False, doc="pre-norm (GPT-style) instead of post-norm"),
        "bias": Bool(default=True, doc="biases in the linear layers and the LayerNorms"),
        "batch_first": Bool(default=True, doc="[N, L, E] (the format's default) or [L, N, E]"),
    }
    always_emit = ("batch_first",)
    attentions = 1  # self-attention; the decoder adds a cross-attention

    def inferred_value(self, key, ins):
        return ins[0][-1]

    def check_shapes(self, a, ins, need) -> None:
        e = ins[0][-1]
        need.divisible(e, a.nhead, f"d_model ({dims.to_str(e)}) must be divisible by nhead ({a.nhead})")

    def output_shape(self, a, ins, need):
        self.check_shapes(a, ins, need)
        return tuple(ins[0])

    def param_count(self, a, ins):
        e, f, bias = ins[0][-1], a.dim_feedforward, 1 if a.bias else 0
        attention = 4 * e * e + 4 * e * bias
        feedforward = 2 * e * f + (f + e) * bias
        norms = (self.attentions + 1) * e * (1 + bias)
        return self.attentions * attention + feedforward + norms

    def self_attention_macs(self, a, shape):
        e, length = shape[-1], shape[sequence_dim(shape, a.batch_first)]
        tokens = batch_size(shape, a.batch_first) * length
        return 4 * tokens * e * e + 2 * tokens * length * e + 2 * tokens * e * a.dim_feedforward

    def macs(self, a, ins, out):
        return self.self_attention_macs(a, ins[0])

    def receptive_field(self, a, rfs, ins):
        d = sequence_dim(ins[0], a.batch_first)
        if attends(rfs, tuple((d, len(s) - 1) for s in ins)):
            return global_field(rfs, len(ins[0]))
        return rfs[0]

    def emit(self, a, ins):
        kwargs = [("d_model", ins[0][-1]), ("nhead", a.nhead)]
        kwargs += [
            (k, a[k])
            for k, p in self.params.items()
            if k not in ("nhead", "is_causal", "tgt_is_causal", "batch_first") and a[k] != p.default
        ]
        kwargs.append(("batch_first", a.batch_first))
        if a[self.causal]:  # a subclass that builds the causal mask for its input's length
            return Module(f"Causal{self.name}", tuple(kwargs), 2, self.helper, f"nn.{self.name}")
        return Module(f"nn.{self.name}", tuple(kwargs), 2)


@register
class TransformerEncoderLayer(_TransformerLayer):
    name = "TransformerEncoderLayer"
    params = {**_TransformerLayer.params, "is_causal": Bool(default=False, doc="causal self-attention (GPT)")}
    causal, helper = "is_causal", "causal_encoder_layer"
    helper_classes = ("CausalTransformerEncoderLayer",)

    def describe(self, a):
        return f"encoder layer {a.nhead} heads" + (" (causal)" if a.is_causal else "")


@register
class TransformerDecoderLayer(_TransformerLayer):
    """Inputs [target, memory]: causal self-attention over the target (tgt_is_causal), then attention over
    the memory, then the feed-forward layer."""

    name = "TransformerDecoderLayer"
    arity = (2, 2)
    attentions = 2
    causal, helper = "tgt_is_causal", "causal_decoder_layer"
    helper_classes = ("CausalTransformerDecoderLayer",)
    params = {
        **_TransformerLayer.params,
        "tgt_is_causal": Bool(default=False, doc="causal self-attention over the target"),
    }

    def check_shapes(self, a, ins, need):
        super().check_shapes(a, ins, need)
        tgt, memory = ins
        if len(tgt) != len(memory):
            raise RuleError(f"target {format_shape(tgt)} and memory {format_shape(memory)} differ in rank")
        need.equal(tgt[-1], memory[-1], f"memory {format_shape(memory)} must have d_model {dims.to_str(tgt[-1])}")
        if len(tgt) == 3:
            need.equal(
                batch_size(tgt, a.batch_first),
                batch_size(memory, a.batch_first),
                f"target {format_shape(tgt)} and memory {format_shape(memory)} must have the same batch",
            )

    def macs(self, a, ins, out):
        tgt, memory = ins
        e, length = tgt[-1], tgt[sequence_dim(tgt, a.batch_first)]
        source = memory[sequence_dim(memory, a.batch_first)]
        b = batch_size(tgt, a.batch_first)  # cross-attention: q and out; k and v; scores and weighted sum
        cross = 2 * b * length * e * e + 2 * b * source * e * e + 2 * b * length * source * e
        return self.self_attention_macs(a, tgt) + cross

    def describe(self, a):
        return f"decoder layer {a.nhead} heads" + (" (causal)" if a.tgt_is_causal else "")
