"""The `train:` section: defaults for the generated train.py, validated here once.

Every value is checked the way train.py checks the same flag, so a file that passes `archplan check` renders a
train.py whose defaults it accepts. Messages say what was expected and what was received, in YAML terms.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Callable

from ..errors import Problem
from .model import Pos

DATASETS = ("synthetic", "digits", "mnist", "cifar10", "folder", "npz", "text")
# Upper bounds: far beyond any real run, low enough to catch a typo or a unit mix-up (steps for epochs, samples for
# batches) before a run that would never end or a batch that could never be allocated.
MAX_EPOCHS = 100_000  # ImageNet recipes run 90-600 epochs; small-data runs a few thousand
MAX_BATCH_SIZE = 2**20  # per process; the largest published batches are 32k-128k samples over hundreds of devices
MAX_WORKERS = 64  # DataLoader processes per training process
SEED_LIMIT = 2**32  # train.py seeds numpy with it, and numpy seeds are 0 <= seed < 2**32
MAX_CONTEXT = 2**20  # tokens per training sequence; the net's validity domain bounds it further (train.py checks)
MAX_SAMPLE_TOKENS = 100_000  # tokens sampled after training: a short continuation, not a corpus
MAX_TOP_K = 2**20  # beyond any vocabulary in use (GPT-2: 50,257; the largest published: about 256k)


@dataclass(frozen=True)
class Field:
    kind: str  # "int", "float" (finite) or "choice"
    default: object
    expected: str  # the allowed values, as messages say them
    allows: Callable[[object], bool] | tuple  # a test of the value, or the choices


def _choice(*options: str) -> tuple[str, tuple]:
    return "one of " + ", ".join(options), options


def _int(low: int, high: int, why: str = "") -> tuple[str, Callable]:
    return f"an integer from {low} to {high}{why}", lambda v: low <= v <= high


def _number(rule: str, test: Callable) -> tuple[str, Callable]:
    return f"a finite number {rule}", test


TRAIN_FIELDS = {
    "dataset": Field("choice", "synthetic", *_choice(*DATASETS)),
    "epochs": Field("int", 10, *_int(1, MAX_EPOCHS)),
    "batch_size": Field("int", 64, *_int(1, MAX_BATCH_SIZE)),
    "optimizer": Field("choice", "adam", *_choice("sgd", "adam", "adamw")),
    "lr": Field("float", 1e-3, *_number("> 0", lambda v: v > 0)),
    "momentum": Field("float", 0.9, *_number("in [0, 1)", lambda v: 0 <= v < 1)),
    "weight_decay": Field("float", 0.0, *_number(">= 0", lambda v: v >= 0)),
    "scheduler": Field("choice", "none", *_choice("none", "step", "cosine")),
    "step_size": Field("int", 10, *_int(1, MAX_EPOCHS)),
    "gamma": Field("float", 0.1, *_number("> 0", lambda v: v > 0)),
    "loss": Field("choice", "cross_entropy", *_choice("cross_entropy")),
    "label_smoothing": Field("float", 0.0, *_number("in [0, 1)", lambda v: 0 <= v < 1)),
    "val_fraction": Field("float", 0.2, *_number("in (0, 1)", lambda v: 0 < v < 1)),
    "seed": Field("int", 0, *_int(0, SEED_LIMIT - 1, " (numpy seeds are below 2**32)")),
    "num_workers": Field("int", 0, *_int(0, MAX_WORKERS)),
    # Sequence tasks (a net with one token input [N, L]); other nets ignore them.
    "context": Field("int", None, *_int(1, MAX_CONTEXT, " (tokens per sequence; null: the net's default)")),
    "sample_tokens": Field("int", 200, *_int(0, MAX_SAMPLE_TOKENS, " (0: no sample)")),
    "temperature": Field("float", 0.8, *_number(">= 0 (0: the likeliest token)", lambda v: v >= 0)),
    "top_k": Field("int", 0, *_int(0, MAX_TOP_K, " (0: every token)")),
}


def describe(value) -> str:
    """A value as the user wrote it in YAML, never a Python repr of an internal class."""
    if value is None:
        return "an empty value (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return (
            str(value)
            if value.bit_length() <= 128
            else f"an integer of about {int(value.bit_length() * 0.30103)} digits"
        )
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        return repr(value) if math.isfinite(value) else ("-.inf" if value < 0 else ".inf")
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {text!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"the date {value.isoformat()}"
    if isinstance(value, bytes):
        return "binary data"
    return f"a value of YAML type {type(value).__name__}"


def _hint(field: Field, value) -> str | None:
    if not isinstance(value, str):
        return None
    if field.kind == "choice":
        from .parse import suggest

        return suggest(value, field.allows)
    if "*" in value or "^" in value:
        return "YAML reads arithmetic as text here: write the number itself"
    if any(c.isdigit() for c in value) and field.kind == "int":
        return "YAML reads this as text: write the integer with digits only"
    if any(c.isdigit() for c in value):
        return "YAML reads this as text: write a plain number, with a dot before an exponent (1.0e-3, not 1e-3)"
    return None


def _convert(field: Field, value) -> tuple[object, bool]:
    """(the value as train.py takes it, whether it is allowed)."""
    if field.kind == "choice":
        return value, isinstance(value, str) and value in field.allows
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value, False
    if field.kind == "int":
        return value, isinstance(value, int) and field.allows(value)
    try:
        value = float(value)
    except OverflowError:  # an integer beyond the float range
        return value, False
    return value, math.isfinite(value) and field.allows(value)


def parse_train(raw, pos: Pos) -> tuple[dict, list[Problem]]:
    values = {key: field.default for key, field in TRAIN_FIELDS.items()}
    if not isinstance(raw, dict):
        message = f"train must be a mapping of setting -> value, such as {{epochs: 10}}, received {describe(raw)}"
        return values, [Problem(message, line=pos.line, column=pos.column)]
    problems = []
    for key, value in raw.items():
        where = raw.value_where(key) if hasattr(raw, "value_where") else (pos.line, pos.column)
        field = TRAIN_FIELDS.get(key)
        if field is None:
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
        if value is None:  # `key:` or `key: null` keeps the default (and a value YAML refused is reported there)
            continue
        converted, allowed = _convert(field, value)
        if allowed:
            values[key] = converted
            continue
        message = f"train.{key} must be {field.expected}, received {describe(value)}"
        problems.append(Problem(message, line=where[0], column=where[1], hint=_hint(field, value)))
    return values, problems
