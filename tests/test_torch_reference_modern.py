"""Checks the modern pure-torch references (tests/torch_reference_modern.py) against published parameter
counts and MACs, the closed forms in that module, and torch's own modules (nn.ChannelShuffle,
nn.MultiheadAttention, nn.TransformerEncoderLayer).

Heavy nets are built once per module (real weights) or on the meta device, where FlopCounterMode counts
from shapes alone.  Needs only torch and pytest.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_reference_modern as ref
from torch_reference_modern import MODERN, count_macs, count_params, example_input, macs_and_output, on_meta

NAMES = sorted(MODERN)
PUBLISHED_MACS = sorted(name for name, entry in MODERN.items() if entry[3] is not None)

OUTPUT_SHAPES = {
    "convnext_tiny": (1, 1000),
    "shufflenet_v2_x1_0": (1, 1000),
    "espcn": (1, 3, 192, 192),
    "wavenet": (1, 256, 100),
    "vit_b_16": (1, 1000),
    "gpt2": (1, 1024, 50257),
    "byte_gpt": (1, 128, 256),
    "transformer_encoder_layer": (1, 128, 512),
}

# Real-weight runs at MODERN's input shape; GPT-2 at L=1024 takes several seconds, so the real run uses
# L=64 here (its L=1024 count and shape are checked on meta, and for real in a slow test).
REAL_SHAPES = {"gpt2": (2, 64)}


@pytest.fixture(scope="module")
def real():
    """name -> (eval-mode model with real weights, its MACs, its output) for REAL_SHAPES or MODERN's
    input; each net is built and run once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            model = MODERN[name][0]().eval()
            x = example_input(name, REAL_SHAPES.get(name))
            cache[name] = (model, *macs_and_output(model, x))
        return cache[name]

    return get


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------


def test_registry_entries_are_well_formed():
    assert set(OUTPUT_SHAPES) == set(MODERN)
    for name, (builder, shape, params, macs) in MODERN.items():
        assert callable(builder) and shape[0] == 1 and params > 0, name
        assert macs is None or macs > 0, name
    assert example_input("gpt2").dtype == torch.long
    assert example_input("vit_b_16").dtype == torch.float32


def test_builders_return_fresh_modules():
    a, b = ref.espcn(), ref.espcn()
    assert a is not b and a.conv1.weight is not b.conv1.weight


def test_count_params_counts_tied_weights_once():
    model = on_meta(ref.byte_gpt)
    assert model.lm_head.weight is model.transformer.wte.weight
    every = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    assert every - count_params(model) == 256 * 140


# --------------------------------------------------------------------------
# parameters, MACs, output shapes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_params_on_meta(name):
    assert count_params(on_meta(MODERN[name][0])) == MODERN[name][2]


@pytest.mark.parametrize("name", NAMES)
def test_meta_macs_and_output_shape(name):
    """The full MODERN input shape (GPT-2 at L=1024 included) costs nothing on meta."""
    model = on_meta(MODERN[name][0])
    x = example_input(name, device="meta")
    expected = {
        "espcn": ref.espcn_macs(64, 64),
        "wavenet": ref.wavenet_macs(1, 100),
        "gpt2": ref.gpt2_macs(1, 1024),
        "byte_gpt": ref.gpt_macs(ref.BYTE_GPT, 1, 128),
    }.get(name, MODERN[name][3])
    assert count_macs(model, x) == expected
    with torch.no_grad():
        assert tuple(model(x).shape) == OUTPUT_SHAPES[name]


@pytest.mark.parametrize("name", PUBLISHED_MACS)
def test_published_macs_with_real_weights(name, real):
    assert real(name)[1] == MODERN[name][3]


@pytest.mark.parametrize("name", sorted(set(NAMES) - set(REAL_SHAPES)))
def test_real_output_shape_and_finite(name, real):
    out = real(name)[2]
    assert tuple(out.shape) == OUTPUT_SHAPES[name]
    assert torch.isfinite(out).all()


def test_closed_forms_of_the_derived_counts():
    assert 25 * 3 * 64 + 64 + 9 * 64 * 32 + 32 + 9 * 32 * 27 + 27 == MODERN["espcn"][2]
    per_layer = 2 * (32 * 32 * 2 + 32) + (32 * 32 + 32) + (32 * 64 + 64)
    assert 256 * 32 + 32 + 8 * per_layer + 64 * 256 + 256 == MODERN["wavenet"][2]
    assert ref.gpt_params(ref.BYTE_GPT) == MODERN["byte_gpt"][2] == 1_002_120
    assert ref.gpt_params(ref.GPT2_SMALL) == MODERN["gpt2"][2] == 124_439_808


# --------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------


@pytest.mark.parametrize("groups,channels", [(2, 8), (2, 116), (3, 12), (4, 8)])
def test_channel_shuffle_equals_torch(groups, channels):
    torch.manual_seed(0)
    x = torch.randn(2, channels, 5, 3)
    expected = nn.ChannelShuffle(groups)(x)
    assert torch.equal(ref.ChannelShuffle(groups)(x), expected)
    if groups == 2:  # shuffle puts channel i of either half at 2i / 2i + 1
        assert torch.equal(expected[:, 0::2], x[:, : channels // 2])


def test_layernorm2d_equals_manual_normalisation():
    torch.manual_seed(0)
    norm = ref.LayerNorm2d(6, eps=1e-6)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(2, 6, 4, 5) * 3 + 1
    mean = x.mean(dim=1, keepdim=True)
    var = x.var(dim=1, keepdim=True, unbiased=False)
    manual = (x - mean) / torch.sqrt(var + 1e-6) * norm.weight.view(1, 6, 1, 1) + norm.bias.view(1, 6, 1, 1)
    torch.testing.assert_close(norm(x), manual, atol=1e-5, rtol=1e-5)


def test_stochastic_depth_drops_whole_rows_in_training_only():
    torch.manual_seed(0)
    x = torch.randn(64, 3, 2, 2) + 5
    sd = ref.StochasticDepth(0.5, "row")
    assert torch.equal(sd.eval()(x), x)
    assert torch.equal(ref.StochasticDepth(0.0).train()(x), x)
    y = sd.train()(x)
    kept = (y != 0).flatten(1).all(dim=1)
    dropped = (y == 0).flatten(1).all(dim=1)
    assert bool((kept | dropped).all()) and 0 < int(kept.sum()) < 64
    torch.testing.assert_close(y[kept], x[kept] * 2)


def test_convnext_block_details():
    model = on_meta(ref.convnext_tiny)
    blocks = [b for i in range(1, 5) for b in getattr(model, f"stage{i}")]
    assert [b.stochastic_depth.p for b in (blocks[0], blocks[-1])] == [0.0, pytest.approx(0.1)]
    assert tuple(model.stage3[0].layer_scale.shape) == (384, 1, 1)
    real_block = ref.CNBlock(8)
    assert torch.equal(real_block.layer_scale, torch.full((8, 1, 1), 1e-6))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_convnext_runs_small_inputs_in_both_modes(mode):
    torch.manual_seed(0)
    model = ref.convnext_tiny().train(mode == "train")
    with torch.no_grad():
        assert tuple(model(torch.randn(2, 3, 32, 32)).shape) == (2, 1000)


@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_equals_multihead_attention(causal):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    explicit = ref.SelfAttention(32, 4, causal=causal).eval()
    explicit.load_state_dict(mha.state_dict())
    x = torch.randn(3, 10, 32)
    mask = nn.Transformer.generate_square_subsequent_mask(10) if causal else None
    expected = mha(x, x, x, need_weights=False, attn_mask=mask)[0]
    torch.testing.assert_close(explicit(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("length", [1, 7, 100])
def test_wavenet_keeps_length(length):
    torch.manual_seed(0)
    model = ref.wavenet().eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(2, 256, length)).shape) == (2, 256, length)
    layer = ref.WaveNetLayer(4, 6, dilation=8)
    res, skip = layer(torch.randn(1, 4, length))
    assert tuple(res.shape) == (1, 4, length) and tuple(skip.shape) == (1, 6, length)


@pytest.mark.parametrize("t", [0, 40, 299])
def test_wavenet_is_causal_with_receptive_field_256(t):
    """d out[..., t] / d x is exactly zero after t and before t - 255, and nonzero on [t - 255, t]."""
    torch.manual_seed(0)
    model = ref.wavenet().eval()
    assert model.receptive_field == 256
    x = torch.randn(1, 256, 300, requires_grad=True)
    model(x)[0, :, t].sum().backward()
    reach = x.grad.abs().sum(dim=(0, 1)) != 0
    expected = torch.zeros(300, dtype=torch.bool)
    expected[max(0, t - 255) : t + 1] = True
    assert torch.equal(reach, expected)


def test_espcn_shapes_macs_and_receptive_field():
    torch.manual_seed(0)
    model = ref.espcn().eval()
    for h, w in [(1, 1), (17, 9), (64, 64)]:
        x = torch.randn(2, 3, h, w)
        assert tuple(model(x).shape) == (2, 3, 3 * h, 3 * w)
        assert count_macs(model, x) == 2 * ref.espcn_macs(h, w)
    # output pixel (31, 29) lies in low-res pixel (10, 9); it sees the 9x9 window around it
    x = torch.randn(1, 3, 20, 20, requires_grad=True)
    model(x)[0, :, 31, 29].sum().backward()
    reach = x.grad.abs().sum(dim=(0, 1)) != 0
    expected = torch.zeros(20, 20, dtype=torch.bool)
    expected[6:15, 5:14] = True
    assert torch.equal(reach, expected)


def test_shufflenet_units():
    torch.manual_seed(0)
    down, keep = ref.ShuffleUnit(24, 116, 2).eval(), ref.ShuffleUnit(116, 116, 1).eval()
    x = torch.randn(1, 24, 16, 16)
    with torch.no_grad():
        y = down(x)
        assert tuple(y.shape) == (1, 116, 8, 8)
        z = keep(y)
    assert not hasattr(keep, "branch1")
    # stride 1: the first half passes through untouched, then lands on the even channels
    assert torch.equal(z[:, 0::2], y[:, :58])
    with pytest.raises(ValueError):
        ref.ShuffleUnit(24, 116, 1)


# --------------------------------------------------------------------------
# state_dict layout
# --------------------------------------------------------------------------

KEYS = {
    "convnext_tiny": [
        "stem.conv.weight",
        "stem.norm.weight",
        "stage1.0.dwconv.weight",
        "stage1.0.pwconv1.weight",
        "stage1.0.layer_scale",
        "downsample3.conv.bias",
        "stage4.2.pwconv2.bias",
        "classifier.norm.bias",
        "classifier.fc.weight",
    ],
    "shufflenet_v2_x1_0": [
        "conv1.conv.weight",
        "conv1.bn.running_mean",
        "stage2.0.branch1.dwconv.weight",
        "stage2.0.branch2.conv1.weight",
        "stage3.7.branch2.bn2.bias",
        "conv5.conv.weight",
        "fc.weight",
    ],
    "espcn": ["conv1.weight", "conv3.bias"],
    "wavenet": ["input_conv.weight", "layers.7.filter_conv.weight", "layers.0.gate_conv.bias", "output_conv.weight"],
    "vit_b_16": [
        "conv_proj.weight",
        "class_token",
        "encoder.pos_embedding",
        "encoder.layers.encoder_layer_0.ln_1.weight",
        "encoder.layers.encoder_layer_0.self_attention.in_proj_weight",
        "encoder.layers.encoder_layer_11.self_attention.out_proj.bias",
        "encoder.layers.encoder_layer_5.mlp.linear_1.weight",
        "encoder.ln.weight",
        "heads.head.weight",
    ],
    "gpt2": [
        "transformer.wte.weight",
        "transformer.wpe.weight",
        "transformer.h.0.attn.c_attn.weight",
        "transformer.h.11.mlp.c_proj.bias",
        "transformer.ln_f.weight",
        "lm_head.weight",
    ],
    "transformer_encoder_layer": list(ref.torch_transformer_encoder_layer().state_dict()),
}


@pytest.mark.parametrize("name", sorted(KEYS))
def test_state_dict_keys(name):
    keys = list(on_meta(MODERN[name][0]).state_dict())
    assert set(KEYS[name]) <= set(keys)
    if name == "transformer_encoder_layer":
        assert keys == KEYS[name]
    # every module path is made of identifiers and repeat indices, as a YAML net can name its layers
    for key in keys:
        assert all(part.isidentifier() or part.isdigit() for part in key.split(".")), key


# --------------------------------------------------------------------------
# ViT-B/16: explicit attention vs nn.MultiheadAttention
# --------------------------------------------------------------------------


def test_vit_mha_variant_has_the_same_state_dict():
    explicit, mha = on_meta(ref.vit_b_16), on_meta(ref.vit_b_16_mha)
    a = {k: tuple(v.shape) for k, v in explicit.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in mha.state_dict().items()}
    assert a == b
    assert count_params(explicit) == count_params(mha) == 86_567_656


def test_vit_variants_agree_on_outputs():
    torch.manual_seed(0)
    small = dict(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=10)
    explicit = ref.VisionTransformer(**small).eval()
    mha = ref.VisionTransformer(**small, use_mha=True).eval()
    with torch.no_grad():
        for p in explicit.parameters():  # torchvision zero-initialises the head; make the check meaningful
            p.normal_(std=0.2)
    mha.load_state_dict(explicit.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(explicit(x), mha(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        explicit(torch.randn(1, 3, 48, 48))


def test_vit_mha_variant_counts_every_matmul_on_the_math_path():
    torch.manual_seed(0)
    model = ref.vit_b_16_mha().train()  # training mode: no fused inference path
    with sdpa_kernel(SDPBackend.MATH):
        assert count_macs(model, example_input("vit_b_16")) == 17_563_828_224


# --------------------------------------------------------------------------
# GPT
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n,length", [(1, 1), (1, 8), (2, 64), (3, 100), (1, 1024)])
def test_gpt2_macs_closed_form(n, length):
    """Counted on meta, so L=1024 is free; ``test_gpt2_meta_count_equals_real_count`` ties meta to real."""
    model = on_meta(ref.gpt2)
    x = torch.zeros(n, length, dtype=torch.long, device="meta")
    assert count_macs(model, x) == ref.gpt2_macs(n, length) == 123_532_032 * n * length + 18_432 * n * length**2


def test_gpt2_meta_count_equals_real_count(real):
    assert real("gpt2")[1] == ref.gpt2_macs(2, 64)
    assert tuple(real("gpt2")[2].shape) == (2, 64, 50257)


def test_gpt2_rejects_sequences_longer_than_its_context():
    with pytest.raises(ValueError):
        on_meta(ref.gpt2)(torch.zeros(1, 1025, dtype=torch.long, device="meta"))


@pytest.mark.parametrize("n,length", [(1, 1), (2, 17), (1, 128)])
def test_byte_gpt_macs_and_shape(n, length):
    torch.manual_seed(0)
    model = ref.byte_gpt().eval()
    x = torch.randint(0, 256, (n, length))
    assert count_macs(model, x) == ref.gpt_macs(ref.BYTE_GPT, n, length)
    with torch.no_grad():
        assert tuple(model(x).shape) == (n, length, 256)


def test_gpt_is_causal():
    """Changing token t changes the logits at t and after, never before."""
    torch.manual_seed(0)
    model = ref.byte_gpt().eval()
    x = torch.randint(0, 256, (1, 32))
    y = x.clone()
    y[0, 20] = (x[0, 20] + 1) % 256
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :20], b[:, :20], atol=0, rtol=0)
    assert not torch.allclose(a[:, 20:], b[:, 20:])


@pytest.mark.slow
def test_gpt2_full_context_with_real_weights():
    """GPT-2 at L=1024 on CPU: one forward, ~7-15 s on 2 cores (146 GMACs, logits of 1024 x 50257)."""
    torch.manual_seed(0)
    model = ref.gpt2().eval()
    x = torch.randint(0, 50257, (1, 1024))
    macs, out = macs_and_output(model, x)
    assert macs == ref.gpt2_macs(1, 1024)
    assert tuple(out.shape) == (1, 1024, 50257) and torch.isfinite(out).all()


# --------------------------------------------------------------------------
# nn.TransformerEncoderLayer
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder_layers():
    torch.manual_seed(0)
    theirs = ref.torch_transformer_encoder_layer()
    ours = ref.transformer_encoder_layer()
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours, torch.randn(1, 128, 512)


def test_encoder_layer_params(encoder_layers):
    theirs, ours, _ = encoder_layers
    assert count_params(theirs) == count_params(ours) == 3_152_384


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_explicit_encoder_layer_macs(mode, encoder_layers):
    _, ours, x = encoder_layers
    assert count_macs(ours.train(mode == "train"), x) == 419_430_400
    ours.eval()


@pytest.mark.parametrize("grad", [False, True])
def test_encoder_layer_outputs_agree(grad, encoder_layers):
    """Eval mode (dropout inactive): under no_grad torch runs its fused layer, with grad the SDPA path."""
    theirs, ours, x = encoder_layers
    theirs.eval()
    ours.eval()
    with torch.set_grad_enabled(grad):
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)


def test_torch_encoder_layer_flop_counts_per_path(encoder_layers):
    """What FlopCounterMode sees of nn.TransformerEncoderLayer on each path (see the comment at
    TRANSFORMER_LAYER_FAST_PATHS); if torch starts counting its fused kernels, update that comment."""
    from torch.utils.flop_counter import FlopCounterMode

    theirs, _, x = encoder_layers

    def macs(train: bool, grad: bool) -> int:
        theirs.train(train)
        with torch.set_grad_enabled(grad), FlopCounterMode(display=False) as counter:
            theirs(x)
        return counter.get_total_flops() // 2

    with sdpa_kernel(SDPBackend.MATH):
        assert macs(train=True, grad=True) == 419_430_400
    assert macs(train=True, grad=False) == ref.TRANSFORMER_LAYER_FAST_PATHS["train"]
    assert macs(train=False, grad=True) == ref.TRANSFORMER_LAYER_FAST_PATHS["eval_grad"]
    assert macs(train=False, grad=False) == ref.TRANSFORMER_LAYER_FAST_PATHS["eval_no_grad"]
    theirs.eval()
