"""The `kill_task` step: kill an ECS service's task mid-work; the service replaces it."""

from __future__ import annotations

import signal
import time
from typing import Literal

from pydantic import Field

from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.durations import parse_duration
from harness.scenario.vocabulary import Step, step


@step
class KillTask(Step):
    """Send a signal to a running task of an ECS service (all of them unless `slot` is given).

    `when_busy: true` first waits (up to `timeout`) until the service's RabbitMQ queue has a
    message in hand, so the kill lands mid-job.
    """

    keyword = "kill_task"
    shorthand = "service"
    service: str
    slot: int | None = Field(default=None, ge=0)
    signal: Literal["KILL", "TERM", "INT"] = "KILL"
    when_busy: bool = False
    timeout: str | float = "30s"
    #: with when_busy: no job in hand within the timeout skips the kill instead of failing
    #: (random chaos plans cannot know whether work will be under way)
    skip_if_idle: bool = False

    def run(self, ctx: ScenarioContext) -> None:
        supervisor = ctx.session.ecs_services
        if supervisor is None or not ctx.session.stack.ecs_services:
            raise HarnessError("kill_task: this stack has no ECS services")
        try:
            name = supervisor.resolve(self.service).name
        except KeyError as exc:
            raise HarnessError(f"kill_task: {exc}") from None
        if self.when_busy:
            try:
                self._wait_for_work(ctx)
            except TimeoutError:
                if not self.skip_if_idle:
                    raise
                ctx.session.timeline.add("kill_task", ctx.session.clock.iso(), service=name, skipped="idle")
                return
        hit = supervisor.kill(name, self.slot, signal.Signals[f"SIG{self.signal}"])
        if not hit:
            raise HarnessError(
                f"kill_task: no running task of {name}" + (f" in slot {self.slot}" if self.slot else "")
            )
        ctx.session.timeline.add(
            "kill_task", ctx.session.clock.iso(), service=name, signal=self.signal, tasks=len(hit)
        )

    def _wait_for_work(self, ctx: ScenarioContext) -> None:
        admin = ctx.session.rabbit_admin
        if admin is None:
            raise HarnessError("kill_task: when_busy needs the harness's RabbitMQ")
        deadline = time.monotonic() + parse_duration(self.timeout).total_seconds()
        while time.monotonic() < deadline:
            if any(q.unacked for q in admin.queues()):
                return
            time.sleep(0.02)
        raise TimeoutError(f"no RabbitMQ message was in hand within {self.timeout}")
