"""Steps that move the virtual clock: `advance: 90m` and `advance_to: <instant>`.

Every schedule due on the way fires, in time order, each run to quiescence before the next
(EventBridge schedule rules and EventBridge Scheduler schedules from Terraform state).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import field_validator

from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.durations import parse_duration
from harness.scenario.vocabulary import Step, step


def _advance(ctx: ScenarioContext, moment: datetime, label: str) -> None:
    start = ctx.session.clock.now()
    if moment < start:
        raise HarnessError(
            f"{label}: cannot move the clock back from {start.isoformat()} to {moment.isoformat()}"
        )
    fired = ctx.session.advance_to(moment)
    ctx.session.timeline.add("advance", ctx.session.clock.iso(), step=label, fired=fired)


@step
class Advance(Step):
    """Move the virtual clock forward (`advance: 90m`), firing every schedule due on the way."""

    keyword = "advance"
    shorthand = "by"
    by: str

    @field_validator("by")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    def run(self, ctx: ScenarioContext) -> None:
        _advance(ctx, ctx.session.clock.now() + parse_duration(self.by), f"advance {self.by}")


@step
class AdvanceTo(Step):
    """Move the virtual clock to an instant (`advance_to: 2026-01-16T08:00:00Z`), firing schedules."""

    keyword = "advance_to"
    shorthand = "time"
    time: datetime

    def run(self, ctx: ScenarioContext) -> None:
        moment = self.time if self.time.tzinfo else self.time.replace(tzinfo=UTC)
        _advance(ctx, moment, f"advance_to {moment.isoformat()}")
