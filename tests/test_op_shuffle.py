"""PixelShuffle and PixelUnshuffle against torch: shapes, refusals, validity domain, receptive field, codegen."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import archplan  # noqa: E402
from oracle import analyze, build, measure, net_text  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    op=st.sampled_from(["PixelShuffle", "PixelUnshuffle"]),
    r=st.integers(1, 3),
    batch=st.lists(st.integers(1, 2), min_size=0, max_size=2),
    c=st.integers(1, 12),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
)
def test_matches_torch(op, r, batch, c, h, w):
    """torch and the analysis accept the same inputs, and agree on shape, params and MACs."""
    arg = "upscale_factor" if op == "PixelShuffle" else "downscale_factor"
    shape = [*batch, c, h, w]
    result = analyze(f"{{op: {op.lower()}, {arg}: {r}}}", shape)
    try:
        expected = measure(getattr(torch.nn, op)(r), [torch.randn(*shape)])
    except RuntimeError:
        expected = None
    assert result.ok == (expected is not None), (op, r, shape, result.errors)
    if result.ok:
        row = result.layers[-1]
        assert (row.output_shape, row.params, row.buffers, row.macs) == expected
        assert measure(build(row, [tuple(shape)]), [torch.randn(*shape)]) == expected  # what codegen emits


def test_unshuffle_makes_divisibility_part_of_the_domain():
    result = analyze("{op: pixelunshuffle, downscale_factor: 2}", ["N", 3, "H", "W"], symbols="symbols: {N: {}}\n")
    assert result.ok and "H % 2 == 0" in result.constraints and "W % 2 == 0" in result.constraints
    assert result.outputs["pixelunshuffle_1"][1] == 12


def test_espcn_output_is_three_times_the_input():
    layers = ["{op: conv2d, out_channels: 27, kernel_size: 3, padding: 1}", "{op: pixelshuffle, upscale_factor: 3}"]
    result = analyze(layers, ["N", 3, "H", "W"], symbols="symbols: {N: {}}\n")
    assert [str(d) for d in result.outputs["pixelshuffle_1"]] == ["N", "3", "3*H", "3*W"]


@pytest.mark.parametrize("r", [2, 3])
def test_pixelshuffle_receptive_field_against_gradients(r):
    """Each output pixel reads exactly one input pixel's field: the size is exact; the position is the mean
    over the r phases, so every gradient support lies within (r - 1) / (2r) input jumps of the field."""
    layers = [
        "{op: conv2d, out_channels: %d, kernel_size: 3, stride: 2}" % (r * r),
        f"{{op: pixelshuffle, upscale_factor: {r}}}",
    ]
    size = 33
    result = analyze(layers, [1, 1, size, size])
    conv = torch.nn.Conv2d(1, r * r, 3, stride=2)
    torch.nn.init.constant_(conv.weight, 1.0)
    x = torch.ones(1, 1, size, size, requires_grad=True)
    out = torch.nn.PixelShuffle(r)(conv(x))
    rf = result.layers[-1].receptive_field[0]
    for o in range(out.shape[2]):
        x.grad = None
        out[0, 0, o, out.shape[3] // 2].backward(retain_graph=True)
        rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)) > 0).flatten()
        start = o * rf.stride - rf.padding
        assert int(rows.max() - rows.min()) + 1 == rf.size
        assert abs(float(rows.min()) - float(start)) <= (r - 1) / (2 * r) * 2 + 1e-9


def test_generated_code_uses_the_torch_modules_and_verifies(tmp_path):
    from archplan.verify import verify

    layers = [
        "{name: down, op: pixelunshuffle, downscale_factor: 2}",
        "{name: conv, op: conv2d, out_channels: 12, kernel_size: 1}",
        "{name: up, op: pixelshuffle, upscale_factor: 2}",
    ]
    net = archplan.loads(net_text(layers, {"x": [2, 3, 8, 6]}))
    from archplan.codegen import generate_sources

    source = generate_sources(net).files["model.py"]
    assert "self.down = nn.PixelUnshuffle(2)" in source and "self.up = nn.PixelShuffle(2)" in source
    assert verify(net).ok


# -- ChannelShuffle -------------------------------------------------------------------------------------------


def shuffled(x, groups: int):
    """ShuffleNet's channel shuffle written out: (N, g, C/g, *) with dims 1 and 2 swapped, flattened back."""
    n, c = x.shape[:2]
    return x.reshape(n, groups, c // groups, *x.shape[2:]).transpose(1, 2).reshape(x.shape)


@settings(max_examples=60, deadline=None)
@given(
    groups=st.integers(1, 6),
    c=st.integers(1, 12),
    rest=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    batch=st.integers(1, 2),
)
def test_channel_shuffle_matches_torch_and_the_reshape_transpose_reshape(groups, c, rest, batch):
    shape = [batch, c, *rest]
    result = analyze(f"{{op: channelshuffle, groups: {groups}}}", shape)
    x = torch.randn(*shape)
    try:
        expected = measure(torch.nn.ChannelShuffle(groups), [x])
    except RuntimeError:
        expected = None
    assert result.ok == (expected is not None), (groups, shape, result.errors)
    if result.ok:
        row = result.layers[-1]
        assert (row.output_shape, row.params, row.buffers, row.macs) == expected == (tuple(shape), 0, 0, 0)
        emitted = build(row, [tuple(shape)])
        assert torch.equal(emitted(x), shuffled(x, groups))
        assert torch.equal(torch.nn.ChannelShuffle(groups)(x), shuffled(x, groups))


def test_channel_shuffle_divisibility_is_part_of_the_domain():
    result = analyze("{op: channelshuffle, groups: 4}", ["N", "C", "H", "W"], symbols="symbols: {N: {}, C: {}}\n")
    assert result.ok and "C % 4 == 0" in result.constraints
    assert [str(d) for d in result.outputs["channelshuffle_1"]] == ["N", "C", "H", "W"]


@pytest.mark.parametrize(
    "layer,shape,expected",
    [
        ("{op: channelshuffle, groups: 4}", [2, 6, 3, 3], "channels (6) must be divisible by groups (4): 6 % 4 = 2"),
        ("{op: channelshuffle, groups: 2}", [2, 6], "expects an input of 3 or more dims (N, C, *), received a 2-D"),
        ("{op: channelshuffle, groups: 0}", [2, 6, 3], "groups: expected an integer >= 1, received 0"),
        ("{op: channelshuffle}", [2, 6, 3], "ChannelShuffle requires the argument 'groups'"),
    ],
)
def test_channel_shuffle_errors_are_located(layer, shape, expected):
    result = analyze(layer, shape)
    assert not result.ok
    error = result.errors[0]
    assert (error.line, error.layer) == (6, "channelshuffle_1") and expected in error.message, error


def test_channel_shuffle_keeps_the_receptive_field():
    layers = ["{op: conv2d, out_channels: 6, kernel_size: 3, stride: 2}", "{op: channelshuffle, groups: 3}"]
    result = analyze(layers, [1, 2, 9, 9])
    assert result.layers[-1].receptive_field == result.layers[0].receptive_field


def test_shufflenet_unit_generates_nn_channelshuffle_and_verifies():
    from archplan.codegen import generate_sources
    from archplan.verify import load_module, verify

    layers = [
        "{name: gconv, op: conv2d, out_channels: 12, kernel_size: 1, groups: 3}",
        "{name: shuffle, op: channelshuffle, groups: 3}",
        "{name: dw, op: conv2d, out_channels: 12, kernel_size: 3, padding: 1, groups: 12}",
    ]
    net = archplan.loads(net_text(layers, {"x": [2, 6, 5, 5]}), "t.yaml")
    source = generate_sources(net).files["model.py"]
    assert "self.shuffle = nn.ChannelShuffle(3)" in source
    assert verify(net).ok
    model = load_module(source, "shufflenet_unit").build_model()
    x = torch.randn(2, 12, 5, 5)
    assert torch.equal(model.shuffle(x), shuffled(x, 3))
