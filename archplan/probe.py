"""Shapes during lowering: a block may size its layers from its input (`in_channels`, `in_features`).

Lowering evaluates a block's expressions when it expands the block, before the graph exists; `LazyEnv`
computes those names only when an expression reads them, and `ShapeProbe` analyses just the layers the
block's input depends on (iteratively, memoised) to answer. The full analysis runs afterwards as usual and
reports any error found here, so the probe itself reports none: it raises UpstreamFailed instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

from .errors import RuleError
from .ir import Node

# names a block's expressions may use for its inputs' sizes: (suffix, dim)
SHAPE_NAMES = (("channels", 1), ("features", -1))


class UpstreamFailed(Exception):
    """A layer the requested shape depends on has an error of its own (reported by the analysis)."""


def shape_names(inputs: tuple) -> list[tuple[str, int, int]]:
    """(name, input index, dim) for every size a block can read: in_channels/in_features for its first input,
    <input>_channels/<input>_features for each named input."""
    out = []
    for index, name in enumerate(inputs):
        for suffix, dim in SHAPE_NAMES:
            if index == 0:
                out.append((f"in_{suffix}", index, dim))
            out.append((f"{name}_{suffix}", index, dim))
    return out


class LazyEnv(Mapping):
    """An expression environment whose `lazy` names are computed on first use."""

    def __init__(self, values: dict, lazy: dict[str, Callable[[], Any]]):
        self.values, self.lazy = values, lazy

    def __getitem__(self, name: str) -> Any:
        if name not in self.values and name in self.lazy:
            self.values[name] = self.lazy[name]()
        return self.values[name]

    def __contains__(self, name) -> bool:
        return name in self.values or name in self.lazy

    def __iter__(self):
        yield from self.values
        yield from (name for name in self.lazy if name not in self.values)

    def __len__(self) -> int:
        return len(set(self.values) | set(self.lazy))


class ShapeProbe:
    """Output shapes of tensors lowered so far, analysed on demand."""

    def __init__(self, lowering, inputs: dict, types: dict | None = None, positions: dict | None = None):
        self.low = lowering
        self.shapes: dict[str, tuple] = dict(inputs)
        self.fields: dict[str, Any] = {}
        self.types: dict[str, tuple] = dict(types or {})  # (dtype, value range) as analysis tracks them
        self.positions: dict = dict(positions or {})  # inputs' declared position dims

    def dim(self, tensor: str, dim: int, what: str) -> Any:
        shape = self.shape(tensor, what)
        if not -len(shape) <= dim < len(shape):
            raise RuleError(f"{what}: the input has no dim {dim} (its shape has {len(shape)} dims)")
        return shape[dim]

    def shape(self, tensor: str, what: str) -> tuple:
        from .analysis import _analyze_node, input_rf

        target = self.low.resolve(tensor)[0]
        stack, visiting = [target], set()
        while stack:
            name = stack[-1]
            if name in self.shapes:
                stack.pop()
                continue
            node = self.low.node_by_name.get(name)
            if node is None:
                if name in self.low.failed:
                    raise UpstreamFailed(name)
                raise RuleError(f"{what} needs the shape of {name!r}, which is declared after this block")
            sources = [self.low.resolve(s)[0] for s in node.inputs]
            missing = [s for s in sources if s not in self.shapes]
            if missing:
                if name in visiting:
                    raise UpstreamFailed(name)  # a cycle: the graph reports it
                visiting.add(name)
                stack.extend(missing)
                continue
            resolved = Node(node.name, node.op, node.args, tuple(sources), node.line, node.column, node.scopes)
            types = [self.types.get(s, ("float", None)) for s in sources]
            fields = [
                self.fields.get(s, input_rf(self.shapes[s], types[i][0], self.positions.get(s)))
                for i, s in enumerate(sources)
            ]
            try:
                row = _analyze_node(resolved, [self.shapes[s] for s in sources], fields, [], types)
            except RuleError:
                raise UpstreamFailed(name) from None
            self.shapes[name], self.fields[name] = row.output_shape, row.field
            self.types[name] = (row.dtype, row.value_range)
            stack.pop()
        return self.shapes[target]
