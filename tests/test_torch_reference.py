"""Checks the pure-torch reference nets against published figures, and the
example YAMLs against the reference nets (layer names and key arguments), so
that ``examples/*.yaml`` and ``tests/torch_reference.py`` cannot drift apart.

The YAML side is expanded by archplan's own lowering (blocks, repeat, first, when, in_channels), so the
references check that expansion too.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_reference import REFERENCES, count_macs, count_params

# name: (parameters, MACs at batch 1 in G as published, digits, output shape)
EXPECTED = {
    "lenet": (431_080, 0.002293, 6, (1, 10)),
    "keras_mnist": (93_322, 0.002794, 6, (1, 10)),
    "simple_convnet": (433_890, 0.000865, 6, (1, 10)),
    "alexnet": (61_100_840, 0.714, 3, (1, 1000)),
    "vgg16": (138_357_544, 15.47, 2, (1, 1000)),
    "resnet18": (11_689_512, 1.814, 3, (1, 1000)),
    "resnet50": (25_557_032, 4.089, 3, (1, 1000)),
    "unet": (482_754, 0.145, 3, (1, 2, 64, 64)),
    "mobilenet_v2": (3_504_872, 0.301, 3, (1, 1000)),
    "densenet121": (7_978_856, 2.83, 2, (1, 1000)),
    "squeezenet1_1": (1_235_496, 0.35, 2, (1, 1000)),
    "googlenet": (6_624_904, 1.5, 1, (1, 1000)),
    "efficientnet_b0": (5_288_548, 0.39, 2, (1, 1000)),
}

PER_LAYER_PARAMS = {
    "keras_mnist": {
        "conv1": 320,
        "conv2": 18_496,
        "conv3": 36_928,
        "fc1": 36_928,
        "fc2": 650,
    },
}

NAMES = sorted(REFERENCES)


@pytest.fixture(scope="module")
def models():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = REFERENCES[name][0]().eval()
        return cache[name]

    return get


def test_every_example_has_a_reference():
    """Each example has a hand-written torch reference, here or in torch_reference_modern.py."""
    from torch_reference_modern import MODERN

    examples = Path(REFERENCES["lenet"][1]).parent
    named = {"gpt2_small": "gpt2"}  # example file -> reference name
    assert {named.get(p.stem, p.stem) for p in examples.glob("*.yaml")} <= set(REFERENCES) | set(MODERN)
    for _, path, _ in REFERENCES.values():
        assert Path(path).is_file(), path


@pytest.mark.parametrize("name", NAMES)
def test_params(name, models):
    assert count_params(models(name)) == EXPECTED[name][0]


@pytest.mark.parametrize("name", sorted(PER_LAYER_PARAMS))
def test_per_layer_params(name, models):
    mods = dict(models(name).named_modules())
    for layer, n in PER_LAYER_PARAMS[name].items():
        assert sum(p.numel() for p in mods[layer].parameters()) == n, layer


@pytest.mark.parametrize("name", NAMES)
def test_macs_and_output_shape(name, models):
    _, _, shape = REFERENCES[name]
    _, gmacs, digits, out_shape = EXPECTED[name]
    model = models(name)
    assert round(count_macs(model, shape) / 1e9, digits) == pytest.approx(gmacs)
    with torch.no_grad():
        assert tuple(model(torch.zeros(shape)).shape) == out_shape


@pytest.mark.parametrize(
    "hw,ok",
    [
        ((64, 64), True),
        ((72, 40), True),
        ((8, 8), True),
        ((60, 64), False),
        ((64, 36), False),
        ((68, 68), False),
    ],
)
def test_unet_valid_exactly_when_multiple_of_8(hw, ok, models):
    model = models("unet")
    x = torch.zeros(1, 3, *hw)
    with torch.no_grad():
        if ok:
            assert tuple(model(x).shape) == (1, 2, *hw)
        else:
            with pytest.raises(RuntimeError):
                model(x)


# --------------------------------------------------------------------------
# YAML <-> reference consistency
# --------------------------------------------------------------------------

PARAM_OPS = {
    "conv2d",
    "convtranspose2d",
    "linear",
    "batchnorm2d",
    "conv1d",
    "batchnorm1d",
    "layernorm",
    "groupnorm",
    "embedding",
    "prelu",
}
FUNCTIONAL_OPS = {"add", "concat", "cat", "mul", "identity"}


def yaml_layers(name):
    """(hierarchical name, op, evaluated arguments) of every op layer the YAML expands to, from archplan's
    own lowering (the one expansion routine: blocks, repeat, first, when, in_channels)."""
    import archplan

    path = Path(REFERENCES[name][1])
    spec = yaml.safe_load(path.read_text())
    net = archplan.load(path)
    graph = net.graph({**net.defaults(), **{s: 1 for s in net.symbols if s not in net.defaults()}})
    return spec, [(node.name, node.op.name.lower(), dict(node.args)) for node in graph.nodes.values()]


def _pair(v):
    if isinstance(v, (list, tuple)):
        return tuple(v)
    return (v, v)


PAIR_ATTRS = {"kernel_size", "stride", "padding", "dilation", "output_padding"}
CHECKED_ATTRS = PAIR_ATTRS | {
    "out_channels",
    "groups",
    "out_features",
    "p",
    "output_size",
    "ceil_mode",
    "num_features",
    "eps",
}


def _check_attrs(full, op, attrs, mod):
    if op in ("conv2d", "convtranspose2d", "linear"):
        assert (mod.bias is not None) == attrs.get("bias", True), f"{full}: bias"
    # torch.nn defaults for arguments the YAML leaves out
    if op in ("conv2d", "convtranspose2d"):
        attrs = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, **attrs}
    if op in ("maxpool2d", "avgpool2d"):
        attrs = {"stride": attrs["kernel_size"], "padding": 0, **attrs}
    for key, want in attrs.items():
        if key not in CHECKED_ATTRS or not hasattr(mod, key):
            continue
        have = getattr(mod, key)
        if isinstance(want, str):  # symbolic / 'same' etc.: not checked here
            continue
        conv = key in PAIR_ATTRS and isinstance(mod, nn.modules.conv._ConvNd)
        tupled = (key in PAIR_ATTRS or key == "output_size") and (
            isinstance(want, (list, tuple)) or isinstance(have, tuple)
        )
        if conv or tupled:
            have, want = _pair(have), _pair(want)
        assert have == want, f"{full}.{key}: torch {have!r} != yaml {want!r}"


@pytest.mark.parametrize("name", NAMES)
def test_yaml_header(name):
    spec = yaml.safe_load(Path(REFERENCES[name][1]).read_text())
    assert spec["archplan"] == 1
    assert spec["name"] == name
    (shape,) = spec["inputs"].values()
    symbols = spec.get("symbols") or {}
    defaults = {k: (v or {}).get("default", 1) for k, v in symbols.items()}
    assert tuple(defaults[d] if isinstance(d, str) else d for d in shape) == REFERENCES[name][2]
    for d in shape:
        assert isinstance(d, int) or d in symbols, d
    ident = re.compile(r"[A-Za-z_]\w*\Z")

    def walk(layers):
        seen = set()
        for layer in layers:
            assert ident.match(layer["name"]), layer["name"]
            assert layer["name"] not in seen, f"duplicate {layer['name']}"
            seen.add(layer["name"])
            assert ("op" in layer) != ("block" in layer), layer["name"]

    walk(spec["layers"])
    for block in (spec.get("blocks") or {}).values():
        walk(block["layers"])


@pytest.mark.parametrize("name", NAMES)
def test_yaml_layers_match_reference(name, models):
    _, layers = yaml_layers(name)
    mods = dict(models(name).named_modules())
    yaml_param_layers = set()
    for full, op, attrs in layers:
        if op in FUNCTIONAL_OPS:
            continue
        if op in PARAM_OPS:
            yaml_param_layers.add(full)
            assert full in mods, f"{name}: no torch module {full!r}"
        if full not in mods:
            continue  # parameter-free layer that is functional in the reference
        mod = mods[full]
        assert type(mod).__name__.lower() == op, f"{full}: {type(mod).__name__} vs {op}"
        _check_attrs(full, op, attrs, mod)
    # and the other way round: every module owning parameters is a YAML layer
    owners = {n for n, m in mods.items() if any(True for _ in m.parameters(recurse=False))}
    assert owners == yaml_param_layers, (
        f"only in torch: {sorted(owners - yaml_param_layers)}; only in yaml: {sorted(yaml_param_layers - owners)}"
    )


def test_expand_follows_naming_rules():
    _, layers = yaml_layers("resnet50")
    names = [n for n, _, _ in layers]
    assert "layer1.0.down_conv" in names and "layer1.1.down_conv" not in names
    assert "layer2.0.conv2" in names and "layer4.2.bn3" in names
    _, layers = yaml_layers("unet")
    names = [n for n, _, _ in layers]
    assert "up3.conv.conv1" in names and "enc1.bn2" in names
    attrs = {n: a for n, _, a in yaml_layers("mobilenet_v2")[1]}
    assert attrs["ir4.0.dw_conv"]["groups"] == 32 * 6
    assert "ir1.expand_conv" not in attrs


@pytest.mark.parametrize(
    "name,n_residual",
    [
        ("mobilenet_v2", 10),  # torchvision: 10 of the 17 blocks have a residual
        ("efficientnet_b0", 9),  # torchvision: 9 of the 16 MBConv blocks
    ],
)
def test_residual_adds_match(name, n_residual, models):
    """The `when:` residual adds are functional in torch; compare them with the
    reference's ``residual`` flags (stride 1 and cin == c)."""
    _, layers = yaml_layers(name)
    yaml_adds = {n.rsplit(".", 1)[0] for n, op, _ in layers if op == "add"}
    mods = dict(models(name).named_modules())
    torch_adds = {n for n, m in mods.items() if getattr(m, "residual", False) is True}
    assert yaml_adds == torch_adds
    assert len(torch_adds) == n_residual


def test_expand_new_nets():
    names = {n: a for n, _, a in yaml_layers("efficientnet_b0")[1]}
    assert "stage1.expand" not in names and "stage2.0.expand" in names
    assert names["stage2.0.se_fc1"]["out_channels"] == 4  # max(1, cin // 4)
    assert names["stage6.1.depthwise"]["groups"] == 192 * 6
    names = {n for n, _, _ in yaml_layers("densenet121")[1]}
    assert "denseblock3.23.conv2" in names and "transition3.conv" in names
    assert "transition4.conv" not in names
    names = {n for n, _, _ in yaml_layers("googlenet")[1]}
    assert "inception3a.branch2.conv" in names and "inception5b.branch4.bn" in names
    names = {n for n, _, _ in yaml_layers("squeezenet1_1")[1]}
    assert "fire2.expand3x3" in names and "fire9.squeeze" in names
