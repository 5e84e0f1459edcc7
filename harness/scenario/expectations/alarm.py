"""The `alarm` expectation: a CloudWatch alarm's state, as the harness evaluated it."""

from __future__ import annotations

from typing import Literal

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import CountMatcher, expect_match, fail
from harness.scenario.vocabulary import Expectation, expectation


@expectation
class Alarm(Expectation):
    """A queue-depth alarm's state after the scenario (ALARM or OK), its value and notifications sent."""

    keyword = "alarm"
    name: str
    state: Literal["ALARM", "OK"]
    value: CountMatcher = None
    notifications: CountMatcher = None

    def check(self, ctx: ScenarioContext) -> None:
        evaluator = ctx.session.alarms
        if evaluator is None:
            raise fail("alarm: a deployed stack", "alarms", "no stack")
        try:
            alarm = ctx.session.stack.resolve_alarm(self.name)
        except KeyError as exc:
            raise fail(f"alarm {self.name} exists", self.name, str(exc)) from None
        state = evaluator.states.get(alarm.name)
        if state is None:
            raise fail(
                f"alarm {alarm.name} is evaluated by the harness",
                "an SQS queue-depth alarm",
                alarm.metric_name,
            )
        actual = {"state": state.state, "value": state.value, "reason": state.reason}
        if state.state != self.state:
            raise fail(f"state of alarm {alarm.name}", self.state, actual)
        if self.value is not None:
            expect_match(f"value of alarm {alarm.name}", self.value, state.value)
        if self.notifications is not None:
            expect_match(f"notifications of alarm {alarm.name}", self.notifications, state.notifications)
