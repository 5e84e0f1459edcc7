"""Steps that move the virtual clock: `advance: 90m` and `advance_to: <instant>`."""

from __future__ import annotations

from datetime import datetime

from pydantic import field_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.durations import parse_duration
from harness.scenario.vocabulary import Step, step


@step
class Advance(Step):
    """Move the virtual clock forward (`advance: 90m`)."""

    keyword = "advance"
    shorthand = "by"
    by: str

    @field_validator("by")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    def run(self, ctx: ScenarioContext) -> None:
        moment = ctx.session.clock.advance(parse_duration(self.by))
        ctx.session.timeline.add("advance", ctx.session.clock.iso(), by=self.by, to=moment.isoformat())


@step
class AdvanceTo(Step):
    """Move the virtual clock to an instant (`advance_to: 2026-01-16T08:00:00Z`)."""

    keyword = "advance_to"
    shorthand = "time"
    time: datetime

    def run(self, ctx: ScenarioContext) -> None:
        ctx.session.clock.set(self.time)
        ctx.session.timeline.add("advance_to", ctx.session.clock.iso())
