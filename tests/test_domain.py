"""The validity domain derived symbolically must equal brute force over concrete sizes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archplan
from archplan.domain import simplest_form
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


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_domain_equals_brute_force(seed):
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
