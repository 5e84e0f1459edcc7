"""harness.runtime.ecs_services: service tasks supervised as local processes, replaced when they stop."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.deploy.stack import Container, EcsService, MountPoint, Stack, TaskDefinition
from harness.runtime.ecs_services import EcsServiceSupervisor
from harness.runtime.ecs_tasks import EcsTaskRunner
from harness.runtime.images import Image
from harness.runtime.lambda_runtime import RuntimeSettings

ARN = "arn:aws:ecs:us-east-1:000000000000:task-definition/svc:1"


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def make_stack(script: str, desired: int = 2, env: dict[str, str] | None = None) -> Stack:
    container = Container(
        name="worker",
        image="worker:latest",
        command=("python", "-c", script),
        environment=env or {},
        mount_points=(MountPoint("scratch", "/mnt/efs"),),
        stop_timeout=2,
    )
    task = TaskDefinition("svc", ARN, (container,), "", "aws_ecs_task_definition.this", {"scratch": "fs-123"})
    stack = Stack()
    stack.task_definitions["svc"] = task
    service = EcsService("svc-worker", "cluster", ARN, desired, "aws_ecs_service.this")
    stack.ecs_services["svc-worker"] = service
    return stack


class HostImage:
    """An image whose Python is the test's own interpreter (the Dockerfile path has its own tests)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root

    def image(self, uri: str, wanted_by: str) -> Image:
        return Image(uri, self.root / "Dockerfile", Path(sys.executable), self.root, "/", {}, [])


@pytest.fixture
def runner(tmp_path: Path) -> EcsTaskRunner:
    return EcsTaskRunner(
        RuntimeSettings(endpoint_url="http://127.0.0.1:1"), HostImage(tmp_path / "image"), tmp_path / "ecs"
    )


@pytest.fixture
def supervisor_factory(runner: EcsTaskRunner, tmp_path: Path) -> Iterator[object]:
    made: list[EcsServiceSupervisor] = []

    def make(stack: Stack) -> EcsServiceSupervisor:
        supervisor = EcsServiceSupervisor(stack, runner, tmp_path / "logs", interval=0.05)
        made.append(supervisor)
        supervisor.start()
        return supervisor

    yield make
    for supervisor in made:
        supervisor.stop()


SLEEPER = "import time\nwhile True: time.sleep(0.1)"


def test_desired_count_tasks_run(supervisor_factory: object) -> None:
    supervisor = supervisor_factory(make_stack(SLEEPER, desired=3))  # type: ignore[operator]
    tasks = supervisor.tasks("svc-worker")
    assert [t.slot for t in tasks] == [0, 1, 2]
    assert all(t.running for t in tasks)
    assert len({t.task_arn for t in tasks}) == 3


def test_killed_task_is_replaced_and_recorded(supervisor_factory: object) -> None:
    supervisor = supervisor_factory(make_stack(SLEEPER, desired=2))  # type: ignore[operator]
    first = supervisor.tasks("svc-worker")[0]
    assert supervisor.kill("worker", slot=0) == [first.task_arn]
    wait_for(lambda: supervisor.tasks("svc-worker")[0].task_arn != first.task_arn)
    replacement = supervisor.tasks("svc-worker")[0]
    assert replacement.running
    stopped = [e for e in supervisor.events if e.kind == "stopped"]
    assert [(e.slot, e.exit_code) for e in stopped] == [(0, -signal.SIGKILL)]
    assert "SIGKILL" in stopped[0].reason
    assert supervisor.tasks("svc-worker")[1].running  # the other slot was left alone


def test_crashing_task_restarts_with_growing_delay(supervisor_factory: object) -> None:
    supervisor = supervisor_factory(make_stack("raise SystemExit(3)", desired=1))  # type: ignore[operator]
    wait_for(lambda: len([e for e in supervisor.events if e.kind == "stopped"]) >= 3)
    stopped = [e for e in supervisor.events if e.kind == "stopped"]
    assert {e.exit_code for e in stopped} == {3}
    assert all("exited with code 3" in e.reason for e in stopped)
    assert supervisor.busy or supervisor.tasks()[0].running


def test_environment_and_volume_paths_are_translated(supervisor_factory: object, tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    script = (
        "import json, os\n"
        f"json.dump(dict(os.environ), open({str(out)!r}, 'w'))\n"
        "import time\nwhile True: time.sleep(0.1)"
    )
    stack = make_stack(script, desired=1, env={"SCRATCH_DIR": "/mnt/efs/jobs", "OTHER": "/mnt/efsx"})
    supervisor_factory(stack)  # type: ignore[operator]
    wait_for(out.exists)
    wait_for(lambda: out.read_text().endswith("}"))
    env = json.loads(out.read_text())
    assert env["SCRATCH_DIR"].endswith("/volumes/fs-123/jobs")
    assert Path(env["SCRATCH_DIR"]).parent.is_dir()
    assert env["OTHER"] == "/mnt/efsx"  # only paths under the mount point move
    assert env["ECS_SERVICE_NAME"] == "svc-worker"
    assert env["ECS_TASK_ARN"].startswith("arn:aws:ecs:us-east-1:000000000000:task/")
    assert "AWS_ENDPOINT_URL" in env


def test_stop_terminates_gracefully_then_kills(runner: EcsTaskRunner, tmp_path: Path) -> None:
    stubborn = (
        "import signal, time\nsignal.signal(signal.SIGTERM, lambda *a: None)\nwhile True: time.sleep(0.1)"
    )
    stack = make_stack(stubborn, desired=1)
    supervisor = EcsServiceSupervisor(stack, runner, tmp_path / "logs", interval=0.05)
    supervisor.start()
    task = supervisor.tasks()[0]
    time.sleep(0.5)  # let it install its handler
    started = time.monotonic()
    supervisor.stop()
    assert task.process.poll() is not None
    assert 1.5 <= time.monotonic() - started < 8  # stopTimeout (2 s) honoured, then SIGKILL


def test_unknown_service_name_is_clear(supervisor_factory: object) -> None:
    supervisor = supervisor_factory(make_stack(SLEEPER, desired=1))  # type: ignore[operator]
    with pytest.raises(KeyError, match="no ECS service named 'nope'"):
        supervisor.kill("nope")


def test_python_command_uses_the_images_interpreter(runner: EcsTaskRunner) -> None:
    stack = make_stack(SLEEPER)
    task = stack.task_definitions["svc"]
    launch = runner.prepare(task, task.containers[0], None, "arn:task/1")
    assert launch.argv[0] == str(Path(sys.executable).parent / "python")
    assert launch.declared == {}
    assert launch.cwd == launch.image.root  # the image's WORKDIR, /
    assert "PYTHONPATH" not in launch.env  # only what the image installs is importable
