"""Queue expectations, peeked without receiving: `queue` and `queue_empty`."""

from __future__ import annotations

import json
from typing import Any

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import fail
from harness.scenario.vocabulary import Expectation, expectation


@expectation
class QueueEmpty(Expectation):
    """No message at all (visible, in flight or delayed) on a queue or DLQ."""

    keyword = "queue_empty"
    shorthand = "name"
    name: str

    def check(self, ctx: ScenarioContext) -> None:
        queue = ctx.session.stack.resolve_queue(self.name)
        messages = ctx.session.peek_messages(queue.url)
        if messages:
            raise fail(f"queue {queue.name} is empty", [], [m.get("Body") for m in messages])


@expectation
class QueueMessages(Expectation):
    """A queue's messages, peeked without receiving them (so DLQ contents can be asserted)."""

    keyword = "queue"
    name: str
    count: int | None = None
    body: str | None = None
    body_json: dict[str, Any] | None = None
    receive_count: int | None = None

    def check(self, ctx: ScenarioContext) -> None:
        queue = ctx.session.stack.resolve_queue(self.name)
        messages = ctx.session.peek_messages(queue.url)
        bodies = [m.get("Body") for m in messages]
        if self.count is not None and len(messages) != self.count:
            raise fail(
                f"number of messages on {queue.name}", self.count, {"count": len(messages), "bodies": bodies}
            )
        for m in messages:
            if self.body is not None and m.get("Body") != self.body:
                raise fail(f"body of a message on {queue.name}", self.body, m.get("Body"))
            if self.body_json is not None:
                try:
                    doc = json.loads(m.get("Body") or "")
                except json.JSONDecodeError:
                    doc = None
                if not isinstance(doc, dict) or any(doc.get(k) != v for k, v in self.body_json.items()):
                    raise fail(
                        f"JSON body of a message on {queue.name} contains", self.body_json, m.get("Body")
                    )
            if self.receive_count is not None:
                actual = int((m.get("Attributes") or {}).get("ApproximateReceiveCount", -1))
                if actual != self.receive_count:
                    raise fail(
                        f"ApproximateReceiveCount of a message on {queue.name}", self.receive_count, actual
                    )
