"""Schedules, fired by the harness on the virtual clock.

Two sources, both read from Terraform state: EventBridge rules with a
`schedule_expression` (their targets were taken from the emulator at deploy time) and
EventBridge Scheduler schedules. `advance_to` computes every firing in the window, fires
them in time order, and runs the system to quiescence after each one, so a day of
schedules takes seconds and gives the same timeline every time.

What each target receives follows AWS: a rule's target gets the "Scheduled Event"
(or the target's constant Input); a Scheduler target gets its configured input with the
context attributes (`<aws.scheduler.scheduled-time>`, ...) filled in; an ECS cluster target
runs the task definition with the input as RunTask overrides.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from harness.clock import VirtualClock
from harness.clock.schedules import firings, flexible_offset
from harness.deploy.stack import Rule, Schedule, Stack, Target
from harness.report.timeline import Timeline
from harness.runtime.ecs_tasks import EcsTaskRunner
from harness.runtime.lambda_runtime import LambdaRuntime

ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Firing:
    at: datetime
    scheduled_at: datetime
    source: str  # "rule" or "schedule"
    name: str
    fire: Callable[[datetime, datetime], None]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_date(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def scheduled_event(rule: Rule, moment: datetime, region: str) -> dict[str, Any]:
    """The event EventBridge sends to a scheduled rule's targets."""
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rule.arn}@{_iso(moment)}")),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.arn.split(":")[4] if rule.arn.count(":") >= 5 else ACCOUNT,
        "time": _iso(moment),
        "region": region,
        "resources": [rule.arn],
        "detail": {},
    }


class Scheduler:
    def __init__(
        self,
        stack: Stack,
        held_rule_targets: list[Target],
        clock: VirtualClock,
        timeline: Timeline,
        runtime: LambdaRuntime,
        ecs: EcsTaskRunner,
        sqs: Any,
        region: str,
        quiet: Callable[[], object],
    ) -> None:
        self.stack = stack
        self.clock = clock
        self.timeline = timeline
        self.runtime = runtime
        self.ecs = ecs
        self.sqs = sqs
        self.region = region
        self.quiet = quiet
        self.seed = 0
        self.anchor = clock.now()
        rules = {(r.bus, r.name): r for r in stack.rules}
        self.rule_targets = [
            (rules[(t.bus, t.rule)], t) for t in held_rule_targets if (t.bus, t.rule) in rules
        ]
        self.fired: list[Firing] = []
        self.flow: str | None = None
        self.flows: frozenset[str] = frozenset()

    def reset(
        self, anchor: datetime, seed: int = 0, flow: str | None = None, flows: frozenset[str] = frozenset()
    ) -> None:
        """A scenario starts: rate schedules count from here.

        With `flow`, schedules declared under another flow's module (`module.<flow>.` in the
        environment, one of `flows`) are held: the stack is shared by every flow, and a week
        of the batch flow should not run the broker's five-minute producer 2,016 times.
        """
        self.anchor = anchor
        self.seed = seed
        self.flow = flow
        self.flows = flows
        self.fired.clear()

    def in_scope(self, address: str) -> bool:
        if self.flow is None or not address.startswith("module."):
            return True
        owner = address.split(".", 2)[1]
        return owner == self.flow or owner not in self.flows

    def due(self, start: datetime, end: datetime) -> list[Firing]:
        found: list[Firing] = []
        for rule, target in self.rule_targets:
            if not rule.enabled or not rule.schedule_expression or not self.in_scope(rule.address):
                continue
            for moment in firings(
                rule.schedule_expression, start_exclusive=start, end_inclusive=end, anchor=self.anchor
            ):
                found.append(Firing(moment, moment, "rule", rule.name, self._rule_fire(rule, target)))
        for schedule in self.stack.schedules.values():
            if not schedule.enabled or not self.in_scope(schedule.address):
                continue
            window = timedelta(minutes=schedule.flexible_window_minutes)
            # A flexible window may push a firing from before `start` into this window.
            for moment in firings(
                schedule.expression,
                start_exclusive=start - window,
                end_inclusive=end,
                timezone=schedule.timezone,
                start_date=_parse_date(schedule.start_date),
                end_date=_parse_date(schedule.end_date),
                anchor=self.anchor,
            ):
                offset = (
                    flexible_offset(schedule.name, moment, schedule.flexible_window_minutes, self.seed)
                    if schedule.flexible_window_minutes
                    else timedelta(0)
                )
                at = moment + offset
                if start < at <= end:
                    found.append(Firing(at, moment, "schedule", schedule.name, self._schedule_fire(schedule)))
        return sorted(found, key=lambda f: (f.at, f.source, f.name))

    def advance_to(self, end: datetime) -> int:
        """Fire everything due up to `end`, in order, each to quiescence; then stop the clock at `end`."""
        start = self.clock.now()
        if end < start:
            raise ValueError(f"cannot move the clock back from {_iso(start)} to {_iso(end)}")
        due = self.due(start, end)
        for firing in due:
            self.clock.set(firing.at)
            self.timeline.add("schedule.fire", self.clock.iso(), source=firing.source, name=firing.name)
            firing.fire(firing.at, firing.scheduled_at)
            self.fired.append(firing)
            self.quiet()
        self.clock.set(end)
        return len(due)

    # -- targets --------------------------------------------------------------------------

    def _invoke_async(self, function_arn: str, payload: Any, source: str) -> bool:
        function = self.stack.function_by_arn(function_arn)
        if function is None:
            return False
        self.runtime.invoke_async(function.name, payload, source)
        return True

    def _send(self, queue_arn: str, body: str) -> bool:
        queue = self.stack.queue_by_arn(queue_arn)
        if queue is None:
            return False
        self.sqs.send_message(QueueUrl=queue.url, MessageBody=body)
        return True

    def _rule_fire(self, rule: Rule, target: Target) -> Callable[[datetime, datetime], None]:
        def fire(at: datetime, scheduled: datetime) -> None:
            event = scheduled_event(rule, at, self.region)
            payload: Any = json.loads(target.input) if target.input else event
            source = f"schedule:rule/{rule.name}"
            if ":lambda:" in target.arn:
                delivered = self._invoke_async(target.arn, payload, source)
            elif ":sqs:" in target.arn:
                delivered = self._send(target.arn, json.dumps(payload))
            else:
                delivered = False
            if not delivered:
                self.timeline.add(
                    "schedule.undeliverable", self.clock.iso(), rule=rule.name, target=target.arn
                )

        return fire

    def _schedule_fire(self, schedule: Schedule) -> Callable[[datetime, datetime], None]:
        def fire(at: datetime, scheduled: datetime) -> None:
            target = schedule.target
            text = target.input or "{}"
            for name, value in {
                "<aws.scheduler.scheduled-time>": _iso(scheduled),
                "<aws.scheduler.schedule-arn>": f"arn:aws:scheduler:{self.region}:{ACCOUNT}:schedule/"
                f"{schedule.group}/{schedule.name}",
                "<aws.scheduler.execution-id>": uuid.uuid5(
                    uuid.NAMESPACE_URL, f"{schedule.name}@{_iso(at)}"
                ).hex[:16],
                "<aws.scheduler.attempt-number>": "1",
            }.items():
                text = text.replace(name, value)
            source = f"schedule:{schedule.name}"
            if ":lambda:" in target.arn:
                delivered = self._invoke_async(target.arn, json.loads(text), source)
            elif ":sqs:" in target.arn:
                delivered = self._send(target.arn, text)
            elif ":cluster/" in target.arn and target.ecs_task_definition_arn:
                task = self.stack.resolve_task_definition(target.ecs_task_definition_arn)
                self.ecs.run(task, overrides=json.loads(text), started_by=source)
                delivered = True
            else:
                delivered = False
            if not delivered:
                self.timeline.add(
                    "schedule.undeliverable", self.clock.iso(), schedule=schedule.name, target=target.arn
                )
                if target.dead_letter_arn:
                    self._send(target.dead_letter_arn, text)

        return fire
