"""padding: same for pooling (TensorFlow semantics): shapes from the analysis, values from the generated helpers
against a naive loop over windows clipped to the image."""

from __future__ import annotations

import importlib.util
import itertools

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import archplan  # noqa: E402
from archplan.codegen import generate_sources  # noqa: E402
from oracle import net_text  # noqa: E402


def naive_same_pool(x, kernel, stride, reduce):
    """TensorFlow 'SAME': out = ceil(n / s); windows start at i*s - total//2 and are clipped to the image."""
    out_sizes, starts = [], []
    for n, k, s in zip(x.shape[2:], kernel, stride):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        out_sizes.append(out)
        starts.append([i * s - total // 2 for i in range(out)])
    result = torch.empty(*x.shape[:2], *out_sizes)
    for index in itertools.product(*(range(o) for o in out_sizes)):
        window = x[
            (
                slice(None),
                slice(None),
                *(
                    slice(max(starts[a][i], 0), min(starts[a][i] + kernel[a], x.shape[2 + a]))
                    for a, i in enumerate(index)
                ),
            )
        ]
        result[(slice(None), slice(None), *index)] = reduce(window.flatten(2))
    return result


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    kind=st.sampled_from(["maxpool2d", "avgpool2d"]),
)
def test_same_pooling_matches_tensorflow(tmp_path_factory, h, w, k, s, kind):
    text = net_text([f"{{name: pool, op: {kind}, kernel_size: {k}, stride: {s}, padding: same}}"], {"x": [2, 3, h, w]})
    result = archplan.loads(text).analyze()
    assert result.ok, result.errors
    assert result.layers[0].output_shape == (2, 3, -(-h // s), -(-w // s))
    folder = tmp_path_factory.mktemp("same")
    (folder / "model.py").write_text(generate_sources(archplan.loads(text)).files["model.py"])
    spec = importlib.util.spec_from_file_location(f"same_{kind}_{h}_{w}_{k}_{s}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x = torch.randn(2, 3, h, w)
    with torch.no_grad():
        got = module.build_model()(x)
    reduce = (lambda v: v.max(dim=-1).values) if kind == "maxpool2d" else (lambda v: v.mean(dim=-1))
    torch.testing.assert_close(got, naive_same_pool(x, (k, k), (s, s), reduce))
