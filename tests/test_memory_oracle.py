"""The memory oracles (tests/memory_oracle.py) against hand-counted bytes, a second method, and whole nets.

Every expected number below is worked out by hand from the shapes (fp32: 4 bytes, int64: 8, bool: 1); the
whole-net numbers are the training-memory planner's targets at the sizes given.
"""

from typing import NamedTuple

import pytest

torch = pytest.importorskip("torch")
from torch import nn

import torch_reference as R
from memory_oracle import (
    OPTIMIZERS,
    ROOT,
    allocator_peak,
    inference_peak,
    saved_for_backward,
    training_step_peak,
)

F32, I64, BF16 = torch.float32, torch.int64, torch.bfloat16
X = (2, 3, 8, 8)  # 384 elements: 1536 bytes in fp32


class Add(nn.Module):
    def forward(self, a, b):
        return a + b


class Cat(nn.Module):
    def forward(self, a, b):
        return torch.cat([a, b], dim=1)


class Mul(nn.Module):
    def forward(self, a, b):
        return a * b


class Square(nn.Module):
    def forward(self, x):
        return x * x


class SliceLinear(nn.Module):
    """Saves a (2, 2) view of a (2, 5) input: the whole 40-byte storage counts."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return self.fc(x[:, :2])


class NativeDropout(nn.Module):
    """What ``nn.Dropout`` runs on CUDA (the fused kernel), called directly on CPU."""

    def forward(self, x):
        return torch.native_dropout(x, 0.5, True)[0]


def conv():
    return nn.Conv2d(3, 4, 3)  # weight 4*3*3*3*4 = 432 B; output (2, 4, 6, 6) = 1152 B


def randn(*shape):
    return torch.randn(*shape)


class Case(NamedTuple):
    """One module, what it saves as ``(node.field, dtype, shape, kind)``, and the totals in bytes."""

    module: nn.Module
    inputs: object
    saves: list
    activations: int
    parameters: int = 0
    buffers: int = 0
    grad_input: bool = True  # as in the middle of a net; False: on the raw input


def act(field, shape=X, dtype=F32):
    return (field, dtype, shape, "activation")


def inp(field, shape=X, dtype=F32):
    return (field, dtype, shape, "input")


def par(field, shape):
    return (field, F32, shape, "parameter")


CONV_SAVES = [inp("ConvolutionBackward0.input"), par("ConvolutionBackward0.weight", (4, 3, 3, 3))]
BN = "NativeBatchNormBackward0"
LN = "NativeLayerNormBackward0"
GN = "NativeGroupNormBackward0"
POOL = "MaxPool2DWithIndicesBackward0"

CASES = {
    # Linear saves its input (a 2-D view of it); W only when the input requires grad (it is needed for dx only)
    "linear-on-raw-input": Case(
        nn.Linear(5, 7), randn(2, 5), [inp("AddmmBackward0.mat1", (2, 5))], 40, grad_input=False
    ),
    "linear": Case(
        nn.Linear(5, 7), randn(2, 5), [inp("AddmmBackward0.mat1", (2, 5)), par("AddmmBackward0.mat2", (5, 7))], 40, 140
    ),
    "linear-3d-input": Case(
        nn.Linear(5, 7),
        randn(2, 4, 5),
        [inp("AddmmBackward0.mat1", (8, 5)), par("AddmmBackward0.mat2", (5, 7))],
        160,
        140,
    ),
    "linear-no-bias": Case(
        nn.Linear(5, 7, bias=False),
        randn(2, 5),
        [inp("MmBackward0.self", (2, 5)), par("MmBackward0.mat2", (5, 7))],
        40,
        140,
    ),
    "linear-on-a-view": Case(  # the saved (2, 2) view keeps the whole (2, 5) storage: 40 B, not 16
        SliceLinear(), randn(2, 5), [inp("AddmmBackward0.mat1", (2, 2)), par("AddmmBackward0.mat2", (2, 3))], 40, 24
    ),
    "conv": Case(conv(), randn(*X), CONV_SAVES, 1536, 432, grad_input=False),
    "conv-relu-inplace": Case(  # ReLU saves the conv output it overwrote; the conv did not save it
        nn.Sequential(conv(), nn.ReLU(inplace=True)),
        randn(*X),
        [*CONV_SAVES, act("ReluBackward0.result", (2, 4, 6, 6))],
        1536 + 1152,
        432,
        grad_input=False,
    ),
    "conv-silu-inplace": Case(  # SiLU needs its input: autograd saves a clone, in-place saves nothing
        nn.Sequential(conv(), nn.SiLU(inplace=True)),
        randn(*X),
        [*CONV_SAVES, act("SiluBackward0.self", (2, 4, 6, 6))],
        1536 + 1152,
        432,
        grad_input=False,
    ),
    "relu": Case(nn.ReLU(), randn(*X), [act("ReluBackward0.result")], 1536),
    "relu6": Case(nn.ReLU6(), randn(*X), [inp("HardtanhBackward0.self")], 1536),
    "leaky-relu": Case(nn.LeakyReLU(), randn(*X), [inp("LeakyReluBackward0.self")], 1536),
    "sigmoid": Case(nn.Sigmoid(), randn(*X), [act("SigmoidBackward0.result")], 1536),
    "tanh": Case(nn.Tanh(), randn(*X), [act("TanhBackward0.result")], 1536),
    "silu": Case(nn.SiLU(), randn(*X), [inp("SiluBackward0.self")], 1536),
    "gelu": Case(nn.GELU(), randn(*X), [inp("GeluBackward0.self")], 1536),
    "hardswish": Case(nn.Hardswish(), randn(*X), [inp("HardswishBackward0.self")], 1536),
    "softmax": Case(nn.Softmax(dim=1), randn(*X), [act("SoftmaxBackward0.result")], 1536),
    "log-softmax": Case(nn.LogSoftmax(dim=1), randn(*X), [act("LogSoftmaxBackward0.result")], 1536),
    "maxpool": Case(  # input + int64 indices of the output's shape
        nn.MaxPool2d(2), randn(*X), [inp(f"{POOL}.self"), act(f"{POOL}.result1", (2, 3, 4, 4), I64)], 1536 + 96 * 8
    ),
    "avgpool": Case(nn.AvgPool2d(2), randn(*X), [inp("AvgPool2DBackward0.self")], 1536),
    "adaptive-avgpool-1": Case(nn.AdaptiveAvgPool2d(1), randn(*X), [], 0),  # a mean: sizes only
    "adaptive-avgpool-2": Case(nn.AdaptiveAvgPool2d(2), randn(*X), [inp("AdaptiveAvgPool2DBackward0.self")], 1536),
    "dropout": Case(nn.Dropout(0.5), randn(*X), [act("MulBackward0.other")], 1536),  # scaled noise, fp32
    "dropout-p0": Case(nn.Dropout(0.0), randn(*X), [], 0),
    "dropout2d": Case(nn.Dropout2d(0.5), randn(*X), [act("MulBackward0.other", (2, 3, 1, 1))], 2 * 3 * 4),
    "native-dropout-as-on-cuda": Case(
        NativeDropout(), randn(*X), [act("NativeDropoutBackward0.result1", X, torch.bool)], 384
    ),
    "batchnorm": Case(  # input + batch mean and invstd (C fp32 each); weight and running stats are the model's
        nn.BatchNorm2d(3),
        randn(*X),
        [
            inp(f"{BN}.input"),
            par(f"{BN}.weight", (3,)),
            (f"{BN}.running_mean", F32, (3,), "buffer"),
            (f"{BN}.running_var", F32, (3,), "buffer"),
            act(f"{BN}.result1", (3,)),
            act(f"{BN}.result2", (3,)),
        ],
        1536 + 2 * 3 * 4,
        12,
        24,
        grad_input=False,
    ),
    "layernorm": Case(  # input + mean and rstd per normalized row (2 * 3 * 8 = 48 rows)
        nn.LayerNorm(8),
        randn(*X),
        [
            inp(f"{LN}.input"),
            par(f"{LN}.weight", (8,)),
            par(f"{LN}.bias", (8,)),
            act(f"{LN}.result1", (2, 3, 8, 1)),
            act(f"{LN}.result2", (2, 3, 8, 1)),
        ],
        1536 + 2 * 48 * 4,
        64,
    ),
    "groupnorm": Case(  # input + mean and rstd per (sample, group)
        nn.GroupNorm(1, 3),
        randn(*X),
        [inp(f"{GN}.input"), par(f"{GN}.weight", (3,)), act(f"{GN}.result1", (2, 1)), act(f"{GN}.result2", (2, 1))],
        1536 + 2 * 2 * 4,
        12,
    ),
    "embedding": Case(  # the int64 indices; never the table
        nn.Embedding(10, 4),
        torch.tensor([[1, 2, 3], [4, 5, 6]]),
        [inp("EmbeddingBackward0.indices", (2, 3), I64)],
        6 * 8,
        grad_input=False,
    ),
    "flatten": Case(nn.Flatten(), randn(*X), [], 0),
    "upsample-nearest": Case(nn.Upsample(scale_factor=2), randn(*X), [], 0),
    "upsample-bilinear": Case(nn.Upsample(scale_factor=2, mode="bilinear"), randn(*X), [], 0),
    "add": Case(Add(), (randn(*X), randn(*X)), [], 0),
    "cat": Case(Cat(), (randn(*X), randn(*X)), [], 0),
    "mul": Case(Mul(), (randn(*X), randn(*X)), [inp("MulBackward0.self"), inp("MulBackward0.other")], 2 * 1536),
    "square-saves-x-twice": Case(Square(), randn(*X), [inp("MulBackward0.self"), inp("MulBackward0.other")], 1536),
}


@pytest.mark.parametrize("case", list(CASES))
def test_saved_for_backward_per_op(case):
    module, inputs, saves, activations, parameters, buffers, grad_input = CASES[case]
    torch.manual_seed(0)
    report = saved_for_backward(module, inputs, inputs_require_grad=grad_input)
    got = [(field, dtype, shape, kind) for field, dtype, shape, _, kind in report.saves()]
    assert sorted(got, key=str) == sorted(saves, key=str)
    totals = (report.activations, report.parameters, report.buffers, report.param_copies)
    assert totals == (activations, parameters, buffers, 0)
    assert sum(report.per_module.values()) == report.activations


def test_inplace_activation_that_needs_its_input_saves_a_clone():
    report = saved_for_backward(nn.Sequential(conv(), nn.ReLU6(inplace=True)), randn(*X))
    (clone,) = [s for s in report.storages if s.kind == "activation"]
    assert (clone.producer, clone.module, clone.saved_by) == ("aten.clone", "1", (("1", "HardtanhBackward0.self"),))


def test_shared_storage_belongs_to_its_first_saver():
    report = saved_for_backward(nn.Sequential(conv(), nn.ReLU(), nn.Conv2d(4, 4, 1)), randn(*X))
    (relu_out,) = [s for s in report.storages if s.kind == "activation"]
    assert relu_out.producer == "aten.relu"
    assert relu_out.saved_by == (("1", "ReluBackward0.result"), ("2", "ConvolutionBackward0.input"))
    assert report.per_module == {"0": 1536, "1": 1152}


def test_functional_ops_go_to_the_enclosing_module():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return self.a(x) * self.b(x)

    net = nn.Sequential(Block())
    assert saved_for_backward(net, randn(*X)).per_module == {"0.a": 1536, "0": 2 * 2048}
    assert saved_for_backward(Block(), randn(*X)).per_module == {"a": 1536, ROOT: 2 * 2048}


def test_model_state_is_restored():
    net = nn.Sequential(nn.BatchNorm2d(3), nn.Dropout()).eval()
    saved_for_backward(net, randn(*X))
    assert not net.training
    assert torch.equal(net[0].running_mean, torch.zeros(3)) and int(net[0].num_batches_tracked) == 0


# -- whole nets ------------------------------------------------------------------------------------------------------

# name: (H = W, saved activation bytes, inference peak bytes), batch 2, fp32, CPU, torch 2.13
NETS = {
    "lenet": (28, 216_352, 167_552),
    "resnet18": (64, 3_663_360, 1_146_880),
    "resnet50": (64, 14_253_568, 2_326_528),
    "unet": (64, 10_229_248, 3_964_928),
    "mobilenet_v2": (64, 12_924_160, 1_802_240),
    "efficientnet_b0": (64, 14_723_136, 1_802_240),
    "densenet121": (64, 21_625_600, 1_671_168),
    "googlenet": (64, 7_937_920, 1_146_880),
    "squeezenet1_1": (64, 2_930_496, 1_082_368),
    "vgg16": (32, 3_383_296, 1_073_152),
}
SLOW_NETS = {"vgg16"}  # 138M parameters: 0.55 GB and seconds just to build


def net_and_input(name):
    builder, _, shape = R.REFERENCES[name]
    hw = NETS[name][0]
    torch.manual_seed(0)
    return builder(), torch.randn(2, shape[1], hw, hw)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_NETS else n for n in NETS])
def test_whole_net(name):
    model, x = net_and_input(name)
    first, second = saved_for_backward(model, x), saved_for_backward(model, x)
    assert first == second
    assert first.activations > 0 and first.parameters > 0 and first.param_copies == 0
    assert first.inputs == x.nbytes
    assert sum(first.per_module.values()) == first.activations
    assert set(first.per_module) <= {n for n, _ in model.named_modules()} | {ROOT}
    peak = inference_peak(model, x)
    assert peak == inference_peak(model, x)
    assert peak.inputs == x.nbytes <= peak.peak
    assert (first.activations, peak.peak) == NETS[name][1:]


def test_lenet_by_hand():
    model, x = net_and_input("lenet")  # 2 x 1 x 28 x 28
    report = saved_for_backward(model, x)
    assert report.per_module == {
        "conv1": 2 * 28 * 28 * 4,  # its input
        "pool1": 2 * 20 * 24 * 24 * 4 + 2 * 20 * 12 * 12 * 8,  # conv1 output + int64 indices
        "tanh1": 2 * 20 * 12 * 12 * 4,  # its output, which conv2 saves too
        "pool2": 2 * 50 * 8 * 8 * 4 + 2 * 50 * 4 * 4 * 8,
        "tanh2": 2 * 50 * 4 * 4 * 4,  # fc1 saves a flattened view of it
        "tanh3": 2 * 500 * 4,  # fc2 saves it too
    }
    weights = [model.conv1.weight, model.conv2.weight, model.fc1.weight, model.fc2.weight]
    assert report.parameters == sum(w.nbytes for w in weights)  # biases are not saved
    peak = inference_peak(model, x)
    # at pool1: input + conv1 output + pooled values + int64 indices (eval mode computes them too)
    assert peak.peak == 6272 + 92160 + 23040 + 46080
    assert peak.peak_op.op == "aten.max_pool2d_with_indices" and peak.peak_op.module == "pool1"


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))


def test_inference_peak_of_an_mlp_by_hand_and_by_the_allocator():
    model, x = mlp(), torch.randn(8, 64)  # x: 2048 B; each hidden tensor 8 x 128 x 4 = 4096 B; output 320 B
    report = inference_peak(model, x)
    hidden, x_bytes, out = 4096, 2048, 320
    assert [(e.op, e.module, e.live) for e in report.timeline] == [
        ("aten.t", "0", x_bytes),
        ("aten.addmm", "0", x_bytes + hidden),
        ("aten.relu", "1", x_bytes + 2 * hidden),  # Sequential still holds the addmm output
        ("aten.t", "2", x_bytes + hidden),
        ("aten.addmm", "2", x_bytes + 2 * hidden),
        ("aten.relu", "3", x_bytes + 2 * hidden),
        ("aten.t", "4", x_bytes + hidden),
        ("aten.addmm", "4", x_bytes + hidden + out),
    ]
    assert (report.peak, report.inputs, report.final) == (x_bytes + 2 * hidden, x_bytes, x_bytes + out)
    model.eval()
    with torch.no_grad():
        peak, end = allocator_peak(lambda: model(x))
    assert (peak, end) == (report.peak - x_bytes, 0)


def test_inplace_relu_allocates_nothing():
    report = inference_peak(nn.Sequential(conv(), nn.ReLU(inplace=True)), randn(*X))
    assert [(e.op, e.allocated, e.live) for e in report.timeline] == [
        ("aten.convolution", 1152, 1536 + 1152),
        ("aten.relu_", 0, 1536 + 1152),
    ]


def test_allocator_sees_conv_workspaces_the_oracle_leaves_out():
    model, x = net_and_input("lenet")
    model.eval()
    with torch.no_grad():
        peak, _ = allocator_peak(lambda: model(x))
    assert peak + x.nbytes >= inference_peak(model, x).peak


# -- one training step -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "sgd_momentum", "adam", "adamw"])
def test_training_step_of_an_mlp(optimizer):
    step = training_step_peak(mlp(), torch.randn(8, 64), optimizer)
    weights = sum(p.nbytes for p in mlp().parameters())  # 104,488 B
    state = {"sgd": 0, "sgd_momentum": weights, "adam": 2 * weights + 6 * 4, "adamw": 2 * weights + 6 * 4}
    assert (step.weights, step.gradients, step.optimizer_state) == (weights, weights, state[optimizer])
    assert step.peak == step.weights + step.buffers + step.gradients + step.optimizer_state + step.activations

    model, x = mlp(), torch.randn(8, 64)
    opt = OPTIMIZERS[optimizer](list(model.parameters()))
    model(x).sum().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)

    def step_once():
        out = model(x)
        loss = out.sum()
        loss.backward()
        opt.step()

    peak, _ = allocator_peak(step_once)
    seen = peak + weights + x.nbytes + state[optimizer]
    # Adam's kernels copy Python-scalar operands to float inside themselves: a few bytes the oracle cannot see
    assert 0 <= seen - step.peak <= (0 if optimizer.startswith("sgd") else 64)


def test_training_step_of_a_conv_net():
    model, x = net_and_input("lenet")
    step = training_step_peak(model, x, "sgd")
    assert step.weights == sum(p.nbytes for p in model.parameters())
    # the peak is pool1's backward: every gradient exists but conv1's, which comes next
    assert (step.phase, step.peak_op) == ("backward", "aten.max_pool2d_with_indices_backward")
    assert step.gradients == step.weights - model.conv1.weight.nbytes - model.conv1.bias.nbytes
    assert step.peak == step.weights + step.gradients + step.activations


# -- bf16 autocast ---------------------------------------------------------------------------------------------------


def test_autocast_saves_bf16_activations_and_bf16_weight_copies():
    torch.manual_seed(0)
    net = nn.Sequential(
        conv(),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 5),
    )
    x = randn(*X)
    fp32 = saved_for_backward(net, x)
    bf16 = saved_for_backward(net, x, autocast_dtype=BF16)
    assert fp32.activations == 1536 + 1152 + 2 * 16 + 1152 + 512 + 256 + 128
    # bf16: cast input 768, conv1 out 576, BN mean/invstd stay fp32 (32), relu outs 576 + 256, indices int64 256,
    # flattened pool output 64; the fp32 input itself is no longer saved
    assert (bf16.activations, bf16.inputs) == (768 + 576 + 32 + 576 + 256 + 256 + 64, 0)
    assert bf16.param_copies == 2 * (108 + 144 + 80)  # bf16 copies of the conv and linear weights
    assert bf16.parameters == 16  # only the BN weight is saved in fp32
    copies = {s.producer for s in bf16.storages if s.kind == "param_copy"}
    assert copies == {"aten._to_copy"}


def test_autocast_resnet18():
    model, x = net_and_input("resnet18")
    fp32 = saved_for_backward(model, x)
    bf16 = saved_for_backward(model, x, autocast_dtype=BF16)
    assert (fp32.activations, bf16.activations) == (3_663_360, 1_981_952)  # ratio 0.541
    cast = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    bn = [m.weight for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bf16.parameters == sum(w.nbytes for w in bn)  # fp32 BN weights only
    assert bf16.param_copies == sum(w.numel() * 2 for w in cast) == (fp32.parameters - bf16.parameters) // 2
