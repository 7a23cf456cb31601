"""Ops that move elements without arithmetic: reshape/view, unflatten, permute, transpose, expand, slice, select;
and the reductions mean and sum. Torch semantics (`Tensor.reshape`, `x[..., a:b:c]`, `Tensor.mean(dim, keepdim)`).

None has parameters, and all cost 0 MACs: torch's flop counter counts nothing for views, copies or reductions.

Receptive fields follow every dim. A dim is spatial when its Field entry says so (ops/fields.py): an input
[N, C, *spatial] starts with one AxisRF per dim after the channels, and these rules carry the entries along,
so after a permute to channels-last the spatial dims are 1 and 2. Flattened positions are `Tokens` (a Merged
that remembers the sizes and entries it merged), so that splitting them back into exactly those sizes
restores the axes; a reshape that cuts a spatial axis apart gives an unknown field, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .. import dims
from ..errors import RuleError
from ..show import shown
from .base import IGNORE, AxisRF, Expression, Field, Merged, Op, format_shape, register, window_rf
from .params import Bool, Dim, Dims, Int, Param


# -- arguments ------------------------------------------------------------------------------------------------
def _evaluated(value: Any, evaluate) -> Any:
    return evaluate(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class SizeList(Param):
    """A non-empty list of sizes (ints, symbols, expressions) where -1 stands for a size to infer (reshape,
    unflatten: at most one) or to keep (expand: any number)."""

    most_inferred: int | None = 1

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


def _is_whole(x: Any) -> bool:
    """x is decidedly an integer."""
    if dims.as_int(x) is not None:
        return True
    return dims.is_expr(x) and bool(getattr(x, "is_integer", False))


def _divided(x: Any, y: Any) -> Any:
    """x / y, with common factors of symbolic sizes cancelled ((4*H - 8)*W / 4 is (H - 2)*W)."""
    q = dims.truediv(x, y)
    if dims.is_expr(q) and not q.is_integer:
        import sympy

        q = sympy.factor(sympy.cancel(q))
    return q


def _multiple(x: Any, y: Any) -> bool:
    """x is decidedly y times an integer of at least 2 (so y is a proper part of x)."""
    q = _divided(x, y)
    number = dims.as_int(q)
    if number is not None:
        return number >= 2
    return _is_whole(q) and dims.equal(q, 1) is not True


def inferred_sizes(total: Any, sizes: tuple, need, what: str) -> tuple:
    """`sizes` with its -1 (at most one) replaced by total / (product of the others), exactly, symbolically
    where sizes are symbols; a total the sizes cannot make is an error, or a validity condition."""
    known = dims.product(s for s in sizes if s != -1)
    if -1 not in sizes:
        need.equal(known, total, what)
        return sizes
    missing = _divided(total, known)
    if dims.is_concrete(known) and dims.is_concrete(total):
        if total % known:
            raise RuleError(f"{what}: {dims.to_str(total)} is not a multiple of {dims.to_str(known)}")
    elif not _is_whole(missing):
        coeff, factor = _split_coefficient(known)
        rest = _divided(total, factor)
        if _is_whole(rest):  # a symbolic part divides out exactly; the integer part must divide the rest
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


# -- receptive fields over reshapes -------------------------------------------------------------------------
@dataclass(frozen=True)
class Tokens(Merged):
    """Merged positions that remember what was merged: parts ((size, entry), ...), outer first, each entry an
    AxisRF or None, so that a reshape splitting the dim back into exactly these sizes restores the axes."""

    parts: tuple = ()


def _atoms(size: Any, entry: Any) -> list:
    """The pieces a dim is made of: a Tokens dim its parts (while their sizes still make the dim), else itself."""
    if isinstance(entry, Tokens) and dims.equal(dims.product(s for s, _ in entry.parts), size) is True:
        return list(entry.parts)
    return [(size, entry)]


def _joined(atoms: list) -> Any:
    """The entry of a dim made of these pieces: the piece itself, Tokens over spatial pieces, else None."""
    if len(atoms) == 1:
        return atoms[0][1]
    spatial = tuple(x for _, e in atoms if e is not None for x in (e.axes if isinstance(e, Merged) else (e,)))
    if not spatial:
        return None
    if any(isinstance(e, Merged) for _, e in atoms):  # positions already flattened without their sizes
        return Merged(spatial)
    return Tokens(spatial, tuple(atoms))


def merged_field(field: Field, shape: tuple, start: int, end: int) -> Field:
    """Dims start..end become one (flatten): spatial entries among them become Tokens."""
    if start == end:
        return field
    region = zip(shape[start : end + 1], field.axes[start : end + 1])
    atoms = [atom for size, entry in region for atom in _atoms(size, entry)]
    return field.with_axes((*field.axes[:start], _joined(atoms), *field.axes[end + 1 :]))


def _regroup(atoms: list, out: tuple) -> list | None:
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
            if dims.equal(q, size) is True or _multiple(size, q):
                group.append(atoms[i])
                i, p = i + 1, q
            elif entry is None and _multiple(size, p) and _multiple(piece, _divided(size, p)):
                part = _divided(size, p)  # channels split: the dim ends inside this piece
                group.append((part, None))
                atoms[i] = (_divided(piece, part), None)
                p = size
            else:
                return None
        groups.append(group)
    if any(dims.equal(s, 1) is not True for s, _ in atoms[i:]):
        return None
    return groups


def reshaped_field(field: Field, in_shape: tuple, out_shape: tuple) -> Field:
    """The field after a reshape: dims of equal sizes keep their entries; spatial dims merged into one become
    Tokens; Tokens split into exactly their parts get their entries back; any other cut of positions is unknown."""
    if len(field.axes) != len(in_shape):
        return field.unknown("the field does not follow the input's dims", len(out_shape))
    atoms = [atom for size, entry in zip(in_shape, field.axes) for atom in _atoms(size, entry)]
    if all(entry is None for _, entry in atoms):
        return field.with_axes((None,) * len(out_shape))
    groups = _regroup(atoms, tuple(out_shape))
    if groups is None:
        reason = f"a reshape from {format_shape(in_shape)} to {format_shape(out_shape)} cuts spatial positions apart"
        return field.unknown(reason, len(out_shape))
    return field.with_axes(_joined(g) for g in groups)


def _opaque(entry: Any) -> Any:
    """A dim whose size no longer matches what it merged keeps its positions, not its parts."""
    return Merged(entry.axes) if isinstance(entry, Tokens) else entry


class _Layout(Op):
    family = "reshape"


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
        groups = _regroup([(s, i if i >= 2 else None) for i, s in enumerate(shape)], tuple(out))
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
@register
class Permute(_Layout):
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

    def output_shape(self, a, ins, need):
        return tuple(ins[0][d] for d in self.order(a, ins[0]))

    def receptive_field(self, a, rfs, ins):
        return rfs[0].with_axes(rfs[0].axes[d] for d in self.order(a, ins[0]))

    def describe(self, a):
        return "permute " + ",".join(str(d) for d in a.dims)

    def emit(self, a, ins):
        return Expression("{0}.permute({dims})", (("dims", tuple(a.dims)),))


@register
class Transpose(_Layout):
    """torch's `Tensor.transpose(dim0, dim1)`: the two dims swap, with their field entries."""

    name = "Transpose"
    params = {"dim0": Int(doc="first dim"), "dim1": Int(doc="second dim")}

    def order(self, a, shape) -> list:
        rank = len(shape)
        d0, d1 = axis_index(a.dim0, rank, "dim0"), axis_index(a.dim1, rank, "dim1")
        order = list(range(rank))
        order[d0], order[d1] = d1, d0
        return order

    def output_shape(self, a, ins, need):
        return tuple(ins[0][d] for d in self.order(a, ins[0]))

    def receptive_field(self, a, rfs, ins):
        return rfs[0].with_axes(rfs[0].axes[d] for d in self.order(a, ins[0]))

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
                entry = AxisRF(entry.size, 0, entry.padding) if isinstance(entry, AxisRF) else _opaque(entry)
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


# -- slice, select --------------------------------------------------------------------------------------------
def _index_text(dim: int, inner: str) -> str:
    """x[:, :, 1:] for dim 2; x[..., 1:] for dim -1; x[..., 1:, :] for dim -2."""
    if dim >= 0:
        return "".join([":, "] * dim) + inner
    return "..., " + inner + "".join([", :"] * (-dim - 1))


def _from_end(index: Any) -> bool:
    """A concrete negative index (counted from the end)."""
    return dims.as_int(index) is not None and index < 0


def _slice_size(length: Any, start: Any, end: Any, step: int) -> tuple:
    """(first index, count) of range(length)[start:end:step], Python's clipping; symbolic where sizes are
    (a count < 1 means empty). A symbolic start or end is a non-negative index."""
    if all(v is None or dims.as_int(v) is not None for v in (length, start, end)):
        r = range(length)[slice(start, end, step)]
        return r.start, len(r)
    first = dims.dmax(length + start, 0) if _from_end(start) else start
    if end is None:
        last = length
    elif _from_end(end):
        last = length + end  # clipping at 0 only matters when the slice is empty
    else:
        last = dims.dmin(end, length)
    if _from_end(start) and (end is None or _from_end(end)):
        span = dims.dmin((end or 0) - start, last)  # both from the end: at most end - start, at most what is left
    else:
        span = last - first
    return first, span if step == 1 else dims.ceildiv(span, step)


@register
class Slice(_Layout):
    """`x[..., start:end:step]` along `dim`, with Python's clipping and negative indices. Output i of a spatial
    dim is input start + i*step: the axis's jump grows by step and its offset by start (exact); a sliced dim
    that holds no positions keeps the field; sliced tokens keep their positions but no longer their sizes."""

    name = "Slice"
    params = {
        "dim": Int(doc="the dim to slice"),
        "start": Index(default=0, doc="first index (negative counts from the end)"),
        "end": Index(default=None, doc="end index, excluded (default: the dim's size)"),
        "step": Int(default=1, minimum=1, doc="step (>= 1)"),
    }

    @classmethod
    def normalize(cls, values):
        if values["start"] is None:  # x[None:] is x[0:]
            values["start"] = 0
        return values

    def span(self, a, shape, need) -> tuple:
        d = axis_index(a.dim, len(shape))
        for key in ("start", "end"):
            if a[key] is not None and dims.as_int(a[key]) is None:
                need.positive(a[key] + 1, f"slice: a symbolic {key} ({dims.to_str(a[key])}) must be >= 0")
        first, count = _slice_size(shape[d], a.start, a.end, a.step)
        message = f"slice [{self.bounds(a)}] along dim {a.dim} of {format_shape(shape)} is empty"
        if dims.as_int(count) is not None:
            if count < 1:
                raise RuleError(message)
        else:
            need.positive(count, message)
        return d, first, count

    def output_shape(self, a, ins, need):
        d, _, count = self.span(a, ins[0], need)
        return (*ins[0][:d], count, *ins[0][d + 1 :])

    def receptive_field(self, a, rfs, ins):
        d, first, count = self.span(a, ins[0], IGNORE)
        entry = rfs[0].axes[d]
        if isinstance(entry, AxisRF):
            entry = AxisRF(entry.size, entry.stride * a.step, entry.padding - first * entry.stride)
        elif dims.equal(count, ins[0][d]) is not True:
            entry = _opaque(entry)
        return rfs[0].with_axes((*rfs[0].axes[:d], entry, *rfs[0].axes[d + 1 :]))

    @staticmethod
    def bounds(a, names: dict | None = None) -> str:
        """[1:], [::2], [-3:-1]: the text between the brackets, from values or from {name} placeholders."""
        start = "" if a.start == 0 else (names or {}).get("start", dims.to_str(a.start) if a.start is not None else "")
        end = "" if a.end is None else (names or {}).get("end", dims.to_str(a.end))
        text = f"{start}:{end}"
        return text + ("" if a.step == 1 else ":" + (names or {}).get("step", str(a.step)))

    def describe(self, a):
        return f"slice dim {a.dim} [{self.bounds(a)}]"

    def emit(self, a, ins):
        inner = self.bounds(a, {"start": "{start}", "end": "{end}", "step": "{step}"})
        kwargs = tuple((k, a[k]) for k in ("start", "end", "step") if "{" + k + "}" in inner)
        return Expression("{0}[" + _index_text(a.dim, inner) + "]", kwargs)


@register
class Select(_Layout):
    """`x[..., index]` along `dim` (torch's `Tensor.select`): the dim is removed, with its field entry (a spatial
    axis selected away leaves the others as they were)."""

    name = "Select"
    params = {"dim": Int(doc="the dim to index"), "index": Index(doc="the index (negative counts from the end)")}

    def output_shape(self, a, ins, need):
        x = ins[0]
        d = axis_index(a.dim, len(x))
        size, index = x[d], a.index
        message = f"select: index {dims.to_str(index)} is out of range for dim {a.dim} of {format_shape(x)}"
        if dims.as_int(size) is not None and dims.as_int(index) is not None:
            if not -size <= index < size:
                raise RuleError(f"{message} (expected {-size} to {size - 1})")
        elif dims.as_int(index) is not None:
            need.positive(size - index if index >= 0 else size + index + 1, message)
        else:
            need.positive(index + 1, f"select: a symbolic index ({dims.to_str(index)}) must be >= 0")
            need.positive(size - index, message)
        return (*x[:d], *x[d + 1 :])

    def receptive_field(self, a, rfs, ins):
        d = axis_index(a.dim, len(ins[0]))
        return rfs[0].with_axes((*rfs[0].axes[:d], *rfs[0].axes[d + 1 :]))

    def describe(self, a):
        return f"select dim {a.dim} [{dims.to_str(a.index)}]"

    def emit(self, a, ins):
        return Expression("{0}[" + _index_text(a.dim, "{index}") + "]", (("index", a.index),))


# -- reductions -----------------------------------------------------------------------------------------------
class _Reduce(_Layout):
    """torch's `Tensor.<method>(dim, keepdim)`; no dim (or an empty list, as in torch) reduces every dim.
    Reducing every dim that holds positions makes the field global; reducing some spatial axes only covers
    each of them whole (a window the axis's size, kept as a size-1 dim with keepdim, else removed)."""

    family = "pool"
    method = ""
    params = {
        "dim": Dims(default=None, doc="a dim or a list of dims (default: all)"),
        "keepdim": Bool(default=False, doc="keep the reduced dims with size 1"),
    }

    def reduced(self, a, shape) -> tuple:
        rank = len(shape)
        if not a.dim:
            return tuple(range(rank))
        order = [axis_index(d, rank) for d in a.dim]
        if len(set(order)) != len(order):
            raise RuleError(f"{self.method}: dim {list(a.dim)} names a dim more than once")
        return tuple(sorted(order))

    def output_shape(self, a, ins, need):
        x, reduced = ins[0], self.reduced(a, ins[0])
        if a.keepdim:
            return tuple(1 if i in reduced else s for i, s in enumerate(x))
        return tuple(s for i, s in enumerate(x) if i not in reduced)

    def receptive_field(self, a, rfs, ins):
        field, x = rfs[0], ins[0]
        reduced = self.reduced(a, x)
        holding = {i for i, e in enumerate(field.axes) if e is not None}
        if holding and holding <= set(reduced):
            field = field.mixing(reduced)
        elif any(isinstance(field.axes[i], Merged) for i in reduced):
            rank = len(x) if a.keepdim else len(x) - len(reduced)
            return field.unknown(f"{self.method} over some flattened positions but not others", rank)
        axes = []
        for i, entry in enumerate(field.axes):
            if i not in reduced:
                axes.append(entry)
            elif a.keepdim:
                whole_axis = isinstance(entry, AxisRF) and not field.whole
                axes.append(window_rf(entry, x[i], x[i], 0) if whole_axis else None)
        return field.with_axes(axes)

    def describe(self, a):
        where = "" if not a.dim else " dim " + ",".join(str(d) for d in a.dim)
        return f"{self.method}{where}" + (" keepdim" if a.keepdim else "")

    def emit(self, a, ins):
        if a.dim is None and not a.keepdim:
            return Expression(f"{{0}}.{self.method}()")
        dim = a.dim if a.dim is not None else tuple(range(len(ins[0])))
        kwargs = [("dim", _one_or_tuple(dim) if dim else ())]
        template = f"{{0}}.{self.method}(dim={{dim}}"
        if a.keepdim:
            template += ", keepdim={keepdim}"
            kwargs.append(("keepdim", True))
        return Expression(template + ")", tuple(kwargs))


@register
class Mean(_Reduce):
    name = "Mean"
    aliases = ("ReduceMean",)
    method = "mean"


@register
class ReduceSum(_Reduce):
    """Tensor.sum. Registered as reducesum: `sum` is an alias of Add (ops/structure.py)."""

    name = "ReduceSum"
    method = "sum"
