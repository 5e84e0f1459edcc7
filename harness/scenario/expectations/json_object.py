"""The `json` expectation: a JSON document stored in S3."""

from __future__ import annotations

import json
import re
from typing import Any

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import fail, read_object
from harness.scenario.vocabulary import Expectation, expectation


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
        raw = read_object(ctx, self.bucket, self.key)
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise fail(
                f"s3://{self.bucket}/{self.key} is JSON", "valid JSON", f"{exc}: {raw[:200]!r}"
            ) from None
        if self.length is not None and (not hasattr(doc, "__len__") or len(doc) != self.length):
            raise fail(f"length of s3://{self.bucket}/{self.key}", self.length, doc)
        if self.equals is not None and doc != self.equals:
            raise fail(f"content of s3://{self.bucket}/{self.key}", self.equals, doc)
        if self.contains is not None:
            missing = {k: v for k, v in self.contains.items() if not isinstance(doc, dict) or doc.get(k) != v}
            if missing:
                raise fail(f"s3://{self.bucket}/{self.key} contains", self.contains, doc)
        if self.items_match is not None:
            pattern = re.compile(self.items_match)
            items = doc if isinstance(doc, list) else []
            if not isinstance(doc, list) or any(not pattern.fullmatch(str(i)) for i in items):
                raise fail(
                    f"items of s3://{self.bucket}/{self.key} matching /{self.items_match}/", "all", doc
                )
