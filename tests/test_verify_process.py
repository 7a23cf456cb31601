"""How `archplan verify` runs as a process: what it compares is computed without torch (in a forked child
while torch imports, where that is safe), the model is built without random initialisation, nothing is
written to disk, and the process leaves without the interpreter's torch teardown."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import traceback
import uuid
from pathlib import Path

import pytest

import archplan
from archplan.codegen_errors import CodegenError
from archplan.errors import ArchplanError, Problem
from archplan.outputs import OutputError
from archplan.overlap import _can_fork, while_importing
from archplan.verify import TorchMissing, expect, load_module, measure, verify

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD = 300


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "archplan.cli", *args], capture_output=True, text=True, timeout=HANG_GUARD, cwd=ROOT
    )


# -- what verify compares ----------------------------------------------------------------------------------


def test_expected_survives_pickling_and_measures_like_verify():
    net = archplan.load(ROOT / "examples" / "resnet18.yaml")
    expected = expect(net, {})
    assert pickle.loads(pickle.dumps(expected)) == expected
    assert expected.sizes == {"N": 1} and expected.params == 11_689_512
    assert measure(expected) == verify(net)


@pytest.mark.parametrize(
    "error",
    [
        ArchplanError([Problem("first", layer="a", line=3), Problem("second")], "net.yaml"),
        CodegenError("cannot write", layer="conv1", line=7).at("net.yaml"),
        TorchMissing(),
        OutputError("cannot write out/model.py"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_pickle_as_they_are(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error) and copy.problems == error.problems and copy.path == error.path


# -- overlapping work with an import ---------------------------------------------------------------------


@pytest.fixture
def slow_module(tmp_path, monkeypatch):
    """The name of a module not imported yet (each test gets a new one) that takes a moment to import."""
    name = f"archplan_slow_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text("import time\ntime.sleep(0.2)\nLOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def forks(module: str) -> bool:
    if not _can_fork(module):
        pytest.skip("this process cannot fork safely (not Linux, or more than one thread)")
    return True


def test_work_runs_in_a_child_while_the_module_imports(slow_module):
    forks(slow_module)
    child = while_importing(slow_module, os.getpid)
    assert child != os.getpid()
    assert sys.modules[slow_module].LOADED


def test_the_childs_archplan_error_is_raised_here(slow_module):
    forks(slow_module)

    def fail():
        raise CodegenError("no code for this", layer="conv1", line=4).at("net.yaml")

    with pytest.raises(CodegenError) as caught:
        while_importing(slow_module, fail)
    assert str(caught.value) == "net.yaml:4: error: conv1: no code for this"
    assert slow_module in sys.modules


def test_a_child_that_fails_otherwise_makes_the_work_run_here(slow_module):
    forks(slow_module)
    parent = os.getpid()

    def work():
        if os.getpid() != parent:
            raise ValueError("only in the child")  # a bug: the parent repeats the work for its traceback
        return "here"

    assert while_importing(slow_module, work) == "here"


def test_an_imported_module_means_no_child():
    assert while_importing("os", os.getpid) == os.getpid()


def test_a_missing_module_still_gets_the_work_done():
    name = f"archplan_missing_{uuid.uuid4().hex}"
    assert while_importing(name, lambda: 42) == 42
    assert name not in sys.modules


# -- building without random initialisation ----------------------------------------------------------------


def test_build_fills_zeros_checks_arguments_and_restores_init():
    from torch import nn

    from archplan.verify import _zero_init

    original = nn.init.kaiming_uniform_
    with _zero_init():
        conv = nn.Conv2d(3, 8, 3)
        assert not conv.weight.any() and not conv.bias.any()
        with pytest.raises(TypeError):
            nn.init.normal_(conv.weight, stdd=1.0)  # a misspelt keyword fails as it does in torch
    assert nn.init.kaiming_uniform_ is original
    assert nn.Conv2d(3, 8, 3).weight.any()


# -- nothing on disk, readable tracebacks -------------------------------------------------------------------


def test_generated_code_is_loaded_without_files_and_tracebacks_show_its_lines():
    before = set(Path(tempfile.gettempdir()).glob("archplan-verify-*"))
    module = load_module("def broken():\n    return 1 / 0  # the generated line\n", "probe")
    try:
        module.broken()
    except ZeroDivisionError:
        shown = traceback.format_exc()
    assert "return 1 / 0  # the generated line" in shown
    verify(archplan.load(ROOT / "examples" / "lenet.yaml"))
    assert set(Path(tempfile.gettempdir()).glob("archplan-verify-*")) == before


# -- the process ----------------------------------------------------------------------------------------------


def test_cli_verify_as_a_process():
    done = run_cli("verify", "examples/lenet.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("verify lenet at N=1\n") and "all 10 layers match the analysis" in done.stdout
    assert done.stderr == ""


def test_cli_verify_errors_from_the_child_are_one_located_message():
    done = run_cli("verify", "examples/unet.yaml", "--set", "H=80000", "--set", "W=80000")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: verify runs the net once") and "Traceback" not in done.stderr


def test_cli_verify_into_a_closed_pipe_is_quiet():
    done = subprocess.run(
        f"{sys.executable} -m archplan.cli verify examples/lenet.yaml --all | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        cwd=ROOT,
    )
    assert done.stdout == "verify lenet at N=1\n"
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


@pytest.mark.parametrize("code, status, stderr", [(3, 3, ""), (None, 0, ""), ("bad things", 1, "bad things\n")])
def test_fast_exit_flushes_and_keeps_the_status(code, status, stderr):
    program = f"from archplan.cli import _exit_now\nprint('printed before')\n_exit_now({code!r})\nprint('never')\n"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=HANG_GUARD)
    assert (done.returncode, done.stdout, done.stderr) == (status, "printed before\n", stderr)
