"""How much work expanding a block use will be, known before it is expanded: lowering refuses a use whose
expansion would pass its limit before visiting a single layer of it (a repeat inside a block whose count comes
from the block's arguments multiplies too).
"""

from __future__ import annotations

from collections import ChainMap
from typing import Any

from . import dims, expr
from .probe import LazyEnv
from .spec import REQUIRED


class ExpansionCost:
    """Lower bounds on the layer entries block uses visit, memoised per (block, arguments)."""

    def __init__(self, blocks: dict, symbols: dict, limit: int):
        self.blocks, self.env, self.limit = blocks, symbols, limit
        self.memo: dict = {}

    def use(self, name: str, given: dict, env, stack: tuple = ()) -> int:
        """Layer entries one use of block `name` with the `given` arguments (raw, evaluated in `env`) visits at
        least: each layer 1, a nested use its repeat times its own cost. Repeats and arguments that need a shape
        or fail count as unknown (a repeat of 1), so this stays a lower bound and never refuses a net that fits."""
        block = self.blocks.get(name)
        if block is None or name in stack:
            return 1
        args = _quiet_args(block, given, _known(env), self.env)
        try:
            key = (name, frozenset(args.items()))
            hash(key)
        except TypeError:
            key = None
        if key is not None and key in self.memo:
            return self.memo[key]
        inner = {**self.env, **args}
        cost = 0
        for layer in block.layers:
            cost += 1
            if layer.block is not None and _surely_runs(layer.when, inner):
                times = _quiet_count(layer.repeat, inner)
                copy = {**inner, "index": 0} if layer.repeat is not None else inner
                cost += self.use(layer.block, {**layer.args, **layer.first}, copy, (*stack, name))
                if times > 1:
                    rest = self.use(layer.block, layer.args, inner, (*stack, name))
                    cost += (times - 1) * rest
            if cost > self.limit:
                break
        if key is not None:
            self.memo[key] = cost
        return cost


_UNKNOWN = object()  # an argument `use` could not evaluate: any expression reading it fails


def _known(env) -> dict:
    """The values an environment already holds (not the input sizes a LazyEnv would compute on demand)."""
    if isinstance(env, LazyEnv):
        return dict(env.values)
    if isinstance(env, ChainMap):
        out: dict = {}
        for mapping in reversed(env.maps):
            out.update(_known(mapping))
        return out
    return dict(env)


def _quiet(raw: Any, env: dict) -> Any:
    """A raw YAML value, evaluated if it can be without reporting anything; _UNKNOWN otherwise."""
    if not isinstance(raw, str):
        return raw
    try:
        value = expr.evaluate(raw, env)
    except Exception:  # an estimate only: lowering evaluates it again and reports what fails
        return _UNKNOWN
    return _UNKNOWN if value is None else value


def _quiet_args(block, given: dict, caller: dict, symbols: dict) -> dict:
    """A block's arguments as block_args evaluates them (use-site values, then defaults), quietly."""
    values = {name: _quiet(arg.value, caller) for name, arg in given.items() if name in block.args}
    for name, default in block.args.items():
        if name not in values:
            values[name] = _UNKNOWN if default is REQUIRED else _quiet(default, {**symbols, **values})
    return values


def _surely_runs(when, env: dict) -> bool:
    """A `when:` known to hold (a skipped use visits only its own entry; an unknown condition may skip it)."""
    return when is None or _quiet(when.value, env) is True


def _quiet_count(repeat, env: dict) -> int:
    if repeat is None:
        return 1
    value = _quiet(repeat.value, env)
    number = dims.as_int(value) if value is not _UNKNOWN and not isinstance(value, bool) else None
    return number if number is not None and number > 1 else 1
