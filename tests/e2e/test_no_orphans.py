"""Nothing outlives the harness: not after Ctrl-C, not after the harness itself is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import PortInUseError
from harness.paths import REPO_ROOT
from harness.services.moto_server import MotoService
from harness.services.process import RunDirectory


def _start_up(home: Path) -> tuple[subprocess.Popen[str], Path]:
    env = {**os.environ, "HARNESS_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "up", "--services-only"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            break
        if not line and proc.poll() is not None:
            pytest.fail("harness up exited early:\n" + "".join(lines))
    runs = sorted((home / "runs").glob("*-up-*"))
    assert runs, "harness up created no run directory"
    return proc, runs[-1]


def _group_alive(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _live_groups(run_dir: Path) -> list[int]:
    """Process groups recorded by that run that still have a live member."""
    groups = [json.loads(r.read_text())["pgid"] for r in (run_dir / "pids").glob("*.json")]
    return [g for g in groups if _group_alive(g)]


def test_ctrl_c_stops_every_service(tmp_path: Path) -> None:
    proc, run_dir = _start_up(tmp_path)
    groups = _live_groups(run_dir)
    assert len(groups) >= 4, f"expected emulator, RabbitMQ (+epmd), Redis, PostgreSQL; got {groups}"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) in (0, 130)
    assert not [g for g in groups if _group_alive(g)]


def test_sweep_stops_what_a_killed_run_left(tmp_path: Path) -> None:
    proc, run_dir = _start_up(tmp_path)
    groups = _live_groups(run_dir)
    proc.kill()  # no cleanup at all, like `kill -9` of a test run
    proc.wait(timeout=10)
    assert [g for g in groups if _group_alive(g)], "services should still run after a kill -9"
    env = {**os.environ, "HARNESS_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "sweep"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and [g for g in groups if _group_alive(g)]:
        time.sleep(0.2)
    assert not [g for g in groups if _group_alive(g)]


def test_taken_port_is_reported_for_the_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        service = MotoService(RunDirectory.create("taken"), port=port)
        with pytest.raises(PortInUseError) as caught:
            service.start()
        assert str(port) in str(caught.value)
