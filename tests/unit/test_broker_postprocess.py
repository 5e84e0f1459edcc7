"""The broker post-process Lambda against moto S3, DynamoDB, SNS and an SQS subscription."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest
from moto.core.models import MockAWS

from pipeline.broker import postprocess
from pipeline.common import aws

OUT, TABLE = "broker-output", "broker-completions"


@pytest.fixture
def env(aws_mock: MockAWS, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    aws.client("s3").create_bucket(Bucket=OUT)
    aws.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="broker-notify")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="notify-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    for name, value in {"OUTPUT_BUCKET": OUT, "COMPLETIONS_TABLE": TABLE, "NOTIFY_TOPIC_ARN": topic}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OUTPUT_PREFIX", raising=False)
    return {"queue_url": queue_url, "topic": topic}


def put_output(key: str, job_id: str | None, record_count: int = 3) -> str:
    metadata = {"job-id": job_id, "source-etag": "abc"} if job_id else {}
    body = json.dumps({"job_id": job_id, "stats": {"record_count": record_count}, "records": []})
    response = aws.client("s3").put_object(
        Bucket=OUT, Key=key, Body=body.encode(), ContentType="application/json", Metadata=metadata
    )
    return str(response["ETag"]).strip('"')


def record(message_id: str, key: str, bucket: str = OUT) -> dict[str, Any]:
    event = {
        "version": "0",
        "id": "fixed-id",  # moto gives every S3 event the same id
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": "2026-01-15T08:00:00Z",
        "detail": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/"), "size": 10}},
    }
    return {"messageId": message_id, "body": json.dumps(event)}


def notifications(queue_url: str) -> list[dict[str, Any]]:
    messages = (
        aws.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    )
    return [json.loads(message["Body"]) for message in messages]


def item(job_id: str) -> dict[str, Any]:
    return aws.client("dynamodb").get_item(TableName=TABLE, Key={"job_id": {"S": job_id}}).get("Item", {})


def test_completion_is_recorded_and_announced_once(env: dict[str, Any]) -> None:
    etag = put_output("results/incoming/day 1/a.csv.json", "job-1", record_count=3)

    result = postprocess.handler({"Records": [record("m1", "results/incoming/day 1/a.csv.json")]}, None)

    assert result == {"batchItemFailures": []}
    stored = item("job-1")
    assert {name: next(iter(value.values())) for name, value in stored.items()} == {
        "job_id": "job-1",
        "output_key": "results/incoming/day 1/a.csv.json",
        "output_etag": etag,
        "input_key": "incoming/day 1/a.csv",
        "record_count": "3",
        "status": "COMPLETED",
        "completed_at": stored["completed_at"]["S"],
        "notified_at": stored["notified_at"]["S"],
    }
    assert stored["completed_at"]["S"].endswith("Z")
    (note,) = notifications(env["queue_url"])
    assert note["Subject"] == "broker job completed"
    assert json.loads(note["Message"]) == {
        "job_id": "job-1",
        "input_key": "incoming/day 1/a.csv",
        "output_key": "results/incoming/day 1/a.csv.json",
        "record_count": 3,
    }


def test_duplicate_event_changes_nothing(env: dict[str, Any]) -> None:
    put_output("results/a.json.json", "job-2")
    event = {"Records": [record("m1", "results/a.json.json"), record("m2", "results/a.json.json")]}
    assert postprocess.handler(event, None) == {"batchItemFailures": []}
    before = item("job-2")
    assert postprocess.handler(event, None) == {"batchItemFailures": []}
    assert item("job-2") == before
    assert len(notifications(env["queue_url"])) == 1


def test_notification_lost_after_the_put_is_sent_on_retry(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    put_output("results/b.csv.json", "job-3")
    original = postprocess.notify
    monkeypatch.setattr(
        postprocess, "notify", lambda settings, completion: (_ for _ in ()).throw(OSError("down"))
    )
    assert postprocess.handler({"Records": [record("m1", "results/b.csv.json")]}, None) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}]
    }
    monkeypatch.setattr(postprocess, "notify", original)
    assert postprocess.handler({"Records": [record("m1", "results/b.csv.json")]}, None) == {
        "batchItemFailures": []
    }
    assert len(notifications(env["queue_url"])) == 1
    assert "notified_at" in item("job-3")


def test_bad_records_fail_alone(env: dict[str, Any]) -> None:
    put_output("results/good.csv.json", "job-4")
    put_output("results/foreign.csv.json", None)
    aws.client("s3").put_object(
        Bucket=OUT, Key="results/notjson.csv.json", Body=b"{", Metadata={"job-id": "j"}
    )
    event = {
        "Records": [
            record("missing", "results/gone.csv.json"),
            {"messageId": "garbage", "body": "not json"},
            record("no-metadata", "results/foreign.csv.json"),
            record("not-a-result", "results/notjson.csv.json"),
            record("other-bucket", "results/good.csv.json", bucket="elsewhere"),
            record("good", "results/good.csv.json"),
            record("ignored", "results/readme.txt"),
        ]
    }
    result = postprocess.handler(event, None)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [
        "missing",
        "garbage",
        "no-metadata",
        "not-a-result",
        "other-bucket",
    ]
    assert item("job-4")["status"] == {"S": "COMPLETED"}
    assert len(notifications(env["queue_url"])) == 1


@pytest.mark.parametrize(
    ("key", "expected"),
    [("results/a.csv.json", "a.csv"), ("results/in/x/y.jsonl.json", "in/x/y.jsonl")],
)
def test_input_key_reverses_the_worker_naming(key: str, expected: str) -> None:
    assert postprocess.input_key_for(key, "results/") == expected
