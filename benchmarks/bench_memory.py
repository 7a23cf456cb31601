"""`archplan memory` against `archplan check` on the same nets, both as fresh processes (what users run).

    python benchmarks/bench_memory.py [--repeats 9]

The two commands alternate, so that machine load hits both alike; medians, then the ratio. Claim: `archplan memory
examples/resnet50.yaml` takes at most 1.5x the time of `archplan check examples/resnet50.yaml` (the planner adds a
liveness walk over the analysed layers; the analysis itself is shared). The symbolic U-Net (sympy formulas in N, H
and W) and the planner alone, in this process, are printed too.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHPLAN = [sys.executable, "-m", "archplan.cli"]
CASES = {
    "resnet50": ["examples/resnet50.yaml"],
    "unet (symbolic H, W)": ["examples/unet.yaml"],
    "resnet50, bf16, a100-40gb": "examples/resnet50.yaml --amp bf16 --device-memory a100-40gb".split(),
}


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed


def in_process(repeats: int) -> float:
    """The planner alone on ResNet-50 (analysis done once), median seconds."""
    sys.path.insert(0, str(ROOT))
    import archplan
    from archplan.memory import Options, plan

    result = archplan.load(ROOT / "examples" / "resnet50.yaml").analyze()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        plan(result, Options())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    timed([*ARCHPLAN, "check", "examples/lenet.yaml"])  # warm the file cache and bytecode
    ratios = {}
    for name, case in CASES.items():
        check, memory = [], []
        for _ in range(args.repeats):
            check.append(timed([*ARCHPLAN, "check", case[0]]))
            memory.append(timed([*ARCHPLAN, "memory", *case]))
        c, m = statistics.median(check), statistics.median(memory)
        ratios[name] = m / c
        print(f"{name:50s} check {c * 1000:7.1f} ms   memory {m * 1000:7.1f} ms   ratio {m / c:.2f}")
    print(f"{'planner alone on resnet50 (in process)':50s} {in_process(args.repeats) * 1000:.1f} ms")
    verdict = "ok" if ratios["resnet50"] <= 1.5 else "MISSED"
    print(f"claim: archplan memory resnet50 <= 1.5x archplan check: {ratios['resnet50']:.2f}x {verdict}")


if __name__ == "__main__":
    main()
