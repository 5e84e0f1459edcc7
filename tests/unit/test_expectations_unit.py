"""Expectations without servers: load-time validation, pure helpers, the stack's new resources,
and the checks that only read the session's records (invocations, logs)."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from harness.deploy.stack import (
    AmbiguousNameError,
    Stack,
    Subscription,
    Table,
    Topic,
    UnknownNameError,
    stack_from_show_json,
)
from harness.errors import ExpectationFailed, ScenarioError
from harness.runtime.lambda_runtime import Invocation
from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import decode_text, expect_match, fail, pick_name, plain
from harness.scenario.expectations.dynamodb import deserialize, serialize, sort_items, to_dynamodb
from harness.scenario.expectations.logs import component_log
from harness.scenario.expectations.object import decode_object
from harness.scenario.expectations.queues import attribute_value, message_attributes
from harness.scenario.expectations.sns import published_messages, unwrap
from harness.scenario.expectations.sql import select_only
from harness.scenario.model import load_scenario
from harness.scenario.schema import build_schema
from harness.scenario.vocabulary import EXPECTATIONS

ACCOUNT = "000000000000"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:orders-events"
NEW_KEYWORDS = ("object", "item", "items", "sql", "rabbitmq_queue", "sns_messages", "logs")


def parse(keyword: str, spec: Any) -> Any:
    return EXPECTATIONS[keyword].model_validate(spec)


def invalid(keyword: str, spec: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        parse(keyword, spec)
    return str(caught.value)


# -- registry and schema ----------------------------------------------------------------------


@pytest.mark.parametrize("keyword", [*NEW_KEYWORDS, "objects", "json", "queue", "invocations"])
def test_every_expectation_is_registered_documented_and_strict(keyword: str) -> None:
    spec = EXPECTATIONS[keyword]
    assert spec.keyword == keyword
    assert (spec.__doc__ or "").strip().splitlines()[0]
    assert spec.model_config.get("extra") == "forbid"


def test_schema_lists_the_new_expectations_with_their_descriptions() -> None:
    options = build_schema()["properties"]["expect"]["items"]["oneOf"]
    described = {next(iter(o["properties"])): o["description"] for o in options}
    for keyword in NEW_KEYWORDS:
        assert described[keyword] == (EXPECTATIONS[keyword].__doc__ or "").strip().splitlines()[0]
    object_props = build_schema()["$defs"]["S3Object"]["properties"]
    assert "json" in object_props and "json_" not in object_props


# -- load-time validation ----------------------------------------------------------------------


def test_existing_forms_still_load() -> None:
    parse("objects", {"bucket": "b", "prefix": "p/", "count": 2, "names_match": "p/.*", "body": "x"})
    parse(
        "json",
        {"bucket": "b", "key": "k", "length": 2, "equals": [1], "contains": {"a": 1}, "items_match": ".*"},
    )
    parse(
        "queue", {"name": "q", "count": 1, "body": "x", "body_json": {"source": "aws.s3"}, "receive_count": 5}
    )
    parse("invocations", {"function": "f", "count": 0, "outcome": "failed"})


@pytest.mark.parametrize(
    ("keyword", "spec"),
    [
        ("objects", {"bucket": "b", "count": {"$gte": 1}, "keys": {"$len": 2}, "body": {"$regex": "a.*"}}),
        ("json", {"bucket": "b", "key": "k", "length": {"$lt": 3}, "matches": {"$subset": {"a": 1}}}),
        ("queue", {"name": "q", "count": {"$gt": 0}, "attributes": {"t": "x"}, "messages": {"$len": 1}}),
        ("invocations", {"function": "f", "count": {"$gte": 1}, "result": {"$subset": {"ok": True}}}),
        ("object", {"bucket": "b", "key": "k", "csv": {"$len": 2}}),
        ("item", {"table": "t", "key": {"id": "1", "n": 2}, "matches": {"$subset": {"a": 1}}}),
        ("items", {"table": "t", "index": "i", "key_condition": {"s": "x"}, "filter": {"n": {"$gt": 1}}}),
        ("sql", {"query": "SELECT 1 AS one", "rows": [{"one": 1}], "count": 1}),
        ("rabbitmq_queue", {"queue": "q", "depth": {"$lte": 3}, "messages": {"$contains": "x"}}),
        ("sns_messages", {"topic": "t", "subscription_queue": "q", "count": 1, "messages": ["m"]}),
        ("logs", {"component": "moto", "pattern": "GET /"}),
    ],
)
def test_matchers_are_accepted_wherever_a_value_is_expected(keyword: str, spec: dict[str, Any]) -> None:
    parse(keyword, spec)


@pytest.mark.parametrize(
    ("keyword", "spec", "fragment"),
    [
        ("objects", {"bucket": "b", "keys": {"$lenn": 2}}, "did you mean `$len`?"),
        ("objects", {"bucket": "b", "count": "many"}, "Input should be a number or a matcher"),
        ("objects", {"bucket": "b", "count": -1}, "cannot be negative"),
        ("json", {"bucket": "b", "key": "k", "matches": {"$regex": "("}}, "invalid regular expression"),
        ("json", {"bucket": "b", "key": "k", "contains": {"$subset": {}}}, "use `matches`"),
        ("queue", {"name": "q", "attributes": "x"}, "mapping of attribute names"),
        ("queue", {"name": "q", "messages": {"$type": "thing"}}, "unknown type `thing`"),
        ("invocations", {"function": "f", "count": 1, "result": {"$gt": "x"}}, "$gt needs a number"),
        ("object", {"bucket": "b", "key": "k", "text": "a", "json": {}}, "give one of"),
        ("object", {"bucket": "b", "key": "k", "exists": False, "parquet": []}, "asserts absence"),
        ("object", {"bucket": "b", "key": "k", "json_": 1}, "Extra inputs are not permitted"),
        ("item", {"table": "t", "key": {}}, "at least one attribute"),
        ("item", {"table": "t", "key": {"id": {"$regex": "x"}}}, "plain value"),
        ("item", {"table": "t", "key": {"id": 1}, "absent": True, "matches": {}}, "cannot be combined"),
        ("items", {"table": "t", "filter": {"n": {"$nope": 1}}}, "unknown matcher `$nope`"),
        ("sql", {"query": "DELETE FROM t"}, "only SELECT"),
        ("rabbitmq_queue", {"queue": "q", "depth": True}, "Input should be a number"),
        ("sns_messages", {"topic": "t", "count": {"$any_of": []}}, "non-empty list"),
        ("logs", {"function": "f", "pattern": "(unclosed"}, "invalid regular expression"),
        ("logs", {"pattern": "x"}, "exactly one of `function` or `component`"),
        ("logs", {"function": "f", "component": "c", "pattern": "x"}, "exactly one of"),
        ("logs", {"component": "../secrets", "pattern": "x"}, "log file's name"),
        ("logs", {"component": "moto", "pattern": "x", "count": {"$gte": "1"}}, "$gte needs a number"),
    ],
)
def test_malformed_expectations_are_rejected_at_load_time(
    keyword: str, spec: dict[str, Any], fragment: str
) -> None:
    assert fragment in invalid(keyword, spec)


def test_a_bad_matcher_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: x\nflow: refiner\nexpect:\n"
        "  - objects: {bucket: b, count: 1}\n"
        "  - sql:\n      query: SELECT 1\n      rows: {$subsett: [1]}\n"
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.line == 7
    assert "unknown matcher `$subsett`" in str(caught.value) and "did you mean `$subset`?" in str(
        caught.value
    )


def test_a_non_select_query_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nflow: refiner\nexpect:\n  - sql: {query: 'DROP TABLE orders', count: 0}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.line == 4
    assert "only SELECT queries are allowed" in str(caught.value)


# -- SQL -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1",
        "  select * from orders where id = %s;  ",
        "WITH recent AS (SELECT * FROM orders) SELECT count(*) FROM recent",
        "(SELECT 1) UNION (SELECT 2)",
        "SELECT 'a; DELETE FROM orders' AS text",
        'SELECT "update" FROM t',
        "SELECT 1 -- ; DROP TABLE orders\n",
        "SELECT 1 /* insert into x */",
        "SELECT $$; delete$$",
        "SELECT created_at, updated FROM t",
    ],
)
def test_select_only_accepts_read_queries(query: str) -> None:
    assert select_only(query) == query


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("", "empty"),
        ("  ;  ", "empty"),
        ("INSERT INTO t VALUES (1)", "only SELECT"),
        ("update t set a = 1", "only SELECT"),
        ("VALUES (1)", "only SELECT"),
        ("SELECT 1; DELETE FROM t", "several"),
        ("SELECT * INTO copy FROM t", "INTO"),
        ("WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone", "DELETE"),
        ("SELECT * FROM t FOR UPDATE", "UPDATE"),
        ("-- just a comment", "empty"),
    ],
)
def test_select_only_rejects_anything_else(query: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        select_only(query)


# -- helpers ------------------------------------------------------------------------------------


def test_fail_renders_expected_actual_mismatches_and_diff() -> None:
    error = fail("content of x", {"a": 1}, {"a": 2}, ["$.a: expected 1, got 2"])
    assert isinstance(error, ExpectationFailed)
    text = str(error)
    assert text.startswith("content of x\n  expected: {")
    assert '"a": 2' in text and "mismatches:" in text and "$.a: expected 1, got 2" in text
    assert "--- expected" in text and "+++ actual" in text


def test_expect_match_passes_or_fails_with_the_shown_value() -> None:
    expect_match("n", {"$gte": 1}, 3)
    with pytest.raises(ExpectationFailed) as caught:
        expect_match("number of things", 2, 1, {"count": 1, "things": ["t"]})
    assert '"things"' in str(caught.value) and "expected 2, got 1" in str(caught.value)


def test_plain_makes_json_data() -> None:
    value = {
        "int": Decimal("3"),
        "float": Decimal("2.5"),
        "when": dt.datetime(2026, 1, 15, 8, 0, tzinfo=dt.UTC),
        "day": dt.date(2026, 1, 15),
        "bytes": b"hi",
        "binary": b"\xff\x00",
        "set": {Decimal("2"), Decimal("1")},
        "id": uuid.UUID(int=1),
        "nested": [(Decimal("1"),)],
    }
    assert plain(value) == {
        "int": 3,
        "float": 2.5,
        "when": "2026-01-15T08:00:00+00:00",
        "day": "2026-01-15",
        "bytes": "hi",
        "binary": "/wA=",
        "set": [1, 2],
        "id": "00000000-0000-0000-0000-000000000001",
        "nested": [[1]],
    }
    assert type(plain(Decimal("3"))) is int


def test_decode_text() -> None:
    assert decode_text('{"a": 1}') == {"a": 1}
    assert decode_text("plain") == "plain"
    assert decode_text(b"[1, 2]") == [1, 2]
    assert decode_text("42") == 42


def test_pick_name_exact_suffix_unknown_ambiguous() -> None:
    names = ["dev-orders", "dev-orders-archive", "dev-users"]
    assert pick_name("table", "dev-orders", names) == "dev-orders"
    assert pick_name("table", "users", names) == "dev-users"
    with pytest.raises(ExpectationFailed, match="dev-users"):
        pick_name("table", "nope", names)
    names.append("prod-users")
    with pytest.raises(ExpectationFailed, match="is unique"):
        pick_name("table", "users", names)


# -- queues and SNS ------------------------------------------------------------------------------


def test_message_attributes_merge_system_and_message_attributes() -> None:
    message = {
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000", "SenderId": "AID"},
        "MessageAttributes": {
            "event_type": {"DataType": "String", "StringValue": "created"},
            "priority": {"DataType": "Number", "StringValue": "3"},
            "ratio": {"DataType": "Number.float", "StringValue": "0.5"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x01"},
        },
    }
    assert message_attributes(message) == {
        "ApproximateReceiveCount": 2,
        "SentTimestamp": 1700000000000,
        "SenderId": "AID",
        "event_type": "created",
        "priority": 3,
        "ratio": 0.5,
        "blob": "AQ==",
    }


def test_message_attributes_in_the_xml_shaped_listing() -> None:
    one = {"MessageAttribute": {"Name": "kind", "Value": {"DataType": "String", "StringValue": "a"}}}
    assert message_attributes(one) == {"kind": "a"}
    many = {"MessageAttribute": [{"Name": "n", "Value": {"DataType": "Number", "StringValue": "x1"}}]}
    assert message_attributes(many) == {"n": "x1"}
    assert attribute_value({"Type": "String", "Value": "v"}) == "v"


def test_sns_envelopes_are_unwrapped_and_filtered_by_topic() -> None:
    envelope = {"Type": "Notification", "TopicArn": TOPIC_ARN, "Message": json.dumps({"order": 1})}
    other = {**envelope, "TopicArn": TOPIC_ARN + "-other", "Message": "not ours"}
    text = {**envelope, "Message": "hello"}
    bodies = [json.dumps(envelope), json.dumps(other), json.dumps(text), '{"raw": true}']
    assert published_messages(bodies, TOPIC_ARN) == [{"order": 1}, "hello", {"raw": True}]
    assert unwrap("raw text", TOPIC_ARN) == "raw text"


# -- DynamoDB ------------------------------------------------------------------------------------


def test_dynamodb_values_round_trip_as_plain_json() -> None:
    key = {"pk": "c1", "sk": 2, "ratio": 0.25, "when": dt.date(2026, 1, 15), "flag": True}
    low = serialize(key)
    assert low["sk"] == {"N": "2"} and low["ratio"] == {"N": "0.25"} and low["when"] == {"S": "2026-01-15"}
    assert low["flag"] == {"BOOL": True}
    assert deserialize(low) == {"pk": "c1", "sk": 2, "ratio": 0.25, "when": "2026-01-15", "flag": True}
    assert deserialize({"tags": {"SS": ["b", "a"]}, "m": {"M": {"n": {"N": "1.0"}}}}) == {
        "tags": ["a", "b"],
        "m": {"n": 1},
    }
    assert to_dynamodb({"x": [1.5]}) == {"x": [Decimal("1.5")]}


def test_scan_results_sort_by_key_numbers_numerically() -> None:
    items = [{"pk": "b", "sk": 1}, {"pk": "a", "sk": 10}, {"pk": "a", "sk": 9}, {"pk": "a"}]
    assert sort_items(items, ["pk", "sk"]) == [
        {"pk": "a", "sk": 9},
        {"pk": "a", "sk": 10},
        {"pk": "a"},
        {"pk": "b", "sk": 1},
    ]


# -- S3 object formats -------------------------------------------------------------------------


def test_decode_object_formats() -> None:
    assert decode_object(b"hi", "text") == "hi"
    assert decode_object(b'{"a": [1]}', "json") == {"a": [1]}
    assert decode_object(b'id,name\r\n1,a\r\n2,"b,c"\r\n', "csv") == [
        {"id": "1", "name": "a"},
        {"id": "2", "name": "b,c"},
    ]
    sink = io.BytesIO()
    rows = [{"id": 1, "at": dt.datetime(2026, 1, 15, tzinfo=dt.UTC), "amount": Decimal("2.50")}]
    pq.write_table(pa.Table.from_pylist(rows), sink)
    assert decode_object(sink.getvalue(), "parquet") == [
        {"id": 1, "at": "2026-01-15T00:00:00+00:00", "amount": 2.5}
    ]


@pytest.mark.parametrize(
    ("raw", "fmt", "fragment"),
    [
        (b"{nope", "json", "is JSON"),
        (b"\xff\xfe", "text", "UTF-8"),
        (b"not parquet", "parquet", "is Parquet"),
    ],
)
def test_decode_object_failures_say_what_was_expected(raw: bytes, fmt: str, fragment: str) -> None:
    with pytest.raises(ExpectationFailed, match=fragment):
        decode_object(raw, fmt, "s3://b/k")


# -- the stack's tables, topics and subscriptions ------------------------------------------------


def resource(address: str, rtype: str, values: dict[str, Any]) -> dict[str, Any]:
    return {"address": address, "mode": "managed", "type": rtype, "values": values}


def show_with_tables_and_topics() -> dict[str, Any]:
    table = resource(
        "module.tracker.aws_dynamodb_table.items",
        "aws_dynamodb_table",
        {
            "name": "tracker-items",
            "arn": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/tracker-items",
            "hash_key": "pk",
            "range_key": "sk",
            "stream_arn": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/tracker-items/stream/2026",
            "global_secondary_index": [{"name": "by-status", "hash_key": "status"}, {"name": "by-owner"}],
        },
    )
    plain_table = resource(
        "aws_dynamodb_table.locks",
        "aws_dynamodb_table",
        {"name": "tracker-locks", "arn": "arn:locks", "hash_key": "id", "range_key": None, "stream_arn": ""},
    )
    topic = resource("aws_sns_topic.events", "aws_sns_topic", {"name": "orders-events", "arn": TOPIC_ARN})
    subscription = resource(
        "aws_sns_topic_subscription.to_queue",
        "aws_sns_topic_subscription",
        {"topic_arn": TOPIC_ARN, "protocol": "sqs", "endpoint": f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"},
    )
    queue = resource(
        "aws_sqs_queue.orders",
        "aws_sqs_queue",
        {"name": "orders", "arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders", "url": "http://q/orders"},
    )
    return {
        "values": {
            "root_module": {
                "resources": [queue, topic, subscription],
                "child_modules": [{"resources": [table, plain_table]}],
            }
        }
    }


def test_stack_reads_tables_topics_and_subscriptions() -> None:
    stack = stack_from_show_json(show_with_tables_and_topics())
    assert stack.tables["tracker-items"] == Table(
        name="tracker-items",
        arn=f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/tracker-items",
        hash_key="pk",
        range_key="sk",
        stream_arn=f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/tracker-items/stream/2026",
        global_secondary_indexes=("by-owner", "by-status"),
        address="module.tracker.aws_dynamodb_table.items",
    )
    locks = stack.tables["tracker-locks"]
    assert locks.range_key is None and locks.stream_arn is None and locks.global_secondary_indexes == ()
    assert stack.topics == {"orders-events": Topic("orders-events", TOPIC_ARN, "aws_sns_topic.events")}
    assert stack.subscriptions == [
        Subscription(
            TOPIC_ARN, "sqs", f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders", "aws_sns_topic_subscription.to_queue"
        )
    ]
    assert stack.subscriptions_of(TOPIC_ARN) == stack.subscriptions
    assert stack.subscriptions_of("arn:other") == []
    assert stack.queues["orders"].url == "http://q/orders"  # the existing resources are untouched


def test_resolve_table_and_topic_by_exact_name_or_unique_suffix() -> None:
    stack = stack_from_show_json(show_with_tables_and_topics())
    assert stack.resolve_table("tracker-items").name == "tracker-items"
    assert stack.resolve_table("locks").name == "tracker-locks"
    assert stack.resolve_topic("events").arn == TOPIC_ARN
    with pytest.raises(UnknownNameError) as unknown:
        stack.resolve_table("nope")
    assert str(unknown.value) == "no table named 'nope' in the stack (tables: tracker-items, tracker-locks)"
    assert isinstance(unknown.value, KeyError)
    with pytest.raises(AmbiguousNameError) as ambiguous:
        stack.resolve_table("s")
    assert "ambiguous" in str(ambiguous.value) and "tracker-items" in str(ambiguous.value)
    with pytest.raises(KeyError, match="topics: none"):
        Stack().resolve_topic("events")


# -- checks that read only the session's records -----------------------------------------------


def fake_ctx(tmp_path: Path, invocations: list[Invocation], stack: Stack | None = None) -> ScenarioContext:
    session = SimpleNamespace(
        runtime=SimpleNamespace(invocations=invocations),
        stack=stack or Stack(),
        run_dir=SimpleNamespace(path=tmp_path),
    )
    return ScenarioContext(session=session, file=tmp_path / "s.yaml")  # type: ignore[arg-type]


def invocation(
    seq: int, outcome: str, result: Any = None, logs: str = "", function: str = "dev-fn"
) -> Invocation:
    return Invocation(seq, function, f"r-{seq}", "direct", {}, outcome=outcome, result=result, logs=logs)


def test_invocations_count_matcher_and_result(tmp_path: Path) -> None:
    ctx = fake_ctx(
        tmp_path,
        [
            invocation(1, "success", {"batchItemFailures": []}),
            invocation(2, "error"),
            invocation(3, "success", {"batchItemFailures": []}),
            invocation(4, "success", None, function="other"),
        ],
    )
    parse("invocations", {"function": "fn", "count": 3}).check(ctx)
    parse("invocations", {"function": "dev-fn", "count": {"$gte": 2}, "outcome": "success"}).check(ctx)
    parse(
        "invocations",
        {"function": "fn", "count": 2, "outcome": "success", "result": {"batchItemFailures": []}},
    ).check(ctx)
    with pytest.raises(ExpectationFailed) as caught:
        parse("invocations", {"function": "fn", "count": 1, "outcome": "failed", "result": {"x": 1}}).check(
            ctx
        )
    assert "result of invocation #2" in str(caught.value) and '"x": 1' in str(caught.value)
    with pytest.raises(ExpectationFailed) as caught:
        parse("invocations", {"function": "fn", "count": {"$lt": 2}}).check(ctx)
    assert '"$lt": 2' in str(caught.value) and '"count": 3' in str(caught.value)


def test_logs_of_a_function_count_matching_lines(tmp_path: Path) -> None:
    ctx = fake_ctx(
        tmp_path,
        [invocation(1, "success", logs="a\nhandled 1\n"), invocation(2, "success", logs="handled 2")],
    )
    parse("logs", {"function": "fn", "pattern": r"handled \d"}).check(ctx)
    parse("logs", {"function": "fn", "pattern": "handled", "count": 2}).check(ctx)
    with pytest.raises(ExpectationFailed) as caught:
        parse("logs", {"function": "fn", "pattern": "handled", "count": 3}).check(ctx)
    assert "handled 1" in str(caught.value) and '"count": 2' in str(caught.value)


def test_component_logs_by_name_port_or_worker(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "moto.log").write_text("GET / 200\nPOST / 200\n")
    (logs / "postgres-5432.log").write_text("ready to accept connections\n")
    (logs / "postgres-5432-initdb.log").write_text("initdb\n")
    (tmp_path / "lambda").mkdir()
    (tmp_path / "lambda" / "lambda-dev-fn.log").write_text("worker\n")
    assert component_log(tmp_path, "moto") == logs / "moto.log"
    assert component_log(tmp_path, "postgres") == logs / "postgres-5432.log"
    assert component_log(tmp_path, "postgres-5432-initdb") == logs / "postgres-5432-initdb.log"
    assert component_log(tmp_path, "lambda-dev-fn") == tmp_path / "lambda" / "lambda-dev-fn.log"
    assert component_log(tmp_path, "redis") is None
    ctx = fake_ctx(tmp_path, [])
    parse("logs", {"component": "moto", "pattern": "^(GET|POST) ", "count": 2}).check(ctx)
    with pytest.raises(ExpectationFailed) as caught:
        parse("logs", {"component": "redis", "pattern": "x"}).check(ctx)
    assert "redis.log" in str(caught.value) and "postgres-5432" in str(caught.value)
