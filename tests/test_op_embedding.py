"""Token inputs, embeddings, positions and weight tying, against torch."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import archplan  # noqa: E402
from archplan.verify import verify  # noqa: E402


def net(layers: str, inputs: str = "tokens: {shape: [N, L], dtype: int64, range: 100}", symbols="N: {}\n  L: {}"):
    return archplan.loads(f"archplan: 1\nname: t\nsymbols:\n  {symbols}\ninputs:\n  {inputs}\nlayers:\n{layers}")


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    vocab=st.integers(1, 20),
    width=st.integers(1, 8),
    padding=st.one_of(st.none(), st.integers(-25, 25)),
)
def test_embedding_matches_torch(shape, vocab, width, padding):
    pad = "" if padding is None else f", padding_idx: {padding}"
    result = net(
        f"  - {{name: e, op: embedding, num_embeddings: {vocab}, embedding_dim: {width}{pad}}}\n",
        f"ids: {{shape: {shape}, dtype: int64, range: {vocab}}}",
        "{}",
    ).analyze()
    try:
        module = torch.nn.Embedding(vocab, width, padding_idx=padding)
    except AssertionError:  # torch refuses a padding_idx outside the table
        module = None
    assert result.ok == (module is not None), result.errors
    if module is not None:
        out = module(torch.randint(0, vocab, shape))
        row = result.layers[-1]
        assert (row.output_shape, row.params, row.macs) == (tuple(out.shape), vocab * width, 0)
        assert row.dtype == "float"


def test_embedding_refuses_float_inputs_and_ids_beyond_the_table():
    floats = net("  - {op: embedding, num_embeddings: 10, embedding_dim: 4}\n", "x: [N, L]").analyze()
    assert not floats.ok and "integer token ids" in floats.errors[0].message
    wide = net("  - {op: embedding, num_embeddings: 50, embedding_dim: 4}\n").analyze()
    assert not wide.ok and "token ids go up to 99 (range 100) but the table has 50 rows" in wide.errors[0].message


def test_float_ops_refuse_token_ids():
    result = net("  - {op: linear, out_features: 4}\n").analyze()
    assert not result.ok and "token ids go through an embedding first" in (result.errors[0].hint or "")


def test_a_symbolic_vocabulary_is_a_condition():
    text = "  - {op: embedding, num_embeddings: 1000, embedding_dim: 8}\n"
    result = net(text, "tokens: {shape: [N, L], dtype: int64, range: V}", "N: {}\n  L: {}\n  V: {}").analyze()
    assert result.ok and "V <= 1000" in result.constraints


POSITIONS = """  - {name: wte, op: embedding, num_embeddings: 100, embedding_dim: 8}
  - {name: pos, op: positions, in: tokens}
  - {name: wpe, op: embedding, num_embeddings: 1024, embedding_dim: 8}
  - {name: x, op: add, in: [wte, wpe]}
"""


def test_a_position_table_bounds_the_sequence_length():
    result = net(POSITIONS).analyze()
    assert result.ok and result.constraints == ["L <= 1024"]
    assert result.layers[1].output_shape[0] == archplan.symbols.symbol("L")
    assert result.layers[1].dtype == "int64"
    assert not net(POSITIONS).analyze({"L": 1025}).ok
    assert net(POSITIONS).analyze({"L": 1024}).ok


def test_a_sliced_parameter_table_bounds_the_sequence_length_too():
    layers = """  - {name: wte, op: embedding, num_embeddings: 100, embedding_dim: 8}
  - {name: table, op: parameter, shape: [1, 512, 8]}
  - {name: cut, op: slice, in: table, dim: 1, end: L}
  - {name: x, op: add, in: [wte, cut]}
"""
    result = net(layers).analyze()
    assert result.ok and result.constraints == ["L <= 512"]


def test_token_positions_become_global_after_attention():
    layers = POSITIONS + "  - {name: attn, op: mha, num_heads: 2, is_causal: true}\n"
    rows = {r.name: r for r in net(layers).analyze().layers}
    assert rows["x"].field.whole is False and rows["x"].field.axes[1].size == 1
    assert rows["attn"].field.whole is True


TIED = """  - {name: wte, op: embedding, num_embeddings: 100, embedding_dim: 8}
  - {name: ln, op: layernorm}
  - {name: lm_head, op: linear, out_features: 100, bias: false, weight: wte}
"""


def test_a_tied_weight_is_counted_once_and_shared_in_the_generated_model():
    model = net(TIED)
    result = model.analyze()
    assert result.ok, result.errors
    assert [r.params for r in result.layers] == [800, 16, 0]
    assert result.totals["params"] == 816
    report = verify(model, {"N": 2, "L": 5})
    assert report.ok, report.problems()
    from archplan.codegen import generate_sources

    source = generate_sources(model, {"N": 2, "L": 5}).files["model.py"]
    assert "self.lm_head.weight = self.wte.weight" in source


@pytest.mark.parametrize(
    "layers, message",
    [
        (TIED.replace("weight: wte", "weight: wtf"), "'wtf' names no layer in this scope"),
        (TIED.replace("weight: wte", "weight: lm_head"), "must be an op layer listed (and not skipped) before"),
        (TIED.replace("weight: wte", "weight: ln"), "weight: ln's weight is [8], this layer's is [100, 8]"),
        (TIED.replace("out_features: 100", "out_features: 99"), "wte's weight is [100, 8], this layer's is [99, 8]"),
        (TIED.replace("op: layernorm", "op: relu, weight: wte"), "ReLU has no weight to share with wte"),
        (TIED.replace("weight: wte", "weight: [wte]"), "weight: expected the name of a layer"),
    ],
)
def test_tying_errors(layers, message):
    result = net(layers).analyze()
    assert not result.ok
    assert any(message in p.message for p in result.errors), [p.message for p in result.errors]


def test_positions_dim_out_of_range():
    result = net("  - {op: positions, dim: 2}\n").analyze()
    assert not result.ok and "dim 2 is out of range for a 2-D input" in result.errors[0].message


@pytest.mark.parametrize("padding", [None, 3])
def test_an_embedding_std_draws_the_generated_table_from_it(padding):
    from archplan.codegen import generate_sources
    from archplan.verify import load_module

    pad = "" if padding is None else f", padding_idx: {padding}"
    layers = (
        f"  - {{name: wte, op: embedding, num_embeddings: 2000, embedding_dim: 64, std: 0.02{pad}}}\n"
        "  - {name: head, op: linear, out_features: 2000, weight: wte}\n"
    )
    model_net = net(layers, "tokens: {shape: [N, L], dtype: int64, range: 2000}", "N: {}\n  L: {default: 8}")
    result = model_net.analyze({"N": 1})
    assert result.ok and result.totals["params"] == 2000 * 64 + 2000  # the table once, the head's bias
    source = generate_sources(model_net).files["model.py"]
    assert "class NormalEmbedding(nn.Embedding):" in source and "std=0.02" in source
    torch.manual_seed(0)
    model = load_module(source, "t").build_model()
    weight = model.wte.weight.detach()
    assert isinstance(model.wte, torch.nn.Embedding) and model.head.weight is model.wte.weight
    rows = [i for i in range(2000) if i != padding]
    assert abs(float(weight[rows].std()) - 0.02) < 0.001
    if padding is not None:
        assert not weight[padding].any()
    assert set(model.state_dict()) == {"wte.weight", "head.weight", "head.bias"}
    assert verify(model_net).ok


def test_the_default_std_keeps_torchs_embedding():
    from archplan.codegen import generate_sources

    layers = "  - {name: wte, op: embedding, num_embeddings: 100, embedding_dim: 4}\n"
    source = generate_sources(net(layers, symbols="N: {}\n  L: {default: 8}")).files["model.py"]
    assert "nn.Embedding(100, 4)" in source and "NormalEmbedding" not in source


@pytest.mark.parametrize(
    "std, message",
    [("0", "std: expected a number > 0, received 0.0"), ("-1", "> 0"), (".inf", "expected a finite number")],
)
def test_embedding_std_must_be_positive_and_finite(std, message):
    layers = f"  - {{name: wte, op: embedding, num_embeddings: 10, embedding_dim: 4, std: {std}}}\n"
    result = net(layers).analyze()
    assert not result.ok and message in result.errors[0].message
