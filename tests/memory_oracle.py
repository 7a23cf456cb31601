"""Memory oracles: what torch really saves for backward and really keeps alive.

Standalone test utilities (they never import archplan): the training-memory planner's tests compare its
predictions with these measurements, taken on CPU with the installed torch (written against torch 2.13).

API
    saved_for_backward(model, inputs, per_module=True, inputs_require_grad=False, autocast_dtype=None) -> SavedReport
    inference_peak(model, inputs) -> PeakReport
    training_step_peak(model, inputs, optimizer_name, loss_fn=sum, warmup_steps=1) -> StepPeak
    allocator_peak(run) -> (peak, end)      second method: the CPU allocator's own accounting, via the profiler

Conventions
    * Unit: one storage (``tensor.untyped_storage()``), identified by its StorageImpl address while it lives.
      Views share their base's storage; a storage counts once however many ops save it, through whatever
      views, and however often (``x * x`` saves ``x`` twice: counted once).
    * Bytes are the whole storage's ``nbytes()``, not the viewed part: autograd keeps the whole storage alive
      (``fc(x[:, :2])`` keeps all of ``x``). For a contiguous tensor that owns its storage the two agree.
    * saved_for_backward: a training-mode forward (``model.train()``, grad enabled; inputs do not require grad
      unless ``inputs_require_grad``) under ``torch.autograd.graph.saved_tensors_hooks``. Every packed tensor
      is logged; after the forward the graph is walked and every ``_saved_*`` field read, so that the unpack
      hook names the autograd node and field of each save (``ConvolutionBackward0.input``). A
      ``TorchDispatchMode`` alongside names the aten op that allocated each storage. The model's mode and
      buffers (BN running stats) are restored afterwards.
    * Kinds: ``parameter`` and ``buffer`` (the model's own storages: a conv saves its weight, BN saves its
      running stats), ``input`` (the model's inputs), ``param_copy`` (a fresh storage computed from parameters
      only: autocast's cached low-precision weights), ``activation`` (everything else). ``activations`` =
      input + activation: the batch-dependent part; ``inputs`` is reported separately so a planner that does
      not count the input can subtract it. Parameters, buffers and copies are totals of their own.
    * Attribution: each storage goes to the innermost module running when it was *first* saved (forward
      pre/post hooks on every module keep the stack; names are ``named_modules()`` names). Functional ops in
      a container's ``forward`` (add, cat, mul, flatten) belong to that container (``layer1.0`` for a
      residual add); the root module is ``<root>``. ``per_module`` holds activations only and sums to
      ``activations``. A ReLU's output that the next conv also saves belongs to the ReLU (saved first).
      ``per_module=False`` installs no module hooks and attributes everything to ``<root>``.
    * In-place: ``ReLU(inplace=True)`` (also LeakyReLU, ELU) saves its *result*, i.e. the storage it
      overwrote; the conv before it saved its input, not its output, so nothing is lost and the storage
      counts once. ``ReLU6/Hardtanh``, ``SiLU``, ``Hardswish`` need the *original* input, so autograd saves
      ``self.clone()`` before the in-place op (producer ``aten.clone``): in-place saves nothing there. An
      in-place op on a tensor another op saved (``Sigmoid`` then ``ReLU(inplace=True)``) is still counted
      once here; backward then raises "modified by an inplace operation".
    * Integer tensors count at their itemsize: max-pool indices int64 (8 B), embedding indices int64.
    * inference_peak: eval mode, ``torch.no_grad()``, one forward under a ``TorchDispatchMode``. Every output
      of an aten op that its schema does not declare an alias (views, in-place, ``out=``) is a new storage;
      ``weakref.finalize`` on the storage (its Python object lives exactly as long as the StorageImpl) sees
      the free. Cyclic GC is off during the measurement, so frees happen when the last reference dies. Live
      bytes are sampled right after each op's outputs exist (peaks can only occur there). Counted: the
      inputs (live throughout: the caller holds them), every activation, the output. Not counted: parameters,
      buffers, and workspaces a kernel allocates and frees inside itself (CPU oneDNN convolution allocates a
      channel-padded output and reorders weights: ``allocator_peak`` sees them, this oracle does not). Python
      scalars that the argument parser wraps into tensors are counted from the op that takes them. On CPU
      an eval-mode max-pool still runs ``max_pool2d_with_indices``: its int64 indices (8 B per output
      element) are freed at once but are part of the peak (LeNet's peak is at pool1 because of them).
    * training_step_peak: the same tracking over forward, ``loss.backward()`` and ``optimizer.step()`` (CPU
      backward runs on the calling thread, inside the mode). After ``warmup_steps`` untracked steps (so the
      optimizer state exists) and ``zero_grad(set_to_none=True)``. Split at the peak: weights (parameters,
      constant), buffers, gradients (storages that end up as ``.grad``), optimizer state, activations
      (inputs, forward activations, saved tensors, activation gradients, temporaries, the loss).

What torch 2.13 saves on CPU (bytes of non-parameter storages; ``in``/``out`` = numel x itemsize of the
module's input/output, ``s`` = itemsize; W = the weight, counted under ``parameters``)

    module (aten op)                  autograd node: saved fields              activation bytes saved
    Linear (addmm; mm if no bias)     Addmm: mat1 = input as 2-D view,          in     (+ W only when the input
                                        mat2 = W.t() if input requires grad              requires grad)
    Conv1d/2d/3d, depthwise,          Convolution: input, weight (always)      in     (+ W)
      ConvTranspose (convolution)
    ReLU                              Relu: result                              out
    ReLU(inplace=True), LeakyReLU(    Relu/LeakyRelu1/Elu1: result = the        out, shared with the producer's
      inplace), ELU(inplace)            overwritten input storage                      output storage
    LeakyReLU, ELU, ReLU6 (hardtanh)  self                                      in
    SiLU, GELU (both approximations), self                                      in
      Hardswish
    ReLU6/SiLU/Hardswish(inplace)     self = clone of the input                 in     (a fresh storage)
    Sigmoid, Tanh, Softmax,           result                                    out
      LogSoftmax
    MaxPool2d (max_pool2d_with_       self, result1 = indices int64            in + 8 * numel(out)
      indices; also ceil_mode)
    AvgPool2d                         self                                      in
    AdaptiveAvgPool2d(1)              mean over H, W: sizes only                0
    AdaptiveAvgPool2d(k), k != 1      self (even when k >= H)                   in
    Dropout(p > 0), train             Mul: other = scaled noise, input dtype,   numel(in) * s  (p = 0: 0)
                                        input shape (``input * noise``)
    Dropout2d(p > 0), train           Mul: other = noise (N, C, 1, 1)           N * C * s
    BatchNorm2d, train                NativeBatchNorm: input, weight, running_  in + 2 * 4 * C  (+ W, + buffers
                                        mean, running_var, result1 = mean,              running_mean/var)
                                        result2 = invstd (C each, fp32)
    LayerNorm(normalized shape D)     NativeLayerNorm: input, weight, bias,     in + 2 * 4 * numel(in) / numel(D)
                                        mean, rstd (fp32, shape (*lead, 1..))
    GroupNorm(G)                      NativeGroupNorm: input, weight, mean,     in + 2 * 4 * N * G
                                        rstd (N x G, fp32)
    Embedding                         Embedding: indices (int64)                8 * numel(indices)
    Upsample nearest / bilinear       sizes only                                0
    Flatten, view, reshape            sizes only (a view)                       0
    add, sub; x * scalar              nothing                                   0
    cat                               sizes only                                0
    mul, div, matmul of two tensors   the operand(s) the other's grad needs     a + b when both require grad
                                        (SE gate ``y * gate`` saves both)

    A module saves nothing when neither its input nor its parameters require grad (BN(affine=False) on a
    raw input; a ReLU on the raw input). Totals dedupe: ReLU's result and the next conv's input are one
    storage; DenseNet's cat makes a fresh storage that the next BN saves, hence its quadratic memory.

    May differ on CUDA (not measured here: no GPU): BatchNorm goes to cuDNN (``CudnnBatchNormBackward0``),
    which saves the same input, weight, running stats and fp32 mean/invstd (C each) plus ``result3``, a uint8
    reserve-space tensor sized by cuDNN (it does not exist on CPU). Dropout(p in (0, 1)) on CUDA is the fused
    ``native_dropout``, which saves a *bool* mask (1 byte per element; measured here by calling
    ``torch.native_dropout`` on CPU) instead of the CPU's scaled noise at the input's itemsize; Dropout2d is
    not fused and is the same on both. Max-pool saves int64 indices on both. cuDNN convolution saves the same
    input and weight; its workspaces are temporaries, not saved.

Autocast (``torch.autocast("cpu", dtype=torch.bfloat16)``), measured on a conv-BN-ReLU net and ResNet-18
    * conv and linear run in bf16: they save the bf16 cast of their input (the first conv saves a bf16 copy
      of the fp32 input, a fresh ``aten._to_copy`` storage, kind activation; the fp32 input is not saved) and
      the bf16 cast of their weight. Autocast caches those weight casts (leaf tensors that require grad)
      until the context exits, and backward saves them: kind ``param_copy``, 2 bytes per weight element.
      The fp32 weights of conv/linear are then no longer saved.
    * BN takes the bf16 input and saves it in bf16, but keeps fp32 weight, running stats and fp32 mean/invstd.
      ReLU/max-pool outputs are bf16; max-pool indices stay int64.
    * ResNet-18, batch 2, 64x64: activations 3,663,360 B fp32 -> 1,981,952 B bf16 (ratio 0.541, not 0.5:
      int64 indices and fp32 BN statistics do not shrink), plus 23,357,824 B of bf16 weight copies (exactly
      half the fp32 conv + linear weights); saved fp32 parameters drop to the BN weights (19,200 B).

Caching allocator on CUDA (for comparing with ``torch.cuda.max_memory_allocated``): every block is rounded
up to a multiple of 512 B; requests up to 1 MiB come from 2 MiB segments, 1-10 MiB requests from 20 MiB
segments, larger ones from segments rounded to 2 MiB; a large-pool block is split only when the remainder
exceeds 1 MiB, so an allocation can hold up to ~1 MiB more than it asked. ``max_memory_allocated`` is the
peak of the allocated *block* sizes, so it exceeds these storage-exact numbers by the rounding, and adds
cuDNN/cuBLAS workspaces; ``memory_stats()["requested_bytes.all.peak"]`` is the figure without rounding.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

ROOT = "<root>"

INPUT = "input"
ACTIVATION = "activation"
PARAMETER = "parameter"
BUFFER = "buffer"
PARAM_COPY = "param_copy"
GRADIENT = "gradient"
OPTIMIZER_STATE = "optimizer_state"


# -- shared machinery ------------------------------------------------------------------------------------------------


def _key(storage: torch.UntypedStorage) -> int:
    """Identity of a storage (its StorageImpl address): unique among live storages, views share it."""
    return storage._cdata


def _tensors(tree) -> list[torch.Tensor]:
    return [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]


def _storage_keys(tensors) -> set[int]:
    return {_key(t.untyped_storage()) for t in tensors}


def _unique_nbytes(tensors) -> int:
    storages = {_key(t.untyped_storage()): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())


def _fresh_outputs(func, out) -> Iterator[torch.Tensor]:
    """Outputs that the op's schema does not declare as aliases of an input (views, in-place, out=)."""
    returns = func._schema.returns
    outs = out if len(returns) > 1 else (out,)
    for ret, value in zip(returns, outs):
        if ret.alias_info is None:
            yield from _tensors(value)


def _op_name(func) -> str:
    name = str(func)
    return name.removesuffix(".default")


class _ModuleStack:
    """Forward pre/post hooks on every module keep the stack of running modules (by ``named_modules()`` name)."""

    def __init__(self, model: nn.Module):
        self.stack: list[str] = []
        self._handles = []
        for name, module in model.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._pusher(name or ROOT)))
            self._handles.append(module.register_forward_hook(self._pop, always_call=True))

    def _pusher(self, name: str):
        def push(module, args):
            self.stack.append(name)

        return push

    def _pop(self, module, args, output):
        self.stack.pop()

    @property
    def current(self) -> str:
        return self.stack[-1] if self.stack else ROOT

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


@contextmanager
def _module_stack(model: nn.Module) -> Iterator[_ModuleStack]:
    stack = _ModuleStack(model)
    try:
        yield stack
    finally:
        stack.close()


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """No cyclic GC during a measurement: frees then happen exactly when the last reference dies."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _restored(model: nn.Module, train: bool) -> Iterator[None]:
    """Run in train or eval mode, then restore the mode and the buffers (BN running stats, counters)."""
    was_training = model.training
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    model.train(train)
    try:
        yield
    finally:
        model.train(was_training)
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)


def _as_tuple(inputs) -> tuple:
    return inputs if isinstance(inputs, tuple) else (inputs,)


class _Producers(TorchDispatchMode):
    """Names the aten op that allocated each storage during a forward, and spots parameter copies.

    A fresh (non-aliasing) output whose tensor arguments all live in parameter storages (or in earlier parameter
    copies) is a ``param_copy``: autocast's cached low-precision weights are the case in point.
    """

    def __init__(self, param_keys: set[int]):
        super().__init__()
        self.param_keys = param_keys
        self.copy_keys: set[int] = set()
        self.producer: dict[int, str] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        arg_keys = _storage_keys(_tensors((args, kwargs)))
        from_params = bool(arg_keys) and arg_keys <= (self.param_keys | self.copy_keys)
        for tensor in _fresh_outputs(func, out):
            key = _key(tensor.untyped_storage())
            self.producer[key] = _op_name(func)
            if from_params:
                self.copy_keys.add(key)
            else:
                self.copy_keys.discard(key)
        return out


# -- 1. what autograd saves ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedStorage:
    """One storage that autograd saved for backward, counted once however often and through whatever views."""

    kind: str  # input | activation | parameter | buffer | param_copy
    nbytes: int  # the whole storage: torch keeps all of it alive
    dtype: torch.dtype
    shape: tuple[int, ...]  # of the first tensor saved in this storage
    module: str  # innermost module running when it was first saved
    producer: str  # aten op that allocated it, or its kind for pre-existing storages
    saved_by: tuple[tuple[str, str], ...]  # (module, "NodeName.field") for every save, in order

    @property
    def numel(self) -> int:
        return self.nbytes // self.dtype.itemsize


@dataclass(frozen=True)
class SavedReport:
    activations: int  # kinds input + activation: what scales with the batch
    inputs: int  # the part of ``activations`` that is the model's own inputs
    parameters: int
    buffers: int
    param_copies: int
    per_module: dict[str, int]  # activations by first-saving module; sums to ``activations``
    storages: tuple[SavedStorage, ...]

    @property
    def total(self) -> int:
        return self.activations + self.parameters + self.buffers + self.param_copies

    def saves(self) -> list[tuple[str, torch.dtype, tuple[int, ...], int, str]]:
        """Flat ``(NodeName.field, dtype, shape, storage bytes, kind)`` per saving, for tests and debugging."""
        return [(field, s.dtype, s.shape, s.nbytes, s.kind) for s in self.storages for _, field in s.saved_by]


class _SaveLog:
    """Pack/unpack hooks that log every save; unpacking during the graph walk names the saving node."""

    def __init__(self, modules: _ModuleStack | None):
        self.modules = modules
        self.tensors: list[torch.Tensor] = []  # packed tensors (autograd would hold them just the same)
        self.pack_module: list[str] = []
        self.unpacked: list[int] = []

    def pack(self, tensor: torch.Tensor) -> int:
        self.tensors.append(tensor)
        self.pack_module.append(self.modules.current if self.modules else ROOT)
        return len(self.tensors) - 1

    def unpack(self, index: int) -> torch.Tensor:
        self.unpacked.append(index)
        return self.tensors[index]

    def saving_fields(self, outputs: Sequence[torch.Tensor]) -> dict[int, str]:
        """Walk the graph from ``outputs``; read every ``_saved_*`` field to learn which pack it was."""
        fields: dict[int, str] = {}
        seen: set = set()
        todo = [t.grad_fn for t in outputs if t.grad_fn is not None]
        while todo:
            node = todo.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            for attr in dir(node):
                if not attr.startswith("_saved_"):
                    continue
                self.unpacked.clear()
                try:
                    getattr(node, attr)
                except RuntimeError:  # a field already freed; cannot happen before backward, but be safe
                    continue
                for index in self.unpacked:
                    fields.setdefault(index, f"{node.name()}.{attr.removeprefix('_saved_')}")
            todo.extend(next_node for next_node, _ in node.next_functions)
        self.unpacked.clear()
        return fields


def saved_for_backward(
    model: nn.Module,
    inputs,
    per_module: bool = True,
    inputs_require_grad: bool = False,
    autocast_dtype: torch.dtype | None = None,
) -> SavedReport:
    """Bytes of the unique storages autograd saves during one training-mode forward of ``model(*inputs)``."""
    inputs = _as_tuple(inputs)
    if inputs_require_grad:
        inputs = tuple(t.detach().requires_grad_() if t.is_floating_point() else t for t in inputs)
    param_keys = _storage_keys(model.parameters())
    buffer_keys = _storage_keys(model.buffers())
    input_keys = _storage_keys(_tensors(inputs))
    with ExitStack() as stack:
        stack.enter_context(_quiet_gc())
        stack.enter_context(_restored(model, train=True))
        stack.enter_context(torch.enable_grad())
        modules = stack.enter_context(_module_stack(model)) if per_module else None
        log = _SaveLog(modules)
        producers = _Producers(param_keys)
        stack.enter_context(torch.autograd.graph.saved_tensors_hooks(log.pack, log.unpack))
        if autocast_dtype is not None:
            stack.enter_context(torch.autocast("cpu", dtype=autocast_dtype))
        with producers:
            outputs = _tensors(model(*inputs))
        fields = log.saving_fields(outputs)
        storages = _collect(log, fields, producers, param_keys, buffer_keys, input_keys)
        log.tensors.clear()  # break the packed-list <-> graph cycle before the graph dies
    return _saved_report(storages)


def _collect(log: _SaveLog, fields, producers: _Producers, param_keys, buffer_keys, input_keys) -> list[SavedStorage]:
    first: dict[int, int] = {}  # storage key -> first pack index
    saves: dict[int, list[tuple[str, str]]] = {}
    for index, tensor in enumerate(log.tensors):
        key = _key(tensor.untyped_storage())
        first.setdefault(key, index)
        saves.setdefault(key, []).append((log.pack_module[index], fields.get(index, "?")))
    storages = []
    for key, index in first.items():
        tensor = log.tensors[index]
        if key in param_keys:
            kind, producer = PARAMETER, PARAMETER
        elif key in buffer_keys:
            kind, producer = BUFFER, BUFFER
        elif key in input_keys:
            kind, producer = INPUT, INPUT
        else:
            kind = PARAM_COPY if key in producers.copy_keys else ACTIVATION
            producer = producers.producer.get(key, "?")
        storages.append(
            SavedStorage(
                kind=kind,
                nbytes=tensor.untyped_storage().nbytes(),
                dtype=tensor.dtype,
                shape=tuple(tensor.shape),
                module=log.pack_module[index],
                producer=producer,
                saved_by=tuple(saves[key]),
            )
        )
    return storages


def _saved_report(storages: list[SavedStorage]) -> SavedReport:
    def total(*kinds: str) -> int:
        return sum(s.nbytes for s in storages if s.kind in kinds)

    per_module: dict[str, int] = {}
    for s in storages:
        if s.kind in (INPUT, ACTIVATION):
            per_module[s.module] = per_module.get(s.module, 0) + s.nbytes
    return SavedReport(
        activations=total(INPUT, ACTIVATION),
        inputs=total(INPUT),
        parameters=total(PARAMETER),
        buffers=total(BUFFER),
        param_copies=total(PARAM_COPY),
        per_module=per_module,
        storages=tuple(storages),
    )


# -- 2./3. live bytes over time --------------------------------------------------------------------------------------


class _Alloc:
    __slots__ = ("key", "nbytes", "label", "start", "end")

    def __init__(self, key: int, nbytes: int, label: str, start: int):
        self.key, self.nbytes, self.label, self.start = key, nbytes, label, start
        self.end: int | None = None  # index of the op window in which it was freed; None: alive at the end


class _AllocationTracker(TorchDispatchMode):
    """Every fresh output storage of every aten op is an allocation; ``weakref.finalize`` on the storage (whose
    Python object lives exactly as long as the StorageImpl) observes its free."""

    def __init__(self, ignore: set[int], modules: _ModuleStack | None):
        super().__init__()
        self.ignore = ignore
        self.modules = modules
        self.live: dict[int, _Alloc] = {}
        self.allocs: list[_Alloc] = []
        self.ops: list[tuple[str, str]] = []
        self._finalizers: list[weakref.finalize] = []

    def adopt(self, tensors, label: str) -> None:
        """Register storages that exist before the measurement (inputs, optimizer state) as live from the start."""
        for tensor in tensors:
            self._register(tensor.untyped_storage(), label, -1)

    def _register(self, storage: torch.UntypedStorage, label: str, start: int) -> None:
        key = _key(storage)
        if key in self.ignore or key in self.live:
            return
        alloc = _Alloc(key, storage.nbytes(), label, start)
        self.live[key] = alloc
        self.allocs.append(alloc)
        self._finalizers.append(weakref.finalize(storage, self._freed, alloc))

    def _freed(self, alloc: _Alloc) -> None:
        alloc.end = len(self.ops) - 1
        del self.live[alloc.key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        index = len(self.ops)
        self.ops.append((_op_name(func), self.modules.current if self.modules else ROOT))
        for tensor in _tensors((args, kwargs)):  # e.g. Python scalars the argument parser wrapped into tensors
            self._register(tensor.untyped_storage(), ACTIVATION, index)
        out = func(*args, **(kwargs or {}))
        for tensor in _fresh_outputs(func, out):
            self._register(tensor.untyped_storage(), ACTIVATION, index)
        return out

    def close(self) -> None:
        for finalizer in self._finalizers:
            finalizer.detach()

    def curves(self, label_of: Callable[[_Alloc], str]) -> dict[str, list[int]]:
        """Live bytes per label at instant -1 (before the first op) and right after each op's outputs exist.

        An allocation made by op ``start`` and freed in the window after op ``end`` is live at instants
        ``start .. end``; one freed before any op (end -1) is live only at instant -1.
        """
        n = len(self.ops) + 2
        deltas: dict[str, list[int]] = {}
        for alloc in self.allocs:
            delta = deltas.setdefault(label_of(alloc), [0] * n)
            delta[alloc.start + 1] += alloc.nbytes
            if alloc.end is not None:
                delta[alloc.end + 2] -= alloc.nbytes
        curves = {}
        for label, delta in deltas.items():
            running, curve = 0, []
            for d in delta[:-1]:
                running += d
                curve.append(running)
            curves[label] = curve
        return curves


@contextmanager
def _tracking(model: nn.Module, ignore: set[int], per_module: bool = True) -> Iterator[_AllocationTracker]:
    with ExitStack() as stack:
        stack.enter_context(_quiet_gc())
        modules = stack.enter_context(_module_stack(model)) if per_module else None
        tracker = _AllocationTracker(ignore, modules)
        stack.callback(tracker.close)
        yield tracker


@dataclass(frozen=True)
class OpEvent:
    index: int
    op: str  # aten op, e.g. "aten.convolution"
    module: str  # innermost running module
    allocated: int  # bytes of fresh storages this op created
    live: int  # live activation bytes (inputs included) right after this op's outputs exist


@dataclass(frozen=True)
class PeakReport:
    peak: int  # max live activation bytes, inputs included, parameters and buffers excluded
    peak_index: int  # op at which it is reached (-1: before the first op)
    inputs: int  # bytes of the model inputs, live throughout (the caller holds them)
    final: int  # live once the forward has returned: inputs + outputs + anything the model kept
    timeline: tuple[OpEvent, ...]

    @property
    def peak_op(self) -> OpEvent | None:
        return self.timeline[self.peak_index] if self.peak_index >= 0 else None


def inference_peak(model: nn.Module, inputs, per_module: bool = True) -> PeakReport:
    """Peak live activation bytes of one ``torch.no_grad()`` eval-mode forward, at aten-op granularity.
    ``per_module=False`` installs no module hooks (ops are attributed to ``<root>``): nn.TransformerEncoderLayer
    takes its fused eval path only when no hooks are attached to it."""
    inputs = _as_tuple(inputs)
    ignore = _storage_keys(model.parameters()) | _storage_keys(model.buffers())
    with _restored(model, train=False), torch.no_grad(), _tracking(model, ignore, per_module) as tracker:
        tracker.adopt(_tensors(inputs), INPUT)
        with tracker:
            output = model(*inputs)
        curve = tracker.curves(lambda alloc: ACTIVATION)[ACTIVATION]
        allocated = [0] * len(tracker.ops)
        for alloc in tracker.allocs:
            if alloc.start >= 0:
                allocated[alloc.start] += alloc.nbytes
        timeline = tuple(
            OpEvent(i, op, module, allocated[i], curve[i + 1]) for i, (op, module) in enumerate(tracker.ops)
        )
        final = sum(alloc.nbytes for alloc in tracker.allocs if alloc.end is None)
        del output
    peak = max(curve)
    return PeakReport(
        peak=peak,
        peak_index=curve.index(peak) - 1,
        inputs=_unique_nbytes(_tensors(inputs)),
        final=final,
        timeline=timeline,
    )


# -- 3. one training step -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepPeak:
    peak: int  # max over the step of weights + buffers + gradients + optimizer state + activations
    weights: int  # at the peak (constant: parameters are updated in place)
    buffers: int
    gradients: int
    optimizer_state: int
    activations: int  # inputs, forward activations, saved tensors, backward temporaries, loss
    peak_index: int
    peak_op: str
    phase: str  # forward | backward | step: where the peak is reached


OPTIMIZERS: dict[str, Callable[[list[nn.Parameter]], torch.optim.Optimizer]] = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.01, foreach=False),
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, foreach=False),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=False),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-3, foreach=False),
}


def training_step_peak(
    model: nn.Module,
    inputs,
    optimizer_name: str,
    loss_fn: Callable[[torch.Tensor], torch.Tensor] = lambda out: out.sum(),
    warmup_steps: int = 1,
) -> StepPeak:
    """Peak live bytes of one steady-state step: forward, ``loss.backward()``, ``optimizer.step()``.

    ``warmup_steps`` untracked steps first create the optimizer state; gradients are set to None before the
    measured step (``zero_grad()``'s default). ``out`` and ``loss`` stay referenced until after the step, as in
    the usual loop. The model's parameters and buffers are changed by the steps.
    """
    inputs = _as_tuple(inputs)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = OPTIMIZERS[optimizer_name](params)
    model.train()
    for _ in range(warmup_steps):
        loss_fn(model(*inputs)).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    state = [t for s in optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
    ignore = _storage_keys(model.parameters()) | _storage_keys(model.buffers())
    marks: dict[str, int] = {}
    with _tracking(model, ignore) as tracker:
        tracker.adopt(_tensors(inputs), INPUT)
        tracker.adopt(state, OPTIMIZER_STATE)
        with tracker:
            out = model(*inputs)
            loss = loss_fn(out)
            marks["backward"] = len(tracker.ops)
            loss.backward()
            marks["step"] = len(tracker.ops)
            optimizer.step()
        grad_keys = _storage_keys(p.grad for p in params if p.grad is not None)
        state_keys = _storage_keys(t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t))
        del out, loss

        def label_of(alloc: _Alloc) -> str:
            if alloc.label == OPTIMIZER_STATE or (alloc.end is None and alloc.key in state_keys):
                return OPTIMIZER_STATE
            if alloc.end is None and alloc.key in grad_keys:
                return GRADIENT
            return ACTIVATION

        curves = tracker.curves(label_of)
        ops = list(tracker.ops)
    weights = _unique_nbytes(model.parameters())
    buffers = _unique_nbytes(model.buffers())
    n = len(ops) + 1
    zero = [0] * n
    totals = [weights + buffers + sum(curves.get(k, zero)[i] for k in curves) for i in range(n)]
    peak = max(totals)
    at = totals.index(peak)
    index = at - 1
    phase = "forward" if index < marks["backward"] else "backward" if index < marks["step"] else "step"
    return StepPeak(
        peak=peak,
        weights=weights,
        buffers=buffers,
        gradients=curves.get(GRADIENT, zero)[at],
        optimizer_state=curves.get(OPTIMIZER_STATE, zero)[at],
        activations=curves.get(ACTIVATION, zero)[at],
        peak_index=index,
        peak_op=ops[index][0] if index >= 0 else "",
        phase=phase,
    )


# -- a second method -------------------------------------------------------------------------------------------------


def allocator_peak(run: Callable[[], object]) -> tuple[int, int]:
    """``(peak, end)`` bytes of the CPU allocator above its level at the start of ``run()``, from the profiler's
    memory events. It sees every allocation, kernel workspaces included, so it bounds the dispatch-level oracles
    from above and equals them where kernels allocate nothing but their outputs."""
    from torch.profiler import ProfilerActivity, profile

    with _quiet_gc(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    level = peak = 0
    for event in events:
        level += event.nbytes()
        peak = max(peak, level)
    return peak, level
