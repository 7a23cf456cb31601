"""Layout ops (reshape/view, unflatten, permute, transpose, expand, slice, select, mean, sum, flatten) against
torch: accepted inputs, shapes, params, MACs, emitted code; symbolic sizes and the validity domain; receptive
fields against input gradients; located errors; a generated model that verifies."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import archplan  # noqa: E402
from archplan.ops.fields import AxisRF, Merged  # noqa: E402
from oracle import analyze, build, measure, net_text  # noqa: E402

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUM = "sum"
SYMBOLS = "symbols: {N: {}}\n"


# -- against torch --------------------------------------------------------------------------------------------
def _yaml(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    return str(value)


def assert_like_torch(op: str, args: dict, shape: list, run):
    """The analysis accepts the layer exactly when torch runs it (an empty result counts as a refusal), and
    agrees on shape, params and MACs; the emitted template gives torch's result."""
    layer = "{" + ", ".join([f"op: {op}", *(f"{k}: {_yaml(v)}" for k, v in args.items())]) + "}"
    result = analyze(layer, shape)
    x = torch.randn(*shape)
    try:
        expected = measure(run, [x])
    except (RuntimeError, IndexError, ValueError):
        expected = None
    if expected is not None and 0 in expected[0]:
        expected = None  # torch makes an empty tensor; the analysis refuses an empty dim
    assert result.ok == (expected is not None), (layer, shape, result.errors, expected)
    if not result.ok:
        problem = result.errors[0]
        assert problem.line == 6 and problem.layer == f"{op}_1", problem
        return
    row = result.layers[-1]
    assert (row.output_shape, row.params, row.buffers, row.macs) == expected, (layer, shape)
    assert measure(build(row, [tuple(shape)]), [x]) == expected, (layer, shape, row.node.op.emit(row.node.args, []))
    got, want = build(row, [tuple(shape)])(x), run(x)
    assert torch.equal(got, want), (layer, shape)


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4)


def dim_of(rank: int):
    return st.integers(-rank - 1, rank)


@FAST
@given(data=st.data(), shape=shapes)
def test_reshape_matches_torch(data, shape):
    total = 1
    for s in shape:
        total *= s
    target = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    if data.draw(st.booleans()):  # often a valid shape: the last entry makes up the rest
        known = 1
        for s in target[:-1]:
            known *= s
        target[-1] = total // known if total % known == 0 else target[-1]
    if data.draw(st.booleans()):
        target[data.draw(st.integers(0, len(target) - 1))] = -1
    op = data.draw(st.sampled_from(["reshape", "view"]))
    assert_like_torch(op, {"shape": target}, shape, lambda x: x.reshape(target))


@FAST
@given(data=st.data(), shape=shapes)
def test_unflatten_matches_torch(data, shape):
    dim = data.draw(dim_of(len(shape)))
    sizes = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    if data.draw(st.booleans()):
        sizes[data.draw(st.integers(0, len(sizes) - 1))] = -1
    assert_like_torch("unflatten", {"dim": dim, "sizes": sizes}, shape, lambda x: x.unflatten(dim, sizes))


@FAST
@given(data=st.data(), shape=shapes)
def test_permute_and_transpose_match_torch(data, shape):
    rank = len(shape)
    dims = data.draw(st.permutations(range(rank)))
    dims = [d - rank if data.draw(st.booleans()) else d for d in dims]
    if data.draw(st.integers(0, 3)) == 0:  # a repeated dim, or one too many or too few
        dims = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=max(rank - 1, 1), max_size=rank + 1))
    assert_like_torch("permute", {"dims": dims}, shape, lambda x: x.permute(dims))
    d0, d1 = data.draw(dim_of(rank)), data.draw(dim_of(rank))
    assert_like_torch("transpose", {"dim0": d0, "dim1": d1}, shape, lambda x: x.transpose(d0, d1))


@FAST
@given(data=st.data(), shape=shapes)
def test_expand_matches_torch(data, shape):
    target = [data.draw(st.sampled_from([-1, s, s + 1, 3])) for s in shape]
    target = data.draw(st.lists(st.sampled_from([-1, 1, 2, 3]), max_size=2)) + target
    if data.draw(st.integers(0, 4)) == 0 and len(target) > 1:  # too few sizes
        target = target[1:] if len(target) > len(shape) else target[:-1]
    assert_like_torch("expand", {"shape": target}, shape, lambda x: x.expand(target))


@FAST
@given(data=st.data(), shape=st.lists(st.integers(1, 7), min_size=1, max_size=4))
def test_slice_and_select_match_torch(data, shape):
    rank = len(shape)
    dim = data.draw(dim_of(rank))
    args = {"dim": dim}
    start = data.draw(st.one_of(st.none(), st.integers(-8, 8)))
    end = data.draw(st.one_of(st.none(), st.integers(-8, 8)))
    step = data.draw(st.integers(1, 3))
    if start is not None:
        args["start"] = start
    if end is not None:
        args["end"] = end
    if step != 1:
        args["step"] = step

    def run(x):
        index = [slice(None)] * x.dim()
        index[dim] = slice(start, end, step)  # IndexError for a dim out of range, as torch says
        return x[tuple(index)]

    assert_like_torch("slice", args, shape, run)
    index = data.draw(st.integers(-8, 8))
    assert_like_torch("select", {"dim": dim, "index": index}, shape, lambda x: x.select(dim, index))


@FAST
@given(data=st.data(), shape=shapes)
def test_mean_and_sum_match_torch(data, shape):
    rank = len(shape)
    dims = data.draw(st.lists(st.integers(-rank - 1, rank), max_size=rank))
    keepdim = data.draw(st.booleans())
    single = len(dims) == 1 and data.draw(st.booleans())
    dim = dims[0] if single else dims
    for op, method in (("mean", "mean"), (SUM, "sum")):
        assert_like_torch(
            op, {"dim": dim, "keepdim": keepdim}, shape, lambda x: getattr(x, method)(dim=dim, keepdim=keepdim)
        )
    assert_like_torch("mean", {}, shape, lambda x: x.mean())
    everything = lambda x: x.sum(dim=tuple(range(x.dim())), keepdim=True)  # noqa: E731
    assert_like_torch(SUM, {"keepdim": True}, shape, everything)


@FAST
@given(data=st.data(), shape=shapes)
def test_flatten_matches_torch(data, shape):
    start, end = data.draw(dim_of(len(shape))), data.draw(dim_of(len(shape)))
    result = analyze(f"{{op: flatten, start_dim: {start}, end_dim: {end}}}", shape)
    try:
        expected = measure(torch.nn.Flatten(start, end), [torch.randn(*shape)])
    except (RuntimeError, IndexError):
        expected = None
    assert result.ok == (expected is not None), (start, end, shape, result.errors)
    if result.ok:
        row = result.layers[-1]
        assert (row.output_shape, row.params, row.buffers, row.macs) == expected


def test_flop_counter_counts_nothing_for_layout_ops_and_reductions():
    """The rule is 'as torch's flop counter counts': 0 for all of them (mean and sum included)."""
    x = torch.randn(2, 3, 8, 8)
    calls = [
        lambda: x.reshape(2, -1),
        lambda: x.unflatten(1, (1, 3)),
        lambda: x.permute(0, 2, 3, 1).contiguous(),
        lambda: x.transpose(1, 3).contiguous(),
        lambda: x[:, :1].expand(2, 5, 8, 8).contiguous(),
        lambda: x[:, :, 1::2],
        lambda: x[:, 0],
        lambda: x.mean(dim=(2, 3)),
        lambda: x.sum(dim=1, keepdim=True),
    ]
    for call in calls:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            call()
        assert counter.get_total_flops() == 0


# -- symbolic sizes and the validity domain -------------------------------------------------------------------
def _out(result):
    from archplan import dims

    return [dims.to_str(d) for d in result.layers[-1].output_shape]


def test_reshape_infers_a_symbolic_size_exactly():
    result = analyze("{op: reshape, shape: [N, C, -1]}", ["N", "C", "H", "W"], symbols=SYMBOLS)
    assert result.ok and _out(result) == ["N", "C", "H*W"] and result.constraints == []
    result = analyze('{op: reshape, shape: [N, "H*W", C]}', ["N", "C", "H", "W"], symbols=SYMBOLS)
    assert result.ok and _out(result) == ["N", "H*W", "C"] and result.constraints == []


def test_reshape_with_a_division_adds_it_to_the_domain():
    result = analyze("{op: reshape, shape: [N, -1, 4]}", ["N", "C", "H", "W"], symbols=SYMBOLS)
    assert result.ok and _out(result) == ["N", "floor(C*H*W/4)", "4"]
    assert "C*H*W % 4 == 0" in result.constraints
    result = analyze("{op: reshape, shape: [N, -1, 4]}", ["N", 3, "H", 3], symbols=SYMBOLS)
    assert result.ok and "H % 4 == 0" in result.constraints


def test_reshape_to_a_shape_of_another_size_is_a_condition_or_an_error():
    result = analyze("{op: reshape, shape: [N, 12]}", ["N", 3, "H", "H"], symbols=SYMBOLS)
    assert result.ok and any("H" in c for c in result.constraints)  # 3*H**2 == 12: only H = 2
    result = analyze("{op: reshape, shape: [N, 12]}", ["N", 3, 5, 5], symbols=SYMBOLS)
    assert not result.ok and "shape [N, 12] is invalid for input [N, 3, 5, 5]" in result.errors[0].message


def test_slice_of_a_symbolic_size():
    result = analyze("{op: slice, dim: 2, start: 1}", ["N", 3, "L", "W"], symbols=SYMBOLS)
    assert _out(result) == ["N", "3", "L - 1", "W"] and "L >= 2" in result.constraints
    result = analyze("{op: slice, dim: 2, start: -2}", ["N", 3, "L", "W"], symbols=SYMBOLS)
    assert _out(result) == ["N", "3", "Min(2, L)", "W"] and result.constraints == []
    result = analyze("{op: slice, dim: 2, end: -1, step: 2}", ["N", 3, "L", "W"], symbols=SYMBOLS)
    assert _out(result) == ["N", "3", "floor(L/2)", "W"] and "L >= 2" in result.constraints
    result = analyze("{op: slice, dim: 2, start: 4}", ["N", 3, "L", "W"], {"L": 4}, symbols=SYMBOLS)
    assert not result.ok and "slice [4:] along dim 2 of [N, 3, 4, W] is empty" in result.errors[0].message


def test_symbolic_slice_sizes_agree_with_python_slicing():
    import sympy

    from archplan.ops.indexing import _slice_size

    length = sympy.Symbol("L", integer=True, positive=True)
    for start in (0, 1, 3, -1, -3):
        for end in (None, 2, 5, -1, -2):
            for step in (1, 2, 3):
                first, count = _slice_size(length, start, end, step)
                for n in range(1, 9):
                    want = range(n)[start:end:step]
                    got = int(sympy.sympify(count).subs(length, n))
                    assert got == len(want) or (len(want) == 0 and got <= 0), (start, end, step, n, count)
                    if len(want):  # the receptive field's offset: output 0 reads input `first`
                        assert int(sympy.sympify(first).subs(length, n)) == want.start, (start, end, step, n)


def test_select_and_expand_on_symbolic_sizes_are_conditions():
    result = analyze("{op: select, dim: 2, index: 3}", ["N", 3, "H", "W"], symbols=SYMBOLS)
    assert result.ok and _out(result) == ["N", "3", "W"] and "H >= 4" in result.constraints
    result = analyze("{op: expand, shape: [N, 3, H, 16]}", ["N", 3, "H", "W"], symbols=SYMBOLS)
    assert result.ok and {"W >= 16", "W <= 16"} <= set(result.constraints)


# -- receptive fields -----------------------------------------------------------------------------------------
def _ones_conv(cin: int, cout: int, k: int, stride: int = 1):
    conv = torch.nn.Conv2d(cin, cout, k, stride=stride, bias=False)
    torch.nn.init.constant_(conv.weight, 1.0)
    return conv


def assert_field_matches_gradients(field, run, size: int):
    """Every sampled output pixel's input gradient fills exactly [o*S - P, o*S - P + r - 1] (clipped) per axis."""
    x = torch.ones(1, 1, size, size, requires_grad=True)
    out = run(x)
    rows, cols = field.spatial
    for oh in range(out.shape[2]):
        for ow in sorted({0, out.shape[3] // 2, out.shape[3] - 1}):
            x.grad = None
            out[0, 0, oh, ow].backward(retain_graph=True)
            support = x.grad[0, 0] != 0
            for axis, o, rf in ((1, oh, rows), (0, ow, cols)):
                hit = torch.nonzero(support.any(dim=axis)).flatten().tolist()
                first = o * rf.stride - rf.padding
                want = [i for i in range(first, first + rf.size) if 0 <= i < size]
                assert hit == want, (o, rf, hit)


def test_permute_to_channels_last_and_back_keeps_the_field():
    plain = [
        "{op: conv2d, out_channels: 2, kernel_size: 3, stride: 2}",
        "{op: conv2d, out_channels: 1, kernel_size: 3}",
    ]
    permuted = [plain[0], "{op: permute, dims: [0, 2, 3, 1]}", "{op: permute, dims: [0, 3, 1, 2]}", plain[1]]
    a, b = analyze(plain, [1, 1, 17, 17]), analyze(permuted, [1, 1, 17, 17])
    assert a.layers[-1].field == b.layers[-1].field
    nhwc = b.layers[1].field
    assert [type(e) for e in nhwc.axes] == [type(None), AxisRF, AxisRF, type(None)]
    c1, c2 = _ones_conv(1, 2, 3, 2), _ones_conv(2, 1, 3)
    run = lambda x: c2(c1(x).permute(0, 2, 3, 1).permute(0, 3, 1, 2))  # noqa: E731
    assert_field_matches_gradients(b.layers[-1].field, run, 17)


def test_transpose_moves_the_spatial_axes():
    layers = ["{op: conv2d, out_channels: 2, kernel_size: [3, 1]}", "{op: transpose, dim0: 2, dim1: 3}"]
    field = analyze(layers, [1, 1, 9, 9]).layers[-1].field
    assert [a.size for a in field.spatial] == [1, 3]


def test_a_spatial_slice_with_a_step_is_exact():
    layers = [
        "{op: conv2d, out_channels: 2, kernel_size: 3}",
        "{op: slice, dim: 2, start: 1, step: 2}",
        "{op: slice, dim: -1, start: 2, end: -1, step: 3}",
        "{op: slice, dim: 1, end: 1}",
        "{op: conv2d, out_channels: 1, kernel_size: 3}",
    ]
    result = analyze(layers, [1, 1, 23, 23])
    rows, cols = result.layers[-1].field.spatial
    assert (rows.size, rows.stride, rows.padding) == (7, 2, -1)
    assert (cols.size, cols.stride, cols.padding) == (9, 3, -2)
    c1, c2 = _ones_conv(1, 2, 3), _ones_conv(1, 1, 3)
    assert_field_matches_gradients(result.layers[-1].field, lambda x: c2(c1(x)[:, :1, 1::2, 2:-1:3]), 23)


def test_mean_over_height_and_width_is_global_and_a_partial_mean_covers_the_axis():
    layers = ["{op: conv2d, out_channels: 2, kernel_size: 3}", "{op: mean, dim: [2, 3], keepdim: true}"]
    assert analyze(layers, [1, 1, 9, 9]).layers[-1].field.whole
    x = torch.ones(1, 1, 9, 9, requires_grad=True)
    _ones_conv(1, 2, 3)(x).mean(dim=(2, 3), keepdim=True)[0, 0, 0, 0].backward()
    assert bool((x.grad != 0).all())  # every input pixel
    layers = [
        "{op: conv2d, out_channels: 2, kernel_size: 3}",
        "{op: permute, dims: [0, 2, 3, 1]}",
        "{op: mean, dim: [1, 2]}",
    ]
    result = analyze(layers, [1, 1, 9, 9])
    assert result.layers[-1].field.whole and result.layers[-1].receptive_field is None
    channels = analyze(["{op: conv2d, out_channels: 2, kernel_size: 3}", f"{{op: {SUM}, dim: 1}}"], [1, 1, 9, 9])
    assert [a.size for a in channels.layers[-1].field.spatial] == [3, 3] and not channels.layers[-1].field.whole
    layers = ["{op: conv2d, out_channels: 1, kernel_size: 3}", "{op: mean, dim: 2, keepdim: true}"]
    result = analyze(layers, [1, 1, 11, 11])
    rows, cols = result.layers[-1].field.spatial
    assert (rows.size, cols.size) == (11, 3) and not result.layers[-1].field.whole
    conv = _ones_conv(1, 1, 3)
    assert_field_matches_gradients(result.layers[-1].field, lambda x: conv(x).mean(dim=2, keepdim=True), 11)


def test_select_on_a_spatial_axis_removes_it():
    layers = ["{op: conv2d, out_channels: 2, kernel_size: [3, 5]}", "{op: select, dim: 2, index: -1}"]
    field = analyze(layers, [1, 1, 9, 9]).layers[-1].field
    assert [type(a) for a in field.axes] == [type(None), type(None), AxisRF] and field.spatial[0].size == 5


def test_flatten_then_unflatten_restores_the_axes():
    layers = [
        "{op: conv2d, out_channels: 2, kernel_size: 3, stride: 2}",
        "{op: flatten, start_dim: 2}",
        "{op: unflatten, dim: 2, sizes: [7, 7]}",
        "{op: conv2d, out_channels: 1, kernel_size: 3}",
    ]
    result = analyze(layers, [1, 1, 15, 15])
    conv, flat, grid = (result.layers[i].field for i in range(3))
    assert isinstance(flat.tokens, Merged) and grid == conv
    c1, c2 = _ones_conv(1, 2, 3, 2), _ones_conv(2, 1, 3)
    assert_field_matches_gradients(result.layers[-1].field, lambda x: c2(c1(x).flatten(2).unflatten(2, (7, 7))), 15)


def test_tokens_round_trip_like_a_vision_transformer_restores_the_axes():
    """patches -> [N, L, C] tokens -> back to [N, C, H/16, W/16] (symbolic) keeps each axis's field."""
    layers = [
        "{name: patch, op: conv2d, out_channels: 8, kernel_size: 16, stride: 16}",
        "{op: flatten, start_dim: 2}",
        "{op: transpose, dim0: 1, dim1: 2}",
        "{op: layernorm, normalized_shape: 8}",
        "{op: transpose, dim0: 1, dim1: 2}",
        '{name: grid, op: reshape, shape: [N, 8, "H//16", "W//16"]}',
    ]
    result = analyze(layers, ["N", 3, "H", "W"], symbols=SYMBOLS)
    assert result.ok, result.errors
    assert result.layer("grid").field == result.layer("patch").field
    layers[-1] = '{name: grid, op: unflatten, dim: 2, sizes: ["H//16", "W//16"]}'
    result = analyze(layers, ["N", 3, "H", "W"], symbols=SYMBOLS)
    assert result.layer("grid").field == result.layer("patch").field


def test_reshapes_that_keep_or_merge_axes_and_ones_that_cut_them():
    conv = "{op: conv2d, out_channels: 4, kernel_size: 3}"
    heads = analyze([conv, "{op: reshape, shape: [1, 2, 2, 6, 6]}"], [1, 1, 8, 8]).layers[-1].field
    assert [type(a) for a in heads.axes] == [type(None), type(None), type(None), AxisRF, AxisRF]
    merged = analyze([conv, "{op: reshape, shape: [1, 4, 36]}"], [1, 1, 8, 8]).layers[-1].field
    assert merged.tokens is not None and len(merged.tokens.axes) == 2 and not merged.lost
    cut = analyze([conv, "{op: reshape, shape: [1, 4, 3, 12]}"], [1, 1, 8, 8]).layers[-1]
    assert cut.field.lost and cut.receptive_field is None
    swapped = analyze([conv, "{op: flatten, start_dim: 2}", "{op: unflatten, dim: 2, sizes: [4, 9]}"], [1, 1, 8, 8])
    assert swapped.layers[-1].field.lost  # 36 positions are not a 4x9 grid


def test_expand_keeps_existing_fields_and_new_dims_have_none():
    layers = ["{op: conv2d, out_channels: 1, kernel_size: 3}", "{op: expand, shape: [2, 1, 3, 6, 6]}"]
    field = analyze(layers, [1, 1, 8, 8]).layers[-1].field
    assert field.axes[0] is None and [a.size for a in field.spatial] == [3, 3]


# -- errors ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layer,shape,message",
    [
        (
            "{op: permute, dims: [0, 2, 1]}",
            [2, 3, 4, 5],
            "dims [0, 2, 1] name 3 dims, but the input [2, 3, 4, 5] has 4",
        ),
        ("{op: permute, dims: [0, 1, 1, 2]}", [2, 3, 4, 5], "repeat a dim; expected a permutation of 0..3"),
        (
            "{op: transpose, dim0: 1, dim1: 4}",
            [2, 3, 4, 5],
            "dim1 4 is out of range for a 4-D tensor (expected -4 to 3)",
        ),
        ("{op: reshape, shape: [5, -1]}", [2, 3, 8, 8], "shape [5, -1] is invalid for input [2, 3, 8, 8] of size 384"),
        ("{op: reshape, shape: [2, 5]}", [2, 3], "shape [2, 5] is invalid for input [2, 3] of size 6: 10 vs 6"),
        ("{op: reshape, shape: [-1, -1]}", [2, 3], "shape: only one size can be inferred (-1), received [-1, -1]"),
        ("{op: reshape, shape: [0, 6]}", [2, 3], "shape[0]: expected a positive size or -1, received 0"),
        ("{op: unflatten, dim: 1, sizes: [2, -1]}", [2, 3], "sizes [2, -1] don't multiply up to dim 1 of [2, 3]"),
        (
            "{op: expand, shape: [2, 4, 8]}",
            [2, 3, 8],
            "the size 4 at index 1 of [2, 4, 8] must match the existing size 3",
        ),
        ("{op: expand, shape: [3, 8]}", [2, 3, 8], "the shape [3, 8] has 2 sizes, fewer than the 3 dims"),
        ("{op: expand, shape: [-1, 2, 3]}", [2, 3], "-1 at index 0 of [-1, 2, 3] is not allowed for a new dim"),
        ("{op: slice, dim: 1, start: 5}", [2, 3], "slice [5:] along dim 1 of [2, 3] is empty"),
        ("{op: slice, dim: 1, step: 0}", [2, 3], "step: expected an integer >= 1, received 0"),
        ("{op: select, dim: 1, index: -4}", [2, 3], "index -4 is out of range for dim 1 of [2, 3] (expected -3 to 2)"),
        ("{op: mean, dim: [1, -1]}", [2, 3], "mean: dim [1, -1] names a dim more than once"),
    ],
)
def test_located_errors(layer, shape, message):
    result = analyze(layer, shape)
    assert not result.ok
    problem = result.errors[0]
    assert message in problem.message, problem.message
    assert problem.line == 6 and problem.layer.endswith("_1")


# -- generated code -------------------------------------------------------------------------------------------
def test_generated_model_uses_each_op_and_verifies():
    from archplan.codegen import generate_sources
    from archplan.verify import verify

    layers = [
        "{name: conv, op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}",
        "{name: nhwc, op: permute, dims: [0, 2, 3, 1]}",
        "{name: nchw, op: transpose, dim0: 1, dim1: 3}",
        "{name: back, op: transpose, dim0: -1, dim1: -2}",
        "{name: rows, op: slice, dim: 2, start: 1, step: 2}",
        "{name: cols, op: slice, dim: -1, end: -1}",
        "{name: tokens, op: flatten, start_dim: 2}",
        "{name: grid, op: unflatten, dim: 2, sizes: [4, -1]}",
        "{name: flat, op: reshape, shape: [2, 4, -1]}",
        "{name: heads, op: view, shape: [2, 2, 2, 28]}",
        "{name: first, op: select, dim: 1, index: 0}",
        "{name: wide, op: expand, shape: [3, -1, 2, 28]}",
        "{name: avg, op: mean, dim: [0, -1], keepdim: true}",
        f"{{name: total, op: {SUM}, dim: 2}}",
    ]
    net = archplan.loads(net_text(layers, {"x": [2, 3, 8, 8]}), "t.yaml")
    source = generate_sources(net).files["model.py"]
    for line in [
        "nhwc = conv.permute((0, 2, 3, 1))  # [2, 8, 8, 4]",
        "nchw = nhwc.transpose(1, 3)",
        "rows = back[:, :, 1::2]  # [2, 4, 4, 8]",
        "cols = rows[..., :-1]  # [2, 4, 4, 7]",
        "grid = tokens.unflatten(2, (4, -1))",
        "flat = grid.reshape((2, 4, -1))",
        "heads = flat.reshape((2, 2, 2, 28))",
        "first = heads[:, 0]",
        "wide = first.expand((3, -1, 2, 28))",
        "avg = wide.mean(dim=(0, -1), keepdim=True)  # [1, 2, 2, 1]",
        "total = avg.sum(dim=2)  # [1, 2, 1]",
    ]:
        assert line in source, line
    assert verify(net).ok


def test_describe_labels():
    result = analyze(
        [
            "{op: permute, dims: [0, 2, 3, 1]}",
            "{op: reshape, shape: [N, -1, 3]}",
            "{op: slice, dim: 1, start: 1}",
            "{op: mean, dim: 1}",
        ],
        ["N", 3, 4, 4],
        symbols=SYMBOLS,
    )
    labels = [row.node.op.describe(row.node.args) for row in result.layers]
    assert labels == ["permute 0,2,3,1", "reshape [N, -1, 3]", "slice dim 1 [1:]", "mean dim 1"]


def test_a_symbolic_batch_is_written_as_minus_one():
    """reshape [N, 48] on [N, 3, 4, 4]: the generated code does not fix N (torch infers it)."""
    result = analyze("{op: reshape, shape: [N, 48]}", ["N", 3, 4, 4], symbols=SYMBOLS)
    emission = result.layers[-1].node.op.emit(result.layers[-1].node.args, [])
    assert dict(emission.kwargs)["shape"] == (-1, 48)


def test_a_reshape_that_flattens_positions_into_a_linear_warns_like_flatten():
    layers = [
        "{op: conv2d, out_channels: 4, kernel_size: 3}",
        "{op: reshape, shape: [N, -1]}",
        "{op: linear, out_features: 10}",
    ]
    result = analyze(layers, ["N", 3, "H", "W"], symbols=SYMBOLS)
    assert any("depend on the input resolution" in w.message for w in result.warnings), result.warnings
    assert result.layers[1].field.tokens is not None and not result.layers[1].field.lost
