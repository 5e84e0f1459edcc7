"""The one interface every backend service implements: start, wait until ready, endpoint, stop."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self


@dataclass(frozen=True)
class Endpoint:
    """How clients reach a service. `url` is the connection string clients use."""

    host: str
    port: int
    url: str
    username: str | None = None
    password: str | None = None
    extras: dict[str, str] = field(default_factory=dict)


class Service(abc.ABC):
    """A backend the harness stands up: the AWS emulator, RabbitMQ, Redis, PostgreSQL."""

    name: str = "service"
    #: "native" (a host process) or "docker" (a container); printed so users know what runs.
    kind: str = "native"

    @abc.abstractmethod
    def start(self) -> None:
        """Launch the service; must not block until ready."""

    @abc.abstractmethod
    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the service answers for real; raise ServiceStartError otherwise."""

    @property
    @abc.abstractmethod
    def endpoint(self) -> Endpoint:
        """Where clients connect; valid after start()."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the service and everything it spawned; safe to call twice."""

    def __enter__(self) -> Self:
        try:
            self.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
