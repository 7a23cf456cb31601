"""The bad-input corpus: every case exits 1 or 2 (or 0 where stated) with a message, never a traceback or an
internal error, within a memory bound, and with a hang guard only (no timing that a busy machine could miss).

Files in tests/bad_inputs/ carry their expectations in leading comments:
    # expect: text the output must contain        (repeatable)
    # forbid: text the output must not contain    (repeatable)
    # exit: 0                                     (default: 1 or 2)
    # args: --set H=3                             (extra command-line arguments)
Cases too large to keep as files are generated below.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
MEMORY_LIMIT = 500 * 2**20  # bytes of address space... plus what the interpreter and libraries map (below)
HANG_GUARD = 600  # seconds: only a hung process reaches it


def _limit_memory() -> None:
    # RLIMIT_AS counts mapped address space, which imports inflate well beyond what is used; the data
    # segment (heap) is what a runaway expansion grows, so that is bounded.
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "archplan.cli", *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        preexec_fn=_limit_memory,
        cwd=cwd,
    )


def expectations(path: Path) -> dict:
    found: dict = {"expect": [], "forbid": [], "exit": None, "args": []}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        if key in ("expect", "forbid"):
            found[key].append(value)
        elif key == "exit":
            found["exit"] = int(value)
        elif key == "args":
            found["args"] = value.split()
    return found


def assert_clean(done: subprocess.CompletedProcess, want_exit: int | None = None) -> str:
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-3000:]
    assert "internal error" not in output, output[-3000:]
    if want_exit is None:
        assert done.returncode in (1, 2), (done.returncode, output[-3000:])
        assert "error" in output, output[-3000:]
    else:
        assert done.returncode == want_exit, (done.returncode, output[-3000:])
    return output


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yaml")), ids=lambda p: p.stem)
def test_corpus_case(path):
    want = expectations(path)
    output = assert_clean(run_cli("check", str(path), *want["args"]), want["exit"])
    for text in want["expect"]:
        assert text in output, (text, output[-3000:])
    for text in want["forbid"]:
        assert text not in output, (text, output[-3000:])


def _net(layers: list[str], inputs: str = "  x: [1, 8]") -> str:
    return "\n".join(["archplan: 1", "name: t", "inputs:", inputs, "layers:", *layers]) + "\n"


def test_many_unknown_names_give_short_linear_messages(tmp_path):
    layers = [f"  - {{name: l{i}, op: relu, in: missing{i}}}" for i in range(5000)]
    path = tmp_path / "net.yaml"
    path.write_text(_net(layers))
    output = assert_clean(run_cli("check", str(path)))
    assert output.count("names no layer or input") == 5000
    assert "and 4991 more" in output  # the known names are listed up to a cap
    assert len(output) < 5000 * 400  # each message stays short


def test_long_pass_through_chains_resolve_in_linear_time(tmp_path):
    """20,000 skipped layers, then 5,000 layers that each read the end of the chain (100M steps if each
    reference walked the chain again; benchmarks/bench_scaling.py times it)."""
    skipped = [f"  - {{name: s{i}, op: relu, when: false}}" for i in range(20_000)]
    readers = [f"  - {{name: r{i}, op: relu, in: s19999}}" for i in range(5_000)]
    path = tmp_path / "net.yaml"
    path.write_text(_net(skipped + readers + ["  - {name: out, op: add, in: [r0, r1]}"]))
    assert_clean(run_cli("check", str(path), "--format", "json"), want_exit=0)


def test_verify_refuses_sizes_that_do_not_fit(tmp_path):
    pytest.importorskip("torch")
    unet = Path(__file__).resolve().parent.parent / "examples" / "unet.yaml"
    output = assert_clean(run_cli("verify", str(unet), "--set", "H=80000", "--set", "W=80000"))
    assert "GiB" in output and "--set" in output


def test_a_learned_tensor_cannot_be_skipped(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(_net(["  - {name: a, op: relu}", "  - {name: p, op: parameter, shape: [1, 8], when: false}"]))
    output = assert_clean(run_cli("check", str(path)))
    assert "a skipped layer passes its input on" in output
