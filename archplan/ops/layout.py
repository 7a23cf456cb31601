"""Ops that move elements without arithmetic: reshape/view, unflatten, permute, transpose, expand (indexing.py
has slice, select and the reductions). Torch semantics (`Tensor.reshape`, `Tensor.permute`, `Tensor.expand`).

None has parameters, and all cost 0 MACs: torch's flop counter counts nothing for views, copies or reductions.

Receptive fields follow every dim. A dim is spatial when its Field entry says so (ops/fields.py): an input
[N, C, *spatial] starts with one AxisRF per dim after the channels, and these rules carry the entries along,
so after a permute to channels-last the spatial dims are 1 and 2. Flattened positions are `Tokens` (a Merged
that remembers the sizes and entries it merged), so that splitting them back into exactly those sizes
restores the axes; a reshape that cuts a spatial axis apart gives an unknown field, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from .. import dims
from ..errors import RuleError
from ..show import shown
from .base import IGNORE, AxisRF, Expression, Memory, Op, format_shape, register
from .fields import opaque, regroup, reshaped_field
from .params import Dim, Dims, Int, Param


# -- arguments ------------------------------------------------------------------------------------------------
def _evaluated(value: Any, evaluate) -> Any:
    return evaluate(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class SizeList(Param):
    """A non-empty list of sizes (ints, symbols, expressions) where -1 stands for a size to infer (reshape,
    unflatten: at most one) or to keep (expand: any number)."""

    most_inferred: int | None = 1
    symbolic: ClassVar[bool] = True

    def convert(self, value, name, evaluate):
        value = _evaluated(value, evaluate)
        if not isinstance(value, (list, tuple)) or not value:
            raise RuleError(
                f"{name}: expected a non-empty list of sizes (ints, symbols or -1), received {shown(value)}"
            )
        out = []
        for i, item in enumerate(value):
            item = _evaluated(item, evaluate)
            if dims.as_int(item) == -1:
                out.append(-1)
                continue
            try:
                out.append(Dim().convert(item, f"{name}[{i}]", evaluate))
            except RuleError:
                raise RuleError(f"{name}[{i}]: expected a positive size or -1, received {shown(item)}") from None
        if self.most_inferred is not None and out.count(-1) > self.most_inferred:
            raise RuleError(f"{name}: only one size can be inferred (-1), received {_sizes_text(out)}")
        return tuple(out)


@dataclass(frozen=True)
class Index(Param):
    """A position along a dim: an int (negative counts from the end), a non-negative symbolic expression, or
    None (the end of a slice)."""

    symbolic: ClassVar[bool] = True

    def convert(self, value, name, evaluate):
        value = _evaluated(value, evaluate)
        if value is None:
            return None
        number = dims.as_int(value)
        if number is not None and not isinstance(value, float):
            return Int().convert(number, name, evaluate)
        if dims.is_expr(value) and getattr(value, "is_integer", None) is not False:
            return value
        raise RuleError(f"{name}: expected an integer index, received {shown(value)}")


# -- shared helpers -------------------------------------------------------------------------------------------
def axis_index(dim: int, rank: int, what: str = "dim") -> int:
    if not -rank <= dim < rank:
        want = f"{-rank} to {rank - 1}" if rank else "none: the tensor has no dims"
        raise RuleError(f"{what} {dim} is out of range for a {rank}-D tensor (expected {want})")
    return dim % rank


def _sizes_text(sizes: Sequence) -> str:
    return "[" + ", ".join(dims.to_str(s) for s in sizes) + "]"


def inferred_sizes(total: Any, sizes: tuple, need, what: str) -> tuple:
    """`sizes` with its -1 (at most one) replaced by total / (product of the others), exactly, symbolically
    where sizes are symbols; a total the sizes cannot make is an error, or a validity condition."""
    known = dims.product(s for s in sizes if s != -1)
    if -1 not in sizes:
        need.equal(known, total, what)
        return sizes
    missing = dims.divided(total, known)
    if dims.is_concrete(known) and dims.is_concrete(total):
        if total % known:
            raise RuleError(f"{what}: {dims.to_str(total)} is not a multiple of {dims.to_str(known)}")
    elif not dims.is_whole(missing):
        coeff, factor = _split_coefficient(known)
        rest = dims.divided(total, factor)
        if dims.is_whole(rest):  # a symbolic part divides out exactly; the integer part must divide the rest
            need.divisible(rest, coeff, what)
            missing = dims.floordiv(rest, coeff)
        else:  # a symbol of the shape that the input's size does not hold
            import sympy

            need.divisible(sympy.sympify(total), known, what)
            missing = dims.floordiv(total, known)
    return tuple(missing if s == -1 else s for s in sizes)


def _split_coefficient(x: Any) -> tuple:
    """x = coefficient (int) * factor."""
    if dims.as_int(x) is not None:
        return dims.as_int(x), 1
    coeff, factor = x.as_coeff_Mul()
    number = dims.as_int(coeff)
    return (number, factor) if number is not None else (1, x)


def _kept_as_minus_one(sizes: tuple) -> tuple:
    """Emitted sizes: a symbolic size is written -1 when it is the only one and nothing else is inferred (torch
    then computes it), so the generated code does not fix the symbol."""
    symbolic = [i for i, s in enumerate(sizes) if dims.as_int(s) is None]
    if len(symbolic) == 1 and -1 not in sizes:
        return tuple(-1 if i == symbolic[0] else s for i, s in enumerate(sizes))
    return tuple(dims.normalize(s) for s in sizes)


def _one_or_tuple(values: tuple) -> Any:
    return values[0] if len(values) == 1 else tuple(values)


class _Layout(Op):
    family = "reshape"
    integer_inputs = True  # moves values without arithmetic: token ids stay token ids

    def memory(self, a, ins, out, mode):
        """A view of the input's storage, as is its gradient (a reshape of a non-contiguous tensor copies in torch;
        the planner assumes views)."""
        return Memory(alias=0, grad_alias=(0,))


# -- reshape, unflatten ---------------------------------------------------------------------------------------
@register
class Reshape(_Layout):
    """torch's `Tensor.reshape(shape)` (`view` is the same here, and emits reshape, which also works on
    non-contiguous tensors). Spatial dims: the input's; see reshaped_field."""

    name = "Reshape"
    aliases = ("View",)
    params = {"shape": SizeList(doc="the new shape; entries may be symbols or expressions; one -1 is inferred")}

    def output_shape(self, a, ins, need):
        x = ins[0]
        what = f"shape {_sizes_text(a.shape)} is invalid for input {format_shape(x)}"
        return inferred_sizes(dims.product(x), a.shape, need, f"{what} of size {dims.to_str(dims.product(x))}")

    def receptive_field(self, a, rfs, ins):
        return reshaped_field(rfs[0], tuple(ins[0]), self.output_shape(a, ins, IGNORE))

    def flattened_spatial(self, a, shape):
        """Spatial dims (2 and later) that the reshape merges into the last dim, where a Linear would read them."""
        if len(shape) < 3:
            return ()
        try:
            out = self.output_shape(a, [shape], IGNORE)
        except RuleError:
            return ()
        groups = regroup([(s, i if i >= 2 else None) for i, s in enumerate(shape)], tuple(out))
        if not groups or len(groups[-1]) < 2:
            return ()
        spatial = tuple(s for s, i in groups[-1] if i is not None)
        return spatial if any(dims.equal(s, 1) is not True for s in spatial) else ()

    def describe(self, a):
        return f"reshape {_sizes_text(a.shape)}"

    def emit(self, a, ins):
        return Expression("{0}.reshape({shape})", (("shape", _kept_as_minus_one(a.shape)),))


@register
class Unflatten(_Layout):
    """torch's `Tensor.unflatten(dim, sizes)`. Tokens split into exactly the sizes they merged become the
    spatial axes again; other splits of positions give an unknown field."""

    name = "Unflatten"
    params = {
        "dim": Int(doc="the dim to split (negative counts from the end)"),
        "sizes": SizeList(doc="the sizes it splits into; one -1 is inferred"),
    }

    def output_shape(self, a, ins, need):
        x = ins[0]
        d = axis_index(a.dim, len(x))
        what = f"unflatten: sizes {_sizes_text(a.sizes)} don't multiply up to dim {a.dim} of {format_shape(x)}"
        return (*x[:d], *inferred_sizes(x[d], a.sizes, need, what), *x[d + 1 :])

    def receptive_field(self, a, rfs, ins):
        return reshaped_field(rfs[0], tuple(ins[0]), self.output_shape(a, ins, IGNORE))

    def describe(self, a):
        return f"unflatten dim {a.dim} {_sizes_text(a.sizes)}"

    def emit(self, a, ins):
        return Expression("{0}.unflatten({dim}, {sizes})", (("dim", a.dim), ("sizes", _kept_as_minus_one(a.sizes))))


# -- permute, transpose, expand -------------------------------------------------------------------------------
class _Reorder(_Layout):
    """A reordering of the input's dims (`order(a, shape)`: output dim i is input dim order[i]), each carrying its
    size and its field entry."""

    def output_shape(self, a, ins, need):
        return tuple(ins[0][d] for d in self.order(a, ins[0]))

    def receptive_field(self, a, rfs, ins):
        return rfs[0].with_axes(rfs[0].axes[d] for d in self.order(a, ins[0]))


@register
class Permute(_Reorder):
    """torch's `Tensor.permute(dims)`: each output dim is an input dim, with its field entry (spatial or not)."""

    name = "Permute"
    params = {"dims": Dims(doc="a permutation of the input's dims (negatives count from the end)")}

    def order(self, a, shape) -> tuple:
        rank = len(shape)
        if len(a.dims) != rank:
            raise RuleError(
                f"permute: dims {list(a.dims)} name {len(a.dims)} dims, but the input {format_shape(shape)} has {rank}"
            )
        order = tuple(axis_index(d, rank) for d in a.dims)
        if len(set(order)) != rank:
            raise RuleError(f"permute: dims {list(a.dims)} repeat a dim; expected a permutation of 0..{rank - 1}")
        return order

    def describe(self, a):
        return "permute " + ",".join(str(d) for d in a.dims)

    def emit(self, a, ins):
        return Expression("{0}.permute({dims})", (("dims", tuple(a.dims)),))


@register
class Transpose(_Reorder):
    """torch's `Tensor.transpose(dim0, dim1)`: the two dims swap, with their field entries."""

    name = "Transpose"
    params = {"dim0": Int(doc="first dim"), "dim1": Int(doc="second dim")}

    def order(self, a, shape) -> list:
        rank = len(shape)
        d0, d1 = axis_index(a.dim0, rank, "dim0"), axis_index(a.dim1, rank, "dim1")
        order = list(range(rank))
        order[d0], order[d1] = d1, d0
        return order

    def describe(self, a):
        return f"transpose {a.dim0},{a.dim1}"

    def emit(self, a, ins):
        return Expression("{0}.transpose({dim0}, {dim1})", (("dim0", a.dim0), ("dim1", a.dim1)))


@register
class Expand(_Layout):
    """torch's `Tensor.expand(shape)`: sizes align from the right; -1 keeps a dim; only size-1 dims grow, and new
    dims may be added in front. Existing dims keep their field entries (a grown spatial dim reads its one
    position: jump 0); new dims have none."""

    name = "Expand"
    params = {"shape": SizeList(most_inferred=None, doc="the target shape; -1 keeps a dim; new leading dims allowed")}

    def output_shape(self, a, ins, need):
        x, shape = ins[0], a.shape
        new = len(shape) - len(x)
        if new < 0:
            raise RuleError(
                f"expand: the shape {_sizes_text(shape)} has {len(shape)} sizes, fewer than the {len(x)} dims of "
                f"the input {format_shape(x)}"
            )
        out = []
        for i, want in enumerate(shape):
            if i < new:
                if want == -1:
                    raise RuleError(f"expand: -1 at index {i} of {_sizes_text(shape)} is not allowed for a new dim")
                out.append(want)
                continue
            have = x[i - new]
            if want == -1 or dims.equal(have, 1) is True:
                out.append(have if want == -1 else want)
                continue
            message = (
                f"expand: the size {dims.to_str(want)} at index {i} of {_sizes_text(shape)} must match the existing "
                f"size {dims.to_str(have)} of the input {format_shape(x)} (only size-1 dims can grow)"
            )
            need.equal(have, want, message)
            out.append(want)
        return tuple(out)

    def receptive_field(self, a, rfs, ins):
        x = ins[0]
        out = self.output_shape(a, ins, IGNORE)
        new = len(out) - len(x)
        axes = [None] * new
        for entry, have, size in zip(rfs[0].axes, x, out[new:]):
            if entry is not None and dims.equal(have, size) is not True:  # a size-1 dim repeated
                entry = AxisRF(entry.size, 0, entry.padding) if isinstance(entry, AxisRF) else opaque(entry)
            axes.append(entry)
        return rfs[0].with_axes(axes)

    def describe(self, a):
        return f"expand {_sizes_text(a.shape)}"

    def emit(self, a, ins):
        x, shape = ins[0], list(a.shape)
        new = len(shape) - len(x)
        for i in range(max(new, 0), len(shape)):  # a symbolic size equal to the input's: -1 keeps it
            if dims.as_int(shape[i]) is None and dims.equal(shape[i], x[i - new]) is True:
                shape[i] = -1
        return Expression("{0}.expand({shape})", (("shape", tuple(dims.normalize(s) for s in shape)),))

    def memory(self, a, ins, out, mode):
        """A view; its input's gradient sums the output's over the repeated dims: a new tensor."""
        return Memory(alias=0)


# -- slice, select --------------------------------------------------------------------------------------------
