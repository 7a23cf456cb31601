"""Build the generated model in torch and compare it, layer by layer, with the analysis.

Shapes come from the generated forward itself: every layer is a named local variable of the forward of
the module that owns it, so a trace function reads them when each forward returns (functional steps such
as add and concat included). Parameters and buffers are counted on the submodule named after the layer;
FLOPs per submodule come from torch's own formulas (torch.utils.flop_counter, 2 FLOPs per multiply-add):
applied by forward hooks to the aten op each leaf module runs, or by FlopCounterMode when functional steps do
arithmetic that hooks cannot see. What is compared comes from verify_expect, which needs no torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import linecache
import sys
import types
from contextlib import contextmanager

from .codegen_errors import CodegenError
from .verify_expect import Expected, expect
from .verify_report import LayerCheck, Report, sizes_text, format_report

__all__ = ["Expected", "Report", "TorchMissing", "expect", "format_report", "measure", "verify"]

TORCH_MISSING = "archplan verify needs PyTorch: pip install archplan[torch]"


class TorchMissing(CodegenError):
    def __init__(self):
        super().__init__(TORCH_MISSING)


def load_module(source: str, name: str):
    """Generated model.py text as a fresh module. No file is written: linecache holds the text, so that
    tracebacks still show its lines."""
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]  # one linecache entry per text
    filename = f"<archplan: model.py of {name}, {digest}>"
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = types.ModuleType(f"archplan_generated_{name}")
    module.__file__ = filename
    exec(code, module.__dict__)
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


# torch.nn.init's random fills; orthogonal_ runs a QR decomposition, kaiming fills of ResNet-50 take 0.2 s
_RANDOM_FILLS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "orthogonal_",
    "sparse_",
)


@contextmanager
def _zero_init():
    """Weights filled with zeros instead of random values while the model is built: shapes, counts and FLOPs
    do not depend on the values. The calls are still checked against each function's signature; the
    generated test_model.py runs the real initialisation."""
    import inspect

    import torch
    from torch.nn import init

    def zero_fill(original):
        signature = inspect.signature(original)

        def fill(*args, **kwargs):
            tensor = signature.bind(*args, **kwargs).arguments["tensor"]  # a wrong argument fails as in torch
            with torch.no_grad():
                return tensor.zero_()

        return fill

    saved = {name: getattr(init, name) for name in _RANDOM_FILLS if hasattr(init, name)}
    try:
        for name, original in saved.items():
            setattr(init, name, zero_fill(original))
        yield
    finally:
        for name, original in saved.items():
            setattr(init, name, original)


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
    require_torch()
    return measure(expect(net, values), seed)


def require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise TorchMissing() from None


def measure(expected: Expected, seed: int = 0) -> Report:
    """Build model.py in torch, run it once on random inputs and compare every layer with `expected`."""
    require_torch()
    import torch

    torch.manual_seed(seed)
    module = load_module(expected.source, expected.net)
    classes = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == module.__name__
    ]
    try:
        with _zero_init():
            model = module.build_model().eval()
        inputs = [_example_input(*spec) for spec in expected.inputs]
        shapes, flops, total_flops, outputs = _capture(model, classes, inputs, expected.needs_counter)
    except (MemoryError, RuntimeError) as exc:  # allocation failures (the estimate is a bound, not a promise)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CodegenError(f"running the net at {sizes_text(expected.sizes)} failed: {first}") from None
    modules = dict(model.named_modules())
    checks = []
    tensors = dict(model.named_parameters())
    counted: set = set()  # a tied weight counts at the first layer that holds it, as in the analysis
    for layer in expected.layers:
        sub = modules.get(layer.name) if layer.name in modules and layer.name else None
        if sub is None and layer.name in tensors:  # a learned tensor (nn.Parameter) is its own layer
            sub = torch.nn.ParameterList([tensors[layer.name]])
        own = None if sub is None else [p for p in sub.parameters() if id(p) not in counted]
        counted.update(id(p) for p in own or ())
        checks.append(
            LayerCheck(
                layer.name,
                layer.shape,
                shapes.get(layer.name),
                layer.params,
                None if own is None else sum(p.numel() for p in own),
                layer.buffers,
                None if sub is None else sum(b.numel() for b in sub.buffers()),
                layer.flops,
                None if sub is None else flops.get(layer.name, 0),
            )
        )
    total_rows = (
        ("params", expected.params, sum(p.numel() for p in model.parameters())),
        ("buffers", expected.buffers, sum(b.numel() for b in model.buffers())),
        ("FLOPs", expected.flops, total_flops),
        ("outputs", expected.outputs, tuple(tuple(o.shape) for o in outputs)),
    )
    return Report(expected.net, dict(expected.sizes), tuple(checks), total_rows)


def _example_input(name: str, shape: tuple, dtype: str, high: int):
    """Random values of the input's dtype: floats from N(0, 1), integer ids uniform over [0, high)."""
    import torch

    if dtype in ("float", "float32"):
        return torch.randn(shape)
    if dtype in ("float16", "bfloat16", "float64"):
        return torch.randn(shape, dtype=getattr(torch, dtype))
    return torch.randint(0, high, shape, dtype=getattr(torch, dtype))
