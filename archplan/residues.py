"""Exact integer functions of one symbol and the sets of values where a requirement holds.

Used by domain.py (see its docstring for the method): `compile_fn` turns a sympy expression or a quasi.Q
(compiled by quasi_fn.py) built from sums, products, floor/ceiling divisions by constants, Mod, Min and Max
into an exact function with a trend and a quasi-period; `part` finds where one requirement holds;
`intersect` combines them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from math import gcd
from typing import Any, Callable

from . import dims
from .quasi import Q

MAX_PERIOD = 1 << 16  # residues checked for one requirement
MAX_WORK = 1 << 20  # evaluations and residue lifts for one symbol
SIZE_LIMIT = (1 << 63) - 1  # torch sizes are int64: searches for thresholds stop here


class Unsupported(Exception):
    """The requirement's form is outside what is decided exactly; the message says why."""


def lcm(a: int, b: int) -> int:
    return a * b // gcd(a, b)


# ---- expressions as exact functions of the symbol's value -------------------------------------------


@dataclass(frozen=True)
class _Fn:
    at: Callable[[int], Any]  # exact value (int or Fraction) at an integer
    trend: int | None  # 1 nondecreasing, -1 nonincreasing, 0 constant (for values >= lo); None unknown
    period: int | None  # at(v + period) == at(v) + slope * period for every integer v; None: no such period
    slope: Fraction = Fraction(0)


def _constant(c) -> _Fn:
    return _Fn(lambda v: c, 0, 1)


def _trend(trends) -> int | None:
    if None in trends:
        return None
    moving = set(trends) - {0}
    return moving.pop() if len(moving) == 1 else (0 if not moving else None)


@lru_cache(maxsize=8192)
def compile_fn(e, x, lo: int = 1) -> _Fn:
    """e (a sympy expression or a quasi.Q) as an exact function of x; its trend holds for x >= lo."""
    if isinstance(e, Q) or isinstance(x, Q):
        from .quasi_fn import compile_q

        return compile_q(e, x, lo)
    import sympy

    from .symbols import CeilDiv, FloorDiv

    if e == x:
        return _Fn(lambda v: v, 1, 1, Fraction(1))
    if e.is_Integer:
        return _constant(int(e))
    if e.is_Rational:
        return _constant(Fraction(int(e.p), int(e.q)))
    if e.is_Add:
        f = _sum([compile_fn(a, x, lo) for a in e.args])
        lifted = _lift_extreme(e) if f.trend is None else None
        return f if lifted is None else compile_fn(lifted, x, lo)
    if e.is_Mul:
        return _product([compile_fn(a, x, lo) for a in e.args], lo)
    if e.is_Pow and e.exp.is_Integer and 0 < e.exp <= 64:
        return _product([compile_fn(e.base, x, lo)] * int(e.exp), lo)
    kinds = {FloorDiv: "floor", CeilDiv: "ceil", sympy.Mod: "mod", sympy.floor: "floor", sympy.ceiling: "ceil"}
    if type(e) in (FloorDiv, CeilDiv, sympy.Mod) and e.args[1].is_Integer and e.args[1] > 0:
        return _divide(kinds[type(e)], compile_fn(e.args[0], x, lo), int(e.args[1]))
    if isinstance(e, (sympy.floor, sympy.ceiling)):
        return _divide(kinds[type(e)], compile_fn(e.args[0], x, lo), 1)
    if isinstance(e, (sympy.Min, sympy.Max)):
        return _extreme(min if isinstance(e, sympy.Min) else max, [compile_fn(a, x, lo) for a in e.args])
    raise Unsupported(f"it contains {dims.to_str(e)}, which is not built from sums, products and integer divisions")


def _lift_extreme(e):
    """A sum with a Min or Max term as an extreme of sums, whose trend may be known where the sum's is not:
    L - Min(1024, L) is Max(L - 1024, 0), nondecreasing (a sliced position table against the sequence)."""
    import sympy

    for i, term in enumerate(e.args):
        coeff, core = term.as_coeff_Mul()
        if isinstance(core, (sympy.Min, sympy.Max)):
            rest = sympy.Add(*e.args[:i], *e.args[i + 1 :])
            kind = type(core) if coeff > 0 else (sympy.Max if isinstance(core, sympy.Min) else sympy.Min)
            return kind(*(rest + coeff * a for a in core.args), evaluate=False)
    return None


def _sum(fs: list) -> _Fn:
    ats = [f.at for f in fs]
    periods = [f.period for f in fs]
    period = None if None in periods else lcm_all(periods)
    return _Fn(lambda v: sum(at(v) for at in ats), _trend([f.trend for f in fs]), period, sum(f.slope for f in fs))


def lcm_all(values) -> int:
    out = 1
    for v in values:
        out = lcm(out, v)
    return out


def _sign(c) -> int:
    return (c > 0) - (c < 0)


def _product(fs: list, lo: int) -> _Fn:
    c = 1
    for f in fs:
        if f.trend == 0:
            c = c * f.at(0)
    moving = [f for f in fs if f.trend != 0]
    if not moving:
        return _constant(c)
    if len(moving) == 1:
        f = moving[0]
        trend = None if f.trend is None else f.trend * _sign(c)
        return _Fn(lambda v: c * f.at(v), trend, f.period, c * f.slope)
    ats = [f.at for f in moving]

    def at(v):
        out = c
        for a in ats:
            out = out * a(v)
        return out

    # nonnegative nondecreasing factors multiply into a nondecreasing product
    rising = all(f.trend == 1 and f.at(lo) >= 0 for f in moving)
    periodic = all(f.period is not None and f.slope == 0 for f in moving)
    return _Fn(at, _sign(c) if rising else None, lcm_all(f.period for f in moving) if periodic else None)


def _divide(kind: str, p: _Fn, q: int) -> _Fn:
    """floor, ceil or mod of p by q."""
    if kind == "floor":
        at = lambda v: p.at(v) // q  # noqa: E731
    elif kind == "ceil":
        at = lambda v: -(-p.at(v) // q)  # noqa: E731
    else:
        at = lambda v: p.at(v) % q  # noqa: E731
    trend = p.trend if kind != "mod" or p.trend == 0 else None
    if p.period is None:
        return _Fn(at, trend, None)
    # p(v + P) = p(v) + slope*P: the division shifts by a whole number once slope*P/q is one
    period = p.period * (p.slope * p.period / q).denominator
    return _Fn(at, trend, period, Fraction(0) if kind == "mod" else p.slope / q)


def _extreme(pick, fs: list) -> _Fn:
    ats = [f.at for f in fs]
    slopes = {f.slope for f in fs}
    periods = [f.period for f in fs]
    period = lcm_all(periods) if None not in periods and len(slopes) == 1 else None
    return _Fn(lambda v: pick(at(v) for at in ats), _trend([f.trend for f in fs]), period, slopes.pop())


# ---- one requirement -> its valid values ------------------------------------------------------------


@dataclass
class Part:
    """Values x >= 1 with x % period in `classes`; classes[r] = (first, last or None) bounds the class."""

    period: int
    classes: dict
    condition: Any = None

    @property
    def first(self) -> int:
        return min(a for a, _ in self.classes.values())

    @property
    def last(self) -> int:
        return max(SIZE_LIMIT if b is None else b for _, b in self.classes.values())


class Budget:
    def __init__(self):
        self.left = MAX_WORK

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise Unsupported(f"deciding it takes more than {MAX_WORK} checks")


def first_true(pred, low: int = 1) -> int | None:
    """Smallest v in [low, SIZE_LIMIT] with pred(v), for pred false up to a point and true after it."""
    if pred(low):
        return low
    below, step = low, 1
    while True:
        v = min(low + step, SIZE_LIMIT)
        if pred(v):
            break
        if v == SIZE_LIMIT:
            return None
        below, step = v, step * 2
    while v - below > 1:
        mid = (below + v) // 2
        below, v = (below, mid) if pred(mid) else (mid, v)
    return v


def _interval(first: int | None, stop: int | None) -> dict:
    """{0: (first, stop - 1)}: values from `first` (None: none) up to before `stop` (None: no end)."""
    if first is None or (stop is not None and stop <= first):
        return {}
    return {0: (first, None if stop is None else stop - 1)}


def part(c, x, budget: Budget, lo: int = 1) -> Part:
    """The values x >= lo for which the condition holds (other conditions exclude those below lo)."""
    value, other = c.value, c.other
    if not isinstance(value, Q) and not isinstance(other, Q) and not isinstance(x, Q):
        import sympy

        value, other = sympy.sympify(value), sympy.sympify(other)
    if c.kind == "equal":
        value = value - other
    f = compile_fn(value, x, lo)
    at = f.at
    if c.kind == "positive" and f.trend is not None:
        if f.trend >= 0:
            return Part(1, _interval(first_true(lambda v: at(v) >= 1, lo), None), c)
        return Part(1, _interval(lo, first_true(lambda v: at(v) < 1, lo)), c)
    if c.kind == "equal" and f.trend is not None:
        sign = f.trend or 1
        first, stop = first_true(lambda v: sign * at(v) >= 0, lo), first_true(lambda v: sign * at(v) > 0, lo)
        return Part(1, _interval(first, stop), c)
    if f.period is None:
        raise Unsupported(f"{dims.to_str(value)} is neither monotone nor periodic plus linear in {x}")
    period, step = f.period, f.slope * f.period
    if c.kind == "integer":  # with step integral, at(v + period) is integral exactly when at(v) is
        period *= step.denominator
        step *= step.denominator
    if period > MAX_PERIOD:
        raise Unsupported(f"{dims.to_str(value)} repeats only every {period} values of {x}")
    budget.spend(period)
    classes = {}
    for v in range(1, period + 1):
        bounds = _class_bounds(c.kind, at(v), step, v, period)
        if bounds is not None:
            classes[v % period] = bounds
    return Part(period, classes, c)


def _class_bounds(kind: str, y, step, v: int, period: int):
    """(first, last) of x = v + period*k (k >= 0) where the requirement holds, given y = f(v) and
    f(v + period*k) = y + step*k; None when it never does."""
    if kind == "integer":
        return (v, None) if y == int(y) else None
    if kind == "equal":
        if step == 0:
            return (v, None) if y == 0 else None
        k = Fraction(-y) / step
        return (v + period * int(k),) * 2 if k.denominator == 1 and k >= 0 else None
    if step == 0:
        return (v, None) if y >= 1 else None
    if step > 0:
        k = max(0, -((y - 1) // step))  # ceil((1 - y) / step)
        return v + period * k, None
    return (v, v + period * int((y - 1) // -step)) if y >= 1 else None


def meet(period: int, classes: dict, part: Part, budget: Budget) -> tuple:
    """Intersect the residue classes mod `period` with a part: classes mod lcm(period, part.period)."""
    q = lcm(period, part.period)
    if q > MAX_PERIOD:
        raise Unsupported(f"the valid values repeat only every {q} values")
    lifts = q // period
    budget.spend(len(classes) * lifts)
    out = {}
    for r, (a, b) in classes.items():
        for s in range(r, q, period):
            other = part.classes.get(s % part.period)
            if other is None:
                continue
            low = max(a, other[0])
            high = b if other[1] is None else other[1] if b is None else min(b, other[1])
            low += (s - low) % q
            if high is not None:
                high -= (high - s) % q
                if high < low:
                    continue
            out[s] = (low, high)
    return q, out


def intersect(parts: list, budget: Budget) -> tuple:
    """(period, classes, the part that left nothing or None)."""
    period, classes = 1, {0: (1, None)}
    for part in sorted(parts, key=lambda p: p.period):
        period, classes = meet(period, classes, part, budget)
        if not classes:
            return period, classes, part
    return period, classes, None
