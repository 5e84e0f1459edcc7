"""RabbitMQService: a private RabbitMQ node with its own epmd; broker outages; no leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pika
import pika.exceptions
import pytest
from pika.adapters.utils.connection_workflow import AMQPConnectorException
from proc_helpers import alive, descendants, group_members, pgrep_exact, processes_matching, require

from harness.errors import PortInUseError
from harness.services.process import RunDirectory, sweep_stale_runs
from harness.services.rabbitmq_server import RabbitMQService

pytestmark = pytest.mark.usefixtures("_needs_rabbitmq")


@pytest.fixture
def _needs_rabbitmq() -> None:
    require("/usr/lib/rabbitmq/bin/rabbitmq-server", "epmd")


def _connect(url: str, timeout: float = 5.0) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.socket_timeout = timeout
    params.blocked_connection_timeout = timeout
    params.connection_attempts = 1
    params.stack_timeout = timeout  # bounds the whole handshake (default 15 s)
    return pika.BlockingConnection(params)


def _round_trip(url: str, queue: str, body: bytes) -> bytes | None:
    connection = _connect(url)
    try:
        channel = connection.channel()
        channel.queue_declare(queue=queue)
        channel.basic_publish(exchange="", routing_key=queue, body=body)
        for _ in range(50):  # publishing is asynchronous: the message may take a moment to land
            _method, _props, got = channel.basic_get(queue=queue, auto_ack=True)
            if got is not None:
                return bytes(got)
            time.sleep(0.02)
        return None
    finally:
        connection.close()


def _everything_of(service: RabbitMQService) -> set[int]:
    """The broker's process tree (sh, beam.smp, erl_child_setup, helpers) and its epmd."""
    assert service.process is not None and service.process.pid is not None
    assert service.epmd is not None and service.epmd.pid is not None
    return descendants(service.process.pid) | descendants(service.epmd.pid)


def test_start_serves_amqp_chaos_hooks_and_stop_leaves_nothing(run_dir: RunDirectory) -> None:
    with RabbitMQService(run_dir) as service:
        url = service.endpoint.url
        assert url == f"amqp://harness:harness-local@127.0.0.1:{service.port}/%2F"
        assert _round_trip(url, "orders", b"hello") == b"hello"
        assert "orders" in service.ctl("list_queues", "name").stdout

        # Chaos hooks: a frozen broker accepts TCP but never answers AMQP; resume heals it.
        service.pause()
        with pytest.raises((pika.exceptions.AMQPError, AMQPConnectorException)):
            _connect(url, timeout=1.0)
        service.resume()
        assert _round_trip(url, "orders", b"after-resume") == b"after-resume"
        service.ctl("close_all_connections", "chaos test")

        ours = _everything_of(service)
        names = {pid: (os.readlink(f"/proc/{pid}/exe").rsplit("/", 1)[-1]) for pid in ours}
        assert {"beam.smp", "epmd", "erl_child_setup"} <= set(names.values())
        assert service.process is not None and service.process.pid is not None
        pgid = service.process.pid
        base_dir = str(service.base_dir)
        epmd_port = service.epmd_port
        started = time.monotonic()
    assert time.monotonic() - started < 20
    assert [pid for pid in ours if alive(pid)] == []
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    for name in ("beam.smp", "epmd", "erl_child_setup"):
        assert pgrep_exact(name) & ours == set(), name
    assert processes_matching(base_dir) == []
    assert processes_matching(f"epmd -port {epmd_port}") == []


def test_stop_app_and_start_app(run_dir: RunDirectory) -> None:
    with RabbitMQService(run_dir) as service:
        service.ctl("stop_app")
        with pytest.raises((pika.exceptions.AMQPError, AMQPConnectorException)):
            _connect(service.endpoint.url, timeout=1.0)
        service.ctl("start_app")
        service.wait_ready(timeout=30)
        assert _round_trip(service.endpoint.url, "q", b"back") == b"back"


def test_taken_port_is_reported_at_once(run_dir: RunDirectory, taken_port: int) -> None:
    service = RabbitMQService(run_dir, port=taken_port)
    started = time.monotonic()
    with pytest.raises(PortInUseError, match=str(taken_port)), service:
        pass
    assert time.monotonic() - started < 1.0
    assert service.process is None and service.epmd is None
    assert processes_matching(str(service.base_dir)) == []
    assert processes_matching(f"epmd -port {service.epmd_port}") == []


def test_two_instances_do_not_collide(run_dir: RunDirectory) -> None:
    first, second = RabbitMQService(run_dir), RabbitMQService(run_dir)
    try:
        # Started side by side: both boot at the same time on one machine.
        first.start()
        second.start()
        first.wait_ready()
        second.wait_ready()
        assert len({first.port, first.dist_port, first.epmd_port, second.port, second.dist_port}) == 5
        assert first.node != second.node
        assert _round_trip(first.endpoint.url, "only-in-first", b"1") == b"1"
        assert "only-in-first" not in second.ctl("list_queues", "name").stdout
    finally:
        first.stop()
        second.stop()


def test_sweep_after_owner_died_leaves_no_erlang_behind(run_dir: RunDirectory) -> None:
    service = RabbitMQService(run_dir)
    service.start()
    service.wait_ready()
    ours = _everything_of(service)
    assert service.process is not None and service.process.popen is not None
    assert service.epmd is not None and service.epmd.popen is not None
    popens = [service.process.popen, service.epmd.popen]
    dead = subprocess.Popen(["true"])
    dead.wait()
    (run_dir.path / "owner.pid").write_text(str(dead.pid))

    killed = sweep_stale_runs()

    assert sorted(killed) == sorted(
        [f"{run_dir.path.name}/rabbitmq-{service.port}", f"{run_dir.path.name}/rabbitmq-{service.port}-epmd"]
    )
    for popen in popens:
        popen.wait(timeout=5)
    # erl_child_setup runs in its own session and only exits once it notices beam.smp is gone.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in ours):
        time.sleep(0.05)
    assert [pid for pid in ours if alive(pid)] == []
    assert group_members(popens[0].pid) == []
    service.stop()


def test_sigkill_of_the_broker_group_takes_erl_child_setup_along(run_dir: RunDirectory) -> None:
    with RabbitMQService(run_dir) as service:
        assert service.process is not None and service.process.pid is not None
        ours = descendants(service.process.pid)
        os.killpg(service.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(pid) for pid in ours):
            time.sleep(0.05)
        assert [pid for pid in ours if alive(pid)] == []
