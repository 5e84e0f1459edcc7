"""The broker flow (seed 000): a schedule fires the producer Lambda, which lists the input
bucket, de-duplicates objects in Redis and publishes one job per new object to RabbitMQ
(Amazon MQ) with publisher confirms; long-running ECS workers consume the jobs with manual
acks, transform each input through EFS scratch space and write `results/<key>.json` to the
output bucket; output objects reach the post-process Lambda through EventBridge and SQS.

Modules: `topology` (queue names and arguments, declared in one place), `connection`
(credentials from Secrets Manager, pika parameters, a confirming publisher), `dedup`
(the Redis lease), `producer`, `transform` (pure), `worker`, `postprocess`.
"""

from __future__ import annotations

from datetime import UTC

from pipeline.common import clock


def now_iso() -> str:
    """The clock's current instant as `2026-01-15T07:59:00.123Z` (virtual time in the harness)."""
    return clock.now().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
