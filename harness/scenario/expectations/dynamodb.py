"""DynamoDB expectations: `item` (one item by key) and `items` (a Query or Scan, filtered)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import field_validator, model_validator

from harness.scenario import matchers
from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import (
    CountMatcher,
    Matcher,
    expect_match,
    fail,
    plain,
    table_name,
    valid_count,
    valid_matcher,
)
from harness.scenario.vocabulary import Expectation, expectation

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
SHOWN_ITEMS = 50


def to_dynamodb(value: Any) -> Any:
    """A plain (YAML) value as DynamoDB wants it: floats as Decimals, dates as ISO strings."""
    value = plain(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dynamodb(v) for v in value]
    return value


def serialize(mapping: dict[str, Any]) -> dict[str, Any]:
    return {str(k): _SERIALIZER.serialize(to_dynamodb(v)) for k, v in mapping.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    """A low-level DynamoDB item as plain JSON data (numbers as int or float, sets as sorted lists)."""
    return {k: plain(_DESERIALIZER.deserialize(v)) for k, v in item.items()}


def _rank(value: Any) -> tuple[int, float, str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    if isinstance(value, str):
        return (1, 0.0, value)
    return (2, 0.0, json.dumps(value, sort_keys=True, default=str))


def sort_items(items: list[dict[str, Any]], key_names: list[str]) -> list[dict[str, Any]]:
    """Items in key order (numbers numerically), so a Scan's arbitrary order does not matter."""
    return sorted(items, key=lambda item: [_rank(item.get(k)) for k in key_names])


def _client_error(what: str, expected: Any, exc: ClientError) -> Exception:
    error = exc.response.get("Error", {})
    return fail(what, expected, f"{error.get('Code')}: {error.get('Message')}")


def _valid_key(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        if not value:
            raise ValueError("give at least one attribute")
        for attr, inner in value.items():
            if matchers.is_matcher(inner) or isinstance(inner, dict | list):
                raise ValueError(f"{attr}: a key attribute is a plain value (string, number), not {inner!r}")
    return value


@expectation
class DynamoItem(Expectation):
    """One DynamoDB item by its key: that it exists and matches, or that it is absent."""

    keyword = "item"
    table: str
    key: dict[str, Any]
    matches: Matcher = None
    absent: bool = False

    _valid_key = field_validator("key")(_valid_key)
    _valid_matches = field_validator("matches")(valid_matcher)

    @model_validator(mode="after")
    def _absent_alone(self) -> DynamoItem:
        if self.absent and self.matches is not None:
            raise ValueError("`absent: true` asserts there is no item; it cannot be combined with `matches`")
        return self

    def check(self, ctx: ScenarioContext) -> None:
        name = table_name(ctx, self.table)
        where = f"item {json.dumps(self.key, default=str)} of table {name}"
        try:
            response = ctx.session.client("dynamodb").get_item(
                TableName=name, Key=serialize(self.key), ConsistentRead=True
            )
        except ClientError as exc:
            raise _client_error(where, self.key, exc) from None
        raw = response.get("Item")
        item = deserialize(raw) if raw is not None else None
        if self.absent:
            if item is not None:
                raise fail(f"{where} is absent", "no item", item)
            return
        if item is None:
            raise fail(f"{where} exists", self.matches if self.matches is not None else "an item", "no item")
        if self.matches is not None:
            expect_match(where, self.matches, item)


@expectation
class DynamoItems(Expectation):
    """DynamoDB items: a Query by key (equality) or a Scan, filtered client-side, counted and matched.

    Query results come in sort-key order; Scan results are sorted by the table's (or index's) key.
    """

    keyword = "items"
    table: str
    index: str | None = None
    key_condition: dict[str, Any] | None = None
    filter: dict[str, Matcher] | None = None
    count: CountMatcher = None
    matches: Matcher = None

    _valid_key = field_validator("key_condition")(_valid_key)
    _valid_count = field_validator("count")(valid_count)
    _valid_matchers = field_validator("filter", "matches")(valid_matcher)

    def check(self, ctx: ScenarioContext) -> None:
        name = table_name(ctx, self.table)
        where = f"table {name}" + (f" index {self.index}" if self.index else "")
        items = self._read(ctx, name, where)
        if self.filter:
            items = [
                item
                for item in items
                if all(k in item and not matchers.mismatches(v, item[k]) for k, v in self.filter.items())
            ]
        label = f"items of {where}" + (
            f" where {json.dumps(self.key_condition, default=str)}" if self.key_condition else ""
        )
        if self.filter:
            label += f" filtered by {json.dumps(self.filter, default=str)}"
        if self.count is not None:
            expect_match(
                f"number of {label}",
                self.count,
                len(items),
                {"count": len(items), "items": items[:SHOWN_ITEMS]},
            )
        if self.matches is not None:
            expect_match(label, self.matches, items)

    def _read(self, ctx: ScenarioContext, name: str, where: str) -> list[dict[str, Any]]:
        client = ctx.session.client("dynamodb")
        extra: dict[str, Any] = {"IndexName": self.index} if self.index else {}
        try:
            if self.key_condition:
                names = {f"#k{i}": attr for i, attr in enumerate(self.key_condition)}
                values = serialize({f":v{i}": v for i, v in enumerate(self.key_condition.values())})
                condition = " AND ".join(f"#k{i} = :v{i}" for i in range(len(names)))
                pages = client.get_paginator("query").paginate(
                    TableName=name,
                    KeyConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    **extra,
                )
                return [deserialize(item) for page in pages for item in page.get("Items", [])]
            pages = client.get_paginator("scan").paginate(TableName=name, **extra)
            items = [deserialize(item) for page in pages for item in page.get("Items", [])]
            return sort_items(items, self._key_names(client, name))
        except ClientError as exc:
            raise _client_error(where, self.key_condition or "a scan", exc) from None

    def _key_names(self, client: Any, name: str) -> list[str]:
        table = client.describe_table(TableName=name)["Table"]
        schema = table.get("KeySchema", [])
        if self.index:
            for index in [*table.get("GlobalSecondaryIndexes", []), *table.get("LocalSecondaryIndexes", [])]:
                if index.get("IndexName") == self.index:
                    schema = [*index.get("KeySchema", []), *schema]
        ordered = sorted(schema, key=lambda k: k.get("KeyType") != "HASH")
        return list(dict.fromkeys(str(k["AttributeName"]) for k in ordered))
