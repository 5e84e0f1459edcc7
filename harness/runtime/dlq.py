"""Dead-letter queues of a stack: which queues they are, what they hold, moving messages back.

One implementation serves the `redrive` scenario step and `harness dlq` (list, show and
redrive against the stack `harness up` keeps running):

- `dead_letter_queues` finds every queue of the stack that some other queue's redrive policy
  names as its `deadLetterTargetArn`, with its depth and its source queues;
- `peek` lists a queue's messages without receiving them (the emulator's side-effect-free
  listing: the harness's moto route or LocalStack's `/_aws/sqs/messages`), so receive counts
  stay as they are; only where neither answers does it receive with a short visibility and
  hand the messages straight back;
- `redrive` moves messages to the source queue (or another one), each sent before it is
  deleted, so an interrupted redrive duplicates at most a batch and never loses a message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.deploy.stack import Queue, RedrivePolicy, Stack
from harness.errors import HarnessError

#: The queue attributes behind a depth, in the order `DlqInfo` reports them.
DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
#: Seconds a message received by a move stays hidden: a crash between send and delete makes
#: it visible again on the DLQ after this (a duplicate on the target, never a loss).
MOVE_VISIBILITY = 60
#: Seconds a message received by the fallback peek stays hidden before it is handed back.
PEEK_VISIBILITY = 30


@dataclass(frozen=True)
class DlqInfo:
    """A dead-letter queue of the stack, the queues that send it their failures, its depth."""

    queue: Queue
    sources: tuple[Queue, ...]
    visible: int
    not_visible: int
    delayed: int = 0
    #: False when the queue is in the Terraform state but not in the emulator.
    present: bool = True

    @property
    def name(self) -> str:
        return self.queue.name

    @property
    def depth(self) -> int:
        return self.visible + self.not_visible + self.delayed

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.queue.url,
            "arn": self.queue.arn,
            "present": self.present,
            "messages": self.visible,
            "not_visible": self.not_visible,
            "delayed": self.delayed,
            "sources": [
                {
                    "name": s.name,
                    "max_receive_count": s.redrive.max_receive_count if s.redrive else None,
                }
                for s in self.sources
            ],
        }


# -- queues ---------------------------------------------------------------------------------


def resolve_queue(stack: Stack, name: str) -> Queue:
    """A queue of the stack by name or unique suffix; HarnessError listing the candidates otherwise."""
    try:
        return stack.resolve_queue(name)
    except KeyError as exc:
        raise HarnessError(str(exc.args[0])) from None


def sources_of(stack: Stack, dlq: Queue) -> list[Queue]:
    """The queues whose redrive policy sends their failures to `dlq`, by name."""
    return sorted(
        (
            q
            for q in stack.queues.values()
            if q.redrive is not None and q.redrive.dead_letter_target_arn == dlq.arn
        ),
        key=lambda q: q.name,
    )


def source_of(stack: Stack, dlq: Queue, *, option: str = "`to:`") -> Queue:
    """The one queue whose redrive policy sends its failures to `dlq`.

    `option` names the way to choose a target instead in the error hints (`to:` in a
    scenario, `--to` on the command line).
    """
    sources = sources_of(stack, dlq)
    if len(sources) == 1:
        return sources[0]
    if not sources:
        raise HarnessError(
            f"redrive: no queue of the stack has {dlq.name} as its dead-letter queue",
            hint=f"name the queue to move the messages to with {option}",
        )
    names = ", ".join(q.name for q in sources)
    raise HarnessError(
        f"redrive: several queues send failures to {dlq.name} ({names})", hint=f"choose one with {option}"
    )


def redrive_target(stack: Stack, dlq: Queue, to: Queue | None = None, *, option: str = "`to:`") -> Queue:
    """Where a redrive of `dlq` sends its messages: `to`, else the source from the redrive policy."""
    target = to if to is not None else source_of(stack, dlq, option=option)
    if target.arn == dlq.arn:
        raise HarnessError(f"redrive: {dlq.name} cannot be redriven into itself")
    return target


def queue_counts(sqs: Any, url: str) -> dict[str, int]:
    """The queue's visible, in-flight and delayed message counts (`DEPTH_ATTRIBUTES`)."""
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(DEPTH_ATTRIBUTES))["Attributes"]
    return {name: int(attrs.get(name, 0)) for name in DEPTH_ATTRIBUTES}


def dead_letter_queues(stack: Stack, sqs: Any) -> list[DlqInfo]:
    """Every queue of the stack that another queue's redrive policy targets, with its depth, by name."""
    infos: list[DlqInfo] = []
    targets = {q.redrive.dead_letter_target_arn for q in stack.queues.values() if q.redrive is not None}
    for queue in sorted(stack.queues.values(), key=lambda q: q.name):
        if queue.arn not in targets:
            continue
        sources = tuple(s for s in sources_of(stack, queue) if s.arn != queue.arn)
        if not sources:  # only its own: not some *other* queue's DLQ
            continue
        try:
            counts = queue_counts(sqs, queue.url)
        except sqs.exceptions.QueueDoesNotExist:
            infos.append(DlqInfo(queue, sources, 0, 0, 0, present=False))
            continue
        visible, not_visible, delayed = (counts[name] for name in DEPTH_ATTRIBUTES)
        infos.append(DlqInfo(queue, sources, visible, not_visible, delayed))
    return infos


def stack_from_emulator(sqs: Any) -> Stack:
    """A stack holding the emulator's queues (with their redrive policies), for when no
    Terraform state is at hand (`harness up --services-only`, a bare `--endpoint`)."""
    stack = Stack()
    urls: list[str] = []
    for page in sqs.get_paginator("list_queues").paginate():
        urls.extend(page.get("QueueUrls", []))
    for url in urls:
        try:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        except sqs.exceptions.QueueDoesNotExist:  # deleted since the listing
            continue
        name = url.rstrip("/").rsplit("/", 1)[-1]
        policy = json.loads(attrs["RedrivePolicy"]) if attrs.get("RedrivePolicy") else None
        stack.queues[name] = Queue(
            name=name,
            arn=attrs.get("QueueArn", ""),
            url=url,
            visibility_timeout=int(attrs.get("VisibilityTimeout", 30)),
            redrive=RedrivePolicy(policy["deadLetterTargetArn"], int(policy["maxReceiveCount"]))
            if policy
            else None,
            fifo=attrs.get("FifoQueue", "false").lower() == "true" or name.endswith(".fifo"),
            address="",
        )
    return stack


# -- peeking --------------------------------------------------------------------------------


def listing_address(endpoint_url: str, backend: str, url: str) -> str:
    """The emulator's side-effect-free listing of a queue's messages (visible and in flight)."""
    quoted = urllib.parse.quote(url, safe="")
    base = endpoint_url.rstrip("/")
    if backend == "moto":
        return f"{base}/moto-api/harness/sqs-messages?QueueUrl={quoted}"
    return f"{base}/_aws/sqs/messages?QueueUrl={quoted}&ShowInvisible=true&ShowDelayed=true"


def _named_pairs(raw: Any) -> dict[str, Any] | None:
    """`[{"Name": n, "Value": v}, ...]` (the query protocol's shape) as `{n: v}`; None otherwise."""
    if isinstance(raw, dict) and "Name" in raw and "Value" in raw:
        raw = [raw]
    if isinstance(raw, list):
        return {str(a["Name"]): a["Value"] for a in raw if isinstance(a, dict) and "Name" in a}
    return None


def peek_messages(
    endpoint_url: str, backend: str, url: str, *, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """A queue's messages without receiving them (so receive counts stay untouched).

    `backend` is "moto" (the harness's moto server, `harness.services.moto_fixes`) or
    "localstack". Messages come as ReceiveMessage shows them: `Attributes` and
    `MessageAttributes` are dicts whichever shape the emulator answered in.
    """
    request = urllib.request.Request(
        listing_address(endpoint_url, backend, url), headers={"Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data = json.loads(response.read())
    if isinstance(data, dict) and "Messages" in data:
        return list(data["Messages"])
    if not isinstance(data, dict) or "ReceiveMessageResponse" not in data:
        raise ValueError(f"not a message listing: {str(data)[:200]}")
    result = data.get("ReceiveMessageResponse", {}).get("ReceiveMessageResult") or {}
    messages = result.get("Message") or []
    messages = messages if isinstance(messages, list) else [messages]
    for m in messages:
        attrs = _named_pairs(m.get("Attribute") or [])
        if attrs is not None:
            m["Attributes"] = attrs
        if "MessageAttributes" not in m and "MessageAttribute" in m:
            m["MessageAttributes"] = _named_pairs(m["MessageAttribute"]) or {}
    return messages


def _sent_at(message: dict[str, Any]) -> int:
    value = str((message.get("Attributes") or {}).get("SentTimestamp", "0"))
    return int(value) if value.isdigit() else 0


def peek(sqs: Any, url: str, limit: int | None = None, *, backend: str | None = None) -> list[dict[str, Any]]:
    """Up to `limit` messages of a queue, oldest first, without consuming any.

    Uses the emulator's listing (`backend`, or whichever of moto's and LocalStack's answers),
    which leaves receive counts alone and includes in-flight messages. Where neither answers
    (a plain moto server, AWS itself), it receives with a short visibility and makes every
    message visible again at once: nothing is consumed, but each receive count goes up by one
    and in-flight messages are not seen.
    """
    endpoint = str(sqs.meta.endpoint_url)
    for candidate in [backend] if backend else ["moto", "localstack"]:
        try:
            messages = peek_messages(endpoint, candidate, url)
        except urllib.error.HTTPError:  # no such route on this emulator
            continue
        except ValueError:  # answered, but not with the listing (an S3 error page, say)
            continue
        except OSError as exc:  # URLError included: refused, reset, timed out
            reason = getattr(exc, "reason", exc)
            raise HarnessError(f"the emulator at {endpoint} does not answer: {reason}") from None
        messages.sort(key=_sent_at)
        return messages if limit is None else messages[:limit]
    return _peek_by_receiving(sqs, url, limit)


def _peek_by_receiving(sqs: Any, url: str, limit: int | None) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    try:
        while limit is None or len(seen) < limit:
            batch = 10 if limit is None else min(10, limit - len(seen))
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=batch,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
                VisibilityTimeout=PEEK_VISIBILITY,
            ).get("Messages", [])
            if not messages:
                break
            for m in messages:
                handles.append(m["ReceiptHandle"])
                seen.setdefault(m["MessageId"], m)
    finally:
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles[start : start + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
    return sorted(seen.values(), key=_sent_at)


# -- redriving ------------------------------------------------------------------------------


def send_attributes(message: dict[str, Any]) -> dict[str, Any]:
    """Message attributes as SendMessage takes them (receive also returns empty list fields)."""
    kept: dict[str, Any] = {}
    for name, attr in (message.get("MessageAttributes") or {}).items():
        value = {"DataType": attr["DataType"]}
        for field in ("StringValue", "BinaryValue"):
            if field in attr:
                value[field] = attr[field]
        kept[name] = value
    return kept


def move_messages(
    sqs: Any,
    source: Queue,
    target: Queue,
    limit: int | None = None,
    *,
    on_moved: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Move up to `limit` (default: all) messages from `source` to `target`; returns how many.

    Each is sent (body and message attributes kept) before it is deleted; it starts over on
    the target with a receive count of zero, as with SQS's own DLQ redrive. `on_moved` sees
    each message (as received) once it is on the target and off the source.
    """
    moved = 0
    while limit is None or moved < limit:
        batch = 10 if limit is None else min(10, limit - moved)
        messages = sqs.receive_message(
            QueueUrl=source.url,
            MaxNumberOfMessages=batch,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            VisibilityTimeout=MOVE_VISIBILITY,
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            extra: dict[str, Any] = {}
            if target.fifo:
                system = message.get("Attributes") or {}
                extra["MessageGroupId"] = system.get("MessageGroupId", "redrive")
                extra["MessageDeduplicationId"] = system.get("MessageDeduplicationId", message["MessageId"])
            sqs.send_message(
                QueueUrl=target.url,
                MessageBody=message["Body"],
                MessageAttributes=send_attributes(message),
                **extra,
            )
            sqs.delete_message(QueueUrl=source.url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
            if on_moved is not None:
                on_moved(message)
    return moved


def redrive(
    sqs: Any,
    stack: Stack,
    dlq: Queue | str,
    to: Queue | str | None = None,
    limit: int | None = None,
    *,
    option: str = "`to:`",
    on_moved: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Move a DLQ's messages back to its source queue (from the redrive policies) or to `to`.

    Queues may be given by name or unique suffix; `option` is how the caller names `to` in
    error hints. Returns how many messages moved.
    """
    queue = resolve_queue(stack, dlq) if isinstance(dlq, str) else dlq
    target_queue = resolve_queue(stack, to) if isinstance(to, str) else to
    target = redrive_target(stack, queue, target_queue, option=option)
    return move_messages(sqs, queue, target, limit, on_moved=on_moved)
