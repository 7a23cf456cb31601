"""Training and inference memory, planned from the analysis without running the net. Pure: Analysis in,
MemoryPlan out; symbolic in the batch (and in every other free size); no torch.

Each op states what autograd saves, what it allocates and which storage its output shares (Op.memory,
ops/base.py); this module turns those statements into tensors with sizes and dtypes, and memory_walk.py into a
timeline of one training step and one inference forward. What it counts, with torch 2.13 as the truth
(tests/memory_oracle.py measures it, tests/test_memory.py compares):
- saved activations: the unique storages autograd keeps for backward (a storage saved by several layers, or
  through views, counts once), the net's input included when a layer saves it; each belongs to the first
  layer that saved it, as the oracle attributes it;
- weights and buffers (fp32), gradients (fp32, one per parameter), optimizer state (OPTIMIZER_STATE fp32 copies
  of the weights, plus Adam's 4-byte step counter per parameter tensor on the CPU; on CUDA it stays on the host);
- AMP (torch.autocast): ops whose Memory.autocast is "lower" (conv, linear) run in fp16/bf16 on a cast copy of
  their fp32 inputs (a new tensor, which is what they save) and on low-precision copies of their weights, which
  autocast caches until it exits (those a layer saves live until its backward); "float32" ops (CUDA's norms,
  softmax, sum; CPU's reflection pads and 3-D pools) run on fp32 copies; the rest follow their inputs' dtype;
  master weights, gradients and optimizer state stay fp32;
- the loss is the generated trainer's cross-entropy: it keeps log_softmax's fp32 result until backward and
  makes the output's gradient; its int64 target is held throughout.
Peaks come from memory_walk's timelines: each moment's live bytes are a*N + b in the batch N; the peak is their
maximum, an upper envelope of lines, and the largest batch that fits M bytes is the smallest
floor((M - reserve - b) / a) over them. Other free sizes (H, W) are fixed at probe values (--set values,
defaults, smallest valid sizes) to locate the peak; its formula stays symbolic in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import dims
from .analysis import FLOAT
from .memory_devices import DEFAULT_RESERVE
from .memory_layers import AMP_DTYPES, build_layers, dtype_name, itemsize
from .memory_walk import inference, training
from .ops.base import Op

OPTIMIZER_STATE = {"sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2}  # fp32 copies of the weights


@dataclass(frozen=True)
class Options:
    optimizer: str = "adam"  # OPTIMIZER_STATE
    amp: str = "off"  # AMP_DTYPES
    device: str = "cuda"  # whose kernels and autocast lists; the reserve applies to cuda only
    reserve: int | None = None  # bytes; None: DEFAULT_RESERVE on cuda, 0 on cpu

    @property
    def reserved(self) -> int:
        if self.reserve is not None:
            return self.reserve
        return DEFAULT_RESERVE if self.device == "cuda" else 0


@dataclass(frozen=True)
class LayerMemory:
    name: str
    saved: Any  # bytes of the storages this layer saved first (activations and the net's input)
    copies: Any  # bytes of autocast's weight copies it saved
    output: Any  # bytes of its output


@dataclass
class Peak:
    bytes: Any  # the live bytes at the peak for large batches (int, batch.Batch or sympy)
    phase: str  # forward, loss, loss backward, backward, step
    layer: str
    parts: dict  # label -> bytes at that moment
    pieces: list  # the upper envelope over N >= 1: (first N, last N or None, bytes, phase, layer)
    lines: list  # distinct (a, b) of every moment at the probe sizes: bytes = a*N + b
    timeline: list  # (phase, layer, a, b) per moment


@dataclass
class MemoryPlan:
    options: Options
    batch: str | None  # the batch symbol, None when the batch is a number
    probe: dict  # values of other free symbols used to locate the peaks
    layers: list  # LayerMemory per analysed layer
    totals: dict
    training: Peak
    inference: Peak
    notes: list = field(default_factory=list)
    unruled: list = field(default_factory=list)  # ops without a memory rule (Op.memory's default applied)

    def largest_batch(self, device_bytes: int, inference: bool = False) -> int | None:
        """The largest N whose training peak (or weights, buffers and the inference peak) plus the reserve fits
        in device_bytes; 0: not even N = 1; None: the batch is not a symbol."""
        room = device_bytes - self.options.reserved
        if inference:
            room -= self.at(self.totals["weights"] + self.totals["buffers"])
        peak = self.inference if inference else self.training
        return largest_batch(peak.lines, room, self.batch is not None)

    def at(self, value, batch: int | None = None) -> int:
        """A figure as a number: the batch at `batch` (default 1), other free sizes at the probe values."""
        values = dict(self.probe)
        if self.batch is not None:
            values[self.batch] = 1 if batch is None else batch
        return dims.as_int(dims.at(value, values))

    def inference_live(self, batch: int) -> dict:
        """Live activation bytes while each layer runs in an inference forward (probe values for other sizes)."""
        return {layer: a * batch + b for phase, layer, a, b in self.inference.timeline}

    def peak_at(self, batch: int, inference: bool = False) -> int:
        """The peak at this batch: the largest live set of any moment (probe values for other sizes)."""
        lines = (self.inference if inference else self.training).lines
        return max(a * batch + b for a, b in lines)


def default_optimizer(train: dict) -> str:
    """The optimizer the net's train: settings choose (what the generated train.py runs by default)."""
    name = train.get("optimizer") or "adam"
    momentum = train.get("momentum")
    if name == "sgd" and (0.9 if momentum is None else momentum) > 0:
        return "sgd-momentum"
    return name


def largest_batch(lines: list, room: int, has_batch: bool = True) -> int | None:
    if not has_batch:
        return None
    best = None
    for a, b in lines:
        if a <= 0:
            if b > room:
                return 0
            continue
        n = (room - b) // a
        best = n if best is None else min(best, n)
    return max(best, 0) if best is not None else None


def plan(result, options: Options = Options()) -> MemoryPlan:
    batch = batch_symbol(result)
    probe = probe_values(result, batch)
    layers = build_layers(result, options)
    graph = result.graph
    inputs = {
        name: dims.product(shape) * itemsize(dtype_name(graph.input_dtypes.get(name, FLOAT)))
        for name, shape in result.inputs.items()
    }
    outputs, target = {}, []
    by_name = {layer.name: layer for layer in layers}
    for name, shape in result.outputs.items():
        layer = by_name.get(name)
        if layer is None or not layer.requires_grad:
            continue
        numel = dims.product(shape)
        outputs[name] = (numel * 4, options.amp != "off" and layer.compute != "float32")
        target.append(dims.product((*shape[:1], *shape[2:])) * 8)
    weights = result.totals["params"] * 4
    tensors = sum(len(layer.weights) - len(layer.accumulated) for layer in layers)  # a tied weight is one tensor
    state = OPTIMIZER_STATE[options.optimizer] * weights
    if options.optimizer.startswith("adam") and options.device == "cpu":
        state = state + 4 * tensors  # the step counter: a 0-dim fp32 tensor per parameter tensor
    constants = {
        "weights": weights,
        "buffers": result.totals["buffers"] * 4,
        "optimizer": state,
        "inputs": dims.total(target),
    }
    line_of = _liner(batch, probe)
    step, fwd = training(layers, inputs, outputs, constants, _step_scratch(layers, options))
    eval_t, _ = inference(layers, inputs, tuple(result.outputs))
    per_layer, saved, from_inputs, copies = [], [], [], []
    first = {}
    for store, index in fwd.first.items():
        first.setdefault(index, []).append(store)
    for layer in layers:
        mine = first.get(layer.index, [])
        acts = [s.alloc.nbytes for s in mine if s.kind in ("input", "activation")]
        cps = [s.alloc.nbytes for s in mine if s.kind == "copy"]
        per_layer.append(LayerMemory(layer.name, tidy(dims.total(acts)), tidy(dims.total(cps)), layer.out_bytes))
        saved += acts
        copies += cps
        from_inputs += [s.alloc.nbytes for s in mine if s.kind == "input"]
    totals = {
        "weights": weights,
        "buffers": constants["buffers"],
        "gradients": weights,
        "optimizer_state": state,
        "saved_activations": tidy(dims.total(saved)),
        "saved_inputs": tidy(dims.total(from_inputs)),
        "weight_copies": tidy(dims.total(copies)),
    }
    notes = []
    unruled = sorted({row.node.op.name for row in result.layers if type(row.node.op).memory is Op.memory})
    if unruled:
        notes.append(
            f"no memory rule for {', '.join(unruled)}: assumed to save nothing and to allocate only their outputs, "
            "so saved bytes and peaks are lower bounds"
        )
    if options.device == "cuda":
        notes.append("CUDA kernels as torch documents them (not measured here: no GPU); see tests/memory_oracle.py")
    training_peak, inference_peak = _peak(step, line_of), _peak(eval_t, line_of)
    return MemoryPlan(options, batch, probe, per_layer, totals, training_peak, inference_peak, notes, unruled)


def _step_scratch(layers: list, options: Options):
    """Temporaries of optimizer.step(): none for SGD (in place); Adam's denominator, exp_avg_sq.sqrt() / c, is two
    temporaries of the largest tensor on the CPU (one tensor at a time), one of every tensor at once on CUDA
    (foreach)."""
    if not options.optimizer.startswith("adam"):
        return 0
    sizes = [b for layer in layers for b in layer.weight_bytes]
    if not sizes:
        return 0
    if options.device == "cuda":
        return dims.total(sizes)
    return 2 * max(sizes, key=lambda b: dims.as_int(b) or 0)


# -- symbols, lines, peaks ------------------------------------------------------------------------------------
def batch_symbol(result) -> str | None:
    """The symbol every input's leading dim is, when there is one."""
    names = set()
    for shape in result.inputs.values():
        if not shape:
            return None
        d = shape[0]
        if type(d).__name__ == "Batch" and d.coeffs == (0, 1):
            names.add(d.name)
        elif getattr(d, "is_Symbol", False):
            names.add(d.name)
        else:
            return None
    return names.pop() if len(names) == 1 else None


def probe_values(result, batch: str | None) -> dict:
    out = {}
    for name, info in result.graph.symbols.items():
        if name != batch:
            out[name] = info.default or result.minimum_sizes.get(name) or info.min or 1
    return out


class NotLinear(Exception):
    pass


def _liner(batch: str | None, probe: dict):
    cache: dict = {}

    def line(x) -> tuple[int, int]:
        if isinstance(x, int):
            return 0, x
        try:
            return cache[x]
        except KeyError:
            pass
        values = dict(probe)
        at = [dims.as_int(dims.at(x, {**values, batch: n} if batch else values)) for n in (0, 1, 2)]
        if None in at:
            raise NotLinear(f"cannot evaluate {dims.to_str(x)} at the probe sizes")
        cache[x] = (at[1] - at[0], at[0])
        return cache[x]

    return line


def tidy(value):
    """A sum of byte counts as one formula: sympy's expanded form (64*N*(T + 1) + 64*N*(T + 2) -> 128*N*T + 192*N);
    ints and batch polynomials are already."""
    if isinstance(value, int) or type(value).__name__ == "Batch":
        return value
    import sympy

    return dims.normalize(sympy.expand(value))


def _peak(t, line_of) -> Peak:
    lines = t.lines(line_of)
    pieces = []
    for start, end, m in envelope(lines):
        live = t.live(m)
        phase, layer = t.moments[m]
        pieces.append((start, end, tidy(dims.total([a.nbytes for a in live])), phase, layer))
    m = envelope(lines)[-1][2]
    live = t.live(m)
    parts: dict = {}
    for alloc in live:
        parts.setdefault(alloc.label, []).append(alloc.nbytes)
    parts = {label: tidy(dims.total(values)) for label, values in parts.items()}
    phase, layer = t.moments[m]
    timeline = [(*t.moments[i], a, b) for i, (a, b) in enumerate(lines)]
    return Peak(pieces[-1][2], phase, layer, parts, pieces, sorted(set(lines)), timeline)


def envelope(lines: list) -> list:
    """(first N, last N or None, moment) of the moments that hold the maximum of a*N + b for N >= 1."""
    best = max(range(len(lines)), key=lambda i: (lines[i][0] + lines[i][1], lines[i][0], -i))
    start, out = 1, []
    while True:
        a, b = lines[best]
        crossing, nxt = None, None
        for i, (a2, b2) in enumerate(lines):
            if a2 > a:
                n = (b - b2) // (a2 - a) + 1  # the first N where line i is strictly above
                if crossing is None or n < crossing or (n == crossing and a2 > lines[nxt][0]):
                    crossing, nxt = n, i
        out.append((start, None if crossing is None else crossing - 1, best))
        if crossing is None:
            return out
        start, best = crossing, nxt


def trainer_memory(net, values: dict) -> dict | None:
    """The numbers the generated train.py's --batch-size auto needs, as plain ints: the training peak's upper
    envelope (a, b) per optimizer state and autocast mode on CUDA, the reserve without the CUDA context (train.py
    reads free memory once the context exists) and the weights' bytes. None when the batch is not a symbol."""
    from .memory_devices import WORKSPACE_RESERVE

    leading = {inp.shape[0] for inp in net.spec.inputs.values() if inp.shape and isinstance(inp.shape[0], str)}
    if len(leading) != 1 or next(iter(leading)) not in values:
        return None
    name = next(iter(leading))
    result = net.analyze({k: v for k, v in values.items() if k != name})
    if not result.ok or batch_symbol(result) != name:
        return None
    lines = []
    for state in ("sgd", "sgd-momentum", "adam"):
        for amp in AMP_DTYPES:
            p = plan(result, Options(state, amp, "cuda"))
            for _, _, nbytes, _, _ in p.training.pieces:
                b = p.at(nbytes, 0)
                lines.append((state, amp, p.at(nbytes, 1) - b, b))
    return {"lines": lines, "reserve": WORKSPACE_RESERVE, "weights": dims.as_int(result.totals["params"]) * 4}
