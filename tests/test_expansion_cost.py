"""archplan/expansion.py: the work a block use will cost is known before it is expanded. The estimate is a lower
bound on what lowering then visits (so it never refuses a net that fits) and is exact when every repeat and
argument can be evaluated without shapes; a use over the limit is refused before any of it is visited."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import archplan
from archplan import build
from archplan.spec import parse_text

ROOT = Path(__file__).resolve().parents[1]


def nested_net(outer_repeat: int, k: int, inner_when: str = "false", shape_repeat: bool = False) -> str:
    inner_repeat = "in_features // 4" if shape_repeat else "k"
    return f"""archplan: 1
name: nested
inputs:
  x: [1, 12]
blocks:
  inner:
    args: {{k: 1}}
    layers:
      - {{op: relu, when: {inner_when}}}
      - {{op: relu}}
  outer:
    args: {{k: 1, extra: "k + 1"}}
    layers:
      - {{op: relu}}
      - {{block: inner, args: {{k: k}}, repeat: "{inner_repeat}"}}
      - {{block: inner, repeat: extra, first: {{k: 2}}}}
layers:
  - {{block: outer, args: {{k: {k}}}, repeat: {outer_repeat}}}
"""


def estimate(low, use) -> int:
    """What the estimator says a top-level block use visits, as lowering asks it (first copy, then the rest)."""
    first = low.costs.use(use.block, {**use.args, **use.first}, {**low.env, "index": 0})
    repeat = low.repeat_count(use, low.env, use.block)
    return first + (repeat - 1) * low.costs.use(use.block, use.args, low.env)


def visited(spec) -> int:
    """The layer entries lowering visits for the whole net."""
    low = build._Lowering(spec, {})
    root = build.Instance("", None, spec.layers, {}, tuple(low.inputs()))
    low.scope(root, "", low.env, {name: name for name in spec.inputs}, (), ())
    return low.visits


def visits_and_estimate(text: str) -> tuple[int, int]:
    """What lowering visited inside the one top-level use, and what the estimate said it would."""
    spec, problems = parse_text(text, "nested.yaml")
    assert not problems, problems
    graph, problems = build.lower(spec, {})
    assert graph is not None and not problems, problems
    return visited(spec) - 1, estimate(build._Lowering(spec, {}), spec.layers[0])  # minus the use's own entry


@settings(max_examples=25, deadline=None)
@given(outer=st.integers(1, 6), k=st.integers(1, 6), when=st.sampled_from(["false", "true"]))
def test_the_estimate_is_exact_when_everything_evaluates(outer, k, when):
    visited, estimate = visits_and_estimate(nested_net(outer, k, when))
    assert estimate == visited


def test_a_repeat_read_from_a_shape_makes_the_estimate_a_lower_bound():
    visited, estimate = visits_and_estimate(nested_net(3, 2, shape_repeat=True))
    assert 0 < estimate < visited


def test_a_use_over_the_limit_is_refused_before_it_is_visited():
    spec, _ = parse_text(nested_net(400, 400), "bomb.yaml")
    graph, problems = build.lower(spec, {})
    assert graph is None and "expands to more than" in problems[0].message
    assert problems[0].layer == "outer_1"  # the use itself, not a layer deep inside a copy


def test_every_example_expands_within_its_estimate():
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        spec = archplan.load(path).spec
        low = build._Lowering(spec, {})
        total = len(spec.layers) + sum(estimate(low, layer) for layer in spec.layers if layer.block is not None)
        assert total <= visited(spec), path.name


def test_random_arguments_never_overestimate():
    rng = random.Random(0)
    for _ in range(30):
        visited, estimate = visits_and_estimate(
            nested_net(rng.randint(1, 5), rng.randint(1, 5), rng.choice(["true", "false"]), rng.random() < 0.5)
        )
        assert estimate <= visited
