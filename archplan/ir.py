"""The graph IR: nodes with bound ops, hierarchical names and positions. Knows neither YAML nor Jinja."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from .ops.base import Args, Op


@dataclass(frozen=True)
class Scope:
    """A block use that encloses nodes: `layer1` (the use) or `layer1.0` (one repetition)."""

    path: str
    block: str
    args: tuple  # ((name, value), ...) evaluated arguments
    index: int | None = None  # repetition index, None for the use itself
    repeat: int | None = None  # number of repetitions (on the use)


@dataclass(frozen=True)
class Node:
    name: str  # hierarchical, like a PyTorch module path: layer1.0.conv1
    op: Op
    args: Args
    inputs: tuple  # names of nodes or graph inputs
    line: int | None = None
    column: int | None = None
    scopes: tuple = ()  # enclosing Scope objects, outermost first
    tied: str | None = None  # the node whose weight this one shares (`weight: wte`), counted there

    @property
    def local_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


@dataclass
class Entry:
    """One layer of a definition in one instance: what the author wrote, and what it became."""

    local: str  # the layer's name in its scope
    tensor: str  # the graph tensor its output is: its node, the output of its block use, or (skipped) its input
    present: bool  # False when `when:` skipped it
    node: str | None = None  # the op layer's node
    use: Use | None = None  # the block use


@dataclass
class Instance:
    """One expansion of a layer list as the author wrote it: the net, or one repetition of a block use.

    Codegen reads these with the definitions (`Graph.blocks`); analysis reads the expanded nodes."""

    path: str  # "" for the net, "layer1" or "layer1.0" for a block
    block: str | None  # the block's name; None for the net
    layers: tuple  # the definition's LayerSpecs, as written
    args: dict  # evaluated block arguments
    inputs: tuple  # the tensors bound to the definition's inputs
    entries: dict = field(default_factory=dict)  # local name -> Entry
    output: str = ""  # the tensor the instance outputs


@dataclass
class Use:
    """A block use: the layer that names the block, and the instance of each repetition."""

    path: str
    block: str
    repeat: int | None  # None without `repeat:`
    instances: list = field(default_factory=list)


@dataclass(frozen=True)
class SymbolInfo:
    name: str
    min: int | None = None
    max: int | None = None
    default: int | None = None
    declared: bool = True


@dataclass
class Graph:
    name: str
    description: str
    inputs: dict  # name -> shape (tuple of int or sympy.Expr)
    nodes: dict  # name -> Node, in topological order
    outputs: tuple
    symbols: dict  # name -> SymbolInfo (symbols left free)
    values: dict  # name -> int (symbols fixed by --set or defaults)
    train: dict
    input_lines: dict = field(default_factory=dict)
    path: str = ""
    root: Instance | None = None  # the net as written, with every block use's instances
    blocks: dict = field(default_factory=dict)  # name -> BlockSpec: the definitions, as written
    input_dtypes: dict = field(default_factory=dict)  # name -> "float" (follows --dtype) or a torch dtype name
    input_ranges: dict = field(default_factory=dict)  # name -> values are in [0, range); None: unknown
    input_positions: dict = field(default_factory=dict)  # name -> dims that are positions, where declared

    def consumers(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {name: [] for name in (*self.inputs, *self.nodes)}
        for node in self.nodes.values():
            for source in node.inputs:
                users.setdefault(source, []).append(node.name)
        return users

    def to_networkx(self) -> Any:
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        for name, shape in self.inputs.items():
            g.add_node(name, kind="input", shape=shape)
        for node in self.nodes.values():
            g.add_node(node.name, kind="layer", op=node.op.name, line=node.line)
            for source in node.inputs:
                g.add_edge(source, node.name)
        return g


def topological_order(names: list[str], inputs_of: dict[str, tuple]) -> tuple[list[str], list[str] | None]:
    """Kahn's algorithm, stable in declaration order. Returns (order, a cycle or None)."""
    position = {name: i for i, name in enumerate(names)}
    pending = {name: sum(1 for s in inputs_of[name] if s in position) for name in names}
    users: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        for source in inputs_of[name]:
            if source in position:
                users[source].append(name)
    ready = [position[n] for n in names if pending[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for user in users[name]:
            pending[user] -= 1
            if pending[user] == 0:
                heapq.heappush(ready, position[user])
    if len(order) == len(names):
        return order, None
    return order, _find_cycle([n for n in names if pending[n] > 0], inputs_of)


def _find_cycle(stuck: list[str], inputs_of: dict) -> list[str]:
    stuck_set = set(stuck)
    node, seen, order = stuck[0], set(), []
    while node not in seen:
        seen.add(node)
        order.append(node)
        node = next(s for s in inputs_of[node] if s in stuck_set)
    return order[order.index(node) :][::-1]
