"""Queue expectations, peeked without receiving: `queue` and `queue_empty`."""

from __future__ import annotations

import base64
from typing import Any

from pydantic import field_validator

from harness.scenario import matchers
from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import (
    CountMatcher,
    Matcher,
    decode_text,
    expect_match,
    fail,
    valid_count,
    valid_matcher,
)
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
    """A queue's messages, peeked without receiving them (so DLQ contents can be asserted).

    `body`, `body_json`, `receive_count` and `attributes` apply to every message; `messages`
    matches the list of all bodies (JSON-decoded where they parse). `attributes` sees each
    message's system attributes (ApproximateReceiveCount, SentTimestamp, ...) merged with its
    message attributes (by name, as their value); a plain mapping names only the attributes
    it checks (others are ignored), a matcher sees them all.
    """

    keyword = "queue"
    name: str
    count: CountMatcher = None
    body: Matcher = None
    body_json: dict[str, Any] | None = None
    receive_count: CountMatcher = None
    attributes: Matcher = None
    messages: Matcher = None

    _valid_counts = field_validator("count", "receive_count")(valid_count)
    _valid_matchers = field_validator("body", "body_json", "messages")(valid_matcher)

    @field_validator("attributes")
    @classmethod
    def _valid_attributes(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise ValueError("`attributes` is a mapping of attribute names, or a matcher")
        return valid_matcher(value)

    def check(self, ctx: ScenarioContext) -> None:
        queue = ctx.session.stack.resolve_queue(self.name)
        messages = ctx.session.peek_messages(queue.url)
        bodies = [m.get("Body") for m in messages]
        if self.count is not None:
            expect_match(
                f"number of messages on {queue.name}",
                self.count,
                len(messages),
                {"count": len(messages), "bodies": bodies},
            )
        if self.messages is not None:
            expect_match(f"messages on {queue.name}", self.messages, [decode_text(b) for b in bodies])
        for m in messages:
            body = m.get("Body")
            if self.body is not None:
                expect_match(f"body of a message on {queue.name}", self.body, body)
            if self.body_json is not None:
                doc = decode_text(body or "")
                problems = (
                    [
                        p
                        for k, v in self.body_json.items()
                        for p in (
                            matchers.mismatches(v, doc[k], f"$.{k}")
                            if k in doc
                            else [f"$: missing key {k!r}"]
                        )
                    ]
                    if isinstance(doc, dict)
                    else [f"$: the body is not a JSON object: {str(body)[:200]}"]
                )
                if problems:
                    raise fail(
                        f"JSON body of a message on {queue.name} contains", self.body_json, body, problems
                    )
            if self.receive_count is not None:
                actual = int((m.get("Attributes") or {}).get("ApproximateReceiveCount", -1))
                expect_match(
                    f"ApproximateReceiveCount of a message on {queue.name}", self.receive_count, actual
                )
            if self.attributes is not None:
                expected = (
                    self.attributes if matchers.is_matcher(self.attributes) else {"$subset": self.attributes}
                )
                attrs = message_attributes(m)
                problems = matchers.mismatches(expected, attrs)
                if problems:
                    raise fail(
                        f"attributes of a message on {queue.name}",
                        self.attributes,
                        attrs,
                        problems,
                    )


NUMERIC_SYSTEM_ATTRIBUTES = {"ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp"}


def message_attributes(message: dict[str, Any]) -> dict[str, Any]:
    """System attributes (counts and timestamps as numbers) merged with message attributes."""
    flat: dict[str, Any] = {
        str(k): int(v) if k in NUMERIC_SYSTEM_ATTRIBUTES and str(v).isdigit() else v
        for k, v in (message.get("Attributes") or {}).items()
    }
    raw = message.get("MessageAttributes") or message.get("MessageAttribute") or {}
    if isinstance(raw, dict) and "Name" in raw and "Value" in raw:
        raw = [raw]
    if isinstance(raw, list):  # the XML-shaped listing some emulators return
        raw = {a.get("Name"): a.get("Value") or {} for a in raw if isinstance(a, dict)}
    for name, value in raw.items():
        flat[str(name)] = attribute_value(value)
    return flat


def attribute_value(value: Any) -> Any:
    """One SQS/SNS message attribute as a plain value: numbers as numbers, binary as base64."""
    if not isinstance(value, dict):
        return value
    kind = str(value.get("DataType") or value.get("Type") or "String")
    if "StringValue" in value or "Value" in value:
        text = value.get("StringValue", value.get("Value"))
        if kind.startswith("Number") and isinstance(text, str):
            for number in (int, float):
                try:
                    return number(text)
                except ValueError:
                    pass
        return text
    if "BinaryValue" in value:
        data = value["BinaryValue"]
        return base64.b64encode(data).decode() if isinstance(data, bytes | bytearray) else data
    return value
