"""The `service` step: take a support service (RabbitMQ, Redis, PostgreSQL) down or bring it back."""

from __future__ import annotations

from typing import Literal

from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step


@step
class ServiceAction(Step):
    """Stop, start, restart, pause (SIGSTOP) or resume a support service mid-scenario.

    RabbitMQ `stop` stops the broker application (connections drop, messages stay on disk);
    Redis and PostgreSQL stop their process. RabbitMQ `close_connections` drops every client
    connection while the broker stays up. Whatever a scenario leaves down is brought back
    before the next scenario.
    """

    keyword = "service"
    name: Literal["rabbitmq", "redis", "postgres"]
    action: Literal["stop", "start", "restart", "pause", "resume", "close_connections"]

    def run(self, ctx: ScenarioContext) -> None:
        if self.name == "rabbitmq":
            ctx.session.note_rabbit_consumers()
        ctx.session.outages.apply(self.name, self.action)
        ctx.session.timeline.add("service", ctx.session.clock.iso(), name=self.name, action=self.action)
