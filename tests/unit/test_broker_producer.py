"""The broker producer against moto S3 and Secrets Manager, with a fake Redis and a fake publisher."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pika
import pika.exceptions
import pytest
import redis.exceptions
from moto.core.models import MockAWS

from pipeline.broker import connection, dedup, producer
from pipeline.common import aws
from pipeline.common.idempotency import stable_uuid

BUCKET = "broker-input"
REAL_OPEN_PUBLISHER = producer.open_publisher


class FakeRedis:
    """SET NX/XX with TTLs, DELETE and PING; `down` makes every command fail like a dead server."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.ttls: dict[str, int | None] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise redis.exceptions.ConnectionError(
                "Error 111 connecting to 127.0.0.1:6399. Connection refused."
            )

    def ping(self) -> bool:
        self._check()
        return True

    def set(
        self, name: str, value: str, *, ex: int | None = None, nx: bool = False, xx: bool = False
    ) -> bool | None:
        self._check()
        if (nx and name in self.values) or (xx and name not in self.values):
            return None
        self.values[name], self.ttls[name] = value, ex
        return True

    def delete(self, *names: str) -> int:
        self._check()
        return sum(1 for name in names if self.values.pop(name, None) is not None)


class FakePublisher:
    def __init__(self, fail_with: BaseException | None = None) -> None:
        self.messages: list[tuple[str, bytes, pika.BasicProperties]] = []
        self.fail_with = fail_with
        self.closed = False

    def publish(self, routing_key: str, body: bytes, properties: pika.BasicProperties) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.messages.append((routing_key, body, properties))

    def close(self) -> None:
        self.closed = True

    def jobs(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, _ in self.messages]


@pytest.fixture
def env(aws_mock: MockAWS, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    arn = aws.client("secretsmanager").create_secret(
        Name="rabbit",
        SecretString=json.dumps({"username": "u", "password": "p", "endpoint": "amqp://127.0.0.1:1"}),
    )["ARN"]
    for name, value in {
        "INPUT_BUCKET": BUCKET,
        "RABBITMQ_SECRET_ARN": arn,
        "REDIS_URL": "redis://127.0.0.1:6399/0",
        "JOB_QUEUE": "broker-jobs",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("INPUT_PREFIX", "DEDUP_TTL_SECONDS", "DEDUP_LEASE_SECONDS", "JOB_DELIVERY_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    fake_redis, publishers = FakeRedis(), []

    def open_publisher(settings: producer.ProducerSettings) -> FakePublisher:
        publishers.append(FakePublisher(fail_with=state["publish_error"]))
        return publishers[-1]

    state: dict[str, Any] = {"s3": s3, "redis": fake_redis, "publishers": publishers, "publish_error": None}
    monkeypatch.setattr(producer, "open_publisher", open_publisher)
    monkeypatch.setattr(
        producer,
        "open_deduplicator",
        lambda settings: dedup.Deduplicator(
            fake_redis, settings.lease_seconds, settings.ttl_seconds, address="127.0.0.1:6399"
        ),
    )
    connection.forget_secret()
    yield state
    connection.forget_secret()


def put(s3: Any, key: str, body: bytes) -> str:
    return str(s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]).strip('"')


def all_jobs(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [job for publisher in state["publishers"] for job in publisher.jobs()]


def test_publishes_one_job_per_object_and_skips_folders_and_other_prefixes(env: dict[str, Any]) -> None:
    etag = put(env["s3"], "incoming/a.csv", b"x,y\n1,2\n")
    put(env["s3"], "incoming/sub/", b"")
    put(env["s3"], "elsewhere/b.csv", b"x\n1\n")

    assert producer.handler({"source": "broker-schedule"}, None) == {
        "listed": 1,
        "published": 1,
        "skipped": 0,
    }

    (publisher,) = env["publishers"]
    ((routing_key, body, properties),) = publisher.messages
    job = json.loads(body)
    job_id = stable_uuid(BUCKET, "incoming/a.csv", etag)
    assert routing_key == "broker-jobs"
    assert job == {
        "job_id": job_id,
        "bucket": BUCKET,
        "key": "incoming/a.csv",
        "etag": etag,
        "size": 8,
        "produced_at": job["produced_at"],
    }
    assert job["produced_at"].endswith("Z")
    assert (properties.content_type, properties.delivery_mode, properties.message_id) == (
        "application/json",
        2,
        job_id,
    )
    assert properties.headers == {"job_id": job_id}
    assert publisher.closed
    key = f"broker:dedup:{BUCKET}/incoming/a.csv:{etag}"
    assert (env["redis"].values[key], env["redis"].ttls[key]) == ("published", 604800)


def test_same_object_twice_gives_one_job_and_a_new_etag_a_new_job(env: dict[str, Any]) -> None:
    put(env["s3"], "incoming/a.json", b"[]")
    assert producer.handler({}, None)["published"] == 1
    assert producer.handler({}, None) == {"listed": 1, "published": 0, "skipped": 1}
    put(env["s3"], "incoming/a.json", b'[{"a": 1}]')
    assert producer.handler({}, None) == {"listed": 1, "published": 1, "skipped": 0}
    jobs = all_jobs(env)
    assert len(jobs) == 2 and jobs[0]["job_id"] != jobs[1]["job_id"]
    # Nothing new to publish: no broker connection at all.
    assert len(env["publishers"]) == 2


def test_object_in_progress_elsewhere_is_skipped(env: dict[str, Any]) -> None:
    etag = put(env["s3"], "incoming/a.csv", b"x\n1\n")
    env["redis"].values[f"broker:dedup:{BUCKET}/incoming/a.csv:{etag}"] = "pending"
    assert producer.handler({}, None) == {"listed": 1, "published": 0, "skipped": 1}


def test_publish_failure_releases_the_claim_and_raises(env: dict[str, Any]) -> None:
    put(env["s3"], "incoming/a.csv", b"x\n1\n")
    env["publish_error"] = connection.PublishFailed("broker nacked the message to 'broker-jobs'")
    with pytest.raises(producer.BrokerUnavailable, match=r"nacked.*next schedule retries"):
        producer.handler({}, None)
    assert env["redis"].values == {}
    assert env["publishers"][0].closed

    env["publish_error"] = None  # the next schedule publishes it
    assert producer.handler({}, None)["published"] == 1


def test_unreachable_broker_releases_the_claim_with_a_clear_error(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    put(env["s3"], "incoming/a.csv", b"x\n1\n")

    def refuse(settings: producer.ProducerSettings) -> FakePublisher:
        connection.load_secret(settings.secret_arn)  # as connection.connect does first
        raise pika.exceptions.AMQPConnectionError()

    monkeypatch.setattr(producer, "open_publisher", refuse)
    with pytest.raises(
        producer.BrokerUnavailable,
        match=r"RabbitMQ unavailable at 127\.0\.0\.1:1: AMQPConnectionError; no jobs",
    ):
        producer.handler({}, None)
    assert env["redis"].values == {}


def test_refused_broker_connection_is_reported_with_its_address(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once closed
    secret = {"username": "u", "password": "p", "endpoint": f"amqp://127.0.0.1:{port}"}
    arn = aws.client("secretsmanager").create_secret(Name="refused", SecretString=json.dumps(secret))["ARN"]
    monkeypatch.setenv("RABBITMQ_SECRET_ARN", arn)
    monkeypatch.setattr(producer, "open_publisher", REAL_OPEN_PUBLISHER)
    put(env["s3"], "incoming/a.csv", b"x\n1\n")
    with pytest.raises(
        producer.BrokerUnavailable, match=f"RabbitMQ unavailable at 127.0.0.1:{port}: .*refused"
    ):
        producer.handler({}, None)
    assert env["redis"].values == {}


def test_redis_down_fails_loudly_and_publishes_nothing(env: dict[str, Any]) -> None:
    put(env["s3"], "incoming/a.csv", b"x\n1\n")
    env["redis"].down = True
    with pytest.raises(
        dedup.RedisUnavailable, match=r"Redis unavailable at 127\.0\.0\.1:6399: .*no jobs published"
    ):
        producer.handler({}, None)
    assert env["publishers"] == []


def test_lists_every_page(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(producer, "PAGE_SIZE", 2)
    for n in range(5):
        put(env["s3"], f"incoming/{n}.csv", b"x\n1\n")
    assert producer.handler({}, None) == {"listed": 5, "published": 5, "skipped": 0}
    assert len({job["job_id"] for job in all_jobs(env)}) == 5


def test_real_redis_client_fails_fast_when_nothing_listens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: connecting is refused
    client = dedup.redis_client(f"redis://127.0.0.1:{port}/0")
    deduplicator = dedup.Deduplicator(client, 300, 604800, address=dedup.redis_address(client))
    started = time.monotonic()
    with pytest.raises(dedup.RedisUnavailable, match=f"127.0.0.1:{port}"):
        deduplicator.check()
    assert time.monotonic() - started < 1.5
    client.close()
