"""A block use in a generated class: the block's class built with the arguments written at the use site.

`repeat: K` becomes an nn.Sequential of K modules (forward loops over it when the block has several
inputs or returns inner tensors), the first with the `first:` overrides; each repetition's input sizes
come from the previous one's output formulas, so `Bottleneck(256, c=64)` follows
`Bottleneck(64, c=64, downsample=True)`.
"""

from __future__ import annotations

import sympy

from . import expr
from .ops.base import format_shape
from .pysource import call, comment_text, literal, statement
from .wiring import block_output


def write_use(writer, index: int, indent: int) -> None:
    spec, local, refs = writer.d.layers[index], writer.locals[index], writer.refs[index]
    present = writer.entries(index)
    uses = [entry.use for _, entry in present]
    outer = [inst.path for inst, _ in present]
    if len({len(use.instances) for use in uses}) > 1 or len({use.repeat is None for use in uses}) > 1:
        raise writer.error(
            "repeats a different number of times in different uses of its block; generated "
            "code needs one count: make it a block of its own",
            index,
        )
    info = writer.gen.classes[spec.block]
    paths, output = writer.gen.exposed[spec.block], block_output(writer.gen.blocks[spec.block])
    repeated = uses[0].repeat is not None
    codes = [writer.codes[r] for r in refs]
    calls, outputs = [], []
    for rep in range(len(uses[0].instances)):
        given = {**spec.args, **(spec.first if rep == 0 else {})}
        pairs = [(path, use.instances[rep]) for path, use in zip(outer, uses)]
        fixed = {"index": rep} if repeated else {}  # the copy's number, as lowering sees it
        calls.append((info.name, _arguments(writer, info, given, codes, pairs, local, fixed)))
        subs = _substitutions(writer, info, given, codes, fixed)
        for path, shape in zip(paths, info.exposed):
            ref = f"{local}.{rep}.{path}" if repeated else f"{local}.{path}"
            if ref in writer.vars:
                writer.codes[ref] = _substituted(shape, subs)
        codes = [_substituted(info.output, subs), *codes[1:]]
        copy = f"{local}.{rep}" if repeated else local
        for ref in (copy, f"{copy}.{output}"):  # the copy's output, read as such or by its layer's name
            if ref in writer.vars:
                writer.codes[ref] = codes[0]
        outputs.append(pairs[0][1].output)
    writer.codes[local] = codes[0]
    writer.attrs.add(local)
    inputs = [writer.vars[r] for r in refs]
    target, comment = writer.vars[local], writer.shape_comment(index)
    # a block whose inner tensors some scope reads returns them after its output, in every use
    first = "[0]" if info.exposed else ""
    if not repeated:
        read = paths and f"{local}.{paths[0]}" in writer.vars
        targets = ", ".join([target, *(writer.vars[f"{local}.{p}"] for p in paths)] if read else [target])
        called = f"self.{local}({', '.join(inputs)})" + ("" if read else first)
        writer.init += call(f"self.{local}", *calls[0], indent)
        writer.forward += statement(f"{targets} = {called}", indent, comment)
        return
    writer.init += call(f"self.{local}", "nn.Sequential", calls, indent)
    if f"{local}.0" in writer.vars:  # copies read inside: one line per copy, unpacking what it returns
        previous = inputs[0]
        for rep, tensor in enumerate(outputs):
            targets = ", ".join(writer.vars[f"{local}.{rep}{inner}"] for inner in ("", *(f".{p}" for p in paths)))
            called = f"self.{local}[{rep}]({', '.join([previous, *inputs[1:]])})"
            shape = comment_text(format_shape(writer.gen.shape(tensor)))
            writer.forward += statement(f"{targets} = {called}", indent, shape)
            previous = writer.vars[f"{local}.{rep}"]
    elif len(inputs) == 1 and not first:
        writer.forward += statement(f"{target} = self.{local}({inputs[0]})", indent, comment)
    else:  # a loop over the Sequential: each repetition takes the previous output and the same other inputs
        pad = " " * indent
        writer.forward += [f"{pad}{target} = {inputs[0]}", f"{pad}for block in self.{local}:"]
        invoked = f"block({', '.join([target, *inputs[1:]])}){first}"
        writer.forward += statement(f"{target} = {invoked}", indent + 4, comment)


def _arguments(writer, info, given: dict, codes: list, pairs: list, local: str, fixed: dict) -> list:
    """Constructor arguments: the input sizes (positional), the arguments written at the use site, and the
    sizes the caller gives as numbers. `pairs`: (caller instance path, the block instance it builds)."""
    out = []
    first = pairs[0][1]
    for param, (k, dim) in info.sizes.items():
        values = {path: writer.gen.shape(inst.inputs[k])[dim] for path, inst in pairs}
        out.append(writer.scope.size(codes[k][dim], f"{local}_{param}", values))
    for arg, value in given.items():
        values = [inst.args[arg] for _, inst in pairs]
        text = writer.scope.written(value.value, isinstance(values[0], int), fixed=fixed)
        if text is None and any(v != values[0] for v in values):
            raise writer.error(
                f"argument {arg} differs between uses and is not an expression of the block's arguments",
                writer.locals.index(local),
            )
        out.append(f"{arg}={text if text is not None else literal(first.args[arg])}")
    for param, per_instance in info.extras.items():
        values = {path: per_instance[inst.path] for path, inst in pairs}
        if len(set(values.values())) == 1:
            out.append(f"{param}={next(iter(values.values()))}")
        else:  # differs between this class's uses: this class takes it as an argument too
            writer.scope.extras[f"{local}_{param}"] = values
            out.append(f"{param}={local}_{param}")
    return out


def _substitutions(writer, info, given: dict, codes: list, fixed: dict) -> dict:
    """The class's symbols (its arguments and input sizes) as formulas over the caller's names."""
    subs = {}
    for key, symbol in info.symbols.items():
        if isinstance(key, tuple):
            k, dim = key
            subs[symbol] = codes[k][dim]
            continue
        raw = given[key].value if key in given else writer.gen.blocks[info.block].args[key]
        env = {**writer.scope.env, **fixed} if key in given else writer.scope.env
        value = expr.evaluate(raw, env) if isinstance(raw, str) else raw
        subs[symbol] = sympy.sympify(value) if not isinstance(value, bool) else sympy.true if value else sympy.false
    return subs


def _substituted(shape: tuple, subs: dict) -> tuple:
    return tuple(sympy.sympify(c).xreplace(subs) if not isinstance(c, int) else c for c in shape)
