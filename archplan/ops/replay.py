"""Memory rules by replay. Attention and transformer layers run dozens of aten ops whose temporaries, copies
and saved tensors depend on strides and on which tensors require grad. Their rules replay the forward as torch
2.13 runs it on the CPU: Replay makes storages, views them (sizes and strides), lets them go where torch drops
the last reference and notes what autograd saves; the op's Memory then lists the saved tensors, and as scratch
what its busiest instant holds beyond what the planner already allocates at the layer (the output and the saved
tensors). Layout questions (does this reshape copy?) are answered at generic sizes: a symbol stands for a large
number unlike any other. A rule is therefore exact except where a size of 1 changes a layout (a batch of 1 makes
a transposed [L, 1, E] contiguous: torch then views where the replay copies; same bytes, another storage).
"""

from __future__ import annotations

import functools
import zlib

from .. import dims
from .base import IGNORE, Memory, Saved
from .structure import broadcast

ITEMSIZE = {"float": 4, "float32": 4, "bool": 1, "uint8": 1, "int64": 8}  # "float": the compute dtype


def _generic(d) -> int:
    """A size as a number for layout decisions: each symbol a large generic value of its own."""
    n = dims.as_int(d)
    if n is not None:
        return n
    values = {name: 10007 + 2 * (zlib.crc32(name.encode()) % 50000) for name in dims.symbol_names(d)}
    if type(d).__name__ == "Batch":
        return d.at(values[d.name])
    return dims.as_int(dims.at(d, values))


def _contiguous_strides(sizes) -> tuple:
    strides, step = [], 1
    for size in reversed(sizes):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


class _Storage:
    """A storage: made by the op (role "new"), an input's (its index) or a parameter's ("weight")."""

    __slots__ = ("shape", "dtype", "role")

    def __init__(self, shape, dtype="float", role="new"):
        self.shape, self.dtype, self.role = tuple(shape), dtype, role

    def nbytes(self):  # "float" counted as fp32 (to find the busiest instant)
        return dims.product(self.shape) * ITEMSIZE[self.dtype]


class View:
    """A view of a storage: its shape (sizes as the analysis has them), generic sizes and strides (numbers)."""

    __slots__ = ("storage", "shape", "sizes", "strides", "grad")

    def __init__(self, storage, shape, strides=None, grad=False):
        self.storage, self.shape, self.grad = storage, tuple(shape), grad
        self.sizes = tuple(_generic(d) for d in self.shape)
        self.strides = tuple(strides) if strides is not None else _contiguous_strides(self.sizes)

    def _as(self, shape, strides) -> View:
        return View(self.storage, shape, strides, self.grad)

    def permute(self, *order) -> View:
        return self._as([self.shape[i] for i in order], [self.strides[i] for i in order])

    def transpose(self, i, j) -> View:
        order = list(range(len(self.shape)))
        order[i], order[j] = order[j], order[i]
        return self.permute(*order)

    def unsqueeze(self, i) -> View:
        i %= len(self.shape) + 1
        stride = self.strides[i] * self.sizes[i] if i < len(self.shape) else 1
        return self._as((*self.shape[:i], 1, *self.shape[i:]), (*self.strides[:i], stride, *self.strides[i:]))

    def select(self, i) -> View:  # x[..., index, ...] along dim i
        return self._as(self.shape[:i] + self.shape[i + 1 :], self.strides[:i] + self.strides[i + 1 :])

    def expand(self, shape) -> View:
        """Broadcast to `shape`: new leading dims and stretched size-1 dims get stride 0."""
        shape, lead = tuple(shape), len(shape) - len(self.shape)
        strides = []
        for i, d in enumerate(shape):
            same = i >= lead and self.sizes[i - lead] == _generic(d)
            strides.append(self.strides[i - lead] if same else 0)
        return self._as(shape, strides)

    def contiguous(self) -> bool:
        expected = 1
        for size, stride in reversed(list(zip(self.sizes, self.strides))):
            if size != 1:
                if stride != expected:
                    return False
                expected *= size
        return True

    def viewed(self, shape) -> View | None:
        """The view torch's view/reshape gives (its computeStride), None where reshape must copy."""
        sizes = [_generic(d) for d in shape]
        strides, view_d = [0] * len(sizes), len(sizes) - 1
        if not self.sizes:
            return self._as(shape, _contiguous_strides(sizes))
        base, tensor_numel, view_numel = self.strides[-1], 1, 1
        for d in range(len(self.sizes) - 1, -1, -1):
            tensor_numel *= self.sizes[d]
            if d == 0 or (self.sizes[d - 1] != 1 and self.strides[d - 1] != tensor_numel * base):
                while view_d >= 0 and (view_numel < tensor_numel or sizes[view_d] == 1):
                    strides[view_d] = view_numel * base
                    view_numel *= sizes[view_d]
                    view_d -= 1
                if view_numel != tensor_numel:
                    return None
                if d > 0:
                    base, tensor_numel, view_numel = self.strides[d - 1], 1, 1
        return self._as(shape, strides) if view_d == -1 else None


def _like(t: View, sizes) -> tuple:
    """Dense strides in the order of t's (what empty_like and elementwise results take)."""
    order = sorted(range(len(sizes)), key=lambda i: -t.strides[i])
    strides, step = [0] * len(sizes), 1
    for i in reversed(order):
        strides[i], step = step, step * max(sizes[i], 1)
    return tuple(strides)


class Replay:
    """One forward of a composite op, aten op by aten op: the storages it makes, those alive right after each
    op (an instant), and those autograd saves. Training replays run with grad enabled, eval ones without."""

    def __init__(self, ins, mode):
        self.grad_mode, self.device = mode.training, mode.device
        self.inputs = [
            View(_Storage(shape, role=j), shape, grad=mode.training and mode.grads[j]) for j, shape in enumerate(ins)
        ]
        self.held, self.kept, self.params, self.instants = [], [], [], []

    # -- bookkeeping -------------------------------------------------------------------------------------
    def param(self, *shape) -> View:
        """A parameter (requires grad even under no_grad). Saved("weight", shape) names a parameter by its shape,
        so a shape already taken gets leading 1s (the same size) to keep them apart."""
        declared = tuple(shape)
        while declared in [p.shape for p in self.params]:
            declared = (1, *declared)
        self.params.append(_Storage(declared, role="weight"))
        return View(self.params[-1], shape, grad=True)

    def new(self, shape, dtype="float", grad=False, strides=None, snap=True) -> View:
        """The result of an op: a new storage, alive until dropped (and after, while saved)."""
        storage = _Storage(shape, dtype)
        self.held.append(storage)
        if snap:
            self.snap()
        return View(storage, shape, strides, grad and self.grad_mode)

    def snap(self) -> None:
        self.instants.append(tuple(s for s in dict.fromkeys(self.held + self.kept) if s.role == "new"))

    def drop(self, *tensors) -> None:
        """The forward lets go of these storages (the last reference to each died)."""
        for t in tensors:
            if t is not None and t.storage in self.held:
                self.held.remove(t.storage)

    def save(self, *tensors) -> None:
        for t in tensors if self.grad_mode else ():
            if t.storage not in self.kept:
                self.kept.append(t.storage)

    def memory(self, out: View, autocast: str = "lower") -> Memory:
        """The Memory this forward states: saved tensors; scratch: what the busiest instant holds beyond the
        output and the saved tensors, which the planner allocates at the layer anyway."""
        final = [s for s in self.kept if s.role == "new"]
        final += [out.storage] if out.storage not in final else []
        saved = tuple(_saved(s, out.storage) for s in self.kept)
        scratch = list(_scratch(self.instants, final))
        pool = list(scratch)
        for x in saved:  # memory_walk drops a scratch entry equal to a saved tensor (one tensor, it assumes)
            if x.role == "new" and x in pool:
                pool.remove(x)
                scratch.append(x)
        return Memory(saved, tuple(scratch), autocast=autocast, weights=tuple(p.shape for p in self.params))

    # -- aten ops --------------------------------------------------------------------------------------------
    def copy(self, t: View, shape=None, dtype=None) -> View:
        """clone / contiguous / a reshape that cannot view: a new contiguous tensor."""
        return self.new(shape or t.shape, dtype or t.storage.dtype, t.grad)

    def reshape(self, t: View, shape, dtype=None) -> View:
        view = t.viewed(shape)
        return view if view is not None else self.copy(t, shape, dtype)

    def contiguous(self, t: View) -> View:
        return t if t.contiguous() else self.copy(t)

    def free_copy(self, t: View, *originals) -> None:
        """Drop t if it is a temporary copy (not a view of one of the originals)."""
        if all(t.storage is not o.storage for o in originals):
            self.drop(t)

    def mm(self, a: View, b: View, shape, dtype="float") -> View:
        """mm, addmm, bmm, mv, dot: each operand saved when the other requires grad."""
        out = self.new(shape, dtype, a.grad or b.grad)
        if b.grad:
            self.save(a)
        if a.grad:
            self.save(b)
        return out

    def matmul(self, a: View, b: View, dtype="float", copies=None) -> View:
        """torch.matmul (aten/native/LinearAlgebra.cpp _matmul_impl): mm/mv/dot, a fold of the larger operand into
        a matrix (a reshape: a copy when it cannot view), or both expanded to the broadcast batch and bmm.
        copies: the dtype of those copies (default: the operand's)."""
        da, db = len(a.shape), len(b.shape)
        if da <= 2 and db <= 2:
            return self.mm(a, b, a.shape[:-1] + b.shape[1:], dtype)
        if _folds(a, b):
            transpose = db > da
            t1 = b.transpose(-1, -2) if transpose else a
            t2 = (a.transpose(0, 1) if da == 2 else a) if transpose else b
            lead = t1.shape[:-1]
            folded = self.reshape(t1, (dims.product(lead), t1.shape[-1]), copies)
            out = self.mm(folded, t2, (folded.shape[0], *t2.shape[1:]), dtype)
            self.free_copy(folded, t1)
            out = out._as((*lead, *t2.shape[1:]), _contiguous_strides([*t1.sizes[:-1], *t2.sizes[1:]]))
            if not transpose or len(t2.shape) == 1:  # the matrix product of a transposed fold is copied back
                return out
            result = self.copy(out.transpose(-1, -2))
            self.drop(out)
            return result
        n, p = a.shape[-2] if da > 1 else 1, b.shape[-1] if db > 1 else 1
        batch = broadcast([a.shape[: max(da - 2, 0)], b.shape[: max(db - 2, 0)]], IGNORE, "")
        count = dims.product(batch)
        left = self.reshape(a.expand((*batch, n, a.shape[-1])), (count, n, a.shape[-1]), copies)
        if db == 1:
            right = self.reshape(b.expand((*batch, b.shape[0])), (count, b.shape[0]), copies).unsqueeze(2)
        else:
            right = self.reshape(b.expand((*batch, *b.shape[-2:])), (count, *b.shape[-2:]), copies)
        out = self.mm(left, right, (count, n, p), dtype)
        self.free_copy(left, a)
        self.free_copy(right, b)
        return out._as((*batch, *((n,) if da > 1 else ()), *((p,) if db > 1 else ())), None)

    def linear(self, x: View, w: View, b: View | None) -> View:
        """aten::linear: addmm on a 2-D or contiguous 3-D input when there is a bias; else matmul with w.t() (which
        folds a non-contiguous input into a copy), then + bias into a new tensor."""
        wt = w.transpose(0, 1)
        if b is not None and (len(x.shape) == 2 or (len(x.shape) == 3 and x.contiguous())):
            flat = x if len(x.shape) == 2 else x.viewed((x.shape[0] * x.shape[1], x.shape[2]))
            out = self.mm(flat, wt, (flat.shape[0], w.shape[0]))
            return out._as((*x.shape[:-1], w.shape[0]), None)
        out = self.matmul(x, wt)
        if b is None:
            return out
        summed = self.new(out.shape, grad=out.grad or b.grad)
        self.drop(out)
        return summed

    def layer_norm(self, x: View, w: View | None) -> View:
        """native_layer_norm over the last dim: the output and fp32 mean and rstd [..., 1] (freed unless saved);
        saves the input and the statistics (and its weight and bias: parameters, which autocast leaves in fp32)."""
        out = self.new(x.shape, grad=x.grad or w is not None, snap=False)
        stats = (*x.shape[:-1], 1)
        mean, rstd = self.new(stats, "float32", snap=False), self.new(stats, "float32")
        if out.grad:
            self.save(x, mean, rstd)
        self.drop(mean, rstd)
        return out

    def activation(self, x: View, name: str) -> View:
        """F.relu saves its result, F.gelu its input."""
        out = self.new(x.shape, grad=x.grad)
        if out.grad:
            self.save(out if name == "relu" else x)
        return out

    def add(self, a: View, b: View) -> View:
        """a + b: a new tensor, nothing saved."""
        return self.new(a.shape, grad=a.grad or b.grad)

    def dropout(self, x: View, p: float, dtype="float") -> View:
        """Training dropout: x * noise (CPU: scaled noise in x's dtype; CUDA, 0 < p < 1: the fused kernel's bool
        mask); the noise is saved when x requires grad. p = 0: x itself."""
        if not p or not self.grad_mode:
            return x
        if p == 1 or self.device != "cuda":
            noise = self.new(x.shape if p < 1 else (), dtype, strides=_like(x, x.sizes) if p < 1 else None)
            out = self.new(x.shape, dtype, x.grad, _like(x, x.sizes))
        else:
            out = self.new(x.shape, dtype, x.grad, snap=False)
            noise = self.new(x.shape, "bool")
        if x.grad:
            self.save(noise)
        self.drop(noise)
        return out

    def attention(self, q: View, k: View, v: View, p=0.0, causal=False, gqa=False) -> View:
        """F.scaled_dot_product_attention on the CPU: the flash kernel where torch's checks allow it (no dropout,
        4-D inputs of one batch and of the same head size, last dims of stride 1), else the math path. On CUDA
        (not measured here: no GPU) the fused kernels (FlashAttention-2, memory-efficient) also take dropout, as
        torch's SDPA documentation states, and keep the same tensors: kernel-dependent padding of the logsumexp
        and the RNG state are not modelled."""
        grad = q.grad or k.grad or v.grad
        if (not p or self.device == "cuda") and _flash_applies(q, k, v, gqa):
            out = self.new((*q.shape[:-1], v.shape[-1]), grad=grad, strides=_like(q, q.sizes), snap=False)
            lse = self.new(q.shape[:-1], "float32")  # logsumexp, fp32 under autocast too
            if grad:
                self.save(q, k, v, out, lse)
            self.drop(lse)
            return out
        return self._math_attention(q, k, v, p, causal, gqa)

    def _math_attention(self, q, k, v, p, causal, gqa) -> View:
        """sdp::_scaled_dot_product_attention_math: q * sqrt(scale), a float mask for is_causal (ones -> tril ->
        where), k repeated for GQA, k^T * sqrt(scale), q @ k^T (+ mask), softmax, dropout, @ v. Computes in fp32
        (it upcasts bf16/fp16); the result is in the inputs' dtype."""
        scaled_q = self.new(q.shape, "float32", q.grad, _like(q, q.sizes))
        mask = None
        if causal:
            ones = self.new((q.shape[-2], k.shape[-2]), "bool")
            tril = self.new(ones.shape, "bool")
            self.drop(ones)
            scalars = (self.new((), "float32"), self.new((), "float32"))
            mask = self.new(ones.shape, "float32")
            self.drop(tril, *scalars)
        keys, values = k, v
        if gqa and q.sizes[-3] != k.sizes[-3]:
            keys = self.copy(k, (*k.shape[:-3], q.shape[-3], *k.shape[-2:]), "float32")  # repeat_interleave
            values = self.copy(v, (*v.shape[:-3], q.shape[-3], *v.shape[-2:]), "float32")
        kt = keys.transpose(-1, -2)
        scaled_k = self.new(kt.shape, "float32", keys.grad, _like(kt, kt.sizes))
        scores = self.matmul(scaled_q, scaled_k, "float32")
        self.drop(scaled_k)
        if mask is not None:
            masked = self.new(scores.shape, "float32", scores.grad)
            self.drop(scores)
            scores = masked
        probs = self.new(scores.shape, "float32", scores.grad)
        if probs.grad:
            self.save(probs)
        self.drop(scores)
        dropped = self.dropout(probs, p, "float32")
        if dropped is not probs:
            self.drop(probs)
        out = self.matmul(dropped, values, copies="float32")
        self.drop(scaled_q, dropped, mask)
        self.free_copy(keys, k)
        self.free_copy(values, v)
        return out


def _folds(a: View, b: View) -> bool:
    """matmul's should_fold: the larger operand (>= 3-D) against a matrix or vector folds into one matrix: always
    when the smaller requires grad (a copy if need be), else only when that needs no copy."""
    larger = len(a.shape) >= len(b.shape)
    t1 = a if larger else b.transpose(-1, -2)
    if not (len(t1.shape) >= 3 and min(len(a.shape), len(b.shape)) <= 2):
        return False
    if (b if larger else a).grad:
        return True
    if len(a.shape) == 2:
        return False
    return all(t1.strides[i] == t1.strides[i + 1] * t1.sizes[i + 1] for i in range(len(t1.sizes) - 2))


def _flash_applies(q, k, v, gqa: bool) -> bool:
    if not len(q.shape) == len(k.shape) == len(v.shape) == 4:
        return False
    if not q.sizes[0] == k.sizes[0] == v.sizes[0] or not q.sizes[-1] == k.sizes[-1] == v.sizes[-1]:
        return False
    grouped = gqa and k.sizes[1] == v.sizes[1] and q.sizes[1] % k.sizes[1] == 0
    return (q.sizes[1] == k.sizes[1] == v.sizes[1] or grouped) and q.strides[-1] == k.strides[-1] == v.strides[-1] == 1


def _saved(s: _Storage, out: _Storage) -> Saved:
    if s.role == "weight" or isinstance(s.role, int):
        return Saved(s.role, s.shape) if s.role == "weight" else Saved(s.role)
    return Saved("output") if s is out else Saved("new", s.shape, s.dtype)


def _at_least(a, b) -> bool:
    """a >= b for every valid size (False when it depends on the sizes)."""
    d = a + (-1) * b
    if isinstance(d, int):
        return d >= 0
    if type(d).__name__ == "Batch":
        return d.at(1) >= 0 and all(c >= 0 for c in d.coeffs[1:])
    return dims.decide(d >= 0) is True


def is_zero(x) -> bool:
    return x == 0 if isinstance(x, int) else type(x).__name__ != "Batch" and dims.equal(x, 0) is True


def _busiest(instants: list):
    """The instant holding the most bytes: its storages; or, when that depends on the sizes, its bytes (sympy
    Max; with a batch polynomial, the largest at batch 1)."""
    unique = list(dict.fromkeys(frozenset(i) for i in instants))
    candidates = [s for s in unique if not any(s < other for other in unique)]
    totals = [dims.total([x.nbytes() for x in s]) for s in candidates]
    best: list = []
    for i, total in enumerate(totals):
        if any(_at_least(totals[j], total) for j in best):
            continue
        best = [j for j in best if not _at_least(total, totals[j])] + [i]
    if len(best) == 1:
        return [x for x in dict.fromkeys(s for instant in instants for s in instant) if x in candidates[best[0]]]
    values = [totals[i] for i in best]
    if all(isinstance(v, int) or type(v).__name__ == "Batch" for v in values):
        return max(values, key=lambda v: v if isinstance(v, int) else v.at(1))
    return functools.reduce(dims.dmax, values)


def _scratch(instants: list, final: list) -> tuple:
    """The busiest instant's bytes beyond `final`: its other tensors, or where it lacks some of `final` (made
    later), per dtype the elements it holds beyond them (bytes, as uint8, where a dtype would go negative)."""
    if not instants:
        return ()
    peak = _busiest(instants)
    if not isinstance(peak, list):
        return (Saved("new", (peak + (-1) * dims.total([s.nbytes() for s in final]),), "uint8"),)
    extra = [s for s in peak if s not in final]
    missing = [s for s in final if s not in peak]
    if not missing:
        return tuple(Saved("new", s.shape, s.dtype) for s in extra)
    out = []
    for dtype in dict.fromkeys(s.dtype for s in extra + missing):
        count = dims.total([dims.product(s.shape) for s in extra if s.dtype == dtype])
        count = count + (-1) * dims.total([dims.product(s.shape) for s in missing if s.dtype == dtype])
        if not _at_least(count, 0):
            total = dims.total([s.nbytes() for s in extra]) + (-1) * dims.total([s.nbytes() for s in missing])
            return (Saved("new", (total,), "uint8"),)
        if not is_zero(count):
            out.append(Saved("new", (count,), dtype))
    return tuple(out)
