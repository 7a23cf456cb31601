"""Shuffles, torch semantics: depth to space (PixelShuffle), space to depth (PixelUnshuffle) and the channel
shuffle of ShuffleNet (ChannelShuffle).

The pixel shuffles rearrange the last three dims (*, C, H, W); their receptive-field rules act on the last two
(H and W). ChannelShuffle permutes dim 1 only: shape and field unchanged. All cost 0 MACs (as torch's flop
counter counts them).
"""

from __future__ import annotations

from .. import dims
from ..errors import RuleError
from .base import Memory, Module, Op, format_shape, register, upsampled_rf, window_rf
from .params import Int


class _Shuffle(Op):
    family = "reshape"
    ranks = None  # any rank >= 3, checked below
    factor = ""  # the argument's name

    def check_rank(self, shape) -> None:
        from ..errors import RuleError

        if len(shape) < 3:
            raise RuleError(f"{self.name} expects an input of 3 or more dims (*, C, H, W), received {len(shape)} dims")

    def emit(self, a, ins):
        return Module(f"nn.{self.name}", ((self.factor, a[self.factor]),), 1)

    def memory(self, a, ins, out, mode):
        """A new tensor; nothing saved (its gradient is the opposite shuffle of the output's)."""
        return Memory()


@register
class PixelShuffle(_Shuffle):
    name = "PixelShuffle"
    factor = "upscale_factor"
    params = {"upscale_factor": Int(minimum=1, doc="r: (*, C*r*r, H, W) -> (*, C, H*r, W*r)")}

    def output_shape(self, a, ins, need):
        x, r = ins[0], a.upscale_factor
        self.check_rank(x)
        c = x[-3]
        need.divisible(c, r * r, f"{self.name}: channels ({dims.to_str(c)}) must be divisible by {r}*{r}")
        return (*x[:-3], dims.floordiv(c, r * r), x[-2] * r, x[-1] * r)

    def receptive_field(self, a, rfs, ins):
        # output pixel o reads input pixel floor(o / r): the field keeps its size, the jump shrinks by r and the
        # position is the average over the r phases (as for nearest upsampling)
        r = a.upscale_factor
        return rfs[0].windowed(2, lambda i, rf: upsampled_rf(rf, r, 0, -dims.truediv(r - 1, 2)))

    def describe(self, a):
        return f"pixelshuffle x{a.upscale_factor}"


@register
class PixelUnshuffle(_Shuffle):
    name = "PixelUnshuffle"
    factor = "downscale_factor"
    params = {"downscale_factor": Int(minimum=1, doc="r: (*, C, H*r, W*r) -> (*, C*r*r, H, W)")}

    def output_shape(self, a, ins, need):
        x, r = ins[0], a.downscale_factor
        self.check_rank(x)
        for axis, what in ((-2, "height"), (-1, "width")):
            need.divisible(x[axis], r, f"{self.name}: the {what} ({dims.to_str(x[axis])}) must be divisible by {r}")
        return (*x[:-3], x[-3] * r * r, dims.floordiv(x[-2], r), dims.floordiv(x[-1], r))

    def receptive_field(self, a, rfs, ins):
        # each output position gathers an r x r block (one pixel per output channel): an r/r window
        return rfs[0].windowed(2, lambda i, rf: window_rf(rf, a.downscale_factor, a.downscale_factor, 0))

    def describe(self, a):
        return f"pixelunshuffle /{a.downscale_factor}"


@register
class ChannelShuffle(Op):
    """(N, g*k, *) viewed as (N, g, k, *), dims 1 and 2 swapped, viewed back: channel c*k + i goes to i*g + c."""

    family = "reshape"
    name = "ChannelShuffle"
    params = {"groups": Int(minimum=1, doc="g: the channels (dim 1) split into g groups, then interleaved")}

    def output_shape(self, a, ins, need):
        x = ins[0]
        if len(x) < 3:
            raise RuleError(
                f"{self.name} expects an input of 3 or more dims (N, C, *), received a {len(x)}-D tensor "
                f"{format_shape(x)}"
            )
        need.divisible(
            x[1], a.groups, f"{self.name}: channels ({dims.to_str(x[1])}) must be divisible by groups ({a.groups})"
        )
        return tuple(x)

    def describe(self, a):
        return f"channel shuffle g{a.groups}"

    def emit(self, a, ins):
        return Module("nn.ChannelShuffle", (("groups", a.groups),), 1)

    def memory(self, a, ins, out, mode):
        """A new tensor (a contiguous copy of a transposed view); nothing saved."""
        return Memory()
