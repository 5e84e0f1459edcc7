"""The `ecs_service` expectation: an ECS service's running tasks and the tasks it replaced."""

from __future__ import annotations

from pydantic import field_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import (
    CountMatcher,
    Matcher,
    expect_match,
    fail,
    valid_count,
    valid_matcher,
)
from harness.scenario.vocabulary import Expectation, expectation


@expectation
class EcsServiceState(Expectation):
    """How many tasks of a service run now, how many stopped (and were replaced) during the
    scenario, and the stop reasons."""

    keyword = "ecs_service"
    shorthand = "service"
    service: str
    running: CountMatcher = None
    stopped: CountMatcher = None
    reasons: Matcher = None

    _valid_counts = field_validator("running", "stopped")(valid_count)
    _valid_reasons = field_validator("reasons")(valid_matcher)

    def check(self, ctx: ScenarioContext) -> None:
        supervisor = ctx.session.ecs_services
        if supervisor is None:
            raise fail("ecs_service: a deployed stack", self.service, "no stack")
        try:
            name = supervisor.resolve(self.service).name
        except KeyError as exc:
            raise fail(f"ECS service {self.service} exists", self.service, str(exc)) from None
        running = sum(1 for t in supervisor.tasks(name) if t.running)
        stopped = [e for e in supervisor.events if e.service == name and e.kind == "stopped"]
        actual = {"running": running, "stopped": len(stopped), "reasons": [e.reason for e in stopped]}
        if self.running is not None:
            expect_match(f"running tasks of {name}", self.running, running, actual)
        if self.stopped is not None:
            expect_match(f"stopped tasks of {name}", self.stopped, len(stopped), actual)
        if self.reasons is not None:
            expect_match(f"stop reasons of {name}", self.reasons, actual["reasons"], actual)
