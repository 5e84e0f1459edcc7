"""De-duplication of producer jobs in Redis (ElastiCache): one job per object version.

The key `broker:dedup:{bucket}/{key}:{etag}` moves through two states:

1. `claim`: SET NX "pending" with a short lease (DEDUP_LEASE_SECONDS, 300 s). Only the
   run that sets it may publish; a concurrent or later run skips the object.
2. `confirm`: after the broker confirmed the job, SET XX "published" with the long TTL
   (DEDUP_TTL_SECONDS, 7 days). `release` (DELETE) instead when publishing failed, so the
   next schedule tries again.

A producer that dies between claim and publish leaves only the lease, which expires: the
object is published by a later run (at-least-once). A new ETag is a new key, hence a new job.

redis-py 8 retries a refused connection with backoff for seconds by default; here a
connect or read gives up after 2 s with one immediate retry (which heals a pooled
connection the server closed while the Lambda was frozen), so an outage fails fast.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Protocol

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from pipeline.common import aws, config

PENDING = "pending"
PUBLISHED = "published"
SOCKET_TIMEOUT_SECONDS = 2.0
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class RedisUnavailable(RuntimeError):
    """Redis cannot be reached: the producer publishes nothing without de-duplication."""


class RedisLike(Protocol):
    """The commands the de-duplicator uses (redis.Redis, or a fake in unit tests)."""

    def ping(self) -> Any: ...

    def set(
        self, name: str, value: str, *, ex: int | None = None, nx: bool = False, xx: bool = False
    ) -> Any: ...

    def delete(self, *names: str) -> Any: ...


def dedup_key(bucket: str, key: str, etag: str) -> str:
    return f"broker:dedup:{bucket}/{key}:{etag}"


def auth_token(secret_arn: str) -> str:
    """The AUTH token kept in the secret `{"auth_token": ...}` (never logged)."""
    response = aws.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    try:
        token = json.loads(str(response.get("SecretString", "")))["auth_token"]
    except (ValueError, KeyError, TypeError):
        raise config.ConfigError(f"secret {secret_arn} holds no JSON auth_token") from None
    return str(token)


@functools.cache
def redis_client(url: str, password: str | None = None) -> redis.Redis:
    """One client (and connection pool) per process, URL and token; `rediss://` means TLS."""
    return redis.Redis.from_url(
        url,
        password=password,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1),
        retry_on_timeout=False,
    )


def redis_address(client: Any) -> str:
    """`host:port` of a redis.Redis client (no password), for error messages."""
    try:
        kwargs = client.connection_pool.connection_kwargs
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    except AttributeError:
        return "unknown"


@dataclass
class Deduplicator:
    client: RedisLike
    lease_seconds: int
    ttl_seconds: int
    address: str = "unknown"

    def _unavailable(self, exc: Exception, published: int) -> RedisUnavailable:
        done = "no jobs published" if published == 0 else f"{published} job(s) published before it failed"
        error = f"{type(exc).__name__}: {exc}"
        return RedisUnavailable(
            f"Redis unavailable at {self.address}: {error}; {done}, the next schedule retries"
        )

    def check(self) -> None:
        """Raises RedisUnavailable unless Redis answers (before anything is published)."""
        try:
            self.client.ping()
        except REDIS_ERRORS as exc:
            raise self._unavailable(exc, 0) from exc

    def claim(self, key: str, published: int = 0) -> bool:
        """True when this run now holds the lease and must publish; False: seen or in progress."""
        try:
            return bool(self.client.set(key, PENDING, ex=self.lease_seconds, nx=True))
        except REDIS_ERRORS as exc:
            raise self._unavailable(exc, published) from exc

    def confirm(self, key: str, published: int) -> bool:
        """Marks a published job for the long TTL; False when the lease had already expired."""
        try:
            return bool(self.client.set(key, PUBLISHED, ex=self.ttl_seconds, xx=True))
        except REDIS_ERRORS as exc:
            # The job is out and its lease will expire: a later run publishes a duplicate,
            # which the worker recognises by its output. Still fail loudly.
            raise self._unavailable(exc, published) from exc

    def release(self, key: str) -> None:
        """Gives up the lease so the next run publishes; never masks the error being handled."""
        try:
            self.client.delete(key)
        except REDIS_ERRORS:
            pass  # the lease expires on its own
