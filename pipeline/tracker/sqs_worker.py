#!/usr/bin/env python3
"""The rag-worker: copies each tracked file from `.../input/...` to `.../output/...` and marks it FINISHED.

Standalone on purpose: an EC2 instance downloads this one file from S3 and runs
`python3 sqs_worker.py`, so it imports only the standard library, boto3 and botocore.

Each SQS message is one DynamoDB stream record (as an EventBridge Pipe delivers it). The
worker reads the item it names, consistently; only a PENDING item is worked on, so a
duplicate record copies nothing. The status moves PENDING -> FINISHED (with output_path,
finished_at) or PENDING -> FAILED (with error, failed_at) under the condition that it is
still PENDING, so two workers never both record a result. A message is deleted once its item
has a final answer; on any other error it is left for SQS to redeliver (and, after
maxReceiveCount, to move to the DLQ).

Settings: SQS_QUEUE_URL, DYNAMODB_TABLE_NAME, AWS_REGION, EC2_AUTOTERMINATE_MINUTES (5),
LOG_FILE (/var/log/rag-worker/sqs_worker.log), WORKER_POLL_SECONDS (20), PIPELINE_CLOCK_FILE
(a harness's virtual clock), AWS_EC2_METADATA_SERVICE_ENDPOINT (botocore's variable).

When nothing has arrived for EC2_AUTOTERMINATE_MINUTES, the worker asks the instance
metadata service (IMDSv2) for its own id and terminates that instance. SIGTERM lets the
current message finish, then the worker exits 0.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

PENDING = "PENDING"
FINISHED = "FINISHED"
FAILED = "FAILED"
DEFAULT_LOG_FILE = "/var/log/rag-worker/sqs_worker.log"
DEFAULT_POLL_SECONDS = 20
DEFAULT_METADATA_ENDPOINT = "http://169.254.169.254"
METADATA_TIMEOUT_SECONDS = 2.0
METADATA_SESSION_TTL_SECONDS = "21600"
# After a failed receive, so a broken queue does not become a busy loop.
ERROR_BACKOFF_SECONDS = 5.0
MISSING_OBJECT_CODES = ("NoSuchKey", "404", "NotFound")

LOG = logging.getLogger("rag-worker")
_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)


class Outcome(StrEnum):
    """What became of one message; each of these means it is done and is deleted."""

    FINISHED = "finished"  # copied; item FINISHED
    FAILED = "failed"  # item FAILED with an error that retrying cannot fix
    SKIPPED = "skipped"  # item was no longer PENDING (a duplicate record)
    MISSING = "missing"  # no such item
    CONCURRENT = "concurrent"  # another worker recorded the result first


class MalformedMessage(ValueError):
    """A message that is not a DynamoDB stream record; left for the DLQ, where it can be read."""


class BadS3Path(ValueError):
    """An s3_path this worker cannot map to an output path."""


class MetadataUnavailable(RuntimeError):
    """The instance metadata service did not tell us who we are."""


# -- clock, settings, logging ----------------------------------------------------------------


def clock_now() -> datetime:
    """Now; a harness may set PIPELINE_CLOCK_FILE (same rules as pipeline.common.clock)."""
    source = os.environ.get("PIPELINE_CLOCK_FILE")
    if source:
        try:
            text = Path(source).read_text().strip()
        except OSError:
            text = ""
        if text:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def idle_expired(last: datetime, now: datetime, minutes: float) -> bool:
    return now - last >= timedelta(minutes=minutes)


@dataclass(frozen=True)
class WorkerSettings:
    queue_url: str
    table: str
    region: str | None
    idle_minutes: float
    log_file: str
    poll_seconds: int
    metadata_endpoint: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> WorkerSettings:
        missing = [name for name in ("SQS_QUEUE_URL", "DYNAMODB_TABLE_NAME") if not env.get(name)]
        if missing:
            raise ValueError(f"environment variables not set: {', '.join(missing)}")
        minutes_text = env.get("EC2_AUTOTERMINATE_MINUTES") or "5"
        poll_text = env.get("WORKER_POLL_SECONDS") or str(DEFAULT_POLL_SECONDS)
        try:
            minutes = float(minutes_text)
            poll = int(poll_text)
        except ValueError as exc:
            raise ValueError(
                f"EC2_AUTOTERMINATE_MINUTES or WORKER_POLL_SECONDS is not a number: {exc}"
            ) from exc
        return cls(
            queue_url=env["SQS_QUEUE_URL"],
            table=env["DYNAMODB_TABLE_NAME"],
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            idle_minutes=max(minutes, 0.0),
            log_file=env.get("LOG_FILE") or DEFAULT_LOG_FILE,
            # SQS accepts a long poll of 0-20 s.
            poll_seconds=min(max(poll, 0), 20),
            metadata_endpoint=(
                env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or DEFAULT_METADATA_ENDPOINT
            ).rstrip("/"),
        )


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": iso(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, sort_keys=True)


def _is_stdout(path: str) -> bool:
    """True when stdout already goes to `path` (the user data redirects it to LOG_FILE)."""
    try:
        out, target = os.fstat(sys.stdout.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (out.st_dev, out.st_ino) == (target.st_dev, target.st_ino)


def configure_logging(log_file: str) -> None:
    LOG.handlers.clear()
    LOG.propagate = False
    LOG.setLevel(os.environ.get("LOG_LEVEL", "INFO"))
    formatter = JsonLines()
    file_error: OSError | None = None
    try:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file)
        file_handler.setFormatter(formatter)
        LOG.addHandler(file_handler)
    except OSError as exc:
        file_error = exc
    # Without this check every line would be written to the log file twice.
    if file_error is not None or not _is_stdout(log_file):
        stream = logging.StreamHandler(sys.stdout)
        stream.setFormatter(formatter)
        LOG.addHandler(stream)
    if file_error is not None:
        _log("cannot write the log file; logging to stdout only", logging.WARNING, error=str(file_error))


def _log(message: str, level: int = logging.INFO, **fields: Any) -> None:
    LOG.log(level, message, extra={"fields": fields})


# -- one message --------------------------------------------------------------------------


@dataclass(frozen=True)
class Clients:
    s3: Any
    dynamodb: Any
    sqs: Any = None
    ec2: Any = None

    @classmethod
    def create(cls, region: str | None) -> Clients:
        # The default session honours AWS_ENDPOINT_URL, so a harness can point it at an emulator.
        session = boto3.session.Session(region_name=region)

        def make(service: str) -> Any:
            return session.client(service, config=_CONFIG)  # type: ignore[call-overload]

        return cls(s3=make("s3"), dynamodb=make("dynamodb"), sqs=make("sqs"), ec2=make("ec2"))


def output_key(input_key: str) -> str:
    """`data/input/client_1/f.txt` -> `data/output/client_1/f.txt` (the first `input` folder)."""
    if not input_key or input_key.endswith("/"):
        raise BadS3Path(f"key {input_key!r} names a folder, not a file")
    parts = input_key.split("/")
    # The last part is the file name: a file called `input` is not an input folder.
    for index, part in enumerate(parts[:-1]):
        if part == "input":
            parts[index] = "output"
            return "/".join(parts)
    raise BadS3Path(f"key {input_key!r} has no input/ folder")


def parse_s3_path(path: object) -> tuple[str, str]:
    if not isinstance(path, str) or not path.startswith("s3://"):
        raise BadS3Path(f"not an s3:// path: {path!r}")
    bucket, sep, key = path[len("s3://") :].partition("/")
    if not bucket or not sep or not key:
        raise BadS3Path(f"{path!r} has no bucket or no key")
    return bucket, key


def item_key(body: str) -> tuple[dict[str, Any], Any]:
    """The table key named by a stream record: as DynamoDB JSON, and readable (for the log)."""
    try:
        record = json.loads(body)
    except (TypeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"message body is not JSON: {exc}") from exc
    dynamodb = record.get("dynamodb") if isinstance(record, dict) else None
    keys = dynamodb.get("Keys") if isinstance(dynamodb, dict) else None
    if not isinstance(keys, dict) or not keys:
        raise MalformedMessage("message is not a DynamoDB stream record: no dynamodb.Keys")
    deserializer = TypeDeserializer()
    readable: dict[str, Any] = {}
    for name, value in keys.items():
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("S", "N"):
            raise MalformedMessage(f"key attribute {name} is not a string or a number: {value!r}")
        attribute: Any = value  # checked above to be one S or N attribute
        readable[name] = deserializer.deserialize(attribute)
    return keys, readable.get("id", readable)


def _string(attribute: object) -> str | None:
    if isinstance(attribute, dict) and isinstance(attribute.get("S"), str):
        return str(attribute["S"])
    return None


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _record_result(
    clients: Clients, table: str, key: dict[str, Any], status: str, values: dict[str, str], now: datetime
) -> bool:
    """Set the final status and its attributes if the item is still PENDING; False if it was not."""
    if status == FINISHED:
        expression = (
            "SET #status = :status, output_path = :output, finished_at = :at REMOVE #error, failed_at"
        )
        attribute_values = {":output": {"S": values["output_path"]}}
    else:
        expression = "SET #status = :status, #error = :error, failed_at = :at REMOVE output_path, finished_at"
        attribute_values = {":error": {"S": values["error"]}}
    try:
        clients.dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression=expression,
            ConditionExpression="#status = :pending",
            ExpressionAttributeNames={"#status": "status", "#error": "error"},
            ExpressionAttributeValues={
                ":status": {"S": status},
                ":pending": {"S": PENDING},
                ":at": {"S": iso(now)},
                **attribute_values,
            },
        )
    except ClientError as exc:
        if _error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _fail(clients: Clients, table: str, key: dict[str, Any], item_id: Any, error: str, now: datetime) -> str:
    if not _record_result(clients, table, key, FAILED, {"error": error}, now):
        _log("already answered by another worker", item_id=item_id)
        return Outcome.CONCURRENT
    _log("item failed", logging.WARNING, item_id=item_id, error=error)
    return Outcome.FAILED


def process_message(body: str, clients: Clients, table: str, now: datetime) -> str:
    """Work on the item one stream record names; returns an Outcome, raises to keep the message."""
    key, item_id = item_key(body)
    item = clients.dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    if item is None:
        _log("item not found; nothing to do", item_id=item_id)
        return Outcome.MISSING
    status = _string(item.get("status"))
    if status != PENDING:
        _log(f"already {status or 'without a status'}", item_id=item_id, status=status)
        return Outcome.SKIPPED

    s3_path = item.get("s3_path")
    try:
        bucket, input_key = parse_s3_path(_string(s3_path) or s3_path)
        target = output_key(input_key)
    except BadS3Path as exc:
        return _fail(clients, table, key, item_id, f"malformed s3_path: {exc}", now)
    source_uri = f"s3://{bucket}/{input_key}"
    try:
        clients.s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": input_key})
    except ClientError as exc:
        code = _error_code(exc)
        if code in MISSING_OBJECT_CODES:
            return _fail(clients, table, key, item_id, f"input object not found: {source_uri}", now)
        if code == "NoSuchBucket":
            return _fail(clients, table, key, item_id, f"input bucket not found: {source_uri}", now)
        raise

    output_uri = f"s3://{bucket}/{target}"
    if not _record_result(clients, table, key, FINISHED, {"output_path": output_uri}, now):
        _log("already answered by another worker", item_id=item_id, output_path=output_uri)
        return Outcome.CONCURRENT
    _log("item finished", item_id=item_id, input=source_uri, output_path=output_uri)
    return Outcome.FINISHED


# -- the queue ------------------------------------------------------------------------------


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop checks it between messages, so one is never cut short."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._request)
        signal.signal(signal.SIGINT, self._request)

    def _request(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def handle_message(message: dict[str, Any], clients: Clients, settings: WorkerSettings) -> str | None:
    """Process and delete one message; None when it failed and stays for redelivery."""
    fields: dict[str, Any] = {
        "message_id": message.get("MessageId"),
        "receive_count": (message.get("Attributes") or {}).get("ApproximateReceiveCount"),
    }
    try:
        outcome = process_message(message["Body"], clients, settings.table, clock_now())
    except Exception:  # any failure leaves the message to SQS redelivery, then the DLQ
        LOG.exception("message failed; left for redelivery", extra={"fields": fields})
        return None
    try:
        clients.sqs.delete_message(QueueUrl=settings.queue_url, ReceiptHandle=message["ReceiptHandle"])
    except (BotoCoreError, ClientError) as exc:
        # Harmless: the redelivered message finds the item no longer PENDING.
        _log("could not delete the message", logging.WARNING, error=str(exc), **fields)
    _log("message done", outcome=str(outcome), **fields)
    return outcome


def _release(messages: list[dict[str, Any]], clients: Clients, settings: WorkerSettings) -> None:
    """Make received but unstarted messages visible again at once, for the next worker."""
    entries = [
        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
        for n, m in enumerate(messages)
    ]
    if not entries:
        return
    try:
        clients.sqs.change_message_visibility_batch(QueueUrl=settings.queue_url, Entries=entries)
    except (BotoCoreError, ClientError) as exc:
        _log(
            "could not release messages; they return after the visibility timeout",
            logging.WARNING,
            error=str(exc),
        )


def poll_once(clients: Clients, settings: WorkerSettings, stop: StopFlag) -> int:
    """Receive up to 10 messages and handle them; returns how many arrived (0 on a failed receive)."""
    try:
        response = clients.sqs.receive_message(
            QueueUrl=settings.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=settings.poll_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
    except (BotoCoreError, ClientError):
        LOG.exception("receive failed", extra={"fields": {"queue": settings.queue_url}})
        time.sleep(ERROR_BACKOFF_SECONDS)
        return 0
    messages: list[dict[str, Any]] = response.get("Messages", [])
    for index, message in enumerate(messages):
        if stop.requested:
            _release(messages[index:], clients, settings)
            break
        handle_message(message, clients, settings)
    return len(messages)


# -- leaving --------------------------------------------------------------------------------


def instance_id(endpoint: str) -> str:
    """This instance's id from the metadata service, with an IMDSv2 session token."""
    base = endpoint.rstrip("/")
    try:
        token_request = urllib.request.Request(
            f"{base}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": METADATA_SESSION_TTL_SECONDS},
        )
        with urllib.request.urlopen(token_request, timeout=METADATA_TIMEOUT_SECONDS) as response:
            token = response.read().decode().strip()
        id_request = urllib.request.Request(
            f"{base}/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token}
        )
        with urllib.request.urlopen(id_request, timeout=METADATA_TIMEOUT_SECONDS) as response:
            found = response.read().decode().strip()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise MetadataUnavailable(f"instance metadata at {base} not available: {exc}") from exc
    if not found:
        raise MetadataUnavailable(f"instance metadata at {base} returned an empty instance id")
    return found


def terminate_self(clients: Clients, settings: WorkerSettings) -> int:
    """Terminate this instance; the exit status for main (1 when it could not be done)."""
    try:
        own = instance_id(settings.metadata_endpoint)
    except MetadataUnavailable as exc:
        _log("cannot learn the instance id; not terminating", logging.ERROR, error=str(exc))
        return 1
    try:
        clients.ec2.terminate_instances(InstanceIds=[own])
    except (BotoCoreError, ClientError):
        LOG.exception("terminate_instances failed", extra={"fields": {"instance_id": own}})
        return 1
    _log("terminating own instance", instance_id=own)
    return 0


def run(
    clients: Clients, settings: WorkerSettings, stop: StopFlag, now: Callable[[], datetime] = clock_now
) -> int:
    """The worker loop; returns the process exit status."""
    last_activity = now()
    while not stop.requested:
        received = poll_once(clients, settings, stop)
        current = now()
        if received:
            last_activity = current
            continue
        if current < last_activity:
            last_activity = current  # the (virtual) clock was set back: measure from here
        if stop.requested:
            break
        if idle_expired(last_activity, current, settings.idle_minutes):
            _log("idle; terminating", idle_since=iso(last_activity), now=iso(current))
            return terminate_self(clients, settings)
    _log("stopping on signal")
    return 0


def main() -> int:
    try:
        settings = WorkerSettings.from_env()
    except ValueError as exc:
        configure_logging(os.environ.get("LOG_FILE") or DEFAULT_LOG_FILE)
        _log("worker not started", logging.ERROR, error=str(exc))
        return 2
    configure_logging(settings.log_file)
    stop = StopFlag()
    stop.install()
    _log(
        "worker started",
        queue=settings.queue_url,
        table=settings.table,
        idle_minutes=settings.idle_minutes,
        poll_seconds=settings.poll_seconds,
        clock="virtual" if os.environ.get("PIPELINE_CLOCK_FILE") else "wall",
    )
    return run(Clients.create(settings.region), settings, stop)


if __name__ == "__main__":
    sys.exit(main())
