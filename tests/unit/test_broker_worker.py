"""The broker worker without RabbitMQ: one job against moto S3, delivery handling with a fake
channel, the reconnect loop, and SIGTERM handling of the real process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pika
import pika.exceptions
import pytest
from botocore.exceptions import ClientError
from moto.core.models import MockAWS

from pipeline.broker import connection, topology, worker
from pipeline.common import aws
from pipeline.common.idempotency import stable_uuid

IN, OUT = "broker-input", "broker-output"
QUEUES = topology.Topology("broker-jobs", 3)


@pytest.fixture
def settings(aws_mock: MockAWS, tmp_path: Path) -> worker.WorkerSettings:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=IN)
    s3.create_bucket(Bucket=OUT)
    return worker.WorkerSettings(
        input_bucket=IN,
        output_bucket=OUT,
        output_prefix="results/",
        secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rabbit",
        queues=QUEUES,
        prefetch=4,
        scratch_dir=tmp_path / "efs",
    )


def put_input(key: str, body: bytes) -> dict[str, Any]:
    etag = str(aws.client("s3").put_object(Bucket=IN, Key=key, Body=body)["ETag"]).strip('"')
    return {"job_id": stable_uuid(IN, key, etag), "bucket": IN, "key": key, "etag": etag, "size": len(body)}


def body_of(job: dict[str, Any]) -> bytes:
    return json.dumps(job).encode()


def scratch_left(settings: worker.WorkerSettings) -> list[Path]:
    return list(settings.scratch_dir.rglob("*")) if settings.scratch_dir.exists() else []


# --- handle_job -------------------------------------------------------------------------------


def test_job_writes_its_output_once_with_metadata(settings: worker.WorkerSettings) -> None:
    job = put_input("incoming/2026/orders.csv", b"Item,Qty\npen,2\n")
    outcome = worker.handle_job(body_of(job), settings)
    assert outcome == worker.Outcome(
        status="written",
        job_id=job["job_id"],
        key=job["key"],
        output_key="results/incoming/2026/orders.csv.json",
    )
    s3 = aws.client("s3")
    stored = s3.get_object(Bucket=OUT, Key=outcome.output_key)
    assert stored["Metadata"] == {"job-id": job["job_id"], "source-etag": job["etag"]}
    assert stored["ContentType"] == "application/json"
    document = json.loads(stored["Body"].read())
    assert document["records"] == [{"item": "pen", "qty": 2}]
    assert document["source"] == {"bucket": IN, "key": job["key"], "etag": job["etag"]}
    assert document["stats"]["record_count"] == 1
    assert scratch_left(settings) == []

    # Redelivered after a crash before the ack: recognised, nothing rewritten.
    again = worker.handle_job(body_of(job), settings)
    assert again.status == "skipped" and again.output_key == outcome.output_key
    assert s3.head_object(Bucket=OUT, Key=outcome.output_key)["ETag"] == stored["ETag"]
    versions = s3.list_objects_v2(Bucket=OUT)["KeyCount"]
    assert versions == 1


def test_new_input_version_rewrites_the_output(settings: worker.WorkerSettings) -> None:
    first = put_input("incoming/a.jsonl", b'{"a": 1}\n')
    assert worker.handle_job(body_of(first), settings).status == "written"
    second = put_input("incoming/a.jsonl", b'{"a": 1}\n{"a": 2}\n')
    assert worker.handle_job(body_of(second), settings).status == "written"
    stored = aws.client("s3").get_object(Bucket=OUT, Key="results/incoming/a.jsonl.json")
    assert stored["Metadata"]["job-id"] == second["job_id"]
    assert json.loads(stored["Body"].read())["stats"]["record_count"] == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1]", "not a JSON object"),
        (json.dumps({"bucket": IN}).encode(), "lacks bucket or key"),
        (json.dumps({"bucket": "other", "key": "k.csv"}).encode(), "reads only 'broker-input'"),
        (
            json.dumps({"bucket": IN, "key": "k.csv", "job_id": "../../etc"}).encode(),
            "not a plain identifier",
        ),
        (json.dumps({"bucket": IN, "key": "incoming/gone.csv", "etag": "x"}).encode(), "does not exist"),
    ],
)
def test_bad_jobs_are_poison(settings: worker.WorkerSettings, body: bytes, reason: str) -> None:
    outcome = worker.handle_job(body, settings)
    assert outcome.status == "poison" and reason in outcome.reason
    assert outcome.error_type == "PoisonJob"
    assert aws.client("s3").list_objects_v2(Bucket=OUT)["KeyCount"] == 0
    assert scratch_left(settings) == []


def test_unparseable_input_is_poison_and_its_scratch_is_removed(settings: worker.WorkerSettings) -> None:
    job = put_input("incoming/broken.json", b"{oops")
    outcome = worker.handle_job(body_of(job), settings)
    assert (outcome.status, outcome.job_id) == ("poison", job["job_id"])
    assert "invalid JSON" in outcome.reason
    assert scratch_left(settings) == []


def test_transient_errors_raise_and_leave_no_scratch(settings: worker.WorkerSettings) -> None:
    job = put_input("incoming/a.csv", b"a\n1\n")
    aws.client("s3").delete_bucket(Bucket=OUT)  # any S3 error other than "not found" is transient
    with pytest.raises(ClientError):
        worker.handle_job(body_of(job), settings)
    assert scratch_left(settings) == []


def test_scratch_file_lives_under_the_job_directory(settings: worker.WorkerSettings) -> None:
    job = worker.Job(job_id="j-1", bucket=IN, key="incoming/x.CSV", etag="e")
    path = worker.scratch_file(settings.scratch_dir, job)
    assert path.parent == settings.scratch_dir / "j-1" and path.suffix == ".csv"
    assert worker.scratch_file(settings.scratch_dir, job) != path  # two holders never collide


# --- deliveries -------------------------------------------------------------------------------


class FakeChannel:
    def __init__(self) -> None:
        self.acks: list[int] = []
        self.nacks: list[tuple[int, bool]] = []

    def basic_ack(self, delivery_tag: int) -> None:
        self.acks.append(delivery_tag)

    def basic_nack(self, delivery_tag: int, requeue: bool) -> None:
        self.nacks.append((delivery_tag, requeue))


class FakeDeadLetters:
    def __init__(self, fail: bool = False) -> None:
        self.published: list[tuple[str, bytes, pika.BasicProperties]] = []
        self.fail = fail

    def publish(self, routing_key: str, body: bytes, properties: pika.BasicProperties) -> None:
        if self.fail:
            raise connection.PublishFailed("broker nacked the message to 'broker-jobs.dlq'")
        self.published.append((routing_key, body, properties))


def deliver(
    settings: worker.WorkerSettings,
    body: bytes,
    dead_letters: FakeDeadLetters | None = None,
    **properties: Any,
) -> tuple[FakeChannel, FakeDeadLetters, worker.Outcome | None]:
    channel, dlq = FakeChannel(), dead_letters or FakeDeadLetters()
    method = SimpleNamespace(delivery_tag=7, redelivered=False)
    outcome = worker.process_delivery(
        channel, dlq, method, pika.BasicProperties(**properties), body, settings
    )
    return channel, dlq, outcome


def test_written_job_is_acked(settings: worker.WorkerSettings) -> None:
    job = put_input("incoming/a.csv", b"a\n1\n")
    channel, dlq, outcome = deliver(settings, body_of(job), message_id=job["job_id"])
    assert outcome is not None and outcome.status == "written"
    assert (channel.acks, channel.nacks, dlq.published) == ([7], [], [])


def test_poison_job_goes_to_the_dlq_with_its_reason_then_is_acked(settings: worker.WorkerSettings) -> None:
    job = put_input("incoming/a.txt", b"hello")
    body = body_of(job)
    channel, dlq, _ = deliver(settings, body, message_id=job["job_id"], headers={"job_id": job["job_id"]})
    assert channel.acks == [7] and channel.nacks == []
    ((routing_key, dead_body, properties),) = dlq.published
    assert (routing_key, dead_body) == ("broker-jobs.dlq", body)
    assert properties.headers == {
        "x-error-reason": "unsupported input type '.txt'; expected .csv, .json or .jsonl",
        "x-error-type": "PoisonJob",
        "x-original-queue": "broker-jobs",
        "job_id": job["job_id"],
    }
    assert (properties.delivery_mode, properties.message_id) == (2, job["job_id"])


def test_unparseable_message_keeps_the_message_id_as_job_id(settings: worker.WorkerSettings) -> None:
    _, dlq, _ = deliver(settings, b"{", message_id="m-9")
    assert dlq.published[0][2].headers["job_id"] == "m-9"


def test_transient_failure_is_requeued(settings: worker.WorkerSettings) -> None:
    job = put_input("incoming/a.csv", b"a\n1\n")
    aws.client("s3").delete_bucket(Bucket=OUT)
    channel, dlq, outcome = deliver(settings, body_of(job), headers={"x-delivery-count": 1})
    assert outcome is None and channel.nacks == [(7, True)] and channel.acks == [] and dlq.published == []


def test_poison_that_cannot_be_dead_lettered_is_requeued(settings: worker.WorkerSettings) -> None:
    channel, _, outcome = deliver(settings, b"nope", FakeDeadLetters(fail=True))
    assert outcome is None and channel.nacks == [(7, True)] and channel.acks == []


# --- reconnecting and stopping ----------------------------------------------------------------


def test_backoff_doubles_to_eight_seconds_with_jitter() -> None:
    backoff = worker.Backoff()
    delays = [backoff.next_delay() for _ in range(7)]
    ceilings = [0.5, 1, 2, 4, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_broker_outage_is_retried_until_stopped(
    settings: worker.WorkerSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop, attempts, sleeps = worker.StopFlag(), [], []

    def refuse(secret_arn: str) -> None:
        attempts.append(secret_arn)
        raise pika.exceptions.AMQPConnectionError()

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 4:
            stop.set(signal.SIGTERM)

    monkeypatch.setattr(connection, "connect", refuse)
    monkeypatch.setattr(connection, "broker_address", lambda arn: "127.0.0.1:1")
    monkeypatch.setattr(stop, "sleep", sleep)
    worker.run(settings, stop)
    assert len(attempts) == 4 and stop.signal_name == "SIGTERM"
    assert [round(s) <= c for s, c in zip(sleeps, [0.5, 1, 2, 4], strict=True)] == [True] * 4


def test_stop_flag_sleep_returns_early_once_stopped() -> None:
    stop = worker.StopFlag()
    stop.set(signal.SIGINT)
    started = time.monotonic()
    stop.sleep(5)
    assert time.monotonic() - started < 0.2


def test_missing_setting_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("INPUT_BUCKET", raising=False)
    assert worker.main([]) == 2
    assert "INPUT_BUCKET" in capsys.readouterr().err


class _SecretsManager(BaseHTTPRequestHandler):
    """Answers GetSecretValue with a secret naming a port where no broker listens."""

    amqp_port = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        secret = {"username": "u", "password": "p", "endpoint": f"amqp://127.0.0.1:{self.amqp_port}"}
        body = json.dumps({"ARN": "arn:x", "Name": "rabbit", "SecretString": json.dumps(secret)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_process_exits_0_promptly_on_sigterm_while_the_broker_is_unreachable(tmp_path: Path) -> None:
    _SecretsManager.amqp_port = _closed_port()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SecretsManager)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "INPUT_BUCKET": IN,
        "OUTPUT_BUCKET": OUT,
        "RABBITMQ_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rabbit",
        "SCRATCH_DIR": str(tmp_path),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.broker.worker"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not any("reconnecting" in line for line in lines):
            line = process.stdout.readline()
            assert line, f"worker exited early: {lines}"
            lines.append(line)
        warning = json.loads(lines[-1])
        assert warning["broker"] == f"127.0.0.1:{_SecretsManager.amqp_port}" and warning["attempt"] == 1
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert process.wait(timeout=5) == 0
        assert time.monotonic() - started < 1.0
        assert "worker stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        server.shutdown()
        server.server_close()
