"""For which symbol values is the graph valid?

Every requirement (a size >= 1, two sizes equal, a size integral) is a function f of one symbol x built
from sums, products, floor/ceiling divisions by constants, Mod, Min and Max. We compile f into an exact
integer function (no sympy on the hot path) and learn two facts about it from its structure, never from
sampling:

- its trend: nondecreasing or nonincreasing for x >= lo (floors and sums of nondecreasing terms are
  nondecreasing, so are products of nonnegative ones; lo is 1, or for a product like (H - 2)**2 the
  smallest value the other requirements allow). Then `f(x) >= 1` holds on a half-line, found by
  exponential and binary search: a lower bound (H >= 511) or an upper bound (L <= 1024). An equality
  with a monotone difference holds on an interval, found the same way.
- its quasi-period: P and a slope a with f(x + P) = f(x) + a*P for every integer x (P comes from the
  divisions, as an lcm). On each residue class r mod P, f is linear in k where x = P*k + r, so one
  evaluation per residue decides the requirement exactly for the whole class (and a first or last k).

Each requirement gives a set of valid values: a period and, per residue, the first and last valid value.
Intersecting them (thresholds first, residues lifted to the lcm only where still valid) gives the domain.
A 24-layer chain of strided convolutions is 24 threshold searches, not 2**24 residues. The work is
capped (MAX_PERIOD residues per requirement, MAX_WORK checks per symbol); past the cap, or for a form
outside these two classes, the domain is reported as not derived, with the reason, never guessed.
Threshold searches stop at SIZE_LIMIT (torch sizes are int64).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from math import isqrt

from . import dims, quasi, quasi_facts, residues
from .errors import Problem
from .quasi import Q

BORDER_PERIOD = 1 << 12  # residues listed in a border warning; past it, a sample and no list


@dataclass(frozen=True)
class Domain:
    """Valid values of one symbol: x % period is a valid residue, x >= that residue's first valid value,
    x <= maximum, and x <= the residue's last valid value where `ends` lists one."""

    period: int
    starts: tuple  # ((residue, smallest valid value), ...)
    maximum: int | None = None
    ends: tuple = ()  # ((residue, largest valid value), ...) for residues that stop below `maximum`

    @property
    def minimum(self) -> int:
        return min(start for _, start in self.starts)

    @cached_property
    def _bounds(self) -> tuple:
        return dict(self.starts), dict(self.ends)

    def __contains__(self, value) -> bool:
        try:
            value = operator.index(value)
        except TypeError:
            return False
        starts, ends = self._bounds
        r = value % self.period
        start, end = starts.get(r), ends.get(r)
        if start is None or value < start:
            return False
        return (self.maximum is None or value <= self.maximum) and (end is None or value <= end)


# ---- solving the recorded conditions -----------------------------------------------------------------


def simplest_form(name: str, residues: set, P: int) -> str | None:
    """'H % 8 == 0' style text for a set of residues modulo P (None when every residue is fine)."""
    d, classes = _coarsest(frozenset(residues), P)
    if len(classes) == d:
        return None
    if len(classes) == 1:
        return f"{name} % {d} == {classes[0]}"
    missing = sorted(set(range(d)) - set(classes))
    if len(missing) == 1:
        return f"{name} % {d} != {missing[0]}"
    return f"{name} % {d} in ({_runs(classes)})"


@lru_cache(maxsize=1024)
def _coarsest(residues: frozenset, P: int) -> tuple:
    """The smallest modulus d | P that describes the residues, and their classes mod d."""
    for d in _divisors(P):
        if len(residues) % (P // d):
            continue
        classes = {r % d for r in residues}
        if len(classes) * (P // d) == len(residues):  # every lift of every class is in the set
            return d, sorted(classes)
    return P, sorted(residues)


def _divisors(n: int) -> list:
    low = [d for d in range(1, isqrt(n) + 1) if n % d == 0]
    return sorted(set(low + [n // d for d in low]))


def _runs(values: list) -> str:
    """1, 2, 5..9: runs of four or more consecutive values shortened."""
    out, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        if j - i >= 3:
            out.append(f"{values[i]}..{values[j]}")
        else:
            out.extend(str(v) for v in values[i : j + 1])
        i = j + 1
    return ", ".join(out)


def _dedupe(conditions):
    seen, out = set(), []
    for c in conditions:
        key = (c.kind, c.value, c.other)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _split_products(conditions):
    """A product of sizes in several symbols is >= 1 when each factor is: N*32*(ceiling(H/8) - 1)*(W - 2) ->
    one condition per factor. Every factor is itself a size that an earlier layer checked, so nothing is lost.
    (A product in one symbol, (floor(H/2) - 1)**2, is solved as it is: it is monotone where its factors are
    nonnegative.)"""
    out = []
    for c in conditions:
        value = c.value
        if c.kind != "positive" or len(_free(c)) < 2:
            out.append(c)
            continue
        if isinstance(value, Q):
            out.extend(quasi_facts.split_product(c))
            continue
        import sympy

        coeff, factors = sympy.factor_terms(value).as_coeff_mul()
        sized = [(f.base, int(f.exp)) if f.is_Pow and f.exp.is_Integer and f.exp > 0 else (f, 1) for f in factors]
        sized = [(f, n) for f, n in sized if f.free_symbols]
        if coeff.is_positive is not True or sum(n for _, n in sized) < 2 or any(f.is_Pow for f, _ in sized):
            out.append(c)
            continue
        out.extend(type(c)("positive", f, None, c.node, c.text) for f, _ in sized)
    return out


def solve(result, conditions) -> None:
    conditions = _dedupe(_split_products(conditions))
    light = any(isinstance(c.value, Q) or isinstance(c.other, Q) for c in conditions) or any(
        isinstance(d, Q) for shape in result.graph.inputs.values() for d in shape
    )
    if light:
        symbols = {name: quasi.var(name) for name in result.graph.symbols}
    else:
        from .symbols import symbol

        symbols = {name: symbol(name) for name in result.graph.symbols}
    single: dict[str, list] = {name: [] for name in symbols}
    cross = []
    for c in conditions:
        names = {_name(s) for s in _free(c)}
        if len(names) == 1 and next(iter(names)) in single:
            single[next(iter(names))].append(c)
        elif names:
            cross.append(c)
    substitutions, start = {}, len(result.constraints)
    for name, conds in single.items():
        info = result.graph.symbols[name]
        if not conds and info.min is None and info.max is None:  # every size is valid: only borders to check
            _border_warnings(result, name, symbols[name], 1, {0: (1, None)})
            continue
        outcome = _solve_symbol(result, name, conds, symbols[name])
        if outcome is not None:
            substitutions[symbols[name]] = outcome
    if cross and light:
        raise quasi.NotQuasi("a requirement over several symbols")
    forms = _forms(result, symbols) if cross else {}
    result.constraints[start:start] = [_cross_text(c) for c in cross if not _implied(c, forms)]
    if substitutions and result.ok:
        _simplify(result, substitutions, tuple(forms.items()))


def _forms(result, symbols: dict) -> dict:
    """Each symbol whose valid values are one residue class from a first value on, as first + period*j
    (j >= 0): H % 16 == 0 and H >= 16 gives H = 16 + 16*j."""
    import sympy

    forms = {}
    for name, x in symbols.items():
        domain = result.domains.get(name)
        if domain is not None and len(domain.starts) == 1 and domain.maximum is None and not domain.ends:
            j = sympy.Dummy(f"{name}_j", integer=True, nonnegative=True)
            forms[x] = domain.starts[0][1] + domain.period * j
    return forms


def _implied(c, forms: dict) -> bool:
    """Whether a requirement over several symbols holds for every value their own domains allow (H*W % 256
    == 0 once H % 16 == 0 and W % 16 == 0): such a requirement says nothing more and is not listed."""
    if c.kind == "equal" or not forms:
        return False
    import sympy

    value = sympy.expand(sympy.sympify(c.value).xreplace(forms))
    if c.kind == "integer":
        return value.is_integer is True
    return value.is_integer is True and (value - 1).is_nonnegative is True


def _name(x) -> str:
    return next(iter(x.names)) if isinstance(x, Q) else x.name


def _free(c):
    if isinstance(c.value, Q) or isinstance(c.other, Q):
        return {quasi.var(name) for name in dims.symbol_names(c.value) | dims.symbol_names(c.other)}
    import sympy

    free = set(sympy.sympify(c.value).free_symbols)
    if c.other is not None:
        free |= sympy.sympify(c.other).free_symbols
    return free


def _cross_text(c) -> str:
    import sympy

    to_str = dims.to_str
    if c.kind == "equal":
        return f"{to_str(c.value)} == {to_str(c.other)}"
    if c.kind == "integer":  # p/q is an integer: written p % q == 0 when q is a number
        p, q = sympy.fraction(sympy.together(c.value))
        return f"{to_str(p)} % {to_str(q)} == 0" if q.is_Integer and q != 1 else f"{to_str(c.value)} is an integer"
    return f"{to_str(c.value)} >= 1"


def _where(result, c) -> dict:
    """Where a requirement comes from: its layer, or the input whose shape holds the size."""
    if c is None:
        return {}
    node = c.node
    if node is not None:
        return dict(layer=node.name, line=node.line, column=node.column)
    for name, shape in result.graph.inputs.items():
        if any(d is c.value or d == c.value for d in shape):
            return dict(line=result.graph.input_lines.get(name))
    return {}


def _solve_symbol(result, name: str, conds, x):
    info = result.graph.symbols[name]
    budget, current = residues.Budget(), None
    try:
        parts, later = [], []
        for c in conds:
            try:
                parts.append(residues.part(c, x, budget))
            except residues.Unsupported as exc:
                later.append((c, exc))
        # a product like (H - 2)**2 is monotone only where H - 2 >= 0: retry above what the others allow
        lo = max((p.first for p in parts if p.classes), default=1)
        for current, exc in later:
            if lo == 1:
                raise exc
            parts.append(residues.part(current, x, budget, lo))
        current = None
        empty = [p for p in parts if not p.classes]
        if empty:
            _report_never_valid(result, name, empty)
            return None
        period, classes, stopper = residues.intersect(parts, budget)
        if not classes:
            _report_never_valid(result, name, [stopper], together=True)
            return None
        low, high = info.min or 1, info.max
        capped = all(b is not None for _, b in classes.values())
        kept = residues.meet(period, classes, residues.Part(1, {0: (low, high)}), budget)[1]
    except residues.Unsupported as exc:
        result.warnings.append(
            Problem(
                f"the sizes for which the net is valid were not derived for {name}: {exc}",
                **_where(result, current),
                severity="warning",
                hint=f"check concrete sizes with --set {name}=...",
            )
        )
        return None
    if not kept:
        _report_outside(result, name, parts, period, classes, low, high)
        return None
    return _record(result, name, x, period, kept, capped)


def _record(result, name: str, x, period: int, classes: dict, capped: bool):
    """Constraint texts, minimum size and Domain from the valid classes; (d, c) when x = d*k + c.
    `capped`: the requirements themselves bound the symbol above (else only a declared max does)."""
    info = result.graph.symbols[name]
    if classes == {0: (1, None)} and period == 1 and info.min is None and info.max is None:
        _border_warnings(result, name, x, period, classes)  # every size is valid: nothing to record
        return None
    residues = set(classes)
    text = simplest_form(name, residues, period)
    if text:
        result.constraints.append(text)
    smallest = min(a for a, _ in classes.values())
    result.minimum_sizes[name] = smallest
    if smallest > 1 or info.min:
        result.constraints.append(f"{name} >= {smallest}")
    top = max(b for _, b in classes.values()) if capped else info.max
    if top is not None:
        result.constraints.append(f"{name} <= {top}")
    result.constraints.extend(_exceptions(name, period, classes, smallest, top))
    natural = {r: top - (top - r) % period for r in residues} if top is not None else {}
    stops = tuple((r, b) for r, (_, b) in sorted(classes.items()) if b is not None and b != natural.get(r))
    result.domains[name] = Domain(period, tuple((r, a) for r, (a, _) in sorted(classes.items())), top, stops)
    _border_warnings(result, name, x, period, classes)
    d, kept = _coarsest(frozenset(residues), period)
    return (d, kept[0]) if text and len(kept) == 1 else None


def _exceptions(name: str, period: int, classes: dict, smallest: int, top: int | None) -> list:
    """Texts for residues whose first (last) valid value is not the first at or after `smallest` (the last
    at or before `top`), so that the constraint texts say exactly what the domain holds."""
    late, early = {}, {}
    for r, (a, b) in classes.items():
        if a != smallest + (r - smallest) % period:
            late.setdefault(a, set()).add(r)
        if b is not None and (top is None or b != top - (top - r) % period):
            early.setdefault(b, set()).add(r)
    out = [f"{name} >= {a} when {simplest_form(name, rs, period)}" for a, rs in sorted(late.items())]
    return out + [f"{name} <= {b} when {simplest_form(name, rs, period)}" for b, rs in sorted(early.items())]


def _report_never_valid(result, name: str, parts: list, together: bool = False) -> None:
    hint = f"the other requirements on {name} exclude every value this one allows" if together else None
    for part in parts[:3]:
        c = part.condition
        result.errors.append(
            Problem(f"{c.message}: no value of {name} makes this valid", **_where(result, c), hint=hint)
        )


def _report_outside(result, name: str, parts: list, period: int, classes: dict, low: int, high) -> None:
    """Valid values exist, but none within the declared [min, max]: say where they are, at the layer
    whose requirement pushes them out."""
    smallest = min(a for a, _ in classes.values())
    span = f"in [{low}, {high}]" if high is not None else f">= {low}"
    if high is not None and smallest > high:
        blamed = max(parts, key=lambda p: p.first)
        say = f"the smallest valid {name} is {smallest}"
        hint = f"declare max: {smallest} or more"
    else:
        tops = [(a, low - 1 if b is None else min(b, low - 1)) for a, b in classes.values() if a < low]
        largest = max(b - (b - a) % period for a, b in tops)
        blamed = min(parts, key=lambda p: (p.last, -p.period))
        say = f"the smallest valid {name} is {smallest}, the largest below {low} is {largest}"
        hint = f"declare min: {largest} or less"
    where = _where(result, blamed.condition)
    result.errors.append(Problem(f"no value of {name} {span} makes the net valid: {say}", **where, hint=hint))


def _border_warnings(result, name: str, x, period: int, classes: dict) -> None:
    """Layers whose windows leave border pixels unread, and for which valid sizes."""
    for row in result.layers:
        losses = {_formula(loss) for loss in row.border if not isinstance(loss, int)}
        try:
            fns = [
                f for f in (residues.compile_fn(loss, x) for loss in losses if _has(loss, x)) if f.period is not None
            ]
        except residues.Unsupported:
            continue
        if not fns:
            continue
        node = row.node
        where = dict(layer=node.name, line=node.line, column=node.column, severity="warning")
        q = residues.lcm_all([period] + [f.period for f in fns])
        if any(f.slope != 0 for f in fns):  # the loss grows with the size: pixels are lost almost always
            lifted, bad, q = set(classes), set(classes), period
        elif q > BORDER_PERIOD:
            if _sample_loses(fns, period, classes, q):
                text = f"does not tile its input: border pixels are never read for some values of {name}"
                result.warnings.append(Problem(text, **where))
            continue
        else:
            lifted = _lifts(period, classes, q)
            bad = {s for s in lifted if any(f.at(s) > 0 for f in fns)}
        if not bad:
            continue
        good = lifted - bad
        when = simplest_form(name, bad, q) if good else None
        keep = simplest_form(name, good, q) if good else None
        text = f"does not tile its input: border pixels are never read{' when ' + when if when else ''}"
        result.warnings.append(Problem(text, **where, hint=f"sizes with {keep} avoid it" if keep else None))


def _lifts(period: int, classes: dict, q: int) -> set:
    """The residues mod q (a multiple of period) that hold at least one valid value."""
    return {s for r, (a, b) in classes.items() for s in range(r, q, period) if b is None or a + (s - a) % q <= b}


def _sample_loses(fns: list, period: int, classes: dict, q: int) -> bool:
    """Whether some valid value loses pixels, among 512 spread over each class's whole period q (when q is too
    long to list)."""
    for a, b in classes.values():
        for j in range(256):
            v = a + period * (j * (q // period) // 256)
            if any((b is None or w <= b) and any(f.at(w) > 0 for f in fns) for w in (v, v + period)):
                return True
    return False


def _formula(loss):
    if isinstance(loss, Q):
        return loss
    import sympy

    return sympy.sympify(loss)


def _has(v, x) -> bool:
    return bool(dims.symbol_names(v) & dims.symbol_names(x)) if isinstance(v, Q) else v.has(x)


def _simplify(result, substitutions, forms: tuple = ()) -> None:
    """Rewrite every figure under the derived constraint (H = d*k + c), e.g. floor(H/8)*8 -> H; with `forms`
    (symbol -> first + period*j), divisions over several symbols that are exact, floor(H*W/256) -> H*W/256."""
    rule = tuple(sorted(((x, d, c) for x, (d, c) in substitutions.items()), key=lambda t: _name(t[0])))

    def rewrite(v):
        if isinstance(v, Q):
            from .quasi_fn import rewrite as light

            return light(v, rule)
        if isinstance(v, int) or not getattr(v, "free_symbols", None):
            return v
        return _exact_divisions(_rewrite(v, rule), forms) if forms else _rewrite(v, rule)

    for row in result.layers:
        row.output_shape = tuple(rewrite(d) for d in row.output_shape)
        row.params, row.buffers, row.macs = rewrite(row.params), rewrite(row.buffers), rewrite(row.macs)
    result.outputs = {k: tuple(rewrite(d) for d in v) for k, v in result.outputs.items()}


@lru_cache(maxsize=4096)
def _exact_divisions(v, forms: tuple):
    """v with each floor/ceiling division over several symbols replaced by the exact quotient where the
    domains make it whole."""
    if isinstance(v, int) or not getattr(v, "free_symbols", None):
        return v
    import sympy

    from .symbols import CeilDiv, FloorDiv

    subs, atoms = dict(forms), {}
    for atom in v.atoms(FloorDiv, CeilDiv, sympy.floor, sympy.ceiling):
        if len(atom.free_symbols) < 2:
            continue
        exact = atom.args[0] / atom.args[1] if isinstance(atom, (FloorDiv, CeilDiv)) else atom.args[0]
        if sympy.expand(exact.xreplace(subs)).is_integer is True:
            atoms[atom] = exact
    return dims.normalize(v.xreplace(atoms)) if atoms else v


@lru_cache(maxsize=4096)
def _rewrite(v, rule: tuple):
    """v with each division atom that is linear on x = d*k + c replaced by that linear function of x."""
    if not any(v.has(x) for x, _, _ in rule):
        return v
    import sympy

    from .symbols import CeilDiv, FloorDiv

    atoms = {}
    for x, d, c in rule:
        for atom in v.atoms(FloorDiv, CeilDiv, sympy.Mod, sympy.floor, sympy.ceiling, sympy.Min, sympy.Max):
            if atom in atoms or atom.free_symbols != {x}:
                continue
            try:
                f = residues.compile_fn(atom, x)
            except residues.Unsupported:
                continue
            if f.period is not None and d % f.period == 0:
                slope = sympy.Rational(f.slope.numerator, f.slope.denominator)
                atoms[atom] = slope * x + sympy.Rational(f.at(c) - f.slope * c)
    return dims.normalize(sympy.expand(v.xreplace(atoms)))
