"""Torch models for the memory planner's tests: the generated model of a net, and a runner that executes the
analysed graph with that model's modules, dropping each tensor as soon as its last consumer has run.

The generated forward keeps every intermediate in a local until it returns; the planner's inference peak (and its
training forward) free a tensor after its last consumer, so the runner is the torch model whose measured peak the
planner predicts. Saved-for-backward bytes do not depend on lifetimes: the generated model is measured for those
(its module names are the layer names). Layers are run exactly as the generated code runs them: leaf modules by
their name (helper classes such as Conv2dSame included), functional steps by the op's own emission template.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import archplan
from archplan.codegen import generate_sources
from archplan.ops.base import Expression, Tensor
from archplan.verify import load_module

ROOT = Path(__file__).resolve().parents[1]

# example -> (H = W at which it is measured, batch 2): the sizes of tests/test_memory_oracle.py's NETS
SIZES = {
    "lenet": 28,
    "resnet18": 64,
    "resnet50": 64,
    "unet": 64,
    "mobilenet_v2": 64,
    "efficientnet_b0": 64,
    "densenet121": 64,
    "googlenet": 64,
    "squeezenet1_1": 64,
    "vgg16": 32,
}


def example(name: str):
    """(net, values): the example at its test size (a fixed 224x224 input becomes HxW; U-Net's H, W are set)."""
    hw = SIZES[name]
    text = (ROOT / "examples" / f"{name}.yaml").read_text().replace("224, 224]", f"{hw}, {hw}]")
    values = {"H": hw, "W": hw} if name == "unet" else {}
    return archplan.loads(text, f"{name}.yaml"), values


def generated_model(net, values: dict, batch: int = 2, seed: int = 0) -> nn.Module:
    files = generate_sources(net, {**values, "N": batch}).files
    module = load_module(files["model.py"], (net.spec.name if net.spec else "net") + f"_{seed}")
    torch.manual_seed(seed)
    return module.build_model()


def inputs_for(result, batch: int = 2, seed: int = 1) -> tuple:
    """Random inputs at the batch: normal floats, or token ids in [0, range) for an integer input (0 without a
    range)."""
    from archplan import dims

    generator = torch.Generator().manual_seed(seed)
    out = []
    for name, shape in result.inputs.items():
        size = [batch, *[int(dims.as_int(d)) for d in shape[1:]]]
        dtype = result.graph.input_dtypes.get(name)
        if dtype in ("int64", "int32"):
            high = dims.as_int(result.graph.input_ranges.get(name)) or 1
            out.append(torch.randint(high, size, generator=generator, dtype=getattr(torch, dtype)))
        else:
            out.append(torch.randn(*size, generator=generator))
    return tuple(out)


class GraphRunner(nn.Module):
    """Runs `result`'s graph (an analysis at concrete sizes: emissions may print them) with `model`'s modules; a
    tensor is dropped right after its last consumer, a tensor nobody consumes right after it is made (outputs are
    returned)."""

    def __init__(self, model: nn.Module, result):
        super().__init__()
        self.net = model
        last_user = {}
        for row in result.layers:
            for source in row.node.inputs:
                last_user[source] = row.name
        keep = set(result.outputs)
        self.steps = []
        for row in result.layers:
            node = row.node
            emitted = node.op.emit(node.args, [result.shape_of(s) for s in node.inputs])
            done = [s for s in dict.fromkeys(node.inputs) if last_user.get(s) == node.name and s not in keep]
            done = [s for s in done if s not in result.inputs]  # the caller holds the inputs
            self.steps.append(
                (node.name, tuple(node.inputs), emitted, tuple(done), node.name in last_user or node.name in keep)
            )
        self.input_names, self.output_names = list(result.inputs), list(result.outputs)

    def forward(self, *xs):
        values = dict(zip(self.input_names, xs))
        for name, sources, emitted, done, kept in self.steps:
            out = self._run(name, [values[s] for s in sources], emitted)
            for source in done:
                del values[source]
            if kept:
                values[name] = out
            del out
        outputs = tuple(values[name] for name in self.output_names)
        del values
        return outputs[0] if len(outputs) == 1 else outputs

    def _run(self, name: str, args: list, emitted):
        names = {f"x{i}": value for i, value in enumerate(args)}
        del args
        if isinstance(emitted, Tensor):
            return self.net.get_parameter(name)
        if isinstance(emitted, Expression):
            kwargs = {key: repr(value) for key, value in emitted.kwargs}
            text = emitted.template.format(*names, all=", ".join(names), **kwargs)
            scope = {"torch": torch, "F": F, "nn": nn, "self": self}  # as in a generated forward
            return eval(text, scope, names)  # our own emission template, not user text
        call = getattr(emitted, "call", "{module}({inputs})")
        text = call.format(*names, module="module", inputs=", ".join(names))
        return eval(text, {"module": self.net.get_submodule(name)}, names)
