"""Outages of the support services (RabbitMQ, Redis, PostgreSQL), started and ended on demand.

- stop / start: RabbitMQ stops its application (`rabbitmqctl stop_app`: every connection
  drops, the listener closes, queues and messages stay on disk, as in a broker reboot);
  Redis and PostgreSQL stop their process and start again on the same port (Redis keeps no
  data across it, like a replaced cache node; PostgreSQL keeps its data).
- pause / resume: SIGSTOP / SIGCONT, so clients hang instead of being refused.
- restart: stop then start.
Every outage is remembered so that the next scenario starts with all services up.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from harness.errors import HarnessError
from harness.services.base import Service
from harness.services.rabbitmq_server import RabbitMQService

ACTIONS = ("stop", "start", "restart", "pause", "resume", "close_connections")


def _signal(service: Service, sig: int) -> None:
    process = getattr(service, "process", None)
    if process is None:
        raise HarnessError(f"{service.name} is not running; cannot {signal.Signals(sig).name} it")
    process.signal(sig)


@dataclass
class Outages:
    services: dict[str, Service]
    #: service name -> "stopped" | "paused"
    down: dict[str, str] = field(default_factory=dict)

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(sorted(self.services)) or "none"
            raise HarnessError(f"no support service named {name!r} (services: {known})") from None

    def apply(self, name: str, action: str) -> None:
        if action not in ACTIONS:
            raise HarnessError(f"unknown service action {action!r} (actions: {', '.join(ACTIONS)})")
        service = self.service(name)
        if action == "restart":
            self._stop(name, service)
            self._start(name, service)
        elif action == "stop":
            self._stop(name, service)
        elif action == "start":
            self._start(name, service)
        elif action == "pause":
            _signal(service, signal.SIGSTOP)
            self.down[name] = "paused"
        elif action == "close_connections":
            if not isinstance(service, RabbitMQService):
                raise HarnessError(
                    f"close_connections is a RabbitMQ action; for {name} use the `network` fault "
                    "(mode: reset) to drop its connections"
                )
            service.ctl("close_all_connections", "closed by the harness (chaos)")
        elif action == "resume":
            _signal(service, signal.SIGCONT)
            self.down.pop(name, None)

    def _stop(self, name: str, service: Service) -> None:
        if self.down.get(name) == "paused":
            _signal(service, signal.SIGCONT)
        if isinstance(service, RabbitMQService):
            service.ctl("stop_app")
        else:
            service.stop()
        self.down[name] = "stopped"

    def _start(self, name: str, service: Service) -> None:
        state = self.down.get(name)
        if state == "paused":
            _signal(service, signal.SIGCONT)
        elif state == "stopped":
            if isinstance(service, RabbitMQService):
                service.ctl("start_app")
            else:
                service.start()
            service.wait_ready()
        self.down.pop(name, None)

    def restore_all(self) -> list[str]:
        """Bring every service this run took down back up; returns their names."""
        restored = list(self.down)
        for name in restored:
            self._start(name, self.services[name])
        return restored
