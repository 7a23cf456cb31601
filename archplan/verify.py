"""Build the generated model in torch and compare it, layer by layer, with the analysis.

Shapes come from the generated forward itself: every layer is a named local variable of the forward of
the module that owns it, so a trace function reads them when each forward returns (functional steps such
as add and concat included). Parameters and buffers are counted on the submodule named after the layer;
FLOPs per submodule come from torch's own formulas (torch.utils.flop_counter, 2 FLOPs per multiply-add):
applied by forward hooks to the aten op each leaf module runs, or by FlopCounterMode when functional steps do
arithmetic that hooks cannot see.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .codegen_errors import CodegenError

TORCH_MISSING = "archplan verify needs PyTorch: pip install archplan[torch]"


class TorchMissing(CodegenError):
    def __init__(self):
        super().__init__(TORCH_MISSING)


@dataclass(frozen=True)
class LayerCheck:
    layer: str
    expected_shape: tuple
    actual_shape: tuple | None
    expected_params: int
    actual_params: int | None  # None: a functional step without a module
    expected_buffers: int
    actual_buffers: int | None
    expected_flops: int
    actual_flops: int | None

    @property
    def problems(self) -> list[str]:
        out = []
        if self.actual_shape != self.expected_shape:
            out.append(f"shape {_shape(self.actual_shape)} != predicted {_shape(self.expected_shape)}")
        pairs = (
            ("params", self.expected_params, self.actual_params),
            ("buffers", self.expected_buffers, self.actual_buffers),
            ("FLOPs", self.expected_flops, self.actual_flops),
        )
        for what, want, got in pairs:
            if got is None:
                got = 0 if what != "FLOPs" else None  # a functional step owns nothing; its FLOPs are in the total
            if got is not None and got != want:
                out.append(f"{what} {got:,} != predicted {want:,}")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Report:
    net: str
    sizes: dict
    layers: tuple  # LayerCheck
    totals: tuple  # (what, predicted, measured)

    @property
    def failures(self) -> list:
        return [c for c in self.layers if not c.ok]

    @property
    def total_failures(self) -> list:
        return [t for t in self.totals if t[1] != t[2]]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.total_failures


def _shape(shape) -> str:
    return "missing" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def load_module(source: str, name: str):
    """Import generated model.py text as a fresh module (from a temporary file, for readable tracebacks)."""
    folder = Path(tempfile.mkdtemp(prefix="archplan-verify-"))
    path = folder / "model.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"archplan_generated_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _capture(model, module_classes, inputs, counter: bool):
    """Run the model; returns ({layer: shape} from every generated forward's locals, {layer: FLOPs}, total
    FLOPs, outputs). FLOPs: torch's own formulas (torch.utils.flop_counter) for the aten op each leaf module
    runs, read by forward hooks; or, when functional steps do arithmetic (matmul), FlopCounterMode itself,
    whose first use imports torch._dynamo (over 800 modules, a second or more)."""
    import torch

    codes = {cls.forward.__code__ for cls in module_classes}
    paths = {id(m): name for name, m in model.named_modules()}
    shapes: dict[str, tuple] = {}

    def record(frame, event, arg):  # traces only the generated forwards, and only their return
        if event == "return":
            path = paths.get(id(frame.f_locals.get("self")))
            for local, value in frame.f_locals.items() if path is not None else ():
                if isinstance(value, torch.Tensor):
                    shapes.setdefault(f"{path}.{local}" if path else local, tuple(value.shape))
        return record

    def trace(frame, event, arg):
        return record if frame.f_code in codes else None

    hooks = _FlopHooks(model) if not counter else None
    if counter:
        from torch.utils.flop_counter import FlopCounterMode

        mode = FlopCounterMode(display=False)
    else:
        mode = contextlib.nullcontext()
    previous = sys.gettrace()
    with torch.no_grad(), _math_attention(), mode:
        sys.settrace(trace)
        try:
            outputs = model(*inputs)
        finally:
            sys.settrace(previous)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    if hooks is not None:
        hooks.remove()
        return shapes, hooks.flops, sum(hooks.flops.values()), outputs
    root = type(model).__name__
    counts = mode.get_flop_counts()
    flops = {name: int(sum(counts.get(f"{root}.{name}", {}).values())) for name in paths.values() if name}
    return shapes, flops, int(sum(counts.get("Global", {}).values())), outputs


@contextmanager
def _math_attention():
    """Attention on its math path, whose matmuls torch's counter sees: the fused CPU kernel and the inference
    fast path of nn.MultiheadAttention / nn.TransformerEncoderLayer count 0."""
    import torch

    mha = getattr(torch.backends, "mha", None)
    fastpath = mha.get_fastpath_enabled() if mha is not None else None
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        math = sdpa_kernel(SDPBackend.MATH)
    except ImportError:  # torch < 2.3
        math = contextlib.nullcontext()
    try:
        if mha is not None:
            mha.set_fastpath_enabled(False)
        with math:
            yield
    finally:
        if mha is not None:
            mha.set_fastpath_enabled(fastpath)


class _FlopHooks:
    """FLOPs of every leaf module call, from torch's registered formula for the aten op the module runs."""

    def __init__(self, model):
        self.flops: dict[str, int] = {}
        self.handles = [
            module.register_forward_hook(self.hook(name))
            for name, module in model.named_modules()
            if name and not any(True for _ in module.children())
        ]

    def hook(self, name: str):
        def record(module, args, out):
            self.flops[name] = self.flops.get(name, 0) + _module_flops(module, args, out)

        return record

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _module_flops(module, args, out) -> int:
    from math import prod

    from torch import nn
    from torch.utils import flop_counter as fc

    x = args[0]
    if isinstance(module, nn.modules.conv._ConvNd):  # aten.convolution
        transposed = isinstance(module, nn.modules.conv._ConvTransposeNd)
        return fc.conv_flop_count(list(x.shape), list(module.weight.shape), list(out.shape), transposed=transposed)
    if isinstance(module, nn.Linear):  # aten.addmm (aten.mm without bias) on the input's 2-D view
        return fc.mm_flop([prod(x.shape[:-1]), x.shape[-1]], [module.in_features, module.out_features])
    return 0  # no arithmetic torch's counter counts (norms, activations, pools, reshapes)


def verify(net, values: dict | None = None, seed: int = 0) -> Report:
    """Generate model.py for the net, run it at concrete sizes and compare with the analysis."""
    try:
        import torch
    except ImportError:
        raise TorchMissing() from None
    from . import dims
    from .codegen import generate_sources

    generated = generate_sources(net, values, model_only=True)
    analysis = generated.concrete
    module = load_module(generated.files["model.py"], analysis.graph.name)
    classes = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == module.__name__
    ]
    _check_memory(analysis)
    torch.manual_seed(seed)
    try:
        model = module.build_model().eval()
        inputs = [_example_input(analysis, name) for name in analysis.inputs]
        counter = any(_needs_counter(row, analysis) for row in analysis.layers)
        shapes, flops, total_flops, outputs = _capture(model, classes, inputs, counter)
    except (MemoryError, RuntimeError) as exc:  # allocation failures (the estimate is a bound, not a promise)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CodegenError(f"running the net at {_sizes(generated.sizes.concrete)} failed: {first}") from None
    modules = dict(model.named_modules())
    checks = []
    tensors = dict(model.named_parameters())
    counted: set = set()  # a tied weight counts at the first layer that holds it, as in the analysis
    for row in analysis.layers:
        sub = modules.get(row.name) if row.name in modules and row.name else None
        if sub is None and row.name in tensors:  # a learned tensor (nn.Parameter) is its own layer
            sub = torch.nn.ParameterList([tensors[row.name]])
        own = None if sub is None else [p for p in sub.parameters() if id(p) not in counted]
        counted.update(id(p) for p in own or ())
        checks.append(
            LayerCheck(
                row.name,
                tuple(int(d) for d in row.output_shape),
                shapes.get(row.name),
                int(dims.normalize(row.params)),
                None if own is None else sum(p.numel() for p in own),
                int(dims.normalize(row.buffers)),
                None if sub is None else sum(b.numel() for b in sub.buffers()),
                2 * int(dims.normalize(row.macs)),
                None if sub is None else flops.get(row.name, 0),
            )
        )
    totals = analysis.totals
    measured_out = tuple(tuple(o.shape) for o in outputs)
    predicted_out = tuple(tuple(int(d) for d in s) for s in analysis.outputs.values())
    total_rows = (
        ("params", int(dims.normalize(totals["params"])), sum(p.numel() for p in model.parameters())),
        ("buffers", int(dims.normalize(totals["buffers"])), sum(b.numel() for b in model.buffers())),
        ("FLOPs", int(dims.normalize(totals["flops"])), total_flops),
        ("outputs", predicted_out, measured_out),
    )
    return Report(analysis.graph.name, dict(generated.sizes.concrete), tuple(checks), total_rows)


def _example_input(analysis, name: str):
    """Random values of the input's dtype: floats from N(0, 1), integer ids uniform over their range."""
    import torch

    shape = tuple(int(d) for d in analysis.inputs[name])
    dtype = analysis.graph.input_dtypes.get(name, "float")
    if dtype in ("float", "float32"):
        return torch.randn(shape)
    if dtype in ("float16", "bfloat16", "float64"):
        return torch.randn(shape, dtype=getattr(torch, dtype))
    from . import dims

    high = dims.as_int(analysis.graph.input_ranges.get(name)) or 2  # the concrete net's range is a number
    return torch.randint(0, high, shape, dtype=getattr(torch, dtype))


_HOOKED = ("nn.Conv", "nn.ConvTranspose", "nn.Linear")  # modules whose FLOPs _module_flops computes


def _needs_counter(row, analysis) -> bool:
    """A layer with MACs that hooks cannot count: a functional step in forward (matmul, attention) or a
    module that does its arithmetic through functional calls (nn.MultiheadAttention)."""
    from .ops.base import Module, Tensor

    if not row.macs:
        return False
    emitted = row.node.op.emit(row.node.args, [analysis.shape_of(s) for s in row.node.inputs])
    if isinstance(emitted, Module):
        return not (emitted.base or emitted.ctor).startswith(_HOOKED)
    return not isinstance(emitted, Tensor)


MAX_VERIFY_BYTES = 4 * 2**30  # weights and every activation at float32, held at once in the worst case


def _sizes(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "fixed sizes"


def _check_memory(analysis) -> None:
    """Refuse sizes whose tensors would not fit before torch tries to allocate them."""
    from . import dims

    totals = analysis.totals
    needed = 4 * (int(dims.normalize(totals["activation_elements"])) + int(dims.normalize(totals["params"])))
    needed += 4 * int(dims.normalize(totals["buffers"]))
    if needed > MAX_VERIFY_BYTES:
        raise CodegenError(
            f"verify runs the net once, and at these sizes its weights and activations take {needed / 2**30:,.1f} "
            f"GiB (more than {MAX_VERIFY_BYTES // 2**30} GiB): pass smaller sizes with --set"
        )


def format_report(report: Report, everything: bool = False) -> str:
    """Every layer with `everything`, else only those that differ; the totals always."""
    sizes = _sizes(report.sizes)
    head = ("layer", "shape", "params", "FLOPs", "")
    rows = []
    for c in report.layers:
        if not everything and c.ok:
            continue
        params = "" if c.actual_params is None and not c.expected_params else f"{c.expected_params:,}"
        flops = f"{c.expected_flops:,}" if c.expected_flops or c.actual_flops else ""
        rows.append((c.layer, _shape(c.expected_shape), params, flops, "ok" if c.ok else "; ".join(c.problems)))
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(4)]
    lines = [f"verify {report.net} at {sizes}", ""]
    if rows:
        for r in (head, *rows):
            cells = [str(r[i]).ljust(widths[i]) if i < 2 else str(r[i]).rjust(widths[i]) for i in range(4)]
            lines.append("  ".join(cells) + "  " + r[4])
        lines.append("")
    for what, want, got in report.totals:
        status = "ok" if want == got else f"MISMATCH: torch {got}"
        shown = f"{want:,}" if isinstance(want, int) else ", ".join(_shape(s) for s in want)
        lines.append(f"{what}: {shown} {status}")
    bad = len(report.failures) + len(report.total_failures)
    count = len(report.layers)
    lines.append(
        f"all {count} layers match the analysis" if not bad else f"{len(report.failures)} of {count} layer(s) differ"
    )
    return "\n".join(lines) + "\n"
