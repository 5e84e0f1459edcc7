"""The rag-worker script (pipeline/tracker/sqs_worker.py) against moto in-process, function by function."""

from __future__ import annotations

import ast
import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from moto.core.models import MockAWS

from pipeline.common import aws
from pipeline.tracker import sqs_worker as worker
from pipeline.tracker.sqs_worker import Clients, Outcome, WorkerSettings

BUCKET = "tracker-data"
TABLE = "tracker-files"
NOW = datetime(2026, 5, 1, 10, 5, tzinfo=UTC)
INPUT_KEY = "data/input/client_1/test_file_1.txt"
OUTPUT_KEY = "data/output/client_1/test_file_1.txt"


@pytest.fixture
def clients(aws_mock: MockAWS) -> Clients:
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return Clients(
        s3=aws.client("s3"), dynamodb=aws.client("dynamodb"), sqs=aws.client("sqs"), ec2=aws.client("ec2")
    )


@pytest.fixture
def copies(clients: Clients) -> Iterator[list[dict[str, Any]]]:
    """Every CopyObject call the worker makes."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **kwargs: Any) -> None:
        seen.append(dict(params))

    clients.s3.meta.events.register("provide-client-params.s3.CopyObject", record)
    try:
        yield seen
    finally:
        clients.s3.meta.events.unregister("provide-client-params.s3.CopyObject", record)


def put_item(
    clients: Clients, item_id: str, status: str = "PENDING", s3_path: str | None = None, **extra: str
) -> None:
    item: dict[str, Any] = {"id": {"S": item_id}, "status": {"S": status}}
    if s3_path is not None:
        item["s3_path"] = {"S": s3_path}
    item.update({name: {"S": value} for name, value in extra.items()})
    clients.dynamodb.put_item(TableName=TABLE, Item=item)


def get_item(clients: Clients, item_id: str) -> dict[str, str]:
    item = clients.dynamodb.get_item(TableName=TABLE, Key={"id": {"S": item_id}}, ConsistentRead=True)["Item"]
    return {name: next(iter(value.values())) for name, value in item.items()}


def stream_record(key: dict[str, Any], event_name: str = "INSERT", status: str = "PENDING") -> str:
    """One DynamoDB stream record, as an EventBridge Pipe puts it in the SQS message body."""
    return json.dumps(
        {
            "eventID": "c4ca4238a0b923820dcc509a6f75849b",
            "eventName": event_name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1777629600,
                "Keys": key,
                "NewImage": {**key, "status": {"S": status}},
                "SequenceNumber": "000000000000000000001",
                "SizeBytes": 64,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/2026-05-01",
        }
    )


def record_for(item_id: str) -> str:
    return stream_record({"id": {"S": item_id}})


def settings_for(queue_url: str, endpoint: str = "http://127.0.0.1:9", idle: float = 5.0) -> WorkerSettings:
    return WorkerSettings(
        queue_url=queue_url,
        table=TABLE,
        region="us-east-1",
        idle_minutes=idle,
        log_file="/dev/null",
        poll_seconds=0,
        metadata_endpoint=endpoint,
    )


# -- output_key, paths, clock, idle ---------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("data/input/client_1/test_file_1.txt", "data/output/client_1/test_file_1.txt"),
        ("input/f.txt", "output/f.txt"),
        ("data/input/f.txt", "data/output/f.txt"),
        ("a/input/b/input/c.txt", "a/output/b/input/c.txt"),
        ("deep/er/input/x/y/z.csv", "deep/er/output/x/y/z.csv"),
        ("/input/lead.txt", "/output/lead.txt"),
        ("data/input/a file (1).txt", "data/output/a file (1).txt"),
    ],
)
def test_output_key(key: str, expected: str) -> None:
    assert worker.output_key(key) == expected


@pytest.mark.parametrize(
    "key",
    ["data/inputs/f.txt", "data/my-input/f.txt", "data/f.txt", "data/input", "input", "data/input/", ""],
)
def test_output_key_refuses_keys_without_an_input_folder(key: str) -> None:
    with pytest.raises(worker.BadS3Path):
        worker.output_key(key)


@pytest.mark.parametrize(
    ("last", "now", "minutes", "expired"),
    [
        (NOW, NOW, 5, False),
        (NOW, NOW + timedelta(minutes=4, seconds=59), 5, False),
        (NOW, NOW + timedelta(minutes=5), 5, True),
        (NOW, NOW + timedelta(hours=1), 5, True),
        (NOW, NOW + timedelta(seconds=30), 0.5, True),
        (NOW, NOW + timedelta(seconds=29), 0.5, False),
        (NOW, NOW - timedelta(minutes=10), 5, False),
        (NOW, NOW, 0, True),
    ],
)
def test_idle_expired(last: datetime, now: datetime, minutes: float, expired: bool) -> None:
    assert worker.idle_expired(last, now, minutes) is expired


def test_clock_file_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = tmp_path / "clock"
    monkeypatch.setenv("PIPELINE_CLOCK_FILE", str(clock))
    clock.write_text("2026-05-01T10:05:00Z\n")
    assert worker.clock_now() == NOW
    clock.write_text("2026-05-01T12:05:00+02:00")
    assert worker.clock_now() == NOW
    clock.write_text("")  # an empty or missing file means the wall clock
    assert abs(worker.clock_now() - datetime.now(UTC)) < timedelta(seconds=5)
    clock.unlink()
    assert abs(worker.clock_now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_settings_from_env() -> None:
    settings = WorkerSettings.from_env({"SQS_QUEUE_URL": "q", "DYNAMODB_TABLE_NAME": "t"})
    assert settings == WorkerSettings(
        queue_url="q",
        table="t",
        region=None,
        idle_minutes=5.0,
        log_file="/var/log/rag-worker/sqs_worker.log",
        poll_seconds=20,
        metadata_endpoint="http://169.254.169.254",
    )
    tuned = WorkerSettings.from_env(
        {
            "SQS_QUEUE_URL": "q",
            "DYNAMODB_TABLE_NAME": "t",
            "AWS_REGION": "eu-west-1",
            "EC2_AUTOTERMINATE_MINUTES": "0.5",
            "WORKER_POLL_SECONDS": "1",
            "LOG_FILE": "/tmp/w.log",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:8080/",
        }
    )
    assert (tuned.region, tuned.idle_minutes, tuned.poll_seconds) == ("eu-west-1", 0.5, 1)
    assert (tuned.log_file, tuned.metadata_endpoint) == ("/tmp/w.log", "http://127.0.0.1:8080")
    with pytest.raises(ValueError, match="DYNAMODB_TABLE_NAME"):
        WorkerSettings.from_env({"SQS_QUEUE_URL": "q"})
    with pytest.raises(ValueError, match="EC2_AUTOTERMINATE_MINUTES"):
        WorkerSettings.from_env(
            {"SQS_QUEUE_URL": "q", "DYNAMODB_TABLE_NAME": "t", "EC2_AUTOTERMINATE_MINUTES": "x"}
        )


# -- process_message ------------------------------------------------------------------------


def test_pending_item_is_copied_and_finished(clients: Clients, copies: list[dict[str, Any]]) -> None:
    clients.s3.put_object(Bucket=BUCKET, Key=INPUT_KEY, Body=b"hello tracker")
    put_item(clients, "test1", s3_path=f"s3://{BUCKET}/{INPUT_KEY}")

    outcome = worker.process_message(record_for("test1"), clients, TABLE, NOW)

    assert outcome == Outcome.FINISHED == "finished"
    assert clients.s3.get_object(Bucket=BUCKET, Key=OUTPUT_KEY)["Body"].read() == b"hello tracker"
    assert clients.s3.get_object(Bucket=BUCKET, Key=INPUT_KEY)["Body"].read() == b"hello tracker"
    assert get_item(clients, "test1") == {
        "id": "test1",
        "status": "FINISHED",
        "s3_path": f"s3://{BUCKET}/{INPUT_KEY}",
        "output_path": f"s3://{BUCKET}/{OUTPUT_KEY}",
        "finished_at": "2026-05-01T10:05:00Z",
    }
    assert len(copies) == 1


def test_duplicate_record_copies_nothing_and_changes_nothing(
    clients: Clients, copies: list[dict[str, Any]]
) -> None:
    clients.s3.put_object(Bucket=BUCKET, Key=INPUT_KEY, Body=b"once")
    put_item(clients, "test1", s3_path=f"s3://{BUCKET}/{INPUT_KEY}")
    assert worker.process_message(record_for("test1"), clients, TABLE, NOW) == Outcome.FINISHED
    item = get_item(clients, "test1")
    head = clients.s3.head_object(Bucket=BUCKET, Key=OUTPUT_KEY)

    again = worker.process_message(record_for("test1"), clients, TABLE, NOW + timedelta(minutes=3))

    assert again == Outcome.SKIPPED
    assert len(copies) == 1
    assert get_item(clients, "test1") == item
    later = clients.s3.head_object(Bucket=BUCKET, Key=OUTPUT_KEY)
    assert (later["ETag"], later["LastModified"]) == (head["ETag"], head["LastModified"])


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "PROCESSING"])
def test_item_not_pending_is_skipped(clients: Clients, copies: list[dict[str, Any]], status: str) -> None:
    clients.s3.put_object(Bucket=BUCKET, Key=INPUT_KEY, Body=b"x")
    put_item(clients, "done", status=status, s3_path=f"s3://{BUCKET}/{INPUT_KEY}")
    before = get_item(clients, "done")
    assert worker.process_message(record_for("done"), clients, TABLE, NOW) == Outcome.SKIPPED
    assert copies == []
    assert get_item(clients, "done") == before


def test_missing_item_is_done_with(clients: Clients, copies: list[dict[str, Any]]) -> None:
    assert worker.process_message(record_for("never-written"), clients, TABLE, NOW) == Outcome.MISSING
    assert copies == []


def test_missing_input_object_fails_the_item(clients: Clients) -> None:
    path = f"s3://{BUCKET}/data/input/client_1/gone.txt"
    put_item(clients, "gone", s3_path=path)

    assert worker.process_message(record_for("gone"), clients, TABLE, NOW) == Outcome.FAILED

    item = get_item(clients, "gone")
    assert item["status"] == "FAILED"
    assert item["error"] == f"input object not found: {path}"
    assert item["failed_at"] == "2026-05-01T10:05:00Z"
    assert "output_path" not in item
    assert clients.s3.list_objects_v2(Bucket=BUCKET, Prefix="data/output/").get("KeyCount") == 0


def test_missing_bucket_fails_the_item(clients: Clients) -> None:
    put_item(clients, "nob", s3_path="s3://no-such-bucket-here/data/input/f.txt")
    assert worker.process_message(record_for("nob"), clients, TABLE, NOW) == Outcome.FAILED
    assert (
        get_item(clients, "nob")["error"]
        == "input bucket not found: s3://no-such-bucket-here/data/input/f.txt"
    )


@pytest.mark.parametrize(
    "s3_path",
    [
        f"{BUCKET}/data/input/f.txt",
        f"https://{BUCKET}.s3.amazonaws.com/data/input/f.txt",
        f"s3://{BUCKET}/data/f.txt",
        f"s3://{BUCKET}/data/inputs/f.txt",
        f"s3://{BUCKET}",
        f"s3://{BUCKET}/",
        "s3:///data/input/f.txt",
        f"s3://{BUCKET}/data/input/",
        None,
    ],
)
def test_malformed_path_fails_the_item(
    clients: Clients, copies: list[dict[str, Any]], s3_path: str | None
) -> None:
    put_item(clients, "bad", s3_path=s3_path)
    assert worker.process_message(record_for("bad"), clients, TABLE, NOW) == Outcome.FAILED
    item = get_item(clients, "bad")
    assert item["status"] == "FAILED"
    assert item["error"].startswith("malformed s3_path: ")
    assert copies == []


def test_number_key(clients: Clients) -> None:
    clients.dynamodb.create_table(
        TableName="numbered",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
    )
    clients.s3.put_object(Bucket=BUCKET, Key="input/42.txt", Body=b"42")
    item = {"id": {"N": "42"}, "status": {"S": "PENDING"}, "s3_path": {"S": f"s3://{BUCKET}/input/42.txt"}}
    clients.dynamodb.put_item(TableName="numbered", Item=item)

    outcome = worker.process_message(stream_record({"id": {"N": "42"}}), clients, "numbered", NOW)

    assert outcome == Outcome.FINISHED
    stored = clients.dynamodb.get_item(TableName="numbered", Key={"id": {"N": "42"}})["Item"]
    assert stored["status"] == {"S": "FINISHED"}
    assert stored["output_path"] == {"S": f"s3://{BUCKET}/output/42.txt"}


def test_a_rerun_after_failure_clears_the_error(clients: Clients) -> None:
    put_item(
        clients, "again", status="PENDING", s3_path=f"s3://{BUCKET}/{INPUT_KEY}", error="old", failed_at="x"
    )
    clients.s3.put_object(Bucket=BUCKET, Key=INPUT_KEY, Body=b"now present")
    assert worker.process_message(record_for("again"), clients, TABLE, NOW) == Outcome.FINISHED
    item = get_item(clients, "again")
    assert "error" not in item and "failed_at" not in item


class StaleReads:
    """A DynamoDB client whose reads still see PENDING after another worker finished the item."""

    def __init__(self, real: Any, stale_item: dict[str, Any]) -> None:
        self.real = real
        self.stale_item = stale_item

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return {"Item": self.stale_item}

    def update_item(self, **kwargs: Any) -> Any:
        return self.real.update_item(**kwargs)


def test_another_workers_result_is_not_overwritten(clients: Clients) -> None:
    clients.s3.put_object(Bucket=BUCKET, Key=INPUT_KEY, Body=b"x")
    put_item(clients, "raced", status="FINISHED", s3_path=f"s3://{BUCKET}/{INPUT_KEY}", finished_at="earlier")
    stale = {"id": {"S": "raced"}, "status": {"S": "PENDING"}, "s3_path": {"S": f"s3://{BUCKET}/{INPUT_KEY}"}}
    racing = Clients(s3=clients.s3, dynamodb=StaleReads(clients.dynamodb, stale))

    assert worker.process_message(record_for("raced"), racing, TABLE, NOW) == Outcome.CONCURRENT
    assert get_item(clients, "raced")["finished_at"] == "earlier"

    stale["s3_path"] = {"S": "nonsense"}
    assert worker.process_message(record_for("raced"), racing, TABLE, NOW) == Outcome.CONCURRENT
    assert get_item(clients, "raced")["status"] == "FINISHED"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps(["a", "list"]),
        json.dumps({"dynamodb": {}}),
        json.dumps({"dynamodb": {"Keys": {"id": {"B": "AAEC"}}}}),
        json.dumps({"dynamodb": {"Keys": {"id": "plain"}}}),
    ],
    ids=["not-json", "list", "no-keys", "binary-key", "untyped-key"],
)
def test_not_a_stream_record_raises(clients: Clients, body: str) -> None:
    with pytest.raises(worker.MalformedMessage):
        worker.process_message(body, clients, TABLE, NOW)


def test_other_errors_propagate(clients: Clients) -> None:
    with pytest.raises(clients.dynamodb.exceptions.ResourceNotFoundException):
        worker.process_message(record_for("x"), clients, "no-such-table", NOW)


# -- the queue ------------------------------------------------------------------------------


def queue_counts(clients: Clients, url: str) -> tuple[int, int]:
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_poll_deletes_what_is_done_and_keeps_what_failed(clients: Clients) -> None:
    url = clients.sqs.create_queue(QueueName="tracker-work")["QueueUrl"]
    clients.s3.put_object(Bucket=BUCKET, Key=INPUT_KEY, Body=b"x")
    put_item(clients, "test1", s3_path=f"s3://{BUCKET}/{INPUT_KEY}")
    put_item(clients, "bad", s3_path="not-s3")
    for body in (record_for("test1"), record_for("bad"), record_for("missing"), "poison"):
        clients.sqs.send_message(QueueUrl=url, MessageBody=body)

    received = 0
    while received < 4:
        got = worker.poll_once(clients, settings_for(url), worker.StopFlag())
        assert got > 0
        received += got

    assert get_item(clients, "test1")["status"] == "FINISHED"
    assert get_item(clients, "bad")["status"] == "FAILED"
    # Only the poison message is left, in flight until SQS redelivers it (then the DLQ).
    assert queue_counts(clients, url) == (0, 1)


def test_stop_releases_unstarted_messages(clients: Clients) -> None:
    url = clients.sqs.create_queue(QueueName="tracker-work")["QueueUrl"]
    put_item(clients, "later", s3_path=f"s3://{BUCKET}/{INPUT_KEY}")
    clients.sqs.send_message(QueueUrl=url, MessageBody=record_for("later"))
    stop = worker.StopFlag()
    stop.requested = True

    assert worker.poll_once(clients, settings_for(url), stop) == 1

    assert get_item(clients, "later")["status"] == "PENDING"
    assert queue_counts(clients, url) == (1, 0)


# -- instance metadata and self-termination ------------------------------------------------


class Imds(ThreadingHTTPServer):
    """A tiny IMDSv2: a token from PUT, the instance id only for a request that carries it."""

    daemon_threads = True

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        self.token = "token-123"
        self.accepted = self.token
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        super().__init__(("127.0.0.1", 0), ImdsHandler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ImdsHandler(BaseHTTPRequestHandler):
    server: Imds

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        self.server.requests.append(("PUT", self.path, {k.lower(): v for k, v in self.headers.items()}))
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        if self.path == "/latest/api/token" and ttl:
            self._reply(200, self.server.token)
        else:
            self._reply(400, "bad token request")

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
        if self.headers.get("X-aws-ec2-metadata-token") != self.server.accepted:
            self._reply(401, "unauthorized")
        elif self.path == "/latest/meta-data/instance-id":
            self._reply(200, self.server.instance_id)
        else:
            self._reply(404, "not found")


@pytest.fixture
def imds_factory() -> Iterator[Callable[[str], Imds]]:
    servers: list[Imds] = []

    def start(instance_id: str) -> Imds:
        server = Imds(instance_id)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_instance_id_uses_an_imdsv2_token(imds_factory: Callable[[str], Imds]) -> None:
    server = imds_factory("i-0123456789abcdef0")
    assert worker.instance_id(server.endpoint + "/") == "i-0123456789abcdef0"
    (put_method, put_path, put_headers), (get_method, get_path, get_headers) = server.requests
    assert (put_method, put_path, put_headers["x-aws-ec2-metadata-token-ttl-seconds"]) == (
        "PUT",
        "/latest/api/token",
        "21600",
    )
    assert (get_method, get_path, get_headers["x-aws-ec2-metadata-token"]) == (
        "GET",
        "/latest/meta-data/instance-id",
        "token-123",
    )


def test_instance_id_without_metadata_service_raises() -> None:
    with pytest.raises(worker.MetadataUnavailable, match="not available"):
        worker.instance_id(closed_port_endpoint())


def test_instance_id_refused_raises(imds_factory: Callable[[str], Imds]) -> None:
    server = imds_factory("i-1")
    server.accepted = "another token"  # the PUT succeeds, the GET is refused
    with pytest.raises(worker.MetadataUnavailable, match="401"):
        worker.instance_id(server.endpoint)
    with pytest.raises(worker.MetadataUnavailable, match="400"):
        worker.instance_id(server.endpoint + "/wrong-prefix")


def launch_tagged(clients: Clients) -> str:
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "Role", "Value": "rag-worker"}]}]
    reply = clients.ec2.run_instances(
        ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1, TagSpecifications=tags
    )
    return str(reply["Instances"][0]["InstanceId"])


def state_of(clients: Clients, instance_id: str) -> str:
    reply = clients.ec2.describe_instances(InstanceIds=[instance_id])
    return str(reply["Reservations"][0]["Instances"][0]["State"]["Name"])


def test_run_processes_then_terminates_its_instance_when_idle(
    clients: Clients, imds_factory: Callable[[str], Imds]
) -> None:
    own = launch_tagged(clients)
    server = imds_factory(own)
    url = clients.sqs.create_queue(QueueName="tracker-work")["QueueUrl"]
    clients.s3.put_object(Bucket=BUCKET, Key=INPUT_KEY, Body=b"x")
    put_item(clients, "test1", s3_path=f"s3://{BUCKET}/{INPUT_KEY}")
    clients.sqs.send_message(QueueUrl=url, MessageBody=record_for("test1"))
    minutes = iter(range(100))

    def virtual_now() -> datetime:  # one virtual minute per look at the clock
        return NOW + timedelta(minutes=next(minutes))

    status = worker.run(
        clients, settings_for(url, server.endpoint, idle=3), worker.StopFlag(), now=virtual_now
    )

    assert status == 0
    assert get_item(clients, "test1")["status"] == "FINISHED"
    assert state_of(clients, own) in ("shutting-down", "terminated")
    # start=0, message at 1, then empty polls at 2, 3, 4: idle for 3 minutes since 1.
    assert next(minutes) == 5


def test_run_without_metadata_exits_1_and_leaves_the_instance(clients: Clients) -> None:
    own = launch_tagged(clients)
    url = clients.sqs.create_queue(QueueName="tracker-work")["QueueUrl"]
    status = worker.run(clients, settings_for(url, closed_port_endpoint(), idle=0), worker.StopFlag())
    assert status == 1
    assert state_of(clients, own) == "running"


def test_run_stops_on_request(clients: Clients) -> None:
    url = clients.sqs.create_queue(QueueName="tracker-work")["QueueUrl"]
    stop = worker.StopFlag()
    stop.requested = True
    assert worker.run(clients, settings_for(url, idle=0), stop) == 0


def test_sigterm_sets_the_stop_flag() -> None:
    import signal

    stop = worker.StopFlag()
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        stop.install()
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


# -- logging and the standalone rule ----------------------------------------------------------


def test_logs_go_to_the_file_and_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_file = tmp_path / "home" / "ubuntu" / "sqs_worker.logs"
    try:
        worker.configure_logging(str(log_file))
        worker._log("hello", item_id="test1")
        for handler in worker.LOG.handlers:
            handler.flush()
        [line] = log_file.read_text().splitlines()
        entry = json.loads(line)
        assert (entry["message"], entry["item_id"], entry["level"]) == ("hello", "test1", "INFO")
        assert entry["time"].endswith("Z")
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["message"] == "hello"
    finally:
        for handler in worker.LOG.handlers:
            handler.close()
        worker.LOG.handlers.clear()
        worker.LOG.propagate = True


def test_worker_is_standalone() -> None:
    """On EC2 the script is downloaded alone: it may import only the stdlib, boto3 and botocore."""
    tree = ast.parse(Path(worker.__file__).read_text())
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            roots.add((node.module or "").split(".")[0])
    foreign = {r for r in roots if r not in sys.stdlib_module_names and r not in {"boto3", "botocore"}}
    assert foreign == set()
