"""The `save` step: remember a value (an object, a result, an item, a message) for later steps.

Later steps and expectations use it as `${saved.NAME}` or `${saved.NAME.field.0}`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonpath_ng.ext import parse as parse_jsonpath
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.steps.dynamodb import get_item, resolve_table
from harness.scenario.steps.redrive import resolve_queue
from harness.scenario.vocabulary import Step, step

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
SOURCES = ("object", "invocation", "item", "queue_message")


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObjectSource(_Source):
    bucket: str
    key: str
    json_: bool = Field(default=False, alias="json")


class InvocationSource(_Source):
    function: str
    index: int | None = Field(default=None, ge=1)


class ItemSource(_Source):
    table: str
    key: dict[str, Any] = Field(min_length=1)


class QueueMessageSource(_Source):
    queue: str
    index: int = Field(default=1, ge=1)
    json_: bool = Field(default=False, alias="json")


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HarnessError(f"save: {what} is not JSON ({exc}): {text[:200]!r}") from None


@step
class Save(Step):
    """Save a value as `${saved.NAME}`: an object's body, an invocation's result, an item or a queued message.

    Give exactly one of `object` {bucket, key, json}, `invocation` {function, index: 1-based,
    default the last}, `item` {table, key} or `queue_message` {queue, index: 1-based, json}.
    `jsonpath` picks one value out of it (a body is read as JSON for that).
    """

    keyword = "save"
    name: str
    object_: ObjectSource | None = Field(default=None, alias="object")
    invocation: InvocationSource | None = None
    item: ItemSource | None = None
    queue_message: QueueMessageSource | None = None
    jsonpath: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a name: use letters, digits, `_` and `-` (no dots)")
        return value

    @field_validator("jsonpath")
    @classmethod
    def _jsonpath(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_jsonpath(value)
            except Exception as exc:  # noqa: BLE001 - jsonpath-ng raises several types
                raise ValueError(f"invalid JSONPath {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Save:
        given = [s for s in SOURCES if getattr(self, "object_" if s == "object" else s) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(SOURCES)} (got {', '.join(given) or 'none'})")
        return self

    def run(self, ctx: ScenarioContext) -> None:
        source, value = self._read(ctx)
        if self.jsonpath is not None:
            if isinstance(value, str):
                value = _parse_json(value, source)
            found = [m.value for m in parse_jsonpath(self.jsonpath).find(value)]
            if len(found) != 1:
                raise HarnessError(
                    f"save {self.name}: JSONPath {self.jsonpath} selects {len(found)} values in {source}, "
                    f"not exactly one: {json.dumps(found, default=str)[:300]}"
                )
            value = found[0]
        ctx.saved[self.name] = value
        ctx.session.timeline.add(
            "save",
            ctx.session.clock.iso(),
            name=self.name,
            source=source,
            value=json.dumps(value, default=str)[:200],
        )

    def _read(self, ctx: ScenarioContext) -> tuple[str, Any]:
        if self.object_ is not None:
            return self._object(ctx, self.object_)
        if self.invocation is not None:
            return self._invocation(ctx, self.invocation)
        if self.item is not None:
            table = resolve_table(ctx, self.item.table)
            found = get_item(ctx, table, self.item.key)
            if found is None:
                raise HarnessError(f"save {self.name}: no item {json.dumps(self.item.key)} in table {table}")
            return f"item {json.dumps(self.item.key)} of {table}", found
        assert self.queue_message is not None
        return self._queue_message(ctx, self.queue_message)

    def _object(self, ctx: ScenarioContext, ref: ObjectSource) -> tuple[str, Any]:
        where = f"s3://{ref.bucket}/{ref.key}"
        s3 = ctx.session.client("s3")
        try:
            body = s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket):
            raise HarnessError(f"save {self.name}: object {where} does not exist") from None
        text = bytes(body).decode(errors="replace")
        return where, _parse_json(text, where) if ref.json_ else text

    def _invocation(self, ctx: ScenarioContext, ref: InvocationSource) -> tuple[str, Any]:
        runtime = ctx.session.runtime
        if runtime is None:
            raise HarnessError(f"save {self.name}: no functions run in this session")
        try:
            name = ctx.session.stack.resolve_function(ref.function).name
        except KeyError as exc:
            raise HarnessError(str(exc.args[0])) from None
        calls = [i for i in runtime.invocations if i.function == name]
        if not calls or (ref.index is not None and ref.index > len(calls)):
            wanted = "an invocation" if ref.index is None else f"invocation {ref.index}"
            raise HarnessError(f"save {self.name}: {name} has {len(calls)} invocation(s), so no {wanted}")
        index = ref.index or len(calls)
        call = calls[index - 1]
        if not call.ok:
            raise HarnessError(
                f"save {self.name}: invocation {index} of {name} ended with {call.outcome}"
                f" ({call.error_type}: {call.error_message}), so it has no result"
            )
        return f"result of invocation {index} of {name}", call.result

    def _queue_message(self, ctx: ScenarioContext, ref: QueueMessageSource) -> tuple[str, Any]:
        queue = resolve_queue(ctx, ref.queue)
        messages = ctx.session.peek_messages(queue.url)
        if ref.index > len(messages):
            raise HarnessError(
                f"save {self.name}: {queue.name} holds {len(messages)} message(s), so no message {ref.index}"
            )
        where = f"message {ref.index} on {queue.name}"
        body = str(messages[ref.index - 1].get("Body") or "")
        return where, _parse_json(body, where) if ref.json_ else body
