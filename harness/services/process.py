"""Child processes the harness owns, and the run directory that records them.

Every service runs in its own process group (start_new_session) so that stopping it also
stops whatever it spawned (RabbitMQ's Erlang VM, PostgreSQL's backends). Each group is
recorded in `<run dir>/pids/`, and a new run first sweeps run directories whose owner
died without cleaning up (a killed test run, a closed terminal), so nothing is orphaned.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness.errors import MissingBinaryError, PortInUseError, ServiceStartError
from harness.paths import runs_root
from harness.services.readiness import Check, wait_until


def require_binary(name: str, component: str, *, hint: str, candidates: Sequence[str] = ()) -> str:
    """Absolute path of a program, or a MissingBinaryError that says how to install it."""
    for candidate in (*candidates, name):
        if os.path.isabs(candidate) and os.access(candidate, os.X_OK):
            return candidate
        found = shutil.which(candidate)
        if found:
            return found
    raise MissingBinaryError(component, f"`{name}` is not installed", hint=hint)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, *, grace: float = 5.0, reap: Callable[[], object] | None = None) -> None:
    """SIGTERM a process group, then SIGKILL whatever is left after `grace` seconds.

    `reap` (e.g. Popen.poll) is called while waiting: a group whose leader is our own
    unreaped child stays "alive" as a zombie, so without it every stop waits the full grace.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass
class RunDirectory:
    """A private directory for one harness run: data dirs, logs, pid records."""

    path: Path
    owner_pid: int = field(default_factory=os.getpid)

    @classmethod
    def create(cls, label: str = "run") -> RunDirectory:
        sweep_stale_runs()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = runs_root() / f"{stamp}-{label}-{os.getpid()}"
        path.mkdir(parents=True, exist_ok=True)
        (path / "pids").mkdir(exist_ok=True)
        (path / "owner.pid").write_text(str(os.getpid()))
        return cls(path)

    def sub(self, name: str) -> Path:
        target = self.path / name
        target.mkdir(parents=True, exist_ok=True)
        return target

    def record(self, name: str, pgid: int, argv: Sequence[str]) -> None:
        (self.path / "pids" / f"{name}.json").write_text(json.dumps({"pgid": pgid, "argv": list(argv)}))

    def forget(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.path / "pids" / f"{name}.json").unlink()


def _group_matches(pgid: int, argv0: str) -> bool:
    """Guard against pid reuse: the group leader must still run the program we started."""
    try:
        cmdline = Path(f"/proc/{pgid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(argv0).name.encode() in part for part in cmdline)


def sweep_stale_runs(root: Path | None = None) -> list[str]:
    """Kill process groups left by runs whose owner process is gone; returns what it killed.

    Parallel workers start runs at the same moment, so sweeps are serialised with a lock
    file and tolerate records that another sweep has already removed.
    """
    base = root or runs_root()
    killed: list[str] = []
    with (base / ".sweep.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for run in sorted(p for p in base.glob("*") if p.is_dir()):
            owner_file = run / "owner.pid"
            try:
                owner = int(owner_file.read_text())
            except (OSError, ValueError):
                continue
            if pid_alive(owner):
                continue
            for record in (run / "pids").glob("*.json"):
                with contextlib.suppress(ValueError, KeyError, OSError):
                    data = json.loads(record.read_text())
                    pgid = int(data["pgid"])
                    if _group_matches(pgid, data["argv"][0]):
                        kill_group(pgid, grace=2.0)
                        killed.append(f"{run.name}/{record.stem}")
                    record.unlink()
            owner_file.unlink(missing_ok=True)
    return killed


class ManagedProcess:
    """One long-running child process in its own group, logging to a file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        run_dir: RunDirectory,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.run_dir = run_dir
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.log_path = run_dir.sub("logs") / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = self.argv
        if self.user and os.geteuid() == 0:
            argv = ["runuser", "-u", self.user, "--", *argv]
        log = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                argv,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        self.run_dir.record(self.name, self.popen.pid, argv)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def wait_until_ready(
        self, check: Check, *, component: str, port: int, timeout: float, interval: float = 0.05
    ) -> float:
        """Poll `check` until it holds; a bind failure in the log is reported as a taken port."""
        try:
            return wait_until(
                check,
                component=component,
                timeout=timeout,
                interval=interval,
                alive=self.alive,
                log_tail=self.log_tail,
            )
        except ServiceStartError:
            if "Address already in use" in self.log_tail(40):
                program = Path(self.argv[0]).name
                raise PortInUseError(
                    component, f"port {port} is already in use ({program} could not bind it)"
                ) from None
            raise

    def signal(self, sig: int) -> None:
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)

    def stop(self, grace: float = 8.0) -> None:
        if self.popen is None:
            return
        kill_group(self.popen.pid, grace=grace, reap=self.popen.poll)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=2)
        self.run_dir.forget(self.name)
        self.popen = None
