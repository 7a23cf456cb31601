"""Containers -> one class per block type (and one for the net), as frozen code-line contexts.

Instances of a block share a class whose constructor takes the block's arguments (plus the channel
count of each input). Every value a layer needs is written as the simplest code that reproduces it in
*every* instance: a channel count carried from an input or an earlier layer, a block argument (or a
multiple of one), a constant, or, failing all that, an extra constructor argument. Layers skipped by
`when:` in some instances are built under a condition on a boolean argument. Instances that cannot share
code (a different layer class) get a class of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import expr
from .codegen_text import (
    CodegenError,
    NeedsConcrete,
    call,
    comment_text,
    define,
    docstring,
    docstring_lines,
    identifier,
    literal,
    statement,
)
from .codegen_codes import Code, _candidates, _fits, _same
from .codegen_tree import Container, Entry
from .ops.base import Expression, format_shape

INFERRED = ("in_channels", "num_features", "num_channels", "in_features")
POSITIONAL = {
    "nn.Conv1d": 2,
    "nn.Conv2d": 2,
    "nn.Conv3d": 2,
    "nn.ConvTranspose1d": 2,
    "nn.ConvTranspose2d": 2,
    "nn.ConvTranspose3d": 2,
    "nn.Linear": 2,
    "nn.BatchNorm1d": 1,
    "nn.BatchNorm2d": 1,
    "nn.BatchNorm3d": 1,
    "Conv1dSame": 2,
    "Conv2dSame": 2,
    "Conv3dSame": 2,
}
RESERVED = {"self", "torch", "nn", "F", "super"}


class _Split(Exception):
    """These instances cannot share one class."""


@dataclass(frozen=True)
class ClassContext:
    name: str
    doc: tuple  # docstring lines, indented and escaped
    init: tuple  # `def __init__` and its body, indented code lines
    forward: tuple  # `def forward` and its body, ending with the return


@dataclass
class ClassPlan:
    name: str
    params: list
    values: dict  # container path -> {param: value}
    context: ClassContext | None = None
    helpers: set = field(default_factory=set)


class ClassBuilder:
    def __init__(self, name: str, instances: list[Container], plans: dict, shapes: dict, is_net: bool):
        self.name, self.instances, self.plans, self.shapes, self.is_net = name, instances, plans, shapes, is_net
        self.params: list[str] = []
        self.annotations: dict[str, str] = {}
        self.envs = [dict() for _ in instances]
        self.alias: dict[str, str] = {}
        self.chans = [dict() for _ in instances]
        self.init: list[str] = []
        self.forward: list[str] = []
        self.helpers: set = set()
        self.used: set = set()
        self.locals = {e.local for e in instances[0].entries} | set(instances[0].inputs)
        self.reads: set = set()
        self.assigned: dict = {}  # local -> index of the forward line that assigns it
        counts = [sum(e.present for e in box.entries) for box in instances]
        self.shown = counts.index(max(counts))  # the instance whose shapes the comments show

    # -- parameters --------------------------------------------------------------------------------
    def add_param(self, wanted: str, values: list, used: bool = False) -> str:
        name = wanted if wanted not in RESERVED else f"{wanted}_"
        while name in self.params:
            name += "_"
        self.params.append(name)
        kinds = {type(v) for v in values}
        kind = kinds.pop().__name__ if len(kinds) == 1 else ""
        self.annotations[name] = kind if kind in ("int", "bool", "float", "str", "tuple") else ""
        for env, v in zip(self.envs, values):
            env[name] = v
        if used:
            self.used.add(name)
        return name

    def setup_params(self) -> None:
        """Block arguments, preceded by a channel count per input unless an argument always equals it."""
        first = self.instances[0]
        self.channel_of_input = [None] * len(first.inputs)
        if self.is_net:
            return
        for arg in first.block.args:
            param = self.add_param(identifier(arg), [box.args.get(arg) for box in self.instances], used=True)
            if param != arg:
                raise CodegenError(f"block {first.block.name}: argument {arg!r} clashes with generated code")
        extra = []
        for k, name in enumerate(first.inputs):
            if len(self.shapes[first.input_full[k]]) < 2:
                continue
            channels = [self.shapes[box.input_full[k]][1] for box in self.instances]
            param = next((p for p in self.params if _fits(Code(p), channels, self.envs)), None)
            if param is None:
                param = self.add_param("in_channels" if len(first.inputs) == 1 else f"{name}_channels", channels)
                extra.append(param)
            self.channel_of_input[k] = param
            for i in range(len(self.instances)):
                self.chans[i][name] = Code(param, ((param, 1, 1),))
        self.channel_params = extra
        self.params = extra + [p for p in self.params if p not in extra]

    def unify(self, label: str, values: list, envs: list, chan: Code | None = None, names: tuple = ()) -> Code:
        for code in chan or ():
            if _fits(code, values, envs):
                return self._use(code)
        for code in _candidates(names, values[0], envs[0]):
            if _fits(code, values, envs):
                return self._use(code)
        if _same(values):
            return Code(literal(values[0]), const=values[0])
        for code in _candidates(self.params, values[0], envs[0]):
            if _fits(code, values, envs):
                return self._use(code)
        filled = self._fill(values, envs)
        param = self.add_param(label, filled, used=True)
        return Code(param, ((param, 1, 1),) if isinstance(values[0], int) else (), None)

    def _use(self, code: Code) -> Code:
        self.used.update(code.params)
        return code

    def _fill(self, values: list, envs: list) -> list:
        """Per-instance values for a new parameter (instances without the layer get the first value)."""
        by_env = {id(env): v for env, v in zip(envs, values)}
        return [by_env.get(id(env), values[0]) for env in self.envs]

    # -- layers ------------------------------------------------------------------------------------
    def var(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def build(self) -> ClassPlan:
        self.setup_params()
        for j in range(len(self.instances[0].entries)):
            self.entry([box.entries[j] for box in self.instances])
        return self.finish()

    def entry(self, ents: list[Entry]) -> None:
        first = ents[0]
        local = first.local
        present = [i for i, e in enumerate(ents) if e.present]
        if not present:
            self.alias[local] = first.refs[0]
            for i in range(len(ents)):
                self.chans[i][local] = self.chans[i].get(first.refs[0])
            return
        cond = None if len(present) == len(ents) else self.condition(local, [e.present for e in ents])
        ins = [self.var(r) for r in first.refs]
        self.reads.update(ins)
        envs = [self.envs[i] for i in present]
        shown = ents[self.shown] if ents[self.shown].present else ents[present[0]]
        shape = comment_text(format_shape(self.shapes[shown.out_full]))
        try:
            out_code = self.layer(local, first, ents, present, envs, ins, cond, shape)
        except NeedsConcrete as exc:
            exc.where = getattr(exc, "where", None) or (f"{self.instances[0].path}.{local}".lstrip("."))
            raise
        for i, e in enumerate(ents):
            self.chans[i][local] = self.chans[i].get(first.refs[0]) if not e.present else out_code
        self.assigned[local] = len(self.forward) - 1

    def layer(self, local, first, ents, present, envs, ins, cond, shape) -> Code | None:
        if first.spec.op is not None:
            return self.op_entry(local, [ents[i] for i in present], envs, ins, cond, shape, present)
        return self.use_entry(local, [ents[i] for i in present], envs, ins, cond, shape, present)

    def condition(self, local: str, flags: list) -> str:
        for name in self.params:
            values = [env.get(name) for env in self.envs]
            if all(isinstance(v, bool) for v in values):
                if values == flags:
                    self.used.add(name)
                    return name
                if [not v for v in values] == flags:
                    self.used.add(name)
                    return f"not {name}"
        return self.add_param(f"with_{local}", flags, used=True)

    def op_entry(self, local, ents, envs, ins, cond, shape, present) -> Code | None:
        emitted = [e.node.op.emit(e.node.args, [self.shapes[s] for s in e.node.inputs]) for e in ents]
        first = emitted[0]
        if isinstance(first, Expression):
            if any(not isinstance(m, Expression) or m.template != first.template for m in emitted):
                raise _Split()
            text = first.template.format(*ins, all=", ".join(ins))
            if cond is None:
                self.forward += statement(f"{local} = {text}", 8, shape)
            else:
                self.init += statement(f"self.use_{local} = {cond}", 8)
                self.forward += statement(f"{local} = {text} if self.use_{local} else {ins[0]}", 8, shape)
            return self.merge_chan(local, ents, present)
        if any(isinstance(m, Expression) or m.ctor != first.ctor for m in emitted):
            raise _Split()
        keys = []
        for m in sorted(emitted, key=lambda m: -len(m.kwargs)):
            keys += [k for k, _ in m.kwargs if k not in keys]
        op = ents[0].node.op
        order = [*op.inferred, *op.params]
        keys.sort(key=lambda k: order.index(k) if k in order else len(order))
        codes, args = {}, []
        for position, key in enumerate(keys):
            values = [self.kwarg(m, op, key) for m in emitted]
            chan = self.chans_at(present, ents[0].refs[0]) if key in INFERRED else None
            raw = ents[0].spec.args.get(key)
            names = tuple(n for n in self.raw_names(raw) if n in self.params)
            code = self.unify(f"{local}_{key}", values, envs, chan, names)
            codes[key] = code
            args.append(
                code.text
                if position < POSITIONAL.get(first.ctor, 0) and len(args) == position
                else f"{key}={code.text}"
            )
        self.helpers.update(m.ctor for m in emitted if m.helpers)
        ctor = first.ctor
        self.module_lines(local, ctor, args, cond)
        call_text = f"self.{local}({', '.join(ins)})"
        if cond is None:
            self.forward += statement(f"{local} = {call_text}", 8, shape)
        else:
            self.forward += statement(f"{local} = {ins[0]} if self.{local} is None else {call_text}", 8, shape)
        out = codes.get("out_channels") or codes.get("out_features")
        return out if out is not None else self.merge_chan(local, ents, present)

    def merge_chan(self, local, ents, present) -> Code | None:
        """Channels passed through (same count as the first input) or summed by a concat on dim 1."""
        chans = [self.chans_at(present, r) for r in ents[0].refs]
        if ents[0].node.op.name == "Concat" and ents[0].node.args.get("dim") == 1 and all(len(c) == 1 for c in chans):
            total = chans[0][0]
            for c in chans[1:]:
                total = total.plus(c[0]) if total else None
            return total
        same = all(
            len(self.shapes[e.out_full]) > 1
            and len(self.shapes[e.node.inputs[0]]) > 1
            and self.shapes[e.out_full][1] == self.shapes[e.node.inputs[0]][1]
            for e in ents
        )
        return chans[0][0] if same and len(chans[0]) == 1 else None

    def chans_at(self, present: list, ref: str) -> list:
        """The channel codes an input has in these instances (the first that fits all of them is used)."""
        return list(dict.fromkeys(c for c in (self.chans[i].get(ref) for i in present) if c is not None))

    @staticmethod
    def raw_names(raw) -> tuple:
        if raw is None or not isinstance(raw.value, str):
            return ()
        try:
            return tuple(sorted(expr.names_in(raw.value)))
        except Exception:  # an expression lowering already accepted; names are only hints
            return ()

    @staticmethod
    def kwarg(m, op, key):
        found = dict(m.kwargs)
        if key in found:
            return found[key]
        param = op.params.get(key)
        if param is None or param.default is None:
            raise _Split()
        default = param.default
        return default[0] if isinstance(default, tuple) and len(set(default)) == 1 else default

    def module_lines(self, local: str, ctor: str, args: list, cond: str | None) -> None:
        if cond is None:
            self.init += call(f"self.{local}", ctor, args, 8)
            return
        one = f"        self.{local} = {ctor}({', '.join(args)}) if {cond} else None"
        if len(one) <= 120:
            self.init.append(one)
            return
        self.init.append(f"        self.{local} = None")
        self.init.append(f"        if {cond}:")
        self.init += call(f"self.{local}", ctor, args, 12)

    def use_entry(self, local, ents, envs, ins, cond, shape, present) -> Code | None:
        counts = {len(e.instances) for e in ents}
        repeats = {e.repeat for e in ents}
        if len(counts) != 1 or len(repeats) != 1:
            raise _Split()
        calls = []
        for r in range(counts.pop()):
            plans = [self.plans[e.instances[r].path] for e in ents]
            if len({p.name for p in plans}) != 1:
                raise _Split()
            plan = plans[0]
            args = []
            for param in plan.params:
                values = [p.values[e.instances[r].path][param] for p, e in zip(plans, ents)]
                chan = None
                if param in plan.channel_of_input:
                    chan = self.chans_at(present, ents[0].refs[plan.channel_of_input.index(param)])
                code = self.unify(f"{local}_{param}", values, envs, chan, (param,) if param in self.params else ())
                args.append(f"{param}={code.text}")
            calls.append((plan.name, args))
        repeated = repeats.pop() is not None
        one_input = len(ins) == 1
        if not repeated:
            self.module_lines(local, calls[0][0], calls[0][1], cond)
        else:
            container = "nn.Sequential" if one_input else "nn.ModuleList"
            items = [(name, args) for name, args in calls]
            if cond is None:
                self.init += call(f"self.{local}", container, items, 8)
            else:
                self.init.append(f"        self.{local} = None")
                self.init.append(f"        if {cond}:")
                self.init += call(f"self.{local}", container, items, 12)
        call_text = f"self.{local}({', '.join(ins)})"
        if repeated and not one_input:
            block = "block"
            while block in self.locals:
                block += "_"
            loop = [
                *statement(f"{local} = {ins[0]}", 8),
                f"        for {block} in self.{local}:",
                *statement(f"{local} = {block}({', '.join([local, *ins[1:]])})", 12, shape),
            ]
            if cond is not None:
                loop = [
                    f"        {local} = {ins[0]}",
                    f"        if self.{local} is not None:",
                    *["    " + line for line in loop[1:]],
                ]
            self.forward += loop
        elif cond is None:
            self.forward += statement(f"{local} = {call_text}", 8, shape)
        else:
            self.forward += statement(f"{local} = {ins[0]} if self.{local} is None else {call_text}", 8, shape)
        return None

    # -- the class ---------------------------------------------------------------------------------
    def finish(self) -> ClassPlan:
        first = self.instances[0]
        outputs = self.net_outputs if self.is_net else (first.output,)
        self.reads.update(self.var(o) for o in outputs)
        for local, index in self.assigned.items():
            if local not in self.reads and not self.forward[index].lstrip().startswith(("for ", "if ")):
                self.forward[index] += "  # noqa: F841 (no layer reads this output)"  # kept: it is in the net
        kept = [p for p in self.params if p in self.used or p not in getattr(self, "channel_params", ())]
        signature = [f"{p}: {self.annotations[p]}" if self.annotations[p] else p for p in kept]
        ins = [f"{n}: torch.Tensor" for n in first.inputs]
        if self.is_net:
            outputs = self.net_outputs
            returns = ", ".join(self.var(o) for o in outputs)
            result = "torch.Tensor" if len(outputs) == 1 else f"tuple[{', '.join(['torch.Tensor'] * len(outputs))}]"
        else:
            returns, result = self.var(first.output), "torch.Tensor"
        paths = [box.path for box in self.instances]
        doc = (
            (
                f"Block {first.block.name}, used at {', '.join(paths[:4])}{', ...' if len(paths) > 4 else ''}; "
                f"comments show the shapes at {paths[self.shown]}.",
            )
            if not self.is_net
            else self.doc
        )
        doc = docstring_lines(" ".join(doc[:1])) + list(doc[1:]) if not self.is_net else list(doc)
        init = define("__init__", ["self", "*", *signature] if signature else ["self"], "None")
        init += ["        super().__init__()", *self.init]
        forward = define("forward", ["self", *ins], result) + [*self.forward, f"        return {returns}"]
        context = ClassContext(self.name, tuple(docstring(doc, 4)), tuple(init), tuple(forward))
        values = {box.path: {p: env[p] for p in kept} for box, env in zip(self.instances, self.envs)}
        plan = ClassPlan(self.name, kept, values, context, self.helpers)
        plan.channel_of_input = [p if p in kept else None for p in self.channel_of_input]
        return plan


def build_classes(instances: list[Container], name: str, plans: dict, shapes: dict) -> list[ClassPlan]:
    """One class for these block instances, or several when they cannot share code."""
    groups: list[list[Container]] = []
    for box in instances:
        for group in groups:
            try:
                ClassBuilder(name, group + [box], plans, shapes, False).build()
            except _Split:
                continue
            group.append(box)
            break
        else:
            groups.append([box])
    out = []
    for k, group in enumerate(groups):
        plan = ClassBuilder(name if k == 0 else f"{name}{k + 1}", group, plans, shapes, False).build()
        for box in group:
            plans[box.path] = plan
        out.append(plan)
    return out
