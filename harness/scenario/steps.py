"""The steps a scenario can take: drop inputs, send messages, invoke, move time, wait."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.durations import parse_duration
from harness.scenario.vocabulary import Step, step


@step
class PutObject(Step):
    """Upload an object: an inline `body`, or a `file` from fixtures/."""

    keyword = "put_object"
    bucket: str
    key: str
    body: str | None = None
    file: str | None = None
    content_type: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PutObject:
        if (self.body is None) == (self.file is None):
            raise ValueError("give exactly one of `body` or `file`")
        return self

    def run(self, ctx: ScenarioContext) -> None:
        data = self.body.encode() if self.body is not None else ctx.fixture(str(self.file)).read_bytes()
        extra = {"ContentType": self.content_type} if self.content_type else {}
        ctx.session.client("s3").put_object(Bucket=self.bucket, Key=self.key, Body=data, **extra)
        ctx.session.timeline.add(
            "put_object", ctx.session.clock.iso(), bucket=self.bucket, key=self.key, bytes=len(data)
        )


@step
class SendMessage(Step):
    """Send a message to a queue of the stack (by name or unique name suffix)."""

    keyword = "send_message"
    queue: str
    body: str | dict[str, Any] | list[Any]
    attributes: dict[str, str] = Field(default_factory=dict)

    def run(self, ctx: ScenarioContext) -> None:
        queue = ctx.session.stack.resolve_queue(self.queue)
        body = self.body if isinstance(self.body, str) else json.dumps(self.body)
        attrs = {k: {"DataType": "String", "StringValue": v} for k, v in self.attributes.items()}
        ctx.session.client("sqs").send_message(QueueUrl=queue.url, MessageBody=body, MessageAttributes=attrs)
        ctx.session.timeline.add("send_message", ctx.session.clock.iso(), queue=queue.name)


@step
class Invoke(Step):
    """Invoke a function directly with a payload, as `aws lambda invoke` would."""

    keyword = "invoke"
    function: str
    payload: Any = None

    def run(self, ctx: ScenarioContext) -> None:
        runtime = ctx.session.runtime
        assert runtime is not None
        runtime.invoke(ctx.session.stack.resolve_function(self.function).name, self.payload or {})


@step
class Advance(Step):
    """Move the virtual clock forward (`advance: 90m`)."""

    keyword = "advance"
    shorthand = "by"
    by: str

    @field_validator("by")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    def run(self, ctx: ScenarioContext) -> None:
        moment = ctx.session.clock.advance(parse_duration(self.by))
        ctx.session.timeline.add("advance", ctx.session.clock.iso(), by=self.by, to=moment.isoformat())


@step
class AdvanceTo(Step):
    """Move the virtual clock to an instant (`advance_to: 2026-01-16T08:00:00Z`)."""

    keyword = "advance_to"
    shorthand = "time"
    time: datetime

    def run(self, ctx: ScenarioContext) -> None:
        ctx.session.clock.set(self.time)
        ctx.session.timeline.add("advance_to", ctx.session.clock.iso())


@step
class AwaitQuiet(Step):
    """Wait until no message is in flight and no invocation runs (or fail after `timeout`)."""

    keyword = "await_quiet"
    shorthand = "timeout"
    timeout: str | float = "30s"

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value: str | float) -> str | float:
        parse_duration(value)
        return value

    def run(self, ctx: ScenarioContext) -> None:
        seconds = ctx.session.await_quiet(parse_duration(self.timeout).total_seconds())
        ctx.session.timeline.add("quiet", ctx.session.clock.iso(), after_s=round(seconds, 3))


@step
class Redeliver(Step):
    """Deliver the SQS messages of an earlier invocation again: a duplicate delivery.

    `invocation` counts that function's invocations from 1. Each record's body is sent
    again to the queue it came from, unchanged (same event id), as SQS's at-least-once
    delivery may do.
    """

    keyword = "redeliver"
    function: str
    invocation: int = Field(default=1, ge=1)

    def run(self, ctx: ScenarioContext) -> None:
        runtime = ctx.session.runtime
        assert runtime is not None
        name = ctx.session.stack.resolve_function(self.function).name
        calls = [i for i in runtime.invocations if i.function == name]
        if len(calls) < self.invocation:
            raise HarnessError(f"redeliver: {name} has {len(calls)} invocation(s), not {self.invocation}")
        call = calls[self.invocation - 1]
        if not call.source.startswith("sqs:"):
            raise HarnessError(f"redeliver: invocation {self.invocation} of {name} did not come from SQS")
        queue = ctx.session.stack.resolve_queue(call.source.removeprefix("sqs:"))
        for record in call.event.get("Records", []):
            ctx.session.client("sqs").send_message(QueueUrl=queue.url, MessageBody=record["body"])
        ctx.session.timeline.add("redeliver", ctx.session.clock.iso(), queue=queue.name, function=name)
