"""`archplan memory` (table, JSON contract, Markdown, exit statuses), byte amounts and devices, `render --show
memory` and the chart's saved-bytes panel, and the generated train.py's `--batch-size auto`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import sympy
from click.testing import CliRunner

import archplan
from archplan.cli import cli
from archplan.memory import Options, plan, trainer_memory
from archplan.memory_devices import DEFAULT_RESERVE, DEVICES, GIB, MIB, parse_bytes

ROOT = Path(__file__).resolve().parents[1]


def example(name: str) -> str:
    return str(ROOT / "examples" / f"{name}.yaml")


def run(*args):
    return CliRunner().invoke(cli, ["memory", *map(str, args)])


def test_table_lists_saved_bytes_per_layer_and_the_totals():
    result = run(example("lenet"), "--optimizer", "sgd", "--device", "cpu")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "lenet: training memory (sgd, amp off, cpu)"
    assert "pool1    maxpool 2x2          67.50 KiB·N  63.9%" in lines  # input 92,160·N/2 B + int64 indices
    assert "Saved activations: 105.64 KiB·N (the net's input: 3.06 KiB·N)" in lines
    assert "Training peak: 126.86 KiB·N + 3.29 MiB (backward at pool1)" in lines
    assert "  = 129904*N + 3446560 bytes" in lines
    assert "Reserve: 0 B (cpu)" in lines


def test_device_memory_gives_the_largest_batch_and_the_reserve_is_stated():
    result = run(example("resnet50"), "--device-memory", "a100-40gb", "--batch", "32")
    assert result.exit_code == 0, result.output
    memory = plan(archplan.load(example("resnet50")).analyze(), Options("adam"))
    n = memory.largest_batch(DEVICES["a100-40gb"])
    assert f"Device 40.00 GiB: largest training batch N = {n}" in result.output
    assert memory.peak_at(n) + DEFAULT_RESERVE <= 40 * GIB < memory.peak_at(n + 1) + DEFAULT_RESERVE
    assert "Reserve: 1.00 GiB (CUDA context 512.00 MiB" in result.output
    assert "  at N=32: " in result.output
    tight = run(example("resnet50"), "--device-memory", "80GiB", "--reserve", "0")
    assert "Reserve: 0 B (--reserve)" in tight.output
    assert f"N = {memory.largest_batch(80 * GIB + DEFAULT_RESERVE):,}" in tight.output


def test_json_adds_saved_bytes_per_layer_and_a_memory_section():
    result = run(example("unet"), "--format", "json", "--device-memory", "24GiB", "--batch", "4", "--amp", "bf16")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    memory = data["memory"]
    assert memory["amp"] == "bf16" and memory["batch_symbol"] == "N" and memory["probe"] == {"H": 64, "W": 64}
    saved = sympy.sympify(memory["saved_activations_bytes"])
    total = sum((sympy.sympify(layer["saved_bytes"]) for layer in data["layers"]), sympy.Integer(0))
    assert sympy.simplify(saved - total) == 0
    for key in ("weights", "buffers", "gradients", "optimizer_state", "saved_inputs", "weight_copies"):
        assert key + "_bytes" in memory
    peak = sympy.sympify(memory["training_peak_bytes"])
    values = {sympy.Symbol(n, integer=True, positive=True): v for n, v in {"N": 4, "H": 64, "W": 64}.items()}
    assert memory["at_batch"]["training_peak_bytes"] >= int(peak.subs({str(k): v for k, v in values.items()}))
    assert memory["training_peak"]["pieces"][-1]["to"] is None
    assert memory["largest_batch"] >= 1 and memory["device_memory_bytes"] == 24 * GIB
    assert memory["reserve_bytes"] == DEFAULT_RESERVE
    assert set(data) >= {"name", "ok", "totals", "layers", "constraints"}  # check's contract, unchanged


def test_markdown_and_inference():
    result = run(example("squeezenet1_1"), "--format", "markdown", "--inference", "--device-memory", "t4")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("## squeezenet1\\_1: memory")
    assert "| Layer | Op | Output | Live while it runs |" in result.output
    assert "largest inference batch N =" in result.output


def test_usage_errors_and_file_errors():
    bad = run(example("lenet"), "--device-memory", "lots")
    assert bad.exit_code == 2 and "expected an amount such as 80GiB" in bad.output
    fixed = run(example("lenet"), "--set", "N=4", "--batch", "8")
    assert fixed.exit_code == 2 and "--batch needs a net whose inputs start with a batch symbol" in fixed.output
    broken = run(example("unet"), "--set", "H=60", "--set", "W=64")
    assert broken.exit_code == 1 and "error" in broken.output


def test_parse_bytes():
    assert (
        parse_bytes("80GiB") == 80 * GIB and parse_bytes("40GB") == 40 * 10**9 and parse_bytes("512 MiB") == 512 * MIB
    )
    assert parse_bytes("H100-80GB") == 81_559 * MIB and parse_bytes("1e9") == 10**9 and parse_bytes("4096") == 4096
    for text in ("-1", "lots", "3 parsecs", "nan"):
        with pytest.raises(ValueError):
            parse_bytes(text)


def test_render_shows_saved_bytes_on_layers():
    from archplan.memory_report import saved_text

    net = archplan.load(example("simple_convnet"))
    dot = net.diagram(show=("memory",)).source
    for layer in plan(net.analyze()).layers:
        assert f"saved {saved_text(layer.saved)}" in dot
    assert "saved 0" in dot  # a layer that saves nothing says so
    result = CliRunner().invoke(cli, ["render", example("lenet"), "-o", "-", "--show", "params,memory"])
    assert result.exit_code == 0 and "saved 67.50 KiB·N" in result.output


def test_chart_has_a_saved_bytes_series():
    pytest.importorskip("matplotlib")
    from archplan.chart import memory_data

    result = archplan.load(example("lenet")).analyze()
    rows = memory_data(result)
    assert [r[0] for r in rows] == ["conv1", "pool1", "tanh1", "pool2", "tanh2", "tanh3"]
    assert rows[1][3] == 69120.0  # N = 1: pool1's input and int64 indices


# -- train.py --batch-size auto --------------------------------------------------------------------------------


def test_trainer_numbers_are_the_plans():
    net = archplan.load(example("lenet"))
    numbers = trainer_memory(net, {"N": 1})
    lines = {(s, a): [] for s, a, _, _ in numbers["lines"]}
    for s, a, x, y in numbers["lines"]:
        lines[s, a].append((x, y))
    assert set(lines) == {(s, a) for s in ("sgd", "sgd-momentum", "adam") for a in ("off", "bf16", "fp16")}
    memory = plan(net.analyze(), Options("adam", "bf16", "cuda"))
    n = 1000
    assert max(x * n + y for x, y in lines["adam", "bf16"]) == memory.peak_at(n)
    assert trainer_memory(net, {}) is None and numbers["weights"] == 431080 * 4


@pytest.fixture
def generated(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "lenet"
    result = CliRunner().invoke(cli, ["generate", example("lenet"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_generated_trainer_with_a_plan_is_ruff_clean(generated):
    from test_generate import assert_ruff_clean

    assert "MEMORY_LINES = [  # (optimizer state, amp, a, b)" in (generated / "train.py").read_text()
    assert_ruff_clean(generated)


def load_trainer(folder: Path):
    import runpy

    sys.path.insert(0, str(folder))
    sys.modules.pop("model", None)
    try:
        return runpy.run_path(str(folder / "train.py"), run_name="train")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("model", None)


def test_auto_batch_size_on_cuda_uses_the_plan(generated, monkeypatch):
    import torch

    train = load_trainer(generated)
    free = 8 * GIB
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 16 * GIB))
    runtime = train["Runtime"](torch.device("cuda", 0), amp_dtype=torch.bfloat16)
    args = SimpleNamespace(optimizer="adam", momentum=0.9)
    batch = train["auto_batch_size"](args, runtime)
    lines = [(a, b) for s, m, a, b in train["MEMORY_LINES"] if (s, m) == ("adam", "bf16")]
    room = free - train["MEMORY_RESERVE"]
    assert batch == min(int((room - b) / a * 0.9) for a, b in lines) > 1000
    memory = plan(archplan.load(example("lenet")).analyze(), Options("adam", "bf16", "cuda"))
    assert memory.peak_at(batch) + train["MEMORY_RESERVE"] <= free  # the context is already out of `free`


def test_auto_batch_size_on_cpu_says_so_and_uses_the_default(generated):
    from _train_harness import run_in_process

    quick = "--device cpu --epochs 1 --max-steps 1 --dataset synthetic --synthetic-size 64".split()
    done = run_in_process(generated, *quick, "--batch-size", "auto", "--out", generated / "run")
    assert done.returncode == 0, done.stderr
    assert "note: --batch-size auto needs CUDA; using 64" in done.stdout
    bad = run_in_process(generated, "--device", "cpu", "--batch-size", "many")
    assert bad.returncode == 2 and "--batch-size: expected an integer from 1" in bad.stderr


# -- op rules -----------------------------------------------------------------------------------------------------

RULED_MODULES = {"conv", "dense", "pool", "elementwise", "structure", "layout", "indexing", "padding", "shuffle"}
RULED_MODULES |= {"regularize", "tensors"}


def test_every_op_of_the_memory_modules_states_its_rule():
    from archplan.ops.base import Op, all_ops

    def module(cls) -> str:  # variants (Conv2d, MaxPool3d, ...) are made in ops/base.py from their family's class
        return next(k.__module__ for k in cls.__mro__ if k.__module__ != "archplan.ops.base").rsplit(".", 1)[-1]

    ops = [cls for cls in all_ops().values() if module(cls) in RULED_MODULES]
    assert len(ops) > 60
    assert [cls.name for cls in ops if cls.memory is Op.memory] == []


def test_an_op_without_a_rule_is_reported(monkeypatch):
    from archplan.ops.base import Op
    from archplan.ops.structure import Upsample

    monkeypatch.setattr(Upsample, "memory", Op.memory)
    text = "archplan: 1\nname: up\ninputs: {x: [N, 3, 8, 8]}\nlayers:\n  - {op: upsample, scale_factor: 2}\n"
    path = Path(pytest.importorskip("tempfile").mkdtemp()) / "up.yaml"
    path.write_text(text)
    table = run(path)
    assert table.exit_code == 0 and "note: no memory rule for Upsample" in table.output
    assert json.loads(run(path, "--format", "json").output)["memory"]["ops_without_memory_rules"] == ["Upsample"]
