"""The data_processor Lambda against moto in-process, with the PostgreSQL layer replaced by a fake."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import psycopg
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
import pytest
from moto.core.models import MockAWS

from pipeline.common import aws
from pipeline.ingest import db, parsing, processor, storage

RAW = "raw-bucket"
PROCESSED = "processed-bucket"
TABLE = "event-metadata"
NOW = "2026-03-10T08:30:00Z"
EVENT_TIME = "2026-03-10T08:29:00Z"


@dataclass
class FakeRepository:
    """Records the batches it is given; `fail_with` makes save_batch raise instead."""

    batches: list[db.IngestBatch] = field(default_factory=list)
    fail_with: Exception | None = None

    def save_batch(self, batch: db.IngestBatch) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.batches.append(batch)

    def daily_aggregates(self, day: Any) -> db.DailyAggregates:
        return db.DailyAggregates()


@dataclass
class Env:
    s3: Any
    dynamodb: Any
    sqs: Any
    alerts_queue: str
    repo: FakeRepository
    topic_arn: str


@pytest.fixture
def env(aws_mock: MockAWS, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    clock_file = tmp_path / "clock"
    clock_file.write_text(NOW)
    monkeypatch.setenv("PIPELINE_CLOCK_FILE", str(clock_file))
    s3 = aws.client("s3")
    for bucket in (RAW, PROCESSED):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
    dynamodb = aws.client("dynamodb")
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "object_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "object_key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic_arn = sns.create_topic(Name="alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    for name, value in {
        "RAW_BUCKET": RAW,
        "PROCESSED_BUCKET": PROCESSED,
        "EVENT_TABLE": TABLE,
        "ALERTS_TOPIC_ARN": topic_arn,
        "ENVIRONMENT": "test",
    }.items():
        monkeypatch.setenv(name, value)
    repo = FakeRepository()
    monkeypatch.setattr(db, "get_repository", lambda: repo)
    return Env(s3, dynamodb, sqs, queue_url, repo, topic_arn)


# -- helpers ------------------------------------------------------------------------------------


def put(env: Env, key: str, body: bytes) -> dict[str, Any]:
    response = env.s3.put_object(Bucket=RAW, Key=key, Body=body)
    return {"etag": response["ETag"].strip('"'), "version_id": response.get("VersionId")}


def s3_event(key: str, etag: str | None, version_id: str | None, bucket: str = RAW) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": 1}
    if etag is not None:
        obj["etag"] = etag
    if version_id is not None:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": EVENT_TIME,
        "region": "us-east-1",
        "detail": {"bucket": {"name": bucket}, "object": obj, "reason": "PutObject"},
    }


def sqs_batch(*bodies: tuple[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"rh-{message_id}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest",
            }
            for message_id, body in bodies
        ]
    }


def deliver(env: Env, key: str, meta: dict[str, Any], message_id: str = "m-1") -> dict[str, Any]:
    return processor.handler(sqs_batch((message_id, s3_event(key, **meta))), None)


def item(env: Env, object_key: str) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    raw = env.dynamodb.get_item(TableName=TABLE, Key={"object_key": {"S": object_key}}).get("Item")
    assert raw is not None, f"no event-table item for {object_key}"
    deserializer = TypeDeserializer()
    return {k: deserializer.deserialize(v) for k, v in raw.items()}


def keys(env: Env, prefix: str = "") -> list[str]:
    listing = env.s3.list_objects_v2(Bucket=PROCESSED, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def read(env: Env, key: str) -> bytes:
    return bytes(env.s3.get_object(Bucket=PROCESSED, Key=key)["Body"].read())


def alerts(env: Env) -> list[dict[str, Any]]:
    messages = env.sqs.receive_message(QueueUrl=env.alerts_queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


CSV = b"id,value,Sensor Name,timestamp\n1,12.5,pump,2026-03-09T23:00:00Z\n2,hot,fan,\n3,2e9,x,\n4,7\n"


# -- objects from S3 ----------------------------------------------------------------------------


def test_partly_bad_csv_succeeds_with_its_rejects(env: Env) -> None:
    key = "incoming/sensors/a.csv"
    meta = put(env, key, CSV)

    assert deliver(env, key, meta) == {"batchItemFailures": []}

    stem = storage.object_stem(RAW, key, meta["etag"])
    parquet_keys = [
        f"processed/date=2026-03-09/{stem}.parquet",  # the record's own timestamp
        f"processed/date=2026-03-10/{stem}.parquet",  # the default: the S3 event time
    ]
    rejects_key = f"rejects/date=2026-03-10/{stem}.jsonl"
    assert keys(env) == sorted([*parquet_keys, rejects_key])
    got = item(env, key)
    assert got["status"] == "PROCESSED_WITH_REJECTS"
    assert (got["records_total"], got["records_valid"], got["records_rejected"]) == (4, 2, 2)
    assert got["parquet_keys"] == parquet_keys
    assert got["rejects_key"] == rejects_key
    assert (got["bucket"], got["etag"], got["version_id"]) == (RAW, meta["etag"], meta["version_id"])
    assert (got["received_at"], got["processed_at"]) == (EVENT_TIME, NOW)
    assert "error_message" not in got and "alert_sent_at" not in got

    rejects = [json.loads(line) for line in read(env, rejects_key).decode().splitlines()]
    assert rejects == [
        {
            "line": 4,
            "reasons": ["value: must be <= 1000000000"],
            "record": {"id": "3", "value": "2e9", "Sensor Name": "x", "timestamp": ""},
        },
        {"line": 5, "reasons": ["row has 2 columns, the header has 4"], "record": ["4", "7"]},
    ]
    rows = pq.read_table(io.BytesIO(read(env, parquet_keys[1]))).to_pylist()
    assert [(r["record_id"], r["value_text"], r["source"]) for r in rows] == [("2", "hot", "sensors")]
    assert json.loads(rows[0]["payload"])["sensor_name"] == "fan"

    [batch] = env.repo.batches
    assert batch.origin == batch.rejects_origin == f"s3://{RAW}/{key}"
    assert [r.record_id for r in batch.records] == ["1", "2"]
    assert batch.records[0].value_numeric == 12.5
    assert [r.line for r in batch.rejects] == [4, 5]
    assert batch.received_at.isoformat() == "2026-03-10T08:29:00+00:00"
    assert batch.ingested_at.isoformat() == "2026-03-10T08:30:00+00:00"
    assert alerts(env) == []


def test_clean_json_file_is_processed(env: Env) -> None:
    key = "raw/x.json"
    meta = put(env, key, json.dumps({"data": [{"id": 1, "value": 5, "source": "lab"}]}).encode())
    assert deliver(env, key, meta) == {"batchItemFailures": []}
    got = item(env, key)
    assert got["status"] == "PROCESSED"
    assert "rejects_key" not in got
    assert keys(env, "rejects/") == []
    assert env.repo.batches[0].records[0].source == "lab"


def test_redelivery_overwrites_the_same_keys(env: Env) -> None:
    key = "incoming/sensors/a.csv"
    meta = put(env, key, CSV)
    deliver(env, key, meta, "m-1")
    first = keys(env)
    assert deliver(env, key, meta, "m-2") == {"batchItemFailures": []}
    assert keys(env) == first
    assert [b.records for b in env.repo.batches[:1]] == [env.repo.batches[1].records]
    assert item(env, key)["attempts"] == 2


def test_reads_the_version_the_event_names(env: Env) -> None:
    key = "raw/v.jsonl"
    old = put(env, key, b'{"id": "old", "value": 1}\n')
    put(env, key, b'{"id": "new", "value": 2}\n')
    assert deliver(env, key, old) == {"batchItemFailures": []}
    assert [r.record_id for r in env.repo.batches[0].records] == ["old"]


def test_unparseable_file_fails_and_alerts_once_per_version(env: Env) -> None:
    key = "raw/x.json"
    meta = put(env, key, b'{"id": 1, "value": ')
    for attempt in range(3):  # SQS redelivers until the message is dead-lettered
        assert deliver(env, key, meta, f"m-{attempt}") == {
            "batchItemFailures": [{"itemIdentifier": f"m-{attempt}"}]
        }

    got = item(env, key)
    assert got["status"] == "FAILED"
    assert got["error_message"] == "invalid JSON at line 1 column 20: Expecting value"
    assert "parquet_keys" not in got
    [alert] = alerts(env)
    assert alert["Subject"] == "data_processor: could not parse raw/x.json"
    assert json.loads(alert["Message"]) == {
        "alert": "ingest_failure",
        "bucket": RAW,
        "key": key,
        "error": "invalid JSON at line 1 column 20: Expecting value",
        "environment": "test",
    }
    assert keys(env) == []
    assert env.repo.batches == []

    newer = put(env, key, b"[")  # a new, also broken, upload of the same key alerts again
    assert deliver(env, key, newer)["batchItemFailures"]
    assert len(alerts(env)) == 1


def test_fixed_upload_after_failure_clears_the_error(env: Env) -> None:
    key = "raw/x.csv"
    deliver(env, key, put(env, key, b"no header here\n"))
    assert item(env, key)["status"] == "FAILED"
    assert deliver(env, key, put(env, key, b"id,value\n1,2\n")) == {"batchItemFailures": []}
    got = item(env, key)
    assert got["status"] == "PROCESSED"
    assert "error_message" not in got


def test_missing_object_fails_and_alerts(env: Env) -> None:
    event = s3_event("raw/gone.csv", etag="0" * 32, version_id=None)
    assert processor.handler(sqs_batch(("m-1", event)), None) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }
    got = item(env, "raw/gone.csv")
    assert got["status"] == "FAILED"
    assert "does not exist (NoSuchKey)" in got["error_message"]
    [alert] = alerts(env)
    assert alert["Subject"] == "data_processor: could not read raw/gone.csv"


def test_database_outage_fails_without_alert_then_recovers(env: Env) -> None:
    key = "raw/x.csv"
    meta = put(env, key, b"id,value\n1,2\n")
    env.repo.fail_with = psycopg.OperationalError("connection refused")
    assert deliver(env, key, meta) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    got = item(env, key)
    assert got["status"] == "FAILED"
    assert got["error_message"] == "OperationalError: connection refused"
    assert got["records_total"] == 1
    assert alerts(env) == []

    env.repo.fail_with = None
    assert deliver(env, key, meta, "m-2") == {"batchItemFailures": []}
    got = item(env, key)
    assert got["status"] == "PROCESSED"
    assert "error_message" not in got


def test_a_database_failure_leaves_no_parquet_or_rejects_behind(env: Env) -> None:
    key = "raw/half.csv"
    meta = put(env, key, b"id,value\n1,2\n,3\n")  # the second row has no id: a reject
    env.repo.fail_with = psycopg.OperationalError("server closed the connection unexpectedly")
    assert deliver(env, key, meta) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert keys(env) == []  # what the attempt wrote to S3 was taken back
    env.repo.fail_with = None
    assert deliver(env, key, meta, "m-2") == {"batchItemFailures": []}
    assert len(keys(env, "processed/")) == 1 and len(keys(env, "rejects/")) == 1


def test_alert_that_could_not_be_sent_is_sent_by_the_retry(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "raw/x.txt"
    meta = put(env, key, b"whatever")
    monkeypatch.setenv("ALERTS_TOPIC_ARN", env.topic_arn + "-missing")
    assert deliver(env, key, meta)["batchItemFailures"]
    assert "alert_sent_at" not in item(env, key)
    monkeypatch.setenv("ALERTS_TOPIC_ARN", env.topic_arn)
    assert deliver(env, key, meta, "m-2")["batchItemFailures"]
    [alert] = alerts(env)
    assert "unsupported file type '.txt'" in json.loads(alert["Message"])["error"]


def test_oversized_object_is_rejected_before_reading(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsing, "MAX_BYTES", 8)
    key = "raw/big.csv"
    assert deliver(env, key, put(env, key, b"id,value\n1,2\n"))["batchItemFailures"]
    assert "the limit is" in item(env, key)["error_message"]


@pytest.mark.parametrize(
    "bad_body",
    [
        "not json",
        json.dumps(["a"]),
        json.dumps({"detail": {"bucket": {"name": RAW}}}),
        json.dumps(s3_event("raw/x.csv", "e", None, bucket="some-other-bucket")),
    ],
    ids=["not-json", "list", "no-object", "other-bucket"],
)
def test_malformed_message_fails_alone(env: Env, bad_body: str) -> None:
    key = "raw/good.csv"
    meta = put(env, key, b"id,value\n1,2\n")
    result = processor.handler(sqs_batch(("bad", bad_body), ("good", s3_event(key, **meta))), None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert item(env, key)["status"] == "PROCESSED"
    assert alerts(env) == []


def test_empty_batch() -> None:
    assert processor.handler({"Records": []}, None) == {"batchItemFailures": []}


@pytest.mark.parametrize(
    ("text", "subject"),
    [
        ("data_processor: could not parse raw/ü\nx.json", "data_processor: could not parse raw/? x.json"),
        ("a" * 150, "a" * 97 + "..."),
    ],
)
def test_alert_subject_is_sns_safe(text: str, subject: str) -> None:
    assert processor.alert_subject(text) == subject


# -- direct invocation --------------------------------------------------------------------------


class Context:
    aws_request_id = "req-123"


def test_direct_invocation(env: Env) -> None:
    data: list[Any] = [{"id": 1, "value": "test"}, {"id": 2, "value": True}, "x", {"id": 3, "value": 4.5}]
    result = processor.handler({"data": data}, Context())

    assert result == {
        "status": "partial",
        "records_total": 4,
        "records_valid": 2,
        "records_rejected": 2,
        "rejects": [
            {"index": 1, "reasons": ["value: must be a number or a non-empty string, not boolean"]},
            {"index": 2, "reasons": ["record is not a JSON object but a string"]},
        ],
    }
    payload_id = storage.short_id(json.dumps(data, sort_keys=True, default=str), "direct")
    assert keys(env, "processed/") == [f"processed/date=2026-03-10/direct-{payload_id}.parquet"]
    got = item(env, "direct/req-123")
    assert got["status"] == "PROCESSED_WITH_REJECTS"
    assert got["parquet_keys"] == [f"processed/date=2026-03-10/direct-{payload_id}.parquet"]
    assert "bucket" not in got
    [batch] = env.repo.batches
    assert batch.origin == "direct"
    assert batch.rejects_origin == f"direct/{payload_id}"
    assert {r.source for r in batch.records} == {"direct"}


def test_direct_invocation_ok_with_own_source_and_no_context(env: Env) -> None:
    result = processor.handler({"data": [{"id": "a", "value": 1}], "source": "api"}, None)
    assert result == {
        "status": "ok",
        "records_total": 1,
        "records_valid": 1,
        "records_rejected": 0,
        "rejects": [],
    }
    assert env.repo.batches[0].records[0].source == "api"


def test_direct_invocation_returns_at_most_100_rejects(env: Env) -> None:
    result = processor.handler({"data": [{"id": n} for n in range(150)]}, Context())
    assert result["records_rejected"] == 150
    assert len(result["rejects"]) == 100


def test_direct_invocation_database_failure_raises(env: Env) -> None:
    env.repo.fail_with = psycopg.OperationalError("down")
    with pytest.raises(psycopg.OperationalError):
        processor.handler({"data": [{"id": 1, "value": 1}]}, Context())
    assert item(env, "direct/req-123")["status"] == "FAILED"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"hello": 1}, "unsupported event"),
        ({"data": {"id": 1}}, '"data" must be a list'),
        ({"data": [], "source": "bad source"}, '"source" must contain only'),
        ({"Records": [{"eventSource": "aws:s3"}]}, "do not all come from SQS"),
    ],
)
def test_unsupported_events_raise(env: Env, event: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        processor.handler(event, None)
