"""Hostile input, one class of defect at a time: each case runs through the CLI in a subprocess under a 500 MB
address-space limit and must end with exit status 1 or 2, a message naming the problem, no traceback and no
"internal error". Timeouts are hang guards only (the machine may be busy), never the assertion.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import archplan
from archplan.errors import ArchplanError
from archplan.show import shown
from archplan.spec import located, suggest

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD_S = 300
MEMORY_LIMIT = 500 * 2**20
HEAD = "archplan: 1\nname: t\nsymbols:\n  N: {}\n  H: {}\n  W: {}\ninputs:\n  x: [N, 3, H, W]\nlayers:\n"
CONCRETE = "archplan: 1\nname: t\ninputs:\n  x: [1, 3, 32, 32]\nlayers:\n"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from archplan.cli import main; main()", *args],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=HANG_GUARD_S,
        preexec_fn=_limit_memory,
        cwd=ROOT,
        env={**os.environ, "ARCHPLAN_DEBUG": ""},
    )


def refused(path: Path | str, needle: str, *args: str, status=(1, 2)) -> str:
    """Run `archplan check`; assert a clean refusal that mentions `needle`; return the output."""
    result = cli("check", str(path), *args)
    output = result.stdout + result.stderr
    assert result.returncode in status, (result.returncode, output[-2000:])
    assert "Traceback" not in output and "internal error" not in output, output[-2000:]
    assert needle in output, output[-2000:]
    return output


def write(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_by_line(output: str) -> dict[int, str]:
    """{line: the error messages reported at it} from `path:line:column: error: message` lines."""
    out: dict[int, str] = {}
    for text in output.splitlines():
        where, _, message = text.partition(": error: ")
        if message and where.count(":") >= 2:
            line = int(where.rsplit(":", 2)[1])
            out[line] = out.get(line, "") + message + "\n"
    return out


# -- 1. nesting cannot crash the process -----------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "x: " + "[" * 40000 + "]" * 40000,
        "x: " + "{a: " * 40000 + "}" * 40000,
        "x: " + "[" * 150 + "]" * 150,  # deeper than archplan allows, shallower than libyaml's own limit
        "x:\n  " + "- " * 5000 + "y",
        "- " * 150 + "y",
        "".join(" " * i + f"k{i}:\n" for i in range(3000)) + " " * 3000 + "v",
        "".join(" " * i + f"k{i}:\n" for i in range(150)) + " " * 150 + "v",
        # aliases stack depth: each level holds the previous one inside two more lists
        "a0: &a0 [[[[[[[[[[1]]]]]]]]]]\n" + "".join(f"a{i}: &a{i} [[*a{i - 1}]]\n" for i in range(1, 60)),
    ],
    ids=["flow-seq", "flow-map", "flow-150", "block-seq-line", "block-seq-top", "indent-3000", "indent-150", "alias"],
)
def test_deep_nesting_is_refused_with_a_location(tmp_path, text):
    output = refused(write(tmp_path, text), "nested too deeply")
    assert "net.yaml:" in output


def test_nesting_within_the_limit_is_accepted():
    value, problems = located.load("x: " + "[" * 90 + "]" * 90)
    assert not problems and value["x"]


# -- 2. every value YAML would materialise is counted before it is built ---------------------------
def _laughs(width: int, levels: int) -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _merge_bomb(levels: int) -> str:
    """Merges of aliases of merges: each level merges the previous one and lists it ten times."""
    lines = ["m0: &m0 {" + ", ".join(f"k{j}: [1, 2, 3]" for j in range(10)) + "}"]
    for i in range(1, levels):
        items = ", ".join([f"*m{i - 1}"] * 10)
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, {{z: 1}}], many: [{items}]}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text",
    [
        _laughs(10, 9),
        _laughs(1000, 3),
        _merge_bomb(12),
        "a: &a {" + ", ".join(f"k{j}: {j}" for j in range(2000)) + "}\n"
        "b: [" + ", ".join("{<<: *a}" for _ in range(300)) + "]\n",
        "x: [" + ", ".join(["1"] * 250_000) + "]\n",
    ],
    ids=["billion-laughs", "wide-laughs", "merge-of-merges", "repeated-merge", "flat"],
)
def test_expansion_is_counted_before_it_is_built(tmp_path, text):
    output = refused(write(tmp_path, text), "expands to more than")
    assert "net.yaml:" in output


def test_alias_problems_are_located(tmp_path):
    refused(write(tmp_path, HEAD + "  - &a [*a]\n"), "refers to a value that contains it")
    refused(write(tmp_path, HEAD + "  - *nowhere\n"), "names no anchor")


def test_shared_values_keep_their_positions():
    value, problems = located.load("a: &a {k: [1, 2]}\nb: [*a, *a]\n")
    assert not problems
    assert value["b"].where(1) == (2, 9)  # the alias
    assert value["b"][1].where("k") == (1, 8)  # the anchored definition
    # what YAML materialises: the root, key a and its mapping (5), key b and its list of two copies of it
    assert value.size == 1 + (1 + 5) + (1 + 1 + 2 * 5)


# -- 3. YAML merge override ------------------------------------------------------------------------
def test_merge_keys_work_and_explicit_keys_override():
    text = (
        "archplan: 1\nname: merged\nsymbols:\n  N: {}\ninputs:\n  x: [N, 3, 32, 32]\nlayers:\n"
        "  - &conv {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1, name: c1}\n"
        "  - {<<: *conv, name: c2, kernel_size: 5, padding: 0}\n"
        "  - {name: c3, <<: [*conv, {stride: 2}], out_channels: 4}\n"
        "  - {<<: *conv, name: c4}\n"
    )
    result = archplan.loads(text, "net.yaml").analyze({"N": 1})
    assert result.ok, [e.format() for e in result.errors]
    shapes = {row.name: tuple(row.output_shape) for row in result.layers}
    assert shapes["c1"] == (1, 8, 32, 32)
    assert shapes["c2"] == (1, 8, 28, 28)  # kernel_size and padding overridden
    assert shapes["c3"] == (1, 4, 14, 14)  # stride merged from the second mapping, out_channels overridden
    assert shapes["c4"] == (1, 8, 14, 14)


def test_merge_precedence_follows_yaml_1_1():
    value, problems = located.load("a: &a {k: 1, j: 1}\nb: &b {k: 2, i: 2}\nc: {<<: [*a, *b], j: 3}\n")
    assert not problems
    assert dict(value["c"]) == {"k": 1, "i": 2, "j": 3}  # explicit > earlier merged mapping > later one


def test_duplicate_explicit_keys_stay_errors(tmp_path):
    refused(write(tmp_path, HEAD + "  - {op: relu, op: tanh}\n"), "duplicate key 'op'")
    refused(write(tmp_path, HEAD + "  - {<<: {op: relu}, <<: {op: tanh}}\n"), "duplicate key '<<'")
    refused(write(tmp_path, HEAD + "  - {<<: [1, 2], op: relu}\n"), "bad YAML merge")


# -- 4. keys must be names -------------------------------------------------------------------------
NON_STRING_KEYS = """archplan: 1
name: t
1: x
null: y
symbols:
  N: {}
  7: {}
  H: {3: 4}
  W: {}
inputs:
  x: [N, 3, H, W]
  2: [1]
blocks:
  5: {layers: [{op: relu}]}
  b: {args: {1: 2}, layers: [{op: relu}]}
layers:
  - {op: relu, 5: x}
  - {op: relu, true: x}
  - {op: relu, on: x}
  - {op: relu, 1.5: x}
  - {op: relu, [a, b]: x}
  - {op: relu, {a: 1}: x}
  - {block: b, args: {false: 1}}
train: {3: 4}
"""


def test_non_string_keys_are_located_errors(tmp_path):
    output = refused(write(tmp_path, NON_STRING_KEYS), "keys must be names", status=(1,))
    errors = errors_by_line(output)
    for line in (3, 4, 7, 8, 12, 14, 15, 17, 18, 19, 20, 21, 22, 23, 24):
        assert "keys must be names" in errors.get(line, ""), (line, output)


def test_keys_read_as_booleans_say_so():
    _, problems = located.load("{on: 1}")
    (problem,) = problems
    assert problem.message == "keys must be names, received true" and "quote it" in problem.hint


def test_long_names_are_refused(tmp_path):
    refused(write(tmp_path, HEAD + "  - {op: relu, " + "k" * 300 + ": 1}\n"), "at most 200 characters")
    refused(write(tmp_path, HEAD + "  - {op: relu, name: " + "n" * 300 + "}\n"), "at most 100 characters")
    refused(write(tmp_path, HEAD + "  - {op: relu, in: " + "n" * 400 + "}\n"), "at most 300 characters")


# -- 5. expressions are bounded --------------------------------------------------------------------
EXPRESSIONS = [
    ("((2**64)**64)**64", "too large"),
    ("2**64**64", "too large"),
    ("2**63", "too large"),
    ("-" * 499 + "1", "expected a positive integer size"),
    ("- " * 249 + "1", "expected a positive integer size"),
    ("(" * 200 + "1" + ")" * 200, "nested too deeply"),
    ("2**" * 120 + "1", "nested too deeply"),
    ("9" * 499, "too large"),
    ("1e999", "too large"),
    ("1e308*10", "not a finite number"),
    ("1e300**2", "too large"),
    (" * ".join(["99999999999**8"] * 8), "too large"),
    ("(H**64)**64", "too high a degree"),
    ("H**64 * H**64", "too high a degree"),
    ("(H + W + N + 1)**64", "too large once expanded"),
    ("(2*H)**64", "beyond 2**63 - 1"),
    ("(99999*H)**8 * 99999**8", "beyond 2**63 - 1"),
    ("1/0", "division by zero"),
    ("H//0", "division by zero"),
    ("H % (H - H)", "division by zero"),
    ("H/0.0", "division by zero"),
    ("0**-1", "exponent must be an integer from 0 to 64"),
    ("H**H", "exponent must be an integer"),
    ("x" * 501, "expression is too long"),
    ("nope + 1", "unknown name 'nope'"),
]


def test_expressions_are_bounded(tmp_path):
    """One file, one hostile expression per layer: each layer gets its own located error."""
    layers = "".join(
        f"  - {{name: c{i}, op: conv2d, out_channels: '{expression}', kernel_size: 1, in: x}}\n"
        for i, (expression, _) in enumerate(EXPRESSIONS)
    )
    errors = errors_by_line(refused(write(tmp_path, HEAD + layers), "error", status=(1,)))
    for i, (expression, needle) in enumerate(EXPRESSIONS):
        line = HEAD.count("\n") + 1 + i
        assert needle in errors.get(line, "") and f"c{i}: " in errors[line], (expression, errors.get(line))


@pytest.mark.parametrize(
    "expression,needle",
    [
        ("k * 1000000000", "needs numbers"),
        ("k < 3", "needs numbers"),
        ("-k", "needs numbers"),
        ("min(k, 3)", "needs numbers"),
        ("m * 2", "needs numbers"),
        ("not k", "expected a number or true/false"),
    ],
)
def test_expressions_take_numbers_only(tmp_path, expression, needle):
    block = "blocks:\n  b:\n    args: {k: [3, 3], m: same}\n    layers:\n"
    block += f"      - {{op: conv2d, out_channels: 4, kernel_size: '{expression}'}}\n"
    text = HEAD.replace("layers:\n", block + "layers:\n") + "  - {name: u, block: b}\n"
    refused(write(tmp_path, text), needle, status=(1,))


def test_huge_yaml_numbers_are_refused(tmp_path):
    refused(write(tmp_path, HEAD + "  - {op: conv2d, out_channels: " + "9" * 5000 + ", kernel_size: 1}\n"), "too long")
    refused(write(tmp_path, HEAD + "  - {op: conv2d, out_channels: 99999999999999999999, kernel_size: 1}\n"), "2**63")
    refused(write(tmp_path, HEAD + "  - {op: conv2d, out_channels: 1, kernel_size: 1e300}\n"), "2**63")
    refused(write(tmp_path, HEAD + "  - {op: dropout, p: .inf}\n"), "finite")
    sexagesimal = ":".join(["59"] * 100_000)
    refused(write(tmp_path, HEAD + f"  - {{op: conv2d, out_channels: 1:{sexagesimal}, kernel_size: 1}}\n"), "too long")


# -- 6. only regular files are read ----------------------------------------------------------------
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_are_refused(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    refused(device, "character device", status=(2,))
    link = tmp_path / "link.yaml"
    link.symlink_to(device)
    refused(link, "character device", status=(2,))


def test_fifo_without_a_writer_does_not_block(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    refused(fifo, "named pipe", status=(2,))


def test_directories_large_and_binary_files_are_refused(tmp_path):
    with pytest.raises(ArchplanError, match="a directory"):
        archplan.load(tmp_path)
    refused(tmp_path, "directory", status=(2,))
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * 6_000_000 + b"\n")
    refused(big, "larger than", status=(2,))
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"archplan: 1\nname: \xff\xfe\n")
    output = refused(binary, "not UTF-8", status=(2,))
    assert "bin.yaml:2:7" in output
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"archplan: 1\n\x00\n")
    assert "nul.yaml:2:1" in refused(nul, "NUL byte", status=(2,))


def test_loads_bounds_its_text():
    net = archplan.loads("# " + "x" * 6_000_000)
    assert net.spec is None and "larger than" in net.problems[0].message


# -- 7. analyze() checks values the way the CLI does -----------------------------------------------
@pytest.mark.parametrize(
    "values,needle",
    [
        ({"H": -3}, "H=-3: sizes must be positive integers"),
        ({"H": 0}, "sizes must be positive integers"),
        ({"Q": 1}, "has no symbol 'Q'"),
        ({"H": True}, "H=true: sizes must be positive integers"),
        ({"H": 2.5}, "H=2.5: sizes must be positive integers"),
        ({"H": "224"}, "sizes must be positive integers"),
        ({"H": 10**5000}, "sizes must be at most 2**63 - 1"),
        ({5: 1}, "has no symbol 5"),
    ],
)
def test_analyze_checks_values(values, needle):
    net = archplan.load(ROOT / "examples" / "unet.yaml")
    with pytest.raises(ArchplanError) as info:
        net.analyze(values)
    assert needle in str(info.value)
    with pytest.raises(ArchplanError):
        net.graph(values)


def test_analyze_reports_declared_bounds_as_located_errors():
    result = archplan.load(ROOT / "examples" / "unet.yaml").analyze({"H": 4, "W": 64})
    assert any("H=4: below the declared min 8" in e.message and e.line for e in result.errors)


def test_set_values_are_bounded(tmp_path):
    unet = ROOT / "examples" / "unet.yaml"
    refused(unet, "at most 2**63 - 1", "--set", "H=" + "9" * 4000, status=(2,))
    refused(unet, "expected an integer size", "--set", "H=" + "9" * 5000, status=(2,))
    refused(unet, "has no symbol", "--set", "Q=1", status=(2,))


# -- 8. messages show values as YAML does ----------------------------------------------------------
MESSAGES = [
    ("{op: conv2d, out_channels: '65/2', kernel_size: 1}", "received 65/2"),
    ("{op: conv2d, out_channels: 8, kernel_size: [[1, 2], 3]}", "received [1, 2]"),
    ("{op: conv2d, out_channels: 8, kernel_size: 1, bias: {a: 1}}", "received {a: 1}"),
    ("{op: conv2d, out_channels: 8, kernel_size: [1, 2, 3]}", "received [1, 2, 3]"),
    ("{op: conv2d, out_channels: 8, kernel_size: '7/2'}", "received 7/2"),
    ("{op: upsample, scale_factor: [a, b, c]}", "received [a, b, c]"),
    ("{op: conv2d, out_channels: 8, kernel_size: 1, padding: {same: true}}", "received {same: true}"),
    ("{op: maxpool2d, kernel_size: 2001-01-01}", "received 2001-01-01"),
    ("[1, 2]", "received [1, 2]"),
]


def test_messages_show_yaml_not_python(tmp_path):
    layers = "".join(f"  - {layer}\n" for layer, _ in MESSAGES)
    output = refused(write(tmp_path, CONCRETE + layers), "error", status=(1,))
    errors = errors_by_line(output)
    for i, (layer, needle) in enumerate(MESSAGES):
        assert needle in errors.get(CONCRETE.count("\n") + 1 + i, ""), (layer, output)
    for python in ("Fraction(", "LList", "LMap", "{'", "datetime"):
        assert python not in output, output


def test_long_values_are_cut():
    long = list(range(10_000))
    assert shown(long).endswith("...") and len(shown(long)) <= 60
    assert shown({"a": [1, {"b": None}], "c": True}) == "{a: [1, {b: null}], c: true}"
    assert shown(10**5000).startswith("<an integer of")
    nested: list = []
    for _ in range(100):
        nested = [nested]
    assert len(shown(nested)) <= 60


def test_long_values_are_cut_in_messages(tmp_path):
    items = ", ".join(str(i) for i in range(5000))
    output = refused(
        write(tmp_path, CONCRETE + f"  - {{op: conv2d, out_channels: 8, kernel_size: [{items}]}}\n"), "..."
    )
    assert len(output) < 2000


# -- 9. error lists stay linear --------------------------------------------------------------------
def test_many_bad_names_cost_linear_time(tmp_path):
    layers = "".join(f"  - {{name: l{i}, op: relu, bogus_{i}: 1}}\n" for i in range(5000))
    output = refused(write(tmp_path, CONCRETE + layers), "unknown argument", status=(1,))
    assert output.count("unknown argument") == 5000
    keys = "".join(f"  - {{name: m{i}, op: relu}}\n" for i in range(3000)) + "".join(
        f"extra_key_{i}: 1\n" for i in range(3000)
    )
    output = refused(write(tmp_path, CONCRETE + keys), "unknown key", status=(1,))
    assert output.count("unknown key") == 3000


def test_many_bad_references_cost_linear_time(tmp_path):
    layers = "".join(f"  - {{name: l{i}, op: relu, in: nope_{i}}}\n" for i in range(5000))
    output = refused(write(tmp_path, CONCRETE + layers), "names no layer", status=(1,))
    assert output.count("names no layer") == 5000 and len(output) < 5000 * 300
    blocks = "blocks:\n" + "".join(f"  b{i}: {{layers: [{{op: relu}}]}}\n" for i in range(2000))
    uses = "".join(f"  - {{name: l{i}, block: bx{i}}}\n" for i in range(5000))
    output = refused(write(tmp_path, CONCRETE.replace("layers:\n", blocks + "layers:\n") + uses), "unknown block")
    assert output.count("unknown block") == 5000


def test_suggestions_are_bounded():
    assert suggest("conv1", ["conv_1", "relu"]) == "did you mean 'conv_1'?"
    assert suggest("l1", [f"l{i}" for i in range(100_000)]) is None  # a huge scope: no difflib over it
    assert suggest("x" * 10_000, ["x"]) is None
    assert suggest(5, ["five"]) is None


def test_many_unknown_symbols_are_listed_briefly():
    symbols = "".join(f"  s{i}: {{}}\n" for i in range(500))
    text = f"archplan: 1\nname: t\nsymbols:\n{symbols}inputs:\n  x: [1, 3, 8, 8]\nlayers:\n  - {{op: relu}}\n"
    (message,) = archplan.loads(text).check_values({"Q": 1})
    assert "and 490 more" in message and len(message) < 300


def _nested_blocks(levels: int, cycle: bool = False) -> str:
    lines = ["archplan: 1", "name: deep", "inputs:", "  x: [1, 4, 8, 8]", "blocks:"]
    for i in range(levels):
        inner = f"b{i + 1}" if i < levels - 1 else ("b0" if cycle else None)
        body = f"{{name: inner, block: {inner}}}" if inner else "{name: act, op: relu}"
        lines += [f"  b{i}:", "    layers:", f"      - {body}"]
    return "\n".join([*lines, "layers:", "  - {name: top, block: b0}", ""])


@pytest.mark.parametrize("cycle", [False, True], ids=["chain", "cycle"])
@pytest.mark.parametrize("command", ["check", "generate", "render", "memory"])
def test_block_uses_nested_too_deep_are_one_located_error(tmp_path, command, cycle):
    path = write(tmp_path, _nested_blocks(2000, cycle))
    args = {"generate": ("-o", str(tmp_path / "out")), "render": ("-o", str(tmp_path / "net.svg"))}
    result = cli(command, str(path), *args.get(command, ()))
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output and "internal error" not in output, output[-2000:]
    assert f"{path}:6007:5: error: top: block uses nest 2,000 deep (b0 -> b1 -> b2 -> b3 -> ...)" in output
    assert "at most 64 levels" in output
    assert not (tmp_path / "out").exists() and not (tmp_path / "net.svg").exists()


def test_block_nesting_up_to_the_limit_is_analysed():
    assert archplan.loads(_nested_blocks(64)).analyze({}).ok
    errors = archplan.loads(_nested_blocks(65)).analyze({}).errors
    assert [e.message for e in errors] == [
        "block uses nest 65 deep (b0 -> b1 -> b2 -> b3 -> ...); at most 64 levels are supported"
    ]
    short_cycle = archplan.loads(_nested_blocks(3, cycle=True)).analyze({}).errors
    assert "block 'b0' uses itself (b0 -> b1 -> b2 -> b0)" in short_cycle[0].message


def test_sizes_nested_too_deep_are_refused_where_they_get_too_deep(tmp_path):
    """Alternating strided convs and poolings nest floor(ceiling(floor(...))): sympy's own walks recursed past
    Python's limit (an internal error) a few hundred levels deep. Past 64 levels the layer gets an error."""
    pair = (
        "  - {op: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}\n"
        "  - {op: maxpool2d, kernel_size: 2}\n"
    )
    output = refused(write(tmp_path, HEAD + pair * 400), "nests more than 64 integer divisions")
    assert "error: conv2d_33:" in output and "--set H=..." in output
    net = archplan.loads(HEAD + pair * 10)  # 20 levels: analysed, and the same either way
    light, exact = net.analyze(light=True), net.analyze()
    assert light.ok and exact.ok and light.constraints == exact.constraints
