"""How fast is `archplan check`? Side by side with torchinfo, in one run, on this machine.

    python benchmarks/bench_check.py [--repeats 5]

Prints medians and ratios:
- `archplan check examples/resnet50.yaml --set N=1` end to end (a fresh process) vs a fresh process that
  builds the same ResNet-50 in torch and runs `torchinfo.summary` (the usual way to get the same table);
- scaling of the analysis itself over chains of 125 ... 1,000 layers (time per layer should stay flat);
- the symbolic U-Net (`examples/unet.yaml`, H and W free) end to end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TORCHINFO = """
import sys
sys.path.insert(0, {tests!r})
import torchinfo
from torch_reference import resnet50
torchinfo.summary(resnet50(), input_size=(1, 3, 224, 224), verbose=0)
"""


def wall(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=False, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def chain(n: int) -> str:
    pair = "  - {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1}\n  - {op: relu}"
    layers = "\n".join(pair for _ in range(n // 2))
    return f"archplan: 1\nname: chain\ninputs:\n  x: [1, 8, 32, 32]\nlayers:\n{layers}\n"


def in_process(text: str, repeats: int, values=None) -> float:
    import archplan

    archplan.loads(text).analyze(values or {})  # warm-up: imports and caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = archplan.loads(text).analyze(values or {})
        times.append(time.perf_counter() - start)
        assert result.ok, result.errors
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    exe = str(Path(sys.executable).parent / "archplan")

    ours = wall([exe, "check", "examples/resnet50.yaml", "--set", "N=1"], args.repeats)
    print(f"archplan check resnet50 (process):   {ours * 1000:7.0f} ms")
    try:
        import torchinfo  # noqa: F401

        code = TORCHINFO.format(tests=str(ROOT / "tests"))
        peer = wall([sys.executable, "-c", code], args.repeats)
        print(f"torchinfo.summary resnet50 (process): {peer * 1000:6.0f} ms")
        print(f"ratio torchinfo / archplan:           {peer / ours:7.1f}x  (target >= 5x)")
    except ImportError:
        print("torchinfo is not installed: pip install torchinfo torch==2.13.0 to compare")

    print("\nchain length   analysis ms   us per layer")
    per_layer = []
    for n in (125, 250, 500, 1000):
        seconds = in_process(chain(n), args.repeats)
        per_layer.append(seconds / n)
        print(f"{n:12d}   {seconds * 1000:11.1f}   {seconds / n * 1e6:12.1f}")
    print(f"per-layer cost, 1000 vs 125 layers:   {per_layer[-1] / per_layer[0]:7.2f}x  (1.0 = linear)")

    symbolic = wall([exe, "check", "examples/unet.yaml"], args.repeats)
    print(f"\narchplan check unet, symbolic H, W:  {symbolic * 1000:7.0f} ms  (target < 2000 ms)")


if __name__ == "__main__":
    main()
