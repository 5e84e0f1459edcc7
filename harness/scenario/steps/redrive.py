"""The `redrive` step: move a DLQ's messages back to their source queue."""

from __future__ import annotations

from pydantic import Field

from harness.deploy.stack import Queue
from harness.runtime import dlq as dlqs
from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step


def resolve_queue(ctx: ScenarioContext, name: str) -> Queue:
    """A queue of the stack by name or unique suffix; HarnessError listing the queues otherwise."""
    return dlqs.resolve_queue(ctx.session.stack, name)


def source_of(ctx: ScenarioContext, dlq: Queue) -> Queue:
    """The queue whose redrive policy sends its failures to `dlq`."""
    return dlqs.source_of(ctx.session.stack, dlq)


@step
class Redrive(Step):
    """Move every message of a DLQ (body and attributes kept) back to its source queue (`redrive: X-dlq`).

    The source is the queue whose Terraform redrive policy points at the DLQ, or `to`.
    Each message is sent to the source and then deleted from the DLQ; it starts over with a
    receive count of zero, as with SQS's own DLQ redrive.
    """

    keyword = "redrive"
    shorthand = "dlq"
    dlq: str = Field(min_length=1)
    to: str | None = None
    max_messages: int | None = Field(default=None, ge=1)

    def run(self, ctx: ScenarioContext) -> None:
        stack = ctx.session.stack
        dlq = dlqs.resolve_queue(stack, self.dlq)
        target = dlqs.redrive_target(stack, dlq, dlqs.resolve_queue(stack, self.to) if self.to else None)
        moved = dlqs.move_messages(ctx.session.client("sqs"), dlq, target, self.max_messages)
        ctx.session.timeline.add(
            "redrive",
            ctx.session.clock.iso(),
            dlq=dlq.name,
            to=target.name,
            moved=moved,
            left=ctx.session.queue_depth(dlq.url),
        )
