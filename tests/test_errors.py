"""Bad input: every problem collected, located (line, layer), explained (expected vs received); never a traceback."""

from __future__ import annotations

import pytest

import archplan


def problems(text: str, values=None):
    result = archplan.loads(text, "net.yaml").analyze(values or {})
    return result.errors


HEAD = "archplan: 1\nname: t\ninputs:\n  x: [1, 3, 32, 32]\nlayers:\n"


def test_yaml_syntax_error_has_a_line():
    (error,) = problems("archplan: 1\nname: t\n  bad: [\n")
    assert error.line == 3 and "YAML syntax error" in error.message


def test_all_errors_are_collected_with_lines_and_layers():
    text = HEAD + (
        "  - {name: c1, op: conv2dd, out_channels: 8, kernel_size: 3}\n"
        "  - {name: c2, op: conv2d, out_channels: 8, kernel: 3, in: x}\n"
        "  - {name: c3, op: conv2d, out_channels: 8, kernel_size: 3, in_channels: 4, in: x}\n"
        "  - {name: s, op: add, in: [c3, nope]}\n"
        "  - {name: 2bad, op: relu}\n"
    )
    errors = problems(text)
    by_layer = {(e.layer, e.line): e.message for e in errors}
    assert "unknown op 'conv2dd'" in by_layer[("c1", 6)]
    assert any(e.hint == "did you mean 'Conv2d'?" for e in errors if e.layer == "c1")
    assert any("unknown argument 'kernel'" in e.message and e.hint == "did you mean 'kernel_size'?" for e in errors)
    assert "in_channels mismatch: expected 3" in by_layer[("c3", 8)] and "received 4" in by_layer[("c3", 8)]
    assert "in: 'nope' names no layer" in by_layer[("s", 9)]
    assert any("must be a Python identifier" in e.message and e.line == 10 for e in errors)


@pytest.mark.parametrize(
    "layer,needle",
    [
        ("{op: conv2d, out_channels: 8, kernel_size: 64}", "not positive"),
        ("{op: conv2d, out_channels: -8, kernel_size: 3}", "expected a positive integer size, received -8"),
        ("{op: conv2d, out_channels: 8, kernel_size: [3, 3, 3]}", "expected an integer or a list of 2"),
        ("{op: conv2d, out_channels: 8, kernel_size: 3, bias: 1}", "expected true or false"),
        ("{op: conv2d, out_channels: 8, kernel_size: 3, groups: 2}", "divisible by groups"),
        ("{op: conv2d, out_channels: eight, kernel_size: 3}", "unknown name 'eight'"),
        ("{op: maxpool2d, kernel_size: 2, padding: full}", "'full' is not supported here"),
        ("{op: maxpool2d, kernel_size: 2, padding: 2}", "more than half the kernel size"),
        ("{op: linear}", "requires the argument 'out_features'"),
        ("{op: linear, out_features: 10, in_features: 7}", "in_features mismatch: expected 32"),
        ("{op: conv1d, out_channels: 8, kernel_size: 3}", "expects a 3-D input, received a 4-D tensor"),
        ("{op: add}", "takes at least 2 input(s), received 1"),
        ("{op: dropout, p: 1.5}", "expected a number in [0, 1], received 1.5"),
        ("{op: upsample}", "exactly one of size or scale_factor"),
        ("{op: conv2d, out_channels: '__import__(\"os\")', kernel_size: 3}", "unexpected"),
    ],
)
def test_layer_errors(layer, needle):
    errors = problems(HEAD + f"  - {layer}\n")
    assert errors, layer
    assert any(needle in e.message for e in errors), [e.message for e in errors]
    assert all(e.line == 6 for e in errors)


def test_cycle_is_reported():
    text = HEAD + "  - {name: a, op: relu, in: b}\n  - {name: b, op: relu, in: a}\n"
    errors = problems(text)
    assert any("cycle" in e.message and "a -> b -> a" in e.message or "b -> a -> b" in e.message for e in errors)


def test_duplicate_names_and_keys():
    text = HEAD + "  - {name: a, op: relu}\n  - {name: a, op: relu}\n  - {name: c, op: relu, op: tanh}\n"
    messages = [e.message for e in problems(text)]
    assert any("duplicate name 'a'" in m for m in messages)
    assert any("duplicate key 'op'" in m for m in messages)


def test_python_tags_are_refused():
    text = HEAD + "  - {op: !!python/object/apply:os.system ['echo hi']}\n"
    assert any("unsupported YAML value" in e.message for e in problems(text))


def test_alias_bomb_is_refused_quickly():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]")
    errors = problems("\n".join(lines) + "\n")
    assert any("expands to more than" in e.message for e in errors)


def test_missing_top_level_keys_and_unknown_keys():
    messages = [e.message for e in problems("archplan: 2\nnam: t\n")]
    assert any("unsupported format version" in m for m in messages)
    assert any("missing required key 'layers'" in m for m in messages)
    assert any("unknown key 'nam'" in m for m in messages)


def test_block_errors():
    text = (
        "archplan: 1\nname: t\ninputs:\n  x: [1, 3, 8, 8]\nblocks:\n  b:\n    args: {c: null}\n"
        "    layers:\n      - {op: conv2d, out_channels: c, kernel_size: 1}\n"
        "layers:\n  - {name: u, block: b}\n  - {name: v, block: b, args: {c: 4, d: 1}}\n  - {name: w, block: nob}\n"
        "  - {name: r, block: b, args: {c: 2}, repeat: 0}\n"
    )
    messages = {e.layer: e.message for e in problems(text)}
    assert "requires the argument 'c'" in messages["u"]
    assert "has no argument 'd'" in messages["v"]
    assert "unknown block 'nob'" in messages["w"]
    assert "repeat: expected a positive integer" in messages["r"]


def test_train_section_is_validated():
    text = HEAD + "  - {op: relu}\ntrain: {optimizer: adamax, epochs: 0, lr: fast, batchsize: 2}\n"
    messages = [e.message for e in problems(text)]
    assert any("train.optimizer must be one of sgd, adam, adamw" in m for m in messages)
    assert any("train.epochs must be an integer from 1 to 100000, received 0" in m for m in messages)
    assert any("train.lr must be a finite number > 0, received the text 'fast'" in m for m in messages)
    assert any("unknown training setting 'batchsize'" in m for m in messages)


def test_reserved_layer_names():
    messages = [e.message for e in problems(HEAD + "  - {name: forward, op: relu}\n")]
    assert any("reserved" in m for m in messages)


def test_strict_turns_warnings_into_errors():
    text = HEAD + "  - {op: maxpool2d, kernel_size: 5}\n"
    net = archplan.loads(text)
    assert net.analyze().ok and net.analyze().warnings
    assert not net.analyze(strict=True).ok


def test_huge_expansion_is_refused():
    text = (
        "archplan: 1\nname: t\ninputs:\n  x: [1, 3, 8, 8]\nblocks:\n  b:\n    layers:\n      - {op: relu}\n"
        "layers:\n  - {block: b, repeat: 200000}\n"
    )
    (error,) = problems(text)
    assert "expands to more than" in error.message
