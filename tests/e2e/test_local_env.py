"""The local env as scenarios use it: compute taken over, backends bound, data reset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from harness.session import HarnessSession


@pytest.fixture(scope="module")
def session() -> Iterator[HarnessSession]:
    with HarnessSession("moto", label="local-env") as session:
        yield session


def test_event_source_mappings_are_disabled_in_the_emulator(session: HarnessSession) -> None:
    lam = session.client("lambda")
    for mapping in session.stack.event_source_mappings:
        state = lam.get_event_source_mapping(UUID=mapping.uuid)["State"]
        assert state in ("Disabled", "Disabling"), state


def test_first_receive_is_counted_once(session: HarnessSession) -> None:
    """moto's own ESM consumed a receive inside SendMessage; with it disabled, counts start at 1."""
    session.reset_data()
    queue = session.stack.resolve_queue("RefinerInput")
    session.client("sqs").send_message(QueueUrl=queue.url, MessageBody="poison")
    session.await_quiet(30)
    assert session.runtime is not None
    counts = [
        i.event["Records"][0]["attributes"]["ApproximateReceiveCount"] for i in session.runtime.invocations
    ]
    assert counts == ["1", "2", "3", "4", "5"]


def test_elasticache_is_bound_to_the_harness_redis(session: HarnessSession) -> None:
    url = session.stack.outputs["cache_url"]
    assert url == session.support["redis"].endpoint.url
    assert redis.Redis.from_url(url).ping()


def test_reset_data_keeps_infrastructure(session: HarnessSession) -> None:
    s3 = session.client("s3")
    s3.put_object(Bucket="data-repository", Key="Elsewhere/x.txt", Body=b"x")
    session.reset_data()
    assert s3.list_objects_v2(Bucket="data-repository").get("KeyCount", 0) == 0
    assert session.client("sqs").get_queue_url(QueueName="dibbs-ecr-RefinerInput")["QueueUrl"]
