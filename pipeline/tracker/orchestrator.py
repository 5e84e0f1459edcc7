"""The tracker orchestrator Lambda: launch one EC2 worker when messages wait and no worker runs.

Fired every minute by an EventBridge schedule rule (the "Scheduled Event"; only its `time` is
used). Settings: SQS_QUEUE_URL, DYNAMODB_TABLE_NAME, EC2_TAG_KEY (`Role`), EC2_TAG_VALUE
(`rag-worker`), EC2_AMI_ID, EC2_INSTANCE_TYPE (`t3.micro`), EC2_AUTOTERMINATE_MINUTES (`5`),
EC2_SUBNET_ID, EC2_SECURITY_GROUP_ID, S3_BUCKET_NAME, EC2_KEY_NAME (empty: no key pair),
EC2_INSTANCE_PROFILE_NAME, WORKER_SCRIPT_KEY (`scripts/sqs_worker.py`), LOG_LEVEL.

Returns {"action": "none", "reason": "queue empty"}, {"action": "none", "reason": "worker
running", "instance_ids": [...]} or {"action": "launched", "instance_id": ..., "messages": n}.

The launch carries a ClientToken derived from the event's `time`: EC2 answers a repeated
token with the instance it already launched, so a retried invocation of the same firing (or
one that runs before DescribeInstances shows the new instance) cannot start a second worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.common import aws, clock, config
from pipeline.common.logging import get_logger, log
from pipeline.tracker import user_data

LOG = get_logger("pipeline.tracker.orchestrator")
WORKER_NAME = "rag-worker"
LIVE_STATES = ["pending", "running"]
# EC2 rejects longer client tokens.
MAX_CLIENT_TOKEN = 64


@dataclass(frozen=True)
class OrchestratorSettings:
    queue_url: str
    tag_key: str
    tag_value: str
    ami_id: str
    instance_type: str
    subnet_id: str
    security_group_id: str
    key_name: str
    instance_profile: str
    bootstrap: user_data.WorkerBootstrap


def _minutes(name: str, default: str) -> str:
    text = config.optional(name, default).strip()
    try:
        value = float(text)
    except ValueError as exc:
        raise config.ConfigError(f"{name} {text!r} is not a number of minutes") from exc
    if not value > 0:
        raise config.ConfigError(f"{name} {text!r} must be more than 0")
    return text


def load_settings() -> OrchestratorSettings:
    queue_url = config.required("SQS_QUEUE_URL")
    return OrchestratorSettings(
        queue_url=queue_url,
        tag_key=config.optional("EC2_TAG_KEY", "Role"),
        tag_value=config.optional("EC2_TAG_VALUE", WORKER_NAME),
        ami_id=config.required("EC2_AMI_ID"),
        instance_type=config.optional("EC2_INSTANCE_TYPE", "t3.micro"),
        subnet_id=config.required("EC2_SUBNET_ID"),
        security_group_id=config.required("EC2_SECURITY_GROUP_ID"),
        key_name=config.optional("EC2_KEY_NAME", ""),
        instance_profile=config.required("EC2_INSTANCE_PROFILE_NAME"),
        bootstrap=user_data.WorkerBootstrap(
            # The worker runs in the Lambda's region, where the queue and table are.
            region=config.optional("AWS_REGION", config.optional("AWS_DEFAULT_REGION", "us-east-1")),
            queue_url=queue_url,
            table_name=config.required("DYNAMODB_TABLE_NAME"),
            autoterminate_minutes=_minutes("EC2_AUTOTERMINATE_MINUTES", "5"),
            bucket=config.required("S3_BUCKET_NAME"),
            bundle_key=config.optional("WORKER_BUNDLE_KEY", "scripts/rag-worker.zip"),
        ),
    )


def queue_depth(queue_url: str) -> tuple[int, int]:
    """(messages waiting, messages in flight) in the work queue."""
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes.get("ApproximateNumberOfMessages", 0)),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def live_workers(settings: OrchestratorSettings) -> list[str]:
    """Ids of the tagged worker instances that are pending or running."""
    paginator = aws.client("ec2").get_paginator("describe_instances")
    filters = [
        {"Name": f"tag:{settings.tag_key}", "Values": [settings.tag_value]},
        {"Name": "instance-state-name", "Values": LIVE_STATES},
    ]
    found: list[str] = []
    for page in paginator.paginate(Filters=filters):
        for reservation in page.get("Reservations", []):
            found.extend(str(inst["InstanceId"]) for inst in reservation.get("Instances", []))
    return sorted(found)


def client_token(event: dict[str, Any]) -> str:
    """The same token for every invocation of one schedule firing."""
    fired = event.get("time")
    if not isinstance(fired, str) or not fired:
        fired = clock.now().strftime("%Y-%m-%dT%H:%M:00Z")
    return f"{WORKER_NAME}-{fired}"[:MAX_CLIENT_TOKEN]


def launch_worker(settings: OrchestratorSettings, token: str) -> str:
    tags = [
        {"Key": settings.tag_key, "Value": settings.tag_value},
        {"Key": "Name", "Value": WORKER_NAME},
        {"Key": "LaunchedBy", "Value": "orchestrator"},
    ]
    params: dict[str, Any] = {
        "ImageId": settings.ami_id,
        "InstanceType": settings.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "SubnetId": settings.subnet_id,
        "SecurityGroupIds": [settings.security_group_id],
        "IamInstanceProfile": {"Name": settings.instance_profile},
        "UserData": user_data.build(settings.bootstrap),
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
        # An instance that shuts itself down must not linger as a stopped (and billed) volume.
        "InstanceInitiatedShutdownBehavior": "terminate",
        # The worker speaks IMDSv2 only, so the weaker IMDSv1 can be switched off.
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "ClientToken": token,
    }
    if settings.key_name:
        params["KeyName"] = settings.key_name
    response = aws.client("ec2").run_instances(**params)
    return str(response["Instances"][0]["InstanceId"])


def orchestrate(event: dict[str, Any], settings: OrchestratorSettings) -> dict[str, Any]:
    waiting, in_flight = queue_depth(settings.queue_url)
    if waiting == 0 and in_flight == 0:
        return {"action": "none", "reason": "queue empty"}
    running = live_workers(settings)
    if running:
        return {"action": "none", "reason": "worker running", "instance_ids": running}
    instance_id = launch_worker(settings, client_token(event))
    return {"action": "launched", "instance_id": instance_id, "messages": waiting + in_flight}


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    try:
        result = orchestrate(event, load_settings())
    except Exception:
        # Raise again: the invocation fails visibly, and a retry reuses the same ClientToken.
        LOG.exception("orchestrator run failed", extra={"fields": {"event_time": event.get("time")}})
        raise
    log(LOG, "orchestrator run", event_time=event.get("time"), **result)
    return result
