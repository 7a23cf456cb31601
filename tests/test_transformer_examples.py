"""The transformer examples (ViT-B/16, GPT-2 small, the byte-level GPT) against the pure-torch references of
tests/torch_reference_modern.py and the published figures: totals, MACs as formulas in N and L, validity
domains, `verify`, and the generated model computing the reference's function given its weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_reference_modern as ref  # noqa: E402
from torch_reference_modern import count_macs, count_params, example_input, on_meta  # noqa: E402

import archplan  # noqa: E402
from archplan.symbols import symbol  # noqa: E402
from archplan.verify import verify  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str):
    return archplan.load(EXAMPLES / f"{name}.yaml")


def test_vit_b_16_matches_torchvision_and_the_reference():
    result = load("vit_b_16").analyze({"N": 1, "H": 224, "W": 224})
    assert result.ok and not result.warnings
    model = on_meta(ref.vit_b_16)
    assert result.totals["params"] == count_params(model) == 86_567_656
    assert result.totals["macs"] == count_macs(model, example_input("vit_b_16", device="meta")) == 17_563_828_224
    assert result.outputs["heads"] == (1, 1000)


def test_vit_position_table_follows_the_image_size():
    """The table has a row per patch: every size >= 16 is valid, sides off the 16-grid lose border pixels."""
    result = load("vit_b_16").analyze({"N": 1})
    assert result.ok and result.constraints == ["H >= 16", "W >= 16"]
    borders = [f"{w.message} {w.hint}" for w in result.warnings]
    assert any("H % 16 == 0" in m for m in borders) and any("W % 16 == 0" in m for m in borders)
    assert load("vit_b_16").analyze({"N": 1, "H": 384, "W": 384}).totals["params"] == 86_567_656 + 768 * (576 - 196)


def test_vit_with_torchvisions_fixed_table_is_valid_only_near_224():
    text = (EXAMPLES / "vit_b_16.yaml").read_text().replace("(H // 16) * (W // 16) + 1", "197")
    net = archplan.loads(text)
    assert net.analyze({"N": 1, "W": 224}).constraints == ["H >= 224", "H <= 239"]
    assert not net.analyze({"N": 1, "W": 224, "H": 240}).ok
    assert "floor(H/16)*floor(W/16) + 1 == 197" in net.analyze({"N": 1}).constraints[0]


def test_vit_verifies_at_a_small_size():
    report = verify(load("vit_b_16"), {"N": 1, "H": 32, "W": 48})
    assert report.ok, report.problems()


def test_gpt2_small_params_formula_and_domain():
    result = load("gpt2_small").analyze()
    assert result.ok and not result.warnings
    assert result.totals["params"] == count_params(on_meta(ref.gpt2)) == 124_439_808
    assert result.constraints == ["L <= 1024"]
    n, length = symbol("N"), symbol("L")
    assert (result.totals["macs"] - (123_532_032 * n * length + 18_432 * n * length**2)).expand() == 0
    for sizes in ({"N": 1, "L": 128}, {"N": 3, "L": 17}):
        tokens = example_input("gpt2", (sizes["N"], sizes["L"]), device="meta")
        assert result.totals["macs"].subs({n: sizes["N"], length: sizes["L"]}) == count_macs(on_meta(ref.gpt2), tokens)
    assert not load("gpt2_small").analyze({"L": 1025}).ok


def test_byte_gpt_params_and_macs():
    result = load("byte_gpt").analyze({"N": 2, "L": 128})
    assert result.totals["params"] == count_params(on_meta(ref.byte_gpt)) == 1_002_120
    assert result.totals["macs"] == ref.gpt_macs(ref.BYTE_GPT, 2, 128)
    assert load("byte_gpt").analyze().constraints == ["L <= 128"]


def reference_state(model) -> dict:
    """The reference GPT's weights under the generated model's names: nanoGPT's c_attn is
    nn.MultiheadAttention's packed in_proj (q, k, v stacked the same way), c_proj its out_proj."""
    out = {}
    for key, value in model.state_dict().items():
        key = key.removeprefix("transformer.")
        key = key.replace("attn.c_attn.weight", "attn.in_proj_weight").replace("attn.c_attn.bias", "attn.in_proj_bias")
        key = key.replace("attn.c_proj", "attn.out_proj").replace("mlp.", "")
        out[key] = value
    return out


def test_generated_byte_gpt_computes_the_reference_function():
    """Same weights, same logits: the generated model (nn.MultiheadAttention with a causal mask, tied head)
    is the reference nanoGPT-style GPT, in eval mode, at a length below the context."""
    from archplan.codegen import generate_sources
    from archplan.verify import load_module

    torch.manual_seed(0)
    reference = ref.byte_gpt().eval()
    source = generate_sources(load("byte_gpt"), {"N": 2, "L": 128}).files["model.py"]
    model = load_module(source, "byte_gpt").build_model().eval()
    missing, unexpected = model.load_state_dict(reference_state(reference), strict=False)
    assert not unexpected and missing == [], (missing, unexpected)
    assert model.lm_head.weight is model.wte.weight
    tokens = torch.randint(0, 256, (2, 50))
    with torch.no_grad():
        assert torch.allclose(model(tokens), reference(tokens), atol=1e-5)


def test_gpt2_small_verifies():
    report = verify(load("gpt2_small"), {"N": 1, "L": 16})
    assert report.ok, report.problems()
