"""Broker plumbing without a broker: the topology, the secret, pika parameters, confirmed publishing."""

from __future__ import annotations

import json
from typing import Any

import pika
import pika.exceptions
import pytest
from moto.core.models import MockAWS

from pipeline.broker import connection, topology
from pipeline.common import aws, config

SECRET = {"username": "app", "password": "p@ss:/word", "endpoint": "amqps://b-1.mq.example.com:5671"}


class FakeChannel:
    def __init__(self, publish_error: Exception | None = None) -> None:
        self.declared: list[dict[str, Any]] = []
        self.published: list[dict[str, Any]] = []
        self.confirming = False
        self.publish_error = publish_error
        self.is_open = True

    def queue_declare(self, queue: str, **kwargs: Any) -> None:
        self.declared.append({"queue": queue, **kwargs})

    def confirm_delivery(self) -> None:
        self.confirming = True

    def basic_publish(self, **kwargs: Any) -> None:
        if self.publish_error is not None:
            raise self.publish_error
        self.published.append(kwargs)


class FakeConnection:
    def __init__(self, channel: FakeChannel) -> None:
        self._channel = channel
        self.is_open = True

    def channel(self) -> FakeChannel:
        return self._channel

    def close(self) -> None:
        self.is_open = False


# --- topology ---------------------------------------------------------------------------------


def test_topology_defaults_and_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOB_QUEUE", raising=False)
    monkeypatch.delenv("JOB_DELIVERY_LIMIT", raising=False)
    queues = topology.from_env()
    channel = FakeChannel()
    topology.declare(channel, queues)
    assert channel.declared == [
        {"queue": "broker-jobs.dlq", "durable": True, "arguments": {"x-queue-type": "quorum"}},
        {
            "queue": "broker-jobs",
            "durable": True,
            "arguments": {
                "x-queue-type": "quorum",
                "x-delivery-limit": 3,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": "broker-jobs.dlq",
            },
        },
    ]


def test_topology_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_QUEUE", "jobs-x")
    monkeypatch.setenv("JOB_DELIVERY_LIMIT", "5")
    queues = topology.from_env()
    assert (queues.job_queue, queues.dlq, queues.job_queue_arguments()["x-delivery-limit"]) == (
        "jobs-x",
        "jobs-x.dlq",
        5,
    )
    monkeypatch.setenv("JOB_DELIVERY_LIMIT", "three")
    with pytest.raises(config.ConfigError, match="JOB_DELIVERY_LIMIT"):
        topology.from_env()


# --- secret and parameters --------------------------------------------------------------------


def test_secret_parsing() -> None:
    secret = connection.parse_secret(json.dumps(SECRET))
    assert (secret.scheme, secret.host, secret.port, secret.vhost) == (
        "amqps",
        "b-1.mq.example.com",
        5671,
        "/",
    )
    plain = connection.parse_secret(json.dumps({**SECRET, "endpoint": "amqp://127.0.0.1", "vhost": "jobs"}))
    assert (plain.port, plain.vhost, plain.address) == (5672, "jobs", "127.0.0.1:5672")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"username": "u", "endpoint": "amqp://h:1"}), "lacks password"),
        (json.dumps({**SECRET, "endpoint": "http://h:1"}), "is not amqp"),
    ],
)
def test_bad_secrets_are_rejected_without_echoing_them(text: str, reason: str) -> None:
    with pytest.raises(connection.SecretError, match=reason) as caught:
        connection.parse_secret(text)
    assert SECRET["password"] not in str(caught.value)


def test_parameters_use_tls_for_amqps_and_short_timeouts() -> None:
    params = connection.connection_parameters(connection.parse_secret(json.dumps(SECRET)))
    assert (params.host, params.port, params.virtual_host) == ("b-1.mq.example.com", 5671, "/")
    assert params.credentials.username == "app" and params.credentials.password == SECRET["password"]
    assert params.ssl_options is not None and params.ssl_options.server_hostname == "b-1.mq.example.com"
    assert params.connection_attempts == 1 and params.heartbeat == 30
    assert params.socket_timeout == params.stack_timeout == params.blocked_connection_timeout == 10.0
    plain = connection.connection_parameters(
        connection.parse_secret(json.dumps({**SECRET, "endpoint": "amqp://localhost:5673"}))
    )
    assert plain.ssl_options is None and plain.port == 5673


def test_secret_is_read_once_per_process(aws_mock: MockAWS) -> None:
    sm = aws.client("secretsmanager")
    arn = sm.create_secret(Name="rabbit", SecretString=json.dumps(SECRET))["ARN"]
    connection.forget_secret()
    try:
        assert connection.load_secret(arn).username == "app"
        sm.put_secret_value(SecretId=arn, SecretString=json.dumps({**SECRET, "username": "rotated"}))
        assert connection.load_secret(arn).username == "app"  # cached
        connection.forget_secret()
        assert connection.load_secret(arn).username == "rotated"
        assert connection.broker_address(arn) == "b-1.mq.example.com:5671"
    finally:
        connection.forget_secret()


# --- confirmed publishing ---------------------------------------------------------------------


def test_publisher_declares_confirms_and_publishes_mandatory() -> None:
    channel = FakeChannel()
    publisher = connection.ConfirmingPublisher(FakeConnection(channel), topology.Topology("q", 3))  # type: ignore[arg-type]
    assert channel.confirming and [d["queue"] for d in channel.declared] == ["q.dlq", "q"]
    properties = pika.BasicProperties(message_id="m1")
    publisher.publish("q", b"{}", properties)
    assert channel.published == [
        {"exchange": "", "routing_key": "q", "body": b"{}", "properties": properties, "mandatory": True}
    ]
    publisher.close()
    assert not publisher.connection.is_open


@pytest.mark.parametrize(
    "error", [pika.exceptions.UnroutableError([]), pika.exceptions.NackError([])], ids=["unroutable", "nack"]
)
def test_unconfirmed_publish_raises(error: Exception) -> None:
    channel = FakeChannel(publish_error=error)
    publisher = connection.ConfirmingPublisher(FakeConnection(channel), topology.Topology("q", 3))  # type: ignore[arg-type]
    with pytest.raises(connection.PublishFailed, match="'q'"):
        publisher.publish("q", b"{}", pika.BasicProperties())


def test_describe_names_pika_errors_with_empty_text() -> None:
    assert connection.describe(pika.exceptions.AMQPConnectionError()) == "AMQPConnectionError"
    assert connection.describe(OSError("refused")) == "OSError: refused"
