"""The `evaluate_alarms` step: evaluate the queue-depth alarms now (also done after the steps)."""

from __future__ import annotations

from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step


@step
class EvaluateAlarms(Step):
    """Evaluate every CloudWatch alarm on an SQS queue-depth metric against the queue's depth,
    publishing the alarm's SNS notification on a state change."""

    keyword = "evaluate_alarms"

    def run(self, ctx: ScenarioContext) -> None:
        ctx.session.evaluate_alarms()
