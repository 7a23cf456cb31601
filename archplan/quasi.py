"""Symbolic sizes without sympy: expanded polynomials over symbols and integer divisions.

Importing sympy costs 0.4-0.5 s, more than analysing most nets. A net with free sizes (H, W, L) is first
analysed with these light formulas: a Q is a sum of rational multiples of monomials whose factors are
symbols or opaque atoms (floor/ceiling of a Q by a positive integer, Min, Max). Division rules mirror
symbols.FloorDiv/CeilDiv, so an atom survives here whenever sympy keeps one.

The light analysis is accepted only when the answer is one sympy would print the same way
(quasi_text.accept): every figure held as sympy holds it (`flat`: a sum of monomials, not a product of
sums), with no Min or Max left, and no error reported. Anything else (a sympy method asked of a Q, a rule
this module does not know) raises NotQuasi, and the net is analysed with sympy.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache


class NotQuasi(Exception):
    """The light formulas do not cover this net: analyse it with sympy."""


class Atom:
    """A factor of a monomial: a symbol, floor/ceil(Q / q), or min/max of values."""

    __slots__ = ("kind", "args", "key", "depth", "_hash")

    def __init__(self, kind: str, args: tuple):
        self.kind, self.args = kind, args
        self.key = args[0] if kind == "var" else f"{kind}({', '.join(_text(a) for a in args)})"
        self.depth = 0 if kind == "var" else 1 + max(a.depth if isinstance(a, Q) else 0 for a in args)
        self._hash = hash((kind, args))

    def __eq__(self, other):
        return isinstance(other, Atom) and self.kind == other.kind and self.args == other.args

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return self.key


def _text(value) -> str:
    return repr(value) if isinstance(value, Q) else str(value)


class Q:
    """sum(coefficient * monomial); a monomial is a tuple of (Atom, exponent) sorted by atom key.

    `flat`: sympy would hold the same value as a flat sum of monomials (it keeps H*(W - 2) unexpanded)."""

    __slots__ = ("terms", "flat", "_hash")

    def __init__(self, terms: dict, flat: bool):
        self.terms, self.flat = terms, flat
        self._hash = None

    # -- what analysis code may ask of a size ------------------------------------------------------------
    @property
    def is_integer(self):
        """True when every coefficient is whole (atoms are integers); None otherwise, as sympy says of H/2."""
        return True if all(c.denominator == 1 for c in self.terms.values()) else None

    @property
    def names(self) -> frozenset:
        return _names(self)

    @property
    def is_monomial(self) -> bool:
        return len(self.terms) == 1 and () not in self.terms

    @property
    def depth(self) -> int:
        """How deeply divisions, Min and Max nest in it (limits.MAX_NESTING)."""
        return max((a.depth for mono in self.terms for a, _ in mono), default=0)

    def atoms(self) -> set:
        return {a for mono in self.terms for a, _ in mono if a.kind != "var"}

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotQuasi(f"a light formula was asked for {name}")

    def __eq__(self, other):
        """Flat formulas are equal when their terms are (sympy's canonical sums are); one sympy holds in
        another form (a product of sums) only equals itself: sympy might tell two such forms apart."""
        if not isinstance(other, Q):
            return False
        return self is other or (self.flat and other.flat and self.terms == other.terms)

    def __hash__(self):
        if self._hash is None:
            self._hash = hash(frozenset(self.terms.items())) if self.flat else id(self)
        return self._hash

    def __bool__(self):
        return True  # never a constant (constants are ints), as a sympy expression is truthy

    def __repr__(self):
        """A canonical text (atoms' keys are built from it, so equal formulas give equal keys)."""
        parts = (f"{c}*{'*'.join(f'{a.key}**{e}' for a, e in m) or 1}" for m, c in self.terms.items())
        return " + ".join(sorted(parts))

    def __str__(self):
        from .quasi_text import text

        return text(self)

    def __lt__(self, other):
        return Relation(add(other, scale(self, -1)), True)

    def __le__(self, other):
        return Relation(add(other, scale(self, -1)), False)

    def __gt__(self, other):
        return Relation(add(self, scale(other, -1)), True)

    def __ge__(self, other):
        return Relation(add(self, scale(other, -1)), False)

    def __int__(self):
        raise NotQuasi("a light formula was used as a number")

    __index__ = __float__ = __int__

    # -- arithmetic ------------------------------------------------------------------------------------
    def __add__(self, other):
        return add(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        return add(self, scale(other, -1))

    def __rsub__(self, other):
        return add(other, scale(self, -1))

    def __neg__(self):
        return scale(self, -1)

    def __mul__(self, other):
        return mul(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if not _is_number(other) or other == 0:
            raise NotQuasi("a light formula was divided by a formula")
        return scale(self, Fraction(1, other) if isinstance(other, int) else 1 / other)

    def __rtruediv__(self, other):
        raise NotQuasi("a number was divided by a light formula")

    def __floordiv__(self, other):
        return floordiv(self, other)

    def __rfloordiv__(self, other):
        return floordiv(other, self)

    def __mod__(self, other):
        return mod(self, other)

    def __rmod__(self, other):
        return mod(other, self)

    def __pow__(self, n):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0 or n > 64:
            raise NotQuasi("a light formula was raised to a power other than 0-64")
        out = 1
        for _ in range(n):
            out = mul(out, self)
        return out


class Relation:
    """diff > 0 (strict) or diff >= 0: only dims.decide reads one; anything else asked of it needs sympy."""

    __slots__ = ("diff", "strict")

    def __init__(self, diff, strict: bool):
        self.diff, self.strict = diff, strict

    def __bool__(self):
        raise NotQuasi("a comparison of light formulas used as a truth value")

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotQuasi(f"a comparison of light formulas was asked for {name}")


@lru_cache(maxsize=None)
def var(name: str) -> Q:
    return Q({((Atom("var", (name,)), 1),): 1}, True)


def _is_number(x) -> bool:
    return isinstance(x, (int, Fraction)) and not isinstance(x, bool)


def _terms(x) -> dict:
    if isinstance(x, Q):
        return x.terms
    if _is_number(x):
        return {(): x} if x else {}
    raise NotQuasi(f"a light formula met {type(x).__name__}")


def _make(terms: dict, flat: bool):
    """A Q of the nonzero terms (whole coefficients as ints); an int when only a constant is left."""
    out = {}
    for m, c in terms.items():
        if type(c) is not int and type(c) is not Fraction:
            raise NotQuasi(f"a coefficient of type {type(c).__name__}")
        if c:
            out[m] = c.numerator if type(c) is Fraction and c.denominator == 1 else c
    if len(out) == (1 if () in out else 0):
        c = out.get((), 0)
        if c.denominator != 1:
            raise NotQuasi("a constant fraction")  # sympy's Rational takes other paths than a Fraction
        return c
    return Q(out, flat)


def _flat(x) -> bool:
    return x.flat if isinstance(x, Q) else True


@lru_cache(maxsize=8192, typed=True)
def add(a, b):
    terms = dict(_terms(a))
    for m, c in _terms(b).items():
        terms[m] = terms.get(m, 0) + c
    return _make(terms, _flat(a) and _flat(b))


def scale(a, k):
    if not isinstance(a, Q):
        return _make({m: c * k for m, c in _terms(a).items()}, True)
    return _make({m: c * k for m, c in a.terms.items()}, a.flat)


@lru_cache(maxsize=8192)
def _mono_mul(m1: tuple, m2: tuple) -> tuple:
    powers = dict(m1)
    for atom, e in m2:
        powers[atom] = powers.get(atom, 0) + e
    return tuple(sorted(powers.items(), key=lambda p: p[0].key))


@lru_cache(maxsize=8192, typed=True)
def mul(a, b):
    if not isinstance(a, Q) or not isinstance(b, Q):
        q, k = (a, b) if isinstance(a, Q) else (b, a)
        return scale(q, _number(k))
    terms: dict = {}
    for m1, c1 in a.terms.items():
        for m2, c2 in b.terms.items():
            m = _mono_mul(m1, m2)
            terms[m] = terms.get(m, 0) + c1 * c2
    return _make(terms, a.is_monomial and b.is_monomial)  # sympy keeps H*(W - 2) a product


def _number(x):
    if not _is_number(x):
        raise NotQuasi(f"a light formula met {type(x).__name__}")
    return x


def _names(x) -> frozenset:
    if not isinstance(x, Q):
        return frozenset()
    out = set()
    for m in x.terms:
        for atom, _ in m:
            if atom.kind == "var":
                out.add(atom.args[0])
            else:
                for arg in atom.args:
                    out |= _names(arg)
    return frozenset(out)


# -- integer divisions, as symbols.FloorDiv / CeilDiv evaluate ---------------------------------------------
def _atom(kind: str, *args):
    return Q({((Atom(kind, args), 1),): 1}, True)


def _split(p, q: int):
    """p = q*whole + rest: the constant's multiple and every whole term divisible by q (p flat: its terms
    are sympy's terms)."""
    whole, rest = {}, {}
    for m, c in _terms(p).items():
        if m == () and c.denominator == 1:
            whole[m], rest[m] = int(c) // q, int(c) % q
        elif c.denominator == 1 and int(c) % q == 0:
            whole[m] = int(c) // q
        else:
            rest[m] = c
    return _make(whole, True), _make(rest, True)


def _single_atom(p, kind: str):
    if isinstance(p, Q) and p.is_monomial:
        ((m, c),) = p.terms.items()
        if c == 1 and len(m) == 1 and m[0][1] == 1 and m[0][0].kind == kind:
            return m[0][0]
    return None


def _divisor(q) -> int:
    if isinstance(q, bool) or not isinstance(q, int) or q <= 0:
        raise NotQuasi("a division by something other than a positive integer")
    return q


def floordiv(p, q):
    q = _divisor(q)
    if not isinstance(p, Q):
        return _integer(p) // q
    if q == 1 and p.is_integer:
        return p
    nested = _single_atom(p, "floor")
    if nested is not None:
        return floordiv(nested.args[0], nested.args[1] * q)
    if not p.flat:
        return _atom("floor", p, q)
    whole, rest = _split(p, q)
    if whole != 0:
        return add(whole, floordiv(rest, q))
    const = _terms(rest).get((), 0)
    var_part = add(rest, -const)
    if const == q - 1 and isinstance(var_part, Q) and var_part.is_integer:
        return ceildiv(var_part, q)
    return _atom("floor", rest, q)


def ceildiv(p, q):
    q = _divisor(q)
    if not isinstance(p, Q):
        return -(-_integer(p) // q)
    if q == 1 and p.is_integer:
        return p
    nested = _single_atom(p, "ceil")
    if nested is not None:
        return ceildiv(nested.args[0], nested.args[1] * q)
    if not p.flat:
        return _atom("ceil", p, q)
    whole, rest = _split(p, q)
    if whole != 0:
        return add(whole, ceildiv(rest, q))
    const = _terms(rest).get((), 0)
    var_part = add(rest, -const)
    if const == 1 and isinstance(var_part, Q) and var_part.is_integer:
        return add(floordiv(var_part, q), 1)
    return _atom("ceil", rest, q)


def _integer(x) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise NotQuasi("an integer division of a fraction")
    return x


def mod(a, b):
    """a % b for a positive integer b: a - b*floor(a/b), as symbols.mod."""
    b = _divisor(b)
    return add(a, scale(floordiv(a, b), -b))


def extreme(kind: str, a, b):
    """min/max: decided when the two differ by a constant (sympy decides that too), else an atom."""
    if not isinstance(a, Q) and not isinstance(b, Q):
        return min(a, b) if kind == "min" else max(a, b)
    diff = add(a, scale(b, -1))
    if not isinstance(diff, Q):
        return (a if diff <= 0 else b) if kind == "min" else (a if diff >= 0 else b)
    return _atom(kind, *sorted((a, b), key=_text))


def equal(a, b):
    diff = add(a, scale(b, -1))
    return True if diff == 0 else (None if isinstance(diff, Q) else False)


# -- values and text ---------------------------------------------------------------------------------------
def _tmul(t1: dict, t2: dict) -> dict:
    out: dict = {}
    for m1, c1 in t1.items():
        for m2, c2 in t2.items():
            m = _mono_mul(m1, m2)
            out[m] = out.get(m, 0) + c1 * c2
    return out


def substitute(x, values: dict):
    """x with symbols replaced (name -> int or Q); a whole number comes back as an int, a fraction as a
    Fraction (H/2 at H = 3)."""
    if not isinstance(x, Q):
        return x
    total: dict = {}
    for m, c in x.terms.items():
        value = {(): c}
        for atom, e in m:
            part = _terms(_substitute_atom(atom, values))
            for _ in range(e):
                value = _tmul(value, part)
        for mono, k in value.items():
            total[mono] = total.get(mono, 0) + k
    total = {m: c for m, c in total.items() if c}
    if all(m == () for m in total):
        c = total.get((), 0)
        return int(c) if c.denominator == 1 else c
    return Q(total, x.flat or len(total) == 1)


def _substitute_atom(atom: Atom, values: dict):
    if atom.kind == "var":
        return values.get(atom.args[0], var(atom.args[0]))
    if atom.kind in ("floor", "ceil"):
        p, q = substitute(atom.args[0], values), atom.args[1]
        if isinstance(p, Fraction):
            n, d = p.numerator, p.denominator * q
            return n // d if atom.kind == "floor" else -(-n // d)
        return floordiv(p, q) if atom.kind == "floor" else ceildiv(p, q)
    a, b = (substitute(arg, values) for arg in atom.args)
    return extreme(atom.kind, a, b)
