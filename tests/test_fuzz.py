"""Garbage in, problems out: no input may raise out of the analysis (the CLI would show a traceback)."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archplan

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SOURCES = [
    yaml.safe_load((EXAMPLES / f"{n}.yaml").read_text())
    for n in ("resnet18", "unet", "keras_mnist", "byte_gpt", "wavenet")
]

junk = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 300),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(
            [
                "",
                "H",
                "c*4",
                "H//0",
                "same",
                "full",
                "relu",
                "input",
                "x.y",
                "1/3",
                "((",
                "N-1",
                "__import__('os')",
                "max(1, H)",
                "2**99",
                "not c",
                "c == 1",
                "wte",
                "int64",
                "float32",
                "index",
                "layers.3.skip",
                "layers.9.skip",
                "layers.0.add",
                "layer1.0.conv1",
                "enc1.relu2",
                "positions",
            ]
        ),
        st.text(max_size=6),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


def paths(doc, prefix=()):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield prefix + (k,)
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield prefix + (i,)
            yield from paths(v, prefix + (i,))


def replaced(doc, path, value):
    if not path:
        return value
    if isinstance(doc, dict):
        return {k: (replaced(v, path[1:], value) if k == path[0] else v) for k, v in doc.items()}
    return [replaced(v, path[1:], value) if i == path[0] else v for i, v in enumerate(doc)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(range(len(SOURCES))),
    pick=st.integers(0, 10_000),
    value=junk,
    sizes=st.dictionaries(st.sampled_from(["N", "H", "W", "L"]), st.integers(1, 300), max_size=2),
)
def test_mutated_examples_never_raise(source, pick, value, sizes):
    doc = SOURCES[source]
    all_paths = list(paths(doc))
    path = all_paths[pick % len(all_paths)]
    text = yaml.safe_dump(replaced(doc, path, value), sort_keys=False)
    net = archplan.loads(text)
    result = net.analyze({k: v for k, v in sizes.items() if k in net.symbols})
    for problem in result.errors + result.warnings:
        assert problem.message
    if result.ok:  # a net that passes is complete: every output analysed, every total a figure
        assert set(result.outputs) == set(result.graph.outputs) and result.outputs
        assert set(result.totals) >= {"params", "macs", "activation_bytes"}
    else:  # a net that fails says where, unless the whole file is unusable
        assert any(p.line is not None for p in result.errors) or net.spec is None, result.errors


def test_unmutated_sources_pass():
    """The precondition of the mutation test: every source is a valid net before it is mutated."""
    for doc in SOURCES:
        result = archplan.loads(yaml.safe_dump(doc, sort_keys=False)).analyze()
        assert result.ok, result.errors


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_raises(text):
    archplan.loads(text).analyze()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.integers(0, 10_000), value=junk)
def test_mutated_nets_that_pass_generate_code_or_say_why(pick, value):
    """WaveNet reads inside its repeated block (layers.K.skip): mutations of it that the analysis accepts
    become code, or a located CodegenError; nothing else escapes."""
    from archplan.codegen import generate_sources
    from archplan.errors import ArchplanError

    doc = SOURCES[-1]
    all_paths = list(paths(doc))
    net = archplan.loads(yaml.safe_dump(replaced(doc, all_paths[pick % len(all_paths)], value), sort_keys=False))
    if not net.analyze().ok:
        return
    try:
        files = generate_sources(net).files
    except ArchplanError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        return
    compile(files["model.py"], "model.py", "exec")
