"""Helpers for the train.py template tests and benchmark: render templates/train.py.j2, run the result.

`run_train` runs train.py as a fresh process (under torchrun if asked), as a user does; `run_in_process` runs the
same main() inside the test process, which saves the interpreter start and the torch import (about 4 s a run):
the test suite uses it for every behaviour a separate process does not change.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import shutil
import subprocess
import sys
import traceback
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


def make_project(folder: Path, context: dict, model_fixture: str = "lenet_model.py", helpers: tuple = ()) -> Path:
    """Write train.py (rendered), model.py (a fixture) and helper fixtures it imports into folder; return folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(render(context))
    shutil.copyfile(FIXTURES / model_fixture, folder / "model.py")
    for helper in helpers:
        shutil.copyfile(FIXTURES / helper, folder / helper)
    return folder


HANG_GUARD_SECONDS = 1800  # only stops a hung run: the work of every run is bounded by epochs and --max-steps


def run_train(
    folder: Path, *args: str, nproc: int | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run train.py in folder as a new process (under torchrun with nproc processes if given); progress bars off."""
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
        timeout=HANG_GUARD_SECONDS,
    )


def run_in_process(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """Run train.py's main() in this process, in folder, as `python train.py --no-progress *args` would.

    Returns what run_train returns: the exit status and the output. An uncaught exception becomes exit status 1
    with its traceback on stderr, as the interpreter would print it.
    """
    argv = ["train.py", "--no-progress", *map(str, args)]
    stdout, stderr = io.StringIO(), io.StringIO()
    cwd, argv_before, path_before = os.getcwd(), sys.argv, list(sys.path)
    sys.modules.pop("model", None)  # train.py imports the model.py next to it
    os.chdir(folder)
    sys.argv, sys.path[:0] = argv, [str(folder)]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            runpy.run_path("train.py", run_name="__main__")
        status = 0
    except SystemExit as stopped:
        status = stopped.code if isinstance(stopped.code, int) else (0 if stopped.code is None else 1)
    except Exception:
        stderr.write(traceback.format_exc())
        status = 1
    finally:
        os.chdir(cwd)
        sys.argv, sys.path[:] = argv_before, path_before
        sys.modules.pop("model", None)
    return subprocess.CompletedProcess(argv, status, stdout.getvalue(), stderr.getvalue())


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
