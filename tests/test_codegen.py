"""Code generation as a reader sees it: golden model.py files, names, arguments as written, located errors."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner

import archplan
from archplan.cli import cli
from archplan.codegen import generate_sources
from archplan.errors import ArchplanError

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"


def model_source(text: str, **values) -> str:
    return generate_sources(archplan.loads(text, "net.yaml"), values).files["model.py"]


@pytest.mark.parametrize("name", ["lenet", "resnet50", "unet", "efficientnet_b0"])
def test_golden_model(name, update_golden):
    source = generate_sources(archplan.load(ROOT / "examples" / f"{name}.yaml")).files["model.py"]
    golden = GOLDEN / f"model_{name}.py.txt"
    if update_golden:
        golden.write_text(source)
    assert golden.exists(), f"{golden} is missing: run pytest --update-golden and review the new file"
    assert source == golden.read_text(), f"model.py of {name} changed; rerun with --update-golden if intended"


def test_efficientnet_block_takes_exactly_its_arguments():
    source = generate_sources(archplan.load(ROOT / "examples" / "efficientnet_b0.yaml")).files["model.py"]
    init = next(
        n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == "__init__"
    )  # the first class is MBConv
    assert [a.arg for a in init.args.args] == ["self", "in_channels", "c", "t", "k", "s"]
    assert "max(1, in_channels // 4)" in source  # as the YAML writes it, not what fits the instances
    assert "with_" not in source and "if t != 1:" in source
    assert "self.use_residual = s == 1 and in_channels == c" in source


NET = """archplan: 1
name: {name}
inputs:
  x: [1, 3, 8, 8]
blocks:
  {block}:
    args: {{c: 4}}
    layers:
      - {{name: {layer}, op: conv2d, out_channels: c, kernel_size: 3, padding: 1}}
      - {{name: act, op: relu}}
layers:
  - {{name: b, block: {block}}}
  - {{name: {top}, op: relu}}
"""


@pytest.mark.parametrize(
    "layer,top", [("sum", "input"), ("id", "len"), ("type_", "sum"), ("self_", "id"), ("torch", "F"), ("x", "max")]
)
def test_builtins_are_never_shadowed(layer, top):
    source = model_source(NET.format(name="net", block="blk", layer=layer, top=top))
    tree = ast.parse(source)
    assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    import builtins

    assert not {n for n in assigned if hasattr(builtins, n) or n in ("torch", "nn", "F", "self")}
    assert f"self.{layer} = " in source and f"self.{top} = " in source  # attributes keep the YAML names
    ns: dict = {}
    exec(compile(source, "model.py", "exec"), ns)  # test-only: our own generated code
    keys = set(ns["build_model"]().state_dict())
    assert f"b.{layer}.weight" in keys


@pytest.mark.parametrize(
    "name,reason",
    [
        ("_modules", "underscore"),
        ("__init__", "underscore"),
        ("compile", "attribute 'compile'"),
        ("extra_repr", "attribute"),
        ("bfloat16", "attribute"),
        ("training", "attribute"),
        ("zero_grad", "attribute"),
    ],
)
def test_names_that_clash_with_module_attributes_are_located_errors(name, reason):
    text = NET.format(name="net", block="blk", layer="conv", top=name)
    result = archplan.loads(text, "net.yaml").analyze()
    errors = [e for e in result.errors if "reserved" in e.message]
    assert errors and reason in errors[0].message and errors[0].line == 13, result.errors


@pytest.mark.parametrize("block,net", [("conv2d_same", "net"), ("blk", "conv2d_same"), ("max_pool2d_same", "f")])
def test_a_net_or_block_named_like_a_helper_defines_each_class_once(block, net):
    text = NET.format(name=net, block=block, layer="conv", top="out").replace(
        "padding: 1}", "padding: same, stride: 2}"
    )
    source = model_source(text)
    classes = [n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef)]
    assert len(classes) == len(set(classes)) and "Conv2dSame" in classes, classes


def test_codegen_errors_are_located(tmp_path):
    text = NET.format(name="net", block="blk", layer="conv", top="out").replace(
        "  - {name: out, op: relu}", "  - {name: out, op: relu, in: b.act}"
    )
    text = text.replace("{name: b, block: blk}", "{name: b, block: blk, when: 2 > 1}")  # inside a `when:` use
    path = tmp_path / "net.yaml"
    path.write_text(text)
    with pytest.raises(ArchplanError) as info:
        generate_sources(archplan.load(path))
    problem = info.value.problems[0]
    assert problem.line == 13 and problem.layer == "out" and "inside a block use under `when:`" in problem.message
    result = CliRunner().invoke(cli, ["generate", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and f"{path}:13:5: error: out: reads 'b.act' inside a block use" in result.output
    assert not (tmp_path / "out").exists()


def test_when_on_an_argument_becomes_if_blocks():
    source = generate_sources(archplan.load(ROOT / "examples" / "resnet50.yaml")).files["model.py"]
    assert "        self.down_conv = None\n        self.down_bn = None\n        if downsample:\n" in source
    assert "        down_bn = x\n        if self.down_conv is not None:\n" in source


def test_block_sizes_follow_from_the_arguments():
    """Sizes are formulas of the block's arguments, not numbers that fit the instances."""
    source = generate_sources(archplan.load(ROOT / "examples" / "unet.yaml")).files["model.py"]
    assert "self.conv = DoubleConv(c + skip_channels, c=c)" in source
    assert "def __init__(self, x_channels: int, skip_channels: int, c: int) -> None:" in source


@pytest.mark.parametrize("count, width", [(6, 15), (9, 14)], ids=["fits-in-parentheses", "one-per-line"])
def test_long_operator_chains_are_laid_out_as_ruff_formats_them(tmp_path, count, width):
    import subprocess

    from archplan.pysource import statement
    from test_generate import ruff

    names = [f"branch_{i}".ljust(width, "x") for i in range(count)]
    lines = statement(f"total = {' + '.join(names)}", 8, "[N, 64, T]")
    assert all(len(line) <= 120 for line in lines) and lines[1] == "        total = ("
    body = [*(f"        {n} = {i}" for i, n in enumerate(names)), *lines, "        return total"]
    (tmp_path / "chain.py").write_text("\n".join(["class A:", "    def f(self) -> int:", *body, ""]))
    done = subprocess.run(
        [*ruff(), "format", "--check", "--diff", "--line-length", "120", "chain.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("default", ["{a: 1}", "[1, x.y]"])
def test_a_default_python_cannot_spell_is_a_located_error(default):
    text = NET.format(name="net", block="blk", layer="conv", top="out").replace(
        "args: {c: 4}", f"args: {{c: 4, style: {default}}}"
    )
    net = archplan.loads(text, "net.yaml")
    assert net.analyze().ok  # no use reads it
    with pytest.raises(ArchplanError) as info:
        generate_sources(net)
    problem = info.value.problems[0]
    assert problem.line == 6 and "block blk: the default of 'style'" in problem.message
    assert "cannot be written in Python" in problem.message
