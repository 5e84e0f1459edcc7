"""Redis for the harness (stands in for ElastiCache): a private Debian `redis-server` process.

Each instance gets its own port, working directory and log under the run directory, keeps
nothing on disk (no RDB snapshots, no AOF), and allows `DEBUG` so chaos tests can use
`DEBUG SLEEP` and friends.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import PortInUseError, ServiceStartError
from harness.services.base import Endpoint, Service
from harness.services.ports import free_port, port_in_use
from harness.services.process import ManagedProcess, RunDirectory, require_binary

COMPONENT = "redis"
HOST = "127.0.0.1"


class RedisService(Service):
    """A private `redis-server` on 127.0.0.1, database 0, no password."""

    name = "redis"
    kind = "native"

    def __init__(self, run_dir: RunDirectory, port: int | None = None) -> None:
        self.run_dir = run_dir
        self.port = port if port is not None else free_port()
        self.data_dir: Path = run_dir.sub(f"redis-{self.port}")
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        if self.process is not None:
            return
        binary = require_binary("redis-server", COMPONENT, hint="apt-get install redis-server")
        # Checked up front: otherwise a PING could be answered by whoever holds the port.
        if port_in_use(self.port, HOST):
            raise PortInUseError(
                COMPONENT, f"port {self.port} is already in use", hint="pick another port or stop its owner"
            )
        argv = [
            binary,
            "--port", str(self.port),
            "--bind", HOST,
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "no",
            "--enable-debug-command", "yes",
            "--daemonize", "no",
            "--logfile", "",  # stdout, which ManagedProcess sends to the log file
        ]  # fmt: skip
        self.process = ManagedProcess(f"redis-{self.port}", argv, run_dir=self.run_dir)
        self.process.start()

    def _answers(self) -> bool:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        assert self.process is not None
        # No client-side retries: redis-py 8 by default retries a refused connection for ~4.6 s,
        # which would hide a dead process behind one slow poll.
        client = redis.Redis(
            host=HOST,
            port=self.port,
            socket_timeout=1.0,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            if client.ping() is not True:
                return False
            # The server that answered must be ours, not a stranger that grabbed the port.
            info = client.info("server")
            return int(info.get("process_id", -1)) == self.process.pid
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            return False
        finally:
            client.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        process = self.process
        if process is None:
            raise ServiceStartError(COMPONENT, "wait_ready() called before start()")
        process.wait_until_ready(
            self._answers, component=COMPONENT, port=self.port, timeout=timeout, interval=0.02
        )

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(
            host=HOST,
            port=self.port,
            url=f"redis://{HOST}:{self.port}/0",
            extras={"data_dir": str(self.data_dir)},
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=5.0)
            self.process = None
