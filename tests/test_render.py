"""archplan render: golden DOT, pictures for every example, collapsing, errors in red, missing layout program."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

import archplan
from archplan import diagram, drawing
from archplan.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
GOLDEN = Path(__file__).parent / "golden"
HAS_DOT = shutil.which("dot") is not None
HAS_PURE = shutil.which("graphviz-pure") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed (apt-get install graphviz)")
needs_pure = pytest.mark.skipif(not HAS_PURE, reason="graphviz-pure is not installed (pip install 'archplan[render]')")

UNET_BROKEN = {"H": 60, "W": 64}


def example(name: str) -> str:
    return str(ROOT / "examples" / f"{name}.yaml")


def build(name: str, values=None, **kw):
    return diagram.build(archplan.load(example(name)).analyze(values), **kw)


def run(*args, env=None):
    return CliRunner().invoke(cli, ["render", *map(str, args)], env=env)


@pytest.fixture
def no_layout(monkeypatch):
    monkeypatch.setenv("ARCHPLAN_DOT", "")


# -- golden DOT --------------------------------------------------------------------------------------

GOLDEN_CASES = {
    "lenet": ("lenet", None, {}),
    "simple_convnet_show": ("simple_convnet", None, {"show": ("params", "macs", "rf"), "rankdir": "LR"}),
    "unet_depth0": ("unet", None, {"depth": 0}),
    "unet_broken_depth1": ("unet", UNET_BROKEN, {"depth": 1}),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden_dot(case, update_golden):
    name, values, kw = GOLDEN_CASES[case]
    source = build(name, values, **kw).source
    path = GOLDEN / f"render_{case}.dot"
    if update_golden or not path.exists():
        path.write_text(source, encoding="utf-8")
        if not update_golden:
            pytest.fail(f"{path.name} did not exist; written now, check it and rerun")
    assert source == path.read_text(encoding="utf-8"), f"DOT changed; rerun with --update-golden if intended ({path})"


# -- content -----------------------------------------------------------------------------------------


def test_resnet50_expanded_shows_every_stage_with_shapes():
    dot = build("resnet50")
    source = dot.source
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        assert f"cluster_{stage}" in source
    for shape in ("[N, 256, 56, 56]", "[N, 512, 28, 28]", "[N, 1024, 14, 14]", "[N, 2048, 7, 7]"):
        assert shape in source
    assert "conv 7x7/2, 64" in source and "layer1: bottleneck x3" in source
    assert diagram.node_count(dot) > 150


def test_depth0_collapses_resnet50_onto_a_screen():
    dot = build("resnet50", depth=0)
    assert diagram.node_count(dot) <= 25
    assert "cluster_" not in dot.source
    assert "bottleneck x6" in dot.source  # layer3's repeat run is one node
    assert "params 7.10M" in dot.source  # summed over the run


def test_depth_is_monotone():
    counts = [diagram.node_count(build("resnet50", depth=d)) for d in (0, 1, 2)]
    assert counts[0] < counts[1] < counts[2] == diagram.node_count(build("resnet50"))


def test_symbolic_sizes_in_labels():
    source = build("unet").source
    assert "[N, 3, H, W]" in source and "H/8" in source and "W/4" in source


def test_show_adds_costs_and_rf():
    plain = build("simple_convnet").source
    shown = build("simple_convnet", show=("params", "macs", "rf")).source
    assert "params 0 · MACs 0" not in plain and "RF " not in plain
    assert "params 0 · MACs 0 · RF " in shown


def test_errors_drawn_red():
    source = build("unet", UNET_BROKEN).source
    line = next(line for line in source.splitlines() if line.strip().startswith('"up3.cat" ['))
    assert diagram.ERROR_COLOUR in line and "cannot concatenate" in line
    into = [line for line in source.splitlines() if '-> "up3.cat"' in line]
    assert len(into) == 2 and all(diagram.ERROR_COLOUR in line for line in into)
    assert "not analysed" in source  # downstream layers greyed, not dropped


def test_errors_in_a_collapsed_block_mark_the_block():
    source = build("unet", UNET_BROKEN, depth=0).source
    line = next(line for line in source.splitlines() if line.strip().startswith("up3 ["))
    assert diagram.ERROR_COLOUR in line and "cannot concatenate" in line


HOSTILE = """archplan: 1
name: 'a<b>&"c\\\\'
inputs:
  x: [1, 3, 8, 8]
layers:
  - {name: a, op: conv2d, out_channels: 4, kernel_size: 3}
  - {name: b, op: "foo<script>&"}
"""


def test_user_text_is_escaped(tmp_path):
    path = tmp_path / "hostile.yaml"
    path.write_text(HOSTILE)
    dot = archplan.load(path).diagram()
    assert "<script>" not in dot.source and "&lt;script&gt;" in dot.source
    if HAS_DOT:
        ET.fromstring(drawing.picture(dot.source, "svg")[0])  # still well-formed


def test_bad_options_raise():
    result = archplan.load(example("lenet")).analyze()
    for kw in ({"show": ("flops",)}, {"rankdir": "RL"}, {"depth": -1}):
        with pytest.raises(ValueError):
            diagram.build(result, **kw)


def test_api_returns_digraph():
    import graphviz

    dot = archplan.load(example("resnet18")).diagram(depth=0, show=("params",))
    assert isinstance(dot, graphviz.Digraph) and "layer1" in dot.source


# -- pictures ----------------------------------------------------------------------------------------


@needs_dot
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_renders(path, tmp_path):
    net = archplan.load(path)
    full, collapsed = net.diagram().source, net.diagram(depth=0).source
    svg = drawing.picture(full, "svg")[0]
    root = ET.fromstring(svg)
    text = "".join(root.itertext())
    first = next(iter(net.analyze().graph.nodes.values()))
    assert first.local_name in text
    for fmt, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
        assert drawing.picture(collapsed, fmt)[0].startswith(magic)


@needs_dot
def test_cli_writes_svg_png_pdf(tmp_path):
    for fmt in ("svg", "png", "pdf"):
        out = tmp_path / f"net.{fmt}"
        result = run(example("resnet50"), "-o", out, "--depth", "0")
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 1000
    svg = (tmp_path / "net.svg").read_text()
    assert "[N, 256, 56, 56]" in svg and "layer4" in svg
    result = run(example("lenet"), "-o", tmp_path / "picture", "--format", "png")
    assert result.exit_code == 0 and (tmp_path / "picture").read_bytes().startswith(b"\x89PNG")


@needs_dot
def test_cli_broken_net_is_drawn_and_exits_1(tmp_path):
    out = tmp_path / "unet.svg"
    result = run(example("unet"), "--set", "H=60", "--set", "W=64", "-o", out)
    assert result.exit_code == 1
    assert "cannot concatenate" in result.output
    svg = out.read_text()
    ET.fromstring(svg)
    assert diagram.ERROR_COLOUR in svg


@needs_pure
def test_graphviz_pure_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHPLAN_DOT", "graphviz-pure")
    out = tmp_path / "unet.png"
    result = run(example("unet"), "-o", out)
    assert result.exit_code == 0, result.output
    assert "graphviz-pure" in result.output and out.read_bytes().startswith(b"\x89PNG")
    ET.fromstring(drawing.picture(build("resnet50").source, "svg")[0])
    result = run(example("unet"), "-o", tmp_path / "unet.pdf")  # graphviz-pure has no pdf
    assert result.exit_code == 1 and "apt-get install graphviz" in result.output


# -- no layout program -------------------------------------------------------------------------------


def test_missing_dot_writes_dot_and_exits_1(tmp_path, no_layout):
    out = tmp_path / "net.svg"
    result = run(example("lenet"), "-o", out)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install graphviz"):
        assert hint in errors[0]
    assert not out.exists()
    assert (tmp_path / "net.dot").read_text().startswith("digraph lenet")


def test_dot_output_needs_no_binary(tmp_path, no_layout):
    out = tmp_path / "net.dot"
    assert run(example("lenet"), "-o", out).exit_code == 0
    assert out.read_text() == build("lenet").source
    result = run(example("lenet"), "-o", "-")
    assert result.exit_code == 0 and result.stdout == build("lenet").source


# -- usage and broken files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["-o", "x.bmp"],
        ["-o", "x.svg", "--format", "gif"],
        ["-o", "x.svg", "--show", "flops"],
        ["-o", "x.svg", "--set", "H"],
        ["-o", "x.svg", "--set", "Q=3"],
        ["-o", "x.svg", "--depth", "-1"],
        ["-o", "-", "--format", "svg"],
        [],
    ],
)
def test_usage_errors_exit_2(args, tmp_path):
    result = CliRunner().invoke(cli, ["render", example("unet"), *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_unparsable_file_overwrites_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("archplan: 1\nlayers: [\n")
    out = tmp_path / "net.dot"
    out.write_text("keep me")
    result = run(bad, "-o", out)
    assert result.exit_code == 1 and "nothing written" in result.output
    assert out.read_text() == "keep me"
    with pytest.raises(archplan.ArchplanError):
        archplan.load(bad).diagram()


def test_format_for():
    assert drawing.format_for("a.SVG", None) == "svg"
    assert drawing.format_for("a.gv", None) == "dot"
    assert drawing.format_for("-", None) == "dot"
    assert drawing.format_for("a.svg", "png") == "png"
    with pytest.raises(ValueError):
        drawing.format_for("a", None)


# -- chart ---------------------------------------------------------------------------------------------


def test_chart(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "costs.png"
    result = run(example("unet"), "--chart", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG")
    from archplan.chart import chart_data

    rows, sizes = chart_data(archplan.load(example("unet")).analyze(), {"H": 64, "W": 64})
    assert sizes["N"] == 1 and rows[0][:3] == ("enc1.conv1", "enc1", "conv")
    assert rows[0][4] == 432 * 64 * 64  # MACs at N=1, H=W=64
    assert all(r[3] or r[4] for r in rows)  # free layers left out


def test_programs_fall_back_to_graphviz_pure(monkeypatch):
    monkeypatch.delenv("ARCHPLAN_DOT", raising=False)
    monkeypatch.setattr(drawing.shutil, "which", lambda name: "/x/graphviz-pure" if name == "graphviz-pure" else None)
    assert drawing.programs() == [drawing.Program("/x/graphviz-pure", ("svg", "png"))]
    monkeypatch.setattr(drawing.shutil, "which", lambda name: f"/x/{name}")
    assert [p.executable for p in drawing.programs()] == ["/x/dot", "/x/graphviz-pure"]
