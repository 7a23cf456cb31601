"""Pure ``torch.nn`` reference implementations of the example nets.

Every builder returns an ``nn.Module`` whose submodule names mirror the
hierarchical layer names of the matching ``examples/<name>.yaml`` (block
instances become submodules, repeated blocks become ``nn.Sequential`` with
children ``0``, ``1``, ...).  Layers that are functional in torch (add,
concat, mul) have no module.  No torchvision: the torchvision nets (AlexNet,
VGG16, ResNet-18/50, MobileNetV2, DenseNet-121, SqueezeNet 1.1, GoogLeNet,
EfficientNet-B0) are re-implemented layer by layer and have
exactly torchvision's parameter counts and MACs.

``REFERENCES`` maps an example name to ``(builder, yaml path, input shape)``,
the input shape at N=1 with the example's default H/W.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _seq(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


# --------------------------------------------------------------------------
# small digit nets (1 x 28 x 28)
# --------------------------------------------------------------------------


def lenet() -> nn.Module:
    """Theano tutorial LeNet: 431,080 params."""
    return _seq(
        ("conv1", nn.Conv2d(1, 20, 5)),
        ("pool1", nn.MaxPool2d(2)),
        ("tanh1", nn.Tanh()),
        ("conv2", nn.Conv2d(20, 50, 5)),
        ("pool2", nn.MaxPool2d(2)),
        ("tanh2", nn.Tanh()),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(50 * 4 * 4, 500)),
        ("tanh3", nn.Tanh()),
        ("fc2", nn.Linear(500, 10)),
    )


def keras_mnist() -> nn.Module:
    """Keras MNIST convnet: 93,322 params."""
    return _seq(
        ("conv1", nn.Conv2d(1, 32, 3)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(32, 64, 3)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),
        ("conv3", nn.Conv2d(64, 64, 3)),
        ("relu3", nn.ReLU()),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(64 * 3 * 3, 64)),
        ("relu4", nn.ReLU()),
        ("fc2", nn.Linear(64, 10)),
    )


def simple_convnet() -> nn.Module:
    """'Deep Learning from Scratch' SimpleConvNet: 433,890 params."""
    return _seq(
        ("conv1", nn.Conv2d(1, 30, 5, stride=1, padding=0)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2, stride=2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(30 * 12 * 12, 100)),
        ("relu2", nn.ReLU()),
        ("fc2", nn.Linear(100, 10)),
    )


# --------------------------------------------------------------------------
# torchvision classics
# --------------------------------------------------------------------------


def alexnet(num_classes: int = 1000) -> nn.Module:
    """torchvision.models.alexnet, flattened: 61,100,840 params."""
    return _seq(
        ("conv1", nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("conv2", nn.Conv2d(64, 192, kernel_size=5, padding=2)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("conv3", nn.Conv2d(192, 384, kernel_size=3, padding=1)),
        ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(384, 256, kernel_size=3, padding=1)),
        ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(256, 256, kernel_size=3, padding=1)),
        ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("avgpool", nn.AdaptiveAvgPool2d(6)),
        ("flatten", nn.Flatten()),
        ("drop6", nn.Dropout(p=0.5)),
        ("fc6", nn.Linear(256 * 6 * 6, 4096)),
        ("relu6", nn.ReLU()),
        ("drop7", nn.Dropout(p=0.5)),
        ("fc7", nn.Linear(4096, 4096)),
        ("relu7", nn.ReLU()),
        ("fc8", nn.Linear(4096, num_classes)),
    )


def vgg16(num_classes: int = 1000) -> nn.Module:
    """torchvision.models.vgg16 (no BN), flattened: 138,357,544 params."""
    layers: list[tuple[str, nn.Module]] = []
    cin = 3
    for stage, (cout, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for i in range(1, n + 1):
            layers.append((f"conv{stage}_{i}", nn.Conv2d(cin, cout, kernel_size=3, padding=1)))
            layers.append((f"relu{stage}_{i}", nn.ReLU()))
            cin = cout
        layers.append((f"pool{stage}", nn.MaxPool2d(kernel_size=2, stride=2)))
    layers += [
        ("avgpool", nn.AdaptiveAvgPool2d(7)),
        ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(512 * 7 * 7, 4096)),
        ("relu6", nn.ReLU()),
        ("drop6", nn.Dropout(p=0.5)),
        ("fc7", nn.Linear(4096, 4096)),
        ("relu7", nn.ReLU()),
        ("drop7", nn.Dropout(p=0.5)),
        ("fc8", nn.Linear(4096, num_classes)),
    ]
    return _seq(*layers)


class BasicBlock(nn.Module):
    """torchvision BasicBlock; ``downsample.0/1`` are ``down_conv/down_bn``."""

    expansion = 1

    def __init__(self, cin: int, c: int, stride: int = 1, downsample: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.has_downsample = downsample
        if downsample:
            self.down_conv = nn.Conv2d(cin, c, 1, stride=stride, bias=False)
            self.down_bn = nn.BatchNorm2d(c)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        identity = self.down_bn(self.down_conv(x)) if self.has_downsample else x
        return self.relu2(out + identity)


class Bottleneck(nn.Module):
    """torchvision Bottleneck (v1.5: stride on the 3x3 conv)."""

    expansion = 4

    def __init__(self, cin: int, c: int, stride: int = 1, downsample: bool = False):
        super().__init__()
        cout = c * self.expansion
        self.conv1 = nn.Conv2d(cin, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(c, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.has_downsample = downsample
        if downsample:
            self.down_conv = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
            self.down_bn = nn.BatchNorm2d(cout)
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = self.down_bn(self.down_conv(x)) if self.has_downsample else x
        return self.relu3(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, counts: list[int], num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        cin = 64
        for i, (c, n) in enumerate(zip([64, 128, 256, 512], counts), 1):
            stride = 1 if i == 1 else 2
            cout = c * block.expansion
            blocks = []
            for j in range(n):
                first = j == 0
                blocks.append(
                    block(
                        cin,
                        c,
                        stride=stride if first else 1,
                        downsample=first and (stride != 1 or cin != cout),
                    )
                )
                cin = cout
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))


def resnet18(num_classes: int = 1000) -> nn.Module:
    """torchvision.models.resnet18: 11,689,512 params."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def resnet50(num_classes: int = 1000) -> nn.Module:
    """torchvision.models.resnet50: 25,557,032 params."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)


# --------------------------------------------------------------------------
# U-Net
# --------------------------------------------------------------------------


class DoubleConv(nn.Module):
    def __init__(self, cin: int, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(x)))


class Up(nn.Module):
    """ConvTranspose2d(2, stride 2) on ``x``, concat with ``skip``, double conv."""

    def __init__(self, cin: int, cskip: int, c: int):
        super().__init__()
        self.upconv = nn.ConvTranspose2d(cin, c, kernel_size=2, stride=2)
        self.conv = DoubleConv(c + cskip, c)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.upconv(x), skip], dim=1))


class UNet(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 16):
        super().__init__()
        c1, c2, c3, c4 = base, 2 * base, 4 * base, 8 * base
        self.enc1 = DoubleConv(in_channels, c1)
        self.pool1 = nn.MaxPool2d(2)
        self.enc2 = DoubleConv(c1, c2)
        self.pool2 = nn.MaxPool2d(2)
        self.enc3 = DoubleConv(c2, c3)
        self.pool3 = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(c3, c4)
        self.up3 = Up(c4, c3, c3)
        self.up2 = Up(c3, c2, c2)
        self.up1 = Up(c2, c1, c1)
        self.head = nn.Conv2d(c1, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool1(e1))
        e3 = self.enc3(self.pool2(e2))
        b = self.bottleneck(self.pool3(e3))
        d = self.up3(b, e3)
        d = self.up2(d, e2)
        d = self.up1(d, e1)
        return self.head(d)


def unet() -> nn.Module:
    """Small U-Net of examples/unet.yaml: [N,3,H,W] -> [N,2,H,W], H,W % 8 == 0."""
    return UNet()


# --------------------------------------------------------------------------
# MobileNetV2
# --------------------------------------------------------------------------


class InvertedResidual(nn.Module):
    """torchvision InvertedResidual with flat, descriptive child names."""

    def __init__(
        self,
        cin: int,
        c: int,
        t: int = 6,
        stride: int = 1,
        expand: bool = True,
        residual: bool = True,
    ):
        super().__init__()
        hidden = cin * t
        self.expand = expand
        self.residual = residual
        if expand:
            self.expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self.expand_bn = nn.BatchNorm2d(hidden)
            self.expand_relu = nn.ReLU6()
        self.dw_conv = nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False)
        self.dw_bn = nn.BatchNorm2d(hidden)
        self.dw_relu = nn.ReLU6()
        self.project_conv = nn.Conv2d(hidden, c, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = self.expand_relu(self.expand_bn(self.expand_conv(y)))
        y = self.dw_relu(self.dw_bn(self.dw_conv(y)))
        y = self.project_bn(self.project_conv(y))
        return y + x if self.residual else y


class MobileNetV2(nn.Module):
    # (t, c, n, s) as in the paper / torchvision
    SETTINGS = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem_conv = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(32)
        self.stem_relu = nn.ReLU6()
        cin = 32
        for i, (t, c, n, s) in enumerate(self.SETTINGS, 1):
            blocks = []
            for j in range(n):
                stride = s if j == 0 else 1
                blocks.append(
                    InvertedResidual(
                        cin,
                        c,
                        t,
                        stride,
                        expand=t != 1,
                        residual=stride == 1 and cin == c,
                    )
                )
                cin = c
            # a block instance without `repeat` has no index level
            setattr(self, f"ir{i}", blocks[0] if n == 1 else nn.Sequential(*blocks))
        self.last_conv = nn.Conv2d(cin, 1280, 1, bias=False)
        self.last_bn = nn.BatchNorm2d(1280)
        self.last_relu = nn.ReLU6()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(p=0.2)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_relu(self.stem_bn(self.stem_conv(x)))
        for i in range(1, len(self.SETTINGS) + 1):
            x = getattr(self, f"ir{i}")(x)
        x = self.last_relu(self.last_bn(self.last_conv(x)))
        return self.fc(self.dropout(self.flatten(self.avgpool(x))))


def mobilenet_v2(num_classes: int = 1000) -> nn.Module:
    """torchvision.models.mobilenet_v2: 3,504,872 params."""
    return MobileNetV2(num_classes)


# --------------------------------------------------------------------------
# DenseNet-121
# --------------------------------------------------------------------------


class DenseLayer(nn.Module):
    """torchvision _DenseLayer (BN-ReLU-1x1-BN-ReLU-3x3); the concat of the
    input and the new features is the YAML's functional ``cat``."""

    def __init__(self, cin: int, growth: int = 32, bn_size: int = 4):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(self.relu1(self.norm1(x)))
        y = self.conv2(self.relu2(self.norm2(y)))
        return torch.cat([x, y], dim=1)


def _dense_block(cin: int, n: int, growth: int = 32) -> nn.Sequential:
    return nn.Sequential(*(DenseLayer(cin + i * growth, growth) for i in range(n)))


def _transition(cin: int, c: int) -> nn.Sequential:
    return _seq(
        ("norm", nn.BatchNorm2d(cin)),
        ("relu", nn.ReLU()),
        ("conv", nn.Conv2d(cin, c, 1, bias=False)),
        ("pool", nn.AvgPool2d(kernel_size=2, stride=2)),
    )


def densenet121(num_classes: int = 1000) -> nn.Module:
    """torchvision.models.densenet121 (growth 32, blocks 6-12-24-16), flattened
    to the YAML's names: 7,978,856 params."""
    layers: list[tuple[str, nn.Module]] = [
        ("conv0", nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)),
        ("norm0", nn.BatchNorm2d(64)),
        ("relu0", nn.ReLU()),
        ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
    ]
    cin, growth = 64, 32
    counts = (6, 12, 24, 16)
    for i, n in enumerate(counts, 1):
        layers.append((f"denseblock{i}", _dense_block(cin, n, growth)))
        cin += n * growth
        if i < len(counts):
            layers.append((f"transition{i}", _transition(cin, cin // 2)))
            cin //= 2
    layers += [
        ("norm5", nn.BatchNorm2d(cin)),
        ("relu", nn.ReLU()),
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Linear(cin, num_classes)),
    ]
    return _seq(*layers)


# --------------------------------------------------------------------------
# SqueezeNet 1.1
# --------------------------------------------------------------------------


class Fire(nn.Module):
    """torchvision Fire: 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""

    def __init__(self, cin: int, s: int, e: int):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, s, 1)
        self.squeeze_relu = nn.ReLU()
        self.expand1x1 = nn.Conv2d(s, e, 1)
        self.expand1x1_relu = nn.ReLU()
        self.expand3x3 = nn.Conv2d(s, e, 3, padding=1)
        self.expand3x3_relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_relu(self.squeeze(x))
        a = self.expand1x1_relu(self.expand1x1(x))
        b = self.expand3x3_relu(self.expand3x3(x))
        return torch.cat([a, b], dim=1)


def squeezenet1_1(num_classes: int = 1000) -> nn.Module:
    """torchvision.models.squeezenet1_1, flattened: 1,235,496 params."""

    def pool() -> nn.MaxPool2d:
        return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)

    return _seq(
        ("conv1", nn.Conv2d(3, 64, 3, stride=2)),
        ("relu1", nn.ReLU()),
        ("pool1", pool()),
        ("fire2", Fire(64, 16, 64)),
        ("fire3", Fire(128, 16, 64)),
        ("pool3", pool()),
        ("fire4", Fire(128, 32, 128)),
        ("fire5", Fire(256, 32, 128)),
        ("pool5", pool()),
        ("fire6", Fire(256, 48, 192)),
        ("fire7", Fire(384, 48, 192)),
        ("fire8", Fire(384, 64, 256)),
        ("fire9", Fire(512, 64, 256)),
        ("dropout", nn.Dropout(p=0.5)),
        ("conv10", nn.Conv2d(512, num_classes, 1)),
        ("relu10", nn.ReLU()),
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
    )


# --------------------------------------------------------------------------
# GoogLeNet (Inception v1)
# --------------------------------------------------------------------------


def _basic_conv(cin: int, c: int, k: int = 1, s: int = 1, p: int = 0) -> nn.Sequential:
    """torchvision BasicConv2d: conv (no bias), BN (eps 1e-3), ReLU."""
    return _seq(
        ("conv", nn.Conv2d(cin, c, k, stride=s, padding=p, bias=False)),
        ("bn", nn.BatchNorm2d(c, eps=0.001)),
        ("relu", nn.ReLU()),
    )


class Inception(nn.Module):
    """torchvision Inception (the "5x5" branch is a 3x3 conv, as there)."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int):
        super().__init__()
        self.branch1 = _basic_conv(cin, c1)
        self.branch2_reduce = _basic_conv(cin, c3r)
        self.branch2 = _basic_conv(c3r, c3, k=3, p=1)
        self.branch3_reduce = _basic_conv(cin, c5r)
        self.branch3 = _basic_conv(c5r, c5, k=3, p=1)
        self.branch4_pool = nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True)
        self.branch4 = _basic_conv(cin, pool)
        self.out_channels = c1 + c3 + c5 + pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1(x),
                self.branch2(self.branch2_reduce(x)),
                self.branch3(self.branch3_reduce(x)),
                self.branch4(self.branch4_pool(x)),
            ],
            dim=1,
        )


def googlenet(num_classes: int = 1000) -> nn.Module:
    """torchvision.models.googlenet in eval form (no aux classifiers, no
    input transform), flattened: 6,624,904 params."""
    # name, (c1, c3r, c3, c5r, c5, pool)
    settings = {
        "3a": (64, 96, 128, 16, 32, 32),
        "3b": (128, 128, 192, 32, 96, 64),
        "4a": (192, 96, 208, 16, 48, 64),
        "4b": (160, 112, 224, 24, 64, 64),
        "4c": (128, 128, 256, 24, 64, 64),
        "4d": (112, 144, 288, 32, 64, 64),
        "4e": (256, 160, 320, 32, 128, 128),
        "5a": (256, 160, 320, 32, 128, 128),
        "5b": (384, 192, 384, 48, 128, 128),
    }
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", _basic_conv(3, 64, k=7, s=2, p=3)),
        ("maxpool1", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
        ("conv2", _basic_conv(64, 64)),
        ("conv3", _basic_conv(64, 192, k=3, p=1)),
        ("maxpool2", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
    ]
    cin = 192
    for key, args in settings.items():
        if key == "4a":
            layers.append(("maxpool3", nn.MaxPool2d(3, stride=2, ceil_mode=True)))
        if key == "5a":
            layers.append(("maxpool4", nn.MaxPool2d(2, stride=2, ceil_mode=True)))
        block = Inception(cin, *args)
        layers.append((f"inception{key}", block))
        cin = block.out_channels
    layers += [
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("dropout", nn.Dropout(p=0.2)),
        ("fc", nn.Linear(cin, num_classes)),
    ]
    return _seq(*layers)


# --------------------------------------------------------------------------
# EfficientNet-B0
# --------------------------------------------------------------------------


class MBConv(nn.Module):
    """torchvision MBConv with squeeze-and-excitation, flat child names.
    Stochastic depth is the identity in eval mode and has no parameters."""

    def __init__(self, cin: int, c: int, t: int = 6, k: int = 3, s: int = 1):
        super().__init__()
        hidden = cin * t
        self.has_expand = t != 1
        self.residual = s == 1 and cin == c
        if self.has_expand:
            self.expand = nn.Conv2d(cin, hidden, 1, bias=False)
            self.expand_bn = nn.BatchNorm2d(hidden, eps=0.001)
            self.expand_act = nn.SiLU()
        self.depthwise = nn.Conv2d(hidden, hidden, k, stride=s, padding=(k - 1) // 2, groups=hidden, bias=False)
        self.depthwise_bn = nn.BatchNorm2d(hidden, eps=0.001)
        self.depthwise_act = nn.SiLU()
        squeeze = max(1, cin // 4)
        self.se_pool = nn.AdaptiveAvgPool2d(1)
        self.se_fc1 = nn.Conv2d(hidden, squeeze, 1)
        self.se_act = nn.SiLU()
        self.se_fc2 = nn.Conv2d(squeeze, hidden, 1)
        self.se_gate = nn.Sigmoid()
        self.project = nn.Conv2d(hidden, c, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(c, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.expand_act(self.expand_bn(self.expand(y)))
        y = self.depthwise_act(self.depthwise_bn(self.depthwise(y)))
        gate = self.se_gate(self.se_fc2(self.se_act(self.se_fc1(self.se_pool(y)))))
        y = self.project_bn(self.project(y * gate))
        return y + x if self.residual else y


def efficientnet_b0(num_classes: int = 1000) -> nn.Module:
    """torchvision.models.efficientnet_b0 (width/depth 1.0), flattened:
    5,288,548 params."""
    # (t, k, s, c, n) per stage, as in torchvision's MBConvConfig list
    settings = (
        (1, 3, 1, 16, 1),
        (6, 3, 2, 24, 2),
        (6, 5, 2, 40, 2),
        (6, 3, 2, 80, 3),
        (6, 5, 1, 112, 3),
        (6, 5, 2, 192, 4),
        (6, 3, 1, 320, 1),
    )
    layers: list[tuple[str, nn.Module]] = [
        ("stem", nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)),
        ("stem_bn", nn.BatchNorm2d(32, eps=0.001)),
        ("stem_act", nn.SiLU()),
    ]
    cin = 32
    for i, (t, k, s, c, n) in enumerate(settings, 1):
        blocks = []
        for j in range(n):
            blocks.append(MBConv(cin, c, t, k, s if j == 0 else 1))
            cin = c
        # a block instance without `repeat` has no index level
        layers.append((f"stage{i}", blocks[0] if n == 1 else nn.Sequential(*blocks)))
    layers += [
        ("head", nn.Conv2d(cin, 1280, 1, bias=False)),
        ("head_bn", nn.BatchNorm2d(1280, eps=0.001)),
        ("head_act", nn.SiLU()),
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("dropout", nn.Dropout(p=0.2)),
        ("fc", nn.Linear(1280, num_classes)),
    ]
    return _seq(*layers)


# --------------------------------------------------------------------------

REFERENCES = {
    "lenet": (lenet, EXAMPLES / "lenet.yaml", (1, 1, 28, 28)),
    "keras_mnist": (keras_mnist, EXAMPLES / "keras_mnist.yaml", (1, 1, 28, 28)),
    "simple_convnet": (
        simple_convnet,
        EXAMPLES / "simple_convnet.yaml",
        (1, 1, 28, 28),
    ),
    "alexnet": (alexnet, EXAMPLES / "alexnet.yaml", (1, 3, 224, 224)),
    "vgg16": (vgg16, EXAMPLES / "vgg16.yaml", (1, 3, 224, 224)),
    "resnet18": (resnet18, EXAMPLES / "resnet18.yaml", (1, 3, 224, 224)),
    "resnet50": (resnet50, EXAMPLES / "resnet50.yaml", (1, 3, 224, 224)),
    "unet": (unet, EXAMPLES / "unet.yaml", (1, 3, 64, 64)),
    "mobilenet_v2": (mobilenet_v2, EXAMPLES / "mobilenet_v2.yaml", (1, 3, 224, 224)),
    "densenet121": (densenet121, EXAMPLES / "densenet121.yaml", (1, 3, 224, 224)),
    "squeezenet1_1": (squeezenet1_1, EXAMPLES / "squeezenet1_1.yaml", (1, 3, 224, 224)),
    "googlenet": (googlenet, EXAMPLES / "googlenet.yaml", (1, 3, 224, 224)),
    "efficientnet_b0": (
        efficientnet_b0,
        EXAMPLES / "efficientnet_b0.yaml",
        (1, 3, 224, 224),
    ),
}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape) -> int:
    """Multiply-accumulates of one forward pass (FlopCounterMode flops / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(input_shape))
    return counter.get_total_flops() // 2
