"""The last step of lowering: resolve pass-throughs, pick the outputs, order the nodes, build the Graph."""

from __future__ import annotations

from dataclasses import replace

from .errors import Problem
from .ir import Graph, Instance, Node, topological_order
from .spec import NetSpec, Pos, suggest


def local_names(layers: tuple, taken: set) -> list[str]:
    """Each layer's name in its scope; unnamed layers get <op>_<k> (conv2d_1, ...) avoiding taken names."""
    counters: dict[str, int] = {}
    explicit = {s.name for s in layers if s.name}
    names = set(taken)
    out = []
    for spec in layers:
        local = spec.name
        if local is None:
            base = (spec.op or spec.block).lower()
            while True:
                counters[base] = counters.get(base, 0) + 1
                local = f"{base}_{counters[base]}"
                if local not in names and local not in explicit:
                    break
        names.add(local)
        out.append(local)
    return out


def block_output(block) -> str:
    """The path of a block's output in its own scope: `output:`, else its last layer."""
    return block.output or local_names(block.layers, set(block.inputs))[-1]


def assemble(low, spec: NetSpec, inputs: dict, namespace: dict, root: Instance) -> tuple[Graph, list[Problem]]:
    nodes = _resolved_nodes(low, inputs)
    outputs = _outputs(low, spec, namespace, root.output, nodes, inputs)
    graph_nodes, problems = _ordered(nodes)
    _resolve_instance(low, root)
    graph = Graph(
        spec.name,
        spec.description,
        inputs,
        graph_nodes,
        outputs,
        low.free,
        {k: v for k, v in low.env.items() if isinstance(v, int)},
        spec.train,
        {k: v.pos.line for k, v in spec.inputs.items()},
        spec.path,
        root,
        dict(spec.blocks),
        {k: v.dtype for k, v in spec.inputs.items()},
        dict(low.input_ranges),
        {k: v.positions for k, v in spec.inputs.items() if v.positions is not None},
    )
    return graph, problems


def _resolve_instance(low, instance: Instance) -> None:
    """Instances name tensors as lowering saw them; after it, every name is a node or an input."""
    stack = [instance]
    while stack:
        current = stack.pop()
        current.inputs = tuple(low.resolve(t)[0] for t in current.inputs)
        current.output = low.resolve(current.output)[0] if current.output else current.output
        for entry in current.entries.values():
            entry.tensor = low.resolve(entry.tensor)[0]
            if entry.use is not None:
                stack.extend(entry.use.instances)


def _resolved_nodes(low, inputs: dict) -> list[Node]:
    out = []
    known = set(low.node_by_name) | set(inputs)
    for node in low.nodes:
        sources = []
        for source in node.inputs:
            target, ok = low.resolve(source)
            if target in low.failed:
                low.failed.add(node.name)
                break
            where = Pos(node.line, node.column)
            if not ok:
                low.error(f"in: {source!r} passes through a cycle of skipped layers", where, node.name)
            elif target not in known:
                low.error(f"in: {source!r} names nothing that exists after expansion", where, node.name)
            else:
                sources.append(target)
        if len(sources) == len(node.inputs) and node.name not in low.failed:
            out.append(replace(node, inputs=tuple(sources)))
    return out


def _outputs(low, spec: NetSpec, namespace: dict, last: str, nodes: list, inputs: dict) -> tuple:
    names = spec.outputs or ()
    known = {n.name for n in nodes} | set(inputs)
    out = []
    for ref in names or (last,):
        target, _ = low.resolve(namespace.get(ref, ref))
        if target not in known:
            if names and ref not in namespace:  # a declared layer that failed has its own error
                low.error(f"outputs: {ref!r} names no layer", spec.outputs_pos, None, suggest(ref, namespace))
            continue
        out.append(target)
    return tuple(out)


def _ordered(nodes: list[Node]) -> tuple[dict, list[Problem]]:
    by_name = {n.name: n for n in nodes}
    order, cycle = topological_order(list(by_name), {n.name: n.inputs for n in nodes})
    if cycle is None:
        return {name: by_name[name] for name in order}, []
    first = by_name[cycle[0]]
    message = "the graph has a cycle: " + " -> ".join((*cycle, cycle[0]))
    problem = Problem(message, layer=first.name, line=first.line, column=first.column)
    return {name: by_name[name] for name in order}, [problem]
