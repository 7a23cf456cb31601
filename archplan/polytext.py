"""Expanded polynomials with rational coefficients, printed exactly as archplan.symbols prints them, without sympy.

A polynomial is a dict {monomial: coefficient}: a monomial a tuple of (generator, exponent) pairs in any order
(() is the constant term), a coefficient a nonzero int or Fraction. A generator is a symbol name, or (kind,
inner, q) for symbols.FloorDiv(P, q) ("floor") or CeilDiv(P, q) ("ceil"): q an int >= 2, inner P as a tuple of
(monomial, integer coefficient) pairs, in the normal form FloorDiv.eval leaves alone (generator_is_normal).
The text matches symbols.to_str (or to_parsable) of the sympy expression (integer, positive symbols):

- The sort key of every part mirrors sympy's sort_key: symbols (class key (2, 0)) come before products
  (3, 0), sums (3, 1) and the functions CeilDiv, then FloorDiv (4, 10000, name); two divisions of one kind
  compare by the key of P, then by q; a power compares as its base, then by exponent, then by coefficient.
- Expr.as_ordered_terms sorts the generators of a sum by that key, indexes an exponent vector per term, and
  puts the terms in decreasing lexicographic order of the vectors (the constant last); except that a
  positive constant plus a negative multiple of a single power (c - k*X**e) puts the constant first.
- A product prints its coefficient's numerator (unless 1), its factors sorted by key, then "/q".
- floor(P/q) prints P/q as sympy computes it: a sum P spreads the rational over its terms (H/4 + W/4).
- symbols._tidy runs factor_terms on each product term (and on a lone product): it leaves the product as
  it is but rewrites every division inside it, at any depth, pulling the content of P (negated when every
  coefficient is negative) and the common factor of its terms: 3*floor(H*(W + 1)/4) for 3*FloorDiv(H*W + H,
  4), 2*floor((H + 1)/2) for 2*FloorDiv(2*H + 2, 4), where a bare floor(H*W/4 + H/4) keeps its sum.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

from .batch import SYMPY_NAMES

_NUMBER, _SYMBOL, _MUL, _ADD = (1, 0, "Number"), (2, 0, "Symbol"), (3, 0, "Mul"), (3, 1, "Add")
_DIVISIONS = {"floor": ((4, 10000, "FloorDiv"), "floor"), "ceil": ((4, 10000, "CeilDiv"), "ceiling")}


def parsable_names_known(names) -> bool:
    """True when sympy's reading of every name is known without sympy: names of 1 or 2 characters, which
    SYMPY_NAMES lists exhaustively. Longer names may be anything sympy exports (beta, seq, ...): False."""
    return all(len(name) <= 2 for name in names)


def _name(name: str, parsable: bool) -> str:
    """A symbol as printed; Symbol('N') when sympify would read the name as sympy's own object."""
    if not parsable:
        return name
    if not parsable_names_known([name]):
        raise ValueError(f"cannot tell without sympy whether sympify reads {name!r} as a symbol")
    return f"Symbol('{name}')" if name in SYMPY_NAMES else name


# -- canonical form: a monomial is a frozenset of (generator, exponent), a polynomial of (monomial, Fraction) --
@lru_cache(maxsize=4096)
def _gen(gen):
    if isinstance(gen, str):
        return gen
    kind, inner, q = gen
    if kind not in _DIVISIONS or not isinstance(q, int) or q < 2:
        raise ValueError(f"not a division generator: {gen!r}")
    poly = _poly(inner)
    if not poly or any(c.denominator != 1 for _, c in poly):
        raise ValueError(f"a division of a polynomial with integer coefficients, not {inner!r}")
    return kind, poly, q


def _mono(mono) -> frozenset:
    return frozenset((_gen(g), int(e)) for g, e in mono)


def _poly(pairs) -> frozenset:
    sums: dict = {}
    for mono, c in pairs:
        m = _mono(mono)
        sums[m] = sums.get(m, 0) + Fraction(c)
    return frozenset((m, c) for m, c in sums.items() if c)


@lru_cache(maxsize=4096)
def generator_is_normal(gen) -> bool:
    """Whether FloorDiv/CeilDiv(P, q) would stay as it is (and so do the divisions inside P), by the rules of
    FloorDiv.eval: no integer P, no nested division of the same kind alone, no term that q divides, a
    constant in 0..q-1 that is not q-1 (floor) or 1 (ceiling)."""
    try:
        gen = _gen(gen)
    except (ValueError, TypeError):
        return False
    if isinstance(gen, str):
        return True
    kind, poly, q = gen
    if all(not m for m, _ in poly) or any(not generator_is_normal(g) for m, _ in poly for g, _ in m):
        return False
    ((mono, c), *others) = poly
    if not others and c == 1 and len(mono) == 1:
        ((g, e),) = mono
        if e == 1 and not isinstance(g, str) and g[0] == kind:  # FloorDiv(FloorDiv(P, a), b) merges
            return False
    const = sum((c for m, c in poly if not m), Fraction(0))
    if any(m and c % q == 0 for m, c in poly) or not 0 <= const < q:
        return False
    return const != (q - 1 if kind == "floor" else 1)


# -- sympy's sort keys ----------------------------------------------------------------------------------------
def _number_key(x):
    return (_NUMBER, (0, ()), (), x)


_ONE = _number_key(1)  # the exponent key of a plain factor


@lru_cache(maxsize=4096)
def _gen_key(gen):
    if isinstance(gen, str):
        return (_SYMBOL, (1, (gen,)), _ONE, 1)
    kind, inner, q = gen
    return (_DIVISIONS[kind][0], (2, (_inner_key(inner), _number_key(q))), _ONE, 1)


def _factor_key(gen, e, coeff=1):
    cls, args = _gen_key(gen)[:2]
    return (cls, args, _number_key(e), coeff)


def _term_key(mono, coeff):
    if not mono:
        return _number_key(coeff)
    if len(mono) == 1:
        ((gen, e),) = mono
        return _factor_key(gen, e, coeff)
    return _mul_key([_factor_key(g, e) for g, e in mono], coeff)


def _mul_key(keys: list, coeff):
    return (_MUL, (len(keys), tuple(sorted(keys))), _ONE, coeff)


@lru_cache(maxsize=4096)
def _poly_key(poly, coeff=1):
    """The key of the sum (times coeff, as an unevaluated Mul(coeff, sum) has), or of its single term."""
    terms = _ordered(poly)
    if len(terms) == 1:
        return _term_key(*terms[0])
    return (_ADD, (len(terms), tuple(_term_key(m, c) for m, c in terms)), _ONE, coeff)


def _inner_key(inner):
    if isinstance(inner, frozenset):
        return _poly_key(inner)
    _, content, common, rest = inner
    if not common:
        return _poly_key(rest, content)
    return _mul_key([_factor_key(g, e) for g, e in common] + [_poly_key(rest)], content)


@lru_cache(maxsize=4096)
def _ordered(poly: frozenset) -> tuple:
    """The (monomial, coefficient) pairs of a sum in the order of Expr.as_ordered_terms."""
    gens = sorted({g for mono, _ in poly for g, _ in mono}, key=_gen_key)
    index = {g: i for i, g in enumerate(gens)}

    def vector(mono):
        exponents = [0] * len(gens)
        for g, e in mono:
            exponents[index[g]] = e
        return tuple(exponents)

    ordered = sorted(poly, key=lambda term: vector(term[0]), reverse=True)
    if len(ordered) == 2:
        (mono, coeff), (last, constant) = ordered
        if not last and constant > 0 and len(mono) == 1 and coeff < 0:
            ordered.reverse()  # c - k*X**e prints as `1 - H`, not `-H + 1`
    return tuple(ordered)


# -- symbols._tidy: factor_terms on a product rewrites the divisions inside it ---------------------------------
@lru_cache(maxsize=4096)
def _tidy_gen(gen):
    if isinstance(gen, str):
        return gen
    kind, inner, q = gen
    return kind, _tidy_inner(inner), q


def _tidy_mono(mono: frozenset) -> frozenset:  # factor_terms reaches every division, at any depth
    return frozenset((_tidy_gen(g), e) for g, e in mono)


def _tidy_inner(poly: frozenset):
    """factor_terms(P): P itself, or ("factored", content, common factor, primitive rest) for
    content*common*rest, the content negative when every coefficient is."""
    poly = frozenset((_tidy_mono(m), c) for m, c in poly)
    if len(poly) == 1:
        return poly
    content = math.gcd(*(int(c) for _, c in poly))
    if all(c < 0 for _, c in poly):
        content = -content
    monos = [dict(m) for m, _ in poly]
    common = {g: min(m[g] for m in monos) for g in set(monos[0]).intersection(*monos[1:])}
    rest = frozenset(
        (frozenset((g, e - common.get(g, 0)) for g, e in m if e != common.get(g, 0)), c / content) for m, c in poly
    )
    return rest if content == 1 and not common else ("factored", content, frozenset(common.items()), rest)


# -- text ------------------------------------------------------------------------------------------------------
def _gen_text(gen, parsable: bool) -> str:
    if isinstance(gen, str):
        return _name(gen, parsable)
    kind, inner, q = gen
    return f"{_DIVISIONS[kind][1]}({_inner_text(inner, q, parsable)})"


def _factors(mono, parsable: bool) -> list:
    """(key, text) per factor of a monomial."""
    return [(_factor_key(g, e), _gen_text(g, parsable) + ("" if e == 1 else f"**{e}")) for g, e in mono]


def _product(coeff: Fraction, factors: list) -> str:
    """StrPrinter's Mul: sign, the numerator unless 1, the factors sorted by key, /denominator."""
    p, q = abs(coeff.numerator), coeff.denominator
    text = "*".join(([str(p)] if p != 1 or not factors else []) + [t for _, t in sorted(factors, key=lambda f: f[0])])
    return ("-" if coeff < 0 else "") + (text if q == 1 else f"{text}/{q}")


def _inner_text(inner, q: int, parsable: bool) -> str:
    """P/q as sympy computes and prints it: a sum takes the rational into its terms, a product keeps it."""
    if isinstance(inner, frozenset):
        return _poly_text(frozenset((m, c / q) for m, c in inner), parsable)
    _, content, common, rest = inner
    factors = _factors(common, parsable) + [(_poly_key(rest), f"({_poly_text(rest, parsable)})")]
    return _product(Fraction(content, q), factors)


def _poly_text(poly: frozenset, parsable: bool) -> str:
    parts = []
    for mono, coeff in _ordered(poly):
        text = _product(coeff, _factors(mono, parsable))
        parts.append(text if not parts else f" - {text[1:]}" if coeff < 0 else f" + {text}")
    return "".join(parts) or "0"


def _shown(mono: frozenset, coeff) -> frozenset:
    """The monomial as _tidy leaves it: a product (two factors, or a coefficient other than 1) is tidied."""
    return _tidy_mono(mono) if len(mono) > 1 or (mono and coeff != 1) else mono


def monomial_text(mono, parsable: bool = False) -> str:
    """H*N*W, H**2*W, N*floor(H/4): the factors of a monic monomial as sympy prints their product."""
    return _product(Fraction(1), _factors(_shown(_mono(mono), 1), parsable)) if mono else ""


def _canonical_terms(terms: dict) -> dict:
    """{shown monomial: (the caller's monomial with its pairs in factor order, the summed coefficient)}."""
    sums: dict = {}
    given: dict = {}
    for mono, c in terms.items():
        m = _mono(mono)
        given.setdefault(m, mono)
        sums[m] = sums.get(m, 0) + Fraction(c)
    order = lambda f: _factor_key(_gen(f[0]), f[1])  # noqa: E731
    return {_shown(m, c): (tuple(sorted(given[m], key=order)), c) for m, c in sums.items() if c}


def ordered_terms(terms: dict) -> list:
    """The (monomial, coefficient) pairs in the order sympy prints the sum."""
    shown = _canonical_terms(terms)
    return [shown[m] for m, _ in _ordered(frozenset((m, c) for m, (_, c) in shown.items()))]


def poly_str(terms: dict, parsable: bool = False) -> str:
    """The polynomial as symbols.to_str (or to_parsable) prints it: H*W + 2*H + 1, -H/2 + W, 1 - H."""
    return _poly_text(frozenset((m, c) for m, (_, c) in _canonical_terms(terms).items()), parsable)
