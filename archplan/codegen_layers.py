"""The body of a generated class: __init__ and forward lines for each layer of a definition, in order.

Each layer's tensor has a variable (its name, spelled safely) and a shape as formulas over the class's
arguments, from the op's own shape rule; later layers are built with those sizes. Consecutive layers under
the same `when:` form a group: their modules start as None and are built under `if <condition>:` in
__init__, and forward runs them under `if self.<first> is not None:` after giving the variables read later
their pass-through values (a skipped layer passes its first input on).
"""

from __future__ import annotations

import ast
import re

import sympy

from . import expr
from .codegen_class import ClassContext, ClassInfo, ClassScope, symbolic_args
from .codegen_errors import CodegenError, SymbolicValue
from .pysource import call, comment_text, define, docstring, docstring_lines, literal, local_name, spaced_slices
from .pysource import returned, statement
from .ops.base import IGNORE, Expression, Module, Tensor, format_shape
from .ops.params import Dim, Int, Ints, Padding, Sizes
from .symbols import choose
from .wiring import block_output, local_names

_INTEGER_PARAMS = (Dim, Int, Ints, Padding, Sizes)


class LayerWriter:
    def __init__(self, gen, scope: ClassScope, instances: list):
        self.gen, self.scope, self.d, self.instances = gen, scope, scope.d, instances
        self.locals = local_names(self.d.layers, set(self.d.inputs))
        self.codes: dict = dict(zip(self.d.inputs, scope.input_shapes))
        self.vars: dict = {}
        for name in (*self.d.inputs, *self.locals):
            self.vars[name] = local_name("x" if name == "input" else name, set(self.vars.values()))
        # comments show the shapes of the instance with the most layers present (the others fill gaps)
        shown = max(instances, key=lambda inst: sum(e.present for e in inst.entries.values()))
        self.shown_first = [shown, *(inst for inst in instances if inst is not shown)]
        self.exposed = () if self.d.is_net else gen.exposed.get(self.d.name, ())
        self.name_inner_tensors()
        self.refs = [self.layer_refs(i) for i in range(len(self.d.layers))]
        self.init: list[str] = []
        self.forward: list[str] = []
        self.attrs: set = set()
        self.helpers: set = set()
        self.kept: dict = {}  # argument or size -> the attribute forward reads it from
        self.runtime = self.runtime_sizes()

    def runtime_sizes(self) -> dict:
        """Net symbols that forward can read from its inputs' shapes ({"L": "tokens.shape[1]"}): a symbol
        that is the same dim of the same input in every instance (reshape [N, L, heads, d] needs N and L)."""
        found: dict = {}
        for index, name in enumerate(self.d.inputs):
            shapes = [self.gen.shape(inst.inputs[index]) for inst in self.instances if index < len(inst.inputs)]
            for dim, size in enumerate(shapes[0] if shapes else ()):
                same = all(len(s) == len(shapes[0]) and s[dim] == size for s in shapes)
                if same and isinstance(size, sympy.Symbol) and str(size) not in found:
                    found[str(size)] = f"{self.vars[name]}.shape[{dim}]"
        return found

    def name_inner_tensors(self) -> None:
        """Variables for what this scope reads inside its block uses (`in: use.layer`, `use.K.layer`,
        `use.K`): every path the block exposes and, in a repeat, every copy's output."""
        read = [r for spec in self.d.layers for r in spec.inputs or ()]
        read += list(self.gen.inner_outputs) if self.d.is_net else [self.d.output or "", *self.exposed]
        read_into = {head for head, dot, _ in (r.partition(".") for r in read) if dot}
        for index, (spec, local) in enumerate(zip(self.d.layers, self.locals)):
            if not spec.block or spec.when is not None or local not in read_into:
                continue
            paths, output = self.gen.exposed.get(spec.block, ()), block_output(self.gen.blocks[spec.block])
            present = self.entries(index)
            count = len(present[0][1].use.instances) if present else 0
            copies = [""] if spec.repeat is None else [f"{k}." for k in range(count)]
            for copy in copies:
                last = copy in ("", f"{count - 1}.")
                main = self.vars[local] if last else self.new_var(f"{local}_{copy}")
                self.vars[f"{local}.{copy}{output}"] = main  # the copy's output, read by its layer's name
                if copy:
                    self.vars[f"{local}.{copy[:-1]}"] = main
                for path in paths:
                    self.vars[f"{local}.{copy}{path}"] = self.new_var(f"{local}_{copy}{path}")
        for path in self.exposed:  # read from outside through a use of this scope that cannot be read into
            if path not in self.vars:
                index = self.locals.index(path.partition(".")[0])
                raise self.error(
                    f"is read from outside this block as {path!r} but runs under `when:`; generated code reads "
                    "inside a block use only when it always runs",
                    index,
                )

    def new_var(self, name: str) -> str:
        return local_name(name.replace(".", "_").rstrip("_"), set(self.vars.values()))

    # -- reading the definition ---------------------------------------------------------------------
    def layer_refs(self, index: int) -> tuple:
        spec = self.d.layers[index]
        previous = self.locals[index - 1] if index else self.d.inputs[0]
        nodes = [e.node for e in (inst.entries.get(self.locals[index]) for inst in self.instances) if e and e.node]
        if spec.inputs is None and nodes and not self.gen.graph.nodes[nodes[0]].inputs:
            return ()  # an op without inputs (a learned tensor)
        refs = tuple(spec.inputs) if spec.inputs is not None else (previous,)
        for ref in refs:
            if ref not in self.vars:
                raise self.error(
                    f"reads {ref!r} inside a block use under `when:`; generated code reads inside a block use "
                    "only when it always runs: make it the block's output",
                    index,
                )
        return refs

    def error(self, message: str, index: int) -> CodegenError:
        spec, local = self.d.layers[index], self.locals[index]
        path = f"{self.instances[0].path}.{local}".lstrip(".")
        return CodegenError(message, layer=path, line=spec.pos.line, column=spec.pos.column)

    def entries(self, index: int) -> list:
        """(instance, entry) for every instance in which the layer is present, the shown one first."""
        local = self.locals[index]
        return [(inst, inst.entries[local]) for inst in self.shown_first if inst.entries[local].present]

    def output_local(self) -> str:
        return self.d.output or (self.locals[-1] if self.locals else self.d.inputs[0])

    def condition(self, index: int):
        """None: always built; False: never (a false constant, or skipped in every use); else (source, formula)."""
        spec = self.d.layers[index]
        if spec.when is None:
            return None
        raw = spec.when.value
        source = self.scope.written(raw, integer=False) if isinstance(raw, str) else None
        if source is None or not self.entries(index):
            return None if self.entries(index) else False
        return source, expr.parse(raw).condition(self.scope.env)

    # -- the layers ---------------------------------------------------------------------------------
    def write_all(self) -> tuple:
        """Write every layer; returns the output's shape as formulas."""
        index = 0
        while index < len(self.d.layers):
            cond = self.condition(index)
            if cond is False:
                first = self.refs[index][0]
                local = self.locals[index]
                self.codes[local], self.vars[local] = self.codes[first], self.vars[first]
                end = index + 1
            elif cond is None:
                self.layer(index, 8)
                end = index + 1
            else:
                end = index + 1
                when = self.d.layers[index].when.value
                while end < len(self.d.layers) and self.d.layers[end].when is not None:
                    if self.d.layers[end].when.value != when or not self.entries(end):
                        break
                    end += 1
                self.group(index, end, cond)
            index = end
        return () if self.d.is_net else self.codes[self.output_local()]

    def group(self, start: int, end: int, cond: tuple) -> None:
        source, formula = cond
        skipped = {}  # what each layer passes on when the group is skipped: its first input, followed back
        for i in range(start, end):
            first = self.refs[i][0]
            skipped[self.locals[i]] = skipped[first] if first in skipped else (self.vars[first], self.codes[first])
        init_at, forward_at = len(self.init), len(self.forward)
        for i in range(start, end):
            self.layer(i, 12)
        body_init, body_forward = self.init[init_at:], self.forward[forward_at:]
        del self.init[init_at:], self.forward[forward_at:]
        modules = [local for local in self.locals[start:end] if local in self.attrs]
        if modules:
            self.init += [*(f"        self.{m} = None" for m in modules), f"        if {source}:", *body_init]
            test = f"self.{modules[0]} is not None"
        else:
            flag = self.unique_attr(f"use_{self.locals[start]}")
            self.init += statement(f"self.{flag} = {source}", 8)
            test = f"self.{flag}"
        later = {ref for refs in self.refs[end:] for ref in refs} | {"" if self.d.is_net else self.output_local()}
        later |= set(self.exposed)
        later |= set(self.gen.net_output_locals(self)) if self.d.is_net else set()
        for local in self.locals[start:end]:
            if local in later:
                self.forward.append(f"        {self.vars[local]} = {skipped[local][0]}")
            present, absent = self.codes[local], skipped[local][1]
            if len(present) == len(absent):
                self.codes[local] = tuple(choose(formula, p, a) for p, a in zip(present, absent))
        self.forward += [f"        if {test}:", *body_forward]

    def keep(self, source: str) -> str:
        """`self.<attr>` for an argument that forward reads (stored in __init__ as self.<attr> = <source>)."""
        if source not in self.kept:
            self.kept[source] = self.unique_attr(source)
        return f"self.{self.kept[source]}"

    def unique_attr(self, name: str) -> str:
        while name in self.attrs or name in self.locals:
            name += "_"
        self.attrs.add(name)
        return name

    def layer(self, index: int, indent: int) -> None:
        from .codegen_uses import write_use

        try:
            (write_use if self.d.layers[index].block is not None else LayerWriter.op_layer)(self, index, indent)
        except SymbolicValue as exc:  # a value needs symbols fixed: noted, and codegen runs again with them
            path = f"{self.instances[0].path}.{self.locals[index]}".lstrip(".")
            self.gen.needs.update({symbol: path for symbol in sorted(exc.symbols) if symbol not in self.gen.needs})
            entry = self.entries(index)[0][1]
            self.codes[self.locals[index]] = self.gen.shape(entry.tensor)
            for ref in (r for r in self.vars if r.startswith(f"{self.locals[index]}.")):
                self.codes[ref] = self.gen.shape(_inner_tensor(entry, ref.partition(".")[2]))

    def shape_comment(self, index: int) -> str:
        return comment_text(format_shape(self.gen.shape(self.entries(index)[0][1].tensor)))

    def op_layer(self, index: int, indent: int) -> None:
        spec, local, refs = self.d.layers[index], self.locals[index], self.refs[index]
        present = self.entries(index)
        nodes = [self.gen.graph.nodes[entry.node] for _, entry in present]
        op = nodes[0].op
        emitted = [op.emit(n.args, [self.gen.shape(s) for s in n.inputs]) for n in nodes]
        kinds = {_kind(m) for m in emitted}
        emit = op.emit
        if len(kinds) > 1:  # different constructors in different uses: one valid for all, if the op has it
            general = [op.emit_general(n.args, [self.gen.shape(s) for s in n.inputs]) for n in nodes]
            if None not in general:
                emit, emitted, kinds = (
                    op.emit_general,
                    general,
                    {_kind(m) for m in general},
                )
        if len(kinds) > 1:
            raise self.error(
                f"builds {' and '.join(sorted(kinds))} in different uses; make the difference an "
                "argument of a block of its own",
                index,
            )
        a = symbolic_args(type(op), nodes[0].args, spec, self.scope.env)
        ins = [self.codes[r] for r in refs]
        rank = len(self.gen.shape(present[0][1].tensor))
        try:
            self.codes[local] = tuple(op.output_shape(a, ins, IGNORE))
            symbolic = emit(a, ins)
        except Exception:  # a rule that needs numbers: these sizes are then printed per use
            self.codes[local] = tuple(sympy.Dummy(f"{local}{i}", integer=True) for i in range(rank))
            symbolic = None
        forward = isinstance(emitted[0], Expression)  # its arguments are read in forward, from attributes
        kwargs = self.kwargs(op, index, emitted, symbolic, [inst.path for inst, _ in present], forward)
        inputs = [self.vars[r] for r in refs]
        target, comment = self.vars[local], self.shape_comment(index)
        module = emitted[0]
        if isinstance(module, Expression):
            text = spaced_slices(module.template.format(*inputs, all=", ".join(inputs), **dict(kwargs)))
            self.forward += statement(f"{target} = {text}", indent, comment)
            return
        if isinstance(module, Tensor):  # a learned tensor: an attribute, read in forward
            self.attrs.add(local)
            self.init += statement(f"self.{local} = nn.Parameter({module.init.format(**dict(kwargs))})", indent)
            self.forward += statement(f"{target} = self.{local}", indent, comment)
            return
        if module.helper:
            self.helpers.add((module.helper, module.ctor, module.base))
        names = [name for name, _ in module.kwargs][: module.positional]
        args = [
            text if i < len(names) and name == names[i] else f"{name}={text}" for i, (name, text) in enumerate(kwargs)
        ]
        self.attrs.add(local)
        self.init += call(f"self.{local}", module.ctor, args, indent)
        if spec.weight is not None:  # the owner is an earlier layer of this scope: its attribute exists
            self.init += statement(f"self.{local}.weight = self.{spec.weight.value}.weight", indent, "tied")
        invoked = module.call.format(*inputs, module=f"self.{local}", inputs=", ".join(inputs))
        self.forward += statement(f"{target} = {invoked}", indent, comment)

    def kwargs(self, op, index: int, emitted: list, symbolic, paths: list, forward: bool = False) -> list:
        """(name, source) per constructor argument: the author's expression, a size computed from the
        arguments, or a constant (which must then be the same in every use)."""
        spec, local = self.d.layers[index], self.locals[index]
        order = [*op.inferred, *op.params]
        names = [k for k, _ in symbolic.kwargs] if symbolic is not None else []
        names = list(dict.fromkeys(names + [k for m in emitted for k, _ in m.kwargs]))
        names.sort(key=lambda k: order.index(k) if k in order else len(order))
        formulas = dict(symbolic.kwargs) if symbolic is not None else {}
        out = []
        for name in names:
            param, raw = op.params.get(name), spec.args.get(name)
            keep = self.keep if forward else None
            integer = isinstance(param, _INTEGER_PARAMS)
            runtime = self.runtime if forward else None
            text = self.scope.written(raw.value, integer, keep, runtime) if raw is not None else None
            values = [dict(m.kwargs).get(name, _default(param)) for m in emitted]
            formula = formulas.get(name)
            if text is not None and getattr(formula, "free_symbols", None):
                self.scope.spelled.setdefault(formula, text)
            if text is None and not self.d.is_net and getattr(formula, "free_symbols", None):
                text = self.scope.size(formula, f"{local}_{name}", dict(zip(paths, values)), keep)
            elif text is None:
                if any(v != values[0] or type(v) is not type(values[0]) for v in values):
                    raise self.error(
                        f"{name} differs between the uses of this block ({values[0]!r} in {paths[0]}, "
                        f"{values[-1]!r} in {paths[-1]}): write it as an expression of the block's "
                        "arguments",
                        index,
                    )
                text = literal(values[0])  # a formula raises SymbolicValue: caught per layer
            out.append((name, text))
        return out

    # -- the class text -----------------------------------------------------------------------------
    def context(self, info: ClassInfo) -> ClassContext:
        params = [_param_text(p) for p in info.params]
        inputs = [f"{self.vars[n]}: torch.Tensor" for n in self.d.inputs]
        kept = [f"        self.{attr} = {source}" for source, attr in self.kept.items()]
        init = define("__init__", ["self", *params], "None") + ["        super().__init__()", *kept, *self.init]
        if self.d.is_net:
            outputs = [self.vars[local] for local in self.gen.net_output_locals(self)]
            result = "torch.Tensor" if len(outputs) == 1 else f"tuple[{', '.join(['torch.Tensor'] * len(outputs))}]"
        else:
            outputs = [self.vars[self.output_local()], *(self.vars[path] for path in self.exposed)]
            result = "torch.Tensor" if len(outputs) == 1 else f"tuple[{', '.join(['torch.Tensor'] * len(outputs))}]"
        body, read = _dummies_for_unread(self.forward + returned(outputs))
        lines = define("forward", ["self", *inputs], result) + [_mark_unread(line, read) for line in body]
        doc = self.gen.net_doc() if self.d.is_net else self.block_doc()
        return ClassContext(info.name, tuple(docstring(doc, 4)), tuple(init), tuple(lines))

    def block_doc(self) -> list:
        paths = [inst.path for inst in self.instances]
        used = ", ".join(paths[:4]) + (", ..." if len(paths) > 4 else "")
        shown = self.shown_first[0].path
        text = f"Block {self.d.name}, used at {used}; comments show the shapes at {shown}."
        if self.exposed:
            text += f" forward returns its output, then {', '.join(self.exposed)} (read outside the block)."
        return docstring_lines(text)


def _inner_tensor(entry, path: str) -> str:
    """The tensor of `path` inside a block use (`layer`, `sub.layer`, `K.layer` in copy K of a repeat)."""
    parts = path.split(".")
    while parts:
        use = entry.use
        instance = use.instances[int(parts.pop(0)) if use.repeat is not None else 0]
        if not parts:
            return instance.output
        entry = instance.entries[parts.pop(0)]
    return entry.tensor


def _kind(emission) -> str:
    if isinstance(emission, Module):  # the same constructor called differently (a causal mask) is another kind
        return emission.ctor + ("" if emission.call == Module.call else f" called as {emission.call}")
    return getattr(emission, "template", None) or emission.init


def _parsed(body: list):
    return ast.parse("def forward():\n" + "\n".join(line[4:] for line in body))


def _names_read(body: list) -> set:
    """The variables that a forward body (lines indented by 8) reads."""
    return {n.id for n in ast.walk(_parsed(body)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _dummies_for_unread(body: list) -> tuple[list, set]:
    """The body with every unpacked variable that nothing reads renamed `_name` (`l1, _l1_skip = ...`): the
    dummy names Python style and ruff expect for values a tuple assignment must take; and the names read."""
    tree, read = _parsed(body), _names_read(body)
    unpacked = {
        n.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Tuple) and isinstance(node.ctx, ast.Store)
        for n in node.elts
        if isinstance(n, ast.Name) and n.id not in read
    }
    if not unpacked:
        return body, read
    taken, renamed = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}, {}
    for name in sorted(unpacked):
        renamed[name] = local_name(f"_{name}", taken)
        taken.add(renamed[name])
    pattern = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, sorted(renamed))) + r")(?!\w)")
    out = []
    for line in body:
        code, sep, comment = line.partition("  # ")
        out.append(pattern.sub(lambda m: renamed[m.group(1)], code) + sep + comment)
    return out, read  # renaming names nothing reads leaves what is read as it was


def _mark_unread(line: str, read: set) -> str:
    """The line, with a noqa note when it assigns a variable no later line reads (kept for its name)."""
    target = line.strip().split(" = ", 1)[0]
    if " = " in line and target.isidentifier() and target not in read and not line.strip().startswith("#"):
        return f"{line}  # noqa: F841 (no layer reads it)"
    return line


def _param_text(p) -> str:
    text = f"{p.name}: {p.annotation}" if p.annotation else p.name
    if p.default is None:
        return text
    return f"{text} = {p.default}" if p.annotation else f"{text}={p.default}"


def _default(param):
    value = getattr(param, "default", None)
    return value[0] if isinstance(value, tuple) and value and len(set(value)) == 1 else value
