"""Size limits every value in a net respects: no input text can exhaust time, memory or the stack.

Integers fit in 64 bits (torch sizes are int64), floats are finite, fractions have 64-bit parts, and
symbolic results have a bounded size, degree and expanded term count. `bounded` checks one value.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from . import dims, quasi_facts
from .errors import RuleError
from .show import shown

MAX_INT = 2**63 - 1  # integers anywhere in a net (YAML values, expression results, --set) fit in int64
MAX_SYMBOLIC_NODES = 1000  # sympy tree nodes of one symbolic result
MAX_DEGREE = 64  # polynomial degree of a symbolic result (H**64; not (H**64)**2)
MAX_TERMS = 10_000  # terms a symbolic result can expand to ((H+W+1)**64 would be 2,145; products multiply)
MAX_NESTING = 64  # divisions, Min and Max nested in a size (sympy's walks recurse and fail a few hundred deep)


def bounded(value: Any, text: str) -> Any:
    """The value if its size is bounded, else a RuleError: every step of every expression passes here."""
    if isinstance(value, int):
        if -MAX_INT <= value <= MAX_INT:
            return value
        raise RuleError(f"the result of {shown(text)} is too large: {shown(value)} (integers are at most 2**63 - 1)")
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise RuleError(f"the result of {shown(text)} is not a finite number ({value})")
    if isinstance(value, Fraction):
        if max(abs(value.numerator), value.denominator) <= MAX_INT:
            return value
        raise RuleError(f"the result of {shown(text)} is too large: {shown(value)} (parts at most 2**63 - 1)")
    if isinstance(value, dims.Q):
        quasi_facts.check_size(value)
    elif dims.is_expr(value):
        problem = symbolic_problem(value)
        if problem:
            raise RuleError(f"the result of {shown(text)} is {problem}")
    return value


def nesting(value: Any) -> int:
    """How deeply divisions, Min and Max nest in a formula, counted up to MAX_NESTING + 1 (without recursion:
    sympy's own walks recurse, and fail on a formula nested a few hundred deep)."""
    if isinstance(value, dims.Q):
        return value.depth
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if not getattr(node, "args", ()) or not dims.is_expr(node):
            continue
        if not (node.is_Add or node.is_Mul or node.is_Pow):
            depth += 1
            if depth > MAX_NESTING:
                return depth
        deepest = max(deepest, depth)
        stack.extend((arg, depth) for arg in node.args)
    return deepest


def symbolic_problem(value: Any) -> str | None:
    """Why a sympy result is too large to carry on with (None when it is fine): too many nodes, a number
    outside int64 or not finite, too high a degree, or too many terms once expanded."""
    degree: dict = {}
    terms: dict = {}
    stack = [(value, False)]
    seen = 0
    while stack:
        node, ready = stack.pop()
        if node in degree:
            continue
        if not ready:
            seen += 1
            if seen > MAX_SYMBOLIC_NODES:
                return f"too large a formula (more than {MAX_SYMBOLIC_NODES} parts)"
            if node.args:
                stack.append((node, True))
                stack.extend((arg, False) for arg in node.args)
                continue
        problem = _measure(node, degree, terms)
        if problem:
            return problem
    return None


def _measure(node: Any, degree: dict, terms: dict) -> str | None:
    args = node.args
    if not args:
        if node.is_Symbol:
            degree[node], terms[node] = 1, 1
            return None
        if node.is_Rational:
            if max(abs(int(node.p)), int(node.q)) > MAX_INT:
                return "too large: it holds a number beyond 2**63 - 1"
        elif node.is_number and not (node.is_Float and node.is_finite):
            return f"not a finite number ({node})"
        degree[node], terms[node] = 0, 1
        return None
    if node.is_Pow:
        base, exponent = args
        power = abs(int(exponent)) if exponent.is_Integer else MAX_DEGREE + 1
        if exponent.is_Integer and power > MAX_DEGREE and degree[base] == 0:
            power = 0  # a number to a power is a number; its size was checked
        d = degree[base] * power + degree[exponent]
        k = terms[base]
        t = math.comb(power + k - 1, k - 1) if k > 1 and power <= MAX_DEGREE else 1
    elif node.is_Mul:
        d = sum(degree[a] for a in args)
        t = math.prod(terms[a] for a in args)
    elif node.is_Add:
        d = max(degree[a] for a in args)
        t = sum(terms[a] for a in args)
    else:  # floor, Min, Max, Mod, relations: opaque to expansion, as large as their largest part
        d = max(degree[a] for a in args)
        t = max(terms[a] for a in args)
    if d > MAX_DEGREE:
        return f"of too high a degree ({d}; at most {MAX_DEGREE})"
    if t > MAX_TERMS:
        return f"too large once expanded (more than {MAX_TERMS} terms)"
    degree[node], terms[node] = d, t
    return None
