"""StochasticDepth: the analysis (shape kept, 0 params, 0 MACs, field unchanged, located errors) and the helper
class the generated code defines, against torchvision's algorithm re-implemented here (torchvision does not
import in this environment): same draws under a seed, whole rows dropped, expectation kept, identity in eval."""

from __future__ import annotations

import functools

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import archplan  # noqa: E402
from oracle import analyze, measure, net_text  # noqa: E402


def reference(x, p: float, mode: str, training: bool):
    """torchvision.ops.stochastic_depth (torchvision/ops/stochastic_depth.py), step for step."""
    if not training or p == 0.0:
        return x
    survival_rate = 1.0 - p
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return x * noise


def generated(layers, shape):
    from archplan.codegen import generate_sources
    from archplan.verify import load_module

    net = archplan.loads(net_text(layers, {"x": shape}), "t.yaml")
    source = generate_sources(net).files["model.py"]
    return net, source, load_module(source, "stochastic_depth")


@functools.lru_cache(maxsize=1)
def helper_class():
    """The StochasticDepth class as templates/helpers/stochastic_depth.py.j2 prints it into model.py."""
    return generated(["{op: stochasticdepth, p: 0.5, mode: row}"], [2, 3])[2].StochasticDepth


@settings(max_examples=60, deadline=None)
@given(
    p=st.one_of(st.sampled_from([0.0, 0.2, 0.5, 1.0]), st.floats(0, 1)),
    mode=st.sampled_from(["row", "batch"]),
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    training=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_forward_is_torchvisions(p, mode, shape, training, seed):
    module = helper_class()(p, mode).train(training)
    x = torch.randn(*shape)
    torch.manual_seed(seed)
    got = module(x)
    torch.manual_seed(seed)
    assert torch.equal(got, reference(x, p, mode, training))
    if not training:
        assert got is x


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_row_mode_drops_whole_rows_and_keeps_the_expectation(p):
    torch.manual_seed(0)
    module = helper_class()(p, "row").train()
    out = module(torch.ones(4000, 3, 2, 2))
    per_row = out.flatten(1)
    kept = per_row[:, 0] != 0
    assert torch.equal(per_row[kept], torch.full_like(per_row[kept], 1 / (1 - p)))  # survivors scaled as a unit
    assert torch.equal(per_row[~kept], torch.zeros_like(per_row[~kept]))  # dropped rows wholly zero
    assert abs(float(kept.float().mean()) - (1 - p)) < 0.03
    assert abs(float(out.mean()) - 1.0) < 0.06  # E[out] = x


def test_batch_mode_drops_the_whole_batch_and_keeps_the_expectation():
    torch.manual_seed(0)
    module = helper_class()(0.25, "batch").train()
    means = []
    for _ in range(2000):
        out = module(torch.ones(3, 2, 2))
        assert len(set(out.flatten().tolist())) == 1  # one draw for everything
        means.append(float(out[0, 0, 0]))
    assert sorted(set(means)) == pytest.approx([0.0, 1 / 0.75])
    assert abs(sum(means) / len(means) - 1.0) < 0.06


def test_edges_and_repr():
    cls = helper_class()
    x = torch.randn(5, 3)
    assert torch.equal(cls(1.0, "row").train()(x), torch.zeros_like(x))  # p = 1 keeps zeros, no division
    assert torch.equal(cls(0.0, "batch").train()(x), x)
    assert torch.equal(cls(0.9, "row").eval()(x), x)
    assert repr(cls(0.2, "row")) == "StochasticDepth(p=0.2, mode=row)"
    for p, mode in ((1.5, "row"), (0.5, "rows")):
        with pytest.raises(ValueError):
            cls(p, mode)
    assert not list(cls(0.2, "row").parameters()) and not list(cls(0.2, "row").buffers())


@settings(max_examples=30, deadline=None)
@given(
    p=st.floats(0, 1), mode=st.sampled_from(["row", "batch"]), shape=st.lists(st.integers(1, 5), min_size=1, max_size=4)
)
def test_analysis_matches_torch_in_train_and_eval(p, mode, shape):
    """Shape kept, no parameters or buffers, and torch's flop counter counts 0 (the multiply is elementwise)."""
    result = analyze(f"{{op: stochasticdepth, p: {p!r}, mode: {mode}}}", shape)
    assert result.ok, result.errors
    row = result.layers[-1]
    module = helper_class()(p, mode)
    for training in (False, True):
        module.train(training)
        expected = measure(module, [torch.randn(*shape)]) if not training else _train_measure(module, shape)
        assert (row.output_shape, row.params, row.buffers, row.macs) == expected


def _train_measure(module, shape):
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = module(torch.randn(*shape))
    return tuple(out.shape), 0, 0, counter.get_total_flops() // 2


def test_symbolic_shape_and_field_are_kept():
    layers = ["{op: conv2d, out_channels: 4, kernel_size: 3, stride: 2}", "{op: stochasticdepth, p: 0.1, mode: row}"]
    result = analyze(layers, ["N", 3, "H", "W"], symbols="symbols: {N: {}}\n")
    conv, drop = result.layers
    assert drop.output_shape == conv.output_shape and (drop.params, drop.macs) == (0, 0)
    assert drop.receptive_field == conv.receptive_field


@pytest.mark.parametrize(
    "layer,expected",
    [
        ("{op: stochasticdepth, p: 1.5, mode: row}", "p: expected a number in [0, 1], received 1.5"),
        ("{op: stochasticdepth, p: -0.1, mode: batch}", "p: expected a number in [0, 1], received -0.1"),
        ("{op: stochasticdepth, p: 0.1, mode: rows}", "mode: expected one of row, batch, received 'rows'"),
        ("{op: stochasticdepth, mode: row}", "StochasticDepth requires the argument 'p'"),
        ("{op: stochasticdepth, p: 0.1, mod: row}", "unknown argument 'mod' for StochasticDepth"),
    ],
)
def test_errors_are_located(layer, expected):
    result = analyze(layer, [2, 3])
    assert not result.ok
    error = next(e for e in result.errors if expected in e.message)
    assert (error.line, error.layer) == (6, "stochasticdepth_1"), error


def test_residual_blocks_generate_one_helper_class_and_verify():
    from archplan.verify import verify

    text = (
        "archplan: 1\nname: t\ninputs:\n  x: [2, 4, 6, 6]\n"
        "blocks:\n  res:\n    args: {p: 0.1}\n    layers:\n"
        "      - {name: conv, op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}\n"
        "      - {name: drop, op: stochasticdepth, p: p, mode: row}\n"
        "      - {name: add, op: add, in: [drop, input]}\n"
        "layers:\n"
        "  - {name: a, block: res, args: {p: 0.2}}\n"
        "  - {name: b, block: res, args: {p: 0.3}}\n"
        "  - {name: whole, op: stochasticdepth, p: 0.5, mode: batch}\n"
    )
    net = archplan.loads(text, "t.yaml")
    from archplan.codegen import generate_sources

    source = generate_sources(net).files["model.py"]
    assert source.count("class StochasticDepth(nn.Module):") == 1
    assert 'self.drop = StochasticDepth(p=p, mode="row")' in source
    assert 'self.whole = StochasticDepth(p=0.5, mode="batch")' in source
    assert verify(net).ok


def test_generated_model_with_only_this_helper_is_ruff_clean(tmp_path):
    from test_generate import assert_ruff_clean

    _, source, _ = generated(["{op: stochasticdepth, p: 0.2, mode: row}"], [2, 3])
    (tmp_path / "model.py").write_text(source)
    from archplan.codegen import RUFF_CONFIG

    (tmp_path / "ruff.toml").write_text(RUFF_CONFIG)
    assert_ruff_clean(tmp_path)
