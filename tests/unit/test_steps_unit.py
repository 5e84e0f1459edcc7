"""Steps without servers: `${saved.*}` interpolation, generated content, load-time validation."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from harness.errors import HarnessError, ScenarioError
from harness.scenario.context import ScenarioContext
from harness.scenario.interpolate import interpolate
from harness.scenario.model import load_scenario
from harness.scenario.runner import with_saved
from harness.scenario.steps.generate_objects import generate, min_size, parse_size
from harness.scenario.vocabulary import STEPS

SAVED: dict[str, Any] = {
    "manifest": {"copies": ["/RefinerOutput/a.txt", "/RefinerOutput/b.txt"], "count": 2},
    "id": "abc-123",
    "n": 7,
    "flag": False,
}


# -- interpolate ------------------------------------------------------------------------


def test_whole_placeholder_keeps_the_type() -> None:
    assert interpolate("${saved.n}", SAVED) == 7
    assert interpolate("${saved.flag}", SAVED) is False
    assert interpolate("${saved.manifest}", SAVED) == SAVED["manifest"]
    assert interpolate("${saved.manifest.copies}", SAVED) == SAVED["manifest"]["copies"]


def test_whole_placeholder_is_a_copy() -> None:
    value = interpolate("${saved.manifest}", SAVED)
    value["copies"].append("x")
    assert len(SAVED["manifest"]["copies"]) == 2


def test_dotted_paths_reach_into_mappings_and_lists() -> None:
    assert interpolate("${saved.manifest.copies.1}", SAVED) == "/RefinerOutput/b.txt"
    assert interpolate("${saved.manifest.copies.-1}", SAVED) == "/RefinerOutput/b.txt"


def test_placeholders_inside_text_become_text() -> None:
    assert interpolate("key-${saved.id}.json", SAVED) == "key-abc-123.json"
    assert interpolate("${saved.n} of ${saved.manifest.count}", SAVED) == "7 of 2"
    assert (
        interpolate("x=${saved.manifest.copies}", SAVED)
        == 'x=["/RefinerOutput/a.txt", "/RefinerOutput/b.txt"]'
    )
    assert interpolate("${saved.flag}!", SAVED) == "false!"


def test_nested_structures_are_walked_and_other_values_left_alone() -> None:
    value = {
        "queue": "q-${saved.id}",
        "body": {"ids": ["${saved.id}", 3, None, "${saved.n}"], "ok": True},
        "${saved.id}": "key",
        "count": 1.5,
    }
    assert interpolate(value, SAVED) == {
        "queue": "q-abc-123",
        "body": {"ids": ["abc-123", 3, None, 7], "ok": True},
        "abc-123": "key",
        "count": 1.5,
    }


def test_double_dollar_escapes() -> None:
    assert interpolate("$${saved.id}", SAVED) == "${saved.id}"
    assert interpolate("a $${HOME} b ${saved.id}", SAVED) == "a ${HOME} b abc-123"
    assert interpolate("$${saved.nope}", {}) == "${saved.nope}"


def test_other_dollar_braces_are_left_as_they_are() -> None:
    assert interpolate("${HOME} and $5", SAVED) == "${HOME} and $5"


def test_unknown_name_lists_saved_names() -> None:
    with pytest.raises(HarnessError) as caught:
        interpolate({"a": ["${saved.missing}"]}, SAVED)
    message = str(caught.value)
    assert "'missing'" in message
    for name in SAVED:
        assert name in message
    with pytest.raises(HarnessError, match="nothing has been saved yet"):
        interpolate("${saved.x}", {})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${saved.manifest.nope}", "no key 'nope'"),
        ("${saved.manifest.copies.5}", "not an index"),
        ("${saved.manifest.copies.x}", "not an index"),
        ("${saved.n.field}", "has no field 'field'"),
        ("${saved}", "needs a name"),
    ],
)
def test_bad_paths_say_what_is_there(text: str, fragment: str) -> None:
    with pytest.raises(HarnessError, match=fragment):
        interpolate(text, SAVED)


@given(st.text().filter(lambda s: "${" not in s))
def test_text_without_placeholders_is_unchanged(text: str) -> None:
    assert interpolate(text, SAVED) == text


def _ctx(saved: dict[str, Any]) -> ScenarioContext:
    return cast(ScenarioContext, SimpleNamespace(saved=saved))


def test_runner_fills_placeholders_and_revalidates() -> None:
    step = STEPS["send_message"].model_validate({"queue": "${saved.id}", "body": "${saved.manifest}"})
    filled = with_saved(step, _ctx(SAVED))
    assert filled.queue == "abc-123"  # type: ignore[attr-defined]
    assert filled.body == SAVED["manifest"]  # type: ignore[attr-defined]
    # aliases and shorthands survive the round trip
    update = STEPS["update_item"].model_validate(
        {"table": "t", "key": {"id": "${saved.id}"}, "set": {"a": 1}}
    )
    assert with_saved(update, _ctx(SAVED)).key == {"id": "abc-123"}  # type: ignore[attr-defined]
    redrive = STEPS["redrive"].model_validate("${saved.id}-dlq")
    assert with_saved(redrive, _ctx(SAVED)).dlq == "abc-123-dlq"  # type: ignore[attr-defined]


def test_runner_reports_a_saved_value_of_the_wrong_type() -> None:
    step = STEPS["send_message"].model_validate({"queue": "${saved.n}", "body": "x"})
    with pytest.raises(HarnessError, match="send_message with saved values filled in is not valid: queue"):
        with_saved(step, _ctx(SAVED))


# -- generate_objects -------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["text", "csv", "json", "jsonl"])
def test_same_seed_gives_byte_identical_objects(shape: Any) -> None:
    first = generate(shape, 2048, 5, seed=11)
    assert first == generate(shape, 2048, 5, seed=11)
    assert first != generate(shape, 2048, 5, seed=12)
    assert len({data for _, data in first}) == 5  # objects differ from each other
    # object i does not depend on how many are generated
    assert generate(shape, 2048, 3, seed=11) == first[:3]


@pytest.mark.parametrize("shape", ["text", "csv", "json", "jsonl"])
@pytest.mark.parametrize("size", [0, 1, 67, 68, 100, 1000, 4096, 65536])
def test_every_object_is_exactly_size_bytes_and_well_formed(shape: Any, size: int) -> None:
    if size < min_size(shape):
        return
    for _, data in generate(shape, size, 2, seed=3):
        assert len(data) == size
        text = data.decode("ascii")
        if shape == "csv":
            rows = list(csv.DictReader(io.StringIO(text)))
            assert text.startswith("id,key,value,ts\n") and rows
            assert [int(r["id"]) for r in rows] == list(range(1, len(rows) + 1))
        elif shape == "json":
            records = json.loads(text)
            assert isinstance(records, list) and records
            assert set(records[0]) == {"id", "key", "value", "ts"}
        elif shape == "jsonl":
            records = [json.loads(line) for line in text.splitlines()]
            assert records and text.endswith("\n")
            assert all(set(r) == {"id", "key", "value", "ts"} for r in records)


def test_keys_follow_the_name_pattern() -> None:
    keys = [k for k, _ in generate("csv", 100, 3, seed=0, name="file-{i:04d}.csv", prefix="in/")]
    assert keys == ["in/file-0000.csv", "in/file-0001.csv", "in/file-0002.csv"]
    assert generate("jsonl", 100, 1, seed=0)[0][0] == "object-00000.jsonl"


@pytest.mark.parametrize(
    ("text", "size"),
    [(4096, 4096), ("4096", 4096), ("4KiB", 4096), ("1MiB", 1024**2), ("10KB", 10000), ("512 B", 512)],
)
def test_sizes(text: int | str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"count": 0}, "greater than or equal to 1"),
        ({"count": 10001}, "less than or equal to 10000"),
        ({"size": "4 lots"}, "is not a size"),
        ({"size": "1GiB"}, "size must be between"),
        ({"size": -1}, "size must be between"),
        ({"name": "same.csv"}, "must contain `{i}`"),
        ({"name": "file-{j}.csv"}, "is not a pattern"),
        ({"shape": "xml"}, "Input should be"),
        ({"shape": "json", "size": 10}, "needs at least 68 bytes"),
        ({"count": 10000, "size": "1MiB"}, "at most 1GiB"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_generate_objects_rejects_bad_specs(spec: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        STEPS["generate_objects"].model_validate({"bucket": "b", "count": 1, "size": 100, **spec})


# -- load-time validation of the other steps --------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "spec", "fragment"),
    [
        ("wait_until", {"expect": {"queue_emty": "X"}}, "unknown expectation `queue_emty`; expected one of"),
        ("wait_until", {"expect": {"queue": {"nam": "x"}}}, "queue: name: Field required"),
        ("wait_until", {"expect": {"a": 1, "b": 2}}, "a mapping with one key"),
        ("wait_until", {"expect": {"queue_empty": "X"}, "timeout": "soon"}, "is not a duration"),
        ("save", {"name": "x"}, "exactly one of object, invocation, item, queue_message"),
        (
            "save",
            {"name": "x", "item": {"table": "t", "key": {"a": 1}}, "object": {"bucket": "b", "key": "k"}},
            "got object, item",
        ),
        ("save", {"name": "a.b", "object": {"bucket": "b", "key": "k"}}, "no dots"),
        (
            "save",
            {"name": "x", "object": {"bucket": "b", "key": "k"}, "jsonpath": "$[[["},
            "invalid JSONPath",
        ),
        ("save", {"name": "x", "invocation": {"function": "f", "index": 0}}, "greater than or equal to 1"),
        ("update_item", {"table": "t", "key": {"id": 1}, "set": {}}, "at least 1 item"),
        ("update_item", {"table": "t", "key": {"id": 1}, "set_": {"a": 1}}, "Extra inputs"),
        ("put_event", {"source": "s"}, "detail_type"),
        ("publish", {"queue": "q"}, "body"),
        ("redrive", {"dlq": "d", "max_messages": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_step_specs_are_rejected(keyword: str, spec: Any, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        STEPS[keyword].model_validate(spec)


def test_shorthands_and_defaults() -> None:
    redrive = STEPS["redrive"].model_validate("Orders-dlq")
    assert redrive.model_dump() == {"dlq": "Orders-dlq", "to": None, "max_messages": None}
    event = STEPS["put_event"].model_validate({"source": "s", "detail_type": "d"})
    assert event.model_dump()["bus"] == "default"
    wait = STEPS["wait_until"].model_validate({"expect": {"queue_empty": "X"}})
    assert (wait.timeout, wait.interval) == ("30s", "200ms")  # type: ignore[attr-defined]
    publish = STEPS["publish"].model_validate({"queue": "q", "body": {"a": 1}})
    assert publish.persistent is True and publish.declare is False  # type: ignore[attr-defined]


def test_a_bad_inner_expectation_is_located_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: x\nflow: refiner\nsteps:\n"
        "  - save: {name: doc, object: {bucket: b, key: k, json: true}}\n"
        "  - wait_until:\n      expect: {queue_emty: X}\n      timeout: 2s\n"
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert f"{path}:6:" in message and "queue_emty" in message and "queue_empty" in message


def test_put_event_fails_when_eventbridge_rejects_the_entry() -> None:
    sent: list[Any] = []

    class Events:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            sent.extend(Entries)
            return {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "nope"}],
            }

    clock = SimpleNamespace(now=lambda: "2026-01-01T00:00:00Z", iso=lambda: "2026-01-01T00:00:00Z")
    session = SimpleNamespace(client=lambda name: Events(), clock=clock, timeline=SimpleNamespace(add=print))
    ctx = cast(ScenarioContext, SimpleNamespace(session=session, saved={}))
    step = STEPS["put_event"].model_validate({"source": "s", "detail_type": "d", "detail": {"a": 1}})
    with pytest.raises(HarnessError, match="EventBridge rejected the event \\(InternalFailure: nope\\)"):
        step.run(ctx)
    assert sent[0]["EventBusName"] == "default" and json.loads(sent[0]["Detail"]) == {"a": 1}
