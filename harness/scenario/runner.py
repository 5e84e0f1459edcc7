"""Run one scenario against a session: reset data, take the steps, check every expectation."""

from __future__ import annotations

from harness.errors import ExpectationFailed
from harness.scenario.context import ScenarioContext
from harness.scenario.model import Scenario
from harness.session import HarnessSession


def run_scenario(scenario: Scenario, session: HarnessSession) -> ScenarioContext:
    session.reset_data(clock_start=scenario.header.clock)
    ctx = ScenarioContext(session=session, file=scenario.file)
    try:
        for index, step in enumerate(scenario.steps, start=1):
            try:
                step.run(ctx)
            except TimeoutError as exc:
                raise ExpectationFailed(f"step {index} ({step.keyword}) timed out: {exc}") from None
        failures: list[str] = []
        for index, expectation in enumerate(scenario.expect, start=1):
            try:
                expectation.check(ctx)
            except ExpectationFailed as exc:
                failures.append(f"expect[{index}] {expectation.keyword}: {exc}")
        if failures:
            raise ExpectationFailed("\n".join(failures))
    finally:
        for step in scenario.finally_steps:
            step.run(ctx)
    return ctx
