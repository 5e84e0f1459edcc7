"""The `object` expectation: one S3 object, read as text, JSON, CSV or Parquet, or absent."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from botocore.exceptions import ClientError
from pydantic import Field, field_validator, model_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import (
    Matcher,
    expect_match,
    fail,
    plain,
    read_object,
    valid_matcher,
)
from harness.scenario.vocabulary import Expectation, expectation

FORMATS = ("text", "json", "csv", "parquet")


@expectation
class S3Object(Expectation):
    """One S3 object: its content as text, JSON, CSV rows or Parquet rows, or that it does not exist.

    `csv` and `parquet` see a list of rows, each a mapping of column to value (CSV values are
    strings). `exists: false` asserts the object is absent.
    """

    keyword = "object"
    bucket: str
    key: str
    exists: bool = True
    text: Matcher = None
    json_: Matcher = Field(default=None, alias="json")
    csv: Matcher = None
    parquet: Matcher = None

    _valid_matchers = field_validator("text", "json_", "csv", "parquet")(valid_matcher)

    @model_validator(mode="after")
    def _one_format(self) -> S3Object:
        given = [f for f in FORMATS if self.content(f) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of {', '.join(FORMATS)}, not {' and '.join(given)}")
        if given and not self.exists:
            raise ValueError(f"`exists: false` asserts absence; it cannot be combined with `{given[0]}`")
        return self

    def content(self, fmt: str) -> Any:
        return self.json_ if fmt == "json" else getattr(self, fmt)

    def check(self, ctx: ScenarioContext) -> None:
        where = f"s3://{self.bucket}/{self.key}"
        if not self.exists:
            try:
                head = ctx.session.client("s3").head_object(Bucket=self.bucket, Key=self.key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchBucket"):
                    return
                raise
            raise fail(
                f"{where} does not exist",
                "no object",
                {"key": self.key, "size": head.get("ContentLength"), "etag": head.get("ETag")},
            )
        raw = read_object(ctx, self.bucket, self.key)
        fmt = next((f for f in FORMATS if self.content(f) is not None), None)
        if fmt is None:
            return
        actual = decode_object(raw, fmt, where)
        expect_match(f"{fmt} content of {where}", self.content(fmt), actual)


def decode_object(raw: bytes, fmt: str, where: str = "the object") -> Any:
    """An object's bytes as `fmt`: text, a JSON document, CSV rows or Parquet rows."""
    if fmt == "parquet":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        try:
            return plain(pq.read_table(io.BytesIO(raw)).to_pylist())
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several error types
            raise fail(f"{where} is Parquet", "a Parquet file", f"{type(exc).__name__}: {exc}") from None
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise fail(f"{where} is UTF-8 text", "text", f"{exc}: {raw[:100]!r}") from None
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise fail(f"{where} is JSON", "valid JSON", f"{exc}: {text[:200]!r}") from None
    if fmt == "csv":
        return [dict(row) for row in csv.DictReader(io.StringIO(text, newline=""))]
    return text
