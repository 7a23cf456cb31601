"""YAML -> plain Python values that remember their line and column.

Uses PyYAML's safe composer (no python tags), keeps every key's position,
rejects duplicate keys, and bounds alias expansion (billion-laughs documents).
"""

from __future__ import annotations

import yaml

from ..errors import Problem

try:  # the C loader is several times faster and keeps marks
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

MAX_NODES = 200_000
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap")


class LMap(dict):
    """A mapping with positions: .line/.column of the mapping and .pos[key] of each key."""

    line: int = 0
    column: int = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pos: dict = {}
        self.value_pos: dict = {}

    def where(self, key) -> tuple[int, int]:
        return self.pos.get(key, (self.line, self.column))

    def value_where(self, key) -> tuple[int, int]:
        return self.value_pos.get(key, self.where(key))


class LList(list):
    line: int = 0
    column: int = 0

    def __init__(self, *args):
        super().__init__(*args)
        self.pos: list = []

    def where(self, index: int) -> tuple[int, int]:
        return self.pos[index] if index < len(self.pos) else (self.line, self.column)


def _mark(node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Converter:
    def __init__(self):
        self.constructor = yaml.constructor.SafeConstructor()
        self.count = 0
        self.problems: list[Problem] = []

    def convert(self, node):
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge()
        if node.tag not in _PLAIN_TAGS and not isinstance(node, yaml.ScalarNode):
            line, column = _mark(node)
            self.problems.append(
                Problem(f"unsupported YAML value: tag {node.tag!r} is not allowed", line=line, column=column)
            )
            return None
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node)
        if isinstance(node, yaml.SequenceNode):
            out = LList()
            out.line, out.column = _mark(node)
            for item in node.value:
                out.append(self.convert(item))
                out.pos.append(_mark(item))
            return out
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            line, column = _mark(node)
            self.problems.append(Problem(f"unsupported YAML value: {exc.problem}", line=line, column=column))
            return None

    def mapping(self, node):
        try:
            self.constructor.flatten_mapping(node)  # resolves `<<:` merge keys
        except yaml.constructor.ConstructorError as exc:
            line, column = _mark(node)
            self.problems.append(Problem(f"bad YAML merge: {exc.problem}", line=line, column=column))
        out = LMap()
        out.line, out.column = _mark(node)
        for key_node, value_node in node.value:
            key = self.convert(key_node)
            where = _mark(key_node)
            if not isinstance(key, (str, int, bool)) or key is None:
                self.problems.append(
                    Problem(f"keys must be plain words, received {key!r}", line=where[0], column=where[1])
                )
                continue
            if key in out:
                first = out.pos[key][0]
                self.problems.append(
                    Problem(f"duplicate key {key!r} (first given on line {first})", line=where[0], column=where[1])
                )
                continue
            out[key] = self.convert(value_node)
            out.pos[key] = where
            out.value_pos[key] = _mark(value_node)
        return out


class _TooLarge(Exception):
    pass


def load(text: str) -> tuple[object, list[Problem]]:
    """Parse YAML text; returns (value, problems). The value is None when the text is unusable."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        return None, [Problem(f"YAML syntax error: {message}", line=line, column=column)]
    except yaml.YAMLError as exc:
        return None, [Problem(f"YAML error: {exc}")]
    if node is None:
        return None, [Problem("the file is empty: expected a mapping with archplan, name, inputs and layers")]
    converter = _Converter()
    try:
        value = converter.convert(node)
    except _TooLarge:
        return None, [Problem(f"the document expands to more than {MAX_NODES} values (YAML aliases?); refusing it")]
    except RecursionError:
        return None, [Problem("the document is nested too deeply (recursive YAML aliases?)")]
    return value, converter.problems
