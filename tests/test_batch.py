"""Batch-only nets without computer algebra: the same figures, texts and JSON as the sympy path, no sympy."""

from __future__ import annotations

import json
import string
import subprocess
import sys
from pathlib import Path

import pytest

import archplan
from archplan import batch
from archplan.report import render

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_the_sympy_names_table_matches_sympy():
    from archplan.symbols import _clashes

    names = set(string.ascii_letters) | {
        a + b for a in string.ascii_letters for b in string.ascii_letters + "0123456789_"
    }
    assert {n for n in names if _clashes(n)} == batch.SYMPY_NAMES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_fast_and_exact_analyses_print_the_same(path):
    net = archplan.load(path)
    fast, exact = net.analyze(), net.analyze(exact=True)
    for fmt in ("json", "table", "markdown"):
        assert render(fast, fmt, str(path)) == render(exact, fmt, str(path)), fmt


@pytest.mark.parametrize("path,values", [("byte_gpt", {"L": 1}), ("unet", {"H": 64, "W": 32})])
def test_fast_and_exact_analyses_print_the_same_with_sizes_set(path, values):
    """With L = 1 the activations are 9777*N + 141: comparing such a sum with its bytes once crashed."""
    net = archplan.load(ROOT / "examples" / f"{path}.yaml")
    fast, exact = net.analyze(values), net.analyze(values, exact=True)
    for fmt in ("json", "table", "markdown"):
        assert render(fast, fmt, path) == render(exact, fmt, path), fmt


def test_a_batch_only_check_never_imports_sympy():
    code = (
        "import sys\nfrom archplan.cli import cli\n"  # the command itself: main() leaves with os._exit
        "try:\n    cli(['check', 'examples/resnet50.yaml'])\nexcept SystemExit:\n    pass\n"
        "print('SYMPY', 'sympy' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "4089184256*N" in done.stdout and "SYMPY False" in done.stderr, done.stderr[-2000:]


def test_json_of_the_fast_path_parses_back_with_sympy():
    import sympy

    doc = json.loads(render(archplan.load(ROOT / "examples" / "lenet.yaml").analyze(), "json"))
    assert sympy.sympify(doc["totals"]["macs"]) == 2293000 * sympy.Symbol("N")
    assert doc["outputs"] == {"fc2": ["Symbol('N')", 10]}


NET = """archplan: 1
name: t
symbols: {B: {}}
inputs:
  x: [B, 4]
layers:
  - {op: linear, out_features: %s}
"""


def test_a_batch_symbol_used_in_a_layer_takes_the_exact_path():
    assert batch.batch_symbol(archplan.loads(NET % "B").spec, ["B"]) is None
    assert batch.batch_symbol(archplan.loads(NET % "3").spec, ["B"]) == "B"
    result = archplan.loads(NET % "B").analyze()
    assert "sympy" in type(result.layers[0].params).__module__  # B*B + B parameters: a sympy formula


def test_polynomials_decode_and_print_like_sympy():
    p = batch.SENTINEL
    assert str(batch.decode(4 * p, "N")) == "4*N"
    assert str(batch.decode(p, "N")) == "N"
    assert str(batch.decode(2 * p * p + 3 * p - 1, "N")) == "2*N**2 + 3*N - 1"
    assert batch.decode(7, "N") == 7
    with pytest.raises(batch.NotPolynomial):
        batch.decode(p // 2, "N")  # floor(N / 2): not a polynomial
