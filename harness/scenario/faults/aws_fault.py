"""The `aws_fault` fault: AWS API errors and latency for the pipeline's own AWS calls.

Rules have the shape of LocalStack's Chaos API (service, operation, region, probability,
error {statusCode, code}) so rules carry over, plus `resource` (a bucket, queue, table or
function name; glob patterns allowed) and `calls` ("1-2": the first two matching calls fail,
then calls pass). `latency` delays matching calls: a duration ("250ms") or, as in
LocalStack, a number of milliseconds. Without `error` and `latency` a call fails with 503
ServiceUnavailable, LocalStack's default.

Every AWS call of the compute (Lambda handlers, ECS tasks, EC2 workers) goes through the
harness's fault proxy; the harness's own calls (resets, expectations) do not. botocore
retries throttling and 5xx errors by itself, so "calls 1-2 fail" is often survived inside
one SDK call, exactly as it would be on AWS.
"""

from __future__ import annotations

from typing import Any

from pydantic import PrivateAttr, ValidationError, model_validator

from harness.chaos.aws_proxy import FaultRule
from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.durations import parse_duration
from harness.scenario.vocabulary import Fault, fault


@fault
class AwsFault(Fault):
    """Fail (or slow) matching AWS API calls of the pipeline: a LocalStack Chaos API rule."""

    keyword = "aws_fault"
    service: str | None = None
    operation: str | None = None
    region: str | None = None
    resource: str | None = None
    probability: float = 1.0
    calls: str | int | list[int] | None = None
    error: dict[str, Any] | None = None
    latency: str | float | None = None
    _rule: FaultRule = PrivateAttr()

    @model_validator(mode="after")
    def _as_rule(self) -> AwsFault:
        data: dict[str, Any] = {
            k: v
            for k, v in self.model_dump(exclude={"latency"}).items()
            if v is not None and k != "probability"
        }
        data["probability"] = self.probability
        if self.latency is not None:
            data["latency"] = (
                float(self.latency)
                if isinstance(self.latency, int | float)
                else parse_duration(self.latency).total_seconds() * 1000
            )
        try:
            self._rule = FaultRule.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(problems) from None
        return self

    @property
    def rule(self) -> FaultRule:
        return self._rule

    def install(self, ctx: ScenarioContext) -> None:
        session = ctx.session
        if session.aws_proxy is None:
            raise HarnessError("aws_fault: this session runs no AWS fault proxy")
        session.aws_proxy.add_rule(self._rule)
        shown = self._rule.model_dump(by_alias=True, exclude_none=True)
        session.timeline.add("fault", session.clock.iso(), fault=self.keyword, **shown)
