"""A small, safe arithmetic language for YAML values such as "c*4" or "H//2".

Never `eval`: a tokenizer and a precedence-climbing parser evaluate directly with
Python operators, so the same expression works on ints (no sympy import) and on
sympy symbols. Supported: integers, decimals, names, + - * / // % **, parentheses,
comparisons, and/or/not, true/false, min(...), max(...).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any, Callable, Mapping

from . import dims
from .errors import RuleError

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*|\.\d+|\d+(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>\*\*|//|==|!=|<=|>=|[-+*/%()<>,]))"
)
_MAX_LENGTH = 500

_BINARY = {  # operator: (precedence, right-associative)
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
_FUNCTIONS: dict[str, Callable] = {"min": dims.dmin, "max": dims.dmax}
_CONSTANTS = {"true": True, "false": False, "True": True, "False": False}


def tokenize(text: str) -> list[str]:
    if len(text) > _MAX_LENGTH:
        raise RuleError(f"expression is too long ({len(text)} characters, at most {_MAX_LENGTH})")
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise RuleError(f"unexpected character {text[pos:].lstrip()[:1]!r} in expression {text!r}")
        tokens.append(m.group(m.lastgroup))
        pos = m.end()
    return tokens


def names_in(text: str) -> set[str]:
    """Names an expression refers to (without evaluating it)."""
    return (
        {t for t in tokenize(text) if t[0].isalpha() or t[0] == "_"}
        - set(_BINARY)
        - {"not"}
        - set(_FUNCTIONS)
        - set(_CONSTANTS)
    )


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    return _Parser(text, env).parse()


class _Parser:
    def __init__(self, text: str, env: Mapping[str, Any]):
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.env = env

    def parse(self) -> Any:
        if not self.tokens:
            raise RuleError("empty expression")
        value = self.expression(0)
        if self.pos != len(self.tokens):
            raise RuleError(f"unexpected {self.tokens[self.pos]!r} in expression {self.text!r}")
        return value

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            want = f"{expected!r}" if expected else "more"
            raise RuleError(f"expression {self.text!r} is incomplete: expected {want}")
        self.pos += 1
        return token

    def expression(self, min_prec: int) -> Any:
        left = self.unary()
        while (op := self.peek()) in _BINARY and _BINARY[op][0] >= min_prec:
            prec, right_assoc = _BINARY[op]
            self.take()
            right = self.expression(prec if right_assoc else prec + 1)
            left = _apply(op, left, right, self.text)
        return left

    def unary(self) -> Any:
        token = self.peek()
        if token == "-":
            self.take()
            return -self.expression(7)
        if token == "+":
            self.take()
            return self.expression(7)
        if token == "not":
            self.take()
            return not _truth(self.expression(3), self.text)
        return self.atom()

    def atom(self) -> Any:
        token = self.take()
        if token == "(":
            value = self.expression(0)
            self.take(")")
            return value
        if token[0].isdigit() or token[0] == ".":
            return float(token) if any(c in token for c in ".eE") else int(token)
        if token in _CONSTANTS:
            return _CONSTANTS[token]
        if token in _FUNCTIONS and self.peek() == "(":
            return self.call(_FUNCTIONS[token])
        if token[0].isalpha() or token[0] == "_":
            if token not in self.env:
                known = ", ".join(sorted(self.env)) or "none"
                raise RuleError(f"unknown name {token!r} in expression {self.text!r} (known names: {known})")
            return self.env[token]
        raise RuleError(f"unexpected {token!r} in expression {self.text!r}")

    def call(self, function: Callable) -> Any:
        self.take("(")
        args = [self.expression(0)]
        while self.peek() == ",":
            self.take()
            args.append(self.expression(0))
        self.take(")")
        result = args[0]
        for arg in args[1:]:
            result = function(result, arg)
        return result


def _truth(value: Any, text: str) -> bool:
    if value is None:
        raise RuleError(f"expression {text!r} depends on symbolic sizes and cannot be decided")
    if isinstance(value, (bool, int, float, Fraction)):
        return bool(value)
    if not dims.is_expr(value):
        raise RuleError(f"expression {text!r}: expected a number or true/false, received {value!r}")
    decided = dims.decide(value)
    if decided is None:
        raise RuleError(f"expression {text!r} depends on symbolic sizes and cannot be decided: {value}")
    return decided


def _apply(op: str, a: Any, b: Any, text: str) -> Any:
    if op in ("and", "or"):
        return (_truth(a, text) and _truth(b, text)) if op == "and" else (_truth(a, text) or _truth(b, text))
    if isinstance(a, bool) or isinstance(b, bool):
        if op not in ("==", "!="):
            raise RuleError(f"arithmetic on true/false in expression {text!r}")
    try:
        if op in ("==", "!=", "<", "<=", ">", ">="):
            return _truth(_compare(op, a, b), text)
        if op == "/":
            return dims.truediv(a, b)
        if op == "//":
            return dims.floordiv(a, b)
        if op == "%":
            return dims.mod(a, b)
        if op == "**":
            if not (isinstance(b, int) and 0 <= b <= 64):
                raise RuleError(f"exponent must be an integer from 0 to 64 in expression {text!r}, received {b}")
            return a**b
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        return a * b
    except ZeroDivisionError:
        raise RuleError(f"division by zero in expression {text!r}") from None
    except TypeError as exc:
        raise RuleError(f"cannot evaluate {text!r}: {exc}") from None


def _compare(op: str, a: Any, b: Any) -> Any:
    if op == "==":
        return dims.equal(a, b)
    if op == "!=":
        eq = dims.equal(a, b)
        return None if eq is None else not eq
    return {"<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b}[op]()
