"""harness.runtime.pipes: a DynamoDB stream pipe against moto in-process (stream, filter, SQS)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.core.models import MockAWS

from harness.deploy.stack import Pipe, Queue, Stack
from harness.runtime.pipes import DynamoDBStreamPipe, moto_matcher, pipe_record
from pipeline.common import aws

PENDING_ONLY = json.dumps(
    {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"status": {"S": ["PENDING"]}}}}
)


@pytest.fixture
def world(aws_mock: MockAWS) -> dict[str, Any]:
    dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
    table = dynamodb.create_table(
        TableName="files",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack = Stack()
    stack.queues["work"] = Queue("work", arn, url, 30, None, False, "q")
    pipe = Pipe("p", "arn:pipe", table["LatestStreamArn"], arn, "LATEST", 10, (PENDING_ONLY,), "pipe")
    runner = DynamoDBStreamPipe(pipe, stack, aws.client("dynamodbstreams"), sqs, moto_matcher())
    runner.seek("LATEST")
    return {"dynamodb": dynamodb, "sqs": sqs, "url": url, "pipe": runner, "stream": table["LatestStreamArn"]}


def put(world: dict[str, Any], key: str, status: str) -> None:
    item = {"id": {"S": key}, "status": {"S": status}, "s3_path": {"S": f"s3://b/data/input/{key}"}}
    world["dynamodb"].put_item(TableName="files", Item=item)


def received(world: dict[str, Any]) -> list[dict[str, Any]]:
    out = world["sqs"].receive_message(QueueUrl=world["url"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in out.get("Messages", [])]


def test_pending_items_pass_the_filter_one_message_each(world: dict[str, Any]) -> None:
    put(world, "a", "PENDING")
    put(world, "b", "DONE")
    put(world, "c", "PENDING")
    assert world["pipe"].poll_once()
    bodies = received(world)
    assert sorted(b["dynamodb"]["Keys"]["id"]["S"] for b in bodies) == ["a", "c"]
    first = bodies[0]
    assert first["eventName"] == "INSERT"
    assert first["eventSource"] == "aws:dynamodb"
    assert first["eventSourceARN"] == world["stream"]
    assert first["dynamodb"]["NewImage"]["status"] == {"S": "PENDING"}
    assert (world["pipe"].delivered, world["pipe"].filtered_out) == (2, 1)


def test_removals_and_history_before_seek_are_not_delivered(world: dict[str, Any]) -> None:
    put(world, "old", "PENDING")
    world["pipe"].seek("LATEST")  # what a data reset does
    world["dynamodb"].delete_item(TableName="files", Key={"id": {"S": "old"}})
    world["pipe"].poll_once()
    assert received(world) == []


def test_modify_to_pending_passes(world: dict[str, Any]) -> None:
    put(world, "x", "DONE")
    world["pipe"].poll_once()
    put(world, "x", "PENDING")
    world["pipe"].poll_once()
    assert [b["eventName"] for b in received(world)] == ["MODIFY"]


def test_pipe_record_shape() -> None:
    from datetime import UTC, datetime

    raw = {
        "eventID": "1",
        "eventName": "INSERT",
        "dynamodb": {"ApproximateCreationDateTime": datetime(2026, 5, 1, tzinfo=UTC), "Keys": {}},
    }
    out = pipe_record(raw, "arn:stream")
    assert out["dynamodb"]["ApproximateCreationDateTime"] == int(datetime(2026, 5, 1, tzinfo=UTC).timestamp())
    assert out["eventSourceARN"] == "arn:stream"
    assert raw["dynamodb"]["ApproximateCreationDateTime"] != out["dynamodb"]["ApproximateCreationDateTime"]


class _TrimsOnce:
    """A streams client that answers the first GetRecords after a write the way DynamoDB
    Local does once an iterator has polled an empty shard for a while."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_records(self, **kwargs: Any) -> Any:
        if self.armed:
            self.armed = False
            from botocore.exceptions import ClientError

            error = {
                "Error": {"Code": "TrimmedDataAccessException", "Message": "read past the oldest record"}
            }
            raise ClientError(error, "GetRecords")  # type: ignore[arg-type]
        return self.inner.get_records(**kwargs)


@pytest.mark.parametrize("history", [False, True], ids=["empty-shard", "after-history"])
def test_a_lost_iterator_resumes_after_the_last_record_read(world: dict[str, Any], history: bool) -> None:
    pipe = world["pipe"]
    pipe.streams = _TrimsOnce(pipe.streams)
    if history:
        put(world, "seen", "PENDING")
        pipe.poll_once()
        assert [b["dynamodb"]["Keys"]["id"]["S"] for b in received(world)] == ["seen"]
    put(world, "new", "PENDING")
    pipe.streams.armed = True
    pipe.poll_once()  # the iterator is lost and replaced
    pipe.poll_once()
    assert [b["dynamodb"]["Keys"]["id"]["S"] for b in received(world)] == ["new"]
