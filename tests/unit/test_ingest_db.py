"""pipeline.ingest.db against a real, private PostgreSQL: migrations, upserts, rejects, report SQL.

Skipped when the PostgreSQL 15 binaries are absent. One throw-away cluster serves the module
(initdb plus start take a few seconds) and is stopped at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from moto.core.models import MockAWS

from pipeline.common import aws
from pipeline.common.config import ConfigError
from pipeline.ingest import db, processor, report
from pipeline.ingest.schema import Rejected, ValidRecord

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DAY = date(2026, 3, 9)
NOON = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pg_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not all(os.access(PG_BIN / name, os.X_OK) for name in ("initdb", "postgres")):
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
    from harness.services import tls
    from harness.services.postgres_server import PostgresService
    from harness.services.process import RunDirectory

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_HOME", str(tmp_path_factory.mktemp("harness-home")))
        run = RunDirectory.create("ingest-db-test")
        # TLS on, as RDS for PostgreSQL 15+ requires it (the repository connects with sslmode=require).
        files = tls.make(run.sub("tls"), ["127.0.0.1"])
        with PostgresService(run, tls=files) as service:
            endpoint = service.endpoint
            yield {
                "host": endpoint.host,
                "port": endpoint.port,
                "user": endpoint.username,
                "password": endpoint.password,
                "dbname": endpoint.extras["database"],
            }


@pytest.fixture
def repo(pg_settings: dict[str, Any]) -> Iterator[db.PostgresRepository]:
    with psycopg.connect(**pg_settings, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS processed_data, rejected_data, schema_migrations")
    repository = db.PostgresRepository(settings=lambda: dict(pg_settings))
    yield repository
    repository.close()


def record(record_id: str, value: float | None = 1.0, text: str | None = None, **extra: Any) -> ValidRecord:
    payload = {"id": record_id, "value": value if text is None else text, **extra}
    return ValidRecord(
        line=1,
        record_id=record_id,
        source=str(extra.get("source", "s1")),
        event_time=NOON,
        value_numeric=value if text is None else None,
        value_text=text,
        payload=payload,
    )


def batch(
    origin: str, records: list[ValidRecord], rejects: list[Rejected] | None = None, **times: datetime
) -> db.IngestBatch:
    return db.IngestBatch(
        origin=origin,
        records=records,
        rejects=rejects or [],
        rejects_origin=origin,
        received_at=times.get("received_at", NOON),
        ingested_at=times.get("ingested_at", NOON + timedelta(seconds=30)),
    )


def rows(settings: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(**settings) as conn:
        return conn.execute(sql).fetchall()


def test_migrate_is_idempotent(repo: db.PostgresRepository, pg_settings: dict[str, Any]) -> None:
    with psycopg.connect(**pg_settings, autocommit=True) as conn:
        assert db.migrate(conn) == [1]
        assert db.migrate(conn) == []
    assert [r[0] for r in rows(pg_settings, "SELECT version FROM schema_migrations")] == [1]


def test_upsert_redelivery_and_reupload(repo: db.PostgresRepository, pg_settings: dict[str, Any]) -> None:
    origin = "s3://raw/incoming/a.csv"
    first = batch(
        origin, [record("1", 1.0), record("2", text="hot")], [Rejected(3, ["id: field required"], {})]
    )
    repo.save_batch(first)
    repo.save_batch(first)  # redelivery: nothing doubles
    assert rows(pg_settings, "SELECT count(*) FROM processed_data") == [(2,)]
    assert rows(pg_settings, "SELECT count(*) FROM rejected_data") == [(1,)]

    later = NOON + timedelta(days=1)
    repo.save_batch(batch(origin, [record("1", 1.0), record("2", text="hot")], ingested_at=later))
    # Unchanged rows keep the day they were first ingested; the rejects are replaced (none now).
    assert rows(pg_settings, "SELECT DISTINCT ingested_at FROM processed_data") == [
        (NOON + timedelta(seconds=30),)
    ]
    assert rows(pg_settings, "SELECT count(*) FROM rejected_data") == [(0,)]

    repo.save_batch(batch(origin, [record("1", 5.0)], ingested_at=later))  # a re-upload changes a row
    assert rows(
        pg_settings, "SELECT record_id, value_numeric, ingested_at FROM processed_data ORDER BY 1"
    ) == [
        ("1", 5.0, later),
        ("2", None, NOON + timedelta(seconds=30)),
    ]
    payload = rows(pg_settings, "SELECT payload FROM processed_data WHERE record_id = '2'")[0][0]
    assert payload == {"id": "2", "value": "hot"}


def test_reject_payload_may_be_null_or_a_list(
    repo: db.PostgresRepository, pg_settings: dict[str, Any]
) -> None:
    rejects = [
        Rejected(2, ["row has 3 columns, the header has 2"], ["a", "b", "c"]),
        Rejected(4, ["x"], None),
    ]
    repo.save_batch(batch("s3://raw/b.csv", [], rejects))
    assert rows(pg_settings, "SELECT line, reason, payload FROM rejected_data ORDER BY line") == [
        (2, "row has 3 columns, the header has 2", ["a", "b", "c"]),
        (4, "x", None),
    ]


def test_daily_aggregates(repo: db.PostgresRepository) -> None:
    ingested = datetime(2026, 3, 9, 10, 15, tzinfo=UTC)
    repo.save_batch(
        batch(
            "s3://raw/a.csv",
            [record("1", 1.0, source="b"), record("2", 3.0, source="a"), record("3", text="x", source="a")],
            [Rejected(5, ["bad"], {"id": None})],
            received_at=ingested - timedelta(seconds=10),
            ingested_at=ingested,
        )
    )
    repo.save_batch(
        batch(
            "s3://raw/c.json",
            [record("9", -2.0, source="b")],
            received_at=ingested,
            ingested_at=ingested + timedelta(hours=13),
        )
    )
    repo.save_batch(batch("direct", [record("d1", 10.0, source="direct")], ingested_at=ingested))
    repo.save_batch(
        batch("s3://raw/other-day.csv", [record("1", 100.0)], ingested_at=ingested + timedelta(days=1))
    )

    result = repo.daily_aggregates(DAY)

    assert result.total_records == 5
    assert result.total_rejected == 1
    assert result.files == 2  # direct calls are not files; the other day's file is not counted
    assert result.sources == [("a", 2), ("b", 2), ("direct", 1)]
    assert (result.value_min, result.value_max, result.value_sum) == (-2.0, 10.0, 12.0)
    assert result.value_avg == pytest.approx(3.0)
    assert result.hourly[10] == 4 and result.hourly[23] == 1 and sum(result.hourly) == 5
    assert result.latency_max == pytest.approx(13 * 3600)
    assert result.latency_p50 is not None and result.latency_p95 is not None
    empty = repo.daily_aggregates(date(2020, 1, 1))
    assert empty == db.DailyAggregates()


def test_broken_connection_is_reopened_once(repo: db.PostgresRepository, pg_settings: dict[str, Any]) -> None:
    fetched: list[int] = []

    def settings() -> dict[str, Any]:
        fetched.append(1)
        return dict(pg_settings)

    repository = db.PostgresRepository(settings=settings)
    repository.save_batch(batch("s3://raw/a.csv", [record("1")]))
    with psycopg.connect(**pg_settings, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'pipeline-ingest'"
        )
    repository.save_batch(batch("s3://raw/a.csv", [record("2")]))
    repository.close()
    assert rows(pg_settings, "SELECT count(*) FROM processed_data") == [(2,)]
    assert len(fetched) == 1  # the secret is read once per process, not per connection


def test_unreachable_database_raises_operational_error() -> None:
    repository = db.PostgresRepository(
        settings=lambda: {"host": "127.0.0.1", "port": 1, "user": "u", "password": "p", "dbname": "d"}
    )
    with pytest.raises(psycopg.OperationalError):
        repository.save_batch(batch("s3://raw/a.csv", [record("1")]))


def test_connection_settings_from_the_rds_secret() -> None:
    secret = {
        "engine": "postgres",
        "host": "db",
        "port": "5433",
        "username": "u",
        "password": "p",
        "dbname": "x",
    }
    assert db.connection_settings(json.dumps(secret), env={}) == {
        "host": "db",
        "port": 5433,
        "user": "u",
        "password": "p",
        "dbname": "x",
        "sslmode": "require",
    }
    minimal = db.connection_settings(json.dumps({"host": "db", "username": "u", "password": "p"}), env={})
    assert (minimal["port"], minimal["dbname"]) == (5432, "postgres")
    with pytest.raises(ConfigError, match="KeyError") as info:
        db.connection_settings(json.dumps({"host": "db", "password": "hunter2"}), env={})
    assert "hunter2" not in str(info.value)


def test_connection_settings_from_the_environment_and_the_managed_secret() -> None:
    """RDS's managed secret holds only the credentials; the endpoint comes from Terraform's env."""
    env = {"DB_HOST": "data-pipeline.x.rds.amazonaws.com", "DB_PORT": "5432", "DB_NAME": "pipeline"}
    managed = json.dumps({"username": "pipeline_admin", "password": "s3cret"})
    assert db.connection_settings(managed, env=env) == {
        "host": "data-pipeline.x.rds.amazonaws.com",
        "port": 5432,
        "user": "pipeline_admin",
        "password": "s3cret",
        "dbname": "pipeline",
        "sslmode": "require",
    }
    assert (
        db.connection_settings(managed, env={**env, "DB_SSLMODE": "verify-full"})["sslmode"] == "verify-full"
    )
    with pytest.raises(ConfigError, match="DB_HOST") as info:
        db.connection_settings(managed, env={})
    assert "s3cret" not in str(info.value)


def test_secret_from_secrets_manager(aws_mock: MockAWS, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = {
        "engine": "postgres",
        "host": "h",
        "port": 5432,
        "username": "u",
        "password": "p",
        "dbname": "d",
    }
    arn = aws.client("secretsmanager").create_secret(Name="db", SecretString=json.dumps(secret))["ARN"]
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    for name in ("DB_HOST", "DB_PORT", "DB_NAME", "DB_SSLMODE"):
        monkeypatch.delenv(name, raising=False)
    assert db.secret_settings() == {
        "host": "h",
        "port": 5432,
        "user": "u",
        "password": "p",
        "dbname": "d",
        "sslmode": "require",
    }


def test_processor_and_report_end_to_end(
    aws_mock: MockAWS, pg_settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real repository, found through the secret, behind both handlers."""
    with psycopg.connect(**pg_settings, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS processed_data, rejected_data, schema_migrations")
    clock_file = tmp_path / "clock"
    clock_file.write_text("2026-03-10T08:30:00Z")
    monkeypatch.setenv("PIPELINE_CLOCK_FILE", str(clock_file))
    s3, dynamodb = aws.client("s3"), aws.client("dynamodb")
    for bucket in ("raw", "processed", "reports"):
        s3.create_bucket(Bucket=bucket)
    for table, key in (("events", "object_key"), ("history", "report_date")):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    secret = {**pg_settings, "username": pg_settings["user"], "port": str(pg_settings["port"])}
    arn = aws.client("secretsmanager").create_secret(Name="db", SecretString=json.dumps(secret))["ARN"]
    topic = aws.client("sns").create_topic(Name="alerts")["TopicArn"]
    for name, value in {
        "RAW_BUCKET": "raw",
        "PROCESSED_BUCKET": "processed",
        "REPORTS_BUCKET": "reports",
        "EVENT_TABLE": "events",
        "REPORT_HISTORY_TABLE": "history",
        "ALERTS_TOPIC_ARN": topic,
        "DB_SECRET_ARN": arn,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(db, "_repository", None)

    etag = s3.put_object(Bucket="raw", Key="incoming/lab/a.csv", Body=b"id,value\n1,2\n2,3.5\n3,\n")["ETag"]
    event = {
        "time": "2026-03-10T08:29:00Z",
        "detail": {
            "bucket": {"name": "raw"},
            "object": {"key": "incoming/lab/a.csv", "etag": etag.strip('"')},
        },
    }
    message = {"messageId": "m", "eventSource": "aws:sqs", "body": json.dumps(event)}
    try:
        assert processor.handler({"Records": [message]}, None) == {"batchItemFailures": []}
        assert processor.handler({"Records": [message]}, None) == {"batchItemFailures": []}  # redelivery
        direct = processor.handler({"data": [{"id": "d", "value": 10, "extra": {"k": [1]}}]}, None)
        assert direct["status"] == "ok"
        summary = report.handler({"date": "2026-03-10"}, None)
    finally:
        repository = db._repository
        if repository is not None:
            repository.close()
    assert (summary["total_records"], summary["total_rejected"], summary["files"]) == (3, 1, 1)
    document = json.loads(s3.get_object(Bucket="reports", Key=summary["json_key"])["Body"].read())
    assert document["sources"] == [{"source": "direct", "records": 1}, {"source": "lab", "records": 2}]
    assert document["value"] == {"min": 2.0, "max": 10.0, "avg": pytest.approx(15.5 / 3), "sum": 15.5}
    assert document["latency_seconds"]["max"] == 60.0
    assert document["hourly"][8] == 3
