"""harness.services.rabbitmq_admin: queue depths from RabbitMQ's Prometheus text."""

from __future__ import annotations

from harness.services.rabbitmq_admin import QueueState, parse_metrics

TEXT = """\
# TYPE rabbitmq_detailed_queue_messages_ready gauge
rabbitmq_detailed_queue_messages_ready{vhost="/",queue="jobs"} 3
rabbitmq_detailed_queue_messages_ready{vhost="/",queue="jobs.dlq"} 1
rabbitmq_detailed_queue_messages_ready{vhost="other",queue="jobs"} 9
rabbitmq_detailed_queue_messages_unacked{vhost="/",queue="jobs"} 4
rabbitmq_detailed_queue_messages_unacked{vhost="/",queue="jobs.dlq"} 0
rabbitmq_detailed_queue_consumers{vhost="/",queue="jobs"} 2
rabbitmq_detailed_queue_consumers{vhost="/",queue="q \\"quoted\\""} 0
rabbitmq_build_info{rabbitmq_version="3.10.8"} 1
"""


def test_parse_metrics_per_queue_of_the_vhost() -> None:
    assert parse_metrics(TEXT) == [
        QueueState("jobs", ready=3, unacked=4, consumers=2),
        QueueState("jobs.dlq", ready=1, unacked=0, consumers=0),
        QueueState('q "quoted"', ready=0, unacked=0, consumers=0),
    ]
    assert parse_metrics(TEXT, vhost="other") == [QueueState("jobs", ready=9, unacked=0, consumers=0)]


def test_messages_counts_ready_and_unacked() -> None:
    assert QueueState("jobs", 3, 4, 2).messages == 7
