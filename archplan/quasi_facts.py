"""Facts about light formulas (quasi.Q) that the analysis asks for: signs, as sympy's assumptions find them
for sums of positive terms; comparisons; products split into factors as domain.py splits sympy's; sizes
large enough to leave to sympy's limits."""

from __future__ import annotations

from .quasi import Atom, NotQuasi, Q, Relation


def decide(relation: Relation):
    """True when the relation holds for every size, False when never (a constant), None when it depends."""
    d = relation.diff
    if not isinstance(d, Q):
        return d > 0 if relation.strict else d >= 0
    low = lower_bound(d)
    return True if low is not None and (low > 0 if relation.strict else low >= 0) else None


def split_product(condition) -> list:
    """As domain._split_products does with sympy: a positive product c*f1*f2 (c > 0) is one condition per
    factor; a sum with no factor common to its terms stays whole (sympy's factor_terms finds none)."""
    x = condition.value
    if not x.flat:
        raise NotQuasi("a product of sums (sympy would factor it)")
    if not x.is_monomial:
        common = set.intersection(*({a for a, _ in m} for m in x.terms))
        if common:
            raise NotQuasi("a sum with a common factor (sympy would factor it)")
        return [condition]
    ((mono, c),) = x.terms.items()
    if c <= 0 or sum(e for _, e in mono) < 2:
        return [condition]
    factors = [Q({((atom, 1),): 1}, True) for atom, _ in mono]
    return [type(condition)("positive", f, None, condition.node, condition.text) for f in factors]


MAX_TERMS, MAX_DEGREE, MAX_PART = 64, 16, 1 << 62  # past these, sympy's own limits (limits.py) decide


def check_size(x: Q) -> None:
    """Raises NotQuasi for a formula large enough that limits.py might refuse it: sympy's path decides."""
    if len(x.terms) > MAX_TERMS:
        raise NotQuasi("a large formula")
    for mono, c in x.terms.items():
        if max(abs(c.numerator), c.denominator) > MAX_PART or sum(e for _, e in mono) > MAX_DEGREE:
            raise NotQuasi("a large formula")
        for atom, _ in mono:
            for arg in atom.args:
                if isinstance(arg, Q):
                    check_size(arg)


def lower_bound(x):
    """A lower bound of x over positive integer symbols, or None when unknown."""
    if not isinstance(x, Q):
        return x
    total = 0
    for m, c in x.terms.items():
        if m == ():
            total += c
            continue
        if c < 0:
            return None
        low = 1
        for atom, e in m:
            b = _atom_lower(atom)
            if b is None or b < 0:
                return None
            low *= b**e
        total += c * low
    return total


def _atom_lower(atom: Atom):
    if atom.kind == "var":
        return 1
    if atom.kind in ("floor", "ceil"):
        low = lower_bound(atom.args[0])
        if low is None:
            return None
        q = atom.args[1]
        return (low // q) if atom.kind == "floor" else -(-low // q)
    lows = [lower_bound(a) for a in atom.args]
    if None in lows:
        return None
    return min(lows) if atom.kind == "min" else max(lows)


def is_positive(x):
    """True when x >= 1 for every size; None when it depends (the domain solver decides)."""
    low = lower_bound(x)
    return True if low is not None and low >= 1 else None
