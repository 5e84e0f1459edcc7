"""Random fault plans for the ingest flow: CSV and JSON files, good and bad, under handler
crashes (also mid-write), S3/DynamoDB/SNS errors, PostgreSQL latency, resets and a short
blackhole, and duplicated, reordered and delayed SQS deliveries."""

from __future__ import annotations

from typing import Any

from harness.chaos.plans import ChaosProfile

RAW = "data-pipeline-raw"

GOOD_CSV = (
    "id,value,timestamp,unit\nc-1,21.5,2026-03-09T10:00:00Z,celsius\nc-2,22.0,2026-03-09T10:05:00Z,celsius\n"
)
MIXED_CSV = (
    "id,value,timestamp,unit\nc-1,1.5,2026-03-09T10:00:00Z,celsius\nc-2,not-a-number,2026-03-09T10:05:00Z,x\n"
)
GOOD_JSON = '{"data": [{"id": "j-1", "value": 3, "timestamp": "2026-03-09T11:00:00Z"}]}'
BROKEN_JSON = '{"data": [{"id": 1, "value": 2},'


def _drop(index: int, body: str) -> list[dict[str, Any]]:
    extension = "json" if body.startswith("{") else "csv"
    return [{"put_object": {"bucket": RAW, "key": f"incoming/chaos/file-{index}.{extension}", "body": body}}]


CHAOS = ChaosProfile(
    flow="ingest",
    clock="2026-03-09T10:30:00Z",
    input_steps=_drop,
    bodies=(GOOD_CSV, MIXED_CSV, GOOD_JSON, BROKEN_JSON),
    drive=({"await_quiet": "120s"},),
    functions=("data-processor",),
    max_calls=6,
    aws_calls=(
        ("s3", "GetObject"),
        ("s3", "PutObject"),
        ("dynamodb", "UpdateItem"),
        ("sns", "Publish"),
        ("secretsmanager", "GetSecretValue"),
    ),
    queues=("data-pipeline-processing",),
    network=("postgres",),
    max_inputs=3,
    budget=60,
)
