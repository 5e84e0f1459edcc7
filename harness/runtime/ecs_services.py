"""ECS services, supervised by the harness as long-running local processes.

For each service in the Terraform state, `desired_count` copies of its task run at once,
each a process built exactly like an ECS task (`EcsTaskRunner.prepare`: command, declared
environment, volumes). A task that exits is recorded and replaced, as the ECS scheduler
would, after a short delay that grows while tasks keep dying young (ECS's restart
throttling). Stopping sends SIGTERM, waits the container's `stopTimeout`, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.deploy.stack import EcsService, Stack, TaskDefinition
from harness.errors import HarnessError
from harness.runtime.ecs_tasks import EcsTaskRunner

#: Replacement delay after a task stops, doubled for each task that died within MIN_HEALTHY_S.
RESTART_DELAY_S = 0.3
MAX_RESTART_DELAY_S = 5.0
MIN_HEALTHY_S = 10.0
#: Longest the harness waits for a graceful stop (ECS allows up to 120 s).
MAX_STOP_WAIT_S = 15.0


@dataclass
class ServiceTask:
    """One running (or finished) copy of a service's task."""

    service: str
    slot: int
    task_arn: str
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float
    virtual_started: str
    exit_code: int | None = None
    stopped_by: str | None = None

    @property
    def running(self) -> bool:
        return self.exit_code is None and self.process.poll() is None


@dataclass(frozen=True)
class TaskEvent:
    """A task started or stopped, for the timeline and the `ecs_services` expectation."""

    kind: str  # started | stopped
    service: str
    slot: int
    task_arn: str
    exit_code: int | None
    reason: str
    virtual_time: str


@dataclass
class _Slot:
    task: ServiceTask | None = None
    restart_at: float | None = None
    quick_deaths: int = 0


@dataclass
class EcsServiceSupervisor:
    stack: Stack
    runner: EcsTaskRunner
    log_dir: Path
    virtual_now: Callable[[], str] = lambda: ""
    on_event: Callable[[TaskEvent], None] | None = None
    interval: float = 0.1
    events: list[TaskEvent] = field(default_factory=list)
    _slots: dict[tuple[str, int], _Slot] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        for service in self.stack.ecs_services.values():
            task = self._task_definition(service)
            for slot in range(service.desired_count):
                self._slots[(service.name, slot)] = _Slot()
                self._launch(service, task, slot)
        if self._slots:
            self._thread = threading.Thread(target=self._watch, name="ecs-services", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            tasks = [s.task for s in self._slots.values() if s.task is not None and s.task.running]
            for task in tasks:
                self._terminate(task, "harness stopping")
            self._slots.clear()

    def _task_definition(self, service: EcsService) -> TaskDefinition:
        try:
            return self.stack.resolve_task_definition(service.task_definition)
        except KeyError as exc:
            raise HarnessError(
                f"ECS service {service.name} runs task definition {service.task_definition}, "
                f"which is not in the stack: {exc}"
            ) from None

    def _launch(self, service: EcsService, task: TaskDefinition, slot: int) -> ServiceTask:
        if len(task.containers) != 1:
            raise HarnessError(
                f"ECS service {service.name}: task definition {task.family} has "
                f"{len(task.containers)} containers; the harness supervises single-container services"
            )
        container = task.containers[0]
        task_arn = self.runner.new_task_arn(task)
        launch = self.runner.prepare(task, container, None, task_arn)
        argv, env = launch.argv, launch.env
        env["ECS_SERVICE_NAME"] = service.name
        log_path = self.log_dir / f"{service.name}-{slot}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            log.write(f"--- task {task_arn} started at {self.virtual_now()}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    argv,
                    env=env,
                    cwd=launch.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise HarnessError(f"ECS service {service.name}: cannot start {argv[0]}: {exc}") from None
        running = ServiceTask(
            service.name, slot, task_arn, process, log_path, time.monotonic(), self.virtual_now()
        )
        with self._lock:
            self._slots[(service.name, slot)].task = running
            self._slots[(service.name, slot)].restart_at = None
        self._record(TaskEvent("started", service.name, slot, task_arn, None, "", running.virtual_started))
        return running

    def _record(self, event: TaskEvent) -> None:
        with self._lock:
            self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    # -- supervision -----------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                items = list(self._slots.items())
            for (name, slot_no), slot in items:
                try:
                    self._check(name, slot_no, slot)
                except HarnessError as exc:  # keep supervising the others; the log says why
                    print(f"harness: {exc}")

    def _check(self, name: str, slot_no: int, slot: _Slot) -> None:
        task = slot.task
        now = time.monotonic()
        if task is not None and task.exit_code is None and task.process.poll() is not None:
            task.exit_code = task.process.returncode
            lived = now - task.started
            slot.quick_deaths = slot.quick_deaths + 1 if lived < MIN_HEALTHY_S else 0
            delay = min(MAX_RESTART_DELAY_S, RESTART_DELAY_S * 2 ** max(0, slot.quick_deaths - 1))
            slot.restart_at = now + delay
            reason = task.stopped_by or f"essential container exited with code {task.exit_code}"
            self._record(
                TaskEvent("stopped", name, slot_no, task.task_arn, task.exit_code, reason, self.virtual_now())
            )
        if slot.restart_at is not None and now >= slot.restart_at and not self._stop.is_set():
            service = self.stack.ecs_services[name]
            self._launch(service, self._task_definition(service), slot_no)

    @property
    def busy(self) -> bool:
        """A task is waiting to be replaced (work on its queue cannot progress until it is)."""
        with self._lock:
            return any(s.restart_at is not None for s in self._slots.values())

    def tasks(self, service: str | None = None) -> list[ServiceTask]:
        with self._lock:
            return [
                s.task
                for (name, _), s in sorted(self._slots.items())
                if s.task is not None and (service is None or name == service)
            ]

    def resolve(self, name: str) -> EcsService:
        return self.stack.resolve_ecs_service(name)

    # -- faults ----------------------------------------------------------------------------

    def kill(self, service: str, slot: int | None = None, sig: signal.Signals = signal.SIGKILL) -> list[str]:
        """Signal a service's running task(s) (all when `slot` is None); returns their task ARNs."""
        name = self.resolve(service).name
        hit: list[str] = []
        for task in self.tasks(name):
            if task.running and (slot is None or task.slot == slot):
                task.stopped_by = f"killed by the scenario ({sig.name})"
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(task.process.pid, sig)
                hit.append(task.task_arn)
        return hit

    def _terminate(self, task: ServiceTask, reason: str) -> None:
        task.stopped_by = reason
        with contextlib.suppress(ProcessLookupError):
            os.killpg(task.process.pid, signal.SIGTERM)
        definition = self._task_definition(self.stack.ecs_services[task.service])
        grace = min(MAX_STOP_WAIT_S, float(definition.containers[0].stop_timeout))
        try:
            task.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(task.process.pid, signal.SIGKILL)
            task.process.wait(timeout=5)
        task.exit_code = task.process.returncode

    def reset_records(self) -> None:
        with self._lock:
            self.events.clear()
