"""The one root as scenarios use it: applied unchanged, compute taken over, managed stores bound
to the harness's servers over TLS with the credentials the state and its secrets hold, data reset."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pika
import psycopg
import pytest
import redis

from harness.paths import REPO_ROOT
from harness.session import HarnessSession

STACK = REPO_ROOT / "terraform" / "stack"


@pytest.fixture(scope="module")
def root_listing() -> list[str]:
    return sorted(str(p.relative_to(STACK)) for p in STACK.rglob("*"))


@pytest.fixture(scope="module")
def session(root_listing: list[str]) -> Iterator[HarnessSession]:
    with HarnessSession("moto", label="local-env") as session:
        yield session


def test_the_root_is_applied_unchanged(session: HarnessSession, root_listing: list[str]) -> None:
    """No override, state, lock file or .terraform was written into terraform/stack."""
    assert sorted(str(p.relative_to(STACK)) for p in STACK.rglob("*")) == root_listing
    workspace = session.run_dir.path / "terraform"
    assert (workspace / "terraform.tfstate").is_file()
    assert (workspace / "tree" / "terraform" / "stack" / "zz_harness_override.tf").is_file()


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


def _store(session: HarnessSession, kind: str) -> object:
    [binding] = [b for b in session.bindings if b.store.kind == kind]
    return binding.store


def _secret(session: HarnessSession, arn: str) -> dict[str, str]:
    return dict(json.loads(session.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]))


def test_every_managed_store_is_bound_at_the_service_address(session: HarnessSession) -> None:
    kinds = sorted(b.store.kind for b in session.bindings)
    assert kinds == ["postgres", "rabbitmq", "redis"]
    for binding in session.bindings:
        assert binding.store.host == session.service_address
        assert binding.store.port == {"postgres": 5432, "rabbitmq": 5671, "redis": 6379}[binding.store.kind]
    # The compute's environment names the endpoint as Terraform wired it from the state.
    processor = session.stack.resolve_function("data-processor")
    assert processor.environment["DB_HOST"] == session.service_address
    assert processor.environment["DB_PORT"] == "5432"


def test_rds_takes_the_managed_secrets_credentials_over_tls_only(session: HarnessSession) -> None:
    store = _store(session, "postgres")
    secret = _secret(session, store.details["secret_arn"])  # type: ignore[attr-defined]
    params = {"host": session.service_address, "port": 5432, "dbname": "pipeline", "user": secret["username"]}
    with psycopg.connect(**params, password=secret["password"], sslmode="require", connect_timeout=5) as conn:
        assert conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone() == (True,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**params, password="not-the-password", sslmode="require", connect_timeout=5)


def test_mq_takes_the_brokers_secret_over_amqps(session: HarnessSession) -> None:
    arn = session.stack.resolve_function("broker-producer").environment["RABBITMQ_SECRET_ARN"]
    secret = _secret(session, arn)
    assert secret["endpoint"] == f"amqps://{session.service_address}:5671"
    context = ssl.create_default_context(cafile=str(session.tls.ca))  # type: ignore[union-attr]
    parameters = pika.ConnectionParameters(
        host=session.service_address,
        port=5671,
        credentials=pika.PlainCredentials(secret["username"], secret["password"]),
        ssl_options=pika.SSLOptions(context, server_hostname=session.service_address),
    )
    pika.BlockingConnection(parameters).close()
    wrong = pika.ConnectionParameters(
        host=session.service_address,
        port=5671,
        credentials=pika.PlainCredentials(secret["username"], "wrong"),
        ssl_options=pika.SSLOptions(context, server_hostname=session.service_address),
        connection_attempts=1,
    )
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(wrong)


def test_elasticache_takes_the_auth_token_over_tls_through_the_fault_proxy(session: HarnessSession) -> None:
    env = session.stack.resolve_function("broker-producer").environment
    assert env["REDIS_URL"] == f"rediss://{session.service_address}:6379/0"
    token = _secret(session, env["REDIS_AUTH_SECRET_ARN"])["auth_token"]
    ca = str(session.tls.ca)  # type: ignore[union-attr]
    client = redis.Redis.from_url(env["REDIS_URL"], password=token, ssl_ca_certs=ca)
    client.set("through-the-proxy", "yes")
    assert redis.Redis.from_url(session.support["redis"].endpoint.url).get("through-the-proxy") == b"yes"
    assert session.tcp_proxies["redis"].address == (session.service_address, 6379)
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(env["REDIS_URL"], ssl_ca_certs=ca).ping()


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
