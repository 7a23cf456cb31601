"""archplan verify: the generated model, run in torch, agrees with the analysis layer by layer.

PyTorch is the oracle. Every example and a few hundred random small nets (convs, pools, norms, linears,
add/concat skips, upsampling, blocks with repeat, first: and when:) must match in shape, parameters,
buffers and FLOPs; this is the project's strongest test of both the op rules and the code generator.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import archplan
from archplan.cli import cli
from archplan.verify import format_report, verify

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.yaml"))


# gpt2_small's 124M parameters take seconds to build: the default run verifies it at a short context
# (tests/test_transformer_examples.py), the slow set at its defaults
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "gpt2_small" else n for n in EXAMPLES]
)
def test_every_example_verifies(name):
    report = verify(archplan.load(ROOT / "examples" / f"{name}.yaml"))
    assert report.ok, format_report(report, everything=False)
    assert all(c.actual_shape is not None for c in report.layers)


def test_cli_exit_codes_and_table():
    ok = CliRunner().invoke(cli, ["verify", str(ROOT / "examples" / "resnet18.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "layer1.0.add" not in ok.output and "all 69 layers match the analysis" in ok.output
    everything = CliRunner().invoke(cli, ["verify", str(ROOT / "examples" / "resnet18.yaml"), "--all"])
    assert everything.exit_code == 0 and "layer1.0.add" in everything.output
    assert everything.output.count(" ok\n") >= 69 + 4  # every layer, then the totals


def test_cli_reports_a_wrong_rule(monkeypatch):
    from archplan.ops.dense import Linear

    monkeypatch.setattr(Linear, "param_count", lambda self, a, ins: ins[0][-1] * a.out_features)  # forgets bias
    result = CliRunner().invoke(cli, ["verify", str(ROOT / "examples" / "lenet.yaml")])
    assert result.exit_code == 1
    assert "fc1" in result.output and "params 400,500 != predicted 400,000" in result.output
    assert "conv1" not in result.output  # only the differing layers are listed


def test_without_torch_one_line_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    result = CliRunner().invoke(cli, ["verify", str(ROOT / "examples" / "lenet.yaml")])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "pip install archplan[torch]" in result.output


# -- random nets -----------------------------------------------------------------------------------------

BLOCKS = """
blocks:
  res:
    args: {c: null, s: 1, proj: false, k: 3}
    layers:
      - {name: conv1, op: conv2d, out_channels: c, kernel_size: k, stride: s, padding: same, bias: false}
      - {name: bn1, op: batchnorm2d}
      - {name: act, op: relu}
      - {name: conv2, op: conv2d, out_channels: c, kernel_size: 3, padding: 1}
      - {name: short, op: conv2d, in: input, out_channels: c, kernel_size: 1, stride: s, when: proj}
      - {name: add, op: add, in: [conv2, short]}
  mix:
    args: {c: null, wide: false}
    inputs: [x, skip]
    layers:
      - {name: up, op: convtranspose2d, in: x, out_channels: c, kernel_size: 2, stride: 2}
      - {name: cat, op: concat, in: [up, skip]}
      - {name: extra, op: conv2d, out_channels: "2*c", kernel_size: 1, when: wide}
      - {name: conv, op: conv2d, out_channels: c, kernel_size: 3, padding: 1}
      - {name: gn, op: groupnorm, num_groups: 1}
  inner:
    args: {c: null}
    layers:
      - {name: body, block: res, args: {c: c, proj: true}}
      - {name: pool, op: avgpool2d, kernel_size: 1}
"""


class RandomNet:
    """YAML text for a random valid-looking net; shapes are tracked to keep most samples valid."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.lines: list[str] = []
        self.count = 0
        self.c = self.rng.choice([1, 3, 4])
        self.h = self.rng.randint(6, 20)
        self.w = self.rng.randint(6, 20)
        self.seen: list[tuple[str, int, int, int]] = [("image", self.c, self.h, self.w)]
        self.inside: list[tuple[str, int, int, int]] = []  # layers inside block uses (`l3.act`, `l5.1.act`)

    def name(self) -> str:
        self.count += 1
        return f"l{self.count}"

    def add(self, text: str, c: int, h: int, w: int, named: bool = True) -> None:
        name = self.name()
        self.lines.append(f"  - {{name: {name}, {text}}}" if named else f"  - {{{text}}}")
        self.c, self.h, self.w = c, h, w
        if named:
            self.seen.append((name, c, h, w))

    def step(self) -> None:
        r, c, h, w = self.rng, self.c, self.h, self.w
        kinds = [
            "conv",
            "conv",
            "pool",
            "norm",
            "act",
            "skip",
            "cat",
            "up",
            "res",
            "mix",
            "inner",
            "pad",
            "tconv",
            "drop",
            "shuffle",
            "split",
            "channels_last",
            "scale",
            "gate",
            "tokens",
            "pads",
        ]
        kind = "mix" if any(s[2:] == (2 * h, 2 * w) for s in self.seen) and r.random() < 0.3 else r.choice(kinds)
        if kind == "conv":
            k, s = r.choice([1, 2, 3, 5]), r.choice([1, 1, 2])
            pad = r.choice(["0", str(k // 2), "same", "valid"])
            out = r.choice([2, 4, 6, 8])
            groups = r.choice([g for g in (1, 2) if c % g == 0 and out % g == 0])
            if pad == "same":
                hh, ww = -(-h // s), -(-w // s)
            else:
                p = 0 if pad == "valid" else int(pad)
                hh, ww = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            if min(hh, ww) >= 2:
                self.add(
                    f"op: conv2d, out_channels: {out}, kernel_size: {k}, stride: {s}, padding: {pad}, "
                    f"groups: {groups}, bias: {r.choice(['true', 'false'])}",
                    out,
                    hh,
                    ww,
                )
        elif kind == "pool" and min(h, w) >= 4:
            op, k = r.choice(["maxpool2d", "avgpool2d"]), r.choice([2, 3])
            ceil = r.choice(["true", "false"])

            def size(n):
                return -(-(n - k) // k) + 1 if ceil == "true" else (n - k) // k + 1

            self.add(f"op: {op}, kernel_size: {k}, ceil_mode: {ceil}", c, size(h), size(w), named=r.random() < 0.8)
        elif kind == "norm":
            self.add(
                r.choice(["op: batchnorm2d", "op: groupnorm, num_groups: 1", "op: batchnorm2d, affine: false"]), c, h, w
            )
        elif kind == "act":
            self.add(
                "op: " + r.choice(["relu", "gelu", "tanh", "sigmoid", "leakyrelu", "silu", "hardswish"]),
                c,
                h,
                w,
                named=r.random() < 0.7,
            )
        elif kind == "drop":
            self.add(f"op: dropout, p: {r.choice([0.1, 0.5])}", c, h, w)
        elif kind in ("skip", "cat"):
            candidates = self.seen[:-1] + self.inside
            same = [s for s in candidates if s[2:] == (h, w) and (kind == "cat" or s[1] == c)]
            if same:
                other = r.choice(same)
                op = "add" if kind == "skip" else "concat"
                channels = c if kind == "skip" else c + other[1]
                last = self.seen[-1][0]
                self.add(f"op: {op}, in: [{last}, {other[0]}]", channels, h, w)
        elif kind == "up" and max(h, w) <= 16:
            mode = r.choice(["nearest", "bilinear"])
            self.add(f"op: upsample, scale_factor: 2, mode: {mode}", c, 2 * h, 2 * w)
        elif kind == "pad":
            self.add("op: zeropad2d, padding: [1, 0, 2, 1]", c, h + 3, w + 1)
        elif kind == "tconv" and max(h, w) <= 16:
            out = r.choice([2, 4])
            self.add(
                f"op: convtranspose2d, out_channels: {out}, kernel_size: 3, stride: 2, padding: 1, output_padding: 1",
                out,
                2 * h,
                2 * w,
            )
        elif kind == "res":
            out, s, n = r.choice([c, 4, 8]), r.choice([1, 2]), r.choice([1, 2, 3])
            hh, ww = -(-h // s), -(-w // s)
            proj = "true" if (out != c or s != 1) else r.choice(["true", "false"])
            repeat = f", repeat: {n}" if n > 1 or r.random() < 0.5 else ""
            first = f", first: {{s: {s}, proj: {proj}}}" if repeat else ""
            args = f"c: {out}, k: {r.choice([1, 3])}" + ("" if repeat else f", s: {s}, proj: {proj}")
            self.add(f"block: res, args: {{{args}}}{first}{repeat}", out, hh, ww)
            copies = [f"{k}." for k in range(n)] if repeat else [""]
            self.inside += [(f"{self.seen[-1][0]}.{copy}act", out, hh, ww) for copy in copies]
        elif kind == "mix" and max(h, w) <= 16:
            skips = [s for s in self.seen if s[2:] == (2 * h, 2 * w)]
            if skips:
                skip = r.choice(skips)
                out = r.choice([2, 4])
                wide = r.choice(["true", "false"])
                self.add(
                    f"block: mix, args: {{c: {out}, wide: {wide}}}, in: [{self.seen[-1][0]}, {skip[0]}]",
                    out,
                    2 * h,
                    2 * w,
                )
        elif kind == "inner":
            out = r.choice([4, 6])
            self.add(f"block: inner, args: {{c: {out}}}", out, h, w)
            self.inside.append((f"{self.seen[-1][0]}.body.act", out, h, w))
        else:
            self.tensor_step(kind)

    def tensor_step(self, kind: str) -> None:
        """The layout and tensor ops: shuffles, channel split, channels-last LayerNorm (ConvNeXt), a learned
        layer scale and a squeeze-excitation gate (broadcasting), a round trip through tokens, pads, depth."""
        r, c, h, w = self.rng, self.c, self.h, self.w
        if kind == "shuffle":
            if c % 4 == 0 and r.random() < 0.5:
                self.add("op: pixelshuffle, upscale_factor: 2", c // 4, 2 * h, 2 * w)
            elif h % 2 == 0 and w % 2 == 0 and c <= 8:
                self.add("op: pixelunshuffle, downscale_factor: 2", 4 * c, h // 2, w // 2)
            elif c % 2 == 0:
                self.add("op: channelshuffle, groups: 2", c, h, w)
        elif kind == "split" and c >= 2:
            self.add("op: slice, dim: 1, start: 1, step: 2", c // 2, h, w)
        elif kind == "channels_last":
            self.add("op: permute, dims: [0, 2, 3, 1]", c, h, w, named=False)
            self.add("op: layernorm, eps: 1.0e-6", c, h, w, named=False)
            self.add("op: permute, dims: [0, 3, 1, 2]", c, h, w)
        elif kind == "scale":
            last, scale = self.seen[-1][0], self.name()
            self.lines.append(f"  - {{name: {scale}, op: parameter, shape: [{c}, 1, 1], init: constant, value: 0.5}}")
            self.add(f"op: mul, in: [{last}, {scale}]", c, h, w)
            if r.random() < 0.5:
                self.add(f"op: stochasticdepth, p: 0.2, mode: {r.choice(['row', 'batch'])}", c, h, w)
        elif kind == "gate":
            last = self.seen[-1][0]
            self.add(f"op: mean, in: {last}, dim: [2, 3], keepdim: true", c, 1, 1, named=False)
            self.add("op: sigmoid", c, 1, 1)
            self.add(f"op: mul, in: [{last}, {self.seen[-1][0]}]", c, h, w)
        elif kind == "tokens":
            self.add("op: flatten, start_dim: 2", c, h * w, 1, named=False)
            self.add("op: transpose, dim0: 1, dim1: 2", c, h, w, named=False)
            self.add(f"op: reshape, shape: [N, {h}, {w}, {c}]", c, h, w, named=False)
            self.add("op: permute, dims: [0, 3, 1, 2]", c, h, w)
        elif kind == "pads" and min(h, w) >= 3:
            op = r.choice(["reflectionpad2d", "replicationpad2d", "constantpad2d"])
            value = ", value: 0.5" if op == "constantpad2d" else ""
            self.add(f"op: {op}, padding: [1, 2, 0, 1]{value}", c, h + 1, w + 3)

    def text(self) -> str:
        for _ in range(self.rng.randint(3, 9)):
            self.step()
        head = self.rng.random() < 0.6
        if head:
            self.add("op: adaptiveavgpool2d, output_size: 1", self.c, 1, 1)
            self.add("op: flatten", self.c, 1, 1)
            self.add(f"op: linear, out_features: {self.rng.choice([3, 10])}", 0, 0, 0)
        return (
            f"archplan: 1\nname: random_net\nsymbols: {{N: {{}}}}\ninputs:\n  image: [N, 3, {self.h0}, "
            f"{self.w0}]\n" + BLOCKS + "layers:\n" + "\n".join(self.lines) + "\n"
        )

    def build(self) -> str:
        self.h0, self.w0 = self.h, self.w
        self.c = 3
        self.seen = [("image", 3, self.h, self.w)]
        self.inside = []
        return self.text()


def verify_random_nets(seeds: range, minimum: int, tmp_path) -> None:
    """Every valid random net of the seeds verifies, and its generated model.py is ruff clean."""
    from archplan.codegen import RUFF_CONFIG, generate_sources
    from test_generate import assert_ruff_clean

    checked, skipped = 0, []
    for seed in seeds:
        text = RandomNet(seed).build()
        net = archplan.loads(text, f"random-{seed}.yaml")
        if not net.analyze({"N": 1}).ok:
            skipped.append(seed)
            continue
        report = verify(net)
        assert report.ok, f"seed {seed}:\n{text}\n{format_report(report, everything=False)}"
        (tmp_path / f"model_{seed}.py").write_text(generate_sources(net, model_only=True).files["model.py"])
        checked += 1
    assert checked >= minimum, f"only {checked} random nets were valid (invalid seeds: {skipped})"
    (tmp_path / "ruff.toml").write_text(RUFF_CONFIG)
    assert_ruff_clean(tmp_path)


def test_random_nets_verify(tmp_path):
    verify_random_nets(range(40), 30, tmp_path)


@pytest.mark.slow
def test_more_random_nets_verify(tmp_path):
    """The default run's 40 seeds and these 80: 120 random nets."""
    verify_random_nets(range(40, 120), 60, tmp_path)
