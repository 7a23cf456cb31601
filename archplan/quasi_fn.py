"""Light formulas (quasi.Q) as exact functions of one symbol, for the domain solver (residues.py).

The same combinators as residues.compile_fn on sympy expressions, so a requirement gets the same trend and
quasi-period whichever way it was built.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from . import quasi, residues
from .quasi import Atom, Q, _make


@lru_cache(maxsize=8192)
def compile_q(e, x: Q, lo: int = 1):
    """e (an int, a Fraction or a Q in the one symbol x) as residues._Fn; its trend holds for v >= lo."""
    if not isinstance(e, Q):
        return residues._constant(e)
    fn = residues._sum([_term(m, c, x, lo) for m, c in e.terms.items()])
    if fn.trend is None:
        lifted = _lift_extreme(e)
        if lifted is not None:
            return _extreme_of(lifted[0], lifted[1], x, lo)
    return fn


def _term(mono: tuple, c: Fraction, x: Q, lo: int):
    factors = [_atom(atom, x, lo) for atom, e in mono for _ in range(e)]
    if not factors:
        return residues._constant(c)
    return residues._product([residues._constant(c), *factors], lo) if c != 1 else residues._product(factors, lo)


def _atom(atom: Atom, x: Q, lo: int):
    ((mono, _),) = x.terms.items()
    if atom.kind == "var":
        if atom != mono[0][0]:
            raise residues.Unsupported(f"it holds {atom.args[0]} besides the symbol solved for")
        return residues._Fn(lambda v: v, 1, 1, Fraction(1))
    if atom.kind in ("floor", "ceil"):
        return residues._divide(atom.kind, compile_q(atom.args[0], x, lo), atom.args[1])
    return residues._extreme(min if atom.kind == "min" else max, [compile_q(a, x, lo) for a in atom.args])


def _lift_extreme(e: Q):
    """As residues._lift_extreme: rest + c*Min(a, b) is Min(rest + c*a, rest + c*b) for c > 0 (Max for c < 0)."""
    for mono, c in e.terms.items():
        if len(mono) == 1 and mono[0][1] == 1 and mono[0][0].kind in ("min", "max"):
            atom = mono[0][0]
            rest = _make({m: k for m, k in e.terms.items() if m != mono}, e.flat)
            kind = atom.kind if c > 0 else ("max" if atom.kind == "min" else "min")
            return kind, [rest + c * a for a in atom.args]
    return None


def _extreme_of(kind: str, parts: list, x: Q, lo: int):
    return residues._extreme(min if kind == "min" else max, [compile_q(p, x, lo) for p in parts])


def rewrite(v, rule: tuple):
    """As domain._rewrite: under x = d*k + c (rule: ((x, d, c), ...)), each division atom in x alone whose
    quasi-period divides d is the linear function it equals there; the result is expanded, as sympy's is."""
    names = {next(iter(x.names)) for x, _, _ in rule}
    if not isinstance(v, Q) or not (v.names & names):
        return v
    out = _replaced(v, rule)
    return Q(out.terms, True) if isinstance(out, Q) else out


def _replaced(v, rule: tuple):
    if not isinstance(v, Q):
        return v
    total = 0
    for mono, c in v.terms.items():
        value = c
        for atom, e in mono:
            value = value * _replaced_atom(atom, rule) ** e
        total = total + value
    return total


@lru_cache(maxsize=4096)
def _replaced_atom(atom: Atom, rule: tuple):
    if atom.kind == "var":
        return quasi.var(atom.args[0])
    linear = _linear(atom, rule)
    if linear is not None:
        return linear
    if atom.kind in ("floor", "ceil"):
        divide = quasi.floordiv if atom.kind == "floor" else quasi.ceildiv
        return divide(_replaced(atom.args[0], rule), atom.args[1])
    return quasi.extreme(atom.kind, *(_replaced(a, rule) for a in atom.args))


def _linear(atom: Atom, rule: tuple):
    whole = Q({((atom, 1),): Fraction(1)}, True)
    for x, d, c in rule:
        if whole.names != x.names:
            continue
        try:
            f = compile_q(whole, x)
        except residues.Unsupported:
            return None
        if f.period is not None and d % f.period == 0:
            return f.slope * x + (f.at(c) - f.slope * c)
    return None
