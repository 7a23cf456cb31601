"""Validated spec objects: what the YAML said, with positions, before any evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REQUIRED = object()  # a block argument declared `null` must be given at each use


@dataclass(frozen=True)
class Pos:
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True)
class SymbolSpec:
    name: str
    min: int | None = None
    max: int | None = None
    default: int | None = None
    pos: Pos = Pos()


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple  # raw entries: ints or expression strings
    pos: Pos = Pos()
    dtype: str = "float"  # "float" follows --dtype; or an explicit torch dtype name (int64 for token ids)
    range: object = None  # integer inputs: values are in [0, range) (raw int or expression); None: unknown
    positions: tuple | None = None  # dims that are positions (receptive fields); None: the dtype's convention


@dataclass(frozen=True)
class Arg:
    value: Any
    pos: Pos = Pos()


@dataclass(frozen=True)
class LayerSpec:
    name: str | None
    op: str | None  # exactly one of op / block
    block: str | None
    args: dict  # name -> Arg: op arguments, or block arguments for a block use
    inputs: tuple | None  # `in:` names, None = previous layer
    repeat: Arg | None = None
    first: dict = field(default_factory=dict)  # block use: args overridden in the first repetition
    when: Arg | None = None
    weight: Arg | None = None  # the name of an earlier layer in the same scope whose weight this one shares
    pos: Pos = Pos()


@dataclass(frozen=True)
class BlockSpec:
    name: str
    args: dict  # name -> default raw value or REQUIRED
    inputs: tuple  # names the inner layers use for the block's inputs
    output: str | None
    layers: tuple
    pos: Pos = Pos()


@dataclass(frozen=True)
class NetSpec:
    name: str
    description: str
    symbols: dict  # name -> SymbolSpec
    inputs: dict  # name -> InputSpec
    blocks: dict  # name -> BlockSpec
    layers: tuple
    outputs: tuple  # names (empty = last layer)
    train: dict  # validated training defaults
    path: str = ""
    train_where: dict = field(default_factory=dict)  # train key -> (line, column) of its value
    outputs_pos: Pos = Pos()
