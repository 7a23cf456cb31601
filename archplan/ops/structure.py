"""Ops that merge or reshape tensors: add, sub, mul, div (torch broadcasting), concat, flatten, upsample."""

from __future__ import annotations

from fractions import Fraction

from .. import dims
from ..errors import RuleError
from .fields import merged_field
from .base import IGNORE, Expression, Memory, Module, Op, Saved, format_shape, merge_fields, register
from .base import upsampled_rf
from .params import Choice, Floats, Int, Param, Sizes


def _axis(dim: int, rank: int, what: str = "dim") -> int:
    if not -rank <= dim < rank:
        raise RuleError(f"{what} {dim} is out of range for a {rank}-D tensor (expected {-rank} to {rank - 1})")
    return dim % rank


def broadcast(shapes, need, message: str) -> tuple:
    """torch's broadcasting: shapes aligned at the right, a size-1 dim stretches, other sizes must agree."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis in range(rank):
        wide = [s[axis] for s in padded if s[axis] != 1]
        for other in wide[1:]:
            need.equal(wide[0], other, f"{message}: dim {axis} differs")
        out.append(wide[0] if wide else 1)
    return tuple(out)


class Elementwise(Op):
    family = "merge"
    arity = (2, None)
    symbol = "+"

    def output_shape(self, a, ins, need):
        return broadcast(ins, need, f"cannot {self.name.lower()} {' and '.join(format_shape(s) for s in ins)}")

    def receptive_field(self, a, rfs, ins):
        return merge_fields(rfs, max(len(s) for s in ins))

    def describe(self, a):
        return self.name.lower()

    def emit(self, a, ins):
        return Expression(f" {self.symbol} ".join(f"{{{i}}}" for i in range(len(ins))))

    def memory(self, a, ins, out, mode):
        """x0 + x1 + x2 runs left to right: each partial result is a new tensor (scratch). Add and the first
        operand of sub pass the output's gradient on as is where no broadcast happened; others get new ones."""
        passed = range(len(ins)) if self.symbol == "+" else (0,)  # -x1's gradient is a new tensor
        same = tuple(i for i in passed if tuple(ins[i]) == tuple(out))
        return Memory(scratch=(Saved("new", tuple(out)),) if len(ins) > 2 else (), grad_alias=same)


@register
class Add(Elementwise):
    name = "Add"
    symbol = "+"


@register
class Mul(Elementwise):
    name = "Mul"
    aliases = ("Multiply",)
    symbol = "*"

    def memory(self, a, ins, out, mode):
        """x0 * x1 * x2 runs left to right; each product saves its right operand when its left one requires grad
        and its left operand (a partial product after the first) when its right one does."""
        saved, scratch = [], []
        left, grad = tuple(ins[0]), mode.grads[0]
        for k in range(1, len(ins)):
            if grad:
                saved.append(Saved(k))
            if mode.grads[k]:
                saved.append(Saved(0) if k == 1 else Saved("new", left))
            left, grad = tuple(self.output_shape(a, [left, ins[k]], IGNORE)), grad or mode.grads[k]
            if k < len(ins) - 1:
                scratch.append(Saved("new", left))
        return Memory(tuple(saved), tuple(scratch[:1]))


@register
class Sub(Elementwise):
    name = "Sub"
    aliases = ("Subtract",)
    symbol = "-"
    arity = (2, 2)


@register
class Div(Elementwise):
    name = "Div"
    aliases = ("Divide",)
    symbol = "/"
    arity = (2, 2)

    def memory(self, a, ins, out, mode):
        """x / y saves y for either gradient, and x for y's."""
        return Memory((Saved(1),) + ((Saved(0),) if mode.grads[1] else ()))


@register
class Concat(Op):
    family = "merge"
    integer_inputs = True
    name = "Concat"
    aliases = ("Cat", "Concatenate")
    arity = (1, None)
    params = {"dim": Int(default=1)}

    def output_shape(self, a, ins, need):
        rank = len(ins[0])
        if any(len(s) != rank for s in ins):
            raise RuleError("cannot concatenate tensors of different ranks: " + ", ".join(format_shape(s) for s in ins))
        axis = _axis(a.dim, rank)
        for other in ins[1:]:
            for i in range(rank):
                if i != axis:
                    need.equal(
                        ins[0][i],
                        other[i],
                        f"cannot concatenate {format_shape(ins[0])} and "
                        f"{format_shape(other)} along dim {axis}: dim {i} differs",
                    )
        total = 0
        for s in ins:
            total = total + s[axis]
        return (*ins[0][:axis], total, *ins[0][axis + 1 :])

    def receptive_field(self, a, rfs, ins):
        return merge_fields(rfs, len(ins[0]))

    def describe(self, a):
        return "concat" if a.dim == 1 else f"concat dim {a.dim}"

    def emit(self, a, ins):
        return Expression("torch.cat([{all}], dim={dim})", (("dim", a.dim),))

    def memory(self, a, ins, out, mode):
        """Saves nothing (sizes only); each input's gradient is a slice of the output's."""
        return Memory(grad_alias=tuple(range(len(ins))))


@register
class Flatten(Op):
    family = "reshape"
    integer_inputs = True
    name = "Flatten"
    params = {"start_dim": Int(default=1), "end_dim": Int(default=-1)}

    def span(self, a, shape) -> tuple[int, int]:
        start, end = _axis(a.start_dim, len(shape), "start_dim"), _axis(a.end_dim, len(shape), "end_dim")
        if start > end:
            raise RuleError(f"start_dim {a.start_dim} comes after end_dim {a.end_dim}")
        return start, end

    def output_shape(self, a, ins, need):
        shape = ins[0]
        start, end = self.span(a, shape)
        return (*shape[:start], dims.product(shape[start : end + 1]), *shape[end + 1 :])

    def receptive_field(self, a, rfs, ins):
        """Spatial dims merged into one become tokens that remember their sizes (unflatten restores them)."""
        return merged_field(rfs[0], tuple(ins[0]), *self.span(a, ins[0]))

    def flattened_spatial(self, a, shape):
        if len(shape) < 3:
            return ()
        start, end = self.span(a, shape)
        spatial = tuple(d for i, d in enumerate(shape) if i >= 2 and start <= i <= end)
        return spatial if any(d != 1 for d in spatial) else ()

    def describe(self, a):
        return "flatten"

    def memory(self, a, ins, out, mode):
        """A view of its (contiguous) input; its gradient is a view of the output's."""
        return Memory(alias=0, grad_alias=(0,))


@register
class Upsample(Op):
    family = "reshape"
    name = "Upsample"
    ranks = (3, 4, 5)
    params = {
        "size": Sizes(default=None),
        "scale_factor": Floats(default=None, n=2),
        "mode": Choice(default="nearest", choices=("nearest", "linear", "bilinear", "bicubic", "trilinear")),
        "align_corners": Param(default=None),
    }

    @classmethod
    def normalize(cls, values):
        if (values["size"] is None) == (values["scale_factor"] is None):
            raise RuleError("Upsample needs exactly one of size or scale_factor")
        if values["align_corners"] not in (None, True, False):
            raise RuleError(f"align_corners: expected true or false, received {values['align_corners']!r}")
        return values

    def output_shape(self, a, ins, need):
        x = ins[0]
        n = len(x) - 2
        want = {3: ("nearest", "linear"), 4: ("nearest", "bilinear", "bicubic"), 5: ("nearest", "trilinear")}[len(x)]
        if a.mode not in want:
            raise RuleError(
                f"mode {a.mode!r} needs a different input rank; for a {len(x)}-D input use " + " or ".join(want)
            )
        if a.size is not None:
            sizes = a.size if len(a.size) == n else (a.size[0],) * n
            return (*x[:2], *sizes)
        scales = a.scale_factor if len(a.scale_factor) == n else (a.scale_factor[0],) * n
        return (*x[:2], *(self.scaled(size, s) for size, s in zip(x[2:], scales)))

    @staticmethod
    def scaled(size, scale: float):
        ratio = Fraction(scale).limit_denominator(1000)
        if ratio.denominator == 1:
            return size * ratio.numerator
        return dims.floordiv(size * ratio.numerator, ratio.denominator)

    def receptive_field(self, a, rfs, ins):
        x = ins[0]

        def rule(i, rf):
            if a.scale_factor is not None:
                scale = Fraction(a.scale_factor[i if len(a.scale_factor) > i else 0]).limit_denominator(1000)
            else:
                scale = dims.truediv(a.size[i if len(a.size) > i else 0], x[2 + i])
            extra = 0 if a.mode == "nearest" else rf.stride  # interpolation reads the neighbour too
            return upsampled_rf(rf, scale, extra, -dims.truediv(scale - 1, 2))

        return rfs[0].windowed(len(x) - 2, rule)

    def describe(self, a):
        if a.scale_factor is not None:
            s = a.scale_factor
            factor = f"x{s[0]:g}" if len(set(s)) == 1 else "x" + "x".join(f"{v:g}" for v in s)
            return f"upsample {factor} {a.mode}"
        return f"upsample to {'x'.join(dims.to_str(s) for s in a.size)} {a.mode}"

    def emit(self, a, ins):
        kwargs = []
        if a.size is not None:
            kwargs.append(("size", a.size[0] if len(set(a.size)) == 1 else tuple(a.size)))
        else:
            s = a.scale_factor
            kwargs.append(("scale_factor", s[0] if len(set(s)) == 1 else tuple(s)))
        kwargs.append(("mode", a.mode))
        if a.align_corners is not None:
            kwargs.append(("align_corners", a.align_corners))
        return Module("nn.Upsample", tuple(kwargs))

    def memory(self, a, ins, out, mode):
        """Saves nothing (sizes only), in every mode."""
        return Memory()
