"""The TCP fault proxy against a tiny echo server, and once against a real redis-server."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.chaos.tcp_proxy import TcpFaultProxy
from harness.errors import PortInUseError

RESET_OR_EOF = (ConnectionResetError, BrokenPipeError)


class EchoServer:
    """Echoes every byte back; closes its side after the client's EOF."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="echo-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)
            threading.Thread(target=self._echo, args=(conn,), name="echo-conn", daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self) -> None:
        # shutdown() wakes the threads blocked in accept/recv; close() alone would not.
        for sock in (self.listener, *self._conns):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[TcpFaultProxy]:
    with TcpFaultProxy("echo", "127.0.0.1", echo.port) as p:
        yield p


def connect(proxy: TcpFaultProxy, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=timeout)


def exchange(sock: socket.socket, payload: bytes) -> bytes:
    """Send `payload` and read exactly as many bytes back."""
    sock.sendall(payload)
    received = bytearray()
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return bytes(received)


def assert_reset_or_eof(sock: socket.socket) -> None:
    """The connection is dead: the next recv fails with a reset or sees EOF."""
    try:
        data = sock.recv(1024)
    except RESET_OR_EOF:
        return
    assert data == b"", f"expected a dead connection, got {data!r}"


def assert_new_connection_reset(proxy: TcpFaultProxy) -> None:
    """A new connection is accepted and then reset, before or after connect() returns."""
    try:
        sock = connect(proxy)
    except ConnectionResetError:
        return  # on loopback the RST can arrive before connect() has looked at the socket
    with sock:
        assert_reset_or_eof(sock)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_passes_a_large_payload_intact_in_both_directions(proxy: TcpFaultProxy) -> None:
    payload = os.urandom(1024 * 1024)
    with connect(proxy) as sock:
        # Send from a thread: the echo comes back while we are still sending, and a
        # single-threaded client would fill both socket buffers and deadlock.
        def send() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
        sender.join()
    assert bytes(received) == payload
    stats = proxy.stats
    assert (stats.accepted, stats.bytes_to_upstream, stats.bytes_to_client) == (1, len(payload), len(payload))
    wait_for(lambda: proxy.stats.active == 0)
    assert proxy.stats.resets == 0


def test_latency_delays_each_direction(proxy: TcpFaultProxy) -> None:
    with connect(proxy) as sock:
        assert exchange(sock, b"warm-up") == b"warm-up"
        proxy.set_latency(100)
        started = time.monotonic()
        assert exchange(sock, b"ping") == b"ping"
        # Request and reply are each held back 100 ms; only a lower bound is reliable.
        assert time.monotonic() - started >= 0.2


def test_latency_with_jitter_keeps_byte_order(proxy: TcpFaultProxy) -> None:
    proxy.set_latency(5, jitter_ms=5)
    messages = [f"<{i}>".encode() for i in range(100)]
    with connect(proxy) as sock:

        def send() -> None:
            for message in messages:
                sock.sendall(message)
                time.sleep(0.001)  # separate chunks, so jitter has something to reorder
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
        sender.join()
    assert bytes(received) == b"".join(messages)


def test_clear_releases_delayed_bytes(proxy: TcpFaultProxy) -> None:
    with connect(proxy, timeout=3) as sock:
        proxy.set_latency(60_000)
        sock.sendall(b"held, ")
        time.sleep(0.05)
        proxy.clear()
        # Neither the held bytes nor later ones may wait out the old latency (the recv
        # timeout would fire first).
        sock.sendall(b"then more")
        received = b""
        while len(received) < len(b"held, then more"):
            received += sock.recv(1024)
        assert received == b"held, then more"


def test_reset_breaks_open_connections_and_keeps_accepting(proxy: TcpFaultProxy) -> None:
    with connect(proxy) as sock:
        assert exchange(sock, b"hello") == b"hello"
        outcome: list[object] = []

        def blocked_recv() -> None:
            try:
                outcome.append(sock.recv(1024))
            except OSError as exc:
                outcome.append(exc)

        reader = threading.Thread(target=blocked_recv)
        reader.start()
        time.sleep(0.1)
        assert proxy.reset() == 1
        reader.join(timeout=5)
    assert outcome and (outcome[0] == b"" or isinstance(outcome[0], ConnectionResetError)), outcome
    assert proxy.stats.resets == 1
    with connect(proxy) as sock:
        assert exchange(sock, b"again") == b"again"


def test_reset_mode_resets_new_connections_only(proxy: TcpFaultProxy, echo: EchoServer) -> None:
    with connect(proxy) as existing:
        assert exchange(existing, b"before") == b"before"
        proxy.set_mode("reset")
        assert_new_connection_reset(proxy)
        assert echo.accepted == 1, "a connection in reset mode must not reach the upstream"
        assert exchange(existing, b"still works") == b"still works"
    proxy.set_mode("pass")
    with connect(proxy) as sock:
        assert exchange(sock, b"after") == b"after"
    assert proxy.stats.resets == 1


def test_blackhole_hangs_clients_until_clear(proxy: TcpFaultProxy, echo: EchoServer) -> None:
    old = connect(proxy, timeout=0.3)
    assert exchange(old, b"before") == b"before"
    proxy.set_mode("blackhole")
    new = connect(proxy, timeout=0.3)
    for sock in (old, new):
        sock.sendall(b"anyone there?")
        with pytest.raises(TimeoutError):
            sock.recv(1024)
    assert echo.accepted == 1, "a blackholed connection must not reach the upstream"
    assert proxy.stats.bytes_dropped >= 2 * len(b"anyone there?")

    proxy.set_latency(5_000)
    proxy.clear()
    for sock in (old, new):
        sock.settimeout(5)
        assert_reset_or_eof(sock)
        sock.close()
    with connect(proxy) as sock:
        assert exchange(sock, b"after") == b"after"


def test_refused_upstream_resets_the_client() -> None:
    # Bound but not listening: connecting to it is refused, and nobody else can take it.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        with TcpFaultProxy("nowhere", "127.0.0.1", unused.getsockname()[1]) as proxy:
            assert_new_connection_reset(proxy)
            assert proxy.stats.upstream_failures == 1


def test_stop_closes_everything_and_leaves_no_thread(echo: EchoServer) -> None:
    proxy = TcpFaultProxy("stopper", "127.0.0.1", echo.port).start()
    sock = connect(proxy)
    assert exchange(sock, b"hi") == b"hi"
    proxy.set_latency(10_000)
    sock.sendall(b"stuck in the latency queue")
    proxy.stop()
    proxy.stop()  # idempotent
    assert proxy.thread_name not in {t.name for t in threading.enumerate()}
    assert_reset_or_eof(sock)
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address, timeout=5)

    port = proxy.port
    proxy.clear()  # faults outlive a restart
    with proxy.start() as restarted:
        assert restarted.port == port, "clients were given this port; a restart must keep it"
        with connect(restarted) as sock:
            assert exchange(sock, b"back") == b"back"


def test_a_taken_port_is_a_clear_error(echo: EchoServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        proxy = TcpFaultProxy("redis", "127.0.0.1", echo.port, port=port)
        with pytest.raises(PortInUseError, match=rf"tcp-proxy redis.*port {port} is already in use"):
            proxy.start()
    assert not proxy.running


def test_explicit_port_and_bad_arguments(echo: EchoServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with TcpFaultProxy("fixed", "127.0.0.1", echo.port, port=port) as proxy:
        assert proxy.address == ("127.0.0.1", port)
        with pytest.raises(ValueError, match="unknown mode"):
            proxy.set_mode("drop")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="latency"):
            proxy.set_latency(-1)
    with pytest.raises(RuntimeError, match="no port"):
        _ = TcpFaultProxy("unbound", "127.0.0.1", echo.port).port


# -- a real redis-server ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    data_dir: Path = tmp_path_factory.mktemp("redis")
    config = {"port": str(port), "bind": "127.0.0.1", "save": "", "appendonly": "no", "dir": str(data_dir)}
    server = subprocess.Popen(
        [binary, *(part for key, value in config.items() for part in (f"--{key}", value))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                assert server.poll() is None, "redis-server exited during startup"
                assert time.monotonic() < deadline, "redis-server did not answer PING"
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_redis_through_the_proxy_times_out_in_blackhole_and_recovers(redis_port: int) -> None:
    with TcpFaultProxy("redis", "127.0.0.1", redis_port) as proxy:
        # redis-py retries timeouts 10 times with backoff by default, which would turn
        # one 0.5 s timeout into several seconds; the test wants the first one.
        client = redis.Redis(
            host="127.0.0.1", port=proxy.port, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        try:
            client.set("chaos", "ok")
            assert client.get("chaos") == b"ok"
            proxy.set_mode("blackhole")
            with pytest.raises(redis.exceptions.TimeoutError):
                client.get("chaos")
            proxy.clear()
            assert client.get("chaos") == b"ok"
        finally:
            client.close()
