"""The `invocations` expectation: how often a function ran, and with what outcome."""

from __future__ import annotations

from typing import Literal

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import fail
from harness.scenario.vocabulary import Expectation, expectation


@expectation
class Invocations(Expectation):
    """How many times a function ran, optionally only those with a given outcome."""

    keyword = "invocations"
    function: str
    count: int
    outcome: Literal["success", "error", "timeout", "crash", "failed"] | None = None

    def check(self, ctx: ScenarioContext) -> None:
        runtime = ctx.session.runtime
        assert runtime is not None
        name = ctx.session.stack.resolve_function(self.function).name
        calls = [i for i in runtime.invocations if i.function == name]
        if self.outcome == "failed":
            selected = [i for i in calls if not i.ok]
        elif self.outcome is not None:
            selected = [i for i in calls if i.outcome == self.outcome]
        else:
            selected = calls
        if len(selected) != self.count:
            label = f" with outcome {self.outcome}" if self.outcome else ""
            raise fail(
                f"invocations of {name}{label}",
                self.count,
                {"count": len(selected), "all": [f"#{i.seq} {i.outcome} via {i.source}" for i in calls]},
            )
