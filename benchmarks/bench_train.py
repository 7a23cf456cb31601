"""Throughput of the generated train.py vs a hand-written PyTorch loop (LeNet, synthetic data, CPU).

    python benchmarks/bench_train.py [--repeats 5] [--epochs 4] [--batch-size 64] [--threads 1]

Both train the LeNet fixture with Adam on synthetic [1, 28, 28] data of the same size, with the same batch size and
number of steps per epoch, each in its own subprocess with the same thread count, alternating. The generated trainer
reports samples_per_second per epoch in metrics.jsonl; the hand-written loop (hand_written_loop below) is timed the
same way (a whole epoch: data loading, forward, backward, step, one sync at the end). The first epoch of every run
is warm-up and excluded; a run counts the median of its other epochs, and the result is the median over the repeats.
Target: ratio >= 0.95. One thread by default: on small shared CPU machines, multi-threaded timings are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

from _train_harness import lenet_context, make_project, read_metrics, run_train  # noqa: E402

SYNTHETIC_SIZE = 4096
VAL_FRACTION = 0.2


def generated_trainer(folder: Path, args: argparse.Namespace) -> float:
    out = folder / f"run_{time.monotonic_ns()}"
    result = run_train(
        folder,
        *["--device", "cpu", "--dataset", "synthetic", "--synthetic-size", SYNTHETIC_SIZE],
        *["--val-fraction", VAL_FRACTION, "--epochs", args.epochs, "--batch-size", args.batch, "--out", out],
        env={"OMP_NUM_THREADS": str(args.threads)},
    )
    if result.returncode != 0:
        raise SystemExit(f"generated train.py failed:\n{result.stdout}\n{result.stderr}")
    return statistics.median(row["samples_per_second"] for row in read_metrics(out / "metrics.jsonl")[1:])


def hand_written(args: argparse.Namespace) -> float:
    command = [sys.executable, __file__, "--hand-loop", "--epochs", str(args.epochs), "--batch-size", str(args.batch)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return statistics.median(json.loads(result.stdout)[1:])


def hand_written_loop(epochs: int, batch_size: int) -> list[float]:
    """The loop a PyTorch engineer writes by hand, on data of the same size and shape; samples/s per epoch.

    Like the generated trainer it validates after every epoch (not timed), so both time the same kind of epoch.
    """
    from lenet_model import build_model

    torch.manual_seed(0)
    val_size = round(SYNTHETIC_SIZE * VAL_FRACTION)
    labels = torch.randint(10, (SYNTHETIC_SIZE,))
    images = torch.randn(10, 1, 28, 28)[labels] + torch.randn(SYNTHETIC_SIZE, 1, 28, 28)
    train_set = TensorDataset(images[val_size:], labels[val_size:])
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True)
    val_loader = DataLoader(TensorDataset(images[:val_size], labels[:val_size]), batch_size=batch_size)
    model = build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = torch.nn.CrossEntropyLoss()
    throughputs = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        total_loss = torch.zeros(())
        samples = 0
        for x, y in loader:
            loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.detach() * len(y)
            samples += len(y)
        total_loss.item()
        throughputs.append(samples / (time.perf_counter() - start))
        model.eval()
        with torch.no_grad():
            correct = sum((model(x).argmax(1) == y).sum() for x, y in val_loader)
        print(f"validation accuracy {int(correct) / val_size:.3f}", file=sys.stderr)
    return throughputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4, help="per run; the first one is warm-up")
    parser.add_argument("--batch-size", dest="batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (OMP_NUM_THREADS) for both")
    parser.add_argument("--hand-loop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hand_loop:
        print(json.dumps(hand_written_loop(args.epochs, args.batch)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_project(Path(tmp) / "lenet", lenet_context())
        generated, hand = [], []
        for repeat in range(args.repeats):
            generated.append(generated_trainer(folder, args))
            hand.append(hand_written(args))
            print(f"repeat {repeat + 1}: generated {generated[-1]:,.0f} samples/s, hand-written {hand[-1]:,.0f}")
    generated_median, hand_median = statistics.median(generated), statistics.median(hand)
    print(f"torch {torch.__version__}, CPU, {args.threads} thread(s), LeNet, batch {args.batch}")
    print(f"generated train.py: {generated_median:,.0f} samples/s (median of {args.repeats} runs)")
    print(f"hand-written loop:  {hand_median:,.0f} samples/s (median of {args.repeats} runs)")
    print(f"ratio generated / hand-written: {generated_median / hand_median:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
