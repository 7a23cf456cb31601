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
from .pysource import identifier, literal
from .codegen_errors import CodegenError
from .errors import ArchplanError, RuleError
from .ops.base import Module

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


# -- contexts for the other files --------------------------------------------------------------------


@dataclass(frozen=True)
class NamedShape:
    name: str
    shape: tuple  # plain ints
    example: str = ""  # an input: the torch expression that makes a random one (token ids within their range)


def _ints(shape) -> tuple:
    return tuple(int(literal(d)) for d in shape)


def _key(name: str) -> str:
    """A layer path (layer1.0.conv1) written into a string in test_model.py: identifiers and indices only."""
    for part in name.split("."):
        if not part.isdigit():
            identifier(part)
    return name


def train_context(graph, concrete, memory: dict | None = None) -> dict | None:
    """memory: memory.trainer_memory's numbers for --batch-size auto (plain ints), or None."""
    outputs = list(concrete.outputs.values())
    if len(outputs) != 1 or len(outputs[0]) < 2:
        return None
    out = _ints(outputs[0])
    task = "classification" if len(out) == 2 else "segmentation"
    inputs = [NamedShape(identifier(n), _ints(s)[1:]) for n, s in concrete.inputs.items()]
    return {
        "net": NamedShape(identifier(graph.name), ()),
        "inputs": [NamedShape(i.name, list(i.shape)) for i in inputs],
        "task": task,
        "num_classes": out[1],
        "output_shape": list(out[1:]),
        "train": _Train(**graph.train),
        "memory": memory,
    }


class _Train:
    def __init__(self, **values):
        for key, value in values.items():
            if isinstance(value, str):
                literal(value)  # choices: plain words only
            setattr(self, identifier(key), value)


def _trainer_memory(net, values: dict) -> dict | None:
    from .memory import trainer_memory

    memory = trainer_memory(net, values)  # archplan's own words and ints: nothing from the YAML's text
    if memory is not None:
        memory["lines"] = [(str(s), str(a), int(x), int(y)) for s, a, x, y in memory["lines"]]
    return memory


def test_context(generated_model: ModelContext, concrete, sizes: Sizes) -> dict:
    from . import dims

    modules = []
    for row in concrete.layers:
        if isinstance(row.node.op.emit(row.node.args, [concrete.shape_of(s) for s in row.node.inputs]), Module):
            modules.append(NamedShape(_key(row.name), _ints(row.output_shape)))
    totals = concrete.totals
    return {
        "net_name": identifier(concrete.graph.name),
        "net_class": generated_model.net_class,
        "inputs": [NamedShape(identifier(n), _ints(s), _example(concrete, n)) for n, s in concrete.inputs.items()],
        "outputs": [_ints(s) for s in concrete.outputs.values()],
        "layers": modules,
        "params": int(literal(dims.normalize(totals["params"]))),
        "buffers": int(literal(dims.normalize(totals["buffers"]))),
        "sizes": ", ".join(f"{k}={v}" for k, v in sorted(sizes.concrete.items())),
    }


def _example(concrete, name: str) -> str:
    """Python source for a random input: N(0, 1) floats, or integer ids uniform over [0, range)."""
    from . import dims

    shape = literal(_ints(concrete.inputs[name]))
    dtype = concrete.graph.input_dtypes.get(name, "float")
    if dtype in ("float", "float32"):
        return f"torch.randn({shape})"
    if dtype.startswith("float") or dtype == "bfloat16":
        return f"torch.randn({shape}, dtype=torch.{dtype})"
    high = dims.as_int(concrete.graph.input_ranges.get(name)) or 2
    return f"torch.randint(0, {high}, {shape}, dtype=torch.{dtype})"


def readme_context(graph, concrete, sizes: Sizes, has_train: bool) -> dict:
    from .report import markdown

    return {
        "name": identifier(graph.name),
        "table": markdown(concrete, graph.path),
        "has_train": has_train,
        "sizes": ", ".join(f"{k}={v}" for k, v in sorted(sizes.concrete.items())),
        "notes": list(sizes.notes),
    }


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


def generate_sources(net, values: dict | None = None) -> Generated:
    try:
        sizes, model, analysis = resolve(net, dict(values or {}))
    except RuleError as exc:  # an expression the analysis accepted that a class's code cannot print
        raise CodegenError(f"cannot write the model: {exc.message}") from None
    concrete = net.analyze(sizes.concrete)
    if concrete.errors:
        raise ArchplanError(concrete.errors, net.path)
    env = environment()
    files = {"model.py": env.get_template("model.py.j2").render(model=model)}
    train = train_context(analysis.graph, concrete, _trainer_memory(net, sizes.concrete))
    if train is not None:
        files["train.py"] = env.get_template("train.py.j2").render(**train)
    files["README.md"] = env.get_template("README.md.j2").render(
        **readme_context(analysis.graph, concrete, sizes, train is not None)
    )
    files["test_model.py"] = env.get_template("test_model.py.j2").render(**test_context(model, concrete, sizes))
    files["ruff.toml"] = RUFF_CONFIG
    return Generated(files, model, analysis, concrete, sizes)


def write(files: dict, outdir: str | Path, force: bool = False, protected: tuple = ()) -> list[Path]:
    """Write the generated files (see outputs.write_folder). Raises OutputError, nothing written."""
    from .outputs import write_folder

    return write_folder(files, outdir, force, OUTPUT_FILES, protected)
