"""PostgreSQL for the ingest flow: credentials, migrations, idempotent writes, report queries.

The handlers talk to a `Repository` obtained from `get_repository()`; tests replace that
factory with a fake. The real one, `PostgresRepository`, connects to DB_HOST:DB_PORT/DB_NAME
(the RDS instance's endpoint) with the credentials of the secret DB_SECRET_ARN names (the
secret RDS manages: `{"username", "password"}`; host, port and dbname in the secret are used
when the environment lacks them), over TLS (DB_SSLMODE, default `require`: RDS for
PostgreSQL 15+ refuses plain connections). It reads the secret once per warm process, keeps
one connection per process, applies the migrations before its first use, and
runs each unit of work in one transaction. When the connection turns out to be broken
(psycopg.OperationalError) it reconnects once and repeats the transaction; every write is
idempotent, so repeating one whose COMMIT did land is harmless.

Writes: valid records are upserted on (origin, record_id), and an upsert that changes
nothing (a redelivery) leaves the row alone, so its `ingested_at` keeps the day it was first
ingested. The rejected rows of an origin are replaced (delete, then insert) in the same
transaction.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from pipeline.common import aws, config
from pipeline.common.logging import get_logger, log
from pipeline.ingest.schema import Rejected, ValidRecord, payload_json

LOG = get_logger("pipeline.ingest.db")
T = TypeVar("T")

#: Serialises concurrent migrations (every cold Lambda runs `migrate`); any fixed bigint will do.
MIGRATION_LOCK = 0x696E67657374  # "ingest"

MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """
            CREATE TABLE IF NOT EXISTS processed_data (
                id bigserial PRIMARY KEY,
                origin text NOT NULL,
                record_id text NOT NULL,
                source text NOT NULL,
                event_time timestamptz NOT NULL,
                value_numeric double precision NULL,
                payload jsonb NOT NULL,
                received_at timestamptz NOT NULL,
                ingested_at timestamptz NOT NULL,
                UNIQUE (origin, record_id)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS rejected_data (
                id bigserial PRIMARY KEY,
                origin text,
                line int,
                reason text,
                payload jsonb,
                received_at timestamptz,
                ingested_at timestamptz,
                UNIQUE (origin, line)
            )
            """,
            # The daily report selects one day of ingested_at from each table.
            "CREATE INDEX IF NOT EXISTS processed_data_ingested_at_idx ON processed_data (ingested_at)",
            "CREATE INDEX IF NOT EXISTS rejected_data_ingested_at_idx ON rejected_data (ingested_at)",
        ],
    ),
]

UPSERT_RECORD = """
INSERT INTO processed_data
    (origin, record_id, source, event_time, value_numeric, payload, received_at, ingested_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (origin, record_id) DO UPDATE SET
    source = EXCLUDED.source,
    event_time = EXCLUDED.event_time,
    value_numeric = EXCLUDED.value_numeric,
    payload = EXCLUDED.payload,
    received_at = EXCLUDED.received_at,
    ingested_at = EXCLUDED.ingested_at
WHERE (processed_data.source, processed_data.event_time, processed_data.value_numeric, processed_data.payload)
    IS DISTINCT FROM (EXCLUDED.source, EXCLUDED.event_time, EXCLUDED.value_numeric, EXCLUDED.payload)
"""

DELETE_REJECTS = "DELETE FROM rejected_data WHERE origin = %s"

INSERT_REJECT = """
INSERT INTO rejected_data (origin, line, reason, payload, received_at, ingested_at)
VALUES (%s, %s, %s, %s, %s, %s)
"""

# The report's queries: every one selects rows whose ingested_at lies in [start, end).
REPORT_SUMMARY = """
SELECT count(*),
       min(value_numeric), max(value_numeric), avg(value_numeric), sum(value_numeric),
       avg(latency),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency),
       max(latency)
FROM (
    SELECT value_numeric, EXTRACT(EPOCH FROM (ingested_at - received_at))::double precision AS latency
    FROM processed_data
    WHERE ingested_at >= %(start)s AND ingested_at < %(end)s
) AS day_rows
"""

REPORT_REJECTED = """
SELECT count(*) FROM rejected_data WHERE ingested_at >= %(start)s AND ingested_at < %(end)s
"""

# Files are S3 origins with valid or rejected rows that day; direct calls are not files.
REPORT_FILES = """
SELECT count(DISTINCT origin) FROM (
    SELECT origin FROM processed_data WHERE ingested_at >= %(start)s AND ingested_at < %(end)s
    UNION ALL
    SELECT origin FROM rejected_data WHERE ingested_at >= %(start)s AND ingested_at < %(end)s
) AS day_origins
WHERE origin LIKE 's3://%%'
"""

REPORT_SOURCES = """
SELECT source, count(*) FROM processed_data
WHERE ingested_at >= %(start)s AND ingested_at < %(end)s
GROUP BY source ORDER BY source
"""

REPORT_HOURLY = """
SELECT EXTRACT(HOUR FROM ingested_at AT TIME ZONE 'UTC')::int AS hour, count(*) FROM processed_data
WHERE ingested_at >= %(start)s AND ingested_at < %(end)s
GROUP BY hour ORDER BY hour
"""


@dataclass(frozen=True)
class IngestBatch:
    """The rows of one object (or one direct call), written in one transaction."""

    origin: str
    records: Sequence[ValidRecord]
    rejects: Sequence[Rejected]
    rejects_origin: str  # whose rejected_data rows this batch replaces
    received_at: datetime
    ingested_at: datetime


@dataclass(frozen=True)
class DailyAggregates:
    total_records: int = 0
    total_rejected: int = 0
    files: int = 0
    sources: list[tuple[str, int]] = field(default_factory=list)
    value_min: float | None = None
    value_max: float | None = None
    value_avg: float | None = None
    value_sum: float | None = None
    latency_avg: float | None = None
    latency_p50: float | None = None
    latency_p95: float | None = None
    latency_max: float | None = None
    hourly: list[int] = field(default_factory=lambda: [0] * 24)


class Repository(Protocol):
    def save_batch(self, batch: IngestBatch) -> None: ...

    def daily_aggregates(self, day: date) -> DailyAggregates: ...


def migrate(conn: psycopg.Connection[Any]) -> list[int]:
    """Apply the missing migrations in one transaction; returns the versions applied."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, statements in MIGRATIONS:
            if version in done:
                continue
            for statement in statements:
                conn.execute(statement)  # our own constant SQL, no parameters
            conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, now())", (version,))
            applied.append(version)
    if applied:
        log(LOG, "applied migrations", versions=applied)
    return applied


def day_bounds(day: date) -> dict[str, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return {"start": start, "end": start + timedelta(days=1)}


def save_batch(conn: psycopg.Connection[Any], batch: IngestBatch) -> None:
    """The writes of one batch, inside the caller's transaction."""
    with conn.cursor() as cur:
        if batch.records:
            cur.executemany(
                UPSERT_RECORD,
                [
                    (
                        batch.origin,
                        r.record_id,
                        r.source,
                        r.event_time,
                        r.value_numeric,
                        Jsonb(r.payload, dumps=payload_json),
                        batch.received_at,
                        batch.ingested_at,
                    )
                    for r in batch.records
                ],
            )
        cur.execute(DELETE_REJECTS, (batch.rejects_origin,))
        if batch.rejects:
            cur.executemany(
                INSERT_REJECT,
                [
                    (
                        batch.rejects_origin,
                        r.line,
                        "; ".join(r.reasons),
                        None if r.record is None else Jsonb(r.record),
                        batch.received_at,
                        batch.ingested_at,
                    )
                    for r in batch.rejects
                ],
            )


def daily_aggregates(conn: psycopg.Connection[Any], day: date) -> DailyAggregates:
    bounds = day_bounds(day)
    summary = conn.execute(REPORT_SUMMARY, bounds).fetchone()
    assert summary is not None  # an aggregate without GROUP BY always returns one row
    rejected = conn.execute(REPORT_REJECTED, bounds).fetchone()
    files = conn.execute(REPORT_FILES, bounds).fetchone()
    sources = [(str(s), int(n)) for s, n in conn.execute(REPORT_SOURCES, bounds)]
    hourly = [0] * 24
    for hour, count in conn.execute(REPORT_HOURLY, bounds):
        hourly[int(hour)] = int(count)
    return DailyAggregates(
        total_records=int(summary[0]),
        total_rejected=int(rejected[0]) if rejected else 0,
        files=int(files[0]) if files else 0,
        sources=sources,
        value_min=_float(summary[1]),
        value_max=_float(summary[2]),
        value_avg=_float(summary[3]),
        value_sum=_float(summary[4]),
        latency_avg=_float(summary[5]),
        latency_p50=_float(summary[6]),
        latency_p95=_float(summary[7]),
        latency_max=_float(summary[8]),
        hourly=hourly,
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def connection_settings(secret_string: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """psycopg.connect keyword arguments: the endpoint from the environment (DB_HOST, DB_PORT,
    DB_NAME, DB_SSLMODE), the credentials from the secret (RDS's managed-secret shape)."""
    env = os.environ if env is None else env
    try:
        secret = json.loads(secret_string)
        host = env.get("DB_HOST") or secret.get("host")
        if not host:
            raise KeyError("host: neither DB_HOST nor the secret names the database host")
        settings = {
            "host": str(host),
            "port": int(env.get("DB_PORT") or secret.get("port") or 5432),
            "user": str(secret["username"]),
            "password": str(secret["password"]),
            "dbname": str(env.get("DB_NAME") or secret.get("dbname") or "postgres"),
            "sslmode": env.get("DB_SSLMODE") or "require",
        }
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        # Never echo the secret itself: name only what is wrong with it.
        raise config.ConfigError(f"database secret is not usable: {type(exc).__name__} {exc}") from None
    return settings


def secret_settings() -> dict[str, Any]:
    response = aws.client("secretsmanager").get_secret_value(SecretId=config.required("DB_SECRET_ARN"))
    return connection_settings(str(response["SecretString"]))


class PostgresRepository:
    """The process's PostgreSQL connection, reopened once when a transaction finds it broken."""

    def __init__(self, settings: Callable[[], dict[str, Any]] = secret_settings) -> None:
        self._settings_source = settings
        self._settings: dict[str, Any] | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._migrated = False

    def save_batch(self, batch: IngestBatch) -> None:
        self._run(lambda conn: save_batch(conn, batch))

    def daily_aggregates(self, day: date) -> DailyAggregates:
        return self._run(lambda conn: daily_aggregates(conn, day))

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            if self._settings is None:
                self._settings = self._settings_source()
            self._conn = psycopg.connect(
                **self._settings, autocommit=True, connect_timeout=5, application_name="pipeline-ingest"
            )
        if not self._migrated:
            migrate(self._conn)
            self._migrated = True
        return self._conn

    def _attempt(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        conn = self._connection()
        with conn.transaction():
            return work(conn)

    def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        try:
            return self._attempt(work)
        except psycopg.OperationalError as exc:
            log(LOG, "database connection failed; reconnecting once", error=f"{type(exc).__name__}: {exc}")
            self.close()
            return self._attempt(work)


_repository: PostgresRepository | None = None


def get_repository() -> Repository:
    """The process-wide repository (a warm Lambda reuses its connection); tests replace this."""
    global _repository
    if _repository is None:
        _repository = PostgresRepository()
    return _repository
