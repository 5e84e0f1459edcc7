"""What the ingest flow writes to the processed bucket, under deterministic keys.

- `processed/date=YYYY-MM-DD/<stem>.parquet`: the valid records of one source, one file per
  UTC event date (Hive-style partitions for Athena).
- `rejects/date=YYYY-MM-DD/<stem>.jsonl`: one line `{"line", "reasons", "record"}` per
  rejected record; the date is the processing day.

The stem of an object is its key with `/` replaced by `_`, without the extension, plus the
first 12 hex digits of `stable_uuid(bucket, key, etag)`: a redelivered event rewrites the
same files, and a new upload of the key (new ETag) gets new ones. A direct call's stem is
`direct-<12 hex of the payload's stable id>`.
"""

from __future__ import annotations

import json
import posixpath
from collections import defaultdict
from collections.abc import Sequence
from datetime import date

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from pipeline.common import aws
from pipeline.common.idempotency import stable_uuid
from pipeline.ingest.schema import Rejected, ValidRecord, payload_json

PARQUET_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("source", pa.string()),
        ("event_time", pa.timestamp("ms", tz="UTC")),
        ("value_numeric", pa.float64()),
        ("value_text", pa.string()),
        ("payload", pa.string()),
        ("origin", pa.string()),
    ]
)


def short_id(*parts: object) -> str:
    return stable_uuid(*parts).replace("-", "")[:12]


def object_stem(bucket: str, key: str, etag: str) -> str:
    base = posixpath.splitext(key)[0]
    return f"{base.replace('/', '_')}-{short_id(bucket, key, etag)}"


def parquet_key(day: date, stem: str) -> str:
    return f"processed/date={day.isoformat()}/{stem}.parquet"


def rejects_key(day: date, stem: str) -> str:
    return f"rejects/date={day.isoformat()}/{stem}.jsonl"


def parquet_bytes(records: Sequence[ValidRecord], origin: str) -> bytes:
    columns = {
        "record_id": [r.record_id for r in records],
        "source": [r.source for r in records],
        # Parquet holds milliseconds: truncate explicitly rather than rely on the cast.
        "event_time": [
            r.event_time.replace(microsecond=r.event_time.microsecond // 1000 * 1000) for r in records
        ],
        "value_numeric": [r.value_numeric for r in records],
        "value_text": [r.value_text for r in records],
        "payload": [payload_json(r.payload) for r in records],
        "origin": [origin] * len(records),
    }
    table = pa.Table.from_pydict(columns, schema=PARQUET_SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    return bytes(sink.getvalue().to_pybytes())


def rejects_jsonl(rejected: Sequence[Rejected]) -> bytes:
    lines = [
        json.dumps({"line": r.line, "reasons": r.reasons, "record": r.record}, ensure_ascii=False)
        for r in rejected
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def by_event_date(records: Sequence[ValidRecord]) -> dict[date, list[ValidRecord]]:
    partitions: dict[date, list[ValidRecord]] = defaultdict(list)
    for record in records:
        partitions[record.event_time.date()].append(record)
    return dict(sorted(partitions.items()))


def write_parquet(bucket: str, stem: str, records: Sequence[ValidRecord], origin: str) -> list[str]:
    """One Parquet file per event date; returns the keys written (none for no records)."""
    s3 = aws.client("s3")
    keys = []
    for day, rows in by_event_date(records).items():
        key = parquet_key(day, stem)
        s3.put_object(
            Bucket=bucket, Key=key, Body=parquet_bytes(rows, origin), ContentType="application/octet-stream"
        )
        keys.append(key)
    return keys


def write_rejects(bucket: str, stem: str, rejected: Sequence[Rejected], day: date) -> str | None:
    if not rejected:
        return None
    key = rejects_key(day, stem)
    aws.client("s3").put_object(
        Bucket=bucket, Key=key, Body=rejects_jsonl(rejected), ContentType="application/x-ndjson"
    )
    return key


def remove_outputs(bucket: str, keys: Sequence[str]) -> None:
    """Delete what one attempt wrote, so that a file that ends up failed leaves no data behind."""
    if keys:
        aws.client("s3").delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
        )
