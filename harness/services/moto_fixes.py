"""Corrections applied to moto inside the moto server process the harness launches.

moto's S3 -> EventBridge notification (moto 5.2.x) differs from AWS in ways that silently
break event-driven flows (measured; see shared/notes/emulators.md):
- every event carries the same fixed `id`, `request-id` and `sequencer`, and `time` is a
  float instead of an ISO-8601 string, so consumers cannot de-duplicate or order;
- it is delivered to matching rules on *every* bus, while AWS delivers S3 events only to
  the default bus (a forwarding rule then copies them to a custom bus): on moto a custom
  bus gets each event twice;
- a PutObject without tags also emits "Object Tags Added";
- one rule whose target moto cannot serve (a Lambda ARN) raises inside the loop and drops
  the event for every later rule.

Read-backs that differ from what was written make every Terraform plan dirty (AWS gives
back what it was given), so they are corrected too:
- GetBucketNotificationConfiguration leaves out the EventBridgeConfiguration it stored;
- GetQueueAttributes renders RedrivePolicy with spaces after the separators (AWS: compact);
- DescribeServices lacks the ECS settings CreateService was given (availabilityZoneRebalancing,
  enableECSManagedTags);
- DescribeSecurityGroupRules drops the description of a rule that references a group;
- DescribeDBInstances never reports Performance Insights.

It also adds one route, `/moto-api/harness/sqs-messages?QueueUrl=...`, that lists a
queue's messages (visible and in flight) without receiving them, so scenarios can assert
on queue and DLQ contents without bumping ApproximateReceiveCount. LocalStack has the same
thing built in (`/_aws/sqs/messages`).

`apply()` replaces that one function with a faithful version. The harness runs moto as
`python -m harness.services.moto_main`, which calls `apply()` before serving, so only the
emulator process is patched, never the harness or the pipeline.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

LOG = logging.getLogger("harness.moto_fixes")
_SEQUENCER = itertools.count(1)
_SEQUENCER_LOCK = threading.Lock()


def _next_sequencer() -> str:
    with _SEQUENCER_LOCK:
        return f"{next(_SEQUENCER):016X}"


def s3_event_bridge_event(account_id: str, bucket: Any, event_name: str, key: Any) -> dict[str, Any]:
    """The event AWS puts on the default bus for an S3 EventBridge notification."""
    from moto.s3.notifications import _detail_type

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": _detail_type(event_name),
        "source": "aws.s3",
        "account": account_id,
        "time": time.time(),  # moto's internal convention; rendered as ISO-8601 on delivery
        "region": bucket.region_name,
        "resources": [bucket.arn],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket.name},
            "object": {
                "key": key.name,
                "size": key.size,
                "etag": key.etag.replace('"', ""),
                "version-id": key.version_id,
                "sequencer": _next_sequencer(),
            },
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account_id,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject" if "ObjectCreated" in event_name else event_name.split(":")[1],
        },
        "ingestion-time": time.time(),  # moto's target input rendering reads it
    }


def _object_has_tags(account_id: str, bucket: Any, key: Any) -> bool:
    from moto.s3.models import s3_backends

    backend = s3_backends[account_id]["aws"]
    return bool(backend.tagger.list_tags_for_resource(key.arn).get("Tags"))


def _send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    event: Any
    from moto.events.models import events_backends
    from moto.s3.notifications import S3NotificationEvent

    try:
        if event_name == S3NotificationEvent.OBJECT_TAGGING_PUT_EVENT and not _object_has_tags(
            account_id, bucket, key
        ):
            return  # moto tags every new object with an empty set; AWS emits nothing then
        event = s3_event_bridge_event(account_id, bucket, event_name, key)
        default_bus = events_backends[account_id][bucket.region_name].event_buses.get("default")
    except Exception:
        LOG.exception("building the S3 EventBridge event failed")
        return
    if default_bus is None:
        return
    for rule in list(default_bus.rules.values()):
        try:
            rule.send_to_targets(event, transform_input=True)
        except Exception:
            LOG.warning("rule %s could not deliver an S3 event", rule.name, exc_info=True)


def peek_sqs_messages(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """All messages of a queue, as ReceiveMessage would show them, without receiving any."""
    from moto.sqs.models import sqs_backends

    query = parse_qs(urlparse(full_url).query)
    queue_url = (query.get("QueueUrl") or [""])[0]
    parts = urlparse(queue_url).path.strip("/").split("/")
    if len(parts) < 2:
        return 400, {"Content-Type": "application/json"}, json.dumps({"error": "QueueUrl is required"})
    account_id, name = parts[-2], parts[-1]
    region = (query.get("Region") or ["us-east-1"])[0]
    queue = sqs_backends[account_id][region].queues.get(name)
    if queue is None:
        return 404, {"Content-Type": "application/json"}, json.dumps({"error": f"no queue {name}"})
    messages = [
        {
            "MessageId": m.id,
            "Body": m.body,
            "MD5OfBody": m.body_md5,
            "Attributes": {
                "ApproximateReceiveCount": str(m.approximate_receive_count),
                "SentTimestamp": str(m.sent_timestamp),
                "SenderId": m.sender_id,
                **({"MessageGroupId": m.group_id} if m.group_id else {}),
            },
            "MessageAttributes": m.message_attributes,
            "Visible": bool(m.visible),
        }
        for m in list(queue._messages)
    ]
    return 200, {"Content-Type": "application/json"}, json.dumps({"Messages": messages})


# The whole event as AWS delivers it to a target without an input transformer; moto's own
# template leaves out `account`. (`time` stays a float epoch inside moto, which renders it
# as ISO-8601 when it sends to SQS.)
FULL_EVENT_TEMPLATE = (
    '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", '
    '"account": "<account>", "time": <time>, "region": "<region>", "resources": <resources>, '
    '"detail": <detail>}'
)


def _queue_attributes_compact(original: Any) -> Any:
    def attributes(self: Any) -> dict[str, Any]:
        result = dict(original.fget(self))
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    return property(attributes)


def _notification_with_eventbridge(original: Any) -> Any:
    def get_bucket_notification(self: Any) -> Any:
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or config.event_bridge is None:
            return original(self)
        from moto.core.responses import ActionResult

        # The original's result, plus the EventBridge member it leaves out.
        self.data["Action"] = "GetBucketNotificationConfiguration"
        result = {
            "TopicConfigurations": [_notification(t, "TopicArn") for t in config.topic],
            "QueueConfigurations": [_notification(q, "QueueArn") for q in config.queue],
            "LambdaFunctionConfigurations": [
                _notification(f, "LambdaFunctionArn") for f in config.cloud_function
            ],
            "EventBridgeConfiguration": {},
        }
        return self.serialized(ActionResult(result))

    return get_bucket_notification


def _notification(item: Any, arn_key: str) -> dict[str, Any]:
    config: dict[str, Any] = {"Id": item.id, arn_key: item.arn, "Events": item.events}
    if item.filters:
        config["Filter"] = {"Key": {"FilterRules": item.filters["S3Key"]["FilterRule"]}}
    return config


def _ecs_service_settings(original: Any) -> Any:
    def create_service(self: Any) -> Any:
        result = original(self)
        service = result.result["service"]
        # AWS's default for a new service is ENABLED; enableECSManagedTags defaults to false.
        service.availability_zone_rebalancing = self._get_param("availabilityZoneRebalancing") or "ENABLED"
        service.enable_ecs_managed_tags = bool(self._get_param("enableECSManagedTags", False))
        return result

    return create_service


def _rule_description(self: Any) -> str | None:
    return self.ip_range.get("Description") or (self.source_group or {}).get("Description")


def _db_instance_insights(original: Any) -> Any:
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        # CreateDBInstance says EnablePerformanceInsights; DescribeDBInstances PerformanceInsightsEnabled.
        enabled = bool(kwargs.get("enable_performance_insights"))
        self.performance_insights_enabled = enabled
        # Seven days is the free retention AWS applies when none is given.
        self.performance_insights_retention_period = (
            int(kwargs.get("performance_insights_retention_period") or 7) if enabled else None
        )

    return init


def apply() -> None:
    """Install the corrections into the moto modules of this process."""
    from moto.ec2.models.security_groups import SecurityGroupRule
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.rds.models import DBInstance

    setattr(  # noqa: B010
        EC2ContainerServiceResponse,
        "create_service",
        _ecs_service_settings(EC2ContainerServiceResponse.create_service),
    )
    setattr(SecurityGroupRule, "description", property(_rule_description))  # noqa: B010
    setattr(DBInstance, "__init__", _db_instance_insights(DBInstance.__init__))  # noqa: B010
    from moto.s3.responses import S3Response
    from moto.sqs.models import Queue

    setattr(Queue, "attributes", _queue_attributes_compact(Queue.attributes))  # noqa: B010
    setattr(  # noqa: B010
        S3Response,
        "get_bucket_notification",
        _notification_with_eventbridge(S3Response.get_bucket_notification),
    )
    from moto.events.utils import EventTemplateParser
    from moto.moto_api._internal import urls
    from moto.s3 import notifications

    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = FULL_EVENT_TEMPLATE
    notifications._send_event_bridge_message = _send_event_bridge_message
    urls.url_paths["{0}/moto-api/harness/sqs-messages"] = peek_sqs_messages

    from harness.services import moto_managed

    moto_managed.apply()
