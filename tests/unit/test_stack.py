"""harness.deploy.stack: the typed Stack read from a synthetic `terraform show -json` document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.deploy.stack import (
    Bucket,
    Bus,
    EventSourceMapping,
    Function,
    Queue,
    RedrivePolicy,
    Rule,
    Stack,
    Target,
    stack_from_show_json,
)

ACCOUNT = "000000000000"
REGION = "us-east-1"
Q = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}"
FN_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:refiner"


def resource(address: str, rtype: str, values: dict[str, Any], mode: str = "managed") -> dict[str, Any]:
    return {
        "address": address,
        "mode": mode,
        "type": rtype,
        "name": address.rsplit(".", 1)[-1],
        "values": values,
    }


def show_document() -> dict[str, Any]:
    lambda_fn = resource(
        "module.refiner.module.fn.aws_lambda_function.this",
        "aws_lambda_function",
        {
            "function_name": "refiner",
            "arn": FN_ARN,
            "handler": "pipeline.refiner.handler.handler",
            "runtime": "python3.11",
            "package_type": "Zip",
            "filename": "/build/lambda.zip",
            "image_uri": "",
            "environment": [
                {"variables": {"REFINER_OUTPUT_PREFIX": "/RefinerOutput/", "LOG_LEVEL": "DEBUG", "N": 5}}
            ],
            "timeout": 60,
            "memory_size": 256,
            "role": f"arn:aws:iam::{ACCOUNT}:role/refiner",
        },
    )
    esm = resource(
        "module.refiner.aws_lambda_event_source_mapping.input",
        "aws_lambda_event_source_mapping",
        {
            "id": "id-1",
            "uuid": "a1b2c3d4-0000-0000-0000-000000000001",
            "function_name": "refiner",
            "function_arn": FN_ARN,
            "event_source_arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:RefinerInput",
            "batch_size": 5,
            "enabled": True,
            "function_response_types": ["ReportBatchItemFailures"],
            "maximum_batching_window_in_seconds": 2,
        },
    )
    queue = resource(
        "module.refiner.module.input_queue.aws_sqs_queue.main",
        "aws_sqs_queue",
        {
            "name": "RefinerInput",
            "arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:RefinerInput",
            "url": f"{Q}/RefinerInput",
            "id": f"{Q}/RefinerInput",
            "visibility_timeout_seconds": 180,
            "redrive_policy": json.dumps(
                {
                    "deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:RefinerInput-dlq",
                    "maxReceiveCount": 5,
                }
            ),
            "fifo_queue": False,
        },
    )
    dlq = resource(
        "module.refiner.module.input_queue.aws_sqs_queue.dlq",
        "aws_sqs_queue",
        {
            "name": "RefinerInput-dlq",
            "arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:RefinerInput-dlq",
            "id": f"{Q}/RefinerInput-dlq",
            "url": "",
            "visibility_timeout_seconds": 0,
            "redrive_policy": "",
        },
    )
    complete_dlq = resource(
        "module.refiner.module.complete_queue.aws_sqs_queue.dlq",
        "aws_sqs_queue",
        {
            "name": "RefinerComplete-dlq",
            "arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:RefinerComplete-dlq",
            "url": f"{Q}/RefinerComplete-dlq",
            "fifo_queue": True,
        },
    )
    pattern_rule = resource(
        "module.refiner.aws_cloudwatch_event_rule.input",
        "aws_cloudwatch_event_rule",
        {
            "name": "refiner-input",
            "arn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/data-repository-bus/refiner-input",
            "event_bus_name": "data-repository-bus",
            "event_pattern": json.dumps(
                {"source": ["aws.s3"], "detail": {"object": {"key": [{"prefix": "RefinerInput/"}]}}}
            ),
            "schedule_expression": "",
            "state": "ENABLED",
        },
    )
    schedule_rule = resource(
        "aws_cloudwatch_event_rule.daily",
        "aws_cloudwatch_event_rule",
        {
            "name": "daily-report",
            "arn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/daily-report",
            "event_bus_name": "",
            "event_pattern": None,
            "schedule_expression": "cron(0 8 * * ? *)",
            "state": "DISABLED",
        },
    )
    target = resource(
        "module.refiner.aws_cloudwatch_event_target.input",
        "aws_cloudwatch_event_target",
        {
            "rule": "refiner-input",
            "event_bus_name": "data-repository-bus",
            "target_id": "sqs",
            "arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:RefinerInput",
            "input": "",
            "input_path": "$.detail",
        },
    )
    bus = resource(
        "aws_cloudwatch_event_bus.data",
        "aws_cloudwatch_event_bus",
        {
            "name": "data-repository-bus",
            "arn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/data-repository-bus",
        },
    )
    bucket = resource(
        "module.bucket.aws_s3_bucket.this",
        "aws_s3_bucket",
        {"bucket": "data-repository", "arn": "arn:aws:s3:::data-repository"},
    )
    other_bucket = resource(
        "aws_s3_bucket.quiet", "aws_s3_bucket", {"bucket": "quiet-bucket", "arn": "arn:aws:s3:::quiet-bucket"}
    )
    # The notification sits in the root module, before the bucket's child module is walked.
    notification = resource(
        "aws_s3_bucket_notification.data",
        "aws_s3_bucket_notification",
        {"bucket": "data-repository", "eventbridge": True},
    )
    quiet_notification = resource(
        "aws_s3_bucket_notification.quiet",
        "aws_s3_bucket_notification",
        {"bucket": "quiet-bucket", "eventbridge": False},
    )
    data_source = resource(
        "data.aws_lambda_function.external",
        "aws_lambda_function",
        {"function_name": "external", "arn": "arn:x"},
        mode="data",
    )
    unrelated = resource("aws_iam_role.refiner", "aws_iam_role", {"name": "refiner"})
    return {
        "format_version": "1.0",
        "terraform_version": "1.11.0",
        "values": {
            "outputs": {
                "bucket": {"sensitive": False, "value": "data-repository"},
                "queues": {"sensitive": False, "value": ["RefinerInput"]},
            },
            "root_module": {
                "resources": [
                    notification,
                    quiet_notification,
                    schedule_rule,
                    bus,
                    other_bucket,
                    data_source,
                    unrelated,
                ],
                "child_modules": [
                    {"address": "module.bucket", "resources": [bucket]},
                    {
                        "address": "module.refiner",
                        "resources": [esm, pattern_rule, target],
                        "child_modules": [
                            {"address": "module.refiner.module.fn", "resources": [lambda_fn]},
                            {"address": "module.refiner.module.input_queue", "resources": [queue, dlq]},
                            {"address": "module.refiner.module.complete_queue", "resources": [complete_dlq]},
                        ],
                    },
                ],
            },
        },
    }


@pytest.fixture(scope="module")
def stack() -> Stack:
    return stack_from_show_json(show_document())


def test_function(stack: Stack) -> None:
    assert set(stack.functions) == {"refiner"}
    assert stack.functions["refiner"] == Function(
        name="refiner",
        arn=FN_ARN,
        handler="pipeline.refiner.handler.handler",
        runtime="python3.11",
        package_type="Zip",
        filename="/build/lambda.zip",
        image_uri=None,
        environment={"REFINER_OUTPUT_PREFIX": "/RefinerOutput/", "LOG_LEVEL": "DEBUG", "N": "5"},
        timeout=60,
        memory_size=256,
        role=f"arn:aws:iam::{ACCOUNT}:role/refiner",
        address="module.refiner.module.fn.aws_lambda_function.this",
    )


def test_function_defaults() -> None:
    doc = {
        "values": {
            "root_module": {
                "resources": [
                    resource(
                        "aws_lambda_function.img",
                        "aws_lambda_function",
                        {
                            "function_name": "img",
                            "arn": "arn:img",
                            "environment": [],
                            "image_uri": "repo/img:1",
                            "package_type": "Image",
                            "timeout": None,
                            "memory_size": None,
                        },
                    )
                ]
            }
        }
    }
    fn = stack_from_show_json(doc).functions["img"]
    assert (fn.timeout, fn.memory_size, fn.environment, fn.handler, fn.role) == (3, 128, {}, None, "")
    assert (fn.package_type, fn.image_uri) == ("Image", "repo/img:1")


def test_event_source_mapping(stack: Stack) -> None:
    assert stack.event_source_mappings == [
        EventSourceMapping(
            uuid="a1b2c3d4-0000-0000-0000-000000000001",
            function_name="refiner",
            function_arn=FN_ARN,
            source_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:RefinerInput",
            batch_size=5,
            enabled=True,
            report_batch_item_failures=True,
            maximum_batching_window=2,
            address="module.refiner.aws_lambda_event_source_mapping.input",
        )
    ]


def test_event_source_mapping_without_report_batch_item_failures() -> None:
    values = {
        "id": "esm-id",
        "function_name": "f",
        "event_source_arn": "arn:q",
        "enabled": False,
        "function_response_types": [],
    }
    doc = {
        "values": {
            "root_module": {
                "resources": [
                    resource("aws_lambda_event_source_mapping.m", "aws_lambda_event_source_mapping", values)
                ]
            }
        }
    }
    (esm,) = stack_from_show_json(doc).event_source_mappings
    assert esm.uuid == "esm-id"
    assert esm.function_arn == "f"
    assert esm.batch_size == 10
    assert esm.enabled is False
    assert esm.report_batch_item_failures is False
    assert esm.maximum_batching_window == 0


def test_queues(stack: Stack) -> None:
    assert set(stack.queues) == {"RefinerInput", "RefinerInput-dlq", "RefinerComplete-dlq"}
    assert stack.queues["RefinerInput"] == Queue(
        name="RefinerInput",
        arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:RefinerInput",
        url=f"{Q}/RefinerInput",
        visibility_timeout=180,
        redrive=RedrivePolicy(
            dead_letter_target_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:RefinerInput-dlq", max_receive_count=5
        ),
        fifo=False,
        address="module.refiner.module.input_queue.aws_sqs_queue.main",
    )
    dlq = stack.queues["RefinerInput-dlq"]
    assert dlq.redrive is None
    assert dlq.url == f"{Q}/RefinerInput-dlq"  # falls back to the id when url is empty
    assert dlq.visibility_timeout == 30
    assert stack.queues["RefinerComplete-dlq"].fifo is True


def test_rules(stack: Stack) -> None:
    by_name = {r.name: r for r in stack.rules}
    assert by_name["refiner-input"] == Rule(
        name="refiner-input",
        arn=f"arn:aws:events:{REGION}:{ACCOUNT}:rule/data-repository-bus/refiner-input",
        bus="data-repository-bus",
        event_pattern={"source": ["aws.s3"], "detail": {"object": {"key": [{"prefix": "RefinerInput/"}]}}},
        schedule_expression=None,
        enabled=True,
        address="module.refiner.aws_cloudwatch_event_rule.input",
    )
    assert by_name["daily-report"] == Rule(
        name="daily-report",
        arn=f"arn:aws:events:{REGION}:{ACCOUNT}:rule/daily-report",
        bus="default",
        event_pattern=None,
        schedule_expression="cron(0 8 * * ? *)",
        enabled=False,
        address="aws_cloudwatch_event_rule.daily",
    )


def test_targets(stack: Stack) -> None:
    assert stack.targets == [
        Target(
            rule="refiner-input",
            bus="data-repository-bus",
            target_id="sqs",
            arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:RefinerInput",
            input=None,
            input_path="$.detail",
            address="module.refiner.aws_cloudwatch_event_target.input",
        )
    ]


def test_buses_buckets_and_outputs(stack: Stack) -> None:
    assert stack.buses == {
        "data-repository-bus": Bus(
            "data-repository-bus", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/data-repository-bus"
        )
    }
    assert stack.buckets == {
        "data-repository": Bucket("data-repository", "arn:aws:s3:::data-repository", eventbridge=True),
        "quiet-bucket": Bucket("quiet-bucket", "arn:aws:s3:::quiet-bucket", eventbridge=False),
    }
    assert stack.outputs == {"bucket": "data-repository", "queues": ["RefinerInput"]}


def test_data_sources_and_other_types_are_ignored(stack: Stack) -> None:
    assert "external" not in stack.functions
    assert len(stack.rules) == 2 and len(stack.targets) == 1 and len(stack.event_source_mappings) == 1


def test_empty_document() -> None:
    stack = stack_from_show_json({"format_version": "1.0"})
    assert stack == Stack()


def test_resolve_queue_exact_and_unique_suffix(stack: Stack) -> None:
    assert stack.resolve_queue("RefinerInput").name == "RefinerInput"  # exact wins over suffix matches
    assert stack.resolve_queue("RefinerInput-dlq").name == "RefinerInput-dlq"
    assert stack.resolve_queue("Complete-dlq").name == "RefinerComplete-dlq"


def test_resolve_queue_ambiguous_suffix(stack: Stack) -> None:
    with pytest.raises(KeyError) as info:
        stack.resolve_queue("-dlq")
    text = str(info.value)
    assert "ambiguous" in text
    assert "RefinerInput-dlq" in text and "RefinerComplete-dlq" in text
    assert "'RefinerInput'" not in text


def test_resolve_queue_unknown_lists_known(stack: Stack) -> None:
    with pytest.raises(KeyError) as info:
        stack.resolve_queue("Nope")
    assert "no queue named 'Nope'" in str(info.value)
    assert "RefinerComplete-dlq, RefinerInput, RefinerInput-dlq" in str(info.value)


def test_resolve_function(stack: Stack) -> None:
    assert stack.resolve_function("refiner").arn == FN_ARN
    assert stack.resolve_function("finer").name == "refiner"
    with pytest.raises(KeyError, match="functions: refiner"):
        stack.resolve_function("nothing")


def test_function_by_arn(stack: Stack) -> None:
    assert stack.function_by_arn(FN_ARN) is stack.functions["refiner"]
    assert stack.function_by_arn(FN_ARN + ":$LATEST") is stack.functions["refiner"]
    assert stack.function_by_arn("refiner") is stack.functions["refiner"]
    assert stack.function_by_arn(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other") is None


def test_queue_by_arn(stack: Stack) -> None:
    found = stack.queue_by_arn(f"arn:aws:sqs:{REGION}:{ACCOUNT}:RefinerInput-dlq")
    assert found is not None and found.name == "RefinerInput-dlq"
    assert stack.queue_by_arn("arn:aws:sqs:us-east-1:1:nothing") is None
