"""Argument schemas: each op declares its arguments with these, and binding checks them once."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, ClassVar

from .. import dims
from ..errors import RuleError
from ..limits import MAX_INT
from ..show import shown

MISSING = object()
Evaluate = Callable[[str], Any]


def _received(value: Any) -> str:
    return f"received {shown(value)}"


def _within(number: int, name: str) -> int:
    """Integers beyond int64 (1e300 written as a float, say) would only make later arithmetic huge."""
    if not -MAX_INT <= number <= MAX_INT:
        raise RuleError(f"{name}: expected an integer of at most 2**63 - 1, {_received(number)}")
    return number


def _int(value: Any, name: str, minimum: int | None) -> int:
    number = _as_int(value)
    if number is None:
        if not dims.is_expr(value):
            raise RuleError(f"{name}: expected an integer, {_received(value)}")
        raise RuleError(
            f"{name}: expected a concrete integer, received the symbolic {shown(value)}",
            hint="use --set to give the symbol a value, or write the number",
        )
    if minimum is not None and number < minimum:
        raise RuleError(f"{name}: expected an integer >= {minimum}, received {number}")
    return _within(number, name)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return dims.as_int(value)


def _evaluated(value: Any, evaluate: Evaluate) -> Any:
    return evaluate(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Param:
    default: Any = MISSING
    doc: str = ""
    symbolic: ClassVar[bool] = False  # a size or position that may be a formula (codegen re-evaluates it)

    @property
    def required(self) -> bool:
        return self.default is MISSING

    def convert(self, value: Any, name: str, evaluate: Evaluate) -> Any:
        return _evaluated(value, evaluate)


@dataclass(frozen=True)
class Int(Param):
    minimum: int | None = None

    def convert(self, value, name, evaluate):
        return _int(_evaluated(value, evaluate), name, self.minimum)


@dataclass(frozen=True)
class Dim(Param):
    """A positive size that may stay symbolic (channels, features)."""

    symbolic: ClassVar[bool] = True

    def convert(self, value, name, evaluate):
        value = _evaluated(value, evaluate)
        if isinstance(value, Fraction) and value.denominator == 1:
            value = value.numerator
        if not dims.is_size(value) and not isinstance(value, Fraction):
            raise RuleError(f"{name}: expected a positive integer size, {_received(value)}")
        number = _as_int(value)
        if number is not None:
            if number < 1:
                raise RuleError(f"{name}: expected a positive integer size, received {number}")
            return _within(number, name)
        if isinstance(value, Fraction):
            raise RuleError(f"{name}: expected an integer size, {_received(value)}")
        return value


@dataclass(frozen=True)
class Ints(Param):
    """An int or a list of `n` ints (kernel_size, stride, dilation)."""

    n: int = 2
    minimum: int | None = 1

    def convert(self, value, name, evaluate):
        value = _evaluated(value, evaluate)
        items = value if isinstance(value, list) else [value] * self.n
        if len(items) != self.n:
            raise RuleError(f"{name}: expected an integer or a list of {self.n} integers, {_received(value)}")
        return tuple(_int(_evaluated(v, evaluate), f"{name}[{i}]", self.minimum) for i, v in enumerate(items))


@dataclass(frozen=True)
class Padding(Param):
    """An int, a list of `n` ints, or one of the named modes."""

    n: int = 2
    modes: tuple = ("valid", "same", "full")

    def convert(self, value, name, evaluate):
        if isinstance(value, str) and value.strip().lower() in ("valid", "same", "full"):
            if value.strip().lower() not in self.modes:
                allowed = ", ".join(("an integer", f"a list of {self.n} integers", *self.modes))
                raise RuleError(f"{name}: {shown(value)} is not supported here; expected {allowed}")
            return value.strip().lower()
        return Ints(n=self.n, minimum=0).convert(value, name, evaluate)


@dataclass(frozen=True)
class Bool(Param):
    def convert(self, value, name, evaluate):
        value = _evaluated(value, evaluate)
        if not isinstance(value, bool):
            raise RuleError(f"{name}: expected true or false, {_received(value)}")
        return value


@dataclass(frozen=True)
class Float(Param):
    minimum: float | None = None
    maximum: float | None = None
    open_minimum: bool = False

    def convert(self, value, name, evaluate):
        value = _evaluated(value, evaluate)
        if isinstance(value, bool) or not dims.is_concrete(value):
            raise RuleError(f"{name}: expected a number, {_received(value)}")
        try:
            value = float(value)
        except OverflowError:
            raise RuleError(f"{name}: expected a finite number, {_received(value)}") from None
        if not math.isfinite(value):
            raise RuleError(f"{name}: expected a finite number, received {value}")
        low_fail = self.minimum is not None and (value <= self.minimum if self.open_minimum else value < self.minimum)
        if low_fail or (self.maximum is not None and value > self.maximum):
            raise RuleError(f"{name}: expected a number {self._range()}, received {value}")
        return value

    def _range(self) -> str:
        if self.maximum is None:
            return f"{'>' if self.open_minimum else '>='} {self.minimum:g}"
        if self.minimum is None:
            return f"<= {self.maximum:g}"
        return f"in {'(' if self.open_minimum else '['}{self.minimum:g}, {self.maximum:g}]"


@dataclass(frozen=True)
class Choice(Param):
    choices: tuple = ()

    def convert(self, value, name, evaluate):
        if not isinstance(value, str) or value not in self.choices:
            raise RuleError(f"{name}: expected one of {', '.join(self.choices)}, {_received(value)}")
        return value


@dataclass(frozen=True)
class Sizes(Param):
    """A size or list of sizes (output_size, normalized_shape, upsample size); None keeps the input size."""

    symbolic: ClassVar[bool] = True

    n: int | None = None  # required list length, None = any
    allow_none: bool = False

    def convert(self, value, name, evaluate):
        value = _evaluated(value, evaluate)
        items = value if isinstance(value, list) else [value] * (self.n or 1)
        if self.n is not None and len(items) != self.n:
            raise RuleError(f"{name}: expected a size or a list of {self.n} sizes, {_received(value)}")
        out = []
        for i, item in enumerate(items):
            if item is None and self.allow_none:
                out.append(None)
            else:
                out.append(Dim().convert(item, f"{name}[{i}]", evaluate))
        return tuple(out)


@dataclass(frozen=True)
class Floats(Param):
    """A positive number or a list of `n` (scale_factor)."""

    n: int = 2

    def convert(self, value, name, evaluate):
        value = _evaluated(value, evaluate)
        items = value if isinstance(value, list) else [value] * self.n
        if len(items) != self.n:
            raise RuleError(f"{name}: expected a number or a list of {self.n} numbers, {_received(value)}")
        return tuple(
            Float(minimum=0, open_minimum=True).convert(v, f"{name}[{i}]", evaluate) for i, v in enumerate(items)
        )


@dataclass(frozen=True)
class Dims(Param):
    """A list of ints naming tensor dimensions (may be negative)."""

    def convert(self, value, name, evaluate):
        value = _evaluated(value, evaluate)
        items = value if isinstance(value, list) else [value]
        return tuple(_int(_evaluated(v, evaluate), name, None) for v in items)
