"""Thin command line: parse options, call the library, print. Heavy imports happen inside commands."""

from __future__ import annotations

import sys

import click

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def _parse_set(ctx, param, values) -> dict:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise click.BadParameter(f"expected NAME=VALUE such as H=224, received {item!r}")
        try:
            out[name] = int(value)
        except ValueError:
            raise click.BadParameter(f"{name}: expected an integer size, received {value!r}") from None
    return out


set_option = click.option("--set", "values", multiple=True, callback=_parse_set, metavar="NAME=VALUE",
                          help="Give a symbol a value, e.g. --set H=224 (repeatable).")
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
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True, help="Output format; json is a stable contract for tools and CI.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16", "float64", "int8"]),
              default="float32", show_default=True, help="Element type for activation memory.")
def check(path: str, values: dict, fmt: str, strict: bool, dtype: str) -> None:
    """Compute shapes, parameters, MACs, memory and receptive fields symbolically; report mistakes.

    Exit status: 0 no errors, 1 errors in the file, 2 usage errors.
    """
    from .report import render

    net = load_net(path, values)
    result = net.analyze(values, dtype=dtype, strict=strict)
    click.echo(render(result, fmt, path), nl=False)
    sys.exit(EXIT_OK if result.ok else EXIT_ERRORS)


def main() -> None:
    cli(prog_name="archplan")


if __name__ == "__main__":
    main()
