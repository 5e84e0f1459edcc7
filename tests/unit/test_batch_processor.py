"""The batch processor and reprocess script (seed 001) against moto's in-process S3 and ECS."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.core.models import MockAWS

from pipeline.batch import processor, reprocess
from pipeline.common import aws
from pipeline.common.logging import JsonFormatter

BUCKET = "batch-data"
NON_FINITE = [float("nan"), float("-inf"), 10**400]
SETTINGS = (
    "DATA_BUCKET",
    "RAW_PREFIX",
    "REPORTS_PREFIX",
    "RUN_DATE",
    "SCHEDULE_TIME",
    "DAY_OFFSET",
    "ECS_CLUSTER",
    "TASK_DEFINITION",
    "SUBNET_IDS",
    "SECURITY_GROUP_IDS",
)


@pytest.fixture
def mocked(aws_mock: MockAWS, monkeypatch: pytest.MonkeyPatch) -> Iterator[MockAWS]:
    """moto with empty backends, fresh cached clients, and none of the batch settings set."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    aws.client.cache_clear()
    yield aws_mock
    aws.client.cache_clear()


@pytest.fixture
def s3(mocked: MockAWS, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DATA_BUCKET", BUCKET)
    client = aws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


@pytest.fixture
def clock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "clock"
    path.write_text("2026-01-16T01:00:05Z\n")
    monkeypatch.setenv("PIPELINE_CLOCK_FILE", str(path))
    return path


def put(s3: Any, key: str, body: str | bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)


def report(s3: Any, day: str) -> dict[str, Any]:
    return dict(json.loads(s3.get_object(Bucket=BUCKET, Key=f"reports/{day}.json")["Body"].read()))


def report_versions(s3: Any, day: str) -> int:
    response = s3.list_object_versions(Bucket=BUCKET, Prefix=f"reports/{day}.json")
    return len(response.get("Versions", []))


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """The processor's log lines, as the JSON objects it writes to stdout."""
    handler = _Collect()
    processor.LOG.addHandler(handler)
    yield handler.lines
    processor.LOG.removeHandler(handler)


# --- a normal day ---------------------------------------------------------------------------------


def put_normal_day(s3: Any) -> None:
    day = "raw-data/2026-01-15/"
    put(s3, day + "a.csv", "key,value,extra\nalpha,1,x\nbeta,2.5,y\nalpha,3,z\n")
    put(s3, day + "b.json", json.dumps([{"key": "alpha", "value": 4}, {"key": "gamma", "value": "-1.5"}]))
    put(s3, day + "sub/c.jsonl", '{"key": "beta", "value": 0.5}\n\n{"key": "gamma", "value": 10}\n')
    put(s3, day + "d.json", '{"key": "delta", "value": 1}\n{"key": "delta", "value": 2}\n')  # JSON lines
    put(s3, day + "notes.txt", "not data")
    put(s3, "raw-data/2026-01-14/old.csv", "key,value\nalpha,1000\n")  # another day
    put(s3, "raw-data/2026-01-150/odd.csv", "key,value\nalpha,1000\n")  # not under the day's folder


def test_a_day_of_csv_json_and_jsonl_files(
    s3: Any, clock_file: Path, monkeypatch: pytest.MonkeyPatch, logs: list[dict[str, Any]]
) -> None:
    put_normal_day(s3)
    monkeypatch.setenv("SCHEDULE_TIME", "2026-01-16T01:00:00Z")

    assert processor.main([]) == 0

    assert report(s3, "2026-01-15") == {
        "date": "2026-01-15",
        "generated_at": "2026-01-16T01:00:05Z",
        "source_prefix": "raw-data/2026-01-15/",
        "run_date_override": False,
        "files": {"processed": 4, "skipped": 1, "malformed": 0},
        "records": {"total": 9, "valid": 9, "malformed": 0},
        "keys": {
            "alpha": {"count": 3, "sum": 8, "min": 1, "max": 4, "mean": 2.666667},
            "beta": {"count": 2, "sum": 3.0, "min": 0.5, "max": 2.5, "mean": 1.5},
            "delta": {"count": 2, "sum": 3, "min": 1, "max": 2, "mean": 1.5},
            "gamma": {"count": 2, "sum": 8.5, "min": -1.5, "max": 10, "mean": 4.25},
        },
        "total_sum": 22.5,
        "malformed_samples": [],
    }
    stored = s3.get_object(Bucket=BUCKET, Key="reports/2026-01-15.json")
    assert stored["ContentType"] == "application/json"
    body = stored["Body"].read()
    assert body == (json.dumps(json.loads(body), sort_keys=True, indent=2) + "\n").encode()

    messages = [entry["message"] for entry in logs]
    assert messages[0] == "batch run started"
    assert messages.count("processed file") == 4
    assert messages.count("skipped file") == 1
    assert messages[-1] == "report written"
    assert logs[-1]["report"] == f"s3://{BUCKET}/reports/2026-01-15.json"


def test_listing_is_paginated(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processor, "PAGE_SIZE", 2)
    monkeypatch.setenv("RUN_DATE", "2026-01-15")
    for n in range(5):
        put(s3, f"raw-data/2026-01-15/part-{n}.jsonl", f'{{"key": "k", "value": {n}}}\n')
    assert processor.main([]) == 0
    assert report(s3, "2026-01-15")["keys"] == {"k": {"count": 5, "sum": 10, "min": 0, "max": 4, "mean": 2.0}}


def test_custom_prefixes(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAW_PREFIX", "/incoming")
    monkeypatch.setenv("REPORTS_PREFIX", "out/daily/")
    monkeypatch.setenv("RUN_DATE", "2026-01-15")
    put(s3, "incoming/2026-01-15/x.csv", "key,value\nk,2\n")
    assert processor.main([]) == 0
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key="out/daily/2026-01-15.json")["Body"].read())
    assert stored["source_prefix"] == "incoming/2026-01-15/"
    assert stored["total_sum"] == 2


# --- malformed input ------------------------------------------------------------------------------


def test_malformed_rows_and_broken_files_are_counted_with_reasons(
    s3: Any, monkeypatch: pytest.MonkeyPatch, logs: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("RUN_DATE", "2026-01-15")
    day = "raw-data/2026-01-15/"
    put(s3, day + "bad.csv", "key,value\nalpha,1\n,2\nbeta,abc\ngamma,true\ndelta,\nepsilon,nan\nzeta\n")
    put(
        s3,
        day + "mixed.jsonl",
        '{"key": "a", "value": 1}\nnot json\n{"key": "a", "value": true}\n[1]\n'
        '{"key": 5, "value": 1}\n{"value": 1}\n{"key": "a"}\n{"key": "a", "value": NaN}\n'
        '{"key": "a", "value": 1e999}\n{"key": "a", "value": "1_000"}\n',
    )
    put(s3, day + "broken.json", '[{"key": "a", "value": 1},\n')
    put(s3, day + "latin1.csv", "key,value\ncafé,1\n".encode("latin-1"))
    put(s3, day + "noheader.csv", "alpha,1\nbeta,2\n")

    assert processor.main([]) == 0

    result = report(s3, "2026-01-15")
    assert result["files"] == {"processed": 2, "skipped": 0, "malformed": 3}
    assert result["records"] == {"total": 17, "valid": 2, "malformed": 15}
    assert result["keys"] == {
        "a": {"count": 1, "sum": 1, "min": 1, "max": 1, "mean": 1.0},
        "alpha": {"count": 1, "sum": 1, "min": 1, "max": 1, "mean": 1.0},
    }
    samples = result["malformed_samples"]
    assert len(samples) == 18
    expected = [
        f"{day}bad.csv line 3: key is empty",
        f"{day}bad.csv line 4: value 'abc' is not a number",
        f"{day}bad.csv line 5: value 'true' is not a number",
        f"{day}bad.csv line 6: value '' is not a number",
        f"{day}bad.csv line 7: value 'nan' is not a number",
        f"{day}bad.csv line 8: no value",
        f"{day}broken.json: invalid JSON (Expecting value at line 2 column 1), and not JSON lines either",
        f"{day}latin1.csv: not UTF-8 text (invalid continuation byte at byte 13)",
        f"{day}mixed.jsonl line 2: invalid JSON (Expecting value at line 1 column 1)",
        f"{day}mixed.jsonl line 3: value True is a boolean, not a number",
        f"{day}mixed.jsonl line 4: not an object but list",
        f"{day}mixed.jsonl line 5: key 5 is not a string",
        f"{day}mixed.jsonl line 6: no key",
        f"{day}mixed.jsonl line 7: no value",
        f"{day}mixed.jsonl line 8: value nan is not a finite number",
        f"{day}mixed.jsonl line 9: value inf is not a finite number",
        f"{day}mixed.jsonl line 10: value '1_000' is not a number",
        f"{day}noheader.csv: CSV header ['alpha', '1'] does not name both key and value columns",
    ]
    assert samples == expected
    malformed_logs = [e for e in logs if e["message"] == "malformed file"]
    assert sorted(e["key"] for e in malformed_logs) == [
        f"{day}broken.json",
        f"{day}latin1.csv",
        f"{day}noheader.csv",
    ]


def test_samples_are_capped_at_twenty(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN_DATE", "2026-01-15")
    put(s3, "raw-data/2026-01-15/junk.jsonl", '{"key": ""}\n' * 30)
    assert processor.main([]) == 0
    result = report(s3, "2026-01-15")
    assert result["records"] == {"total": 30, "valid": 0, "malformed": 30}
    assert len(result["malformed_samples"]) == 20
    assert result["malformed_samples"][19] == "raw-data/2026-01-15/junk.jsonl line 20: key is empty"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3), (-2.5, -2.5), ("12", 12), (" 7.25 ", 7.25), ("-1e3", -1000.0), (".5", 0.5), ("+4.", 4.0)],
)
def test_numeric_values(value: object, expected: float) -> None:
    result = processor.numeric_value(value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "value",
    [True, False, None, [], {}, "", "abc", "0x10", "1_000", "inf", "-Infinity", "NaN", "1e999", *NON_FINITE],
)
def test_non_numeric_values_are_rejected(value: object) -> None:
    with pytest.raises(processor.RecordError):
        processor.numeric_value(value)


# --- which day ------------------------------------------------------------------------------------


def test_run_date_overrides_the_schedule(s3: Any, clock_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    put(s3, "raw-data/2026-01-10/a.csv", "key,value\nold,5\n")
    put(s3, "raw-data/2026-01-15/a.csv", "key,value\nnew,1\n")
    monkeypatch.setenv("RUN_DATE", "2026-01-10")
    monkeypatch.setenv("SCHEDULE_TIME", "2026-01-16T01:00:00Z")

    assert processor.main([]) == 0

    result = report(s3, "2026-01-10")
    assert result["run_date_override"] is True
    assert result["source_prefix"] == "raw-data/2026-01-10/"
    assert list(result["keys"]) == ["old"]
    assert report_versions(s3, "2026-01-15") == 0


@pytest.mark.parametrize(
    ("schedule_time", "offset", "day"),
    [
        ("2026-01-16T01:00:00Z", None, "2026-01-15"),
        ("2026-03-01T00:30:00+01:00", None, "2026-02-27"),  # 2026-02-28T23:30Z, minus one day
        ("2026-01-16T01:00:00Z", "0", "2026-01-16"),
        ("2026-01-16T01:00:00", "7", "2026-01-09"),  # no zone: UTC
    ],
)
def test_day_from_schedule_time(
    s3: Any,
    clock_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    schedule_time: str,
    offset: str | None,
    day: str,
) -> None:
    monkeypatch.setenv("SCHEDULE_TIME", schedule_time)
    if offset is not None:
        monkeypatch.setenv("DAY_OFFSET", offset)
    assert processor.main([]) == 0
    result = report(s3, day)
    assert result["date"] == day
    assert result["run_date_override"] is False


def test_day_from_the_clock_file(s3: Any, clock_file: Path) -> None:
    clock_file.write_text("2026-01-01T00:10:00Z")
    put(s3, "raw-data/2025-12-31/a.jsonl", '{"key": "nye", "value": 1}\n')
    assert processor.main([]) == 0
    result = report(s3, "2025-12-31")
    assert result["generated_at"] == "2026-01-01T00:10:00Z"
    assert result["total_sum"] == 1


def test_an_empty_day_gives_an_empty_report(s3: Any, clock_file: Path) -> None:
    assert processor.main([]) == 0
    assert report(s3, "2026-01-15") == {
        "date": "2026-01-15",
        "generated_at": "2026-01-16T01:00:05Z",
        "source_prefix": "raw-data/2026-01-15/",
        "run_date_override": False,
        "files": {"processed": 0, "skipped": 0, "malformed": 0},
        "records": {"total": 0, "valid": 0, "malformed": 0},
        "keys": {},
        "total_sum": 0,
        "malformed_samples": [],
    }


# --- bad settings and AWS errors ------------------------------------------------------------------


@pytest.mark.parametrize("run_date", ["2026-13-01", "2026-02-30", "15/01/2026", "20260115", "yesterday"])
def test_an_invalid_run_date_exits_2(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], run_date: str
) -> None:
    monkeypatch.setenv("RUN_DATE", run_date)
    assert processor.main([]) == 2
    err = capsys.readouterr().err
    assert err == f"batch-processor: RUN_DATE {run_date!r} is not a valid date (expected YYYY-MM-DD)\n"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="reports/")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SCHEDULE_TIME", "tomorrow", "SCHEDULE_TIME 'tomorrow' is not an ISO-8601 instant"),
        ("DAY_OFFSET", "one", "DAY_OFFSET 'one' is not a whole number of days"),
        ("DAY_OFFSET", "-1", "DAY_OFFSET '-1' must not be negative"),
    ],
)
def test_other_invalid_settings_exit_2(
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(name, value)
    assert processor.main([]) == 2
    assert capsys.readouterr().err == f"batch-processor: {message}\n"


def test_a_missing_data_bucket_setting_exits_2(mocked: MockAWS, capsys: pytest.CaptureFixture[str]) -> None:
    assert processor.main([]) == 2
    assert capsys.readouterr().err == "batch-processor: environment variable DATA_BUCKET is not set\n"


def test_a_missing_bucket_exits_1(
    mocked: MockAWS,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    logs: list[dict[str, Any]],
) -> None:
    monkeypatch.setenv("DATA_BUCKET", "no-such-bucket")
    monkeypatch.setenv("RUN_DATE", "2026-01-15")
    assert processor.main([]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("batch-processor: AWS error: ")
    assert "NoSuchBucket" in captured.err
    assert "Traceback" not in captured.err
    assert logs[-1]["message"] == "batch run failed"
    assert "NoSuchBucket" in logs[-1]["error"]


# --- idempotency ----------------------------------------------------------------------------------


def test_an_identical_rerun_does_not_rewrite_the_report(
    s3: Any, clock_file: Path, logs: list[dict[str, Any]]
) -> None:
    put_normal_day(s3)
    assert processor.main([]) == 0
    first = report(s3, "2026-01-15")
    assert report_versions(s3, "2026-01-15") == 1

    clock_file.write_text("2026-01-16T05:00:00Z")  # same day, later run
    assert processor.main([]) == 0
    assert report_versions(s3, "2026-01-15") == 1
    assert report(s3, "2026-01-15") == first
    result_log = logs[-1]
    assert result_log["message"] == "report unchanged; not rewritten"
    assert result_log["written"] is False

    put(s3, "raw-data/2026-01-15/late.csv", "key,value\nalpha,1\n")
    assert processor.main([]) == 0
    assert report_versions(s3, "2026-01-15") == 2
    second = report(s3, "2026-01-15")
    assert second["generated_at"] == "2026-01-16T05:00:00Z"
    assert second["keys"]["alpha"]["count"] == 4


# --- reprocess ------------------------------------------------------------------------------------


@pytest.fixture
def ecs(mocked: MockAWS) -> dict[str, str]:
    """A cluster, a Fargate task definition with container `processor`, and a subnet and group."""
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto's ENI needs it
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="batch", Description="batch", VpcId=vpc)["GroupId"]
    client = aws.client("ecs")
    client.create_cluster(clusterName="batch")
    client.register_task_definition(
        family="batch-processor",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "processor", "image": "batch:latest", "essential": True, "cpu": 256, "memory": 512}
        ],
    )
    return {"subnet": subnet, "group": group}


def describe(task_arn: str) -> dict[str, Any]:
    return dict(aws.client("ecs").describe_tasks(cluster="batch", tasks=[task_arn])["tasks"][0])


def test_reprocess_starts_the_task_with_a_run_date_override(
    ecs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["2026-01-15", "--cluster", "batch", "--task-definition", "batch-processor"]
    argv += ["--subnet", ecs["subnet"], "--security-group", ecs["group"]]
    assert reprocess.main(argv) == 0

    task_arn = capsys.readouterr().out.strip()
    assert task_arn.startswith("arn:aws:ecs:us-east-1:123456789012:task/batch/")
    task = describe(task_arn)
    assert task["launchType"] == "FARGATE"
    assert task["startedBy"] == "reprocess-2026-01-15"
    assert task["overrides"]["containerOverrides"] == [
        {"name": "processor", "environment": [{"name": "RUN_DATE", "value": "2026-01-15"}]}
    ]
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    assert details["subnetId"] == ecs["subnet"]


def test_reprocess_takes_its_options_from_the_environment(
    ecs: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ECS_CLUSTER", "batch")
    monkeypatch.setenv("TASK_DEFINITION", "batch-processor")
    monkeypatch.setenv("SUBNET_IDS", ecs["subnet"])
    monkeypatch.setenv("SECURITY_GROUP_IDS", ecs["group"])
    assert reprocess.main(["2025-12-31"]) == 0
    task = describe(capsys.readouterr().out.strip())
    environment = task["overrides"]["containerOverrides"][0]["environment"]
    assert environment == [{"name": "RUN_DATE", "value": "2025-12-31"}]


def test_reprocess_request_shape() -> None:
    args = reprocess.parse_args(
        ["2026-01-15", "--cluster", "c", "--task-definition", "t", "--subnet", "s1", "--subnet", "s2"]
    )
    request = reprocess.run_task_request(args, reprocess.check_args(args))
    assert request["launchType"] == "FARGATE"
    assert request["networkConfiguration"] == {
        "awsvpcConfiguration": {"subnets": ["s1", "s2"], "assignPublicIp": "DISABLED"}
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["2026-02-30", "--cluster", "c", "--task-definition", "t", "--subnet", "s"],
            "RUN_DATE '2026-02-30'",
        ),
        (["2026-01-15", "--subnet", "s"], "missing --cluster (or ECS_CLUSTER), --task-definition"),
        (["2026-01-15", "--cluster", "c", "--task-definition", "t"], "missing --subnet (or SUBNET_IDS)"),
    ],
)
def test_reprocess_rejects_bad_arguments(
    mocked: MockAWS, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert reprocess.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("batch-reprocess: ")
    assert message in err


def test_reprocess_reports_an_aws_error(ecs: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["2026-01-15", "--cluster", "nope", "--task-definition", "batch-processor"]
    argv += ["--subnet", ecs["subnet"]]
    assert reprocess.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "ClusterNotFoundException" in err
