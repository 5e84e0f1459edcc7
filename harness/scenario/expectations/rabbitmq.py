"""The `rabbitmq_queue` expectation: a RabbitMQ queue's depth and messages, peeked and requeued."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import (
    CountMatcher,
    Matcher,
    decode_text,
    expect_match,
    fail,
    plain,
    valid_count,
    valid_matcher,
)
from harness.scenario.vocabulary import Expectation, expectation

#: Peeking stops after this many messages (they are all held unacknowledged until requeued).
PEEK_LIMIT = 1000


@expectation
class RabbitQueue(Expectation):
    """A RabbitMQ queue: its depth (ready messages) and its messages and their headers, peeked and
    requeued in order."""

    keyword = "rabbitmq_queue"
    queue: str
    depth: CountMatcher = None
    messages: Matcher = None
    headers: Matcher = None

    _valid_depth = field_validator("depth")(valid_count)
    _valid_messages = field_validator("messages", "headers")(valid_matcher)

    def check(self, ctx: ScenarioContext) -> None:
        import pika
        import pika.exceptions

        service = ctx.session.support.get("rabbitmq")
        if service is None:
            raise fail("rabbitmq: RabbitMQ is running", "a rabbitmq service", "no rabbitmq in this session")
        connection = pika.BlockingConnection(pika.URLParameters(service.endpoint.url))
        try:
            channel = connection.channel()
            try:
                declared = channel.queue_declare(queue=self.queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                raise fail(f"RabbitMQ queue {self.queue} exists", self.queue, f"{exc.reply_text}") from None
            depth = int(declared.method.message_count)
            if self.depth is not None:
                expect_match(f"depth of RabbitMQ queue {self.queue}", self.depth, depth)
            if self.messages is not None or self.headers is not None:
                bodies, headers = self._peek(channel)
                if self.messages is not None:
                    expect_match(f"messages on RabbitMQ queue {self.queue}", self.messages, bodies)
                if self.headers is not None:
                    expect_match(f"message headers on RabbitMQ queue {self.queue}", self.headers, headers)
        finally:
            try:
                connection.close()
            except pika.exceptions.AMQPError:
                pass

    def _peek(self, channel: Any) -> tuple[list[Any], list[dict[str, Any]]]:
        """Every ready message (bodies, headers), held unacknowledged and then requeued in order."""
        bodies: list[Any] = []
        headers: list[dict[str, Any]] = []
        last_tag = None
        try:
            while len(bodies) < PEEK_LIMIT:
                method, properties, body = channel.basic_get(queue=self.queue, auto_ack=False)
                if method is None:
                    break
                last_tag = method.delivery_tag
                bodies.append(decode_text(body))
                headers.append(plain(dict(properties.headers or {})))
        finally:
            if last_tag is not None:
                channel.basic_nack(delivery_tag=last_tag, multiple=True, requeue=True)
        return bodies, headers
