"""docker_available(): a quick, honest "no" on machines without a Docker daemon."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.services.docker import RabbitMQContainer, RedisContainer, docker_available
from harness.services.ports import free_port

NO_DAEMON = not Path("/var/run/docker.sock").exists()


@pytest.mark.skipif(not NO_DAEMON, reason="a Docker socket exists on this machine")
def test_no_daemon_answers_false_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    started = time.perf_counter()
    assert docker_available() is False
    assert time.perf_counter() - started < 0.1


def test_unreachable_tcp_daemon_answers_false_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")
    started = time.perf_counter()
    assert docker_available() is False
    assert time.perf_counter() - started < 0.1


def test_missing_unix_socket_answers_false(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'docker.sock'}")
    assert docker_available() is False


def test_container_variants_share_the_service_interface() -> None:
    # Only construction is testable here: nothing touches Docker until start().
    redis = RedisContainer()
    rabbit = RabbitMQContainer(port=5673)
    assert (redis.kind, redis.name, rabbit.kind, rabbit.name) == ("docker", "redis", "docker", "rabbitmq")
    redis.stop()  # safe before start
