"""The `aws_calls` expectation: the pipeline's AWS API calls, as the fault proxy saw them.

Proves that a fault really hit (`{service: s3, operation: PutObject, status: 503, count: 2}`)
or that a call was made at all; counts cover the calls since the scenario started.
"""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import CountMatcher, expect_match, fail, valid_count
from harness.scenario.vocabulary import Expectation, expectation


@expectation
class AwsCalls(Expectation):
    """AWS API calls of the pipeline's compute: how many matched, by operation and answer."""

    keyword = "aws_calls"
    service: str | None = None
    operation: str | None = None
    resource: str | None = None
    status: int | None = None
    injected: bool | None = None
    count: CountMatcher = None

    _valid_count = field_validator("count")(valid_count)

    def check(self, ctx: ScenarioContext) -> None:
        proxy = ctx.session.aws_proxy
        if proxy is None:
            raise fail("aws_calls: the AWS fault proxy runs", "a proxy", "none in this session")
        calls = [entry for entry in proxy.request_log if self._matches(entry)]
        shown = [
            f"{c.get('operation')} {c.get('resource') or ''} -> {c.get('status')}"
            + (f" ({c['fault']})" if c.get("fault") else "")
            for c in calls[-30:]
        ]
        what = "AWS calls " + ", ".join(
            f"{k}={v}" for k, v in self.model_dump(exclude={"count"}).items() if v is not None
        )
        expect_match(
            what,
            self.count if self.count is not None else {"$gte": 1},
            len(calls),
            {"count": len(calls), "calls": shown},
        )

    def _matches(self, entry: dict[str, Any]) -> bool:
        if self.service is not None and entry.get("service") != self.service:
            return False
        if self.operation is not None and entry.get("operation") != self.operation:
            return False
        if self.resource is not None and self.resource not in str(entry.get("resource") or ""):
            return False
        if self.status is not None and entry.get("status") != self.status:
            return False
        return self.injected is None or bool(entry.get("fault")) == self.injected
