"""Random fault plans for the refiner flow: up to four inputs, handler crashes (also mid-write),
S3 errors and latency, duplicated, reordered and delayed SQS deliveries."""

from __future__ import annotations

from typing import Any

from harness.chaos.plans import ChaosProfile

BUCKET = "data-repository"


def _drop(index: int, body: str) -> list[dict[str, Any]]:
    return [{"put_object": {"bucket": BUCKET, "key": f"RefinerInput/chaos-{index}.txt", "body": body}}]


CHAOS = ChaosProfile(
    flow="refiner",
    clock="2026-01-15T08:00:00Z",
    input_steps=_drop,
    bodies=("hello", "a longer line of text\nwith two lines\n", "", "x" * 300),
    drive=({"await_quiet": "120s"},),
    functions=("refiner",),
    max_calls=5,  # GetObject, GetObject (manifest check), PutObject x2, PutObject (manifest)
    aws_calls=(("s3", "GetObject"), ("s3", "PutObject")),
    queues=("RefinerInput",),
    budget=80,
)
