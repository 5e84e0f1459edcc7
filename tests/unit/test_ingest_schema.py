"""pipeline.ingest.schema: one record validated, normalised, or rejected with readable reasons."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ingest.names import snake_case
from pipeline.ingest.parsing import RawRecord
from pipeline.ingest.schema import (
    Defaults,
    Rejected,
    ValidRecord,
    default_source_for_key,
    json_safe,
    validate_record,
    validate_records,
)

EVENT_TIME = datetime(2026, 3, 9, 7, 59, tzinfo=UTC)
DEFAULTS = Defaults(event_time=EVENT_TIME, source="sensors")


def check(data: dict[str, Any], *, csv: bool = False) -> ValidRecord | Rejected:
    return validate_record(RawRecord(7, data, data), DEFAULTS, numeric_strings=csv)


def valid(data: dict[str, Any], *, csv: bool = False) -> ValidRecord:
    result = check(data, csv=csv)
    assert isinstance(result, ValidRecord), result
    return result


def reasons(data: dict[str, Any], *, csv: bool = False) -> list[str]:
    result = check(data, csv=csv)
    assert isinstance(result, Rejected), result
    assert result.line == 7
    return result.reasons


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"value": 1}, ["id: field required"]),
        ({"id": 1}, ["value: field required"]),
        ({}, ["id: field required", "value: field required"]),
        ({"id": "", "value": 1}, ["id: must not be empty"]),
        ({"id": "   ", "value": 1}, ["id: must not be empty"]),
        ({"id": "x" * 129, "value": 1}, ["id: must be at most 128 characters"]),
        ({"id": True, "value": 1}, ["id: must be a string or an integer, not boolean"]),
        ({"id": 1.5, "value": 1}, ["id: must be a string or an integer, not float"]),
        ({"id": None, "value": 1}, ["id: must be a string or an integer, not null"]),
        ({"id": 1, "value": 1_000_000_001}, ["value: must be <= 1000000000"]),
        ({"id": 1, "value": -1e9 - 0.5}, ["value: must be >= -1000000000"]),
        ({"id": 1, "value": math.nan}, ["value: must be a finite number"]),
        ({"id": 1, "value": math.inf}, ["value: must be a finite number"]),
        ({"id": 1, "value": True}, ["value: must be a number or a non-empty string, not boolean"]),
        ({"id": 1, "value": [1]}, ["value: must be a number or a non-empty string, not list"]),
        ({"id": 1, "value": {"a": 1}}, ["value: must be a number or a non-empty string, not object"]),
        ({"id": 1, "value": None}, ["value: must be a number or a non-empty string, not null"]),
        ({"id": 1, "value": "  "}, ["value: must not be empty"]),
        ({"id": 1, "value": "x" * 1025}, ["value: must be at most 1024 characters"]),
        (
            {"id": 1, "value": 1, "timestamp": "yesterday"},
            ["timestamp: must be an ISO-8601 date-time, not 'yesterday'"],
        ),
        (
            {"id": 1, "value": 1, "timestamp": 1700000000},
            ["timestamp: must be an ISO-8601 date-time string, not int"],
        ),
        (
            {"id": 1, "value": 1, "source": "a b"},
            ["source: must contain only letters, digits, '_', '.' and '-'"],
        ),
        ({"id": 1, "value": 1, "source": "s" * 65}, ["source: must be at most 64 characters"]),
        ({"id": 1, "value": 1, "source": 5}, ["source: must be a string, not int"]),
        ({"id": 1, "value": 1, "ID": 2}, ["id: given more than once (as 'id' and 'ID')"]),
        ({"id": 1, "value": 1, "!!": 2}, ["'!!': field name has no letters or digits"]),
        ({"id": 1, "value": 1, "note": "a\x00b"}, ["note: must not contain NUL characters"]),
        ({"id": 1, "value": 1, "deep": {"x": [math.nan]}}, ["deep: must be a finite number"]),
        ({"id": 1, "value": 1, "bad": "\ud800"}, ["bad: must not contain unpaired surrogates"]),
        (
            {"id": True, "value": 2e9},
            ["id: must be a string or an integer, not boolean", "value: must be <= 1000000000"],
        ),
    ],
)
def test_rejections_name_the_field_and_the_rule(data: dict[str, Any], expected: list[str]) -> None:
    assert reasons(data) == expected


@pytest.mark.parametrize(
    ("data", "record_id", "numeric", "text"),
    [
        ({"id": 42, "value": 12.5}, "42", 12.5, None),
        ({"id": " a-1 ", "value": " hello "}, "a-1", None, "hello"),
        ({"id": "x", "value": 1_000_000_000}, "x", 1e9, None),
        ({"id": "x", "value": -1_000_000_000}, "x", -1e9, None),
        ({"id": "x", "value": "12.5"}, "x", None, "12.5"),  # outside CSV a string stays a string
        ({"id": "x" * 128, "value": 0}, "x" * 128, 0.0, None),
    ],
)
def test_valid_records(data: dict[str, Any], record_id: str, numeric: float | None, text: str | None) -> None:
    result = valid(data)
    assert (result.record_id, result.value_numeric, result.value_text) == (record_id, numeric, text)
    assert result.payload["id"] == record_id


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("12.5", 12.5),
        ("7", 7),
        (" -3 ", -3),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("abc", "abc"),
        ("1,000", "1,000"),
    ],
)
def test_csv_numeric_strings_become_numbers(cell: str, expected: Any) -> None:
    result = valid({"id": "1", "value": cell, "other": "12"}, csv=True)
    assert result.payload["value"] == expected
    assert type(result.payload["value"]) is type(expected)
    assert result.payload["other"] == "12"  # only `value` is converted


def test_csv_overflowing_number_is_rejected() -> None:
    assert reasons({"id": "1", "value": "1e999"}, csv=True) == ["value: must be a finite number"]


def test_defaults_and_normalisation() -> None:
    result = valid(
        {" Record Name ": "  pump ", "ID": 5, "Value": 3, "sensorType": "t", "nested": {"K": " v "}}
    )
    assert result.source == "sensors"
    assert result.event_time == EVENT_TIME
    assert result.payload == {
        "record_name": "pump",
        "id": "5",
        "value": 3,
        "sensor_type": "t",
        "nested": {"K": " v "},  # only top-level keys and strings are normalised
        "timestamp": "2026-03-09T07:59:00Z",
        "source": "sensors",
    }


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_optional_fields_take_the_defaults(blank: Any) -> None:
    result = valid({"id": 1, "value": 1, "timestamp": blank, "source": blank})
    assert (result.event_time, result.source) == (EVENT_TIME, "sensors")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-10T08:00:00Z", datetime(2026, 3, 10, 8, tzinfo=UTC)),
        ("2026-03-10T08:00:00", datetime(2026, 3, 10, 8, tzinfo=UTC)),  # naive is UTC
        ("2026-03-10T10:00:00+02:00", datetime(2026, 3, 10, 8, tzinfo=UTC)),
        ("2026-03-10", datetime(2026, 3, 10, tzinfo=UTC)),
        ("2026-03-10T08:00:00.123456Z", datetime(2026, 3, 10, 8, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_timestamps(text: str, expected: datetime) -> None:
    result = valid({"id": 1, "value": 1, "timestamp": text, "source": "mine"})
    assert result.event_time == expected
    assert result.source == "mine"


def test_unreadable_raw_record_is_rejected_with_its_error() -> None:
    result = validate_record(RawRecord(3, None, "{oops", "invalid JSON at column 2"), DEFAULTS)
    assert result == Rejected(3, ["invalid JSON at column 2"], "{oops")


def test_duplicate_ids_within_one_file_are_rejected() -> None:
    raws = [RawRecord(n, {"id": "a" if n != 3 else "b", "value": n}, {}) for n in (2, 3, 4)]
    good, bad = validate_records(raws, DEFAULTS)
    assert [r.line for r in good] == [2, 3]
    assert bad == [Rejected(4, ["id: duplicate of line 2"], {})]


@pytest.mark.parametrize(
    ("key", "source"),
    [
        ("incoming/sensors/a.csv", "sensors"),
        ("incoming/sensors/deep/a.csv", "sensors"),
        ("incoming/a.csv", "incoming"),
        ("raw/x.json", "raw"),
        ("x.json", "unknown"),
        ("/x.json", "unknown"),
        ("my files/x.json", "my_files"),
    ],
)
def test_default_source_for_key(key: str, source: str) -> None:
    assert default_source_for_key(key) == source


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Sensor Name", "sensor_name"),
        ("sensorName", "sensor_name"),
        ("HTTPCode", "http_code"),
        ("a--b", "a_b"),
    ],
)
def test_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


def test_json_safe_makes_rejects_storable() -> None:
    assert json_safe({"a": math.nan, "b": "x\x00\ud800", 1: (1, None)}) == {
        "a": "nan",
        "b": "x\\x00\\ud800",
        "1": [1, None],
    }


# -- properties ---------------------------------------------------------------------------------

_ids = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.text(min_size=1, max_size=40).filter(lambda s: s.strip() and "\x00" not in s),
)
_values = st.one_of(
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.text(min_size=1, max_size=60).filter(lambda s: s.strip() and "\x00" not in s),
)
_extra_keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(
    lambda k: snake_case(k) not in ("", "id", "value", "timestamp", "source")
)
_extras = st.dictionaries(
    _extra_keys,
    st.one_of(st.integers(), st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)),
    max_size=4,
).filter(lambda d: len({snake_case(k) for k in d}) == len(d))


@settings(max_examples=150, deadline=None)
@given(record_id=_ids, value=_values, extras=_extras)
def test_generated_valid_records_pass_and_normalising_is_idempotent(
    record_id: int | str, value: float | str, extras: dict[str, Any]
) -> None:
    first = valid({**extras, "id": record_id, "value": value})
    assert first.record_id == str(record_id).strip()
    again = valid(first.payload)
    assert again.payload == first.payload
    assert (again.record_id, again.event_time, again.value_numeric) == (
        first.record_id,
        first.event_time,
        first.value_numeric,
    )
