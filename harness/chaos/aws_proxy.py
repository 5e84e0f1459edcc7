"""An HTTP proxy in front of the AWS emulator that injects API faults by rule.

Every AWS SDK client of the pipeline (boto3 in Lambda workers, ECS tasks, EC2 workers) gets
the proxy's URL as its endpoint; the proxy forwards each request to the emulator (moto server
or LocalStack) and, when a rule matches, answers with an AWS error instead, delays the call,
or both. It is the single interception point, so the same rules work on both emulators.

Rules
-----
A rule has the shape of LocalStack's Chaos API fault rules, so rules carry over::

    {"service": "s3", "operation": "PutObject", "region": "us-east-1", "probability": 0.5,
     "error": {"statusCode": 503, "code": "ServiceUnavailable"}}

Every field is optional and a missing one matches everything. An absent `error` means 503
ServiceUnavailable. Extensions: `resource` (substring, or fnmatch glob when it contains
`*?[`, of a resource the call targets, see below), `calls` (which matching calls fail,
counted per rule from 1: "1-2", "3", "3-", "1,4-5", [1, 3] or "all"; later calls pass) and
`latency` (ms; LocalStack keeps latency in separate "effects"). A rule with `latency` and no
`error` only delays; one with both delays, then fails.

Rules are evaluated in order, as LocalStack does. A rule *matches* a call when service,
operation, region and resource match; each match bumps that rule's call counter; it *fires*
when the counter is selected by `calls` and the probability draw (from the proxy's seeded
`random.Random`, drawn only for 0 < p < 1) succeeds. A firing latency-only rule adds its
delay and evaluation goes on; the first firing error rule answers the call and ends it.

`service` is the boto3 client name (`s3`, `sqs`, `dynamodb`, `dynamodbstreams`, `lambda`,
`events`, `cloudwatch`, ...); SigV4 signing names (`monitoring`, `states`, `email`) are
accepted and normalised. `operation` is the API name (`PutObject`; `put_object` also works).

Classification
--------------
- service and region: the SigV4 credential scope (`Authorization` header, or
  `X-Amz-Credential` of a presigned URL). The signing name maps to the botocore model
  (`monitoring` -> cloudwatch; signing name `dynamodb` with target `DynamoDBStreams_*` ->
  dynamodbstreams).
- operation: `X-Amz-Target` (json protocols), `Action=` in the query string or form body
  (query and ec2 protocols; gzip-encoded bodies are decoded), the path of smithy-rpc-v2-cbor,
  and for rest-xml / rest-json (S3, Lambda, Scheduler, Pipes) method + path + query matched
  against the botocore model's `http.requestUri` templates. The most specific template wins:
  more literal path segments, then more required query keys (`?tagging`, `?list-type=2`) and
  required header / querystring members (`x-amz-copy-source` tells CopyObject from PutObject,
  `uploadId` UploadPart from PutObject), then fewer greedy `{Key+}` variables, then not
  deprecated (GetBucketLifecycleConfiguration over GetBucketLifecycle). An `x-id`
  query parameter (sent by some SDKs) names the operation outright. S3 virtual-hosted
  addressing (`bucket.localhost`, `bucket.s3.<region>.amazonaws.com`) is folded into the path.
- resource: for REST protocols the template's path variables joined by "/" (S3 `bucket` or
  `bucket/key`, Lambda FunctionName, Scheduler / Pipes Name); for json and query protocols
  the request parameters QueueUrl (reduced to the queue name), QueueName, TableName,
  FunctionName, TopicArn, TargetArn, SecretId, StreamArn, Name, Rule, EventBusName,
  logGroupName, AlarmName, cluster, ResourceArn and InstanceId.1, plus the tables of
  BatchWriteItem / BatchGetItem / TransactWriteItems / TransactGetItems and the buses of
  PutEvents entries ("default" when unnamed). A call may have several; a rule needs one.
  Not extracted: resources in REST query strings or bodies, and anything in CBOR bodies.
- Unsigned requests and the emulators' own endpoints (`/_localstack/...`, `/_aws/...`,
  `/moto-api/...`) are forwarded untouched and never faulted.

Injected errors are written in the protocol the client speaks (json, query, ec2, rest-xml,
rest-json, smithy-rpc-v2-cbor; from the request's shape, else the botocore model), with
`x-amzn-RequestId`, so boto3 raises ClientError with the rule's code and HTTP status.

botocore retries: in its default legacy mode botocore retries 5xx, throttling and a few
other errors, up to 5 attempts in all (DynamoDB 10, from a 50 ms delay; everything else waits
up to 1 s, 2 s, ...); standard mode makes 3 attempts. That is real AWS SDK behaviour, and it
is what makes "calls 1-2 fail, then succeed" recoverable with no application code; the
request log shows every attempt. To see single attempts use
`Config(retries={"total_max_attempts": 1})`: `max_attempts` counts retries, so
`{"max_attempts": 1}` still makes 2 attempts.

Forwarding
----------
Headers go upstream unchanged, the client's Host included: SigV4 signed it, and moto builds
SQS queue URLs from it, so URLs it returns point back at the proxy. LocalStack with
`SQS_ENDPOINT_STRATEGY=off` (as the harness runs it) builds them from `LOCALSTACK_HOST`
instead, so its queue URLs name the emulator; SDK calls still go through the proxy because
botocore sends a request to the client's endpoint URL, never to the QueueUrl. `Expect:
100-continue` (botocore's S3 uploads) is answered by the proxy, which can then fail a call
before the body is sent, and is not forwarded. Bodies are streamed both ways except json and
query bodies, which are read whole to classify the call. Each client connection keeps its own
keep-alive connection to the emulator.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import gzip
import http.client
import json
import logging
import random
import re
import select
import socket
import socketserver
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape as xml_escape

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.errors import PortInUseError, ServiceStartError

COMPONENT = "aws-proxy"
LOG = logging.getLogger("harness.chaos.aws_proxy")
#: Bytes per read when streaming bodies.
CHUNK = 64 * 1024
#: Responses up to this size are sent with their head in one write.
SMALL_RESPONSE = 256 * 1024
#: json / query bodies larger than this are streamed and their resources not extracted.
MAX_CLASSIFIED_BODY = 8 * 1024 * 1024
LOG_SIZE = 10_000
#: Paths that belong to the emulators themselves, not to an AWS API.
INTERNAL_PREFIXES = ("/_localstack", "/_aws/", "/moto-api")
DEFAULT_MESSAGE = "Fault injected by the pipeline-harness AWS proxy"
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: SigV4 signing name (or common alias) -> botocore model name, where they differ.
SERVICE_ALIASES = {
    "monitoring": "cloudwatch",
    "states": "stepfunctions",
    "email": "ses",
    "eventbridge": "events",
    "cloudwatchevents": "events",
    "cloudwatchlogs": "logs",
    "streams.dynamodb": "dynamodbstreams",
}
#: X-Amz-Target prefixes of models that share another model's signing name.
TARGET_PREFIX_MODELS = {"DynamoDBStreams_20120810": "dynamodbstreams"}
RESOURCE_KEYS = (
    "QueueUrl",
    "QueueName",
    "TableName",
    "FunctionName",
    "TopicArn",
    "TargetArn",
    "SecretId",
    "StreamArn",
    "Name",
    "Rule",
    "EventBusName",
    "logGroupName",
    "LogGroupName",
    "AlarmName",
    "cluster",
    "ResourceArn",
    "InstanceId.1",
)
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")
_CALLS_PART = re.compile(r"^(\d+)(?:-(\d*))?$")
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.:#-]+$")


# --------------------------------------------------------------------------- rules


def normalise_service(name: str) -> str:
    """The botocore model name for a boto3 client name or SigV4 signing name."""
    key = name.strip().lower()
    return SERVICE_ALIASES.get(key, key)


@lru_cache(maxsize=1)
def _known_services() -> frozenset[str]:
    return frozenset(_loader().list_available_services("service-2"))


def parse_calls(spec: str | Sequence[int] | None) -> list[tuple[int, int | None]] | None:
    """Inclusive ranges of call numbers (`None` end = open); None means every call."""
    if spec is None:
        return None
    if not isinstance(spec, str):
        numbers = list(spec)
        if not numbers:
            raise ValueError("calls: the list is empty")
        if any(n < 1 for n in numbers):
            raise ValueError(f"calls: call numbers start at 1, got {numbers}")
        return [(n, n) for n in numbers]
    text = spec.strip().lower()
    if text in ("all", "*"):
        return None
    ranges: list[tuple[int, int | None]] = []
    for part in text.split(","):
        found = _CALLS_PART.match(part.strip())
        if not found:
            raise ValueError(f'calls: cannot read {spec!r}; use "3", "1-2", "3-", "1,4-5", a list or "all"')
        start = int(found.group(1))
        end: int | None = (
            start if found.group(2) is None else (int(found.group(2)) if found.group(2) else None)
        )
        if start < 1:
            raise ValueError(f"calls: call numbers start at 1, got {spec!r}")
        if end is not None and end < start:
            raise ValueError(f"calls: range {part.strip()!r} ends before it starts")
        ranges.append((start, end))
    return ranges


class ErrorSpec(BaseModel):
    """The error a firing rule answers with (LocalStack: `{"statusCode": 503, "code": ...}`)."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)

    status_code: int = Field(default=503, alias="statusCode")
    code: str = "ServiceUnavailable"
    message: str | None = None

    @field_validator("status_code")
    @classmethod
    def _error_status(cls, value: int) -> int:
        if not 400 <= value <= 599:
            raise ValueError(f"statusCode must be a 4xx or 5xx HTTP status, got {value}")
        return value

    @field_validator("code")
    @classmethod
    def _code_token(cls, value: str) -> str:
        # It goes into x-amzn-ErrorType and x-amzn-query-error headers as is.
        if not _ERROR_CODE.match(value):
            raise ValueError(f"code must be an AWS error code such as ThrottlingException, got {value!r}")
        return value


class FaultRule(BaseModel):
    """One fault rule; see the module docstring for matching and firing."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)

    service: str | None = None
    operation: str | None = None
    region: str | None = None
    resource: str | None = None
    probability: float = 1.0
    calls: str | list[int] | None = None
    error: ErrorSpec | None = None
    latency_ms: float | None = Field(default=None, alias="latency")

    @field_validator("service")
    @classmethod
    def _service_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = normalise_service(value)
        if name not in _known_services():
            raise ValueError(
                f"unknown service {value!r}: use a boto3 client name (s3, sqs, dynamodb, lambda, "
                "events, ...) or a SigV4 signing name (monitoring, states, ...)"
            )
        return name

    @field_validator("probability")
    @classmethod
    def _probability_range(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"probability must be between 0 and 1, got {value}")
        return value

    @field_validator("calls", mode="before")
    @classmethod
    def _calls_spec(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # YAML `calls: 3`
        if isinstance(value, (str, list)):
            parse_calls(value)
        return value

    @field_validator("latency_ms")
    @classmethod
    def _latency_range(cls, value: float | None) -> float | None:
        if value is not None and value < 0:
            raise ValueError(f"latency must be >= 0 ms, got {value}")
        return value

    @model_validator(mode="after")
    def _operation_exists(self) -> FaultRule:
        if self.service and self.operation:
            model = service_model(self.service)
            if model is not None:
                canonical = _canonical_operation(model, self.operation)
                if canonical is None:
                    raise ValueError(f"service {self.service!r} has no operation {self.operation!r}")
                self.operation = canonical  # `put_object` -> `PutObject`
        return self

    @property
    def fails(self) -> bool:
        """False for a latency-only rule."""
        return self.error is not None or self.latency_ms is None

    @property
    def effective_error(self) -> ErrorSpec:
        return self.error or ErrorSpec()

    def selects(self, call_number: int) -> bool:
        ranges = parse_calls(self.calls)
        if ranges is None:
            return True
        return any(start <= call_number and (end is None or call_number <= end) for start, end in ranges)

    def matches(self, call: AwsCall) -> bool:
        if self.service is not None and self.service != call.service:
            return False
        if self.region is not None and self.region != call.region:
            return False
        if self.operation is not None and not _same_operation(self.operation, call.operation):
            return False
        if self.resource is not None:
            return any(_resource_matches(self.resource, r) for r in call.resources)
        return True


def _same_operation(wanted: str, operation: str | None) -> bool:
    if operation is None:
        return False
    return wanted == operation or wanted == _snake(operation)


def _snake(name: str) -> str:
    from botocore import xform_name

    return str(xform_name(name))


def _resource_matches(pattern: str, resource: str) -> bool:
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(resource, pattern)
    return pattern in resource


def _canonical_operation(model: ServiceModel, name: str) -> str | None:
    if name in model.operations:
        return name
    for operation in model.operations:
        if _snake(operation) == name:
            return operation
    return None


def as_rule(rule: FaultRule | Mapping[str, Any]) -> FaultRule:
    return rule if isinstance(rule, FaultRule) else FaultRule.model_validate(dict(rule))


# --------------------------------------------------------------------------- service models


@lru_cache(maxsize=1)
def _loader() -> Any:
    from botocore.loaders import create_loader

    return create_loader()


@dataclass(frozen=True)
class Route:
    """One REST operation's `http.method` + `http.requestUri`, compiled."""

    operation: str
    method: str
    pattern: re.Pattern[str]
    query_literals: tuple[tuple[str, str | None], ...]
    required_query: tuple[str, ...]
    required_headers: tuple[str, ...]
    literal_segments: int
    greedy: int
    #: Deprecated operations share templates with their successors (GetBucketLifecycle).
    deprecated: bool

    def score(
        self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str]
    ) -> tuple[tuple[int, int, int, int], tuple[str, ...]] | None:
        if method != self.method:
            return None
        found = self.pattern.match(path)
        if found is None:
            return None
        for key, value in self.query_literals:
            if key not in query or (value is not None and value not in query[key]):
                return None
        if any(key not in query for key in self.required_query):
            return None
        if any(name not in headers for name in self.required_headers):
            return None
        keys = len(self.query_literals) + len(self.required_query) + len(self.required_headers)
        values = tuple(unquote(v) for v in found.groups())
        return (self.literal_segments, keys, -self.greedy, int(not self.deprecated)), values


@dataclass(frozen=True)
class ServiceModel:
    """What the proxy needs of one botocore service model."""

    name: str
    protocol: str
    json_version: str
    target_prefix: str | None
    query_compatible: bool
    operations: frozenset[str]
    routes: tuple[Route, ...]


def _compile_route(name: str, op: Mapping[str, Any], shapes: Mapping[str, Any]) -> Route:
    http_spec = op["http"]
    path, _, query = str(http_spec["requestUri"]).partition("?")
    parts: list[str] = []
    literal = greedy = 0
    for segment in path.strip("/").split("/") if path.strip("/") else []:
        if "{" not in segment:
            literal += 1
            parts.append(re.escape(segment))
            continue
        pieces = re.split(r"(\{[^}]+\})", segment)
        regex = ""
        for piece in pieces:
            if piece.startswith("{") and piece.endswith("+}"):
                greedy += 1
                regex += "(.+)"
            elif piece.startswith("{"):
                regex += "([^/]+)"
            else:
                regex += re.escape(piece)
        parts.append(regex)
    body = "/" + "/".join(parts)
    tail = "" if path.endswith("+}") else "/?"
    pattern = re.compile("^" + (body if parts else "/") + (tail if parts else "") + "$")
    literals: list[tuple[str, str | None]] = []
    for item in filter(None, query.split("&")):
        key, sep, value = item.partition("=")
        if key != "x-id":  # only some SDKs send it; handled as a shortcut instead
            literals.append((key, value if sep else None))
    required_query: list[str] = []
    required_headers: list[str] = []
    input_shape = shapes.get(op.get("input", {}).get("shape", ""), {})
    for member in input_shape.get("required", []):
        spec = input_shape.get("members", {}).get(member, {})
        location = spec.get("location")
        if location == "querystring":
            required_query.append(spec.get("locationName", member))
        elif location == "header":
            required_headers.append(spec.get("locationName", member).lower())
    return Route(
        name,
        str(http_spec["method"]).upper(),
        pattern,
        tuple(literals),
        tuple(required_query),
        tuple(required_headers),
        literal,
        greedy,
        bool(op.get("deprecated", False)),
    )


_MODEL_LOCK = threading.Lock()


@cache
def _load_model(name: str) -> ServiceModel | None:
    from botocore.exceptions import DataNotFoundError, UnknownServiceError

    try:
        with _MODEL_LOCK:
            data = _loader().load_service_model(name, "service-2")
    except (DataNotFoundError, UnknownServiceError):
        return None
    metadata = data["metadata"]
    protocol = str(metadata["protocol"])
    operations = data.get("operations", {})
    routes: tuple[Route, ...] = ()
    if protocol in ("rest-xml", "rest-json"):
        shapes = data.get("shapes", {})
        routes = tuple(_compile_route(op_name, op, shapes) for op_name, op in operations.items())
    return ServiceModel(
        name=name,
        protocol=protocol,
        json_version=str(metadata.get("jsonVersion", "1.0")),
        target_prefix=metadata.get("targetPrefix"),
        query_compatible="awsQueryCompatible" in metadata,
        operations=frozenset(operations),
        routes=routes,
    )


def service_model(name: str) -> ServiceModel | None:
    """The cached model of a botocore service, or None when botocore does not know it."""
    return _load_model(normalise_service(name))


# --------------------------------------------------------------------------- classification


@dataclass
class AwsCall:
    """What the proxy knows about one request."""

    method: str
    path: str
    query: dict[str, list[str]]
    service: str
    signing_name: str
    region: str | None
    protocol: str | None
    operation: str | None = None
    resources: tuple[str, ...] = ()
    json_version: str = "1.0"
    query_compatible: bool = False
    #: The body must be read before the call can be fully classified.
    needs_body: bool = False

    @property
    def resource(self) -> str | None:
        return ",".join(self.resources) if self.resources else None


def _credential_scope(headers: Mapping[str, str], query: Mapping[str, list[str]]) -> tuple[str, str] | None:
    """(region, signing name) from SigV4 Authorization or a presigned URL."""
    source = headers.get("authorization", "")
    if not source and "X-Amz-Credential" in query:
        source = "Credential=" + query["X-Amz-Credential"][0]
    found = _CREDENTIAL.search(source)
    return (found.group(3), found.group(4)) if found else None


def _virtual_host_bucket(host: str) -> str | None:
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else ""
    if not hostname or hostname == "localhost" or re.fullmatch(r"[\d.]+", hostname):
        return None
    if ".s3." in hostname or ".s3-" in hostname:
        bucket = re.split(r"\.s3[.-]", hostname, maxsplit=1)[0]
        return bucket or None
    if hostname.endswith(".localhost"):
        return hostname[: -len(".localhost")] or None
    return None


def identify(method: str, target: str, headers: Mapping[str, str]) -> AwsCall | None:
    """Classify a request from its line and headers (header names lower-case).

    None for requests the proxy must not touch: unsigned, or the emulator's own endpoints.
    """
    split = urlsplit(target)
    path = split.path or "/"
    if path.startswith(INTERNAL_PREFIXES):
        return None
    query = parse_qs(split.query, keep_blank_values=True)
    scope = _credential_scope(headers, query)
    if scope is None:
        return None
    region, signing_name = scope
    amz_target = headers.get("x-amz-target")
    name = normalise_service(signing_name)
    if amz_target:
        name = TARGET_PREFIX_MODELS.get(amz_target.rsplit(".", 1)[0], name)
    model = service_model(name)
    call = AwsCall(method.upper(), path, query, name, signing_name, region, model.protocol if model else None)
    if model is not None:
        call.json_version = model.json_version
        call.query_compatible = model.query_compatible
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if headers.get("smithy-protocol", "").lower() == "rpc-v2-cbor":
        call.protocol = "smithy-rpc-v2-cbor"
        found = re.match(r"^/service/[^/]+/operation/([^/]+)$", path)
        call.operation = found.group(1) if found else None
    elif amz_target:
        call.protocol = "json"
        call.operation = amz_target.rsplit(".", 1)[-1]
        if content_type.startswith("application/x-amz-json-"):
            call.json_version = content_type.rsplit("-", 1)[-1]
        call.needs_body = True
    elif ("Action" in query or content_type == "application/x-www-form-urlencoded") and (
        model is None or model.protocol in ("query", "ec2") or model.query_compatible
    ):
        call.protocol = "ec2" if call.protocol == "ec2" else "query"
        call.operation = query["Action"][0] if "Action" in query else None
        call.needs_body = True  # the Action, and the resources, are usually in the form
    elif model is not None and model.routes:
        _match_route(call, model, headers)
    return call


def _match_route(call: AwsCall, model: ServiceModel, headers: Mapping[str, str]) -> None:
    path = call.path
    if model.name == "s3":
        bucket = _virtual_host_bucket(headers.get("host", ""))
        if bucket:
            path = "/" + bucket + (path if path != "/" else "")
    x_id = call.query.get("x-id", [""])[0]
    best: tuple[tuple[int, int, int, int], tuple[str, ...], str] | None = None
    for route in model.routes:
        scored = route.score(call.method, path, call.query, headers)
        if scored is None:
            continue
        if route.operation == x_id:
            best = ((1_000, 0, 0, 0), scored[1], route.operation)
            break
        if best is None or scored[0] > best[0]:
            best = (scored[0], scored[1], route.operation)
    if best is not None:
        call.operation = best[2]
        values = [v for v in best[1] if v]
        if values:
            call.resources = ("/".join(values),)


def refine(call: AwsCall, body: bytes, headers: Mapping[str, str]) -> None:
    """Complete a json / query call from its body: the Action, and the resources."""
    if headers.get("content-encoding", "").lower() == "gzip":
        with contextlib.suppress(OSError, EOFError):
            body = gzip.decompress(body)
    params: dict[str, Any] = {}
    if call.protocol == "json":
        with contextlib.suppress(ValueError):
            loaded = json.loads(body or b"{}")
            if isinstance(loaded, dict):
                params = loaded
    elif call.protocol in ("query", "ec2"):
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        params = {k: v[0] for k, v in {**form, **call.query}.items()}
        if call.operation is None and isinstance(params.get("Action"), str):
            call.operation = params["Action"]
    call.resources = tuple(dict.fromkeys(_resources(params)))


def _resources(params: Mapping[str, Any]) -> Iterator[str]:
    for key in RESOURCE_KEYS:
        value = params.get(key)
        if isinstance(value, str) and value:
            yield value.rstrip("/").rsplit("/", 1)[-1] if key == "QueueUrl" else value
    items = params.get("RequestItems")  # BatchWriteItem, BatchGetItem: keyed by table
    if isinstance(items, dict):
        yield from (str(k) for k in items)
    transact = params.get("TransactItems")
    if isinstance(transact, list):
        for item in transact:
            for action in item.values() if isinstance(item, dict) else ():
                if isinstance(action, dict) and isinstance(action.get("TableName"), str):
                    yield action["TableName"]
    entries = params.get("Entries")
    if isinstance(entries, list) and entries and all(isinstance(e, dict) and "Detail" in e for e in entries):
        for entry in entries:
            yield str(entry.get("EventBusName") or "default")


def classify_request(
    method: str, target: str, headers: Mapping[str, str], body: bytes = b""
) -> AwsCall | None:
    """Classify a whole request the way the proxy does (header names in any case)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    call = identify(method, target, lowered)
    if call is not None and call.needs_body:
        refine(call, body, lowered)
    return call


# --------------------------------------------------------------------------- error responses


def _cbor_text(value: str) -> bytes:
    data = value.encode()
    n = len(data)
    if n < 24:
        head = bytes([0x60 + n])
    elif n < 0x100:
        head = bytes([0x78, n])
    elif n < 0x10000:
        head = bytes([0x79]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x7A]) + n.to_bytes(4, "big")
    return head + data


def render_error(
    call: AwsCall | None, error: ErrorSpec, request_id: str, *, head_only: bool = False
) -> tuple[list[tuple[str, str]], bytes]:
    """Headers and body of an AWS error response in the call's protocol."""
    code, message = error.code, error.message or DEFAULT_MESSAGE
    fault_type = "Sender" if error.status_code < 500 else "Receiver"
    protocol = call.protocol if call is not None else None
    headers = [("x-amzn-RequestId", request_id)]
    if protocol == "json":
        content_type = f"application/x-amz-json-{call.json_version if call else '1.0'}"
        body = json.dumps({"__type": code, "message": message}).encode()
        headers.append(("x-amzn-ErrorType", code))
        if call is not None and call.query_compatible:
            headers.append(("x-amzn-query-error", f"{code};{fault_type}"))
    elif protocol == "smithy-rpc-v2-cbor":
        content_type = "application/cbor"
        body = b"\xa2" + _cbor_text("__type") + _cbor_text(code) + _cbor_text("message") + _cbor_text(message)
        headers.append(("smithy-protocol", "rpc-v2-cbor"))
        if call is not None and call.query_compatible:
            headers.append(("x-amzn-query-error", f"{code};{fault_type}"))
    elif protocol == "query" or (protocol == "rest-xml" and call is not None and call.service != "s3"):
        content_type = "text/xml"
        body = (
            f"<ErrorResponse><Error><Type>{fault_type}</Type><Code>{xml_escape(code)}</Code>"
            f"<Message>{xml_escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
    elif protocol == "ec2":
        content_type = "text/xml;charset=UTF-8"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Errors><Error><Code>{xml_escape(code)}</Code>"
            f"<Message>{xml_escape(message)}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
    elif protocol == "rest-xml":
        content_type = "application/xml"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        ).encode()
        headers += [("x-amz-request-id", request_id), ("x-amz-id-2", request_id)]
    else:  # rest-json, and the fallback for unknown services
        content_type = "application/json"
        body = json.dumps({"__type": code, "message": message}).encode()
        headers.append(("x-amzn-ErrorType", code))
    headers.append(("Content-Type", content_type))
    headers.append(("Content-Length", str(len(body))))
    return headers, b"" if head_only else body


# --------------------------------------------------------------------------- rule engine


@dataclass
class Decision:
    latency_ms: float = 0.0
    error: ErrorSpec | None = None
    fault: str | None = None


@dataclass
class _ActiveRule:
    rule: FaultRule
    matched: int = 0
    fired: int = 0


# --------------------------------------------------------------------------- proxy


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Idle keep-alive handlers block in readline; stop() closes their sockets instead.
    block_on_close = False

    def __init__(self, address: tuple[str, int], proxy: AwsFaultProxy) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets a pooled keep-alive connection is routine, not worth a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        LOG.exception("AWS proxy: request from %s failed", client_address)


class _ClientGone(Exception):
    """The client closed its connection mid-response."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body go out in separate writes; with Nagle the body would wait for an ACK.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        #: the connection of the current request, and the kept-alive one per emulator
        self.upstream: http.client.HTTPConnection | None = None
        self.upstreams: dict[str, http.client.HTTPConnection] = {}
        self.expect_pending = False
        self.log_entry: dict[str, Any] | None = None
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.proxy._track(self.connection, add=False)
        for conn in self.upstreams.values():
            conn.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def parse_request(self) -> bool:
        self.expect_pending = False
        self.log_entry = None
        return super().parse_request()

    def handle_expect_100(self) -> bool:
        # Deferred: a faulted upload is answered before its body is sent, as S3 would.
        self.expect_pending = True
        return True

    def _proxy(self) -> None:
        self.server.proxy._handle(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _proxy

    # -- request body -------------------------------------------------------------------

    def send_continue(self) -> None:
        if self.expect_pending:
            self.expect_pending = False
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def body_chunks(self) -> Iterator[bytes]:
        """The request body as it arrives (de-chunked)."""
        self.send_continue()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    raise ConnectionError("client closed mid-body")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                        pass  # trailers: dropped
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, CHUNK))
                    if not data:
                        raise ConnectionError("client closed mid-body")
                    remaining -= len(data)
                    yield data
                self.rfile.readline(3)
            return
        remaining = self.content_length()
        while remaining > 0:
            data = self.rfile.read(min(remaining, CHUNK))
            if not data:
                raise ConnectionError("client closed mid-body")
            remaining -= len(data)
            yield data

    def content_length(self) -> int:
        try:
            return max(0, int(self.headers.get("Content-Length", "0")))
        except ValueError:
            return 0

    def has_body(self) -> bool:
        return self.content_length() > 0 or "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def discard_body(self) -> None:
        """Keep the connection in step after answering without forwarding."""
        if self.expect_pending:
            # The client waits for 100 Continue and will not send the body; this connection
            # cannot be reused reliably, so it closes after this response.
            self.close_connection = True
            return
        for _ in self.body_chunks():
            pass

    # -- responses ----------------------------------------------------------------------

    def write_head(self, status: int, reason: str, headers: Iterable[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except OSError as exc:
            raise _ClientGone(str(exc)) from exc


@dataclass(frozen=True)
class Upstream:
    """An emulator endpoint requests are forwarded to."""

    url: str
    https: bool
    host: str
    port: int
    netloc: str

    @classmethod
    def parse(cls, url: str) -> Upstream:
        parsed = urlsplit(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"upstream must be an http(s) URL such as http://127.0.0.1:5000, got {url!r}")
        https = parsed.scheme == "https"
        return cls(url, https, parsed.hostname, parsed.port or (443 if https else 80), parsed.netloc)


class AwsFaultProxy:
    """An HTTP proxy to an AWS emulator that fails, or delays, calls by rule.

    `routes` sends the calls of some services to another emulator (LocalStack's backend
    sends the services community LocalStack lacks to moto); the rest go to `upstream`.
    """

    def __init__(
        self,
        upstream: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        upstream_timeout: float = 300.0,
        routes: Mapping[str, str] | None = None,
    ) -> None:
        self.upstream = upstream
        self._default = Upstream.parse(upstream)
        self._routes = {normalise_service(k): Upstream.parse(v) for k, v in (routes or {}).items()}
        self.upstream_timeout = upstream_timeout
        self.host = host
        self.requested_port = port
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._rules: list[_ActiveRule] = []
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.injected = 0
        self.delayed = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> AwsFaultProxy:
        if self._server is not None:
            return self
        try:
            server = _Server((self.host, self.requested_port), self)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    COMPONENT,
                    f"port {self.requested_port} on {self.host} is already in use",
                    hint="stop the process on it, or pass port=0 to let the proxy pick a free port",
                ) from exc
            raise ServiceStartError(
                COMPONENT, f"cannot listen on {self.host}:{self.requested_port}: {exc}"
            ) from exc
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="aws-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> AwsFaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not running; call start() first")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # noqa: S104 - a comparison
        return f"http://{host}:{self.port}"

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # -- rules ----------------------------------------------------------------------------

    def set_rules(self, rules: Iterable[FaultRule | Mapping[str, Any]]) -> None:
        """Replace all rules; their call counters start from zero."""
        active = [_ActiveRule(as_rule(r)) for r in rules]
        with self._lock:
            self._rules = active

    def add_rule(self, rule: FaultRule | Mapping[str, Any]) -> FaultRule:
        validated = as_rule(rule)
        with self._lock:
            self._rules.append(_ActiveRule(validated))
        return validated

    def clear(self) -> None:
        """Remove all rules and reset the counters (the request log is kept)."""
        with self._lock:
            self._rules = []
            self.injected = 0
            self.delayed = 0

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._random.seed(seed)

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [a.rule for a in self._rules]

    def rule_stats(self) -> list[dict[str, int]]:
        """Per rule: calls it matched and times it fired."""
        with self._lock:
            return [{"matched": a.matched, "fired": a.fired} for a in self._rules]

    def decide(self, call: AwsCall) -> Decision:
        decision = Decision()
        with self._lock:
            for index, active in enumerate(self._rules):
                rule = active.rule
                if not rule.matches(call):
                    continue
                active.matched += 1
                if not rule.selects(active.matched):
                    continue
                if rule.probability <= 0.0:
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                active.fired += 1
                decision.latency_ms += rule.latency_ms or 0.0
                if rule.fails:
                    error = rule.effective_error
                    decision.error = error
                    decision.fault = f"rule {index}: {error.status_code} {error.code}"
                    self.injected += 1
                    break
            if decision.latency_ms > 0:
                self.delayed += 1
        return decision

    # -- request log ----------------------------------------------------------------------

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """A snapshot of the most recent requests, oldest first.

        An entry is logged once the call is classified and gets its `status` before the
        response goes out, so a client that has its answer finds its entry complete except,
        possibly, `duration_ms`.
        """
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def dump_log(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w") as out:
            for entry in self.request_log:
                out.write(json.dumps(entry) + "\n")
        return target

    def _update(self, entry: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            entry.update(fields)

    # -- one request ----------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        started = time.monotonic()
        headers = {k.lower(): v for k, v in handler.headers.items()}
        call = identify(handler.command, handler.path, headers)
        body: bytes | None = None
        if (
            call is not None
            and call.needs_body
            and (handler.content_length() <= MAX_CLASSIFIED_BODY or not handler.has_body())
        ):
            try:
                body = b"".join(handler.body_chunks())
            except (OSError, ValueError):  # the client went away, or sent a malformed chunk
                handler.close_connection = True
                return
            refine(call, body, headers)
        decision = self.decide(call) if call is not None else Decision()
        entry: dict[str, Any] = {
            "time": started,
            "method": handler.command,
            "path": handler.path.split("?", 1)[0],
            "service": call.service if call else None,
            "operation": call.operation if call else None,
            "resource": call.resource if call else None,
            "region": call.region if call else None,
            "status": None,
            "fault": decision.fault,
            "latency_ms": decision.latency_ms,
            "duration_ms": None,
        }
        with self._lock:
            self._log.append(entry)
        handler.log_entry = entry
        try:
            if decision.latency_ms > 0:
                time.sleep(decision.latency_ms / 1000)
            if decision.error is not None:
                if body is None:
                    handler.discard_body()
                self._send_error(handler, call, decision.error)
            else:
                target = self._routes.get(call.service, self._default) if call else self._default
                self._forward(handler, body, target)
        except _ClientGone:
            handler.close_connection = True
        except (ConnectionError, OSError) as exc:
            handler.close_connection = True
            self._update(entry, fault=entry["fault"] or f"client connection failed: {exc}")
        finally:
            self._update(entry, duration_ms=round((time.monotonic() - started) * 1000, 3))

    def _head(self, handler: _Handler, status: int, reason: str, headers: Iterable[tuple[str, str]]) -> bytes:
        """The response head; logs the status first, so the log is ahead of the client."""
        if handler.log_entry is not None:
            self._update(handler.log_entry, status=status)
        return handler.write_head(status, reason, headers)

    def _send_error(self, handler: _Handler, call: AwsCall | None, error: ErrorSpec) -> None:
        request_id = str(uuid.uuid4())
        headers, body = render_error(call, error, request_id, head_only=handler.command == "HEAD")
        headers.append(("Date", handler.date_time_string()))
        handler.send(self._head(handler, error.status_code, _reason(error.status_code), headers) + body)

    # -- forwarding -----------------------------------------------------------------------

    def _connection(self, handler: _Handler, target: Upstream) -> tuple[http.client.HTTPConnection, bool]:
        """The handler's connection to `target`, and whether it was used before."""
        conn = handler.upstreams.get(target.netloc)
        if conn is not None and conn.sock is not None:
            # An idle keep-alive socket that reads as ready has been closed by the emulator.
            # poll, not select: select fails on descriptors above 1024.
            poller = select.poll()
            poller.register(conn.sock, select.POLLIN)
            if not poller.poll(0):
                return conn, True
            conn.close()
        if conn is None:
            if target.https:
                conn = http.client.HTTPSConnection(target.host, target.port, timeout=self.upstream_timeout)
            else:
                conn = http.client.HTTPConnection(target.host, target.port, timeout=self.upstream_timeout)
            handler.upstreams[target.netloc] = conn
        handler.upstream = conn
        return conn, False

    def _upstream_headers(
        self, handler: _Handler, target: Upstream, *, chunked: bool, length: int | None
    ) -> list[tuple[str, str]]:
        connection_tokens = {t.strip().lower() for t in handler.headers.get("Connection", "").split(",")}
        out: list[tuple[str, str]] = []
        for name, value in handler.headers.items():
            lower = name.lower()
            if lower in HOP_BY_HOP or lower in connection_tokens or lower in ("expect", "content-length"):
                continue
            out.append((name, value))
        if "host" not in {k.lower() for k, _ in out}:
            out.insert(0, ("Host", target.netloc))
        if chunked:
            out.append(("Transfer-Encoding", "chunked"))
        elif length is not None and (length > 0 or handler.command in ("POST", "PUT", "PATCH")):
            out.append(("Content-Length", str(length)))
        return out

    def _send_upstream(
        self, handler: _Handler, body: bytes | None, target: Upstream
    ) -> http.client.HTTPResponse:
        attempts = 2 if body is not None or not handler.has_body() else 1
        for attempt in range(attempts):
            conn, reused = self._connection(handler, target)
            try:
                conn.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
                chunked = body is None and "chunked" in handler.headers.get("Transfer-Encoding", "").lower()
                length = len(body) if body is not None else (None if chunked else handler.content_length())
                for name, value in self._upstream_headers(handler, target, chunked=chunked, length=length):
                    conn.putheader(name, value)
                if body is not None or not handler.has_body():
                    conn.endheaders(message_body=body or None)
                else:
                    conn.endheaders()
                    for piece in handler.body_chunks():
                        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    if chunked:
                        conn.send(b"0\r\n\r\n")
                return conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                # A reused keep-alive connection can die between our check and the send.
                if not reused or attempt == attempts - 1:
                    raise
            except Exception:
                conn.close()
                raise
        raise AssertionError("unreachable")

    def _forward(self, handler: _Handler, body: bytes | None, target: Upstream) -> None:
        try:
            response = self._send_upstream(handler, body, target)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            if body is None and handler.has_body():
                handler.close_connection = True  # the unread rest of the body would follow
            message = f"the AWS emulator at {target.url} did not answer: {exc}".encode()
            head = self._head(
                handler,
                502,
                "Bad Gateway",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(message)))],
            )
            handler.send(head + message)
            return
        try:
            self._relay(handler, response)
        except BaseException:
            assert handler.upstream is not None
            handler.upstream.close()
            raise
        if response.will_close and handler.upstream is not None:
            handler.upstream.close()

    def _relay(self, handler: _Handler, response: http.client.HTTPResponse) -> None:
        tokens = {t.strip().lower() for t in (response.getheader("Connection") or "").split(",")}
        headers = [
            (k, v)
            for k, v in response.getheaders()
            if k.lower() not in HOP_BY_HOP and k.lower() not in tokens
        ]
        no_body = handler.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        length = response.length if not response.chunked else None
        reason = response.reason or _reason(response.status)
        if no_body:
            handler.send(self._head(handler, response.status, reason, headers))
            response.read()
            return
        if length is not None and length <= SMALL_RESPONSE:
            data = response.read()
            handler.send(self._head(handler, response.status, reason, headers) + data)
            return
        if length is not None:
            handler.send(self._head(handler, response.status, reason, headers))
            while piece := response.read(CHUNK):
                handler.send(piece)
            return
        # Unknown length (chunked or close-delimited upstream): chunk it to HTTP/1.1 clients.
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        if handler.request_version == "HTTP/1.0":
            handler.close_connection = True
            handler.send(self._head(handler, response.status, reason, headers))
            while piece := response.read1(CHUNK):
                handler.send(piece)
            return
        handler.send(
            self._head(handler, response.status, reason, [*headers, ("Transfer-Encoding", "chunked")])
        )
        while piece := response.read1(CHUNK):
            handler.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        handler.send(b"0\r\n\r\n")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


__all__ = [
    "AwsCall",
    "AwsFaultProxy",
    "ErrorSpec",
    "FaultRule",
    "classify_request",
    "normalise_service",
    "parse_calls",
    "render_error",
    "service_model",
]
