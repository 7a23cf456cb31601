"""Receptive fields against torch: the input pixels an output pixel's gradient reaches.

With all-positive weights nothing cancels, so the support of d out[i] / d input is exactly the field
[i*S - P, i*S - P + r - 1] (clipped to the image), which checks size r, jump S and padding P together.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from oracle import analyze, build  # noqa: E402


def conv(k, s, p, d):
    return f"{{op: conv2d, out_channels: 1, kernel_size: {k}, stride: {s}, padding: {p}, dilation: {d}}}"


def pool(k, s, p):
    return f"{{op: avgpool2d, kernel_size: {k}, stride: {s}, padding: {min(p, k // 2)}}}"


def layers(tiling: bool):
    """Windows that tile (kernel >= stride, no dilation) leave no holes: the field is exactly the gradient's
    support. Otherwise the field is its hull."""
    stride = st.integers(1, 2) if tiling else st.integers(1, 3)
    dilation = st.just(1) if tiling else st.integers(1, 2)
    return st.one_of(
        st.builds(conv, st.integers(2, 4), stride, st.integers(0, 2), dilation),
        st.builds(pool, st.integers(2, 3) if tiling else st.integers(1, 3), stride, st.integers(0, 1)),
        st.just("{op: relu}"),
        st.just("{op: zeropad2d, padding: [2, 0, 1, 0]}"),
    )


def support(grad) -> tuple[int, int] | None:
    rows = torch.nonzero(grad.abs().sum(dim=(0, 1, 3)) > 0).flatten()
    return (int(rows.min()), int(rows.max())) if len(rows) else None


@settings(max_examples=40, deadline=None)
@given(net=st.lists(layers(tiling=True), min_size=1, max_size=5), pick=st.floats(0.3, 0.7))
def test_receptive_field_is_the_gradient_support(net, pick):
    """Exact, except for an output pixel whose window reads only padding at some layer: it depends on no
    input pixel (found is None), while the field, a translation-invariant hull, still covers the padded
    positions' virtual fields."""
    found, field = gradient_support(net, pick)
    assert found is None or found == field, net


@settings(max_examples=40, deadline=None)
@given(net=st.lists(layers(tiling=False), min_size=1, max_size=5), pick=st.floats(0.3, 0.7))
def test_receptive_field_contains_the_gradient_support(net, pick):
    """With gaps (kernel < stride) the field is the hull of what the pixel reads."""
    found, field = gradient_support(net, pick)
    if found is not None:  # None: with gaps, the chosen output pixel may read nothing but padding
        assert field[0] <= found[0] and found[1] <= field[1], net


def gradient_support(layers, pick):
    """(rows of the input the gradient reaches, rows the analysis' field covers), on the smallest of a few
    input sizes the net accepts; 3**6 fits any drawn net (at most 5 windows of stride <= 3, kernel <= 4), so
    the analysis must succeed."""
    for size in (64, 160, 729):
        result = analyze(layers, [1, 1, size, size])
        if result.ok:
            break
    assert result.ok, (layers, result.errors)
    assert result.layers[-1].receptive_field is not None, layers
    x = torch.ones(1, 1, size, size, requires_grad=True)
    out, shape = x, (1, 1, size, size)
    for row in result.layers:
        module = build(row, [shape])
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.constant_(module.weight, 1.0)
            torch.nn.init.zeros_(module.bias)
        out, shape = module(out), row.output_shape
    i = int(pick * (shape[2] - 1))
    out[0, 0, i, shape[3] // 2].backward()
    rf = result.layers[-1].receptive_field[0]
    start = i * rf.stride - rf.padding
    return support(x.grad), (max(start, 0), min(start + rf.size - 1, size - 1))


def test_a_squeeze_excitation_gate_makes_the_field_global():
    """conv 3x3 * sigmoid(conv 1x1(global pool)): one output pixel's gradient reaches every input pixel, and
    the analysis says global (not the 3x3 of the spatial path)."""
    layers = [
        "{name: conv, op: conv2d, out_channels: 2, kernel_size: 3, padding: 1}",
        "{name: pool, op: adaptiveavgpool2d, output_size: 1}",
        "{name: fc, op: conv2d, out_channels: 2, kernel_size: 1}",
        "{name: gate, op: sigmoid}",
        "{name: scale, op: mul, in: [conv, gate]}",
    ]
    result = analyze(layers, [1, 1, 9, 9])
    assert result.layer("conv").receptive_field[0].size == 3
    assert result.layer("scale").field.whole and result.layer("scale").receptive_field is None
    torch.manual_seed(0)
    conv, fc = torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Conv2d(2, 2, 1)
    x = torch.randn(1, 1, 9, 9, requires_grad=True)
    features = conv(x)
    out = features * torch.sigmoid(fc(features.mean(dim=(2, 3), keepdim=True)))
    out[0, 0, 4, 4].backward()
    assert bool((x.grad != 0).all())  # every pixel


def test_a_linear_over_flattened_positions_is_global_and_the_flatten_keeps_tokens():
    layers = ["{op: conv2d, out_channels: 2, kernel_size: 3}", "{op: flatten}", "{op: linear, out_features: 3}"]
    result = analyze(layers, [1, 1, 8, 8])
    flatten, linear = result.layers[1], result.layers[2]
    assert flatten.field.tokens.axes[0].size == 3 and not flatten.field.whole
    assert linear.field.whole


def test_misaligned_branches_warn_and_causal_ones_do_not():
    """A residual add whose branch is shifted by a crop is flagged; a causal branch (pad on the left only:
    both paths end at the same sample, as in WaveNet) and a centred one are aligned."""

    def warnings(pad: str):
        layers = [
            "{name: x0, op: conv1d, out_channels: 4, kernel_size: 1}",
            f"{{name: pad, op: constantpad1d, padding: {pad}, value: 0.0}}",
            "{name: conv, op: conv1d, out_channels: 4, kernel_size: 3}",
            "{name: add, op: add, in: [x0, conv]}",
        ]
        result = analyze(layers, [1, 4, 32])
        assert result.ok, result.errors
        return [w.message for w in result.warnings if "not aligned" in w.message]

    assert warnings("[2, 0]") == []  # causal
    assert warnings("[1, 1]") == []  # centred
    assert warnings("[0, 2]") == []  # anti-causal: both start at the same sample
    shifted = [
        "{name: x0, op: conv1d, out_channels: 4, kernel_size: 1}",
        "{name: conv, op: conv1d, out_channels: 4, kernel_size: 5, padding: 1}",
        "{name: crop, op: constantpad1d, padding: [2, 0], value: 0.0}",
        "{name: add, op: add, in: [x0, crop]}",
    ]
    result = analyze(shifted, [1, 4, 32])
    assert any("not aligned" in w.message for w in result.warnings)


SEQUENCE = """archplan: 1
name: seq
inputs:
  feats: {feats}
layers:
  - {{name: norm, op: layernorm, normalized_shape: 6}}
  - {{name: fc, op: linear, out_features: 4}}
  - {{name: to_ncl, op: transpose, dim0: 1, dim1: 2}}
  - {{name: conv, op: conv1d, out_channels: 4, kernel_size: 3, padding: 1}}
"""


def test_declared_positions_make_fields_follow_the_sequence_dim():
    """[N, L, E] feature vectors: LayerNorm and Linear act per position, the conv over L widens the field to 3;
    the gradient of one output position reaches exactly 3 input positions (all features of each)."""
    import archplan

    result = archplan.loads(SEQUENCE.format(feats="{shape: [1, 11, 6], positions: [1]}")).analyze()
    assert [result.layer(n).receptive_field[0].size for n in ("norm", "fc", "to_ncl", "conv")] == [1, 1, 1, 3]
    assert not any("positions" in w.message for w in result.warnings)
    torch.manual_seed(0)
    norm, fc, conv = torch.nn.LayerNorm(6), torch.nn.Linear(6, 4), torch.nn.Conv1d(4, 4, 3, padding=1)
    x = torch.randn(1, 11, 6, requires_grad=True)
    conv(fc(norm(x)).transpose(1, 2))[0, 0, 5].backward()
    reached = sorted({int(i) for i in (x.grad[0] != 0).any(dim=1).nonzero()})
    assert reached == [4, 5, 6]


def test_undeclared_positions_warn_when_the_last_dim_is_read_as_features():
    import archplan

    result = archplan.loads(SEQUENCE.format(feats="[1, 11, 6]"), "seq.yaml").analyze()
    warning = next(w for w in result.warnings if "positions" in (w.hint or ""))
    assert warning.line == 4 and "norm (layernorm) reads its last dim as features" in warning.message
    assert "feats: {shape: [1, 11, 6], positions: [1]}" in warning.hint
    assert result.layer("fc").field.whole  # what the [N, C, L] reading gives


def test_channels_last_images_declare_two_positions():
    import archplan

    text = SEQUENCE.format(feats="{shape: [1, 9, 9, 3], positions: [-3, -2]}").replace(
        "normalized_shape: 6", "normalized_shape: 3"
    )
    text = text.replace("transpose, dim0: 1, dim1: 2", "permute, dims: [0, 3, 1, 2]").replace("conv1d", "conv2d")
    result = archplan.loads(text).analyze()
    assert result.ok and [a.size for a in result.layer("conv").receptive_field] == [3, 3]


@pytest.mark.parametrize(
    "positions, message",
    [
        ("[0]", "dim 0 is not one of them"),
        ("[3]", "dim 3 is not one of them"),
        ("[1, -2]", "a dim is listed twice"),
        ("1", "received 1"),
        ("[true]", "received [true]"),
    ],
)
def test_bad_positions_are_located_errors(positions, message):
    import archplan

    net = archplan.loads(SEQUENCE.format(feats=f"{{shape: [1, 11, 6], positions: {positions}}}"), "seq.yaml")
    errors = net.analyze().errors
    assert len(errors) == 1 and errors[0].line == 4 and message in errors[0].message
    assert "positions must be a list of the dims that are positions (1 to 2" in errors[0].message
