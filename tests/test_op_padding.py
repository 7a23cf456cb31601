"""Zero, constant, reflection and replication pads (1-D, 2-D, 3-D) against torch: shapes, refusals, symbolic
sizes and the validity domain, receptive fields against input gradients, located errors, generated code."""

from __future__ import annotations

import pytest
import sympy

torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import archplan  # noqa: E402
from oracle import analyze, build, measure, net_text  # noqa: E402

KINDS = ("Zero", "Constant", "Reflection", "Replication")
SYMBOLS = "symbols: {N: {}}\n"


def layer(kind: str, n: int, padding, value: float = 0.5) -> str:
    text = f"{{op: {kind.lower()}pad{n}d, padding: {padding}"
    return text + (f", value: {value}}}" if kind == "Constant" else "}")


def torch_pad(kind: str, n: int, padding):
    cls = getattr(torch.nn, f"{kind}Pad{n}d")
    padding = tuple(padding) if isinstance(padding, list) else padding
    return cls(padding, 0.5) if kind == "Constant" else cls(padding)


def torch_result(kind, n, padding, shape):
    """What torch says: (shape, params, buffers, MACs) and the output, or None where it refuses the input or
    produces an empty dim (archplan sizes are >= 1: a net of empty tensors is an error there)."""
    x = torch.randn(*shape)
    try:
        module = torch_pad(kind, n, padding)
        expected = measure(module, [x])
    except (RuntimeError, NotImplementedError, ValueError):
        return None, x, None
    if 0 in expected[0]:
        return None, x, None
    return expected, x, module(x)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    n=st.integers(1, 3),
    extra=st.integers(-1, 3),
    data=st.data(),
)
def test_matches_torch(kind, n, extra, data):
    """torch and the analysis accept the same inputs and agree on shape, params and MACs; the emitted module
    gives torch's values."""
    rank = max(n + extra, 1)
    shape = data.draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank), "shape")
    padding = data.draw(
        st.one_of(st.integers(-2, 4), st.lists(st.integers(-3, 4), min_size=2 * n, max_size=2 * n)), "padding"
    )
    result = analyze(layer(kind, n, padding), shape)
    expected, x, out = torch_result(kind, n, padding, shape)
    assert result.ok == (expected is not None), (kind, n, padding, shape, result.errors)
    if result.ok:
        row = result.layers[-1]
        assert (row.output_shape, row.params, row.buffers, row.macs) == expected
        emitted = build(row, [tuple(shape)])
        assert torch.equal(emitted(x), out)  # what codegen emits computes torch's values


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_symbolic_shapes_are_exact(kind, n):
    """A symbolic output size, evaluated at each size, is torch's output size; the domain is where torch runs."""
    padding = [3, -1, 0, 2, -2, 1][: 2 * n]
    names = ["D", "H", "W"][3 - n :]
    result = analyze(layer(kind, n, padding), ["N", 2, *names], symbols=SYMBOLS)
    assert result.ok, result.errors
    formula = result.layers[-1].output_shape
    minimum = result.minimum_sizes
    for size in range(1, 7):
        values = {name: size for name in names}
        expected, _, _ = torch_result(kind, n, padding, [2, 2, *values.values()])
        valid = all(size >= minimum.get(name, 1) for name in names)
        assert valid == (expected is not None), (kind, n, size, result.constraints)
        if valid:
            subs = {sympy.Symbol(k, integer=True, positive=True): v for k, v in values.items()}
            got = tuple(int(sympy.sympify(d).subs(subs)) if not isinstance(d, int) else d for d in formula[1:])
            assert got == expected[0][1:]


def test_domain_of_reflection_and_cropping():
    result = analyze("{op: reflectionpad2d, padding: [3, 0, 1, 2]}", ["N", 3, "H", "W"], symbols=SYMBOLS)
    assert result.ok and set(result.constraints) >= {"H >= 3", "W >= 4"}
    assert [str(d) for d in result.outputs["reflectionpad2d_1"]] == ["N", "3", "H + 3", "W + 3"]
    result = analyze("{op: zeropad2d, padding: [3, -2, 1, -5]}", ["N", 3, "H", "W"], symbols=SYMBOLS)
    assert [str(d) for d in result.outputs["zeropad2d_1"]] == ["N", "3", "H - 4", "W + 1"]
    assert set(result.constraints) >= {"H >= 5", "W >= 2"}  # the output, and torch's crop-then-pad


def test_2d_pad_on_a_3d_tensor_pads_channels_and_time_as_torch_does():
    result = analyze("{op: zeropad2d, padding: [2, 0, 1, 1]}", [1, 3, 16])
    assert (
        result.layers[-1].output_shape
        == (1, 5, 18)
        == tuple(torch.nn.ZeroPad2d((2, 0, 1, 1))(torch.ones(1, 3, 16)).shape)
    )
    field = result.layers[-1].field
    assert field.axes[1] is None and (field.axes[2].size, field.axes[2].padding) == (1, 2)


# -- receptive fields -----------------------------------------------------------------------------------------


def read_by(kind: str, j: int, size: int) -> int | None:
    """The input index a padded position j (relative to the input's start) holds, as torch fills it."""
    if kind in ("Zero", "Constant"):
        return j if 0 <= j < size else None
    if kind == "Replication":
        return min(max(j, 0), size - 1)
    return -j if j < 0 else (2 * (size - 1) - j if j >= size else j)  # reflection: a single mirror, pad < size


def ones_conv1d(k: int, stride: int = 1, dilation: int = 1):
    conv = torch.nn.Conv1d(1, 1, k, stride=stride, dilation=dilation, bias=False)
    torch.nn.init.constant_(conv.weight, 1.0)
    return conv


@settings(max_examples=80, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    size=st.integers(4, 9),
    before=st.integers(-3, 3),
    after=st.integers(-3, 3),
    k=st.integers(1, 3),
)
def test_pad_then_conv_field_against_gradients(kind, size, before, after, k):
    """The field shifts by the `before` pad: output o's window is input [o - before, o - before + k - 1].
    What o reads is that window mapped as torch fills the pad: the window clipped to the input (zero, constant),
    clamped to the ends (replication: inside the clipped field whenever the field meets the input) or mirrored
    (reflection: the field gives the unpadded position, the gradient reaches the mirror)."""
    layers = [layer(kind, 1, [before, after]), f"{{op: conv1d, out_channels: 1, kernel_size: {k}}}"]
    result = analyze(layers, [1, 1, size])
    if not result.ok:  # the analysis refused: so must torch
        with pytest.raises(RuntimeError):
            ones_conv1d(k)(torch_pad(kind, 1, (before, after))(torch.ones(1, 1, size)))
        return
    rf = result.layers[-1].receptive_field[0]
    assert (rf.size, rf.stride, rf.padding) == (k, 1, before)
    x = torch.ones(1, 1, size, requires_grad=True)
    out = ones_conv1d(k)(torch_pad(kind, 1, (before, after))(x))
    for o in range(out.shape[-1]):
        x.grad = None
        out[0, 0, o].backward(retain_graph=True)
        found = set(torch.nonzero(x.grad[0, 0]).flatten().tolist())
        window = range(o * rf.stride - rf.padding, o * rf.stride - rf.padding + rf.size)
        assert found == {read_by(kind, j, size) for j in window} - {None}, (o, window)
        clipped = {j for j in window if 0 <= j < size}
        if kind in ("Zero", "Constant") or (kind == "Replication" and clipped):
            assert found == clipped


@pytest.mark.parametrize("kind", KINDS)
def test_field_inside_a_net_against_gradients(kind):
    """conv/2 -> pad -> conv: every output whose window stays inside the padded map's input reads exactly its
    field; for zero and constant pads, every output does."""
    layers = [
        "{op: conv1d, out_channels: 1, kernel_size: 3, stride: 2}",
        layer(kind, 1, [2, 1]),
        "{op: conv1d, out_channels: 1, kernel_size: 3}",
    ]
    size = 21
    result = analyze(layers, [1, 1, size])
    rf = result.layers[-1].receptive_field[0]
    assert (rf.size, rf.stride, rf.padding) == (7, 2, 4)
    inner = result.layers[0].output_shape[-1]
    x = torch.ones(1, 1, size, requires_grad=True)
    out = ones_conv1d(3)(torch_pad(kind, 1, (2, 1))(ones_conv1d(3, 2)(x)))
    assert tuple(out.shape) == result.layers[-1].output_shape
    for o in range(out.shape[-1]):
        x.grad = None
        out[0, 0, o].backward(retain_graph=True)
        rows = torch.nonzero(x.grad[0, 0]).flatten()
        start = o * rf.stride - rf.padding
        if kind in ("Zero", "Constant") or (o - 2 >= 0 and o - 2 + 2 < inner):
            assert (int(rows.min()), int(rows.max())) == (max(start, 0), min(start + rf.size - 1, size - 1)), o


def test_causal_padding_gives_a_field_ending_at_the_output_step():
    """WaveNet: constantpad1d [2, 0] before a kernel-3 conv, then [4, 0] before a kernel-3 conv dilated by 2:
    output t sees inputs t - 2 .. t, then t - 6 .. t, never the future."""
    layers = [
        "{op: constantpad1d, padding: [2, 0], value: 0}",
        "{op: conv1d, out_channels: 1, kernel_size: 3}",
        "{op: constantpad1d, padding: [4, 0], value: 0}",
        "{op: conv1d, out_channels: 1, kernel_size: 3, dilation: 2}",
    ]
    size = 16
    result = analyze(layers, [1, 1, size])
    assert result.layers[-1].output_shape == (1, 1, size)
    x = torch.ones(1, 1, size, requires_grad=True)
    first = ones_conv1d(3)(torch.nn.ConstantPad1d((2, 0), 0.0)(x))
    second = ones_conv1d(3, dilation=2)(torch.nn.ConstantPad1d((4, 0), 0.0)(first))
    for index, (out, width) in enumerate(((first, 3), (second, 7))):
        rf = result.layers[2 * index + 1].receptive_field[0]
        assert (rf.size, rf.stride, rf.padding) == (width, 1, width - 1)
        for t in range(size):
            x.grad = None
            out[0, 0, t].backward(retain_graph=True)
            rows = torch.nonzero(x.grad[0, 0]).flatten()
            assert (int(rows.min()), int(rows.max())) == (max(t - width + 1, 0), t)
            assert t - rf.padding + rf.size - 1 == t  # the field ends at t


@pytest.mark.parametrize("kind", KINDS)
def test_3d_padding_order_moves_each_axis_by_its_own_before_pad(kind):
    """[left, right, top, bottom, front, back]: W moves by left, H by top, D by front."""
    padding = [1, 0, 2, 1, 3, 2]
    shape = (1, 1, 5, 6, 7)
    result = analyze(layer(kind, 3, padding), list(shape))
    assert [a.padding for a in result.layers[-1].receptive_field] == [3, 2, 1]
    x = torch.ones(*shape, requires_grad=True)
    out = torch_pad(kind, 3, padding)(x)
    out[0, 0, 4, 5, 6].backward()
    assert torch.nonzero(x.grad).flatten().tolist() == [0, 0, 4 - 3, 5 - 2, 6 - 1]


# -- located errors -------------------------------------------------------------------------------------------


def error_of(layers, shape, symbols: str = ""):
    result = analyze(layers, shape, symbols=symbols)
    assert not result.ok
    error = result.errors[0]
    assert error.line == 6 + symbols.count("\n") and error.layer is not None, error  # the (first) layer's line
    return error


@pytest.mark.parametrize(
    "text,shape,expected",
    [
        (
            "{op: zeropad2d, padding: [1, 2, 3]}",
            [1, 3, 5, 5],
            "expected an integer or a list of 4 integers, received [1, 2, 3]",
        ),
        ("{op: reflectionpad1d, padding: [1, 2, 3, 4]}", [1, 3, 5], "a list of 2 integers, received [1, 2, 3, 4]"),
        ("{op: zeropad1d, padding: 1.5}", [1, 3, 5], "expected an integer, received 1.5"),
        (
            "{op: zeropad3d, padding: [1, 1, 1, 1, 1, 1]}",
            [3, 5],
            "expects an input of 3 or more dims (it pads the last 3), received a 2-D tensor [3, 5]",
        ),
        (
            "{op: reflectionpad2d, padding: 1}",
            [2, 1, 3, 5, 5],
            "expects a 3-D or 4-D input (it pads the last 2), received a 5-D",
        ),
        ("{op: replicationpad1d, padding: 1}", [5], "expects a 2-D or 3-D input (it pads the last 1), received a 1-D"),
        (
            "{op: reflectionpad2d, padding: [1, 1, 3, 0]}",
            [1, 2, 3, 5],
            "reflection padding 3 on dim 2 needs a size > 3, received 3",
        ),
        (
            "{op: reflectionpad1d, padding: [0, 5]}",
            [1, 2, 5],
            "reflection padding 5 on dim 2 needs a size > 5, received 5",
        ),
        ("{op: zeropad1d, padding: [5, -3]}", [1, 2, 2], "cropping 3 from dim 2 needs a size >= 3, received 2"),
        ("{op: reflectionpad2d, padding: 1}", [2, 1, 5], "reflection padding 1 on dim 1 needs a size > 1, received 1"),
        ("{op: replicationpad1d, padding: -2}", [1, 2, 4], "output size 0 at dim 2 is not positive"),
        ("{op: constantpad2d, padding: 1}", [1, 2, 4, 4], "requires the argument 'value'"),
        ("{op: constantpad2d, padding: 1, value: true}", [1, 2, 4, 4], "value: expected a number, received true"),
    ],
)
def test_located_errors(text, shape, expected):
    error = error_of(text, shape)
    assert expected in error.message, error.message


def test_bad_padding_list_hints_at_torchs_order():
    error = error_of("{op: zeropad3d, padding: [1, 2]}", [1, 2, 3, 4, 5])
    assert error.hint == "torch's order, last dim first: [left, right, top, bottom, front, back]"


def test_symbolic_reflection_too_large_is_a_domain_condition_and_an_error_when_never_valid():
    result = analyze("{op: reflectionpad1d, padding: [4, 0]}", ["N", 2, "T"], symbols=SYMBOLS)
    assert result.ok and "T >= 5" in result.constraints
    result = analyze(
        ["{op: adaptiveavgpool1d, output_size: 2}", "{op: reflectionpad1d, padding: [2, 0]}"],
        ["N", 2, "T"],
        symbols=SYMBOLS,
    )
    assert not result.ok and result.errors[0].layer == "reflectionpad1d_1"


# -- generated code -------------------------------------------------------------------------------------------


def test_generated_code_uses_the_torch_modules_and_verifies():
    from archplan.codegen import generate_sources
    from archplan.verify import verify

    text = net_text(
        [
            "{name: causal, op: constantpad1d, padding: [2, 0], value: 0}",
            "{name: conv, op: conv1d, out_channels: 4, kernel_size: 3}",
            "{name: mirror, op: reflectionpad1d, padding: 2}",
            "{name: edge, op: replicationpad1d, padding: [1, 3]}",
            "{name: crop, op: zeropad1d, padding: [-1, 0]}",
            "{name: tail, op: zeropad1d, padding: 1}",
        ],
        {"x": [2, 3, 16]},
    )
    net = archplan.loads(text, "t.yaml")
    source = generate_sources(net).files["model.py"]
    for line in (
        "self.causal = nn.ConstantPad1d((2, 0), 0.0)",
        "self.mirror = nn.ReflectionPad1d(2)",
        "self.edge = nn.ReplicationPad1d((1, 3))",
        "self.crop = nn.ZeroPad1d((-1, 0))",
        "self.tail = nn.ZeroPad1d(1)",
    ):
        assert line in source, source
    assert verify(net).ok


def test_2d_and_3d_nets_and_a_block_argument_verify():
    from archplan.codegen import generate_sources
    from archplan.verify import verify

    text = (
        "archplan: 1\nname: t\ninputs:\n  x: [2, 3, 6, 7]\n  v: [1, 2, 4, 5, 6]\n"
        "blocks:\n  padconv:\n    args: {p: 1}\n    layers:\n"
        "      - {name: pad, op: reflectionpad2d, padding: [p, p, 0, 1]}\n"
        "      - {name: conv, op: conv2d, out_channels: 4, kernel_size: 3}\n"
        "layers:\n"
        "  - {name: a, block: padconv, args: {p: 2}, in: x}\n"
        "  - {name: b, op: replicationpad2d, padding: [1, 0, 2, 1]}\n"
        "  - {name: c, op: constantpad2d, padding: [0, 1, 1, 0], value: -1.5}\n"
        "  - {name: d, op: zeropad3d, padding: [1, 1, 0, 2, 1, 0], in: v}\n"
        "  - {name: e, op: reflectionpad3d, padding: 1}\n"
        "  - {name: f, op: replicationpad3d, padding: [0, 1, 1, 0, 2, 0]}\n"
        "  - {name: g, op: constantpad3d, padding: -1, value: 2}\n"
        "outputs: [c, g]\n"
    )
    net = archplan.loads(text, "t.yaml")
    source = generate_sources(net).files["model.py"]
    assert "nn.ReflectionPad2d((p, p, 0, 1))" in source and "nn.ConstantPad2d((0, 1, 1, 0), -1.5)" in source
    assert "nn.ConstantPad3d(-1, 2.0)" in source
    assert verify(net).ok
