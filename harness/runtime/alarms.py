"""CloudWatch metric alarms on SQS queue depth, evaluated by the harness.

The emulators keep no SQS metrics, so an alarm such as "DLQ depth > 5" would never fire
locally. The harness evaluates each alarm on an `AWS/SQS` queue-depth metric against the
queue's real depth, records the state, mirrors it into the emulator (SetAlarmState) and, on a
transition, publishes the notification CloudWatch would send to the alarm's SNS actions.
Alarms start each scenario in OK (a healthy deployed stack) without notifying. Alarms on
other metrics are listed but not evaluated.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.deploy.stack import MetricAlarm, Stack

#: The queue attribute behind each AWS/SQS metric the harness can evaluate.
SQS_METRICS = {
    "ApproximateNumberOfMessagesVisible": ("ApproximateNumberOfMessages",),
    "ApproximateNumberOfMessagesNotVisible": ("ApproximateNumberOfMessagesNotVisible",),
    "ApproximateNumberOfMessagesDelayed": ("ApproximateNumberOfMessagesDelayed",),
}
COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
REGION_NAME = {"us-east-1": "US East (N. Virginia)"}


@dataclass
class AlarmState:
    state: str = "OK"
    value: float | None = None
    reason: str = "reset by the harness"
    changed_at: str = ""
    notifications: int = 0


def evaluable(alarm: MetricAlarm) -> bool:
    return (
        alarm.namespace == "AWS/SQS"
        and alarm.metric_name in SQS_METRICS
        and "QueueName" in alarm.dimensions
        and alarm.comparison in COMPARISONS
    )


def notification(alarm: MetricAlarm, old: str, new: AlarmState, account: str, region: str) -> dict[str, Any]:
    """The JSON CloudWatch publishes to an alarm's SNS actions."""
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description or None,
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": new.changed_at,
        "NewStateValue": new.state,
        "NewStateReason": new.reason,
        "StateChangeTime": new.changed_at,
        "Region": REGION_NAME.get(region, region),
        "AlarmArn": alarm.arn,
        "OldStateValue": old,
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "StatisticType": "Statistic",
            "Statistic": (alarm.statistic or "").upper(),
            "Unit": None,
            "Dimensions": [{"value": v, "name": k} for k, v in alarm.dimensions.items()],
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "ComparisonOperator": alarm.comparison,
            "Threshold": alarm.threshold,
            "TreatMissingData": alarm.treat_missing_data,
            "EvaluateLowSampleCountPercentile": "",
        },
    }


@dataclass
class AlarmEvaluator:
    stack: Stack
    clients: Callable[[str], Any]
    region: str
    virtual_now: Callable[[], str]
    states: dict[str, AlarmState] = field(default_factory=dict)

    def reset(self) -> None:
        self.states = {name: AlarmState(changed_at=self.virtual_now()) for name in self.stack.alarms}
        cloudwatch = self.clients("cloudwatch")
        for name in self.stack.alarms:
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="reset by the harness")

    def _queue_value(self, alarm: MetricAlarm) -> float:
        sqs = self.clients("sqs")
        queue = self.stack.queues.get(alarm.dimensions["QueueName"])
        url = queue.url if queue else sqs.get_queue_url(QueueName=alarm.dimensions["QueueName"])["QueueUrl"]
        names = list(SQS_METRICS[alarm.metric_name or ""])
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return float(sum(int(attrs.get(n, 0)) for n in names))

    def evaluate(self) -> list[tuple[MetricAlarm, AlarmState]]:
        """Evaluate every evaluable alarm now; returns the ones whose state changed."""
        changed: list[tuple[MetricAlarm, AlarmState]] = []
        for alarm in self.stack.alarms.values():
            if not evaluable(alarm):
                continue
            value = self._queue_value(alarm)
            compare, words = COMPARISONS[alarm.comparison]
            breached = compare(value, alarm.threshold)
            current = self.states.setdefault(alarm.name, AlarmState())
            new_state = "ALARM" if breached else "OK"
            current.value = value
            if new_state == current.state:
                continue
            old = current.state
            current.state = new_state
            current.changed_at = self.virtual_now()
            negation = "" if breached else "not "
            current.reason = (
                f"Threshold Crossed: 1 datapoint [{value} ({current.changed_at})] was {negation}"
                f"{words} the threshold ({alarm.threshold})."
            )
            self._publish(alarm, old, current)
            changed.append((alarm, current))
        return changed

    def _publish(self, alarm: MetricAlarm, old: str, state: AlarmState) -> None:
        self.clients("cloudwatch").set_alarm_state(
            AlarmName=alarm.name, StateValue=state.state, StateReason=state.reason[:1000]
        )
        actions = alarm.alarm_actions if state.state == "ALARM" else alarm.ok_actions
        account = alarm.arn.split(":")[4] if alarm.arn.count(":") >= 5 else "000000000000"
        message = notification(alarm, old, state, account, self.region)
        sns = self.clients("sns")
        for arn in actions:
            if ":sns:" not in arn:
                continue
            subject = f'{state.state}: "{alarm.name}" in {REGION_NAME.get(self.region, self.region)}'
            sns.publish(TopicArn=arn, Subject=subject[:100], Message=json.dumps(message))
            state.notifications += 1
