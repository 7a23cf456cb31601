"""Write a diagram as DOT, SVG, PNG or PDF: finds a layout program, and says how to get one when none exists."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

FORMATS = ("svg", "png", "pdf", "dot")
EXTENSIONS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
INSTALL_HINT = (
    "install Graphviz: apt-get install graphviz | brew install graphviz | conda install graphviz"
    " (or pip install 'archplan[render]' for svg/png without pdf)"
)


class NoLayoutProgram(Exception):
    """No program can draw this format; the DOT source was written to `dot_path` instead."""

    def __init__(self, fmt: str, dot_path: Path | None):
        self.fmt, self.dot_path = fmt, dot_path
        wrote = (
            f"Wrote the DOT source to {dot_path}"
            if dot_path is not None
            else "The DOT source was not written (a .dot file of that name exists): use -o NAME.dot"
        )
        super().__init__(f"Graphviz's `dot` is needed for {fmt} output and was not found; {INSTALL_HINT}. {wrote}")


class LayoutFailed(Exception):
    """The layout program ran and failed."""


@dataclass(frozen=True)
class Program:
    """A command that reads DOT on stdin and writes the picture on stdout."""

    executable: str
    formats: tuple

    def run(self, source: str, fmt: str, timeout: float = 120) -> bytes:
        try:
            done = subprocess.run(
                [self.executable, f"-T{fmt}"],
                input=source.encode("utf-8"),
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise LayoutFailed(f"{Path(self.executable).name} took more than {timeout:.0f} s") from None
        if done.returncode != 0 or not done.stdout:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise LayoutFailed(f"{Path(self.executable).name} failed: {message[-1] if message else done.returncode}")
        return done.stdout


def programs() -> list[Program]:
    """Layout programs found on PATH, best first. ARCHPLAN_DOT names one explicitly ('' disables all)."""
    override = os.environ.get("ARCHPLAN_DOT")
    if override is not None:
        found = shutil.which(override) if override else None
        pure = found is not None and "graphviz-pure" in Path(found).name
        return [Program(found, ("svg", "png") if pure else ("svg", "png", "pdf"))] if found else []
    out = []
    if shutil.which("dot"):
        out.append(Program(shutil.which("dot"), ("svg", "png", "pdf")))
    if shutil.which("graphviz-pure"):  # the optional extra archplan[render]: no pdf yet
        out.append(Program(shutil.which("graphviz-pure"), ("svg", "png")))
    return out


def format_for(path: str, fmt: str | None) -> str:
    """The output format: given, else from the extension. Raises ValueError when neither says."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        return fmt
    if path == "-":
        return "dot"
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise ValueError(
            f"cannot tell the format from {path!r}; use an extension ({', '.join(EXTENSIONS)}) or --format"
        )
    return EXTENSIONS[suffix]


def picture(source: str, fmt: str) -> tuple[bytes, str] | None:
    """The picture bytes and the program that drew them, or None when no program draws `fmt`."""
    for program in programs():
        if fmt in program.formats:
            return program.run(source, fmt), Path(program.executable).name
    return None


def write(source: str, path: str | Path, fmt: str, protected: tuple = ()) -> str:
    """Write DOT source as `fmt` to `path`; returns what drew it ('' for DOT).

    Raises OutputError (nothing written), NoLayoutProgram (after writing the .dot next to `path`, unless a
    file of that name exists) or LayoutFailed.
    """
    from .outputs import check_target, write_file

    path = check_target(path, protected)
    if fmt == "dot":
        write_file(path, source, protected)
        return ""
    drawn = picture(source, fmt)
    if drawn is None:
        dot_path = path.with_suffix(".dot")
        if dot_path.exists() or dot_path.is_symlink():
            raise NoLayoutProgram(fmt, None)
        write_file(dot_path, source, protected)
        raise NoLayoutProgram(fmt, dot_path)
    data, program = drawn
    write_file(path, data, protected)
    return program


def _echo(message: str, err: bool = False, nl: bool = True) -> None:
    print(message, end="\n" if nl else "", file=sys.stderr if err else sys.stdout)


def drawable(net, result) -> bool:
    """False when the file is too broken to draw (YAML or structure errors, nothing lowered)."""
    return net.spec is not None and bool(result.graph.nodes)


def run_render(
    net,
    values: dict,
    output: str | None,
    fmt: str | None,
    rankdir: str,
    depth: int | None,
    show: tuple,
    chart: str | None,
    echo: Callable | None = None,
) -> int:
    """What `archplan render` does once options are parsed; returns the exit status (0 or 1).

    A net with analysis errors is still drawn (errors in red) and gives 1; a file that cannot be drawn
    writes nothing.
    """
    from . import diagram
    from .report import problem_lines

    echo = echo or _echo
    result = net.analyze(values, light="memory" not in show and not chart)  # the memory planner needs sympy
    problems = problem_lines(result, net.path)
    if not drawable(net, result):
        for line in problems or [f"{net.path}: error: nothing to draw"]:
            echo(line, err=True)
        echo("nothing written", err=True)
        return 1
    from .outputs import OutputError, check_target

    protected = (net.path,) if net.path else ()
    try:  # both targets are checked before either is written
        for target in (output, chart):
            if target is not None and target != "-":
                check_target(target, protected)
    except OutputError as exc:
        echo(str(exc), err=True)
        echo("nothing written", err=True)
        return 1
    ok = result.ok
    if output is not None:
        fmt = format_for(output, fmt)
        source = diagram.build(result, depth=depth, show=show, rankdir=rankdir).source
        if output == "-":
            echo(source, nl=False)
        else:
            try:
                program = write(source, output, fmt, protected)
                echo(f"wrote {output}" + (f" (drawn by {program})" if program else ""), err=True)
            except (NoLayoutProgram, LayoutFailed, OutputError) as exc:
                echo(str(exc) if isinstance(exc, OutputError) else f"error: {exc}", err=True)
                ok = False
    if chart is not None:
        from .chart import ChartUnavailable, write_chart

        try:
            write_chart(result, chart, values, protected)
            echo(f"wrote {chart}", err=True)
        except (ChartUnavailable, OutputError) as exc:
            echo(str(exc) if isinstance(exc, OutputError) else f"error: {exc}", err=True)
            ok = False
    for line in problems:
        echo(line, err=True)
    return 0 if ok else 1
