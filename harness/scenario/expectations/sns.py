"""The `sns_messages` expectation: what a topic published, seen on the SQS queue subscribed to it."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from pydantic import field_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import (
    CountMatcher,
    Matcher,
    decode_text,
    expect_match,
    fail,
    pick_name,
    topic_arn,
    valid_count,
    valid_matcher,
)
from harness.scenario.vocabulary import Expectation, expectation

_NOT_OURS = object()


def unwrap(body: Any, arn: str) -> Any:
    """The published message of one SQS body (an SNS envelope, or the message itself when raw).

    Envelopes from another topic give `_NOT_OURS`.
    """
    doc = decode_text(body)
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and "Message" in doc:
        if doc.get("TopicArn") and doc["TopicArn"] != arn:
            return _NOT_OURS
        return decode_text(doc["Message"])
    return doc


def published_messages(bodies: list[Any], arn: str) -> list[Any]:
    """The messages a topic published, from the bodies on a queue subscribed to it."""
    return [m for m in (unwrap(b, arn) for b in bodies) if m is not _NOT_OURS]


def queue_url_by_name(ctx: ScenarioContext, name: str) -> str:
    """A queue's URL: the stack's (exact or unique suffix), else the emulator's."""
    stack = ctx.session.stack
    if stack.queues:
        try:
            return stack.resolve_queue(name).url
        except KeyError:
            pass
    urls = {
        url.rstrip("/").rsplit("/", 1)[-1]: url
        for page in ctx.session.client("sqs").get_paginator("list_queues").paginate()
        for url in page.get("QueueUrls", [])
    }
    return urls[pick_name("queue", name, urls)]


def queue_url_by_arn(ctx: ScenarioContext, arn: str) -> str:
    queue = ctx.session.stack.queue_by_arn(arn)
    if queue is not None:
        return queue.url
    parts = arn.split(":")
    try:
        url = ctx.session.client("sqs").get_queue_url(QueueName=parts[-1], QueueOwnerAWSAccountId=parts[-2])
    except ClientError as exc:
        raise fail(f"subscribed queue {arn} exists", arn, str(exc)) from None
    return str(url["QueueUrl"])


@expectation
class SnsMessages(Expectation):
    """Messages an SNS topic published, peeked on an SQS queue subscribed to it (envelopes unwrapped).

    Each message is the envelope's `Message`, JSON-decoded when it parses. Without
    `subscription_queue`, the harness's own queue subscribed to the topic is used (every
    topic of the stack gets one); with it, that queue of the stack.
    """

    keyword = "sns_messages"
    topic: str
    subscription_queue: str | None = None
    count: CountMatcher = None
    messages: Matcher = None

    _valid_count = field_validator("count")(valid_count)
    _valid_messages = field_validator("messages")(valid_matcher)

    def check(self, ctx: ScenarioContext) -> None:
        arn = topic_arn(ctx, self.topic)
        topic = arn.rsplit(":", 1)[-1]
        tap = ctx.session.sns_taps.get(arn)
        if self.subscription_queue:
            url = queue_url_by_name(ctx, self.subscription_queue)
        elif tap is not None:
            url = tap
        else:
            url = self._subscribed_queue(ctx, arn)
        bodies = [m.get("Body") for m in ctx.session.peek_messages(url)]
        messages = published_messages(bodies, arn)
        queue = url.rstrip("/").rsplit("/", 1)[-1]
        if self.count is not None:
            expect_match(
                f"number of messages topic {topic} published (seen on {queue})",
                self.count,
                len(messages),
                {"count": len(messages), "messages": messages},
            )
        if self.messages is not None:
            expect_match(f"messages topic {topic} published (seen on {queue})", self.messages, messages)

    def _subscribed_queue(self, ctx: ScenarioContext, arn: str) -> str:
        subscriptions = [(s.protocol, s.endpoint) for s in ctx.session.stack.subscriptions_of(arn)]
        if not subscriptions:
            pages = (
                ctx.session.client("sns").get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
            )
            subscriptions = [
                (s.get("Protocol", ""), s.get("Endpoint", ""))
                for page in pages
                for s in page.get("Subscriptions", [])
            ]
        queues = [endpoint for protocol, endpoint in subscriptions if protocol == "sqs"]
        if len(queues) != 1:
            raise fail(
                f"topic {arn.rsplit(':', 1)[-1]} has one SQS subscription (else name `subscription_queue`)",
                "one SQS subscription",
                [f"{protocol}: {endpoint}" for protocol, endpoint in subscriptions] or "no subscriptions",
            )
        return queue_url_by_arn(ctx, queues[0])
