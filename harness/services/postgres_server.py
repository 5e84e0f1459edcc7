"""PostgreSQL for the harness (stands in for RDS): a private cluster from the Debian binaries.

`initdb` creates a throw-away cluster (no fsync) under the run directory and the postmaster
runs as a ManagedProcess, not through `pg_ctl`, so its process group is ours and the run
directory's sweep can reap it. PostgreSQL refuses to run as root, so when the harness is root
both run as the `postgres` user, which must be able to reach the data directory.

Passwords are checked (scram-sha-256) for every role but the local superuser the harness
itself uses, so a client bound to an RDS instance must present that instance's credentials.
With TLS files the server also accepts TLS (RDS for PostgreSQL 15+ requires it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from harness.errors import PortInUseError, ServiceStartError
from harness.services.base import Endpoint, Service
from harness.services.ports import free_port, port_in_use
from harness.services.process import ManagedProcess, RunDirectory, require_binary
from harness.services.tls import TlsFiles

COMPONENT = "postgres"
HOST = "127.0.0.1"
DATABASE = "pipeline"
USERNAME = "harness"
PASSWORD = "harness-local"  # noqa: S105 (a throw-away local test service)
ADMIN_USER = "postgres"
OS_USER = "postgres"
#: sizeof(sockaddr_un.sun_path) is 108 including the NUL; postgres refuses longer socket paths.
_MAX_SOCKET_PATH = 107
_HINT = "apt-get install postgresql-15 (binaries in /usr/lib/postgresql/15/bin)"


def _pg_binary(name: str) -> str:
    # Debian keeps server binaries off PATH; prefer the newest installed major version.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_major, reverse=True)
    return require_binary(name, COMPONENT, hint=_HINT, candidates=candidates)


def _major(path: str) -> int:
    with contextlib.suppress(ValueError, IndexError):
        return int(Path(path).parts[-3])
    return 0


def _blocking_dir(path: Path, user: str) -> Path | None:
    """The first directory on the way to `path` that `user` may not traverse (ACLs ignored)."""
    entry = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, entry.pw_gid))
    for directory in [*reversed(path.parents), path]:
        st = directory.stat()
        if st.st_uid == entry.pw_uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return directory
    return None


class PostgresService(Service):
    """A private PostgreSQL cluster on 127.0.0.1 with database, user and password `pipeline`."""

    name = "postgres"
    kind = "native"

    def __init__(self, run_dir: RunDirectory, port: int | None = None, tls: TlsFiles | None = None) -> None:
        self.tls = tls
        self.run_dir = run_dir
        self.port = port if port is not None else free_port()
        self.base_dir: Path = run_dir.sub(f"postgres-{self.port}")
        self.data_dir: Path = self.base_dir / "data"
        self.socket_dir: Path = self.base_dir / "sock"
        #: Set when the run directory is unreachable for the postgres user or too deep for a socket.
        self.scratch_dir: Path | None = None
        self.os_user: str | None = OS_USER if os.geteuid() == 0 else None
        self.process: ManagedProcess | None = None

    # -- start -------------------------------------------------------------------------------

    def start(self) -> None:
        if self.process is not None:
            return
        initdb = _pg_binary("initdb")
        postgres = _pg_binary("postgres")
        if port_in_use(self.port, HOST):
            raise PortInUseError(
                COMPONENT, f"port {self.port} is already in use", hint="pick another port or stop its owner"
            )
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(initdb)
        argv = [
            postgres,
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-k", str(self.socket_dir),
            "-c", f"listen_addresses={HOST}",
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "synchronous_commit=off",
        ]  # fmt: skip
        if self.tls is not None:
            cert, key = self._server_tls_files(self.tls)
            argv += ["-c", "ssl=on", "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}"]
        self.process = ManagedProcess(
            f"postgres-{self.port}", argv, run_dir=self.run_dir, user=self.os_user, cwd=Path("/")
        )
        self.process.start()

    def _prepare_dirs(self) -> None:
        # Only the directories above the run dir can block: inside it we add o+x ourselves.
        blocked = _blocking_dir(self.run_dir.path.parent, self.os_user) if self.os_user else None
        socket_path = self.socket_dir / f".s.PGSQL.{self.port}"
        if blocked is not None or len(str(socket_path)) > _MAX_SOCKET_PATH:
            # Outside the run directory we may not chmod, so use a private scratch dir in /tmp
            # (linked from the run directory so it can be found) and delete it on stop.
            self.scratch_dir = Path(tempfile.mkdtemp(prefix=f"harness-pg-{self.port}-", dir="/tmp"))
            link = self.base_dir / "scratch"
            link.unlink(missing_ok=True)
            link.symlink_to(self.scratch_dir)
            self.data_dir = self.scratch_dir / "data"
            self.socket_dir = self.scratch_dir / "sock"
            reachable = [self.scratch_dir]
        else:
            # Only the directories inside the run directory get o+x; nothing above it is touched.
            reachable = [self.run_dir.path, self.base_dir]
        for directory in reachable:
            directory.chmod(directory.stat().st_mode | stat.S_IXOTH)
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)
            if self.os_user is not None:
                entry = pwd.getpwnam(self.os_user)
                os.chown(directory, entry.pw_uid, entry.pw_gid)

    def _server_tls_files(self, tls: TlsFiles) -> tuple[Path, Path]:
        """The certificate and key where the postgres user may read them (it must own the key)."""
        directory = self.data_dir.parent / "tls"
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / "server.pem", directory / "server.key"
        shutil.copyfile(tls.cert, cert)
        shutil.copyfile(tls.key, key)
        key.chmod(0o600)
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            for path in (directory, cert, key):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        directory.chmod(0o700)
        return cert, key

    def _initdb(self, initdb: str) -> None:
        argv = [
            initdb,
            "-D", str(self.data_dir),
            "-U", ADMIN_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]  # fmt: skip
        if self.os_user is not None:
            argv = ["runuser", "-u", self.os_user, "--", *argv]
        log_path = self.run_dir.sub("logs") / f"postgres-{self.port}-initdb.log"
        with log_path.open("ab") as log:
            try:
                done = subprocess.run(
                    argv,
                    check=False,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd="/",
                    timeout=120,
                )
            except subprocess.TimeoutExpired:
                raise ServiceStartError(COMPONENT, f"initdb did not finish in 120s; see {log_path}") from None
        if done.returncode != 0:
            tail = "\n".join(
                "    " + line for line in log_path.read_text(errors="replace").splitlines()[-15:]
            )
            raise ServiceStartError(COMPONENT, f"initdb failed (exit {done.returncode}):\n{tail}")
        # The harness's own superuser connects without a password over loopback; every other
        # role must authenticate (the first matching line wins).
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {ADMIN_USER} 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n"
        )

    # -- readiness ---------------------------------------------------------------------------

    def _answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(
                host=HOST, port=self.port, user=ADMIN_USER, dbname="postgres", connect_timeout=2
            ) as conn:
                row = conn.execute("select 1, current_setting('data_directory')").fetchone()
        except psycopg.OperationalError:
            return False
        # The server that answered must be ours, not a stranger that grabbed the port.
        return row is not None and row[0] == 1 and Path(str(row[1])).resolve() == self.data_dir.resolve()

    def _bootstrap(self) -> None:
        """Create the `pipeline` role and database once (idempotent across restarts)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            host=HOST, port=self.port, user=ADMIN_USER, dbname="postgres", autocommit=True, connect_timeout=5
        ) as conn:
            if conn.execute("select 1 from pg_roles where rolname = %s", (USERNAME,)).fetchone() is None:
                conn.execute(
                    sql.SQL("create role {} login password {}").format(
                        sql.Identifier(USERNAME), sql.Literal(PASSWORD)
                    )
                )
            if conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone() is None:
                conn.execute(
                    sql.SQL("create database {} owner {}").format(
                        sql.Identifier(DATABASE), sql.Identifier(USERNAME)
                    )
                )
        with psycopg.connect(self.endpoint.url, connect_timeout=5) as conn:
            conn.execute("select 1").fetchone()

    def wait_ready(self, timeout: float = 60.0) -> None:
        process = self.process
        if process is None:
            raise ServiceStartError(COMPONENT, "wait_ready() called before start()")
        process.wait_until_ready(
            self._answers, component=COMPONENT, port=self.port, timeout=timeout, interval=0.05
        )
        self._bootstrap()

    def admin_url(self, database: str = DATABASE) -> str:
        """The harness's own superuser connection to `database` (data resets, checks)."""
        return f"postgresql://{ADMIN_USER}@{HOST}:{self.port}/{database}"

    def bind_database(self, database: str, username: str, password: str) -> None:
        """Make `database` exist, owned by `username` with `password` (an RDS instance's master
        user and its database, as the instance's secret and state name them). Idempotent."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.admin_url("postgres"), autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (username,)).fetchone()
            verb = "alter" if exists else "create"
            conn.execute(
                sql.SQL(verb + " role {} login createdb password {}").format(
                    sql.Identifier(username), sql.Literal(password)
                )
            )
            if conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone() is None:
                conn.execute(
                    sql.SQL("create database {} owner {}").format(
                        sql.Identifier(database), sql.Identifier(username)
                    )
                )
            else:
                conn.execute(
                    sql.SQL("alter database {} owner to {}").format(
                        sql.Identifier(database), sql.Identifier(username)
                    )
                )

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(
            host=HOST,
            port=self.port,
            url=f"postgresql://{USERNAME}:{PASSWORD}@{HOST}:{self.port}/{DATABASE}",
            username=USERNAME,
            password=PASSWORD,
            extras={
                "database": DATABASE,
                "admin_user": ADMIN_USER,
                "data_dir": str(self.data_dir),
                "socket_dir": str(self.socket_dir),
                "tls": "on" if self.tls is not None else "off",
            },
        )

    # -- stop --------------------------------------------------------------------------------

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        process = self.process
        if process is not None and process.popen is not None:
            # SIGINT to the postmaster alone is a "fast" shutdown: it ends the backends itself.
            # (SIGTERM would be "smart" and wait for clients to disconnect; runuser, when it
            # sits between us and postgres, exits once its child does.)
            pid = self._postmaster_pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGINT)
                deadline = time.monotonic() + 10.0
                while time.monotonic() < deadline and process.popen.poll() is None:
                    time.sleep(0.02)
            process.stop(grace=3.0)  # whatever is left of the group: SIGTERM, then SIGKILL
            self.process = None
        if self.scratch_dir is not None:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
            (self.base_dir / "scratch").unlink(missing_ok=True)
            self.scratch_dir = None
