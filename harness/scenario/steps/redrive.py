"""The `redrive` step: move a DLQ's messages back to their source queue."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from harness.deploy.stack import Queue
from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step


def resolve_queue(ctx: ScenarioContext, name: str) -> Queue:
    """A queue of the stack by name or unique suffix; HarnessError listing the queues otherwise."""
    try:
        return ctx.session.stack.resolve_queue(name)
    except KeyError as exc:
        raise HarnessError(str(exc.args[0])) from None


def source_of(ctx: ScenarioContext, dlq: Queue) -> Queue:
    """The queue whose redrive policy sends its failures to `dlq`."""
    sources = [
        q
        for q in ctx.session.stack.queues.values()
        if q.redrive is not None and q.redrive.dead_letter_target_arn == dlq.arn
    ]
    if len(sources) == 1:
        return sources[0]
    if not sources:
        raise HarnessError(
            f"redrive: no queue of the stack has {dlq.name} as its dead-letter queue",
            hint="name the queue to move the messages to with `to:`",
        )
    names = ", ".join(sorted(q.name for q in sources))
    raise HarnessError(
        f"redrive: several queues send failures to {dlq.name} ({names})", hint="choose one with `to:`"
    )


def _attributes(message: dict[str, Any]) -> dict[str, Any]:
    """Message attributes as SendMessage takes them (receive also returns empty list fields)."""
    kept: dict[str, Any] = {}
    for name, attr in (message.get("MessageAttributes") or {}).items():
        value = {"DataType": attr["DataType"]}
        for field in ("StringValue", "BinaryValue"):
            if field in attr:
                value[field] = attr[field]
        kept[name] = value
    return kept


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
        dlq = resolve_queue(ctx, self.dlq)
        target = resolve_queue(ctx, self.to) if self.to else source_of(ctx, dlq)
        if target.arn == dlq.arn:
            raise HarnessError(f"redrive: {dlq.name} cannot be redriven into itself")
        sqs = ctx.session.client("sqs")
        limit = self.max_messages
        moved = 0
        while limit is None or moved < limit:
            batch = 10 if limit is None else min(10, limit - moved)
            messages = sqs.receive_message(
                QueueUrl=dlq.url,
                MaxNumberOfMessages=batch,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
                VisibilityTimeout=60,
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                extra: dict[str, Any] = {}
                if target.fifo:
                    system = message.get("Attributes") or {}
                    extra["MessageGroupId"] = system.get("MessageGroupId", "redrive")
                    extra["MessageDeduplicationId"] = system.get(
                        "MessageDeduplicationId", message["MessageId"]
                    )
                sqs.send_message(
                    QueueUrl=target.url,
                    MessageBody=message["Body"],
                    MessageAttributes=_attributes(message),
                    **extra,
                )
                sqs.delete_message(QueueUrl=dlq.url, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
        ctx.session.timeline.add(
            "redrive",
            ctx.session.clock.iso(),
            dlq=dlq.name,
            to=target.name,
            moved=moved,
            left=ctx.session.queue_depth(dlq.url),
        )
