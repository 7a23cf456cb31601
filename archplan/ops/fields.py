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
    """Spatial axes flattened into one dim (tokens): each position along it keeps the field of these axes.
    `parts` ((size, entry), ...), outer first, remembers what was merged while the dim's size still equals
    their product, so that a reshape splitting it back into exactly these sizes restores the axes."""

    axes: tuple  # AxisRF per merged spatial axis
    parts: tuple = ()


@dataclass(frozen=True)
class Field:
    axes: tuple  # per tensor dim: AxisRF, Merged or None
    extent: tuple = ()  # the input's spatial sizes: a global field covers them
    whole: bool = False
    lost: str | None = None

    @classmethod
    def of_input(cls, shape: tuple, integer: bool = False, positions: tuple | None = None) -> Field:
        """An input's own positions: the dims listed in `positions`; by default [N, C, *spatial] has one
        spatial axis per dim after the channels, and integer ids (tokens [N, L]) have no channel dim: every dim
        after the batch is a position."""
        if positions is None:
            first = 1 if integer else 2 if len(shape) >= 3 else len(shape)
            positions = tuple(range(first, len(shape)))
        axes = tuple(AxisRF(1, 1, 0) if d in positions else None for d in range(len(shape)))
        return cls(axes, tuple(shape[d] for d in positions))

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


# -- fields through reshapes -------------------------------------------------------------------------------
def _atoms(size: Any, entry: Any) -> list:
    """The pieces a dim is made of: a Merged dim its parts (while their sizes still make the dim), else itself."""
    if isinstance(entry, Merged) and entry.parts and dims.equal(dims.product(s for s, _ in entry.parts), size) is True:
        return list(entry.parts)
    return [(size, entry)]


def _joined(atoms: list) -> Any:
    """The entry of a dim made of these pieces: the piece itself, Merged over spatial pieces, else None."""
    if len(atoms) == 1:
        return atoms[0][1]
    spatial = tuple(x for _, e in atoms if e is not None for x in (e.axes if isinstance(e, Merged) else (e,)))
    if not spatial:
        return None
    if any(isinstance(e, Merged) for _, e in atoms):  # positions already flattened without their sizes
        return Merged(spatial)
    return Merged(spatial, tuple(atoms))


def merged_field(field: Field, shape: tuple, start: int, end: int) -> Field:
    """Dims start..end become one (flatten): spatial entries among them become Merged."""
    if start == end:
        return field
    region = zip(shape[start : end + 1], field.axes[start : end + 1])
    atoms = [atom for size, entry in region for atom in _atoms(size, entry)]
    return field.with_axes((*field.axes[:start], _joined(atoms), *field.axes[end + 1 :]))


def regroup(atoms: list, out: tuple) -> list | None:
    """Which pieces make each output dim (outer first); None when an output dim would cut a spatial piece."""
    atoms, i, groups = list(atoms), 0, []
    for size in out:
        group, p = [], 1
        if dims.equal(size, 1) is True:  # a size-1 dim takes a size-1 piece if one comes next, else is new
            if i < len(atoms) and dims.equal(atoms[i][0], 1) is True:
                group.append(atoms[i])
                i += 1
            groups.append(group)
            continue
        while dims.equal(p, size) is not True:
            if i == len(atoms):
                return None
            piece, entry = atoms[i]
            q = p * piece
            if dims.equal(q, size) is True or dims.is_multiple(size, q):
                group.append(atoms[i])
                i, p = i + 1, q
            elif entry is None and dims.is_multiple(size, p) and dims.is_multiple(piece, dims.divided(size, p)):
                part = dims.divided(size, p)  # channels split: the dim ends inside this piece
                group.append((part, None))
                atoms[i] = (dims.divided(piece, part), None)
                p = size
            else:
                return None
        groups.append(group)
    if any(dims.equal(s, 1) is not True for s, _ in atoms[i:]):
        return None
    return groups


def reshaped_field(field: Field, in_shape: tuple, out_shape: tuple) -> Field:
    """The field after a reshape: dims of equal sizes keep their entries; spatial dims merged into one become
    Merged; Merged split into exactly their parts get their entries back; any other cut of positions is unknown."""
    if len(field.axes) != len(in_shape):
        return field.unknown("the field does not follow the input's dims", len(out_shape))
    atoms = [atom for size, entry in zip(in_shape, field.axes) for atom in _atoms(size, entry)]
    if all(entry is None for _, entry in atoms):
        return field.with_axes((None,) * len(out_shape))
    groups = regroup(atoms, tuple(out_shape))
    if groups is None:
        shapes = [f"[{', '.join(dims.to_str(d) for d in shape)}]" for shape in (in_shape, out_shape)]
        reason = f"a reshape from {shapes[0]} to {shapes[1]} cuts spatial positions apart"
        return field.unknown(reason, len(out_shape))
    return field.with_axes(_joined(g) for g in groups)


def opaque(entry: Any) -> Any:
    """A dim whose size no longer matches what it merged keeps its positions, not its parts."""
    return Merged(entry.axes) if isinstance(entry, Merged) else entry
