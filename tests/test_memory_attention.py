"""Memory rules of the token and attention ops (archplan/ops/embedding.py, attention.py, transformer.py) against
torch 2.13 on CPU: tests/memory_oracle.py measures, the planner (archplan/memory.py) predicts.

- each op alone (embedding and positions, matmul, scaled_dot_product_attention, multiheadattention, the
  transformer layers) over shapes and flags: saved-for-backward bytes of a training forward and the inference
  peak of an eval forward exactly in fp32, saved bytes and autocast's weight copies under CPU bf16 autocast;
- the token examples: byte_gpt, vit_b_16 at 32x32 and gpt2_small at a short context: saved bytes (per module
  too) and inference peaks exact, training peaks within test_memory.py's tolerance (0.1%).

Eval forwards are measured without module hooks (inference_peak(per_module=False)): nn.TransformerEncoderLayer
takes its fused path only when no hooks are attached, and the planner predicts what runs without them.

One limit is known and checked as such: under autocast SDPA's math path (dropout in training, 3-D inputs, ...)
upcasts to fp32 and saves an fp32 copy of v, which the planner cannot tell from fp32 training (Op.memory does
not see the autocast mode): it counts v at the cast's bf16 size (or, in multi-head attention, the bf16 packed
projection v is a view of). Those cases are exact up to half of that copy's bytes, and exact without one.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import archplan  # noqa: E402
from archplan import dims  # noqa: E402
from archplan.memory import Options, plan  # noqa: E402
from memory_oracle import inference_peak, saved_for_backward, training_step_peak  # noqa: E402
from memory_runner import ROOT, GraphRunner, generated_model  # noqa: E402
from test_memory import at2, per_module  # noqa: E402

CPU, BF16 = Options(device="cpu"), Options(device="cpu", amp="bf16")
TOLERANCE = 0.001  # test_memory.py's, for training peaks


def net_of(inputs: dict, *layers: str, symbols: str = "") -> archplan.Net:
    """A net file from its inputs (name -> shape text) and layers (flow-style YAML)."""
    text = "archplan: 1\nname: probe\n" + (f"symbols: {symbols}\n" if symbols else "")
    text += "inputs:\n" + "".join(f"  {k}: {v}\n" for k, v in inputs.items())
    text += "layers:\n" + "".join(f"  - {layer}\n" for layer in layers)
    return archplan.loads(text, "probe.yaml")


def inputs_of(result, seed: int = 1) -> tuple:
    """Random inputs at the sizes of a concrete analysis: normal floats, token ids below the input's range."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for name, shape in result.inputs.items():
        size = [dims.as_int(d) for d in shape]
        if result.graph.input_dtypes.get(name) == "int64":
            out.append(torch.randint(dims.as_int(result.graph.input_ranges[name]), size, generator=generator))
        else:
            out.append(torch.randn(*size, generator=generator))
    return tuple(out)


def by_layer(measured: dict, result) -> dict:
    """The oracle's per-module bytes with a layer's submodules (a transformer layer's norm1, linear1, ...) summed
    into the layer: the planner states one rule per layer."""
    layers = {row.name for row in result.layers}
    out: dict = {}
    for module, nbytes in measured.items():
        owner = max((name for name in layers if module.startswith(name + ".")), key=len, default=module)
        out[owner] = out.get(owner, 0) + nbytes
    return out


def fp32_exact(net, values: dict | None = None, modules: bool = True) -> None:
    """Saved bytes (in total, of the net's inputs and per module) and the inference peak, planned = measured."""
    values = {**(values or {}), "N": 2}
    result = net.analyze(values)
    assert result.ok, result.errors
    memory = plan(result, CPU)
    assert memory.unruled == []
    model = generated_model(net, {k: v for k, v in values.items() if k != "N"})
    x = inputs_of(result)
    report = saved_for_backward(model, x)
    assert memory.totals["saved_activations"] == report.activations
    assert memory.totals["saved_inputs"] == report.inputs
    if modules:
        assert per_module(result, memory) == by_layer(report.per_module, result)
    runner = GraphRunner(model, result)
    inference_peak(runner, x, per_module=False)  # the first measurement of a model can keep a tensor alive
    assert memory.peak_at(2, inference=True) == inference_peak(runner, x, per_module=False).peak


def bf16_exact(net, values: dict | None = None) -> None:
    """Under CPU bf16 autocast: weight copies exact; saved bytes exact but for the math path's fp32 copy of v
    (the module docstring's limit), which must then explain the whole difference."""
    values = {**(values or {}), "N": 2}
    result = net.analyze(values)
    memory = plan(result, BF16)
    model = generated_model(net, {k: v for k, v in values.items() if k != "N"})
    report = saved_for_backward(model, inputs_of(result), autocast_dtype=torch.bfloat16)
    assert memory.totals["weight_copies"] == report.param_copies
    upcast = sum(s.nbytes for s in report.storages if s.producer == "aten._to_copy" and s.dtype == torch.float32)
    assert abs(memory.totals["saved_activations"] - report.activations) <= upcast // 2
    if not upcast:
        assert memory.totals["saved_activations"] == report.activations


def shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def op_net(op: str, shapes: dict, grads, **args) -> archplan.Net:
    """`op` over the inputs (name -> shape); an input whose grads flag is set goes through a Linear first (so it
    requires grad, as a layer's output does), the others are the net's raw inputs."""
    layers, names = [], []
    for (name, shape), grad in zip(shapes.items(), grads):
        if grad:
            layers.append(f"{{name: {name}_proj, op: linear, in: {name}, out_features: {shape[-1]}}}")
        names.append(f"{name}_proj" if grad else name)
    flags = "".join(f", {k}: {str(v).lower()}" for k, v in args.items())
    layers.append(f"{{name: probe, op: {op}, in: [{', '.join(names)}]{flags}}}")
    return net_of({name: shape_text(shape) for name, shape in shapes.items()}, *layers)


# -- embedding and positions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding_idx", [None, 0])
def test_embedding_saves_its_int64_ids_and_positions_nothing(padding_idx):
    pad = "" if padding_idx is None else f", padding_idx: {padding_idx}"
    net = net_of(
        {"tokens": "{shape: [N, 5], dtype: int64, range: 11}"},
        f"{{name: wte, op: embedding, num_embeddings: 11, embedding_dim: 6{pad}}}",
        "{name: positions, op: positions, in: tokens}",
        "{name: wpe, op: embedding, num_embeddings: 5, embedding_dim: 6}",
        "{name: embedded, op: add, in: [wte, wpe]}",
        "{name: head, op: linear, out_features: 3}",
    )
    memory = plan(net.analyze({"N": 2}), CPU)
    by_layer = {layer.name: layer.saved for layer in memory.layers}
    assert (by_layer["wte"], by_layer["positions"], by_layer["wpe"]) == (2 * 5 * 8, 0, 5 * 8)  # int64 ids
    fp32_exact(net)
    bf16_exact(net)


# -- matmul -----------------------------------------------------------------------------------------------------
sizes = st.integers(1, 3)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    a=st.lists(sizes, min_size=1, max_size=4),
    b=st.lists(sizes, min_size=1, max_size=4),
    inner=st.integers(1, 4),
    grads=st.tuples(st.booleans(), st.booleans()),
)
def test_matmul(a, b, inner, grads):
    """Every branch of torch.matmul (dot, mv, mm, folding, broadcast bmm with copies), either operand requiring
    grad or not; the first operand leads with the batch N."""
    a = ["N", *a[:-1], inner]
    b = [*b[:-2], inner, b[-1]] if len(b) >= 2 else [inner]
    try:
        torch.matmul(torch.zeros(*[2 if d == "N" else d for d in a]), torch.zeros(*b))
    except RuntimeError:
        assume(False)
    net = op_net("matmul", {"a": a, "b": b}, grads)
    fp32_exact(net)
    bf16_exact(net)


# -- scaled dot-product attention -------------------------------------------------------------------------------
FOUR = {"q": ["N", 4, 6, 8], "k": ["N", 4, 7, 8], "v": ["N", 4, 7, 8]}
SDPA_SHAPES = {
    "4-D": FOUR,  # the flash kernel without dropout
    "3-D": {"q": ["N", 6, 8], "k": ["N", 7, 8], "v": ["N", 7, 8]},  # the math path
    "GQA": {"q": ["N", 4, 6, 8], "k": ["N", 2, 7, 8], "v": ["N", 2, 7, 8]},
    "d_v": {**FOUR, "v": ["N", 4, 7, 5]},  # a head size of v of its own: the math path
    "broadcast": {"q": ["N", 4, 6, 8], "k": [4, 7, 8], "v": [4, 7, 8]},  # k, v expanded over the batch: copies
}
SDPA_FLAGS = [{}, {"is_causal": True}, {"dropout_p": 0.1}, {"is_causal": True, "dropout_p": 0.2}]
GRADS = [(1, 1, 1), (1, 0, 0), (0, 0, 1)]


def sdpa_case(shape: str, flags: dict, grads) -> None:
    gqa = {"enable_gqa": True} if shape == "GQA" else {}
    net = op_net("scaled_dot_product_attention", SDPA_SHAPES[shape], grads, **flags, **gqa)
    fp32_exact(net)
    bf16_exact(net)


@pytest.mark.parametrize(
    "shape, flags, grads",
    [
        ("4-D", {}, (1, 1, 1)),
        ("4-D", {"dropout_p": 0.1}, (1, 1, 1)),
        ("4-D", {"is_causal": True, "dropout_p": 0.2}, (1, 0, 0)),
        ("3-D", {"is_causal": True}, (1, 1, 1)),
        ("3-D", {"dropout_p": 0.1}, (0, 0, 1)),
        ("GQA", {"is_causal": True}, (1, 1, 1)),
        ("GQA", {"dropout_p": 0.1}, (1, 1, 1)),
        ("d_v", {}, (1, 0, 0)),
        ("broadcast", {"dropout_p": 0.1}, (1, 1, 1)),
    ],
)
def test_scaled_dot_product_attention(shape, flags, grads):
    sdpa_case(shape, flags, grads)


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(SDPA_SHAPES))
@pytest.mark.parametrize("flags", SDPA_FLAGS)
@pytest.mark.parametrize("grads", GRADS)
def test_scaled_dot_product_attention_every_case(shape, flags, grads):
    sdpa_case(shape, flags, grads)


# -- multi-head attention ---------------------------------------------------------------------------------------
def mha_case(inputs: int, grad: bool, batch_first: bool = True, memory=8, value=None, **flags) -> None:
    """nn.MultiheadAttention over one input (self-attention), [query, memory] or [query, key, value]."""
    seq = (lambda length, width: ["N", length, width]) if batch_first else (lambda length, width: [length, "N", width])
    shapes = {"x": seq(6, 8), "m": seq(7, memory), "w": seq(7, value or memory)}
    shapes = dict(list(shapes.items())[:inputs])
    args = {"num_heads": 2, **flags} if batch_first else {"num_heads": 2, "batch_first": False, **flags}
    net = op_net("multiheadattention", shapes, (grad,) * inputs, **args)
    fp32_exact(net)
    bf16_exact(net)


MHA_CASES = [
    (1, True, True, {}),  # eval: torch's fused kernel
    (1, True, True, {"dropout": 0.1}),  # training: the math path
    (1, True, True, {"is_causal": True}),  # the causal helper: a float mask, no fused eval kernel
    (1, False, True, {"is_causal": True, "dropout": 0.1}),
    (1, True, True, {"num_heads": 1}),  # odd heads: no fused kernel
    (1, True, True, {"bias": False}),
    (1, True, False, {"dropout": 0.2}),  # [L, N, E]: the input is saved, not a copy
    (2, True, True, {}),  # k is v: a packed [2, S, N, E] projection
    (2, False, True, {"dropout": 0.1}),
    (3, True, True, {"dropout": 0.1}),
    (3, True, True, {"memory": 5, "value": 3}),  # kdim, vdim: separate projection weights
]


@pytest.mark.parametrize("inputs, grad, batch_first, flags", MHA_CASES)
def test_multihead_attention(inputs, grad, batch_first, flags):
    mha_case(inputs, grad, batch_first, **flags)


@pytest.mark.slow
@pytest.mark.parametrize("inputs", [1, 2, 3])
@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize(
    "flags", [{}, {"dropout": 0.1}, {"num_heads": 1}, {"bias": False}, {"bias": False, "dropout": 0.2}]
)
def test_multihead_attention_every_case(inputs, grad, batch_first, flags):
    mha_case(inputs, grad, batch_first, **flags)
    if inputs == 1:
        mha_case(inputs, grad, batch_first, is_causal=True, **flags)


def test_unbatched_multihead_attention():
    net = net_of({"x": "[N, 8]"}, "{name: probe, op: multiheadattention, num_heads: 2}")
    fp32_exact(net)


# -- transformer layers -----------------------------------------------------------------------------------------
def layer_case(op: str, batch_first: bool = True, **flags) -> None:
    seq = (lambda length: ["N", length, 8]) if batch_first else (lambda length: [length, "N", 8])
    shapes = {"x": seq(6), "m": seq(7)} if op == "transformerdecoderlayer" else {"x": seq(6)}
    args = {"nhead": 2, "dim_feedforward": 16, **({} if batch_first else {"batch_first": False}), **flags}
    net = op_net(op, shapes, (True,) * len(shapes), **args)
    fp32_exact(net)
    bf16_exact(net)


ENCODER, DECODER = "transformerencoderlayer", "transformerdecoderlayer"
LAYER_CASES = [
    (ENCODER, True, {}),  # eval: torch's fused encoder-layer kernel
    (ENCODER, True, {"norm_first": True, "activation": "gelu", "dropout": 0.0}),
    (ENCODER, True, {"is_causal": True}),  # fused in eval too (the float mask is allowed)
    (ENCODER, True, {"nhead": 1}),  # no fused kernel: the replayed layer
    (ENCODER, False, {"norm_first": True}),
    (DECODER, True, {}),  # the self-attention's fused MultiheadAttention kernel in eval
    (DECODER, True, {"tgt_is_causal": True, "norm_first": True, "dropout": 0.0}),
    (DECODER, True, {"bias": False, "activation": "gelu"}),
]


@pytest.mark.parametrize("op, batch_first, flags", LAYER_CASES)
def test_transformer_layers(op, batch_first, flags):
    layer_case(op, batch_first, **flags)


@pytest.mark.slow
@pytest.mark.parametrize("op", [ENCODER, DECODER])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("dropout", [0.0, 0.1])
@pytest.mark.parametrize("causal", [False, True])
def test_transformer_layers_every_case(op, norm_first, activation, dropout, causal):
    flag = "is_causal" if op == ENCODER else "tgt_is_causal"
    layer_case(op, True, norm_first=norm_first, activation=activation, dropout=dropout, **{flag: causal})
    layer_case(op, False, norm_first=norm_first, nhead=1, dropout=dropout)


def test_fused_encoder_kernel_needs_a_module_without_hooks():
    """With hooks (the oracle's module stack) torch runs the unfused layer, whose peak is larger: the planner
    predicts the fused kernel that runs in use."""
    net = op_net(ENCODER, {"x": ["N", 6, 8]}, (True,), nhead=2, dim_feedforward=16)
    result = net.analyze({"N": 2})
    runner = GraphRunner(generated_model(net, {}), result)
    x = inputs_of(result)
    fused, hooked = (inference_peak(runner, x, per_module=flag).peak for flag in (False, True))
    assert plan(result, CPU).peak_at(2, inference=True) == fused < hooked


# -- symbolic sizes, CUDA ---------------------------------------------------------------------------------------
def test_formulas_in_free_sizes_agree_with_concrete_plans():
    """The busiest instant of an attention can depend on L and S (a Max in the formula); evaluated at any
    sizes, the symbolic plan is the concrete one (batches of 2 and more: a batch of 1 views where a larger one
    copies, which the symbolic layout assumes)."""
    net = net_of(
        {"q": "[N, L, 8]", "k": "[N, S, 8]", "v": "[N, S, 8]"},
        "{name: qp, op: linear, in: q, out_features: 8}",
        "{name: att, op: scaled_dot_product_attention, in: [qp, k, v], dropout_p: 0.1}",
        "{name: mha, op: multiheadattention, in: [att, k], num_heads: 2, dropout: 0.1}",
        "{name: enc, op: transformerencoderlayer, nhead: 2, dim_feedforward: 16, is_causal: true}",
        symbols="{N: {}, L: {default: 6}, S: {default: 9}}",
    )
    assert "Max" in dims.to_str(plan(net.analyze(), CPU).inference.bytes)
    for length, source in [(6, 9), (1, 9), (9, 1), (30, 2), (2, 30)]:
        symbolic = plan(net.analyze({"L": length, "S": source}), CPU)
        for n in (2, 5):
            concrete = plan(net.analyze({"L": length, "S": source, "N": n}), CPU)
            assert symbolic.peak_at(n, inference=True) == concrete.peak_at(1, inference=True)
            assert symbolic.peak_at(n) == concrete.peak_at(1)
            assert symbolic.at(symbolic.totals["saved_activations"], n) == concrete.totals["saved_activations"]


def test_cuda_fused_attention_takes_dropout_without_the_weights():
    """On CUDA (torch's documentation; no GPU here) the fused kernels run dropout themselves: attention with
    dropout saves what the dropout-free flash kernel saves, no [L, S] weights, softmax or mask."""
    shapes = FOUR
    planned = {}
    for p in (0.0, 0.1):
        net = op_net("scaled_dot_product_attention", shapes, (1, 1, 1), dropout_p=p)
        planned[p] = {device: plan(net.analyze({"N": 2}), Options(device=device)) for device in ("cpu", "cuda")}
    saved = {(p, d): m.totals["saved_activations"] for p, by in planned.items() for d, m in by.items()}
    assert saved[0.1, "cuda"] == saved[0.0, "cuda"] == saved[0.0, "cpu"] < saved[0.1, "cpu"]


# -- the examples -----------------------------------------------------------------------------------------------
EXAMPLES = {  # name -> the sizes they are measured at (batch 2)
    "byte_gpt": {"L": 32},
    "vit_b_16": {"H": 32, "W": 32},
    "gpt2_small": {"L": 8},
}
BF16_SLOW = {"gpt2_small", "vit_b_16"}


def example(name: str) -> archplan.Net:
    return archplan.load(ROOT / "examples" / f"{name}.yaml")


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_saved_bytes_and_inference_peak_are_exact(name):
    net, values = example(name), EXAMPLES[name]
    fp32_exact(net, values)
    memory = plan(net.analyze(values), CPU)
    assert memory.unruled == [] and not any("no memory rule" in note for note in memory.notes)


# bf16 on the larger nets runs in the slow set (fp32 exactness runs on every net by default)
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in BF16_SLOW else n for n in EXAMPLES])
def test_example_bf16_autocast(name):
    bf16_exact(example(name), EXAMPLES[name])


def training_step(net, values: dict, optimizer: str) -> tuple[int, int]:
    """(planned, measured) training peak at N = 2: cross-entropy over dim 1 as test_memory.py measures it."""
    result = net.analyze(values)
    concrete = net.analyze({**values, "N": 2})
    out = [at2(d) for d in next(iter(concrete.outputs.values()))]
    target = torch.randint(out[1], [out[0], *out[2:]], generator=torch.Generator().manual_seed(2))
    runner = GraphRunner(generated_model(net, values), concrete)
    step = training_step_peak(runner, inputs_of(concrete), optimizer, loss_fn=lambda y: F.cross_entropy(y, target))
    memory = plan(result, Options(optimizer.replace("_", "-"), device="cpu"))
    assert memory.totals["weights"] == step.weights
    return memory.peak_at(2), step.peak


@pytest.mark.parametrize(
    "name, optimizer",
    [
        ("byte_gpt", "adamw"),
        pytest.param("vit_b_16", "sgd_momentum", marks=pytest.mark.slow),
        pytest.param("gpt2_small", "adam", marks=pytest.mark.slow),
    ],
)
def test_example_training_step_peak(name, optimizer):
    planned, measured = training_step(example(name), EXAMPLES[name], optimizer)
    assert abs(planned - measured) <= TOLERANCE * measured


def test_tied_weight_gradients_are_summed_not_doubled():
    """A weight shared with a later layer (`weight: wte`) has one gradient: the later layer's backward makes it,
    the embedding's backward adds its own out of place (old + new -> a new .grad) for a moment. Here that sum
    is the step's peak."""
    net = net_of(
        {"tokens": "{shape: [N, 4], dtype: int64, range: 4000}"},
        "{name: wte, op: embedding, num_embeddings: 4000, embedding_dim: 32}",
        "{name: lm_head, op: linear, out_features: 4000, bias: false, weight: wte}",
    )
    memory = plan(net.analyze(), Options("sgd", device="cpu"))
    busiest = max(memory.training.timeline, key=lambda moment: moment[2] * 2 + moment[3])
    assert busiest[:2] == ("backward", "wte")
    planned, measured = training_step(net, {}, "sgd")
    assert abs(planned - measured) <= TOLERANCE * measured
