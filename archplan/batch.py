"""Nets whose only free size is a batch dimension, analysed without computer algebra.

Every example declares the batch `N` as a symbol, and importing sympy costs more than analysing ResNet-50.
When the only free symbols are batch symbols (each appears in the input shapes only as a whole leading
dim and nowhere in the layers' arguments), the net is analysed with N set to a large prime P in plain
integers, and every figure is read back as a polynomial in N: its base-P digits (v = c0 + c1*P + c2*P**2)
are the coefficients. Rules that use N other than as a polynomial would (a floor of N, N in a comparison)
leave digits that are not small, and then the net is analysed again with sympy, so the answer is the same
as sympy's either way; the polynomials print as sympy prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

SENTINEL = (1 << 61) - 1  # a Mersenne prime: no real size or count comes near it
MAX_COEFFICIENT = 1 << 56
# names sympy.sympify reads as its own objects, among identifiers of 1 or 2 characters (tests/test_batch.py
# checks this list against sympy); JSON writes them Symbol('N') so that sympify gives back the symbol
SYMPY_NAMES = frozenset(
    "CC Ci E E1 EX Ei Eq FF GF Ge Gt I Id LC LM LT Le Li Lt N Ne O Or Q QQ RR S Si ZZ as ff fu id if im in is jn "
    "li ln oo or pi re rf yn".split()
)


class NotPolynomial(Exception):
    """A figure is not a small-coefficient polynomial in the batch symbol: analyse with sympy instead."""


@dataclass(frozen=True)
class Batch:
    """c0 + c1*N + c2*N**2 + ... with integer coefficients (a polynomial in one batch symbol)."""

    coeffs: tuple
    name: str

    @classmethod
    def of(cls, coeffs, name: str):
        coeffs = list(coeffs)
        while coeffs and coeffs[-1] == 0:
            coeffs.pop()
        return cls(tuple(coeffs), name) if len(coeffs) > 1 else (coeffs[0] if coeffs else 0)

    def _terms(self, symbol: str) -> str:
        parts = []
        for degree in range(len(self.coeffs) - 1, -1, -1):
            c = self.coeffs[degree]
            if c == 0:
                continue
            power = "" if degree == 0 else symbol if degree == 1 else f"{symbol}**{degree}"
            body = str(abs(c)) if not power else power if abs(c) == 1 else f"{abs(c)}*{power}"
            parts.append(("-" if c < 0 else "+", body))
        head = ("-" if parts[0][0] == "-" else "") + parts[0][1]
        return head + "".join(f" {sign} {body}" for sign, body in parts[1:])

    def __str__(self) -> str:
        return self._terms(self.name)

    def parsable(self) -> str:
        return self._terms(f"Symbol('{self.name}')" if self.name in SYMPY_NAMES else self.name)

    def at(self, value: int) -> int:
        return sum(c * value**d for d, c in enumerate(self.coeffs))

    @property
    def monomial(self) -> tuple | None:
        """(coefficient, 'N**d') when the polynomial is a single term."""
        terms = [(d, c) for d, c in enumerate(self.coeffs) if c]
        if len(terms) != 1:
            return None
        d, c = terms[0]
        return c, self.name if d == 1 else f"{self.name}**{d}"

    def _coerce(self, other):
        if isinstance(other, Batch):
            if other.name != self.name:
                raise NotPolynomial()
            return other.coeffs
        if isinstance(other, int) and not isinstance(other, bool):
            return (other,)
        return None

    def __add__(self, other):
        theirs = self._coerce(other)
        if theirs is None:
            return NotImplemented
        n = max(len(self.coeffs), len(theirs))
        pad = lambda cs: list(cs) + [0] * (n - len(cs))  # noqa: E731
        return Batch.of([a + b for a, b in zip(pad(self.coeffs), pad(theirs))], self.name)

    __radd__ = __add__

    def __mul__(self, other):
        theirs = self._coerce(other)
        if theirs is None:
            return NotImplemented
        out = [0] * (len(self.coeffs) + len(theirs) - 1)
        for i, a in enumerate(self.coeffs):
            for j, b in enumerate(theirs):
                out[i + j] += a * b
        return Batch.of(out, self.name)

    __rmul__ = __mul__


def decode(value, name: str):
    """The polynomial in `name` whose value at SENTINEL is `value` (ints with small digits); else raises."""
    if isinstance(value, bool) or not isinstance(value, int):
        if value is None or isinstance(value, (float, str, tuple)):
            return value
        raise NotPolynomial()
    coeffs, rest = [], value
    for _ in range(4):
        digit = rest % SENTINEL
        if digit > SENTINEL // 2:
            digit -= SENTINEL
        coeffs.append(digit)
        rest = (rest - digit) // SENTINEL
        if rest == 0:
            break
    if rest != 0 or any(abs(c) > MAX_COEFFICIENT for c in coeffs):
        raise NotPolynomial()
    return Batch.of(coeffs, name)


def batch_symbol(spec, free: list[str]) -> str | None:
    """The one free symbol, if it is a batch symbol: a whole leading input dim only, named in no layer."""
    from .expr import names_in

    if len(free) != 1 or len(free[0]) > 2:
        return None
    name = free[0]
    info = spec.symbols.get(name)
    if info is not None and (info.min is not None or info.max is not None):
        return None
    for inp in spec.inputs.values():
        for i, entry in enumerate(inp.shape):
            if isinstance(entry, str) and name in _names(entry, names_in) and (i != 0 or entry.strip() != name):
                return None
    layers = [*spec.layers, *(layer for block in spec.blocks.values() for layer in block.layers)]
    raw = [*(a.value for layer in layers for a in (*layer.args.values(), *layer.first.values()))]
    raw += [a.value for layer in layers for a in (layer.when, layer.repeat) if a is not None]
    raw += [v for block in spec.blocks.values() for v in block.args.values()]
    if any(name in _names(value, names_in) for value in raw):
        return None
    return name


def _names(value, names_in) -> set:
    if isinstance(value, list):
        return set().union(*(_names(v, names_in) for v in value)) if value else set()
    if not isinstance(value, str):
        return set()
    try:
        return set(names_in(value))
    except Exception:  # not an expression (padding: same): names nothing
        return set()


def decode_result(result, name: str, info) -> None:
    """Read every figure of an analysis run at N = SENTINEL back as polynomials in N (in place)."""
    graph = result.graph

    def shape(s):
        return tuple(decode(d, name) for d in s)

    for row in result.layers:
        row.output_shape = shape(row.output_shape)
        row.params, row.buffers, row.macs = (decode(v, name) for v in (row.params, row.buffers, row.macs))
        if row.field is not None and row.field.extent:
            row.field = type(row.field)(row.field.axes, shape(row.field.extent), row.field.whole, row.field.lost)
    result.inputs = {k: shape(v) for k, v in result.inputs.items()}
    result.outputs = {k: shape(v) for k, v in result.outputs.items()}
    graph.inputs = {k: shape(v) for k, v in graph.inputs.items()}
    result.totals = {k: decode(v, name) for k, v in result.totals.items()}
    graph.values.pop(name, None)
    graph.symbols[name] = info
    text = str(SENTINEL)
    if result.constraints or any(text in p.message for p in result.errors + result.warnings):
        raise NotPolynomial()
