"""Codes: how a generated class writes a value (a parameter, a product, a multiple, a sum, a constant),
checked against the value every instance of the class needs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    text: str
    terms: tuple = ()  # ((param, multiplier, divisor), ...)
    const: object = None  # a literal value instead of terms
    product: tuple = ()  # (p, q): the value is p * q

    def value(self, env: dict):
        if self.product:
            p, q = (env.get(n) for n in self.product)
            ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (p, q))
            return p * q if ok else None
        if self.const is not None or not self.terms:
            return self.const
        total = 0
        for param, mul, div in self.terms:
            v = env.get(param)
            if not isinstance(v, int) or isinstance(v, bool):
                return None
            total += v * mul // div
        return total

    def plus(self, other: Code) -> Code | None:
        if self.const is not None or other.const is not None or self.product or other.product:
            return None
        return Code(f"{self.text} + {other.text}", self.terms + other.terms)

    @property
    def params(self) -> tuple:
        return self.product or tuple(p for p, _, _ in self.terms) or ((self.text,) if self.const is None else ())


def _same(values: list) -> bool:
    return all(type(v) is type(values[0]) and v == values[0] for v in values)


def _fits(code: Code, values: list, envs: list) -> bool:
    for v, env in zip(values, envs):
        if code.terms or code.product:
            got = code.value(env)
        else:
            got = env.get(code.text) if code.const is None else code.const
        if got is None or type(got) is not type(v) or got != v:
            return False
    return True


def _param_codes(param: str, value, first_env: dict) -> list[Code]:
    have = first_env.get(param)
    if not isinstance(value, int) or isinstance(value, bool) or not isinstance(have, int) or isinstance(have, bool):
        return [Code(param)] if type(have) is type(value) and have == value else []
    out = [Code(param, ((param, 1, 1),))]
    if have and value % have == 0 and value // have > 1:
        out.append(Code(f"{value // have} * {param}", ((param, value // have, 1),)))
    if value and have % value == 0 and have // value > 1:
        out.append(Code(f"{param} // {have // value}", ((param, 1, have // value),)))
    return out


def _candidates(names, value, first_env: dict) -> list[Code]:
    """Codes for a value: a parameter, a product of two, then a multiple or a fraction of one."""
    singles = [_param_codes(name, value, first_env) for name in names]
    out = [codes[0] for codes in singles if codes and codes[0].text in names]
    ints = [n for n in names if isinstance(first_env.get(n), int) and not isinstance(first_env.get(n), bool)]
    if isinstance(value, int) and not isinstance(value, bool):
        for i, p in enumerate(ints):
            for q in ints[i + 1 :]:
                if first_env[p] * first_env[q] == value:
                    out.append(Code(f"{p} * {q}", ((p, first_env[q], 1),), None, (p, q)))
    return out + [c for codes in singles for c in codes[1:]]
