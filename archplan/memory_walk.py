"""The liveness walks behind archplan/memory.py: every tensor of a training step or of an inference forward as an
allocation alive over a range of moments. Pure; no torch.

Moments: one per layer in topological order (its forward), then for training the loss, the loss's backward, one
per layer in reverse topological order (its backward, as autograd runs nodes: latest created first) and the
optimizer step. A moment's live set is sampled right after its new tensors exist, before anything is freed
(the way tests/memory_oracle.py samples torch).

Forward: a layer allocates its output (unless it shares an input's storage: views, in-place ops), the copies
autocast casts its inputs to, the new tensors it saves, and scratch it frees at once. A storage lives until its
last consumer has run, or, when saved, until the backward of the last layer that saved it; the net's inputs and
outputs live throughout (the caller holds them). Backward: a layer's input gradients are new tensors, or the
output gradient itself (add, concat, views: Memory.grad_alias), summed with what an earlier consumer left into a
new tensor (measured: torch 2.13 sums out of place); its output gradient and the storages only it still needed
are freed after it; parameter gradients stay. Training steps start with the
gradients freed (zero_grad(set_to_none=True)) and end with the optimizer's update (its temporaries included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import dims

LAST = 1 << 60  # alive to the end


@dataclass(eq=False)
class Alloc:
    nbytes: Any  # int, batch.Batch or sympy
    label: str  # weights, buffers, optimizer, inputs, activations, saved, copies, scratch, grads, gradients
    start: int
    end: int = LAST  # the last moment it is alive


@dataclass
class Timeline:
    moments: list = field(default_factory=list)  # (phase, layer name)
    allocs: list = field(default_factory=list)

    def moment(self, phase: str, layer: str = "") -> int:
        self.moments.append((phase, layer))
        return len(self.moments) - 1

    def add(self, nbytes, label: str, start: int, end: int = LAST) -> Alloc:
        alloc = Alloc(nbytes, label, start, end)
        self.allocs.append(alloc)
        return alloc

    def lines(self, line_of) -> list[tuple[int, int]]:
        """(slope, intercept) of each moment's live bytes in the batch, at the probe sizes of other symbols."""
        n = len(self.moments)
        slope, intercept = [0] * (n + 1), [0] * (n + 1)
        for alloc in self.allocs:
            a, b = line_of(alloc.nbytes)
            start, end = max(alloc.start, 0), min(alloc.end, n - 1)
            if end < start:
                continue
            slope[start] += a
            intercept[start] += b
            slope[end + 1] -= a
            intercept[end + 1] -= b
        out, a, b = [], 0, 0
        for i in range(n):
            a, b = a + slope[i], b + intercept[i]
            out.append((a, b))
        return out

    def live(self, moment: int) -> list[Alloc]:
        return [a for a in self.allocs if a.start <= moment <= a.end]


@dataclass(eq=False)
class Storage:
    alloc: Alloc | None  # None: a parameter (counted in the weights)
    kind: str  # input, activation, copy, parameter
    last_use: int = 0
    pinned: bool = False  # the caller holds it (net inputs and outputs)
    savers: list = field(default_factory=list)  # layer indices that saved it, in order
    released: int | None = None  # backward moment after which no saver needs it


@dataclass(eq=False)
class Grad:
    alloc: Alloc
    refs: int = 1


@dataclass
class Forward:
    """What the training forward left: storages per tensor, saves per layer, the first saver of each storage."""

    storages: dict  # tensor name -> Storage
    saved: dict  # layer index -> [Storage] it saved (unique)
    first: dict = field(default_factory=dict)  # Storage -> layer index that saved it first
    copies: list = field(default_factory=list)  # autocast's cached low-precision weights (until autocast exits)
    created: list = field(default_factory=list)  # every Storage, in order


def _itemsize(dtype: str) -> int:
    from .analysis import DTYPE_BYTES

    return DTYPE_BYTES[dtype]


def new_bytes(saved, layer) -> Any:
    dtype = layer.compute if saved.dtype == "float" else saved.dtype
    return dims.product(saved.shape) * _itemsize(dtype)


def forward(t: Timeline, layers: list, inputs: dict, training: bool) -> Forward:
    """One forward pass: allocations and the storage of every tensor (inputs: name -> bytes, held throughout)."""
    storages = {name: Storage(t.add(nbytes, "inputs", 0), "input", pinned=True) for name, nbytes in inputs.items()}
    result = Forward(storages, {}, created=list(storages.values()))

    def new(nbytes, label: str, kind: str, m: int) -> Storage:
        store = Storage(t.add(nbytes, label, m), kind, m)
        result.created.append(store)
        return store

    for layer in layers:
        m = t.moment("forward", layer.name)
        rule = layer.train if training else layer.eval
        casts = {j: new(nbytes, "activations", "activation", m) for j, nbytes in layer.casts.items()}
        for name in layer.inputs:
            storages[name].last_use = m
        if not layer.inputs:
            out = Storage(None, "parameter")
        elif rule.alias is not None:
            out = storages[layer.inputs[rule.alias]]
        else:
            out = new(layer.out_bytes, "activations", "activation", m)
        storages[layer.name] = out
        copies = [new(b, "copies", "copy", m) for b in layer.copies]  # autocast's cached weights
        kept = []
        if training and layer.requires_grad:
            for saved in rule.saved:
                if saved.role == "new":
                    store = new(new_bytes(saved, layer), "saved", "activation", m)
                elif saved.role == "output":
                    store = out
                elif saved.role == "weight":
                    store = copies[layer.weight_index(saved.shape)] if copies else None
                else:
                    store = casts.get(saved.role) or storages[layer.inputs[saved.role]]
                if store is not None and store not in kept:
                    kept.append(store)
        for store in kept:
            if layer.on_path:  # off the loss's path, autograd's node dies with the output, and what it saved
                store.savers.append(layer.index)
            result.first.setdefault(store, layer.index)
        result.saved[layer.index] = kept
        made = [s for s in rule.saved if s.role == "new"] if training else []
        scratch = list(rule.scratch)
        for saved in made:
            if saved in scratch:
                scratch.remove(saved)  # made in eval mode too: counted once
        if not layer.requires_grad:
            scratch += made  # made by the forward, but nothing keeps them
        for saved in scratch:
            t.add(new_bytes(saved, layer), "scratch", m, m)
        result.copies += copies
    return result


def finish(t: Timeline, fwd: Forward, outputs: tuple, end: int) -> None:
    """Set each forward storage's end: its last use, its release by backward, or `end` when the caller holds it."""
    for name in outputs:
        if name in fwd.storages:
            fwd.storages[name].pinned = True
    for store in fwd.created:
        last = store.last_use
        if store.savers:
            last = max(last, store.released if store.released is not None else end)
        store.alloc.end = end if store.pinned else min(last, end)


def training(layers: list, inputs: dict, outputs: dict, constants: dict, step_scratch) -> tuple[Timeline, Forward]:
    """One training step. outputs: name -> (gradient bytes, [fp32 bytes the cross-entropy loss keeps, makes]);
    constants: label -> bytes alive throughout (weights, buffers, optimizer state, the loss's target)."""
    t = Timeline()
    for label, nbytes in constants.items():
        t.add(nbytes, label, 0)
    fwd = forward(t, layers, inputs, True)
    m = t.moment("loss")
    kept = [t.add(fp32, "saved", m) for _, (fp32, copy) in outputs.items()]  # log_softmax's result
    for _, (fp32, copy) in outputs.items():
        if copy:  # autocast runs the loss in fp32: a copy of low-precision logits
            t.add(fp32, "scratch", m, m)
    for store in fwd.copies:
        store.last_use = m
    gbuf: dict[str, Grad] = {}
    m = t.moment("loss backward")
    for (name, (fp32, copy)), log_softmax in zip(outputs.items(), kept):
        log_softmax.end = m
        t.add(fp32, "scratch", m, m)  # the gradient of log_softmax's result
        gbuf[name] = Grad(t.add(layers_bytes(layers, name, fp32, copy), "grads", m))
    backward(t, layers, fwd, gbuf)
    m = t.moment("step")
    t.add(step_scratch, "scratch", m, m)
    finish(t, fwd, tuple(outputs), m)
    return t, fwd


def layers_bytes(layers: list, name: str, fp32, copy: bool):
    """The gradient of an output: fp32 from the loss, or the output's own dtype after autocast's copy."""
    if not copy:
        return fp32
    layer = next(layer for layer in layers if layer.name == name)
    return layer.out_bytes


def inference(layers: list, inputs: dict, outputs: tuple) -> tuple[Timeline, Forward]:
    """One eval-mode forward without autograd."""
    t = Timeline()
    fwd = forward(t, layers, inputs, False)
    for store in fwd.copies:
        store.last_use = LAST
    finish(t, fwd, outputs, len(t.moments) - 1)
    return t, fwd


def backward(t: Timeline, layers: list, fwd: Forward, gbuf: dict) -> None:
    """Allocations of the backward pass from the outputs' gradients (gbuf: output name -> Grad)."""
    saved_by = {i: kept for i, kept in fwd.saved.items()}
    pending = {}
    for kept in saved_by.values():
        for store in kept:
            pending[id(store)] = pending.get(id(store), 0) + 1

    def release(g: Grad, at: int) -> None:
        g.refs -= 1
        if g.refs == 0:
            g.alloc.end = at

    def accumulate(name: str, g: Grad, nbytes, at: int) -> None:
        old = gbuf.get(name)
        if old is None:
            gbuf[name] = g
        else:  # old + new: a new tensor (torch 2.13 on the CPU sums out of place, measured)
            release(old, at)
            release(g, at)
            gbuf[name] = Grad(t.add(nbytes, "grads", at))

    def release_saved(layer, at: int) -> None:
        for store in saved_by.get(layer.index, ()):
            pending[id(store)] -= 1
            if pending[id(store)] == 0:
                store.released = at

    for layer in reversed(layers):
        g = gbuf.pop(layer.name, None)
        if g is None or not layer.requires_grad:
            continue  # not on the loss's path: autograd never runs it
        m = t.moment("backward", layer.name)
        if not layer.inputs:  # a learned tensor: its gradient becomes .grad
            g.alloc.label, g.alloc.end = "gradients", LAST
            continue
        scratch = [t.add(new_bytes(x, layer), "scratch", m) for x in layer.train.grad_scratch]
        if scratch:  # the inner op's node ran; the pad's backward makes the input's gradient next
            weight_grads(t, layer, m)
            release(g, m)
            release_saved(layer, m)
            m = t.moment("backward", layer.name)
        made = []
        for j, name in enumerate(layer.inputs):
            if not layer.grads[j]:
                continue
            if j in layer.train.grad_alias:
                g.refs += 1
                made.append((name, g, layer.in_bytes[j]))
                continue
            if j in layer.casts:  # the gradient of autocast's copy, then converted back
                t.add(layer.casts[j], "scratch", m, m)
            made.append((name, Grad(t.add(layer.in_bytes[j], "grads", m)), layer.in_bytes[j]))
        for nbytes in layer.copies:
            t.add(nbytes, "scratch", m, m)  # the low-precision weight gradient before it becomes fp32
        if not scratch:
            weight_grads(t, layer, m)
            release(g, m)
            release_saved(layer, m)
        for alloc in scratch:
            alloc.end = m
        if any(name in gbuf for name, _, _ in made):  # sums happen after the node released what it held
            m = t.moment("backward", layer.name)
        for name, grad, nbytes in made:
            accumulate(name, grad, nbytes, m)
    last = len(t.moments) - 1
    for g in gbuf.values():
        if g.alloc.end == LAST and g.alloc.label == "grads":
            g.alloc.end = last
    for store in (s for kept in saved_by.values() for s in kept):
        if store.released is None:  # saved by layers autograd never ran: freed with the graph
            store.released = last


def weight_grads(t: Timeline, layer, m: int) -> None:
    """The layer's parameter gradients become .grad. A weight that a later layer shares already has one (that
    layer's backward ran first): torch sums the two out of place (old + new into a new .grad), so for a moment
    two more tensors of its size exist, then one as before (measured on GPT-2's tied lm_head)."""
    for i, nbytes in enumerate(layer.weight_bytes):
        if i in layer.accumulated:
            t.add(2 * nbytes, "scratch", m, m)
        else:
            t.add(nbytes, "gradients", m)
