"""A TCP proxy that can slow, reset or blackhole the connections passing through it.

The harness puts one in front of Redis and PostgreSQL (the pipeline is given the proxy's
port instead of the server's) so chaos runs can break the link without touching the server.

One selector thread per proxy does all the forwarding. No thread ever blocks in recv or send
on a proxied socket, so a reset goes out the moment it is asked for and stop() cannot hang
on a stuck peer: a socket closed while another thread sits in recv on it would not be
released (and no RST sent) until that recv returned. Control calls (reset, set_mode, stop)
come from other threads; they take the proxy's lock, which the loop holds whenever it is not
waiting in select(), and then wake the loop so it re-reads the new state.
"""

from __future__ import annotations

import contextlib
import errno
import math
import random
import selectors
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, get_args

from harness.errors import PortInUseError, ServiceStartError

Mode = Literal["pass", "reset", "blackhole"]
MODES: tuple[str, ...] = get_args(Mode)

#: Bytes read per recv; latency is applied per chunk of at most this size.
CHUNK = 64 * 1024
#: Bytes buffered per direction before the proxy stops reading from the sender: a slow
#: receiver or a long latency then pushes back on the sender instead of growing memory.
HIGH_WATER = 1024 * 1024
#: How long a new connection may wait for the upstream's TCP handshake.
UPSTREAM_CONNECT_TIMEOUT = 5.0
#: How long stop() waits for the loop thread; it only ever blocks in select(), which the
#: wake-up socket interrupts, so this is a safety net rather than an expected wait.
STOP_TIMEOUT = 5.0

# SO_LINGER on with a zero timeout makes close() send RST and drop unsent data.
_LINGER_RST = struct.pack("ii", 1, 0)
_LISTENER = object()
_WAKE = object()
Side = Literal["client", "upstream"]
_SIDES: tuple[Side, ...] = ("client", "upstream")


@dataclass(frozen=True)
class ProxyStats:
    """A snapshot of a proxy's counters since it was created."""

    accepted: int
    active: int
    bytes_to_upstream: int
    bytes_to_client: int
    #: Bytes read and thrown away: in blackhole mode, or buffered when it began.
    bytes_dropped: int
    #: Connections the proxy ended with an RST (reset(), reset mode, a peer's own RST
    #: passed on, leaving blackhole mode, a failed upstream connect, stop()).
    resets: int
    upstream_failures: int


@dataclass
class _Counters:
    accepted: int = 0
    bytes_to_upstream: int = 0
    bytes_to_client: int = 0
    bytes_dropped: int = 0
    resets: int = 0
    upstream_failures: int = 0


@dataclass
class _Pipe:
    """One direction of a connection: chunks waiting for their due time, then for the socket."""

    to_upstream: bool
    pending: deque[tuple[float, bytes]] = field(default_factory=deque)
    pending_bytes: int = 0
    out: bytearray = field(default_factory=bytearray)
    last_due: float = 0.0
    eof_read: bool = False
    eof_sent: bool = False

    def buffered(self) -> int:
        return self.pending_bytes + len(self.out)

    def wants_read(self) -> bool:
        return not self.eof_read and self.buffered() < HIGH_WATER

    def push(self, data: bytes, due: float) -> None:
        # Jitter may give a chunk an earlier due time than the one before it; never
        # letting due times go backwards keeps the byte stream in order.
        due = max(due, self.last_due)
        self.last_due = due
        self.pending.append((due, data))
        self.pending_bytes += len(data)

    def promote(self, now: float) -> None:
        while self.pending and self.pending[0][0] <= now:
            _, data = self.pending.popleft()
            self.pending_bytes -= len(data)
            self.out += data

    def release(self) -> None:
        """Make everything pending due now, and forget the old due times."""
        self.promote(math.inf)
        self.last_due = 0.0

    def drop(self) -> int:
        dropped = self.buffered()
        self.pending.clear()
        self.pending_bytes = 0
        self.out.clear()
        return dropped


class _Conn:
    """A client connection and, unless it was accepted while blackholed, its upstream."""

    def __init__(self, client: socket.socket, upstream: socket.socket | None) -> None:
        self.client = client
        self.upstream = upstream
        self.connecting = upstream is not None
        self.connect_deadline = time.monotonic() + UPSTREAM_CONNECT_TIMEOUT
        self.to_upstream = _Pipe(to_upstream=True)
        self.to_client = _Pipe(to_upstream=False)
        self.masks: dict[Side, int] = {"client": 0, "upstream": 0}
        self.closed = False

    def sock(self, side: Side) -> socket.socket | None:
        return self.client if side == "client" else self.upstream

    def pipes(self) -> tuple[_Pipe, _Pipe]:
        return self.to_upstream, self.to_client


def _close_socket(sock: socket.socket, *, rst: bool) -> None:
    if rst:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    sock.close()


def _nodelay(sock: socket.socket) -> None:
    # Redis and PostgreSQL exchange small request/reply messages; Nagle's algorithm would
    # hold them back and add latency nobody asked for.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class TcpFaultProxy:
    """Forwards TCP connections from `host:port` to `upstream_host:upstream_port`, with faults.

    Modes (set_mode):
      pass       forward everything (after any latency set with set_latency).
      reset      new connections are accepted and immediately reset (RST); connections
                 already open keep working; call reset() as well to end them.
      blackhole  new connections are accepted but never connected upstream; every byte from
                 any connection is read and dropped, nothing is forwarded or answered, so
                 clients wait until their own timeouts. Leaving blackhole mode resets every
                 open connection, since bytes were lost mid-stream.

    Latency and mode survive stop() and start(); clear() puts them back to normal.
    """

    def __init__(
        self, name: str, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.name = name
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.host = host
        self._requested_port = port
        self._bound_port: int | None = None
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._selector: selectors.BaseSelector | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._upstream_addr: tuple[socket.AddressFamily, Any] | None = None
        self._conns: list[_Conn] = []
        self._mode: Mode = "pass"
        self._latency = (0.0, 0.0)  # (base, jitter) in seconds
        self._counts = _Counters()

    @property
    def component(self) -> str:
        return f"tcp-proxy {self.name}"

    @property
    def thread_name(self) -> str:
        """Name of the proxy's forwarding thread (tests look for it after stop())."""
        return f"tcp-proxy[{self.name}]"

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> TcpFaultProxy:
        """Listen and start forwarding; port 0 picks a free port. Returns self.

        A restarted proxy listens on the port it had before, since clients were given it.
        """
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"{self.component} is already running")
            self._upstream_addr = self._resolve_upstream()
            listener = self._listen()
            self._bound_port = listener.getsockname()[1]
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            selector = selectors.DefaultSelector()
            selector.register(listener, selectors.EVENT_READ, _LISTENER)
            selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
            self._listener, self._selector = listener, selector
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, reset every open connection and join the forwarding thread."""
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            self._stopping = True
        self._wake()
        thread.join(timeout=STOP_TIMEOUT)
        with self._lock:
            for conn in list(self._conns):
                self._close_conn(conn, rst=True)
            for sock in (self._listener, self._wake_r, self._wake_w):
                if sock is not None:
                    sock.close()
            if self._selector is not None:
                self._selector.close()
            self._listener = self._wake_r = self._wake_w = None
            self._selector = None
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def __enter__(self) -> TcpFaultProxy:
        return self if self.running else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._bound_port or self._requested_port}"
        upstream = f"{self.upstream_host}:{self.upstream_port}"
        return f"<TcpFaultProxy {self.name} {where} -> {upstream} mode={self._mode}>"

    @property
    def port(self) -> int:
        """The listening port (the free port picked when constructed with port=0)."""
        if self._bound_port is not None:
            return self._bound_port
        if self._requested_port:
            return self._requested_port
        raise RuntimeError(f"{self.component} has no port until start() picks one")

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    # -- faults ------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_latency(self, ms: float, jitter_ms: float = 0.0) -> None:
        """Delay every chunk, in both directions, by `ms` ± up to `jitter_ms` milliseconds.

        Applies to bytes read from now on. Order within each direction is kept, so a chunk
        never overtakes the one before it even when jitter would have it do so.
        """
        if ms < 0 or jitter_ms < 0 or not math.isfinite(ms) or not math.isfinite(jitter_ms):
            raise ValueError(f"latency must be finite and >= 0, got ms={ms} jitter_ms={jitter_ms}")
        self._latency = (ms / 1000.0, jitter_ms / 1000.0)
        self._wake()

    def reset(self) -> int:
        """Reset (RST) every open connection, on both the client and upstream side, now.

        Returns how many connections were reset. New connections are still accepted
        (combine with set_mode("reset") to refuse those too).
        """
        with self._lock:
            conns = list(self._conns)
            for conn in conns:
                self._close_conn(conn, rst=True)
        self._wake()
        return len(conns)

    def set_mode(self, mode: Mode) -> None:
        """Switch between "pass", "reset" and "blackhole" (see the class docstring)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        with self._lock:
            previous, self._mode = self._mode, mode
            if mode == "blackhole" and previous != "blackhole":
                for conn in self._conns:
                    self._counts.bytes_dropped += sum(pipe.drop() for pipe in conn.pipes())
            elif previous == "blackhole" and mode != "blackhole":
                # Bytes were dropped mid-stream, so these connections can never be in step
                # with the server again; an RST makes clients reconnect instead of waiting
                # for replies that will never come.
                for conn in list(self._conns):
                    self._close_conn(conn, rst=True)
        self._wake()

    def clear(self) -> None:
        """Back to pass mode with no latency; blackholed connections are reset."""
        with self._lock:
            self._latency = (0.0, 0.0)
            self.set_mode("pass")
            for conn in self._conns:
                for pipe in conn.pipes():
                    pipe.release()
        self._wake()

    @property
    def stats(self) -> ProxyStats:
        with self._lock:
            c = self._counts
            return ProxyStats(
                accepted=c.accepted,
                active=len(self._conns),
                bytes_to_upstream=c.bytes_to_upstream,
                bytes_to_client=c.bytes_to_client,
                bytes_dropped=c.bytes_dropped,
                resets=c.resets,
                upstream_failures=c.upstream_failures,
            )

    # -- setup -------------------------------------------------------------------------

    def _resolve_upstream(self) -> tuple[socket.AddressFamily, Any]:
        try:
            infos = socket.getaddrinfo(self.upstream_host, self.upstream_port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ServiceStartError(
                self.component, f"cannot resolve upstream {self.upstream_host}:{self.upstream_port}: {exc}"
            ) from exc
        family, _, _, _, sockaddr = infos[0]
        return family, sockaddr

    def _listen(self) -> socket.socket:
        port = self._bound_port or self._requested_port
        try:
            # create_server sets SO_REUSEADDR, so a restart is not blocked by TIME_WAIT
            # connections, while a port another socket listens on still fails to bind.
            listener = socket.create_server((self.host, port), backlog=128)
        except OSError as exc:
            where = f"{self.host}:{port}"
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    self.component,
                    f"cannot listen on {where}: port {port} is already in use",
                    hint="stop whatever holds the port, or pass port=0 to pick a free one",
                ) from exc
            raise ServiceStartError(self.component, f"cannot listen on {where}: {exc}") from exc
        listener.setblocking(False)
        return listener

    def _wake(self) -> None:
        sock = self._wake_w
        if sock is not None:
            # A full buffer means a wake-up is already pending; a closed socket means the
            # proxy stopped in the meantime. Neither needs another byte.
            with contextlib.suppress(OSError):
                sock.send(b"\0")

    # -- the forwarding loop (runs in the proxy's thread, under the lock) ---------------

    def _run(self) -> None:
        selector = self._selector
        assert selector is not None
        try:
            while True:
                with self._lock:
                    if self._stopping:
                        return
                    timeout = self._timeout(time.monotonic())
                events = selector.select(timeout)
                with self._lock:
                    if self._stopping:
                        return
                    for key, mask in events:
                        self._dispatch(key, mask)
                    self._tick(time.monotonic())
        except BaseException:
            # A bug here must not leave clients hanging on a proxy that no longer forwards.
            with self._lock:
                if self._listener is not None:
                    with contextlib.suppress(KeyError, ValueError):
                        selector.unregister(self._listener)
                    self._listener.close()
                for conn in list(self._conns):
                    self._close_conn(conn, rst=True)
            raise

    def _timeout(self, now: float) -> float | None:
        deadlines = []
        for conn in self._conns:
            if conn.connecting:
                deadlines.append(conn.connect_deadline)
            if self._mode != "blackhole":
                deadlines.extend(pipe.pending[0][0] for pipe in conn.pipes() if pipe.pending)
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _dispatch(self, key: selectors.SelectorKey, mask: int) -> None:
        if key.data is _LISTENER:
            self._accept()
            return
        if key.data is _WAKE:
            with contextlib.suppress(OSError):
                while self._wake_r is not None and self._wake_r.recv(4096):
                    pass
            return
        conn, side = key.data
        # Events from the same select() batch may belong to a connection that an earlier
        # event, or a control call, has closed since.
        if conn.closed or conn.sock(side) is None:
            return
        if side == "upstream" and conn.connecting:
            if mask & selectors.EVENT_WRITE:
                self._finish_connect(conn)
            return
        if mask & selectors.EVENT_WRITE:
            self._flush(conn, conn.to_client if side == "client" else conn.to_upstream, time.monotonic())
        if mask & selectors.EVENT_READ and not conn.closed and conn.sock(side) is not None:
            self._read(conn, side)

    def _tick(self, now: float) -> None:
        for conn in list(self._conns):
            if conn.connecting and now >= conn.connect_deadline:
                self._upstream_failed(conn)
            for pipe in conn.pipes():
                self._flush(conn, pipe, now)
            if not conn.closed:
                self._update_interest(conn)

    def _accept(self) -> None:
        assert self._listener is not None
        # Bounded so a connection flood cannot starve the connections already open.
        for _ in range(64):
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # Out of file descriptors and the like: the connection stays in the
                # backlog and is retried on the next readiness event.
                return
            self._counts.accepted += 1
            if self._mode == "reset":
                _close_socket(client, rst=True)
                self._counts.resets += 1
                continue
            client.setblocking(False)
            _nodelay(client)
            upstream = None
            if self._mode == "pass":
                upstream = self._open_upstream()
                if upstream is None:
                    _close_socket(client, rst=True)
                    self._counts.resets += 1
                    self._counts.upstream_failures += 1
                    continue
            conn = _Conn(client, upstream)
            self._conns.append(conn)
            self._update_interest(conn)

    def _open_upstream(self) -> socket.socket | None:
        assert self._upstream_addr is not None
        family, sockaddr = self._upstream_addr
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        _nodelay(sock)
        # Loopback may finish or refuse the handshake immediately; either way the socket
        # becomes writable and SO_ERROR tells which, so both cases take the same path.
        result = sock.connect_ex(sockaddr)
        if result in (0, errno.EINPROGRESS):
            return sock
        sock.close()
        return None

    def _finish_connect(self, conn: _Conn) -> None:
        assert conn.upstream is not None
        if conn.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._upstream_failed(conn)
            return
        conn.connecting = False

    def _upstream_failed(self, conn: _Conn) -> None:
        self._counts.upstream_failures += 1
        if self._mode == "blackhole":
            self._detach_upstream(conn)
        else:
            self._close_conn(conn, rst=True)

    def _read(self, conn: _Conn, side: Side) -> None:
        sock = conn.sock(side)
        assert sock is not None
        failed = False
        try:
            data = sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, failed = b"", True
        if self._mode == "blackhole":
            if data:
                self._counts.bytes_dropped += len(data)
            elif side == "client":
                # The client gave up; nobody is left to keep hanging.
                self._close_conn(conn, rst=False)
            else:
                # Passing the server's close on would answer the client; keep it hanging.
                self._detach_upstream(conn)
            return
        if failed:
            # The peer reset its side: pass the reset on to the other.
            self._close_conn(conn, rst=True)
            return
        pipe = conn.to_upstream if side == "client" else conn.to_client
        if data:
            base, jitter = self._latency
            delay = base + random.uniform(-jitter, jitter) if jitter else base
            pipe.push(data, time.monotonic() + max(delay, 0.0))
        else:
            pipe.eof_read = True

    def _flush(self, conn: _Conn, pipe: _Pipe, now: float) -> None:
        if conn.closed or self._mode == "blackhole":
            return
        pipe.promote(now)
        dst = conn.upstream if pipe.to_upstream else conn.client
        if dst is None or (pipe.to_upstream and conn.connecting):
            return
        while pipe.out:
            try:
                sent = dst.send(pipe.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close_conn(conn, rst=True)
                return
            del pipe.out[:sent]
            if pipe.to_upstream:
                self._counts.bytes_to_upstream += sent
            else:
                self._counts.bytes_to_client += sent
        if pipe.eof_read and not pipe.pending and not pipe.eof_sent:
            # Half-close: the other direction may still have bytes to deliver.
            pipe.eof_sent = True
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            if conn.to_upstream.eof_sent and conn.to_client.eof_sent:
                self._close_conn(conn, rst=False)

    # -- bookkeeping -------------------------------------------------------------------

    def _update_interest(self, conn: _Conn) -> None:
        blackhole = self._mode == "blackhole"
        read, write = selectors.EVENT_READ, selectors.EVENT_WRITE
        # In blackhole mode keep reading (and dropping) so senders never see back-pressure.
        mask = read if blackhole or conn.to_upstream.wants_read() else 0
        if not blackhole and conn.to_client.out:
            mask |= write
        self._set_interest(conn, "client", mask)
        if conn.upstream is None:
            return
        if conn.connecting:
            mask = write
        else:
            mask = read if (blackhole and not conn.to_client.eof_read) or conn.to_client.wants_read() else 0
            if not blackhole and conn.to_upstream.out:
                mask |= write
        self._set_interest(conn, "upstream", mask)

    def _set_interest(self, conn: _Conn, side: Side, mask: int) -> None:
        sock = conn.sock(side)
        current = conn.masks[side]
        if sock is None or mask == current:
            return
        assert self._selector is not None
        if current == 0:
            self._selector.register(sock, mask, (conn, side))
        elif mask == 0:
            self._selector.unregister(sock)
        else:
            self._selector.modify(sock, mask, (conn, side))
        conn.masks[side] = mask

    def _forget(self, conn: _Conn, side: Side) -> None:
        sock = conn.sock(side)
        if sock is not None and conn.masks[side] and self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
        conn.masks[side] = 0

    def _detach_upstream(self, conn: _Conn) -> None:
        if conn.upstream is not None:
            self._forget(conn, "upstream")
            conn.upstream.close()
            conn.upstream = None
            conn.connecting = False

    def _close_conn(self, conn: _Conn, *, rst: bool) -> None:
        if conn.closed:
            return
        conn.closed = True
        for side in _SIDES:
            sock = conn.sock(side)
            if sock is not None:
                # Unregister before closing: the selector cannot forget a closed fd.
                self._forget(conn, side)
                _close_socket(sock, rst=rst)
        self._conns.remove(conn)
        if rst:
            self._counts.resets += 1
