"""Symbolic nets without sympy (quasi.py): the light analysis, where it is used, prints exactly what the
sympy analysis prints, in every format; where it cannot, the net is analysed with sympy."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archplan
from archplan import dims, quasi, quasi_facts, quasi_text
from archplan.quasi import Q
from archplan.report import render

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
LIGHT_EXAMPLES = {"unet", "byte_gpt", "gpt2_small", "espcn", "convnext_tiny", "shufflenet_v2_x1_0"}


def took_light_path(result) -> bool:
    return any(isinstance(x, Q) for row in result.layers for x in (*row.output_shape, row.macs))


def same_reports(net, values=None, path="net.yaml") -> bool:
    light, exact = net.analyze(values, light=True), net.analyze(values)
    for fmt in ("json", "table", "markdown"):
        assert render(light, fmt, path) == render(exact, fmt, path), fmt
    assert light.constraints == exact.constraints and light.minimum_sizes == exact.minimum_sizes
    assert light.domains == exact.domains
    return took_light_path(light)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_light_and_sympy_analyses_print_the_same(path):
    used = same_reports(archplan.load(path), path=str(path))
    assert used == (path.stem in LIGHT_EXAMPLES)


@pytest.mark.parametrize("values", [{"N": 2}, {"H": 64}, {"N": 3, "W": 128}])
def test_partly_set_sizes_print_the_same(values):
    assert same_reports(archplan.load(ROOT / "examples" / "unet.yaml"), values)


def test_a_symbolic_unet_check_never_imports_sympy():
    code = (
        "import sys\nfrom archplan.cli import cli\n"
        "try:\n    cli(['check', 'examples/unet.yaml'])\nexcept SystemExit:\n    pass\n"
        "print('SYMPY', 'sympy' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "H % 8 == 0 and H >= 8" in done.stdout and "SYMPY False" in done.stderr, done.stderr[-2000:]


# -- the algebra against sympy ------------------------------------------------------------------------------
NAMES = ("H", "W", "N")


def as_sympy(x, plain: bool = False):
    """The sympy formula of the same structure (plain: sympy's own floor/ceiling, which evaluate at numbers)."""
    import sympy

    from archplan.symbols import CeilDiv, FloorDiv, symbol

    if isinstance(x, Fraction):
        return sympy.Rational(x.numerator, x.denominator)
    if not isinstance(x, Q):
        return sympy.Integer(x)
    total = sympy.Integer(0)
    for mono, c in x.terms.items():
        term = as_sympy(c)
        for atom, e in mono:
            args = [as_sympy(a, plain) for a in atom.args] if atom.kind != "var" else []
            if atom.kind == "var":
                factor = symbol(atom.args[0])
            elif atom.kind in ("floor", "ceil") and plain:
                factor = (sympy.floor if atom.kind == "floor" else sympy.ceiling)(args[0] / args[1])
            elif atom.kind in ("floor", "ceil"):
                factor = (FloorDiv if atom.kind == "floor" else CeilDiv)(*args)
            else:
                factor = (sympy.Min if atom.kind == "min" else sympy.Max)(*args)
            term *= factor**e
        total += term
    return total


ops = st.sampled_from(["add", "sub", "mul", "floordiv", "ceildiv", "mod", "min", "max", "div"])


@st.composite
def formulas(draw, depth=3):
    if depth == 0 or draw(st.booleans()):
        return draw(st.one_of(st.integers(-4, 9), st.sampled_from([quasi.var(n) for n in NAMES])))
    op, a = draw(ops), draw(formulas(depth - 1))
    b = draw(formulas(depth - 1)) if op in ("add", "sub", "mul", "min", "max") else draw(st.integers(1, 6))
    try:
        return {
            "add": lambda: a + b,
            "sub": lambda: a - b,
            "mul": lambda: a * b,
            "floordiv": lambda: dims.floordiv(a, b),
            "ceildiv": lambda: dims.ceildiv(a, b),
            "mod": lambda: dims.mod(a, b),
            "min": lambda: dims.dmin(a, b),
            "max": lambda: dims.dmax(a, b),
            "div": lambda: dims.truediv(a, b) if isinstance(a, Q) else a,
        }[op]()
    except quasi.NotQuasi:
        return a


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formulas(), st.dictionaries(st.sampled_from(NAMES), st.integers(1, 40), min_size=3))
def test_formulas_evaluate_as_sympy_does(x, values):
    """Every light formula has the value of the sympy formula of the same structure at every size."""
    from archplan.symbols import symbol

    exact = as_sympy(x, plain=True).xreplace({symbol(n): v for n, v in values.items()})
    assert Fraction(str(exact)) == Fraction(dims.at(x, values))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formulas(), formulas(), st.dictionaries(st.sampled_from(NAMES), st.integers(1, 40), min_size=3))
def test_decisions_are_sound_and_never_contradict_sympy(a, b, values):
    """Equal and positive: where both decide, light and sympy agree, and a light decision holds at every size
    (light may decide where sympy does not: the domain solver gives the same answer either way)."""
    from archplan import symbols

    sa, sb = as_sympy(a), as_sympy(b)
    light, exact = dims.equal(a, b), symbols.equal(sa, sb)
    assert light is None or exact is None or light == exact, (a, b)
    if light is not None:
        assert (dims.at(a, values) == dims.at(b, values)) == light
    if isinstance(a, Q):
        positive = quasi_facts.is_positive(a)
        assert positive is None or symbols.is_positive(sa) in (positive, None)
        assert positive is None or dims.at(a, values) >= 1


def test_printable_formulas_print_as_sympy_prints_them():
    from archplan import symbols

    H, W, N = (quasi.var(n) for n in NAMES)
    quarter, half = dims.floordiv(H, 4), dims.ceildiv(W, 2)
    for x in (H / 2, 432 * H * N * W, H * W / 4 - 1, 1 - 2 * H, (H - 2) * 3, N * H * H, 4608 * N * quarter * half):
        assert quasi_text.printable(x)
        assert dims.to_str(x) == symbols.to_str(as_sympy(x)) and dims.parsable(x) == symbols.to_parsable(as_sympy(x))
    assert dims.to_str(quarter * half + 1) == "ceiling(W/2)*floor(H/4) + 1"
    assert not quasi_text.printable(N * (H - 2))  # sympy keeps the product: not the expanded sum
    assert not quasi_text.printable(dims.dmin(H, W))
    assert not quasi_text.printable(dims.floordiv(H / 2, 3))  # a fraction inside a floor: left to sympy


# -- random variations of the symbolic examples ---------------------------------------------------------------
SOURCES = [yaml.safe_load((ROOT / "examples" / f"{n}.yaml").read_text()) for n in ("unet", "espcn", "byte_gpt")]
SIZES = st.one_of(
    st.integers(0, 9),
    st.sampled_from(["H", "W", "L", "H // 2", "(H + 1) // 2", "2 * W", "L - 1", "max(1, H)", "H * W", "c * 2"]),
)


def int_paths(doc, prefix=()):
    if isinstance(doc, dict):
        items = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return
    for k, v in items:
        if isinstance(v, int) and not isinstance(v, bool):
            yield prefix + (k,)
        yield from int_paths(v, prefix + (k,))


def replaced(doc, path, value):
    if not path:
        return value
    if isinstance(doc, dict):
        return {k: (replaced(v, path[1:], value) if k == path[0] else v) for k, v in doc.items()}
    return [replaced(v, path[1:], value) if i == path[0] else v for i, v in enumerate(doc)]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(range(len(SOURCES))),
    picks=st.lists(st.tuples(st.integers(0, 10_000), SIZES), min_size=1, max_size=3),
)
def test_varied_symbolic_nets_print_the_same(source, picks):
    doc = SOURCES[source]
    for pick, value in picks:
        all_paths = list(int_paths(doc))
        doc = replaced(doc, all_paths[pick % len(all_paths)], value)
    same_reports(archplan.loads(yaml.safe_dump(doc, sort_keys=False)))


# -- generated convolutional nets with free sizes ----------------------------------------------------------------
LAYER = st.one_of(
    st.fixed_dictionaries(
        {
            "op": st.just("conv2d"),
            "out_channels": st.sampled_from([4, 8]),
            "kernel_size": st.sampled_from([1, 2, 3, 5]),
            "stride": st.sampled_from([1, 2, 3]),
            "padding": st.sampled_from([0, 1, 2]),
            "dilation": st.sampled_from([1, 2]),
        }
    ),
    st.fixed_dictionaries(
        {"op": st.just("maxpool2d"), "kernel_size": st.sampled_from([2, 3]), "ceil_mode": st.booleans()}
    ),
    st.fixed_dictionaries({"op": st.just("avgpool2d"), "kernel_size": st.sampled_from([2, 3]), "padding": st.just(1)}),
    st.fixed_dictionaries(
        {
            "op": st.just("convtranspose2d"),
            "out_channels": st.just(4),
            "kernel_size": st.sampled_from([2, 3]),
            "stride": st.sampled_from([1, 2]),
        }
    ),
    st.fixed_dictionaries({"op": st.sampled_from(["relu", "batchnorm2d"])}),
    st.fixed_dictionaries({"op": st.just("upsample"), "scale_factor": st.sampled_from([2, 3])}),
    st.fixed_dictionaries({"op": st.just("zeropad2d"), "padding": st.sampled_from([1, [1, 0, 2, 0]])}),
    st.fixed_dictionaries({"op": st.sampled_from(["concat", "add"]), "skip": st.integers(0, 8)}),
)


def generated(layers: list, minimum: int | None) -> str:
    out = []
    for i, layer in enumerate(layers):
        layer = {"name": f"l{i}", **layer}
        skip = layer.pop("skip", None)
        if skip is not None:
            if not out:
                continue
            layer["in"] = [out[-1]["name"], out[skip % len(out)]["name"]]
            if layer["op"] == "concat":
                layer["dim"] = 1
        out.append(layer)
    symbols = {"N": {}, "H": {"min": minimum} if minimum else {}, "W": {}}
    doc = {"archplan": 1, "name": "g", "symbols": symbols, "inputs": {"x": ["N", 4, "H", "W"]}, "layers": out}
    return yaml.safe_dump(doc, sort_keys=False)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers=st.lists(LAYER, min_size=1, max_size=8), minimum=st.sampled_from([None, 4, 16]))
def test_generated_nets_print_the_same(layers, minimum):
    same_reports(archplan.loads(generated(layers, minimum)))


@pytest.mark.parametrize("name", ["unet", "convnext_tiny"])
def test_render_draws_the_same_graph_either_way(name, monkeypatch):
    from click.testing import CliRunner

    from archplan.api import Net
    from archplan.cli import cli

    args = ["render", str(ROOT / "examples" / f"{name}.yaml"), "-o", "-", "--show", "params,macs,rf"]
    light = CliRunner().invoke(cli, args)
    analyze = Net.analyze
    monkeypatch.setattr(Net, "analyze", lambda self, *a, **k: analyze(self, *a, **{**k, "light": False}))
    exact = CliRunner().invoke(cli, args)
    assert light.exit_code == exact.exit_code == 0 and light.output == exact.output and "digraph" in light.output
