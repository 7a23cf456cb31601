"""Reading inside a block use: `in: use.layer` (at any depth) and net outputs inside a use.

A block whose inner tensors some scope reads returns them after its output, in every use; the use that is
read unpacks them (`l0, l0_skip = self.l0(x)`), repeated uses take the first element. verify (torch) is the
oracle for shapes, parameters and FLOPs."""

from __future__ import annotations

import ast

import pytest

import archplan
from archplan.codegen import generate_sources, write
from archplan.errors import ArchplanError

torch = pytest.importorskip("torch")
from archplan.verify import format_report, load_module, verify  # noqa: E402
from test_generate import assert_ruff_clean  # noqa: E402

GATED = """archplan: 1
name: gated_stack
symbols:
  N: {{}}
  T: {{default: 24}}
inputs:
  x: [N, 8, T]
blocks:
  gated:
    args: {{d: 1, skip_channels: 16, project: true}}
    layers:
      - {{name: pad, op: constantpad1d, padding: [d, 0], value: 0.0}}
      - {{name: conv, op: conv1d, out_channels: 8, kernel_size: 2, dilation: d}}
      - {{name: act, op: tanh}}
      - {{name: skip, op: conv1d, in: act, out_channels: skip_channels, kernel_size: 1, when: project}}
      - {{name: res, op: conv1d, in: act, out_channels: 8, kernel_size: 1}}
      - {{name: out, op: add, in: [input, res]}}
{extra_blocks}
layers:
{layers}
{outputs}
"""


def net(layers: str, outputs: str = "", extra_blocks: str = ""):
    return archplan.loads(GATED.format(layers=layers, outputs=outputs, extra_blocks=extra_blocks), "net.yaml")


def verified(n, values=None) -> str:
    report = verify(n, values)
    assert report.ok, format_report(report)
    return generate_sources(n, values).files["model.py"]


def forward_of(source: str, cls: str) -> str:
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    method = next(f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "forward")
    return ast.get_source_segment(source, method)


def test_reading_inner_layers_of_uses_returns_them_after_the_output(tmp_path):
    n = net(
        "  - {name: l0, block: gated, args: {d: 1}}\n"
        "  - {name: l1, block: gated, args: {d: 2, skip_channels: 12}}\n"
        "  - {name: l1_skip, op: conv1d, in: l1.skip, out_channels: 16, kernel_size: 1}\n"  # takes the plain name
        "  - {name: skips, op: add, in: [l0.skip, l1_skip]}\n"
        "  - {name: head, op: conv1d, out_channels: 4, kernel_size: 1}"
    )
    source = verified(n)
    assert "return out, skip" in forward_of(source, "Gated")
    forward = forward_of(source, "GatedStack")
    assert "l0, l0_skip = self.l0(x)" in forward and "l1, l1_skip_ = self.l1(l0)" in forward
    assert "l1_skip = self.l1_skip(l1_skip_)" in forward
    model = load_module(source, "gated").build_model()
    assert {"l0.skip.weight", "l1.skip.weight", "l1_skip.weight"} <= set(model.state_dict())
    assert tuple(model(torch.randn(2, 8, 24)).shape) == (2, 4, 24)
    write(generate_sources(n).files, tmp_path / "out")
    assert_ruff_clean(tmp_path / "out")


def test_nested_reads_and_net_outputs_inside_uses():
    stage = """  stage:
    args: {c: 16}
    layers:
      - {name: g, block: gated, args: {d: 2, skip_channels: c}}
      - {name: post, op: relu}
"""
    n = net(
        "  - {name: s0, block: stage}\n  - {name: s1, block: stage, args: {c: 24}}\n"
        "  - {name: both, op: concat, in: [s0.g.skip, s1.g.skip], dim: 1}",
        outputs="outputs: [both, s1.g.res]",
        extra_blocks=stage,
    )
    source = verified(n, {"N": 2, "T": 9})
    assert "return out, skip, res" in forward_of(source, "Gated")  # in the order first read
    assert "g, g_skip, g_res = self.g(x)" in forward_of(source, "Stage")
    assert "return post, g_skip, g_res" in forward_of(source, "Stage")
    assert "return both, s1_g_res" in forward_of(source, "GatedStack")
    outputs = load_module(source, "nested").build_model()(torch.randn(2, 8, 9))
    assert [tuple(o.shape) for o in outputs] == [(2, 40, 9), (2, 8, 9)]


def test_a_read_layer_that_when_skips_passes_its_input_on():
    n = net(
        "  - {name: a, block: gated, args: {project: false}}\n"
        "  - {name: b, block: gated, args: {d: 4}}\n"
        "  - {name: skips, op: concat, in: [a.skip, b.skip], dim: 1}"
    )
    source = verified(n)
    assert "skip = act" in forward_of(source, "Gated")  # the pass-through value, then the branch


def test_repeated_uses_of_a_block_that_is_read_elsewhere_take_the_first_element():
    n = net(
        "  - {name: first, block: gated}\n"
        "  - {name: more, block: gated, repeat: 3, args: {d: 2 ** index}}\n"
        "  - {name: skips, op: add, in: [first.skip, first.skip]}"
    )
    source = verified(n)
    forward = forward_of(source, "GatedStack")
    assert "for block in self.more:" in forward and "more = block(more)[0]" in forward


def test_reading_inside_a_use_under_when_is_a_located_error():
    n = net("  - {name: l0, block: gated, when: 1 == 1}\n  - {name: tail, op: relu, in: l0.skip}")
    assert not n.analyze({}).errors  # the analysis reads it; only generated code cannot
    with pytest.raises(ArchplanError) as caught:
        generate_sources(n)
    problem = caught.value.problems[0]
    assert problem.layer == "tail" and problem.line is not None
    assert "reads 'l0.skip' inside a block use under `when:`" in problem.message


def test_copies_of_a_repeat_read_inside_are_called_one_by_one():
    n = net(
        "  - {name: layers, block: gated, repeat: 3, args: {d: 2 ** index, skip_channels: 4 * (index + 1)}}\n"
        "  - {name: skips, op: concat, in: [layers.0.skip, layers.1.skip, layers.2.skip, layers.1.out], dim: 1}"
    )
    source = verified(n, {"N": 2, "T": 10})
    forward = forward_of(source, "GatedStack")
    assert "layers_0, layers_0_skip = self.layers[0](x)" in forward  # its own output is its first
    assert "layers_1, layers_1_skip = self.layers[1](layers_0)" in forward
    assert "layers, layers_2_skip = self.layers[2](layers_1)" in forward
    assert "torch.cat([layers_0_skip, layers_1_skip, layers_2_skip, layers_1], dim=1)" in forward
    model = load_module(source, "copies").build_model()
    assert "layers.2.skip.weight" in model.state_dict()


def test_a_repeated_block_with_two_inputs_loops_over_its_copies():
    film = """  film:
    inputs: [x, cond]
    layers:
      - {name: scale, op: conv1d, in: cond, out_channels: 8, kernel_size: 1}
      - {name: mixed, op: mul, in: [x, scale]}
      - {name: act, op: relu}
"""
    n = net(
        "  - {name: cond, op: conv1d, out_channels: 4, kernel_size: 1}\n"
        "  - {name: body, block: film, in: [x, cond], repeat: 3}",
        extra_blocks=film,
    )
    source = verified(n)
    forward = forward_of(source, "GatedStack")
    assert "for block in self.body:" in forward and "body = block(body, cond)" in forward


@pytest.mark.parametrize("first, second", [(-1, 3), (0, 2), (2, 0)])
def test_integer_when_arguments_are_true_when_nonzero(first, second):
    """`when: project` with project: -1 or 0 reads as Python does; the exposed shapes substitute them."""
    n = net(
        f"  - {{name: a, block: gated, args: {{project: {first}}}}}\n"
        f"  - {{name: b, block: gated, args: {{project: {second}}}}}\n"
        "  - {name: both, op: concat, in: [a.skip, b.skip], dim: 1}"
    )
    assert n.analyze().ok
    verified(n)


def test_a_nested_read_through_a_use_under_when_is_a_located_error():
    stage = """  stage:
    args: {use_g: true}
    layers:
      - {name: g, block: gated, when: use_g}
      - {name: post, op: relu}
"""
    layers = "  - {name: s0, block: stage}\n  - {name: both, op: concat, in: [s0.g.skip, s0], dim: 1}"
    n = net(layers, extra_blocks=stage)
    assert n.analyze().ok
    with pytest.raises(ArchplanError) as caught:
        generate_sources(n)
    problem = caught.value.problems[0]
    assert problem.layer == "s0.g" and problem.line is not None
    assert "is read from outside this block as 'g.skip' but runs under `when:`" in problem.message


def test_long_names_stay_within_the_line_length(tmp_path):
    long = "residual_layers_of_the_second_stage_of_this_stack"
    n = net(
        f"  - {{name: {long}, block: gated, repeat: 2}}\n"
        f"  - {{name: {long}_sum, op: add, in: [{long}.0.skip, {long}.1.skip, {long}.1.skip]}}"
    )
    verified(n)
    write(generate_sources(n).files, tmp_path / "out")
    assert_ruff_clean(tmp_path / "out")
    source = (tmp_path / "out" / "model.py").read_text()
    assert f"= self.{long}[1](\n" in source
