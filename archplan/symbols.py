"""Sympy in one place: symbols with integer/positive assumptions, cheap FloorDiv/CeilDiv, printing.

sympy's own floor() tries hard to simplify and gets slow on deep nets; these functions
only pull out exact integer multiples and merge nested divisions, which keeps
expressions short ("ceiling(H/32)") and evaluation linear in the depth of the net.
"""

from __future__ import annotations

from functools import lru_cache

import sympy
from sympy.printing.str import StrPrinter


@lru_cache(maxsize=None)
def symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


def _split_multiples(p: sympy.Expr, q: int):
    """p = q*quotient + rest, where quotient collects the integer-valued terms divisible by q."""
    quotient, rest = [], []
    for term in sympy.Add.make_args(p):
        coeff, factor = term.as_coeff_Mul()
        if coeff.is_Integer and factor == 1:
            quotient.append(sympy.Integer(int(coeff) // q))
            rest.append(sympy.Integer(int(coeff) % q))
        elif coeff.is_Integer and int(coeff) % q == 0 and factor.is_integer:
            quotient.append(sympy.Integer(int(coeff) // q) * factor)
        else:
            rest.append(term)
    return sympy.Add(*quotient), sympy.Add(*rest)


def _split_constant(p: sympy.Expr):
    const, rest = p.as_coeff_Add()
    return (int(const), rest) if const.is_Integer else (0, p)


class FloorDiv(sympy.Function):
    """floor(p / q) for a positive integer q."""

    is_integer = True

    def _eval_is_nonnegative(self):
        return self.args[0].is_nonnegative

    def _eval_is_positive(self):
        p, q = self.args
        return (p - q).is_nonnegative

    @classmethod
    def eval(cls, p, q):
        if not q.is_Integer or q <= 0:
            return sympy.floor(p / q)
        if p.is_Integer:
            return sympy.Integer(int(p) // int(q))
        if q == 1 and p.is_integer:
            return p
        if isinstance(p, FloorDiv):
            return FloorDiv(p.args[0], p.args[1] * q)
        whole, rest = _split_multiples(p, int(q))
        if whole != 0:
            return whole + FloorDiv(rest, q)
        const, var = _split_constant(rest)
        if const == int(q) - 1 and var.is_integer:
            return CeilDiv(var, q)
        return None


class CeilDiv(sympy.Function):
    """ceiling(p / q) for a positive integer q."""

    is_integer = True

    def _eval_is_positive(self):
        return self.args[0].is_positive

    def _eval_is_nonnegative(self):
        return self.args[0].is_nonnegative

    @classmethod
    def eval(cls, p, q):
        if not q.is_Integer or q <= 0:
            return sympy.ceiling(p / q)
        if p.is_Integer:
            return sympy.Integer(-(-int(p) // int(q)))
        if q == 1 and p.is_integer:
            return p
        if isinstance(p, CeilDiv):
            return CeilDiv(p.args[0], p.args[1] * q)
        whole, rest = _split_multiples(p, int(q))
        if whole != 0:
            return whole + CeilDiv(rest, q)
        const, var = _split_constant(rest)
        if const == 1 and var.is_integer:
            return FloorDiv(var, q) + 1
        return None


def _as_expr(x):
    return sympy.sympify(x) if not isinstance(x, sympy.Basic) else x


def floordiv(a, b):
    a, b = _as_expr(a), _as_expr(b)
    return FloorDiv(a, b) if b.is_Integer else sympy.floor(a / b)


def ceildiv(a, b):
    a, b = _as_expr(a), _as_expr(b)
    return CeilDiv(a, b) if b.is_Integer else sympy.ceiling(a / b)


def truediv(a, b):
    return _as_expr(a) / _as_expr(b)


def mod(a, b):
    return sympy.Mod(_as_expr(a), _as_expr(b))


def smin(a, b):
    return sympy.Min(_as_expr(a), _as_expr(b))


def smax(a, b):
    return sympy.Max(_as_expr(a), _as_expr(b))


def equal(a, b):
    diff = sympy.expand(_as_expr(a) - _as_expr(b))
    if diff == 0:
        return True
    if diff.is_number:
        return False
    return None


def decide(relation):
    relation = _as_expr(relation)
    if relation in (sympy.true, sympy.false):
        return bool(relation)
    return None


def is_positive(x) -> bool | None:
    """True if x >= 1 for every valid symbol value, False if never, None if it depends."""
    x = _as_expr(x)
    if x.is_number:
        return bool(x >= 1)
    if x.is_integer and x.is_positive:
        return True
    return True if (x - 1).is_nonnegative else None


class _Printer(StrPrinter):
    def _print_FloorDiv(self, expr):
        return f"floor({self._print(expr.args[0] / expr.args[1])})"

    def _print_CeilDiv(self, expr):
        return f"ceiling({self._print(expr.args[0] / expr.args[1])})"


@lru_cache(maxsize=None)
def _clashes(name: str) -> bool:
    """True if sympy.sympify(name) is not a plain symbol (N, S, E, I, Q, beta, ...)."""
    try:
        parsed = sympy.sympify(name)
    except (sympy.SympifyError, TypeError, SyntaxError):
        return True
    return not (isinstance(parsed, sympy.Symbol) and parsed.name == name)


class _ParsablePrinter(_Printer):
    def _print_Symbol(self, expr):
        return f"Symbol('{expr.name}')" if _clashes(expr.name) else expr.name


_printer = _Printer()
_parsable = _ParsablePrinter()


def _tidy(x):
    """Display form: common factors pulled out of each product term, 32*(ceiling(H/8) - 1) rather than
    32*ceiling(H/8) - 32, without regrouping the sum (which would hide the per-layer terms)."""
    x = _as_expr(x)
    if x.is_Add:
        return sympy.Add(*[sympy.factor_terms(t) if t.is_Mul else t for t in x.args], evaluate=False)
    return sympy.factor_terms(x) if x.is_Mul else x


@lru_cache(maxsize=4096)
def to_str(x) -> str:
    return _printer.doprint(_tidy(x))


@lru_cache(maxsize=4096)
def to_parsable(x) -> str:
    """Like to_str, but names sympy would read as its own functions (N, S, E, ...) become Symbol('N'),
    so that sympy.sympify(text) gives back the same expression."""
    return _parsable.doprint(_tidy(x))
