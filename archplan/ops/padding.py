"""Padding: ZeroPad, ConstantPad, ReflectionPad and ReplicationPad in 1-D, 2-D and 3-D, one rule set.

An n-d pad takes `padding` as one int or 2n ints in torch's order, last dim first (left, right, top, bottom,
front, back), and pads the last n dims whatever the input's rank: zero and constant pads take any rank >= n,
reflection and replication pads n + 1 (unbatched) or n + 2 (batched), as torch does. Negative pads crop.
Along a padded dim, output index o reads input index j = o - before: the fill value where j is outside the
input (zero, constant), the mirror of j (reflection: -j before the start, 2(size-1) - j after the end) or
the nearest end (replication). No parameters, 0 MACs (torch's flop counter counts none).

Receptive field: every kind shifts each padded spatial axis by its `before` pad (o reads j = o - before; size
and jump unchanged). For zero and constant pads that is exact. A replication pad's band reads the end pixel,
which lies in the field clipped to the input whenever the field overlaps the input. A reflection pad's band
reads mirrored pixels: the field gives the position the window would read unpadded, not the mirror
(tests/test_op_padding.py checks each statement against input gradients).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import dims
from ..errors import RuleError
from .base import AxisRF, Memory, Module, Op, Saved, format_shape, variant
from .params import Float, Ints

_ORDER = ("left, right", "top, bottom", "front, back")


@dataclass(frozen=True)
class Pads(Ints):
    """An int or a list of 2n ints (negative ones crop), in torch's order: the last dim's pair first."""

    minimum: int | None = None

    def convert(self, value, name, evaluate):
        try:
            return super().convert(value, name, evaluate)
        except RuleError as exc:
            order = ", ".join(_ORDER[: self.n // 2])
            raise RuleError(exc.message, exc.hint or f"torch's order, last dim first: [{order}]") from None


class PadNd(Op):
    family = "reshape"
    n = 2  # how many trailing dims are padded
    fill = "zeros"  # zeros, constant, reflect, replicate
    label = "zeropad"

    @classmethod
    def schema(cls, n: int, fill: str) -> dict:
        order = ", ".join(_ORDER[:n])
        params = {"padding": Pads(n=2 * n, doc=f"int or [{order}]; negative values crop")}
        if fill == "constant":
            params["value"] = Float(doc="the fill value")
        return params

    def pairs(self, a) -> list:
        """(before, after) for each padded dim, in dim order (the padding list is last dim first)."""
        p = a.padding
        return [(p[2 * (self.n - 1 - i)], p[2 * (self.n - 1 - i) + 1]) for i in range(self.n)]

    def check_inputs(self, a, ins, need):
        rank = len(ins[0])
        if self.fill in ("zeros", "constant"):
            allowed, want = rank >= self.n, f"an input of {self.n} or more dims"
        else:
            allowed, want = rank in (self.n + 1, self.n + 2), f"a {self.n + 1}-D or {self.n + 2}-D input"
        if not allowed:
            raise RuleError(
                f"{self.name} expects {want} (it pads the last {self.n}), "
                f"received a {rank}-D tensor {format_shape(ins[0])}"
            )
        super().check_inputs(a, ins, need)

    def output_shape(self, a, ins, need):
        x = list(ins[0])
        for i, (before, after) in enumerate(self.pairs(a)):
            d = len(x) - self.n + i
            self.check_dim(x[d], before, after, d, need)
            x[d] = x[d] + before + after
        return tuple(x)

    def check_dim(self, size, before, after, d, need) -> None:
        """torch's conditions on one padded dim (the analysis checks every output size is >= 1)."""
        if self.fill == "reflect":
            for p in (before, after):
                if p > 0:
                    need.positive(
                        size - p,
                        f"{self.name}: reflection padding {p} on dim {d} needs a size > {p}, "
                        f"received {dims.to_str(size)}",
                    )
        elif self.fill in ("zeros", "constant"):
            crop = -(min(before, 0) + min(after, 0))
            if crop and max(before, after) > 0:  # torch crops first, then pads: the crop must fit
                need.positive(
                    size - crop + 1,
                    f"{self.name}: cropping {crop} from dim {d} needs a size >= {crop}, received {dims.to_str(size)}",
                )

    def receptive_field(self, a, rfs, ins):
        # output o reads input o - before on each padded dim; [N, C, T] under a 2-d pad pads C (no field) and T
        befores = [before for before, _ in self.pairs(a)]
        return rfs[0].windowed(self.n, lambda i, rf: AxisRF(rf.size, rf.stride, rf.padding + befores[i] * rf.stride))

    @staticmethod
    def compact(padding: tuple):
        return padding[0] if len(set(padding)) == 1 else tuple(padding)

    def describe(self, a):
        p = self.compact(a.padding)
        text = f"{self.label} {p if isinstance(p, int) else ','.join(str(v) for v in p)}"
        return f"{text} value {a.value:g}" if self.fill == "constant" else text

    def emit(self, a, ins):
        kwargs = (("padding", self.compact(a.padding)),)
        if self.fill == "constant":
            kwargs += (("value", a.value),)
        return Module(f"nn.{self.name}", kwargs, len(kwargs))  # nn.ConstantPad1d((2, 0), 0.0)

    def memory(self, a, ins, out, mode):
        """Zero and constant pads save nothing; reflection and replication pads save their input, and CPU autocast
        runs them in fp32 (but the 3-D reflection pad)."""
        if self.fill in ("zeros", "constant"):
            return Memory()
        fp32 = mode.device == "cpu" and (self.fill == "replicate" or self.n < 3)
        return Memory((Saved(0),), autocast="float32" if fp32 else "follow")


def _family(prefix: str, fill: str, label: str) -> tuple:
    return tuple(
        variant(PadNd, f"{prefix}Pad{n}d", n=n, fill=fill, label=label, params=PadNd.schema(n, fill)) for n in (1, 2, 3)
    )


ZeroPad1d, ZeroPad2d, ZeroPad3d = _family("Zero", "zeros", "zeropad")
ConstantPad1d, ConstantPad2d, ConstantPad3d = _family("Constant", "constant", "constpad")
ReflectionPad1d, ReflectionPad2d, ReflectionPad3d = _family("Reflection", "reflect", "reflectpad")
ReplicationPad1d, ReplicationPad2d, ReplicationPad3d = _family("Replication", "replicate", "replicatepad")
