"""RabbitMQ connections for the broker flow: credentials, pika parameters, confirmed publishing.

Credentials never come from plain environment variables: RABBITMQ_SECRET_ARN names a
Secrets Manager secret whose SecretString is
`{"username": ..., "password": ..., "endpoint": "amqps://host:5671", "vhost": "/"}`
(Amazon MQ style: the endpoint holds no credentials; `vhost` is optional). The secret is
read once per process and read again after an authentication failure (rotation).

pika's defaults suit neither a Lambda nor a worker that must notice an outage: a frozen
broker accepts TCP and never answers, and the default handshake waits 15 s per attempt.
So every timeout here is short and there is one attempt per connect; callers retry.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from pipeline.broker import topology
from pipeline.common import aws

TIMEOUT_SECONDS = 10.0
HEARTBEAT_SECONDS = 30
PORTS = {"amqp": 5672, "amqps": 5671}

# Everything that means "the broker is not there or went away"; callers reconnect or report.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPError,
    AMQPConnectorException,
    OSError,
)


class SecretError(ValueError):
    """The RabbitMQ secret is not the JSON object this module expects."""


class PublishFailed(RuntimeError):
    """The broker did not confirm a message (nacked or unroutable): it was not published."""


@dataclass(frozen=True)
class RabbitSecret:
    username: str
    password: str
    endpoint: str
    vhost: str = "/"

    @property
    def scheme(self) -> str:
        return urlsplit(self.endpoint).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.endpoint).port or PORTS[self.scheme]

    @property
    def address(self) -> str:
        """`host:port`, for messages; never the credentials."""
        return f"{self.host}:{self.port}"


def parse_secret(text: str) -> RabbitSecret:
    try:
        document = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise SecretError("RabbitMQ secret is not JSON") from exc  # never echo the secret itself
    if not isinstance(document, dict):
        raise SecretError("RabbitMQ secret is not a JSON object")
    missing = [name for name in ("username", "password", "endpoint") if not document.get(name)]
    if missing:
        raise SecretError(f"RabbitMQ secret lacks {', '.join(missing)}")
    endpoint = str(document["endpoint"]).strip()
    parts = urlsplit(endpoint)
    if parts.scheme not in PORTS or not parts.hostname:
        raise SecretError(f"RabbitMQ endpoint {endpoint!r} is not amqp://host:port or amqps://host:port")
    return RabbitSecret(
        username=str(document["username"]),
        password=str(document["password"]),
        endpoint=endpoint,
        vhost=str(document.get("vhost") or "/"),
    )


_SECRETS: dict[str, RabbitSecret] = {}


def load_secret(secret_arn: str) -> RabbitSecret:
    """The secret, fetched once per process (per ARN)."""
    if secret_arn not in _SECRETS:
        response = aws.client("secretsmanager").get_secret_value(SecretId=secret_arn)
        _SECRETS[secret_arn] = parse_secret(str(response.get("SecretString", "")))
    return _SECRETS[secret_arn]


def forget_secret() -> None:
    """Drops the cached secret so the next connect reads the (possibly rotated) one."""
    _SECRETS.clear()


def connection_parameters(
    secret: RabbitSecret, heartbeat: int = HEARTBEAT_SECONDS
) -> pika.ConnectionParameters:
    ssl_options = None
    if secret.scheme == "amqps":
        ssl_options = pika.SSLOptions(ssl.create_default_context(), server_hostname=secret.host)
    return pika.ConnectionParameters(
        host=secret.host,
        port=secret.port,
        virtual_host=secret.vhost,
        credentials=pika.PlainCredentials(secret.username, secret.password),
        ssl_options=ssl_options,
        heartbeat=heartbeat,
        connection_attempts=1,
        socket_timeout=TIMEOUT_SECONDS,
        stack_timeout=TIMEOUT_SECONDS,  # bounds the whole TCP + TLS + AMQP handshake
        blocked_connection_timeout=TIMEOUT_SECONDS,
        client_properties={"connection_name": "pipeline-broker"},
    )


def connect(secret_arn: str) -> BlockingConnection:
    """A new blocking connection; raises one of BROKER_ERRORS when the broker is unreachable."""
    secret = load_secret(secret_arn)
    try:
        return pika.BlockingConnection(connection_parameters(secret))
    except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError):
        forget_secret()
        raise


def broker_address(secret_arn: str) -> str:
    """`host:port` of the broker if its secret was read already, else `unknown` (never fetches)."""
    secret = _SECRETS.get(secret_arn)
    return secret.address if secret is not None else "unknown"


def describe(exc: BaseException) -> str:
    """pika's exceptions often have an empty str() and the cause in args; name the type and any detail."""
    text = str(exc).strip()
    if not text or text == "()":
        text = ", ".join(str(arg) or repr(arg) for arg in exc.args)
    text = " ".join(text.split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ConfirmingPublisher:
    """One channel in publisher-confirm mode; `publish` returns only once the broker has the message.

    Declares the flow's topology on open, so a message can always be routed.
    """

    def __init__(self, connection: BlockingConnection, queues: topology.Topology) -> None:
        self.connection = connection
        self.channel: BlockingChannel = connection.channel()
        topology.declare(self.channel, queues)
        self.channel.confirm_delivery()

    def publish(self, routing_key: str, body: bytes, properties: pika.BasicProperties) -> None:
        try:
            # mandatory: a message no queue takes comes back as UnroutableError instead of vanishing.
            self.channel.basic_publish(
                exchange=topology.DEFAULT_EXCHANGE,
                routing_key=routing_key,
                body=body,
                properties=properties,
                mandatory=True,
            )
        except pika.exceptions.UnroutableError as exc:
            raise PublishFailed(f"message to {routing_key!r} was unroutable") from exc
        except pika.exceptions.NackError as exc:
            raise PublishFailed(f"broker nacked the message to {routing_key!r}") from exc

    @property
    def is_open(self) -> bool:
        return bool(self.connection.is_open and self.channel.is_open)

    def close(self) -> None:
        close_quietly(self.connection)


def close_quietly(connection: Any) -> None:
    """Closes a connection that may already be gone, without raising."""
    try:
        if connection is not None and connection.is_open:
            connection.close()
    except BROKER_ERRORS:
        pass
