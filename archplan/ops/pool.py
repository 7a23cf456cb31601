"""Pooling: max/avg sliding windows (stride defaults to kernel_size) and adaptive pooling."""

from __future__ import annotations

from .. import dims
from ..errors import RuleError
from . import windows as w
from .base import Memory, Module, Op, Saved, variant, window_rf
from .params import Bool, Int, Ints, Padding, Sizes


class PoolNd(Op):
    family = "pool"
    kind = "max"
    n = 2

    @classmethod
    def schema(cls, n: int, kind: str) -> dict:
        params = {
            "kernel_size": Ints(n=n, doc="window size, e.g. kernel_size: 2"),
            "stride": Ints(default=None, n=n, doc="defaults to kernel_size"),
            "padding": Padding(
                default=(0,) * n,
                n=n,
                modes=("valid", "same"),
                doc="int, list, valid, or same (TensorFlow: output = ceil(input / stride))",
            ),
            "ceil_mode": Bool(default=False),
        }
        if kind == "max":
            params["dilation"] = Ints(default=(1,) * n, n=n)
        else:
            params["count_include_pad"] = Bool(default=True)
            params["divisor_override"] = Int(default=None, minimum=1)
        return params

    @classmethod
    def normalize(cls, values: dict) -> dict:
        if values["stride"] is None:
            values["stride"] = values["kernel_size"]
        if values["padding"] == "valid":
            values["padding"] = (0,) * len(values["kernel_size"])
        if values["padding"] == "same":
            if values["ceil_mode"] or values.get("divisor_override") is not None:
                raise RuleError(
                    "padding 'same' already keeps the partial windows; it takes no ceil_mode or divisor_override"
                )
        else:
            w.check_pool_padding(values["padding"], values["kernel_size"])
        return values

    def _dilation(self, a, i: int) -> int:
        return a.dilation[i] if "dilation" in a else 1

    def pads(self, a, shape) -> list:
        return [
            w.pad_pair(a.padding, i, size, a.kernel_size[i], a.stride[i], self._dilation(a, i))
            for i, size in enumerate(w.spatial(shape))
        ]

    def output_shape(self, a, ins, need):
        x = ins[0]
        if a.padding == "same":
            return (*x[:2], *(w.same_output(size, a.stride[i]) for i, size in enumerate(w.spatial(x))))
        out = [
            w.window_out(
                size, a.kernel_size[i], a.stride[i], a.padding[i], a.padding[i], self._dilation(a, i), a.ceil_mode
            )
            for i, size in enumerate(w.spatial(x))
        ]
        return (*x[:2], *out)

    def receptive_field(self, a, rfs, ins):  # the window's axes: the last n dims
        pads = self.pads(a, ins[0])
        return rfs[0].windowed(
            self.n, lambda i, rf: window_rf(rf, a.kernel_size[i], a.stride[i], pads[i][0], self._dilation(a, i))
        )

    def border_loss(self, a, ins):
        if a.ceil_mode or a.padding == "same":
            return []
        return [
            w.border_loss(size, a.kernel_size[i], a.stride[i], a.padding[i], a.padding[i], self._dilation(a, i))
            for i, size in enumerate(w.spatial(ins[0]))
        ]

    def describe(self, a):
        text = f"{self.kind}pool {w.times(a.kernel_size)}"
        if a.stride != a.kernel_size:
            text += f"/{w.compact(a.stride)}"
        if a.padding == "same":
            text += " same"
        elif max(a.padding) > 0:
            text += f" p{w.compact(a.padding)}"
        return text + (" ceil" if a.ceil_mode else "")

    def emit(self, a, ins):
        kwargs = [("kernel_size", w.compact(a.kernel_size))]
        if a.stride != a.kernel_size:
            kwargs.append(("stride", w.compact(a.stride)))
        same = a.padding == "same"
        if not same and max(a.padding) > 0:
            kwargs.append(("padding", w.compact(a.padding)))
        if "dilation" in a and max(a.dilation) > 1:
            kwargs.append(("dilation", w.compact(a.dilation)))
        if a.ceil_mode:
            kwargs.append(("ceil_mode", True))
        if a.get("count_include_pad") is False:
            kwargs.append(("count_include_pad", False))
        if a.get("divisor_override") is not None:
            kwargs.append(("divisor_override", a.divisor_override))
        if same:  # a helper class pads like TensorFlow (asymmetric, padding never counted)
            kwargs = [(k, v) for k, v in kwargs if k != "count_include_pad"]
            return Module(f"{self.name}Same", tuple(kwargs), 0, f"{self.kind}_pool_same", f"nn.{self.name}")
        return Module(f"nn.{self.name}", tuple(kwargs))

    def memory(self, a, ins, out, mode):
        """Max: saves its input and the int64 indices of the output's shape, which eval mode computes too. Avg:
        saves its input. With padding 'same' the helper class pads the input into a new tensor first, which is
        what gets saved; the average then divides by the pooled count of real pixels ([1, 1, *output], saved
        by the division). CPU autocast runs the 3-D pools in fp32."""
        x = ins[0]
        autocast = "float32" if mode.device == "cpu" and self.n == 3 else "follow"
        source, scratch = Saved(0), ()
        if a.padding == "same":
            padded = (*x[:2], *(size + sum(pad) for size, pad in zip(w.spatial(x), self.pads(a, x))))
            source = Saved("new", padded)
            scratch = (source,)
        if self.kind == "max":
            indices = Saved("new", tuple(out), "int64")
            return Memory((source, indices), (*scratch, indices), grad_scratch=scratch, autocast=autocast)
        if a.padding == "same":
            count = Saved("new", (1, 1, *w.spatial(out)))
            return Memory((source, count), scratch, grad_scratch=scratch, autocast=autocast)
        return Memory((source,), autocast=autocast)


def _pool(kind: str, n: int) -> type:
    name = f"{kind.capitalize()}Pool{n}d"
    schema = PoolNd.schema(n, kind)
    return variant(PoolNd, name, kind=kind, n=n, params=schema, ranks=(n + 2,), helper_classes=(f"{name}Same",))


MaxPool1d, MaxPool2d, MaxPool3d = _pool("max", 1), _pool("max", 2), _pool("max", 3)
AvgPool1d, AvgPool2d, AvgPool3d = _pool("avg", 1), _pool("avg", 2), _pool("avg", 3)


class AdaptivePoolNd(Op):
    family = "pool"
    kind = "avg"
    n = 2

    def output_shape(self, a, ins, need):
        x = ins[0]
        sizes = [size if want is None else want for size, want in zip(w.spatial(x), a.output_size)]
        return (*x[: -self.n], *sizes)

    def receptive_field(self, a, rfs, ins):
        """Output 1 covers the whole axis (global when every pooled axis does); an output that divides the
        input is a plain window; other sizes use windows of varying size, which no single field describes."""
        sizes = w.spatial(ins[0])[-self.n :]
        wants = [size if want is None else want for size, want in zip(sizes, a.output_size)]
        if all(want == 1 for want in wants):
            return rfs[0].windowed(self.n, lambda i, rf: window_rf(rf, sizes[i], sizes[i], 0)).global_()
        for size, want in zip(sizes, wants):
            if dims.equal(size, want) is not True and dims.equal(dims.mod(size, want), 0) is not True:
                return rfs[0].unknown(f"{self.name} to {want} uses windows of varying size", len(ins[0]))

        def rule(i, rf):
            k = dims.floordiv(sizes[i], wants[i])
            return window_rf(rf, k, k, 0) if k != 1 else rf

        return rfs[0].windowed(self.n, rule)

    def describe(self, a):
        if all(s == 1 for s in a.output_size):
            return f"global {self.kind}pool"
        return f"adaptive {self.kind}pool {w.times(tuple(dims.to_str(s) for s in a.output_size))}"

    def emit(self, a, ins):
        size = w.compact(a.output_size)
        return Module(f"nn.{self.name}", (("output_size", size),))

    def memory(self, a, ins, out, mode):
        """Average to size 1 on every axis is a mean (saves nothing); other sizes save the input. Max saves the
        input and int64 indices of the output's shape (eval mode computes them too). CPU autocast runs the 3-D
        average in fp32."""
        autocast = "float32" if mode.device == "cpu" and self.n == 3 and self.kind == "avg" else "follow"
        if self.kind == "max":
            indices = Saved("new", tuple(out), "int64")
            return Memory((Saved(0), indices), (indices,))
        if all(d == 1 for d in w.spatial(out)[-self.n :]):
            return Memory(autocast=autocast)
        return Memory((Saved(0),), autocast=autocast)


def _adaptive(kind: str, n: int) -> type:
    output_size = Sizes(n=n, allow_none=True, doc="output size, e.g. output_size: 1")
    return variant(
        AdaptivePoolNd,
        f"Adaptive{kind.capitalize()}Pool{n}d",
        kind=kind,
        n=n,
        params={"output_size": output_size},
        ranks=(n + 2,),
    )


AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d = (_adaptive("avg", n) for n in (1, 2, 3))
AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d = (_adaptive("max", n) for n in (1, 2, 3))
