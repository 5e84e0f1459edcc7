"""The `wait` step: let wall-clock time pass while faults are in force.

Unlike `advance` (virtual time: schedules fire) and `await_quiet` (until work is done), this
just sleeps, e.g. to keep a network fault in place while a client runs into it.
"""

from __future__ import annotations

import time

from pydantic import field_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.durations import parse_duration
from harness.scenario.vocabulary import Step, step

MAX_WAIT_S = 300.0


@step
class Wait(Step):
    """Sleep for a wall-clock duration (at most 5 minutes); the virtual clock does not move."""

    keyword = "wait"
    shorthand = "duration"
    duration: str | float

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | float) -> str | float:
        if parse_duration(value).total_seconds() > MAX_WAIT_S:
            raise ValueError(
                f"wait is wall-clock time: at most {MAX_WAIT_S:.0f}s (use `advance` for virtual time)"
            )
        return value

    def run(self, ctx: ScenarioContext) -> None:
        time.sleep(parse_duration(self.duration).total_seconds())
