"""Safe text for generated Python: literals from validated values, escaped free text, names, and lines laid out
as ruff format writes them (calls, statements, signatures, docstrings).

Nothing here copies YAML text into code. Identifiers are asserted, numbers go through repr of int/float,
strings only from op choice lists (a fixed alphabet), and free text only into escaped docstrings.
"""

from __future__ import annotations

import builtins
import keyword
import math
import re
import textwrap
import unicodedata


from .codegen_errors import CodegenError, SymbolicValue

LINE = 120
_WORD = re.compile(r"^[A-Za-z0-9_]+$")
# names generated code uses itself: locals and classes must not shadow them
GENERATED_NAMES = frozenset({"self", "torch", "nn", "F", "super", "build_model", "block"})
# words written in capitals inside CamelCase class names: resnet50 -> ResNet50, mobilenet_v2 -> MobileNetV2
ACRONYMS = {
    "resnet": "ResNet", "resnext": "ResNeXt", "mobilenet": "MobileNet", "efficientnet": "EfficientNet",
    "densenet": "DenseNet", "squeezenet": "SqueezeNet", "shufflenet": "ShuffleNet", "googlenet": "GoogLeNet",
    "lenet": "LeNet", "alexnet": "AlexNet", "convnext": "ConvNeXt", "regnet": "RegNet", "vgg": "VGG",
    "unet": "UNet", "vit": "ViT", "gpt": "GPT", "mlp": "MLP", "cnn": "CNN", "rnn": "RNN", "lstm": "LSTM",
    "gru": "GRU", "se": "SE", "mbconv": "MBConv", "espcn": "ESPCN", "mnist": "MNIST", "bn": "BN",
    "ffn": "FFN", "attn": "Attn", "qkv": "QKV",
}  # fmt: skip


def local_name(name: str, taken: set) -> str:
    """A local variable for a layer or input: builtins and generated names get a trailing underscore
    (input -> input_), so nothing is shadowed; the layer's attribute and state_dict key keep the name."""
    safe = name if name not in GENERATED_NAMES and not hasattr(builtins, name) else f"{name}_"
    while safe in taken:
        safe += "_"
    return safe


def identifier(name: str) -> str:
    """An identifier that the spec validated; asserted again here because it becomes code."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or not name.isascii():
        raise CodegenError(f"{name!r} is not a Python identifier and cannot be used in generated code")
    return name


def literal(value) -> str:
    """Python source for a validated argument value: int, float, bool, None, a choice string or a tuple."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CodegenError(f"the value {value!r} cannot be written as a Python literal")
        return repr(value)
    if isinstance(value, str):
        if not _WORD.match(value):
            raise CodegenError(f"the value {value!r} is not a plain option name")
        return f'"{value}"'
    if isinstance(value, (tuple, list)):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    integer = _as_int(value)
    if integer is not None:
        return repr(integer)
    symbols = getattr(value, "free_symbols", None)
    if symbols:
        raise SymbolicValue({str(s) for s in symbols})
    raise CodegenError(f"the value {value!r} cannot be written as a Python literal")


def _as_int(value):
    try:
        if getattr(value, "is_Integer", False):
            return int(value)
    except TypeError:
        return None
    return None


def camel(name: str) -> str:
    """double_conv -> DoubleConv, resnet50 -> ResNet50, mobilenet_v2 -> MobileNetV2 (ACRONYMS)."""
    words = []
    for part in identifier(name).split("_"):
        head, digits = re.match(r"([A-Za-z]*)(.*)", part).groups()
        words.append(ACRONYMS.get(head.lower(), head[:1].upper() + head[1:]) + digits)
    text = "".join(words) or "Net"
    return text if text[0].isalpha() else f"Net{text}"


def _escape_char(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    if ch == '"':
        return '\\"'
    if ch == "\t":
        return "    "
    if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return ch


def docstring_lines(text: str, width: int = 96) -> list[str]:
    """Free text as docstring lines: wrapped, each escaped so that no quote, backslash, line break
    or control character can end the string or change its meaning; nothing is stripped but spaces."""
    out: list[str] = []
    for paragraph in text.splitlines():
        chunks = textwrap.wrap(paragraph, width, break_long_words=True, break_on_hyphens=False) or [""]
        for chunk in chunks:
            line = ""
            for ch in chunk:
                piece = _escape_char(ch)
                if len(line) + len(piece) > width + 16:
                    out.append(line.rstrip())
                    line = ""
                line += piece
            out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


def comment_text(text: str) -> str:
    """One line of text safe in a comment (no line breaks or control characters)."""
    return "".join(_escape_char(ch) for ch in " ".join(text.split()))


def flat(arg) -> str:
    """An argument: source text, or a nested call (func, [args])."""
    if isinstance(arg, str):
        return arg
    func, args = arg
    return f"{func}({', '.join(flat(a) for a in args)})"


def _exploded(head: str, func: str, args: list, indent: int, tail: str) -> list[str]:
    pad, inner = " " * indent, " " * (indent + 4)
    lines = [f"{pad}{head}{func}("]
    for a in args:
        text = flat(a)
        if isinstance(a, str) or len(inner) + len(text) + 1 <= LINE:
            lines.append(f"{inner}{text},")
        else:
            lines += _exploded("", a[0], a[1], indent + 4, ",")
    return lines + [f"{pad}){tail}"]


def call(target: str, func: str, args: list, indent: int, comment: str = "") -> list[str]:
    """`target = func(args)` laid out as ruff format keeps it (exploded calls end with a magic trailing
    comma), with an optional trailing comment (moved above when the line would be too long)."""
    pad = " " * indent
    head = f"{target} = " if target else ""
    one = f"{pad}{head}{flat((func, args))}"
    if comment and len(one) + 4 + len(comment) <= LINE:
        return [f"{one}  # {comment}"]
    lines = [f"{pad}# {comment}"] if comment else []
    if len(one) <= LINE:
        return lines + [one]
    return lines + _exploded(head, func, args, indent, "")


_CALLEE = re.compile(r"[A-Za-z_][\w.]*(\[\d+\])?")  # f, self.conv, self.layers[3]
_INDEXED_CALLEE = re.compile(r"[A-Za-z_][\w.]*\[\d+\]\(")


def split_call(text: str) -> tuple | None:
    """'f(a, g(b, c))' -> ('f', ['a', 'g(b, c)']), 'self.layers[3](x)' -> ('self.layers[3]', ['x']); None
    unless the text is one call (f(x)[0] is not)."""
    indexed = _INDEXED_CALLEE.match(text)
    skip = indexed.end() - 1 if indexed else 0  # the callee's `[3]` is not the call's bracket
    open_at, depth, parts, start = None, 0, [], 0
    for i, ch in enumerate(text):
        if i < skip:
            continue
        if ch in "([{":
            depth += 1
            if depth == 1 and open_at is None:
                if ch != "(":
                    return None
                open_at = start = i + 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0 and i != len(text) - 1:
                return None
        elif ch == "," and depth == 1:
            parts.append(text[start:i].strip())
            start = i + 1
        elif ch in "'\"":
            return None
    callee = text[: open_at - 1] if open_at is not None else ""
    if not text.endswith(")") or not _CALLEE.fullmatch(callee):
        return None
    last = text[start:-1].strip()
    return text[: open_at - 1], parts + ([last] if last else [])


def statement(text: str, indent: int, comment: str = "") -> list[str]:
    """`text` on one line, or, for `target = f(...)` too long for one, the call laid out as call() does."""
    pad = " " * indent
    target, _, value = text.partition(" = ")
    parts = split_call(value) if value and len(pad) + len(text) > LINE else None
    names = [t.strip() for t in target.split(",")]
    if parts is not None and all(n.isidentifier() for n in names):  # x = f(...) or x, x_skip = f(...)
        if len(names) == 1 or len(f"{pad}{target} = {parts[0]}(") <= LINE:
            return call(target, parts[0], parts[1], indent, comment)
        return _unpacked(names, value, parts, indent, comment)
    chain = _operator_chain(value) if value and len(pad) + len(text) > LINE else None
    if chain is not None and target.isidentifier():
        return ([f"{pad}# {comment}"] if comment else []) + _wrapped_chain(target, chain, indent)
    line = f"{pad}{text}"
    if comment and len(line) + 4 + len(comment) <= LINE:
        return [f"{line}  # {comment}"]
    if comment:
        return [f"{pad}# {comment}", line]
    return [line]


def _unpacked(names: list, value: str, parts: tuple, indent: int, comment: str) -> list[str]:
    """`a, b = f(x)` too long even with the call split, as ruff format lays it out: the targets in
    parentheses, one per line, then `) = f(x)` (the call split too if it still does not fit)."""
    pad = " " * indent
    lines = [f"{pad}# {comment}"] if comment else []
    lines += [f"{pad}(", *(f"{pad}    {n}," for n in names)]
    tail = f"{pad}) = {value}"
    return lines + ([tail] if len(tail) <= LINE else _exploded(") = ", parts[0], parts[1], indent, ""))


def returned(values: list, indent: int = 8) -> list[str]:
    """`return a, b` or, too long for one line, the values in parentheses one per line (as ruff format)."""
    pad = " " * indent
    one = f"{pad}return {', '.join(values)}"
    if len(one) <= LINE or len(values) == 1:
        return [one]
    return [f"{pad}return (", *(f"{pad}    {v}," for v in values), f"{pad})"]


def _operator_chain(value: str) -> tuple | None:
    """('+', ['a', 'b', 'c']) for 'a + b + c' (names joined by one arithmetic operator), else None."""
    for op in "+-*/":
        names = value.split(f" {op} ")
        if len(names) > 1 and all(n.isidentifier() for n in names):
            return op, names
    return None


def _wrapped_chain(target: str, chain: tuple, indent: int) -> list[str]:
    """`target = a + b + c` too long for one line, as ruff format lays it out: in parentheses, on one line
    inside them if it fits, else one operand per line with the operator first."""
    pad, inner = " " * indent, " " * (indent + 4)
    op, names = chain
    one = f"{inner}{f' {op} '.join(names)}"
    body = [one] if len(one) <= LINE else [f"{inner}{names[0]}", *(f"{inner}{op} {n}" for n in names[1:])]
    return [f"{pad}{target} = (", *body, f"{pad})"]


def define(name: str, params: list[str], returns: str, indent: int = 4) -> list[str]:
    """A `def` line, or one parameter per line as ruff format lays out a long signature."""
    pad = " " * indent
    one = f"{pad}def {name}({', '.join(params)}) -> {returns}:"
    if len(one) <= LINE:
        return [one]
    return [f"{pad}def {name}("] + [f"{pad}    {p}," for p in params] + [f"{pad}) -> {returns}:"]


def docstring(lines: list[str], indent: int) -> list[str]:
    """Docstring lines (already escaped) laid out as ruff format keeps them."""
    pad = " " * indent
    if len(lines) == 1 and not lines[0].endswith(("\\", '"')) and len(pad) + len(lines[0]) + 6 <= LINE:
        return [f'{pad}"""{lines[0]}"""']
    out = [f'{pad}"""{lines[0]}']
    out += [f"{pad}{line}" if line else "" for line in lines[1:]]
    return out + [f'{pad}"""']


def spaced_slices(text: str) -> str:
    """`x[:, :n // 2]` as ruff format writes it, `x[:, : n // 2]`: a slice bound that is not a plain name,
    number or attribute makes the colons binary operators (spaces on both sides, none where a part is empty)."""
    import ast

    if ":" not in text or "[" not in text:
        return text
    node = ast.parse(text, mode="eval").body
    if not isinstance(node, ast.Subscript) or not _has_slice(node.slice):
        return text
    items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    return f"{text[: text.index('[')]}[{', '.join(_slice_item(item, text) for item in items)}]"


def _has_slice(node) -> bool:
    import ast

    return (
        isinstance(node, ast.Slice) or isinstance(node, ast.Tuple) and any(isinstance(e, ast.Slice) for e in node.elts)
    )


def _slice_item(item, text: str) -> str:
    import ast

    if not isinstance(item, ast.Slice):
        return ast.get_source_segment(text, item)
    parts = [ast.get_source_segment(text, p) if p is not None else "" for p in (item.lower, item.upper, item.step)]
    if item.step is None:
        parts = parts[:2]
    simple = all(
        p is None
        or isinstance(p, (ast.Name, ast.Constant, ast.Attribute))
        or (isinstance(p, ast.UnaryOp) and isinstance(p.operand, ast.Constant))
        for p in (item.lower, item.upper, item.step)
    )
    return ":".join(parts) if simple else " : ".join(parts).strip()
