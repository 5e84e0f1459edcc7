"""What a scenario can assert: objects, JSON documents, queue (and DLQ) contents, invocations."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from harness.errors import ExpectationFailed
from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Expectation, expectation


def _fail(what: str, expected: Any, actual: Any) -> ExpectationFailed:
    def show(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, indent=2, default=str, sort_keys=True)

    return ExpectationFailed(f"{what}\n  expected: {show(expected)}\n  actual:   {show(actual)}")


def _list_keys(ctx: ScenarioContext, bucket: str, prefix: str) -> list[str]:
    paginator = ctx.session.client("s3").get_paginator("list_objects_v2")
    keys: list[str] = []
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)


def _read(ctx: ScenarioContext, bucket: str, key: str) -> bytes:
    s3 = ctx.session.client("s3")
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        existing = _list_keys(ctx, bucket, key.rsplit("/", 1)[0] + "/" if "/" in key else "")
        raise _fail(
            f"object s3://{bucket}/{key} does not exist", key, existing or "no objects there"
        ) from None


@expectation
class Objects(Expectation):
    """Objects under a prefix: how many, their names, their content."""

    keyword = "objects"
    bucket: str
    prefix: str = ""
    count: int | None = None
    names_match: str | None = None
    body: str | None = None

    def check(self, ctx: ScenarioContext) -> None:
        keys = _list_keys(ctx, self.bucket, self.prefix)
        where = f"s3://{self.bucket}/{self.prefix}"
        if self.count is not None and len(keys) != self.count:
            raise _fail(f"number of objects under {where}", self.count, {"count": len(keys), "keys": keys})
        if self.names_match is not None:
            pattern = re.compile(self.names_match)
            bad = [k for k in keys if not pattern.fullmatch(k)]
            if bad:
                raise _fail(f"object names under {where} matching /{self.names_match}/", "all", bad)
        if self.body is not None:
            for key in keys:
                body = _read(ctx, self.bucket, key).decode(errors="replace")
                if body != self.body:
                    raise _fail(f"body of s3://{self.bucket}/{key}", self.body, body)


@expectation
class JsonObject(Expectation):
    """A JSON object in S3: its length, exact value, or that it contains a subset."""

    keyword = "json"
    bucket: str
    key: str
    length: int | None = None
    equals: Any = None
    contains: dict[str, Any] | None = None
    items_match: str | None = None

    def check(self, ctx: ScenarioContext) -> None:
        raw = _read(ctx, self.bucket, self.key)
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _fail(
                f"s3://{self.bucket}/{self.key} is JSON", "valid JSON", f"{exc}: {raw[:200]!r}"
            ) from None
        if self.length is not None and (not hasattr(doc, "__len__") or len(doc) != self.length):
            raise _fail(f"length of s3://{self.bucket}/{self.key}", self.length, doc)
        if self.equals is not None and doc != self.equals:
            raise _fail(f"content of s3://{self.bucket}/{self.key}", self.equals, doc)
        if self.contains is not None:
            missing = {k: v for k, v in self.contains.items() if not isinstance(doc, dict) or doc.get(k) != v}
            if missing:
                raise _fail(f"s3://{self.bucket}/{self.key} contains", self.contains, doc)
        if self.items_match is not None:
            pattern = re.compile(self.items_match)
            items = doc if isinstance(doc, list) else []
            if not isinstance(doc, list) or any(not pattern.fullmatch(str(i)) for i in items):
                raise _fail(
                    f"items of s3://{self.bucket}/{self.key} matching /{self.items_match}/", "all", doc
                )


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
            raise _fail(f"queue {queue.name} is empty", [], [m.get("Body") for m in messages])


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
            raise _fail(
                f"number of messages on {queue.name}", self.count, {"count": len(messages), "bodies": bodies}
            )
        for m in messages:
            if self.body is not None and m.get("Body") != self.body:
                raise _fail(f"body of a message on {queue.name}", self.body, m.get("Body"))
            if self.body_json is not None:
                try:
                    doc = json.loads(m.get("Body") or "")
                except json.JSONDecodeError:
                    doc = None
                if not isinstance(doc, dict) or any(doc.get(k) != v for k, v in self.body_json.items()):
                    raise _fail(
                        f"JSON body of a message on {queue.name} contains", self.body_json, m.get("Body")
                    )
            if self.receive_count is not None:
                actual = int((m.get("Attributes") or {}).get("ApproximateReceiveCount", -1))
                if actual != self.receive_count:
                    raise _fail(
                        f"ApproximateReceiveCount of a message on {queue.name}", self.receive_count, actual
                    )


@expectation
class Invocations(Expectation):
    """How many times a function ran, optionally only those with a given outcome."""

    keyword = "invocations"
    function: str
    count: int
    outcome: Literal["success", "error", "timeout", "crash", "failed"] | None = None

    def check(self, ctx: ScenarioContext) -> None:
        runtime = ctx.session.runtime
        assert runtime is not None
        name = ctx.session.stack.resolve_function(self.function).name
        calls = [i for i in runtime.invocations if i.function == name]
        if self.outcome == "failed":
            selected = [i for i in calls if not i.ok]
        elif self.outcome is not None:
            selected = [i for i in calls if i.outcome == self.outcome]
        else:
            selected = calls
        if len(selected) != self.count:
            label = f" with outcome {self.outcome}" if self.outcome else ""
            raise _fail(
                f"invocations of {name}{label}",
                self.count,
                {"count": len(selected), "all": [f"#{i.seq} {i.outcome} via {i.source}" for i in calls]},
            )
