"""The `train:` section: defaults for generated training code, validated here once."""

from __future__ import annotations

from ..errors import Problem
from .model import Pos

DATASETS = ("synthetic", "digits", "mnist", "cifar10", "folder", "npz")
# key: (kind, default, check, description of the check)
TRAIN_FIELDS = {
    "dataset": ("choice", "synthetic", DATASETS, None),
    "epochs": ("int", 10, lambda v: v >= 1, ">= 1"),
    "batch_size": ("int", 64, lambda v: v >= 1, ">= 1"),
    "optimizer": ("choice", "adam", ("sgd", "adam", "adamw"), None),
    "lr": ("float", 1e-3, lambda v: v > 0, "> 0"),
    "momentum": ("float", 0.9, lambda v: 0 <= v < 1, "in [0, 1)"),
    "weight_decay": ("float", 0.0, lambda v: v >= 0, ">= 0"),
    "scheduler": ("choice", "none", ("none", "step", "cosine"), None),
    "step_size": ("int", 10, lambda v: v >= 1, ">= 1"),
    "gamma": ("float", 0.1, lambda v: v > 0, "> 0"),
    "loss": ("choice", "cross_entropy", ("cross_entropy",), None),
    "label_smoothing": ("float", 0.0, lambda v: 0 <= v < 1, "in [0, 1)"),
    "val_fraction": ("float", 0.2, lambda v: 0 < v < 1, "in (0, 1)"),
    "seed": ("int", 0, lambda v: v >= 0, ">= 0"),
    "num_workers": ("int", 0, lambda v: 0 <= v <= 64, "in [0, 64]"),
}


def _convert(key, value):
    kind, _default, check, rule = TRAIN_FIELDS[key]
    if kind == "choice":
        if value not in check:
            return None, f"train.{key} must be one of {', '.join(check)}, received {value!r}"
        return value, None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "int" and not isinstance(value, int)):
        return None, f"train.{key} must be {'an integer' if kind == 'int' else 'a number'}, received {value!r}"
    value = float(value) if kind == "float" else value
    if not check(value):
        return None, f"train.{key} must be {rule}, received {value!r}"
    return value, None


def parse_train(raw, pos: Pos) -> tuple[dict, list[Problem]]:
    values = {key: spec[1] for key, spec in TRAIN_FIELDS.items()}
    problems = []
    if not isinstance(raw, dict):
        return values, [Problem(f"train must be a mapping of setting -> value, received {raw!r}", line=pos.line)]
    for key, value in raw.items():
        where = raw.value_where(key) if hasattr(raw, "value_where") else (pos.line, pos.column)
        if key not in TRAIN_FIELDS:
            from .parse import suggest

            problems.append(
                Problem(
                    f"unknown training setting {key!r}; expected one of: {', '.join(TRAIN_FIELDS)}",
                    line=where[0],
                    column=where[1],
                    hint=suggest(key, TRAIN_FIELDS),
                )
            )
            continue
        converted, message = _convert(key, value)
        if message:
            problems.append(Problem(message, line=where[0], column=where[1]))
        else:
            values[key] = converted
    return values, problems
