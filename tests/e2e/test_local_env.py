"""The local env as scenarios use it: compute taken over, backends bound, data reset."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
    """Through the harness's TCP fault proxy, which forwards to the harness's own Redis."""
    url = session.stack.outputs["cache_url"]
    assert url == session.support_url("redis")
    assert url != session.support["redis"].endpoint.url
    client = redis.Redis.from_url(url)
    client.set("through-the-proxy", "yes")
    assert redis.Redis.from_url(session.support["redis"].endpoint.url).get("through-the-proxy") == b"yes"


def test_reset_data_keeps_infrastructure(session: HarnessSession) -> None:
    s3 = session.client("s3")
    s3.put_object(Bucket="data-repository", Key="Elsewhere/x.txt", Body=b"x")
    session.reset_data()
    assert s3.list_objects_v2(Bucket="data-repository").get("KeyCount", 0) == 0
    assert session.client("sqs").get_queue_url(QueueName="dibbs-ecr-RefinerInput")["QueueUrl"]


def test_push_and_poller_scripts_against_the_stack(session: HarnessSession, tmp_path: Path) -> None:
    """The seed's push script and poller as real commands, through the real flow."""
    session.reset_data()
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": session.endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    source = tmp_path / "notes.txt"
    source.write_text("pushed by the seed's script\n")
    push = subprocess.run(
        [sys.executable, "-m", "pipeline.refiner.push", str(source)], env=env, capture_output=True, text=True
    )
    assert push.returncode == 0, push.stderr
    assert "s3://data-repository/RefinerInput/notes.txt" in push.stdout
    session.await_quiet(30)
    poll = subprocess.run(
        [sys.executable, "-m", "pipeline.refiner.poller", "--once"], env=env, capture_output=True, text=True
    )
    assert poll.returncode == 0, poll.stderr
    assert "manifest RefinerComplete/notes.txt.json: 2 outputs" in poll.stdout
    assert poll.stdout.count("pushed by the seed's script") == 2
