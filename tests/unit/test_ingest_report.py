"""The report_generator Lambda against moto, with fixed aggregates from a fake repository."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from moto.core.models import MockAWS

from pipeline.common import aws
from pipeline.ingest import db, report

REPORTS = "reports-bucket"
HISTORY = "report-history"

AGGREGATES = db.DailyAggregates(
    total_records=5,
    total_rejected=2,
    files=3,
    sources=[("<script>alert(1)</script>", 2), ("sensors", 3)],
    value_min=-1.5,
    value_max=10.25,
    value_avg=3.1,
    value_sum=15.5,
    latency_avg=12.34567,
    latency_p50=10.0,
    latency_p95=30.0,
    latency_max=31.5,
    hourly=[0] * 8 + [4, 1] + [0] * 14,
)


@dataclass
class FakeRepository:
    aggregates: db.DailyAggregates
    days: list[date] = field(default_factory=list)

    def save_batch(self, batch: db.IngestBatch) -> None:
        raise AssertionError("the report never writes records")

    def daily_aggregates(self, day: date) -> db.DailyAggregates:
        self.days.append(day)
        return self.aggregates


@dataclass
class Env:
    s3: Any
    dynamodb: Any
    sqs: Any
    inbox: str
    repo: FakeRepository


@pytest.fixture
def env(aws_mock: MockAWS, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    clock_file = tmp_path / "clock"
    clock_file.write_text("2026-03-10T08:00:05Z")
    monkeypatch.setenv("PIPELINE_CLOCK_FILE", str(clock_file))
    s3, dynamodb, sns, sqs = (aws.client(s) for s in ("s3", "dynamodb", "sns", "sqs"))
    s3.create_bucket(Bucket=REPORTS)
    dynamodb.create_table(
        TableName=HISTORY,
        KeySchema=[{"AttributeName": "report_date", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "report_date", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    for name, value in {
        "REPORTS_BUCKET": REPORTS,
        "REPORT_HISTORY_TABLE": HISTORY,
        "ALERTS_TOPIC_ARN": topic,
        "ENVIRONMENT": "test",
    }.items():
        monkeypatch.setenv(name, value)
    repo = FakeRepository(AGGREGATES)
    monkeypatch.setattr(db, "get_repository", lambda: repo)
    return Env(s3, dynamodb, sqs, inbox, repo)


def read(env: Env, key: str) -> bytes:
    return bytes(env.s3.get_object(Bucket=REPORTS, Key=key)["Body"].read())


def notifications(env: Env) -> list[dict[str, Any]]:
    messages = env.sqs.receive_message(QueueUrl=env.inbox, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.mark.parametrize(
    ("event", "day"),
    [
        ({"report": "daily", "scheduled_time": "2026-03-10T08:00:00Z"}, date(2026, 3, 9)),
        ({"report": "daily", "scheduled_time": "2026-03-10T00:30:00+02:00"}, date(2026, 3, 8)),  # 22:30 UTC
        ({"report": "daily"}, date(2026, 3, 9)),  # the clock: 2026-03-10T08:00:05Z
        ({"time": "2026-01-01T08:00:00Z"}, date(2025, 12, 31)),
        ({"date": "2026-02-28", "scheduled_time": "2026-03-10T08:00:00Z"}, date(2026, 2, 28)),
    ],
)
def test_report_day(env: Env, event: dict[str, Any], day: date) -> None:
    assert report.report_day(event) == day


@pytest.mark.parametrize(
    ("event", "message"), [({"date": "yesterday"}, "YYYY-MM-DD"), ({"scheduled_time": "soon"}, "ISO-8601")]
)
def test_bad_report_input(event: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        report.report_day(event)


def test_generates_json_html_history_and_notification(env: Env) -> None:
    result = report.handler({"report": "daily", "scheduled_time": "2026-03-10T08:00:00Z"}, None)

    json_key, html_key = "reports/2026-03-09/daily_report.json", "reports/2026-03-09/daily_report.html"
    assert result == {
        "report": "daily",
        "date": "2026-03-09",
        "total_records": 5,
        "total_rejected": 2,
        "json_key": json_key,
        "html_key": html_key,
        "files": 3,
        "generated_at": "2026-03-10T08:00:05Z",
    }
    assert env.repo.days == [date(2026, 3, 9)]
    document = json.loads(read(env, json_key))
    assert document == {
        "report": "daily",
        "report_date": "2026-03-09",
        "generated_at": "2026-03-10T08:00:05Z",
        "environment": "test",
        "total_records": 5,
        "total_rejected": 2,
        "files": 3,
        "sources": [
            {"source": "<script>alert(1)</script>", "records": 2},
            {"source": "sensors", "records": 3},
        ],
        "value": {"min": -1.5, "max": 10.25, "avg": 3.1, "sum": 15.5},
        "latency_seconds": {"avg": 12.346, "p50": 10.0, "p95": 30.0, "max": 31.5},
        "hourly": AGGREGATES.hourly,
    }
    assert env.s3.head_object(Bucket=REPORTS, Key=html_key)["ContentType"] == "text/html; charset=utf-8"

    history = env.dynamodb.get_item(TableName=HISTORY, Key={"report_date": {"S": "2026-03-09"}})["Item"]
    assert history == {
        "report_date": {"S": "2026-03-09"},
        "generated_at": {"S": "2026-03-10T08:00:05Z"},
        "json_key": {"S": json_key},
        "html_key": {"S": html_key},
        "total_records": {"N": "5"},
        "total_rejected": {"N": "2"},
        "files": {"N": "3"},
        "environment": {"S": "test"},
    }
    [note] = notifications(env)
    assert note["Subject"] == "Daily report 2026-03-09"
    assert json.loads(note["Message"]) == {
        "report": "daily",
        "date": "2026-03-09",
        "total_records": 5,
        "total_rejected": 2,
        "json_key": json_key,
        "html_key": html_key,
    }


def test_rerun_overwrites_the_same_day(env: Env) -> None:
    report.handler({"date": "2026-03-09"}, None)
    report.handler({"date": "2026-03-09"}, None)
    listing = env.s3.list_objects_v2(Bucket=REPORTS)["Contents"]
    assert sorted(o["Key"] for o in listing) == [
        "reports/2026-03-09/daily_report.html",
        "reports/2026-03-09/daily_report.json",
    ]
    assert env.dynamodb.scan(TableName=HISTORY)["Count"] == 1


def test_a_day_without_data_is_a_report_of_zeros(env: Env) -> None:
    env.repo.aggregates = db.DailyAggregates()
    result = report.handler({"date": "2026-03-01"}, None)
    assert (result["total_records"], result["total_rejected"], result["files"]) == (0, 0, 0)
    document = json.loads(read(env, "reports/2026-03-01/daily_report.json"))
    assert document["hourly"] == [0] * 24
    assert document["value"] == {"min": None, "max": None, "avg": None, "sum": None}
    page = read(env, "reports/2026-03-01/daily_report.html").decode()
    assert "No records." in page


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_escaped_and_standalone(env: Env) -> None:
    page = report.render_html(
        report.build_report(AGGREGATES, date(2026, 3, 9), datetime(2026, 3, 10, 8, tzinfo=UTC), "<b>prod</b>")
    )
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;prod&lt;/b&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    parsed = _Collector()
    parsed.feed(page)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "img" not in parsed.tags
    assert parsed.tags.count("rect") == 24
    assert "Daily report 2026-03-09" in parsed.text
    assert "<script>alert(1)</script>" in "".join(parsed.text)  # shown as text, not run


def test_dynamo_values_are_decimals() -> None:
    from pipeline.ingest.metadata import dynamo_value

    assert dynamo_value({"a": 1.5, "b": [0.1, 2], "c": "x"}) == {
        "a": Decimal("1.5"),
        "b": [Decimal("0.1"), 2],
        "c": "x",
    }
