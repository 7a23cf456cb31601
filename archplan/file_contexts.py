"""What train.py, test_model.py and README.md need from the analysis: frozen plain values (ints, identifiers,
archplan's own words), never YAML text as code. codegen renders them; this module knows no Jinja.

train.py's task follows the net's one output: [N, classes] classification, [N, classes, ...] segmentation, or
[N, L, vocabulary] over the positions of a token input [N, L] (a language model); a net with one token input
[N, L] gets a Sequence: L's default and the lengths model.py accepts (from the validity domain).
"""

from __future__ import annotations

from dataclasses import dataclass

from .codegen_errors import CodegenError
from .codegen_model import ModelContext, Sizes
from .ops.base import Module
from .pysource import identifier, literal


@dataclass(frozen=True)
class NamedShape:
    name: str
    shape: tuple  # plain ints
    example: str = ""  # an input: the torch expression that makes a random one (token ids within their range)


def _ints(shape) -> tuple:
    return tuple(int(literal(d)) for d in shape)


def _key(name: str) -> str:
    """A layer path (layer1.0.conv1) written into a string in test_model.py: identifiers and indices only."""
    for part in name.split("."):
        if not part.isdigit():
            identifier(part)
    return name


@dataclass(frozen=True)
class TrainInput:
    name: str
    shape: list  # per sample, plain ints
    dtype: str  # "float32", or the integer dtype of token ids (int64, ...)
    range: int | None  # token ids lie in [0, range); None: floats, or a range the net does not state


@dataclass(frozen=True)
class Sequence:
    """The length L of a net's one token input [N, L]: its default and the lengths model.py accepts."""

    default: int
    period: int
    residues: (
        tuple  # ((residue, first, last or None), ...): L is valid when L % period is a residue, first <= L <= last
    )
    rule: str  # the valid lengths in words, for messages


INTEGER_DTYPES = ("int64", "int32", "int16", "int8", "uint8", "bool")


def train_context(analysis, concrete, memory: dict | None = None, where: dict | None = None) -> dict | None:
    """analysis: at the sizes model.py keeps (symbols it leaves free stay symbols); concrete: at every default.
    memory: memory.trainer_memory's numbers for --batch-size auto (plain ints), or None. where: the spec's
    train_where (train key -> line, column), to locate a setting the net refuses."""
    graph = analysis.graph
    outputs = list(concrete.outputs.values())
    if len(outputs) != 1 or len(outputs[0]) < 2:
        return None
    out = _ints(outputs[0])
    inputs = [_train_input(graph, name, shape) for name, shape in concrete.inputs.items()]
    sequence = _sequence(analysis, inputs)
    task, classes = ("classification", out[1]) if len(out) == 2 else ("segmentation", out[1])
    if sequence is not None and len(out) == 3 and _same_length(analysis):
        task, classes = "language_model", out[2]  # logits [N, L, vocabulary] over the input's positions
    train = _Train(**graph.train)
    if train.context is not None:
        try:
            _check_context(train.context, sequence, graph.name, (where or {}).get("context", (None, None)))
        except CodegenError as exc:
            raise exc.at(graph.path) from None
    return {
        "net": NamedShape(identifier(graph.name), ()),
        "inputs": inputs,
        "task": task,
        "num_classes": classes,
        "output_shape": list(out[1:]),
        "sequence": sequence,
        "train": train,
        "memory": memory,
    }


def _train_input(graph, name: str, shape) -> TrainInput:
    from . import dims

    dtype = graph.input_dtypes.get(name, "float")
    if dtype not in INTEGER_DTYPES:
        return TrainInput(identifier(name), list(_ints(shape)[1:]), "float32", None)
    high = 2 if dtype == "bool" else dims.as_int(graph.input_ranges.get(name))
    return TrainInput(identifier(name), list(_ints(shape)[1:]), dtype, high)


def _sequence(analysis, inputs: list) -> Sequence | None:
    """The net's one token input [N, L], or None: L's default and the lengths the analysis finds valid."""
    if len(inputs) != 1 or inputs[0].dtype == "float32" or len(inputs[0].shape) != 1:
        return None
    default = inputs[0].shape[0]
    length = next(iter(analysis.inputs.values()))[1]  # at model.py's sizes: a symbol if model.py leaves it free
    name = str(length) if getattr(length, "is_Symbol", False) else None
    if name is None or name not in analysis.graph.symbols:
        return Sequence(default, 1, ((0, default, default),), f"exactly {default} (model.py is written for it)")
    info = analysis.graph.symbols[name]
    domain = analysis.domains.get(name)
    period = int(domain.period) if domain is not None else 1
    starts = dict(domain.starts) if domain is not None else {0: 1}
    ends = dict(domain.ends) if domain is not None else {}
    bounds = [b for b in (domain.maximum if domain else None, info.max) if b is not None]
    residues = []
    for residue, start in sorted(starts.items()):
        first = max(int(start), int(info.min or 1))
        first += (int(residue) - first) % period
        highs = [int(b) for b in (*bounds, ends.get(residue)) if b is not None]
        last = min(highs) - (min(highs) - int(residue)) % period if highs else None
        if last is None or last >= first:
            residues.append((int(residue), first, last))
    return Sequence(default, period, tuple(residues), _rule(identifier(name), period, residues))


def _rule(name: str, period: int, residues: list) -> str:
    """The valid lengths in a few words (exact for one residue; the residues listed, shortened, otherwise)."""
    lasts = [last for _, _, last in residues]
    span = f"{min(first for _, first, _ in residues)} <= {name}"
    span += f" <= {max(lasts)}" if None not in lasts else ""
    if period == 1:
        return span
    listed = ", ".join(str(r) for r, _, _ in residues)
    listed = listed if len(listed) <= 40 else listed[:40].rsplit(",", 1)[0] + ", ..."
    return f"{name} % {period} in ({listed}) and {span}"


def _same_length(analysis) -> bool:
    """Whether the one output is [N, L, V] over the positions of the one input [N, L] (the same L at model.py's
    sizes, so it holds for every length model.py accepts)."""
    (inputs,), (outputs,) = analysis.inputs.values(), analysis.outputs.values()
    return len(outputs) == 3 and outputs[1] == inputs[1]


def _check_context(context: int, sequence: Sequence | None, net: str, where: tuple) -> None:
    if sequence is None:
        message = f"train.context {context}: {net} has no token input [N, L] whose length it could set"
        raise CodegenError(message, line=where[0], column=where[1])
    residues = sequence.residues
    if not any(context % sequence.period == r and f <= context <= (last or context) for r, f, last in residues):
        message = f"train.context {context} is not a length {net} accepts: {sequence.rule}"
        raise CodegenError(message, line=where[0], column=where[1])


class _Train:
    def __init__(self, **values):
        for key, value in values.items():
            if isinstance(value, str):
                literal(value)  # choices: plain words only
            setattr(self, identifier(key), value)


def trainer_memory(net, values: dict) -> dict | None:
    from .memory import trainer_memory

    memory = trainer_memory(net, values)  # archplan's own words and ints: nothing from the YAML's text
    if memory is not None:
        memory["lines"] = [(str(s), str(a), int(x), int(y)) for s, a, x, y in memory["lines"]]
    return memory


def test_context(generated_model: ModelContext, concrete, sizes: Sizes) -> dict:
    from . import dims

    modules = []
    for row in concrete.layers:
        if isinstance(row.node.op.emit(row.node.args, [concrete.shape_of(s) for s in row.node.inputs]), Module):
            modules.append(NamedShape(_key(row.name), _ints(row.output_shape)))
    totals = concrete.totals
    return {
        "net_name": identifier(concrete.graph.name),
        "net_class": generated_model.net_class,
        "inputs": [NamedShape(identifier(n), _ints(s), _example(concrete, n)) for n, s in concrete.inputs.items()],
        "outputs": [_ints(s) for s in concrete.outputs.values()],
        "layers": modules,
        "params": int(literal(dims.normalize(totals["params"]))),
        "buffers": int(literal(dims.normalize(totals["buffers"]))),
        "sizes": ", ".join(f"{k}={v}" for k, v in sorted(sizes.concrete.items())),
    }


def _example(concrete, name: str) -> str:
    """Python source for a random input: N(0, 1) floats, or integer ids uniform over [0, range)."""
    from . import dims

    shape = literal(_ints(concrete.inputs[name]))
    dtype = concrete.graph.input_dtypes.get(name, "float")
    if dtype in ("float", "float32"):
        return f"torch.randn({shape})"
    if dtype.startswith("float") or dtype == "bfloat16":
        return f"torch.randn({shape}, dtype=torch.{dtype})"
    high = dims.as_int(concrete.graph.input_ranges.get(name)) or 2
    return f"torch.randint(0, {high}, {shape}, dtype=torch.{dtype})"


def readme_context(graph, concrete, sizes: Sizes, task: str | None) -> dict:
    """task: train.py's task, None without a train.py."""
    from .report import markdown

    return {
        "name": identifier(graph.name),
        "table": markdown(concrete, graph.path),
        "has_train": task is not None,
        "language_model": task == "language_model",
        "sizes": ", ".join(f"{k}={v}" for k, v in sorted(sizes.concrete.items())),
        "notes": list(sizes.notes),
    }
