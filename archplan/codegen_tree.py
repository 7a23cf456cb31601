"""Walk the spec alongside the lowered graph: one Container per net or block instance, one Entry per
declared layer (present or skipped by `when:`), with inputs named as the spec names them."""

from __future__ import annotations

from dataclasses import dataclass, field

from .build import local_names
from .codegen_text import CodegenError, identifier
from .ir import Graph, Node
from .spec import BlockSpec, LayerSpec, NetSpec


@dataclass
class Entry:
    local: str
    spec: LayerSpec
    refs: tuple  # local variable names this layer reads (spec level: skipped layers keep their names)
    out_full: str  # the graph tensor this entry stands for (its own node, or what a skipped layer passes on)
    node: Node | None = None  # an op layer present in this instance
    instances: tuple = ()  # a block use: one Container per repetition; () when skipped
    repeat: int | None = None

    @property
    def present(self) -> bool:
        return self.node is not None or bool(self.instances)


@dataclass
class Container:
    path: str  # "" for the net, "layer1.0" for a repetition
    block: BlockSpec | None
    args: dict
    inputs: tuple  # input variable names
    input_full: tuple  # graph tensors bound to them
    entries: list = field(default_factory=list)
    output: str = ""  # variable holding the output (block) -- the net uses graph.outputs


class _Walk:
    def __init__(self, spec: NetSpec, graph: Graph):
        self.spec = spec
        self.graph = graph
        self.scopes = {}  # path -> Scope, for block uses and repetitions
        for node in graph.nodes.values():
            for scope in node.scopes:
                self.scopes.setdefault(scope.path, scope)

    def container(
        self, layers: tuple, path: str, block: BlockSpec | None, args: dict, inputs: tuple, input_full: tuple
    ) -> Container:
        box = Container(path, block, args, tuple(identifier(n) for n in inputs), input_full)
        full_of = dict(zip(inputs, input_full))
        prefix = f"{path}." if path else ""
        previous = inputs[0] if inputs else None
        for spec, local in zip(layers, local_names(layers, set(inputs))):
            identifier(local)
            refs = tuple(self.ref(r, full_of, prefix + local) for r in spec.inputs) if spec.inputs else (previous,)
            if refs[0] is None:
                raise CodegenError(f"{prefix}{local}: a layer without inputs cannot be generated")
            entry = Entry(local, spec, refs, full_of[refs[0]])
            full = prefix + local
            if spec.op is not None:
                entry.node = self.graph.nodes.get(full)
                if entry.node is not None:
                    entry.out_full = full
            else:
                self.block_use(entry, full, full_of)
            full_of[local] = entry.out_full
            box.entries.append(entry)
            previous = local
        if block is not None:
            box.output = block.output or (box.entries[-1].local if box.entries else inputs[0])
        self.full_of = full_of
        return box

    @staticmethod
    def ref(name: str, full_of: dict, layer: str) -> str:
        if name not in full_of:
            raise CodegenError(
                f"{layer}: in: {name!r} reaches inside a block; generated code can only read "
                f"layers and inputs of the same scope"
            )
        return name

    def block_use(self, entry: Entry, full: str, full_of: dict) -> None:
        scope = self.scopes.get(full)
        if scope is None:
            return  # skipped by `when:` (or a block whose every layer is skipped): passes its input on
        block = self.spec.blocks[scope.block]
        entry.repeat = scope.repeat
        count = scope.repeat or 1
        carried = full_of[entry.refs[0]]
        others = tuple(full_of[r] for r in entry.refs[1:])
        instances = []
        for index in range(count):
            path = f"{full}.{index}" if scope.repeat is not None else full
            rep = self.scopes.get(path)
            if rep is None:
                raise CodegenError(
                    f"{path}: this repetition has no layers (all skipped); generate cannot "
                    f"number the remaining repetitions as PyTorch would"
                )
            inner = self.container(block.layers, path, block, dict(rep.args), block.inputs, (carried, *others))
            carried = self.full_of[inner.output]
            instances.append(inner)
        entry.instances = tuple(instances)
        entry.out_full = carried


def walk(spec: NetSpec, graph: Graph) -> Container:
    names = tuple(graph.inputs)
    return _Walk(spec, graph).container(spec.layers, "", None, {}, names, names)


def net_outputs(box: Container, graph: Graph) -> tuple[str, ...]:
    """Variables holding the graph outputs, in declared order."""
    found = {name: name for name in box.inputs}
    for entry in box.entries:
        if entry.present:
            found[entry.out_full] = entry.local
    out = []
    for name in graph.outputs:
        if name not in found:
            raise CodegenError(f"output {name!r} lies inside a block; name a layer of the net as output")
        out.append(found[name])
    return tuple(out)


def iter_containers(box: Container):
    yield box
    for entry in box.entries:
        for inner in entry.instances:
            yield from iter_containers(inner)
