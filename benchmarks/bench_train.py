"""Whole runs of the generated train.py vs a hand-written loop doing the same work (LeNet, sklearn digits, CPU).

    python benchmarks/bench_train.py [--repeats 7] [--epochs 5] [--threads 1] [--no-progress]

Both are fresh processes timed from start to exit, alternating, with the same thread count: the generated trainer
(templates/train.py.j2 rendered for LeNet, next to the LeNet fixture as model.py) as a user runs it,
`python train.py --device cpu --dataset digits --epochs 5 --batch-size 64`, and hand_written_loop below, which does
the same work the way a PyTorch engineer writes it by hand: the same data (digits resized to 28x28, an 80/20 seeded
split, shuffled batches of 64, full batches only), model, optimizer and loss; per epoch a validation pass, a
metrics.jsonl row and a checkpoint (and a best one); curves.png at the end. What differs is the trainer's
machinery: flags and their checks, the sampler, the NaN checks, RNG states in the checkpoint, atomic writes,
progress bars. The result is the ratio of the medians of the same run. Target: at most 1.05.
One thread by default: on small shared CPU machines, multi-threaded timings are noisy.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _train_harness import FIXTURES, lenet_context, make_project  # noqa: E402

BATCH_SIZE = 64
VAL_FRACTION = 0.2
SEED = 0


def timed(command: list[str], cwd: Path, threads: int) -> float:
    """Seconds from the start of the process to its exit."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return seconds


def generated_run(project: Path, out: Path, args: argparse.Namespace) -> float:
    flags = ["--device", "cpu", "--dataset", "digits", "--epochs", str(args.epochs), "--batch-size", str(BATCH_SIZE)]
    flags += ["--val-fraction", str(VAL_FRACTION), "--seed", str(SEED), "--out", str(out)]
    flags += ["--no-progress"] if args.no_progress else []
    return timed([sys.executable, "train.py", *flags], project, args.threads)


def hand_written_run(out: Path, args: argparse.Namespace) -> float:
    command = [sys.executable, __file__, "--hand-loop", str(out), "--epochs", str(args.epochs)]
    return timed(command, ROOT, args.threads)


def hand_written_loop(out: Path, epochs: int) -> None:
    """The loop a PyTorch engineer writes by hand for the same job."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from torch.utils.data import DataLoader, TensorDataset, random_split

    sys.path.insert(0, str(FIXTURES))
    from lenet_model import build_model

    torch.manual_seed(SEED)
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False, antialias=True)
    dataset = TensorDataset(images, torch.tensor(digits.target))
    val_size = round(len(dataset) * VAL_FRACTION)
    split = torch.Generator().manual_seed(SEED)
    train_set, val_set = random_split(dataset, [len(dataset) - val_size, val_size], generator=split)
    loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True, drop_last=True)
    val_loader = DataLoader(val_set, batch_size=BATCH_SIZE)
    model = build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = torch.nn.CrossEntropyLoss()
    out.mkdir(parents=True)
    rows, best = [], -1.0
    for epoch in range(1, epochs + 1):
        model.train()
        loss_sum, samples = torch.zeros(()), 0
        for x, y in loader:
            loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(y)
            samples += len(y)
        model.eval()
        val_loss, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        with torch.no_grad():
            for x, y in val_loader:
                logits = model(x)
                val_loss += criterion(logits, y) * len(y)
                correct += (logits.argmax(1) == y).sum()
        accuracy = correct.item() / val_size
        row = {"epoch": epoch, "train_loss": loss_sum.item() / samples, "val_loss": val_loss.item() / val_size}
        rows.append({**row, "val_accuracy": accuracy})
        with (out / "metrics.jsonl").open("a") as metrics:
            metrics.write(json.dumps(rows[-1]) + "\n")
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}
        torch.save(state, out / "checkpoint_last.pt")
        if accuracy > best:
            best = accuracy
            torch.save(state, out / "checkpoint_best.pt")
        print(f"epoch {epoch}: validation accuracy {accuracy:.3f}")
    draw_curves(out, rows)


def draw_curves(out: Path, rows: list[dict]) -> None:
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in rows]
    figure = Figure(figsize=(10, 4))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [row["train_loss"] for row in rows], label="train")
    loss_axes.plot(epochs, [row["val_loss"] for row in rows], label="validation")
    loss_axes.set(xlabel="epoch", ylabel="loss", title="LeNet loss")
    loss_axes.legend()
    accuracy_axes.plot(epochs, [row["val_accuracy"] for row in rows], label="validation")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", title="LeNet validation accuracy")
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.92, wspace=0.2)
    figure.savefig(out / "curves.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (OMP_NUM_THREADS) for both")
    parser.add_argument("--no-progress", action="store_true", help="run the generated trainer without progress bars")
    parser.add_argument("--hand-loop", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hand_loop:
        hand_written_loop(args.hand_loop, args.epochs)
        return
    generated, hand = [], []
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp) / "lenet", lenet_context())
        for repeat in range(args.repeats):
            generated.append(generated_run(project, Path(tmp) / f"generated_{repeat}", args))
            hand.append(hand_written_run(Path(tmp) / f"hand_{repeat}", args))
            print(f"repeat {repeat + 1}: generated train.py {generated[-1]:.2f} s, hand-written loop {hand[-1]:.2f} s")
    import torch

    generated_median, hand_median = statistics.median(generated), statistics.median(hand)
    print(f"torch {torch.__version__}, CPU, {args.threads} thread(s), LeNet on digits, {args.epochs} epochs, batch 64")
    print(f"generated train.py: {generated_median:.2f} s per run (median of {args.repeats})")
    print(f"hand-written loop:  {hand_median:.2f} s per run (median of {args.repeats})")
    print(f"ratio generated / hand-written: {generated_median / hand_median:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
