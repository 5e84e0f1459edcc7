"""harness.deploy.coverage: what nothing runs or binds is named, never silent."""

from __future__ import annotations

from typing import Any

from harness.deploy.coverage import unattended


def state(*resources: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    items = [{"mode": "managed", "type": t, "address": f"{t}.x", "values": v} for t, v in resources]
    return {"values": {"root_module": {"resources": items[:1], "child_modules": [{"resources": items[1:]}]}}}


def test_run_bound_and_data_resources_raise_nothing() -> None:
    assert (
        unattended(
            state(
                ("aws_lambda_function", {}),
                ("aws_db_instance", {}),
                ("aws_s3_bucket", {}),
                ("aws_vpc_endpoint", {}),
                ("aws_lambda_event_source_mapping", {"event_source_arn": "arn:aws:sqs:us-east-1:1:q"}),
                ("aws_sns_topic_subscription", {"protocol": "sqs", "endpoint": "arn:aws:sqs:us-east-1:1:q"}),
            )
        )
        == []
    )


def test_unknown_types_and_unrun_triggers_are_listed() -> None:
    found = unattended(
        state(
            ("aws_sfn_state_machine", {}),
            ("aws_sfn_state_machine", {}),
            (
                "aws_lambda_event_source_mapping",
                {"event_source_arn": "arn:aws:dynamodb:us-east-1:1:table/t/stream/s"},
            ),
            (
                "aws_sns_topic_subscription",
                {"protocol": "lambda", "endpoint": "arn:aws:lambda:us-east-1:1:function:f"},
            ),
            (
                "aws_s3_bucket_notification",
                {"bucket": "b", "lambda_function": [{"lambda_function_arn": "f"}]},
            ),
        )
    )
    assert found == [
        "aws_sfn_state_machine (2)",
        "event-source mapping from arn:aws:dynamodb:us-east-1:1:table/t/stream/s (only SQS sources are run)",
        "SNS subscription lambda -> arn:aws:lambda:us-east-1:1:function:f",
        "S3 notification of b to lambda_function",
    ]
