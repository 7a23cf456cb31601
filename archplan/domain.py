"""For which symbol values is the graph valid?

Floor divisions make every size quasi-periodic in each symbol: with P the lcm of the
divisions a symbol passes through, substituting H = P*k + r turns every size into a
linear function of k. For each residue r we then decide every condition exactly
(merges line up, sizes positive, input expressions integral) and find the smallest k.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import sympy

from . import dims
from .errors import Problem
from .symbols import CeilDiv, FloorDiv, symbol, to_str

MAX_PERIOD = 4096
_K = sympy.Symbol("k_", integer=True, nonnegative=True)


class _Unsupported(Exception):
    pass


@dataclass(frozen=True)
class Domain:
    """Valid values of one symbol: x % period is a valid residue and x >= that residue's smallest size."""

    period: int
    starts: tuple  # ((residue, smallest valid value), ...)
    maximum: int | None = None

    @property
    def minimum(self) -> int:
        return min(start for _, start in self.starts)

    def __contains__(self, value: int) -> bool:
        start = dict(self.starts).get(value % self.period)
        return start is not None and value >= start and (self.maximum is None or value <= self.maximum)


def _lcm(a: int, b: int) -> int:
    return a * b // gcd(a, b)


def period(e, x) -> int:
    """Smallest P (up to lcm) such that e(x + P) - e(x) has no floor terms left."""
    e = sympy.sympify(e)
    result = 1
    if not e.has(x):
        return 1
    atoms = [
        a for a in e.atoms(FloorDiv, CeilDiv, sympy.Mod, sympy.floor, sympy.ceiling, sympy.Min, sympy.Max) if a.has(x)
    ]
    outer = [a for a in atoms if not any(a != b and b.has(a) for b in atoms)]
    for atom in outer:
        result = _lcm(result, _atom_period(atom, x))
    plain = e.xreplace({a: 0 for a in outer})
    for term in sympy.Add.make_args(sympy.expand(plain)):
        if term.has(x):
            coeff = term.as_coeff_Mul()[0]
            result = _lcm(result, int(sympy.Rational(coeff).q) if coeff.is_Rational else 1)
    if result > MAX_PERIOD:
        raise _Unsupported()
    return result


def _atom_period(atom, x) -> int:
    if isinstance(atom, (sympy.Min, sympy.Max)):
        out = 1
        for arg in atom.args:
            out = _lcm(out, period(arg, x))
        return out
    if isinstance(atom, (FloorDiv, CeilDiv, sympy.Mod)):
        p, q = atom.args
    else:  # floor / ceiling of p/q
        p, q = sympy.fraction(sympy.together(atom.args[0]))
    if not q.is_Integer:
        raise _Unsupported()
    inner = period(p, x)
    shift = sympy.expand(p.xreplace({x: x + inner}) - p)
    if shift.free_symbols:
        raise _Unsupported()
    return inner * int(sympy.Rational(shift / q).q)


def _linear(v):
    """v as (a, b) with v = a*k + b, or None when v is not linear in k with numeric coefficients."""
    v = sympy.expand(v)
    if v.free_symbols - {_K}:
        return None
    poly = v.as_poly(_K) if v.free_symbols else None
    if poly is None:
        return (sympy.Integer(0), v) if v.is_number else None
    if poly.degree() > 1:
        return None
    coeffs = poly.all_coeffs()
    return (coeffs[0], coeffs[1]) if len(coeffs) == 2 else (sympy.Integer(0), coeffs[0])


def _check(cond, x, P, r):
    """(ok, kmin) for one condition at residue r; kmin None when fine for every k."""
    sub = {x: P * _K + r}
    value = cond.value.xreplace(sub)
    if cond.kind == "equal":
        value = value - cond.other.xreplace(sub)
    lin = _linear(value)
    if lin is None:
        raise _Unsupported()
    a, b = lin
    if cond.kind == "equal":
        return a == 0 and b == 0, None
    if cond.kind == "integer":
        return a.is_integer and b.is_integer, None
    # positive: a*k + b >= 1
    if a == 0:
        return bool(b >= 1), None
    if a > 0:
        return True, max(0, int(sympy.ceiling((1 - b) / a)))
    raise _Unsupported()  # a size that shrinks as the symbol grows: bounded above, not derived here


def simplest_form(name: str, residues: set, P: int) -> str | None:
    """'H % 8 == 0' style text for a set of residues modulo P (None when every residue is fine)."""
    if len(residues) == P:
        return None
    for d in sorted(q for q in range(1, P + 1) if P % q == 0):
        classes = {r % d for r in residues}
        if all((r % d in classes) == (r in residues) for r in range(P)):
            break
    if len(classes) == 1:
        return f"{name} % {d} == {next(iter(classes))}"
    missing = sorted(set(range(d)) - classes)
    if len(missing) == 1:
        return f"{name} % {d} != {missing[0]}"
    return f"{name} % {d} in ({', '.join(str(c) for c in sorted(classes))})"


def _dedupe(conditions):
    seen, out = set(), []
    for c in conditions:
        key = (c.kind, c.value, c.other)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _split_products(conditions):
    """A product of sizes is >= 1 when each factor is: N*32*(ceiling(H/8) - 1)*(W - 2) -> one condition per factor."""
    out = []
    for c in conditions:
        if c.kind != "positive" or len(_free(c)) < 2:
            out.append(c)
            continue
        factors = [f for f in sympy.Mul.make_args(sympy.factor_terms(c.value)) if f.free_symbols]
        out.extend(type(c)("positive", f, None, c.node, c.message) for f in factors)
    return out


def solve(result, conditions) -> None:
    conditions = _dedupe(_split_products(conditions))
    symbols = {name: symbol(name) for name in result.graph.symbols}
    single: dict[str, list] = {name: [] for name in symbols}
    for c in conditions:
        names = {s.name for s in _free(c)}
        if len(names) == 1 and next(iter(names)) in single:
            single[next(iter(names))].append(c)
        elif names:
            result.constraints.append(_cross_text(c))
    substitutions = {}
    for name, conds in single.items():
        if not conds:
            continue
        outcome = _solve_symbol(result, name, symbols[name], conds)
        if outcome is not None:
            substitutions[symbols[name]] = outcome
    if substitutions and result.ok:
        _simplify(result, substitutions)


def _free(c):
    free = set(sympy.sympify(c.value).free_symbols)
    if c.other is not None:
        free |= sympy.sympify(c.other).free_symbols
    return free


def _cross_text(c) -> str:
    if c.kind == "equal":
        return f"{to_str(c.value)} == {to_str(c.other)}"
    if c.kind == "integer":
        return f"{to_str(c.value)} is an integer"
    return f"{to_str(c.value)} >= 1"


def _solve_symbol(result, name: str, x, conds):
    info = result.graph.symbols[name]
    border_rows = [
        (row, loss)
        for row in result.layers
        for loss in row.border
        if not isinstance(loss, int) and sympy.sympify(loss).has(x)
    ]
    try:
        P = 1
        for c in conds:
            P = _lcm(P, period(c.value, x))
            if c.other is not None:
                P = _lcm(P, period(c.other, x))
        for _, loss in border_rows:
            P = _lcm(P, period(loss, x))
        if P > MAX_PERIOD:
            raise _Unsupported()
        valid, kmins, failures = _residues(conds, x, P, info)
    except _Unsupported:
        result.warnings.append(
            Problem(
                f"the sizes for which the net is valid were not derived for {name}: a size "
                f"shrinks as {name} grows or is not piecewise linear in it",
                severity="warning",
                hint=f"check concrete sizes with --set {name}=...",
            )
        )
        return None
    if not valid:
        _report_never_valid(result, name, conds, failures, P)
        return None
    text = simplest_form(name, set(valid), P)
    if text:
        result.constraints.append(text)
    smallest = min(P * kmins[r] + r for r in valid)
    result.minimum_sizes[name] = smallest
    result.domains[name] = Domain(P, tuple((r, P * kmins[r] + r) for r in valid), info.max)
    if smallest > 1 or info.min:
        result.constraints.append(f"{name} >= {max(smallest, info.min or 1)}")
    if info.max is not None:
        result.constraints.append(f"{name} <= {info.max}")
    _border_warnings(result, name, x, P, set(valid), border_rows)
    classes = {r % _modulus(text, P) for r in valid} if text else None
    if text and len(classes) == 1:
        d = _modulus(text, P)
        return d, next(iter(classes))
    return None


def _modulus(text: str, P: int) -> int:
    return int(text.split("%")[1].split()[0]) if text else P


def _residues(conds, x, P, info):
    valid, kmins, failures = [], {}, {}
    low = max(1, info.min or 1)
    for r in range(P):
        kmin, ok = max(0, -(-(low - r) // P)), True
        if r == 0:
            kmin = max(kmin, 1)  # x = 0 is not a size
        for c in conds:
            good, need = _check(c, x, P, r)
            if not good:
                failures.setdefault(id(c), []).append(r)
                ok = False
                break
            if need is not None:
                kmin = max(kmin, need)
        if ok and (info.max is None or P * kmin + r <= info.max):
            valid.append(r)
            kmins[r] = kmin
    return valid, kmins, failures


def _report_never_valid(result, name, conds, failures, P) -> None:
    blamed = [c for c in conds if len(failures.get(id(c), [])) == P] or [next(c for c in conds if id(c) in failures)]
    for c in blamed[:3]:
        node = c.node
        where = dict(layer=node.name, line=node.line, column=node.column) if node else {}
        result.errors.append(Problem(f"{c.message}: no value of {name} makes this valid", **where))


def _border_warnings(result, name, x, P, valid, border_rows) -> None:
    seen = set()
    for row, loss in border_rows:
        bad = {r for r in valid if _loss_at(loss, x, P, r)}
        if not bad or row.name in seen:
            continue
        seen.add(row.name)
        good = valid - bad
        node = row.node
        when = simplest_form(name, bad, P) if good else None
        text = f"does not tile its input: border pixels are never read{' when ' + when if when else ''}"
        hint = f"sizes with {simplest_form(name, good, P)} avoid it" if good and simplest_form(name, good, P) else None
        result.warnings.append(
            Problem(text, layer=node.name, line=node.line, column=node.column, severity="warning", hint=hint)
        )


def _loss_at(loss, x, P, r) -> bool:
    lin = _linear(sympy.sympify(loss).xreplace({x: P * _K + r}))
    if lin is None:
        return False
    a, b = lin
    return bool(a != 0 or b > 0)


def _simplify(result, substitutions) -> None:
    """Rewrite every figure under the derived constraint (H = d*k + c), e.g. floor(H/8)*8 -> H."""
    forward = {x: d * _K + c for x, (d, c) in substitutions.items()}

    def rewrite(v):
        if isinstance(v, int) or not getattr(v, "free_symbols", None):
            return v
        out = v
        for x, (d, c) in substitutions.items():
            if out.has(x):
                out = sympy.expand(out.xreplace({x: forward[x]})).xreplace({_K: (x - c) / d})
                out = sympy.expand(out)
        return dims.normalize(out)

    for row in result.layers:
        row.output_shape = tuple(rewrite(d) for d in row.output_shape)
        row.params, row.buffers, row.macs = rewrite(row.params), rewrite(row.buffers), rewrite(row.macs)
    result.outputs = {k: tuple(rewrite(d) for d in v) for k, v in result.outputs.items()}
