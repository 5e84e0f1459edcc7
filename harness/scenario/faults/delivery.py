"""The `delivery` fault: at-least-once delivery made visible on an SQS-triggered function.

`duplicate` loses the delete after a successful invocation, so SQS hands the same message
out again; `reorder` reverses a received batch; `delay` puts a batch back invisible for a
while before it is handled. `count` is how many messages (batches for reorder and delay)
are affected, from the first; `all` affects every one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.chaos.delivery import DeliveryRule
from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.durations import parse_duration
from harness.scenario.vocabulary import Fault, fault


@fault
class Delivery(Fault):
    """Duplicate, reorder or delay the messages an SQS event-source mapping delivers."""

    keyword = "delivery"
    queue: str
    action: Literal["duplicate", "reorder", "delay"]
    count: int | Literal["all"] = Field(default=1)
    delay: str | float = "2s"

    def install(self, ctx: ScenarioContext) -> None:
        session = ctx.session
        queue = session.stack.resolve_queue(self.queue)
        mapping = next((m for m in session.mappings if m.queue.name == queue.name), None)
        if mapping is None:
            consumed = ", ".join(sorted(m.queue.name for m in session.mappings)) or "none"
            raise HarnessError(
                f"delivery: no function reads queue {queue.name} (queues with a Lambda trigger: {consumed})"
            )
        if isinstance(self.count, int) and self.count < 1:
            raise HarnessError("delivery: count is a number from 1, or `all`")
        rule = DeliveryRule(
            queue=queue.name,
            action=self.action,
            count=None if self.count == "all" else self.count,
            delay_s=parse_duration(self.delay).total_seconds(),
        )
        session.delivery_faults.add(rule)
        session.timeline.add(
            "fault",
            session.clock.iso(),
            fault=self.keyword,
            queue=queue.name,
            action=self.action,
            count=self.count,
        )
