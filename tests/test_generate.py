"""archplan generate: readable, ruff-clean model.py / train.py / README.md / test_model.py from each net file."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import archplan
from archplan.cli import cli
from archplan.codegen import generate_sources
from archplan.outputs import MANIFEST
from archplan.codegen_errors import CodegenError
from archplan.pysource import docstring_lines
from archplan.verify import _example_input, expect, load_module

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD = 1800  # seconds: only catches a hung subprocess; never a limit a busy machine could reach
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.yaml"))
# Nets whose float32 model takes a second or more to build and run here: the slow set checks their generated
# model layer by layer; the default run still verifies each of them (tests/test_verify.py).
LARGE = {"convnext_tiny", "densenet121", "efficientnet_b0", "googlenet", "gpt2_small", "shufflenet_v2_x1_0"}
LARGE |= {"vgg16", "vit_b_16"}
torch = pytest.importorskip("torch")


def ruff() -> list[str]:
    try:
        import ruff as _  # noqa: F401
    except ImportError:
        if shutil.which("ruff") is None:
            pytest.skip("ruff is not installed")
        return ["ruff"]
    return [sys.executable, "-m", "ruff"]


def assert_ruff_clean(folder: Path) -> None:
    """Clean under the configuration the folder carries (its ruff.toml), as a user running ruff there sees it;
    and under the stricter E, F, W selection."""
    assert (folder / "ruff.toml").is_file()
    for args in (["check"], ["check", "--select", "E,F,W"], ["format", "--check"]):
        done = subprocess.run([*ruff(), *args, "--no-cache", "."], capture_output=True, text=True, cwd=folder)
        assert done.returncode == 0, done.stdout + done.stderr


def generate(name: str, tmp_path: Path, *sets: str) -> Path:
    out = tmp_path / name
    result = CliRunner().invoke(cli, ["generate", str(ROOT / "examples" / f"{name}.yaml"), "-o", str(out), *sets])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in LARGE else n for n in EXAMPLES])
def test_generated_model_matches_the_analysis(name, tmp_path):
    out = generate(name, tmp_path)
    files = [MANIFEST, "README.md", "model.py", "ruff.toml", "test_model.py", "train.py"]
    assert sorted(p.name for p in out.iterdir()) == files
    assert_ruff_clean(out)
    source = (out / "model.py").read_text()
    assert "import torch\n" in source and "archplan" not in {n.split(".")[0] for n in _imports(source)}
    net = archplan.load(ROOT / "examples" / f"{name}.yaml")
    generated = generate_sources(net)
    analysis = generated.concrete
    model = load_module(source, name).build_model().eval()
    assert sum(p.numel() for p in model.parameters()) == analysis.totals["params"]
    state = set(model.state_dict())
    for row in analysis.layers:  # state_dict keys mirror the hierarchical layer names
        if row.params:  # a module's weights, or a learned tensor (no input) under the layer's own name
            assert any(k.startswith(f"{row.name}.") for k in state) if row.node.inputs else row.name in state
    shapes = {}
    modules = dict(model.named_modules())
    for row in analysis.layers:
        if row.name in modules:
            modules[row.name].register_forward_hook(  # nn.MultiheadAttention returns (output, weights)
                lambda m, a, o, name=row.name: shapes.__setitem__(
                    name, tuple((o[0] if isinstance(o, tuple) else o).shape)
                )
            )
    inputs = [_example_input(*spec) for spec in expect(net).inputs]
    with torch.no_grad():
        output = model(*inputs)
    assert tuple(output.shape) == tuple(next(iter(analysis.outputs.values())))
    assert shapes == {r.name: tuple(r.output_shape) for r in analysis.layers if r.name in modules}
    assert "## Analysis" in (out / "README.md").read_text()


def _imports(source: str) -> set:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "name", ["lenet", pytest.param("resnet18", marks=pytest.mark.slow), pytest.param("unet", marks=pytest.mark.slow)]
)
def test_the_generated_self_check_passes(name, tmp_path):
    out = generate(name, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_model.py"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_resnet_blocks_share_one_readable_class(tmp_path):
    source = (generate("resnet50", tmp_path) / "model.py").read_text()
    assert source.count("class Bottleneck(nn.Module)") == 1
    # exactly the block's arguments plus the input's channel count, with the YAML's defaults
    assert "def __init__(self, in_channels: int, c: int, stride: int = 1, downsample: bool = False) -> None:" in source
    assert "self.conv3 = nn.Conv2d(c, c * 4, kernel_size=1, bias=False)" in source  # as the YAML writes it
    assert "self.bn3 = nn.BatchNorm2d(c * 4)" in source  # a size computed from the arguments
    assert "        if downsample:\n            self.down_conv = nn.Conv2d(in_channels, c * 4" in source
    assert "        down_bn = x\n        if self.down_conv is not None:\n" in source  # as torchvision writes it
    assert (
        "nn.Sequential(Bottleneck(64, c=64, downsample=True), Bottleneck(256, c=64), Bottleneck(256, c=64))" in source
    )


def test_symbolic_sizes_stay_free_where_the_net_allows(tmp_path):
    source = (generate("unet", tmp_path) / "model.py").read_text()
    assert "# [N, 64, H/4, W/4]" in source


SYMBOLIC_FC = """
archplan: 1
name: symnet
symbols:
  N: {}
  H: {}
inputs:
  image: [N, 3, H, H]
layers:
  - {name: conv1, op: conv2d, out_channels: 8, kernel_size: 3, stride: 2, padding: same}
  - {name: flatten, op: flatten}
  - {name: fc, op: linear, out_features: 4}
"""


def test_a_layer_that_needs_a_concrete_size_asks_for_set(tmp_path):
    path = tmp_path / "symnet.yaml"
    path.write_text(SYMBOLIC_FC)
    result = CliRunner().invoke(cli, ["generate", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "fc needs a concrete size for H" in result.output and "--set H=" in result.output
    assert not (tmp_path / "out").exists()
    path.write_text(SYMBOLIC_FC.replace("H: {}", "H: {default: 15}"))
    result = CliRunner().invoke(cli, ["generate", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "H=15 (its default), because fc needs a concrete size" in result.output
    source = (tmp_path / "out" / "model.py").read_text()
    assert "self.conv1 = Conv2dSame(3, 8, kernel_size=3, stride=2)" in source  # TF 'same' padding, stride 2
    assert "nn.Linear(512, 4)" in source


def test_refuses_a_non_empty_outdir_without_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["generate", str(ROOT / "examples" / "lenet.yaml"), "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "not empty" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert CliRunner().invoke(cli, [*args, "--force"]).exit_code == 0
    assert (out / "model.py").exists() and (out / "notes.txt").read_text() == "mine"


HOSTILE = (
    """archplan: 1
name: hostile
description: "Ends a docstring \\"\\"\\" and """
    + "'''"
    + """ then __import__('os').system('touch PWNED')\\n\\
  # not code\\r\\n\\tbackslash \\\\ and \\\\\\" and {{ jinja }} {% if x %} Ünïcødé ✓ \\0 \\u2028 end\\\\"
symbols: {N: {}}
inputs:
  x: [N, 4]
layers:
  - {name: fc, op: linear, out_features: 2}
"""
)


def test_description_cannot_inject_code(tmp_path):
    path = tmp_path / "hostile.yaml"
    path.write_text(HOSTILE, encoding="utf-8")
    net = archplan.load(path)
    assert "__import__" in net.spec.description and '"""' in net.spec.description
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["generate", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert_ruff_clean(out)
    source = (out / "model.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "__import__" not in calls
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        module = load_module(source, "hostile")
    finally:
        os.chdir(cwd)
    assert not (tmp_path / "PWNED").exists()
    doc = " ".join(module.Hostile.__doc__.split())
    for word in ("__import__('os').system('touch", '"""', "'''", "{{ jinja }}", "Ünïcødé", "✓", 'backslash \\ and \\"'):
        assert word in doc, word
    assert "\x00" in module.Hostile.__doc__  # kept, as an escape; line separators become line breaks


@pytest.mark.parametrize("name", ['"fc"', "fc; import os", "__import__('os')", "a\nb", "class"])
def test_hostile_names_are_rejected_before_codegen(name, tmp_path):
    text = HOSTILE.replace("{name: fc,", "{name: " + repr(name).replace("\n", "\\n") + ",")
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["generate", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert not (tmp_path / "out").exists()


def test_docstring_escaping_round_trips():
    text = 'a """ b \\ c \r d \x00 e \u2028 f \t g\n\nsecond'
    lines = docstring_lines(text)
    value = ast.literal_eval('"""' + "\n".join(lines) + '\n"""')
    assert " ".join(value.split()) == " ".join(text.replace("\t", "    ").split())


def test_codegen_asserts_identifiers():
    from archplan.pysource import identifier, literal

    for bad in ("a b", "class", "x;y", "é"):
        with pytest.raises(CodegenError):
            identifier(bad)
    with pytest.raises(CodegenError):
        literal("same'); import os; ('")
    with pytest.raises(CodegenError):
        literal(float("nan"))


def test_templates_ship_in_a_non_editable_install(tmp_path):
    """Build the wheel, install it (no deps) into a folder and generate from there."""
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
        ],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    if build.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {build.stderr[-500:]}")
    wheel = next(wheel_dir.glob("archplan-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for template in ("model.py.j2", "train.py.j2", "README.md.j2", "test_model.py.j2"):
        assert f"archplan/templates/{template}" in names
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert install.returncode == 0, install.stderr
    script = (
        "import archplan, archplan.codegen as c; print(archplan.__file__); "
        f"g = c.generate_sources(archplan.load({str(ROOT / 'examples' / 'lenet.yaml')!r})); "
        "print(sorted(g.files))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(target)},
        timeout=HANG_GUARD,
    )
    assert done.returncode == 0, done.stderr
    assert str(target) in done.stdout and "'train.py'" in done.stdout


def run_train(folder: Path, *args: str, timeout: float = HANG_GUARD) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", "--no-progress", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def test_generated_lenet_trains_one_epoch_on_digits(tmp_path):
    out = generate("lenet", tmp_path)
    done = run_train(out, "--dataset", "digits", "--device", "cpu", "--epochs", "1", "--max-steps", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "runs" / "lenet" / "metrics.jsonl").exists()
