"""Per-copy arguments of a repeated block use (`index`), block-relative slice bounds in generated code, and
one report per mistake however often a block repeats it."""

from __future__ import annotations

import pytest

import archplan

DILATED = """
archplan: 1
name: dilated
symbols: {N: {}, T: {default: 40}}
inputs: {x: [N, 8, T]}
blocks:
  causal:
    args: {d: 1}
    layers:
      - {name: pad, op: constantpad1d, padding: [d, 0], value: 0.0}
      - {name: conv, op: conv1d, out_channels: 8, kernel_size: 2, dilation: d}
layers:
  - {name: layers, block: causal, repeat: 6, args: {d: "2**index"}}
"""


def test_index_is_the_copy_number_in_a_repeated_use():
    result = archplan.loads(DILATED).analyze()
    assert result.ok, result.errors
    convs = [r for r in result.layers if r.name.endswith(".conv")]
    assert [r.node.args.dilation for r in convs] == [(1,), (2,), (4,), (8,), (16,), (32,)]
    assert convs[-1].field.axes[-1].size == 64  # 1 + (1 + 2 + ... + 32): a causal receptive field of 64


def test_generated_copies_get_their_own_arguments():
    pytest.importorskip("torch")
    from archplan.codegen import generate_sources
    from archplan.verify import verify

    net = archplan.loads(DILATED)
    source = generate_sources(net, {}).files["model.py"]
    assert "Causal(8, d=1)," in source and "Causal(8, d=32)," in source
    assert verify(net, {"N": 1, "T": 40}).ok


def test_a_misspelt_index_is_one_error():
    result = archplan.loads(DILATED.replace("2**index", "2**indx")).analyze()
    assert [p.message for p in result.errors] == [
        "argument d: unknown name 'indx' in expression '2**indx' (known names: N, T, index)"
    ]


def test_a_mistake_in_a_repeated_block_is_reported_once():
    text = DILATED.replace("out_channels: 8", "out_channels: c").replace("args: {d: 1}", "args: {d: 1, k: 2}")
    result = archplan.loads(text).analyze()
    assert len(result.errors) == 1
    assert "(the same in 5 more uses: layers.1.conv, layers.2.conv, ...)" in result.errors[0].message


def test_slice_bounds_of_a_block_follow_its_input_in_generated_code():
    pytest.importorskip("torch")
    from archplan.codegen import generate_sources
    from archplan.verify import verify

    net = archplan.loads(
        """
archplan: 1
name: half
inputs: {x: [1, 8, 4, 4]}
blocks:
  half:
    layers:
      - {name: split, op: slice, dim: 1, start: "in_channels//2"}
      - {name: conv, op: conv2d, out_channels: 4, kernel_size: 1}
layers:
  - {name: b, block: half}
  - {name: c, op: conv2d, out_channels: 16, kernel_size: 1}
  - {name: d, block: half}
"""
    )
    source = generate_sources(net, {}).files["model.py"]
    assert "nn.Conv2d(in_channels - in_channels // 2, 4, kernel_size=1)" in source
    assert verify(net).ok
