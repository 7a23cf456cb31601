"""A small, safe arithmetic language for YAML values such as "c*4", "H//2" or "max(1, in_channels // 4)".

Never `eval`: a tokenizer and a precedence-climbing parser build an immutable syntax tree (cached per text),
which is evaluated over an environment (ints stay ints and sympy is never imported; sympy symbols give
formulas) and printed back as Python source for generated code (`to_python`, same grammar, nothing pasted).
Supported: integers, decimals, names, + - * / // % **, parentheses, comparisons, and/or/not, true/false,
min(...), max(...). Every intermediate result is bounded (limits.py); nesting is bounded, so no input text
can exhaust time, memory or the stack.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, Callable, Mapping

from . import dims
from .errors import RuleError
from .limits import MAX_INT, bounded
from .show import _kind, listed, shown

__all__ = ["Expression", "parse", "evaluate", "names_in", "tokenize"]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*|\.\d+|\d+(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>\*\*|//|==|!=|<=|>=|[-+*/%()<>,]))"
)
_MAX_LENGTH = 500
MAX_NESTING = 50  # parentheses, operands of right-associative ** and function calls
MAX_EXPONENT = 64

_BINARY = {  # operator: (precedence, right-associative); Python's precedences
    "or": (1, False),
    "and": (2, False),
    "==": (4, False),
    "!=": (4, False),
    "<": (4, False),
    "<=": (4, False),
    ">": (4, False),
    ">=": (4, False),
    "+": (5, False),
    "-": (5, False),
    "*": (6, False),
    "/": (6, False),
    "//": (6, False),
    "%": (6, False),
    "**": (8, True),
}
_NOT, _SIGN = 3, 7  # precedence of `not x` and of `-x`
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_FUNCTIONS: dict[str, Callable] = {"min": dims.dmin, "max": dims.dmax}
_CONSTANTS = {"true": True, "false": False, "True": True, "False": False}


# -- the syntax tree -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Num:
    value: int | float


@dataclass(frozen=True)
class Const:
    value: bool


@dataclass(frozen=True)
class Name:
    id: str


@dataclass(frozen=True)
class Unary:
    op: str  # "-", "+", "not", or "bool" (an even run of `not`)
    operand: Any


@dataclass(frozen=True)
class Binary:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Call:
    func: str  # "min" or "max"
    args: tuple


@dataclass(frozen=True)
class Expression:
    """A parsed expression: evaluate it, list its names, or print it as Python source."""

    text: str
    root: Any

    @property
    def names(self) -> frozenset:
        return _names(self.root)

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        return _Evaluator(self.text, env).value(self.root)

    def condition(self, env: Mapping[str, Any]) -> Any:
        """Like evaluate, but comparisons and and/or/not of symbols stay sympy relations (Ne(t, 1)) instead
        of being decided: codegen uses it for `when:` conditions over a block's arguments."""
        return _relation("bool", _Evaluator(self.text, env, logic=True).value(self.root), None)

    def to_python(self, names: Mapping[str, str], integer: bool = False) -> str:
        """Python source over `names` (expression name -> Python source, e.g. an argument or a literal).
        With `integer`, `/` is written `//`: the value is a size, which lowering checked to be exact."""
        return _Printer(names, integer).text(self.root)

    @property
    def is_constant(self) -> bool:
        return not self.names


def tokenize(text: str) -> list[str]:
    if len(text) > _MAX_LENGTH:
        raise RuleError(f"expression is too long ({len(text)} characters, at most {_MAX_LENGTH})")
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise RuleError(f"unexpected character {text[pos:].lstrip()[:1]!r} in expression {shown(text)}")
        tokens.append(m.group(m.lastgroup))
        pos = m.end()
    return tokens


@lru_cache(maxsize=4096)
def parse(text: str) -> Expression:
    """The syntax tree of `text` (cached: a block's expressions are parsed once however often it is used)."""
    return Expression(text, _Parser(text).parse())


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    return parse(text).evaluate(env)


def names_in(text: str) -> frozenset:
    """Names an expression refers to (without evaluating it)."""
    return parse(text).names


def _names(node) -> frozenset:
    if isinstance(node, Name):
        return frozenset((node.id,))
    if isinstance(node, Unary):
        return _names(node.operand)
    if isinstance(node, Binary):
        return _names(node.left) | _names(node.right)
    if isinstance(node, Call):
        return frozenset().union(*(_names(a) for a in node.args))
    return frozenset()


# -- parsing ----------------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    def parse(self):
        if not self.tokens:
            raise RuleError("empty expression")
        node = self.expression(0)
        if self.pos != len(self.tokens):
            raise RuleError(f"unexpected {self.tokens[self.pos]!r} in expression {shown(self.text)}")
        return node

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            want = f"{expected!r}" if expected else "more"
            raise RuleError(f"expression {shown(self.text)} is incomplete: expected {want}")
        self.pos += 1
        return token

    def expression(self, min_prec: int):
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise RuleError(f"expression {shown(self.text)} is nested too deeply (at most {MAX_NESTING} levels)")
        left = self.unary()
        while (op := self.peek()) in _BINARY and _BINARY[op][0] >= min_prec:
            prec, right_assoc = _BINARY[op]
            self.take()
            left = Binary(op, left, self.expression(prec if right_assoc else prec + 1))
        self.depth -= 1
        return left

    def unary(self):
        """Runs of signs or `not` fold into one node: `- - - 1` costs no recursion."""
        token = self.peek()
        if token in ("-", "+"):
            negative = False
            while self.peek() in ("-", "+"):
                negative ^= self.take() == "-"
            return Unary("-" if negative else "+", self.expression(_SIGN))
        if token == "not":
            flip = False
            while self.peek() == "not":
                self.take()
                flip = not flip
            return Unary("not" if flip else "bool", self.expression(_NOT))
        return self.atom()

    def atom(self):
        token = self.take()
        if token == "(":
            node = self.expression(0)
            self.take(")")
            return node
        if token[0].isdigit() or token[0] == ".":
            return Num(_literal(token, self.text))
        if token in _CONSTANTS:
            return Const(_CONSTANTS[token])
        if token in _FUNCTIONS and self.peek() == "(":
            return self.call(token)
        if token[0].isalpha() or token[0] == "_":
            if token in _BINARY or token == "not":
                raise RuleError(f"unexpected {token!r} in expression {shown(self.text)}")
            return Name(token)
        raise RuleError(f"unexpected {token!r} in expression {shown(self.text)}")

    def call(self, name: str):
        self.take("(")
        args = [self.expression(0)]
        while self.peek() == ",":
            self.take()
            args.append(self.expression(0))
        self.take(")")
        return Call(name, tuple(args))


def _literal(token: str, text: str) -> Any:
    if any(c in token for c in ".eE"):
        value = float(token)
        if not math.isfinite(value):
            raise RuleError(f"the number {shown(token, 40)} in expression {shown(text)} is too large")
        return value
    value = int(token)  # at most _MAX_LENGTH digits: below Python's int-from-text limit
    if value > MAX_INT:
        raise RuleError(f"the number {shown(value)} in expression {shown(text)} is too large (at most 2**63 - 1)")
    return value


# -- evaluation -------------------------------------------------------------------------------------------
class _Evaluator:
    def __init__(self, text: str, env: Mapping[str, Any], logic: bool = False):
        self.text, self.env, self.logic = text, env, logic

    def value(self, node) -> Any:
        if isinstance(node, (Num, Const)):
            return node.value
        if isinstance(node, Name):
            if node.id not in self.env:
                known = listed(sorted(self.env))
                raise RuleError(f"unknown name {node.id!r} in expression {shown(self.text)} (known names: {known})")
            return self.env[node.id]
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Binary):
            return self.binary(node)
        return self.call(node)

    def unary(self, node: Unary) -> Any:
        if self.logic and node.op in ("not", "bool"):
            return _relation(node.op, self.value(node.operand), None)
        if node.op in ("not", "bool"):
            truth = _truth(self.value(node.operand), self.text)
            return not truth if node.op == "not" else truth
        operand = _numeric(self.value(node.operand), node.op, self.text)
        return bounded(-operand, self.text) if node.op == "-" else operand

    def binary(self, node: Binary) -> Any:
        op, text = node.op, self.text
        if self.logic and (op in ("and", "or") or op in _COMPARISONS):
            return _relation(op, self.value(node.left), self.value(node.right))
        if op == "and":
            return _truth(self.value(node.left), text) and _truth(self.value(node.right), text)
        if op == "or":
            return _truth(self.value(node.left), text) or _truth(self.value(node.right), text)
        a, b = self.value(node.left), self.value(node.right)
        if op in ("==", "!="):
            return _equal(a, b, text) == (op == "==")
        if isinstance(a, bool) or isinstance(b, bool):
            raise RuleError(f"arithmetic on true/false in expression {shown(text)}")
        a, b = _numeric(a, op, text), _numeric(b, op, text)
        try:
            if op in ("<", "<=", ">", ">="):
                return _truth(_compare(op, a, b), text)
            if op in ("/", "//", "%") and _is_zero(b):
                raise ZeroDivisionError
            if op == "**":
                return bounded(_power(a, b, text), text)
            return bounded(_ARITHMETIC[op](a, b), text)
        except ZeroDivisionError:
            raise RuleError(f"division by zero in expression {shown(text)}") from None
        except OverflowError:
            raise RuleError(f"the result of {shown(text)} is too large") from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise RuleError(f"cannot evaluate {shown(text)}: {exc}") from None

    def call(self, node: Call) -> Any:
        args = [_numeric(self.value(a), f"{node.func}()", self.text) for a in node.args]
        result = args[0]
        for arg in args[1:]:
            result = bounded(_FUNCTIONS[node.func](result, arg), self.text)
        return result


def _relation(op: str, a: Any, b: Any) -> Any:
    import sympy

    def boolean(x):  # as Python reads a condition: numbers and integer formulas are true when nonzero
        if isinstance(x, (bool, int, float, Fraction)):
            return sympy.true if x else sympy.false
        if isinstance(x, sympy.logic.boolalg.Boolean) and not getattr(x, "is_integer", False):
            return x
        return sympy.Ne(x, 0)

    if op == "not":
        return sympy.Not(boolean(a))
    if op == "bool":
        return boolean(a)
    if op in ("and", "or"):
        return (sympy.And if op == "and" else sympy.Or)(boolean(a), boolean(b))
    kind = {"==": sympy.Eq, "!=": sympy.Ne, "<": sympy.Lt, "<=": sympy.Le, ">": sympy.Gt, ">=": sympy.Ge}[op]
    return kind(a, b)


def _numeric(value: Any, op: str, text: str) -> Any:
    """Arithmetic takes numbers only: a list, text or mapping from a block argument would make
    `k * 1000000000` allocate, and sympy would try to parse text."""
    if isinstance(value, bool):
        raise RuleError(f"arithmetic on true/false in expression {shown(text)}")
    if isinstance(value, (int, float, Fraction)) or dims.is_expr(value):
        return value
    raise RuleError(f"{op} needs numbers in expression {shown(text)}, received {_kind(value)}")


def _truth(value: Any, text: str) -> bool:
    if value is None:
        raise RuleError(f"expression {shown(text)} depends on symbolic sizes and cannot be decided")
    if isinstance(value, (bool, int, float, Fraction)):
        return bool(value)
    if not dims.is_expr(value):
        raise RuleError(f"expression {shown(text)}: expected a number or true/false, received {_kind(value)}")
    decided = dims.decide(value)
    if decided is None:
        raise RuleError(f"expression {shown(text)} depends on symbolic sizes and cannot be decided: {shown(value)}")
    return decided


_ARITHMETIC: dict[str, Callable] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": dims.truediv,
    "//": dims.floordiv,
    "%": dims.mod,
}


def _is_zero(x: Any) -> bool:
    return x == 0 if not dims.is_expr(x) else bool(getattr(x, "is_zero", False))


def _equal(a: Any, b: Any, text: str) -> bool:
    numbers = all(not isinstance(x, bool) and (dims.is_concrete(x) or dims.is_expr(x)) for x in (a, b))
    if not numbers:
        return a == b  # lists, text, true/false: plain equality, never sympy
    return _truth(dims.equal(a, b), text)


def _power(a: Any, b: Any, text: str) -> Any:
    if not (isinstance(b, int) and 0 <= b <= MAX_EXPONENT):
        raise RuleError(
            f"exponent must be an integer from 0 to {MAX_EXPONENT} in expression {shown(text)}, received {shown(b)}"
        )
    parts = (a.numerator, a.denominator) if isinstance(a, Fraction) else (a,) if isinstance(a, int) else ()
    for part in parts:  # the result has at least (bits - 1) * b bits: refuse before computing it
        if (abs(part).bit_length() - 1) * b > 64:
            raise RuleError(f"the result of {shown(text)} is too large (integers are at most 2**63 - 1)")
    return a**b


def _compare(op: str, a: Any, b: Any) -> Any:
    return {"<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b}[op]()


# -- printing as Python -----------------------------------------------------------------------------------
class _Printer:
    """Python source with the fewest parentheses that keep the tree, spaced as ruff format writes it."""

    def __init__(self, names: Mapping[str, str], integer: bool):
        self.names, self.integer = names, integer

    def text(self, node) -> str:
        return self.emit(node)[0]

    def emit(self, node) -> tuple[str, int]:
        """(source, precedence of its outermost operator; 9 for atoms)."""
        if isinstance(node, Num):
            return repr(node.value), 9
        if isinstance(node, Const):
            return repr(node.value), 9
        if isinstance(node, Name):
            if node.id not in self.names:
                raise RuleError(f"the name {node.id!r} has no value in generated code")
            source = self.names[node.id]
            return source, 9 if _ATOM.match(source) else 0
        if isinstance(node, Call):
            return f"{node.func}({', '.join(self.emit(a)[0] for a in node.args)})", 9
        if isinstance(node, Unary):
            return self.unary(node)
        return self.binary(node)

    def unary(self, node: Unary) -> tuple[str, int]:
        if node.op == "bool":
            return f"bool({self.emit(node.operand)[0]})", 9
        prec = _NOT if node.op == "not" else _SIGN
        inner, inner_prec = self.emit(node.operand)
        if inner_prec < prec:
            inner = f"({inner})"
        if node.op == "+":
            return inner, inner_prec if inner_prec >= prec else 9
        return (f"not {inner}", prec) if node.op == "not" else (f"-{inner}", prec)

    def binary(self, node: Binary) -> tuple[str, int]:
        op = "//" if node.op == "/" and self.integer else node.op
        prec, right_assoc = _BINARY[node.op]
        left, left_prec = self.emit(node.left)
        right, right_prec = self.emit(node.right)
        comparison = node.op in _COMPARISONS
        if left_prec < prec or (left_prec == prec and (right_assoc or comparison)):
            left = f"({left})"
        signed_exponent = node.op == "**" and isinstance(node.right, Unary) and node.right.op == "-"
        if (right_prec < prec and not signed_exponent) or (right_prec == prec and (not right_assoc or comparison)):
            right = f"({right})"
        if op == "**" and _simple(node.left) and _simple(node.right):
            return f"{left}**{right}", prec  # ruff format hugs ** between simple operands
        return f"{left} {op} {right}", prec


_ATOM = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z|\d+\Z")


def _simple(node) -> bool:
    if isinstance(node, Unary) and node.op == "-":
        return _simple(node.operand)
    return isinstance(node, (Num, Name))
