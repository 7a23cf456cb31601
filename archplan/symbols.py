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


def cancelled(q):
    return sympy.factor(sympy.cancel(q))


def add_all(terms):
    """One Add of every term, like terms collected first with Python ints: sympy's Add.flatten over thousands
    of terms that share a monomial (576*H*W*N per layer of a deep chain) costs far more than the dict."""
    coefficients: dict = {}
    for term in terms:
        coefficient, rest = _as_expr(term).as_coeff_Mul()
        coefficients[rest] = coefficients.get(rest, 0) + coefficient
    return sympy.Add(*[c * rest for rest, c in coefficients.items() if c != 0])


def multiply(number: int, factors: list):
    return sympy.Mul(number, *factors)


def truediv(a, b):
    return _as_expr(a) / _as_expr(b)


def mod(a, b):
    """a % b; for a positive integer b, a - b*floor(a/b) with the cheap FloorDiv (sympy.Mod's evaluation costs
    a millisecond per call and more on first use)."""
    a, b = _as_expr(a), _as_expr(b)
    if b.is_Integer and b > 0:
        return a - b * FloorDiv(a, b)
    return sympy.Mod(a, b)


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


# -- formulas as Python source (generated code computes sizes from its arguments) ----------------------------
class Unprintable(Exception):
    """The formula depends on symbols that have no name in the generated code."""


def choose(condition, present, absent):
    """`present if condition else absent`, folded when both are the same value: under `t != 1` the absent
    value is compared with the present one at t = 1 (a sound substitution)."""
    if present == absent:
        return present
    for relation, kept, other in ((sympy.Ne, present, absent), (sympy.Eq, absent, present)):
        if isinstance(condition, relation) and condition.lhs.is_Symbol:
            if sympy.expand(kept.xreplace({condition.lhs: condition.rhs}) - other) == 0:
                return kept
    return sympy.Piecewise((present, condition), (absent, True))


_LEVEL = {"if": 0, "or": 1, "and": 2, "not": 3, "cmp": 4, "add": 5, "mul": 6, "neg": 7, "pow": 8, "atom": 9}
_RELATIONS = ("==", "!=", "<", "<=", ">", ">=")


def python_source(x, names: dict) -> str:
    """Python for an integer formula over symbols named by `names` (symbol -> source), spaced as ruff
    format writes it. Raises Unprintable for other symbols or non-integer parts."""
    if set(getattr(x, "free_symbols", ())) - set(names):
        raise Unprintable()
    return _source(sympy.sympify(x), names)[0]


def _wrapped(x, names: dict, level: int, strict: bool = False) -> str:
    text, inner = _source(x, names)
    return f"({text})" if inner < level or (strict and inner == level) else text


def _source(x, names: dict) -> tuple[str, int]:  # noqa: C901 - one case per kind of node
    if x.is_Integer:
        return str(int(x)), _LEVEL["atom"] if x >= 0 else _LEVEL["neg"]
    if x.is_Symbol:
        return names[x], _LEVEL["atom"]
    if x in (sympy.true, sympy.false):
        return str(bool(x)), _LEVEL["atom"]
    if x.is_Add:
        terms = x.as_ordered_terms()
        text = _wrapped(terms[0], names, _LEVEL["add"])
        for term in terms[1:]:
            negative = term.as_coeff_Mul()[0].is_negative
            text += (
                f" - {_wrapped(-term, names, _LEVEL['add'], True)}"
                if negative
                else (f" + {_wrapped(term, names, _LEVEL['add'])}")
            )
        return text, _LEVEL["add"]
    if x.is_Mul:
        coeff, rest = x.as_coeff_Mul()
        if not coeff.is_Integer:
            raise Unprintable()
        if coeff == -1:
            return f"-{_wrapped(rest, names, _LEVEL['neg'])}", _LEVEL["neg"]
        factors = [_wrapped(f, names, _LEVEL["mul"]) for f in sympy.Mul.make_args(rest)]
        return " * ".join(([str(int(coeff))] if coeff != 1 else []) + factors), _LEVEL["mul"]
    if x.is_Pow and x.exp.is_Integer and x.exp > 0:
        base = _wrapped(x.base, names, _LEVEL["pow"], True)
        hug = x.base.is_Symbol or (x.base.is_Integer and x.base >= 0)  # ruff format: a**2, (a - 1) ** 2
        return f"{base}**{int(x.exp)}" if hug else f"{base} ** {int(x.exp)}", _LEVEL["pow"]
    if isinstance(x, (FloorDiv, CeilDiv, sympy.Mod)):
        p, q = (_wrapped(a, names, _LEVEL["mul"], i == 1) for i, a in enumerate(x.args))
        if isinstance(x, CeilDiv):  # ceil(p / q) == -(-p // q)
            return f"-(-{_wrapped(x.args[0], names, _LEVEL['neg'])} // {q})", _LEVEL["neg"]
        return f"{p} {'%' if isinstance(x, sympy.Mod) else '//'} {q}", _LEVEL["mul"]
    if isinstance(x, (sympy.Min, sympy.Max)):
        args = ", ".join(_source(a, names)[0] for a in sorted(x.args, key=sympy.default_sort_key))
        return f"{'min' if isinstance(x, sympy.Min) else 'max'}({args})", _LEVEL["atom"]
    if isinstance(x, sympy.Piecewise):
        (value, condition), *rest = x.args
        otherwise = rest[0][0] if len(rest) == 1 and rest[0][1] == sympy.true else sympy.Piecewise(*rest)
        parts = (_wrapped(value, names, 1), _wrapped(condition, names, 1), _wrapped(otherwise, names, 0))
        return "{} if {} else {}".format(*parts), _LEVEL["if"]
    if isinstance(x, sympy.Not):
        return f"not {_wrapped(x.args[0], names, _LEVEL['not'])}", _LEVEL["not"]
    if isinstance(x, (sympy.And, sympy.Or)):
        word = "and" if isinstance(x, sympy.And) else "or"
        parts = [_wrapped(a, names, _LEVEL[word], True) for a in sorted(x.args, key=sympy.default_sort_key)]
        return f" {word} ".join(parts), _LEVEL[word]
    if isinstance(x, sympy.core.relational.Relational) and x.rel_op in _RELATIONS:
        left, right = _wrapped(x.lhs, names, _LEVEL["add"]), _wrapped(x.rhs, names, _LEVEL["add"])
        return f"{left} {x.rel_op} {right}", _LEVEL["cmp"]
    raise Unprintable()
