"""Indexing and reductions: slice (`x[..., start:end:step]`), select (`x[:, 0]`), mean and sum over dims with
keepdim, with torch's semantics (Python's clipping and negative indices). No parameters, 0 MACs (torch's flop
counter counts none). Receptive fields: see each op; spatial dims are those whose Field entry is an AxisRF.
"""

from __future__ import annotations

from typing import Any

from .. import dims
from ..errors import RuleError
from .base import IGNORE, AxisRF, Expression, Memory, Merged, format_shape, register, window_rf
from .fields import opaque
from .layout import Index, _Layout, _one_or_tuple, axis_index
from .params import Bool, Dims, Int


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
            entry = opaque(entry)
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

    def memory(self, a, ins, out, mode):
        """A view; its input's gradient is a new zero tensor of the input's size with the slice copied in."""
        return Memory(alias=0)


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

    def memory(self, a, ins, out, mode):
        """A view; its input's gradient is a new zero tensor of the input's size with the row copied in."""
        return Memory(alias=0)


# -- reductions -----------------------------------------------------------------------------------------------
class _Reduce(_Layout):
    """torch's `Tensor.<method>(dim, keepdim)`; no dim (or an empty list, as in torch) reduces every dim.
    Reducing every dim that holds positions makes the field global; reducing some spatial axes only covers
    each of them whole (a window the axis's size, kept as a size-1 dim with keepdim, else removed)."""

    integer_inputs = False  # arithmetic on values (torch's mean refuses integer tensors)

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

    def memory(self, a, ins, out, mode):
        """A new tensor; nothing saved (sizes only). Mean's gradient is a new tensor of the input's size; sum's
        is the output's gradient expanded (a view). CUDA's autocast runs sum in fp32."""
        if self.method == "sum":
            return Memory(grad_alias=(0,), autocast="float32" if mode.device == "cuda" else "follow")
        return Memory()


@register
class Mean(_Reduce):
    name = "Mean"
    aliases = ("ReduceMean",)
    method = "mean"


@register
class Sum(_Reduce):
    """Tensor.sum over dims (`reducesum` is an alias)."""

    name = "Sum"
    aliases = ("ReduceSum",)
    method = "sum"
