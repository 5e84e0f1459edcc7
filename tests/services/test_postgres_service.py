"""PostgresService: a private cluster with the `pipeline` database, stopped without leftovers."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from proc_helpers import group_members, processes_matching, require

from harness.errors import PortInUseError
from harness.services.postgres_server import PostgresService
from harness.services.process import RunDirectory

pytestmark = pytest.mark.usefixtures("_needs_postgres")


@pytest.fixture
def _needs_postgres() -> None:
    require("/usr/lib/postgresql/15/bin/initdb", "/usr/lib/postgresql/15/bin/postgres")


def test_start_serves_sql_and_stop_leaves_nothing(run_dir: RunDirectory) -> None:
    with PostgresService(run_dir) as service:
        endpoint = service.endpoint
        assert endpoint.url == f"postgresql://harness:harness-local@127.0.0.1:{service.port}/pipeline"
        assert (endpoint.host, endpoint.port, endpoint.username, endpoint.password) == (
            "127.0.0.1",
            service.port,
            "harness",
            "harness-local",
        )
        with psycopg.connect(endpoint.url) as conn:
            conn.execute("create table events (id int primary key, body text)")
            conn.execute("insert into events values (1, 'hello')")
            assert conn.execute("select body from events where id = 1").fetchone() == ("hello",)
            assert conn.execute("select current_user, current_database()").fetchone() == (
                "harness",
                "pipeline",
            )
        # An open client must not hold up the stop (fast shutdown, not smart).
        held = psycopg.connect(endpoint.url)
        assert service.process is not None and service.process.pid is not None
        pgid = service.process.pid
        data_dir = endpoint.extras["data_dir"]
        scratch = service.scratch_dir
        started = time.monotonic()
    assert time.monotonic() - started < 5.0
    held.close()
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert group_members(pgid) == []
    assert processes_matching(data_dir) == []
    if scratch is not None:  # pytest's tmp dirs are 0700, so the postgres user gets a scratch dir
        assert not scratch.exists()


@pytest.fixture
def traversable_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A HARNESS_HOME the postgres user can reach, so the data dir stays inside the run dir."""
    home = Path(tempfile.mkdtemp(prefix="harness-test-"))
    home.chmod(0o755)
    monkeypatch.setenv("HARNESS_HOME", str(home))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_data_dir_stays_in_the_run_dir_when_reachable(traversable_home: Path) -> None:
    run_dir = RunDirectory.create("test")
    with PostgresService(run_dir) as service:
        assert service.scratch_dir is None
        assert service.data_dir.is_relative_to(run_dir.path)
        with psycopg.connect(service.endpoint.url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        if os.geteuid() == 0:
            assert service.data_dir.stat().st_uid == pwd.getpwnam("postgres").pw_uid


def test_taken_port_is_reported_at_once(run_dir: RunDirectory, taken_port: int) -> None:
    service = PostgresService(run_dir, port=taken_port)
    started = time.monotonic()
    with pytest.raises(PortInUseError, match=str(taken_port)), service:
        pass
    assert time.monotonic() - started < 1.0
    assert service.process is None
    assert processes_matching(f"-p {taken_port}") == []


def test_two_instances_do_not_collide(run_dir: RunDirectory) -> None:
    with PostgresService(run_dir) as first, PostgresService(run_dir) as second:
        assert first.port != second.port
        assert first.data_dir != second.data_dir
        with psycopg.connect(first.endpoint.url) as a, psycopg.connect(second.endpoint.url) as b:
            a.execute("create table only_in_first (x int)")
            a.commit()
            assert b.execute("select to_regclass('only_in_first')").fetchone() == (None,)
