"""YAML -> plain Python values that remember their line and column.

Built from libyaml's flat event stream (its parser is not recursive), iteratively, with an explicit
stack: nothing recursive ever sees the document. Every value YAML would materialise is counted
before it is built, aliases and merge keys (`<<`) at their expanded size, and nesting is bounded,
so billion-laughs documents and `[[[[...` are refused in linear time with a located message.
Only the safe scalar types are accepted; keys must be text (names); duplicate keys are errors, keys
brought in by `<<` are overridden by explicit ones (YAML 1.1 merge).
"""

from __future__ import annotations

import yaml

from ..errors import Problem
from ..limits import MAX_INT
from ..show import shown

try:  # the C parser is several times faster and keeps marks
    _Parser = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Parser = yaml.SafeLoader

MAX_VALUES = 200_000  # values after expanding aliases and merges
MAX_DEPTH = 100  # nesting of lists and mappings, aliases included
MAX_KEY_LENGTH = 200
_MAX_NUMBER_TEXT = 100  # characters of an int/float scalar (sexagesimal ints would otherwise cost n**2)

_TAG = "tag:yaml.org,2002:"
_COLLECTION_TAGS = (None, "!", _TAG + "map", _TAG + "seq", _TAG + "omap")
_SCALAR_TAGS = frozenset(_TAG + t for t in ("null", "bool", "int", "float", "str", "binary", "timestamp"))
_MERGE = object()  # the `<<` key
_IN_PROGRESS = object()  # an anchor whose collection is still open: an alias to it is recursive


class LMap(dict):
    """A mapping with positions: .line/.column of the mapping and .pos[key] of each key.

    .size counts the values it expands to (itself, keys, nested values); .depth its nesting.
    """

    line: int = 0
    column: int = 0
    size: int = 1
    depth: int = 1

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
    size: int = 1
    depth: int = 1

    def __init__(self, *args):
        super().__init__(*args)
        self.pos: list = []

    def where(self, index: int) -> tuple[int, int]:
        return self.pos[index] if index < len(self.pos) else (self.line, self.column)


def _mark(event) -> tuple[int, int]:
    return event.start_mark.line + 1, event.start_mark.column + 1


class _Refused(Exception):
    def __init__(self, problem: Problem):
        self.problem = problem


class _Frame:
    """An open list or mapping while its events arrive."""

    __slots__ = ("value", "anchor", "supported", "key", "key_where", "merges", "merge_where")

    def __init__(self, value, anchor, supported: bool):
        self.value = value
        self.anchor = anchor
        self.supported = supported
        self.key = None  # mappings: None while waiting for a key
        self.key_where = (0, 0)
        self.merges: list = []
        self.merge_where = None


_MISSING = object()
_BAD_KEY = object()
_NO_DOCUMENT = object()


class _Builder:
    def __init__(self):
        self.count = 0
        self.problems: list[Problem] = []
        self.anchors: dict = {}
        self.plain: dict = {}  # plain scalar text -> value, for the common, immutable cases
        self.stack: list[_Frame] = []

    def problem(self, message: str, where: tuple[int, int], hint: str | None = None) -> None:
        self.problems.append(Problem(message, line=where[0], column=where[1], hint=hint))

    def counted(self, amount: int, where: tuple[int, int]) -> None:
        self.count += amount
        if self.count > MAX_VALUES:
            raise _Refused(
                Problem(
                    f"the document expands to more than {MAX_VALUES} values (YAML aliases or merges?); refusing it",
                    line=where[0],
                    column=where[1],
                )
            )

    def deep(self, depth: int, where: tuple[int, int]) -> None:
        if depth > MAX_DEPTH:
            raise _Refused(
                Problem(
                    f"the document is nested too deeply (more than {MAX_DEPTH} levels of lists and mappings)",
                    line=where[0],
                    column=where[1],
                )
            )

    # -- the event loop ----------------------------------------------------------------------------
    def document(self, parser) -> object:
        """Consume one document's events (after DocumentStart, through DocumentEnd); returns its value."""
        root = None
        stack = self.stack
        while True:
            event = parser.get_event()
            kind = type(event)
            if kind is yaml.ScalarEvent:
                where = _mark(event)
                self.counted(1, where)
                value = self.scalar(event, where)
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, 1, 0)
                size, depth = 1, 0
            elif kind is yaml.AliasEvent:
                where = _mark(event)
                value, size, depth = self.alias(event, where)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                where = _mark(event)
                self.counted(1, where)
                self.deep(len(stack) + 1, where)
                value = LMap() if kind is yaml.MappingStartEvent else LList()
                value.line, value.column = where
                supported = event.tag in _COLLECTION_TAGS
                if not supported:
                    self.problem(f"unsupported YAML value: tag {shown(event.tag)} is not allowed", where)
                if event.anchor is not None:
                    self.anchors[event.anchor] = _IN_PROGRESS
                stack.append(_Frame(value, event.anchor, supported))
                continue
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                value = self.finish(frame)
                where, size, depth = (value.line, value.column), value.size, value.depth
                if not frame.supported:
                    value = None
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (value, size, depth)
            elif kind is yaml.DocumentEndEvent:
                return root
            else:  # pragma: no cover - libyaml only sends the events above inside a document
                raise _Refused(Problem(f"unexpected YAML event {type(event).__name__}"))
            if not stack:
                root = "<<" if value is _MERGE else value
            else:
                self.add(stack[-1], value, where, size, depth, event)

    def scalar(self, event, where: tuple[int, int]) -> object:
        text, tag = event.value, event.tag
        plain = tag is None and event.implicit[0]
        if plain:
            cached = self.plain.get(text, _MISSING)
            if cached is not _MISSING:
                return cached
        if tag is None or tag == "!":
            tag = _RESOLVER.resolve(yaml.ScalarNode, text, event.implicit)
        if tag == _TAG + "str" or tag == _TAG + "value":  # `=` (YAML 1.1 value key) is text, as in PyYAML
            if plain:
                self.plain[text] = text
            return text
        if tag == _TAG + "merge":
            return _MERGE
        if tag not in _SCALAR_TAGS:
            self.problem(f"unsupported YAML value: tag {shown(tag)} is not allowed", where)
            return None
        if tag in (_TAG + "int", _TAG + "float") and len(text) > _MAX_NUMBER_TEXT:
            self.problem(f"the number {shown(text, 40)} is too long (at most {_MAX_NUMBER_TEXT} characters)", where)
            return None
        node = yaml.ScalarNode(tag, text, event.start_mark, event.end_mark)
        try:
            value = _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, node)
        except Exception as exc:  # PyYAML's constructors raise assorted errors on malformed tagged text (!!int '')
            detail = str(exc) if isinstance(exc, ValueError) else ""
            reason = getattr(exc, "problem", None) or detail or f"not a valid {tag.rsplit(':', 1)[-1]}"
            self.problem(f"unsupported YAML value {shown(text, 40)}: {reason}", where)
            return None
        if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT <= value <= MAX_INT:
            self.problem(f"the integer {shown(value)} is too large (at most 2**63 - 1)", where)
            return None
        if plain:
            self.plain[text] = value
        return value

    def alias(self, event, where: tuple[int, int]) -> tuple:
        target = self.anchors.get(event.anchor)
        if target is None:
            message = f"YAML alias *{event.anchor[:40]} names no anchor defined before it"
            raise _Refused(Problem(message, line=where[0], column=where[1]))
        if target is _IN_PROGRESS:
            message = f"YAML alias *{event.anchor[:40]} refers to a value that contains it (recursive)"
            raise _Refused(Problem(message, line=where[0], column=where[1]))
        value, size, depth = target
        self.counted(size, where)
        self.deep(len(self.stack) + depth, where)
        return value, size, depth

    def add(self, frame: _Frame, value, where: tuple[int, int], size: int, depth: int, event) -> None:
        parent = frame.value
        parent.size += size
        if depth + 1 > parent.depth:
            parent.depth = depth + 1
        if value is _MERGE and (isinstance(parent, LList) or frame.key is not None):
            value = "<<"  # `<<` as a list item or a value is plain text
        if isinstance(parent, LList):
            parent.append(value)
            parent.pos.append(where)
            return
        key = frame.key
        if key is None:  # this value is a key
            frame.key, frame.key_where = self.checked_key(value, where, event), where
            return
        frame.key = None
        if key is _BAD_KEY:
            return
        if key is _MERGE:
            self.merge(frame, value, frame.key_where)
            return
        if key in parent:
            first = parent.pos[key][0]
            self.problem(f"duplicate key {shown(key)} (first given on line {first})", frame.key_where)
            return
        parent[key] = value
        parent.pos[key] = frame.key_where
        parent.value_pos[key] = where

    def checked_key(self, key, where: tuple[int, int], event) -> object:
        if key is _MERGE or (isinstance(key, str) and len(key) <= MAX_KEY_LENGTH):
            return key
        if isinstance(key, str):
            self.problem(f"keys must be names of at most {MAX_KEY_LENGTH} characters, received {shown(key)}", where)
            return _BAD_KEY
        hint = None
        number = isinstance(key, (int, float)) and not isinstance(key, bool)
        if isinstance(event, yaml.ScalarEvent) and event.value and not number:
            hint = f"YAML reads {shown(event.value)} as {shown(key)}; quote it to use it as a name"
        elif not number and not isinstance(key, (list, dict)):
            hint = "quote it to use it as a name"
        self.problem(f"keys must be names, received {shown(key)}", where, hint)
        return _BAD_KEY

    def merge(self, frame: _Frame, value, where: tuple[int, int]) -> None:
        if frame.merge_where is not None:
            self.problem(f"duplicate key '<<' (first given on line {frame.merge_where[0]})", where)
            return
        frame.merge_where = where
        sources = [value] if isinstance(value, LMap) else value if isinstance(value, LList) else None
        if sources is None or not all(isinstance(s, LMap) for s in sources):
            self.problem(
                f"bad YAML merge: `<<` takes a mapping or a list of mappings, received {shown(value)}",
                where,
            )
            return
        frame.merges = sources

    def finish(self, frame: _Frame) -> object:
        value = frame.value
        if not frame.merges:
            return value
        # YAML 1.1 merge: explicit keys win, then the earlier of the merged mappings; merged keys first
        out = LMap()
        out.line, out.column, out.size, out.depth = value.line, value.column, value.size, value.depth
        for source in frame.merges:
            for key, item in source.items():
                if key not in value and key not in out:
                    out[key] = item
                    out.pos[key] = source.where(key)
                    out.value_pos[key] = source.value_where(key)
        for key, item in value.items():
            out[key] = item
            out.pos[key] = value.pos[key]
            out.value_pos[key] = value.value_pos[key]
        return out


_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def load(text: str) -> tuple[object, list[Problem]]:
    """Parse YAML text; returns (value, problems). The value is None when the text is unusable."""
    builder = _Builder()
    parser = _Parser(text)
    try:
        value = _single_document(parser, builder)
    except _Refused as exc:
        return None, [exc.problem]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        if "maximum nesting depth" in message:  # libyaml's own limit, where it is built with one
            message = f"the document is nested too deeply (more than {MAX_DEPTH} levels of lists and mappings)"
            return None, [Problem(message, line=line, column=column)]
        return None, [Problem(f"YAML syntax error: {message}", line=line, column=column)]
    except yaml.reader.ReaderError as exc:
        line, column = _text_position(text, exc.position)
        message = f"unacceptable character #x{exc.character:04x} in the text: {exc.reason}"
        return None, [Problem(message, line=line, column=column)]
    except yaml.YAMLError as exc:
        return None, [Problem(f"YAML error: {shown(str(exc), 300)}")]
    finally:
        parser.dispose()
    if value is _NO_DOCUMENT:
        return None, [Problem("the file is empty: expected a mapping with archplan, name, inputs and layers")]
    if value is None and not builder.problems:
        return None, [Problem("the document is null: expected a mapping with archplan, name, inputs and layers")]
    return value, builder.problems


def _single_document(parser, builder: _Builder) -> object:
    parser.get_event()  # StreamStart
    event = parser.get_event()
    if isinstance(event, yaml.StreamEndEvent):
        return _NO_DOCUMENT
    value = builder.document(parser)
    event = parser.get_event()
    if not isinstance(event, yaml.StreamEndEvent):
        line, column = _mark(event)
        raise _Refused(Problem("expected a single YAML document, found another ('---')", line=line, column=column))
    return value


def _text_position(text, offset: int) -> tuple[int | None, int | None]:
    """Line and column of a byte offset into the UTF-8 form of text (libyaml counts bytes)."""
    if not isinstance(text, str):
        return None, None
    before = text.encode("utf-8", "surrogatepass")[:offset].decode("utf-8", "ignore")
    return before.count("\n") + 1, len(before) - before.rfind("\n")
