"""The `await_quiet` step: wait until nothing is in flight."""

from __future__ import annotations

from pydantic import field_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.durations import parse_duration
from harness.scenario.vocabulary import Step, step


@step
class AwaitQuiet(Step):
    """Wait until no message is in flight and no invocation runs (or fail after `timeout`)."""

    keyword = "await_quiet"
    shorthand = "timeout"
    timeout: str | float = "30s"

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value: str | float) -> str | float:
        parse_duration(value)
        return value

    def run(self, ctx: ScenarioContext) -> None:
        seconds = ctx.session.await_quiet(parse_duration(self.timeout).total_seconds())
        ctx.session.timeline.add("quiet", ctx.session.clock.iso(), after_s=round(seconds, 3))
