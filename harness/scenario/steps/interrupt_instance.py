"""The `interrupt_instance` step: an EC2 worker dies mid-work, as in a Spot interruption."""

from __future__ import annotations

import time

from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.durations import parse_duration
from harness.scenario.vocabulary import Step, step


@step
class InterruptInstance(Step):
    """Kill the worker of running EC2 instances (SIGKILL) and terminate the instances.

    `when_busy: true` first waits (up to `timeout`) until a worker holds a message (one is
    in flight on its queue), so the interruption lands mid-job; the message comes back
    after its visibility timeout.
    """

    keyword = "interrupt_instance"
    shorthand = "instance"
    instance: str | None = None
    when_busy: bool = True
    timeout: str | float = "30s"

    def run(self, ctx: ScenarioContext) -> None:
        runner = ctx.session.ec2
        if runner is None:
            raise HarnessError("interrupt_instance: this session runs no EC2 instances")
        deadline = time.monotonic() + parse_duration(self.timeout).total_seconds()
        while self.when_busy and time.monotonic() < deadline:
            if any(self._busy(ctx, url) for url in {i.queue_url for i in runner.running()} if url):
                break
            time.sleep(0.02)
        hit = runner.interrupt(self.instance)
        if not hit:
            raise HarnessError(
                "interrupt_instance: no EC2 worker is running"
                + (f" as {self.instance}" if self.instance else "")
            )
        ctx.session.timeline.add("interrupt_instance", ctx.session.clock.iso(), instances=hit)

    @staticmethod
    def _busy(ctx: ScenarioContext, url: str) -> bool:
        attrs = ctx.session.client("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)) > 0
