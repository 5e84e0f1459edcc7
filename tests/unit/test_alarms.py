"""harness.runtime.alarms: queue-depth alarms evaluated by the harness, against moto in-process."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.core.models import MockAWS

from harness.deploy.stack import MetricAlarm, Queue, Stack
from harness.runtime.alarms import AlarmEvaluator, evaluable
from pipeline.common import aws


def alarm(**overrides: Any) -> MetricAlarm:
    values: dict[str, Any] = dict(
        name="dlq-depth",
        arn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:dlq-depth",
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions={"QueueName": "work-dlq"},
        statistic="Maximum",
        period=60,
        evaluation_periods=1,
        threshold=5.0,
        comparison="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=(),
        ok_actions=(),
        description="too many dead letters",
        address="aws_cloudwatch_metric_alarm.dlq",
    )
    values.update(overrides)
    return MetricAlarm(**values)


@pytest.fixture
def world(aws_mock: MockAWS) -> dict[str, Any]:
    sqs, sns, cloudwatch = aws.client("sqs"), aws.client("sns"), aws.client("cloudwatch")
    dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
    audit = sqs.create_queue(QueueName="audit")["QueueUrl"]
    audit_arn = sqs.get_queue_attributes(QueueUrl=audit, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=audit_arn)
    spec = alarm(alarm_actions=(topic,), ok_actions=(topic,))
    cloudwatch.put_metric_alarm(
        AlarmName=spec.name,
        Namespace="AWS/SQS",
        MetricName=spec.metric_name,
        Dimensions=[{"Name": "QueueName", "Value": "work-dlq"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanThreshold",
    )
    stack = Stack()
    stack.alarms[spec.name] = spec
    stack.queues["work-dlq"] = Queue("work-dlq", "arn:q", dlq, 30, None, False, "q")
    evaluator = AlarmEvaluator(stack, aws.client, "us-east-1", lambda: "2026-03-09T17:00:00Z")
    evaluator.reset()
    return {"sqs": sqs, "dlq": dlq, "audit": audit, "evaluator": evaluator, "cloudwatch": cloudwatch}


def published(world: dict[str, Any]) -> list[dict[str, Any]]:
    messages = world["sqs"].receive_message(QueueUrl=world["audit"], MaxNumberOfMessages=10)
    return [json.loads(json.loads(m["Body"])["Message"]) for m in messages.get("Messages", [])]


def fill(world: dict[str, Any], count: int) -> None:
    for i in range(count):
        world["sqs"].send_message(QueueUrl=world["dlq"], MessageBody=f"dead {i}")


def test_at_threshold_stays_ok_without_notification(world: dict[str, Any]) -> None:
    fill(world, 5)
    assert world["evaluator"].evaluate() == []
    state = world["evaluator"].states["dlq-depth"]
    assert (state.state, state.value, state.notifications) == ("OK", 5.0, 0)
    assert published(world) == []


def test_above_threshold_alarms_once_and_notifies_like_cloudwatch(world: dict[str, Any]) -> None:
    fill(world, 6)
    changed = world["evaluator"].evaluate()
    assert [(a.name, s.state) for a, s in changed] == [("dlq-depth", "ALARM")]
    assert world["evaluator"].evaluate() == []  # no transition, no second notification
    [message] = published(world)
    assert message["AlarmName"] == "dlq-depth"
    assert (message["OldStateValue"], message["NewStateValue"]) == ("OK", "ALARM")
    assert message["NewStateReason"].startswith("Threshold Crossed: 1 datapoint [6.0")
    assert message["Trigger"]["Dimensions"] == [{"value": "work-dlq", "name": "QueueName"}]
    described = world["cloudwatch"].describe_alarms(AlarmNames=["dlq-depth"])["MetricAlarms"][0]
    assert described["StateValue"] == "ALARM"


def test_recovery_sends_ok_notification(world: dict[str, Any]) -> None:
    fill(world, 6)
    world["evaluator"].evaluate()
    world["sqs"].purge_queue(QueueUrl=world["dlq"])
    [(_, state)] = world["evaluator"].evaluate()
    assert state.state == "OK"
    assert [m["NewStateValue"] for m in published(world)] == ["ALARM", "OK"]


def test_reset_returns_to_ok_silently(world: dict[str, Any]) -> None:
    fill(world, 6)
    world["evaluator"].evaluate()
    published(world)
    world["evaluator"].reset()
    assert world["evaluator"].states["dlq-depth"].state == "OK"


def test_only_queue_depth_alarms_are_evaluable() -> None:
    assert evaluable(alarm())
    assert not evaluable(alarm(namespace="AWS/Lambda", metric_name="Errors"))
    assert not evaluable(alarm(dimensions={}))
    assert not evaluable(alarm(comparison="LessThanLowerOrGreaterThanUpperThreshold"))
