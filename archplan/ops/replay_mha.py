"""nn.MultiheadAttention's forward replayed for memory rules (replay.py), shared by the attention and
transformer ops."""

from __future__ import annotations

from .. import dims
from .replay import Replay, View, is_zero


def mha_params(rp: Replay, e, kdim, vdim, bias: bool) -> tuple:
    """nn.MultiheadAttention's parameters in its order: in_proj_weight (q/k/v_proj_weight when kdim or vdim
    differ from embed_dim), in_proj_bias, out_proj.weight, out_proj.bias."""
    packed = is_zero(kdim + (-1) * e) and is_zero(vdim + (-1) * e)
    weights = (rp.param(3 * e, e),) if packed else (rp.param(e, e), rp.param(e, kdim), rp.param(e, vdim))
    return weights, rp.param(3 * e) if bias else None, rp.param(e, e), rp.param(e) if bias else None


def replay_mha(rp: Replay, q: View, k: View, v: View, a, dropout, causal, fast, params=None) -> View:
    """nn.MultiheadAttention(q, k, v, need_weights=False) (identical q, k, v tensors: self-attention): in eval
    without grad, torch's fused _native_multi_head_attention where its checks allow it (`fast`: 3-D, even heads,
    biases, batch_first, no float mask, q is k is v), else F.multi_head_attention_forward: the packed in_proj
    (one linear for q is k is v, two for k is v, three otherwise), a contiguous copy of the packed projection,
    heads as views, SDPA, the output's permute-reshape and out_proj. `causal`: the is_causal call of the causal
    helpers (the float mask they pass is dropped; SDPA runs is_causal). params: mha_params, if declared."""
    e = q.shape[-1]
    weights, bias, out_w, out_b = params or mha_params(rp, e, k.shape[-1], v.shape[-1], a.bias)
    packed = len(weights) == 1
    if fast and not rp.grad_mode:
        return rp.new(q.shape)
    batched = len(q.shape) == 3
    if batched and a.batch_first:
        q, k, v = _each((q, k, v), lambda x: x.transpose(0, 1))
    elif not batched:  # q, k, v.unsqueeze(1) each: no longer the same tensor, so three projections
        q, k, v = q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)
    length, n = q.shape[0], q.shape[1]
    heads = a.num_heads
    biases = [None] * 3 if bias is None else [bias._as((e,), None)] * 3
    if packed and k is q and v is k:
        made = [_packed(rp, rp.linear(q, weights[0], bias), 3)]
        q = k = v = made[0].select(0)
    elif packed and v is k:
        kv = weights[0]._as((2 * e, e), None)
        made = [rp.linear(q, weights[0]._as((e, e), None), biases[0]), _packed(rp, rp.linear(k, kv, bias), 2)]
        q, k, v = made[0], made[1].select(0), made[1].select(0)
    else:
        rows = [weights[0]._as((e, e), None)] * 3 if packed else weights
        made = [rp.linear(x, w, b) for x, w, b in zip((q, k, v), rows, biases)]
        q, k, v = made
    hd = dims.floordiv(e, heads)
    q, k, v = (x.viewed((x.shape[0], n * heads, hd)).transpose(0, 1) for x in (q, k, v))
    q, k, v = (x.viewed((n, heads, x.shape[1], hd)) for x in (q, k, v))
    out = rp.attention(q, k, v, dropout if rp.grad_mode else 0.0, causal)
    rp.drop(*made)
    flat = rp.reshape(out.permute(2, 0, 1, 3), (length * n, e))
    y = rp.linear(flat, out_w, out_b)
    rp.drop(out, flat)
    return y


def _each(qkv: tuple, f) -> tuple:
    """f of each of q, k, v, keeping which of them are the same tensor."""
    q, k, v = qkv
    fq = f(q)
    fk = fq if k is q else f(k)
    return fq, fk, fk if v is k else f(v)


def _packed(rp: Replay, proj: View, parts: int) -> View:
    """proj.unflatten(-1, (parts, E)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous(): [parts, L, N, E]."""
    length, n, width = proj.shape
    e = dims.floordiv(width, parts)
    view = proj.viewed((length, n, parts, e)).unsqueeze(0).transpose(0, -2).select(-2)
    out = rp.contiguous(view)
    rp.free_copy(proj, out)
    return out


def causal_mask(rp: Replay, length) -> View:
    """nn.Transformer.generate_square_subsequent_mask: triu(full([L, L], -inf)), fp32 (the causal helpers')."""
    full = rp.new((length, length), "float32")
    mask = rp.new((length, length), "float32")
    rp.drop(full)
    return mask
