"""Every example against published figures and against an independently written torch model."""

from __future__ import annotations

from pathlib import Path

import pytest

import archplan

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# file: (params, classes, GMACs at batch 1 or None, largest conv/pool receptive field or None)
PUBLISHED = {
    "lenet": (431_080, 10, None, 16),
    "keras_mnist": (93_322, 10, None, 18),
    "simple_convnet": (433_890, 10, None, None),
    "alexnet": (61_100_840, 1000, 0.714, 195),
    "vgg16": (138_357_544, 1000, 15.47, 212),
    "resnet18": (11_689_512, 1000, 1.814, 435),
    "resnet50": (25_557_032, 1000, 4.089, 427),
    "mobilenet_v2": (3_504_872, 1000, 0.301, None),
    "densenet121": (7_978_856, 1000, 2.83, None),
    "squeezenet1_1": (1_235_496, 1000, 0.35, None),
    "googlenet": (6_624_904, 1000, 1.5, None),
    "efficientnet_b0": (5_288_548, 1000, 0.39, None),
}
# decimals torchvision publishes these GFLOPS with
DIGITS = {"densenet121": 2, "squeezenet1_1": 2, "googlenet": 1, "efficientnet_b0": 2}


def analyze(name: str, **values):
    return archplan.load(EXAMPLES / f"{name}.yaml").analyze({"N": 1, **values})


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_figures(name):
    params, classes, gmacs, rf = PUBLISHED[name]
    result = analyze(name)
    assert result.ok, result.errors
    assert result.totals["params"] == params
    (out,) = result.outputs.values()
    assert out == (1, classes)
    if gmacs:
        digits = DIGITS.get(name, 3 if gmacs < 10 else 2)
        assert round(result.totals["macs"] / 1e9, digits) == gmacs
        assert result.totals["flops"] == 2 * result.totals["macs"]
    if rf:
        sizes = [
            r.receptive_field[0].size
            for r in result.layers
            if r.receptive_field and r.node.op.name in ("Conv2d", "MaxPool2d")
        ]
        assert max(sizes) == rf


def test_keras_mnist_per_layer_figures():
    result = analyze("keras_mnist")
    with_params = [r.params for r in result.layers if r.params]
    assert with_params == [320, 18_496, 36_928, 36_928, 650]
    sides = [r.output_shape[2] for r in result.layers if r.node.op.family in ("conv", "pool")]
    assert sides == [26, 13, 11, 5, 3]


def test_lenet_shapes_follow_the_reference_text():
    result = analyze("lenet")
    sides = [r.output_shape[2] for r in result.layers if r.node.op.family in ("conv", "pool")]
    assert sides == [24, 12, 8, 4]
    assert result.layers[0].output_shape == (1, 20, 24, 24)


def test_squeeze_excitation_makes_the_receptive_field_global():
    """The depthwise map times a gate computed from the whole map: every output pixel depends on every
    input pixel (checked against gradients in test_receptive_field.py)."""
    result = analyze("efficientnet_b0")
    assert result.layer("stage1.depthwise_act").receptive_field is not None  # still local before the gate
    assert result.layer("stage1.se_pool").field.whole
    assert result.layer("stage1.se_scale").field.whole and result.layer("stage7.project_bn").field.whole
    assert not result.warnings


def test_resnet50_batchnorm_statistics_are_buffers():
    result = analyze("resnet50")
    bn = result.layer("bn1")
    assert (bn.params, bn.buffers) == (128, 129)


def test_unet_validity_domain_and_output():
    result = archplan.load(EXAMPLES / "unet.yaml").analyze()
    assert result.ok
    assert "H % 8 == 0" in result.constraints and "W % 8 == 0" in result.constraints
    assert result.minimum_sizes == {"H": 8, "W": 8}
    (out,) = result.outputs.values()
    assert [str(d) for d in out] == ["N", "2", "H", "W"]


def test_unet_bad_size_names_the_failing_concat():
    result = archplan.load(EXAMPLES / "unet.yaml").analyze({"H": 60, "W": 64})
    assert not result.ok
    assert result.errors[0].layer == "up3.cat"
    assert "14 vs 15" in result.errors[0].message


torch = None


def _reference():
    pytest.importorskip("torch")
    import torch_reference

    return torch_reference


@pytest.mark.parametrize(
    "name",
    [
        "lenet",
        "keras_mnist",
        "simple_convnet",
        "alexnet",
        "resnet18",
        "resnet50",
        "unet",
        "mobilenet_v2",
        "densenet121",
        "squeezenet1_1",
        "googlenet",
        "efficientnet_b0",
    ],
)
def test_analysis_equals_torch_layer_by_layer(name):
    """Parameters, MACs and output shape of each named module, measured in torch with forward hooks."""
    ref = _reference()
    import torch

    builder, path, shape = ref.REFERENCES[name]
    model = builder().eval()
    values = {"N": shape[0]}
    if name == "unet":
        values.update(H=shape[2], W=shape[3])
    result = archplan.load(path).analyze(values)
    assert result.ok
    modules = dict(model.named_modules())
    seen = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o, key=k: seen.__setitem__(key, tuple(o.shape)))
        for k, m in modules.items()
        if k
    ]
    with torch.no_grad():
        out = model(torch.randn(*shape))
    for h in hooks:
        h.remove()
    compared = 0
    for row in result.layers:
        module = modules.get(row.name)
        if module is None or row.name not in seen:
            continue
        assert row.output_shape == seen[row.name], row.name
        assert row.params == sum(p.numel() for p in module.parameters(recurse=False)), row.name
        compared += 1
    assert compared >= len([r for r in result.layers if r.params]) > 0
    assert result.totals["params"] == ref.count_params(model)
    assert result.totals["macs"] == ref.count_macs(model, shape)
    assert list(result.outputs.values())[0] == tuple(out.shape)


def test_graph_exports_to_networkx():
    import networkx as nx

    net = archplan.load(EXAMPLES / "resnet18.yaml")
    graph = net.graph({"N": 1})
    g = graph.to_networkx()
    assert nx.is_directed_acyclic_graph(g)
    assert g.number_of_nodes() == len(graph.nodes) + len(graph.inputs)
    assert list(nx.topological_sort(g))[0] == "image"
    assert g.in_degree("layer2.0.add") == 2
