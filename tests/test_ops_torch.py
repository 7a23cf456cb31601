"""Every op rule against what torch builds and runs: shape, parameters, buffers, MACs (flop_counter / 2)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from oracle import analyze, build, measure  # noqa: E402

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_matches(layer: str, shapes, inputs_layer: str | None = None):
    if not isinstance(shapes, dict):
        shapes = {"x": shapes}
    result = analyze(layer, shapes)
    by_name = {name: torch.randn(*s) for name, s in shapes.items()}
    try:
        row = result.layers[-1] if result.ok else None
        ins = [by_name[n] for n in row.node.inputs] if row else []
        got = measure(build(row, [tuple(t.shape) for t in ins]), ins) if row else None
        torch_error = None
    except (RuntimeError, ValueError, TypeError) as exc:
        got, torch_error = None, exc
    if not result.ok:
        assert got is None or torch_error is not None or any(d <= 0 for d in got[0]), (
            f"analysis rejected {layer} on {shapes} but torch ran it: {result.errors}"
        )
        return result
    assert torch_error is None, f"torch rejected {layer} on {shapes} ({torch_error}) but analysis accepted it"
    shape, params, buffers, macs = got
    assert row.output_shape == shape, (layer, shapes)
    assert (row.params, row.buffers, row.macs) == (params, buffers, macs), (layer, shapes)
    return result


@FAST
@given(
    cin=st.integers(1, 4),
    cout=st.integers(1, 6),
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    k=st.integers(1, 5),
    s=st.integers(1, 3),
    p=st.integers(0, 3),
    d=st.integers(1, 2),
    g=st.sampled_from([1, 2]),
    bias=st.booleans(),
)
def test_conv2d(cin, cout, h, w, k, s, p, d, g, bias):
    cin, cout = cin * g, cout * g
    assert_matches(
        f"{{op: conv2d, out_channels: {cout}, kernel_size: {k}, stride: {s}, padding: {p}, "
        f"dilation: {d}, groups: {g}, bias: {str(bias).lower()}}}",
        [2, cin, h, w],
    )


@FAST
@given(
    h=st.integers(3, 20),
    w=st.integers(3, 20),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    mode=st.sampled_from(["same", "valid"]),
)
def test_conv2d_named_padding_stride1(h, w, kh, kw, mode):
    assert_matches(f"{{op: conv2d, out_channels: 3, kernel_size: [{kh}, {kw}], padding: {mode}}}", [1, 2, h, w])


@FAST
@given(size=st.integers(1, 40), k=st.integers(1, 5), s=st.integers(1, 4))
def test_conv2d_same_any_stride_matches_tensorflow(size, k, s):
    """TF 'same': out = ceil(in/s); pad total max((out-1)*s + k - in, 0), the extra at the end."""
    layer = f"{{op: conv2d, out_channels: 1, kernel_size: {k}, stride: {s}, padding: same}}"
    result = analyze(layer, [1, 1, size, size])
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    x = torch.nn.functional.pad(torch.randn(1, 1, size, size), (total // 2, total - total // 2) * 2)
    y = torch.nn.functional.conv2d(x, torch.randn(1, 1, k, k), stride=s)
    assert result.layers[0].output_shape == tuple(y.shape) == (1, 1, out, out)


@FAST
@given(
    cin=st.integers(1, 4),
    cout=st.integers(1, 4),
    length=st.integers(1, 30),
    k=st.integers(1, 5),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
)
def test_conv1d(cin, cout, length, k, s, p):
    assert_matches(
        f"{{op: conv1d, out_channels: {cout}, kernel_size: {k}, stride: {s}, padding: {p}}}", [2, cin, length]
    )


@settings(max_examples=25, deadline=None)
@given(size=st.integers(2, 9), k=st.integers(1, 3), s=st.integers(1, 2), p=st.integers(0, 1))
def test_conv3d(size, k, s, p):
    assert_matches(
        f"{{op: conv3d, out_channels: 2, kernel_size: {k}, stride: {s}, padding: {p}}}", [1, 2, size, size + 1, size]
    )


@FAST
@given(
    cin=st.integers(1, 4),
    cout=st.integers(1, 4),
    h=st.integers(1, 12),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    op=st.integers(0, 2),
    d=st.integers(1, 2),
    g=st.sampled_from([1, 2]),
)
def test_conv_transpose2d(cin, cout, h, k, s, p, op, d, g):
    cin, cout = cin * g, cout * g
    assert_matches(
        f"{{op: convtranspose2d, out_channels: {cout}, kernel_size: {k}, stride: {s}, padding: {p}, "
        f"output_padding: {op}, dilation: {d}, groups: {g}}}",
        [2, cin, h, h + 1],
    )


@FAST
@given(
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    k=st.integers(1, 4),
    s=st.integers(1, 4),
    p=st.integers(0, 2),
    d=st.integers(1, 2),
    ceil=st.booleans(),
    kind=st.sampled_from(["maxpool2d", "avgpool2d"]),
)
def test_pool2d(h, w, k, s, p, d, ceil, kind):
    dilation = f", dilation: {d}" if kind == "maxpool2d" else ""
    assert_matches(
        f"{{op: {kind}, kernel_size: {k}, stride: {s}, padding: {p}{dilation}, ceil_mode: {str(ceil).lower()}}}",
        [1, 3, h, w],
    )


@FAST
@given(length=st.integers(1, 30), k=st.integers(1, 4), ceil=st.booleans())
def test_maxpool1d_default_stride(length, k, ceil):
    assert_matches(f"{{op: maxpool1d, kernel_size: {k}, ceil_mode: {str(ceil).lower()}}}", [2, 3, length])


@FAST
@given(
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    oh=st.integers(1, 6),
    ow=st.integers(1, 6),
    kind=st.sampled_from(["adaptiveavgpool2d", "adaptivemaxpool2d"]),
)
def test_adaptive_pool(h, w, oh, ow, kind):
    assert_matches(f"{{op: {kind}, output_size: [{oh}, {ow}]}}", [2, 3, h, w])


@FAST
@given(
    batch=st.integers(1, 3), fin=st.integers(1, 30), fout=st.integers(1, 30), bias=st.booleans(), extra=st.booleans()
)
def test_linear(batch, fin, fout, bias, extra):
    shape = [batch, 4, fin] if extra else [batch, fin]
    assert_matches(f"{{op: linear, out_features: {fout}, bias: {str(bias).lower()}}}", shape)


@pytest.mark.parametrize(
    "layer,shape",
    [
        ("{op: batchnorm2d}", [2, 5, 4, 4]),
        ("{op: batchnorm2d, affine: false}", [2, 5, 4, 4]),
        ("{op: batchnorm2d, track_running_stats: false}", [2, 5, 4, 4]),
        ("{op: batchnorm1d}", [2, 7]),
        ("{op: batchnorm1d}", [2, 7, 9]),
        ("{op: layernorm}", [2, 3, 8]),
        ("{op: layernorm, normalized_shape: [3, 8]}", [2, 3, 8]),
        ("{op: layernorm, bias: false}", [2, 8]),
        ("{op: groupnorm, num_groups: 2}", [2, 6, 4, 4]),
        ("{op: localresponsenorm, size: 5}", [2, 8, 6, 6]),
        ("{op: flatten}", [2, 3, 4, 5]),
        ("{op: flatten, start_dim: 2}", [2, 3, 4, 5]),
        ("{op: upsample, scale_factor: 2}", [1, 3, 5, 7]),
        ("{op: upsample, scale_factor: 2, mode: bilinear}", [1, 3, 5, 7]),
        ("{op: upsample, scale_factor: 1.5}", [1, 3, 5, 7]),
        ("{op: upsample, size: [9, 4], mode: bilinear, align_corners: true}", [1, 3, 5, 7]),
        ("{op: zeropad2d, padding: [1, 2, 3, 4]}", [1, 3, 5, 7]),
        ("{op: zeropad2d, padding: 2}", [1, 3, 5, 7]),
        ("{op: dropout, p: 0.3}", [2, 10]),
        ("{op: dropout2d}", [2, 3, 4, 4]),
        ("{op: softmax, dim: 1}", [2, 10]),
        ("{op: logsoftmax, dim: -1}", [2, 10]),
        *[
            (f"{{op: {a}}}", [2, 3, 4])
            for a in (
                "relu",
                "relu6",
                "leakyrelu",
                "elu",
                "gelu",
                "silu",
                "sigmoid",
                "tanh",
                "hardswish",
                "identity",
                "Leaky_ReLU",
                "ReLU",
            )
        ],
    ],
)
def test_shape_preserving_and_reshaping(layer, shape):
    assert_matches(layer, shape)


@pytest.mark.parametrize(
    "layer,shapes",
    [
        ("{op: add, in: [x, y]}", {"x": [2, 3, 4, 4], "y": [2, 3, 4, 4]}),
        ("{op: mul, in: [x, y]}", {"x": [2, 3, 4, 4], "y": [2, 3, 1, 1]}),
        ("{op: concat, in: [x, y]}", {"x": [2, 3, 4, 4], "y": [2, 5, 4, 4]}),
        ("{op: concat, dim: -1, in: [x, y]}", {"x": [2, 3, 4, 4], "y": [2, 3, 4, 1]}),
        ("{op: cat, dim: 2, in: [x, y, x]}", {"x": [2, 3, 4, 4], "y": [2, 3, 2, 4]}),
    ],
)
def test_merges(layer, shapes):
    assert_matches(layer, shapes)


@pytest.mark.parametrize(
    "layer,shapes",
    [
        ("{op: add, in: [x, y]}", {"x": [2, 3, 4, 4], "y": [2, 3, 5, 4]}),
        ("{op: concat, in: [x, y]}", {"x": [2, 3, 4, 4], "y": [2, 5, 4, 3]}),
    ],
)
def test_merge_mismatches_are_errors(layer, shapes):
    result = analyze(layer, shapes)
    assert not result.ok
    assert "differs" in result.errors[0].message


@FAST
@given(
    op=st.sampled_from(["add", "sub", "mul", "div"]),
    a=st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=4),
    b=st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=4),
)
def test_elementwise_broadcasting_matches_torch(op, a, b):
    """torch's broadcasting: right-aligned dims, equal or 1; otherwise a located error naming both shapes."""
    result = analyze(f"{{op: {op}, in: [x, y]}}", {"x": a, "y": b})
    try:
        expected = tuple(getattr(torch, op)(torch.ones(a), torch.ones(b)).shape)
    except RuntimeError:
        expected = None
    assert result.ok == (expected is not None), (a, b, result.errors)
    if expected is None:
        assert str(a).replace(" ", "") in result.errors[0].message.replace(" ", "")
        assert result.errors[0].line is not None
    else:
        assert result.layers[-1].output_shape == expected and result.layers[-1].macs == 0
