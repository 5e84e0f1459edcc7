"""The scenario steps against real services: moto server, RabbitMQ; no Terraform apply.

Resources are created with boto3 and pika; queues are registered in the session's stack
(as a Terraform apply would) so steps resolve them by name or suffix.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pika
import pytest

from harness.deploy.stack import Function, Queue, RedrivePolicy
from harness.errors import ExpectationFailed, HarnessError
from harness.runtime.lambda_runtime import Invocation
from harness.scenario.context import ScenarioContext
from harness.scenario.model import load_scenario
from harness.scenario.runner import run_scenario
from harness.scenario.steps.generate_objects import generate
from harness.scenario.vocabulary import STEPS
from harness.session import HarnessSession

pytestmark = pytest.mark.e2e

BUCKET = "steps-bucket"
TABLE = "harness-steps-items"
EVENTS_QUEUE = "steps-events"


@pytest.fixture(scope="module")
def session() -> Iterator[HarnessSession]:
    with HarnessSession("moto", label="steps", deploy=False) as session:
        session.client("s3").create_bucket(Bucket=BUCKET)
        session.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield session


@pytest.fixture
def ctx(session: HarnessSession) -> ScenarioContext:
    session.timeline.clear()
    return ScenarioContext(session=session, file=Path("x.yaml"))


def run(ctx: ScenarioContext, keyword: str, spec: Any) -> None:
    STEPS[keyword].model_validate(spec).run(ctx)


def events(ctx: ScenarioContext, kind: str) -> list[dict[str, Any]]:
    return [e.detail for e in ctx.session.timeline.events if e.kind == kind]


def make_queue(session: HarnessSession, name: str, dlq: Queue | None = None, max_receives: int = 1) -> Queue:
    sqs = session.client("sqs")
    attributes = {"VisibilityTimeout": "30"}
    if dlq is not None:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": str(max_receives)}
        )
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = Queue(
        name=name,
        arn=arn,
        url=url,
        visibility_timeout=30,
        redrive=RedrivePolicy(dlq.arn, max_receives) if dlq else None,
        fifo=False,
        address=f"aws_sqs_queue.{name.replace('-', '_')}",
    )
    session.stack.queues[name] = queue
    return queue


def bodies(session: HarnessSession, queue: Queue) -> list[str]:
    return sorted(str(m.get("Body")) for m in session.peek_messages(queue.url))


# -- generate_objects -------------------------------------------------------------------


def test_generate_objects_uploads_deterministic_content(ctx: ScenarioContext) -> None:
    s3 = ctx.session.client("s3")
    spec = {"bucket": BUCKET, "count": 12, "size": "1KiB", "shape": "csv", "seed": 5, "name": "f-{i:04d}.csv"}
    run(ctx, "generate_objects", {**spec, "prefix": "gen-a/"})
    run(ctx, "generate_objects", {**spec, "prefix": "gen-b/"})

    def read(prefix: str) -> dict[str, bytes]:
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
        return {
            o["Key"].removeprefix(prefix): s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
            for o in listed
        }

    first, second = read("gen-a/"), read("gen-b/")
    assert sorted(first) == [f"f-{i:04d}.csv" for i in range(12)]
    assert first == second  # same seed: byte-identical
    assert first == dict(generate("csv", 1024, 12, seed=5, name="f-{i:04d}.csv"))
    assert all(len(b) == 1024 and b.startswith(b"id,key,value,ts\n") for b in first.values())
    head = s3.head_object(Bucket=BUCKET, Key="gen-a/f-0000.csv")
    assert head["ContentType"] == "text/csv"
    (event, _) = events(ctx, "generate_objects")
    assert event["count"] == 12 and event["bytes"] == 12 * 1024 and event["last"] == "gen-a/f-0011.csv"


def test_generate_objects_into_a_missing_bucket_is_a_clear_error(ctx: ScenarioContext) -> None:
    with pytest.raises(HarnessError, match="bucket 'no-such-bucket' does not exist"):
        run(ctx, "generate_objects", {"bucket": "no-such-bucket", "count": 2, "size": 10})


# -- DynamoDB ---------------------------------------------------------------------------


def raw_item(session: HarnessSession, key: str) -> dict[str, Any] | None:
    item = session.client("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": key}}).get("Item")
    return item


def test_put_item_converts_plain_json(ctx: ScenarioContext) -> None:
    item = {"id": "order-1", "total": 12.5, "count": 3, "tags": ["a", "b"], "meta": {"ok": True, "n": None}}
    run(ctx, "put_item", {"table": "steps-items", "item": item})  # by unique suffix
    stored = raw_item(ctx.session, "order-1")
    assert stored == {
        "id": {"S": "order-1"},
        "total": {"N": "12.5"},
        "count": {"N": "3"},
        "tags": {"L": [{"S": "a"}, {"S": "b"}]},
        "meta": {"M": {"ok": {"BOOL": True}, "n": {"NULL": True}}},
    }
    assert events(ctx, "put_item") == [{"table": TABLE, "attributes": 5, "subjects": ["order-1"]}]


def test_update_item_sets_attributes_under_a_condition(ctx: ScenarioContext) -> None:
    run(ctx, "put_item", {"table": TABLE, "item": {"id": "order-2", "status": "NEW", "tries": 0}})
    run(
        ctx,
        "update_item",
        {
            "table": TABLE,
            "key": {"id": "order-2"},
            "set": {"status": "DONE", "score": 0.25},
            "condition": {"status": "NEW", "missing": None},
        },
    )
    stored = raw_item(ctx.session, "order-2")
    assert stored is not None
    assert stored["status"] == {"S": "DONE"} and stored["score"] == {"N": "0.25"}
    assert Decimal(stored["tries"]["N"]) == 0

    with pytest.raises(ExpectationFailed) as caught:
        run(
            ctx,
            "update_item",
            {"table": TABLE, "key": {"id": "order-2"}, "set": {"x": 1}, "condition": {"status": "NEW"}},
        )
    assert "condition did not hold" in str(caught.value) and '"status": "DONE"' in str(caught.value)
    assert "x" not in (raw_item(ctx.session, "order-2") or {})


def test_unknown_table_lists_the_tables(ctx: ScenarioContext) -> None:
    with pytest.raises(HarnessError) as caught:
        run(ctx, "put_item", {"table": "nope", "item": {"id": "x"}})
    assert "no DynamoDB table named 'nope'" in str(caught.value) and TABLE in str(caught.value)


def test_put_item_without_the_key_attribute_is_a_harness_error(ctx: ScenarioContext) -> None:
    with pytest.raises(HarnessError, match="put_item into harness-steps-items"):
        run(ctx, "put_item", {"table": TABLE, "item": {"name": "no id"}})


# -- put_event --------------------------------------------------------------------------


def test_put_event_reaches_a_rule_target(ctx: ScenarioContext) -> None:
    queue = make_queue(ctx.session, EVENTS_QUEUE)
    events_client = ctx.session.client("events")
    events_client.put_rule(Name="steps-rule", EventPattern=json.dumps({"source": ["steps.test"]}))
    events_client.put_targets(Rule="steps-rule", Targets=[{"Id": "q", "Arn": queue.arn}])

    run(
        ctx,
        "put_event",
        {
            "source": "steps.test",
            "detail_type": "Order Placed",
            "detail": {"order": 7, "items": ["a"]},
            "resources": ["arn:aws:s3:::x"],
        },
    )
    run(ctx, "put_event", {"source": "other.source", "detail_type": "Ignored", "detail": {}})
    messages = ctx.session.peek_messages(queue.url)
    assert len(messages) == 1
    event = json.loads(messages[0]["Body"])
    assert event["source"] == "steps.test" and event["detail-type"] == "Order Placed"
    assert event["detail"] == {"order": 7, "items": ["a"]} and event["resources"] == ["arn:aws:s3:::x"]
    recorded = events(ctx, "put_event")
    assert [e["source"] for e in recorded] == ["steps.test", "other.source"] and recorded[0]["event_id"]


def test_put_event_on_a_missing_bus_fails_clearly(ctx: ScenarioContext) -> None:
    with pytest.raises(HarnessError, match="no-such-bus"):
        run(ctx, "put_event", {"bus": "no-such-bus", "source": "s", "detail_type": "d", "detail": {}})


# -- publish ----------------------------------------------------------------------------


def rabbit(session: HarnessSession) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(session.support["rabbitmq"].endpoint.url))


def test_publish_delivers_a_persistent_json_message_with_headers(ctx: ScenarioContext) -> None:
    connection = rabbit(ctx.session)
    try:
        channel = connection.channel()
        channel.queue_declare("steps-orders", durable=True)
        run(ctx, "publish", {"queue": "steps-orders", "body": {"order": 1}, "headers": {"trace": "t-1"}})
        run(ctx, "publish", {"queue": "steps-orders", "body": "plain", "persistent": False})
        got = [channel.basic_get("steps-orders", auto_ack=True) for _ in range(2)]
    finally:
        connection.close()
    (_, first_props, first_body), (_, second_props, second_body) = got
    assert json.loads(first_body) == {"order": 1}
    assert first_props.headers == {"trace": "t-1"} and first_props.delivery_mode == 2
    assert first_props.content_type == "application/json"
    assert second_body == b"plain" and second_props.delivery_mode == 1
    assert [e["queue"] for e in events(ctx, "publish")] == ["steps-orders", "steps-orders"]


def test_publish_to_a_missing_queue_names_it_or_declares_it(ctx: ScenarioContext) -> None:
    with pytest.raises(HarnessError, match="no queue named 'steps-missing'"):
        run(ctx, "publish", {"queue": "steps-missing", "body": "x"})
    run(ctx, "publish", {"queue": "steps-declared", "body": "x", "declare": True})
    connection = rabbit(ctx.session)
    try:
        declared = connection.channel().queue_declare("steps-declared", passive=True)
        assert declared.method.message_count == 1
    finally:
        connection.close()


# -- redrive ----------------------------------------------------------------------------


def fill_dlq(session: HarnessSession, source: Queue, dlq: Queue, count: int) -> None:
    """Fail `count` messages the real way: receive them past maxReceiveCount (1)."""
    sqs = session.client("sqs")
    for i in range(count):
        sqs.send_message(
            QueueUrl=source.url,
            MessageBody=f"message {i}",
            MessageAttributes={
                "n": {"DataType": "Number", "StringValue": str(i)},
                "kind": {"DataType": "String", "StringValue": "poison"},
            },
        )
    deadline = time.monotonic() + 10
    while len(session.peek_messages(dlq.url)) < count and time.monotonic() < deadline:
        sqs.receive_message(QueueUrl=source.url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert len(session.peek_messages(dlq.url)) == count
    assert session.peek_messages(source.url) == []


def test_redrive_moves_every_message_back_with_its_attributes(ctx: ScenarioContext) -> None:
    dlq = make_queue(ctx.session, "steps-work-dlq")
    source = make_queue(ctx.session, "steps-work", dlq=dlq)
    fill_dlq(ctx.session, source, dlq, 13)

    run(ctx, "redrive", "work-dlq")  # shorthand, unique suffix; the source comes from the redrive policy

    assert ctx.session.peek_messages(dlq.url) == []
    assert bodies(ctx.session, source) == sorted(f"message {i}" for i in range(13))
    received = ctx.session.client("sqs").receive_message(
        QueueUrl=source.url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    )["Messages"]
    for m in received:
        n = m["Body"].removeprefix("message ")
        assert m["MessageAttributes"]["n"] == {"DataType": "Number", "StringValue": n}
        assert m["MessageAttributes"]["kind"]["StringValue"] == "poison"
        assert m["Attributes"]["ApproximateReceiveCount"] == "1"  # a fresh start
    assert events(ctx, "redrive") == [{"dlq": dlq.name, "to": source.name, "moved": 13, "left": 0}]


def test_redrive_with_a_limit_and_an_explicit_target(ctx: ScenarioContext) -> None:
    dlq = make_queue(ctx.session, "steps-limit-dlq")
    source = make_queue(ctx.session, "steps-limit", dlq=dlq)
    other = make_queue(ctx.session, "steps-limit-elsewhere")
    fill_dlq(ctx.session, source, dlq, 3)
    run(ctx, "redrive", {"dlq": "steps-limit-dlq", "to": "limit-elsewhere", "max_messages": 2})
    assert len(ctx.session.peek_messages(other.url)) == 2
    assert len(ctx.session.peek_messages(dlq.url)) == 1
    assert ctx.session.peek_messages(source.url) == []
    assert events(ctx, "redrive")[0]["moved"] == 2


def test_redrive_errors_name_the_queues(ctx: ScenarioContext) -> None:
    lonely = make_queue(ctx.session, "steps-lonely-dlq")
    with pytest.raises(
        HarnessError, match="no queue of the stack has steps-lonely-dlq as its dead-letter queue"
    ):
        run(ctx, "redrive", lonely.name)
    with pytest.raises(HarnessError, match="no queue named 'nowhere-dlq'"):
        run(ctx, "redrive", "nowhere-dlq")


# -- save -------------------------------------------------------------------------------


def test_save_from_an_object_an_item_and_a_queue_message(ctx: ScenarioContext) -> None:
    s3 = ctx.session.client("s3")
    doc = {"copies": ["/out/a.txt", "/out/b.txt"], "meta": {"n": 2}}
    s3.put_object(Bucket=BUCKET, Key="save/manifest.json", Body=json.dumps(doc).encode())
    s3.put_object(Bucket=BUCKET, Key="save/plain.txt", Body=b"hello")
    run(ctx, "put_item", {"table": TABLE, "item": {"id": "save-1", "price": 9.5, "qty": 2}})
    queue = make_queue(ctx.session, "steps-save")
    ctx.session.client("sqs").send_message(QueueUrl=queue.url, MessageBody='{"first": true}')
    ctx.session.client("sqs").send_message(QueueUrl=queue.url, MessageBody='{"second": {"id": "q-2"}}')

    run(
        ctx,
        "save",
        {"name": "manifest", "object": {"bucket": BUCKET, "key": "save/manifest.json", "json": True}},
    )
    run(ctx, "save", {"name": "text", "object": {"bucket": BUCKET, "key": "save/plain.txt"}})
    run(
        ctx,
        "save",
        {
            "name": "copy",
            "object": {"bucket": BUCKET, "key": "save/manifest.json"},
            "jsonpath": "$.copies[1]",
        },
    )
    run(ctx, "save", {"name": "item", "item": {"table": "steps-items", "key": {"id": "save-1"}}})
    run(
        ctx,
        "save",
        {"name": "msg", "queue_message": {"queue": "steps-save", "index": 2}, "jsonpath": "$.second.id"},
    )
    run(ctx, "save", {"name": "raw", "queue_message": {"queue": "steps-save"}})

    assert ctx.saved == {
        "manifest": doc,
        "text": "hello",
        "copy": "/out/b.txt",
        "item": {"id": "save-1", "price": 9.5, "qty": 2},
        "msg": "q-2",
        "raw": '{"first": true}',
    }
    assert len(ctx.session.peek_messages(queue.url)) == 2  # peeked, not received
    assert [e["name"] for e in events(ctx, "save")] == list(ctx.saved)


def test_save_errors_are_clear(ctx: ScenarioContext) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"object": {"bucket": BUCKET, "key": "save/none.json"}}, "does not exist"),
        ({"item": {"table": TABLE, "key": {"id": "absent"}}}, "no item"),
        ({"queue_message": {"queue": EVENTS_QUEUE, "index": 99}}, "so no message 99"),
        ({"invocation": {"function": "f"}}, "no functions run in this session"),
    ]
    make_queue(ctx.session, EVENTS_QUEUE)
    for source, fragment in cases:
        with pytest.raises(HarnessError, match=fragment):
            run(ctx, "save", {"name": "x", **source})
    ctx.session.client("s3").put_object(Bucket=BUCKET, Key="save/list.json", Body=b"[1, 2]")
    with pytest.raises(HarnessError, match=r"selects 2 values"):
        run(
            ctx,
            "save",
            {"name": "x", "object": {"bucket": BUCKET, "key": "save/list.json"}, "jsonpath": "$[*]"},
        )
    ctx.session.client("s3").put_object(Bucket=BUCKET, Key="save/text.txt", Body=b"not json")
    with pytest.raises(HarnessError, match="is not JSON"):
        run(ctx, "save", {"name": "x", "object": {"bucket": BUCKET, "key": "save/text.txt", "json": True}})


class _Runtime:
    def __init__(self, invocations: list[Invocation]) -> None:
        self.invocations = invocations


def test_save_an_invocation_result(ctx: ScenarioContext, monkeypatch: pytest.MonkeyPatch) -> None:
    function = Function(
        "steps-fn",
        "arn:aws:lambda:us-east-1:000000000000:function:steps-fn",
        "h.handler",
        "python3.12",
        "Zip",
        None,
        None,
        {},
        3,
        128,
        "role",
        "aws_lambda_function.f",
    )
    monkeypatch.setitem(ctx.session.stack.functions, "steps-fn", function)
    calls = [
        Invocation(1, "steps-fn", "r1", "direct", {}, "success", {"n": 1}),
        Invocation(2, "other", "r2", "direct", {}, "success", {"n": 99}),
        Invocation(3, "steps-fn", "r3", "direct", {}, "success", {"n": 2, "ids": ["a"]}),
        Invocation(4, "steps-fn", "r4", "direct", {}, "error", None, "ValueError", "boom"),
    ]
    monkeypatch.setattr(ctx.session, "runtime", _Runtime(calls))
    run(ctx, "save", {"name": "first", "invocation": {"function": "fn", "index": 1}})
    run(
        ctx,
        "save",
        {"name": "id", "invocation": {"function": "steps-fn", "index": 2}, "jsonpath": "$.ids[0]"},
    )
    assert ctx.saved == {"first": {"n": 1}, "id": "a"}
    with pytest.raises(HarnessError, match="ended with error"):
        run(ctx, "save", {"name": "last", "invocation": {"function": "steps-fn"}})
    with pytest.raises(HarnessError, match="has 3 invocation"):
        run(ctx, "save", {"name": "x", "invocation": {"function": "steps-fn", "index": 4}})


# -- wait_until -------------------------------------------------------------------------


def test_wait_until_passes_once_the_expectation_holds(ctx: ScenarioContext) -> None:
    queue = make_queue(ctx.session, "steps-wait")
    sender = threading.Timer(
        0.5, lambda: ctx.session.client("sqs").send_message(QueueUrl=queue.url, MessageBody="late")
    )
    sender.start()
    started = time.monotonic()
    run(ctx, "wait_until", {"expect": {"queue": {"name": "steps-wait", "count": 1}}, "timeout": "10s"})
    sender.join()
    assert 0.4 < time.monotonic() - started < 5
    (event,) = events(ctx, "wait_until")
    assert event["held"] is True and event["attempts"] > 1


def test_wait_until_times_out_with_the_last_failure(ctx: ScenarioContext) -> None:
    queue = make_queue(ctx.session, "steps-stuck")
    ctx.session.client("sqs").send_message(QueueUrl=queue.url, MessageBody="stuck")
    started = time.monotonic()
    with pytest.raises(ExpectationFailed) as caught:
        run(
            ctx,
            "wait_until",
            {"expect": {"queue_empty": "steps-stuck"}, "timeout": "600ms", "interval": "100ms"},
        )
    elapsed = time.monotonic() - started
    assert 0.55 < elapsed < 3
    message = str(caught.value)
    assert "queue_empty did not hold within 0.6s" in message and "stuck" in message
    (event,) = events(ctx, "wait_until")
    assert event["held"] is False and event["attempts"] >= 3


# -- a whole scenario: save, interpolate, redrive, wait ----------------------------------


SCENARIO = """\
name: fix the data, redrive the DLQ, nothing lost
flow: broker
steps:
  - put_item: {table: steps-items, item: {id: cfg, target: steps-flow, note: "costs $${price}"}}
  - save: {name: cfg, item: {table: steps-items, key: {id: cfg}}}
  - send_message:
      queue: "${saved.cfg.target}-dlq"
      body: {from: "${saved.cfg.id}", note: "${saved.cfg.note}"}
  - save: {name: parked, queue_message: {queue: "${saved.cfg.target}-dlq", json: true}}
  - redrive: "${saved.cfg.target}-dlq"
  - wait_until: {expect: {queue: {name: "${saved.cfg.target}", count: 1}}, timeout: 5s}
expect:
  - queue_empty: "${saved.cfg.target}-dlq"
  - queue: {name: steps-flow, body_json: {from: "${saved.parked.from}"}}
"""


def test_a_scenario_uses_saved_values_everywhere(session: HarnessSession, tmp_path: Path) -> None:
    dlq = make_queue(session, "steps-flow-dlq")
    source = make_queue(session, "steps-flow", dlq=dlq)
    path = tmp_path / "flow.yaml"
    path.write_text(SCENARIO)
    ctx = run_scenario(load_scenario(path), session)
    assert ctx.saved["parked"] == {"from": "cfg", "note": "costs ${price}"}
    assert [json.loads(b) for b in bodies(session, source)] == [{"from": "cfg", "note": "costs ${price}"}]
    assert [e.kind for e in session.timeline.events] == [
        "put_item",
        "save",
        "send_message",
        "save",
        "redrive",
        "wait_until",
    ]
