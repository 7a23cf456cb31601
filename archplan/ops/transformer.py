"""nn.TransformerEncoderLayer and nn.TransformerDecoderLayer as single ops (batch_first by default).

Their counts are those of the layers they contain (ops/attention.py states the attention convention):
self-attention 4*E*E + 4*E params (with bias), the feed-forward E*F + F + F*E + E, and two LayerNorms 2*E
each (three for the decoder, which adds a cross-attention over the memory). Dropout applies in training.
"""

from __future__ import annotations

from .. import dims
from ..errors import RuleError
from .attention import attends, batch_size, global_field, sequence_dim
from .replay import Replay
from .replay_mha import causal_mask, mha_params, replay_mha
from .base import Args, Module, Op, format_shape, register
from .params import Bool, Choice, Dim, Float, Int


class _TransformerLayer(Op):
    family = "attention"
    features_last = True
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

    def memory(self, a, ins, out, mode):
        """The layer's forward replayed (replay.py): self-attention as nn.MultiheadAttention runs it
        (replay_mha, with the layer's dropout), dropout (x * noise, saving the noise), the residual
        adds, LayerNorms (saving their input and fp32 mean and rstd), linear1 (saving its input), relu (its result)
        or gelu (its input), linear2, in post-norm or pre-norm order; the decoder adds the cross-attention over
        the memory (k is v: a packed [2, S, N, E] projection). The causal helpers hold an fp32 [L, L] mask. Eval
        without grad: nn.TransformerEncoderLayer runs torch's fused kernel where its checks allow it (3-D,
        batch_first, biases, even nhead; no hooks on the module and no autocast, which the rule assumes): only
        its output is visible. Under autocast the residual stream (adds, LayerNorms) has the layer input's dtype:
        the rule takes the compute dtype, exact after an autocast op (a linear, a conv, another layer fed by one);
        an fp32 input (an embedding's) keeps an fp32 stream, whose saved tensors are then counted at half size."""
        rp = Replay(ins, mode)
        length = ins[0][sequence_dim(ins[0], a.batch_first)]
        mask = causal_mask(rp, length) if a[self.causal] else None
        y = self.replay(rp, a, mask is not None)
        rp.drop(mask)
        return rp.memory(y)

    def fused(self, a, ins) -> bool:
        """torch's checks for the fused eval paths (the encoder layer's, MultiheadAttention's)."""
        return len(ins[0]) == 3 and a.batch_first and a.bias and a.nhead % 2 == 0

    def sublayers(self, rp: Replay, a, e) -> tuple:
        """The parameters after the attention's: linear1, linear2 and the norms (in the module's order)."""
        f, bias = a.dim_feedforward, a.bias
        linears = [(rp.param(f, e), rp.param(f) if bias else None), (rp.param(e, f), rp.param(e) if bias else None)]
        norms = [rp.param(e) for _ in range((self.attentions + 1) * (2 if bias else 1))][:: 2 if bias else 1]
        return linears, norms

    def feed_forward(self, rp: Replay, a, x, linears):
        """_ff_block: linear2(dropout(activation(linear1(x)))), then the block's last dropout."""
        p = a.dropout
        hidden = rp.linear(x, *linears[0])
        act = rp.activation(hidden, a.activation)
        rp.drop(hidden)
        dropped = rp.dropout(act, p)
        if dropped is not act:
            rp.drop(act)
        y = rp.linear(dropped, *linears[1])
        rp.drop(dropped)
        return _dropped(rp, y, p)

    def residual(self, rp: Replay, a, x, block, norm):
        """Pre-norm: x + block(norm(x)); post-norm: norm(x + block(x)). Drops what the expression lets go."""
        if a.norm_first:
            normed = rp.layer_norm(x, norm)
            y = block(normed)
            rp.drop(normed)
            out = rp.add(x, y)
            rp.drop(y)
            return out
        y = block(x)
        summed = rp.add(x, y)
        rp.drop(y)
        out = rp.layer_norm(summed, norm)
        rp.drop(summed)
        return out

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

    def replay(self, rp: Replay, a, causal: bool):
        x = rp.inputs[0]
        e = x.shape[-1]
        attention = mha_params(rp, e, e, e, a.bias)
        linears, norms = self.sublayers(rp, a, e)
        if not rp.grad_mode and self.fused(a, [x.shape]):
            return rp.new(x.shape)  # torch._transformer_encoder_layer_fwd

        def attend(h):
            y = replay_mha(rp, h, h, h, _attention_args(a), a.dropout, causal, False, attention)
            return _dropped(rp, y, a.dropout)

        x = self.residual(rp, a, x, attend, norms[0])
        out = self.residual(rp, a, x, lambda h: self.feed_forward(rp, a, h, linears), norms[1])
        rp.drop(x)
        return out


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

    def replay(self, rp: Replay, a, causal: bool):
        x, memory = rp.inputs
        args, e = _attention_args(a), x.shape[-1]
        own, cross = mha_params(rp, e, e, e, a.bias), mha_params(rp, e, e, e, a.bias)
        linears, norms = self.sublayers(rp, a, e)
        fast = self.fused(a, [x.shape]) and not causal  # MultiheadAttention's own fused kernel (no float mask)

        def attend(h, k, params, causal, fast):
            return _dropped(rp, replay_mha(rp, h, k, k, args, a.dropout, causal, fast, params), a.dropout)

        h1 = self.residual(rp, a, x, lambda h: attend(h, h, own, causal, fast), norms[0])
        h2 = self.residual(rp, a, h1, lambda h: attend(h, memory, cross, False, False), norms[1])
        rp.drop(h1)
        out = self.residual(rp, a, h2, lambda h: self.feed_forward(rp, a, h, linears), norms[2])
        rp.drop(h2)
        return out


def _attention_args(a):
    """The arguments replay_mha reads, as nn.TransformerEncoderLayer/DecoderLayer build their attention."""
    return Args(num_heads=a.nhead, bias=a.bias, batch_first=a.batch_first)


def _dropped(rp: Replay, y, p: float):
    """dropout(y) as a module returns it: y itself (eval, p = 0), or a new tensor, and y is let go."""
    out = rp.dropout(y, p)
    if out is not y:
        rp.drop(y)
    return out
