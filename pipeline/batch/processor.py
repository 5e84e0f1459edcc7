"""The batch processor: aggregate one day of raw data into `reports/YYYY-MM-DD.json` (seed 001).

    python -m pipeline.batch.processor

The command of the ECS Fargate task's container `processor`. Settings come from the
environment: DATA_BUCKET (required), RAW_PREFIX (`raw-data/`), REPORTS_PREFIX (`reports/`),
RUN_DATE (`YYYY-MM-DD`: reprocess that day), SCHEDULE_TIME (the ISO-8601 instant the schedule
fired) and DAY_OFFSET (1). Without RUN_DATE the day is (SCHEDULE_TIME or the clock) minus
DAY_OFFSET days, as a UTC date: a run at 2026-01-16T01:00Z processes 2026-01-15.

Every object under `raw-data/<day>/` is read: `.csv` (a header row naming `key` and `value`),
`.json` (an array of records, else JSON lines) and `.jsonl`; other files are counted as
skipped. A record is valid with a non-empty string `key` and a finite numeric `value` (a
number or a numeric string, never a boolean). Bad records and unreadable files are counted,
with up to 20 sample reasons, and never stop the run.

Unlike the seed, a run is idempotent: the same inputs give the same report apart from
`generated_at`, and a report whose content has not changed is not written again. A day
without objects gives a report with zero counts. Exit status: 0 done, 1 AWS error, 2 bad setting.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import posixpath
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.common import aws, clock, config
from pipeline.common.logging import get_logger, log

LOG = get_logger("pipeline.batch")
PROG = "batch-processor"
MAX_SAMPLES = 20
PAGE_SIZE = 1000  # keys per ListObjectsV2 page (the S3 maximum)
FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

Number = int | float
Located = tuple[str, Any]  # ("line 3", the record as parsed)


class SettingError(ValueError):
    """A setting that cannot be used: the run stops with exit status 2."""


class FileError(ValueError):
    """A file that cannot be parsed at all; it is counted as a malformed file."""


class RecordError(ValueError):
    """A record without a usable key or value; it is counted as malformed."""


@dataclass(frozen=True)
class Unreadable:
    """A JSON line that did not parse: a malformed record, not a malformed file."""

    reason: str


@dataclass(frozen=True)
class Settings:
    bucket: str
    raw_prefix: str
    reports_prefix: str
    day: date
    run_date_override: bool

    @property
    def source_prefix(self) -> str:
        return f"{self.raw_prefix}{self.day.isoformat()}/"

    @property
    def report_key(self) -> str:
        return f"{self.reports_prefix}{self.day.isoformat()}.json"


# --- settings ---------------------------------------------------------------------------------


def parse_run_date(text: str) -> date:
    """A `YYYY-MM-DD` calendar date, or SettingError."""
    value = text.strip()
    if _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise SettingError(f"RUN_DATE {text!r} is not a valid date (expected YYYY-MM-DD)")


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant in UTC; one without a zone is taken as UTC."""
    try:
        instant = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise SettingError(f"SCHEDULE_TIME {text!r} is not an ISO-8601 instant") from exc
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def parse_day_offset(text: str) -> int:
    try:
        offset = int(text.strip())
    except ValueError as exc:
        raise SettingError(f"DAY_OFFSET {text!r} is not a whole number of days") from exc
    if offset < 0:
        raise SettingError(f"DAY_OFFSET {text!r} must not be negative")
    return offset


def current_time() -> datetime:
    try:
        return clock.now().astimezone(UTC)
    except ValueError as exc:
        raise SettingError(f"PIPELINE_CLOCK_FILE does not hold an ISO-8601 instant: {exc}") from exc


def scheduled_day(schedule_time: str, day_offset: str) -> date:
    """The day a scheduled run covers: the firing time (or now) minus the offset, in UTC."""
    instant = parse_instant(schedule_time) if schedule_time else current_time()
    return (instant - timedelta(days=parse_day_offset(day_offset))).date()


def load_settings() -> Settings:
    try:
        bucket = config.required("DATA_BUCKET")
    except config.ConfigError as exc:
        raise SettingError(str(exc)) from exc
    run_date = config.optional("RUN_DATE", "").strip()
    if run_date:
        day, override = parse_run_date(run_date), True
    else:
        day = scheduled_day(config.optional("SCHEDULE_TIME", ""), config.optional("DAY_OFFSET", "1"))
        override = False
    return Settings(
        bucket=bucket,
        raw_prefix=config.key_prefix("RAW_PREFIX", "raw-data/"),
        reports_prefix=config.key_prefix("REPORTS_PREFIX", "reports/"),
        day=day,
        run_date_override=override,
    )


# --- parse ------------------------------------------------------------------------------------


def file_format(key: str) -> str | None:
    """`csv`, `json` or `jsonl` by the key's extension; None for a file to skip."""
    return FORMATS.get(posixpath.splitext(key)[1].lower())


def parse_file(fmt: str, body: bytes) -> list[Located]:
    """The records of one file with their locations; FileError when the file is unreadable."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if fmt == "csv":
        return parse_csv(text)
    if fmt == "jsonl":
        return parse_json_lines(text)
    return parse_json(text)


def parse_csv(text: str) -> list[Located]:
    reader = csv.DictReader(io.StringIO(text, newline=""), skipinitialspace=True)
    try:
        header = [name.strip() for name in reader.fieldnames or []]
        if "key" not in header or "value" not in header:
            raise FileError(f"CSV header {header} does not name both key and value columns")
        reader.fieldnames = header
        return [(f"line {reader.line_num}", row) for row in reader]
    except csv.Error as exc:
        raise FileError(f"broken CSV at line {reader.line_num}: {exc}") from exc


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def parse_json_lines(text: str) -> list[Located]:
    """One record per non-blank line; a line that is not JSON becomes an Unreadable record."""
    records: list[Located] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record: Any = _loads(line)
        except ValueError as exc:
            record = Unreadable(f"invalid JSON ({_reason(exc)})")
        records.append((f"line {number}", record))
    return records


def parse_json(text: str) -> list[Located]:
    """An array of records; any other JSON body is read as JSON lines, every line of which must parse."""
    try:
        document = _loads(text)
    except ValueError as exc:
        records = parse_json_lines(text)
        if any(isinstance(record, Unreadable) for _, record in records):
            raise FileError(f"invalid JSON ({_reason(exc)}), and not JSON lines either") from exc
        return records
    if isinstance(document, list):
        return [(f"record {n}", item) for n, item in enumerate(document, start=1)]
    return [("record 1", document)]


def _reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)


# --- validate ---------------------------------------------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validate_record(record: object) -> tuple[str, Number]:
    """The record's key and numeric value, or RecordError naming what is wrong."""
    if isinstance(record, Unreadable):
        raise RecordError(record.reason)
    if not isinstance(record, dict):
        raise RecordError(f"not an object but {type(record).__name__}")
    key = record.get("key")
    if key is None:
        raise RecordError("no key")
    if not isinstance(key, str):
        raise RecordError(f"key {_show(key)} is not a string")
    if not key.strip():
        raise RecordError("key is empty")
    if record.get("value") is None:
        raise RecordError("no value")
    return key, numeric_value(record["value"])


def numeric_value(value: object) -> Number:
    """A finite int or float from a number or a decimal string; never a boolean."""
    if isinstance(value, bool):
        raise RecordError(f"value {value!r} is a boolean, not a number")
    if isinstance(value, str):
        value = _number_from_text(value)
    if not isinstance(value, int | float):
        raise RecordError(f"value {_show(value)} is not a number")
    try:
        finite = math.isfinite(value)
    except OverflowError:
        finite = False
    if not finite:
        raise RecordError(f"value {_show(value)} is not a finite number")
    return value


def _number_from_text(text: str) -> Number:
    stripped = text.strip()
    if not _DECIMAL.fullmatch(stripped):
        raise RecordError(f"value {_show(text)} is not a number")
    try:
        return int(stripped) if _INTEGER.fullmatch(stripped) else float(stripped)
    except ValueError as exc:  # more digits than int() accepts
        raise RecordError(f"value {_show(text)} is out of range") from exc


# --- aggregate --------------------------------------------------------------------------------


@dataclass
class KeyStats:
    count: int = 0
    total: Number = 0
    low: Number = math.inf
    high: Number = -math.inf

    def add(self, value: Number) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def render(self) -> dict[str, Number]:
        mean = round(self.total / self.count, 6) + 0.0  # + 0.0 turns -0.0 into 0.0
        return {"count": self.count, "sum": self.total, "min": self.low, "max": self.high, "mean": mean}


@dataclass
class DayAggregate:
    files_processed: int = 0
    files_skipped: int = 0
    files_malformed: int = 0
    records_valid: int = 0
    records_malformed: int = 0
    total: Number = 0
    keys: dict[str, KeyStats] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)

    def note(self, reason: str) -> None:
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(reason)

    def add_malformed_file(self, key: str, reason: str) -> None:
        self.files_malformed += 1
        self.note(f"{key}: {reason}")

    def add_file(self, key: str, records: list[Located]) -> tuple[int, int]:
        """Counts one parsed file's records; returns its (valid, malformed) counts."""
        valid = malformed = 0
        for location, record in records:
            try:
                name, value = validate_record(record)
            except RecordError as exc:
                malformed += 1
                self.note(f"{key} {location}: {exc}")
                continue
            valid += 1
            self.keys.setdefault(name, KeyStats()).add(value)
            self.total += value
        self.files_processed += 1
        self.records_valid += valid
        self.records_malformed += malformed
        return valid, malformed


# --- render and write -------------------------------------------------------------------------


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def render_report(settings: Settings, aggregate: DayAggregate, generated_at: datetime) -> dict[str, Any]:
    return {
        "date": settings.day.isoformat(),
        "generated_at": _iso(generated_at),
        "source_prefix": settings.source_prefix,
        "run_date_override": settings.run_date_override,
        "files": {
            "processed": aggregate.files_processed,
            "skipped": aggregate.files_skipped,
            "malformed": aggregate.files_malformed,
        },
        "records": {
            "total": aggregate.records_valid + aggregate.records_malformed,
            "valid": aggregate.records_valid,
            "malformed": aggregate.records_malformed,
        },
        "keys": {name: stats.render() for name, stats in sorted(aggregate.keys.items())},
        "total_sum": aggregate.total,
        "malformed_samples": list(aggregate.samples),
    }


def report_body(report: dict[str, Any]) -> bytes:
    return (json.dumps(report, sort_keys=True, indent=2) + "\n").encode()


def _content(report: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in report.items() if name != "generated_at"}


def existing_report(bucket: str, key: str) -> dict[str, Any] | None:
    s3 = aws.client("s3")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def write_report(settings: Settings, report: dict[str, Any]) -> bool:
    """Writes the report unless the stored one has the same content; True when written."""
    previous = existing_report(settings.bucket, settings.report_key)
    if previous is not None and _content(previous) == _content(report):
        return False
    aws.client("s3").put_object(
        Bucket=settings.bucket,
        Key=settings.report_key,
        Body=report_body(report),
        ContentType="application/json",
    )
    return True


# --- run --------------------------------------------------------------------------------------


def list_keys(bucket: str, prefix: str) -> Iterator[str]:
    paginator = aws.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": PAGE_SIZE}):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("/"):  # folder markers are not files
                yield obj["Key"]


def process_file(aggregate: DayAggregate, bucket: str, key: str) -> None:
    fmt = file_format(key)
    if fmt is None:
        aggregate.files_skipped += 1
        log(LOG, "skipped file", key=key, reason="unsupported extension")
        return
    body = bytes(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    try:
        records = parse_file(fmt, body)
    except FileError as exc:
        aggregate.add_malformed_file(key, str(exc))
        log(LOG, "malformed file", key=key, format=fmt, reason=str(exc))
        return
    valid, malformed = aggregate.add_file(key, records)
    log(LOG, "processed file", key=key, format=fmt, records=len(records), valid=valid, malformed=malformed)


def run(settings: Settings) -> dict[str, Any]:
    """Aggregates the day and writes its report; returns the report."""
    log(
        LOG,
        "batch run started",
        bucket=settings.bucket,
        date=settings.day.isoformat(),
        source_prefix=settings.source_prefix,
        run_date_override=settings.run_date_override,
    )
    aggregate = DayAggregate()
    for key in list_keys(settings.bucket, settings.source_prefix):
        process_file(aggregate, settings.bucket, key)
    report = render_report(settings, aggregate, current_time())
    written = write_report(settings, report)
    log(
        LOG,
        "report written" if written else "report unchanged; not rewritten",
        report=f"s3://{settings.bucket}/{settings.report_key}",
        written=written,
        files=report["files"],
        records=report["records"],
        keys=len(report["keys"]),
    )
    return report


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").splitlines()[0])
    parser.parse_args(argv)
    try:
        run(load_settings())
    except SettingError as exc:
        print(f"{PROG}: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        LOG.error("batch run failed", extra={"fields": {"error": f"{type(exc).__name__}: {_one_line(exc)}"}})
        print(f"{PROG}: AWS error: {_one_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
