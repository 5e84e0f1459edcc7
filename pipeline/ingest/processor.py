"""The data_processor Lambda: raw files (via EventBridge -> SQS) or direct payloads, validated and stored.

SQS batch (`{"Records": [...]}`, every record from `aws:sqs`): each body is an EventBridge S3
"Object Created" event for the raw bucket. Per object: mark the event-table item PROCESSING,
read the object (the event's version when it names one), parse and validate it, write the
valid records as Parquet and the rejects as JSON lines to PROCESSED_BUCKET, upsert both into
PostgreSQL in one transaction, then mark the item PROCESSED or PROCESSED_WITH_REJECTS. A
partly bad file succeeds; its rejects are recorded with their reasons.

Failures are reported per message (ReportBatchItemFailures), so SQS retries only those and
finally moves them to the DLQ, and the item is marked FAILED with an error_message:

- a file that cannot be parsed, or an object that no longer exists, is permanent: besides
  FAILED, ONE SNS alert goes to ALERTS_TOPIC_ARN per object version (a conditional update of
  `alert_sent_at`/`alert_version` on the item), so the retries that follow do not alert again;
- anything else (database down, throttling, a bug) is presumed transient: FAILED, no alert,
  since the retry will likely succeed and the DLQ alarm covers the case where it does not;
- a message that is not an S3 event for RAW_BUCKET (MalformedEvent) only fails and is logged.

Direct invocation (`{"data": [...], "source": optional}`) is validated and stored the same way
under origin "direct" and returns `{"status": "ok"|"partial", counts, "rejects": [...]}` (the
first 100, with 0-based `index`). Any other event raises ValueError.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from pipeline.common import aws, clock, config
from pipeline.common.events import (
    MalformedEvent,
    S3ObjectRef,
    s3_object_from_eventbridge,
    sqs_record_body_json,
)
from pipeline.common.logging import get_logger, log
from pipeline.ingest import db, storage
from pipeline.ingest.metadata import EventTable
from pipeline.ingest.parsing import ParseError, check_size, parse, records_from_items
from pipeline.ingest.schema import (
    Defaults,
    Rejected,
    ValidRecord,
    check_source,
    default_source_for_key,
    iso,
    validate_records,
)

LOG = get_logger("pipeline.ingest.processor")
MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket"})
MAX_REJECTS_RETURNED = 100
MAX_SUBJECT = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class ObjectMissing(LookupError):
    """The object an event names is gone (deleted since, or a wrong version); retrying will not help."""


PERMANENT_ERRORS = (ParseError, ObjectMissing)


@dataclass
class Progress:
    """What is known about one object so far: counts for a FAILED item, timings for the log."""

    total: int = 0
    valid: int = 0
    rejected: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings_ms[step] = round((time.perf_counter() - started) * 1000, 1)

    def counted(self, valid: Sequence[ValidRecord], rejected: Sequence[Rejected]) -> None:
        self.valid, self.rejected = len(valid), len(rejected)
        self.total = self.valid + self.rejected


@dataclass(frozen=True)
class Stored:
    parquet_keys: list[str]
    rejects_key: str | None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise ValueError(f"unsupported event: expected a JSON object, got {type(event).__name__}")
    records = event.get("Records")
    if isinstance(records, list):
        if all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records):
            return handle_sqs_batch(records)
        raise ValueError("unsupported event: Records that do not all come from SQS (eventSource aws:sqs)")
    if "data" in event:
        return handle_direct(event, context)
    raise ValueError('unsupported event: expected an SQS batch {"Records": [...]} or {"data": [...]}')


# -- SQS batches of S3 events -------------------------------------------------------------------


def handle_sqs_batch(records: list[dict[str, Any]]) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            body = sqs_record_body_json(record)
            ref = s3_object_from_eventbridge(body)
            raw_bucket = config.optional("RAW_BUCKET", "")
            if raw_bucket and ref.bucket != raw_bucket:
                raise MalformedEvent(f"event is for bucket {ref.bucket!r}, not RAW_BUCKET {raw_bucket!r}")
            ingest_object(ref, _event_time(body))
        except Exception as exc:  # noqa: BLE001 - every failure is reported per record
            LOG.error(
                "record failed",
                extra={"fields": {"message_id": message_id, "error": f"{type(exc).__name__}: {exc}"}},
            )
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def _event_time(body: dict[str, Any]) -> datetime:
    """When S3 created the object (the event's `time`); now if the event lacks a usable one."""
    try:
        moment = datetime.fromisoformat(str(body["time"]))
    except (KeyError, ValueError):
        return clock.now()
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def ingest_object(ref: S3ObjectRef, received_at: datetime) -> str:
    """Process one object end to end; returns its final status or raises (after marking FAILED)."""
    table = EventTable(config.required("EVENT_TABLE"))
    location = {"bucket": ref.bucket, "etag": ref.etag, "version_id": ref.version_id}
    table.mark_processing(ref.key, received_at=received_at, now=clock.now(), location=location)
    progress = Progress()
    try:
        stored = process_object(ref, received_at, progress)
    except Exception as exc:
        _record_failure(table, ref, exc, progress)
        raise
    status = table.mark_processed(
        ref.key,
        now=clock.now(),
        total=progress.total,
        valid=progress.valid,
        rejected=progress.rejected,
        parquet_keys=stored.parquet_keys,
        rejects_key=stored.rejects_key,
    )
    log(
        LOG,
        "object ingested",
        bucket=ref.bucket,
        key=ref.key,
        status=status,
        records_total=progress.total,
        records_valid=progress.valid,
        records_rejected=progress.rejected,
        parquet_keys=stored.parquet_keys,
        rejects_key=stored.rejects_key,
        timings_ms=progress.timings_ms,
    )
    return status


def process_object(ref: S3ObjectRef, received_at: datetime, progress: Progress) -> Stored:
    with progress.timed("fetch"):
        body, etag = fetch_object(ref)
    with progress.timed("parse"):
        parsed = parse(ref.key, body)
    with progress.timed("validate"):
        defaults = Defaults(event_time=received_at, source=default_source_for_key(ref.key))
        valid, rejected = validate_records(parsed.records, defaults, numeric_strings=parsed.format == "csv")
    progress.counted(valid, rejected)
    origin = f"s3://{ref.bucket}/{ref.key}"
    stem = storage.object_stem(ref.bucket, ref.key, etag)
    return store(stem, origin, origin, valid, rejected, received_at, progress)


def fetch_object(ref: S3ObjectRef) -> tuple[bytes, str]:
    """The object's bytes and ETag; ObjectMissing if it is gone, ParseError if it is too big to read."""
    s3 = aws.client("s3")
    args = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        args["VersionId"] = ref.version_id
    try:
        response = s3.get_object(**args)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in MISSING_OBJECT_CODES:
            version = f" (version {ref.version_id})" if ref.version_id else ""
            raise ObjectMissing(f"s3://{ref.bucket}/{ref.key}{version} does not exist ({code})") from None
        raise
    try:
        check_size(int(response.get("ContentLength", 0)))  # before reading it all into memory
    except ParseError:
        response["Body"].close()
        raise
    body = bytes(response["Body"].read())
    return body, ref.etag or str(response.get("ETag", "")).strip('"')


def store(
    stem: str,
    origin: str,
    rejects_origin: str,
    valid: Sequence[ValidRecord],
    rejected: Sequence[Rejected],
    received_at: datetime,
    progress: Progress,
) -> Stored:
    bucket = config.required("PROCESSED_BUCKET")
    now = clock.now()
    written: list[str] = []
    try:
        with progress.timed("write_s3"):
            parquet_keys = storage.write_parquet(bucket, stem, valid, origin)
            written.extend(parquet_keys)
            rejects_key = storage.write_rejects(bucket, stem, rejected, now.date())
            written.extend([rejects_key] if rejects_key else [])
        with progress.timed("write_db"):
            batch = db.IngestBatch(
                origin=origin,
                records=valid,
                rejects=rejected,
                rejects_origin=rejects_origin,
                received_at=received_at,
                ingested_at=now,
            )
            db.get_repository().save_batch(batch)
    except Exception:
        # Found by the chaos tests: with PostgreSQL failing, a file that ended in the DLQ
        # left its Parquet behind, and the data lake served data the database never got.
        # A retry writes the same keys again, so removing them loses nothing.
        with contextlib.suppress(Exception):
            storage.remove_outputs(bucket, written)
        raise
    return Stored(parquet_keys, rejects_key)


def _record_failure(table: EventTable, ref: S3ObjectRef, exc: Exception, progress: Progress) -> None:
    permanent = isinstance(exc, PERMANENT_ERRORS)
    message = str(exc) if permanent else f"{type(exc).__name__}: {exc}"
    LOG.error(
        "object failed",
        extra={
            "fields": {
                "bucket": ref.bucket,
                "key": ref.key,
                "error": message,
                "permanent": permanent,
                "timings_ms": progress.timings_ms,
            }
        },
    )
    # The original error is what the caller reports; failing to record it must not mask it.
    try:
        counts = (progress.total, progress.valid, progress.rejected)
        table.mark_failed(ref.key, now=clock.now(), error=message, counts=counts)
        if permanent:
            _alert_once(table, ref, exc, message)
    except Exception as inner:  # noqa: BLE001
        LOG.error(
            "could not record the failure",
            extra={"fields": {"key": ref.key, "error": f"{type(inner).__name__}: {inner}"}},
        )


def _alert_once(table: EventTable, ref: S3ObjectRef, exc: Exception, message: str) -> None:
    version = ref.version_id or ref.etag or ""
    if not table.claim_alert(ref.key, version=version, now=clock.now()):
        log(LOG, "alert already sent for this object version", key=ref.key, version=version)
        return
    verb = "could not parse" if isinstance(exc, ParseError) else "could not read"
    try:
        aws.client("sns").publish(
            TopicArn=config.required("ALERTS_TOPIC_ARN"),
            Subject=alert_subject(f"data_processor: {verb} {ref.key}"),
            Message=json.dumps(
                {
                    "alert": "ingest_failure",
                    "bucket": ref.bucket,
                    "key": ref.key,
                    "error": message,
                    "environment": config.optional("ENVIRONMENT", "unknown"),
                }
            ),
        )
    except Exception:
        table.release_alert(ref.key)  # so that the next retry alerts instead
        raise
    log(LOG, "alert sent", key=ref.key, version=version)


def alert_subject(text: str) -> str:
    """An SNS subject: ASCII, no line breaks or control characters, at most 100 characters."""
    ascii_text = text.encode("ascii", "replace").decode("ascii")
    clean = _CONTROL.sub(" ", ascii_text).strip()
    if len(clean) > MAX_SUBJECT:
        clean = clean[: MAX_SUBJECT - 3] + "..."
    return clean


# -- direct invocation --------------------------------------------------------------------------


def handle_direct(event: dict[str, Any], context: Any) -> dict[str, Any]:
    data = event.get("data")
    if not isinstance(data, list):
        raise ValueError(f'"data" must be a list of records, not {type(data).__name__}')
    source = event.get("source", "direct")
    try:
        source = check_source(source)
    except ValueError as exc:
        raise ValueError(f'"source" {exc}') from None

    now = clock.now()
    payload_id = storage.short_id(json.dumps(data, sort_keys=True, default=str), source)
    request_id = getattr(context, "aws_request_id", None)
    # The same payload maps to the same Parquet key and rejects; each call gets its own item.
    object_key = f"direct/{request_id or payload_id}"
    table = EventTable(config.required("EVENT_TABLE"))
    table.mark_processing(object_key, received_at=now, now=now, location={})
    progress = Progress()
    try:
        with progress.timed("validate"):
            valid, rejected = validate_records(
                records_from_items(data, first=0), Defaults(event_time=now, source=source), position="index"
            )
        progress.counted(valid, rejected)
        stored = store(
            f"direct-{payload_id}", "direct", f"direct/{payload_id}", valid, rejected, now, progress
        )
    except Exception as exc:
        counts = (progress.total, progress.valid, progress.rejected)
        table.mark_failed(object_key, now=clock.now(), error=f"{type(exc).__name__}: {exc}", counts=counts)
        raise
    status = table.mark_processed(
        object_key,
        now=clock.now(),
        total=progress.total,
        valid=progress.valid,
        rejected=progress.rejected,
        parquet_keys=stored.parquet_keys,
        rejects_key=stored.rejects_key,
    )
    log(
        LOG,
        "direct payload ingested",
        object_key=object_key,
        status=status,
        received_at=iso(now),
        records_total=progress.total,
        records_valid=progress.valid,
        records_rejected=progress.rejected,
        parquet_keys=stored.parquet_keys,
        timings_ms=progress.timings_ms,
    )
    return {
        "status": "partial" if rejected else "ok",
        "records_total": progress.total,
        "records_valid": progress.valid,
        "records_rejected": progress.rejected,
        "rejects": [{"index": r.line, "reasons": r.reasons} for r in rejected[:MAX_REJECTS_RETURNED]],
    }
