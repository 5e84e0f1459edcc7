"""harness.chaos.aws_proxy: forwarding to a real moto server, fault rules, the classifier.

One in-process moto server and one proxy serve the module; each test starts with no rules,
an empty log, seed 0 and empty moto backends. boto3 clients are cached per module (creating
one costs 0.1-0.4 s). `single` clients make exactly one attempt; `default` ones retry the way
botocore does out of the box.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from moto.server import ThreadedMotoServer
from pydantic import ValidationError

from harness.chaos.aws_proxy import (
    AwsCall,
    AwsFaultProxy,
    ErrorSpec,
    FaultRule,
    classify_request,
    render_error,
)
from harness.errors import PortInUseError

REGION = "us-east-1"
SINGLE = Config(retries={"total_max_attempts": 1, "mode": "standard"})
KEY_SCHEMA = {
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
}

Clients = Callable[..., Any]


def auth(service: str, region: str = REGION) -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/{region}/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0000"
    )


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def module_proxy(moto_url: str) -> Iterator[AwsFaultProxy]:
    with AwsFaultProxy(moto_url) as proxy:
        yield proxy


@pytest.fixture
def proxy(module_proxy: AwsFaultProxy, moto_url: str) -> AwsFaultProxy:
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).close()
    module_proxy.clear()
    module_proxy.clear_log()
    module_proxy.reseed(0)
    return module_proxy


@pytest.fixture(scope="module")
def clients(module_proxy: AwsFaultProxy) -> Iterator[Clients]:
    cache: dict[tuple[str, bool], Any] = {}

    def client(service: str, *, retries: bool = False) -> Any:
        if (service, retries) not in cache:
            cache[(service, retries)] = boto3.client(
                service,  # type: ignore[call-overload]
                endpoint_url=module_proxy.url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=None if retries else SINGLE,
            )
        return cache[(service, retries)]

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        for name in ("AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
            mp.delenv(name, raising=False)
        yield client


def calls_of(proxy: AwsFaultProxy, operation: str) -> list[dict[str, Any]]:
    return [e for e in proxy.request_log if e["operation"] == operation]


# --------------------------------------------------------------------------- forwarding


def test_s3_put_and_get_through_the_proxy_including_a_2mb_body(
    proxy: AwsFaultProxy, clients: Clients
) -> None:
    s3 = clients("s3")
    s3.create_bucket(Bucket="data")
    big = bytes(range(256)) * 8192  # 2 MiB: botocore sends Expect: 100-continue
    s3.put_object(Bucket="data", Key="in/big.bin", Body=big)
    s3.put_object(Bucket="data", Key="in/small.txt", Body=b"hello")
    assert s3.get_object(Bucket="data", Key="in/big.bin")["Body"].read() == big
    assert s3.get_object(Bucket="data", Key="in/small.txt")["Body"].read() == b"hello"
    assert s3.head_object(Bucket="data", Key="in/big.bin")["ContentLength"] == len(big)
    puts = calls_of(proxy, "PutObject")
    assert [(e["service"], e["resource"], e["status"]) for e in puts] == [
        ("s3", "data/in/big.bin", 200),
        ("s3", "data/in/small.txt", 200),
    ]
    assert proxy.injected == 0


def test_sqs_queue_url_comes_back_through_the_proxy(proxy: AwsFaultProxy, clients: Clients) -> None:
    sqs = clients("sqs")
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    # moto builds queue URLs from the Host header, which the proxy forwards unchanged.
    assert url.startswith(proxy.url + "/")
    sqs.send_message(QueueUrl=url, MessageBody="m1")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in messages] == ["m1"]
    assert [e["resource"] for e in calls_of(proxy, "SendMessage")] == ["work"]


def test_dynamodb_put_item_is_forwarded(proxy: AwsFaultProxy, clients: Clients) -> None:
    ddb = clients("dynamodb")
    ddb.create_table(TableName="files", **KEY_SCHEMA)
    ddb.put_item(TableName="files", Item={"id": {"S": "a"}})
    assert ddb.get_item(TableName="files", Key={"id": {"S": "a"}})["Item"] == {"id": {"S": "a"}}
    entry = calls_of(proxy, "PutItem")[0]
    assert (entry["service"], entry["resource"], entry["region"], entry["status"]) == (
        "dynamodb",
        "files",
        REGION,
        200,
    )


def test_unclassified_requests_pass_untouched_even_with_a_match_all_rule(
    proxy: AwsFaultProxy, moto_url: str
) -> None:
    proxy.add_rule({})
    with urllib.request.urlopen(f"{proxy.url}/moto-api/data.json") as response:
        assert response.status == 200
        json.loads(response.read())
    assert proxy.injected == 0
    assert proxy.request_log[-1]["service"] is None


# --------------------------------------------------------------------------- error rules


def _s3_put(c: Clients) -> None:
    c("s3").put_object(Bucket="any-bucket", Key="k", Body=b"x")


def _sqs_send(c: Clients) -> None:
    c("sqs").send_message(QueueUrl="http://x/123456789012/q", MessageBody="m")


def _ddb_put(c: Clients) -> None:
    c("dynamodb").put_item(TableName="t", Item={"id": {"S": "a"}})


def _sns_publish(c: Clients) -> None:
    c("sns").publish(TopicArn="arn:aws:sns:us-east-1:123456789012:alerts", Message="m")


def _lambda_list(c: Clients) -> None:
    c("lambda").list_functions()


def _events_put(c: Clients) -> None:
    c("events").put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}])


@pytest.mark.parametrize(
    ("service", "operation", "status", "code", "call"),
    [
        ("s3", "PutObject", 503, "SlowDown", _s3_put),
        ("sqs", "SendMessage", 400, "QueueDoesNotExist", _sqs_send),
        ("dynamodb", "PutItem", 400, "ProvisionedThroughputExceededException", _ddb_put),
        ("sns", "Publish", 500, "InternalError", _sns_publish),
        ("lambda", "ListFunctions", 429, "TooManyRequestsException", _lambda_list),
        ("events", "PutEvents", 500, "InternalException", _events_put),
    ],
    ids=["s3-rest-xml", "sqs-json", "dynamodb-json", "sns-query", "lambda-rest-json", "events-json"],
)
def test_error_rule_raises_the_exact_code_and_status(
    proxy: AwsFaultProxy,
    clients: Clients,
    service: str,
    operation: str,
    status: int,
    code: str,
    call: Callable[[Clients], None],
) -> None:
    proxy.add_rule(
        {"service": service, "operation": operation, "error": {"statusCode": status, "code": code}}
    )
    with pytest.raises(ClientError) as raised:
        call(clients)
    error = raised.value.response
    assert error["Error"]["Code"] == code
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error["ResponseMetadata"]["RequestId"]
    assert proxy.injected == 1
    assert [e["status"] for e in calls_of(proxy, operation)] == [status]


def test_default_error_is_503_service_unavailable_and_head_gets_no_body(
    proxy: AwsFaultProxy, clients: Clients
) -> None:
    s3 = clients("s3")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="k", Body=b"x")
    proxy.add_rule({"service": "s3", "operation": "HeadObject"})
    with pytest.raises(ClientError) as raised:
        s3.head_object(Bucket="data", Key="k")
    # HEAD responses have no body; botocore (like for real S3) reports the status as the code.
    assert raised.value.response["Error"]["Code"] == "503"
    assert s3.get_object(Bucket="data", Key="k")["Body"].read() == b"x"  # connection still sound


def test_calls_1_2_fail_then_succeed(proxy: AwsFaultProxy, clients: Clients) -> None:
    sqs = clients("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    proxy.add_rule({"service": "sqs", "operation": "SendMessage", "calls": "1-2"})
    outcomes = []
    for _ in range(4):
        try:
            sqs.send_message(QueueUrl=url, MessageBody="m")
            outcomes.append("ok")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
    assert outcomes == ["ServiceUnavailable", "ServiceUnavailable", "ok", "ok"]
    assert proxy.rule_stats() == [{"matched": 4, "fired": 2}]


def test_default_botocore_retries_recover_from_calls_1_2(proxy: AwsFaultProxy, clients: Clients) -> None:
    ddb = clients("dynamodb", retries=True)  # legacy mode; DynamoDB retries after 50, 100 ms
    ddb.create_table(TableName="files", **KEY_SCHEMA)
    proxy.add_rule({"service": "dynamodb", "operation": "PutItem", "calls": "1-2"})
    response = ddb.put_item(TableName="files", Item={"id": {"S": "a"}})
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert [e["status"] for e in calls_of(proxy, "PutItem")] == [503, 503, 200]


def test_probability_with_a_seed_repeats_the_same_pattern(proxy: AwsFaultProxy, clients: Clients) -> None:
    sqs = clients("sqs")

    def pattern() -> list[bool]:
        out = []
        for _ in range(16):
            try:
                sqs.list_queues()
                out.append(True)
            except ClientError:
                out.append(False)
        return out

    rule = FaultRule(service="sqs", operation="ListQueues", probability=0.5)
    proxy.reseed(7)
    proxy.set_rules([rule])
    first = pattern()
    proxy.reseed(7)
    proxy.set_rules([rule])
    assert pattern() == first
    assert True in first and False in first


def test_resource_matches_a_bucket_glob(proxy: AwsFaultProxy, clients: Clients) -> None:
    s3 = clients("s3")
    for bucket in ("raw-in", "raw-out"):
        s3.create_bucket(Bucket=bucket)
    proxy.add_rule(
        {"service": "s3", "resource": "raw-in/*", "error": {"statusCode": 403, "code": "AccessDenied"}}
    )
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.put_object(Bucket="raw-in", Key="a.csv", Body=b"1")
    s3.put_object(Bucket="raw-out", Key="a.csv", Body=b"1")
    s3.list_objects_v2(Bucket="raw-in")  # resource "raw-in" alone: the glob wants a key


def test_resource_matches_a_queue_name(proxy: AwsFaultProxy, clients: Clients) -> None:
    sqs = clients("sqs")
    orders = sqs.create_queue(QueueName="orders")["QueueUrl"]
    invoices = sqs.create_queue(QueueName="invoices")["QueueUrl"]
    proxy.add_rule({"service": "sqs", "operation": "SendMessage", "resource": "orders"})
    with pytest.raises(ClientError):
        sqs.send_message(QueueUrl=orders, MessageBody="m")
    sqs.send_message(QueueUrl=invoices, MessageBody="m")


def test_latency_rule_delays_and_forwards(proxy: AwsFaultProxy, clients: Clients) -> None:
    sqs = clients("sqs")
    url = sqs.create_queue(QueueName="slow")["QueueUrl"]
    proxy.add_rule({"service": "sqs", "operation": "SendMessage", "latency": 150})
    started = time.monotonic()
    sqs.send_message(QueueUrl=url, MessageBody="m")
    assert time.monotonic() - started >= 0.15
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "m"
    entry = calls_of(proxy, "SendMessage")[0]
    assert (entry["latency_ms"], entry["fault"], entry["status"]) == (150, None, 200)
    assert (proxy.injected, proxy.delayed) == (0, 1)


def test_latency_rule_then_error_rule_both_apply(proxy: AwsFaultProxy, clients: Clients) -> None:
    proxy.set_rules(
        [
            {"service": "sqs", "latency": 100},
            {
                "service": "sqs",
                "operation": "ListQueues",
                "error": {"statusCode": 500, "code": "InternalError"},
            },
        ]
    )
    started = time.monotonic()
    with pytest.raises(ClientError, match="InternalError"):
        clients("sqs").list_queues()
    assert time.monotonic() - started >= 0.1
    assert proxy.request_log[-1]["fault"] == "rule 1: 500 InternalError"


def test_upstream_down_gives_502(moto_url: str, clients: Clients) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with AwsFaultProxy(dead) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        conn.request("GET", "/", headers={"Authorization": auth("s3")})
        assert conn.getresponse().status == 502
        assert proxy.request_log[-1]["status"] == 502


# --------------------------------------------------------------------------- wire level


def test_chunked_request_body_is_forwarded(proxy: AwsFaultProxy, clients: Clients) -> None:
    clients("s3").create_bucket(Bucket="chunks")
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    pieces = [b"a" * 70_000, b"b" * 10, b"c" * 3]
    conn.request(
        "PUT",
        "/chunks/obj",
        body=iter(pieces),
        headers={"Authorization": auth("s3"), "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    assert clients("s3").get_object(Bucket="chunks", Key="obj")["Body"].read() == b"".join(pieces)
    assert calls_of(proxy, "PutObject")[0]["resource"] == "chunks/obj"


def _raw_put(port: int, *, path: str, body: bytes) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {auth('s3')}\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock, sock.recv(65536)


def test_expect_100_continue_then_body(proxy: AwsFaultProxy, clients: Clients) -> None:
    clients("s3").create_bucket(Bucket="expect")
    sock, first = _raw_put(proxy.port, path="/expect/obj", body=b"payload")
    with sock:
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"payload")
        final = first[len(b"HTTP/1.1 100 Continue\r\n\r\n") :] or sock.recv(65536)
        assert final.startswith(b"HTTP/1.1 200")
    assert clients("s3").get_object(Bucket="expect", Key="obj")["Body"].read() == b"payload"


def test_faulted_upload_is_refused_before_its_body(proxy: AwsFaultProxy) -> None:
    proxy.add_rule({"service": "s3", "operation": "PutObject"})
    sock, first = _raw_put(proxy.port, path="/expect/obj", body=b"payload")
    with sock:
        assert first.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"Connection: close" in first
        assert b"<Code>ServiceUnavailable</Code>" in first


# --------------------------------------------------------------------------- classifier


S3 = {"Authorization": auth("s3")}


@pytest.mark.parametrize(
    ("method", "target", "headers", "body", "expected"),
    [
        ("GET", "/bkt/dir/file.csv", S3, b"", ("s3", "GetObject", "bkt/dir/file.csv")),
        ("GET", "/bkt?list-type=2&prefix=a", S3, b"", ("s3", "ListObjectsV2", "bkt")),
        ("GET", "/bkt", S3, b"", ("s3", "ListObjects", "bkt")),
        ("GET", "/bkt/dir/file.csv?tagging", S3, b"", ("s3", "GetObjectTagging", "bkt/dir/file.csv")),
        ("POST", "/bkt?delete", S3, b"<Delete/>", ("s3", "DeleteObjects", "bkt")),
        ("DELETE", "/bkt/k", S3, b"", ("s3", "DeleteObject", "bkt/k")),
        ("PUT", "/bkt/k", S3, b"x", ("s3", "PutObject", "bkt/k")),
        ("PUT", "/bkt/k", {**S3, "x-amz-copy-source": "src/k"}, b"", ("s3", "CopyObject", "bkt/k")),
        ("PUT", "/bkt/k?partNumber=1&uploadId=u", S3, b"x", ("s3", "UploadPart", "bkt/k")),
        ("POST", "/bkt/k?uploads", S3, b"", ("s3", "CreateMultipartUpload", "bkt/k")),
        ("PUT", "/bkt", S3, b"", ("s3", "CreateBucket", "bkt")),
        ("HEAD", "/bkt/", S3, b"", ("s3", "HeadBucket", "bkt")),
        ("GET", "/", S3, b"", ("s3", "ListBuckets", None)),
        (
            "GET",
            "/k?x-id=GetObject",
            {**S3, "Host": "bkt.s3.us-east-1.amazonaws.com"},
            b"",
            ("s3", "GetObject", "bkt/k"),
        ),
        ("GET", "/", {**S3, "Host": "bkt.localhost:4566"}, b"", ("s3", "ListObjects", "bkt")),
        (
            "GET",
            "/bkt/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260101%2Feu-west-1%2Fs3%2Faws4_request",
            {},
            b"",
            ("s3", "GetObject", "bkt/k"),
        ),
        (
            "POST",
            "/2015-03-31/functions/refiner/invocations",
            {"Authorization": auth("lambda")},
            b"{}",
            ("lambda", "Invoke", "refiner"),
        ),
        (
            "GET",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af",
            {"Authorization": auth("lambda")},
            b"",
            ("lambda", "GetFunction", "arn:aws:lambda:us-east-1:1:function:f"),
        ),
        (
            "POST",
            "/schedules/nightly",
            {"Authorization": auth("scheduler")},
            b"{}",
            ("scheduler", "CreateSchedule", "nightly"),
        ),
        (
            "GET",
            "/schedules",
            {"Authorization": auth("scheduler")},
            b"",
            ("scheduler", "ListSchedules", None),
        ),
        ("POST", "/v1/pipes/p1", {"Authorization": auth("pipes")}, b"{}", ("pipes", "CreatePipe", "p1")),
        (
            "POST",
            "/",
            {"Authorization": auth("sqs"), "X-Amz-Target": "AmazonSQS.SendMessage"},
            b'{"QueueUrl": "http://127.0.0.1:1/000000000000/work", "MessageBody": "m"}',
            ("sqs", "SendMessage", "work"),
        ),
        (
            "POST",
            "/",
            {"Authorization": auth("sqs"), "Content-Type": "application/x-www-form-urlencoded"},
            b"Action=SendMessage&QueueUrl=http%3A%2F%2Fh%2F0%2Fwork&MessageBody=m",
            ("sqs", "SendMessage", "work"),
        ),
        (
            "POST",
            "/",
            {"Authorization": auth("dynamodb"), "X-Amz-Target": "DynamoDB_20120810.BatchWriteItem"},
            b'{"RequestItems": {"a": [], "b": []}}',
            ("dynamodb", "BatchWriteItem", "a,b"),
        ),
        (
            "POST",
            "/",
            {"Authorization": auth("dynamodb"), "X-Amz-Target": "DynamoDBStreams_20120810.GetRecords"},
            b'{"ShardIterator": "x"}',
            ("dynamodbstreams", "GetRecords", None),
        ),
        (
            "POST",
            "/",
            {"Authorization": auth("events"), "X-Amz-Target": "AWSEvents.PutEvents"},
            b'{"Entries": [{"Detail": "{}", "EventBusName": "pipeline"}, {"Detail": "{}"}]}',
            ("events", "PutEvents", "pipeline,default"),
        ),
        (
            "POST",
            "/",
            {"Authorization": auth("sns"), "Content-Type": "application/x-www-form-urlencoded"},
            b"Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3Aalerts&Message=m",
            ("sns", "Publish", "arn:aws:sns:us-east-1:1:alerts"),
        ),
        (
            "POST",
            "/",
            {"Authorization": auth("ec2"), "Content-Type": "application/x-www-form-urlencoded"},
            b"Action=TerminateInstances&InstanceId.1=i-123&Version=2016-11-15",
            ("ec2", "TerminateInstances", "i-123"),
        ),
        (
            "POST",
            "/",
            {
                "Authorization": auth("monitoring"),
                "Content-Type": "application/x-www-form-urlencoded",
                "Content-Encoding": "gzip",
            },
            gzip.compress(
                b"Action=PutMetricData&Namespace=pipeline", mtime=0
            ),  # mtime=0: stable ids for xdist
            ("cloudwatch", "PutMetricData", None),
        ),
        (
            "POST",
            "/service/GraniteServiceVersion20100801/operation/PutMetricData",
            {"Authorization": auth("monitoring"), "smithy-protocol": "rpc-v2-cbor"},
            b"\xa0",
            ("cloudwatch", "PutMetricData", None),
        ),
    ],
)
def test_classifier(
    method: str, target: str, headers: dict[str, str], body: bytes, expected: tuple[str, str, str | None]
) -> None:
    call = classify_request(method, target, headers, body)
    assert call is not None
    assert (call.service, call.operation, call.resource) == expected


def test_classifier_reads_the_region_and_leaves_unsigned_and_internal_requests_alone() -> None:
    call = classify_request("GET", "/bkt/k", {"Authorization": auth("s3", "eu-central-1")})
    assert call is not None and call.region == "eu-central-1"
    assert classify_request("GET", "/bkt/k", {}) is None
    assert classify_request("GET", "/_localstack/health", S3) is None
    assert classify_request("POST", "/moto-api/reset", S3) is None


@pytest.mark.parametrize(
    ("protocol", "service", "query_compatible"),
    [
        ("json", "dynamodb", False),
        ("json", "sqs", True),
        ("query", "sns", False),
        ("ec2", "ec2", False),
        ("rest-xml", "s3", False),
        ("rest-json", "lambda", False),
        ("smithy-rpc-v2-cbor", "cloudwatch", True),
    ],
)
def test_rendered_errors_parse_with_botocore(protocol: str, service: str, query_compatible: bool) -> None:
    call = AwsCall("POST", "/", {}, service, service, REGION, protocol, query_compatible=query_compatible)
    error = ErrorSpec.model_validate(
        {"statusCode": 429, "code": "ThrottlingException", "message": "slow <down>"}
    )
    headers, body = render_error(call, error, "req-1")
    parsed = create_parser(protocol).parse(
        {"status_code": 429, "headers": {k.lower(): v for k, v in headers}, "body": body}, None
    )
    assert parsed["Error"]["Code"] == "ThrottlingException"
    assert parsed["Error"]["Message"] == "slow <down>"
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"


# --------------------------------------------------------------------------- rules and lifecycle


def test_rule_accepts_localstack_shape_and_aliases() -> None:
    rule = FaultRule.model_validate(
        {"service": "monitoring", "operation": "put_metric_data", "latency": 20, "calls": 3}
    )
    assert (rule.service, rule.operation, rule.latency_ms, rule.calls) == (
        "cloudwatch",
        "PutMetricData",
        20,
        "3",
    )
    assert not rule.fails
    error = FaultRule.model_validate({"error": {"statusCode": 500, "code": "InternalError"}}).effective_error
    assert (error.status_code, error.code) == (500, "InternalError")
    assert FaultRule().effective_error.status_code == 503
    assert [FaultRule(calls="2-3,5-").selects(n) for n in range(1, 7)] == [
        False,
        True,
        True,
        False,
        True,
        True,
    ]
    assert FaultRule(calls=[1, 3]).selects(3) and not FaultRule(calls=[1, 3]).selects(2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"probability": 1.5}, "probability must be between 0 and 1"),
        ({"calls": "2-1"}, "ends before it starts"),
        ({"calls": "first"}, "cannot read 'first'"),
        ({"calls": [0]}, "call numbers start at 1"),
        ({"error": {"statusCode": 200}}, "4xx or 5xx"),
        ({"error": {"code": "two words"}}, "AWS error code"),
        ({"latency": -1}, "latency must be >= 0"),
        ({"service": "dynamo"}, "unknown service 'dynamo'"),
        ({"service": "s3", "operation": "PutObjekt"}, "has no operation 'PutObjekt'"),
        ({"servce": "s3"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_rules_are_rejected_clearly(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FaultRule.model_validate(data)


def test_a_taken_port_gives_a_clear_error(module_proxy: AwsFaultProxy) -> None:
    with pytest.raises(PortInUseError, match=f"port {module_proxy.port} .*already in use"):
        AwsFaultProxy("http://127.0.0.1:1", port=module_proxy.port).start()


def test_dump_log_writes_jsonl(proxy: AwsFaultProxy, clients: Clients, tmp_path: Path) -> None:
    clients("sqs").list_queues()
    path = proxy.dump_log(tmp_path / "proxy.jsonl")
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert entries[-1]["operation"] == "ListQueues"
    assert set(entries[-1]) >= {"time", "service", "operation", "resource", "region", "status", "fault"}


#: Operations whose requests are identical on the wire to another's (deprecated twins, and
#: S3 Express's ListDirectoryBuckets, which differs only in its endpoint).
WIRE_TWINS = {
    "GetBucketLifecycle",
    "PutBucketLifecycle",
    "GetBucketNotification",
    "PutBucketNotification",
    "ListDirectoryBuckets",
}


def _sample(shape: Any, depth: int = 0) -> Any:
    """A value botocore will serialize for `shape`: required members only."""
    kind = shape.type_name
    if kind == "structure":
        return {m: _sample(shape.members[m], depth + 1) for m in shape.required_members} if depth < 6 else {}
    if kind == "list":
        return [_sample(shape.member, depth + 1)] if depth < 6 else []
    return {
        "map": {},
        "string": shape.enum[0] if shape.enum else "name-1",
        "integer": 1,
        "long": 1,
        "float": 1.0,
        "double": 1.0,
        "boolean": True,
        "blob": b"x",
        "timestamp": 0,
    }.get(kind)


@pytest.mark.parametrize("service", ["s3", "lambda", "scheduler", "pipes"])
def test_every_rest_operation_botocore_serializes_is_classified_back(service: str) -> None:
    from urllib.parse import urlencode

    import botocore.session
    from botocore.serialize import create_serializer

    model = botocore.session.get_session().get_service_model(service)
    serializer = create_serializer(model.protocol)
    checked, wrong = 0, []
    for name in model.operation_names:
        operation = model.operation_model(name)
        try:
            request = serializer.serialize_to_request(_sample(operation.input_shape) or {}, operation)
        except Exception:  # a sample value breaks a pattern or length limit: not our concern
            continue
        query = urlencode(request["query_string"], doseq=True)
        target = request["url_path"] + (("&" if "?" in request["url_path"] else "?") + query if query else "")
        headers = {**request["headers"], "Authorization": auth(model.signing_name)}
        call = classify_request(request["method"], target, headers)
        checked += 1
        if call is None or (call.operation != name and name not in WIRE_TWINS):
            wrong.append((name, call.operation if call else None, request["method"], target))
    assert wrong == []
    assert checked >= len(model.operation_names) * 0.8
