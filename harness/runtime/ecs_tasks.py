"""ECS tasks, run by the harness as local processes.

A task definition's container runs its image (reproduced from the image's Dockerfile, see
images.py): the image's Python environment, files, working directory and environment; the
container's `command` from the Terraform state (else the image's CMD), the container's
environment plus RunTask overrides, the emulator endpoint and credentials, and the virtual
clock. The exit code and the output are recorded for every run; nothing is left running.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.deploy.stack import Container, TaskDefinition
from harness.errors import HarnessError
from harness.runtime.images import DEFAULT_PATH, Image
from harness.runtime.lambda_runtime import RuntimeSettings


class Images(Protocol):
    def image(self, uri: str, wanted_by: str) -> Image: ...


@dataclass(frozen=True)
class Launch:
    """How one container of a task starts: argv, process environment, directory."""

    argv: list[str]
    env: dict[str, str]
    declared: dict[str, str]
    cwd: Path
    image: Image


@dataclass
class TaskRun:
    seq: int
    task_arn: str
    family: str
    container: str
    started_by: str
    environment: dict[str, str]
    exit_code: int | None = None
    output: str = ""
    duration_ms: float = 0.0
    virtual_time: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class EcsTaskRunner:
    settings: RuntimeSettings
    images: Images
    work_dir: Path
    virtual_now: Callable[[], str] = lambda: ""
    on_run: Callable[[TaskRun], None] | None = None
    timeout: float = 900.0
    runs: list[TaskRun] = field(default_factory=list)
    _seq: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: int = 0

    @property
    def busy(self) -> bool:
        return self._running > 0

    @staticmethod
    def apply_overrides(
        container: Container, overrides: dict[str, Any] | None
    ) -> tuple[list[str], dict[str, str]]:
        """The command and environment after RunTask `overrides.containerOverrides`."""
        command, env = list(container.command), dict(container.environment)
        for item in (overrides or {}).get("containerOverrides") or []:
            if item.get("name") != container.name:
                continue
            if item.get("command"):
                command = [str(part) for part in item["command"]]
            for pair in item.get("environment") or []:
                env[str(pair["name"])] = str(pair["value"])
        return command, env

    def _environment(self, image: Image, container_env: dict[str, str], task_arn: str) -> dict[str, str]:
        own = {
            **image.env,
            "PATH": f"{image.python.parent}:{DEFAULT_PATH}",
            "ECS_TASK_ARN": task_arn,
        }
        return self.settings.process_environment(
            home=self.work_dir, python_path=[], own=own, declared=container_env
        )

    def volume_dir(self, task: TaskDefinition, volume: str) -> Path:
        """The local directory standing in for a volume (an EFS file system is shared by id)."""
        source = task.volumes.get(volume, f"{task.family}-{volume}")
        path = self.work_dir / "volumes" / source.replace("/", "_")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _mounted(self, task: TaskDefinition, container: Container, env: dict[str, str]) -> dict[str, str]:
        """Environment values under a container path, moved to the volume's local directory
        (the process cannot see the container's mount point, so the path is translated)."""
        mounts = sorted(container.mount_points, key=lambda m: len(m.container_path), reverse=True)
        result = dict(env)
        for name, value in env.items():
            for mount in mounts:
                root = mount.container_path.rstrip("/")
                if value == root or value.startswith(root + "/"):
                    result[name] = str(self.volume_dir(task, mount.volume)) + value[len(root) :]
                    break
        return result

    def prepare(
        self, task: TaskDefinition, container: Container, overrides: dict[str, Any] | None, task_arn: str
    ) -> Launch:
        """How one container of a task starts: its image, command and environment."""
        image = self.images.image(container.image, f"task definition {task.family} ({task.address})")
        command, container_env = self.apply_overrides(container, overrides)
        command = command or list(image.command)
        if not command:
            raise HarnessError(
                f"container {container.name} of task definition {task.family} has no command, "
                f"and its image's Dockerfile ({image.dockerfile}) has no CMD or ENTRYPOINT",
            )
        argv = [image.executable(command[0]), *command[1:]]
        env = self._environment(image, self._mounted(task, container, container_env), task_arn)
        return Launch(argv, env, container_env, image.local_workdir, image)

    def new_task_arn(self, task: TaskDefinition) -> str:
        return f"{task.arn.split(':task-definition/')[0]}:task/{uuid.uuid4().hex}"

    def run(
        self, task: TaskDefinition, overrides: dict[str, Any] | None = None, started_by: str = "run_task"
    ) -> list[TaskRun]:
        """Run every container of the task to completion (Fargate task semantics, in sequence)."""
        return [self._run_container(task, c, overrides, started_by) for c in task.containers]

    def _run_container(
        self, task: TaskDefinition, container: Container, overrides: dict[str, Any] | None, started_by: str
    ) -> TaskRun:
        task_arn = self.new_task_arn(task)
        launch = self.prepare(task, container, overrides, task_arn)
        run = TaskRun(
            seq=next(self._seq),
            task_arn=task_arn,
            family=task.family,
            container=container.name,
            started_by=started_by,
            environment=launch.declared,
            virtual_time=self.virtual_now(),
        )
        with self._lock:
            self._running += 1
            self.runs.append(run)
        started = time.monotonic()
        try:
            done = subprocess.run(
                launch.argv,
                env=launch.env,
                cwd=launch.cwd,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                start_new_session=True,
            )
            run.exit_code, run.output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            run.exit_code, run.output = 137, f"task stopped after {self.timeout:.0f}s: {exc}"
        except FileNotFoundError as exc:
            run.exit_code, run.output = 127, f"cannot start {launch.argv[0]}: {exc}"
        finally:
            with self._lock:
                self._running -= 1
        run.duration_ms = (time.monotonic() - started) * 1000
        log = self.work_dir / f"{task.family}-{container.name}-{run.seq}.log"
        log.write_text(run.output)
        if self.on_run is not None:
            self.on_run(run)
        return run

    def reset_records(self) -> None:
        with self._lock:
            self.runs.clear()
