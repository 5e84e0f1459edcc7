"""RedisService: a private redis-server that answers real commands and leaves nothing behind."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest
import redis
from proc_helpers import group_members, processes_matching, require

from harness.errors import PortInUseError
from harness.services.process import RunDirectory, sweep_stale_runs
from harness.services.redis_server import RedisService

pytestmark = pytest.mark.usefixtures("_needs_redis")


@pytest.fixture
def _needs_redis() -> None:
    require("redis-server")


def test_start_serves_real_commands_and_stop_leaves_nothing(run_dir: RunDirectory) -> None:
    with RedisService(run_dir) as service:
        endpoint = service.endpoint
        assert endpoint.url == f"redis://127.0.0.1:{service.port}/0"
        client = redis.Redis.from_url(endpoint.url)
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.execute_command("DEBUG", "SLEEP", "0")  # chaos tests rely on DEBUG
        client.close()
        assert service.process is not None and service.process.pid is not None
        pgid = service.process.pid
        data_dir = str(service.data_dir)
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert group_members(pgid) == []
    assert processes_matching(data_dir) == []
    assert list((run_dir.path / "pids").glob("*.json")) == []


def test_taken_port_is_reported_at_once(run_dir: RunDirectory, taken_port: int) -> None:
    service = RedisService(run_dir, port=taken_port)
    started = time.monotonic()
    with pytest.raises(PortInUseError, match=str(taken_port)), service:
        pass
    assert time.monotonic() - started < 1.0
    assert service.process is None
    assert processes_matching(f"--port {taken_port}") == []


def test_port_bound_but_not_listening_is_caught_when_redis_dies(run_dir: RunDirectory) -> None:
    # connect() cannot see a bound, non-listening socket; redis-server then fails to bind and exits.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = int(holder.getsockname()[1])
        service = RedisService(run_dir, port=port)
        started = time.monotonic()
        with pytest.raises(PortInUseError, match=str(port)), service:
            pass
        assert time.monotonic() - started < 5.0
    assert processes_matching(f"--port {port}") == []


def test_two_instances_do_not_collide(run_dir: RunDirectory) -> None:
    with RedisService(run_dir) as first, RedisService(run_dir) as second:
        assert first.port != second.port
        assert first.data_dir != second.data_dir
        a = redis.Redis.from_url(first.endpoint.url)
        b = redis.Redis.from_url(second.endpoint.url)
        a.set("who", "first")
        b.set("who", "second")
        assert (a.get("who"), b.get("who")) == (b"first", b"second")
        a.close()
        b.close()


def test_sweep_kills_a_service_whose_owner_died(run_dir: RunDirectory) -> None:
    service = RedisService(run_dir)
    service.start()
    service.wait_ready()
    assert service.process is not None and service.process.popen is not None
    popen = service.process.popen
    # Pretend the run belonged to a process that has since died.
    dead = subprocess.Popen(["true"])
    dead.wait()
    (run_dir.path / "owner.pid").write_text(str(dead.pid))

    killed = sweep_stale_runs()

    assert killed == [f"{run_dir.path.name}/redis-{service.port}"]
    popen.wait(timeout=5)
    assert group_members(popen.pid) == []
    assert list((run_dir.path / "pids").glob("*.json")) == []
    service.stop()  # still safe after the sweep
