"""What AMQP cannot tell about RabbitMQ queues: unacknowledged messages, read from Prometheus.

AMQP's passive declare reports only ready messages, so a job a worker holds unacknowledged
would look "done". The node's Prometheus endpoint (`/metrics/detailed`) reads the queues'
own metrics, which they publish every 250 ms here; the management API's figures lag by 5 s
(measured), too slow to decide quiescence. Purging goes over AMQP.
"""

from __future__ import annotations

import re
import urllib.request
from collections import defaultdict
from dataclasses import dataclass

from harness.services.base import Endpoint

_SAMPLE = re.compile(r'^rabbitmq_detailed_queue_(\w+)\{vhost="([^"]*)",queue="((?:[^"\\]|\\.)*)"\} (\S+)$')
FAMILIES = ("queue_coarse_metrics", "queue_consumer_count")


@dataclass(frozen=True)
class QueueState:
    name: str
    ready: int
    unacked: int
    consumers: int

    @property
    def messages(self) -> int:
        return self.ready + self.unacked


def parse_metrics(text: str, vhost: str = "/") -> list[QueueState]:
    values: dict[str, dict[str, float]] = defaultdict(dict)
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(2) == vhost:
            metric, queue, value = match.group(1), match.group(3).replace('\\"', '"'), match.group(4)
            values[queue][metric] = float(value)
    return [
        QueueState(
            name=name,
            ready=int(m.get("messages_ready", 0)),
            unacked=int(m.get("messages_unacked", 0)),
            consumers=int(m.get("consumers", 0)),
        )
        for name, m in sorted(values.items())
    ]


class RabbitAdmin:
    def __init__(self, endpoint: Endpoint, timeout: float = 3.0) -> None:
        url = endpoint.extras.get("metrics_url")
        if not url:
            raise ValueError("this RabbitMQ service has no metrics endpoint")
        query = "&".join(f"family={f}" for f in FAMILIES)
        self.url = f"{url}?{query}"
        self.amqp_url = endpoint.url
        self.vhost = endpoint.extras.get("vhost", "/")
        self.timeout = timeout

    def queues(self) -> list[QueueState]:
        """Every queue of the vhost; raises OSError when the broker (or its app) is down."""
        with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
            return parse_metrics(response.read().decode(), self.vhost)

    def purge_all(self) -> list[str]:
        """Empty every queue (ready messages; unacknowledged ones belong to their consumer)."""
        import pika

        names = [q.name for q in self.queues() if q.ready]
        if not names:
            return []
        params = pika.URLParameters(self.amqp_url)
        params.socket_timeout = params.stack_timeout = params.blocked_connection_timeout = 5
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            for name in names:
                channel.queue_purge(name)
        finally:
            connection.close()
        return names

    def busy_queues(self, consumed: set[str]) -> list[str]:
        """Queues with work under way: unacknowledged messages, or ready ones a consumer will take.

        `consumed` collects the queues seen with a consumer so far: their ready messages count
        as work even while the consumers are away (reconnecting after a broker restart, or
        replaced after a crash). A dead-letter queue nobody consumes is never busy.
        """
        busy: list[str] = []
        for q in self.queues():
            if q.consumers:
                consumed.add(q.name)
            if q.unacked or (q.ready and q.name in consumed):
                busy.append(f"{q.messages} message(s) on RabbitMQ queue {q.name}")
        return busy
