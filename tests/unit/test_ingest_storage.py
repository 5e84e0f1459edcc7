"""pipeline.ingest.storage: deterministic keys, the Parquet schema and round trip, rejects lines."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from pipeline.ingest import storage
from pipeline.ingest.schema import Rejected, ValidRecord


def record(record_id: str, when: datetime, numeric: float | None, text: str | None) -> ValidRecord:
    return ValidRecord(
        line=2,
        record_id=record_id,
        source="sensors",
        event_time=when,
        value_numeric=numeric,
        value_text=text,
        payload={"id": record_id, "value": numeric if text is None else text, "ü": "ß"},
    )


def test_stem_and_keys_are_deterministic() -> None:
    stem = storage.object_stem("raw", "incoming/sensors/a.b.csv", "etag1")
    assert stem.startswith("incoming_sensors_a.b-")
    suffix = stem.rsplit("-", 1)[1]
    assert len(suffix) == 12 and int(suffix, 16) >= 0
    assert stem == storage.object_stem("raw", "incoming/sensors/a.b.csv", "etag1")
    assert stem != storage.object_stem("raw", "incoming/sensors/a.b.csv", "etag2")
    assert storage.parquet_key(date(2026, 3, 9), stem) == f"processed/date=2026-03-09/{stem}.parquet"
    assert storage.rejects_key(date(2026, 3, 10), stem) == f"rejects/date=2026-03-10/{stem}.jsonl"


def test_parquet_round_trip() -> None:
    when = datetime(2026, 3, 9, 7, 59, 1, 123456, tzinfo=UTC)
    records = [record("1", when, 12.5, None), record("2", when, None, "hot")]
    table = pq.read_table(io.BytesIO(storage.parquet_bytes(records, "s3://raw/a.csv")))
    assert table.schema == storage.PARQUET_SCHEMA
    assert table.schema.field("event_time").type == pa.timestamp("ms", tz="UTC")
    rows = table.to_pylist()
    assert [r["record_id"] for r in rows] == ["1", "2"]
    assert rows[0]["event_time"] == datetime(2026, 3, 9, 7, 59, 1, 123000, tzinfo=UTC)
    assert (rows[0]["value_numeric"], rows[0]["value_text"]) == (12.5, None)
    assert (rows[1]["value_numeric"], rows[1]["value_text"]) == (None, "hot")
    assert json.loads(rows[0]["payload"]) == {"id": "1", "value": 12.5, "ü": "ß"}
    assert {r["origin"] for r in rows} == {"s3://raw/a.csv"}
    assert {r["source"] for r in rows} == {"sensors"}


def test_records_are_partitioned_by_event_date() -> None:
    a = record("1", datetime(2026, 3, 9, 23, 59, tzinfo=UTC), 1.0, None)
    b = record("2", datetime(2026, 3, 10, 0, 0, tzinfo=UTC), 1.0, None)
    c = record("3", datetime(2026, 3, 9, 1, 0, tzinfo=UTC), 1.0, None)
    partitions = storage.by_event_date([b, a, c])
    assert list(partitions) == [date(2026, 3, 9), date(2026, 3, 10)]
    assert [r.record_id for r in partitions[date(2026, 3, 9)]] == ["1", "3"]


def test_rejects_jsonl() -> None:
    body = storage.rejects_jsonl(
        [Rejected(3, ["id: field required"], {"value": 1}), Rejected(5, ["x"], None)]
    )
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert lines == [
        {"line": 3, "reasons": ["id: field required"], "record": {"value": 1}},
        {"line": 5, "reasons": ["x"], "record": None},
    ]
