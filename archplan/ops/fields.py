"""Receptive fields: which input positions each element of a tensor depends on.

A Field has one entry per tensor dim: an AxisRF for a spatial axis (Araujo et al., Distill 2019: size r,
jump S, padding P; output index i sees input positions [i*S - P, i*S - P + r - 1]), Merged for a dim that
holds the positions of spatial axes flattened into it (tokens: each keeps its patch's field), or None
(batch, channels, features). `whole` says every element depends on every input position (after a global
pool, attention, a Linear over flattened positions, or a merge with such a path); `lost` says why positions
could not be followed (a reshape that splits them): the field is then unknown, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from .. import dims


@dataclass(frozen=True)
class AxisRF:
    size: Any
    stride: Any
    padding: Any

    @property
    def center(self) -> Any:  # offset of the field's centre from i*S, for alignment checks
        return dims.truediv(self.size - 1, 2) - self.padding

    @classmethod
    def from_center(cls, size: Any, stride: Any, center: Any) -> AxisRF:
        return cls(size, stride, dims.truediv(size - 1, 2) - center)


@dataclass(frozen=True)
class Merged:
    """Spatial axes flattened into one dim: each position along it keeps the field of these axes."""

    axes: tuple  # AxisRF per merged spatial axis


@dataclass(frozen=True)
class Field:
    axes: tuple  # per tensor dim: AxisRF, Merged or None
    extent: tuple = ()  # the input's spatial sizes: a global field covers them
    whole: bool = False
    lost: str | None = None

    @classmethod
    def of_input(cls, shape: tuple) -> Field:
        """An input's own positions: [N, C, *spatial] has one spatial axis per dim after the channels."""
        spatial = len(shape) - 2 if len(shape) >= 3 else 0
        return cls(
            (None,) * (len(shape) - spatial) + (AxisRF(1, 1, 0),) * spatial, tuple(shape[len(shape) - spatial :])
        )

    @property
    def spatial(self) -> tuple:
        """AxisRF per spatial axis still in the tensor, in order (merged ones excluded)."""
        return tuple(a for a in self.axes if isinstance(a, AxisRF))

    @property
    def tokens(self) -> Merged | None:
        return next((a for a in self.axes if isinstance(a, Merged)), None)

    def with_axes(self, axes) -> Field:
        return replace(self, axes=tuple(axes))

    def global_(self) -> Field:
        """Every element now depends on every input position."""
        return replace(self, whole=True)

    def unknown(self, reason: str, rank: int) -> Field:
        return Field((None,) * rank, self.extent, self.whole, self.lost or reason)

    def windowed(self, n: int, rule: Callable[[int, AxisRF], AxisRF]) -> Field:
        """A window over the last n dims (conv, pool, pad, upsample): rule(i, axis) for each of them."""
        axes = list(self.axes)
        for i in range(n):
            axis = axes[len(axes) - n + i]
            if isinstance(axis, AxisRF):
                axes[len(axes) - n + i] = rule(i, axis)
            elif axis is not None:  # a window over merged positions: their order along the dim is not spatial
                return self.unknown("a window slides over flattened positions", len(axes))
        return self.with_axes(axes)

    def mixing(self, dims_mixed: tuple) -> Field:
        """An op that combines every position along these dims (global pooling, mean, Linear, attention)."""
        if any(self.axes[d] is not None for d in dims_mixed):
            return self.global_()
        return self


def window_rf(rf: AxisRF, kernel: int, stride: int, pad_left: Any, dilation: int = 1) -> AxisRF:
    """A sliding window (conv, pool): the standard recurrence."""
    k_eff = dilation * (kernel - 1) + 1
    return AxisRF(rf.size + (k_eff - 1) * rf.stride, rf.stride * stride, rf.padding + pad_left * rf.stride)


def upsampled_rf(rf: AxisRF, scale: Any, extra: Any, shift: Any) -> AxisRF:
    """Upsampling by `scale`: the jump shrinks; output o sits at input (o + shift) / scale on average.
    `extra` widens the field (neighbours read by interpolation or by a transposed kernel)."""
    stride = dims.truediv(rf.stride, scale)
    return AxisRF.from_center(rf.size + extra, stride, rf.center + shift * stride)


def merge_fields(fields: list, rank: int) -> Field | None:
    """The field of an elementwise merge or a concat: global if any path is; per dim the largest field over
    the paths that have one (broadcast dims right-aligned); analysis warns when paths are misaligned."""
    fields = [f for f in fields if f is not None]
    if not fields:
        return None
    extent = next((f.extent for f in fields if f.extent), ())
    if any(f.whole for f in fields):
        return Field((None,) * rank, extent, True)
    lost = next((f.lost for f in fields if f.lost), None)
    axes = []
    for d in range(rank):
        candidates = [f.axes[d - rank + len(f.axes)] for f in fields if d - rank + len(f.axes) >= 0]
        spatial = [a for a in candidates if isinstance(a, AxisRF)]
        if spatial:
            axes.append(max(spatial, key=lambda a: dims.as_int(a.size) or 0))
        else:
            axes.append(next((a for a in candidates if a is not None), None))
    return Field(tuple(axes), extent, False, lost)
