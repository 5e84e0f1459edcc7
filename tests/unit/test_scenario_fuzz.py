"""Mutation fuzzing of real scenario files: the loader accepts a document or raises its own
located ScenarioError; never another exception, never a hang.

Mutations start from every scenario in the repository and apply edits people (and
editors) make: deleted, renamed and duplicated keys, values of the wrong type, unicode,
huge scalars, deep nesting, truncation, and alias bombs.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ScenarioError
from harness.paths import REPO_ROOT
from harness.scenario.model import load_scenarios

SOURCES = [p.read_text() for p in sorted((REPO_ROOT / "scenarios").rglob("*.yaml"))]
EXAMPLES = int(os.environ.get("HARNESS_FUZZ_EXAMPLES", "300"))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(alphabet="\u202e\u0000\ufeff\U0001f600é漢", max_size=10),
    st.just("x" * 100_000),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _set(doc: object, path: tuple[object, ...], value: object) -> object:
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]  # type: ignore[index]
    parent[path[-1]] = value  # type: ignore[index]
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SOURCES))
    kind = draw(
        st.sampled_from(
            ["replace", "delete", "rename", "text-edit", "duplicate-line", "truncate", "bomb", "nest"]
        )
    )
    if kind == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if kind == "duplicate-line":
        lines = text.splitlines()
        index = draw(st.integers(0, len(lines) - 1))
        return "\n".join([*lines[: index + 1], lines[index], *lines[index + 1 :]])
    if kind == "text-edit":
        position = draw(st.integers(0, len(text)))
        return text[:position] + draw(st.text(max_size=8)) + text[position:]
    if kind == "bomb":
        layers = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        layers += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
        return "name: bomb\nflow: refiner\ndescription: x\n" + "\n".join(f"x{line}" for line in layers) + "\n"
    if kind == "nest":
        depth = draw(st.integers(50, 400))
        return "name: deep\nflow: refiner\nsteps: " + "[" * depth + "]" * depth + "\n"
    doc = yaml.safe_load(text)
    paths = [p for p in _paths(doc) if p]
    path = draw(st.sampled_from(paths))
    if kind == "replace":
        doc = _set(doc, path, draw(values))
    elif kind == "delete":
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        del parent[path[-1]]
    elif kind == "rename" and isinstance(path[-1], str):
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        parent[draw(st.text(min_size=1, max_size=12))] = parent.pop(path[-1])
    return yaml.safe_dump(doc, allow_unicode=True, default_flow_style=None)


@settings(
    max_examples=EXAMPLES,
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_documents())
def test_mutated_scenarios_load_or_fail_with_a_location(document: str) -> None:
    directory = Path(os.environ.get("TMPDIR", "/tmp")) / "harness-fuzz"
    directory.mkdir(exist_ok=True)
    path = directory / f"fuzz-{os.getpid()}.yaml"
    path.write_text(document, encoding="utf-8")
    try:
        load_scenarios(path)
    except ScenarioError as exc:
        assert exc.file == str(path) or exc.file.endswith(".yaml")
        assert exc.message
