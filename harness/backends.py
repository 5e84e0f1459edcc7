"""Which implementation stands in for each cloud service, and saying so clearly.

The AWS emulator is moto server (default) or LocalStack on the host. RabbitMQ, Redis and
PostgreSQL run as native processes, or as containers when a Docker daemon answers and
HARNESS_DOCKER=1 asks for them.
"""

from __future__ import annotations

import os

from harness.errors import HarnessError
from harness.services.base import Service
from harness.services.process import RunDirectory
from harness.services.tls import TlsFiles

EMULATORS = ("moto", "localstack")


def selected_backend(explicit: str | None = None) -> str:
    backend = (explicit or os.environ.get("HARNESS_BACKEND") or os.environ.get("BACKEND") or "moto").lower()
    if backend not in EMULATORS:
        raise HarnessError(f"unknown backend {backend!r}", hint=f"choose one of: {', '.join(EMULATORS)}")
    return backend


def make_emulator(backend: str, run_dir: RunDirectory) -> Service:
    if backend == "moto":
        from harness.services.moto_server import MotoService

        return MotoService(run_dir)
    from harness.services.localstack_server import LocalStackService

    return LocalStackService(run_dir)


def use_docker() -> bool:
    """Containers for RabbitMQ, Redis and PostgreSQL only when asked for (HARNESS_DOCKER=1) and a
    daemon answers: the container variants speak neither TLS nor the bound stores' credentials,
    which the one root's Amazon MQ, ElastiCache and RDS need, so native processes are the default."""
    if os.environ.get("HARNESS_DOCKER", "") != "1":
        return False
    from harness.services.docker import docker_available

    return docker_available()


def api_routes(backend: str, emulator: Service) -> dict[str, str]:
    """AWS APIs the backend sends to another endpoint than its own (boto3 service names)."""
    routes = getattr(emulator, "routes", None)
    return dict(routes) if routes else {}


def control_plane_url(backend: str, emulator: Service) -> str:
    """The moto server that holds RDS, Amazon MQ and ElastiCache (and takes the bindings)."""
    companion = getattr(emulator, "companion", None)
    return str(companion.endpoint.url if companion is not None else emulator.endpoint.url)


def make_support_services(
    run_dir: RunDirectory, docker: bool, tls: TlsFiles | None = None
) -> dict[str, Service]:
    """RabbitMQ (Amazon MQ), Redis (ElastiCache) and PostgreSQL (RDS), speaking TLS with `tls`."""
    if docker:
        from harness.services.docker import PostgresContainer, RabbitMQContainer, RedisContainer

        return {"rabbitmq": RabbitMQContainer(), "redis": RedisContainer(), "postgres": PostgresContainer()}
    from harness.services.postgres_server import PostgresService
    from harness.services.rabbitmq_server import RabbitMQService
    from harness.services.redis_server import RedisService

    return {
        "rabbitmq": RabbitMQService(run_dir, tls=tls),
        "redis": RedisService(run_dir, tls=tls),
        "postgres": PostgresService(run_dir, tls=tls),
    }
