"""pipeline.common: idempotency ids, config prefixes, event parsing, the clock."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.common import clock, config
from pipeline.common.events import (
    MalformedEvent,
    S3ObjectRef,
    s3_object_from_eventbridge,
    sqs_record_body_json,
)
from pipeline.common.idempotency import NAMESPACE, stable_uuid

# --- idempotency -------------------------------------------------------------------------


def test_stable_uuid_is_a_fixed_uuid5() -> None:
    value = stable_uuid("data-repository", "RefinerInput/a.txt", "v1", 1)
    assert value == stable_uuid("data-repository", "RefinerInput/a.txt", "v1", 1)
    parsed = uuid.UUID(value)
    assert parsed.version == 5
    assert value == str(uuid.uuid5(NAMESPACE, '["data-repository", "RefinerInput/a.txt", "v1", "1"]'))


def test_stable_uuid_differs_for_different_parts() -> None:
    base = stable_uuid("b", "k", "v", 1)
    assert base != stable_uuid("b", "k", "v", 2)
    assert base != stable_uuid("b", "k", "w", 1)
    assert base != stable_uuid("b", "k2", "v", 1)
    # Part boundaries matter: ("ab", "c") is not ("a", "bc").
    assert stable_uuid("ab", "c") != stable_uuid("a", "bc")
    assert stable_uuid("a") != stable_uuid("a", "")


part = st.one_of(st.text(), st.integers())


@settings(database=None, derandomize=True, deadline=None)
@given(st.lists(part, min_size=1, max_size=5), st.lists(part, min_size=1, max_size=5))
def test_stable_uuid_property(left: list[Any], right: list[Any]) -> None:
    a = stable_uuid(*left)
    assert a == stable_uuid(*left)
    assert uuid.UUID(a).version == 5
    if [str(p) for p in left] != [str(p) for p in right]:
        assert a != stable_uuid(*right)
    else:
        assert a == stable_uuid(*right)


# --- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/RefinerOutput/", "RefinerOutput/"),
        ("RefinerOutput/", "RefinerOutput/"),
        ("/RefinerOutput", "RefinerOutput/"),
        ("RefinerOutput", "RefinerOutput/"),
        ("//a/b/", "a/b/"),
        ("/a/b", "a/b/"),
    ],
)
def test_key_prefix_normalizes(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("SOME_PREFIX", value)
    assert config.key_prefix("SOME_PREFIX", "/Default/") == expected


def test_key_prefix_default_when_unset_or_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOME_PREFIX", raising=False)
    assert config.key_prefix("SOME_PREFIX", "/Default/") == "Default/"
    monkeypatch.setenv("SOME_PREFIX", "")
    assert config.key_prefix("SOME_PREFIX", "Other") == "Other/"


def test_required_and_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_THERE", raising=False)
    with pytest.raises(config.ConfigError, match="NOT_THERE"):
        config.required("NOT_THERE")
    monkeypatch.setenv("NOT_THERE", "")
    with pytest.raises(config.ConfigError):
        config.required("NOT_THERE")
    monkeypatch.setenv("NOT_THERE", "x")
    assert config.required("NOT_THERE") == "x"
    assert config.optional("NOT_THERE", "d") == "x"
    monkeypatch.delenv("NOT_THERE")
    assert config.optional("NOT_THERE", "d") == "d"


# --- events --------------------------------------------------------------------------------


def _event(obj: dict[str, Any], bucket: Any = None) -> dict[str, Any]:
    return {"detail-type": "Object Created", "detail": {"bucket": bucket or {"name": "b"}, "object": obj}}


def test_eventbridge_object_fields() -> None:
    ref = s3_object_from_eventbridge(_event({"key": "RefinerInput/x.txt", "etag": "abc", "version-id": "v9"}))
    assert ref == S3ObjectRef(bucket="b", key="RefinerInput/x.txt", etag="abc", version_id="v9")


def test_eventbridge_key_is_url_decoded() -> None:
    ref = s3_object_from_eventbridge(_event({"key": "RefinerInput/a+b%21.txt"}))
    assert ref.key == "RefinerInput/a b!.txt"
    assert ref.etag is None
    assert ref.version_id is None
    assert s3_object_from_eventbridge(_event({"key": "dir/%C3%A9t%C3%A9.csv"})).key == "dir/été.csv"


def test_eventbridge_accepts_etag_spelling_variants() -> None:
    assert s3_object_from_eventbridge(_event({"key": "k", "eTag": "E"})).etag == "E"


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"detail": {}},
        {"detail": {"object": {"key": "k"}}},
        {"detail": {"bucket": {"name": "b"}}},
        {"detail": {"bucket": {"name": "b"}, "object": {}}},
        {"detail": {"bucket": {}, "object": {"key": "k"}}},
        {"detail": None},
        {"detail": {"bucket": "b", "object": {"key": "k"}}},
    ],
)
def test_eventbridge_missing_fields_raise_malformed(event: dict[str, Any]) -> None:
    with pytest.raises(MalformedEvent, match="not an S3 EventBridge event"):
        s3_object_from_eventbridge(event)


def test_malformed_event_is_a_value_error() -> None:
    assert issubclass(MalformedEvent, ValueError)


def test_sqs_record_body_json() -> None:
    assert sqs_record_body_json({"body": json.dumps({"a": 1})}) == {"a": 1}
    for record in ({}, {"body": "nope"}, {"body": None}, {"body": "[1, 2]"}, {"body": "3"}):
        with pytest.raises(MalformedEvent):
            sqs_record_body_json(record)


# --- clock ---------------------------------------------------------------------------------


def test_clock_reads_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = tmp_path / "clock"
    source.write_text("2026-01-15T07:59:00Z\n")
    monkeypatch.setenv("PIPELINE_CLOCK_FILE", str(source))
    assert clock.now() == datetime(2026, 1, 15, 7, 59, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)
    source.write_text("2026-03-01T10:00:00+02:00")
    assert clock.now() == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert clock.now().tzinfo == UTC


def _close_to_real_now(moment: datetime) -> bool:
    return moment.tzinfo is not None and abs(moment - datetime.now(UTC)) < timedelta(hours=1)


def test_clock_is_real_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_CLOCK_FILE", raising=False)
    assert _close_to_real_now(clock.now())


@pytest.mark.parametrize("content", [None, "", "   \n"])
def test_clock_falls_back_to_real_time_for_missing_or_empty_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str | None
) -> None:
    source = tmp_path / "clock"
    if content is not None:
        source.write_text(content)
    monkeypatch.setenv("PIPELINE_CLOCK_FILE", str(source))
    moment = clock.now()
    assert _close_to_real_now(moment)
