"""The RabbitMQ queues of the broker flow, declared by exactly one function.

RabbitMQ refuses a re-declaration whose arguments differ from the existing queue's
(PRECONDITION_FAILED closes the channel), so the producer and the worker both call
`declare()` and nothing else ever declares these queues.

- job queue (env JOB_QUEUE, default `broker-jobs`): durable quorum queue; after
  JOB_DELIVERY_LIMIT (default 3) redeliveries RabbitMQ dead-letters a message through the
  default exchange to the DLQ (x-death reason `delivery_limit`), like SQS's maxReceiveCount.
- DLQ `<job queue>.dlq`: durable quorum queue; also receives poison jobs the worker
  publishes there itself, with the reason in `x-error-*` headers.

Messages go through the default exchange: the routing key is the queue name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.common import config

DEFAULT_JOB_QUEUE = "broker-jobs"
DEFAULT_DELIVERY_LIMIT = 3
DEFAULT_EXCHANGE = ""


class DeclaringChannel(Protocol):
    """The part of pika's BlockingChannel that `declare()` uses (a fake in unit tests)."""

    def queue_declare(
        self,
        queue: str,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class Topology:
    job_queue: str
    delivery_limit: int

    @property
    def dlq(self) -> str:
        return f"{self.job_queue}.dlq"

    def job_queue_arguments(self) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": DEFAULT_EXCHANGE,
            "x-dead-letter-routing-key": self.dlq,
        }

    @staticmethod
    def dlq_arguments() -> dict[str, Any]:
        return {"x-queue-type": "quorum"}


def from_env() -> Topology:
    limit_text = config.optional("JOB_DELIVERY_LIMIT", str(DEFAULT_DELIVERY_LIMIT))
    try:
        limit = int(limit_text)
    except ValueError as exc:
        raise config.ConfigError(f"JOB_DELIVERY_LIMIT {limit_text!r} is not a whole number") from exc
    if limit < 1:
        raise config.ConfigError(f"JOB_DELIVERY_LIMIT {limit} must be at least 1")
    return Topology(job_queue=config.optional("JOB_QUEUE", DEFAULT_JOB_QUEUE), delivery_limit=limit)


def declare(channel: DeclaringChannel, topology: Topology) -> None:
    """Declares the DLQ, then the job queue that dead-letters into it (idempotent)."""
    # The DLQ first: a dead-letter target that does not exist silently drops messages.
    channel.queue_declare(queue=topology.dlq, durable=True, arguments=topology.dlq_arguments())
    channel.queue_declare(queue=topology.job_queue, durable=True, arguments=topology.job_queue_arguments())
