"""The `ecs_tasks` expectation: which ECS tasks ran, and how they exited."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from harness.scenario import matchers
from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import fail
from harness.scenario.vocabulary import Expectation, expectation


@expectation
class EcsTasks(Expectation):
    """ECS task runs of a task definition: how many, exit codes, who started them, their environment."""

    keyword = "ecs_tasks"
    task_definition: str
    count: Any = None
    exit_codes: Any = None
    started_by: Any = None
    environment: Any = None

    @field_validator("count", "exit_codes", "started_by", "environment")
    @classmethod
    def _matcher(cls, value: Any) -> Any:
        matchers.validate(value)
        return value

    def check(self, ctx: ScenarioContext) -> None:
        assert ctx.session.ecs is not None
        family = ctx.session.stack.resolve_task_definition(self.task_definition).family
        runs = [r for r in ctx.session.ecs.runs if r.family == family]
        actual = {
            "count": len(runs),
            "exit_codes": [r.exit_code for r in runs],
            "started_by": [r.started_by for r in runs],
            "environment": [r.environment for r in runs],
        }
        for field in ("count", "exit_codes", "started_by", "environment"):
            expected = getattr(self, field)
            if expected is None:
                continue
            problems = matchers.mismatches(expected, actual[field])
            if problems:
                tails = [f"#{r.seq} exit {r.exit_code}: {r.output.strip()[-300:]}" for r in runs if not r.ok]
                raise fail(f"{field} of ECS tasks of {family}", expected, {**actual, "failed_output": tails})
