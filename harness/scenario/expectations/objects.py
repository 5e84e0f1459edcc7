"""The `objects` expectation: objects under a prefix."""

from __future__ import annotations

import re

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import fail, list_keys, read_object
from harness.scenario.vocabulary import Expectation, expectation


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
        keys = list_keys(ctx, self.bucket, self.prefix)
        where = f"s3://{self.bucket}/{self.prefix}"
        if self.count is not None and len(keys) != self.count:
            raise fail(f"number of objects under {where}", self.count, {"count": len(keys), "keys": keys})
        if self.names_match is not None:
            pattern = re.compile(self.names_match)
            bad = [k for k in keys if not pattern.fullmatch(k)]
            if bad:
                raise fail(f"object names under {where} matching /{self.names_match}/", "all", bad)
        if self.body is not None:
            for key in keys:
                body = read_object(ctx, self.bucket, key).decode(errors="replace")
                if body != self.body:
                    raise fail(f"body of s3://{self.bucket}/{key}", self.body, body)
