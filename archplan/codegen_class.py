"""One generated nn.Module class per block definition (and one for the net), printed from the definition.

The constructor takes exactly the block's arguments, plus the sizes of its inputs that its layers need
(`in_channels`, `in_features`), plus, rarely, a size that depends on the input resolution (a Linear after a
Flatten inside a block), which the caller passes as a number. Every layer argument is printed from what the
author wrote: an expression of the block's arguments (`max(1, in_channels // 4)`), a size computed from the
input (codegen_dims), or a constant. `when:` becomes an `if` in __init__ and a branch in forward
(codegen_layers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from . import expr
from .codegen_errors import CodegenError, SymbolicValue
from .pysource import literal
from .show import shown
from .errors import RuleError
from .ops.base import Args
from .probe import shape_names
from .spec import REQUIRED
from .symbols import Unprintable, python_source


@dataclass(frozen=True)
class ClassContext:
    name: str
    doc: tuple  # docstring lines, indented and escaped
    init: tuple  # `def __init__` and its body, indented code lines
    forward: tuple  # `def forward` and its body, ending with the return


@dataclass(frozen=True)
class Param:
    name: str
    annotation: str
    default: str | None = None  # Python source; None: required


@dataclass
class ClassInfo:
    """What a caller needs to construct a generated class and to know its output's sizes."""

    name: str
    params: list  # Param, in signature order
    sizes: dict  # parameter name -> (input index, dim): the input sizes the class takes
    symbols: dict  # argument name or (input index, dim) -> the sympy symbol standing for it
    output: tuple  # the output shape as formulas over `symbols`
    extras: dict  # parameter -> {instance path: value}: sizes the caller passes as numbers
    context: ClassContext | None = None
    helpers: set = field(default_factory=set)  # (template, class name, base class)
    block: str = ""  # the block it is generated from
    exposed: tuple = ()  # shapes (formulas over `symbols`) of the inner tensors forward returns after its output


@dataclass(frozen=True)
class Definition:
    """A layer list as written: a block, or the net (no arguments; the graph inputs as inputs)."""

    name: str
    layers: tuple
    inputs: tuple  # input names as the layers refer to them
    args: dict  # argument -> default (REQUIRED or a raw YAML value); {} for the net
    output: str | None
    is_net: bool
    line: int | None = None
    column: int | None = None


class ClassScope:
    """The names a class's code can use: its arguments and input sizes, as expression names (for the
    author's expressions) and as sympy symbols (for computed sizes), and the net's fixed sizes."""

    def __init__(self, gen, definition: Definition, instances: list):
        self.gen, self.d, self.instances = gen, definition, instances
        self.symbols: dict = {}
        self.env: dict = dict(gen.symbol_values)  # expression environment for the symbolic pass
        self.names: dict = {n: str(v) for n, v in gen.symbol_values.items() if isinstance(v, int)}
        self.own: set = set()  # expression names that are the class's own (arguments, input sizes)
        self.printed: dict = {}  # sympy symbol -> Python source
        self.size_of: dict = {}  # sympy symbol -> size parameter name
        self.used: set = set()  # size parameters the printed code reads
        self.extras: dict = {}
        self.spelled: dict = {}  # formula -> the author's spelling of it (c * 4), reused where it recurs
        for arg in definition.args:
            self.add_argument(arg, [inst.args.get(arg) for inst in instances])
        self.input_shapes = [self.input_shape(i, t) for i, t in enumerate(instances[0].inputs)]

    def add_argument(self, arg: str, values: list) -> None:
        self.own.add(arg)
        self.names[arg] = arg
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            symbol = sympy.Dummy(arg, integer=True)
        elif all(isinstance(v, bool) for v in values) and len(set(values)) > 1:
            symbol = sympy.Symbol(f"_flag_{arg}")
        else:
            self.env[arg] = values[0]
            return
        self.symbols[arg] = self.env[arg] = symbol
        self.printed[symbol] = arg

    def input_shape(self, index: int, tensor: str) -> tuple:
        shape = self.gen.shape(tensor)
        if self.d.is_net:
            return shape
        rank, named = len(shape), {}
        for size, k, dim in shape_names(self.d.inputs):
            if k != index or rank < 2 or not -rank <= dim < rank:
                continue
            axis = dim % rank  # on [N, F], in_channels and in_features are the same dim, named in_features
            symbol = named.setdefault(axis, sympy.Dummy(size, integer=True))
            self.symbols[(index, axis)] = self.env[size] = symbol
            self.own.add(size)
            self.names[size] = self.printed[symbol] = self.size_of[symbol] = self.size_param(index, axis, rank)
        return tuple(named.get(i, sympy.Dummy(f"in{index}_{i}", integer=True)) for i in range(rank))

    def size_param(self, index: int, axis: int, rank: int) -> str:
        suffix = "features" if axis == rank - 1 else "channels"
        return f"in_{suffix}" if len(self.d.inputs) == 1 else f"{self.d.inputs[index]}_{suffix}"

    # -- printing ----------------------------------------------------------------------------------------
    def written(self, raw, integer: bool, keep=None, runtime: dict | None = None, fixed: dict | None = None):
        """The author's expression, printed over the class's names; None when it uses none of them (a
        constant, written as its value). `keep` (in forward): name -> the attribute that keeps it; `runtime`
        (in forward): net symbols read from the inputs' shapes ({"L": "x.shape[1]"}); `fixed`: names with a
        value here (a repetition's index)."""
        runtime, fixed = runtime or {}, fixed or {}
        if isinstance(raw, list):
            items = [self.written(item, integer, keep, runtime, fixed) for item in raw]
            if all(i is None for i in items):
                return None
            texts = [i if i is not None else literal(self.constant(item)) for i, item in zip(items, raw)]
            return "(" + ", ".join(texts) + ("," if len(texts) == 1 else "") + ")"
        if not isinstance(raw, str):
            return None
        try:
            parsed = expr.parse(raw)
        except RuleError:  # a keyword, such as padding: same
            return None
        if not parsed.names & (self.own | set(runtime)):
            return None
        missing = parsed.names - set(self.names) - set(runtime) - set(fixed)
        if missing:  # net symbols left free in model.py: they need values
            raise SymbolicValue(missing)
        self.used.update(self.names[n] for n in parsed.names if n in self.own and n not in self.d.args)
        names = {**self.names, **runtime, **{k: str(v) for k, v in fixed.items()}}
        if keep is not None:
            names.update({n: keep(self.names[n]) for n in parsed.names & self.own})
        return parsed.to_python(names, integer)

    def constant(self, raw):
        """The value of an expression that uses none of the class's names (net symbols with values)."""
        if not isinstance(raw, str):
            return raw
        try:
            parsed = expr.parse(raw)
        except RuleError:  # a keyword, such as padding: same
            return raw
        missing = parsed.names - set(self.names)
        if missing:  # net symbols left free in model.py: they need values
            raise SymbolicValue(missing)
        return parsed.evaluate(self.env)

    def size(self, value, param: str, per_instance: dict, keep=None) -> str:
        """A size computed from the arguments; where it depends on the input's resolution, a constructor
        argument that the caller fills with the number (the net class writes the number itself). `keep` as
        for written()."""
        if self.d.is_net:
            return literal(value)
        if value in self.spelled and keep is None:
            return self.spelled[value]
        printed = self.printed if keep is None else {s: keep(source) for s, source in self.printed.items()}
        try:
            text = python_source(value, printed)
        except Unprintable:
            self.extras[param] = {path: literal(v) for path, v in per_instance.items()}
            return param if keep is None else keep(param)
        self.used.update(self.size_of[s] for s in getattr(value, "free_symbols", ()) if s in self.size_of)
        return text


def signature(scope: ClassScope) -> tuple[list, dict]:
    """Constructor parameters: the input sizes the code reads, the block's arguments, the extras; required
    ones first (a Python rule), each group in its order."""
    params, sizes = [], {}
    for symbol, name in scope.size_of.items():
        if name in scope.used and name not in sizes:
            key = next(k for k, s in scope.symbols.items() if s == symbol and isinstance(k, tuple))
            params.append(Param(name, "int"))
            sizes[name] = key
    for arg, default in scope.d.args.items():
        values = [inst.args.get(arg) for inst in scope.instances]
        params.append(Param(arg, _annotation(values), _default(scope.d, arg, default)))
    params += [Param(name, "int") for name in scope.extras]
    return [p for p in params if p.default is None] + [p for p in params if p.default is not None], sizes


def _default(d: Definition, arg: str, default) -> str | None:
    if default is REQUIRED:
        return None
    if isinstance(default, str):
        try:
            names = expr.names_in(default)
        except RuleError:
            names = ()
        if names:
            raise CodegenError(
                f"block {d.name}: the default of {arg!r} is the expression {default!r}; generated code needs a "
                "plain default value: give the argument at each use instead",
                line=d.line,
                column=d.column,
            )
    try:
        return literal(default)
    except CodegenError:
        raise CodegenError(
            f"block {d.name}: the default of {arg!r}, {shown(default)}, cannot be written in Python (a number, "
            "true/false, a plain name or a list of them): change it, or give the argument at each use",
            line=d.line,
            column=d.column,
        ) from None


def symbolic_args(op_cls, node_args: Args, spec, env) -> Args:
    """The node's arguments with the sizes the author wrote re-evaluated over the class's symbols:
    out_channels: in_channels*t becomes a formula; kernel_size keeps the instance's value."""
    values = dict(node_args)
    for key, arg in spec.args.items():
        param = op_cls.params.get(key)
        if getattr(param, "symbolic", False) and isinstance(arg.value, (str, list)):
            try:
                values[key] = param.convert(arg.value, key, lambda text: expr.evaluate(text, env))
            except RuleError:  # kept concrete: its sizes then print as numbers or as arguments
                pass
    return Args(values)


def _annotation(values: list) -> str:
    kinds = {type(v) for v in values}
    kind = kinds.pop().__name__ if len(kinds) == 1 else ""
    return kind if kind in ("int", "bool", "float", "str") else ""
