"""Light formulas (quasi.Q) as text, exactly as sympy prints the same figure (polytext.py), and the test of
whether a light analysis is the answer: every figure printable that way, no error, no warning quoting a
formula sympy would write otherwise."""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from .quasi import Atom, NotQuasi, Q

MARK = "\x00"  # starts the text of a formula sympy would write otherwise (only ever in a message)


def printable(x) -> bool:
    """Whether x prints as sympy would print the same figure: a flat polynomial in symbols and in floor or
    ceiling divisions of such polynomials (not a product of sums, which sympy keeps unexpanded; no Min/Max)."""
    if not isinstance(x, Q):
        return True
    return x.flat and all(_printable_division(a) for a in x.atoms())


@lru_cache(maxsize=8192)  # nested divisions share their inner atoms: without it, 2**depth calls
def _printable_division(atom: Atom) -> bool:
    """floor/ceil(p / q) with q >= 2 and p printable with whole coefficients (polytext's generators)."""
    if atom.kind not in ("floor", "ceil") or atom.args[1] < 2:
        return False
    inner = atom.args[0]
    if not printable(inner) or any(c.denominator != 1 for c in inner.terms.values()):
        return False
    from .polytext import generator_is_normal

    return generator_is_normal(_generator(atom))  # one sympy's FloorDiv.eval would rewrite is not sympy's form


@lru_cache(maxsize=8192)
def _generator(atom: Atom):
    if atom.kind == "var":
        return atom.args[0]
    inner, q = atom.args  # inner is a Q: a constant would have been divided out
    return atom.kind, tuple(_named_terms(inner).items()), q


def _named_terms(x: Q) -> dict:
    """The terms in polytext's form: a monomial is ((generator, exponent), ...); a generator is a symbol's
    name or (kind, inner terms, q) for floor/ceil(inner / q)."""
    if not printable(x):
        raise NotQuasi("a formula sympy would write as a product of sums, or with Min or Max")
    return {tuple((_generator(a), e) for a, e in m): c for m, c in x.terms.items()}


@lru_cache(maxsize=8192)
def text(x: Q, parsable: bool = False) -> str:
    """The formula as sympy prints it. One that sympy would write otherwise (a product of sums, a Min) can only
    be in a message, marked: a light analysis that reports such a message is not used."""
    from .polytext import parsable_names_known, poly_str

    if not printable(x):
        return MARK + repr(x)
    terms = _named_terms(x)
    if parsable and not parsable_names_known(x.names):
        raise NotQuasi("a symbol name sympy might read as its own")
    return poly_str(terms, parsable=parsable)


@lru_cache(maxsize=8192)
def monomial(x: Q):
    """(integer coefficient, the rest as text) for a single term with a whole coefficient, as dims.monomial."""
    terms = _named_terms(x)
    if len(terms) != 1:
        return None
    ((mono, c),) = terms.items()
    if c.denominator != 1 or (len(mono) == 1 and mono[0][1] == 1 and not isinstance(mono[0][0], str)):
        return None  # sympy's as_coeff_Mul leaves a lone floor(H/2), which dims.monomial does not take
    from .polytext import monomial_text

    return int(c), monomial_text(mono)


# -- when the light answer is the answer -------------------------------------------------------------------
def accept(result) -> None:
    """Raises NotQuasi unless every figure of an Analysis prints as sympy would print it, there is no error
    (errors are worded from sympy's answers) and no warning quotes a formula sympy would write otherwise."""
    if result.errors:
        raise NotQuasi("the net has errors to report")
    if any(MARK in f"{w.message} {w.hint}" for w in result.warnings):
        raise NotQuasi("a warning quotes a formula sympy would write otherwise")
    parts = [result.totals, result.inputs, result.outputs, result.graph.inputs]
    parts.extend(node.args for node in result.graph.nodes.values())  # the Op column describes them
    for row in result.layers:
        parts.append((row.output_shape, row.params, row.buffers, row.macs, row.value_range, row.field))
    names: set = set()
    seen: set = set()
    for x in _formulas(parts):
        if id(x) not in seen:
            seen.add(id(x))
            _named_terms(x)  # raises unless printable
            names |= x.names
    from .polytext import parsable_names_known

    if not parsable_names_known(names):
        raise NotQuasi("a symbol name sympy might read as its own")


_PLAIN = frozenset((int, bool, float, str, Fraction, type(None)))


def _formulas(parts: list) -> list:
    """The Qs inside nested tuples, lists, dicts and dataclasses (a receptive field's axes)."""
    found, stack = [], list(parts)
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind in _PLAIN:
            continue
        if kind is Q:
            found.append(value)
        elif kind is dict or isinstance(value, dict):
            stack.extend(value.values())
        elif kind is tuple or kind is list:
            stack.extend(value)
        elif hasattr(value, "__dataclass_fields__"):
            stack.extend(getattr(value, name) for name in value.__dataclass_fields__)
        else:
            raise NotQuasi(f"a figure of type {kind.__name__}")
    return found
