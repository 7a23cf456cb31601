"""The command line: golden output, the JSON contract, exit codes, fast help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archplan.cli import cli

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.mark.parametrize(
    "example,fmt,extra",
    [
        ("keras_mnist", "table", ["--set", "N=1"]),
        ("lenet", "markdown", []),
        ("unet", "json", []),
        ("keras_mnist", "json", ["--set", "N=1"]),
    ],
)
def test_golden_output(example, fmt, extra, update_golden):
    result = run("check", f"examples/{example}.yaml", "--format", fmt, *extra)
    assert result.exit_code == 0
    golden = GOLDEN / f"check_{example}.{fmt}"
    if update_golden:
        golden.write_text(result.output)
    assert golden.exists(), f"{golden} is missing: run pytest --update-golden and review the new file"
    assert result.output == golden.read_text()


def test_json_contract():
    doc = json.loads(run("check", "examples/unet.yaml", "--format", "json").output)
    assert set(doc) >= {"name", "ok", "inputs", "outputs", "totals", "layers", "constraints", "errors", "warnings"}
    assert set(doc["totals"]) == {"params", "trainable_params", "buffers", "macs", "flops", "activation_bytes"}
    layer = doc["layers"][0]
    assert set(layer) >= {"name", "op", "inputs", "output_shape", "params", "macs", "flops", "receptive_field", "line"}
    import sympy

    macs = sympy.sympify(doc["totals"]["macs"])
    assert macs.subs({"N": 1, "H": 64, "W": 64}) == 35408 * 64 * 64
    assert doc["outputs"] == {"head": ["Symbol('N')", 2, "H", "W"]}  # plain "N" would parse as sympy.N
    assert doc["constraints"][:2] == ["H % 8 == 0", "H >= 8"]
    names = [row["name"] for row in doc["layers"]]
    assert "up3.conv.conv1" in names


def test_exit_codes(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("archplan: 1\nname: t\ninputs:\n  x: [1, 3, 8, 8]\nlayers:\n  - {op: conv2d, out_channels: 4}\n")
    assert run("check", str(bad)).exit_code == 1
    assert run("check", str(tmp_path / "missing.yaml")).exit_code == 2
    assert run("check", "examples/unet.yaml", "--set", "Q=3").exit_code == 2
    assert run("check", "examples/unet.yaml", "--set", "H=abc").exit_code == 2
    assert run("check", "examples/unet.yaml", "--format", "xml").exit_code == 2
    assert run("check", "examples/unet.yaml", "--set", "H=60", "--set", "W=64").exit_code == 1
    assert run("check", "examples/keras_mnist.yaml", "--strict").exit_code == 1


def test_errors_name_file_line_layer(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "archplan: 1\nname: t\ninputs:\n  x: [1, 3, 8, 8]\nlayers:\n"
        "  - {name: c, op: conv2d, out_channels: 4, kernel_size: 3, in_channels: 2}\n"
    )
    result = run("check", str(bad))
    assert f"{bad}:6:5: error: c: in_channels mismatch: expected 3" in result.output
    assert "Traceback" not in result.output


def test_unreadable_file_is_a_usage_error(tmp_path):
    binary = tmp_path / "net.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    result = run("check", str(binary))
    assert result.exit_code == 2
    assert "cannot read the file" in result.output


def test_help_is_fast_and_imports_nothing_heavy():
    code = (
        "import sys; from archplan.cli import cli; sys.argv=['archplan','check','--help']\n"
        "try:\n    cli()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sympy', 'torch', 'networkx', 'jinja2', 'yaml') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout
    assert "HEAVY []" in out


def test_concrete_nets_do_not_import_sympy():
    code = (
        "import sys, archplan\nr = archplan.load('examples/resnet50.yaml').analyze({'N': 1})\n"
        "print(r.totals['params'], 'sympy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout
    assert out.split() == ["25557032", "False"]


def test_reference_text_arithmetic(tmp_path):
    cases = [
        (224, "kernel_size: 2", 223),
        (224, "kernel_size: 3", 222),
        (224, "kernel_size: 2, padding: same", 224),
        (224, "kernel_size: 3, padding: same", 224),
        (224, "kernel_size: 2, stride: 2, padding: same", 112),
        (224, "kernel_size: 3, stride: 2, padding: same", 112),
        (224, "kernel_size: 2, stride: 2", 112),
        (224, "kernel_size: 3, stride: 2", 111),
        (28, "kernel_size: 5, padding: full", 32),
    ]
    for side, args, want in cases:
        path = tmp_path / "case.yaml"
        path.write_text(
            f"archplan: 1\nname: c\ninputs:\n  x: [1, 3, {side}, {side}]\n"
            f"layers:\n  - {{op: conv2d, out_channels: 4, {args}}}\n"
        )
        doc = json.loads(run("check", str(path), "--format", "json").output)
        assert list(doc["outputs"].values())[0][2:] == [want, want], args


def test_ops_lists_the_registry():
    listing = run("ops")
    assert listing.exit_code == 0 and "Conv2d" in listing.output and "ZeroPad2d" in listing.output
    conv = run("ops", "conv_2d")
    assert "out_channels" in conv.output and "in_channels" in conv.output and "inferred" in conv.output
    assert run("ops", "nosuchop").exit_code == 2
