"""A small, safe arithmetic language for YAML values such as "c*4" or "H//2".

Never `eval`: a tokenizer and a precedence-climbing parser evaluate directly with
Python operators, so the same expression works on ints (no sympy import) and on
sympy symbols. Supported: integers, decimals, names, + - * / // % **, parentheses,
comparisons, and/or/not, true/false, min(...), max(...).

Every result is bounded before the next step sees it: integers fit in 64 bits, floats are
finite, fractions have 64-bit parts, symbolic results have a bounded size, degree and
expanded term count; nesting is bounded, so no input text can exhaust time, memory or the stack.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any, Callable, Mapping

from . import dims
from .errors import RuleError
from .show import _kind, listed, shown

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*|\.\d+|\d+(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>\*\*|//|==|!=|<=|>=|[-+*/%()<>,]))"
)
_MAX_LENGTH = 500
MAX_INT = 2**63 - 1  # integers anywhere in a net (YAML values, expression results, --set) fit in int64
MAX_NESTING = 50  # parentheses, operands of right-associative ** and function calls
MAX_EXPONENT = 64
MAX_SYMBOLIC_NODES = 1000  # sympy tree nodes of one symbolic result
MAX_DEGREE = 64  # polynomial degree of a symbolic result (H**64; not (H**64)**2)
MAX_TERMS = 10_000  # terms a symbolic result can expand to ((H+W+1)**64 would be 2,145; products multiply)

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


# -- evaluation ------------------------------------------------------------------------------------
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
        self.depth = 0

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
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise RuleError(f"expression {shown(self.text)} is nested too deeply (at most {MAX_NESTING} levels)")
        left = self.unary()
        while (op := self.peek()) in _BINARY and _BINARY[op][0] >= min_prec:
            prec, right_assoc = _BINARY[op]
            self.take()
            right = self.expression(prec if right_assoc else prec + 1)
            left = _apply(op, left, right, self.text)
        self.depth -= 1
        return left

    def unary(self) -> Any:
        """Runs of signs or `not` fold into one step: `- - - 1` costs no recursion."""
        token = self.peek()
        if token in ("-", "+"):
            negative = False
            while self.peek() in ("-", "+"):
                negative ^= self.take() == "-"
            value = self.expression(7)
            return _negate(value, self.text) if negative else _numeric(value, "+", self.text)
        if token == "not":
            flip = False
            while self.peek() == "not":
                self.take()
                flip = not flip
            value = _truth(self.expression(3), self.text)
            return not value if flip else value
        return self.atom()

    def atom(self) -> Any:
        token = self.take()
        if token == "(":
            value = self.expression(0)
            self.take(")")
            return value
        if token[0].isdigit() or token[0] == ".":
            return _literal(token, self.text)
        if token in _CONSTANTS:
            return _CONSTANTS[token]
        if token in _FUNCTIONS and self.peek() == "(":
            return self.call(token)
        if token[0].isalpha() or token[0] == "_":
            if token not in self.env:
                raise RuleError(
                    f"unknown name {token!r} in expression {self.text!r} (known names: {listed(sorted(self.env))})"
                )
            return self.env[token]
        raise RuleError(f"unexpected {token!r} in expression {self.text!r}")

    def call(self, name: str) -> Any:
        self.take("(")
        args = [self.expression(0)]
        while self.peek() == ",":
            self.take()
            args.append(self.expression(0))
        self.take(")")
        for arg in args:
            _numeric(arg, f"{name}()", self.text)
        result = args[0]
        for arg in args[1:]:
            result = _bounded(_FUNCTIONS[name](result, arg), self.text)
        return result


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


def _numeric(value: Any, op: str, text: str) -> Any:
    """Arithmetic takes numbers only: a list, text or mapping from a block argument would make
    `k * 1000000000` allocate, and sympy would try to parse text."""
    if isinstance(value, bool):
        raise RuleError(f"arithmetic on true/false in expression {text!r}")
    if isinstance(value, (int, float, Fraction)) or dims.is_expr(value):
        return value
    raise RuleError(f"{op} needs numbers in expression {shown(text)}, received {_kind(value)}")


def _negate(value: Any, text: str) -> Any:
    return _bounded(-_numeric(value, "-", text), text)


def _truth(value: Any, text: str) -> bool:
    if value is None:
        raise RuleError(f"expression {text!r} depends on symbolic sizes and cannot be decided")
    if isinstance(value, (bool, int, float, Fraction)):
        return bool(value)
    if not dims.is_expr(value):
        raise RuleError(f"expression {text!r}: expected a number or true/false, received {_kind(value)}")
    decided = dims.decide(value)
    if decided is None:
        raise RuleError(f"expression {text!r} depends on symbolic sizes and cannot be decided: {shown(value)}")
    return decided


def _apply(op: str, a: Any, b: Any, text: str) -> Any:
    if op in ("and", "or"):
        return (_truth(a, text) and _truth(b, text)) if op == "and" else (_truth(a, text) or _truth(b, text))
    if op in ("==", "!="):
        return _equal(a, b, text) == (op == "==")
    if isinstance(a, bool) or isinstance(b, bool):
        raise RuleError(f"arithmetic on true/false in expression {text!r}")
    a, b = _numeric(a, op, text), _numeric(b, op, text)
    try:
        if op in ("<", "<=", ">", ">="):
            return _truth(_compare(op, a, b), text)
        if op in ("/", "//", "%") and _is_zero(b):
            raise ZeroDivisionError
        if op == "**":
            return _bounded(_power(a, b, text), text)
        return _bounded(_ARITHMETIC[op](a, b), text)
    except ZeroDivisionError:
        raise RuleError(f"division by zero in expression {text!r}") from None
    except OverflowError:
        raise RuleError(f"the result of {shown(text)} is too large") from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise RuleError(f"cannot evaluate {text!r}: {exc}") from None


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
            f"exponent must be an integer from 0 to {MAX_EXPONENT} in expression {text!r}, received {shown(b)}"
        )
    parts = (a.numerator, a.denominator) if isinstance(a, Fraction) else (a,) if isinstance(a, int) else ()
    for part in parts:  # the result has at least (bits - 1) * b bits: refuse before computing it
        if (abs(part).bit_length() - 1) * b > 64:
            raise RuleError(f"the result of {shown(text)} is too large (integers are at most 2**63 - 1)")
    return a**b


def _compare(op: str, a: Any, b: Any) -> Any:
    return {"<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b}[op]()


def _bounded(value: Any, text: str) -> Any:
    """The value if its size is bounded, else a RuleError: every step of every expression passes here."""
    if isinstance(value, int):
        if -MAX_INT <= value <= MAX_INT:
            return value
        raise RuleError(f"the result of {shown(text)} is too large: {shown(value)} (integers are at most 2**63 - 1)")
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise RuleError(f"the result of {shown(text)} is not a finite number ({value})")
    if isinstance(value, Fraction):
        if max(abs(value.numerator), value.denominator) <= MAX_INT:
            return value
        raise RuleError(f"the result of {shown(text)} is too large: {shown(value)} (parts at most 2**63 - 1)")
    if dims.is_expr(value):
        _check_symbolic(value, text)
    return value


def _check_symbolic(value: Any, text: str) -> None:
    problem = symbolic_problem(value)
    if problem:
        raise RuleError(f"the result of {shown(text)} is {problem}")


def symbolic_problem(value: Any) -> str | None:
    """Why a sympy result is too large to carry on with (None when it is fine): too many nodes, a number
    outside int64 or not finite, too high a degree, or too many terms once expanded."""
    degree: dict = {}
    terms: dict = {}
    stack = [(value, False)]
    seen = 0
    while stack:
        node, ready = stack.pop()
        if node in degree:
            continue
        if not ready:
            seen += 1
            if seen > MAX_SYMBOLIC_NODES:
                return f"too large a formula (more than {MAX_SYMBOLIC_NODES} parts)"
            if node.args:
                stack.append((node, True))
                stack.extend((arg, False) for arg in node.args)
                continue
        problem = _measure(node, degree, terms)
        if problem:
            return problem
    return None


def _measure(node: Any, degree: dict, terms: dict) -> str | None:
    args = node.args
    if not args:
        if node.is_Symbol:
            degree[node], terms[node] = 1, 1
            return None
        if node.is_Rational:
            if max(abs(int(node.p)), int(node.q)) > MAX_INT:
                return "too large: it holds a number beyond 2**63 - 1"
        elif node.is_number and not (node.is_Float and node.is_finite):
            return f"not a finite number ({node})"
        degree[node], terms[node] = 0, 1
        return None
    if node.is_Pow:
        base, exponent = args
        power = abs(int(exponent)) if exponent.is_Integer else MAX_DEGREE + 1
        if exponent.is_Integer and power > MAX_DEGREE and degree[base] == 0:
            power = 0  # a number to a power is a number; its size was checked
        d = degree[base] * power + degree[exponent]
        k = terms[base]
        t = math.comb(power + k - 1, k - 1) if k > 1 and power <= MAX_DEGREE else 1
    elif node.is_Mul:
        d = sum(degree[a] for a in args)
        t = math.prod(terms[a] for a in args)
    elif node.is_Add:
        d = max(degree[a] for a in args)
        t = sum(terms[a] for a in args)
    else:  # floor, Min, Max, Mod, relations: opaque to expansion, as large as their largest part
        d = max(degree[a] for a in args)
        t = max(terms[a] for a in args)
    if d > MAX_DEGREE:
        return f"of too high a degree ({d}; at most {MAX_DEGREE})"
    if t > MAX_TERMS:
        return f"too large once expanded (more than {MAX_TERMS} terms)"
    degree[node], terms[node] = d, t
    return None
