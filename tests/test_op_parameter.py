"""The learned tensor op: parameters counted, broadcast with add/mul, generated as nn.Parameter, verified."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import archplan  # noqa: E402
from archplan.codegen import generate_sources  # noqa: E402
from archplan.verify import verify  # noqa: E402

NET = """archplan: 1
name: scaled
symbols: {N: {}}
inputs:
  x: [N, 8, 6, 6]
blocks:
  scaled:
    layers:
      - {name: conv, op: conv2d, out_channels: in_channels, kernel_size: 3, padding: 1}
      - {name: gamma, op: parameter, shape: [in_channels, 1, 1], init: constant, value: 1.0e-6}
      - {name: scale, op: mul, in: [conv, gamma]}
      - {name: add, op: add, in: [scale, input]}
layers:
  - {name: stem, op: conv2d, out_channels: 16, kernel_size: 1}
  - {name: b1, block: scaled}
  - {name: token, op: parameter, shape: [1, 16, 1, 1], init: %s}
  - {name: out, op: add, in: [b1, token]}
"""


@pytest.mark.parametrize("init", ["zeros", "ones", "normal", "trunc_normal", "constant"])
def test_parameters_count_generate_and_verify(init):
    net = archplan.loads(NET % init, "scaled.yaml")
    result = net.analyze({"N": 2})
    assert result.ok, result.errors
    assert result.layer("b1.gamma").params == 16 and result.layer("token").params == 16
    assert result.totals["params"] == 144 + 2320 + 16 + 16  # stem, conv, gamma, token
    source = generate_sources(net).files["model.py"]
    assert "self.gamma = nn.Parameter(torch.full((in_channels, 1, 1), 1e-06))" in source
    report = verify(net)
    assert report.ok
    ns: dict = {}
    exec(compile(source, "model.py", "exec"), ns)  # test-only: our own generated code
    keys = set(ns["build_model"]().state_dict())
    assert {"token", "b1.gamma"} <= keys  # the layer's name is the state_dict key


def test_a_parameter_that_does_not_broadcast_is_a_located_error():
    text = (NET % "zeros").replace("shape: [1, 16, 1, 1]", "shape: [1, 3, 1, 1]")
    result = archplan.loads(text, "scaled.yaml").analyze()
    assert not result.ok and result.errors[0].layer == "out" and "[1, 3, 1, 1]" in result.errors[0].message
