"""Lowering: NetSpec -> Graph. Expands blocks and repeats, evaluates arguments, resolves `in:` names.

Besides the expanded nodes that analysis walks, it records every expansion as an ir.Instance (which node
or tensor each written layer became, in every repetition), so codegen prints the definitions the author
wrote instead of rediscovering them. This is the only place blocks are expanded.
"""

from __future__ import annotations

from collections import ChainMap
from typing import Any

from . import dims, expr, ops
from .errors import Problem, RuleError
from .expansion import ExpansionCost
from .ir import Entry, Graph, Instance, Node, Scope, SymbolInfo, Use
from .probe import LazyEnv, ShapeProbe, UpstreamFailed, shape_names
from .show import listed, shown
from .spec import REQUIRED, LayerSpec, NetSpec, Pos, suggest
from .wiring import assemble, local_names

MAX_NODES = 50_000
# Every layer entry that expansion visits counts (skipped and pass-through layers too), checked before a
# block's repetitions are expanded, so no file can make lowering do unbounded work.
MAX_VISITS = 200_000
MAX_SUGGESTIONS = 50  # "did you mean" searches per file: each costs a scan of the scope's names


class _TooMany(Exception):
    def __init__(self, pos: Pos, layer: str):
        super().__init__(layer)
        self.pos, self.layer = pos, layer


class _Lowering:
    def __init__(self, spec: NetSpec, values: dict[str, int], make_symbol=None):
        self.spec = spec
        self.make_symbol = make_symbol or _sympy_symbol
        self.problems: list[Problem] = []
        self.nodes: list[Node] = []
        self.node_by_name: dict[str, Node] = {}
        self.alias: dict[str, str] = {}  # pass-through (skipped layer, block use) -> what it passes on
        self.block_paths: dict[str, str] = {}
        self.failed: set[str] = set()  # layers with errors: their users are skipped, not reported again
        self.free: dict[str, SymbolInfo] = {}
        self.visits = 0
        self.suggestions = MAX_SUGGESTIONS
        self.input_ranges: dict = {}
        self.env = self.symbol_env(values)
        self.costs = ExpansionCost(spec.blocks, self.env, MAX_VISITS)
        self.probe: ShapeProbe | None = None

    # -- symbols and inputs ------------------------------------------------------------------------
    def symbol_env(self, values: dict[str, int]) -> dict[str, Any]:
        declared = dict(self.spec.symbols)
        for inp in self.spec.inputs.values():  # names used in input shapes are symbols even if undeclared
            for entry in inp.shape:
                if isinstance(entry, str):
                    try:
                        names = expr.names_in(entry)
                    except RuleError:
                        continue
                    for name in sorted(names):
                        declared.setdefault(name, None)
        env: dict[str, Any] = {}
        for name, sym in declared.items():
            if name in values:
                env[name] = values[name]
                continue
            env[name] = self.make_symbol(name)
            info = SymbolInfo(name, sym.min, sym.max, sym.default) if sym else SymbolInfo(name, declared=False)
            self.free[name] = info
        return env

    def error(self, message: str, pos: Pos, layer: str | None = None, hint: str | None = None) -> None:
        self.problems.append(Problem(message, layer=layer, line=pos.line, column=pos.column, hint=hint))

    def evaluate(self, raw: Any, env, pos: Pos, layer: str | None, what: str) -> Any:
        """The value of a YAML value (expressions evaluated); None after reporting a problem. Raises
        UpstreamFailed when it needs the shape of a layer that has an error."""
        try:
            return expr.evaluate(raw, env) if isinstance(raw, str) else raw
        except RuleError as exc:
            self.error(f"{what}: {exc.message}", pos, layer, exc.hint)
            return None

    def inputs(self) -> dict:
        shapes = {}
        for name, inp in self.spec.inputs.items():
            shape = []
            for i, entry in enumerate(inp.shape):
                if not isinstance(entry, (int, str)) or isinstance(entry, bool):
                    shape.append(1)  # already reported by the spec checks
                    continue
                value = self.evaluate(entry, self.env, inp.pos, None, f"input {name}, entry {i}")
                number = dims.as_int(value)
                if value is None:
                    value = 1
                elif not dims.is_size(value) and number is None:
                    self.error(f"input {name}: entry {i} must be an integer size, received {shown(value)}", inp.pos)
                    value = 1
                elif number is not None and number < 1:
                    self.error(f"input {name}: sizes must be positive, received {number} at dim {i}", inp.pos)
                elif number is None and (isinstance(value, (bool, float)) or dims.is_concrete(value)):
                    self.error(f"input {name}: entry {i} must be an integer size, received {shown(value)}", inp.pos)
                    value = 1
                shape.append(number if number is not None else value)
            shapes[name] = tuple(shape)
            self.input_ranges[name] = self.input_range(inp)
        types = {name: (inp.dtype, self.input_ranges[name]) for name, inp in self.spec.inputs.items() if name in shapes}
        positions = {name: inp.positions for name, inp in self.spec.inputs.items() if inp.positions is not None}
        self.probe = ShapeProbe(self, shapes, types, positions)
        return shapes

    def input_range(self, inp):
        """An integer input's value bound (token ids are in [0, range)), evaluated; None when not given."""
        if inp.range is None:
            return None
        value = self.evaluate(inp.range, self.env, inp.pos, None, f"input {inp.name}, range")
        if value is None or (dims.as_int(value) is not None and dims.as_int(value) < 1) or not dims.is_size(value):
            if value is not None:
                self.error(f"input {inp.name}: range must be a positive size, received {shown(value)}", inp.pos)
            return None
        return dims.normalize(value)

    # -- layers and blocks -------------------------------------------------------------------------
    def scope(self, instance: Instance, prefix: str, env, namespace: dict, scopes: tuple, stack: tuple) -> str:
        """Lower one instance's layers; returns the tensor its last layer outputs."""
        scope_inputs = list(namespace)  # before the layers' names join it
        names = self.local_names(instance.layers, prefix, namespace)
        previous = instance.inputs[0] if instance.inputs else ""
        for index, (spec, (local, full)) in enumerate(zip(instance.layers, names)):
            self.visits += 1
            if self.visits > MAX_VISITS:
                raise _TooMany(spec.pos, full or local)
            if full is None:  # a duplicate name, already reported: lowering it would only add follow-on errors
                continue
            if index == 0 and spec.inputs is None and len(scope_inputs) > 1:
                self.error(
                    f"there are {len(scope_inputs)} inputs ({listed(scope_inputs)}); say which one the first "
                    "layer reads with `in:`",
                    spec.pos,
                    full,
                )
            inputs = self.resolve_inputs(spec, namespace, previous, full)
            entry = Entry(local, full, True)
            if spec.when is not None and not inputs:
                self.error("when: a skipped layer passes its input on, and this one has none", spec.when.pos, full)
                self.failed.add(full)
            elif spec.when is not None and not self.condition(spec.when, env, full):
                self.alias[full] = inputs[0]
                entry.tensor, entry.present = inputs[0], False
            elif spec.block is not None:
                entry.use = self.block_use(spec, full, env, inputs, scopes, stack)
                entry.present = entry.use is not None and bool(entry.use.instances)
            else:
                tied = self.tied_weight(spec, namespace, full)
                entry.node = full if self.op_layer(spec, full, env, inputs, scopes, tied) else None
            instance.entries[local] = entry
            previous = full
        return previous

    def local_names(self, layers: tuple, prefix: str, namespace: dict) -> list:
        out = []
        for spec, local in zip(layers, local_names(layers, set(namespace))):
            if spec.name is not None and local in namespace:
                self.error(f"duplicate name {local!r} in this scope", spec.pos, local)
                out.append((local, None))
                continue
            full = f"{prefix}{local}"
            namespace[local] = full
            out.append((local, full))
        return out

    def resolve_inputs(self, spec: LayerSpec, namespace: dict, previous: str, layer: str) -> tuple:
        if spec.inputs is None:  # the previous layer, except for ops that take no input (a learned tensor)
            op_cls = ops.lookup(spec.op) if spec.op is not None else None
            return () if op_cls is not None and op_cls.arity[1] == 0 else (previous,)
        resolved = []
        for ref in spec.inputs:
            head, _, rest = ref.partition(".")
            if head in namespace and not rest:
                resolved.append(namespace[head])
            elif rest and namespace.get(head) in self.block_paths:
                resolved.append(f"{namespace[head]}.{rest}")
            else:
                self.error(
                    f"in: {ref!r} names no layer or input in this scope (known: {listed(namespace)})",
                    spec.pos,
                    layer,
                    self.suggest(ref, namespace),
                )
                resolved.append(previous)
        return tuple(resolved)

    def suggest(self, word: str, choices) -> str | None:
        """A spelling suggestion, for the first MAX_SUGGESTIONS misses only: the error list stays linear."""
        if self.suggestions <= 0:
            return None
        self.suggestions -= 1
        return suggest(word, choices)

    def condition(self, when, env, layer: str) -> bool:
        try:
            value = self.evaluate(when.value, env, when.pos, layer, "when")
        except UpstreamFailed:
            self.failed.add(layer)
            return True
        if value is None:
            return True
        if not isinstance(value, (bool, int)) or isinstance(value, float):
            self.error(f"when: expected true/false, received {shown(value)}", when.pos, layer)
            return True
        return bool(value)

    def tied_weight(self, spec: LayerSpec, namespace: dict, full: str) -> str | None:
        """The node whose weight the layer shares: an op layer of the same scope, lowered before it."""
        if spec.weight is None:
            return None
        name = spec.weight.value
        target = namespace.get(name)
        if target is None:
            self.error(
                f"weight: {name!r} names no layer in this scope (known: {listed(namespace)})",
                spec.weight.pos,
                full,
                self.suggest(name, namespace),
            )
        elif target not in self.node_by_name or target == full:
            self.error(
                f"weight: {name!r} must be an op layer listed (and not skipped) before this one",
                spec.weight.pos,
                full,
                hint="put the layer that owns the weight first, as GPT-2 does with wte and lm_head",
            )
        else:
            return target
        return None

    def op_layer(self, spec: LayerSpec, full: str, env, inputs: tuple, scopes: tuple, tied: str | None = None) -> bool:
        op_cls = ops.lookup(spec.op)
        if op_cls is None:
            close = ops.closest(spec.op)
            self.error(f"unknown op {spec.op!r}", spec.pos, full, f"did you mean {close!r}?" if close else None)
            self.failed.add(full)
            return False
        low, high = op_cls.arity
        if len(inputs) < low or (high is not None and len(inputs) > high):
            want = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
            self.error(f"{op_cls.name} takes {want} input(s), received {len(inputs)}", spec.pos, full)
            self.failed.add(full)
            return False
        raw = {k: a.value for k, a in spec.args.items()}
        try:
            args, problems = op_cls.bind(raw, lambda text: expr.evaluate(text, env))
        except UpstreamFailed:
            self.failed.add(full)
            return False
        for key, message, hint in problems:
            pos = spec.args[key].pos if key in spec.args else spec.pos
            self.error(message, pos, full, hint)
        if args is None:
            self.failed.add(full)
            return False
        node = Node(full, op_cls(), args, inputs, spec.pos.line, spec.pos.column, scopes, tied)
        self.add_node(node, spec.pos)
        return True

    def add_node(self, node: Node, pos: Pos) -> None:
        if len(self.nodes) >= MAX_NODES:
            raise _TooMany(pos, node.name)
        self.nodes.append(node)
        self.node_by_name[node.name] = node

    def block_use(self, spec: LayerSpec, full: str, env, inputs: tuple, scopes: tuple, stack: tuple) -> Use | None:
        block = self.spec.blocks.get(spec.block)
        self.failed.add(full)  # until it lowers cleanly
        if block is None:
            self.error(f"unknown block {spec.block!r}", spec.pos, full, self.suggest(spec.block, self.spec.blocks))
            return None
        if spec.block in stack:
            self.error(f"block {spec.block!r} uses itself ({' -> '.join((*stack, spec.block))})", spec.pos, full)
            return None
        if len(inputs) != len(block.inputs):
            self.error(
                f"block {block.name} takes {len(block.inputs)} input(s) ({', '.join(block.inputs)}), "
                f"received {len(inputs)}",
                spec.pos,
                full,
            )
            return None
        repeat = self.repeat_count(spec, env, full)
        first_env = ChainMap({"index": 0}, env) if spec.repeat is not None else env
        cost = self.costs.use(block.name, {**spec.args, **spec.first}, first_env)
        if repeat > 1 and self.visits + cost <= MAX_VISITS:
            cost += (repeat - 1) * self.costs.use(block.name, spec.args, env)
        if self.visits + cost > MAX_VISITS:
            raise _TooMany(spec.pos, full)
        self.block_paths[full] = block.name
        use = Use(full, block.name, repeat if spec.repeat is not None else None)
        output = inputs[0]
        for index in range(repeat):
            bound = (output, *inputs[1:])
            overrides = {**spec.args, **(spec.first if index == 0 else {})}
            inner_env = self.block_env(block, bound, full)
            try:
                caller = env if spec.repeat is None else ChainMap({"index": index}, env)  # the copy's number
                args = self.block_args(block, overrides, caller, inner_env, spec, full)
            except UpstreamFailed:
                return use
            if args is None:
                return use
            path = f"{full}.{index}" if spec.repeat is not None else full
            scope = Scope(full, block.name, tuple(args.items()), None, use.repeat)
            inner = (*scopes, scope)
            if spec.repeat is not None:
                inner = (*inner, Scope(path, block.name, tuple(args.items()), index))
            instance = Instance(path, block.name, block.layers, args, bound)
            namespace = dict(zip(block.inputs, bound))
            last = self.scope(instance, f"{path}.", inner_env, namespace, inner, (*stack, spec.block))
            if block.output is not None:
                if block.output not in namespace:
                    self.error(f"block {block.name}: output {block.output!r} names no layer in the block", block.pos)
                    return use
                last = namespace[block.output]
            instance.output = output = last
            use.instances.append(instance)
        self.alias[full] = output
        self.failed.discard(full)
        return use

    def block_env(self, block, bound: tuple, layer: str) -> LazyEnv:
        """The environment of one repetition: symbols, then the arguments (added by block_args), and the
        sizes of the block's inputs, computed only if an expression reads them."""
        lazy = {}
        for name, index, dim in shape_names(block.inputs):
            lazy[name] = self._dim_reader(bound[index], dim, f"{name} of {layer}")
        return LazyEnv(dict(self.env), lazy)

    def _dim_reader(self, tensor: str, dim: int, what: str):
        def read():
            return self.probe.dim(tensor, dim, what)

        return read

    def repeat_count(self, spec: LayerSpec, env, layer: str) -> int:
        if spec.repeat is None:
            return 1
        try:
            value = self.evaluate(spec.repeat.value, env, spec.repeat.pos, layer, "repeat")
        except UpstreamFailed:
            return 1
        number = dims.as_int(value) if not isinstance(value, bool) else None
        if number is None or number < 1:
            self.error(f"repeat: expected a positive integer, received {shown(value)}", spec.repeat.pos, layer)
            return 1
        return number

    def block_args(self, block, given: dict, env, inner_env: LazyEnv, spec: LayerSpec, layer: str) -> dict | None:
        """Evaluated arguments (use-site values in the caller's environment, defaults in the block's, which
        also sees the arguments given so far); they are added to inner_env too."""
        values, ok = {}, True
        for name, arg in given.items():
            if name not in block.args:
                self.error(
                    f"block {block.name} has no argument {name!r} (it takes: {listed(block.args)})",
                    arg.pos,
                    layer,
                    self.suggest(name, block.args),
                )
                ok = False
                continue
            reported = len(self.problems)
            values[name] = self.evaluate(arg.value, env, arg.pos, layer, f"argument {name}")
            ok = ok and len(self.problems) == reported  # a failed argument would only cause follow-on errors
        inner_env.values.update(values)
        for name, default in block.args.items():
            if name in values:
                continue
            if default is REQUIRED:
                self.error(f"block {block.name} requires the argument {name!r}", spec.pos, layer)
                ok = False
            else:
                values[name] = self.evaluate(default, inner_env, block.pos, layer, f"default of {name}")
                inner_env.values[name] = values[name]
        return values if ok else None

    # -- whole graph -------------------------------------------------------------------------------
    def resolve(self, name: str) -> tuple[str, bool]:
        """Follow pass-through layers to what they pass on; (name, False) on a cycle. Chains are compressed,
        so resolving every reference costs linear time in total."""
        seen, path = set(), []
        while name in self.alias:
            if name in seen:
                return name, False
            seen.add(name)
            path.append(name)
            name = self.alias[name]
        for step in path[:-1]:
            self.alias[step] = name
        return name, True


def _sympy_symbol(name: str):
    from .symbols import symbol

    return symbol(name)


def lower(spec: NetSpec, values: dict[str, int] | None = None, make_symbol=None) -> tuple[Graph | None, list[Problem]]:
    """The graph of a spec; free sizes are sympy symbols, or what make_symbol(name) makes (quasi.var)."""
    low = _Lowering(spec, dict(values or {}), make_symbol)
    inputs = low.inputs()
    namespace = {name: name for name in inputs}
    root = Instance("", None, spec.layers, {}, tuple(inputs))
    try:
        root.output = low.scope(root, "", low.env, namespace, (), ())
    except _TooMany as exc:
        message = (
            f"the net expands to more than {MAX_NODES:,} layers (or {MAX_VISITS:,} layer entries with skipped ones)"
        )
        return None, low.problems + [Problem(message, layer=exc.layer, line=exc.pos.line, column=exc.pos.column)]
    graph, problems = assemble(low, spec, inputs, namespace, root)
    return graph, low.problems + problems
