"""IR -> frozen context objects -> a strict Jinja environment. The only module that imports jinja2.

`generate_sources(net, values)` returns the text of model.py, train.py, README.md, test_model.py and
ruff.toml; `write(files, outdir, force)` puts them on disk. model.py prints the IR's definitions: one class
per block and one for the net (codegen_model). Sizes: model.py keeps every
symbol free that no printed value needs as a number (a Linear after a Flatten of a symbolic map does);
those take their --set value or the symbol's default. Tests, train.py and verify run at concrete sizes:
--set, then defaults, batch 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .codegen_model import ModelContext, Sizes, resolve
from .file_contexts import readme_context, test_context, train_context, trainer_memory
from .codegen_errors import CodegenError
from .errors import ArchplanError, RuleError

TEMPLATES = ("model.py", "train.py", "README.md", "test_model.py")
# every name generate may write (stale ones from an earlier net are removed); ruff.toml makes `ruff` in the
# output folder use the generated code's line length
OUTPUT_FILES = (*TEMPLATES, "ruff.toml")
RUFF_CONFIG = "# Written by archplan generate: the generated code's style.\nline-length = 120\n"


@dataclass(frozen=True)
class Generated:
    files: dict  # file name -> text
    model: ModelContext
    analysis: object  # at Sizes.model
    concrete: object  # at Sizes.concrete
    sizes: Sizes


# -- Jinja -----------------------------------------------------------------------------------------------


def environment():
    import importlib.resources

    import jinja2

    root = importlib.resources.files("archplan.templates")

    def load(name: str):
        return (root / name).read_text(encoding="utf-8") if (root / name).is_file() else None

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py"] = repr
    return env


def generate_sources(net, values: dict | None = None, model_only: bool = False) -> Generated:
    """model_only: model.py alone (verify's need: no trainer, whose --batch-size auto plans memory)."""
    try:
        sizes, model, analysis = resolve(net, dict(values or {}))
    except RuleError as exc:  # an expression the analysis accepted that a class's code cannot print
        raise CodegenError(f"cannot write the model: {exc.message}") from None
    concrete = net.analyze(sizes.concrete)
    if concrete.errors:
        raise ArchplanError(concrete.errors, net.path)
    env = environment()
    files = {"model.py": env.get_template("model.py.j2").render(model=model)}
    if model_only:
        return Generated(files, model, analysis, concrete, sizes)
    train = train_context(analysis, concrete, trainer_memory(net, sizes.concrete), net.spec.train_where)
    if train is not None:
        files["train.py"] = env.get_template("train.py.j2").render(**train)
    files["README.md"] = env.get_template("README.md.j2").render(
        **readme_context(analysis.graph, concrete, sizes, train and train["task"])
    )
    files["test_model.py"] = env.get_template("test_model.py.j2").render(**test_context(model, concrete, sizes))
    files["ruff.toml"] = RUFF_CONFIG
    return Generated(files, model, analysis, concrete, sizes)


def write(files: dict, outdir: str | Path, force: bool = False, protected: tuple = ()) -> list[Path]:
    """Write the generated files (see outputs.write_folder). Raises OutputError, nothing written."""
    from .outputs import write_folder

    return write_folder(files, outdir, force, OUTPUT_FILES, protected)
