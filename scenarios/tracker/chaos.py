"""Random fault plans for the tracker flow: PENDING items with their input objects (and one
kind without), under orchestrator failures and AWS errors the SDK absorbs (a failed message
waits out tracker-work's 300 s visibility timeout, too long for a random run), two
orchestrator ticks with every fault lifted before the second."""

from __future__ import annotations

from typing import Any

from harness.chaos.plans import ChaosProfile

BUCKET, TABLE = "tracker-data", "tracker-files"


def _drop(index: int, body: str) -> list[dict[str, Any]]:
    key = f"data/input/client_{index}/file-{index}.txt"
    steps: list[dict[str, Any]] = []
    if body != "<missing>":
        steps.append({"put_object": {"bucket": BUCKET, "key": key, "body": body}})
    item = {"id": f"chaos-{index}", "status": "PENDING", "s3_path": f"s3://{BUCKET}/{key}"}
    steps.append({"put_item": {"table": TABLE, "item": item}})
    return steps


CHAOS = ChaosProfile(
    flow="tracker",
    clock="2026-05-01T10:00:30Z",
    input_steps=_drop,
    bodies=("hello from a client\n", "", "<missing>"),
    drive=(
        {"await_quiet": "30s"},
        {"advance": "1m"},
        {"await_quiet": "90s"},
        {"clear_faults": "all"},
        {"advance": "1m"},
        {"await_quiet": "90s"},
    ),
    functions=("orchestrator",),
    max_calls=3,
    aws_calls=(
        ("s3", "CopyObject"),
        ("dynamodb", "UpdateItem"),
        ("ec2", "RunInstances"),
        ("sqs", "ReceiveMessage"),
    ),
    aws_call_ranges=("1", "2", "1-2"),
    aws_errors=(
        {"statusCode": 503, "code": "ServiceUnavailable"},
        {"statusCode": 500, "code": "InternalError"},
    ),
    max_inputs=3,
    budget=30,
)
