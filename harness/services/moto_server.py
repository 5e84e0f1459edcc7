"""The default AWS emulator: a moto server process (with the harness's corrections)."""

from __future__ import annotations

import os
import sys
import time

from harness.errors import PortInUseError
from harness.services.base import Endpoint, Service
from harness.services.ports import free_port, port_in_use
from harness.services.process import ManagedProcess, RunDirectory
from harness.services.readiness import http_ok, wait_until


class MotoService(Service):
    """moto server on a private loopback port; one process is one isolated AWS account."""

    name = "moto"

    def __init__(
        self, run_dir: RunDirectory, port: int | None = None, extra_env: dict[str, str] | None = None
    ) -> None:
        self.extra_env = dict(extra_env or {})
        self.run_dir = run_dir
        self.port = port or free_port()
        self.process: ManagedProcess | None = None
        self.ready_seconds: float | None = None

    def start(self) -> None:
        if port_in_use(self.port):
            raise PortInUseError(
                self.name,
                f"port {self.port} is already in use",
                hint="stop the process on it, or let the harness pick a free port",
            )
        env = dict(os.environ)
        env.update(
            {
                # AWS limits PurgeQueue to once a minute; resetting data between scenarios purges.
                "MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR": "false",
                "MOTO_ALLOW_NONEXISTENT_REGION": "true",
                # AWS managed policies (AWSLambdaVPCAccessExecutionRole, ...) exist in every
                # account; without this moto answers NoSuchEntity when a role attaches one.
                "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
                "AWS_DEFAULT_REGION": "us-east-1",
                **self.extra_env,
            }
        )
        self.started_at = time.monotonic()
        self.process = ManagedProcess(
            self.name,
            [sys.executable, "-m", "harness.services.moto_main", "-H", "127.0.0.1", "-p", str(self.port)],
            run_dir=self.run_dir,
            env=env,
        )
        self.process.start()

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.process is not None, "start() first"
        self.ready_seconds = wait_until(
            http_ok(f"{self.endpoint.url}/moto-api/"),
            component=self.name,
            timeout=timeout,
            alive=self.process.alive,
            log_tail=self.process.log_tail,
        )

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(host="127.0.0.1", port=self.port, url=f"http://127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=3.0)
            self.process = None
