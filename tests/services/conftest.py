"""Fixtures for the backend service tests: a private HARNESS_HOME, a run directory, a taken port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.services.process import RunDirectory


@pytest.fixture
def harness_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HARNESS_HOME so tests never touch the repository's .harness directory."""
    home = tmp_path / "harness-home"
    monkeypatch.setenv("HARNESS_HOME", str(home))
    return home


@pytest.fixture
def run_dir(harness_home: Path) -> RunDirectory:
    return RunDirectory.create("test")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other program holds: bound and listening on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])
