"""Matmul, scaled dot-product attention, multi-head attention and the transformer layers against torch.

Counts are compared with torch.utils.flop_counter on the math path (archplan.verify._math_attention turns
off the fused kernels and the inference fast path, which it cannot see). Where torch's counter has no
formula (torch.matmul of 1-D operands runs aten.dot / aten.mv), the multiply-adds are counted by hand.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import archplan  # noqa: E402
from archplan.verify import _math_attention, verify  # noqa: E402
from oracle import analyze  # noqa: E402


def counted(fn, *inputs, module=None) -> tuple:
    """(output shape, params, MACs) as torch runs and counts it on the math path; `module` holds the
    parameters when fn is a call of it."""
    from torch.utils.flop_counter import FlopCounterMode

    module = module if module is not None else fn if isinstance(fn, torch.nn.Module) else None
    params = sum(p.numel() for p in module.parameters()) if module is not None else 0
    if module is not None:
        module.eval()
    with torch.no_grad(), _math_attention(), FlopCounterMode(display=False) as counter:
        out = fn(*inputs)
    out = out[0] if isinstance(out, tuple) else out
    return tuple(out.shape), params, counter.get_total_flops() // 2


def row_of(result) -> tuple:
    row = result.layers[-1]
    return row.output_shape, row.params, row.macs


def shapes_of(**named) -> dict:
    return {k: v for k, v in named.items()}


# -- matmul ---------------------------------------------------------------------------------------------
dims_ = st.integers(1, 4)


@settings(max_examples=80, deadline=None)
@given(
    a=st.lists(dims_, min_size=1, max_size=4),
    b=st.lists(dims_, min_size=1, max_size=4),
    inner=dims_,
    share=st.booleans(),
)
def test_matmul_matches_torch(a, b, inner, share):
    """torch.matmul and the analysis accept the same shapes and agree on the result and the MACs."""
    a = [*a[:-1], inner]
    if share and len(b) >= 2:
        b = [*b[:-2], inner, b[-1]]
    elif share:
        b = [inner]
    result = analyze("{op: matmul, in: [a, b]}", {"a": a, "b": b})
    try:
        expected = counted(torch.matmul, torch.randn(*a), torch.randn(*b))
    except RuntimeError:
        expected = None
    assert result.ok == (expected is not None), (a, b, result.errors)
    if result.ok:
        shape, params, macs = row_of(result)
        assert (shape, params) == expected[:2]
        if expected[2] == 0 and 1 in (len(a), len(b)):  # aten.dot / aten.mv: no formula in torch's counter
            assert macs == torch.Size(shape).numel() * inner
        else:
            assert macs == expected[2]


def test_matmul_inner_mismatch_names_both_shapes():
    result = analyze("{op: matmul, in: [a, b]}", {"a": [2, 3, 4], "b": [5, 6]})
    assert not result.ok
    assert "[2, 3, 4] @ [5, 6]" in result.errors[0].message


# -- scaled_dot_product_attention ------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    length=st.integers(1, 6),
    source=st.integers(1, 6),
    e=st.integers(1, 8),
    ev=st.integers(1, 8),
    causal=st.booleans(),
    broadcast=st.booleans(),
)
def test_sdpa_matches_torch_math_path(batch, length, source, e, ev, causal, broadcast):
    q, k, v = [*batch, length, e], [*batch, source, e], [*batch, source, ev]
    if broadcast and batch:
        k[0] = v[0] = 1
    layer = "{op: scaled_dot_product_attention, in: [q, k, v], is_causal: %s}" % str(causal).lower()
    result = analyze(layer, {"q": q, "k": k, "v": v})
    fn = lambda *x: torch.nn.functional.scaled_dot_product_attention(*x, is_causal=causal)  # noqa: E731
    expected = counted(fn, torch.randn(*q), torch.randn(*k), torch.randn(*v))
    assert result.ok, result.errors
    assert row_of(result) == expected


def test_sdpa_grouped_query_attention():
    layer = "{op: scaled_dot_product_attention, in: [q, k, v], enable_gqa: true}"
    result = analyze(layer, {"q": [2, 8, 5, 4], "k": [2, 2, 7, 4], "v": [2, 2, 7, 4]})
    fn = lambda *x: torch.nn.functional.scaled_dot_product_attention(*x, enable_gqa=True)  # noqa: E731
    assert row_of(result) == counted(fn, torch.randn(2, 8, 5, 4), torch.randn(2, 2, 7, 4), torch.randn(2, 2, 7, 4))
    bad = analyze(layer, {"q": [2, 6, 5, 4], "k": [2, 4, 7, 4], "v": [2, 4, 7, 4]})
    assert not bad.ok and "multiple of k's heads" in bad.errors[0].message


def test_sdpa_shape_mismatch():
    result = analyze("{op: sdpa, in: [q, k, v]}", {"q": [2, 5, 8], "k": [2, 7, 6], "v": [2, 7, 6]})
    assert not result.ok and "same last dim" in result.errors[0].message


# -- nn.MultiheadAttention --------------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(
    heads=st.integers(1, 3),
    head_dim=st.integers(1, 4),
    kdim=st.one_of(st.none(), st.integers(1, 6)),
    vdim=st.one_of(st.none(), st.integers(1, 6)),
    inputs=st.integers(1, 3),
    bias=st.booleans(),
    batch_first=st.booleans(),
    unbatched=st.booleans(),
    n=st.integers(1, 3),
    length=st.integers(1, 5),
    source=st.integers(1, 5),
)
def test_multihead_attention_matches_torch(
    heads, head_dim, kdim, vdim, inputs, bias, batch_first, unbatched, n, length, source
):
    e = heads * head_dim
    if inputs == 1:
        kdim = vdim = None
        source = length
    if inputs == 2:
        vdim = kdim
    kdim_, vdim_ = kdim or e, vdim or e

    def shape(seq, width):
        if unbatched:
            return [seq, width]
        return [n, seq, width] if batch_first else [seq, n, width]

    named = {"q": shape(length, e), "k": shape(source, kdim_), "v": shape(source, vdim_)}
    names = ["q", "k", "v"][:inputs]
    shapes = {k: named[k] for k in names}
    layer = f"{{op: multiheadattention, in: [{', '.join(names)}], num_heads: {heads}, bias: {str(bias).lower()}"
    layer += f", batch_first: {str(batch_first).lower()}}}"
    result = analyze(layer, shapes)
    module = torch.nn.MultiheadAttention(e, heads, bias=bias, kdim=kdim_, vdim=vdim_, batch_first=batch_first)
    xs = [torch.randn(*named[k]) for k in "qkv"]
    if inputs == 2:
        xs[2] = xs[1]
    if inputs == 1:
        xs = [xs[0]] * 3
    expected = counted(lambda *x: module(*x, need_weights=False), *xs, module=module)
    assert result.ok, result.errors
    assert row_of(result) == expected


def test_multihead_attention_needs_divisible_heads():
    result = analyze("{op: mha, num_heads: 5}", [2, 7, 12])
    assert not result.ok and "divisible by num_heads (5)" in result.errors[0].message
    symbolic = analyze("{op: mha, num_heads: 4}", ["N", "L", "E"], symbols="symbols: {N: {}, L: {}, E: {}}\n")
    assert symbolic.ok and "E % 4 == 0" in symbolic.constraints


def test_attention_macs_are_formulas_in_the_sequence_length():
    result = analyze("{op: mha, num_heads: 8}", ["N", "L", 512], symbols="symbols: {N: {}, L: {}}\n")
    n, length = (archplan.symbols.symbol(s) for s in ("N", "L"))
    assert result.layers[-1].macs.expand() == (n * length * 4 * 512 * 512 + 2 * n * length**2 * 512).expand()


# -- transformer layers ------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(
    heads=st.integers(1, 3),
    head_dim=st.integers(1, 4),
    ff=st.integers(1, 12),
    activation=st.sampled_from(["relu", "gelu"]),
    norm_first=st.booleans(),
    bias=st.booleans(),
    causal=st.booleans(),
    decoder=st.booleans(),
    length=st.integers(1, 5),
    source=st.integers(1, 5),
)
def test_transformer_layers_match_torch(
    heads, head_dim, ff, activation, norm_first, bias, causal, decoder, length, source
):
    e = heads * head_dim
    kind = "TransformerDecoderLayer" if decoder else "TransformerEncoderLayer"
    flag = "tgt_is_causal" if decoder else "is_causal"
    layer = (
        f"{{op: {kind.lower()}, in: [{'x, m' if decoder else 'x'}], nhead: {heads}, dim_feedforward: {ff}, "
        f"activation: {activation}, norm_first: {str(norm_first).lower()}, bias: {str(bias).lower()}, "
        f"{flag}: {str(causal).lower()}}}"
    )
    shapes = {"x": [2, length, e], **({"m": [2, source, e]} if decoder else {})}
    result = analyze(layer, shapes)
    module = getattr(torch.nn, kind)(e, heads, ff, 0.1, activation, 1e-5, True, norm_first, bias)
    xs = [torch.randn(*s) for s in shapes.values()]
    mask = torch.nn.Transformer.generate_square_subsequent_mask(length) if causal else None
    if decoder:
        fn = lambda x, m: module(x, m, tgt_mask=mask, tgt_is_causal=causal)  # noqa: E731
    else:
        fn = lambda x: module(x, src_mask=mask, is_causal=causal)  # noqa: E731
    assert result.ok, result.errors
    assert row_of(result) == counted(fn, *xs, module=module)


ENCODER_512 = """
archplan: 1
name: enc
symbols: {N: {}, L: {}}
inputs:
  x: {shape: [N, L, 512], positions: [1]}
blocks:
  encoder:
    layers:
      - {name: self_attn, op: multiheadattention, num_heads: 8, dropout: 0.1}
      - {name: dropout1, op: dropout, p: 0.1}
      - {name: add1, op: add, in: [input, dropout1]}
      - {name: norm1, op: layernorm}
      - {name: linear1, op: linear, out_features: 2048}
      - {name: relu, op: relu}
      - {name: dropout, op: dropout, p: 0.1}
      - {name: linear2, op: linear, out_features: 512}
      - {name: dropout2, op: dropout, p: 0.1}
      - {name: add2, op: add, in: [norm1, dropout2]}
      - {name: norm2, op: layernorm}
layers:
  - {name: %s}
outputs: [layer]
"""


@pytest.mark.parametrize(
    "layer", ["layer, op: transformerencoderlayer, nhead: 8, dim_feedforward: 2048", "layer, block: encoder"]
)
def test_encoder_layer_512_as_one_op_and_as_a_block(layer):
    """nn.TransformerEncoderLayer(512, 8, 2048, batch_first=True): 3,152,384 params, 419,430,400 MACs at N=1,
    L=128, both ways (the block is the layer's own decomposition, with torch's module names)."""
    net = archplan.loads(ENCODER_512 % layer)
    result = net.analyze({"N": 1, "L": 128})
    assert result.ok, result.errors
    assert result.totals["params"] == 3_152_384
    assert result.totals["macs"] == 419_430_400
    module = torch.nn.TransformerEncoderLayer(512, 8, 2048, batch_first=True)
    assert sum(p.numel() for p in module.parameters()) == 3_152_384
    assert counted(module, torch.randn(1, 128, 512))[2] == 419_430_400
    report = verify(net, {"N": 1, "L": 16})
    assert report.ok, report.problems()


EXPLICIT_ATTENTION = """
archplan: 1
name: explicit
symbols: {N: {}, L: {default: 16}}
inputs:
  x: {shape: [N, L, 64], positions: [1]}
blocks:
  attention:
    args: {heads: 4, width: 64}
    layers:
      - {name: qkv, op: linear, out_features: 3 * width}
      - {name: split, op: reshape, shape: [N, L, 3, heads, width // heads]}
      - {name: heads_first, op: permute, dims: [2, 0, 3, 1, 4]}
      - {name: q, op: select, dim: 0, index: 0}
      - {name: k, op: select, in: heads_first, dim: 0, index: 1}
      - {name: v, op: select, in: heads_first, dim: 0, index: 2}
      - {name: attn, op: scaled_dot_product_attention, in: [q, k, v], is_causal: true, dropout_p: 0.5}
      - {name: merge, op: transpose, dim0: 1, dim1: 2}
      - {name: flat, op: reshape, shape: [N, L, width]}
      - {name: proj, op: linear, out_features: width}
layers:
  - {name: a1, block: attention}
  - {name: a2, block: attention, args: {heads: 8}}
outputs: [a2]
"""


def test_explicit_attention_block_generates_runtime_sizes_and_training_only_dropout():
    """Net symbols in a reshape are read from the input's shape in forward; the generated model verifies at
    other sizes than it was generated for; attention dropout acts in training only."""
    from archplan.codegen import generate_sources
    from archplan.verify import load_module

    net = archplan.loads(EXPLICIT_ATTENTION)
    result = net.analyze()
    assert result.ok and not result.warnings, result.warnings
    source = generate_sources(net, {}).files["model.py"]
    assert "x.shape[0], x.shape[1], 3, self.heads, self.width // self.heads" in source
    assert "dropout_p=0.5 if self.training else 0.0" in source
    model = load_module(source, "explicit").build_model()
    x = torch.randn(3, 10, 64)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    assert not torch.equal(model(x), model(x))
    assert verify(net, {"N": 2, "L": 7}).ok
