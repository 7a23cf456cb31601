"""Arithmetic on sizes that are ints or sympy expressions.

Rules are written once over these helpers: on ints they are plain Python (and sympy
is never imported), on symbols they build cheap FloorDiv/CeilDiv terms.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from . import quasi, quasi_facts, quasi_text
from .quasi import Q

Dim = Any  # int, sympy.Expr, or quasi.Q (light formulas: see quasi.py)


def is_concrete(x: Any) -> bool:
    return isinstance(x, (int, float, Fraction))


def is_expr(x: Any) -> bool:
    """A formula: a sympy expression (checked without importing sympy) or a light one (quasi.Q)."""
    return isinstance(x, Q) or type(x).__module__.startswith("sympy") or type(x).__name__ in ("FloorDiv", "CeilDiv")


def is_size(x: Any) -> bool:
    """An int or a sympy expression: something a tensor dimension can be."""
    return (isinstance(x, int) and not isinstance(x, bool)) or is_expr(x)


def _sym():
    from . import symbols

    return symbols


def floordiv(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    if isinstance(a, Q) or isinstance(b, Q):
        return quasi.floordiv(a, b)
    return _sym().floordiv(a, b)


def ceildiv(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return -(-a // b)
    if isinstance(a, Q) or isinstance(b, Q):
        return quasi.ceildiv(a, b)
    return _sym().ceildiv(a, b)


def truediv(a: Any, b: Any) -> Any:
    if isinstance(a, (int, Fraction)) and isinstance(b, (int, Fraction)) and not isinstance(a, bool):
        q = Fraction(a) / Fraction(b)
        return q.numerator if q.denominator == 1 else q
    if is_concrete(a) and is_concrete(b):
        return a / b
    if isinstance(a, Q) or isinstance(b, Q):
        return a / b
    return _sym().truediv(a, b)


def mod(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a % b
    if isinstance(a, Q) or isinstance(b, Q):
        return quasi.mod(a, b)
    return _sym().mod(a, b)


def dmin(a: Dim, b: Dim) -> Dim:
    if is_concrete(a) and is_concrete(b):
        return min(a, b)
    if isinstance(a, Q) or isinstance(b, Q):
        return quasi.extreme("min", a, b)
    return _sym().smin(a, b)


def dmax(a: Dim, b: Dim) -> Dim:
    if is_concrete(a) and is_concrete(b):
        return max(a, b)
    if isinstance(a, Q) or isinstance(b, Q):
        return quasi.extreme("max", a, b)
    return _sym().smax(a, b)


def total(values) -> Dim:
    """The sum of sizes or counts: plain ints add as ints; with formulas, one sympy Add of every term."""
    ints = [v for v in values if isinstance(v, int)]
    rest = [v for v in values if not isinstance(v, int)]
    if not rest:
        return sum(ints)
    if all(type(v).__name__ == "Batch" for v in rest):
        return sum(rest, sum(ints))
    if any(isinstance(v, Q) for v in rest):
        out = sum(ints)
        for v in rest:
            out = quasi.add(out, v)
        return out
    return normalize(_sym().add_all([sum(ints), *rest]))


def is_whole(x: Any) -> bool:
    """x is decidedly an integer."""
    if as_int(x) is not None:
        return True
    return is_expr(x) and bool(getattr(x, "is_integer", False))  # quasi.Q has is_integer too


def divided(x: Any, y: Any) -> Any:
    """x / y, with common factors of symbolic sizes cancelled ((4*H - 8)*W / 4 is (H - 2)*W)."""
    q = truediv(x, y)
    if isinstance(q, Q) and not q.is_integer:
        raise quasi.NotQuasi("a quotient sympy would factor")
    if is_expr(q) and not q.is_integer:
        q = _sym().cancelled(q)
    return q


def is_multiple(x: Any, y: Any) -> bool:
    """x is decidedly y times an integer of at least 2 (so y is a proper part of x)."""
    q = divided(x, y)
    number = as_int(q)
    if number is not None:
        return number >= 2
    return is_whole(q) and equal(q, 1) is not True


def product(values) -> Dim:
    """The product; plain ints multiply first, formulas in one sympy Mul (a Mul per factor costs as much each)."""
    number, rest = 1, []
    for v in values:
        if isinstance(v, int):
            number *= v
        else:
            rest.append(v)
    if not rest or number == 0:
        return number
    if len(rest) > 1 and all(is_expr(v) for v in rest) and not any(isinstance(v, Q) for v in rest):
        return _sym().multiply(number, rest)
    result = number
    for v in rest:
        result = result * v
    return result


def equal(a: Any, b: Any) -> bool | None:
    """True/False when decided; None when it depends on symbol values."""
    if is_concrete(a) and is_concrete(b):
        return a == b
    if isinstance(a, Q) or isinstance(b, Q):
        return quasi.equal(a, b)
    if _batch(a) or _batch(b):  # polynomials in one batch symbol (batch.Batch)
        diff = a + (-1) * b
        return diff == 0 if isinstance(diff, int) else None
    return _sym().equal(a, b)


def is_positive(x: Any) -> bool | None:
    """True if x >= 1 for every valid symbol value, False if never, None if it depends."""
    if isinstance(x, Q):
        return quasi_facts.is_positive(x)
    return _sym().is_positive(x)


def decide(relation: Any) -> bool | None:
    if isinstance(relation, bool):
        return relation
    if isinstance(relation, quasi.Relation):
        return quasi_facts.decide(relation)
    if isinstance(relation, Q):
        raise quasi.NotQuasi("a light formula used as a truth value")
    return _sym().decide(relation)


def as_int(x: Any) -> int | None:
    """The int value of x if it is a concrete integer, else None."""
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    if isinstance(x, Fraction):
        return x.numerator if x.denominator == 1 else None
    if isinstance(x, float):
        return int(x) if x.is_integer() else None
    if isinstance(x, Q):
        return None
    if getattr(x, "is_Integer", False):
        return int(x)
    return None


def normalize(x: Any) -> Any:
    """Sympy integers become Python ints so concrete results stay cheap and JSON-friendly."""
    value = as_int(x) if not isinstance(x, float) else None
    return value if value is not None else x


def to_str(x: Any) -> str:
    if isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, Fraction):
        return f"{x.numerator}/{x.denominator}"
    if _batch(x):
        return str(x)
    if isinstance(x, Q):
        return quasi_text.text(x)
    return _sym().to_str(x)


# -- presenting figures: ints, sympy expressions, or polynomials in a batch symbol (batch.Batch) ------------
def _batch(x: Any) -> bool:
    return type(x).__name__ == "Batch"


def monomial(x: Any) -> tuple | None:
    """(integer coefficient, the rest as text) for a single-term figure such as 4089184256*N; else None."""
    if as_int(x) is not None or isinstance(x, (float, Fraction)):
        return None
    if _batch(x):
        return x.monomial
    if isinstance(x, Q):
        return quasi_text.monomial(x)
    coeff, rest = x.as_coeff_Mul()
    if not coeff.is_Integer or not (rest.is_Mul or rest.is_Symbol or rest.is_Pow):
        return None
    return int(coeff), to_str(rest)


def symbol_names(x: Any) -> set:
    if _batch(x):
        return {x.name}
    if isinstance(x, Q):
        return set(x.names)
    return {str(s) for s in getattr(x, "free_symbols", ())}


def at(x: Any, values: dict) -> Any:
    """The figure with symbols replaced by values (name -> number); a number when all are given."""
    if as_int(x) is not None or isinstance(x, (float, Fraction)):
        return normalize(x)
    if _batch(x):
        return x.at(values[x.name]) if x.name in values else x
    if isinstance(x, Q):
        return quasi.substitute(x, {name: v for name, v in values.items() if name in x.names})
    return normalize(x.xreplace({s: values[s.name] for s in x.free_symbols if s.name in values}))


def parsable(x: Any) -> str:
    """A formula as text that sympy.sympify reads back (JSON's symbolic figures)."""
    if _batch(x):
        return x.parsable()
    if isinstance(x, Q):
        return quasi_text.text(x, parsable=True)
    return _sym().to_parsable(x)
