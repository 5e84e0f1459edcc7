"""The Lambda runtime: each function runs in its own warm subprocess (a sandbox).

The code is the zip Terraform deployed (see lambda_code.py), run by the Python its `runtime`
names, in an environment holding only that zip, its layers and the runtime's SDK; the
process environment is exactly the function's Terraform environment plus the emulator
endpoint, credentials and the variables Lambda itself sets. The function's timeout is
enforced: a handler that overruns is killed with its process, and the next invocation
starts cold, as in Lambda. Every invocation is recorded with its outcome and captured logs.
A handler that cannot be imported because a module is missing from its package is a
packaging error: recorded with the function, the module and the requirements file to fix,
and it fails the scenario.
"""

from __future__ import annotations

import itertools
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.deploy.stack import Function, Stack
from harness.errors import HarnessError
from harness.runtime import environments, lambda_code
from harness.runtime.lambda_code import CodeStore, UnsupportedFunctionError

# Lambda's default MaximumRetryAttempts for asynchronous invocations.
ASYNC_RETRIES = 2


@dataclass
class Invocation:
    """One call of a function, as Lambda would report it."""

    seq: int
    function: str
    request_id: str
    source: str
    event: Any
    outcome: str = "running"  # success | error | timeout | crash
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    logs: str = ""
    duration_ms: float = 0.0
    virtual_time: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "success"


@dataclass
class RuntimeSettings:
    endpoint_url: str
    region: str = "us-east-1"
    clock_file: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def process_environment(
        self, *, home: Path, python_path: list[Path], own: dict[str, str], declared: dict[str, str]
    ) -> dict[str, str]:
        """The whole environment of a process the harness runs for the pipeline.

        Nothing is inherited from the harness but PATH. `own` holds what the AWS service itself
        sets (Lambda's or ECS's variables); `declared` is the Terraform-declared environment,
        applied last so that a wrong value there shows exactly as it would in AWS.
        """
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "HOME": str(home),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_ENDPOINT_URL": self.endpoint_url,
            **own,
        }
        if python_path:
            env["PYTHONPATH"] = os.pathsep.join(str(p) for p in python_path)
        if self.clock_file is not None:
            env["PIPELINE_CLOCK_FILE"] = str(self.clock_file)
        env.update(self.extra_env)
        env.update(declared)
        return env


@dataclass(frozen=True)
class PackagingError:
    """A handler that cannot be imported because its package lacks a module."""

    function: str
    module: str
    source: str
    requirements: tuple[str, ...]

    def __str__(self) -> str:
        where = (
            f"add it to {' or '.join(self.requirements)} (the requirements file in the package) and rebuild"
            if self.requirements
            else "add it to the requirements the package is built from and rebuild"
        )
        return (
            f"function {self.function} cannot import its handler: module {self.module!r} is neither in "
            f"its package ({self.source}) nor in its Lambda runtime; {where}"
        )


BOOTSTRAP = Path(__file__).with_name("lambda_worker.py")


class FunctionWorker:
    """One warm subprocess hosting one function."""

    def __init__(
        self,
        function: Function,
        code_dir: Path,
        settings: RuntimeSettings,
        log_dir: Path,
        *,
        python: Path | None = None,
        layers: list[Path] | None = None,
        bootstrap: Path = BOOTSTRAP,
    ) -> None:
        self.function = function
        self.code_dir = code_dir
        self.python = python
        self.layers = layers or []
        self.bootstrap = bootstrap
        self.source = str(code_dir)
        self.settings = settings
        self.log_path = log_dir / f"lambda-{function.name}.log"
        self.home = log_dir / function.name / "home"  # writable, like Lambda's /tmp
        self.home.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[str] | None = None
        self.lock = threading.Lock()

    def environment(self) -> dict[str, str]:
        fn = self.function
        own = {
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "_HANDLER": fn.handler or "",
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "harness/[$LATEST]local",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime or 'python3.11'}",
            "AWS_SESSION_TOKEN": "test",
            "HARNESS_FUNCTION_ARN": fn.arn,
        }
        return self.settings.process_environment(
            home=self.home, python_path=[self.code_dir, *self.layers], own=own, declared=fn.environment
        )

    def _ensure_started(self) -> subprocess.Popen[str]:
        if self.process is None or self.process.poll() is not None:
            log = self.log_path.open("a")
            try:
                self.process = subprocess.Popen(
                    [str(self.python or sys.executable), "-B", str(self.bootstrap)],
                    env=self.environment(),
                    cwd=self.code_dir,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    start_new_session=True,
                )
            finally:
                log.close()
        return self.process

    def invoke(
        self, event: Any, request_id: str, timeout: float, fault: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        with self.lock:
            proc = self._ensure_started()
            assert proc.stdin is not None and proc.stdout is not None
            request = {"event": event, "request_id": request_id, "timeout": timeout, "fault": fault}
            try:
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
            except BrokenPipeError:
                self.kill()
                return {
                    "ok": False,
                    "kind": "crash",
                    "error_type": "Runtime.ExitError",
                    "error_message": "the function's process exited",
                    "logs": "",
                }
            with selectors.DefaultSelector() as selector:
                selector.register(proc.stdout, selectors.EVENT_READ)
                ready = selector.select(timeout=timeout)
            line = proc.stdout.readline() if ready else ""
            # A process armed to hang says so as it starts hanging: waiting out the whole
            # timeout would only cost wall time, so the kill comes now with the same outcome.
            if not ready or line.startswith('{"hung"'):
                self.kill()
                return {
                    "ok": False,
                    "kind": "timeout",
                    "error_type": "Sandbox.Timedout",
                    "error_message": f"Task timed out after {timeout:.2f} seconds",
                    "logs": "",
                }
            if not line:
                code = proc.wait(timeout=5)
                self.kill()
                return {
                    "ok": False,
                    "kind": "crash",
                    "error_type": "Runtime.ExitError",
                    "error_message": f"the function's process exited with code {code}",
                    "logs": "",
                }
            return dict(json.loads(line))

    def kill(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.process = None


class LambdaRuntime:
    """All functions of a stack, invoked by name; keeps the record of every invocation."""

    def __init__(
        self,
        functions: dict[str, Function],
        settings: RuntimeSettings,
        work_dir: Path,
        virtual_now: Callable[[], str] = lambda: "",
        on_invocation: Callable[[Invocation], None] | None = None,
        code: CodeStore | None = None,
    ) -> None:
        self.functions = functions
        self.code = code or CodeStore(Stack(functions=functions), lambda: None, work_dir / "code")
        #: handlers that could not be imported for a missing module (each fails its scenario)
        self.packaging_errors: list[PackagingError] = []
        self.settings = settings
        self.work_dir = work_dir
        self.virtual_now = virtual_now
        self.on_invocation = on_invocation
        self.workers: dict[str, FunctionWorker] = {}
        self.invocations: list[Invocation] = []
        # Consulted before each call: (function, attempt) -> a response to use instead of
        # running the handler, or {"arm": {...}} for a fault the handler's process carries
        # out mid-work (see lambda_worker._arm_fault), or None.
        self.fault_hooks: list[Callable[[str, int], dict[str, Any] | None]] = []
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._running = 0

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._running > 0

    def _worker(self, name: str) -> FunctionWorker:
        with self._lock:
            worker = self.workers.get(name)
        if worker is not None:
            return worker
        fn = self.functions.get(name)
        if fn is None:
            raise HarnessError(f"no function named {name!r} in the applied stack")
        if fn.package_type != "Zip" or not fn.handler:
            raise UnsupportedFunctionError(
                f"function {name} ({fn.address}) is a container image; the harness runs zip packages",
                hint="deploy it as a zip package with a handler, or run the image with Docker",
            )
        code = self.code.function_code(fn)
        python = environments.python_of(lambda_code.runtime_environment(fn))
        worker = FunctionWorker(
            fn, code.directory, self.settings, self.work_dir, python=python, layers=self.code.layer_paths(fn)
        )
        worker.source = code.source
        with self._lock:
            return self.workers.setdefault(name, worker)

    def invoke(self, name: str, event: Any, source: str = "direct") -> Invocation:
        worker = self._worker(name)
        invocation = Invocation(
            seq=next(self._seq),
            function=name,
            request_id=str(uuid.uuid4()),
            source=source,
            event=event,
            virtual_time=self.virtual_now(),
        )
        with self._lock:
            self._running += 1
            self.invocations.append(invocation)
        attempt = sum(1 for i in self.invocations if i.function == name)
        injected = next((r for hook in self.fault_hooks if (r := hook(name, attempt)) is not None), None)
        started = time.monotonic()
        try:
            if injected is not None and "arm" not in injected:
                response = injected
            else:
                armed = injected["arm"] if injected is not None else None
                response = worker.invoke(event, invocation.request_id, float(worker.function.timeout), armed)
        finally:
            with self._lock:
                self._running -= 1
        invocation.duration_ms = (time.monotonic() - started) * 1000
        invocation.logs = str(response.get("logs", ""))
        if response.get("module"):  # a ModuleNotFoundError, at import or inside the handler
            self._packaging_error(worker, str(response["module"]))
        if response.get("ok"):
            invocation.outcome = "success"
            invocation.result = response.get("result")
        else:
            kind = response.get("kind")
            invocation.outcome = "timeout" if kind == "timeout" else "crash" if kind == "crash" else "error"
            invocation.error_type = response.get("error_type")
            invocation.error_message = response.get("error_message")
        if self.on_invocation is not None:
            self.on_invocation(invocation)
        return invocation

    def _packaging_error(self, worker: FunctionWorker, module: str) -> None:
        files = tuple(lambda_code.requirements_files(worker.code_dir))
        error = PackagingError(worker.function.name, module, worker.source, files)
        with self._lock:
            if error not in self.packaging_errors:
                self.packaging_errors.append(error)

    def invoke_async(self, name: str, event: Any, source: str) -> Invocation:
        """An asynchronous invocation (EventBridge, Scheduler): Lambda retries a failure twice."""
        invocation = self.invoke(name, event, source=source)
        for _retry in range(ASYNC_RETRIES):
            if invocation.ok:
                break
            invocation = self.invoke(name, event, source=source)
        return invocation

    def reset_records(self) -> None:
        with self._lock:
            self.invocations.clear()
            self.fault_hooks.clear()
            self.packaging_errors.clear()

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.kill()
