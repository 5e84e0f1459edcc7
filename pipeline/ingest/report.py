"""The report_generator Lambda: a daily summary of what the ingest flow stored, as JSON and HTML.

Invoked by EventBridge Scheduler at 08:00 UTC with `{"report": "daily", "scheduled_time": ...}`.
The report day is the UTC day before `scheduled_time` (or before the clock's now when the
input has none; `time`, as an EventBridge rule event has it, is read too). `{"date":
"YYYY-MM-DD"}` (re)generates that day itself.

The day's rows are those whose `ingested_at` falls on it (UTC). The report has the counts
(valid records, rejected records, files = distinct S3 origins), records per source (sorted by
name), min/max/avg/sum of `value_numeric`, the latency `ingested_at - received_at` in seconds
(avg/p50/p95/max) and the valid records per hour (24 buckets). Statistics of an empty day are
null; its counts are 0. Outputs, all overwritten by a re-run for the same day:

- REPORTS_BUCKET `reports/YYYY-MM-DD/daily_report.json` and `.../daily_report.html`;
- REPORT_HISTORY_TABLE item `report_date` with generated_at, json_key, html_key, total_records,
  total_rejected, files, environment;
- an SNS notification to ALERTS_TOPIC_ARN, subject `Daily report YYYY-MM-DD`.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.common import aws, clock, config
from pipeline.common.logging import get_logger, log
from pipeline.ingest import db
from pipeline.ingest.metadata import item_attributes
from pipeline.ingest.schema import iso

LOG = get_logger("pipeline.ingest.report")


def report_day(event: dict[str, Any]) -> date:
    """The day to report on: `date` itself, else the UTC day before `scheduled_time` (or now)."""
    if event.get("date"):
        try:
            return date.fromisoformat(str(event["date"]))
        except ValueError:
            raise ValueError(f'"date" must be YYYY-MM-DD, not {event["date"]!r}') from None
    stamp = event.get("scheduled_time") or event.get("time")
    if stamp:
        try:
            moment = datetime.fromisoformat(str(stamp))
        except ValueError:
            raise ValueError(f'"scheduled_time" must be an ISO-8601 time, not {stamp!r}') from None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    else:
        moment = clock.now()
    return (moment - timedelta(days=1)).date()


def report_keys(day: date) -> tuple[str, str]:
    prefix = f"reports/{day.isoformat()}/daily_report"
    return f"{prefix}.json", f"{prefix}.html"


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def build_report(
    aggregates: db.DailyAggregates, day: date, generated_at: datetime, environment: str
) -> dict[str, Any]:
    a = aggregates
    return {
        "report": "daily",
        "report_date": day.isoformat(),
        "generated_at": iso(generated_at),
        "environment": environment,
        "total_records": a.total_records,
        "total_rejected": a.total_rejected,
        "files": a.files,
        "sources": [{"source": name, "records": count} for name, count in a.sources],
        "value": {"min": a.value_min, "max": a.value_max, "avg": a.value_avg, "sum": a.value_sum},
        "latency_seconds": {
            "avg": _round(a.latency_avg, 3),
            "p50": _round(a.latency_p50, 3),
            "p95": _round(a.latency_p95, 3),
            "max": _round(a.latency_max, 3),
        },
        "hourly": list(a.hourly),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "\n".join(
        f"<tr><th scope=row>{html.escape(label)}</th><td>{html.escape(_fmt(value))}</td></tr>"
        for label, value in pairs
    )


def hourly_svg(hourly: list[int]) -> str:
    """A bar per UTC hour; each bar's tooltip gives the exact count."""
    width, height, bar, gap, top, bottom = 480, 160, 16, 4, 10, 20
    peak = max(hourly, default=0) or 1
    plot = height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="valid records per hour (UTC)">'
    ]
    for hour, count in enumerate(hourly):
        x = hour * (bar + gap) + gap
        h = round(plot * count / peak)
        y = top + plot - h
        parts.append(
            f'<rect x="{x}" y="{y}" width="{bar}" height="{h}" fill="#3b6ea5">'
            f"<title>{hour:02d}:00 {html.escape(_fmt(count))}</title></rect>"
        )
        if hour % 3 == 0:
            parts.append(f'<text x="{x}" y="{height - 5}" font-size="10">{hour:02d}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """A standalone page: no scripts, no external assets, every text escaped."""
    title = html.escape(f"Daily report {report['report_date']}")
    value = report["value"]
    latency = report["latency_seconds"]
    summary = _rows(
        [
            ("Valid records", report["total_records"]),
            ("Rejected records", report["total_rejected"]),
            ("Files", report["files"]),
            ("Value min", value["min"]),
            ("Value max", value["max"]),
            ("Value avg", value["avg"]),
            ("Value sum", value["sum"]),
            ("Latency avg (s)", latency["avg"]),
            ("Latency p50 (s)", latency["p50"]),
            ("Latency p95 (s)", latency["p95"]),
            ("Latency max (s)", latency["max"]),
        ]
    )
    sources = _rows([(s["source"], s["records"]) for s in report["sources"]]) or (
        "<tr><td colspan=2>No records.</td></tr>"
    )
    meta = html.escape(f"Environment {report['environment']}, generated {report['generated_at']}")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>{meta}</p>
<h2>Summary</h2>
<table>
{summary}
</table>
<h2>Records per source</h2>
<table>
<tr><th>Source</th><th>Records</th></tr>
{sources}
</table>
<h2>Valid records per hour (UTC)</h2>
{hourly_svg(report["hourly"])}
</body>
</html>
"""


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    day = report_day(event)
    environment = config.optional("ENVIRONMENT", "unknown")
    aggregates = db.get_repository().daily_aggregates(day)
    report = build_report(aggregates, day, clock.now(), environment)
    json_key, html_key = report_keys(day)

    bucket = config.required("REPORTS_BUCKET")
    s3 = aws.client("s3")
    s3.put_object(
        Bucket=bucket,
        Key=json_key,
        Body=json.dumps(report, indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    s3.put_object(
        Bucket=bucket,
        Key=html_key,
        Body=render_html(report).encode("utf-8"),
        ContentType="text/html; charset=utf-8",
    )
    history = {
        "report_date": day.isoformat(),
        "generated_at": report["generated_at"],
        "json_key": json_key,
        "html_key": html_key,
        "total_records": report["total_records"],
        "total_rejected": report["total_rejected"],
        "files": report["files"],
        "environment": environment,
    }
    aws.client("dynamodb").put_item(
        TableName=config.required("REPORT_HISTORY_TABLE"), Item=item_attributes(history)
    )
    summary = {
        "report": "daily",
        "date": day.isoformat(),
        "total_records": report["total_records"],
        "total_rejected": report["total_rejected"],
        "json_key": json_key,
        "html_key": html_key,
    }
    aws.client("sns").publish(
        TopicArn=config.required("ALERTS_TOPIC_ARN"),
        Subject=f"Daily report {day.isoformat()}",
        Message=json.dumps(summary),
    )
    log(LOG, "report generated", **summary, files=report["files"], bucket=bucket)
    return {**summary, "files": report["files"], "generated_at": report["generated_at"]}
