"""The producer Lambda: publish one RabbitMQ job per new object in the input bucket.

Fired by an EventBridge Scheduler schedule; the event's content is not used. Settings:
INPUT_BUCKET, INPUT_PREFIX (`incoming/`), RABBITMQ_SECRET_ARN, JOB_QUEUE, JOB_DELIVERY_LIMIT,
REDIS_URL (`redis://` or `rediss://`, without credentials), REDIS_AUTH_SECRET_ARN (optional:
a secret `{"auth_token": ...}`, ElastiCache's AUTH token), DEDUP_TTL_SECONDS (604800),
DEDUP_LEASE_SECONDS (300).

Every object under the prefix (folder markers ending in `/` excepted) is claimed in Redis
(see `dedup`) and, when the claim is new, published as a persistent JSON job with publisher
confirms. The job id is derived from bucket, key and ETag, so a re-published object yields
the same job and the worker recognises its output.

Failures are loud, never silent: without Redis nothing is published (RedisUnavailable);
an unreachable broker or an unconfirmed message releases the object's claim and raises,
so the invocation fails and the next schedule publishes what is missing.

Per warm process: one Redis client (its pool reconnects). The RabbitMQ connection is opened
on the first job of an invocation and closed at its end, because a frozen Lambda misses
heartbeats and the broker drops a connection kept between scheduled runs anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pika

from pipeline.broker import connection, dedup, now_iso, topology
from pipeline.common import aws, config
from pipeline.common.idempotency import stable_uuid
from pipeline.common.logging import get_logger, log

LOG = get_logger("pipeline.broker.producer")
PAGE_SIZE = 1000
CONTENT_TYPE = "application/json"
PERSISTENT = 2


class BrokerUnavailable(RuntimeError):
    """RabbitMQ could not be reached or refused the job; the next schedule retries."""


class Publisher(Protocol):
    def publish(self, routing_key: str, body: bytes, properties: pika.BasicProperties) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ProducerSettings:
    bucket: str
    prefix: str
    secret_arn: str
    queues: topology.Topology
    redis_url: str
    redis_auth_secret_arn: str | None
    ttl_seconds: int
    lease_seconds: int


@dataclass(frozen=True)
class InputObject:
    key: str
    etag: str
    size: int


def _seconds(name: str, default: int) -> int:
    text = config.optional(name, str(default))
    try:
        value = int(text)
    except ValueError as exc:
        raise config.ConfigError(f"{name} {text!r} is not a whole number of seconds") from exc
    if value < 1:
        raise config.ConfigError(f"{name} {value} must be at least 1")
    return value


def load_settings() -> ProducerSettings:
    return ProducerSettings(
        bucket=config.required("INPUT_BUCKET"),
        prefix=config.key_prefix("INPUT_PREFIX", "incoming/"),
        secret_arn=config.required("RABBITMQ_SECRET_ARN"),
        queues=topology.from_env(),
        redis_url=config.required("REDIS_URL"),
        redis_auth_secret_arn=config.optional("REDIS_AUTH_SECRET_ARN", "") or None,
        ttl_seconds=_seconds("DEDUP_TTL_SECONDS", 604800),
        lease_seconds=_seconds("DEDUP_LEASE_SECONDS", 300),
    )


def list_objects(bucket: str, prefix: str) -> Iterator[InputObject]:
    paginator = aws.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": PAGE_SIZE}):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/"):  # a folder marker, not a file
                continue
            yield InputObject(key=obj["Key"], etag=str(obj.get("ETag", "")).strip('"'), size=int(obj["Size"]))


def make_job(bucket: str, obj: InputObject) -> dict[str, Any]:
    return {
        "job_id": stable_uuid(bucket, obj.key, obj.etag),
        "bucket": bucket,
        "key": obj.key,
        "etag": obj.etag,
        "size": obj.size,
        "produced_at": now_iso(),
    }


def job_message(job: dict[str, Any]) -> tuple[bytes, pika.BasicProperties]:
    properties = pika.BasicProperties(
        content_type=CONTENT_TYPE,
        delivery_mode=PERSISTENT,
        message_id=job["job_id"],
        headers={"job_id": job["job_id"]},
    )
    return json.dumps(job, sort_keys=True).encode(), properties


# --- factories (replaced in unit tests) -------------------------------------------------------


def open_deduplicator(settings: ProducerSettings) -> dedup.Deduplicator:
    token = dedup.auth_token(settings.redis_auth_secret_arn) if settings.redis_auth_secret_arn else None
    client = dedup.redis_client(settings.redis_url, token)
    return dedup.Deduplicator(
        client=client,
        lease_seconds=settings.lease_seconds,
        ttl_seconds=settings.ttl_seconds,
        address=dedup.redis_address(client),
    )


def open_publisher(settings: ProducerSettings) -> Publisher:
    conn = connection.connect(settings.secret_arn)
    try:
        return connection.ConfirmingPublisher(conn, settings.queues)
    except BaseException:
        connection.close_quietly(conn)
        raise


# --- run --------------------------------------------------------------------------------------


def _broker_unavailable(settings: ProducerSettings, exc: BaseException, published: int) -> BrokerUnavailable:
    done = "no jobs published" if published == 0 else f"{published} job(s) published before it failed"
    address = connection.broker_address(settings.secret_arn)
    return BrokerUnavailable(
        f"RabbitMQ unavailable at {address}: {connection.describe(exc)}; {done}, the next schedule retries"
    )


def _open(settings: ProducerSettings) -> Publisher:
    try:
        return open_publisher(settings)
    except connection.BROKER_ERRORS as exc:
        raise _broker_unavailable(settings, exc, 0) from exc


def _publish(settings: ProducerSettings, publisher: Publisher, job: dict[str, Any], published: int) -> None:
    body, properties = job_message(job)
    try:
        publisher.publish(settings.queues.job_queue, body, properties)
    except connection.PublishFailed as exc:
        done = "no jobs published" if published == 0 else f"{published} job(s) published before"
        raise BrokerUnavailable(f"{exc}; {done}, the next schedule retries") from exc
    except connection.BROKER_ERRORS as exc:
        raise _broker_unavailable(settings, exc, published) from exc


def run(settings: ProducerSettings) -> dict[str, int]:
    deduplicator = open_deduplicator(settings)
    deduplicator.check()  # never publish without de-duplication
    listed = published = skipped = 0
    publisher: Publisher | None = None
    try:
        for obj in list_objects(settings.bucket, settings.prefix):
            listed += 1
            claim = dedup.dedup_key(settings.bucket, obj.key, obj.etag)
            if not deduplicator.claim(claim, published):
                skipped += 1
                continue
            job = make_job(settings.bucket, obj)
            try:
                if publisher is None:  # connect only when there is something to publish
                    publisher = _open(settings)
                _publish(settings, publisher, job, published)
            except BaseException:
                deduplicator.release(claim)
                raise
            published += 1
            if not deduplicator.confirm(claim, published):
                log(LOG, "lease expired before confirm; a later run may publish a duplicate", key=obj.key)
            log(LOG, "job published", job_id=job["job_id"], key=obj.key, etag=obj.etag, size=obj.size)
    finally:
        if publisher is not None:
            publisher.close()
    return {"listed": listed, "published": published, "skipped": skipped}


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    settings = load_settings()
    try:
        counts = run(settings)
    except Exception as exc:
        LOG.error(
            "producer run failed",
            extra={"fields": {"bucket": settings.bucket, "prefix": settings.prefix, "error": str(exc)}},
        )
        raise
    log(
        LOG,
        "producer run",
        bucket=settings.bucket,
        prefix=settings.prefix,
        queue=settings.queues.job_queue,
        **counts,
    )
    return counts
