"""Helpers for the train.py template tests and benchmark: render templates/train.py.j2, run the result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jinja2

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "templates" / "train.py.j2"
FIXTURES = ROOT / "tests" / "fixtures"

TRAIN_DEFAULTS = dict(
    dataset="synthetic",
    epochs=12,
    batch_size=32,
    optimizer="adam",
    lr=1e-3,
    momentum=0.9,
    weight_decay=0.0,
    scheduler="none",
    step_size=5,
    gamma=0.1,
    loss="cross_entropy",
    label_smoothing=0.0,
    val_fraction=0.2,
    seed=0,
    num_workers=0,
)


def make_context(name, inputs, task="classification", num_classes=10, output_shape=None, **train) -> dict:
    """Template context like archplan builds it; inputs is a list of (name, shape) pairs."""
    return {
        "net": SimpleNamespace(name=name),
        "inputs": [SimpleNamespace(name=n, shape=list(s)) for n, s in inputs],
        "task": task,
        "num_classes": num_classes,
        "output_shape": list(output_shape or [num_classes]),
        "train": SimpleNamespace(**{**TRAIN_DEFAULTS, **train}),
    }


def lenet_context(**train) -> dict:
    return make_context("lenet", [("image", [1, 28, 28])], **train)


def segmentation_context(**train) -> dict:
    return make_context(
        "tinyseg", [("image", [3, 16, 16])], task="segmentation", num_classes=2, output_shape=[2, 16, 16], **train
    )


def two_input_context(**train) -> dict:
    return make_context("twoinputs", [("features", [12]), ("extra", [4])], num_classes=3, **train)


def render(context: dict) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["py"] = repr
    return env.get_template(TEMPLATE.name).render(**context)


def make_project(folder: Path, context: dict, model_fixture: str = "lenet_model.py") -> Path:
    """Write train.py (rendered) and model.py (a fixture) into folder; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(render(context))
    shutil.copyfile(FIXTURES / model_fixture, folder / "model.py")
    return folder


def run_train(
    folder: Path, *args: str, nproc: int | None = None, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run train.py in folder (under torchrun with nproc processes if given); progress bars off."""
    launcher = [sys.executable]
    if nproc:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    return subprocess.run(
        [*launcher, "train.py", "--no-progress", *map(str, args)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
