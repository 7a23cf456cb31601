"""Attention: matmul with torch's broadcasting, scaled dot-product attention and multi-head attention.

MACs count every matmul of the mathematical decomposition, the way torch's flop counter counts the math
path (and the CUDA SDPA kernels): the projections, q @ k^T and attn @ v (N*heads*L*S*(d_qk + d_v)) and the
output projection. A causal mask does not halve the count: the math path and the kernels' formulas compute
the masked products too. Softmax, scaling and masking are elementwise and count 0, as for other
elementwise ops. Attention mixes every position of the keys and values: its receptive field is global.
"""

from __future__ import annotations

from .. import dims
from ..errors import RuleError
from .base import Expression, Module, Op, format_shape, merge_fields, register
from .fields import Field
from .params import Bool, Dim, Float, Int
from .replay import Replay
from .replay_mha import causal_mask, replay_mha
from .structure import broadcast


def axes_of(field: Field | None, rank: int) -> tuple:
    return field.axes if field is not None else (None,) * rank


def global_field(rfs, rank: int) -> Field:
    extent = next((f.extent for f in rfs if f is not None and f.extent), ())
    return Field((None,) * rank, extent, True)


def attends(rfs, key_dims: tuple) -> bool:
    """True when a mixed dim (the keys' sequence, a contracted dim) holds input positions."""
    return any(
        f is not None and (f.whole or any(f.axes[d] is not None for d in mixed)) for f, mixed in zip(rfs, key_dims)
    )


@register
class Matmul(Op):
    """torch.matmul: 1-D operands gain a dim that is removed again, batch dims broadcast."""

    name = "Matmul"
    aliases = ("MatMul",)
    family = "linear"
    arity = (2, 2)

    def operands(self, ins) -> tuple:
        x, y = ins
        if not x or not y:
            raise RuleError("matmul needs tensors with at least one dim, received a 0-D tensor")
        return ((1, *x) if len(x) == 1 else tuple(x)), ((*y, 1) if len(y) == 1 else tuple(y))

    def output_shape(self, a, ins, need):
        x, y = self.operands(ins)
        what = f"matmul {format_shape(ins[0])} @ {format_shape(ins[1])}"
        need.equal(x[-1], y[-2], f"{what}: the first's last dim must equal the second's dim -2")
        batch = broadcast([x[:-2], y[:-2]], need, f"{what}: batch dims do not broadcast")
        return (*batch, *x[-2:-1] * (len(ins[0]) > 1), *y[-1:] * (len(ins[1]) > 1))

    def macs(self, a, ins, out):
        return dims.product(out) * ins[0][-1]

    def receptive_field(self, a, rfs, ins):
        x, y = ins
        ax, ay = axes_of(rfs[0], len(x)), axes_of(rfs[1], len(y))
        ax, ay = ((None, *ax) if len(x) == 1 else ax), ((*ay, None) if len(y) == 1 else ay)
        full = max(len(ax), len(ay))
        if any(f is not None and f.whole for f in rfs) or ax[-1] is not None or ay[-2] is not None:
            return global_field(rfs, full - (len(x) == 1) - (len(y) == 1))
        extent = next((f.extent for f in rfs if f is not None and f.extent), ())
        lost = next((f.lost for f in rfs if f is not None and f.lost), None)
        merged = merge_fields([Field((*ax[:-1], None), extent), Field((*ay[:-2], None, ay[-1]), extent)], full)
        axes = list(merged.axes)
        if len(y) == 1:
            del axes[-1]
        if len(x) == 1:
            del axes[-1 if len(y) == 1 else -2]
        return Field(tuple(axes), extent, False, lost)

    def describe(self, a):
        return "matmul"

    def memory(self, a, ins, out, mode):
        """torch.matmul (Replay.matmul): mm, mv or dot on 1-/2-D operands; a >= 3-D operand against a matrix folds
        into one (a copy when its batch dims are not contiguous, or when the other requires grad); else both are
        expanded to the broadcast batch and reshaped (a copy where a dim is broadcast) for bmm. Each product
        saves the operand the other's gradient needs. Autocast runs it in fp16/bf16. Assumes contiguous inputs
        (the planner knows no strides: a transposed operand that would fold or view may copy in torch)."""
        rp = Replay(ins, mode)
        return rp.memory(rp.matmul(*rp.inputs))

    def emit(self, a, ins):
        return Expression("{0} @ {1}")


@register
class ScaledDotProductAttention(Op):
    """F.scaled_dot_product_attention(q, k, v): q [..., L, E], k [..., S, E], v [..., S, Ev] -> [..., L, Ev].
    Dropout applies in training only (the generated call passes dropout_p only when self.training)."""

    name = "ScaledDotProductAttention"
    aliases = ("SDPA",)
    family = "attention"
    arity = (3, 3)
    params = {
        "is_causal": Bool(default=False, doc="mask future positions (query i sees keys 0..i)"),
        "dropout_p": Float(default=0.0, minimum=0, maximum=1, doc="dropout on the attention weights in training"),
        "scale": Float(default=None, doc="default 1/sqrt(E)"),
        "enable_gqa": Bool(default=False, doc="grouped-query attention: k and v have fewer heads (dim -3)"),
    }

    def output_shape(self, a, ins, need):
        q, k, v = ins
        for name, shape in zip("qkv", ins):
            if len(shape) < 2:
                raise RuleError(
                    f"scaled_dot_product_attention: {name} must be at least 2-D, received {format_shape(shape)}"
                )
        what = f"attention of q {format_shape(q)}, k {format_shape(k)}, v {format_shape(v)}"
        need.equal(q[-1], k[-1], f"{what}: q and k must have the same last dim")
        need.equal(k[-2], v[-2], f"{what}: k and v must have the same length (dim -2)")
        if a.enable_gqa:
            if min(len(q), len(k), len(v)) < 3:
                raise RuleError(f"{what}: enable_gqa needs a heads dim (-3) in q, k and v")
            need.equal(k[-3], v[-3], f"{what}: k and v must have the same number of heads")
            need.divisible(q[-3], k[-3], f"{what}: q's heads must be a multiple of k's heads")
            batch = (*broadcast([q[:-3], k[:-3], v[:-3]], need, f"{what}: batch dims do not broadcast"), q[-3])
        else:
            batch = broadcast([q[:-2], k[:-2], v[:-2]], need, f"{what}: batch dims do not broadcast")
        return (*batch, q[-2], v[-1])

    def macs(self, a, ins, out):
        q, k, v = ins
        return dims.product(out[:-2]) * q[-2] * k[-2] * (q[-1] + v[-1])

    def receptive_field(self, a, rfs, ins):
        q, k, v = ins
        rank = max(len(s) for s in ins)
        if attends(rfs, ((len(q) - 1,), (len(k) - 2, len(k) - 1), (len(v) - 2,))):
            return global_field(rfs, rank)
        return merge_fields([rfs[0]], rank)

    def describe(self, a):
        return "attention (causal)" if a.is_causal else "attention"

    def memory(self, a, ins, out, mode):
        """As torch 2.13 picks the CPU kernel (Replay.attention). The flash kernel (no dropout, 4-D q, k, v of
        one batch and one head size, GQA included) saves q, k, v, its output and the fp32 logsumexp
        [..., L]. The math path (dropout in training, 2-/3-D inputs, a broadcast batch, d_v != d_qk) saves
        q * sqrt(scale), k^T * sqrt(scale), the softmax, with dropout the noise and the dropped weights
        [..., L, S] (fp32: it upcasts half-precision inputs) and v, each where the other operand requires grad;
        is_causal makes an fp32 [L, S] mask; GQA repeats k and v. Eval runs dropout-free. Limits: inputs are
        taken to have unit stride in the last dim (else torch takes the math path); under autocast the math
        path saves an fp32 copy of v, counted here at the cast's half precision. CUDA's kernels (flash,
        efficient, cuDNN) keep other statistics: not modelled, the CPU's rule applies."""
        rp = Replay(ins, mode)
        q, k, v = rp.inputs
        return rp.memory(rp.attention(q, k, v, a.dropout_p if mode.training else 0.0, a.is_causal, a.enable_gqa))

    def emit(self, a, ins):
        text, kwargs = "nn.functional.scaled_dot_product_attention({0}, {1}, {2}", []
        if a.dropout_p:
            text += ", dropout_p={dropout_p} if self.training else 0.0"
            kwargs.append(("dropout_p", a.dropout_p))
        for key in ("is_causal", "scale", "enable_gqa"):
            if a[key] not in (None, False):
                text += f", {key}={{{key}}}"
                kwargs.append((key, a[key]))
        return Expression(text + ")", tuple(kwargs))


def sequence_dim(shape, batch_first: bool) -> int:
    """[N, L, E] (batch_first), [L, N, E], or unbatched [L, E]."""
    return len(shape) - 2 if batch_first or len(shape) == 2 else 0


def batch_size(shape, batch_first: bool):
    return 1 if len(shape) == 2 else shape[0 if batch_first else 1]


@register
class MultiheadAttention(Op):
    """nn.MultiheadAttention(batch_first=True): one input attends to itself; two are [query, memory] (keys
    and values from the memory); three are [query, key, value]. The output is the attention output (the
    generated call passes need_weights=False, which lets torch use its fused kernels)."""

    name = "MultiheadAttention"
    aliases = ("MHA",)
    family = "attention"
    features_last = True
    arity = (1, 3)
    ranks = (2, 3)
    inferred = {"embed_dim": "the query's last dimension"}
    helper_classes = ("CausalMultiheadAttention",)
    params = {
        "num_heads": Int(minimum=1, doc="number of heads; embed_dim must be divisible by it"),
        "dropout": Float(default=0.0, minimum=0, maximum=1, doc="dropout on the attention weights in training"),
        "bias": Bool(default=True),
        "kdim": Dim(default=None, doc="the keys' last dim (default: read from the key input)"),
        "vdim": Dim(default=None, doc="the values' last dim (default: read from the value input)"),
        "is_causal": Bool(default=False, doc="mask future positions (self-attention: query i sees keys 0..i)"),
        "batch_first": Bool(default=True, doc="[N, L, E] (the format's default) or [L, N, E]"),
    }

    def qkv(self, ins) -> tuple:
        return (ins[0], ins[0], ins[0]) if len(ins) == 1 else (ins[0], ins[1], ins[1]) if len(ins) == 2 else tuple(ins)

    def inferred_value(self, key, ins):
        return ins[0][-1]

    def sizes(self, a, ins) -> tuple:
        """(E, kdim, vdim, L, S) with kdim and vdim read from the inputs."""
        q, k, v = self.qkv(ins)
        d = sequence_dim(q, a.batch_first)
        return q[-1], k[-1], v[-1], q[d], k[d]

    def output_shape(self, a, ins, need):
        q, k, v = self.qkv(ins)
        if not len(q) == len(k) == len(v):
            raise RuleError(
                f"query {format_shape(q)}, key {format_shape(k)} and value {format_shape(v)} differ in rank"
            )
        e, kdim, vdim, length, source = self.sizes(a, ins)
        need.divisible(e, a.num_heads, f"embed_dim ({dims.to_str(e)}) must be divisible by num_heads ({a.num_heads})")
        for key, actual, shape in (("kdim", kdim, k), ("vdim", vdim, v)):
            if a[key] is not None:
                need.equal(
                    a[key], actual, f"{key} {dims.to_str(a[key])} must equal the last dim of {format_shape(shape)}"
                )
        d = sequence_dim(q, a.batch_first)
        need.equal(k[d], v[d], f"key {format_shape(k)} and value {format_shape(v)} must have the same length")
        if len(q) == 3:
            need.equal(
                batch_size(q, a.batch_first),
                batch_size(k, a.batch_first),
                f"query {format_shape(q)} and key {format_shape(k)} must have the same batch",
            )
        if a.is_causal:
            need.equal(length, source, "is_causal needs as many keys as queries (a square mask)")
        return tuple(q)

    def param_count(self, a, ins):
        e, kdim, vdim, _, _ = self.sizes(a, ins)
        return e * (e + kdim + vdim) + e * e + (4 * e if a.bias else 0)

    def macs(self, a, ins, out):
        e, kdim, vdim, length, source = self.sizes(a, ins)
        b = batch_size(ins[0], a.batch_first)  # a sum of monomials: formulas in N and L print expanded
        projections = b * length * e * e + b * source * kdim * e + b * source * vdim * e + b * length * e * e
        return projections + 2 * b * length * source * e

    def receptive_field(self, a, rfs, ins):
        q, k, v = self.qkv(ins)
        f_q, f_k, f_v = self.qkv(rfs)
        d = sequence_dim(q, a.batch_first)
        if attends((f_k, f_v), ((d, len(k) - 1), (d,))):
            return global_field(rfs, len(q))
        return f_q

    def describe(self, a):
        return f"attention {a.num_heads} heads" + (" (causal)" if a.is_causal else "")

    def memory(self, a, ins, out, mode):
        """replay_mha: packed in_proj, SDPA (flash; the math path with dropout in training), out_proj. With
        batch_first, the transposed input's projection folds into a contiguous copy [L*N, E], which is saved
        (the input itself with batch_first false); the packed projection is copied contiguous [3, L, N, E]
        (q, k, v of SDPA are views of it) and saved with the flash output and logsumexp; out_proj saves the
        attention output; in_proj and out_proj save their weights when their inputs require grad (cast copies
        under autocast). The causal helper also holds an fp32 [L, L] mask through its forward. Eval without grad
        runs torch's fused kernel where it applies (only its output is visible: a fused kernel's workspace is
        not) and this replay otherwise; the rule assumes no autocast there (autocast disables the fused kernel)
        and no hooks on the module."""
        rp = Replay(ins, mode)
        mask = causal_mask(rp, self.sizes(a, ins)[3]) if a.is_causal else None
        q, k, v = self.qkv(rp.inputs)
        fast = len(ins) == 1 and len(ins[0]) == 3 and a.bias and a.num_heads % 2 == 0 and a.batch_first
        y = replay_mha(rp, q, k, v, a, a.dropout, a.is_causal, fast and not a.is_causal)
        rp.drop(mask)
        return rp.memory(y)

    def emit(self, a, ins):
        e, kdim, vdim, _, _ = self.sizes(a, ins)
        kwargs = [("embed_dim", e), ("num_heads", a.num_heads)]
        kwargs += [(k, a[k]) for k in ("dropout", "bias") if a[k] != self.params[k].default]
        kwargs += [(k, size) for k, size in (("kdim", kdim), ("vdim", vdim)) if dims.equal(size, e) is not True]
        kwargs.append(("batch_first", a.batch_first))
        refs = ", ".join(self.qkv([f"{{{i}}}" for i in range(len(ins))]))
        if a.is_causal:
            causal = "CausalMultiheadAttention"
            return Module(
                causal, tuple(kwargs), 2, "causal_attention", "nn.MultiheadAttention", "{module}(" + refs + ")"
            )
        return Module("nn.MultiheadAttention", tuple(kwargs), 2, call="{module}(" + refs + ", need_weights=False)[0]")
