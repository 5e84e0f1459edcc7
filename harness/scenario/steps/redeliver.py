"""The `redeliver` step: deliver an earlier invocation's messages again."""

from __future__ import annotations

from pydantic import Field

from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step


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
