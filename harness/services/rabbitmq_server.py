"""RabbitMQ for the harness (stands in for Amazon MQ): a private Debian RabbitMQ node.

Every instance is a separate Erlang node with its own name, ports, Mnesia directory, logs,
config, cookie (a private HOME) and its own `epmd`, all on 127.0.0.1. The shared system epmd
on 4369 is never used: the harness starts epmd itself in the foreground on a free port, so it
lives in a process group the harness owns and dies with the broker. The broker is started
through `/usr/lib/rabbitmq/bin/rabbitmq-server` (the `/usr/sbin` wrapper switches to the
`rabbitmq` user). `ctl()`, `pause()` and `resume()` give chaos tests broker outages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from harness.errors import HarnessError, PortInUseError, ServiceStartError
from harness.services.base import Endpoint, Service
from harness.services.ports import free_port, port_in_use
from harness.services.process import ManagedProcess, RunDirectory, require_binary
from harness.services.readiness import command_succeeds, tcp_port, wait_until
from harness.services.tls import TlsFiles

COMPONENT = "rabbitmq"
HOST = "127.0.0.1"
USERNAME = "harness"  # the harness's own user; a bound broker's users are the stack's
PASSWORD = "harness-local"  # noqa: S105 (a throw-away local test service)
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
_HINT = "apt-get install rabbitmq-server"


def _distinct_free_ports(count: int, taken: set[int]) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in taken and port not in ports:
            ports.append(port)
    return ports


def _process_tree(root: int) -> dict[int, str]:
    """`root` and its live descendants, each with its start time (guards against pid reuse)."""
    parents: dict[int, int] = {}
    starts: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # the name may contain spaces and ')'
        if fields[0] == "Z":
            continue
        parents[int(entry)] = int(fields[1])
        starts[int(entry)] = fields[19]
    tree = {root} if root in starts else set()
    changed = True
    while changed:
        new = {pid for pid, parent in parents.items() if parent in tree and pid not in tree}
        tree |= new
        changed = bool(new)
    return {pid: starts[pid] for pid in tree}


def _still_running(pid: int, start: str) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0] != "Z" and fields[19] == start


class RabbitMQService(Service):
    """A private RabbitMQ node; AMQP on 127.0.0.1:`port`, user/password `pipeline`, vhost `/`."""

    name = "rabbitmq"
    kind = "native"

    def __init__(self, run_dir: RunDirectory, port: int | None = None, tls: TlsFiles | None = None) -> None:
        self.run_dir = run_dir
        self.port = port if port is not None else free_port()
        self.tls = tls
        self.dist_port, self.epmd_port, self.management_port, self.tls_port = _distinct_free_ports(
            4, {self.port}
        )
        self.node = f"harness-{self.port}@localhost"
        self.base_dir: Path = run_dir.sub(f"rabbitmq-{self.port}")
        self.process: ManagedProcess | None = None
        self.epmd: ManagedProcess | None = None
        self.env: dict[str, str] = self._environment()

    def _environment(self) -> dict[str, str]:
        base = self.base_dir
        # Drop inherited RabbitMQ/Erlang settings so a user's shell cannot redirect the node.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(base / "home"),  # the Erlang cookie lives here; rabbitmqctl must share it
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS=HOST,
            RABBITMQ_NODE_PORT=str(self.port),
            # The default (node port + 20000) overflows 65535 for ports in the ephemeral range.
            RABBITMQ_DIST_PORT=str(self.dist_port),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS=HOST,
            RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
            RABBITMQ_LOG_BASE=str(base / "log"),
            RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

    def _write_config(self) -> None:
        base = self.base_dir
        for sub in ("home", "mnesia", "log"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (base / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    "loopback_users = none",
                    f"listeners.tcp.default = {HOST}:{self.port}",
                    *self._tls_config(),
                    # The Prometheus endpoint is how the harness sees unacknowledged messages
                    # (AMQP reports only ready ones). It reads the queues' own metrics, which
                    # they emit every 250 ms here; the management API would lag by 5 s.
                    f"prometheus.tcp.ip = {HOST}",
                    f"prometheus.tcp.port = {self.management_port}",
                    "collect_statistics_interval = 250",
                    f"default_user = {USERNAME}",
                    f"default_pass = {PASSWORD}",
                    "default_vhost = /",
                    "default_user_tags.administrator = true",
                    "default_permissions.configure = .*",
                    "default_permissions.read = .*",
                    "default_permissions.write = .*",
                    # Logs go to stdout, i.e. the ManagedProcess log, so start failures show up there.
                    "log.console = true",
                    "log.console.level = info",
                    "log.console.use_colors = off",
                    "log.file = false",
                    "",
                ]
            )
        )
        # Empty on purpose: keeps /etc/rabbitmq/rabbitmq-env.conf out of the picture.
        (base / "rabbitmq-env.conf").write_text("# private to this harness node\n")
        (base / "enabled_plugins").write_text("[rabbitmq_prometheus].\n")
        # Quorum queues publish their metrics on this tick (default 5 s).
        (base / "advanced.config").write_text("[{rabbit, [{quorum_tick_interval, 250}]}].\n")

    # -- start -------------------------------------------------------------------------------

    def _tls_config(self) -> list[str]:
        """AMQPS, the only protocol Amazon MQ for RabbitMQ speaks (5671 in AWS)."""
        if self.tls is None:
            return []
        return [
            f"listeners.ssl.default = {HOST}:{self.tls_port}",
            f"ssl_options.cacertfile = {self.tls.ca}",
            f"ssl_options.certfile = {self.tls.cert}",
            f"ssl_options.keyfile = {self.tls.key}",
            "ssl_options.verify = verify_none",
            "ssl_options.fail_if_no_peer_cert = false",
        ]

    def start(self) -> None:
        if self.process is not None:
            return
        server = require_binary(
            "rabbitmq-server", COMPONENT, hint=_HINT, candidates=[str(RABBIT_BIN / "rabbitmq-server")]
        )
        epmd = require_binary("epmd", COMPONENT, hint=_HINT)
        # A taken node port makes RabbitMQ exit 0 after ~8 s; fail at once instead.
        for what, port in (
            ("AMQP", self.port),
            ("distribution", self.dist_port),
            ("epmd", self.epmd_port),
            ("metrics", self.management_port),
        ):
            if port_in_use(port, HOST):
                raise PortInUseError(
                    COMPONENT,
                    f"{what} port {port} is already in use",
                    hint="pick another port or stop its owner",
                )
        self._write_config()
        # Our own epmd, in the foreground: erl finds it on ERL_EPMD_PORT and starts no daemon.
        self.epmd = ManagedProcess(
            f"rabbitmq-{self.port}-epmd",
            [epmd, "-port", str(self.epmd_port), "-address", HOST],
            run_dir=self.run_dir,
            env=self.env,
        )
        self.epmd.start()
        try:
            wait_until(
                tcp_port(self.epmd_port),
                component=COMPONENT,
                timeout=10,
                interval=0.02,
                alive=self.epmd.alive,
                log_tail=self.epmd.log_tail,
                what="ready (epmd)",
            )
        except ServiceStartError:
            self.epmd.stop(grace=1.0)
            self.epmd = None
            raise
        self.process = ManagedProcess(
            f"rabbitmq-{self.port}", [server], run_dir=self.run_dir, env=self.env, cwd=self.base_dir
        )
        self.process.start()

    # -- readiness ---------------------------------------------------------------------------

    def _amqp_answers(self) -> bool:
        import pika
        import pika.exceptions
        from pika.adapters.utils.connection_workflow import (
            AMQPConnectorException,
        )

        params = pika.URLParameters(self.endpoint.url)
        params.socket_timeout = 2
        params.stack_timeout = 3  # the whole handshake; pika's default is 15 s
        params.blocked_connection_timeout = 2
        try:
            connection = pika.BlockingConnection(params)
        # A handshake timeout (AMQPConnectorStackTimeout) is not an AMQPError.
        except (pika.exceptions.AMQPError, AMQPConnectorException, OSError):
            return False
        connection.close()
        return True

    def wait_ready(self, timeout: float = 60.0) -> None:
        process = self.process
        if process is None:
            raise ServiceStartError(COMPONENT, "wait_ready() called before start()")
        # Cheap TCP poll first: each rabbitmq-diagnostics call boots an Erlang VM (~1 s).
        listener = command_succeeds(
            [
                str(RABBIT_BIN / "rabbitmq-diagnostics"),
                "-q",
                "-n",
                self.node,
                "check_port_listener",
                str(self.port),
            ],
            env=self.env,
            timeout=30,
        )

        def ready() -> bool:
            return tcp_port(self.port)() and listener() and self._amqp_answers()

        wait_until(
            ready,
            component=COMPONENT,
            timeout=timeout,
            interval=0.1,
            alive=process.alive,
            log_tail=self._failure_summary,
        )

    def _failure_summary(self) -> str:
        """The first error lines of the boot log: the cause, not the crash report that follows."""
        if self.process is None:
            return ""
        try:
            lines = self.process.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        errors = [
            line
            for line in lines
            if "[error]" in line and line.split("[error]", 1)[1].strip(" >0123456789.<")
        ]
        if not errors:
            return self.process.log_tail()
        return "\n".join("    " + line for line in errors[:8])

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(
            host=HOST,
            port=self.port,
            url=f"amqp://{USERNAME}:{PASSWORD}@{HOST}:{self.port}/%2F",
            username=USERNAME,
            password=PASSWORD,
            extras={
                "vhost": "/",
                "node": self.node,
                "dist_port": str(self.dist_port),
                "epmd_port": str(self.epmd_port),
                "metrics_url": f"http://{HOST}:{self.management_port}/metrics/detailed",
                **({"tls_port": str(self.tls_port)} if self.tls is not None else {}),
            },
        )

    # -- chaos hooks -------------------------------------------------------------------------

    def add_user(self, username: str, password: str) -> None:
        """A broker user with all permissions on vhost / (an Amazon MQ broker's user, bound).
        The password goes in on stdin, never on the command line."""
        if self.ctl("list_users", "--silent", check=True).stdout.split().count(username):
            self.ctl("change_password", username, stdin=password + "\n")
        else:
            self.ctl("add_user", username, stdin=password + "\n")
        self.ctl("set_permissions", "-p", "/", username, ".*", ".*", ".*")

    def ctl(
        self, *args: str, timeout: float = 60.0, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `rabbitmqctl -n <node> ARGS` against this node (e.g. "stop_app", "start_app",
        "close_all_connections", "reason"); raises HarnessError on failure when `check`."""
        if self.process is None:
            # Without our epmd, the CLI's Erlang VM would start a daemon epmd that outlives us.
            raise HarnessError(f"[{COMPONENT}] ctl({' '.join(args)}) called while the node is not running")
        argv = [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args]
        done = subprocess.run(
            argv,
            check=False,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **({"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}),
        )
        if check and done.returncode != 0:
            raise HarnessError(
                f"[{COMPONENT}] rabbitmqctl {' '.join(args)} failed (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}"
            )
        return done

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP to its process group): connections hang, nothing is refused."""
        if self.process is not None:
            self.process.signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.signal(signal.SIGCONT)

    # -- stop --------------------------------------------------------------------------------

    def stop(self) -> None:
        if self.process is not None:
            self.process.signal(signal.SIGCONT)  # a paused VM cannot act on SIGTERM
            # erl_child_setup (and the port programs under it) runs in its own session, outside
            # our process group: remember it now and make sure it is gone afterwards.
            tree = _process_tree(self.process.pid) if self.process.pid is not None else {}
            self.process.stop(grace=15.0)
            self.process = None
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline and any(_still_running(p, t) for p, t in tree.items()):
                time.sleep(0.05)  # it exits by itself once beam.smp is gone
            for pid, start in tree.items():
                if _still_running(pid, start):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
        if self.epmd is not None:
            self.epmd.stop(grace=2.0)
            self.epmd = None
