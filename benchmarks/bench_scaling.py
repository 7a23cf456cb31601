"""How archplan's cost grows with the size of the input: deep chains, many errors, generate on deep nets.

Each case runs `archplan` as a fresh process (what users run) and prints wall time, peak memory and the
cost per layer, so linear growth shows as a flat per-layer column. Not a test: nothing here asserts a time.

    python benchmarks/bench_scaling.py            # every case
    python benchmarks/bench_scaling.py --quick    # the smaller sizes only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Runs the CLI and reports the process's own peak memory on stderr's last line.
DRIVER = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
    "from archplan.cli import main\n"
    "sys.argv[0] = 'archplan'\n"
    "main()\n"
)
ARCHPLAN = [sys.executable, "-c", DRIVER]


def chain(layers: int, symbolic: bool) -> str:
    shape = "[N, 8, H, W]" if symbolic else "[1, 8, 32, 32]"
    body = ["  - {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1}", "  - {op: relu}"] * (layers // 2)
    return "\n".join(["archplan: 1", "name: chain", "inputs:", f"  x: {shape}", "layers:", *body]) + "\n"


def strided_chain(layers: int) -> str:
    """Stride-2 3x3 convs without padding on symbolic sizes: the validity domain has period 2**layers."""
    body = ["  - {op: conv2d, out_channels: 4, kernel_size: 3, stride: 2}"] * layers
    return "\n".join(["archplan: 1", "name: strided", "inputs:", "  x: [N, 3, H, H]", "layers:", *body]) + "\n"


def unknown_inputs(layers: int) -> str:
    body = [f"  - {{name: l{i}, op: relu, in: missing{i}}}" for i in range(layers)]
    return "\n".join(["archplan: 1", "name: broken", "inputs:", "  x: [1, 8]", "layers:", *body]) + "\n"


def run(args: list[str]) -> tuple[float, float, int, int]:
    """(seconds, peak MiB of the process, exit status, bytes printed)."""
    start = time.perf_counter()
    done = subprocess.run([*ARCHPLAN, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    stderr, _, peak = done.stderr.rstrip().rpartition("PEAK_KIB ")
    return seconds, int(peak) / 1024 if peak.isdigit() else float("nan"), done.returncode, len(done.stdout + stderr)


def case(folder: Path, label: str, text: str, layers: int, command: str = "check") -> None:
    path = folder / f"{label}.yaml"
    path.write_text(text)
    args = [command, str(path)]
    if command == "generate":
        args += ["-o", str(folder / f"{label}-out"), "--force"]
    seconds, mib, code, printed = run(args)
    print(
        f"{label:34s} {layers:>7,} layers  {seconds:8.2f} s  {1000 * seconds / layers:7.3f} ms/layer  "
        f"{mib:7.1f} MiB peak  exit {code}  {printed:>10,} bytes printed"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes only")
    quick = parser.parse_args().quick
    sizes = (1_000, 3_000) if quick else (1_000, 3_000, 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        for n in sizes:
            case(folder, f"concrete conv+relu chain {n}", chain(n, False), n)
        for n in sizes:
            case(folder, f"symbolic conv+relu chain {n}", chain(n, True), n)
        for n in (9, 12) if quick else (9, 12, 16, 24):
            case(folder, f"stride-2 chain {n}, symbolic H", strided_chain(n), n)
        for n in (1_000, 5_000):
            case(folder, f"{n} layers with unknown in:", unknown_inputs(n), n)
        for n in sizes:
            case(folder, f"generate concrete chain {n}", chain(n, False), n, "generate")


if __name__ == "__main__":
    main()
