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
