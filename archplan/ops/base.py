"""The op contract and the registry. One registered class per layer type holds everything about it."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Sequence

from .. import dims
from ..errors import RuleError
from .fields import AxisRF, Field, Merged, merge_fields, upsampled_rf, window_rf
from .params import MISSING, Param

Shape = tuple  # of dims (int or sympy.Expr)

# Op families and their diagram colours (ColorBrewer Pastel1/Set3, readable with black text). An op file
# that introduces a family adds its colour here; unknown families are drawn white.
FAMILY_COLOURS = {
    "conv": "#b3cde3",
    "pool": "#ccebc5",
    "linear": "#fed9a6",
    "norm": "#fff2ae",
    "activation": "#c9ebe6",
    "dropout": "#e5d8bd",
    "merge": "#decbe4",
    "attention": "#fbb4ae",
    "reshape": "#f2f2f2",
    "other": "#ffffff",
}


def family_colour(family: str) -> str:
    return FAMILY_COLOURS.get(family, FAMILY_COLOURS["other"])


@dataclass(frozen=True)
class Module:
    """Emission of an nn.Module built in __init__. Codegen writes each argument from what the author wrote
    (an expression of the block's arguments), from the input's shape, or as the literal value."""

    ctor: str  # "nn.Conv2d", or a helper class defined by `helper`
    kwargs: tuple  # ((name, value), ...) in constructor order; values as bound for this instance
    positional: int = 0  # how many leading kwargs are written positionally: nn.Conv2d(3, 64, kernel_size=3)
    helper: str | None = None  # templates/helpers/<helper>.py.j2 defines `ctor` (a subclass of `base`)
    base: str | None = None
    call: str = "{module}({inputs})"  # how forward calls it: "{module}({0}, {0}, {0}, need_weights=False)[0]"


@dataclass(frozen=True)
class Tensor:
    """Emission of a learned tensor: `nn.Parameter(<init>)` in __init__ (init: a template over `kwargs`, such as
    "torch.full({shape}, {value})"), read as self.<name> in forward; its state_dict key is the layer's name."""

    init: str
    kwargs: tuple = ()


@dataclass(frozen=True)
class Expression:
    """Emission of a functional step in forward: a template over the inputs {0}, {1}, ... or {all} and
    the named values of `kwargs` ({dim})."""

    template: str
    kwargs: tuple = ()


class Args(dict):
    """Bound, validated arguments with attribute access (treat as read-only)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Needs(Protocol):
    """Where op rules state conditions that may depend on symbols; analysis decides them."""

    def equal(self, a: Any, b: Any, message: str) -> None: ...

    def positive(self, x: Any, message: str) -> None: ...

    def divisible(self, x: Any, d: int, message: str) -> None: ...


class _Ignore:
    """Needs that records nothing, for callers that want shapes only (codegen's formulas)."""

    def equal(self, a: Any, b: Any, message: str) -> None:
        pass

    def positive(self, x: Any, message: str) -> None:
        pass

    def divisible(self, x: Any, d: int, message: str) -> None:
        pass


IGNORE = _Ignore()


# -- memory: what a layer keeps for the backward pass (archplan/memory.py plans with it) -------------------------
@dataclass(frozen=True)
class Saved:
    """A tensor autograd keeps for backward, or one the forward makes and drops (Memory.scratch).

    role: an input's index (that input's storage, or the copy autocast casts it to), "output" (the output's
    storage), "weight" (one of the layer's parameters, `shape`: free unless autocast keeps a low-precision copy
    of it), or "new" (a tensor the op makes: max-pool indices, a dropout mask, batch statistics, a padded copy).
    dtype of a new tensor: "float" (the op's compute dtype: the input's, or fp16/bf16 under autocast) or a torch
    dtype name ("float32" for statistics, "int64" for indices, "bool" for a mask)."""

    role: int | str
    shape: tuple = ()
    dtype: str = "float"


@dataclass(frozen=True)
class Mode:
    """How a layer runs, for Op.memory: training (grad enabled) or eval (no_grad); which inputs require grad (the
    net's inputs do not; every tensor computed from a weight does); the device whose kernels run; and whether the
    generated code uses the op's emit_general emission (a block whose uses emit different constructors)."""

    training: bool = True
    grads: tuple = ()
    device: str = "cpu"  # "cpu" or "cuda"
    general: bool = False


@dataclass(frozen=True)
class Memory:
    """What a layer does with memory, as torch 2.13 runs it (tests/memory_oracle.py measures it).

    saved: what a training-mode forward keeps for backward (the planner ignores it when the output does not
    require grad: no input requires grad and the layer has no parameters). scratch: new tensors an eval-mode
    forward makes besides its output and frees at once (max-pool indices, the padded copy a 'same' conv makes).
    alias: the output shares this input's storage (a view, an in-place op, a pass-through); None: a new storage.
    grad_alias: the inputs whose gradient shares the output gradient's storage (add, concat, views).
    grad_scratch: new tensors the backward makes before the inputs' gradients and then drops (the gradient of a
    padded copy, which the pad's backward crops into the input's gradient).
    autocast: "lower" (autocast casts the inputs to fp16/bf16: conv, linear), "float32" (casts them to fp32),
    "follow" (runs in its inputs' dtype). weights: the parameter tensors' shapes (weight, bias); None: one tensor
    of param_count elements."""

    saved: tuple = ()
    scratch: tuple = ()
    alias: int | None = None
    grad_alias: tuple = ()
    grad_scratch: tuple = ()
    autocast: str = "follow"
    weights: tuple | None = None


class Op:
    name: ClassVar[str] = ""  # the torch.nn class name
    aliases: ClassVar[tuple] = ()
    family: ClassVar[str] = "other"  # conv, pool, linear, norm, activation, dropout, merge, attention, reshape, other
    params: ClassVar[dict[str, Param]] = {}
    arity: ClassVar[tuple] = (1, 1)  # min and max number of inputs (max None = any)
    ranks: ClassVar[tuple | None] = None  # allowed input ranks, None = any
    inferred: ClassVar[dict[str, str]] = {}  # argument name -> what it is inferred from (checked when given)
    always_emit: ClassVar[tuple] = ()  # arguments whose torch default differs from ours
    helper_classes: ClassVar[tuple] = ()  # classes its emission may define in model.py (Conv2dSame)

    # -- binding -----------------------------------------------------------------------------------
    @classmethod
    def bind(cls, raw: dict, evaluate) -> tuple[Args | None, list[tuple[str, str, str | None]]]:
        """Convert raw YAML values; returns (args, [(argument, message, hint)])."""
        problems, values = [], {}
        known = {**cls.params, **{k: None for k in cls.inferred}}
        for key, value in raw.items():
            if key not in known:
                match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
                hint = f"did you mean {match[0]!r}?" if match else f"{cls.name} takes: {', '.join(known) or 'nothing'}"
                problems.append((key, f"unknown argument {key!r} for {cls.name}", hint))
                continue
            try:
                if key in cls.inferred:
                    from .params import Dim

                    values[key] = Dim().convert(value, key, evaluate)
                else:
                    values[key] = cls.params[key].convert(value, key, evaluate)
            except RuleError as exc:
                problems.append((key, exc.message, exc.hint))
        for key, param in cls.params.items():
            if key not in values and key not in raw:
                if param.required:
                    problems.append((key, f"{cls.name} requires the argument {key!r}", param.doc or None))
                else:
                    values[key] = param.default
        if problems:
            return None, problems
        try:
            values = cls.normalize(dict(values))
        except RuleError as exc:
            return None, [("", exc.message, exc.hint)]
        return Args(values), []

    @classmethod
    def normalize(cls, values: dict) -> dict:
        """Argument defaults that depend on other arguments (pool stride = kernel_size)."""
        return values

    # -- rules: every op overrides what applies ----------------------------------------------------
    def check_inputs(self, a: Args, ins: Sequence[Shape], need: Needs) -> None:
        if self.ranks is not None:
            for shape in ins:
                if len(shape) not in self.ranks:
                    want = " or ".join(f"{r}-D" for r in self.ranks)
                    raise RuleError(
                        f"{self.name} expects a {want} input, received a {len(shape)}-D tensor {format_shape(shape)}"
                    )
        for key, source in self.inferred.items():
            given = a.get(key)
            if given is None:
                continue
            actual = self.inferred_value(key, ins)
            same = dims.equal(given, actual)
            if same is False:
                raise RuleError(
                    f"{key} mismatch: expected {dims.to_str(actual)} (from {source} of {format_shape(ins[0])}), "
                    f"received {dims.to_str(given)}"
                )
            if same is None:  # a condition on the sizes: in_features: 784 after a flatten holds for some H only
                need.equal(given, actual, f"{key} {dims.to_str(given)} must equal {source} of {format_shape(ins[0])}")

    def inferred_value(self, key: str, ins: Sequence[Shape]) -> Any:
        return ins[0][1]

    def output_shape(self, a: Args, ins: Sequence[Shape], need: Needs) -> Shape:
        return tuple(ins[0])

    def param_count(self, a: Args, ins: Sequence[Shape]) -> Any:
        return 0

    def buffer_count(self, a: Args, ins: Sequence[Shape]) -> Any:
        return 0

    def weight_shape(self, a: Args, ins: Sequence[Shape]) -> Shape | None:
        """The shape of the module's `.weight`, which another layer may share (`weight: wte`); None: no weight."""
        return None

    def macs(self, a: Args, ins: Sequence[Shape], out: Shape) -> Any:
        return 0

    def receptive_field(self, a: Args, rfs: Sequence, ins: Sequence[Shape]) -> Field | None:
        """The output's Field from the inputs' (ops/fields.py); default: pointwise, the first input's."""
        return rfs[0]

    def border_loss(self, a: Args, ins: Sequence[Shape]) -> list:
        """Per spatial axis: input pixels at the far border that no window reads (0 = none)."""
        return []

    def describe(self, a: Args) -> str:
        """The compact notation people use in diagrams: 'conv 3x3/2, 64'."""
        return self.name.lower()

    def emit(self, a: Args, ins: Sequence[Shape]) -> Module | Expression:
        kwargs = tuple(
            (k, a[k]) for k, p in self.params.items() if k in a and (a[k] != p.default or k in self.always_emit)
        )
        return Module(f"nn.{self.name}", kwargs)

    def emit_general(self, a: Args, ins: Sequence[Shape]) -> Module | Expression | None:
        """An emission that is right for every value of the arguments, for a block whose uses would emit
        different constructors (Conv2d's padding='same' needs stride 1; Conv2dSame takes any). None: none."""
        return None

    # -- memory ------------------------------------------------------------------------------------
    def memory(self, a: Args, ins: Sequence[Shape], out: Shape, mode: Mode) -> Memory:
        """What autograd saves, what the forward allocates and frees, which storage the output shares (Memory).
        Default: nothing saved, a new output storage, gradients of the inputs' sizes, dtypes followed."""
        return Memory()

    # -- element types ---------------------------------------------------------------------------
    integer_inputs: ClassVar[bool] = False  # accepts integer tensors (token ids, indices): layout ops, embedding

    def output_type(self, a: Args, types: Sequence[tuple], ins: Sequence[Shape], need: Needs) -> tuple:
        """(dtype, value range) of the output from the inputs'. dtype "float" follows --dtype; a range bounds
        integer values to [0, range). Default: the first input's dtype, and its range when the op moves
        values without arithmetic (integer_inputs); float for an op without inputs."""
        if not types:
            return ("float", None)
        dtype, value_range = types[0]
        return (dtype, value_range if self.integer_inputs else None)

    # -- what lints need to know -------------------------------------------------------------------
    keeps_features: ClassVar[bool] = False  # a flattened spatial map passes through (activation, dropout, norm)
    weighs_features: ClassVar[bool] = False  # its parameters scale with the last dim (Linear)
    features_last: ClassVar[bool] = False  # reads its input's last dim as features (Linear, LayerNorm, attention)

    def flattened_spatial(self, a: Args, shape: Shape) -> tuple:
        """The spatial dims this op merges into the feature dim (Flatten), else ()."""
        return ()


def format_shape(shape: Sequence) -> str:
    return "[" + ", ".join(dims.to_str(d) for d in shape) + "]"


_REGISTRY: dict[str, type[Op]] = {}


def normalize_name(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def register(cls: type[Op]) -> type[Op]:
    for key in (cls.name, *cls.aliases):
        norm = normalize_name(key)
        if norm in _REGISTRY and _REGISTRY[norm] is not cls:
            raise ValueError(f"op name {key!r} registered twice")
        _REGISTRY[norm] = cls
    return cls


def variant(base: type[Op], name: str, **attrs) -> type[Op]:
    """Register a subclass of a family (Conv1d/2d/3d, MaxPool2d, ...) that differs only in class attributes."""
    return register(type(name, (base,), {"name": name, "__qualname__": name, **attrs}))


def lookup(name: str) -> type[Op] | None:
    return _REGISTRY.get(normalize_name(name))


def all_ops() -> dict[str, type[Op]]:
    return {cls.name: cls for cls in _REGISTRY.values()}


def closest(name: str) -> str | None:
    keys = {normalize_name(c.name): c.name for c in _REGISTRY.values()}
    keys.update({normalize_name(a): a for c in _REGISTRY.values() for a in c.aliases})
    match = difflib.get_close_matches(normalize_name(name), list(keys), n=1, cutoff=0.5)
    return keys[match[0]] if match else None


__all__ = [
    "Op",
    "Args",
    "AxisRF",
    "Module",
    "Expression",
    "Tensor",
    "Needs",
    "Saved",
    "Mode",
    "Memory",
    "register",
    "lookup",
    "closest",
    "all_ops",
    "variant",
    "window_rf",
    "upsampled_rf",
    "Field",
    "Merged",
    "merge_fields",
    "format_shape",
    "MISSING",
    "Shape",
]
