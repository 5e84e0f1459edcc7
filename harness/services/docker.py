"""Docker variants of the backends, used only when a Docker daemon answers.

`docker_available()` decides quickly: without a reachable daemon socket it returns False in
well under a millisecond and never imports the Docker SDK. The container classes implement
the same `Service` interface as the native ones through testcontainers (imported inside the
methods, so this module costs nothing on machines without Docker).
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from harness.errors import HarnessError, ServiceStartError
from harness.services.base import Endpoint, Service
from harness.services.process import RunDirectory
from harness.services.readiness import wait_until

if TYPE_CHECKING:
    import subprocess

USERNAME = "pipeline"
PASSWORD = "pipeline"  # noqa: S105 (a throw-away local test service)
DATABASE = "pipeline"
# Same major versions as the Debian packages the native services use, so both kinds behave alike.
REDIS_IMAGE = "redis:7"
POSTGRES_IMAGE = "postgres:15"
RABBITMQ_IMAGE = "rabbitmq:3.10"


def _socket_reachable(host: str, timeout: float) -> bool | None:
    """True/False for unix and tcp daemon addresses; None when the scheme needs the SDK (ssh)."""
    if host.startswith("unix://"):
        path = host[len("unix://") :]
        if not os.path.exists(path):
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(path)
            except OSError:
                return False
        return True
    if host.startswith(("tcp://", "http://", "https://")):
        parts = urlsplit(host)
        default_port = 2376 if os.environ.get("DOCKER_TLS_VERIFY") or parts.scheme == "https" else 2375
        try:
            with socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or default_port), timeout
            ):
                return True
        except OSError:
            return False
    return None


def docker_available(timeout: float = 0.5) -> bool:
    """Whether a Docker daemon answers; fast (no SDK import) when there is none."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if _socket_reachable(host, timeout) is False:
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 (any SDK failure means "no usable daemon")
        return False


class _ContainerService(Service):
    """Shared lifecycle: testcontainers starts the container; readiness is our own real check."""

    kind = "docker"
    container_port: int = 0

    def __init__(self, run_dir: RunDirectory | None = None, port: int | None = None, image: str = "") -> None:
        # run_dir is accepted for parity with the native services (containers keep no host files).
        self.run_dir = run_dir
        self.host_port = port
        self.image = image
        self.container: Any = None

    def _make(self) -> Any:
        raise NotImplementedError

    def _answers(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        if self.container is not None:
            return
        container = self._make()
        if self.host_port is not None:
            container.with_bind_ports(self.container_port, self.host_port)
        try:
            container.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                container.stop()
            raise ServiceStartError(self.name, f"container {self.image} did not start: {exc}") from exc
        self.container = container

    def wait_ready(self, timeout: float = 60.0) -> None:
        if self.container is None:
            raise ServiceStartError(self.name, "wait_ready() called before start()")
        wait_until(self._answers, component=self.name, timeout=timeout, interval=0.2, log_tail=self._log_tail)

    def _log_tail(self) -> str:
        with contextlib.suppress(Exception):
            stdout, stderr = self.container.get_logs()
            text = (stdout + stderr).decode(errors="replace")
            return "\n".join("    " + line for line in text.splitlines()[-15:])
        return ""

    def _host_and_port(self) -> tuple[str, int]:
        if self.container is None:
            raise ServiceStartError(self.name, "endpoint requested before start()")
        return str(self.container.get_container_host_ip()), int(
            self.container.get_exposed_port(self.container_port)
        )

    def stop(self) -> None:
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.stop()
            self.container = None


class RedisContainer(_ContainerService):
    name = "redis"
    container_port = 6379

    def __init__(
        self, run_dir: RunDirectory | None = None, port: int | None = None, image: str = REDIS_IMAGE
    ) -> None:
        super().__init__(run_dir, port, image)

    def _make(self) -> Any:
        from testcontainers.community.redis import RedisContainer as TcRedis

        # Same flags as the native service: nothing on disk, DEBUG allowed for chaos tests.
        return TcRedis(self.image).with_command(
            "redis-server --save '' --appendonly no --enable-debug-command yes"
        )

    def _answers(self) -> bool:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            self.endpoint.url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        try:
            return client.ping() is True
        except (redis.ConnectionError, redis.TimeoutError):
            return False
        finally:
            client.close()

    @property
    def endpoint(self) -> Endpoint:
        host, port = self._host_and_port()
        return Endpoint(host=host, port=port, url=f"redis://{host}:{port}/0")


class PostgresContainer(_ContainerService):
    name = "postgres"
    container_port = 5432

    def __init__(
        self, run_dir: RunDirectory | None = None, port: int | None = None, image: str = POSTGRES_IMAGE
    ) -> None:
        super().__init__(run_dir, port, image)

    def _make(self) -> Any:
        from testcontainers.community.postgres import PostgresContainer as TcPostgres

        return TcPostgres(self.image, username=USERNAME, password=PASSWORD, dbname=DATABASE, driver=None)

    def _answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.endpoint.url, connect_timeout=2) as conn:
                row = conn.execute("select 1").fetchone()
        except psycopg.OperationalError:
            return False
        return row is not None and row[0] == 1

    @property
    def endpoint(self) -> Endpoint:
        host, port = self._host_and_port()
        return Endpoint(
            host=host,
            port=port,
            url=f"postgresql://{USERNAME}:{PASSWORD}@{host}:{port}/{DATABASE}",
            username=USERNAME,
            password=PASSWORD,
            extras={"database": DATABASE},
        )


class RabbitMQContainer(_ContainerService):
    name = "rabbitmq"
    container_port = 5672

    def __init__(
        self, run_dir: RunDirectory | None = None, port: int | None = None, image: str = RABBITMQ_IMAGE
    ) -> None:
        super().__init__(run_dir, port, image)

    def _make(self) -> Any:
        from testcontainers.community.rabbitmq import RabbitMqContainer as TcRabbit

        return TcRabbit(self.image, username=USERNAME, password=PASSWORD)

    def _answers(self) -> bool:
        import pika
        import pika.exceptions
        from pika.adapters.utils.connection_workflow import (
            AMQPConnectorException,
        )

        params = pika.URLParameters(self.endpoint.url)
        params.socket_timeout = 2
        params.stack_timeout = 3  # the whole handshake; pika's default is 15 s
        try:
            pika.BlockingConnection(params).close()
        # A handshake timeout (AMQPConnectorStackTimeout) is not an AMQPError.
        except (pika.exceptions.AMQPError, AMQPConnectorException, OSError):
            return False
        return True

    @property
    def endpoint(self) -> Endpoint:
        host, port = self._host_and_port()
        return Endpoint(
            host=host,
            port=port,
            url=f"amqp://{USERNAME}:{PASSWORD}@{host}:{port}/%2F",
            username=USERNAME,
            password=PASSWORD,
            extras={"vhost": "/"},
        )

    def ctl(self, *args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`rabbitmqctl ARGS` inside the container (same contract as RabbitMQService.ctl)."""
        import subprocess

        if self.container is None:
            raise HarnessError(
                f"[{self.name}] ctl({' '.join(args)}) called while the container is not running"
            )
        # exec_run has no timeout of its own; coreutils `timeout` (in the official image) bounds it.
        argv = ["timeout", str(max(1, int(timeout))), "rabbitmqctl", *args]
        code, output = self.container.get_wrapped_container().exec_run(argv)
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        if check and code != 0:
            raise HarnessError(
                f"[{self.name}] rabbitmqctl {' '.join(args)} failed (exit {code}): {text.strip()}"
            )
        return subprocess.CompletedProcess(argv, int(code), stdout=text, stderr="")

    def pause(self) -> None:
        """Freeze the broker (`docker pause`, the cgroup freezer: the container analogue of SIGSTOP)."""
        if self.container is not None:
            self.container.get_wrapped_container().pause()

    def resume(self) -> None:
        if self.container is not None:
            self.container.get_wrapped_container().unpause()
