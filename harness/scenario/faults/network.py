"""The `network` fault: Redis or PostgreSQL slowed, reset or blackholed on the wire.

The pipeline reaches both through a TCP proxy the harness owns (the Terraform variables
`redis_url` and `postgres_url` point at it), so the server itself stays healthy while its
clients see what a flaky network does to them:

- `latency`: every chunk in either direction waits `latency` (+ up to `jitter`).
- `reset`: open connections are reset now and new ones are reset on accept.
- `blackhole`: bytes are swallowed, nothing answers; clients hang until their own timeouts.
- `reset_once`: open connections are reset now; new ones work.

It lasts until the scenario ends or a `clear_faults` step.
"""

from __future__ import annotations

from typing import Literal

from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.durations import parse_duration
from harness.scenario.vocabulary import Fault, fault


@fault
class Network(Fault):
    """Add latency to, reset or blackhole the pipeline's connections to Redis or PostgreSQL."""

    keyword = "network"
    service: Literal["redis", "postgres"]
    mode: Literal["latency", "reset", "blackhole", "reset_once"]
    latency: str | float = "100ms"
    jitter: str | float = "0ms"

    def install(self, ctx: ScenarioContext) -> None:
        session = ctx.session
        proxy = session.tcp_proxies.get(self.service)
        if proxy is None:
            raise HarnessError(f"network: the harness runs no {self.service} proxy in this session")
        if self.mode == "latency":
            proxy.set_latency(
                parse_duration(self.latency).total_seconds() * 1000,
                parse_duration(self.jitter).total_seconds() * 1000,
            )
        elif self.mode == "reset_once":
            proxy.reset()
        else:
            proxy.set_mode(self.mode)
            if self.mode == "reset":
                proxy.reset()
        session.timeline.add(
            "fault", session.clock.iso(), fault=self.keyword, service=self.service, mode=self.mode
        )
