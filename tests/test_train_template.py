"""Tests for templates/train.py.j2 (render it for fixture models, run the generated train.py) and for the checks of
the `train:` section that `archplan check` applies.

Most runs go through run_in_process (train.py's main() inside this process: no interpreter start, no torch import);
the few behaviours a separate process can change (exit statuses as the shell sees them, torchrun, torch.compile,
SIGKILL) use run_train. Work is bounded by epochs and --max-steps, never by the clock. Slow tests (pytest -m slow):
the one accuracy test, the compile/AMP smoke test and the resume of a run killed with SIGKILL.
"""

from __future__ import annotations

import math
import pickle
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import archplan  # noqa: E402
from _train_harness import (  # noqa: E402
    assert_ok,
    assert_refused,
    lenet_context,
    load,
    make_project,
    read_metrics,
    render,
    run_in_process,
    run_train,
    segmentation_context,
    two_input_context,
)

CONTEXTS = {
    "lenet": lenet_context(),
    "segmentation": segmentation_context(optimizer="sgd", scheduler="cosine", lr=0.05),
    "two_inputs": two_input_context(optimizer="adamw", scheduler="step", lr=1e-5, weight_decay=1e10, seed=123),
    # the longest values archplan check allows: lines must stay ruff-clean whatever the values
    "extremes": lenet_context(
        lr=1.2345678901234567e-05,
        weight_decay=0.00012345678901234567,
        gamma=0.98765432109876543,
        seed=2**32 - 1,
        epochs=100_000,
        batch_size=2**20,
        step_size=100_000,
        num_workers=64,
        momentum=0.12345678901234568,
        label_smoothing=0.12345678901234568,
        val_fraction=0.12345678901234568,
    ),
}
SMALL = ["--device", "cpu", "--dataset", "synthetic", "--synthetic-size", "256", "--batch-size", "32"]
QUICK = [
    "--device",
    "cpu",
    "--dataset",
    "synthetic",
    "--synthetic-size",
    "128",
    "--batch-size",
    "16",
    "--max-steps",
    "2",
]


def ruff_command() -> list[str]:
    try:
        import ruff  # noqa: F401
    except ImportError:
        if shutil.which("ruff") is None:
            pytest.skip("ruff is not installed (pip install ruff): cannot check the rendered code's style")
        return ["ruff"]
    return [sys.executable, "-m", "ruff"]


# -- the rendered code ---------------------------------------------------------------------------------------------


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
    assert "weights_only=True" in code and "weights_only=False" not in code


# -- checkpoints and resume ----------------------------------------------------------------------------------------


def test_checkpoints_hold_only_tensors_and_plain_values(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    assert_ok(run_in_process(project, *QUICK, "--epochs", "2", "--out", "run"))
    run = project / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint_best.pt",
        "checkpoint_last.pt",
        "curves.png",
        "metrics.jsonl",
    ]
    state = load(run / "checkpoint_last.pt")  # weights_only=True: no pickled Python objects
    assert state["epoch"] == 2 and state["net"] == "lenet"
    assert {"model", "optimizer", "scheduler", "scaler", "best_val_accuracy", "args", "rng"} <= set(state)
    assert {"python", "numpy", "torch"} <= set(state["rng"])
    assert sum(t.numel() for t in state["model"].values()) == 431_080
    assert not any(key.startswith(("module.", "_orig_mod.")) for key in state["model"])
    best = load(run / "checkpoint_best.pt")
    rows = read_metrics(run / "metrics.jsonl")
    assert best["best_val_accuracy"] == max(row["val_accuracy"] for row in rows)


def test_rng_states_survive_weights_only_loading_bit_exactly(tmp_path):
    import runpy

    project = make_project(tmp_path / "p", lenet_context())
    sys.path.insert(0, str(project))
    try:
        trainer = runpy.run_path(str(project / "train.py"), run_name="trainer")
    finally:
        sys.path.remove(str(project))
        sys.modules.pop("model", None)
    random.gauss(0, 1), np.random.normal(), torch.rand(3)  # leaves cached Gaussians in python's and numpy's state

    def draws():
        return random.random(), random.gauss(0, 1), np.random.normal(), np.random.rand(), torch.rand(4).tolist()

    torch.save(trainer["rng_states"](), tmp_path / "rng.pt")
    expected = draws()
    draws()
    trainer["restore_rng_states"](load(tmp_path / "rng.pt"))
    assert draws() == expected


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    project = make_project(tmp_path / "p", lenet_context())
    real_save = torch.save

    def disk_full_at_epoch_2(state, path, *args, **kwargs):
        if state["epoch"] == 2:
            Path(path).write_bytes(b"half a checkpoint")
            raise OSError(28, "No space left on device")
        return real_save(state, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_at_epoch_2)
    result = run_in_process(project, *QUICK, "--epochs", "2", "--out", "run")
    assert_refused(result, 1, "could not write to the run folder", "No space left on device")
    monkeypatch.undo()
    run = project / "run"
    assert load(run / "checkpoint_last.pt")["epoch"] == 1  # the epoch-1 checkpoint, whole
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]

    result = run_in_process(project, *QUICK, "--epochs", "2", "--out", "run", "--resume")
    assert_ok(result)
    assert "continuing at epoch 2" in result.stdout
    assert [row["epoch"] for row in read_metrics(run / "metrics.jsonl")] == [1, 2]


def test_resume_after_a_torn_metrics_line_matches_an_uninterrupted_run(tmp_path):
    # two_input_model.py has dropout: the run draws from torch's RNG, which the checkpoint must restore.
    project = make_project(tmp_path / "p", two_input_context(), model_fixture="two_input_model.py")
    assert_ok(run_in_process(project, *QUICK, "--epochs", "2", "--out", "resumed"))
    with (project / "resumed" / "metrics.jsonl").open("a") as metrics:
        metrics.write('{"epoch": 3, "train_loss": 0.1')  # what a kill in the middle of a write leaves
    result = run_in_process(project, *QUICK, "--epochs", "4", "--out", "resumed", "--resume")
    assert_ok(result)
    assert "continuing at epoch 3" in result.stdout
    assert "dropped unreadable line(s) 3" in result.stdout
    assert "epoch 1/" not in result.stdout and "epoch 2/" not in result.stdout

    assert_ok(run_in_process(project, *QUICK, "--epochs", "4", "--out", "straight"))
    resumed, straight = (read_metrics(project / name / "metrics.jsonl") for name in ("resumed", "straight"))
    assert [row["epoch"] for row in resumed] == [1, 2, 3, 4]
    for a, b in zip(resumed, straight, strict=True):
        assert (a["train_loss"], a["val_loss"], a["lr"]) == (b["train_loss"], b["val_loss"], b["lr"])
    weights = [load(project / name / "checkpoint_last.pt")["model"] for name in ("resumed", "straight")]
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[1])


def test_resume_without_checkpoint_fails_cleanly(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    result = run_in_process(project, *SMALL, "--epochs", "1", "--out", "empty", "--resume")
    assert_refused(result, 2, "--resume", "checkpoint_last.pt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Finished one-epoch runs to resume: lenet with adam and with sgd, and the two-input net."""
    root = tmp_path_factory.mktemp("runs")
    lenet = make_project(root / "lenet", lenet_context())
    assert_ok(run_in_process(lenet, *QUICK, "--epochs", "1", "--out", "adam"))
    assert_ok(run_in_process(lenet, *QUICK, "--epochs", "1", "--out", "sgd", "--optimizer", "sgd"))
    other = make_project(root / "other", two_input_context(), model_fixture="two_input_model.py")
    assert_ok(run_in_process(other, *QUICK, "--epochs", "1", "--out", "run"))
    return {"project": lenet, "adam": lenet / "adam", "sgd": lenet / "sgd", "other": other / "run"}


def edit_checkpoint(edit):
    def apply(path: Path, runs: dict) -> None:
        state = load(path)
        edit(state, runs)
        torch.save(state, path)

    return apply


def replace_with_folder(path: Path, runs: dict) -> None:
    path.unlink()
    path.mkdir()


BAD_CHECKPOINTS = {
    "random bytes": (lambda path, runs: path.write_bytes(random.Random(0).randbytes(4096)), "not a readable"),
    "truncated": (lambda path, runs: path.write_bytes(path.read_bytes()[:100_000]), "not a readable"),
    "empty": (lambda path, runs: path.write_bytes(b""), "is empty"),
    "a folder": (replace_with_folder, "is not a file"),
    "another net": (
        lambda path, runs: shutil.copyfile(runs["other"] / "checkpoint_last.pt", path),
        "the net 'twoinputs', whose weights do not fit lenet's model.py",
    ),
    "a list": (lambda path, runs: torch.save([1, 2, 3], path), "holds a list"),
    "no rng": (edit_checkpoint(lambda state, runs: state.pop("rng")), "missing or malformed: rng"),
    "text epoch": (edit_checkpoint(lambda state, runs: state.update(epoch="3")), "missing or malformed: epoch"),
    "epoch 0": (edit_checkpoint(lambda state, runs: state.update(epoch=0)), "missing or malformed: epoch"),
    "numpy objects": (
        edit_checkpoint(lambda state, runs: state["rng"].update(numpy=np.random.get_state())),
        "pickled Python objects (numpy",
    ),
    "sgd's state": (
        edit_checkpoint(
            lambda state, runs: state.update(optimizer=load(runs["sgd"] / "checkpoint_last.pt")["optimizer"])
        ),
        "the adam optimizer state in",
    ),
    "bad rng": (
        edit_checkpoint(lambda state, runs: state["rng"].update(torch=torch.zeros(3, dtype=torch.uint8))),
        "the random number generator states in",
    ),
}


@pytest.mark.parametrize("kind", BAD_CHECKPOINTS)
def test_bad_checkpoints_are_refused_in_one_line(tmp_path, runs, kind):
    damage, phrase = BAD_CHECKPOINTS[kind]
    run = tmp_path / "run"
    shutil.copytree(runs["adam"], run)
    damage(run / "checkpoint_last.pt", runs)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    result = run_in_process(runs["project"], *QUICK, "--epochs", "2", "--out", run, "--resume")
    assert_refused(result, 2, "--resume", str(run / "checkpoint_last.pt"), phrase)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_checkpoint_of_another_optimizer_is_refused(runs):
    result = run_in_process(runs["project"], *QUICK, "--epochs", "2", "--out", runs["sgd"], "--resume")
    assert_refused(result, 2, "trained with --optimizer sgd", "asks for --optimizer adam")


class CreatesMarker:
    """Unpickling this calls open(marker, "w"): what a malicious checkpoint does, harmlessly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("container", ["torch.save", "pickle"])
def test_a_malicious_checkpoint_is_refused_without_running_it(tmp_path, runs, container):
    run = tmp_path / "run"
    shutil.copytree(runs["adam"], run)
    marker = tmp_path / "marker"
    checkpoint = run / "checkpoint_last.pt"
    if container == "torch.save":  # a real checkpoint with one more entry
        torch.save({**load(checkpoint), "extra": CreatesMarker(marker)}, checkpoint)
    else:
        checkpoint.write_bytes(pickle.dumps({"epoch": 1, "extra": CreatesMarker(marker)}, protocol=2))
    result = run_in_process(runs["project"], *QUICK, "--epochs", "2", "--out", run, "--resume")
    assert_refused(result, 2, "--resume", "pickled Python objects (", "open)", "refused without loading it")
    assert not marker.exists()
    # The test can fail: loading the file the unsafe way runs the payload.
    if container == "torch.save":
        torch.load(checkpoint, weights_only=False)
    else:
        pickle.loads(checkpoint.read_bytes())
    assert marker.exists()


def test_refuses_to_overwrite_an_existing_run(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    assert_ok(run_in_process(project, *QUICK, "--epochs", "1", "--out", "run"))
    run = project / "run"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    result = run_train(project, *QUICK, "--epochs", "1", "--out", "run")  # a real process: its real exit status
    assert_refused(result, 2, "already holds a run", "--resume", "--out")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


# -- command line ----------------------------------------------------------------------------------------------------


BAD_FLAGS = {
    "--lr inf": (["--lr", "inf"], "--lr: expected a finite number > 0, received 'inf'"),
    "--lr nan": (["--lr", "nan"], "--lr: expected a finite number > 0, received 'nan'"),
    "--lr -1": (["--lr=-1"], "--lr: expected a finite number > 0"),
    "--seed 2**32": (["--seed", str(2**32)], "--seed: expected an integer from 0 to 4294967295"),
    "--seed -1": (["--seed=-1"], "--seed: expected an integer from 0"),
    "--seed 2**80": (["--seed", "2**80"], "received '2**80'"),
    "--epochs 0": (["--epochs", "0"], "--epochs: expected an integer from 1 to 100000"),
    "--epochs 1e9": (["--epochs", "1e9"], "--epochs: expected an integer"),
    "--batch-size 0": (["--batch-size", "0"], "--batch-size: expected an integer from 1"),
    "--momentum 1": (["--momentum", "1"], "--momentum: expected a finite number in [0, 1)"),
    "--val-fraction 1": (["--val-fraction", "1"], "--val-fraction: expected a finite number in (0, 1)"),
    "--weight-decay -0.1": (["--weight-decay=-0.1"], "--weight-decay: expected a finite number >= 0"),
    "--num-workers -1": (["--num-workers=-1"], "--num-workers: expected an integer from 0 to 64"),
    "--max-steps 0": (["--max-steps", "0"], "--max-steps: expected an integer >= 1"),
    "--log-interval 0": (["--log-interval", "0"], "--log-interval: expected an integer >= 1"),
    "unknown flag": (["--learning-rate", "0.1"], "unrecognized arguments: --learning-rate"),
    "unknown dataset": (["--dataset", "imagenet"], "--dataset: invalid choice: 'imagenet'"),
    "huge synthetic set": (["--synthetic-size", str(10**12)], "--synthetic-size 1000000000000 needs"),
}


@pytest.mark.parametrize("case", BAD_FLAGS)
def test_bad_flags_are_refused_in_one_line(tmp_path, case):
    flags, phrase = BAD_FLAGS[case]
    project = make_project(tmp_path / "p", lenet_context())
    result = run_in_process(project, *SMALL, *flags, "--out", "run")
    assert_refused(result, 2, phrase)
    assert not (project / "run").exists()


@pytest.mark.parametrize("out", ["a_file", "a_file/run"])
def test_out_must_be_a_folder(tmp_path, out):
    project = make_project(tmp_path / "p", lenet_context())
    (project / "a_file").write_text("not a folder")
    result = run_in_process(project, *QUICK, "--out", out)
    assert_refused(result, 2, f"--out {out}: a_file is a file, not a folder")
    assert (project / "a_file").read_text() == "not a folder"


# -- training ----------------------------------------------------------------------------------------------------------


def test_torchrun_two_cpu_processes(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    result = run_train(project, *QUICK, "--epochs", "2", "--out", "ddp", nproc=2)
    assert_ok(result)
    assert "x2" in result.stdout
    assert result.stdout.count("epoch 1/2") == 1  # only rank 0 prints
    rows = read_metrics(project / "ddp" / "metrics.jsonl")
    assert [row["epoch"] for row in rows] == [1, 2]
    assert all(math.isfinite(row["train_loss"]) and row["samples_per_second"] > 0 for row in rows)
    state = load(project / "ddp" / "checkpoint_last.pt")
    assert not any(key.startswith("module.") for key in state["model"])


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    # nan_model.py turns NaN after 12 training steps; 256 samples, 20% validation, batch 32 -> 6 steps per epoch.
    project = make_project(tmp_path / "p", lenet_context(), model_fixture="nan_model.py")
    result = run_in_process(project, *SMALL, "--epochs", "5", "--out", "run", "--log-interval", "4")
    assert_refused(result, 1, "NaN/inf at epoch 3, step 1", "checkpoint_last.pt")
    assert [row["epoch"] for row in read_metrics(project / "run" / "metrics.jsonl")] == [1, 2]
    state = load(project / "run" / "checkpoint_last.pt")
    assert state["epoch"] == 2
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert (project / "run" / "curves.png").stat().st_size > 0  # drawn when the run stops early too


def test_huge_learning_rate_is_reported_as_nan(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    result = run_in_process(project, *QUICK, "--epochs", "2", "--optimizer", "sgd", "--lr", "1e38", "--out", "run")
    assert_refused(result, 1, "NaN/inf at epoch 1, step")
    assert not (project / "run" / "checkpoint_last.pt").exists()


def test_curves_are_drawn_once_at_the_end_not_every_epoch(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    saved = []
    real_savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda figure, *a, **k: saved.append(a) or real_savefig(figure, *a, **k))
    project = make_project(tmp_path / "p", lenet_context())
    assert_ok(run_in_process(project, *QUICK, "--epochs", "3", "--out", "run"))
    assert len(saved) == 1
    assert (project / "run" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_synthetic_segmentation(tmp_path):
    project = make_project(tmp_path / "p", CONTEXTS["segmentation"], model_fixture="tiny_seg_model.py")
    result = run_in_process(project, *SMALL, "--epochs", "2", "--out", "seg")
    assert_ok(result)
    rows = read_metrics(project / "seg" / "metrics.jsonl")
    assert [row["epoch"] for row in rows] == [1, 2]
    assert rows[-1]["val_accuracy"] > 0.7  # pixel accuracy: the per-pixel labels are learnable
    assert rows[1]["lr"] < rows[0]["lr"]  # cosine schedule, stepped per epoch


def test_two_inputs_and_max_steps(tmp_path):
    project = make_project(tmp_path / "p", two_input_context(), model_fixture="two_input_model.py")
    result = run_in_process(project, *SMALL, "--epochs", "1", "--max-steps", "2", "--out", "run")
    assert_ok(result)
    rows = read_metrics(project / "run" / "metrics.jsonl")
    assert len(rows) == 1 and rows[0]["samples_per_second"] > 0


def test_same_seed_gives_identical_metrics(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    assert_ok(run_in_process(project, *QUICK, "--epochs", "2", "--seed", "7", "--out", "a"))
    assert_ok(run_in_process(project, *QUICK, "--epochs", "2", "--seed", "7", "--out", "b"))
    assert_ok(run_in_process(project, *QUICK, "--epochs", "2", "--seed", "8", "--out", "c"))
    a, b, c = (read_metrics(project / name / "metrics.jsonl") for name in ("a", "b", "c"))
    assert [row["train_loss"] for row in a] == [row["train_loss"] for row in b]
    assert [row["val_accuracy"] for row in a] == [row["val_accuracy"] for row in b]
    assert [row["train_loss"] for row in a] != [row["train_loss"] for row in c]


# -- data --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["mnist", "cifar10", "folder", "npz"])
def test_missing_real_dataset_fails_with_a_clear_message(tmp_path, dataset):
    project = make_project(tmp_path / "p", lenet_context())
    result = run_in_process(project, "--device", "cpu", "--dataset", dataset, "--data-dir", "/nonexistent")
    assert_refused(result, 2, f"--dataset {dataset} expects /nonexistent", "Nothing is downloaded")
    assert not (project / "runs").exists()


def test_dataset_with_more_classes_than_outputs_names_what_to_change(tmp_path):
    project = make_project(tmp_path / "p", two_input_context(), model_fixture="two_input_model.py")
    rng = np.random.default_rng(0)
    np.savez(
        project / "data.npz",
        features=rng.normal(size=(64, 12)).astype("float32"),
        extra=rng.normal(size=(64, 4)).astype("float32"),
        y=np.arange(64) % 5,
    )
    result = run_in_process(project, "--device", "cpu", "--dataset", "npz", "--data-dir", ".")
    assert_refused(result, 2, "npz has 5 classes but the net outputs 3", "last layer", "out_features")
    assert "num_classes" not in result.stderr  # not a setting of the net file


def test_npz_dataset(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(128, 14, 14), dtype=np.uint8)  # fitted to [1, 28, 28]
    np.savez(project / "data.npz", x=images, y=np.arange(128) % 10)
    result = run_in_process(project, *QUICK, "--dataset", "npz", "--data-dir", "data.npz", "--epochs", "1")
    assert_ok(result)
    assert "npz: 14x14 images resized to 28x28 for input image [1, 28, 28]" in result.stdout


@pytest.mark.parametrize(
    ("context", "fixture", "images", "labels", "note"),
    [
        (lenet_context(), "lenet_model.py", (64, 28, 28, 1), (64,), "transposed to [N, C, H, W] for input image"),
        (segmentation_context(), "tiny_seg_model.py", (64, 8, 8, 3), (64, 16, 16), "transposed to [N, C, H, W], 8x8"),
    ],
)
def test_npz_channels_last_images_are_transposed(tmp_path, context, fixture, images, labels, note):
    project = make_project(tmp_path / "p", context, model_fixture=fixture)
    rng = np.random.default_rng(0)
    np.savez(project / "data.npz", x=rng.random(images, dtype=np.float32), y=rng.integers(0, 2, size=labels))
    result = run_in_process(project, *QUICK, "--dataset", "npz", "--data-dir", "data.npz", "--epochs", "1")
    assert_ok(result)
    assert "npz: channels-last [N, H, W, C] data " + note in result.stdout


def write_npz(**arrays):
    return lambda path: np.savez(path, **arrays)


X = np.zeros((8, 28, 28), dtype=np.float32)
Y = np.arange(8) % 10
BAD_NPZ = {
    "random bytes": (lambda path: path.write_bytes(random.Random(0).randbytes(2048)), "is not a readable .npz file"),
    "empty": (lambda path: path.write_bytes(b""), "is not a readable .npz file"),
    "truncated": (
        lambda path: (write_npz(x=X, y=Y)(path), path.write_bytes(path.read_bytes()[:900])),
        "not a readable",
    ),
    "a folder": (lambda path: path.mkdir(), "is not a readable .npz file"),
    "one .npy array": (lambda path: np.save(open(path, "wb"), X), "holds one array"),
    "pickled objects": (write_npz(x=np.array([{"a": 1}] * 8, dtype=object), y=Y), "is not a readable .npz file"),
    "text images": (write_npz(x=np.array(["img"] * 8), y=Y), "x must hold numbers"),
    "unequal lengths": (write_npz(x=X, y=Y[:5]), "the same number of samples"),
    "float labels": (write_npz(x=X, y=Y + 0.5), "y must hold integer class labels"),
    "negative labels": (write_npz(x=X, y=Y - 1), "y holds the label -1"),
    "nan images": (write_npz(x=X + np.nan, y=Y), "x holds NaN or inf values"),
    "one sample": (write_npz(x=X[:1], y=Y[:1]), "at least 2"),
    "missing y": (write_npz(x=X), "must hold arrays ['x', 'y']"),
    "5 channels": (write_npz(x=np.zeros((8, 5, 28, 28)), y=Y), "needs 1 channel(s): arrange the data as [N, 1, H, W]"),
    "labels per pixel": (write_npz(x=X, y=np.zeros((8, 28, 28), dtype=int)), "y has shape [8, 28, 28]"),
}


@pytest.mark.parametrize("kind", BAD_NPZ)
def test_bad_npz_files_are_refused_in_one_line(tmp_path, kind):
    write, phrase = BAD_NPZ[kind]
    project = make_project(tmp_path / "p", lenet_context())
    write(project / "data.npz")
    result = run_in_process(project, *QUICK, "--dataset", "npz", "--data-dir", "data.npz", "--out", "run")
    assert_refused(result, 2, phrase)
    assert not (project / "run").exists()


# -- the train: section, as archplan check validates it ---------------------------------------------------------------

NET = """archplan: 1
name: tiny
inputs: {x: [N, 4]}
layers:
  - {name: fc, op: linear, out_features: 2}
train:
  %s
"""
TRAIN_LINE = 7


@pytest.mark.parametrize(
    ("setting", "expected", "received"),
    [
        ("lr: .inf", "train.lr must be a finite number > 0", "received .inf"),
        ("lr: -.inf", "train.lr must be a finite number > 0", "received -.inf"),
        ("lr: .nan", "train.lr must be a finite number > 0", "received .nan"),
        ("lr: 1e-3", "train.lr must be a finite number", "received the text '1e-3'"),
        ("label_smoothing: .nan", "in [0, 1)", "received .nan"),
        ("gamma: .inf", "train.gamma must be a finite number > 0", "received .inf"),
        ("weight_decay: -0.5", "train.weight_decay must be a finite number >= 0", "received -0.5"),
        ("seed: 2**80", "train.seed must be an integer from 0 to 4294967295", "received the text '2**80'"),
        ("seed: 4294967296", "numpy seeds are below 2**32", "received 4294967296"),
        ("seed: -1", "an integer from 0 to 4294967295", "received -1"),
        ("epochs: 0", "train.epochs must be an integer from 1 to 100000", "received 0"),
        ("epochs: 100001", "an integer from 1 to 100000", "received 100001"),
        ("epochs: 1e9", "an integer from 1 to 100000", "received the text '1e9'"),
        ("epochs: 12.0", "an integer from 1 to 100000", "received 12.0"),
        ("epochs: true", "an integer from 1 to 100000", "received true"),
        ("batch_size: 1048577", "train.batch_size must be an integer from 1 to 1048576", "received 1048577"),
        ("batch_size: 0", "an integer from 1 to 1048576", "received 0"),
        ("step_size: 10000000", "train.step_size must be an integer from 1 to 100000", "received 10000000"),
        ("num_workers: 65", "an integer from 0 to 64", "received 65"),
        ("momentum: 1", "train.momentum must be a finite number in [0, 1)", "received 1"),
        ("val_fraction: 0", "in (0, 1)", "received 0"),
        ("dataset: 2024-01-01", "train.dataset must be one of synthetic, digits", "received the date 2024-01-01"),
        ("optimizer: {name: adam}", "train.optimizer must be one of sgd, adam, adamw", "received a mapping"),
        ("optimizer: [adam]", "one of sgd, adam, adamw", "received a list"),
        ("lr: true", "a finite number > 0", "received true"),
    ],
)
def test_check_refuses_bad_train_values_with_their_line(setting, expected, received):
    result = archplan.loads(NET % setting).analyze()
    assert len(result.errors) == 1, result.errors
    problem = result.errors[0]
    assert problem.line == TRAIN_LINE
    assert expected in problem.message and received in problem.message, problem.message
    for internal in ("datetime", "LMap", "LList", "<class", "inf)", "nan)"):
        assert internal not in problem.message


@pytest.mark.parametrize("seed", ["1208925819614629174706176", "9223372036854775808", "-4294967296"])
def test_check_refuses_a_literal_huge_seed(seed):
    (problem,) = archplan.loads(NET % f"seed: {seed}").analyze().errors
    assert problem.line == TRAIN_LINE and seed in problem.message, problem


def test_train_checks_refuse_huge_integers_themselves():
    from archplan.spec.model import Pos
    from archplan.spec.train import parse_train

    values, problems = parse_train({"seed": 2**80, "lr": 10**400}, Pos(3, 1))
    assert [problem.message for problem in problems] == [
        "train.seed must be an integer from 0 to 4294967295 (numpy seeds are below 2**32), "
        "received 1208925819614629174706176",
        "train.lr must be a finite number > 0, received an integer of about 400 digits",
    ]
    assert values["seed"] == 0 and values["lr"] == 1e-3  # the defaults stay


def test_null_means_the_default():
    result = archplan.loads(NET % "{lr: null, epochs: 3}").analyze()
    assert not result.errors, result.errors


def test_check_accepts_the_largest_allowed_train_values():
    settings = "{seed: 4294967295, epochs: 100000, batch_size: 1048576, num_workers: 64, lr: 3, gamma: 1}"
    result = archplan.loads(NET % settings).analyze()
    assert not result.errors, result.errors


def test_check_gives_a_hint_for_text_that_looks_like_a_number_or_a_misspelt_choice():
    (problem,) = archplan.loads(NET % "seed: 2**80").analyze().errors
    assert "write the number itself" in problem.hint
    (problem,) = archplan.loads(NET % "optimizer: adamm").analyze().errors
    assert problem.hint == "did you mean 'adam'?"


def test_check_refuses_a_train_section_that_is_not_a_mapping():
    (problem,) = archplan.loads(NET.replace("train:\n  %s", "train: [1, 2]")).analyze().errors
    assert problem.line == 6 and "train must be a mapping" in problem.message and "received a list" in problem.message


# -- slow: real processes, many epochs ----------------------------------------------------------------------------


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_to_the_same_result(tmp_path):
    project = make_project(tmp_path / "p", lenet_context(), "killed_lenet_model.py", helpers=("lenet_model.py",))
    args = [*SMALL, "--epochs", "4", "--log-interval", "1"]
    killed = run_train(project, *args, "--out", "resumed", env={"KILL_AFTER_STEPS": "15"})  # in epoch 3 of 6-step ones
    assert killed.returncode == -9, killed.stderr  # SIGKILL: nothing of epoch 3 was written
    assert load(project / "resumed" / "checkpoint_last.pt")["epoch"] == 2
    assert_ok(run_train(project, *args, "--out", "resumed", "--resume"))
    assert_ok(run_train(project, *args, "--out", "straight"))
    resumed, straight = (read_metrics(project / name / "metrics.jsonl") for name in ("resumed", "straight"))
    assert [row["epoch"] for row in resumed] == [1, 2, 3, 4]
    for a, b in zip(resumed, straight, strict=True):
        assert (a["train_loss"], a["val_loss"], a["val_accuracy"]) == (
            b["train_loss"],
            b["val_loss"],
            b["val_accuracy"],
        )


@pytest.mark.slow
def test_compile_and_amp_bf16_smoke(tmp_path):
    project = make_project(tmp_path / "p", lenet_context())
    result = run_train(project, *QUICK, "--epochs", "1", "--compile", "--amp", "bf16", "--out", "c")
    assert_ok(result)
    assert "amp bf16" in result.stdout and "compile True" in result.stdout
    rows = read_metrics(project / "c" / "metrics.jsonl")
    assert len(rows) == 1 and math.isfinite(rows[0]["train_loss"])
    state = load(project / "c" / "checkpoint_last.pt")
    assert not any(key.startswith("_orig_mod.") for key in state["model"])
