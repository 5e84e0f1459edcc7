"""The `send_message` step: send a message to a queue of the stack."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step


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
