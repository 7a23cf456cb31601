"""archplan.polytext prints expanded polynomials exactly as archplan.symbols prints the sympy expression."""

import os
import string
import subprocess
import sys
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import sympy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from archplan import symbols
from archplan.polytext import generator_is_normal, monomial_text, ordered_terms, parsable_names_known, poly_str
from archplan.symbols import CeilDiv, FloorDiv

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("POLYTEXT_EXAMPLES", "300"))
POOL = ["N", "H", "W", "L", "T", "C", "h", "x1", "x10", "a_b", "seq", "E", "S", "I", "Q", "beta", "W2", "W10", "a_1"]


def _expr(terms: dict):
    return sympy.expand(
        sympy.Add(
            *[
                sympy.Rational(Fraction(c).numerator, Fraction(c).denominator)
                * sympy.Mul(*[symbols.symbol(n) ** e for n, e in mono])
                for mono, c in terms.items()
            ]
        )
    )


def _names(terms: dict) -> set:
    return {n for mono in terms for n, _ in mono}


def _check(terms: dict) -> None:
    expr = _expr(terms)
    assert poly_str(terms) == symbols.to_str(expr), terms
    if parsable_names_known(_names(terms)):
        assert poly_str(terms, parsable=True) == symbols.to_parsable(expr), terms


def _monomials(draw_names):
    exponents = st.dictionaries(st.sampled_from(draw_names), st.integers(1, 3), max_size=4)
    return exponents.map(lambda d: tuple(sorted(d.items())))


_coefficients = st.one_of(
    st.builds(Fraction, st.integers(-(10**12), 10**12), st.integers(1, 64)),
    st.integers(-(2**63), 2**63),
    st.integers(-3, 3),
    st.sampled_from([Fraction(1, 2), Fraction(-1, 2), Fraction(3, 2), Fraction(-3, 4)]),
).filter(lambda c: c != 0)


@st.composite
def _polynomials(draw, max_terms: int = 6):
    pool = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=4, unique=True))
    return draw(st.dictionaries(_monomials(pool), _coefficients, min_size=1, max_size=max_terms))


@settings(max_examples=EXAMPLES, deadline=None)
@given(_polynomials())
def test_random_polynomials_print_as_sympy_prints_them(terms):
    _check(terms)


@settings(max_examples=EXAMPLES, deadline=None)
@given(_polynomials(max_terms=2))
def test_short_sums_print_as_sympy_prints_them(terms):
    _check(terms)


def _poly(text: str) -> dict:
    """{monomial: coefficient} of a formula, read with sympy (test helper only)."""
    expr = sympy.expand(sympy.sympify(text, locals={n: symbols.symbol(n) for n in POOL}))
    gens = sorted(expr.free_symbols, key=lambda s: s.name)
    if not gens:
        return {(): Fraction(str(expr))} if expr != 0 else {}
    poly = sympy.Poly(expr, *gens)
    return {
        tuple((g.name, e) for g, e in zip(gens, exps) if e): Fraction(int(c.p), int(c.q)) for exps, c in poly.terms()
    }


def test_hand_written_cases():
    cases = [
        "H*W + 2*H + 1",
        "-H/2 + W",
        "1 - H",
        "-H + 1",
        "1 - 2*H",
        "1 - H**2",
        "1/2 - 3*H/4",
        "-H*W + 1",
        "-H - 1",
        "H**2 - 3*H*W + W**2 - 7",
        "H/2",
        "3*H/2",
        "-H/2",
        "H*W/4",
        "3*H**2*W/8",
        "1/2",
        "-1/2",
        "432*H*N*W",
        "H**2",
        "-H",
        "H",
        "9223372036854775808*H*W - 9223372036854775807",
        "h*H + H + h",
        "W2 + W10*W2 + a_1",
        "x1*x10 - 5*x1/3 + x10",
        "N*E*S*I*Q + beta*seq - 1",
        "0",
    ]
    for text in cases:
        terms = _poly(text)
        _check(terms)
        assert poly_str(terms) == symbols.to_str(_expr(terms))
    assert poly_str({(("H", 1), ("W", 1)): 1, (("H", 1),): 2, (): 1}) == "H*W + 2*H + 1"
    assert poly_str({(("H", 1),): Fraction(-1, 2), (("W", 1),): 1}) == "-H/2 + W"
    assert poly_str({(("H", 1),): -1, (): 1}) == "1 - H"
    assert poly_str({(("H", 1), ("W", 1)): -1, (): 1}) == "-H*W + 1"
    assert poly_str({(("H", 2), ("W", 1)): Fraction(3, 8)}) == "3*H**2*W/8"
    assert poly_str({(): Fraction(1, 2)}) == "1/2"
    assert poly_str({}) == "0"
    assert poly_str({(("H", 1), ("N", 1), ("W", 1)): 432}, parsable=True) == "432*H*Symbol('N')*W"
    assert monomial_text((("H", 1), ("N", 1), ("W", 1))) == "H*N*W"
    assert monomial_text((("H", 2), ("W", 1))) == "H**2*W"


@settings(max_examples=100, deadline=None)
@given(_monomials(POOL).filter(bool))
def test_monomial_text_is_sympys(mono):
    assert monomial_text(mono) == symbols.to_str(sympy.Mul(*[symbols.symbol(n) ** e for n, e in mono]))


def test_parsable_names_known_keeps_its_promise():
    first = string.ascii_letters + "_"
    names = set(first) | {a + b for a in first for b in string.ascii_letters + string.digits + "_"}
    assert all(parsable_names_known([n]) for n in names)
    for name in names:  # every short name printed Symbol('...') exactly when sympify would misread it
        wrapped = poly_str({((name, 1),): 1}, parsable=True) == f"Symbol('{name}')"
        assert wrapped == symbols._clashes(name), name
    assert not parsable_names_known(["beta"])
    assert not parsable_names_known(["H", "seq"])


def test_importing_polytext_does_not_import_sympy():
    code = "import sys, archplan.polytext\nprint('sympy' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# -- generators that are integer divisions: (kind, inner polynomial, q) ----------------------------------------
NAMES = ["N", "H", "W", "L", "T", "E", "S"]
_DIVISION = {"floor": FloorDiv, "ceil": CeilDiv}


def _gen_expr(gen):
    if isinstance(gen, str):
        return symbols.symbol(gen)
    kind, inner, q = gen
    return _DIVISION[kind](_sum_expr(inner), q)


def _sum_expr(pairs, expand: bool = True) -> sympy.Expr:
    """The sum of (monomial, coefficient) pairs over any generators, expanded for the P of a division."""
    terms = [
        sympy.Rational(Fraction(c).numerator, Fraction(c).denominator)
        * sympy.Mul(*[_gen_expr(g) ** e for g, e in mono])
        for mono, c in pairs
    ]
    return sympy.expand(sympy.Add(*terms)) if expand else sympy.Add(*terms)


@lru_cache(maxsize=None)
def _normal(gen) -> bool:
    """FloorDiv/CeilDiv(P, q) stays as built, and so do the divisions inside P."""
    if isinstance(gen, str):
        return True
    kind, inner, q = gen
    if not all(_normal(g) for mono, _ in inner for g, _ in mono):
        return False
    p = _sum_expr(inner)
    built = _DIVISION[kind](p, q)
    return isinstance(built, _DIVISION[kind]) and built.args == (p, sympy.Integer(q))


def _gen_names(gen) -> set:
    return {gen} if isinstance(gen, str) else {n for mono, _ in gen[1] for g, _ in mono for n in _gen_names(g)}


def _check_general(terms: dict) -> None:
    expr = _sum_expr(terms.items(), expand=False)
    assert poly_str(terms) == symbols.to_str(expr), terms
    names = {n for mono in terms for g, _ in mono for n in _gen_names(g)}
    if parsable_names_known(names):
        assert poly_str(terms, parsable=True) == symbols.to_parsable(expr), terms


_SMALL = st.sampled_from(NAMES[:4])
_inner_coefficients = st.one_of(st.sampled_from([1, 2, 3, 4, 6, -1, -2, -3]), st.integers(-40, 40).filter(bool))


@st.composite
def _divisions(draw, depth: int):
    """A division in normal form: no coefficient that q divides, a constant that FloorDiv.eval keeps; now and
    then (up to depth levels down) a division inside."""
    kind = draw(st.sampled_from(["floor", "ceil"]))
    q = draw(st.one_of(st.sampled_from([2, 3, 4, 8, 16, 32]), st.integers(2, 32)))
    terms: dict = {}
    for _ in range(draw(st.integers(1, 2))):
        mono: dict = {}
        for _ in range(draw(st.integers(1, 2))):
            nested = depth and draw(st.integers(0, 4)) == 0
            mono.setdefault(draw(_divisions(depth - 1) if nested else _SMALL), draw(st.integers(1, 2)))
        c = draw(_inner_coefficients)
        terms.setdefault(frozenset(mono.items()), c + 1 if c % q == 0 else c)
    constant = draw(st.integers(0, q - 2))  # floor: 0..q-2; ceil: 0, 2..q-1
    if constant and (len(terms) == 1 or draw(st.booleans())):
        terms[frozenset()] = constant + 1 if kind == "ceil" else constant
    gen = (kind, tuple(draw(st.permutations([(tuple(m), c) for m, c in terms.items()]))), q)
    assume(_normal(gen))
    return gen


_generators = st.one_of(st.sampled_from(NAMES), _divisions(0), _divisions(1), _divisions(2))


@st.composite
def _general_polynomials(draw, max_terms: int = 6):
    pool = draw(st.lists(_generators, min_size=1, max_size=3, unique=True))
    mono = st.lists(st.tuples(st.sampled_from(pool), st.integers(1, 3)), max_size=3, unique_by=lambda f: f[0])
    monos = mono.flatmap(st.permutations).map(tuple)
    return draw(st.dictionaries(monos, _coefficients, min_size=1, max_size=max_terms))


@settings(max_examples=EXAMPLES, deadline=None)
@given(_general_polynomials())
def test_polynomials_with_divisions_print_as_sympy_prints_them(terms):
    _check_general(terms)


@settings(max_examples=EXAMPLES, deadline=None)
@given(_general_polynomials(max_terms=2))
def test_short_sums_with_divisions_print_as_sympy_prints_them(terms):
    _check_general(terms)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.tuples(_generators, st.integers(1, 3)), min_size=1, max_size=4, unique_by=lambda f: f[0]))
def test_monomial_text_with_divisions_is_sympys(mono):
    expr = sympy.Mul(*[_gen_expr(g) ** e for g, e in mono])
    assert monomial_text(tuple(mono)) == symbols.to_str(expr), mono
    assert all(generator_is_normal(g) for g, _ in mono)


def _fl(q: int, **inner):
    """floor(P/q) for P given as name=coefficient (ONE= the constant, a '_' joins the factors of a product)."""
    return ("floor", tuple((tuple((n, 1) for n in k.split("_")) if k != "ONE" else (), c) for k, c in inner.items()), q)


def _ce(q: int, **inner):
    return ("ceil", *_fl(q, **inner)[1:])


def test_hand_written_divisions():
    h4, w4, h2 = _fl(4, H=1), _fl(4, W=1), _fl(2, H=1)
    hw = _fl(4, H_W=1, H=1)
    cases = [
        ({(("N", 1), (h4, 1), (w4, 1)): 4608}, "4608*N*floor(H/4)*floor(W/4)"),
        ({((h4, 1), (_ce(2, H=1), 1)): 1}, "ceiling(H/2)*floor(H/4)"),
        ({((h2, 2),): 1}, "floor(H/2)**2"),
        ({((_fl(16, H=1), 1), (_fl(16, W=1), 1)): 1, (): 1}, "floor(H/16)*floor(W/16) + 1"),
        ({((h2, 1),): 1, (("H", 1),): 1}, "H + floor(H/2)"),
        (
            {((_fl(q, H=1), 1),): 1 for q in (8, 2, 4)} | {((_ce(3, H=1), 1),): 1},
            "ceiling(H/3) + floor(H/2) + floor(H/4) + floor(H/8)",
        ),
        ({((_fl(4, H=1, W=1), 1),): 1}, "floor(H/4 + W/4)"),
        ({((_fl(16, H_W=1), 1),): 1}, "floor(H*W/16)"),
        ({((("floor", ((((_ce(2, H=1), 1),), 1),), 2), 1),): 1}, "floor(ceiling(H/2)/2)"),
        ({((("floor", ((((_ce(2, H=1), 1),), 1), ((("W", 1),), 1)), 2), 1),): 1}, "floor(W/2 + ceiling(H/2)/2)"),
        ({((h2, 1),): 2}, "2*floor(H/2)"),
        ({((_ce(4, H=1), 1),): Fraction(3, 2)}, "3*ceiling(H/4)/2"),
        ({((_fl(4, H=2, W=2), 1),): 3}, "3*floor((H + W)/2)"),  # factor_terms rewrites inside a product
        ({((_fl(4, H=2, W=2), 1),): 1}, "floor(H/2 + W/2)"),  # but a lone division stays
        ({((hw, 1),): 3}, "3*floor(H*(W + 1)/4)"),
        ({((hw, 1),): 1}, "floor(H*W/4 + H/4)"),
        ({((hw, 1),): 1, ((hw, 1), ("W", 1)): 2}, "2*W*floor(H*(W + 1)/4) + floor(H*W/4 + H/4)"),
        ({((h2, 1),): -1, (): 1}, "1 - floor(H/2)"),
        ({((h2, 1),): -2, (): 1}, "1 - 2*floor(H/2)"),
        ({((h2, 1),): -1}, "-floor(H/2)"),
        ({((_fl(3, H=-1, W=-1), 1),): 2}, "2*floor(-(H + W)/3)"),
        ({((_fl(3, H=1, W=-1), 1),): 2}, "2*floor(H/3 - W/3)"),
        ({((_fl(4, H=2, ONE=2), 1),): 2}, "2*floor((H + 1)/2)"),
        ({((_fl(3, H_W=1, W=1), 1), ("H", 1)): 1}, "H*floor(W*(H + 1)/3)"),
        ({((_ce(5, N_H=2, N=4, ONE=3), 1),): -7}, "-7*ceiling(2*H*N/5 + 4*N/5 + 3/5)"),
        ({((_ce(5, N_H=2, N=4), 1),): -7}, "-7*ceiling(2*N*(H + 2)/5)"),
    ]
    for terms, text in cases:
        assert poly_str(terms) == text
        _check_general(terms)
        assert all(generator_is_normal(g) for mono in terms for g, _ in mono)
    assert poly_str({((h4, 1), ("N", 1)): 2}, parsable=True) == "2*Symbol('N')*floor(H/4)"
    assert poly_str({((_fl(4, N_H=1, N=1), 1), ("W", 1)): 1}, parsable=True) == "W*floor(Symbol('N')*(H + 1)/4)"
    assert monomial_text(((hw, 1), ("W", 1))) == "W*floor(H*(W + 1)/4)"
    assert monomial_text(((hw, 1),)) == "floor(H*W/4 + H/4)"
    assert ordered_terms({(("W", 1), (h2, 1)): 1, (("H", 1),): 3, (): 1}) == [
        ((("H", 1),), 3),
        ((("W", 1), (h2, 1)), 1),
        ((), 1),
    ]
    assert not generator_is_normal(_fl(4, H=1, ONE=3))  # FloorDiv turns it into CeilDiv(H, 4)
    assert not generator_is_normal(_fl(2, H=2, W=1))  # pulls out H
    assert not generator_is_normal(("floor", ((((h2, 1),), 1),), 2))  # merges into floor(H/4)


@settings(max_examples=100, deadline=None)
@given(_divisions(1), st.integers(-3, 40), st.integers(2, 8))
def test_generator_is_normal_agrees_with_sympy(gen, constant, q):
    """True on the generators drawn here; as sympy says once a constant and another q may make it evaluate."""
    assert generator_is_normal(gen)
    raw = (gen[0], (*gen[1], ((), constant)), q)
    assert generator_is_normal(raw) == _normal(raw), raw
