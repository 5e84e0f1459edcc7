"""Helpers shared by expectations: matcher fields, failure messages, S3 reads, name lookups."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Any

from botocore.exceptions import ClientError
from pydantic import WithJsonSchema
from pydantic_core import PydanticCustomError

from harness.deploy.stack import AmbiguousNameError, UnknownNameError, resolve_name
from harness.errors import ExpectationFailed
from harness.scenario import matchers
from harness.scenario.context import ScenarioContext

#: Expected values: a plain value (compared by equality, element by element) or a matcher.
Matcher = Annotated[
    Any, WithJsonSchema({"description": "an expected value, or a matcher ($regex, $subset, $len, ...)"})
]
#: A number, or a matcher over a number (`{$gte: 1}`).
CountMatcher = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 0}, {"type": "object"}, {"type": "null"}],
            "description": "a number, or a matcher over a number such as {$gte: 1}",
        }
    ),
]


def valid_matcher(value: Any) -> Any:
    """Field validator: the value is a well-formed expected value (MatcherError otherwise)."""
    matchers.validate(value)
    return value


def valid_regex(value: str | None) -> str | None:
    """Field validator: the value, if given, is a regular expression that compiles."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
    return value


def valid_count(value: Any) -> Any:
    """Field validator: a non-negative number or a matcher (`{$gte: 1}`, `{$any_of: [0, 1]}`)."""
    if value is None:
        return value
    if isinstance(value, bool) or not (isinstance(value, int) or matchers.is_matcher(value)):
        raise PydanticCustomError(
            "count_type", "Input should be a number or a matcher like {example}", {"example": "{$gte: 1}"}
        )
    if isinstance(value, int) and value < 0:
        raise matchers.MatcherError(f"a count cannot be negative, got {value}")
    matchers.validate(value)
    return value


def fail(what: str, expected: Any, actual: Any, problems: list[str] | None = None) -> ExpectationFailed:
    """The failure for `what`: expected and actual side by side, mismatches, a diff for JSON."""
    return ExpectationFailed(matchers.render_failure(what, expected, actual, problems))


def expect_match(what: str, expected: Any, actual: Any, shown: Any = None) -> None:
    """Raise a failure when `actual` does not match `expected`; `shown` replaces actual in the text."""
    problems = matchers.mismatches(expected, actual)
    if problems:
        raise fail(what, expected, actual if shown is None else shown, problems)


def plain(value: Any) -> Any:
    """A value as plain JSON data: Decimals to int or float, times to ISO strings, bytes to text."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True, default=str))
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def decode_text(text: Any) -> Any:
    """A message body as JSON when it parses, else the text itself."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode()
        except UnicodeDecodeError:
            return base64.b64encode(bytes(text)).decode()
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def pick_name(kind: str, name: str, names: Iterable[str]) -> str:
    """A name by exact match or unique suffix among `names`; a clear failure otherwise."""
    try:
        return resolve_name(kind, name, {n: n for n in names})
    except UnknownNameError as exc:
        raise fail(f"{kind} {name!r} exists", name, {f"{kind}s": exc.known}) from None
    except AmbiguousNameError as exc:
        raise fail(f"{kind} name {name!r} is unique", name, {"matches": exc.matches}) from None


def resolve_in_stack(kind: str, name: str, resolve: Callable[[str], Any], present: bool) -> Any | None:
    """The stack's resource of that name, None when the stack does not know it (look elsewhere)."""
    if not present:
        return None
    try:
        return resolve(name)
    except AmbiguousNameError as exc:
        raise fail(f"{kind} name {name!r} is unique", name, str(exc)) from None
    except UnknownNameError:
        return None


def table_name(ctx: ScenarioContext, name: str) -> str:
    """A DynamoDB table from the stack (exact or unique suffix), else from the emulator's ListTables."""
    stack = ctx.session.stack
    table = resolve_in_stack("table", name, stack.resolve_table, bool(stack.tables))
    if table is not None:
        return str(table.name)
    names: list[str] = []
    for page in ctx.session.client("dynamodb").get_paginator("list_tables").paginate():
        names.extend(page.get("TableNames", []))
    return pick_name("table", name, names)


def topic_arn(ctx: ScenarioContext, name: str) -> str:
    """An SNS topic's ARN from the stack (exact or unique suffix), else from the emulator's ListTopics."""
    stack = ctx.session.stack
    topic = resolve_in_stack("topic", name, stack.resolve_topic, bool(stack.topics))
    if topic is not None and topic.arn:
        return str(topic.arn)
    arns: dict[str, str] = {}
    for page in ctx.session.client("sns").get_paginator("list_topics").paginate():
        for entry in page.get("Topics", []):
            arns[entry["TopicArn"].rsplit(":", 1)[-1]] = entry["TopicArn"]
    return arns[pick_name("topic", name, arns)]


def list_keys(ctx: ScenarioContext, bucket: str, prefix: str) -> list[str]:
    paginator = ctx.session.client("s3").get_paginator("list_objects_v2")
    keys: list[str] = []
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise fail(f"bucket {bucket} exists", bucket, "no such bucket") from None
        raise
    return sorted(keys)


def read_object(ctx: ScenarioContext, bucket: str, key: str) -> bytes:
    s3 = ctx.session.client("s3")
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        existing = list_keys(ctx, bucket, key.rsplit("/", 1)[0] + "/" if "/" in key else "")
        raise fail(f"object s3://{bucket}/{key} exists", key, existing or "no objects there") from None
    except s3.exceptions.NoSuchBucket:
        raise fail(f"bucket {bucket} exists", bucket, "no such bucket") from None
