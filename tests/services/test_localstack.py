"""LocalStack on the host: setup, start/stop hygiene, the data plane the harness relies on.

The LocalStack venv costs ~90 s and ~500 MB to build, so these tests share one install under
HARNESS_HOME (the repository's `.harness/` unless HARNESS_HOME is set), never a tmp_path. The
tests skip only when the install cannot run at all (no Python 3.13, Java 17 or npm).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from proc_helpers import alive, descendants, processes_matching

from harness.errors import MissingBinaryError, PortInUseError
from harness.paths import REPO_ROOT
from harness.services import localstack_setup
from harness.services.localstack_server import ACCOUNT_ID, REGION, LocalStackService
from harness.services.localstack_setup import LocalStackInstall, ensure_localstack
from harness.services.process import RunDirectory

pytestmark = pytest.mark.localstack

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def shared_home() -> Iterator[Path]:
    """HARNESS_HOME for the whole session: the shared one, so the venv is built once."""
    home = Path(os.environ.get("HARNESS_HOME") or REPO_ROOT / ".harness")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def install(shared_home: Path) -> LocalStackInstall:
    try:
        return ensure_localstack()
    except MissingBinaryError as exc:  # a missing toolchain, not a bug: say what is missing
        pytest.skip(f"LocalStack setup cannot run here: {exc}")


@pytest.fixture
def ls_run_dir(install: LocalStackInstall) -> RunDirectory:
    return RunDirectory.create("test-localstack")


@pytest.fixture(scope="module")
def localstack(install: LocalStackInstall) -> Iterator[LocalStackService]:
    """One running instance shared by the data-plane tests of this module."""
    service = LocalStackService(RunDirectory.create("test-localstack-shared"))
    with service:
        yield service


def _unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{time.monotonic_ns() % 10**9}"


def _until(check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll until `check()` is truthy; return its value (or the last falsy one at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _drain(sqs: Any, queue_url: str, quiet_for: float, timeout: float) -> list[dict[str, Any]]:
    """Receive (and delete) messages until none arrived for `quiet_for` seconds."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last < quiet_for:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if batch:
            messages.extend(batch)
            last = time.monotonic()
    return messages


# ---------------------------------------------------------------------------------------------
# setup


def test_setup_second_call_does_nothing(install: LocalStackInstall, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a set-up call that should do nothing ran {args!r}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    again = ensure_localstack()
    assert again.actions == ()
    assert again.python == install.python and again.python.exists()
    assert again.dynamodb_local_jar.is_file() and again.dynamodb_local_lib.is_dir()
    assert zipfile.ZipFile(again.agent_jar).read("META-INF/MANIFEST.MF").decode().count("Premain-Class")
    assert localstack_setup.installed() is not None
    print(f"\nwarm ensure_localstack(): {again.seconds * 1000:.1f} ms")


def test_plugin_source_tree_stays_clean(install: LocalStackInstall) -> None:
    # pip builds from a staged copy: nothing generated may appear next to the tracked sources.
    leftovers = [p.name for p in localstack_setup.PLUGIN_DIR.iterdir() if p.name.endswith(".egg-info")]
    assert leftovers == [] and not (localstack_setup.PLUGIN_DIR / "build").exists()


# ---------------------------------------------------------------------------------------------
# process hygiene


def test_taken_port_is_reported_before_anything_starts(ls_run_dir: RunDirectory, taken_port: int) -> None:
    service = LocalStackService(ls_run_dir, port=taken_port)
    with pytest.raises(PortInUseError, match=str(taken_port)):
        service.start()
    assert service.process is None


def test_start_then_stop_leaves_no_process(ls_run_dir: RunDirectory) -> None:
    service = LocalStackService(ls_run_dir)
    with service:
        assert service.process is not None and service.process.pid is not None
        pid = service.process.pid
        base_dir = str(service.base_dir)
        tree = descendants(pid)
        # DynamoDB Local's JVM runs (warm-up) and stays in LocalStack's process group.
        java = [p for p in tree if b"java" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert java, "the DynamoDB warm-up should have started DynamoDB Local"
        assert all(os.getpgid(p) == pid for p in tree)
        assert service.endpoint.url == f"http://127.0.0.1:{service.port}"
    assert not [p for p in tree if alive(p)]
    assert processes_matching(base_dir) == []
    assert not (ls_run_dir.path / "pids" / f"localstack-{service.port}.json").exists()
    print(f"\ntimings: {service.timings}")


def test_missing_install_names_the_setup_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, install: LocalStackInstall
) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "empty-home"))
    service = LocalStackService(RunDirectory.create("no-install"), auto_install=False)
    with pytest.raises(MissingBinaryError, match="not installed") as raised:
        service.start()
    assert raised.value.hint is not None and localstack_setup.SETUP_COMMAND in raised.value.hint


# ---------------------------------------------------------------------------------------------
# the data plane


def test_s3_put_and_get(localstack: LocalStackService) -> None:
    s3 = localstack.client("s3")
    bucket = _unique("bucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="RefinerInput/hello.txt", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="RefinerInput/hello.txt")["Body"].read() == b"hello"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="RefinerInput/")["Contents"]]
    assert keys == ["RefinerInput/hello.txt"]


def test_sqs_send_and_receive(localstack: LocalStackService) -> None:
    sqs = localstack.client("sqs")
    url = sqs.create_queue(QueueName=_unique("queue"))["QueueUrl"]
    assert url.startswith(f"http://localhost:{localstack.port}/{ACCOUNT_ID}/")  # SQS_ENDPOINT_STRATEGY=off
    sqs.send_message(QueueUrl=url, MessageBody="ping")
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in messages] == ["ping"]
    assert messages[0]["Attributes"]["ApproximateReceiveCount"] == "1"


def test_vpc_functions_find_their_subnets_in_the_moto_companion(localstack: LocalStackService) -> None:
    # EC2 lives in the moto companion beside LocalStack (RDS, EFS and ElastiCache validate
    # their subnets there); Lambda's CreateFunction resolves vpc_config there too (data_plane.py).
    ec2 = localstack.companion_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=_unique("sg"), Description="fn", VpcId=vpc)["GroupId"]
    name = _create_function(localstack, vpc={"SubnetIds": [subnet], "SecurityGroupIds": [group]})
    config = localstack.client("lambda").get_function_configuration(FunctionName=name)
    assert config["VpcConfig"]["VpcId"] == vpc and config["VpcConfig"]["SubnetIds"] == [subnet]
    with pytest.raises(botocore.exceptions.ClientError, match=r"InvalidSubnetID\.NotFound"):
        _create_function(
            localstack, vpc={"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": [group]}
        )
    assert localstack.routes["ec2"] == localstack.companion.endpoint.url


def test_dynamodb_stream_has_records_written_right_after_create(localstack: LocalStackService) -> None:
    ddb = localstack.client("dynamodb")
    streams = localstack.client("dynamodbstreams")
    table = _unique("jobs")
    created = ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    stream_arn = created["TableDescription"]["LatestStreamArn"]
    ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    # No wait for the stream: with native (v2) streams a write right after ACTIVE is kept.
    ddb.put_item(TableName=table, Item={"id": {"S": "1"}, "status": {"S": "PENDING"}})
    ddb.put_item(TableName=table, Item={"id": {"S": "1"}, "status": {"S": "FINISHED"}})

    def records() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            found.extend(streams.get_records(ShardIterator=iterator)["Records"])
        return found if len(found) >= 2 else []

    got = _until(records, timeout=10)
    assert [r["eventName"] for r in got] == ["INSERT", "MODIFY"]
    assert got[1]["dynamodb"]["OldImage"]["status"] == {"S": "PENDING"}
    assert got[1]["dynamodb"]["NewImage"]["status"] == {"S": "FINISHED"}
    # GetRecords shape as in AWS (eventSourceARN is added by Lambda's mapping, not here).
    assert got[0]["eventSource"] == "aws:dynamodb" and got[0]["awsRegion"] == REGION
    assert got[0]["dynamodb"]["Keys"] == {"id": {"S": "1"}}
    assert got[0]["eventID"] != got[1]["eventID"]


def _lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {'ok': True}\n")
    return buffer.getvalue()


def _create_function(localstack: LocalStackService, vpc: dict[str, list[str]] | None = None) -> str:
    iam = localstack.companion_client("iam")  # IAM is the companion's, as for the stack
    role = iam.create_role(
        RoleName=_unique("role"),
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    name = _unique("fn")
    localstack.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Handler="app.handler",
        Role=role,
        Code={"ZipFile": _lambda_zip()},
        Environment={"Variables": {"STAGE": "local"}},
        **({"VpcConfig": vpc} if vpc else {}),
    )
    return name


def test_lambda_function_goes_active_without_docker(localstack: LocalStackService) -> None:
    started = time.monotonic()
    name = _create_function(localstack)
    lam = localstack.client("lambda")

    def active() -> bool:
        return lam.get_function_configuration(FunctionName=name)["State"] == "Active"

    assert _until(active, timeout=30, interval=0.1), lam.get_function_configuration(FunctionName=name)
    print(f"\nLambda {name} Active {time.monotonic() - started:.2f}s after CreateFunction")
    config = lam.get_function_configuration(FunctionName=name)
    assert config["Handler"] == "app.handler" and config["Environment"]["Variables"] == {"STAGE": "local"}


def test_invoking_through_localstack_is_refused_and_recorded(localstack: LocalStackService) -> None:
    name = _create_function(localstack)
    lam = localstack.client("lambda")
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    response = lam.invoke(FunctionName=name, Payload=b'{"hello": 1}')
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Payload"].read())
    assert body["errorType"] == "HarnessOwnsCompute" and "harness" in body["errorMessage"]
    assert localstack.invocation_log is not None
    entries = [json.loads(line) for line in localstack.invocation_log.read_text().splitlines()]
    mine = [e for e in entries if e["function_name"] == name]
    assert len(mine) == 1 and json.loads(mine[0]["payload"]) == {"hello": 1}


def test_event_source_mapping_is_a_record_and_never_polls(localstack: LocalStackService) -> None:
    name = _create_function(localstack)
    lam = localstack.client("lambda")
    sqs = localstack.client("sqs")
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    url = sqs.create_queue(QueueName=_unique("esm"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    uuid = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1)["UUID"]
    assert _until(lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled", timeout=10)
    sqs.send_message(QueueUrl=url, MessageBody="for the harness")
    time.sleep(3)  # LocalStack's poller runs every second; give it three chances to steal
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    message = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], WaitTimeSeconds=1)["Messages"][0]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"  # nobody received it before us


def _queue_with_eventbridge_access(localstack: LocalStackService, name: str) -> tuple[str, str]:
    sqs = localstack.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    return url, arn


def test_s3_eventbridge_routes_through_custom_bus_with_prefix_filter(localstack: LocalStackService) -> None:
    """The refiner's route: S3 -> default bus -> rule -> data-repository-bus -> prefix rule -> SQS."""
    s3 = localstack.client("s3")
    events = localstack.client("events")
    sqs = localstack.client("sqs")
    bucket = _unique("data-repository")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    bus_arn = events.create_event_bus(Name="data-repository-bus")["EventBusArn"]
    forward = _unique("to-data-repository-bus")
    events.put_rule(
        Name=forward,
        EventPattern=json.dumps(
            {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [bucket]}},
            }
        ),
    )
    events.put_targets(Rule=forward, Targets=[{"Id": "bus", "Arn": bus_arn}])
    queue_url, queue_arn = _queue_with_eventbridge_access(localstack, _unique("RefinerInput"))
    prefix_rule = _unique("refiner-input")
    events.put_rule(
        Name=prefix_rule,
        EventBusName="data-repository-bus",
        EventPattern=json.dumps({"detail": {"object": {"key": [{"prefix": "RefinerInput/"}]}}}),
    )
    events.put_targets(
        Rule=prefix_rule, EventBusName="data-repository-bus", Targets=[{"Id": "q", "Arn": queue_arn}]
    )
    # A tap on the default bus shows every S3 event LocalStack emits for this bucket.
    tap_url, tap_arn = _queue_with_eventbridge_access(localstack, _unique("tap"))
    tap = _unique("tap")
    events.put_rule(
        Name=tap, EventPattern=json.dumps({"source": ["aws.s3"], "detail": {"bucket": {"name": [bucket]}}})
    )
    events.put_targets(Rule=tap, Targets=[{"Id": "tap", "Arn": tap_arn}])
    try:
        s3.put_object(Bucket=bucket, Key="Other/b.txt", Body=b"other")
        s3.put_object(Bucket=bucket, Key="RefinerInput/a.txt", Body=b"hello")

        routed = _drain(sqs, queue_url, quiet_for=3, timeout=30)
        tapped = _drain(sqs, tap_url, quiet_for=2, timeout=15)
    finally:
        for rule, bus in ((forward, "default"), (tap, "default"), (prefix_rule, "data-repository-bus")):
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]]
            events.remove_targets(Rule=rule, EventBusName=bus, Ids=ids)
            events.delete_rule(Name=rule, EventBusName=bus)
        events.delete_event_bus(Name="data-repository-bus")

    # Exactly one message: a.txt through the custom bus; b.txt filtered out; S3 events are not
    # also delivered straight to the custom bus (moto does that; AWS and LocalStack do not).
    assert len(routed) == 1, [m["Body"] for m in routed]
    event = json.loads(routed[0]["Body"])
    assert event["source"] == "aws.s3" and event["detail-type"] == "Object Created"
    assert event["detail"]["object"]["key"] == "RefinerInput/a.txt"
    assert event["detail"]["bucket"]["name"] == bucket
    assert event["detail"]["object"]["size"] == 5
    assert ISO_UTC.match(event["time"]), event["time"]
    assert event["account"] == ACCOUNT_ID and event["region"] == REGION
    assert event["resources"] == [f"arn:aws:s3:::{bucket}"]

    tap_events = [json.loads(m["Body"]) for m in tapped]
    kinds = sorted(e["detail-type"] for e in tap_events)
    ids = [e["id"] for e in tap_events]
    print(f"\nS3 events on the default bus: {kinds}; ids unique: {len(set(ids)) == len(ids)}")
    print(f"routed event: {json.dumps(event, sort_keys=True)}")
    assert kinds == ["Object Created", "Object Created"]  # no "Object Tags Added" events
    assert len(set(ids)) == len(ids)  # one id per event, unlike moto's fixed id
    sequencers = {e["detail"]["object"]["sequencer"] for e in tap_events}
    request_ids = {e["detail"]["request-id"] for e in tap_events}
    # LocalStack's detail.object.sequencer is one fixed value (AWS: increasing per key).
    print(f"distinct sequencers: {len(sequencers)}, distinct request-ids: {len(request_ids)}")
    assert len(request_ids) == 2


# ---------------------------------------------------------------------------------------------
# isolation between instances


def test_two_instances_share_no_s3_state(ls_run_dir: RunDirectory) -> None:
    first = LocalStackService(ls_run_dir, warm_dynamodb=False)
    second = LocalStackService(ls_run_dir, warm_dynamodb=False)
    with first, second:
        s3_a, s3_b = first.client("s3"), second.client("s3")
        bucket = _unique("shared-name")
        s3_a.create_bucket(Bucket=bucket)
        s3_b.create_bucket(Bucket=bucket)  # the same name in both: the case that used to collide
        s3_a.put_object(Bucket=bucket, Key="only-in-a.txt", Body=b"a")
        assert s3_b.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
        with pytest.raises(s3_b.exceptions.NoSuchKey):
            s3_b.get_object(Bucket=bucket, Key="only-in-a.txt")

        # Object storage lives under each instance's TMPDIR, not in the shared /tmp default.
        assert first.base_dir is not None and second.base_dir is not None
        storage_a = first.base_dir / "tmp" / "localstack-s3-storage" / bucket
        storage_b = second.base_dir / "tmp" / "localstack-s3-storage" / bucket
        assert storage_a.is_dir() and storage_b.is_dir()
        # Deleting a bucket that held objects rmtree()s its storage directory. In B that must
        # remove B's directory only: A's large objects (spilled to disk above 512 KiB) still
        # write and read back. With the shared /tmp default this put fails in A.
        s3_b.put_object(Bucket=bucket, Key="tmp.txt", Body=b"b")
        s3_b.delete_object(Bucket=bucket, Key="tmp.txt")
        s3_b.delete_bucket(Bucket=bucket)
        assert not storage_b.exists() and storage_a.is_dir()
        big = os.urandom(2 * 1024 * 1024)
        s3_a.put_object(Bucket=bucket, Key="big.bin", Body=big)
        assert s3_a.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == big
        assert s3_b.list_buckets()["Buckets"] == []
