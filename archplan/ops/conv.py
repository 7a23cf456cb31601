"""Convolutions: Conv1d/2d/3d and ConvTranspose1d/2d/3d share one rule set, parametrised by rank."""

from __future__ import annotations

from .. import dims
from ..errors import RuleError
from . import windows as w
from .base import Memory, Module, Op, Saved, upsampled_rf, variant, window_rf
from .params import Bool, Choice, Dim, Int, Ints, Padding


class ConvNd(Op):
    family = "conv"
    n = 2
    inferred = {"in_channels": "the channel dimension"}

    @classmethod
    def schema(cls, n: int) -> dict:
        return {
            "out_channels": Dim(doc="number of output channels, e.g. out_channels: 64"),
            "kernel_size": Ints(n=n, doc="window size, e.g. kernel_size: 3"),
            "stride": Ints(default=(1,) * n, n=n),
            "padding": Padding(default=(0,) * n, n=n),
            "dilation": Ints(default=(1,) * n, n=n),
            "groups": Int(default=1, minimum=1),
            "bias": Bool(default=True),
            "padding_mode": Choice(default="zeros", choices=("zeros", "reflect", "replicate", "circular")),
        }

    @classmethod
    def normalize(cls, values: dict) -> dict:
        if values["padding"] == "same" and values["padding_mode"] != "zeros" and max(values["stride"]) > 1:
            raise RuleError("padding 'same' with stride > 1 supports only padding_mode zeros")
        return values

    def pads(self, a, shape) -> list:
        return [
            w.pad_pair(a.padding, i, size, a.kernel_size[i], a.stride[i], a.dilation[i])
            for i, size in enumerate(w.spatial(shape))
        ]

    def output_shape(self, a, ins, need):
        x = ins[0]
        cin = x[1]
        need.divisible(cin, a.groups, f"in_channels ({dims.to_str(cin)}) must be divisible by groups ({a.groups})")
        need.divisible(
            a.out_channels,
            a.groups,
            f"out_channels ({dims.to_str(a.out_channels)}) must be divisible by groups ({a.groups})",
        )
        out = []
        for i, size in enumerate(w.spatial(x)):
            if a.padding == "same" and a.stride[i] > 1:
                out.append(w.same_output(size, a.stride[i]))
                continue
            before, after = w.pad_pair(a.padding, i, size, a.kernel_size[i], a.stride[i], a.dilation[i])
            out.append(w.window_out(size, a.kernel_size[i], a.stride[i], before, after, a.dilation[i]))
        return (x[0], a.out_channels, *out)

    def param_count(self, a, ins):
        cin = ins[0][1]
        weights = a.out_channels * dims.floordiv(cin, a.groups) * dims.product(a.kernel_size)
        return weights + (a.out_channels if a.bias else 0)

    def weight_shape(self, a, ins):
        return (a.out_channels, dims.floordiv(ins[0][1], a.groups), *a.kernel_size)

    def macs(self, a, ins, out):
        # torch.utils.flop_counter: batch * prod(out spatial) * Cout * Cin/groups * prod(kernel); bias not counted
        cin = ins[0][1]
        return (
            out[0]
            * dims.product(w.spatial(out))
            * a.out_channels
            * dims.floordiv(cin, a.groups)
            * dims.product(a.kernel_size)
        )

    def receptive_field(self, a, rfs, ins):  # the window's axes: the last n dims
        pads = self.pads(a, ins[0])
        return rfs[0].windowed(
            self.n, lambda i, rf: window_rf(rf, a.kernel_size[i], a.stride[i], pads[i][0], a.dilation[i])
        )

    def border_loss(self, a, ins):
        pads = self.pads(a, ins[0])
        return [
            w.border_loss(size, a.kernel_size[i], a.stride[i], *pads[i], a.dilation[i])
            for i, size in enumerate(w.spatial(ins[0]))
        ]

    def describe(self, a):
        text = f"conv {w.times(a.kernel_size)}"
        if max(a.stride) > 1:
            text += f"/{w.compact(a.stride)}"
        if max(a.dilation) > 1:
            text += f" d{w.compact(a.dilation)}"
        if a.groups > 1:
            text += f" g{a.groups}"
        return f"{text}, {dims.to_str(a.out_channels)}"

    def emit(self, a, ins, any_stride: bool = False):
        kwargs = [
            ("in_channels", ins[0][1]),
            ("out_channels", a.out_channels),
            ("kernel_size", w.compact(a.kernel_size)),
        ]
        ctor, helper = f"nn.{self.name}", None
        if max(a.stride) > 1:
            kwargs.append(("stride", w.compact(a.stride)))
        if a.padding == "same" and (max(a.stride) > 1 or any_stride):
            ctor, helper = f"{self.name}Same", "conv_same"
        elif a.padding == "same":
            kwargs.append(("padding", "same"))
        elif a.padding == "full":
            kwargs.append(("padding", w.compact(tuple(d * (k - 1) for k, d in zip(a.kernel_size, a.dilation)))))
        elif a.padding != "valid" and max(a.padding) > 0:
            kwargs.append(("padding", w.compact(a.padding)))
        if max(a.dilation) > 1:
            kwargs.append(("dilation", w.compact(a.dilation)))
        if a.groups > 1:
            kwargs.append(("groups", a.groups))
        if not a.bias:
            kwargs.append(("bias", False))
        if a.padding_mode != "zeros":
            kwargs.append(("padding_mode", a.padding_mode))
        return Module(ctor, tuple(kwargs), 2, helper, f"nn.{self.name}")

    def emit_general(self, a, ins):
        # torch's padding="same" takes stride 1 only; the helper class pads like TensorFlow for any stride
        return self.emit(a, ins, any_stride=True)

    def memory(self, a, ins, out, mode):
        """Saves its input (the cast copy under autocast) and its weight. The input is first padded into a new
        tensor, which is what gets saved, by Conv2dSame (padding 'same' with a stride, or in a block whose uses
        need it), by a padding_mode other than zeros (F.pad, even by 0), and by padding='same' where the total
        padding is odd (torch pads the odd pixel itself). A reflect/replicate pad also saves its own input."""
        x = ins[0]
        weight = (a.out_channels, dims.floordiv(x[1], a.groups), *a.kernel_size)
        weights = (weight, (a.out_channels,)) if a.bias else (weight,)
        pads = self.pads(a, x)
        totals = [before + after for before, after in pads]
        helper = a.padding == "same" and (max(a.stride) > 1 or mode.general)
        if helper or a.padding_mode != "zeros":
            padded = (*x[:2], *(size + t for size, t in zip(w.spatial(x), totals)))
        elif a.padding == "same" and any(t % 2 for t in totals):  # stride 1: the totals are ints
            padded = (*x[:2], *(size + t % 2 for size, t in zip(w.spatial(x), totals)))
        else:
            return Memory((Saved(0), Saved("weight", weight)), autocast="lower", weights=weights)
        saved = (Saved("new", padded), Saved("weight", weight))
        if a.padding_mode in ("reflect", "replicate") and mode.grads[0]:
            saved = (Saved(0), *saved)
        pad = (Saved("new", padded),)
        return Memory(saved, pad, grad_scratch=pad, autocast="lower", weights=weights)


Conv1d, Conv2d, Conv3d = (
    variant(ConvNd, f"Conv{n}d", n=n, params=ConvNd.schema(n), ranks=(n + 2,), helper_classes=(f"Conv{n}dSame",))
    for n in (1, 2, 3)
)


class ConvTransposeNd(Op):
    family = "conv"
    inferred = {"in_channels": "the channel dimension"}

    @classmethod
    def schema(cls, n: int) -> dict:
        return {
            "out_channels": Dim(doc="number of output channels"),
            "kernel_size": Ints(n=n),
            "stride": Ints(default=(1,) * n, n=n),
            "padding": Ints(default=(0,) * n, n=n, minimum=0),
            "output_padding": Ints(default=(0,) * n, n=n, minimum=0),
            "dilation": Ints(default=(1,) * n, n=n),
            "groups": Int(default=1, minimum=1),
            "bias": Bool(default=True),
        }

    @classmethod
    def normalize(cls, values: dict) -> dict:
        for op, s, d in zip(values["output_padding"], values["stride"], values["dilation"]):
            if op >= max(s, d):
                raise RuleError(f"output_padding {op} must be smaller than stride or dilation ({max(s, d)})")
        return values

    def output_shape(self, a, ins, need):
        x = ins[0]
        need.divisible(x[1], a.groups, f"in_channels ({dims.to_str(x[1])}) must be divisible by groups ({a.groups})")
        need.divisible(
            a.out_channels,
            a.groups,
            f"out_channels ({dims.to_str(a.out_channels)}) must be divisible by groups ({a.groups})",
        )
        out = [
            (size - 1) * a.stride[i]
            - 2 * a.padding[i]
            + a.dilation[i] * (a.kernel_size[i] - 1)
            + a.output_padding[i]
            + 1
            for i, size in enumerate(w.spatial(x))
        ]
        return (x[0], a.out_channels, *out)

    def param_count(self, a, ins):
        weights = ins[0][1] * dims.floordiv(a.out_channels, a.groups) * dims.product(a.kernel_size)
        return weights + (a.out_channels if a.bias else 0)

    def weight_shape(self, a, ins):
        return (ins[0][1], dims.floordiv(a.out_channels, a.groups), *a.kernel_size)

    def macs(self, a, ins, out):
        # flop_counter counts transposed convs over the *input* positions: batch * prod(in spatial) * Cin * Cout/g * k
        x = ins[0]
        return (
            x[0]
            * dims.product(w.spatial(x))
            * x[1]
            * dims.floordiv(a.out_channels, a.groups)
            * dims.product(a.kernel_size)
        )

    def receptive_field(self, a, rfs, ins):
        # output o reads inputs i = (o + p - t*d) / s for taps t: on average o sits at (o + p - (k_eff-1)/2) / s
        def rule(i, rf):
            k_eff, s = w.effective_kernel(a.kernel_size[i], a.dilation[i]), a.stride[i]
            extra = (dims.ceildiv(k_eff, s) - 1) * rf.stride
            return upsampled_rf(rf, s, extra, a.padding[i] - dims.truediv(k_eff - 1, 2))

        return rfs[0].windowed(len(a.kernel_size), rule)

    def describe(self, a):
        stride = f"/{w.compact(a.stride)}" if max(a.stride) > 1 else ""
        return f"upconv {w.times(a.kernel_size)}{stride}, {dims.to_str(a.out_channels)}"

    def emit(self, a, ins):
        kwargs = [
            ("in_channels", ins[0][1]),
            ("out_channels", a.out_channels),
            ("kernel_size", w.compact(a.kernel_size)),
        ]
        for key, default in (("stride", 1), ("padding", 0), ("output_padding", 0), ("dilation", 1)):
            if max(a[key]) != default or min(a[key]) != default:
                kwargs.append((key, w.compact(a[key])))
        if a.groups > 1:
            kwargs.append(("groups", a.groups))
        if not a.bias:
            kwargs.append(("bias", False))
        return Module(f"nn.{self.name}", tuple(kwargs), 2)

    def memory(self, a, ins, out, mode):
        """Saves its input (the cast copy under autocast) and its weight, as a convolution does."""
        weight = (ins[0][1], dims.floordiv(a.out_channels, a.groups), *a.kernel_size)
        weights = (weight, (a.out_channels,)) if a.bias else (weight,)
        return Memory((Saved(0), Saved("weight", weight)), autocast="lower", weights=weights)


ConvTranspose1d, ConvTranspose2d, ConvTranspose3d = (
    variant(ConvTransposeNd, f"ConvTranspose{n}d", params=ConvTransposeNd.schema(n), ranks=(n + 2,)) for n in (1, 2, 3)
)
