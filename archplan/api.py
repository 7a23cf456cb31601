"""The Python API: load a YAML file once, analyse it at any sizes."""

from __future__ import annotations

import gc
import operator
import os
import stat
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

from .errors import ArchplanError, Problem
from .limits import MAX_INT
from .show import listed, shown
from .spec import NetSpec, parse_text

MAX_FILE_BYTES = 5_000_000
MAX_SIZE = MAX_INT  # a symbol's value (--set H=..., analyze({"H": ...})): int64, like every integer in a net
_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


class Net:
    """A parsed net file. `analyze()` lowers it to the IR and runs every rule."""

    def __init__(self, spec: NetSpec | None, problems: list[Problem], path: str = "", text: str = ""):
        self.spec = spec
        self.problems = problems
        self.path = path
        self.text = text

    @property
    def symbols(self) -> list[str]:
        """Every symbol name the file uses (declared or used in input shapes)."""
        if self.spec is None:
            return []
        from . import expr

        names = list(self.spec.symbols)
        seen = set(names)
        for inp in self.spec.inputs.values():
            for entry in inp.shape:
                if isinstance(entry, str):
                    try:
                        new = sorted(expr.names_in(entry) - seen)
                    except Exception:  # a malformed entry is reported by lowering
                        continue
                    names += new
                    seen.update(new)
        return names

    def check_values(self, values: dict[str, int]) -> list[str]:
        """Messages for --set values that name no symbol, are not sizes or break declared bounds."""
        usage, bounds = self._value_problems(values)
        return usage + [message for message, _ in bounds]

    def _value_problems(self, values) -> tuple[list[str], list[tuple[str, object]]]:
        """(messages for values that are no sizes of known symbols, [(message, symbol spec)] for bounds)."""
        if not isinstance(values, Mapping):
            return [f"expected a mapping of symbol name -> size, received {shown(values)}"], []
        usage, bounds = [], []
        known = self.symbols
        known_set = set(known)
        for name, value in values.items():
            shown_value = shown(value, 40)
            if not isinstance(name, str) or name not in known_set:
                label = name[:60] if isinstance(name, str) else shown(name, 40)
                usage.append(
                    f"{label}={shown_value}: {self.path or 'the net'} has no symbol {shown(name, 60)} "
                    f"(symbols: {listed(known)})"
                )
                continue
            number = _size(value)
            info = self.spec.symbols.get(name)
            if number is None or number < 1:
                usage.append(f"{name}={shown_value}: sizes must be positive integers")
            elif number > MAX_SIZE:
                usage.append(f"{name}={shown_value}: sizes must be at most 2**63 - 1")
            elif info and info.min is not None and number < info.min:
                bounds.append((f"{name}={number}: below the declared min {info.min}", info))
            elif info and info.max is not None and number > info.max:
                bounds.append((f"{name}={number}: above the declared max {info.max}", info))
        return usage, bounds

    def _checked(self, values) -> tuple[dict[str, int], list[Problem]]:
        """Sizes as ints, and declared-bound violations as located problems; ArchplanError for values
        that are no sizes of this net's symbols (the messages of `check_values`, which the CLI shows)."""
        if values is None or self.spec is None:  # a file that did not parse: its problems are the report
            return {}, []
        usage, bounds = self._value_problems(values)
        if usage:
            raise ArchplanError([Problem(message) for message in usage], self.path)
        problems = [Problem(message, line=info.pos.line, column=info.pos.column) for message, info in bounds]
        return {name: _size(value) for name, value in values.items()}, problems

    def defaults(self) -> dict[str, int]:
        return {s.name: s.default for s in self.spec.symbols.values() if s.default is not None} if self.spec else {}

    def graph(self, values: dict[str, int] | None = None):
        """The IR at these sizes; raises ArchplanError if the file has errors that prevent lowering."""
        from .build import lower

        if self.spec is None:
            raise ArchplanError(self.problems, self.path)
        values, bounds = self._checked(values)
        graph, problems = lower(self.spec, values)
        errors = [p for p in self.problems + bounds + problems if p.severity == "error"]
        if graph is None or errors:
            raise ArchplanError(errors, self.path)
        return graph

    def analyze(
        self,
        values: dict[str, int] | None = None,
        dtype: str = "float32",
        strict: bool = False,
        exact: bool = False,
        light: bool = False,
    ):
        """Shapes, parameters, MACs, memory, receptive fields, constraints, warnings and errors.

        A net whose only free size is a batch dimension is analysed in plain integers (batch.py) unless
        `exact`: figures are then polynomials in the batch symbol (batch.Batch) rather than sympy expressions.
        With `light`, a net with other free sizes is first analysed without sympy (quasi.py); its figures are
        then quasi.Q polynomials, which print, compare and evaluate through dims as sympy's would.
        """
        values, bounds = self._checked(values)
        result = None if exact else self._batch_analysis(values, bounds, dtype)
        if result is None and light and not exact:
            result = self._light_analysis(values, bounds, dtype)
        if result is None:
            result = self._analysis(values, bounds, dtype)
        if strict:
            result.errors.extend(w.as_error() for w in result.warnings)
            result.warnings = []
        result.errors.sort(key=lambda p: (p.line or 0, p.column or 0))
        return result

    def _analysis(self, values: dict, bounds: list, dtype: str, make_symbol=None):
        from .analysis import Analysis, analyze_graph, totals
        from .build import lower
        from .ir import Graph

        problems = list(self.problems) + bounds
        graph = None
        with collector_paused():
            if self.spec is not None:
                graph, lowering = lower(self.spec, values, make_symbol)
                problems += lowering
            if graph is None:  # nothing to analyse: report the problems on an empty net
                empty = Graph(self.spec.name if self.spec else "", "", {}, {}, (), {}, {}, {}, path=self.path)
                result = Analysis(empty, [], {}, {}, {}, problems, dtype=dtype)
                result.totals = totals(result)
                return result
            return analyze_graph(graph, dtype, problems)

    def _batch_analysis(self, values: dict, bounds: list, dtype: str):
        """The analysis at N = a sentinel, read back as polynomials in N; None when that does not apply."""
        from . import batch
        from .ir import SymbolInfo

        if self.spec is None or bounds:
            return None
        name = batch.batch_symbol(self.spec, [s for s in self.symbols if s not in values])
        if name is None:
            return None
        result = self._analysis({**values, name: batch.SENTINEL}, bounds, dtype)
        declared = self.spec.symbols.get(name)
        info = SymbolInfo(name, None, None, declared.default) if declared else SymbolInfo(name, declared=False)
        try:
            batch.decode_result(result, name, info)
        except batch.NotPolynomial:
            return None
        return result

    def _light_analysis(self, values: dict, bounds: list, dtype: str):
        """The analysis with light formulas; None when some part needs sympy, or the net has a problem to
        report (messages quote formulas, and sympy words them)."""
        from . import quasi, quasi_text

        if self.spec is None or bounds or all(s in values for s in self.symbols):
            return None
        try:
            result = self._analysis(values, bounds, dtype, quasi.var)
            quasi_text.accept(result)
        except quasi.NotQuasi:
            return None
        return result

    def diagram(self, values: dict[str, int] | None = None, depth: int | None = None, show=()):
        """A graphviz.Digraph of the net (displays inline in Jupyter); layers that fail are drawn in red.

        depth: collapse blocks nested deeper than this (0: one node per top-level block use); show: any of
        "params", "macs", "rf". Raises ArchplanError when the file is too broken to draw.
        """
        from . import diagram
        from .drawing import drawable

        result = self.analyze(values)
        if not drawable(self, result):
            raise ArchplanError(result.errors or [Problem("nothing to draw")], self.path)
        return diagram.build(result, depth=depth, show=show)


@contextmanager
def collector_paused():
    """The cyclic garbage collector off while a net is lowered and analysed: its passes over the growing heap
    made the cost per layer grow with the net (0.2 ms per layer at 10,000 layers, 18% of a 30,000-layer check).
    The cycles left meanwhile (about 10 objects per layer, 8 MB at 30,000 layers) are collected after."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _size(value) -> int | None:
    """An integer size (Python or numpy int, not bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def loads(text: str, path: str = "") -> Net:
    """Parse net text (what a file holds). Problems, including text too large to parse, are in Net.problems."""
    if not isinstance(text, str):
        problem = Problem(f"expected the text of a net file, received {type(text).__name__}")
        return Net(None, [problem], path, "")
    if len(text) > MAX_FILE_BYTES:
        return Net(None, [Problem(f"the text is larger than {MAX_FILE_BYTES:,} characters")], path, "")
    spec, problems = parse_text(text, path)
    return Net(spec, problems, path, text)


def load(path: str | Path) -> Net:
    """Read a net file. Raises ArchplanError when the file cannot be read: not a regular file (a directory,
    a device, a FIFO; symlinks are followed), larger than MAX_FILE_BYTES, or not UTF-8 text."""
    text = _decoded(_read(Path(path)), str(path))
    return loads(text, str(path))


def _refuse(path: Path, message: str) -> ArchplanError:
    return ArchplanError(Problem(f"cannot read the file: {message}"), str(path))


def _read(path: Path) -> bytes:
    """At most MAX_FILE_BYTES of a regular file. Never blocks: a FIFO without a writer, /dev/zero or a file
    that keeps growing are refused or cut off by what is read, not by what stat said."""
    try:
        kind = _kind(os.stat(path).st_mode)  # before opening: opening some devices has effects
        if kind:
            raise _refuse(path, f"it is {kind}, not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc)) from None
    try:
        kind = _kind(os.fstat(fd).st_mode)  # what was opened, in case the path changed since stat
        if kind:
            raise _refuse(path, f"it is {kind}, not a regular file")
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise _refuse(path, f"it is larger than {MAX_FILE_BYTES:,} bytes")
    return b"".join(chunks)


def _kind(mode: int) -> str | None:
    """What a non-regular file is ('a directory', ...), None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _FILE_KINDS if test(mode)), "a special file")


def _decoded(data: bytes, path: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        message = f"cannot read the file: it is not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be decoded)"
        problem = Problem(message, line=line, column=column)
        raise ArchplanError(problem, path) from None
    nul = text.find("\x00")
    if nul >= 0:
        line, column = _position(data, len(text[:nul].encode("utf-8")))
        problem = Problem("cannot read the file: it contains a NUL byte (not text)", line=line, column=column)
        raise ArchplanError(problem, path)
    return text


def _position(data: bytes, offset: int) -> tuple[int, int]:
    before = data[:offset].decode("utf-8", "replace")
    return before.count("\n") + 1, len(before) - before.rfind("\n")
