"""The `publish` step: publish a message to a RabbitMQ queue (the Amazon MQ stand-in)."""

from __future__ import annotations

import json
from typing import Any

import pika
import pika.exceptions
from pydantic import Field

from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step

TIMEOUT_S = 10.0


def connect(url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.socket_timeout = TIMEOUT_S
    params.blocked_connection_timeout = TIMEOUT_S
    params.stack_timeout = TIMEOUT_S
    params.connection_attempts = 1
    try:
        return pika.BlockingConnection(params)
    except pika.exceptions.AMQPError as exc:
        raise HarnessError(
            f"publish: cannot connect to RabbitMQ at {params.host}:{params.port}: {exc!r}"
        ) from None


@step
class Publish(Step):
    """Publish a message to a RabbitMQ queue through the default exchange, with publisher confirms.

    A mapping or list `body` is sent as JSON. The queue must exist unless `declare: true`,
    which declares it (durable) first.
    """

    keyword = "publish"
    queue: str = Field(min_length=1)
    body: str | dict[str, Any] | list[Any]
    headers: dict[str, Any] | None = None
    persistent: bool = True
    declare: bool = False
    content_type: str | None = None

    def run(self, ctx: ScenarioContext) -> None:
        service = ctx.session.support.get("rabbitmq")
        if service is None:
            raise HarnessError("publish: this session runs without RabbitMQ (support services are off)")
        is_json = not isinstance(self.body, str)
        body = json.dumps(self.body) if is_json else str(self.body)
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent if self.persistent else pika.DeliveryMode.Transient,
            headers=self.headers or None,
            content_type=self.content_type or ("application/json" if is_json else "text/plain"),
        )
        connection = connect(service.endpoint.url)
        try:
            channel = connection.channel()
            try:
                channel.queue_declare(queue=self.queue, passive=not self.declare, durable=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code == 404:
                    raise HarnessError(
                        f"publish: RabbitMQ has no queue named {self.queue!r}",
                        hint="declare it in the broker's setup, or write `declare: true` to create it",
                    ) from None
                raise HarnessError(f"publish: declaring queue {self.queue!r} failed: {exc}") from None
            channel.confirm_delivery()
            try:
                channel.basic_publish(
                    exchange="",
                    routing_key=self.queue,
                    body=body.encode(),
                    properties=properties,
                    mandatory=True,
                )
            except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
                raise HarnessError(
                    f"publish: RabbitMQ did not accept the message for {self.queue!r}: {exc}"
                ) from None
        except pika.exceptions.AMQPError as exc:
            raise HarnessError(f"publish to {self.queue!r} failed: {exc!r}") from None
        finally:
            if connection.is_open:
                connection.close()
        ctx.session.timeline.add(
            "publish",
            ctx.session.clock.iso(),
            queue=self.queue,
            bytes=len(body.encode()),
            persistent=self.persistent,
        )
