"""Helpers shared by expectations: failure messages with expected and actual, S3 reads."""

from __future__ import annotations

import json
from typing import Any

from harness.errors import ExpectationFailed
from harness.scenario.context import ScenarioContext


def fail(what: str, expected: Any, actual: Any) -> ExpectationFailed:
    def show(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, indent=2, default=str, sort_keys=True)

    return ExpectationFailed(f"{what}\n  expected: {show(expected)}\n  actual:   {show(actual)}")


def list_keys(ctx: ScenarioContext, bucket: str, prefix: str) -> list[str]:
    paginator = ctx.session.client("s3").get_paginator("list_objects_v2")
    keys: list[str] = []
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)


def read_object(ctx: ScenarioContext, bucket: str, key: str) -> bytes:
    s3 = ctx.session.client("s3")
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        existing = list_keys(ctx, bucket, key.rsplit("/", 1)[0] + "/" if "/" in key else "")
        raise fail(
            f"object s3://{bucket}/{key} does not exist", key, existing or "no objects there"
        ) from None
