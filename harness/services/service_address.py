"""A private loopback address per session, where the bound managed stores listen.

Clients of RDS, Amazon MQ and ElastiCache connect to the AWS ports (5432, 5671, 6379), which
several sessions on one machine (parallel test workers) cannot all own on 127.0.0.1. Each
session takes an address of its own in 127.0.0.0/8 (all of it is loopback on Linux: nothing
listens beyond this machine) and holds a lock on it for as long as its process lives, so
no other harness process picks the same one.
"""

from __future__ import annotations

import errno
import fcntl
import random
import socket
from typing import IO

from harness.errors import ServiceStartError
from harness.paths import state_root

PORTS = (5432, 5671, 6379)
_held: list[IO[str]] = []


def _ports_free(address: str) -> bool:
    for port in PORTS:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind((address, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                return False
            raise
        finally:
            probe.close()
    return True


def reserve() -> str:
    """An address 127.0.N.1 whose AWS ports are free, locked for this process."""
    directory = state_root() / "addresses"
    directory.mkdir(parents=True, exist_ok=True)
    candidates = list(range(2, 255))
    random.shuffle(candidates)
    for n in candidates:
        address = f"127.0.{n}.1"
        handle = (directory / f"{address}.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        if _ports_free(address):
            _held.append(handle)
            return address
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
    raise ServiceStartError(
        "service-address", "no loopback address 127.0.N.1 has ports 5432, 5671 and 6379 free"
    )
