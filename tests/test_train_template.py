"""Tests for templates/train.py.j2: render it for fixture models and run the generated train.py."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_harness import (  # noqa: E402
    lenet_context,
    make_project,
    read_metrics,
    render,
    run_train,
    segmentation_context,
    two_input_context,
)

CONTEXTS = {
    "lenet": lenet_context(),
    "segmentation": segmentation_context(optimizer="sgd", scheduler="cosine", lr=0.05),
    "two_inputs": two_input_context(optimizer="adamw", scheduler="step", lr=1e-5, weight_decay=1e10, seed=123),
}
SMALL = ["--device", "cpu", "--dataset", "synthetic", "--synthetic-size", "256", "--batch-size", "32"]


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"train.py failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"


def assert_clean_failure(result: subprocess.CompletedProcess, *phrases: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def ruff_command() -> list[str]:
    try:
        import ruff  # noqa: F401
    except ImportError:
        if shutil.which("ruff") is None:
            pytest.skip("ruff is not installed (pip install ruff): cannot check the rendered code's style")
        return ["ruff"]
    return [sys.executable, "-m", "ruff"]


@pytest.mark.parametrize("name", CONTEXTS)
def test_rendered_code_passes_ruff_check_and_format(tmp_path, name):
    ruff = ruff_command()
    path = tmp_path / "train.py"
    path.write_text(render(CONTEXTS[name]))
    check = subprocess.run(
        [*ruff, "check", "--no-cache", "--select", "E,F,W", "--line-length", "120", str(path)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run(
        [*ruff, "format", "--no-cache", "--check", "--diff", "--line-length", "120", str(path)],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_rendered_code_embeds_context_values():
    code = render(lenet_context(lr=0.0025, epochs=7, optimizer="sgd"))
    compile(code, "train.py", "exec")
    assert '"image": [1, 28, 28],' in code
    assert 'NET_NAME = "lenet"' in code
    assert "default=0.0025" in code and "default=7" in code and 'default="sgd"' in code
    assert "torchrun --standalone --nproc_per_node=2" in code


def test_lenet_digits_reaches_97_percent(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    result = run_train(project, "--device", "cpu", "--dataset", "digits", "--epochs", "12")
    assert_ok(result)
    assert "digits: 8x8 images resized to 28x28 for input image [1, 28, 28]" in result.stdout
    rows = read_metrics(project / "runs" / "lenet" / "metrics.jsonl")
    assert [row["epoch"] for row in rows] == list(range(1, 13))
    for row in rows:
        assert {"epoch", "train_loss", "val_loss", "val_accuracy", "samples_per_second", "lr", "seconds"} <= set(row)
    assert max(row["val_accuracy"] for row in rows) >= 0.97, rows
    assert (project / "runs" / "lenet" / "curves.png").stat().st_size > 0


def test_checkpoints_are_atomic_and_loadable(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    assert_ok(run_train(project, *SMALL, "--epochs", "2", "--out", "run"))
    run = project / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint_best.pt",
        "checkpoint_last.pt",
        "curves.png",
        "metrics.jsonl",
    ]
    state = torch.load(run / "checkpoint_last.pt", weights_only=False)
    assert state["epoch"] == 2
    assert {"model", "optimizer", "scheduler", "scaler", "best_val_accuracy", "args", "rng"} <= set(state)
    assert {"python", "numpy", "torch"} <= set(state["rng"])
    assert sum(t.numel() for t in state["model"].values()) == 431_080
    assert not any(key.startswith(("module.", "_orig_mod.")) for key in state["model"])
    best = torch.load(run / "checkpoint_best.pt", weights_only=False)
    rows = read_metrics(run / "metrics.jsonl")
    assert best["best_val_accuracy"] == max(row["val_accuracy"] for row in rows)


def test_resume_continues_where_it_stopped(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    assert_ok(run_train(project, *SMALL, "--epochs", "2", "--out", "resumed"))
    result = run_train(project, *SMALL, "--epochs", "3", "--out", "resumed", "--resume")
    assert_ok(result)
    assert "continuing at epoch 3" in result.stdout
    assert "epoch 1/" not in result.stdout and "epoch 2/" not in result.stdout
    resumed = read_metrics(project / "resumed" / "metrics.jsonl")
    assert [row["epoch"] for row in resumed] == [1, 2, 3]
    assert torch.load(project / "resumed" / "checkpoint_last.pt", weights_only=False)["epoch"] == 3

    # Model, optimizer, and RNG state were restored: identical to an uninterrupted 3-epoch run.
    assert_ok(run_train(project, *SMALL, "--epochs", "3", "--out", "straight"))
    straight = read_metrics(project / "straight" / "metrics.jsonl")
    for a, b in zip(resumed, straight):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)


def test_resume_without_checkpoint_fails_cleanly(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    result = run_train(project, *SMALL, "--epochs", "1", "--out", "empty", "--resume")
    assert_clean_failure(result, "--resume", "checkpoint_last.pt")


def test_refuses_to_overwrite_an_existing_run(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    assert_ok(run_train(project, *SMALL, "--epochs", "1", "--out", "run"))
    run = project / "run"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    result = run_train(project, *SMALL, "--epochs", "1", "--out", "run")
    assert_clean_failure(result, "already holds a run", "--resume", "--out")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_torchrun_two_cpu_processes(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    result = run_train(project, *SMALL, "--epochs", "2", "--out", "ddp", nproc=2)
    assert_ok(result)
    assert "x2" in result.stdout
    assert result.stdout.count("epoch 1/2") == 1  # only rank 0 prints
    rows = read_metrics(project / "ddp" / "metrics.jsonl")
    assert [row["epoch"] for row in rows] == [1, 2]
    assert all(math.isfinite(row["train_loss"]) and row["samples_per_second"] > 0 for row in rows)
    state = torch.load(project / "ddp" / "checkpoint_last.pt", weights_only=False)
    assert not any(key.startswith("module.") for key in state["model"])


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    # nan_model.py turns NaN after 12 training steps; 256 samples, 20% validation, batch 32 -> 6 steps per epoch.
    project = make_project(tmp_path / "p", lenet_context(), model_fixture="nan_model.py")
    result = run_train(project, *SMALL, "--epochs", "5", "--out", "run", "--log-interval", "4")
    assert_clean_failure(result, "NaN/inf at epoch 3, step 1", "checkpoint_last.pt")
    assert [row["epoch"] for row in read_metrics(project / "run" / "metrics.jsonl")] == [1, 2]
    state = torch.load(project / "run" / "checkpoint_last.pt", weights_only=False)
    assert state["epoch"] == 2
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_huge_learning_rate_is_reported_as_nan(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    result = run_train(project, *SMALL, "--epochs", "2", "--optimizer", "sgd", "--lr", "1e38", "--out", "run")
    assert_clean_failure(result, "NaN/inf at epoch 1, step")
    assert not (project / "run" / "checkpoint_last.pt").exists()


def test_synthetic_segmentation(tmp_path):
    project = make_project(tmp_path / "p", CONTEXTS["segmentation"], model_fixture="tiny_seg_model.py")
    result = run_train(project, *SMALL, "--epochs", "2", "--out", "seg")
    assert_ok(result)
    rows = read_metrics(project / "seg" / "metrics.jsonl")
    assert [row["epoch"] for row in rows] == [1, 2]
    assert rows[-1]["val_accuracy"] > 0.7  # pixel accuracy: the per-pixel labels are learnable
    assert rows[1]["lr"] < rows[0]["lr"]  # cosine schedule, stepped per epoch


def test_two_inputs_and_max_steps(tmp_path):
    project = make_project(tmp_path / "p", two_input_context(), model_fixture="two_input_model.py")
    result = run_train(project, *SMALL, "--epochs", "1", "--max-steps", "2", "--out", "run")
    assert_ok(result)
    assert len(read_metrics(project / "run" / "metrics.jsonl")) == 1


def test_same_seed_gives_identical_metrics(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    args = [*SMALL, "--epochs", "2", "--seed", "7"]
    assert_ok(run_train(project, *args, "--out", "a"))
    assert_ok(run_train(project, *args, "--out", "b"))
    a, b = (read_metrics(project / name / "metrics.jsonl") for name in ("a", "b"))
    assert [row["train_loss"] for row in a] == [row["train_loss"] for row in b]
    assert [row["val_accuracy"] for row in a] == [row["val_accuracy"] for row in b]


@pytest.mark.parametrize("dataset", ["mnist", "cifar10", "folder", "npz"])
def test_missing_real_dataset_fails_with_a_clear_message(tmp_path, dataset):
    project = make_project(tmp_path / "p", lenet_context())
    result = run_train(project, "--device", "cpu", "--dataset", dataset, "--data-dir", "/nonexistent")
    assert_clean_failure(result, f"--dataset {dataset} expects /nonexistent", "Nothing is downloaded")
    assert not (project / "runs").exists()


def test_dataset_with_more_classes_than_outputs_is_refused(tmp_path):
    import numpy as np

    project = make_project(tmp_path / "p", two_input_context(), model_fixture="two_input_model.py")
    rng = np.random.default_rng(0)
    np.savez(
        project / "data.npz",
        features=rng.normal(size=(64, 12)).astype("float32"),
        extra=rng.normal(size=(64, 4)).astype("float32"),
        y=np.arange(64) % 5,
    )
    result = run_train(project, "--device", "cpu", "--dataset", "npz", "--data-dir", ".")
    assert_clean_failure(result, "npz has 5 classes but the net outputs 3")


def test_npz_dataset(tmp_path):
    import numpy as np

    project = make_project(tmp_path / "p", lenet_context())
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(128, 14, 14), dtype=np.uint8)  # fitted to [1, 28, 28]
    np.savez(project / "data.npz", x=images, y=np.arange(128) % 10)
    result = run_train(project, "--device", "cpu", "--dataset", "npz", "--data-dir", "data.npz", "--epochs", "1")
    assert_ok(result)
    assert "npz: 14x14 images resized to 28x28 for input image [1, 28, 28]" in result.stdout


def test_compile_and_amp_bf16_smoke(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    result = run_train(project, *SMALL, "--epochs", "1", "--max-steps", "3", "--compile", "--amp", "bf16", "--out", "c")
    assert_ok(result)
    assert "amp bf16" in result.stdout and "compile True" in result.stdout
    rows = read_metrics(project / "c" / "metrics.jsonl")
    assert len(rows) == 1 and math.isfinite(rows[0]["train_loss"])
    state = torch.load(project / "c" / "checkpoint_last.pt", weights_only=False)
    assert not any(key.startswith("_orig_mod.") for key in state["model"])
