"""The `objects` expectation: objects under a prefix."""

from __future__ import annotations

import re
from typing import Any

from pydantic import field_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import (
    CountMatcher,
    Matcher,
    expect_match,
    fail,
    list_keys,
    read_object,
    valid_count,
    valid_matcher,
    valid_regex,
)
from harness.scenario.vocabulary import Expectation, expectation


@expectation
class Objects(Expectation):
    """Objects under a prefix: how many, their keys, their names, their content."""

    keyword = "objects"
    bucket: str
    prefix: str = ""
    count: CountMatcher = None
    keys: Matcher = None
    names_match: str | None = None
    body: Matcher = None
    versions: CountMatcher = None

    _valid_count = field_validator("count", "versions")(valid_count)
    _valid_matchers = field_validator("keys", "body")(valid_matcher)

    _valid_regex = field_validator("names_match")(valid_regex)

    def check(self, ctx: ScenarioContext) -> None:
        keys = list_keys(ctx, self.bucket, self.prefix)
        where = f"s3://{self.bucket}/{self.prefix}"
        if self.count is not None:
            expect_match(
                f"number of objects under {where}", self.count, len(keys), {"count": len(keys), "keys": keys}
            )
        if self.keys is not None:
            expect_match(f"keys under {where}", self.keys, keys)
        if self.versions is not None:
            versions = self._versions(ctx)
            expect_match(
                f"number of object versions under {where} (each write of a versioned bucket is one)",
                self.versions,
                len(versions),
                {
                    "versions": len(versions),
                    "written_more_than_once": sorted({k for k in versions if versions.count(k) > 1}),
                },
            )
        if self.names_match is not None:
            pattern = re.compile(self.names_match)
            bad = [k for k in keys if not pattern.fullmatch(k)]
            if bad:
                raise fail(f"object names under {where} matching /{self.names_match}/", "all", bad)
        if self.body is not None:
            for key in keys:
                body: Any = read_object(ctx, self.bucket, key).decode(errors="replace")
                expect_match(f"body of s3://{self.bucket}/{key}", self.body, body)

    def _versions(self, ctx: ScenarioContext) -> list[str]:
        """The key of every version under the prefix (delete markers excluded)."""
        paginator = ctx.session.client("s3").get_paginator("list_object_versions")
        return [
            v["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)
            for v in page.get("Versions", [])
        ]
