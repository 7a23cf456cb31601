"""Thin command line: parse options, call the library, print. Heavy imports happen inside commands."""

from __future__ import annotations

import os
import sys

import click

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def _parse_set(ctx, param, values) -> dict:
    from .show import shown

    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise click.BadParameter(f"expected NAME=VALUE such as H=224, received {shown(item)}")
        try:
            out[name] = int(value)
        except ValueError:
            raise click.BadParameter(f"{name}: expected an integer size, received {shown(value)}") from None
    return out


set_option = click.option(
    "--set",
    "values",
    multiple=True,
    callback=_parse_set,
    metavar="NAME=VALUE",
    help="Give a symbol a value, e.g. --set H=224 (repeatable).",
)
file_argument = click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=True))


def load_net(path: str, values: dict):
    """Load the file; usage problems (bad --set) exit 2, unreadable files exit 2."""
    from .api import load
    from .errors import ArchplanError

    try:
        net = load(path)
    except ArchplanError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_USAGE)
    for message in net.check_values(values):
        raise click.UsageError(f"--set {message}")
    return net


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archplan")
def cli() -> None:
    """Plan a neural network before you train it: check, render and generate from one YAML file."""


@cli.command()
@file_argument
@set_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
    help="Output format; json is a stable contract for tools and CI.",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "bfloat16", "float64", "int8"]),
    default="float32",
    show_default=True,
    help="Element type for activation memory.",
)
def check(path: str, values: dict, fmt: str, strict: bool, dtype: str) -> None:
    """Compute shapes, parameters, MACs, memory and receptive fields symbolically; report mistakes.

    Exit status: 0 no errors, 1 errors in the file, 2 usage errors.
    """
    from .api import collector_paused
    from .report import render

    with collector_paused():  # reading the file and printing too: their garbage is collected after
        net = load_net(path, values)
        result = net.analyze(values, dtype=dtype, strict=strict, light=True)
        text = render(result, fmt, path)
    click.echo(text, nl=False)
    sys.exit(EXIT_OK if result.ok else EXIT_ERRORS)


def _parse_show(ctx, param, value) -> tuple:
    from .diagram import SHOW_CHOICES  # light: no graphviz or sympy import at module level

    items = tuple(s.strip() for s in (value or "").split(",") if s.strip())
    for item in items:
        if item not in SHOW_CHOICES:
            raise click.BadParameter(f"expected a comma-separated list of {', '.join(SHOW_CHOICES)}, received {item!r}")
    return items


@cli.command()
@file_argument
@set_option
@click.option("-o", "--output", metavar="FILE", help="Diagram file (svg, png, pdf or dot); '-' writes DOT to stdout.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["svg", "png", "pdf", "dot"]),
    help="Diagram format (default: from the output file's extension).",
)
@click.option(
    "--rankdir",
    type=click.Choice(["TB", "LR"]),
    default="TB",
    show_default=True,
    help="Flow top to bottom or left to right.",
)
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    metavar="K",
    help="Collapse blocks nested deeper than K (0: each top-level block use is one node).",
)
@click.option(
    "--show",
    callback=_parse_show,
    metavar="LIST",
    help="Extra figures on layers: params,macs,rf,memory (bytes saved for backward).",
)
@click.option(
    "--chart", metavar="FILE", help="Also write a per-layer params/MACs/saved-bytes chart (needs matplotlib)."
)
def render(
    path: str,
    values: dict,
    output: str | None,
    fmt: str | None,
    rankdir: str,
    depth: int | None,
    show: tuple,
    chart: str | None,
) -> None:
    """Draw the net: layers with shapes and costs, blocks as clusters, errors in red.

    Exit status: 0 drawn, 1 errors in the file (still drawn when possible) or no layout program, 2 usage errors.
    """
    from .drawing import format_for, run_render

    if output is None and chart is None:
        raise click.UsageError("give -o FILE for a diagram and/or --chart FILE for a cost chart")
    if output is not None:
        try:
            fmt = format_for(output, fmt)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        if output == "-" and fmt != "dot":
            raise click.UsageError("-o - writes DOT only; give a file name for svg, png or pdf")
    net = load_net(path, values)
    code = run_render(net, values, output, fmt, rankdir, depth, show, chart, echo=click.echo)
    sys.exit(code)


@cli.command()
@file_argument
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(file_okay=False),
    metavar="OUTDIR",
    help="Folder for model.py, train.py, README.md and test_model.py.",
)
@set_option
@click.option(
    "--force",
    is_flag=True,
    help="Write into a non-empty OUTDIR: replaces the generated files and removes those an earlier generate "
    "wrote that this net does not produce; other files are left alone.",
)
def generate(path: str, outdir: str, values: dict, force: bool) -> None:
    """Write readable PyTorch code for the net: model.py, train.py, README.md and test_model.py.

    Exit status: 0 written, 1 errors (nothing written), 2 usage errors.
    """
    from .codegen import generate_sources, write
    from .errors import ArchplanError

    net = load_net(path, values)
    try:
        generated = generate_sources(net, values)
        written = write(generated.files, outdir, force, protected=(path,))
    except ArchplanError as exc:  # analysis, codegen and output errors, each located
        click.echo(str(exc), err=True)
        sys.exit(EXIT_ERRORS)
    for note in generated.sizes.notes:
        click.echo(f"note: {note}")
    click.echo(f"wrote {', '.join(p.name for p in written)} to {outdir}")


@cli.command()
@file_argument
@set_option
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="List every layer, not only those that differ (the totals are always shown).",
)
def verify(path: str, values: dict, everything: bool) -> None:
    """Build the generated model in PyTorch and compare shapes, parameters and FLOPs with the analysis.

    Exit status: 0 everything matches, 1 differences or errors, 2 usage errors.
    """
    from .errors import ArchplanError
    from .overlap import while_importing
    from .verify import expect, format_report, measure, require_torch

    net = load_net(path, values)
    try:
        try:
            expected = while_importing("torch", lambda: expect(net, values))
        except ArchplanError:
            require_torch()  # a missing torch is said first
            raise
        report = measure(expected)
    except ArchplanError as exc:  # torch missing, codegen errors, sizes too large to run
        click.echo(str(exc), err=True)
        sys.exit(EXIT_ERRORS)
    click.echo(format_report(report, everything), nl=False)
    sys.exit(EXIT_OK if report.ok else EXIT_ERRORS)


def _parse_amount(ctx, param, value) -> int | None:
    from .memory_devices import parse_bytes

    if value is None:
        return None
    try:
        return parse_bytes(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command()
@file_argument
@set_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
    help="Output format; json is check's contract plus per-layer saved_bytes and a memory section.",
)
@click.option(
    "--optimizer",
    type=click.Choice(["sgd", "sgd-momentum", "adam", "adamw"]),
    help="Optimizer state: none, 1 or 2 fp32 copies of the weights (default: the net's train: settings).",
)
@click.option(
    "--amp",
    type=click.Choice(["off", "bf16", "fp16"]),
    default="off",
    show_default=True,
    help="Autocast: conv/linear run and save in half precision; weights, gradients and optimizer state stay fp32.",
)
@click.option(
    "--device",
    "target",
    type=click.Choice(["cuda", "cpu"]),
    default="cuda",
    show_default=True,
    help="Whose kernels and autocast rules apply, and whether the CUDA reserve does.",
)
@click.option(
    "--device-memory",
    callback=_parse_amount,
    metavar="SIZE",
    help="Report the largest batch that fits: 80GiB, 40GB, 24576MiB, or a100-40gb, a100-80gb, h100-80gb, h200, "
    "rtx4090, rtx3090, l4, l40s, a10, t4.",
)
@click.option(
    "--reserve",
    callback=_parse_amount,
    metavar="SIZE",
    help="Memory held besides the tensors: CUDA context, cuDNN/cuBLAS workspaces [default: 1GiB on cuda, 0 on cpu].",
)
@click.option("--batch", type=click.IntRange(min=1), metavar="N", help="Also give every figure at this batch size.")
@click.option("--inference", is_flag=True, help="Plan an inference forward (no_grad) instead of a training step.")
def memory(
    path: str,
    values: dict,
    fmt: str,
    optimizer: str | None,
    amp: str,
    target: str,
    device_memory: int | None,
    reserve: int | None,
    batch: int | None,
    inference: bool,
) -> None:
    """Plan the memory of a training step (or, with --inference, of a forward): what each layer saves for backward,
    weights, gradients, optimizer state, and the peaks as formulas in the batch.

    Exit status: 0 planned, 1 errors in the file, 2 usage errors.
    """
    from .memory import Options, batch_symbol, default_optimizer, plan
    from .memory_report import render as render_memory
    from .report import render as render_check

    net = load_net(path, values)
    result = net.analyze(values)
    if not result.ok:
        click.echo(render_check(result, fmt, path), nl=False)
        sys.exit(EXIT_ERRORS)
    if batch is not None and batch_symbol(result) is None:
        raise click.UsageError("--batch needs a net whose inputs start with a batch symbol (not fixed by --set)")
    options = Options(optimizer or default_optimizer(result.graph.train), amp, target, reserve)
    click.echo(render_memory(result, plan(result, options), fmt, path, batch, device_memory, inference), nl=False)


@cli.command()
@click.argument("name", required=False)
def ops(name: str | None) -> None:
    """List the supported ops, or one op's arguments and defaults."""
    from .catalog import describe

    text, known = describe(name)
    click.echo(text, nl=False)
    sys.exit(EXIT_OK if known else EXIT_USAGE)


def main() -> None:
    try:
        try:
            cli(prog_name="archplan")
        except Exception as exc:  # a bug in archplan, not in the user's file: one line, no traceback
            click.echo(
                f"archplan: internal error: {exc!r}; please report it with the YAML file "
                "(set ARCHPLAN_DEBUG=1 for the traceback)",
                err=True,
            )
            if os.environ.get("ARCHPLAN_DEBUG"):
                raise
            sys.exit(EXIT_ERRORS)
    except SystemExit as done:
        _exit_now(done.code)


def _exit_now(code) -> None:
    """Exit without the interpreter's teardown (as mypy does): freeing every object takes 0.1-0.2 s once
    sympy is imported and 0.2-0.9 s with torch (verify). The output is flushed; every file archplan writes
    is closed (and renamed into place) before the command returns."""
    if isinstance(code, str):
        click.echo(code, err=True)
        code = EXIT_ERRORS
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (archplan verify | head)
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    main()
