"""How fast is the validity domain on deep strided nets? `archplan check` as fresh processes.

    python benchmarks/bench_domain.py [--repeats 3] [--timeout 120]

Prints medians:
- chains of N stride-2 3x3 convolutions without padding on [1, 3, H, H], H symbolic (N = 1, 9, 11, 12, 16,
  24): every layer floors H once more, so the lcm of the divisions is 2**N; a solver that walks every
  residue grows exponentially with N, one that searches thresholds grows with N;
- a 12-layer chain that mixes padded stride-2 convs, ceil_mode stride-2 pooling and stride-3 convs;
- the symbolic U-Net (`examples/unet.yaml`, H and W free; target < 0.7 s for the whole process).

The N = 1 chain is the fixed cost of a process (imports, parsing); "extra" is what remains above it, and
"per layer" divides that by the layers beyond the first. "domain ms" is the validity solver alone
(`archplan.domain.solve`, timed inside a fresh process): its share of the whole.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONV = "  - {op: conv2d, out_channels: 4, kernel_size: 3, stride: 2}"
MIXED = (
    "  - {op: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}",
    "  - {op: maxpool2d, kernel_size: 3, stride: 2, ceil_mode: true}",
    "  - {op: conv2d, out_channels: 4, kernel_size: 3, stride: 3}",
)


def chain(layers: list[str]) -> str:
    body = "\n".join(layers)
    return f"archplan: 1\nname: chain\nsymbols:\n  H: {{}}\ninputs:\n  x: [1, 3, H, H]\nlayers:\n{body}\n"


SOLVE_TIME = """
import sys, time
import archplan, archplan.domain as domain
spent, solve = [], domain.solve
def timed(result, conditions):
    start = time.perf_counter()
    solve(result, conditions)
    spent.append(time.perf_counter() - start)
domain.solve = timed
archplan.load(sys.argv[1]).analyze()
print(sum(spent))
"""


def solver_seconds(path: str, timeout: float) -> float | None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", SOLVE_TIME, path], cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None
    return float(done.stdout.split()[-1]) if done.returncode == 0 and done.stdout.split() else None


def wall(cmd: list[str], repeats: int, timeout: float) -> float | None:
    """Median seconds of a fresh process; None when it ran past the hang guard."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        try:
            done = subprocess.run(cmd, cwd=ROOT, check=False, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 1) or "Traceback" in done.stderr:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="hang guard per process, seconds")
    args = parser.parse_args()
    check = [sys.executable, "-m", "archplan.cli", "check"]

    with tempfile.TemporaryDirectory() as tmp:
        nets = {n: [CONV] * n for n in (1, 9, 11, 12, 16, 24)}
        nets["12 mixed"] = [MIXED[i % 3] for i in range(12)]
        base = None
        print("chain of stride-2 convs, symbolic H    ms      extra ms   per layer ms   domain ms")
        for label, layers in nets.items():
            path = Path(tmp) / f"chain_{str(label).replace(' ', '_')}.yaml"
            path.write_text(chain(layers))
            seconds = wall(check + [str(path)], args.repeats, args.timeout)
            if seconds is None:
                print(f"{label!s:>10} layers   over the {args.timeout:.0f} s hang guard")
                continue
            base = seconds if base is None else base
            extra = seconds - base
            per = extra / (len(layers) - 1) if len(layers) > 1 else 0.0
            solver = solver_seconds(str(path), args.timeout)
            shown = "?" if solver is None else f"{solver * 1000:.1f}"
            times = f"{seconds * 1000:19.0f}   {extra * 1000:11.0f}   {per * 1000:12.1f}   {shown:>9}"
            print(f"{label!s:>10} layers   {times}")

    unet = wall(check + ["examples/unet.yaml"], args.repeats, args.timeout)
    shown = "over the hang guard" if unet is None else f"{unet * 1000:.0f} ms"
    solver = solver_seconds("examples/unet.yaml", args.timeout)
    share = "" if solver is None else f", of which the domain {solver * 1000:.1f} ms"
    print(f"\narchplan check examples/unet.yaml (symbolic H, W): {shown}{share}  (target < 700 ms)")


if __name__ == "__main__":
    main()
