"""DynamoDB steps: `put_item` and `update_item`, with items written as plain JSON."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import Field

from harness.deploy.stack import resolve_name
from harness.errors import ExpectationFailed, HarnessError
from harness.report.subjects import subjects
from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step


def resolve_table(ctx: ScenarioContext, name: str) -> str:
    """A table by exact name, or by a unique name suffix among the emulator's tables."""
    client = ctx.session.client("dynamodb")
    tables: list[str] = []
    for page in client.get_paginator("list_tables").paginate():
        tables.extend(page.get("TableNames", []))
    try:
        return resolve_name("DynamoDB table", name, {t: t for t in tables}, where="in the emulator")
    except KeyError as exc:
        raise HarnessError(str(exc)) from None


def _decimals(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


def to_dynamodb(item: dict[str, Any]) -> dict[str, Any]:
    """A plain JSON mapping as DynamoDB attribute values (floats become numbers via Decimal)."""
    serializer = TypeSerializer()
    try:
        return {str(k): serializer.serialize(_decimals(v)) for k, v in item.items()}
    except (TypeError, ValueError) as exc:
        raise HarnessError(f"cannot store {item!r} in DynamoDB: {exc}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, Binary):
        return bytes(value.value).decode(errors="replace")  # type: ignore[attr-defined]
    return value


def from_dynamodb(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values as plain JSON (whole numbers int, others float, sets sorted lists)."""
    deserializer = TypeDeserializer()
    return {k: _plain(deserializer.deserialize(v)) for k, v in item.items()}


def get_item(ctx: ScenarioContext, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The item with this key as plain JSON, or None; consistent read."""
    try:
        found = ctx.session.client("dynamodb").get_item(
            TableName=table, Key=to_dynamodb(key), ConsistentRead=True
        )
    except ClientError as exc:
        raise HarnessError(f"reading {json.dumps(key)} from {table}: {exc}") from None
    return from_dynamodb(found["Item"]) if "Item" in found else None


@step
class PutItem(Step):
    """Write an item to a DynamoDB table (a plain JSON mapping; the table by name or unique suffix)."""

    keyword = "put_item"
    table: str
    item: dict[str, Any]

    def run(self, ctx: ScenarioContext) -> None:
        table = resolve_table(ctx, self.table)
        try:
            ctx.session.client("dynamodb").put_item(TableName=table, Item=to_dynamodb(self.item))
        except ClientError as exc:
            raise HarnessError(f"put_item into {table}: {exc}") from None
        ctx.session.timeline.add(
            "put_item",
            ctx.session.clock.iso(),
            table=table,
            attributes=len(self.item),
            subjects=subjects(self.item),  # so an invariant violation can say where an item was seen
        )


@step
class UpdateItem(Step):
    """Set attributes of a DynamoDB item, optionally only if some attributes have given values now.

    `condition` maps attribute names to the value each must have; `null` means the attribute
    must not exist. When it does not hold the step fails showing the current item.
    """

    keyword = "update_item"
    table: str
    key: dict[str, Any] = Field(min_length=1)
    set_: dict[str, Any] = Field(alias="set", min_length=1)
    condition: dict[str, Any] | None = None

    def run(self, ctx: ScenarioContext) -> None:
        table = resolve_table(ctx, self.table)
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        updates = []
        for i, (attr, value) in enumerate(self.set_.items()):
            names[f"#s{i}"] = attr
            values[f":s{i}"] = value
            updates.append(f"#s{i} = :s{i}")
        request: dict[str, Any] = {"UpdateExpression": "SET " + ", ".join(updates)}
        if self.condition:
            clauses = []
            for i, (attr, expected) in enumerate(self.condition.items()):
                names[f"#c{i}"] = attr
                if expected is None:
                    clauses.append(f"attribute_not_exists(#c{i})")
                else:
                    values[f":c{i}"] = expected
                    clauses.append(f"#c{i} = :c{i}")
            request["ConditionExpression"] = " AND ".join(clauses)
        client = ctx.session.client("dynamodb")
        try:
            client.update_item(
                TableName=table,
                Key=to_dynamodb(self.key),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_dynamodb(values),
                **request,
            )
        except client.exceptions.ConditionalCheckFailedException:
            current = get_item(ctx, table, self.key)
            raise ExpectationFailed(
                f"update_item on {table} {json.dumps(self.key)}: the condition did not hold\n"
                f"  expected: {json.dumps(self.condition, default=str)}\n"
                f"  actual:   {json.dumps(current, default=str) if current else 'no such item'}"
            ) from None
        except ClientError as exc:
            raise HarnessError(f"update_item on {table}: {exc}") from None
        ctx.session.timeline.add(
            "update_item",
            ctx.session.clock.iso(),
            table=table,
            key=self.key,
            set=sorted(self.set_),
            conditional=bool(self.condition),
        )
