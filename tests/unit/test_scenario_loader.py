"""Scenario YAML loading: a valid file, located errors with hints, and a never-crash property."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ScenarioError
from harness.scenario.model import Scenario, load_scenario
from harness.scenario.vocabulary import EXPECTATIONS, STEPS
from harness.scenario.yaml_source import load_yaml

VALID = """\
name: refiner writes two copies and a manifest
description: One file in, two copies and a manifest out.
flow: refiner
tags: [smoke, refiner]
clock: 2026-01-15T07:59:00Z
seed: 7
steps:
  - put_object: {bucket: data-repository, key: RefinerInput/helloworld.txt, body: "hi"}
  - advance: 90m
  - await_quiet: 20s
  - send_message: {queue: RefinerInput, body: {a: 1}}
expect:
  - objects:
      bucket: data-repository
      prefix: RefinerOutput/
      count: 2
  - json: {bucket: data-repository, key: RefinerComplete/helloworld.txt.json, length: 2}
  - queue_empty: RefinerInput-dlq
  - invocations: {function: refiner, count: 1, outcome: success}
finally:
  - await_quiet: 1s
"""

HEADER = "name: x\nflow: refiner\n"


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> ScenarioError:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.file == str(path)
    return info.value


def test_valid_scenario_loads(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    scenario = load_scenario(path)
    assert isinstance(scenario, Scenario)
    assert scenario.file == path
    assert scenario.name == "refiner writes two copies and a manifest"
    assert scenario.header.flow == "refiner"
    assert scenario.header.tags == ["smoke", "refiner"]
    assert scenario.header.seed == 7
    assert scenario.header.clock == datetime(2026, 1, 15, 7, 59, tzinfo=UTC)

    assert [type(s) for s in scenario.steps] == [
        STEPS["put_object"],
        STEPS["advance"],
        STEPS["await_quiet"],
        STEPS["send_message"],
    ]
    put, advance, quiet, send = scenario.steps
    assert isinstance(put, STEPS["put_object"])
    assert (put.bucket, put.key, put.body, put.file) == (
        "data-repository",
        "RefinerInput/helloworld.txt",
        "hi",
        None,
    )
    assert isinstance(advance, STEPS["advance"]) and advance.by == "90m"
    assert isinstance(quiet, STEPS["await_quiet"]) and quiet.timeout == "20s"
    assert isinstance(send, STEPS["send_message"]) and send.body == {"a": 1} and send.queue == "RefinerInput"

    assert [type(e) for e in scenario.expect] == [
        EXPECTATIONS["objects"],
        EXPECTATIONS["json"],
        EXPECTATIONS["queue_empty"],
        EXPECTATIONS["invocations"],
    ]
    objects, doc, empty, calls = scenario.expect
    assert (
        isinstance(objects, EXPECTATIONS["objects"])
        and objects.count == 2
        and objects.prefix == "RefinerOutput/"
    )
    assert isinstance(doc, EXPECTATIONS["json"]) and doc.length == 2
    assert isinstance(empty, EXPECTATIONS["queue_empty"]) and empty.name == "RefinerInput-dlq"
    assert isinstance(calls, EXPECTATIONS["invocations"]) and calls.outcome == "success" and calls.count == 1

    assert len(scenario.finally_steps) == 1
    assert isinstance(scenario.finally_steps[0], STEPS["await_quiet"])
    assert scenario.finally_steps[0].timeout == "1s"


def test_minimal_scenario_has_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, HEADER))
    assert scenario.steps == [] and scenario.expect == [] and scenario.finally_steps == []
    assert scenario.header.seed == 0
    assert scenario.header.clock is None


def test_repository_scenarios_load() -> None:
    root = Path(__file__).resolve().parents[2] / "scenarios"
    files = sorted(root.rglob("*.yaml"))
    if not files:
        pytest.skip("no scenario files in the repository")
    for path in files:
        assert load_scenario(path).header.flow in {"refiner", "ingest", "batch", "broker", "tracker"}


def test_unknown_top_level_key_suggests(tmp_path: Path) -> None:
    err = error_of(tmp_path, HEADER + "stepz:\n  - advance: 1m\n")
    assert (err.line, err.column) == (3, 1)
    assert "unknown key `stepz`" in err.message
    assert "steps" in err.message.split("expected one of:")[1]
    assert err.hint == "did you mean `steps`?"
    assert "hint: did you mean `steps`?" in str(err)
    assert str(err).startswith(f"{err.file}:3:1: ")


def test_unknown_step_keyword_suggests(tmp_path: Path) -> None:
    text = HEADER + "steps:\n  - advance: 1m\n  - put_objekt: {bucket: b, key: k, body: x}\n"
    err = error_of(tmp_path, text)
    assert (err.line, err.column) == (5, 5)
    assert "unknown steps entry `put_objekt`" in err.message
    assert err.hint == "did you mean `put_object`?"


def test_unknown_expectation_keyword_suggests(tmp_path: Path) -> None:
    err = error_of(tmp_path, HEADER + "expect:\n  - objetcs: {bucket: b}\n")
    assert (err.line, err.column) == (4, 5)
    assert "unknown expect entry `objetcs`" in err.message
    assert err.hint == "did you mean `objects`?"


def test_unknown_keyword_without_close_match_has_no_hint(tmp_path: Path) -> None:
    err = error_of(tmp_path, HEADER + "steps:\n  - zzzzzzzz: 1\n")
    assert (err.line, err.column) == (4, 5)
    assert err.hint is None


def test_unknown_key_inside_a_step_suggests(tmp_path: Path) -> None:
    text = HEADER + "steps:\n  - put_object:\n      bucket: b\n      kee: k\n      body: x\n"
    err = error_of(tmp_path, text)
    assert (err.line, err.column) == (6, 7)
    assert "unknown key `kee`; expected one of: bucket, key, body, file, content_type" in err.message
    assert err.hint == "did you mean `key`?"


def test_missing_required_key_in_a_step(tmp_path: Path) -> None:
    text = HEADER + "steps:\n  - put_object:\n      bucket: b\n      body: x\n"
    err = error_of(tmp_path, text)
    assert (err.line, err.column) == (4, 5)
    assert "missing required key `key`" in err.message


def test_missing_required_top_level_key(tmp_path: Path) -> None:
    err = error_of(tmp_path, "name: x\nsteps: []\n")
    assert err.line == 1
    assert "missing required key `flow`" in err.message


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        (HEADER + "seed: abc\n", 3, 7, "seed: Input should be a valid integer"),
        (HEADER + "tags: smoke\n", 3, 7, "tags: Input should be a valid list"),
        (
            HEADER + "steps:\n  - redeliver: {function: f, invocation: zero}\n",
            4,
            42,
            "invocation: Input should be",
        ),
        (
            HEADER + "steps:\n  - redeliver: {function: f, invocation: 0}\n",
            4,
            42,
            "greater than or equal to 1",
        ),
        (HEADER + "expect:\n  - objects: {bucket: b, count: many}\n", 4, 33, "count: Input should be"),
        (HEADER + "steps:\n  - advance: 10x\n", 4, 14, "'10x' is not a duration"),
    ],
)
def test_wrong_type_points_at_the_value(
    tmp_path: Path, text: str, line: int, column: int, fragment: str
) -> None:
    err = error_of(tmp_path, text)
    assert (err.line, err.column) == (line, column)
    assert fragment in err.message


def test_duplicate_top_level_key_names_the_first_line(tmp_path: Path) -> None:
    err = error_of(tmp_path, HEADER + "steps: []\nname: y\n")
    assert (err.line, err.column) == (4, 1)
    assert "duplicate key `name` (first defined on line 1)" in err.message


def test_duplicate_key_inside_a_step(tmp_path: Path) -> None:
    text = HEADER + "steps:\n  - put_object:\n      bucket: b\n      key: k\n      bucket: c\n      body: x\n"
    err = error_of(tmp_path, text)
    assert (err.line, err.column) == (7, 7)
    assert "duplicate key `bucket` (first defined on line 5)" in err.message


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (HEADER + "steps: [\n  - a: b\n", 4, 3),
        (HEADER + "steps:\n  - put_object: {bucket: b\n", 5, 1),
        ("name: x\n  flow: refiner\n", 2, 7),
        ("name: 'unterminated\nflow: refiner\n", 3, 1),
    ],
)
def test_yaml_syntax_error_is_located(tmp_path: Path, text: str, line: int, column: int) -> None:
    err = error_of(tmp_path, text)
    assert "YAML syntax error" in err.message
    assert (err.line, err.column) == (line, column)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    err = error_of(tmp_path, text)
    assert err.line == 1
    assert "the file is empty" in err.message


@pytest.mark.parametrize("text", ["- name: x\n- flow: refiner\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    err = error_of(tmp_path, text)
    assert err.line == 1
    assert "a scenario is a mapping" in err.message


def test_unknown_fault_is_located_with_the_known_ones(tmp_path: Path) -> None:
    err = error_of(tmp_path, HEADER + "faults:\n  - fail_invocaton: {function: refiner}\n")
    assert err.line == 4
    assert "unknown faults entry `fail_invocaton`" in err.message
    assert err.hint == "did you mean `fail_invocation`?"


def test_fail_invocation_attempts_are_checked(tmp_path: Path) -> None:
    err = error_of(tmp_path, HEADER + "faults:\n  - fail_invocation: {function: refiner, attempts: '3-1'}\n")
    assert err.line == 4 and "ascending range" in err.message


def test_empty_faults_are_fine(tmp_path: Path) -> None:
    assert load_scenario(write(tmp_path, HEADER + "faults: []\n")).header.faults == []


def test_unknown_flow_suggests(tmp_path: Path) -> None:
    err = error_of(tmp_path, "name: x\nflow: refinr\n")
    assert (err.line, err.column) == (2, 7)
    assert "unknown flow `refinr`; expected one of: refiner, ingest, batch, broker, tracker" in err.message
    assert err.hint == "did you mean `refiner`?"


@pytest.mark.parametrize(
    "entry",
    ["{bucket: b, key: k, body: x, file: f}", "{bucket: b, key: k}"],
    ids=["both", "neither"],
)
def test_put_object_needs_exactly_one_of_body_and_file(tmp_path: Path, entry: str) -> None:
    err = error_of(tmp_path, HEADER + f"steps:\n  - put_object: {entry}\n")
    assert (err.line, err.column) == (4, 17)
    assert "give exactly one of `body` or `file`" in err.message


@pytest.mark.parametrize(
    "entry",
    ["  - advance\n", "  - advance: 1m\n    await_quiet: 2s\n", "  - [advance, 1m]\n"],
    ids=["scalar", "two-keys", "list"],
)
def test_each_entry_is_a_one_key_mapping(tmp_path: Path, entry: str) -> None:
    err = error_of(tmp_path, HEADER + "steps:\n" + entry)
    assert (err.line, err.column) == (4, 5)
    assert "each entry of `steps` is a mapping with one key" in err.message


def test_shorthand_scalars_fill_the_shorthand_field(tmp_path: Path) -> None:
    text = HEADER + "steps:\n  - advance: 2m\n  - await_quiet: 5\n  - advance_to: 2026-02-01T00:00:00Z\n"
    scenario = load_scenario(write(tmp_path, text))
    advance, quiet, advance_to = scenario.steps
    assert isinstance(advance, STEPS["advance"]) and advance.by == "2m"
    assert isinstance(quiet, STEPS["await_quiet"]) and quiet.timeout == 5
    assert isinstance(advance_to, STEPS["advance_to"])
    assert advance_to.time == datetime(2026, 2, 1, tzinfo=UTC)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\nflow: refiner\n")
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_scenario(path)


def test_load_yaml_records_key_and_value_positions() -> None:
    data, source = load_yaml("a:\n  b: [1, 2]\n  c: x\n", "f.yaml")
    assert data == {"a": {"b": [1, 2], "c": "x"}}
    assert source.keys[("a",)] == (1, 1)
    assert source.keys[("a", "b")] == (2, 3)
    assert source.values[("a", "b")] == (2, 6)
    assert source.values[("a", "b", 1)] == (2, 10)
    assert source.values[("a", "c")] == (3, 6)
    # The deepest known prefix answers for paths the document does not have.
    assert source.locate(("a", "b", 7, "zz")) == (2, 6)
    assert source.locate(("a", "c"), prefer_key=True) == (3, 3)
    assert source.locate(("nope",)) == (1, 1)


@pytest.mark.parametrize("value", [".inf", "99999999999999d"])
def test_out_of_range_duration_is_a_scenario_error(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, HEADER + f"steps:\n  - await_quiet: {value}\n")
    with pytest.raises(ScenarioError):
        load_scenario(path)


# --- never another exception -----------------------------------------------------------------

KEYWORDS = [
    "name",
    "flow",
    "steps",
    "expect",
    "faults",
    "finally",
    "seed",
    "clock",
    "tags",
    "description",
    *STEPS,
    *EXPECTATIONS,
    "bucket",
    "key",
    "body",
    "file",
    "queue",
    "function",
    "count",
    "by",
    "timeout",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.text(max_size=12),
    st.sampled_from(["refiner", "20s", "1h30m", "10x", "2026-01-15T07:59:00Z", *KEYWORDS]),
)
keys = st.one_of(st.sampled_from(KEYWORDS), st.text(min_size=1, max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=10,
)
entries = st.builds(lambda k, v: {k: v}, st.sampled_from([*STEPS, *EXPECTATIONS, "nope"]), values)
documents = st.fixed_dictionaries(
    {"name": scalars, "flow": st.sampled_from(["refiner", "ingest", "nope", 3])},
    optional={
        "steps": st.lists(entries, max_size=3),
        "expect": st.lists(entries, max_size=3),
        "finally": st.lists(entries, max_size=2),
        "seed": scalars,
        "tags": values,
        "clock": scalars,
        "faults": st.lists(values, max_size=1),
        "extra": values,
    },
)


def _load_never_crashes(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    try:
        result = load_scenario(path)
    except ScenarioError as err:
        assert err.file == str(path)
        assert err.message
    else:
        assert isinstance(result, Scenario)


# Derandomized and without an example database: the same examples on every run and machine.
_settings = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@settings(_settings, max_examples=200)
@given(st.text(max_size=200))
def test_random_text_loads_or_raises_scenario_error(tmp_path: Path, text: str) -> None:
    _load_never_crashes(tmp_path / "random.yaml", text)


@_settings
@given(documents)
def test_random_documents_load_or_raise_scenario_error(tmp_path: Path, doc: dict[str, Any]) -> None:
    _load_never_crashes(tmp_path / "doc.yaml", yaml.safe_dump(doc, sort_keys=False))


@_settings
@given(values)
def test_random_nested_values_load_or_raise_scenario_error(tmp_path: Path, doc: Any) -> None:
    _load_never_crashes(tmp_path / "value.yaml", yaml.safe_dump(doc))


def test_self_referencing_alias_is_a_scenario_error(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "steps: &a [*a]\n")
    escaped = None
    try:
        load_scenario(path)
    except ScenarioError:
        return
    except RecursionError:
        escaped = "RecursionError"  # failing outside the handler keeps pytest from printing 1000 frames
    pytest.fail(f"load_scenario raised {escaped or 'nothing'} instead of ScenarioError")


@pytest.mark.parametrize("value", ["2026-02-30", "2026-13-01T00:00:00Z"])
def test_impossible_date_is_a_scenario_error(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, HEADER + f"clock: {value}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.line == 3
