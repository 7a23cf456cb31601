"""The validity domain derived symbolically must equal brute force over concrete sizes."""

from __future__ import annotations

import random
import re

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import archplan
from archplan import domain as domain_module
from archplan import residues
from archplan.analysis import Condition
from archplan.domain import simplest_form
from archplan.symbols import CeilDiv, FloorDiv, symbol
from oracle import net_text

SYMBOLS = "symbols:\n  H: {}\n"


def load(layers, shape=("N", 3, "H", 8), symbols=SYMBOLS):
    return archplan.loads(net_text(layers, {"x": list(shape)}, symbols))


def random_unet(rng: random.Random) -> list[str]:
    """Encoder-decoder with skip concatenations: the validity domain is non-trivial."""
    layers, skips = [], []
    depth = rng.randint(1, 3)
    for level in range(depth):
        k = rng.choice([1, 3, 5])
        pad = rng.choice([0, k // 2])
        layers.append(f"{{name: enc{level}, op: conv2d, out_channels: 4, kernel_size: {k}, padding: {pad}}}")
        skips.append(f"enc{level}")
        pk = rng.choice([2, 3])
        ceil = rng.choice(["true", "false"])
        layers.append(f"{{name: pool{level}, op: maxpool2d, kernel_size: {pk}, stride: 2, ceil_mode: {ceil}}}")
    layers.append("{name: mid, op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}")
    for level in reversed(range(depth)):
        if rng.random() < 0.5:
            layers.append(f"{{name: up{level}, op: upsample, scale_factor: 2}}")
        else:
            layers.append(f"{{name: up{level}, op: convtranspose2d, out_channels: 4, kernel_size: 2, stride: 2}}")
        layers.append(f"{{name: cat{level}, op: concat, in: [up{level}, {skips[level]}]}}")
    return layers


def assert_domain_equals_brute_force(seed: int) -> None:
    layers = random_unet(random.Random(seed))
    net = load(layers)
    symbolic = net.analyze()
    valid = {h for h in range(1, 90) if net.analyze({"H": h}).ok}
    if not symbolic.ok:
        assert not valid, f"symbolic analysis rejects every H, but these work: {sorted(valid)[:10]}"
        return
    domain = symbolic.domains.get("H")
    predicted = {h for h in range(1, 90) if domain is None or h in domain}
    assert predicted == valid, (layers, symbolic.constraints)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_domain_equals_brute_force(seed):
    assert_domain_equals_brute_force(seed)


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_domain_equals_brute_force_on_more_nets(seed):
    assert_domain_equals_brute_force(seed)


def test_three_poolings_need_multiples_of_eight():
    layers = []
    for i in range(3):
        layers += [
            f"{{name: c{i}, op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}}",
            f"{{name: p{i}, op: maxpool2d, kernel_size: 2}}",
        ]
    for i in reversed(range(3)):
        layers += [
            f"{{name: u{i}, op: convtranspose2d, out_channels: 4, kernel_size: 2, stride: 2}}",
            f"{{name: cat{i}, op: concat, in: [u{i}, c{i}]}}",
        ]
    result = load(layers, ("N", 3, "H", "W"), "symbols:\n  H: {}\n  W: {}\n").analyze()
    assert result.ok
    assert result.constraints == ["H % 8 == 0", "H >= 8", "W % 8 == 0", "W >= 8"]
    assert [str(d) for d in result.outputs["cat0"]] == ["N", "8", "H", "W"]
    assert [str(d) for d in result.layer("p1").output_shape] == ["N", "4", "H/4", "W/4"]


def test_input_expressions_must_be_integral():
    result = archplan.loads(
        net_text(["{op: add, in: [a, b]}"], {"a": ["N", 3, "H/2", 4], "b": ["N", 3, "H/2", 4]}, "symbols:\n  H: {}\n")
    ).analyze()
    assert result.ok
    assert "H % 2 == 0" in result.constraints


def test_kernel_larger_than_input_gives_minimum_size():
    result = load(
        ["{op: conv2d, out_channels: 2, kernel_size: 5}", "{op: conv2d, out_channels: 2, kernel_size: 5}"],
        ("N", 3, "H", 16),
    ).analyze()
    assert result.ok
    assert result.minimum_sizes == {"H": 9}
    assert "H >= 9" in result.constraints
    assert [str(d) for d in result.layers[-1].output_shape] == ["N", "2", "H - 8", "8"]


def test_never_valid_is_an_error_at_the_merge():
    layers = [
        "{name: p, op: maxpool2d, kernel_size: 2}",
        "{name: a, op: upsample, scale_factor: 2}",
        "{name: b, op: zeropad2d, padding: [0, 0, 1, 0], in: x}",
        "{name: s, op: add, in: [a, b]}",
    ]
    result = load(layers, ("N", 3, "H", 8)).analyze()  # 2*floor(H/2) can never equal H + 1
    assert not result.ok
    assert result.errors[0].layer == "s"
    assert "no value of H" in result.errors[0].message


def test_decidable_mismatch_is_reported_at_once():
    layers = [
        "{name: a, op: conv2d, out_channels: 2, kernel_size: 3}",
        "{name: b, op: conv2d, out_channels: 2, kernel_size: 1, in: x}",
        "{name: s, op: add, in: [a, b]}",
    ]
    result = load(layers, ("N", 3, "H", "H")).analyze()
    assert [e.layer for e in result.errors] == ["s"]
    assert "H - 2 vs H" in result.errors[0].message


@pytest.mark.parametrize(
    "residues,period,text",
    [
        ({0}, 8, "H % 8 == 0"),
        ({0, 4}, 8, "H % 4 == 0"),
        ({1, 3, 5, 7}, 8, "H % 2 == 1"),
        (set(range(8)) - {3}, 8, "H % 8 != 3"),
        ({0, 1}, 4, "H % 4 in (0, 1)"),
        (set(range(6)), 6, None),
        (set(range(7, 15)), 16, "H % 16 in (7..14)"),
        ({0, 1, 2, 3, 4, 5, 6, 15}, 16, "H % 16 in (0..6, 15)"),
    ],
)
def test_simplest_form(residues, period, text):
    assert simplest_form("H", residues, period) == text


def test_symbolic_linear_after_flatten_depends_on_resolution():
    layers = [
        "{op: conv2d, out_channels: 4, kernel_size: 3}",
        "{op: maxpool2d, kernel_size: 2}",
        "{op: flatten}",
        "{op: linear, out_features: 10}",
    ]
    result = load(layers, ("N", 1, "H", "H")).analyze()
    fc = result.layers[-1]
    import sympy

    from archplan.report import figure

    text = figure(fc.params)
    assert "floor(H/2)" in text
    assert sympy.sympify(text).subs("H", 28) == 6770
    assert any("resolution" in w.message for w in result.warnings)
    assert archplan.loads(net_text(layers, {"x": ["N", 1, 28, 28]})).analyze({"N": 1}).layers[-1].params == 6770


# ---- strided chains, bounds and the solver's corner cases ---------------------------------------------

H = symbol("H")


def random_chain(rng: random.Random) -> list[str]:
    """Strided convs and pools along H only (k x 1 windows keep the width at 1): stride 1, 2 or 3, with and
    without padding, ceil_mode, dilation and 'same'."""
    layers = []
    for _ in range(rng.randint(1, 4)):
        k, s = rng.choice([1, 2, 3, 5]), rng.choice([1, 2, 2, 3, 3])
        if rng.random() < 0.5:
            pad = rng.choice([[0, 0], [k // 2, 0], "same", "valid"])
            dilation = rng.choice([1, 1, 2])
            layers.append(
                f"{{op: conv2d, out_channels: 1, kernel_size: [{k}, 1], stride: [{s}, 1], padding: {pad}, "
                f"dilation: [{dilation}, 1]}}"
            )
        else:
            op, ceil = rng.choice(["maxpool2d", "avgpool2d"]), rng.choice(["true", "false"])
            pad = rng.choice([0, k // 2])
            layers.append(
                f"{{op: {op}, kernel_size: [{k}, 1], stride: [{s}, 1], padding: [{pad}, 0], ceil_mode: {ceil}}}"
            )
    return layers


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_strided_chain_domain_equals_brute_force(seed):
    layers = random_chain(random.Random(seed))
    net = load(layers, (1, 1, "H", 1))
    symbolic = net.analyze()
    assert not [w.message for w in symbolic.warnings if "not derived" in w.message], layers
    valid = {h for h in range(1, 150) if net.analyze({"H": h}).ok}
    if not symbolic.ok:
        assert not valid, (layers, sorted(valid)[:10])
        return
    domain = symbolic.domains.get("H")
    predicted = {h for h in range(1, 150) if domain is None or h in domain}
    assert predicted == valid, (layers, symbolic.constraints)


def test_deep_strided_chain_is_derived_without_walking_its_residues(monkeypatch):
    """24 stride-2 convs floor H 24 times (lcm 2**24): thresholds are searched, residues are never listed."""
    monkeypatch.setattr(residues, "MAX_PERIOD", 64)
    monkeypatch.setattr(residues, "MAX_WORK", 4096)
    net = load(["{op: conv2d, out_channels: 4, kernel_size: 3, stride: 2}"] * 24, (1, 3, "H", "H"))
    result = net.analyze()
    assert result.ok and result.constraints == ["H >= 33554431"]
    assert net.analyze({"H": 2**25 - 1}).ok and not net.analyze({"H": 2**25 - 2}).ok


def test_conv_pool_flatten_linear_is_derived():
    layers = [
        "{op: conv2d, out_channels: 4, kernel_size: 3}",
        "{op: maxpool2d, kernel_size: 2}",
        "{op: flatten}",
        "{op: linear, out_features: 10}",
    ]
    result = load(layers, ("N", 1, "H", "H"), "symbols:\n  H: {min: 8}\n").analyze()
    assert result.ok and result.constraints == ["H >= 8"]
    assert not any("not derived" in w.message for w in result.warnings)
    net = load(layers, (1, 1, "H", "H"))
    assert net.analyze().constraints == ["H >= 4"]
    assert {h for h in range(1, 12) if net.analyze({"H": h}).ok} == set(range(4, 12))


@pytest.mark.parametrize(
    "symbols,constraints",
    [("L: {}", ["L <= 1024"]), ("L: {max: 2000}", ["L <= 1024"]), ("L: {min: 3, max: 500}", ["L >= 3", "L <= 500"])],
)
def test_a_size_that_shrinks_gives_an_upper_bound(symbols, constraints):
    net = archplan.loads(
        net_text(["{op: linear, out_features: 4}"], {"x": [1, "1025 - L", 8]}, f"symbols:\n  {symbols}\n")
    )
    result = net.analyze()
    assert result.ok and result.constraints == constraints
    domain = result.domains["L"]
    top = int(constraints[-1].split()[-1])
    assert top in domain and top + 1 not in domain
    assert net.analyze({"L": top}).ok and not net.analyze({"L": top + 1}).ok


def test_max_below_the_smallest_valid_size_is_a_located_error():
    net = load(
        ["{op: conv2d, out_channels: 4, kernel_size: 3, stride: 2}"] * 12,
        (1, 3, "H", "H"),
        "symbols:\n  H: {max: 100}\n",
    )
    result = net.analyze()
    assert not result.ok
    error = result.errors[0]
    assert error.layer == "conv2d_12" and error.line is not None
    assert "no value of H in [1, 100] makes the net valid" in error.message and "8191" in error.message


def test_min_above_the_largest_valid_size_is_a_located_error():
    text = net_text(["{op: relu}"], {"x": [1, "100 - L", 8]}, "symbols:\n  L: {min: 150}\n")
    result = archplan.loads(text).analyze()
    assert [e.message for e in result.errors] == [
        "no value of L >= 150 makes the net valid: the smallest valid L is 1, the largest below 150 is 99"
    ]
    assert result.errors[0].line == text.splitlines().index("  x: [1, '100 - L', 8]") + 1


def positive(e):
    return Condition("positive", e, None, None, "size")


def equal(a, b):
    return Condition("equal", a, b, None, "merge")


def integral(e):
    return Condition("integer", e, None, None, "input")


def solve(conditions, symbols="H: {}"):
    """The solver alone, on a net that records no condition of its own (its declared bounds aside)."""
    result = load(["{op: relu}"], (1, 3, "H", 8), f"symbols:\n  {symbols}\n").analyze()
    assert result.ok and not result.warnings
    result.constraints, result.minimum_sizes, result.domains = [], {}, {}
    domain_module.solve(result, conditions)
    return result


def test_declared_bounds_are_requirements_even_when_no_layer_needs_them():
    """A symbol's declared min and max are printed whether or not some layer's requirement mentions it, so the
    answer does not depend on which requirements could be proved true in advance."""
    result = load(["{op: relu}"], (1, 3, "H", 8), "symbols:\n  H: {min: 10, max: 50}\n").analyze()
    assert result.constraints == ["H >= 10", "H <= 50"] and result.minimum_sizes == {"H": 10}
    plain = load(["{op: relu}"], (1, 3, "H", 8), "symbols:\n  H: {}\n").analyze()
    assert plain.constraints == [] and plain.minimum_sizes == {} and plain.domains == {}
    always = solve([positive(H + 1)])  # a requirement that holds for every size records nothing either
    assert always.constraints == [] and always.minimum_sizes == {} and always.domains == {}


def holds(c, h: int) -> bool:
    """Brute force: the condition at H = h, evaluated by sympy."""

    def at(e):
        e = sympy.sympify(e).replace(FloorDiv, lambda p, q: sympy.floor(p / q))
        return e.replace(CeilDiv, lambda p, q: sympy.ceiling(p / q)).xreplace({H: sympy.Integer(h)})

    value = at(c.value)
    if c.kind == "equal":
        return bool(value == at(c.other))
    return bool(value.is_integer) if c.kind == "integer" else bool(value >= 1)


def texts_hold(texts: list, h: int) -> bool:
    """The constraint texts read as Python ("H >= 13 when H % 5 == 3", "H % 16 in (0..6, 15)") at H = h."""
    ok = True
    for text in texts:
        text = re.sub(r" in \(([^)]*)\)", r" in [\1]", text)
        text = re.sub(r"(\d+)\.\.(\d+)", lambda m: f"*range({m[1]}, {int(m[2]) + 1})", text)
        claim, _, when = text.partition(" when ")
        ok = ok and (eval(claim, {"H": h}) or bool(when) and not eval(when, {"H": h}))
    return ok


CASES = {
    "upper bound": [positive(1025 - H)],
    "min of different slopes": [positive(sympy.Min(H, 40) - 10)],
    "mod": [positive(sympy.Mod(H, 4) - 1)],
    "start per residue": [positive(H - 3 * sympy.Mod(H, 5))],
    "end per residue": [positive(40 - H + 10 * sympy.Mod(H, 3))],
    "equal, growing difference": [equal(3 * FloorDiv(H, 2), H + 5)],
    "equal, monotone product": [equal(FloorDiv(H, 2) ** 2, 100)],
    "equal, product of sizes": [positive(H - 2), equal(4 * (H - 2) ** 2, 784)],  # in_features after flatten
    "integer inputs": [integral(H / 6), integral((H + 2) / 4)],
    "ceil_mode min": [positive(sympy.Min(CeilDiv(H - 3, 2), FloorDiv(H - 1, 2)) - 2)],
    "rational floor": [positive(sympy.floor(H / sympy.Rational(3, 2)) - 4), equal(sympy.Mod(H, 2), 0)],
    "floor of a rational": [positive(FloorDiv(H / 2, 3) - 2), integral(H / 2)],
    "several": [positive(FloorDiv(H, 4) - 2), equal(2 * FloorDiv(H, 2), H), positive(60 - H)],
    "same symbol, both bounds": [positive(H - 9), positive(31 - CeilDiv(H, 2))],
}


@pytest.mark.parametrize("name", list(CASES))
def test_solver_equals_brute_force(name):
    conditions = CASES[name]
    result = solve(conditions)
    assert result.ok and not result.warnings, [p.message for p in result.errors + result.warnings]
    domain = result.domains["H"]
    for h in range(1, 200):
        truth = all(holds(c, h) for c in conditions)
        assert (h in domain) == truth, (h, result.constraints)
        assert texts_hold(result.constraints, h) == truth, (h, result.constraints)


def test_declared_bounds_are_honoured():
    result = solve([equal(4 * FloorDiv(H, 4), H)], "H: {min: 10, max: 50}")
    assert result.constraints == ["H % 4 == 0", "H >= 12", "H <= 50"]
    assert {h for h in range(1, 100) if h in result.domains["H"]} == set(range(12, 51, 4))


@pytest.mark.parametrize(
    "conditions,symbols,message",
    [
        (
            [positive(FloorDiv(H, 16) - 1)],
            "H: {max: 12}",
            "no value of H in [1, 12] makes the net valid: the smallest valid H is 32",
        ),
        (
            [equal(64 * FloorDiv(H, 64), H)],
            "H: {min: 10, max: 60}",
            "no value of H in [10, 60] makes the net valid: the smallest valid H is 64",
        ),
        ([positive(20 - H), equal(8 * FloorDiv(H, 8), H)], "H: {min: 10, max: 15}", "the largest below 10 is 8"),
        (
            [positive(sympy.Mod(H, 4) - 1), positive(30 - H)],
            "H: {min: 31}",
            "H >= 31 makes the net valid: the smallest valid H is 2, the largest below 31 is 27",
        ),
        ([equal(2 * FloorDiv(H, 2), H + 1)], "H: {}", "merge: no value of H makes this valid"),
        ([integral(H / 6), integral((H + 1) / 4)], "H: {}", "input: no value of H makes this valid"),
        ([positive(H - 50), positive(40 - H)], "H: {}", "no value of H makes this valid"),
    ],
)
def test_no_valid_value_is_an_error_not_a_crash(conditions, symbols, message):
    result = solve(conditions, symbols)
    assert not result.ok and message in result.errors[0].message
    assert "H" not in result.domains


@pytest.mark.parametrize(
    "value,reason",
    [
        (sympy.Abs(H - 3), "Abs(H - 3)"),
        (64 / H, "1/H"),
        (sympy.Max(H - 100, 10 - H), "neither monotone nor periodic"),
        (H - sympy.Float(2.5), "2.5"),
        (2**20 * FloorDiv(H, 2**20) - H + 1, "repeats only every 1048576"),
    ],
)
def test_forms_outside_the_solver_are_a_warning_with_the_reason(value, reason):
    result = solve([positive(value), positive(H - 2)])
    assert result.ok and "H" not in result.domains
    assert len(result.warnings) == 1 and "not derived for H" in result.warnings[0].message
    assert reason in result.warnings[0].message


def test_conditions_on_several_symbols_are_listed():
    W = symbol("W")
    result = solve([positive(H - W), positive(H - 3), equal(2 * FloorDiv(W, 2), W)], "H: {}\n  W: {}")
    assert result.ok and result.constraints == ["H - W >= 1", "H >= 4", "W % 2 == 0", "W >= 2"]


def test_domain_membership():
    d = domain_module.Domain(4, ((0, 8), (1, 5)), maximum=40, ends=((1, 21),))
    assert [h for h in range(50) if h in d] == [5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 28, 32, 36, 40]
    assert "8" not in d and 8.5 not in d


def test_border_warnings_name_exactly_the_sizes_that_lose_pixels():
    net = load(["{op: conv2d, out_channels: 4, kernel_size: [3, 1], stride: [2, 1]}"] * 4, (1, 3, "H", 1))
    symbolic = net.analyze()
    assert symbolic.constraints == ["H >= 31"]
    said = {w.layer: w.message.split(" when ")[1] for w in symbolic.warnings if "border pixels" in w.message}
    assert said["conv2d_3"] == "H % 8 in (3..6)"
    tiles = {h: {w.layer for w in net.analyze({"H": h}).warnings if "tile" in w.message} for h in range(31, 160)}
    for layer, when in said.items():
        losing = {h for h, layers in tiles.items() if layer in layers}
        assert losing == {h for h in range(31, 160) if texts_hold([when], h)}, layer


def random_size(rng: random.Random, depth: int):
    if depth == 0 or rng.random() < 0.3:
        return rng.choice([1, 2, 3, -1]) * H + rng.randint(-8, 8)
    a, q = random_size(rng, depth - 1), rng.choice([2, 3, 4])
    pick = rng.choice(["floor", "ceiling", "mod", "sum", "scale", "fraction", "min"])
    if pick == "min":
        return sympy.Min(a, random_size(rng, depth - 1))
    if pick == "sum":
        return a + random_size(rng, depth - 1)
    return {"floor": FloorDiv(a, q), "ceiling": CeilDiv(a, q), "mod": sympy.Mod(a, q), "scale": -2 * a}.get(pick, a / q)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_random_conditions_equal_brute_force(seed):
    """Sums, floors, ceilings, Mod, fractions and Min of linear terms: derived exactly, or (only where a Min
    mixes slopes and trends) reported as not derived."""
    rng = random.Random(seed)
    conditions = []
    for _ in range(rng.randint(1, 3)):
        value, kind = random_size(rng, 2), rng.choice(["positive", "positive", "equal", "integer"])
        other = random_size(rng, 1) if kind == "equal" else None
        if (value - (other or 0)).has(H):
            conditions.append(Condition(kind, value, other, None, kind))
    result = solve(conditions)
    if any("not derived" in w.message for w in result.warnings):
        assert any(c.value.has(sympy.Min) or c.other is not None and c.other.has(sympy.Min) for c in conditions)
        return
    domain = result.domains.get("H")
    for h in range(1, 120):
        truth = all(holds(c, h) for c in conditions)
        assert (result.ok and (domain is None or h in domain)) == truth, (h, result.constraints)
        assert not result.ok or texts_hold(result.constraints, h) == truth, (h, result.constraints)


def test_a_patchify_reshape_needs_each_side_divisible_and_nothing_redundant():
    """[N, 3, H / 16, 16, W / 16, 16]: each size must be whole (H % 16 == 0, W % 16 == 0); the element-count
    requirement over both symbols (H*W % 256 == 0) follows from them and is not listed, and the figures use
    the exact quotient H*W/256 instead of floor(H*W/256)."""
    layers = [
        "{name: grid, op: reshape, shape: [N, 3, H / 16, 16, W / 16, 16]}",
        "{name: order, op: permute, dims: [0, 2, 4, 1, 3, 5]}",
        "{name: patches, op: reshape, shape: [N, -1, 768]}",
    ]
    result = load(layers, ("N", 3, "H", "W"), "symbols:\n  N: {}\n  H: {}\n  W: {}\n").analyze()
    assert result.ok and result.constraints == ["H % 16 == 0", "H >= 16", "W % 16 == 0", "W >= 16"]
    h, w = symbol("H"), symbol("W")
    assert result.outputs["patches"][1] == h * w / 256
    for size in (15, 24, 40):
        assert not load(layers, ("N", 3, size, 32), "symbols:\n  N: {}\n").analyze().ok
