"""The Python API: load a YAML file once, analyse it at any sizes."""

from __future__ import annotations

from pathlib import Path

from .errors import ArchplanError, Problem
from .spec import NetSpec, parse_text

MAX_FILE_BYTES = 5_000_000


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
        for inp in self.spec.inputs.values():
            for entry in inp.shape:
                if isinstance(entry, str):
                    try:
                        names += sorted(expr.names_in(entry) - set(names))
                    except Exception:  # a malformed entry is reported by lowering
                        pass
        return names

    def check_values(self, values: dict[str, int]) -> list[str]:
        """Messages for --set values that name no symbol or break declared bounds."""
        messages = []
        known = self.symbols
        for name, value in values.items():
            if name not in known:
                messages.append(
                    f"{name}={value}: {self.path or 'the net'} has no symbol {name!r} "
                    f"(symbols: {', '.join(known) or 'none'})"
                )
                continue
            info = self.spec.symbols.get(name)
            if value < 1:
                messages.append(f"{name}={value}: sizes must be positive integers")
            elif info and info.min is not None and value < info.min:
                messages.append(f"{name}={value}: below the declared min {info.min}")
            elif info and info.max is not None and value > info.max:
                messages.append(f"{name}={value}: above the declared max {info.max}")
        return messages

    def defaults(self) -> dict[str, int]:
        return {s.name: s.default for s in self.spec.symbols.values() if s.default is not None} if self.spec else {}

    def graph(self, values: dict[str, int] | None = None):
        """The IR at these sizes; raises ArchplanError if the file has errors that prevent lowering."""
        from .build import lower

        if self.spec is None:
            raise ArchplanError(self.problems, self.path)
        graph, problems = lower(self.spec, values or {})
        errors = [p for p in self.problems + problems if p.severity == "error"]
        if graph is None or errors:
            raise ArchplanError(errors, self.path)
        return graph

    def analyze(self, values: dict[str, int] | None = None, dtype: str = "float32", strict: bool = False):
        """Shapes, parameters, MACs, memory, receptive fields, constraints, warnings and errors."""
        from .analysis import Analysis, analyze_graph
        from .build import lower
        from .ir import Graph

        problems = list(self.problems)
        graph = None
        if self.spec is not None:
            graph, lowering = lower(self.spec, values or {})
            problems += lowering
        if graph is None:  # nothing to analyse: report the problems on an empty net
            from .analysis import totals

            empty = Graph(self.spec.name if self.spec else "", "", {}, {}, (), {}, {}, {}, path=self.path)
            result = Analysis(empty, [], {}, {}, {}, problems, dtype=dtype)
            result.totals = totals(result)
            return result
        result = analyze_graph(graph, dtype, problems)
        if strict:
            result.errors.extend(w.as_error() for w in result.warnings)
            result.warnings = []
        result.errors.sort(key=lambda p: (p.line or 0, p.column or 0))
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


def loads(text: str, path: str = "") -> Net:
    spec, problems = parse_text(text, path)
    return Net(spec, problems, path, text)


def load(path: str | Path) -> Net:
    """Read a net file. Raises ArchplanError when the file cannot be read."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ArchplanError(Problem(f"the file is larger than {MAX_FILE_BYTES} bytes"), str(path))
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArchplanError(Problem(f"cannot read the file: {exc}"), str(path)) from None
    return loads(text, str(path))
