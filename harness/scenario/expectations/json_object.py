"""The `json` expectation: a JSON document stored in S3."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import field_validator

from harness.scenario import matchers
from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import (
    CountMatcher,
    Matcher,
    expect_match,
    fail,
    read_object,
    valid_count,
    valid_matcher,
    valid_regex,
)
from harness.scenario.vocabulary import Expectation, expectation


@expectation
class JsonObject(Expectation):
    """A JSON object in S3: its length, exact value, a subset, or any matcher over the document."""

    keyword = "json"
    bucket: str
    key: str
    length: CountMatcher = None
    equals: Matcher = None
    contains: dict[str, Any] | None = None
    items_match: str | None = None
    matches: Matcher = None

    _valid_length = field_validator("length")(valid_count)
    _valid_matchers = field_validator("equals", "matches")(valid_matcher)

    @field_validator("contains")
    @classmethod
    def _valid_contains(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and matchers.is_matcher(value):
            raise ValueError(
                "`contains` takes a mapping of keys to expected values; use `matches` for a matcher"
            )
        return valid_matcher(value)

    _valid_regex = field_validator("items_match")(valid_regex)

    def check(self, ctx: ScenarioContext) -> None:
        where = f"s3://{self.bucket}/{self.key}"
        raw = read_object(ctx, self.bucket, self.key)
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise fail(f"{where} is JSON", "valid JSON", f"{exc}: {raw[:200]!r}") from None
        if self.length is not None:
            if not isinstance(doc, list | dict | str):
                raise fail(f"length of {where}", self.length, doc, ["the document has no length"])
            expect_match(f"length of {where}", self.length, len(doc), doc)
        if self.equals is not None:
            expect_match(f"content of {where}", self.equals, doc)
        if self.contains is not None:
            problems = (
                [p for k, v in self.contains.items() for p in _key_mismatches(doc, k, v)]
                if isinstance(doc, dict)
                else [f"$: expected a mapping, got {json.dumps(doc)[:200]}"]
            )
            if problems:
                raise fail(f"{where} contains", self.contains, doc, problems)
        if self.items_match is not None:
            pattern = re.compile(self.items_match)
            if not isinstance(doc, list) or any(not pattern.fullmatch(str(i)) for i in doc):
                raise fail(f"items of {where} matching /{self.items_match}/", "all", doc)
        if self.matches is not None:
            expect_match(f"{where} matches", self.matches, doc)


def _key_mismatches(doc: dict[str, Any], key: str, expected: Any) -> list[str]:
    if key not in doc:
        return [f"$: missing key {key!r}"]
    return matchers.mismatches(expected, doc[key], f"$.{key}")
