"""Redis for the harness (stands in for ElastiCache): a private Debian `redis-server` process.

Each instance gets its own port, working directory and log under the run directory, keeps
nothing on disk (no RDB snapshots, no AOF), and allows `DEBUG` so chaos tests can use
`DEBUG SLEEP` and friends. With TLS files it also listens with TLS on `tls_port` (ElastiCache
with transit encryption speaks only TLS), and once bound to an ElastiCache replication group
it requires that group's AUTH token on every connection, across restarts too.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import PortInUseError, ServiceStartError
from harness.services.base import Endpoint, Service
from harness.services.ports import free_port, port_in_use
from harness.services.process import ManagedProcess, RunDirectory, require_binary
from harness.services.tls import TlsFiles

COMPONENT = "redis"
HOST = "127.0.0.1"


class RedisService(Service):
    """A private `redis-server` on 127.0.0.1, database 0, no password."""

    name = "redis"
    kind = "native"

    def __init__(self, run_dir: RunDirectory, port: int | None = None, tls: TlsFiles | None = None) -> None:
        self.run_dir = run_dir
        self.port = port if port is not None else free_port()
        self.tls = tls
        self.tls_port = free_port() if tls is not None else None
        self.data_dir: Path = run_dir.sub(f"redis-{self.port}")
        self.process: ManagedProcess | None = None
        #: the AUTH password, once the server is bound to a replication group's token
        self.password: str | None = None

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
        if self.tls is not None:
            argv += [
                "--tls-port", str(self.tls_port),
                "--tls-cert-file", str(self.tls.cert),
                "--tls-key-file", str(self.tls.key),
                "--tls-ca-cert-file", str(self.tls.ca),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        if self.password:
            # From a file the server reads, not the command line (which `ps` shows to everyone).
            config = self.data_dir / "auth.conf"
            config.write_text(f"requirepass {self.password}\n")
            config.chmod(0o600)
            argv.insert(1, str(config))
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
            password=self.password,
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

    def require_password(self, password: str) -> None:
        """From now on (and after restarts) every client must AUTH with `password`."""
        import redis

        client = redis.Redis(host=HOST, port=self.port, password=self.password, socket_timeout=5)
        try:
            client.config_set("requirepass", password)
        finally:
            client.close()
        self.password = password

    @property
    def endpoint(self) -> Endpoint:
        auth = f":{self.password}@" if self.password else ""
        extras = {"data_dir": str(self.data_dir)}
        if self.tls_port is not None:
            extras["tls_port"] = str(self.tls_port)
        return Endpoint(
            host=HOST,
            port=self.port,
            url=f"redis://{auth}{HOST}:{self.port}/0",
            password=self.password,
            extras=extras,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=5.0)
            self.process = None
