"""Which implementation stands in for each cloud service, and saying so clearly.

The AWS emulator is moto server (default) or LocalStack on the host. RabbitMQ, Redis and
PostgreSQL run as native processes, or as containers when a Docker daemon answers and
HARNESS_DOCKER is not 0.
"""

from __future__ import annotations

import os

from harness.errors import HarnessError
from harness.services.base import Service
from harness.services.process import RunDirectory

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
    if os.environ.get("HARNESS_DOCKER", "") == "0":
        return False
    from harness.services.docker import docker_available

    return docker_available()


def make_support_services(run_dir: RunDirectory, docker: bool) -> dict[str, Service]:
    """RabbitMQ (Amazon MQ), Redis (ElastiCache) and PostgreSQL (RDS)."""
    if docker:
        from harness.services.docker import PostgresContainer, RabbitMQContainer, RedisContainer

        return {"rabbitmq": RabbitMQContainer(), "redis": RedisContainer(), "postgres": PostgresContainer()}
    from harness.services.postgres_server import PostgresService
    from harness.services.rabbitmq_server import RabbitMQService
    from harness.services.redis_server import RedisService

    return {
        "rabbitmq": RabbitMQService(run_dir),
        "redis": RedisService(run_dir),
        "postgres": PostgresService(run_dir),
    }
