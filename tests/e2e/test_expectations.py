"""Every expectation against real services: moto server, RabbitMQ, PostgreSQL; no Terraform apply.

Resources are created with boto3, pika and psycopg. For each expectation a true statement
passes and a false one raises ExpectationFailed whose text shows the expected and the actual
values.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.deploy.stack import Queue, Table, Topic
from harness.errors import ExpectationFailed
from harness.runtime.lambda_runtime import Invocation, LambdaRuntime, RuntimeSettings
from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import EXPECTATIONS
from harness.session import HarnessSession

pytestmark = pytest.mark.e2e

BUCKET = "expect-bucket"
TABLE = "harness-expect-orders"
TOPIC = "harness-expect-events"
TOPIC_QUEUE = "harness-expect-events-sub"
PLAIN_QUEUE = "harness-expect-plain"
RABBIT_QUEUE = "harness-expect-work"
FUNCTION = "harness-expect-fn"
CSV_TEXT = "id,name\n1,alpha\n2,beta\n"
PARQUET_ROWS = [{"id": 1, "name": "alpha", "score": 1.5}, {"id": 2, "name": "beta", "score": 2.0}]


def _seed_s3(session: HarnessSession) -> None:
    s3 = session.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/a.txt", Body=b"hello world")
    s3.put_object(Bucket=BUCKET, Key="data/b.json", Body=json.dumps({"id": 7, "tags": ["x", "y"]}).encode())
    s3.put_object(Bucket=BUCKET, Key="data/rows.csv", Body=CSV_TEXT.encode())
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(PARQUET_ROWS), sink)
    s3.put_object(Bucket=BUCKET, Key="data/table.parquet", Body=sink.getvalue())


def _seed_dynamodb(session: HarnessSession) -> None:
    ddb = session.client("dynamodb")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "status", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-status",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for pk, sk, status, total in [
        ("c1", 2, "open", "12.5"),
        ("c1", 1, "done", "10"),
        ("c2", 10, "done", "3"),
    ]:
        ddb.put_item(
            TableName=TABLE,
            Item={"pk": {"S": pk}, "sk": {"N": str(sk)}, "status": {"S": status}, "total": {"N": total}},
        )


def _seed_sns(session: HarnessSession) -> None:
    sns, sqs = session.client("sns"), session.client("sqs")
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    url = sqs.create_queue(QueueName=TOPIC_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    sns.publish(TopicArn=topic, Message=json.dumps({"order": 1, "state": "created"}))
    sns.publish(TopicArn=topic, Message="plain text")


def _seed_sqs(session: HarnessSession) -> None:
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName=PLAIN_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"kind": "order", "id": 1}),
        MessageAttributes={
            "event_type": {"DataType": "String", "StringValue": "created"},
            "priority": {"DataType": "Number", "StringValue": "3"},
        },
    )
    session.stack.queues[PLAIN_QUEUE] = Queue(PLAIN_QUEUE, arn, url, 30, None, False, "test")


def _seed_rabbitmq(session: HarnessSession) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(session.support["rabbitmq"].endpoint.url))
    try:
        channel = connection.channel()
        channel.queue_declare(queue=RABBIT_QUEUE, durable=True)
        for body in (json.dumps({"job": 1}), json.dumps({"job": 2}), "three"):
            channel.basic_publish(exchange="", routing_key=RABBIT_QUEUE, body=body.encode())
    finally:
        connection.close()


def _seed_postgres(session: HarnessSession) -> None:
    with psycopg.connect(session.support["postgres"].endpoint.url) as conn:
        conn.execute("CREATE SEQUENCE expect_seq")
        conn.execute("CREATE TABLE expect_orders (id integer PRIMARY KEY, status text, total numeric)")
        conn.execute("INSERT INTO expect_orders VALUES (1, 'done', 10.5), (2, 'open', 3), (3, 'done', 7.25)")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HarnessSession]:
    with HarnessSession("moto", label="expect", deploy=False) as session:
        session.runtime = LambdaRuntime(
            {}, RuntimeSettings(endpoint_url=session.endpoint_url), tmp_path_factory.mktemp("lambda")
        )
        session.runtime.invocations.extend(
            [
                Invocation(
                    seq=1,
                    function=FUNCTION,
                    request_id="r-1",
                    source="direct",
                    event={"id": 1},
                    outcome="success",
                    result={"statusCode": 200, "batchItemFailures": []},
                    logs="START r-1\nprocessed order 1\nprocessed order 2\nEND r-1",
                ),
                Invocation(
                    seq=2,
                    function=FUNCTION,
                    request_id="r-2",
                    source="sqs",
                    event={"id": 2},
                    outcome="error",
                    error_type="ValueError",
                    error_message="bad order",
                    logs="START r-2\n[ERROR] ValueError: bad order\nEND r-2",
                ),
            ]
        )
        _seed_s3(session)
        _seed_dynamodb(session)
        _seed_sns(session)
        _seed_sqs(session)
        _seed_rabbitmq(session)
        _seed_postgres(session)
        yield session


@pytest.fixture
def ctx(session: HarnessSession) -> ScenarioContext:
    return ScenarioContext(session=session, file=Path("expect.yaml"))


def check(ctx: ScenarioContext, keyword: str, spec: Any) -> None:
    EXPECTATIONS[keyword].model_validate(spec).check(ctx)


def failure(ctx: ScenarioContext, keyword: str, spec: Any, *fragments: str) -> str:
    """The failure text of a false expectation; every fragment must appear in it."""
    with pytest.raises(ExpectationFailed) as caught:
        check(ctx, keyword, spec)
    text = str(caught.value)
    assert "expected:" in text and "actual:" in text, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    return text


# -- objects, json, object -------------------------------------------------------------------


def test_objects(ctx: ScenarioContext) -> None:
    keys = ["data/a.txt", "data/b.json", "data/rows.csv", "data/table.parquet"]
    check(ctx, "objects", {"bucket": BUCKET, "prefix": "data/", "count": 4, "keys": keys})
    check(ctx, "objects", {"bucket": BUCKET, "prefix": "data/", "count": {"$gte": 3}})
    check(ctx, "objects", {"bucket": BUCKET, "prefix": "data/", "keys": {"$contains": "data/a.txt"}})
    check(ctx, "objects", {"bucket": BUCKET, "prefix": "data/a", "body": {"$regex": "hello .*"}})
    check(ctx, "objects", {"bucket": BUCKET, "prefix": "data/a", "body": "hello world"})
    failure(
        ctx, "objects", {"bucket": BUCKET, "prefix": "data/", "count": {"$lt": 2}}, '"$lt": 2', "data/b.json"
    )
    failure(ctx, "objects", {"bucket": BUCKET, "prefix": "data/", "keys": ["data/a.txt"]}, "data/rows.csv")
    failure(
        ctx, "objects", {"bucket": BUCKET, "prefix": "data/a", "body": "goodbye"}, "goodbye", "hello world"
    )


def test_json(ctx: ScenarioContext) -> None:
    spec = {"bucket": BUCKET, "key": "data/b.json"}
    check(ctx, "json", {**spec, "length": 2, "contains": {"id": {"$type": "integer"}}})
    check(ctx, "json", {**spec, "equals": {"id": 7, "tags": ["x", "y"]}})
    check(ctx, "json", {**spec, "matches": {"$jsonpath": {"$.tags[*]": {"$regex": "[xy]"}}}})
    failure(ctx, "json", {**spec, "matches": {"$subset": {"id": 8}}}, '"id": 8', '"id": 7')
    failure(ctx, "json", {**spec, "contains": {"id": 8}}, '"id": 8', '"id": 7')
    failure(ctx, "json", {**spec, "length": 3}, "3", '"tags"')


def test_object_text_json_csv_parquet(ctx: ScenarioContext) -> None:
    check(ctx, "object", {"bucket": BUCKET, "key": "data/a.txt", "text": "hello world"})
    check(ctx, "object", {"bucket": BUCKET, "key": "data/b.json", "json": {"$subset": {"tags": ["y"]}}})
    rows = [{"id": "1", "name": "alpha"}, {"id": "2", "name": "beta"}]
    check(ctx, "object", {"bucket": BUCKET, "key": "data/rows.csv", "csv": rows})
    check(ctx, "object", {"bucket": BUCKET, "key": "data/table.parquet", "parquet": PARQUET_ROWS})
    check(ctx, "object", {"bucket": BUCKET, "key": "data/table.parquet", "parquet": {"$len": 2}})
    check(ctx, "object", {"bucket": BUCKET, "key": "data/a.txt"})
    failure(ctx, "object", {"bucket": BUCKET, "key": "data/a.txt", "text": "hello"}, '"hello"', "hello world")
    failure(
        ctx,
        "object",
        {"bucket": BUCKET, "key": "data/rows.csv", "csv": {"$contains": {"name": "gamma"}}},
        "gamma",
        "alpha",
    )
    failure(
        ctx,
        "object",
        {
            "bucket": BUCKET,
            "key": "data/table.parquet",
            "parquet": {"$jsonpath": {"$[*].score": {"$gt": 1.8}}},
        },
        "1.8",
        "1.5",
    )
    failure(
        ctx,
        "object",
        {"bucket": BUCKET, "key": "data/missing.txt", "text": "x"},
        "data/missing.txt",
        "data/a.txt",
    )


def test_object_absent(ctx: ScenarioContext) -> None:
    check(ctx, "object", {"bucket": BUCKET, "key": "data/missing.txt", "exists": False})
    failure(
        ctx, "object", {"bucket": BUCKET, "key": "data/a.txt", "exists": False}, "no object", "data/a.txt"
    )


# -- DynamoDB ---------------------------------------------------------------------------------


def test_item(ctx: ScenarioContext) -> None:
    key = {"pk": "c1", "sk": 2}
    check(
        ctx,
        "item",
        {"table": TABLE, "key": key, "matches": {"pk": "c1", "sk": 2, "status": "open", "total": 12.5}},
    )
    check(ctx, "item", {"table": "expect-orders", "key": key, "matches": {"$subset": {"total": {"$gt": 12}}}})
    check(ctx, "item", {"table": TABLE, "key": {"pk": "c1", "sk": 3}, "absent": True})
    failure(
        ctx,
        "item",
        {"table": TABLE, "key": key, "matches": {"$subset": {"status": "done"}}},
        '"done"',
        '"open"',
    )
    failure(ctx, "item", {"table": TABLE, "key": key, "absent": True}, "no item", '"open"')
    failure(
        ctx,
        "item",
        {"table": TABLE, "key": {"pk": "zz", "sk": 1}, "matches": {"pk": "zz"}},
        '"zz"',
        "no item",
    )


def test_items_query_scan_index_filter(ctx: ScenarioContext) -> None:
    check(ctx, "items", {"table": TABLE, "key_condition": {"pk": "c1"}, "count": 2})
    # A Query comes in sort-key order: sk 1 before sk 2.
    check(
        ctx,
        "items",
        {"table": TABLE, "key_condition": {"pk": "c1"}, "matches": {"$jsonpath": {"$[0].sk": 1}}},
    )
    check(
        ctx, "items", {"table": TABLE, "index": "by-status", "key_condition": {"status": "done"}, "count": 2}
    )
    check(ctx, "items", {"table": TABLE, "count": 3, "filter": {}})
    check(ctx, "items", {"table": TABLE, "filter": {"total": {"$lt": 11}}, "count": 2})
    check(ctx, "items", {"table": TABLE, "matches": {"$jsonpath": {"$[*].pk": {"$regex": "c[12]"}}}})
    scan = {
        "table": TABLE,
        "matches": [{"$subset": {"pk": "c1", "sk": 1}}, {"$subset": {"sk": 2}}, {"$subset": {"pk": "c2"}}],
    }
    check(ctx, "items", scan)
    failure(
        ctx, "items", {"table": TABLE, "key_condition": {"pk": "c2"}, "count": 2}, '"count": 1', '"sk": 10'
    )
    failure(
        ctx,
        "items",
        {"table": TABLE, "filter": {"status": "open"}, "matches": [{"$subset": {"sk": 5}}]},
        '"sk": 5',
        '"sk": 2',
    )


def test_table_names_come_from_the_stack_when_it_has_them(
    session: HarnessSession, ctx: ScenarioContext
) -> None:
    table = Table("harness-expect-orders", "arn:t", "pk", "sk", None, ("by-status",), "aws_dynamodb_table.t")
    session.stack.tables = {table.name: table, "other-orders-x": table}
    try:
        check(ctx, "items", {"table": "expect-orders", "count": 3})
        # Unknown to the stack: the emulator's own list is consulted.
        failure(ctx, "items", {"table": "no-such-table", "count": 1}, "no-such-table", TABLE)
    finally:
        session.stack.tables = {}


# -- SQL --------------------------------------------------------------------------------------


def test_sql(ctx: ScenarioContext) -> None:
    query = "SELECT id, status, total FROM expect_orders WHERE status = %s ORDER BY id"
    check(ctx, "sql", {"query": query, "params": ["done"], "count": 2})
    check(
        ctx,
        "sql",
        {
            "query": query,
            "params": ["done"],
            "rows": [{"id": 1, "status": "done", "total": 10.5}, {"id": 3, "status": "done", "total": 7.25}],
        },
    )
    check(ctx, "sql", {"query": "SELECT count(*) AS n FROM expect_orders", "rows": [{"n": 3}]})
    failure(ctx, "sql", {"query": query, "params": ["open"], "count": {"$gte": 2}}, '"$gte": 2', '"count": 1')
    failure(ctx, "sql", {"query": query, "params": ["open"], "rows": [{"id": 9}]}, '"id": 9', '"id": 2')
    failure(ctx, "sql", {"query": "SELECT * FROM no_such_table", "count": 0}, "no_such_table")


def test_sql_runs_read_only(ctx: ScenarioContext) -> None:
    # A data-modifying function call passes the load-time check; the read-only transaction stops it.
    text = failure(ctx, "sql", {"query": "SELECT nextval('expect_seq')", "count": 1}, "query failed")
    assert "read-only" in text


# -- RabbitMQ ---------------------------------------------------------------------------------


def test_rabbitmq_queue(ctx: ScenarioContext) -> None:
    check(ctx, "rabbitmq_queue", {"queue": RABBIT_QUEUE, "depth": 3})
    check(ctx, "rabbitmq_queue", {"queue": RABBIT_QUEUE, "messages": [{"job": 1}, {"job": 2}, "three"]})
    # Peeking requeued everything, in order.
    check(ctx, "rabbitmq_queue", {"queue": RABBIT_QUEUE, "depth": 3, "messages": {"$contains": {"job": 2}}})
    failure(ctx, "rabbitmq_queue", {"queue": RABBIT_QUEUE, "depth": {"$lt": 1}}, '"$lt": 1', "3")
    failure(ctx, "rabbitmq_queue", {"queue": RABBIT_QUEUE, "messages": [{"job": 9}]}, '"job": 9', '"job": 1')
    failure(ctx, "rabbitmq_queue", {"queue": "no-such-queue", "depth": 0}, "no-such-queue", "NOT_FOUND")
    check(ctx, "rabbitmq_queue", {"queue": RABBIT_QUEUE, "depth": 3})


# -- SNS and SQS ------------------------------------------------------------------------------


def test_sns_messages(ctx: ScenarioContext) -> None:
    messages = [{"order": 1, "state": "created"}, "plain text"]
    check(ctx, "sns_messages", {"topic": TOPIC, "count": 2, "messages": messages})
    check(ctx, "sns_messages", {"topic": "expect-events", "subscription_queue": TOPIC_QUEUE, "count": 2})
    check(ctx, "sns_messages", {"topic": TOPIC, "messages": {"$contains": {"$subset": {"state": "created"}}}})
    failure(ctx, "sns_messages", {"topic": TOPIC, "count": 5}, "5", '"count": 2', "plain text")
    failure(ctx, "sns_messages", {"topic": TOPIC, "messages": ["other"]}, '"other"', "plain text")
    failure(ctx, "sns_messages", {"topic": "no-such-topic", "count": 0}, "no-such-topic", TOPIC)


def test_sns_topic_from_the_stack(session: HarnessSession, ctx: ScenarioContext) -> None:
    arn = next(
        t["TopicArn"] for t in session.client("sns").list_topics()["Topics"] if t["TopicArn"].endswith(TOPIC)
    )
    session.stack.topics = {TOPIC: Topic(TOPIC, arn, "aws_sns_topic.t")}
    try:
        check(ctx, "sns_messages", {"topic": "events", "count": 2})
    finally:
        session.stack.topics = {}


def test_queue_attributes_and_messages(ctx: ScenarioContext) -> None:
    check(ctx, "queue", {"name": PLAIN_QUEUE, "count": {"$gte": 1}, "attributes": {"event_type": "created"}})
    check(ctx, "queue", {"name": "expect-plain", "attributes": {"priority": 3, "ApproximateReceiveCount": 0}})
    check(ctx, "queue", {"name": PLAIN_QUEUE, "attributes": {"$subset": {"event_type": {"$regex": "cre.*"}}}})
    check(
        ctx,
        "queue",
        {"name": PLAIN_QUEUE, "messages": [{"kind": "order", "id": 1}], "body_json": {"kind": "order"}},
    )
    check(ctx, "queue", {"name": PLAIN_QUEUE, "receive_count": {"$lte": 1}})
    failure(
        ctx, "queue", {"name": PLAIN_QUEUE, "attributes": {"event_type": "deleted"}}, '"deleted"', '"created"'
    )
    failure(ctx, "queue", {"name": PLAIN_QUEUE, "messages": [{"kind": "refund"}]}, '"refund"', '"order"')
    failure(ctx, "queue", {"name": PLAIN_QUEUE, "count": 0}, "0", '"count": 1')


# -- invocations and logs ---------------------------------------------------------------------


def test_invocations(ctx: ScenarioContext) -> None:
    check(ctx, "invocations", {"function": FUNCTION, "count": 2})
    check(ctx, "invocations", {"function": "expect-fn", "count": {"$gte": 1}, "outcome": "success"})
    check(
        ctx,
        "invocations",
        {"function": FUNCTION, "count": 1, "outcome": "success", "result": {"$subset": {"statusCode": 200}}},
    )
    failure(ctx, "invocations", {"function": FUNCTION, "count": 3}, "3", '"count": 2')
    failure(
        ctx,
        "invocations",
        {"function": FUNCTION, "count": 1, "outcome": "success", "result": {"statusCode": 500}},
        '"statusCode": 500',
        '"statusCode": 200',
    )


def test_logs(session: HarnessSession, ctx: ScenarioContext) -> None:
    check(ctx, "logs", {"function": FUNCTION, "pattern": "processed order \\d"})
    check(ctx, "logs", {"function": FUNCTION, "pattern": "processed order", "count": 2})
    check(ctx, "logs", {"function": FUNCTION, "pattern": "Traceback", "count": 0})
    assert session.emulator is not None
    check(ctx, "logs", {"component": session.emulator.name, "pattern": "Running on http://"})
    # Services whose log file carries their port are named without it.
    check(ctx, "logs", {"component": "postgres", "pattern": "ready to accept connections"})
    check(ctx, "logs", {"component": "rabbitmq", "pattern": "Server startup complete", "count": 1})
    failure(ctx, "logs", {"function": FUNCTION, "pattern": "ERROR", "count": 0}, "0", "ValueError: bad order")
    failure(
        ctx, "logs", {"function": FUNCTION, "pattern": "no such line"}, '"$gte": 1', '"count": 0', "START r-1"
    )
    failure(
        ctx,
        "logs",
        {"component": "no-such-component", "pattern": "x"},
        "no-such-component.log",
        session.emulator.name,
    )
