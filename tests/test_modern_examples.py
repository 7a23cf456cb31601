"""The modern examples (ConvNeXt-T, ShuffleNetV2 x1.0, ESPCN, WaveNet) against the pure-torch references of
tests/torch_reference_modern.py: totals, layer by layer (names, kinds, key arguments, parameter and buffer
counts), output shapes at several sizes (concrete, and read from the symbolic formulas), `verify`, ConvNeXt's
validity domain against brute force, and receptive fields.

The references run on the meta device (shapes only); the YAML side is archplan's own lowering
(`Net.graph`) and analysis (`Net.analyze`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sympy = pytest.importorskip("sympy")
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_reference_modern as ref  # noqa: E402
from torch_reference_modern import MODERN, count_macs, count_params, example_input, on_meta  # noqa: E402

import archplan  # noqa: E402
from archplan.verify import verify  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = ["convnext_tiny", "shufflenet_v2_x1_0", "espcn", "wavenet"]

# the sizes of MODERN's input shape, by symbol
REFERENCE_SIZES = {
    "convnext_tiny": {"N": 1, "H": 224, "W": 224},
    "shufflenet_v2_x1_0": {"N": 1, "H": 224, "W": 224},
    "espcn": {"N": 1, "H": 64, "W": 64},
    "wavenet": {"N": 1, "T": 100},
}
# further sizes for the shape comparisons: odd ones, where floors and ceilings matter
OTHER_SIZES = {
    "convnext_tiny": [{"N": 2, "H": 32, "W": 32}, {"N": 1, "H": 45, "W": 77}],
    "shufflenet_v2_x1_0": [{"N": 2, "H": 32, "W": 32}, {"N": 1, "H": 17, "W": 50}],
    "espcn": [{"N": 1, "H": 5, "W": 17}, {"N": 2, "H": 17, "W": 9}, {"N": 1, "H": 1, "W": 1}],
    "wavenet": [{"N": 1, "T": 1}, {"N": 2, "T": 7}, {"N": 1, "T": 300}],
}
# small sizes for verify (it builds and runs the generated model)
VERIFY_SIZES = {
    "convnext_tiny": {"N": 1, "H": 32, "W": 32},
    "shufflenet_v2_x1_0": {"N": 1, "H": 32, "W": 32},
    "espcn": {"N": 1, "H": 5, "W": 17},
    "wavenet": {"N": 1, "T": 7},
}


def reference_input(name: str, sizes: dict) -> torch.Tensor:
    dims = ("N", "T") if name == "wavenet" else ("N", "H", "W")
    shape = list(MODERN[name][1])
    for i, d in zip((0, -1) if name == "wavenet" else (0, 2, 3), dims):
        shape[i] = sizes[d]
    return example_input(name, tuple(shape), device="meta")


def at(value, sizes: dict) -> int:
    """A figure of the analysis (int or sympy expression) at concrete sizes."""
    if isinstance(value, int):
        return value
    result = sympy.sympify(value).subs({s: sizes[s.name] for s in value.free_symbols})
    assert result.is_Integer, (value, sizes)
    return int(result)


@pytest.fixture(scope="module")
def nets():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = archplan.load(EXAMPLES / f"{name}.yaml")
        return cache[name]

    return get


@pytest.fixture(scope="module")
def analyses(nets):
    """(name, sizes) -> the analysis, built once; without sizes, N = 1 and every other size symbolic."""
    cache = {}

    def get(name, sizes=None):
        key = (name, tuple(sorted((sizes or {}).items())))
        if key not in cache:
            result = nets(name).analyze(dict(sizes) if sizes else {"N": 1})
            assert result.ok, result.errors
            cache[key] = result
        return cache[key]

    return get


@pytest.fixture(scope="module")
def references():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = on_meta(MODERN[name][0]).eval()
        return cache[name]

    return get


# --------------------------------------------------------------------------
# (a) totals
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_params_and_macs_equal_the_reference(name, analyses, references):
    sizes = REFERENCE_SIZES[name]
    result = analyses(name, sizes)
    model = references(name)
    assert result.totals["params"] == count_params(model) == MODERN[name][2]
    assert result.totals["buffers"] == sum(b.numel() for b in model.buffers())
    macs = count_macs(model, reference_input(name, sizes))
    assert result.totals["macs"] == macs
    if MODERN[name][3] is not None:
        assert macs == MODERN[name][3]


@pytest.mark.parametrize(
    "name,params,macs",
    [("convnext_tiny", 28_589_128, 4_455_531_264), ("shufflenet_v2_x1_0", 2_278_604, 144_907_992)],
)
def test_published_figures(name, params, macs, analyses):
    """torchvision's figures at 1x3x224x224, as `archplan check --set N=1 --set H=224 --set W=224` gives them."""
    totals = analyses(name, REFERENCE_SIZES[name]).totals
    assert (totals["params"], totals["macs"]) == (params, macs)


@pytest.mark.parametrize(
    "name,closed_form",
    [
        ("espcn", lambda s: ref.espcn_macs(s["H"], s["W"]) * s["N"]),
        ("wavenet", lambda s: ref.wavenet_macs(s["N"], s["T"])),
    ],
)
def test_symbolic_macs_equal_the_closed_forms(name, closed_form, nets):
    result = nets(name).analyze()
    assert result.ok, result.errors
    macs = result.totals["macs"]
    assert {s.name for s in macs.free_symbols} == ({"N", "H", "W"} if name == "espcn" else {"N", "T"})
    for sizes in [REFERENCE_SIZES[name], *OTHER_SIZES[name]]:
        assert at(macs, sizes) == closed_form(sizes)
    assert at(result.totals["params"], {}) == MODERN[name][2]


# --------------------------------------------------------------------------
# (b) layer by layer
# --------------------------------------------------------------------------


def _kind(module: nn.Module, parameter: str) -> str:
    """The YAML op a reference parameter belongs to: a learned tensor (nn.Parameter on a block) is a
    `parameter` layer named as its state_dict key; weights and biases belong to their module's op."""
    if parameter not in ("weight", "bias"):
        return "parameter"
    for cls in (nn.Conv1d, nn.Conv2d, nn.Linear, nn.LayerNorm, nn.BatchNorm2d):
        if isinstance(module, cls):  # LayerNorm2d is an nn.LayerNorm
            return cls.__name__.lower()
    raise AssertionError(f"unexpected parameter owner {type(module).__name__}")


def _arguments(module: nn.Module) -> dict:
    """The arguments of a reference module that the YAML must repeat, in archplan's evaluated form."""
    if isinstance(module, nn.modules.conv._ConvNd):
        keys = ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups")
        return {**{k: getattr(module, k) for k in keys}, "bias": module.bias is not None}
    if isinstance(module, nn.Linear):
        return {"out_features": module.out_features, "bias": module.bias is not None}
    if isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
        return {"eps": module.eps}
    return {}


def reference_layers(model: nn.Module) -> dict:
    """YAML layer name -> (op, parameters, buffers, arguments) for every module of the reference that
    owns parameters or buffers."""
    layers: dict = {}
    for path, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            layer = path if pname in ("weight", "bias") else f"{path}.{pname}"
            kind, n, b, args = layers.get(layer, (_kind(module, pname), 0, 0, {}))
            args = _arguments(module) if kind != "parameter" else {"shape": tuple(p.shape)}
            layers[layer] = (kind, n + p.numel(), b, args)
        for _, buf in module.named_buffers(recurse=False):
            kind, n, b, args = layers[path]
            layers[path] = (kind, n, b + buf.numel(), args)
    return layers


@pytest.mark.parametrize("name", NAMES)
def test_layer_by_layer(name, nets, analyses, references):
    sizes = REFERENCE_SIZES[name]
    graph = nets(name).graph(sizes)
    result = analyses(name, sizes)
    theirs = reference_layers(references(name))
    ours = {
        row.name: (graph.nodes[row.name].op.name.lower(), row.params, row.buffers)
        for row in result.layers
        if row.params or row.buffers
    }
    assert set(ours) == set(theirs), (sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs)))
    for layer, (kind, params, buffers, args) in theirs.items():
        assert ours[layer] == (kind, params, buffers), layer
        node_args = graph.nodes[layer].args
        for key, want in args.items():
            assert node_args[key] == want, f"{layer}.{key}: yaml {node_args[key]!r}, torch {want!r}"


def test_every_layer_of_the_references_is_counted(references):
    """The comparison above sees every parameter: nothing owned by a module the YAML names differently."""
    for name in NAMES:
        model = references(name)
        assert sum(n for _, n, _, _ in reference_layers(model).values()) == count_params(model)


def test_convnext_stochastic_depth_schedule(nets, references):
    """torchvision's p rises as 0.1 * k / 17 over the 18 blocks; examples/convnext_tiny.yaml writes it with the
    copy's `index`, so every block has the reference's p."""
    graph = nets("convnext_tiny").graph(REFERENCE_SIZES["convnext_tiny"])
    model = references("convnext_tiny")
    for stage in range(1, 5):
        blocks = list(getattr(model, f"stage{stage}"))
        ours = [graph.nodes[f"stage{stage}.{i}.stochastic_depth"] for i in range(len(blocks))]
        assert all(node.args["mode"] == b.stochastic_depth.mode == "row" for node, b in zip(ours, blocks))
        assert [n.args["p"] for n in ours] == pytest.approx([b.stochastic_depth.p for b in blocks], abs=1e-12)
    assert graph.nodes["stage1.0.stochastic_depth"].args["p"] == 0.0
    assert graph.nodes["stage1.0.layer_scale"].args["value"] == 1e-6


# --------------------------------------------------------------------------
# (c) output shapes, concrete and from the symbolic formulas
# --------------------------------------------------------------------------


def compared_layer(path: str, module: nn.Module) -> str:
    """The YAML layer whose output is the reference module's: torchvision's LayerNorm2d returns NCHW, and
    the YAML writes it as permute, `norm`, permute, so its output is the sibling `to_channels_first`."""
    if isinstance(module, ref.LayerNorm2d):
        return path.rsplit(".", 1)[0] + ".to_channels_first"
    return path


def reference_shapes(name: str, model: nn.Module, sizes: dict) -> tuple[dict, tuple]:
    """YAML layer name -> output shape of the matching reference module (compared_layer), and the net's
    output shape."""
    shapes, hooks = {}, []
    for path, module in model.named_modules():
        if not path:
            continue
        layer = compared_layer(path, module)

        def hook(_module, _inputs, output, layer=layer):
            if isinstance(output, torch.Tensor):
                shapes[layer] = tuple(output.shape)

        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = model(reference_input(name, sizes))
    finally:
        for h in hooks:
            h.remove()
    return shapes, tuple(out.shape)


@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_at_several_sizes(name, analyses, references):
    symbolic = analyses(name)
    model = references(name)
    modules = dict(model.named_modules())
    owners = {
        compared_layer(path, modules[path])
        for path, module in modules.items()
        if any(p in ("weight", "bias") for p, _ in module.named_parameters(recurse=False))
    }  # layers with weights (a CNBlock's own layer_scale is no module output)
    for sizes in [REFERENCE_SIZES[name], *OTHER_SIZES[name]]:
        concrete = analyses(name, sizes)
        theirs, out = reference_shapes(name, model, sizes)
        ours = {row.name: row.output_shape for row in concrete.layers}
        compared = {layer for layer in theirs if layer in ours}
        assert owners <= compared
        assert len(compared) > len(owners) // 2
        for layer in compared:
            assert tuple(ours[layer]) == theirs[layer], (layer, sizes)
            # the symbolic analysis' formula gives it too (it has N = 1: the batch dim is compared above)
            formula = symbolic.layer(layer).output_shape
            assert tuple(at(d, {**sizes, "N": 1}) for d in formula)[1:] == theirs[layer][1:], (layer, sizes)
        (shape,) = concrete.outputs.values()
        assert tuple(shape) == out


@pytest.mark.parametrize(
    "name,formula",
    [
        ("convnext_tiny", ("N", "1000")),
        ("shufflenet_v2_x1_0", ("N", "1000")),
        ("espcn", ("N", "3", "3*H", "3*W")),
        ("wavenet", ("N", "256", "T")),
    ],
)
def test_output_shape_formulas(name, formula, nets):
    result = nets(name).analyze()
    assert result.ok, result.errors
    (shape,) = result.outputs.values()
    assert tuple(str(d) for d in shape) == formula
    if name == "espcn":
        for h, w in [(5, 17), (17, 9)]:
            assert at(shape[2], {"H": h}) == 3 * h and at(shape[3], {"W": w}) == 3 * w


# --------------------------------------------------------------------------
# (d) verify: the generated model against the analysis, layer by layer
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_verify(name, nets):
    report = verify(nets(name), VERIFY_SIZES[name])
    assert report.ok, ([(c.layer, c.problems) for c in report.failures], report.total_failures)
    assert len(report.layers) == len(nets(name).analyze(VERIFY_SIZES[name]).layers) and report.totals


# --------------------------------------------------------------------------
# (e) validity domains
# --------------------------------------------------------------------------


def test_convnext_domain_equals_brute_force(nets, references):
    """Stem 4x4/4 and three 2x2/2 downsamples floor the size; the last one needs floor(H / 32) >= 1, so every
    H >= 32 works (H % 32 only decides how many border pixels are never read)."""
    net = nets("convnext_tiny")
    free = net.analyze({"N": 1, "W": 64})
    assert free.ok and free.constraints == ["H >= 32"] and free.minimum_sizes == {"H": 32}
    domain = free.domains["H"]
    valid = {h for h in range(1, 101) if net.analyze({"N": 1, "H": h, "W": 64}).ok}
    assert valid == {h for h in range(1, 101) if h in domain} == set(range(32, 101))
    both = net.analyze({"N": 1})
    assert both.constraints == ["H >= 32", "W >= 32"]
    model = references("convnext_tiny")
    for h, ok in [(31, False), (32, True), (33, True), (63, True)]:
        x = reference_input("convnext_tiny", {"N": 1, "H": h, "W": 64})
        if ok:
            with torch.no_grad():
                assert tuple(model(x).shape) == (1, 1000)
        else:
            with pytest.raises(RuntimeError), torch.no_grad():
                model(x)


@pytest.mark.parametrize("name", ["shufflenet_v2_x1_0", "espcn", "wavenet"])
def test_valid_for_every_size(name, nets, references):
    free = nets(name).analyze()
    assert free.ok and free.constraints == [], free.constraints
    smallest = {"N": 1, "H": 1, "W": 1, "T": 1}
    assert nets(name).analyze({k: v for k, v in smallest.items() if k in nets(name).symbols}).ok
    with torch.no_grad():
        references(name)(reference_input(name, smallest))


# --------------------------------------------------------------------------
# (f) receptive fields
# --------------------------------------------------------------------------


def test_convnext_permutes_keep_the_conv_field_and_the_head_is_global(analyses):
    result = analyses("convnext_tiny")
    rows = {row.name: row for row in result.layers}
    blocks = sorted({n.rsplit(".", 1)[0] for n in rows if n.endswith(".dwconv")})
    assert len(blocks) == 18
    for block in blocks:
        field = rows[f"{block}.dwconv"].receptive_field
        assert field is not None and field[0].size > 7
        for layer in ("to_channels_last", "norm", "pwconv1", "act", "pwconv2", "to_channels_first", "add"):
            assert rows[f"{block}.{layer}"].receptive_field == field, f"{block}.{layer}"
    before = {"stem": "stem.conv", "downsample1": "stage1.2.add", "downsample2": "stage2.2.add"}
    before["downsample3"] = "stage3.8.add"
    for prefix, conv in before.items():  # LayerNorm2d keeps the field of what it normalises
        for layer in ("to_channels_last", "norm", "to_channels_first"):
            assert rows[f"{prefix}.{layer}"].receptive_field == rows[conv].receptive_field
    assert rows["stem.conv"].receptive_field[0].size == 4
    assert rows["stage4.2.add"].receptive_field[0].size == 1688  # stays local up to the global pool
    for layer in ("avgpool", "classifier.norm", "classifier.flatten", "classifier.fc"):
        assert rows[layer].field.whole and rows[layer].receptive_field is None, layer


def test_shufflenet_head_is_global(analyses):
    rows = {row.name: row for row in analyses("shufflenet_v2_x1_0").layers}
    assert not rows["conv5.relu"].field.whole
    for layer in ("avgpool", "flatten", "fc"):
        assert rows[layer].field.whole, layer


def test_espcn_and_wavenet_fields_match_the_references(analyses):
    """ESPCN: 9x9 low-resolution pixels (5 + 2 + 2), 3 output pixels per input pixel.  WaveNet: output t sees
    t - 255 .. t (tests/test_torch_reference_modern.py checks both with gradients)."""
    rows = {row.name: row for row in analyses("espcn").layers}
    for axis in rows["pixel_shuffle"].receptive_field:
        assert (axis.size, axis.stride) == (9, sympy.Rational(1, 3))
        assert axis.padding - 31 * axis.stride == -6  # output 31 starts at input 31 // 3 - 4
    rows = {row.name: row for row in analyses("wavenet").layers}
    (axis,) = rows["output_conv"].receptive_field
    assert (axis.size, axis.stride, axis.padding) == (ref.wavenet().receptive_field, 1, 255)
