"""harness.runtime.sqs_event_source: the SQS event shape and Lambda's batch-failure rules."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from harness.deploy.stack import EventSourceMapping
from harness.runtime.lambda_runtime import Invocation
from harness.runtime.sqs_event_source import failed_message_ids, sqs_event

QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:RefinerInput"
IDS = ["m-1", "m-2", "m-3"]


def mapping(report: bool = True) -> EventSourceMapping:
    return EventSourceMapping(
        uuid="u",
        function_name="refiner",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:refiner",
        source_arn=QUEUE_ARN,
        batch_size=10,
        enabled=True,
        report_batch_item_failures=report,
        maximum_batching_window=0,
        address="aws_lambda_event_source_mapping.m",
    )


def invocation(outcome: str = "success", result: Any = None) -> Invocation:
    return Invocation(
        seq=1,
        function="refiner",
        request_id="r",
        source="sqs:RefinerInput",
        event={},
        outcome=outcome,
        result=result,
    )


def test_sqs_event_shape() -> None:
    messages: list[dict[str, Any]] = [
        {
            "MessageId": "m-1",
            "ReceiptHandle": "rh-1",
            "Body": '{"a": 1}',
            "MD5OfBody": "given-md5",
            "Attributes": {
                "ApproximateReceiveCount": "3",
                "SentTimestamp": "1700000000000",
                "SenderId": "AIDA",
                "ApproximateFirstReceiveTimestamp": "1700000000001",
            },
            "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "x"}},
        },
        {"MessageId": "m-2", "ReceiptHandle": "rh-2", "Body": "plain"},
    ]
    event = sqs_event(messages, QUEUE_ARN, "eu-west-1")
    assert list(event) == ["Records"]
    first, second = event["Records"]
    assert first == {
        "messageId": "m-1",
        "receiptHandle": "rh-1",
        "body": '{"a": 1}',
        "attributes": {
            "ApproximateReceiveCount": "3",
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDA",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
        },
        "messageAttributes": {
            "kind": {
                "stringValue": "x",
                "binaryValue": None,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
        },
        "md5OfBody": "given-md5",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "eu-west-1",
    }
    assert second["messageId"] == "m-2"
    assert second["receiptHandle"] == "rh-2"
    assert second["body"] == "plain"
    assert second["attributes"]["ApproximateReceiveCount"] == "1"
    assert second["md5OfBody"] == hashlib.md5(b"plain").hexdigest()
    assert second["messageAttributes"] == {}
    assert second["eventSource"] == "aws:sqs"
    assert second["eventSourceARN"] == QUEUE_ARN
    assert second["awsRegion"] == "eu-west-1"


def test_sqs_event_of_no_messages() -> None:
    assert sqs_event([], QUEUE_ARN, "us-east-1") == {"Records": []}


@pytest.mark.parametrize("outcome", ["error", "timeout", "crash"])
def test_failed_invocation_fails_every_message(outcome: str) -> None:
    result = {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert failed_message_ids(invocation(outcome, result), mapping(), IDS) == IDS
    assert failed_message_ids(invocation(outcome), mapping(report=False), IDS) == IDS


def test_without_report_batch_item_failures_the_response_is_ignored() -> None:
    result = {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert failed_message_ids(invocation(result=result), mapping(report=False), IDS) == []


@pytest.mark.parametrize(
    "result",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"other": 1}],
    ids=["null", "empty-object", "empty-list", "null-list", "no-key"],
)
def test_success_responses_fail_nothing(result: Any) -> None:
    assert failed_message_ids(invocation(result=result), mapping(), IDS) == []


@pytest.mark.parametrize(
    "items",
    [
        [{"itemIdentifier": "unknown"}],
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": None}],
        [{"itemId": "m-1"}],
        [{"itemIdentifier": "m-1"}, {"itemIdentifier": "nope"}],
        ["m-1"],
    ],
    ids=["unknown", "empty", "null", "bad-key-name", "one-unknown", "not-an-object"],
)
def test_bad_item_identifiers_fail_the_whole_batch(items: list[Any]) -> None:
    assert failed_message_ids(invocation(result={"batchItemFailures": items}), mapping(), IDS) == IDS


@pytest.mark.parametrize(
    "result",
    [
        "not a dict",
        ["m-1"],
        42,
        {"batchItemFailures": "m-1"},
        {"batchItemFailures": {"itemIdentifier": "m-1"}},
    ],
    ids=["string", "list", "number", "string-list", "object-list"],
)
def test_malformed_responses_fail_the_whole_batch(result: Any) -> None:
    assert failed_message_ids(invocation(result=result), mapping(), IDS) == IDS


def test_a_proper_subset_fails_only_those() -> None:
    result = {"batchItemFailures": [{"itemIdentifier": "m-3"}, {"itemIdentifier": "m-1"}]}
    assert failed_message_ids(invocation(result=result), mapping(), IDS) == ["m-3", "m-1"]
    single = {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    assert failed_message_ids(invocation(result=single), mapping(), IDS) == ["m-2"]
