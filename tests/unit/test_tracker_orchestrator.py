"""The tracker orchestrator Lambda against moto in-process: when it launches a worker, and how."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto.core.models import MockAWS

from pipeline.common import aws, config
from pipeline.tracker import orchestrator, user_data

RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/tracker-orchestrator-every-minute"
AMI = "ami-0abcdef1234567890"
PROFILE = "tracker-worker"


@dataclass
class Stack:
    queue_url: str
    subnet_id: str
    security_group_id: str


def scheduled_event(time: str | None = "2026-05-01T10:01:00Z") -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "0",
        "id": "8d4f1c2e-0000-4000-8000-000000000001",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "region": "us-east-1",
        "resources": [RULE_ARN],
        "detail": {},
    }
    if time is not None:
        event["time"] = time
    return event


ENV = {
    "AWS_REGION": "us-east-1",
    "SQS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/tracker-work",
    "DYNAMODB_TABLE_NAME": "tracker-files",
    "EC2_TAG_KEY": "Role",
    "EC2_TAG_VALUE": "rag-worker",
    "EC2_AMI_ID": AMI,
    "EC2_INSTANCE_TYPE": "t3.micro",
    "EC2_AUTOTERMINATE_MINUTES": "5",
    "EC2_SUBNET_ID": "subnet-placeholder",
    "EC2_SECURITY_GROUP_ID": "sg-placeholder",
    "S3_BUCKET_NAME": "tracker-data",
    "EC2_KEY_NAME": "",
    "EC2_INSTANCE_PROFILE_NAME": PROFILE,
    "WORKER_BUNDLE_KEY": "scripts/rag-worker.zip",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Lambda's environment as Terraform sets it (settings tests need no AWS)."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def stack(env: None, aws_mock: MockAWS, monkeypatch: pytest.MonkeyPatch) -> Stack:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.44.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.44.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="tracker-worker", Description="w", VpcId=vpc)["GroupId"]
    aws.client("iam").create_instance_profile(InstanceProfileName=PROFILE)
    queue_url = aws.client("sqs").create_queue(QueueName="tracker-work")["QueueUrl"]
    monkeypatch.setenv("SQS_QUEUE_URL", queue_url)
    monkeypatch.setenv("EC2_SUBNET_ID", subnet)
    monkeypatch.setenv("EC2_SECURITY_GROUP_ID", group)
    return Stack(queue_url, subnet, group)


@pytest.fixture
def run_params() -> Iterator[list[dict[str, Any]]]:
    """The parameters of every RunInstances call the orchestrator makes."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **kwargs: Any) -> None:
        seen.append(dict(params))

    events = aws.client("ec2").meta.events
    events.register("provide-client-params.ec2.RunInstances", record)
    try:
        yield seen
    finally:
        events.unregister("provide-client-params.ec2.RunInstances", record)


def send(stack: Stack, count: int = 1) -> None:
    for n in range(count):
        aws.client("sqs").send_message(QueueUrl=stack.queue_url, MessageBody=f'{{"n": {n}}}')


def instances(filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    flt = [{"Name": name, "Values": values} for name, values in (filters or {}).items()]
    pages = aws.client("ec2").get_paginator("describe_instances").paginate(Filters=flt)
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def user_data_of(instance_id: str) -> str:
    attr = aws.client("ec2").describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return base64.b64decode(attr["UserData"]["Value"]).decode()


def test_empty_queue_launches_nothing(stack: Stack) -> None:
    assert orchestrator.handler(scheduled_event(), None) == {"action": "none", "reason": "queue empty"}
    assert instances() == []


def test_waiting_messages_launch_one_worker(stack: Stack, run_params: list[dict[str, Any]]) -> None:
    send(stack, 3)

    result = orchestrator.handler(scheduled_event(), None)

    assert result["action"] == "launched"
    assert result["messages"] == 3
    [inst] = instances()
    assert inst["InstanceId"] == result["instance_id"]
    assert inst["ImageId"] == AMI
    assert inst["InstanceType"] == "t3.micro"
    assert inst["SubnetId"] == stack.subnet_id
    assert [g["GroupId"] for g in inst["SecurityGroups"]] == [stack.security_group_id]
    assert inst["IamInstanceProfile"]["Arn"].endswith(f"instance-profile/{PROFILE}")
    assert "KeyName" not in inst
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    assert inst["ClientToken"] == "rag-worker-2026-05-01T10:01:00Z"
    assert {t["Key"]: t["Value"] for t in inst["Tags"]} == {
        "Role": "rag-worker",
        "Name": "rag-worker",
        "LaunchedBy": "orchestrator",
    }
    shutdown = aws.client("ec2").describe_instance_attribute(
        InstanceId=inst["InstanceId"], Attribute="instanceInitiatedShutdownBehavior"
    )
    assert shutdown["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"

    script = user_data_of(inst["InstanceId"])
    assert user_data.parse_exports(script) == {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SQS_QUEUE_URL": stack.queue_url,
        "DYNAMODB_TABLE_NAME": "tracker-files",
        "EC2_AUTOTERMINATE_MINUTES": "5",
        "WORKER_BUNDLE_S3_URI": "s3://tracker-data/scripts/rag-worker.zip",
        "WORKER_HOME": "/opt/rag-worker",
        "LOG_DIR": "/var/log/rag-worker",
        "LOG_FILE": "/var/log/rag-worker/sqs_worker.log",
    }
    assert script.startswith("#!/bin/bash\n")
    assert "dnf install -y python3.11" in script
    assert script.rstrip().endswith(
        'nohup "$WORKER_HOME/venv/bin/python" "$WORKER_HOME/sqs_worker.py" >> "$LOG_FILE" 2>&1 &'
    )
    [params] = run_params
    assert (params["MinCount"], params["MaxCount"]) == (1, 1)


def test_messages_in_flight_alone_still_need_a_worker(stack: Stack) -> None:
    # A worker that died holding messages: they come back after the visibility timeout.
    send(stack)
    aws.client("sqs").receive_message(QueueUrl=stack.queue_url, VisibilityTimeout=300)
    result = orchestrator.handler(scheduled_event(), None)
    assert result["action"] == "launched"
    assert result["messages"] == 1


def test_a_running_worker_is_left_alone(stack: Stack) -> None:
    send(stack)
    first = orchestrator.handler(scheduled_event("2026-05-01T10:01:00Z"), None)
    second = orchestrator.handler(scheduled_event("2026-05-01T10:02:00Z"), None)
    assert second == {"action": "none", "reason": "worker running", "instance_ids": [first["instance_id"]]}
    assert len(instances()) == 1


def test_an_existing_tagged_instance_counts_as_the_worker(stack: Stack) -> None:
    send(stack)
    launched = aws.client("ec2").run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        SubnetId=stack.subnet_id,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Role", "Value": "rag-worker"}]}],
    )
    own = launched["Instances"][0]["InstanceId"]
    result = orchestrator.handler(scheduled_event(), None)
    assert result == {"action": "none", "reason": "worker running", "instance_ids": [own]}


def test_untagged_or_terminated_instances_do_not_count(stack: Stack) -> None:
    send(stack)
    ec2 = aws.client("ec2")
    ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=stack.subnet_id)
    other_role = [{"ResourceType": "instance", "Tags": [{"Key": "Role", "Value": "web"}]}]
    ec2.run_instances(
        ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=stack.subnet_id, TagSpecifications=other_role
    )
    old = orchestrator.handler(scheduled_event("2026-05-01T10:01:00Z"), None)["instance_id"]
    ec2.terminate_instances(InstanceIds=[old])

    result = orchestrator.handler(scheduled_event("2026-05-01T10:02:00Z"), None)

    assert result["action"] == "launched"
    assert result["instance_id"] != old
    assert len(instances({"tag:Role": ["rag-worker"], "instance-state-name": ["pending", "running"]})) == 1


def test_the_same_firing_twice_launches_one_instance(stack: Stack, run_params: list[dict[str, Any]]) -> None:
    send(stack)
    event = scheduled_event()
    first = orchestrator.handler(event, None)
    again = orchestrator.handler(event, None)
    assert first["action"] == "launched"
    assert again == {"action": "none", "reason": "worker running", "instance_ids": [first["instance_id"]]}
    assert len(instances()) == 1
    assert [p["ClientToken"] for p in run_params] == ["rag-worker-2026-05-01T10:01:00Z"]


def test_a_retry_that_cannot_see_the_first_instance_reuses_its_token(
    stack: Stack, run_params: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # DescribeInstances is eventually consistent: the ClientToken is what makes EC2 answer
    # the retry with the first instance instead of a second one (moto does not emulate that).
    send(stack)
    monkeypatch.setattr(orchestrator, "live_workers", lambda settings: [])
    orchestrator.handler(scheduled_event(), None)
    orchestrator.handler(scheduled_event(), None)
    tokens = [p["ClientToken"] for p in run_params]
    assert tokens == ["rag-worker-2026-05-01T10:01:00Z"] * 2
    next_minute = orchestrator.client_token(scheduled_event("2026-05-01T10:02:00Z"))
    assert next_minute != tokens[0]


def test_without_an_event_time_the_token_is_the_clock_minute(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock_file = tmp_path / "clock"
    clock_file.write_text("2026-05-01T10:01:37.250000Z\n")
    monkeypatch.setenv("PIPELINE_CLOCK_FILE", str(clock_file))
    assert orchestrator.client_token(scheduled_event(time=None)) == "rag-worker-2026-05-01T10:01:00Z"
    assert orchestrator.client_token({"time": ""}) == "rag-worker-2026-05-01T10:01:00Z"
    send(stack)
    launched = orchestrator.handler(None, None)
    [inst] = instances()
    assert inst["InstanceId"] == launched["instance_id"]
    assert inst["ClientToken"] == "rag-worker-2026-05-01T10:01:00Z"


def test_key_pair_only_when_configured(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    aws.client("ec2").create_key_pair(KeyName="tracker-ssh")
    monkeypatch.setenv("EC2_KEY_NAME", "tracker-ssh")
    send(stack)
    orchestrator.handler(scheduled_event(), None)
    [inst] = instances()
    assert inst["KeyName"] == "tracker-ssh"


def test_defaults_for_optional_settings(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "EC2_TAG_KEY",
        "EC2_TAG_VALUE",
        "EC2_INSTANCE_TYPE",
        "EC2_AUTOTERMINATE_MINUTES",
        "WORKER_BUNDLE_KEY",
        "EC2_KEY_NAME",
    ):
        monkeypatch.delenv(name)
    settings = orchestrator.load_settings()
    assert (settings.tag_key, settings.tag_value, settings.instance_type, settings.key_name) == (
        "Role",
        "rag-worker",
        "t3.micro",
        "",
    )
    assert settings.bootstrap.autoterminate_minutes == "5"
    assert settings.bootstrap.bundle_uri == "s3://tracker-data/scripts/rag-worker.zip"


@pytest.mark.parametrize(
    "name",
    [
        "SQS_QUEUE_URL",
        "EC2_AMI_ID",
        "EC2_SUBNET_ID",
        "EC2_INSTANCE_PROFILE_NAME",
        "S3_BUCKET_NAME",
        "DYNAMODB_TABLE_NAME",
    ],
)
def test_missing_required_setting_is_named(env: None, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.delenv(name)
    with pytest.raises(config.ConfigError, match=name):
        orchestrator.handler(scheduled_event(), None)


@pytest.mark.parametrize("minutes", ["five", "0", "-1"])
def test_bad_idle_minutes_are_refused(env: None, monkeypatch: pytest.MonkeyPatch, minutes: str) -> None:
    monkeypatch.setenv("EC2_AUTOTERMINATE_MINUTES", minutes)
    with pytest.raises(config.ConfigError, match="EC2_AUTOTERMINATE_MINUTES"):
        orchestrator.load_settings()


def test_one_log_line_per_run(stack: Stack) -> None:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    orchestrator.LOG.addHandler(handler)
    try:
        orchestrator.handler(scheduled_event(), None)
        send(stack)
        orchestrator.handler(scheduled_event(), None)
    finally:
        orchestrator.LOG.removeHandler(handler)
    assert [r.getMessage() for r in records] == ["orchestrator run", "orchestrator run"]
    fields = [getattr(r, "fields", {}) for r in records]
    assert fields[0]["action"] == "none"
    assert fields[1]["action"] == "launched"
    assert fields[1]["event_time"] == "2026-05-01T10:01:00Z"
