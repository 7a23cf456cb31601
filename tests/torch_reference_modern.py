"""Pure ``torch.nn`` references for modern nets: ConvNeXt-T, ShuffleNetV2 x1.0, ESPCN, a WaveNet-style
causal stack, ViT-B/16, GPT-2 small, a byte-level GPT, and ``nn.TransformerEncoderLayer`` written out.

No archplan import and no torchvision: each net is re-implemented from torchvision's / nanoGPT's source so
that parameter counts and MACs match exactly.  Module names are identifiers, so a YAML net can name its
layers the same way; where torchvision's names are identifiers (``conv_proj``, ``encoder.pos_embedding``,
``self_attention.in_proj_weight``, ``stage2``, ``fc``) they are kept, numeric ``nn.Sequential`` children
(``features.1.0.block.3``) get readable names (``stage1.0.pwconv1``), and repeated blocks keep the numeric
index level that a YAML ``repeat`` produces.

Every attention here is written out (packed ``in_proj`` / ``c_attn`` linear, ``q @ k^T * scale``, softmax,
``@ v``, output projection) so that ``FlopCounterMode`` sees every matmul as ``mm``/``bmm``; torch's fused
paths hide some of them (see ``TRANSFORMER_LAYER_FAST_PATHS``).

``MODERN`` maps a name to ``(builder, input shape at N=1, parameters, MACs or None)``; ``count_params``,
``count_macs``, ``example_input`` and ``on_meta`` are the helpers that later tests use.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _seq(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


# --------------------------------------------------------------------------
# shared building blocks
# --------------------------------------------------------------------------


class Permute(nn.Module):
    """``x.permute(*dims)`` as a module (torchvision.ops.misc.Permute)."""

    def __init__(self, dims: list[int]):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


class LayerNorm2d(nn.LayerNorm):
    """torchvision's ConvNeXt LayerNorm2d: NCHW -> NHWC, LayerNorm over C, back to NCHW.  Its parameters sit
    directly under the module (``norm.weight``, ``norm.bias``) as in torchvision."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: identity in eval mode or at p=0; in training drops whole samples
    ("row") or the whole batch ("batch") with probability ``p`` and rescales the survivors."""

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


class ChannelShuffle(nn.Module):
    """Channel shuffle as torchvision's ShuffleNetV2 writes it: reshape [N, g, C/g, H, W], swap the two
    channel axes, reshape back.  Same result as ``nn.ChannelShuffle(groups)``."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, self.groups, c // self.groups, h, w)
        x = x.transpose(1, 2)
        return x.reshape(n, c, h, w)


class SelfAttention(nn.Module):
    """Multi-head self-attention written out, with ``nn.MultiheadAttention``'s state_dict layout:
    ``in_proj_weight`` [3E, E], ``in_proj_bias`` [3E] (q, k, v stacked), ``out_proj`` Linear(E, E).
    Input and output are batch-first [N, L, E].  ``causal`` masks future positions (scores above the
    diagonal are set to -inf before the softmax); the masked products are still computed and counted."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, causal: bool = False):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.causal = causal
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.attn_dropout = nn.Dropout(dropout)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(_attend(F.linear(x, self.in_proj_weight, self.in_proj_bias), self))


def _attend(qkv: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """Scaled dot-product attention on a packed [N, L, 3E] projection; returns [N, L, E] with the heads
    side by side.  ``module`` supplies ``embed_dim``, ``num_heads``, ``causal`` and ``attn_dropout``."""
    n, length, _ = qkv.shape
    e, h = module.embed_dim, module.num_heads
    q, k, v = (t.reshape(n, length, h, e // h).transpose(1, 2) for t in qkv.split(e, dim=2))
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(e // h))  # [N, h, L, L]
    if module.causal:
        keep = torch.ones(length, length, dtype=torch.bool, device=qkv.device).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    weights = module.attn_dropout(F.softmax(scores, dim=-1))
    return (weights @ v).transpose(1, 2).reshape(n, length, e)


# --------------------------------------------------------------------------
# ConvNeXt-T (torchvision.models.convnext_tiny)
# --------------------------------------------------------------------------


class CNBlock(nn.Module):
    """torchvision CNBlock with the ``block`` Sequential flattened and named: dwconv 7x7 -> NHWC ->
    LayerNorm -> Linear 4x -> GELU -> Linear -> NCHW, times ``layer_scale`` [C, 1, 1] (init 1e-6),
    stochastic depth, plus the input."""

    def __init__(self, dim: int, layer_scale: float = 1e-6, stochastic_depth_prob: float = 0.0):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.to_channels_last = Permute([0, 2, 3, 1])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.to_channels_first = Permute([0, 3, 1, 2])
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale))
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.to_channels_last(self.dwconv(x))
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        y = self.layer_scale * self.to_channels_first(y)
        return self.stochastic_depth(y) + x


class ConvNeXt(nn.Module):
    """``stem`` (conv 4x4/4, norm), ``stage1..4`` (CNBlocks), ``downsample1..3`` (norm, conv 2x2/2) between
    stages, ``avgpool``, ``classifier`` (norm, flatten, fc).  Stochastic depth rises linearly from 0 to
    ``stochastic_depth_prob`` over all blocks, as in torchvision."""

    def __init__(
        self,
        depths=(3, 3, 9, 3),
        dims=(96, 192, 384, 768),
        stochastic_depth_prob: float = 0.1,
        layer_scale: float = 1e-6,
        num_classes: int = 1000,
    ):
        super().__init__()
        self.stem = _seq(
            ("conv", nn.Conv2d(3, dims[0], kernel_size=4, stride=4)),
            ("norm", LayerNorm2d(dims[0], eps=1e-6)),
        )
        total, block_id = sum(depths), 0
        self.stage_names = []
        for i, (depth, dim) in enumerate(zip(depths, dims), 1):
            if i > 1:
                down = _seq(
                    ("norm", LayerNorm2d(dims[i - 2], eps=1e-6)),
                    ("conv", nn.Conv2d(dims[i - 2], dim, kernel_size=2, stride=2)),
                )
                self.add_module(f"downsample{i - 1}", down)
                self.stage_names.append(f"downsample{i - 1}")
            blocks = []
            for _ in range(depth):
                blocks.append(CNBlock(dim, layer_scale, stochastic_depth_prob * block_id / (total - 1.0)))
                block_id += 1
            self.add_module(f"stage{i}", nn.Sequential(*blocks))
            self.stage_names.append(f"stage{i}")
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = _seq(
            ("norm", LayerNorm2d(dims[-1], eps=1e-6)),
            ("flatten", nn.Flatten(1)),
            ("fc", nn.Linear(dims[-1], num_classes)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.classifier(self.avgpool(x))


def convnext_tiny(num_classes: int = 1000) -> nn.Module:
    """torchvision.models.convnext_tiny: 28,589,128 params, 4,455,531,264 MACs at 224."""
    return ConvNeXt((3, 3, 9, 3), (96, 192, 384, 768), stochastic_depth_prob=0.1, num_classes=num_classes)


# --------------------------------------------------------------------------
# ShuffleNetV2 x1.0 (torchvision.models.shufflenet_v2_x1_0)
# --------------------------------------------------------------------------


class ShuffleUnit(nn.Module):
    """torchvision's ShuffleNetV2 InvertedResidual with named children.  Stride 1: split the channels into
    halves by slicing, transform the second half with ``branch2``, concat.  Stride 2: both branches see the
    whole input (``branch1`` = dw 3x3/2 + BN, 1x1 + BN + ReLU).  Then ``shuffle`` (groups 2)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        c = cout // 2
        if stride == 1 and cin != 2 * c:
            raise ValueError(f"stride 1 needs cin == cout, got {cin} -> {cout}")
        self.stride = stride
        if stride > 1:
            self.branch1 = _seq(
                ("dwconv", nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)),
                ("dwbn", nn.BatchNorm2d(cin)),
                ("conv", nn.Conv2d(cin, c, 1, bias=False)),
                ("bn", nn.BatchNorm2d(c)),
                ("relu", nn.ReLU()),
            )
        self.branch2 = _seq(
            ("conv1", nn.Conv2d(cin if stride > 1 else c, c, 1, bias=False)),
            ("bn1", nn.BatchNorm2d(c)),
            ("relu1", nn.ReLU()),
            ("dwconv", nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False)),
            ("dwbn", nn.BatchNorm2d(c)),
            ("conv2", nn.Conv2d(c, c, 1, bias=False)),
            ("bn2", nn.BatchNorm2d(c)),
            ("relu2", nn.ReLU()),
        )
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            half = x.shape[1] // 2
            out = torch.cat([x[:, :half], self.branch2(x[:, half:])], dim=1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        return self.shuffle(out)


def shufflenet_v2_x1_0(num_classes: int = 1000) -> nn.Module:
    """torchvision.models.shufflenet_v2_x1_0: 2,278,604 params, 144,907,992 MACs at 224.  torchvision's
    global pool ``x.mean([2, 3])`` is ``avgpool`` + ``flatten`` here (same values, no parameters)."""
    repeats, channels = (4, 8, 4), (24, 116, 232, 464, 1024)
    layers: list[tuple[str, nn.Module]] = [
        (
            "conv1",
            _seq(
                ("conv", nn.Conv2d(3, channels[0], 3, 2, 1, bias=False)),
                ("bn", nn.BatchNorm2d(channels[0])),
                ("relu", nn.ReLU()),
            ),
        ),
        ("maxpool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
    ]
    cin = channels[0]
    for i, (n, cout) in enumerate(zip(repeats, channels[1:4]), 2):
        units = [ShuffleUnit(cin, cout, 2)] + [ShuffleUnit(cout, cout, 1) for _ in range(n - 1)]
        layers.append((f"stage{i}", nn.Sequential(*units)))
        cin = cout
    layers += [
        (
            "conv5",
            _seq(
                ("conv", nn.Conv2d(cin, channels[-1], 1, bias=False)),
                ("bn", nn.BatchNorm2d(channels[-1])),
                ("relu", nn.ReLU()),
            ),
        ),
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten(1)),
        ("fc", nn.Linear(channels[-1], num_classes)),
    ]
    return _seq(*layers)


# --------------------------------------------------------------------------
# ESPCN (Shi et al. 2016), RGB in and out
# --------------------------------------------------------------------------


def espcn(upscale: int = 3, channels: int = 3) -> nn.Module:
    """Efficient sub-pixel CNN: conv 5x5 64 + tanh, conv 3x3 32 + tanh, conv 3x3 (channels * r^2),
    PixelShuffle(r).  [N, C, H, W] -> [N, C, rH, rW].  'same' padding keeps H, W for any size.
    At r=3, C=3: 4,864 + 18,464 + 7,803 = 31,131 params; 31,008 MACs per input pixel (all conv,
    tanh and pixel shuffle are free).  Receptive field 9x9 input pixels (5 + 2 + 2)."""
    return _seq(
        ("conv1", nn.Conv2d(channels, 64, 5, padding=2)),
        ("tanh1", nn.Tanh()),
        ("conv2", nn.Conv2d(64, 32, 3, padding=1)),
        ("tanh2", nn.Tanh()),
        ("conv3", nn.Conv2d(32, channels * upscale**2, 3, padding=1)),
        ("pixel_shuffle", nn.PixelShuffle(upscale)),
    )


def espcn_macs(h: int, w: int, upscale: int = 3, channels: int = 3) -> int:
    """Closed form: every conv runs at the input resolution."""
    per_pixel = 25 * channels * 64 + 9 * 64 * 32 + 9 * 32 * channels * upscale**2
    return per_pixel * h * w


# --------------------------------------------------------------------------
# WaveNet-style causal dilated stack (van den Oord et al. 2016)
# --------------------------------------------------------------------------


class WaveNetLayer(nn.Module):
    """One residual layer: left-pad by ``(k - 1) * d`` zeros (``pad``), dilated conv k for the filter and
    for the gate (separate convs, so no channel split is needed), z = tanh(filter) * sigmoid(gate),
    ``residual`` 1x1 conv added to the input, ``skip`` 1x1 conv as this layer's skip output.  Length T
    is kept for any T >= 1 and output t sees inputs t - (k-1)d .. t only."""

    def __init__(self, channels: int, skip_channels: int, dilation: int, kernel_size: int = 2):
        super().__init__()
        self.pad = nn.ConstantPad1d(((kernel_size - 1) * dilation, 0), 0.0)
        self.filter_conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.gate_conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.filter_act = nn.Tanh()
        self.gate_act = nn.Sigmoid()
        self.residual = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        padded = self.pad(x)
        z = self.filter_act(self.filter_conv(padded)) * self.gate_act(self.gate_conv(padded))
        return x + self.residual(z), self.skip(z)


class WaveNet(nn.Module):
    """[N, in_channels, T] (one-hot mu-law samples) -> [N, classes, T] logits for the next sample.
    ``input_conv`` 1x1 to ``channels``; ``layers.0..`` WaveNetLayers with dilations 1, 2, 4, ...;
    the skip outputs are summed, then ``relu``, ``output_conv`` 1x1 to ``classes``.  Every layer has a
    residual conv, including the last, whose residual output is computed but not used.
    Receptive field 1 + (k - 1) * sum(dilations) = 256 samples with the defaults."""

    def __init__(
        self,
        in_channels: int = 256,
        channels: int = 32,
        skip_channels: int = 64,
        classes: int = 256,
        dilations=(1, 2, 4, 8, 16, 32, 64, 128),
        kernel_size: int = 2,
    ):
        super().__init__()
        self.input_conv = nn.Conv1d(in_channels, channels, 1)
        self.layers = nn.Sequential(*[WaveNetLayer(channels, skip_channels, d, kernel_size) for d in dilations])
        self.relu = nn.ReLU()
        self.output_conv = nn.Conv1d(skip_channels, classes, 1)
        self.receptive_field = 1 + (kernel_size - 1) * sum(dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_conv(x)
        skips = 0
        for layer in self.layers:
            x, skip = layer(x)
            skips = skips + skip
        return self.output_conv(self.relu(skips))


def wavenet() -> nn.Module:
    """WaveNet stack with the defaults above: 83,488 params, 81,920 MACs per time step."""
    return WaveNet()


def wavenet_macs(n: int, t: int) -> int:
    """Closed form for the default WaveNet: 256*32 input, 8 x (2 * 32*32*2 gated + 32*32 residual +
    32*64 skip), 64*256 output, per sample and time step."""
    return n * t * (256 * 32 + 8 * (2 * 32 * 32 * 2 + 32 * 32 + 32 * 64) + 64 * 256)


# --------------------------------------------------------------------------
# ViT-B/16 (torchvision.models.vit_b_16)
# --------------------------------------------------------------------------


class ViTMLP(nn.Module):
    """torchvision MLPBlock under its legacy child names (``linear_1``, ``linear_2``), which torchvision
    itself still loads."""

    def __init__(self, dim: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        self.linear_1 = nn.Linear(dim, mlp_dim)
        self.act = nn.GELU()
        self.dropout_1 = nn.Dropout(dropout)
        self.linear_2 = nn.Linear(mlp_dim, dim)
        self.dropout_2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout_2(self.linear_2(self.dropout_1(self.act(self.linear_1(x)))))


class EncoderBlock(nn.Module):
    """torchvision ViT EncoderBlock: x + dropout(attn(ln_1(x))), then + mlp(ln_2(.)); LayerNorm eps 1e-6.
    ``self_attention`` is a ``SelfAttention`` (explicit) or an ``nn.MultiheadAttention`` (batch_first);
    both have the same state_dict keys."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, dropout: float = 0.0, use_mha: bool = False):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        if use_mha:
            self.self_attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        else:
            self.self_attention = SelfAttention(dim, num_heads)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = ViTMLP(dim, mlp_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        if isinstance(self.self_attention, nn.MultiheadAttention):
            y = self.self_attention(y, y, y, need_weights=False)[0]
        else:
            y = self.self_attention(y)
        x = x + self.dropout(y)
        return x + self.mlp(self.ln_2(x))


class ViTEncoder(nn.Module):
    """``pos_embedding`` [1, S, D] added, ``dropout``, ``layers.encoder_layer_0..``, final ``ln``."""

    def __init__(self, seq_length: int, num_layers: int, num_heads: int, dim: int, mlp_dim: int, use_mha: bool):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, dim).normal_(std=0.02))
        self.dropout = nn.Dropout(0.0)
        self.layers = nn.Sequential(
            OrderedDict(
                (f"encoder_layer_{i}", EncoderBlock(dim, num_heads, mlp_dim, use_mha=use_mha))
                for i in range(num_layers)
            )
        )
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(nn.Module):
    """torchvision VisionTransformer, same state_dict keys except ``mlp.linear_1/2`` for ``mlp.0/3``:
    ``conv_proj`` (patchify), ``class_token`` [1, 1, D], ``encoder``, ``heads.head``.  Forward: conv_proj,
    flatten(2) + transpose -> [N, S-1, D], concat the class token in front, encoder, take token 0, head."""

    def __init__(
        self,
        image_size: int = 224,
        patch_size: int = 16,
        num_layers: int = 12,
        num_heads: int = 12,
        hidden_dim: int = 768,
        mlp_dim: int = 3072,
        num_classes: int = 1000,
        use_mha: bool = False,
    ):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image size {image_size} is not a multiple of patch size {patch_size}")
        self.image_size = image_size
        self.conv_proj = nn.Conv2d(3, hidden_dim, kernel_size=patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        seq_length = (image_size // patch_size) ** 2 + 1
        self.encoder = ViTEncoder(seq_length, num_layers, num_heads, hidden_dim, mlp_dim, use_mha)
        self.heads = _seq(("head", nn.Linear(hidden_dim, num_classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[2:]) != (self.image_size, self.image_size):
            raise ValueError(f"expected {self.image_size}x{self.image_size} images, got {tuple(x.shape)}")
        x = self.conv_proj(x).flatten(2).transpose(1, 2)  # [N, D, h, w] -> [N, h*w, D]
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.heads(self.encoder(x)[:, 0])


def vit_b_16(num_classes: int = 1000) -> nn.Module:
    """torchvision.models.vit_b_16 with explicit attention: 86,567,656 params, 17,563,828,224 MACs."""
    return VisionTransformer(num_classes=num_classes)


def vit_b_16_mha(num_classes: int = 1000) -> nn.Module:
    """vit_b_16 built on ``nn.MultiheadAttention`` (as torchvision is); same state_dict as ``vit_b_16``.
    Its MAC count depends on torch's attention path, see ``TRANSFORMER_LAYER_FAST_PATHS``."""
    return VisionTransformer(num_classes=num_classes, use_mha=True)


# --------------------------------------------------------------------------
# GPT (nanoGPT / GPT-2 layout)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0


GPT2_SMALL = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
# 256 * 140 + 128 * 140 + 4 * (12 * 140**2 + 13 * 140) + 2 * 140 = 1,002,120 params (head size 35)
BYTE_GPT = GPTConfig(vocab_size=256, block_size=128, n_layer=4, n_head=4, n_embd=140)


class CausalSelfAttention(nn.Module):
    """GPT-2 attention: packed ``c_attn`` Linear(E, 3E), causal explicit attention, ``c_proj``."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.embed_dim, self.num_heads, self.causal = cfg.n_embd, cfg.n_head, True
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resid_dropout(self.c_proj(_attend(self.c_attn(x), self)))


class GPTMLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's "gelu_new"
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class GPTBlock(nn.Module):
    """Pre-norm: x + attn(ln_1(x)), then x + mlp(ln_2(x)); LayerNorm eps 1e-5."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=1e-5)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=1e-5)
        self.mlp = GPTMLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """nanoGPT's GPT with GPT-2's choices (biases, tanh GELU): ``transformer.{wte, wpe, drop, h.0.., ln_f}``
    and ``lm_head`` (no bias) whose weight *is* ``transformer.wte.weight``.  Token ids [N, L] (L <=
    block_size) -> logits [N, L, vocab] at every position."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
                wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
                drop=nn.Dropout(cfg.dropout),
                h=nn.ModuleList([GPTBlock(cfg) for _ in range(cfg.n_layer)]),
                ln_f=nn.LayerNorm(cfg.n_embd, eps=1e-5),
            )
        )
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        length = idx.shape[1]
        if length > self.config.block_size:
            raise ValueError(f"sequence length {length} exceeds block size {self.config.block_size}")
        pos = torch.arange(length, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def gpt2() -> nn.Module:
    """GPT-2 small: 124,439,808 params (tied lm_head counted once, wpe included)."""
    return GPT(GPT2_SMALL)


def byte_gpt() -> nn.Module:
    """Byte-level GPT (vocab 256, context 128, 4 layers, 4 heads, width 140): 1,002,120 params."""
    return GPT(BYTE_GPT)


def gpt_params(cfg: GPTConfig) -> int:
    """wte + wpe + per block (ln_1, c_attn, c_proj, ln_2, c_fc, c_proj: 12 E^2 + 13 E) + ln_f."""
    e = cfg.n_embd
    return cfg.vocab_size * e + cfg.block_size * e + cfg.n_layer * (12 * e * e + 13 * e) + 2 * e


def gpt_macs(cfg: GPTConfig, n: int, length: int) -> int:
    """Every matmul of one forward pass over [n, length] tokens.  Per layer: c_attn n*L*E*3E, q @ k^T
    n*heads*L*L*d_head, attn @ v the same (all L*L products, although half are masked), c_proj n*L*E*E,
    MLP 2 * n*L*E*4E; i.e. 12 n L E^2 + 2 n L^2 E.  Plus lm_head n*L*E*V.  Embeddings are lookups."""
    e = cfg.n_embd
    per_layer = 12 * n * length * e * e + 2 * n * length * length * e
    return cfg.n_layer * per_layer + n * length * e * cfg.vocab_size


def gpt2_macs(n: int, length: int) -> int:
    """GPT-2 small: 123,532,032 * n * L + 18,432 * n * L^2."""
    return gpt_macs(GPT2_SMALL, n, length)


# --------------------------------------------------------------------------
# nn.TransformerEncoderLayer written out
# --------------------------------------------------------------------------


class TransformerEncoderLayer(nn.Module):
    """``nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, batch_first=True)`` with its defaults
    (post-norm, ReLU, LayerNorm eps 1e-5, dropout 0.1) and its state_dict keys: ``self_attn.{in_proj_weight,
    in_proj_bias, out_proj}``, ``linear1``, ``linear2``, ``norm1``, ``norm2``.
    x = norm1(x + dropout1(self_attn(x))); x = norm2(x + dropout2(linear2(dropout(relu(linear1(x))))))."""

    def __init__(self, d_model: int = 512, nhead: int = 8, dim_feedforward: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.self_attn = SelfAttention(d_model, nhead, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=1e-5)
        self.norm2 = nn.LayerNorm(d_model, eps=1e-5)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout1(self.self_attn(x)))
        return self.norm2(x + self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x))))))


def transformer_encoder_layer() -> nn.Module:
    """d_model 512, 8 heads, FFN 2048: 3,152,384 params; 419,430,400 MACs at N=1, L=128."""
    return TransformerEncoderLayer(512, 8, 2048)


def torch_transformer_encoder_layer() -> nn.Module:
    return nn.TransformerEncoderLayer(512, 8, 2048, batch_first=True)


# What FlopCounterMode reports for nn.TransformerEncoderLayer(512, 8, 2048, batch_first=True) at
# N=1, L=128 (torch 2.13, CPU), against 419,430,400 for the explicit layer in any mode:
#  - training mode (any SDPA backend; with dropout > 0 CPU SDPA takes the math path): 419,430,400,
#    projections as addmm and the two attention matmuls as bmm.
#  - eval mode with autograd on: 402,653,184.  The layer's fused fast path is off (it needs no_grad), but
#    F.scaled_dot_product_attention dispatches to aten._scaled_dot_product_flash_attention_for_cpu, for
#    which FlopCounterMode has no formula, so q @ k^T and attn @ v (16,777,216 MACs) are missing.
#    The same holds for nn.MultiheadAttention (e.g. ``vit_b_16_mha``) in eval mode with autograd on.
#  - eval mode under torch.no_grad(): 0.  The whole layer runs as one fused op,
#    aten._transformer_encoder_layer_fwd (nn.MultiheadAttention alone: aten._native_multi_head_attention),
#    and FlopCounterMode neither has a formula for it nor sees the matmuls inside it.
TRANSFORMER_LAYER_FAST_PATHS = {"train": 419_430_400, "eval_grad": 402_653_184, "eval_no_grad": 0}


# --------------------------------------------------------------------------
# registry and helpers
# --------------------------------------------------------------------------

# name: (builder, input shape at N=1, parameters, MACs at that shape or None).  Parameter counts are
# torchvision's / OpenAI's published numbers for convnext_tiny, shufflenet_v2_x1_0, vit_b_16, gpt2 (and the
# brief's for transformer_encoder_layer); for espcn, wavenet and byte_gpt, which have no published count,
# they are the closed forms in this module.  MACs are published (torchvision's "GFLOPS" are MACs) for the
# three vision nets and the layer; espcn_macs, wavenet_macs and gpt_macs give the others.  GPT inputs are
# token ids (int64), see ``example_input``.
MODERN = {
    "convnext_tiny": (convnext_tiny, (1, 3, 224, 224), 28_589_128, 4_455_531_264),
    "shufflenet_v2_x1_0": (shufflenet_v2_x1_0, (1, 3, 224, 224), 2_278_604, 144_907_992),
    "espcn": (espcn, (1, 3, 64, 64), 31_131, None),
    "wavenet": (wavenet, (1, 256, 100), 83_488, None),
    "vit_b_16": (vit_b_16, (1, 3, 224, 224), 86_567_656, 17_563_828_224),
    "gpt2": (gpt2, (1, 1024), 124_439_808, None),
    "byte_gpt": (byte_gpt, (1, 128), 1_002_120, None),
    "transformer_encoder_layer": (transformer_encoder_layer, (1, 128, 512), 3_152_384, 419_430_400),
}

TOKEN_INPUTS = {"gpt2", "byte_gpt"}


def example_input(name: str, shape=None, device=None) -> torch.Tensor:
    """Zeros of ``MODERN[name]``'s input shape (or ``shape``): int64 token ids for the GPTs, else float."""
    shape = MODERN[name][1] if shape is None else shape
    dtype = torch.long if name in TOKEN_INPUTS else torch.float32
    return torch.zeros(shape, dtype=dtype, device=device)


def on_meta(builder, *args, **kwargs) -> nn.Module:
    """Build on the meta device: shapes only, no memory or init cost; FlopCounterMode counts meta
    forwards exactly like real ones (it only reads shapes)."""
    with torch.device("meta"):
        return builder(*args, **kwargs)


def count_params(model: nn.Module) -> int:
    """Unique parameters: a tensor shared by two modules (GPT's wte / lm_head) counts once."""
    return sum({id(p): p.numel() for _, p in model.named_parameters(remove_duplicate=False)}.values())


def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of ``model(*inputs)`` under ``torch.no_grad()``: FlopCounterMode flops // 2.
    The model's train/eval mode is left as it is; for torch's fused modules it changes the count."""
    return macs_and_output(model, *inputs)[0]


def macs_and_output(model: nn.Module, *inputs: torch.Tensor):
    """``(count_macs(model, *inputs), model(*inputs))`` from a single forward pass."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(*inputs)
    return counter.get_total_flops() // 2, out
