"""One readiness vocabulary for every service, native or Docker (after testcontainers).

A wait strategy is a callable that returns True when the service is ready, False while it
is not yet, and raises for a hard failure. `wait_until` polls it with a deadline and stops
early when the service's process has died, so a crashed start is reported at once with its
log instead of after the full timeout.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.errors import ServiceStartError

Check = Callable[[], bool]


def tcp_port(port: int, host: str = "127.0.0.1") -> Check:
    def check() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            return sock.connect_ex((host, port)) == 0

    return check


def http_ok(url: str, accept: Sequence[int] = (200,)) -> Check:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status) in accept
        except urllib.error.HTTPError as exc:
            return exc.code in accept
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    return check


def command_succeeds(
    argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 10.0
) -> Check:
    def check() -> bool:
        try:
            done = subprocess.run(
                list(argv), env=dict(env) if env else None, capture_output=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    return check


def log_contains(path: Path, text: str) -> Check:
    def check() -> bool:
        try:
            return text in path.read_text(errors="replace")
        except FileNotFoundError:
            return False

    return check


def all_of(*checks: Check) -> Check:
    def check() -> bool:
        return all(c() for c in checks)

    return check


def wait_until(
    check: Check,
    *,
    component: str,
    timeout: float,
    interval: float = 0.1,
    alive: Callable[[], bool] | None = None,
    log_tail: Callable[[], str] | None = None,
    what: str = "ready",
) -> float:
    """Poll `check` until it holds; returns the seconds it took.

    Raises ServiceStartError when the deadline passes or `alive()` says the process died.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if check():
            return time.monotonic() - started
        if alive is not None and not alive():
            tail = log_tail() if log_tail else ""
            raise ServiceStartError(
                component,
                f"process exited before it was {what}" + (f"; last log lines:\n{tail}" if tail else ""),
            )
        if time.monotonic() >= deadline:
            tail = log_tail() if log_tail else ""
            raise ServiceStartError(
                component,
                f"not {what} after {timeout:.0f}s" + (f"; last log lines:\n{tail}" if tail else ""),
            )
        time.sleep(interval)
