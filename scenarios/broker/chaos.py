"""Random fault plans for the broker flow: files dropped, two producer runs with every fault
lifted before the second (the flow must catch up), under producer and post-process crashes,
S3/DynamoDB/SNS errors, Redis latency and resets, RabbitMQ connections closed or the broker
restarted, and worker tasks killed mid-job."""

from __future__ import annotations

from typing import Any

from harness.chaos.plans import ChaosProfile

BODIES = (
    "order_id,amount\n1,10.5\n2,20\n",
    '{"records": [{"id": 1, "value": 3}]}',
    '{"id": 1}\n{"id": 2}\n',
    "not,a\nvalid",
)


def _drop(index: int, body: str) -> list[dict[str, Any]]:
    extension = "json" if body.startswith('{"records') else "jsonl" if body.startswith("{") else "csv"
    return [
        {
            "put_object": {
                "bucket": "broker-input",
                "key": f"incoming/chaos/file-{index}.{extension}",
                "body": body,
            }
        }
    ]


CHAOS = ChaosProfile(
    flow="broker",
    clock="2026-04-01T09:00:00Z",
    input_steps=_drop,
    bodies=BODIES,
    # The first run is invoked directly, so that a worker kill can land while jobs are in
    # hand (`advance` waits until the firing's work is done); the second is the schedule's.
    drive=(
        {"invoke": {"function": "broker-producer", "payload": {"source": "chaos"}}},
        {"await_quiet": "120s"},
        {"clear_faults": "all"},
        {"advance": "5m"},
        {"await_quiet": "120s"},
    ),
    functions=("broker-producer", "broker-post-process"),
    max_calls=4,
    aws_calls=(("s3", "GetObject"), ("s3", "PutObject"), ("dynamodb", "PutItem"), ("sns", "Publish")),
    network=("redis",),
    disruptions=(
        (
            0,
            ({"kill_task": {"service": "worker", "when_busy": True, "timeout": "3s", "skip_if_idle": True}},),
        ),
        (0, ({"service": {"name": "rabbitmq", "action": "close_connections"}},)),
        (None, ({"service": {"name": "redis", "action": "restart"}},)),
    ),
    max_inputs=3,
    budget=30,
)
