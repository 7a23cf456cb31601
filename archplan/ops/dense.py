"""Linear and normalisation layers: ops whose parameters follow from the feature/channel size."""

from __future__ import annotations

from .. import dims
from ..errors import RuleError
from .base import Memory, Module, Op, Saved, format_shape, register, variant
from .params import Bool, Dim, Float, Int, Sizes


@register
class Linear(Op):
    family = "linear"
    features_last = True
    aliases = ("Dense",)
    name = "Linear"
    params = {"out_features": Dim(doc="number of output features, e.g. out_features: 10"), "bias": Bool(default=True)}
    inferred = {"in_features": "the last dimension"}

    def inferred_value(self, key, ins):
        return ins[0][-1]

    def output_shape(self, a, ins, need):
        return (*ins[0][:-1], a.out_features)

    def param_count(self, a, ins):
        return ins[0][-1] * a.out_features + (a.out_features if a.bias else 0)

    def weight_shape(self, a, ins):
        return (a.out_features, ins[0][-1])

    def macs(self, a, ins, out):
        return dims.product(ins[0][:-1]) * ins[0][-1] * a.out_features

    def receptive_field(self, a, rfs, ins):  # mixes the last dim: global if it holds positions
        field = rfs[0].mixing((len(ins[0]) - 1,))
        return field.with_axes((*field.axes[:-1], None))

    weighs_features = True

    def describe(self, a):
        return f"linear {dims.to_str(a.out_features)}"

    def emit(self, a, ins):
        kwargs = [("in_features", ins[0][-1]), ("out_features", a.out_features)]
        if not a.bias:
            kwargs.append(("bias", False))
        return Module("nn.Linear", tuple(kwargs), 2)

    def memory(self, a, ins, out, mode):
        """Saves its input (as a 2-D view: the same storage; the cast copy under autocast), and its weight only
        when the input requires grad (the weight is needed for the input's gradient only)."""
        weight = (a.out_features, ins[0][-1])
        saved = (Saved(0), Saved("weight", weight)) if mode.grads[0] else (Saved(0),)
        return Memory(saved, autocast="lower", weights=(weight, (a.out_features,)) if a.bias else (weight,))


class BatchNormNd(Op):
    family = "norm"
    keeps_features = True
    inferred = {"num_features": "the channel dimension"}
    params = {
        "eps": Float(default=1e-5, minimum=0, open_minimum=True),
        "momentum": Float(default=0.1, minimum=0, maximum=1),
        "affine": Bool(default=True),
        "track_running_stats": Bool(default=True),
    }

    def param_count(self, a, ins):
        return 2 * ins[0][1] if a.affine else 0

    def weight_shape(self, a, ins):
        return (ins[0][1],) if a.affine else None

    def buffer_count(self, a, ins):
        # running_mean, running_var and the scalar num_batches_tracked
        return 2 * ins[0][1] + 1 if a.track_running_stats else 0

    def describe(self, a):
        return "batchnorm"

    def emit(self, a, ins):
        kwargs = [("num_features", ins[0][1])]
        kwargs += [(k, v) for k, v in a.items() if k in self.params and v != self.params[k].default]
        return Module(f"nn.{self.name}", tuple(kwargs), 1)

    def memory(self, a, ins, out, mode):
        """Training (or eval without running stats, which uses batch statistics): saves its input, its weight and
        the batch mean and inverse std (C each, fp32). Eval with running stats computes no statistics. On CUDA,
        cuDNN also saves a reserve-space tensor whose size it chooses (not modelled)."""
        c = ins[0][1]
        weights = ((c,), (c,)) if a.affine else ()
        stats = (Saved("new", (c,), "float32"), Saved("new", (c,), "float32"))
        if not mode.training:
            return Memory(scratch=() if a.track_running_stats else stats, weights=weights)
        weight = (Saved("weight", (c,)),) if a.affine else ()
        return Memory((Saved(0), *weight, *stats), weights=weights)


def _batchnorm(n: int, ranks: tuple) -> type:
    return variant(BatchNormNd, f"BatchNorm{n}d", ranks=ranks)


BatchNorm1d, BatchNorm2d, BatchNorm3d = _batchnorm(1, (2, 3)), _batchnorm(2, (4,)), _batchnorm(3, (5,))


@register
class LayerNorm(Op):
    family = "norm"
    keeps_features = True
    features_last = True
    name = "LayerNorm"
    params = {
        "normalized_shape": Sizes(default=None, doc="trailing dimensions to normalise; default: the last one"),
        "eps": Float(default=1e-5, minimum=0, open_minimum=True),
        "elementwise_affine": Bool(default=True),
        "bias": Bool(default=True),
    }

    def normalized(self, a, ins) -> tuple:
        return a.normalized_shape if a.normalized_shape is not None else (ins[0][-1],)

    def output_shape(self, a, ins, need):
        shape, norm = ins[0], self.normalized(a, ins)
        if len(norm) > len(shape):
            raise RuleError(
                f"normalized_shape {format_shape(norm)} has more dimensions than the input {format_shape(shape)}"
            )
        for got, want in zip(shape[len(shape) - len(norm) :], norm):
            need.equal(
                got,
                want,
                f"normalized_shape {format_shape(norm)} must match the trailing dimensions of "
                f"the input {format_shape(shape)}",
            )
        return tuple(shape)

    def param_count(self, a, ins):
        if not a.elementwise_affine:
            return 0
        return dims.product(self.normalized(a, ins)) * (2 if a.bias else 1)

    def weight_shape(self, a, ins):
        return tuple(self.normalized(a, ins)) if a.elementwise_affine else None

    def describe(self, a):
        return "layernorm"

    def emit(self, a, ins):
        norm = self.normalized(a, ins)
        kwargs = [("normalized_shape", norm[0] if len(norm) == 1 else tuple(norm))]
        kwargs += [(k, a[k]) for k in ("eps", "elementwise_affine", "bias") if a[k] != self.params[k].default]
        return Module("nn.LayerNorm", tuple(kwargs), 1)

    def memory(self, a, ins, out, mode):
        """Saves its input, weight and bias, and the mean and rstd of each normalised row (fp32, shaped like the
        input with the normalised dims 1), which eval mode computes too. CUDA's autocast runs it in fp32."""
        norm = self.normalized(a, ins)
        x = ins[0]
        stats = (*x[: len(x) - len(norm)], *(1 for _ in norm))
        stats = (Saved("new", stats, "float32"), Saved("new", stats, "float32"))
        weights = (tuple(norm),) * (2 if a.bias else 1) if a.elementwise_affine else ()
        autocast = "float32" if mode.device == "cuda" else "follow"
        weight = (Saved("weight", tuple(norm)),) if a.elementwise_affine else ()
        return Memory((Saved(0), *weight, *stats), stats, autocast=autocast, weights=weights)


@register
class GroupNorm(Op):
    family = "norm"
    keeps_features = True
    name = "GroupNorm"
    ranks = (2, 3, 4, 5)
    params = {
        "num_groups": Int(minimum=1, doc="number of channel groups, e.g. num_groups: 32"),
        "eps": Float(default=1e-5, minimum=0, open_minimum=True),
        "affine": Bool(default=True),
    }
    inferred = {"num_channels": "the channel dimension"}

    def output_shape(self, a, ins, need):
        need.divisible(
            ins[0][1],
            a.num_groups,
            f"channels ({dims.to_str(ins[0][1])}) must be divisible by num_groups ({a.num_groups})",
        )
        return tuple(ins[0])

    def param_count(self, a, ins):
        return 2 * ins[0][1] if a.affine else 0

    def weight_shape(self, a, ins):
        return (ins[0][1],) if a.affine else None

    def describe(self, a):
        return f"groupnorm {a.num_groups}"

    def emit(self, a, ins):
        kwargs = [("num_groups", a.num_groups), ("num_channels", ins[0][1])]
        kwargs += [(k, a[k]) for k in ("eps", "affine") if a[k] != self.params[k].default]
        return Module("nn.GroupNorm", tuple(kwargs))

    def memory(self, a, ins, out, mode):
        """Saves its input, its weight, and the mean and rstd of each (sample, group) (fp32), which eval mode
        computes too. CUDA's autocast runs it in fp32."""
        x = ins[0]
        stats = (Saved("new", (x[0], a.num_groups), "float32"),) * 2
        weights = ((x[1],), (x[1],)) if a.affine else ()
        weight = (Saved("weight", (x[1],)),) if a.affine else ()
        autocast = "float32" if mode.device == "cuda" else "follow"
        return Memory((Saved(0), *weight, *stats), stats, autocast=autocast, weights=weights)


@register
class LocalResponseNorm(Op):
    family = "norm"
    keeps_features = True
    name = "LocalResponseNorm"
    aliases = ("LRN",)
    ranks = (3, 4, 5)
    params = {
        "size": Int(minimum=1, doc="number of neighbouring channels, e.g. size: 5"),
        "alpha": Float(default=1e-4),
        "beta": Float(default=0.75),
        "k": Float(default=1.0),
    }

    def describe(self, a):
        return f"lrn {a.size}"

    def memory(self, a, ins, out, mode):
        """torch composes it: x*x (saves x), a zero pad of the channels by size - 1 pooled by avg_pool (saves the
        padded [N, 1, C + size - 1, *spatial]), (k + alpha * avg) ** beta (saves its base) and x / that (saves
        the power). Eval: the pooled average, the base and the power live at once (two beyond the output)."""
        x = ins[0]
        padded = (x[0], 1, x[1] + a.size - 1, *x[2:])
        saved = (Saved(0), Saved("new", padded), Saved("new", tuple(x)), Saved("new", tuple(x)))
        return Memory(saved, (Saved("new", tuple(x)), Saved("new", tuple(x))))
