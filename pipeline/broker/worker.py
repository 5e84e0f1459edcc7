"""The broker worker: a long-running ECS service that consumes jobs from RabbitMQ.

    python -m pipeline.broker.worker

Settings: INPUT_BUCKET, OUTPUT_BUCKET, OUTPUT_PREFIX (`results/`), RABBITMQ_SECRET_ARN,
JOB_QUEUE, JOB_DELIVERY_LIMIT, PREFETCH (4), SCRATCH_DIR (the EFS mount, `/mnt/efs`).
Several workers may run at once; each takes up to PREFETCH unacknowledged jobs.

The worker does not use Redis: only the producer de-duplicates. The worker is idempotent by
itself (a redelivered job finds its output already written), so it needs no cache access,
and least privilege keeps it out of ElastiCache.

Per job (`handle_job`): the input `s3://INPUT_BUCKET/<key>` is downloaded to
`SCRATCH_DIR/<job_id>/`, transformed (`transform`) and written to
`s3://OUTPUT_BUCKET/<OUTPUT_PREFIX><key>.json` with metadata `job-id` and `source-etag`;
the scratch files are removed afterwards, also on failure. When that output already carries
this job's id and ETag (a job redelivered after a crash), nothing is written again. The
message is acked only after the output is written.

- Poison jobs (message not a job, input missing, input unreadable) are published to
  `<JOB_QUEUE>.dlq` with `x-error-reason`, `x-error-type`, `x-original-queue` and `job_id`
  headers, with publisher confirms, and then acked, so the reason is kept with the message.
- Any other error is transient: the job is nacked with requeue; the quorum queue's
  x-delivery-limit bounds the retries and RabbitMQ dead-letters it (x-death `delivery_limit`).
- When the broker goes away the worker reconnects with jittered exponential backoff
  (0.5 s doubling to 8 s) and never exits for it.
- SIGTERM/SIGINT: stop consuming, finish and ack the job in hand, close, exit 0. Prefetched
  jobs not yet started go back to the queue (note: on RabbitMQ 3.x that return counts
  towards their delivery limit).
- Heartbeats (30 s) are answered between jobs; a job that blocks for more than ~60 s loses
  the connection, and its redelivery is recognised by its output.

Exit status: 0 after a signal, 2 for a missing or invalid setting.
"""

from __future__ import annotations

import json
import os
import posixpath
import random
import re
import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import pika
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.broker import connection, now_iso, topology, transform
from pipeline.broker.transform import PoisonJob
from pipeline.common import aws, config
from pipeline.common.idempotency import stable_uuid
from pipeline.common.logging import get_logger, log

LOG = get_logger("pipeline.broker.worker")
PROG = "broker-worker"
CONTENT_TYPE = "application/json"
IDLE_POLL_SECONDS = 0.5  # how often an idle consumer checks for a stop signal
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 8.0
CHUNK_BYTES = 1024 * 1024
MAX_REASON = 1000
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MISSING = {"NoSuchKey", "404", "NotFound"}

Status = Literal["written", "skipped", "poison"]


@dataclass(frozen=True)
class WorkerSettings:
    input_bucket: str
    output_bucket: str
    output_prefix: str
    secret_arn: str
    queues: topology.Topology
    prefetch: int
    scratch_dir: Path


@dataclass(frozen=True)
class Job:
    job_id: str
    bucket: str
    key: str
    etag: str


@dataclass(frozen=True)
class Outcome:
    """What became of one job. `poison` carries the reason and error type for the DLQ."""

    status: Status
    job_id: str = ""
    key: str = ""
    output_key: str = ""
    reason: str = ""
    error_type: str = ""


def load_settings() -> WorkerSettings:
    prefetch_text = config.optional("PREFETCH", "4")
    try:
        prefetch = int(prefetch_text)
    except ValueError as exc:
        raise config.ConfigError(f"PREFETCH {prefetch_text!r} is not a whole number") from exc
    if prefetch < 1:
        raise config.ConfigError(f"PREFETCH {prefetch} must be at least 1")
    return WorkerSettings(
        input_bucket=config.required("INPUT_BUCKET"),
        output_bucket=config.required("OUTPUT_BUCKET"),
        output_prefix=config.key_prefix("OUTPUT_PREFIX", "results/"),
        secret_arn=config.required("RABBITMQ_SECRET_ARN"),
        queues=topology.from_env(),
        prefetch=prefetch,
        scratch_dir=Path(config.optional("SCRATCH_DIR", "/mnt/efs")),
    )


# --- one job ----------------------------------------------------------------------------------


def parse_job(body: bytes, input_bucket: str) -> Job:
    """The job in a message body; PoisonJob when it is not one this worker may run."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PoisonJob(f"job message is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise PoisonJob("job message is not a JSON object")
    bucket, key = document.get("bucket"), document.get("key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise PoisonJob("job message lacks bucket or key")
    if bucket != input_bucket:
        raise PoisonJob(f"job names bucket {bucket!r}; this worker reads only {input_bucket!r}")
    etag = str(document.get("etag") or "")
    job_id = str(document.get("job_id") or stable_uuid(bucket, key, etag))
    if not _SAFE_ID.fullmatch(job_id):
        # It names a directory on the shared scratch volume.
        raise PoisonJob(f"job_id {job_id[:80]!r} is not a plain identifier")
    return Job(job_id=job_id, bucket=bucket, key=key, etag=etag)


def output_key(prefix: str, input_key: str) -> str:
    return f"{prefix}{input_key}.json"


def _is_missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING


def already_written(bucket: str, key: str, job: Job) -> bool:
    """True when the output exists and was written for this very job and input version."""
    try:
        head = aws.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _is_missing(exc):
            return False
        raise
    metadata = head.get("Metadata", {})
    return bool(metadata.get("job-id") == job.job_id and metadata.get("source-etag") == job.etag)


def download(job: Job, target: Path) -> None:
    """Streams the input object to `target`; PoisonJob when it does not exist."""
    try:
        response = aws.client("s3").get_object(Bucket=job.bucket, Key=job.key)
    except ClientError as exc:
        if _is_missing(exc):
            raise PoisonJob(f"input s3://{job.bucket}/{job.key} does not exist") from exc
        raise
    with target.open("wb") as sink:
        for chunk in response["Body"].iter_chunks(CHUNK_BYTES):
            sink.write(chunk)


def scratch_file(scratch_dir: Path, job: Job) -> Path:
    """A file of its own under `SCRATCH_DIR/<job_id>/`: two workers may hold the same job
    (a duplicate publish) and must not remove each other's file."""
    extension = posixpath.splitext(job.key)[1].lower()
    unique = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return scratch_dir / job.job_id / f"input-{unique}{extension}"


def _clean_up(path: Path) -> None:
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass  # another worker's file for the same job is still there (or it is gone already)


def handle_job(body: bytes, settings: WorkerSettings) -> Outcome:
    """Runs one job. Returns written/skipped/poison; raises on transient errors (retry)."""
    try:
        job = parse_job(body, settings.input_bucket)
    except PoisonJob as exc:
        return Outcome(status="poison", reason=str(exc), error_type=type(exc).__name__)
    target_key = output_key(settings.output_prefix, job.key)
    done = Outcome(status="skipped", job_id=job.job_id, key=job.key, output_key=target_key)
    if already_written(settings.output_bucket, target_key, job):
        return done
    path = scratch_file(settings.scratch_dir, job)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        download(job, path)
        document = transform.build_document(
            job_id=job.job_id,
            bucket=job.bucket,
            key=job.key,
            etag=job.etag,
            data=path.read_bytes(),
            processed_at=now_iso(),
        )
        aws.client("s3").put_object(
            Bucket=settings.output_bucket,
            Key=target_key,
            Body=transform.render(document),
            ContentType=CONTENT_TYPE,
            Metadata={"job-id": job.job_id, "source-etag": job.etag},
        )
    except PoisonJob as exc:
        return Outcome(
            status="poison",
            job_id=job.job_id,
            key=job.key,
            output_key=target_key,
            reason=str(exc),
            error_type=type(exc).__name__,
        )
    finally:
        _clean_up(path)
    return Outcome(status="written", job_id=job.job_id, key=job.key, output_key=target_key)


# --- RabbitMQ ---------------------------------------------------------------------------------


class ConsumerCancelled(RuntimeError):
    """The broker ended the consumer (queue deleted, node shutting down): reconnect later."""


class StopFlag:
    """Set by SIGTERM/SIGINT; the consume loop looks at it between jobs and while idle."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""

    def set(self, signum: int, frame: FrameType | None = None) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.set)
        signal.signal(signal.SIGINT, self.set)

    def sleep(self, seconds: float) -> None:
        """Sleeps, but returns within 0.1 s of a stop request."""
        deadline = time.monotonic() + seconds
        while not self.requested and (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(0.1, remaining))


class Backoff:
    """0.5 s doubling to 8 s, each delay jittered to between half and all of it."""

    def __init__(self, first: float = BACKOFF_FIRST, cap: float = BACKOFF_MAX) -> None:
        self.first, self.cap = first, cap
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.first * 2**self.attempt)
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


def dead_letter_properties(
    properties: Any, outcome: Outcome, queues: topology.Topology
) -> pika.BasicProperties:
    headers = dict(getattr(properties, "headers", None) or {})
    job_id = outcome.job_id or str(headers.get("job_id") or getattr(properties, "message_id", None) or "")
    return pika.BasicProperties(
        content_type=getattr(properties, "content_type", None) or CONTENT_TYPE,
        delivery_mode=2,
        message_id=getattr(properties, "message_id", None) or job_id or None,
        headers={
            "x-error-reason": outcome.reason[:MAX_REASON],
            "x-error-type": outcome.error_type,
            "x-original-queue": queues.job_queue,
            "job_id": job_id,
        },
    )


def delivery_count(properties: Any) -> int:
    """Quorum queues count earlier deliveries in `x-delivery-count` (absent the first time)."""
    headers = getattr(properties, "headers", None) or {}
    try:
        return int(headers.get("x-delivery-count", 0))
    except (TypeError, ValueError):
        return 0


def process_delivery(
    channel: Any,
    dead_letters: Any,
    method: Any,
    properties: Any,
    body: bytes,
    settings: WorkerSettings,
) -> Outcome | None:
    """Handles one delivery and acks or nacks it; None when it was requeued.

    Broker errors (ack, nack, DLQ publish on a lost connection) propagate: the caller reconnects.
    """
    started = time.monotonic()
    fields: dict[str, Any] = {"delivery_count": delivery_count(properties), "redelivered": method.redelivered}
    try:
        outcome = handle_job(body, settings)
    except Exception as exc:  # noqa: BLE001 - every other failure is worth a retry
        channel.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
        LOG.warning(
            "job failed; requeued",
            extra={
                "fields": {
                    **fields,
                    "job_id": getattr(properties, "message_id", None),
                    "outcome": "requeued",
                    "error": f"{type(exc).__name__}: {exc}",
                    "ms": round((time.monotonic() - started) * 1000),
                }
            },
        )
        return None
    if outcome.status == "poison":
        try:
            dead_letters.publish(
                settings.queues.dlq, body, dead_letter_properties(properties, outcome, settings.queues)
            )
        except connection.PublishFailed as exc:
            channel.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
            LOG.error(
                "poison job not dead-lettered; requeued", extra={"fields": {"error": str(exc), **fields}}
            )
            return None
    channel.basic_ack(delivery_tag=method.delivery_tag)
    log(
        LOG,
        "job done",
        job_id=outcome.job_id,
        key=outcome.key,
        output_key=outcome.output_key,
        outcome=outcome.status,
        reason=outcome.reason or None,
        ms=round((time.monotonic() - started) * 1000),
        **fields,
    )
    return outcome


def consume(conn: Any, settings: WorkerSettings, stop: StopFlag, on_ready: Any = None) -> None:
    """Consumes until a stop is requested; broker errors propagate to the reconnect loop."""
    channel = conn.channel()
    topology.declare(channel, settings.queues)
    channel.basic_qos(prefetch_count=settings.prefetch)
    dead_letters = connection.ConfirmingPublisher(conn, settings.queues)  # its own channel
    if on_ready is not None:
        on_ready()
    for method, properties, body in channel.consume(
        settings.queues.job_queue, inactivity_timeout=IDLE_POLL_SECONDS
    ):
        if stop.requested:
            break
        if method is None:  # idle: the timeout let us look at the stop flag
            continue
        process_delivery(channel, dead_letters, method, properties, body, settings)
        if stop.requested:
            break
    if not stop.requested:
        raise ConsumerCancelled(f"the broker cancelled the consumer of {settings.queues.job_queue}")
    channel.cancel()  # prefetched jobs not started go back to the queue
    log(LOG, "consumer stopped", signal=stop.signal_name)


# A broker that is down, a secret that cannot be read yet, a consumer the broker ended.
RECONNECT_ERRORS: tuple[type[BaseException], ...] = (
    *connection.BROKER_ERRORS,
    BotoCoreError,
    ClientError,
    connection.SecretError,
    ConsumerCancelled,
)


def run(settings: WorkerSettings, stop: StopFlag) -> None:
    """Consumes until stopped, reconnecting whenever the broker goes away."""
    backoff = Backoff()
    while not stop.requested:
        conn = None
        try:
            conn = connection.connect(settings.secret_arn)
            log(LOG, "connected", queue=settings.queues.job_queue, prefetch=settings.prefetch)
            consume(conn, settings, stop, on_ready=backoff.reset)
        except RECONNECT_ERRORS as exc:
            if stop.requested:
                break
            delay = backoff.next_delay()
            LOG.warning(
                "broker unavailable; reconnecting",
                extra={
                    "fields": {
                        "attempt": backoff.attempt,
                        "delay_s": round(delay, 2),
                        "broker": connection.broker_address(settings.secret_arn),
                        "error": connection.describe(exc),
                    }
                },
            )
            stop.sleep(delay)
        finally:
            connection.close_quietly(conn)
    log(LOG, "worker stopped", signal=stop.signal_name)


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings()
    except config.ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    stop = StopFlag()
    stop.install()
    log(LOG, "worker started", queue=settings.queues.job_queue, scratch_dir=str(settings.scratch_dir))
    run(settings, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
