"""`archplan check` and `archplan verify` side by side with torchinfo, in one run, as fresh processes.

    pip install torchinfo   # the peer (also in the [dev] extra)
    python benchmarks/bench_check.py [--repeats 5] [--quick]

Every case runs exactly what users run (the README's commands, no --set) and the peer's usual equivalent
(a fresh Python process that builds the module in torch and calls torchinfo.summary), alternating them so
that machine load hits both alike; medians, then each claim with its measured ratio:
- ResNet-50: the README's `archplan check examples/resnet50.yaml` vs torchinfo with 1 torch thread (and with
  the default threads). Claim: at least 8x faster.
- a symbolic 3,000-layer conv+ReLU chain ([N, 8, H, W]) vs torchinfo on the same module at 32x32. Claim: at
  most 0.5x torchinfo's time.
- growth: the time one more layer costs, concrete and symbolic: layers 2,000 to 10,000 against layers 100 to
  2,000. Claim: within 1.2x (linear).
- the symbolic U-Net (`archplan check examples/unet.yaml`). Claim: under 0.7 s. Symbolic nets are analysed
  without sympy where the answer allows (quasi.py); the same check through sympy is printed beside it.
- `archplan verify examples/resnet50.yaml` vs torchinfo (verify builds the model, runs it once and counts
  every layer's FLOPs). Claim: no slower than torchinfo. verify computes its expectations (sympy, Jinja,
  two analyses) in a forked child while torch imports, so it also prints both on one core (taskset -c 0),
  where nothing overlaps.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHPLAN = [sys.executable, "-m", "archplan.cli"]
TORCHINFO_RESNET = (
    "import sys; sys.path.insert(0, {tests!r})\n"
    "import torchinfo\nfrom torch_reference import resnet50\n"
    "torchinfo.summary(resnet50(), input_size=(1, 3, 224, 224), verbose=0)\n"
)
TORCHINFO_CHAIN = (
    "import torch, torchinfo\n"
    "layers = []\n"
    "for _ in range({pairs}):\n"
    "    layers += [torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU()]\n"
    "torchinfo.summary(torch.nn.Sequential(*layers), input_size=(1, 8, 32, 32), verbose=0)\n"
)


UNET_WITH_SYMPY = (  # what `archplan check` printed before light formulas: the same report, analysed with sympy
    "import os, sys, archplan\nfrom archplan.report import render\n"
    "sys.stdout.write(render(archplan.load('examples/unet.yaml').analyze(), 'table', 'examples/unet.yaml'))\n"
    "sys.stdout.flush(); os._exit(0)\n"
)


def chain(layers: int, symbolic: bool) -> str:
    shape = "[N, 8, H, W]" if symbolic else "[1, 8, 32, 32]"
    body = ["  - {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1}", "  - {op: relu}"] * (layers // 2)
    return "\n".join(["archplan: 1", "name: chain", "inputs:", f"  x: {shape}", "layers:", *body]) + "\n"


def timed(cmd: list[str], env: dict | None = None) -> float:
    # as installed packages run: bytecode caches written and read (a PYTHONDONTWRITEBYTECODE=1 shell would
    # recompile archplan on every run, a cost no user pays)
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**base, **(env or {})})
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed


def runs(commands: dict, repeats: int) -> dict:
    """Seconds of each run per labelled command, the commands interleaved in each round after one unmeasured
    warm-up round (bytecode caches, the disk cache)."""
    for cmd, env in commands.values():
        timed(cmd, env)
    times: dict = {label: [] for label in commands}
    for _ in range(repeats):
        for label, (cmd, env) in commands.items():
            times[label].append(timed(cmd, env))
    return times


def side_by_side(commands: dict, repeats: int, stat=statistics.median) -> dict:
    """Seconds per labelled command: the median (or `stat`) of its interleaved runs."""
    return {label: stat(values) for label, values in runs(commands, repeats).items()}


def claim(text: str, ok: bool, measured: str) -> None:
    print(f"  [{'ok' if ok else 'NOT MET'}] {text}: {measured}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="skip the 10,000-layer chains")
    args = parser.parse_args()
    one_thread = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    tests = str(ROOT / "tests")
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("ResNet-50 (README command, batch N symbolic)")
        t = side_by_side(
            {
                "archplan check": ([*ARCHPLAN, "check", "examples/resnet50.yaml"], None),
                "torchinfo, 1 thread": ([py, "-c", TORCHINFO_RESNET.format(tests=tests)], one_thread),
                "torchinfo, default threads": ([py, "-c", TORCHINFO_RESNET.format(tests=tests)], None),
                "archplan verify": ([*ARCHPLAN, "verify", "examples/resnet50.yaml"], None),
            },
            args.repeats,
        )
        for label, seconds in t.items():
            print(f"  {label:28s} {seconds:7.3f} s")
        ratio = t["torchinfo, 1 thread"] / t["archplan check"]
        claim("check is at least 8x faster than torchinfo (1 thread)", ratio >= 8, f"{ratio:.1f}x")
        ratio_default = t["torchinfo, default threads"] / t["archplan check"]
        print(f"  (vs torchinfo with default threads: {ratio_default:.1f}x)")
        ratio = t["archplan verify"] / t["torchinfo, 1 thread"]
        claim("verify takes no longer than torchinfo (1 thread)", ratio <= 1, f"{ratio:.2f}x torchinfo's time")
        if shutil.which("taskset"):
            core = ["taskset", "-c", "0"]
            t = side_by_side(
                {
                    "verify, one core": ([*core, *ARCHPLAN, "verify", "examples/resnet50.yaml"], None),
                    "torchinfo, one core": ([*core, py, "-c", TORCHINFO_RESNET.format(tests=tests)], one_thread),
                },
                args.repeats,
            )
            for label, seconds in t.items():
                print(f"  {label:28s} {seconds:7.3f} s")
            ratio = t["verify, one core"] / t["torchinfo, one core"]
            print(f"  (on one core, where verify's code generation cannot overlap torch's import: {ratio:.2f}x)")

        print("Symbolic 3,000-layer conv+ReLU chain")
        path = folder / "chain3000.yaml"
        path.write_text(chain(3000, True))
        t = side_by_side(
            {
                "archplan check": ([*ARCHPLAN, "check", str(path)], None),
                "torchinfo, 1 thread": ([py, "-c", TORCHINFO_CHAIN.format(pairs=1500)], one_thread),
            },
            max(3, args.repeats // 2),
        )
        for label, seconds in t.items():
            print(f"  {label:28s} {seconds:7.3f} s")
        ratio = t["archplan check"] / t["torchinfo, 1 thread"]
        claim("at most 0.5x torchinfo's time", ratio <= 0.5, f"{ratio:.2f}x")

        # per-layer cost of two stretches, each the difference of two chains' fastest of 9 runs: layers 100 to
        # 2,000 and layers 2,000 to 10,000. Differences of at least 0.4 s stay clear of this machine's noise (single
        # runs of one command vary by 0.1-0.3 s), which a 100-to-1,000 difference (about 0.2 s) does not.
        low, mid, high = (100, 1_000, 3_000) if args.quick else (100, 2_000, 10_000)
        print(f"Growth per layer (layers {low:,}-{mid:,} vs {mid:,}-{high:,}; fastest of 9 runs of each chain)")
        for symbolic in (False, True):
            paths = {n: folder / f"g{n}{symbolic}.yaml" for n in (low, mid, high)}
            for n, p in paths.items():
                p.write_text(chain(n, symbolic))
            t = side_by_side({n: ([*ARCHPLAN, "check", str(p)], None) for n, p in paths.items()}, 9, min)
            first, second = ((t[b] - t[a]) / (b - a) * 1000 for a, b in ((low, mid), (mid, high)))
            kind = "symbolic" if symbolic else "concrete"
            print(
                f"  {kind}: {low:,} / {mid:,} / {high:,} layers {t[low]:.2f} / {t[mid]:.2f} / {t[high]:.2f} s; "
                f"{first:.3f} then {second:.3f} ms/layer"
            )
            claim(f"{kind} per-layer cost stays within 1.2x", second / first <= 1.2, f"{second / first:.2f}x")

        print("Symbolic U-Net (H and W free)")
        times = runs(
            {
                "unet": ([*ARCHPLAN, "check", "examples/unet.yaml"], None),
                "with sympy": ([py, "-c", UNET_WITH_SYMPY], None),
                "sympy": ([py, "-c", "import os, sympy; os._exit(0)"], None),
            },
            args.repeats,
        )
        unet, with_sympy, sympy_only = (statistics.median(times[k]) for k in ("unet", "with sympy", "sympy"))
        fastest = f"fastest run {min(times['unet']):.3f} s"
        claim("under 0.7 s", unet < 0.7, f"{unet:.3f} s ({fastest})")
        print(
            f"  (the same report through sympy: {with_sympy:.3f} s; a process that only imports sympy: "
            f"{sympy_only:.3f} s)"
        )


if __name__ == "__main__":
    main()
